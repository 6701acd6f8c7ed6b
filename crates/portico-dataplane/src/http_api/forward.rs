//! HOT PATH. One request through an HTTP API: stage and route selection, throttling,
//! authorization, the integration request (URI template, headers AWS adds and drops, parameter
//! mapping), forwarding over a pooled hyper client with the integration timeout, and the
//! response (status and body passed through, CORS, `apigw-requestid`, access log).

use super::auth::{self, Denied};
use super::context::{self, RequestContext};
use super::mapping::{self, Outgoing, Sources};
use super::routing::{split_path, RouteKey};
use super::{cors, gateway_response, Auth, Integration, Snapshot, Target};
use crate::body::{full, Body};
use crate::lb::pool::{Failure as PoolFailure, Pool};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Largest request or response body an HTTP API carries (10 MB).
pub(crate) const MAX_PAYLOAD: usize = 10 * 1024 * 1024;

/// Largest request line plus header values (10240 bytes).
pub(crate) const MAX_REQUEST_HEAD: usize = 10240;

/// How integration requests reach their backends.
#[derive(Clone)]
pub(crate) struct Client {
    /// Backends named by IP address: keep-alive connections per thread, driven in the task that
    /// serves the request (no connection task, no cross-thread wake-up per request).
    pool: std::sync::Arc<Pool>,
    /// Backends named by host name: hyper's pooled client, which resolves names.
    hyper: hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>,
    /// `https://` backends (`tls.rs`), built on first use.
    https: super::tls::Lazy,
    /// JWT authorizers' signing keys (`jwks.rs`), fetched over the same client.
    pub(crate) jwks: std::sync::Arc<super::jwks::Jwks>,
    /// Access-log lines bound for CloudWatch Logs (`accesslog.rs`).
    pub(crate) access_log: super::accesslog::Sink,
}

/// The pooled clients every integration request goes through.
pub(crate) fn client() -> Client {
    let mut c = HttpConnector::new();
    c.set_nodelay(true);
    c.enforce_http(true);
    let https = super::tls::Lazy::default();
    Client {
        jwks: std::sync::Arc::new(super::jwks::Jwks::new(https.clone())),
        access_log: super::accesslog::Sink::default(),
        pool: std::sync::Arc::default(),
        hyper: hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(c),
        https,
    }
}

/// An integration request, by how it is sent.
enum Backend {
    Pooled(std::net::SocketAddr, http::Request<Body>),
    Named(http::Request<Full<Bytes>>),
}

/// The socket address of an `http://` authority whose host is an IP address (port 80 by
/// default); `None` for a host name.
pub(crate) fn authority_addr(authority: &str) -> Option<std::net::SocketAddr> {
    let a = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Ok(s) = a.parse::<std::net::SocketAddr>() {
        return Some(s);
    }
    let host = a
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(a);
    let ip: std::net::IpAddr = host.parse().ok()?;
    Some(std::net::SocketAddr::new(ip, 80))
}

/// Characters escaped when a path value is substituted into an integration URI.
const PATH_VALUE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn is_hop_by_hop(name: &HeaderName) -> bool {
    // a match on the name compiles to a length switch, cheaper than scanning the list
    let hop = matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    );
    debug_assert_eq!(hop, HOP_BY_HOP.contains(&name.as_str()));
    hop
}

const FORWARDED: HeaderName = HeaderName::from_static("forwarded");
const X_AMZN_TRACE_ID: HeaderName = HeaderName::from_static("x-amzn-trace-id");
const APIGW_REQUESTID: HeaderName = HeaderName::from_static("apigw-requestid");
/// Evaluated at compile time (`from_static` checks every byte when called at run time).
const VIA_APIGW: HeaderValue = HeaderValue::from_static("HTTP/1.1 AmazonAPIGateway");
const ACCESS_CONTROL_REQUEST_METHOD: HeaderName =
    HeaderName::from_static("access-control-request-method");

/// `Root=1-{8 hex epoch seconds}-{24 hex}`.
fn trace_id(now_ms: i64) -> String {
    let mut out = String::with_capacity(5 + 35);
    out.push_str("Root=");
    crate::text::push_trace_id(&mut out, (now_ms / 1000) as u64);
    out
}

/// Substitutes `${stageVariables.x}` and the route's path variables (`{id}`, `{proxy}`) into
/// an integration URI template.
pub(crate) fn substitute(
    template: &str,
    params: &[(String, String)],
    vars: &std::collections::HashMap<String, String>,
) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        let dollar = i > 0 && rest.as_bytes()[i - 1] == b'$';
        out.push_str(&rest[..if dollar { i - 1 } else { i }]);
        let after = &rest[i + 1..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[i..]);
            return out;
        };
        let name = &after[..end];
        if dollar {
            let v = name
                .strip_prefix("stageVariables.")
                .and_then(|n| vars.get(n))
                .cloned()
                .unwrap_or_default();
            out.push_str(&v);
        } else if let Some((_, v)) = params.iter().find(|(k, _)| k == name) {
            let enc: Vec<String> = v
                .split('/')
                .map(|seg| utf8_percent_encode(seg, PATH_VALUE).to_string())
                .collect();
            out.push_str(&enc.join("/"));
        } else {
            out.push('{');
            out.push_str(name);
            out.push('}');
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Serves one request for `api_id` from `snap`.
pub(crate) async fn serve(
    client: &Client,
    lb: Option<&crate::lb::Engine>,
    rr: &AtomicUsize,
    snap: &Snapshot,
    api_id: &str,
    req: http::Request<Body>,
    remote: std::net::SocketAddr,
) -> http::Response<Body> {
    let rid = context::request_id();
    // request line plus every header value: at most 10240 bytes
    let line = req.method().as_str().len()
        + req.uri().path_and_query().map_or(0, |p| p.as_str().len())
        + 10;
    let header_bytes: usize = req.headers().values().map(|v| v.len()).sum();
    if line + header_bytes > MAX_REQUEST_HEAD {
        return gateway_response(413, "Request Entity Too Large", &rid);
    }
    let Some(api) = snap.apis.get(api_id) else {
        return gateway_response(404, "Not Found", &rid);
    };
    let (parts, body) = req.into_parts();
    let raw_path = parts.uri.path();
    let first = raw_path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("");
    let (stage, route_path) = match api.stages.get(first).filter(|_| first != "$default") {
        Some(s) => (s, &raw_path[1 + first.len()..]),
        None => match api.stages.get("$default") {
            Some(s) => (s, raw_path),
            None => return gateway_response(404, "Not Found", &rid),
        },
    };
    let route_path = if route_path.is_empty() {
        "/"
    } else {
        route_path
    };
    // latencies are read only by access logs (and response mappings): a clock read costs
    // ~1% of a request's CPU on a VM, so none is made without them
    let started = stage.access_log.is_some().then(Instant::now);
    let Some(deployment) = &stage.deployment else {
        return gateway_response(404, "Not Found", &rid);
    };
    if deployment.disable_execute_api_endpoint {
        return gateway_response(403, "Forbidden", &rid);
    }
    let header = |n: HeaderName| parts.headers.get(n).and_then(|v| v.to_str().ok());
    // the request headers read on every request, found in one pass: a `HeaderMap::get` each
    // cost ~100 instructions. The first value of a name, as `get` returns it.
    let (mut origin, mut host, mut length, mut traced) = (None, None, None, false);
    for (k, v) in &parts.headers {
        if *k == http::header::HOST {
            host = host.or(Some(v));
        } else if *k == http::header::ORIGIN {
            origin = origin.or(Some(v));
        } else if *k == http::header::CONTENT_LENGTH {
            length = length.or(Some(v));
        } else if *k == X_AMZN_TRACE_ID {
            traced = true;
        }
    }
    let origin = origin.and_then(|v| v.to_str().ok());
    let client_host = host.and_then(|v| v.to_str().ok()).unwrap_or("");
    let source_ip = remote.ip();
    // `$context` strings are filled only when something reads them (`fill_context`): request
    // parameter mapping, a matching response mapping, an access log.
    let mut ctx = RequestContext {
        request_time_epoch: context::now_millis(),
        ..Default::default()
    };
    let mut route_key: &str = "";

    let resp = 'done: {
        // CORS preflight, answered before routing and authorization
        if let (Some(c), Some(o), true) = (
            &deployment.cors,
            origin,
            parts.method == Method::OPTIONS
                && parts.headers.contains_key(&ACCESS_CONTROL_REQUEST_METHOD),
        ) {
            let mut r = http::Response::new(full(Bytes::new()));
            *r.status_mut() = http::StatusCode::NO_CONTENT;
            cors::preflight_headers(c, o, r.headers_mut());
            if let Ok(v) = HeaderValue::from_str(&rid) {
                r.headers_mut().insert(APIGW_REQUESTID, v);
            }
            break 'done r;
        }
        let segments = split_path(route_path);
        let Some(sel) = deployment.routes.select(parts.method.as_str(), &segments) else {
            break 'done gateway_response(404, "Not Found", &rid);
        };
        let route = sel.value;
        route_key = &route.key;
        if let Some(b) = stage.buckets.get(&route.key) {
            if !b.take(Instant::now()) {
                break 'done gateway_response(429, "Too Many Requests", &rid);
            }
        }
        match &route.auth {
            Auth::None => {}
            Auth::Jwt(j) => {
                let now = ctx.request_time_epoch / 1000;
                let checked =
                    auth::check_jwt(&client.jwks, j, &parts.headers, parts.uri.query(), now).await;
                match checked {
                    Ok(claims) => ctx.authorizer_claims = Some(claims),
                    Err(refusal) => {
                        ctx.authorizer_error = Some(refusal.cause);
                        match refusal.denied {
                            Denied::Unauthorized(www) => {
                                let mut r = gateway_response(401, "Unauthorized", &rid);
                                if let Ok(v) = HeaderValue::from_str(&www) {
                                    r.headers_mut().insert("www-authenticate", v);
                                }
                                break 'done r;
                            }
                            Denied::Forbidden => {
                                break 'done gateway_response(403, "Forbidden", &rid)
                            }
                        }
                    }
                }
            }
            Auth::Iam => {
                if !header(http::header::AUTHORIZATION)
                    .is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256 "))
                {
                    break 'done gateway_response(403, "Forbidden", &rid);
                }
            }
            Auth::Custom => {
                ctx.authorizer_error =
                    Some("Lambda authorizers are not available in Portico".into());
                break 'done gateway_response(500, "Internal Server Error", &rid);
            }
        }
        let Some(integration) = &route.integration else {
            ctx.integration_error = Some("the route has no integration".into());
            break 'done gateway_response(500, "Internal Server Error", &rid);
        };
        // request body, at most 10 MB
        if length
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .is_some_and(|n| n > MAX_PAYLOAD)
        {
            break 'done gateway_response(413, "Request Entity Too Large", &rid);
        }
        let body = if hyper::body::Body::is_end_stream(&body) {
            Bytes::new()
        } else {
            match read_limited(body).await {
                Ok(b) => b,
                Err(ReadError::TooLarge) => {
                    break 'done gateway_response(413, "Request Entity Too Large", &rid)
                }
                Err(ReadError::Failed) => break 'done gateway_response(400, "Bad Request", &rid),
            }
        };
        let is_default_route = matches!(sel.key, RouteKey::Default);
        // where the request goes, the backend path and query, and the Host it carries
        let parsed;
        let (dest, path, query, host_value) = match &integration.target {
            Target::Http(t) => {
                let (uri, addr) = match &t.fixed {
                    Some(f) => (&f.uri, f.addr),
                    None => {
                        let s = substitute(&t.uri, &sel.params, &stage.variables);
                        parsed = match s.parse::<http::Uri>() {
                            Ok(u)
                                if matches!(u.scheme_str(), Some("http" | "https"))
                                    && u.authority().is_some() =>
                            {
                                u
                            }
                            _ => {
                                ctx.integration_error =
                                    Some(format!("invalid integration URI {s}"));
                                break 'done gateway_response(500, "Internal Server Error", &rid);
                            }
                        };
                        let addr = parsed.authority().and_then(|a| authority_addr(a.as_str()));
                        (&parsed, addr)
                    }
                };
                let (path, query) =
                    backend_path_and_query(uri, is_default_route, route_path, parts.uri.query());
                let authority = uri.authority().map_or("", |a| a.as_str());
                let dest = if uri.scheme_str() == Some("https") {
                    Dest::Https(authority)
                } else {
                    Dest::Http(Cow::Borrowed(authority), addr)
                };
                (dest, path, query, Cow::Borrowed(authority))
            }
            Target::VpcLink {
                status,
                vpc_link_id,
                listener_arn,
                eni_addresses,
                blocked,
                tls,
            } => {
                if status != "AVAILABLE" {
                    ctx.integration_error = Some(format!("VPC link {vpc_link_id} is {status}"));
                    break 'done gateway_response(500, "Internal Server Error", &rid);
                }
                if let Some(why) = blocked {
                    // dropped packets: the connection never completes and the integration
                    // times out (docs/security-groups.md)
                    tokio::time::sleep(integration.timeout).await;
                    ctx.integration_latency_ms = Some(integration.timeout.as_millis());
                    ctx.integration_error = Some(format!("integration timed out: {why}"));
                    break 'done gateway_response(503, "Service Unavailable", &rid);
                }
                let Some(lb) = lb else {
                    ctx.integration_error = Some("no load-balancer engine attached".into());
                    break 'done gateway_response(500, "Internal Server Error", &rid);
                };
                let ip = match eni_addresses.len() {
                    0 => std::net::IpAddr::from([127, 0, 0, 1]),
                    n => eni_addresses[rr.fetch_add(1, Ordering::Relaxed) % n],
                };
                // private integrations get the full path (stage included) and the client's Host
                let path = raw_path.to_string();
                let query = parts.uri.query().unwrap_or("").to_string();
                // (with a tlsConfig, an NLB too is reached through the engine: over TLS)
                if listener_arn.contains(":listener/net/") && tls.is_none() {
                    // an NLB passes the bytes through to a target: connect to its listener
                    let Some(addr) = lb.local_address(listener_arn) else {
                        ctx.integration_error =
                            Some(format!("listener {listener_arn} is not bound"));
                        break 'done gateway_response(500, "Internal Server Error", &rid);
                    };
                    (
                        Dest::Http(Cow::Owned(addr.to_string()), Some(addr)),
                        path,
                        query,
                        Cow::Borrowed(client_host),
                    )
                } else {
                    (
                        Dest::Lb {
                            lb,
                            listener: listener_arn,
                            ip,
                            tls: tls.as_ref(),
                        },
                        path,
                        query,
                        Cow::Borrowed(client_host),
                    )
                }
            }
            Target::Unsupported { reason } => {
                ctx.integration_error = Some(reason.clone());
                break 'done gateway_response(500, "Internal Server Error", &rid);
            }
        };
        let mut out = Outgoing {
            path,
            query,
            // room for what is added here and, on a VPC link, by the ALB (X-Forwarded-*):
            // a HeaderMap that grows rehashes every entry
            headers: HeaderMap::with_capacity(parts.headers.len() + 8),
        };
        for (k, v) in &parts.headers {
            // the body is already read, so `Expect: 100-continue` is answered here, not sent on
            if !is_hop_by_hop(k)
                && k != http::header::HOST
                && k != http::header::CONTENT_LENGTH
                && k != http::header::EXPECT
            {
                out.headers.append(k.clone(), v.clone());
            }
        }
        let mut host_sent = false;
        if let Ok(v) = HeaderValue::from_str(&host_value) {
            out.headers.insert(http::header::HOST, v);
            host_sent = true;
        }
        if !integration.request_parameters.is_empty() {
            // a mapping may set or remove any header: look again below
            host_sent = false;
            traced = false;
            fill_context(&mut ctx, &rid, api, stage, &parts, route_key, source_ip);
            let src = Sources {
                headers: &parts.headers,
                query: parts.uri.query(),
                path: route_path,
                path_params: &sel.params,
                body: &body,
                ctx: &ctx,
                stage_vars: &stage.variables,
                response: None,
            };
            mapping::apply_request(&integration.request_parameters, &src, &mut out);
        }
        let mut fwd = String::with_capacity(32 + client_host.len());
        fwd.push_str("for=");
        crate::text::push_ip(&mut fwd, source_ip);
        fwd.push_str(";host=");
        fwd.push_str(client_host);
        fwd.push_str(";proto=http");
        if let Ok(v) = HeaderValue::from_maybe_shared(Bytes::from(fwd)) {
            out.headers.insert(FORWARDED, v);
        }
        out.headers.insert(http::header::VIA, VIA_APIGW);
        // the client's trace id was copied (not a hop-by-hop name)
        if !traced && !out.headers.contains_key(&X_AMZN_TRACE_ID) {
            if let Ok(v) =
                HeaderValue::from_maybe_shared(Bytes::from(trace_id(ctx.request_time_epoch)))
            {
                out.headers.insert(X_AMZN_TRACE_ID, v);
            }
        }
        let method = match &integration.method {
            Some(m) => Method::from_bytes(m.as_bytes()).unwrap_or(parts.method.clone()),
            None => parts.method.clone(),
        };
        let pq = if out.query.is_empty() {
            std::mem::take(&mut out.path)
        } else {
            format!("{}?{}", out.path, out.query)
        };
        let int_started = (stage.access_log.is_some()
            || !integration.response_parameters.is_empty())
        .then(Instant::now);
        let (rparts, rbody) = match dest {
            Dest::Http(authority, addr) => {
                let backend = match addr {
                    // an IP address: our own per-thread pool, driven in this task; the path and
                    // query go on the wire as they are (origin form)
                    Some(addr) => {
                        let uri: http::Uri = match http::Uri::from_maybe_shared(Bytes::from(pq)) {
                            Ok(u) => u,
                            Err(_) => {
                                ctx.integration_error =
                                    Some(format!("invalid backend URL http://{authority}"));
                                break 'done gateway_response(500, "Internal Server Error", &rid);
                            }
                        };
                        let mut breq = http::Request::new(full(body.clone()));
                        *breq.method_mut() = method;
                        *breq.uri_mut() = uri;
                        *breq.headers_mut() = out.headers;
                        if !host_sent && !breq.headers().contains_key(http::header::HOST) {
                            if let Ok(h) = HeaderValue::from_str(&authority) {
                                breq.headers_mut().insert(http::header::HOST, h);
                            }
                        }
                        Backend::Pooled(addr, breq)
                    }
                    // a host name: hyper's client resolves it
                    None => {
                        let target = format!("http://{authority}{pq}");
                        let uri: http::Uri = match target.parse() {
                            Ok(u) => u,
                            Err(_) => {
                                ctx.integration_error =
                                    Some(format!("invalid backend URL {target}"));
                                break 'done gateway_response(500, "Internal Server Error", &rid);
                            }
                        };
                        let mut breq = http::Request::new(Full::new(body.clone()));
                        *breq.method_mut() = method;
                        *breq.uri_mut() = uri;
                        *breq.headers_mut() = out.headers;
                        Backend::Named(breq)
                    }
                };
                // pinned in place: `timeout()` then moves a pointer, not the future
                let exchange = std::pin::pin!(async move {
                    match backend {
                        Backend::Pooled(addr, breq) => send_pooled(&client.pool, addr, breq).await,
                        Backend::Named(breq) => send(&client.hyper, breq).await,
                    }
                });
                let result = tokio::time::timeout(integration.timeout, exchange).await;
                ctx.integration_latency_ms = int_started.map(|t| t.elapsed().as_millis());
                match result {
                    Err(_) => {
                        ctx.integration_error = Some("integration timed out".into());
                        break 'done gateway_response(503, "Service Unavailable", &rid);
                    }
                    Ok(Err(SendError::TooLarge)) => {
                        ctx.integration_error = Some("integration response exceeds 10 MB".into());
                        break 'done gateway_response(500, "Internal Server Error", &rid);
                    }
                    Ok(Err(SendError::Failed(e))) => {
                        ctx.integration_error = Some(e);
                        break 'done gateway_response(503, "Service Unavailable", &rid);
                    }
                    Ok(Ok(x)) => x,
                }
            }
            Dest::Https(authority) => {
                let mut breq = http::Request::new(Full::new(body.clone()));
                *breq.method_mut() = method;
                *breq.headers_mut() = out.headers;
                match format!("https://{authority}{pq}").parse() {
                    Ok(u) => *breq.uri_mut() = u,
                    Err(_) => {
                        ctx.integration_error = Some(format!("invalid backend URL {pq}"));
                        break 'done gateway_response(500, "Internal Server Error", &rid);
                    }
                }
                let exchange = std::pin::pin!(super::tls::send(&client.https, breq, MAX_PAYLOAD));
                let result = tokio::time::timeout(integration.timeout, exchange).await;
                ctx.integration_latency_ms = int_started.map(|t| t.elapsed().as_millis());
                match result {
                    Ok(Ok(x)) => x,
                    Err(_) => {
                        ctx.integration_error = Some("integration timed out".into());
                        break 'done gateway_response(503, "Service Unavailable", &rid);
                    }
                    Ok(Err(f)) => {
                        let (status, message, e) = super::tls::gateway_answer(f);
                        ctx.integration_error = Some(e);
                        break 'done gateway_response(status, message, &rid);
                    }
                }
            }
            Dest::Lb {
                lb,
                listener,
                ip,
                tls,
            } => {
                let mut breq = http::Request::new(full(body.clone()));
                *breq.method_mut() = method;
                *breq.uri_mut() = match http::Uri::from_maybe_shared(Bytes::from(pq)) {
                    Ok(u) => u,
                    Err(_) => {
                        ctx.integration_error = Some("invalid backend path".into());
                        break 'done gateway_response(500, "Internal Server Error", &rid);
                    }
                };
                *breq.headers_mut() = out.headers;
                // pinned in place: `timeout()` then moves a pointer, not the ALB's future
                // (~1,500 instructions of memcpy per request)
                let call = crate::lb::LinkCall {
                    timeout: integration.timeout,
                    // hop-by-hop headers were dropped above; a parameter mapping may add any
                    clean: integration.request_parameters.is_empty(),
                    epoch_secs: (ctx.request_time_epoch / 1000) as u64,
                };
                let exchange = std::pin::pin!(send_lb(lb, listener, breq, ip, tls, call));
                let result = tokio::time::timeout(integration.timeout, exchange).await;
                ctx.integration_latency_ms = int_started.map(|t| t.elapsed().as_millis());
                match result {
                    Err(_) => {
                        ctx.integration_error = Some("integration timed out".into());
                        break 'done gateway_response(503, "Service Unavailable", &rid);
                    }
                    Ok(Err(SendError::TooLarge)) => {
                        ctx.integration_error = Some("integration response exceeds 10 MB".into());
                        break 'done gateway_response(500, "Internal Server Error", &rid);
                    }
                    Ok(Err(SendError::Failed(e))) => {
                        ctx.integration_error = Some(e);
                        break 'done gateway_response(500, "Internal Server Error", &rid);
                    }
                    Ok(Ok(x)) => x,
                }
            }
        };
        ctx.integration_status = Some(rparts.status.as_u16());
        if integration
            .response_parameters
            .iter()
            .any(|(c, _)| *c == rparts.status.as_u16())
        {
            fill_context(&mut ctx, &rid, api, stage, &parts, route_key, source_ip);
        }
        build_response(
            integration,
            rparts,
            rbody,
            &ctx,
            &rid,
            stage,
            &parts.headers,
            parts.uri.query(),
            route_path,
            &sel.params,
            &body,
        )
    };

    let mut resp = resp;
    if let Some(c) = &deployment.cors {
        if resp.status() != http::StatusCode::NO_CONTENT || parts.method != Method::OPTIONS {
            cors::response_headers(c, origin, resp.headers_mut());
        }
    }
    if let Some(al) = &stage.access_log {
        fill_context(&mut ctx, &rid, api, stage, &parts, route_key, source_ip);
        ctx.status = resp.status().as_u16();
        ctx.response_length = hyper::body::Body::size_hint(resp.body())
            .exact()
            .unwrap_or(0) as usize;
        ctx.response_latency_ms = started.map_or(0, |t| t.elapsed().as_millis());
        let message = ctx.render(&al.format);
        tracing::debug!(target: "portico::apigw::access", api_id = %api.api_id, stage = %stage.name, "{message}");
        if let Some(d) = &al.destination {
            client.access_log.push(super::accesslog::Line {
                destination: d.clone(),
                timestamp: ctx.request_time_epoch,
                message,
            });
        }
    }
    resp
}

/// Fills the `$context` strings of one request (once; they do not change afterwards).
fn fill_context(
    ctx: &mut RequestContext,
    rid: &str,
    api: &super::Api,
    stage: &super::Stage,
    parts: &http::request::Parts,
    route_key: &str,
    source_ip: std::net::IpAddr,
) {
    if !ctx.request_id.is_empty() {
        return;
    }
    let header = |n: HeaderName| parts.headers.get(n).and_then(|v| v.to_str().ok());
    ctx.request_id = rid.to_string();
    ctx.api_id = api.api_id.clone();
    ctx.account_id = api.account_id.clone();
    ctx.stage = stage.name.clone();
    ctx.route_key = route_key.to_string();
    ctx.http_method = parts.method.to_string();
    ctx.path = parts.uri.path().to_string();
    ctx.protocol = "HTTP/1.1".into();
    ctx.domain_name = header(http::header::HOST)
        .unwrap_or("")
        .split(':')
        .next()
        .unwrap_or("")
        .to_string();
    ctx.source_ip = source_ip.to_string();
    ctx.user_agent = header(http::header::USER_AGENT).unwrap_or("").to_string();
}

/// The path and query sent to an HTTP_PROXY integration: the URI's path, plus the request path
/// (stage removed) only for the `$default` route; the URI's query plus the client's raw query.
fn backend_path_and_query(
    uri: &http::Uri,
    is_default_route: bool,
    route_path: &str,
    client_query: Option<&str>,
) -> (String, String) {
    let base = uri.path();
    let path = if is_default_route {
        let b = base.trim_end_matches('/');
        format!("{b}{route_path}")
    } else if base.is_empty() {
        "/".to_string()
    } else {
        base.to_string()
    };
    let query = match (
        uri.query().filter(|q| !q.is_empty()),
        client_query.filter(|q| !q.is_empty()),
    ) {
        (Some(a), Some(b)) => format!("{a}&{b}"),
        (Some(a), None) => a.to_string(),
        (None, Some(b)) => b.to_string(),
        (None, None) => String::new(),
    };
    (path, query)
}

enum ReadError {
    TooLarge,
    Failed,
}

/// Reads a body (a request's, or an integration's response) of at most 10 MB. A body whose
/// bytes have all arrived (the usual small response: one data frame, then the end) is read on
/// the spot. Otherwise the read loop runs boxed, so that the caller's future does not hold
/// the boxed-error body type across an await (which trips a higher-ranked lifetime check when
/// the server spawns it); the box cost ~150 instructions per response.
#[inline(never)]
fn read_limited(mut body: Body) -> ReadLimited {
    use std::task::{Context, Poll, Waker};
    // A no-op waker: a body that is not ready now is polled again, with the task's waker,
    // by the boxed loop, which registers that waker.
    let mut cx = Context::from_waker(Waker::noop());
    use hyper::body::Body as _;
    let first = match std::pin::Pin::new(&mut body).poll_frame(&mut cx) {
        Poll::Ready(None) => return ReadLimited::Done(Some(Ok(Bytes::new()))),
        Poll::Ready(Some(Err(_))) => return ReadLimited::Done(Some(Err(ReadError::Failed))),
        Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
            Ok(data) if data.len() > MAX_PAYLOAD => {
                return ReadLimited::Done(Some(Err(ReadError::TooLarge)))
            }
            Ok(data) if body.is_end_stream() => return ReadLimited::Done(Some(Ok(data))),
            Ok(data) => Some(data),
            // trailers: skipped, as the loop skips them
            Err(_) => None,
        },
        Poll::Pending => None,
    };
    ReadLimited::Reading(Box::pin(async move {
        let mut body = body;
        // The first data frame is kept as is: a body of one frame (the usual case) is never
        // copied.
        let mut first: Option<Bytes> = first;
        let mut buf = bytes::BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| ReadError::Failed)?;
            if let Ok(data) = frame.into_data() {
                let len = first.as_ref().map_or(0, Bytes::len) + buf.len();
                if len + data.len() > MAX_PAYLOAD {
                    return Err(ReadError::TooLarge);
                }
                match &first {
                    None if buf.is_empty() => first = Some(data),
                    _ => {
                        if let Some(f) = first.take() {
                            buf.extend_from_slice(&f);
                        }
                        buf.extend_from_slice(&data);
                    }
                }
            }
        }
        Ok(match first {
            Some(f) => f,
            None => buf.freeze(),
        })
    }))
}

/// `read_limited`'s answer: read already, or the boxed read loop.
enum ReadLimited {
    /// `None` once taken.
    Done(Option<Result<Bytes, ReadError>>),
    Reading(std::pin::Pin<Box<dyn std::future::Future<Output = Result<Bytes, ReadError>> + Send>>),
}

impl std::future::Future for ReadLimited {
    type Output = Result<Bytes, ReadError>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match self.get_mut() {
            ReadLimited::Done(r) => {
                std::task::Poll::Ready(r.take().unwrap_or(Err(ReadError::Failed)))
            }
            ReadLimited::Reading(f) => f.as_mut().poll(cx),
        }
    }
}

/// Where an integration request goes.
enum Dest<'a> {
    /// `HTTP_PROXY` over the internet to this `host[:port]` (at this address when the host is
    /// an IP address).
    Http(Cow<'a, str>, Option<std::net::SocketAddr>),
    /// The same over TLS (`tls.rs`).
    Https(&'a str),
    /// Through a VPC link to an ALB listener, from a VPC-link ENI address.
    Lb {
        lb: &'a crate::lb::Engine,
        listener: &'a str,
        ip: std::net::IpAddr,
        /// The integration's `tlsConfig`.
        tls: Option<&'a crate::lb::LinkTls>,
    },
}

/// Hands the request to the ALB engine in-process, as if it arrived on the listener's socket.
async fn send_lb(
    lb: &crate::lb::Engine,
    listener: &str,
    req: http::Request<Body>,
    ip: std::net::IpAddr,
    tls: Option<&crate::lb::LinkTls>,
    call: crate::lb::LinkCall,
) -> Result<(http::response::Parts, Bytes), SendError> {
    let resp = lb
        .serve_link_within(listener, req, ip, tls, Some(call))
        .await
        .ok_or_else(|| SendError::Failed(format!("listener {listener} does not exist")))?
        .map_err(SendError::Failed)?;
    let (parts, body) = resp.into_parts();
    match read_limited(body).await {
        Ok(b) => Ok((parts, b)),
        Err(ReadError::TooLarge) => Err(SendError::TooLarge),
        Err(ReadError::Failed) => Err(SendError::Failed("load balancer response failed".into())),
    }
}

enum SendError {
    TooLarge,
    Failed(String),
}

/// Sends over the per-thread pool and reads the whole response (at most 10 MB); the connection
/// goes back to the pool once the body has been read.
async fn send_pooled(
    pool: &std::sync::Arc<Pool>,
    addr: std::net::SocketAddr,
    req: http::Request<Body>,
) -> Result<(http::response::Parts, Bytes), SendError> {
    let unreachable = |what: &str| SendError::Failed(format!("integration unreachable: {what}"));
    let up = match pool.checkout(addr).await {
        Ok(up) => up,
        Err(PoolFailure::Timeout) => return Err(unreachable("connect timed out")),
        Err(PoolFailure::Bad) => return Err(unreachable("connection refused")),
    };
    let (parts, ex) = up
        .send(req)
        .await
        .map_err(|_| unreachable("connection failed"))?;
    let body = ex.body(pool, addr, ());
    match read_limited(body).await {
        Ok(b) => Ok((parts, b)),
        Err(ReadError::TooLarge) => Err(SendError::TooLarge),
        Err(ReadError::Failed) => Err(SendError::Failed(
            "integration response failed: the connection broke".into(),
        )),
    }
}

async fn send(
    client: &hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>,
    req: http::Request<Full<Bytes>>,
) -> Result<(http::response::Parts, Bytes), SendError> {
    let resp = client
        .request(req)
        .await
        .map_err(|e| SendError::Failed(format!("integration unreachable: {e}")))?;
    let (parts, body) = resp.into_parts();
    #[allow(clippy::disallowed_methods, reason = "the body is wrapped in Limited")]
    let bytes = match Limited::new(body, MAX_PAYLOAD).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(SendError::TooLarge),
        Err(e) => {
            return Err(SendError::Failed(format!(
                "integration response failed: {e}"
            )))
        }
    };
    Ok((parts, bytes))
}

#[allow(
    clippy::too_many_arguments,
    reason = "the mapping sources of one request"
)]
fn build_response(
    integration: &Integration,
    mut rparts: http::response::Parts,
    rbody: Bytes,
    ctx: &RequestContext,
    request_id: &str,
    stage: &super::Stage,
    req_headers: &HeaderMap,
    req_query: Option<&str>,
    route_path: &str,
    params: &[(String, String)],
    req_body: &[u8],
) -> http::Response<Body> {
    let mut status = rparts.status.as_u16();
    let mapping = integration
        .response_parameters
        .iter()
        .find(|(c, _)| *c == status);
    let mut headers = match mapping {
        // the backend's headers stay the mapping's source: copy them
        Some(_) => {
            let mut headers = HeaderMap::with_capacity(rparts.headers.len() + 2);
            for (k, v) in &rparts.headers {
                if !is_hop_by_hop(k) {
                    headers.append(k.clone(), v.clone());
                }
            }
            headers
        }
        // else take them, minus the hop-by-hop ones
        None => {
            let mut headers = std::mem::take(&mut rparts.headers);
            // one pass finds them (usually `Connection` alone, or none behind an ALB)
            let hop: smallvec::SmallVec<[HeaderName; 2]> = headers
                .keys()
                .filter(|k| is_hop_by_hop(k))
                .cloned()
                .collect();
            for k in hop {
                headers.remove(k);
            }
            headers
        }
    };
    if let Some((_, rp)) = mapping {
        let src = Sources {
            headers: req_headers,
            query: req_query,
            path: route_path,
            path_params: params,
            body: req_body,
            ctx,
            stage_vars: &stage.variables,
            response: Some((&rparts.headers, &rbody)),
        };
        mapping::apply_response(rp, &src, &mut status, &mut headers);
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert(APIGW_REQUESTID, v);
    }
    let mut r = http::Response::new(full(rbody));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    *r.headers_mut() = headers;
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn backend_addresses_and_origin_form() {
        let a = |s: &str| authority_addr(s).map(|a| a.to_string());
        assert_eq!(a("127.0.0.1:8080").as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(a("127.0.0.1").as_deref(), Some("127.0.0.1:80"));
        assert_eq!(a("[::1]:9").as_deref(), Some("[::1]:9"));
        assert_eq!(a("[::1]").as_deref(), Some("[::1]:80"));
        assert_eq!(a("user@10.0.0.1:81").as_deref(), Some("10.0.0.1:81"));
        assert_eq!(a("example.com:80"), None);
        // the path and query go on the wire as given, also when they start with `//`
        let u = http::Uri::from_maybe_shared(Bytes::from("//a/b?x=1")).unwrap();
        assert_eq!(u.path_and_query().unwrap().as_str(), "//a/b?x=1");
        assert!(u.authority().is_none());
    }

    #[test]
    fn trace_id_shape() {
        let t = trace_id(1_738_318_530_123);
        assert_eq!(&t[..16], "Root=1-679ca2c2-");
        assert_eq!(t.len(), 16 + 24);
        assert!(t[16..].bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn uri_substitution() {
        let vars = HashMap::from([("host".to_string(), "b.example".to_string())]);
        let params = vec![("proxy".to_string(), "a/b c".to_string())];
        assert_eq!(
            substitute(
                "http://${stageVariables.host}/petstore/{proxy}",
                &params,
                &vars
            ),
            "http://b.example/petstore/a/b%20c"
        );
        assert_eq!(
            substitute("http://x/{nope}", &params, &vars),
            "http://x/{nope}"
        );
    }

    #[test]
    fn only_default_route_appends_path() {
        let u: http::Uri = "http://b/base/".parse().unwrap();
        assert_eq!(
            backend_path_and_query(&u, true, "/x/y", Some("a=1")),
            ("/base/x/y".into(), "a=1".into())
        );
        let u: http::Uri = "http://b/list?k=v".parse().unwrap();
        assert_eq!(
            backend_path_and_query(&u, false, "/pets", Some("a=1")),
            ("/list".into(), "k=v&a=1".into())
        );
        let u: http::Uri = "http://b".parse().unwrap();
        assert_eq!(
            backend_path_and_query(&u, false, "/pets", None),
            ("/".into(), "".into())
        );
    }
}
