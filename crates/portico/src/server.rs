//! The main port: one listener that serves every AWS API (dispatched by protocol), the HTTP API
//! data plane (by `Host: {apiId}.execute-api.localhost`), and Portico's own endpoints under
//! `/_portico/`. Also starts the control plane, its reconcilers, and shuts everything down.

use crate::ServeArgs;
use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use portico_control::{Config, Control};
use portico_core::{context::account_for_key, AwsError, Input, RequestContext, Service};
use portico_dataplane::body::{self as dbody, Body};
use portico_dataplane::Dataplane;
use portico_runtime::Runtime;
use portico_store::Store;
use portico_wire::sigv4::{self, SigError, SignedRequest};
use portico_wire::{detect, encode_error, encode_success, Detected, RawRequest};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;

/// Largest control-plane request body accepted (AWS APIs cap far lower; CloudFormation
/// template bodies are at most 51,200 bytes).
const MAX_CONTROL_BODY: usize = 16 * 1024 * 1024;

/// What every connection handler shares.
pub struct App {
    pub control: Control,
    pub dataplane: Dataplane,
    /// Access key -> secret; verification is on when `verify` is.
    pub credentials: HashMap<String, String>,
    pub verify: bool,
}

/// Runs the server until Ctrl-C/SIGTERM or until `stop` is notified. `ready` receives the bound
/// address once the port accepts connections.
pub async fn run(
    args: ServeArgs,
    ready: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
    stop: Option<Arc<tokio::sync::Notify>>,
) -> anyhow::Result<()> {
    let credentials: HashMap<String, String> = args
        .credentials
        .iter()
        .filter_map(|c| {
            c.split_once(':')
                .map(|(k, s)| (k.to_string(), s.to_string()))
        })
        .collect();
    if !args.host.is_loopback() && credentials.is_empty() {
        anyhow::bail!(
            "binding to {} (not loopback) needs --credentials KEY:SECRET: off loopback every request must carry a valid SigV4 signature",
            args.host
        );
    }
    let verify = args.verify_signatures || !args.host.is_loopback();

    let store = if args.ephemeral {
        Store::in_memory()?
    } else {
        let dir = args
            .state_dir
            .clone()
            .unwrap_or_else(crate::default_state_dir);
        Store::open(&dir).with_context(|| format!("cannot open the state directory {}: is it writable? choose another with --state-dir", dir.display()))?
    };
    let addr = SocketAddr::new(args.host, args.port);
    let listener = TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr}: is another Portico (or something else) using port {}? choose another with --port", args.port)
    })?;
    let bound = listener.local_addr()?;

    let dataplane = Dataplane::default();
    let runtime = Runtime::new(portico_runtime::RuntimeConfig {
        program: std::env::current_exe().ok(),
    });
    let config = Config {
        default_account: args.account.clone(),
        default_region: args.region.clone(),
        public_host: "localhost".into(),
        port: bound.port(),
        time_scale: args.time_scale.unwrap_or(1.0),
        state_dir: args.state_dir.clone(),
        aws_endpoints: args.aws_endpoints,
    };
    let control = Control::new(store, config, dataplane.clone(), runtime.clone());
    portico_cfn::CloudFormation::install(&control);
    portico_control::reconcile::spawn_all(&control);

    let app = Arc::new(App {
        control,
        dataplane,
        credentials,
        verify,
    });
    tracing::info!(address = %bound, verify_signatures = verify, "portico listening");
    // Machine-readable line for scripts and tests that start us on port 0.
    println!("portico listening on http://{bound}");
    if let Some(r) = ready {
        let _ = r.send(bound);
    }

    let shutdown = async move {
        match stop {
            Some(n) => tokio::select! { _ = shutdown_signal() => {}, _ = n.notified() => {} },
            None => shutdown_signal().await,
        }
    };
    tokio::pin!(shutdown);
    // The control plane runs here; connections are served on the data-plane workers (when
    // started, see `portico_dataplane::workers`), which hand API calls back to this runtime.
    let control_rt = tokio::runtime::Handle::current();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, remote) = match accepted {
                    Ok(x) => x,
                    Err(e) => { tracing::warn!(error = %e, "accept failed"); continue; }
                };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let control_rt = control_rt.clone();
                portico_dataplane::workers::spawn_connection(stream, move |stream| async move {
                    // Plain HTTP/1.1 data-plane requests are served by the data plane's own loop;
                    // the first request it does not take (an API call, the console, anything
                    // unusual) hands the connection to hyper for good.
                    let fast_app = app.clone();
                    let fast = move |req| dataplane_request(&fast_app, req, remote);
                    let hyper = move |io| async move {
                        let svc = hyper::service::service_fn(move |req| {
                            let app = app.clone();
                            let control_rt = control_rt.clone();
                            async move { Ok::<_, std::convert::Infallible>(handle(app, &control_rt, req, remote).await) }
                        });
                        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(io), svc)
                            .await;
                    };
                    portico_dataplane::h1server::serve(stream, header_slack, fast, hyper).await;
                });
            }
            _ = &mut shutdown => break,
        }
    }
    tracing::info!("shutting down");
    app.control.runtime().shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
            return;
        }
    }
    let _ = ctrl_c.await;
}

/// Room for the headers an engine adds to the request's own map (`h1server::serve`): an
/// ALB (by its DNS name) adds four, with room to spare; an HTTP API copies the headers into a
/// new map.
fn header_slack(host: &[u8]) -> usize {
    // a HeaderMap grows at three quarters full
    match std::str::from_utf8(host).ok().and_then(execute_api_id) {
        Some(_) => 0,
        None => 8,
    }
}

/// A boxed engine future (one allocation per request; see `dataplane_request`).
type EngineFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = http::Response<Body>> + Send>>;

/// The engine future for a data-plane request on the main port (an HTTP API by its
/// execute-api Host, or an ALB by its DNS name), or `None` for everything else (API calls,
/// `/_portico/`), which hyper serves through [`handle`].
fn dataplane_request(
    app: &Arc<App>,
    req: http::Request<Body>,
    remote: SocketAddr,
) -> Option<EngineFuture> {
    if let Some(api_id) = execute_api_host(&req) {
        let api_id = api_id.into_owned();
        let app = app.clone();
        // Two boxes on purpose: the engine's future (several KB) is built in its own box;
        // boxing this block alone (one box, the engine's future inline) is not built in place
        // and costs ~1k more instructions per request in `memcpy` (callgrind, session 4).
        return Some(Box::pin(async move {
            portico_dataplane::h1server::boxed_in_place(|| {
                app.dataplane.http_api.handle(&api_id, req, remote)
            })
            .await
        }));
    }
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())?;
    let l = app.dataplane.lb.listener_for_host(host)?;
    let app = app.clone();
    Some(Box::pin(async move {
        let r = portico_dataplane::h1server::boxed_in_place(|| {
            app.dataplane.lb.serve_http(&l, req, remote.ip())
        })
        .await;
        r.unwrap_or_else(|| plain(503, "text/plain", "load balancer listener is gone"))
    }))
}

/// The API id in a `{apiId}.execute-api.…` host name, as sent.
fn execute_api_id(host: &str) -> Option<&str> {
    let (id, rest) = host.split_once('.')?;
    rest.starts_with("execute-api.").then_some(id)
}

/// The API id a `Host: {apiId}.execute-api.…` header names.
fn execute_api_host<B>(req: &http::Request<B>) -> Option<std::borrow::Cow<'_, str>> {
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host())?;
    let id = execute_api_id(host)?;
    // API ids are lower case; a client may send its Host in any case
    Some(if id.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(id.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(id)
    })
}

/// One request on the main port. Data-plane requests are served right here (on the thread that
/// serves the connection); everything else runs on the control plane's runtime `control_rt`.
pub async fn handle(
    app: Arc<App>,
    control_rt: &tokio::runtime::Handle,
    req: http::Request<Incoming>,
    remote: SocketAddr,
) -> http::Response<Body> {
    if let Some(api_id) = execute_api_host(&req) {
        let api_id = api_id.into_owned();
        let req = req.map(|b| b.map_err(|e| Box::new(e) as dbody::BoxError).boxed());
        // Boxed: hyper moves this function's future per request, and the engines' futures
        // are several KB (that memcpy was up to a fifth of a hop's instructions).
        return Box::pin(app.dataplane.http_api.handle(&api_id, req, remote)).await;
    }
    // elbv2: `Host: <load balancer DNSName>[:port]` is served by that ALB's listener.
    let lb_listener = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok());
    if let Some(l) = lb_listener.and_then(|h| app.dataplane.lb.listener_for_host(h)) {
        let req = req.map(|b| b.map_err(|e| Box::new(e) as dbody::BoxError).boxed());
        let r = portico_dataplane::h1server::boxed_in_place(|| {
            app.dataplane.lb.serve_http(&l, req, remote.ip())
        })
        .await;
        return r.unwrap_or_else(|| plain(503, "text/plain", "load balancer listener is gone"));
    }
    if req.uri().path().starts_with("/_portico/execute-api/") {
        return Box::pin(crate::admin::handle(&app, req, remote)).await;
    }
    let control = control_rt.spawn(async move {
        if req.uri().path().starts_with("/_portico/") {
            return crate::admin::handle(&app, req, remote).await;
        }
        aws_api(app, req).await
    });
    match control.await {
        Ok(r) => r,
        Err(e) => {
            let e = AwsError::internal(format!("request handler failed: {e}"));
            to_body(encode_error(None, &portico_core::ids::uuid(), &e))
        }
    }
}

fn to_body(r: http::Response<Bytes>) -> http::Response<Body> {
    r.map(dbody::full)
}

/// Reads a whole request body, refusing more than `limit` bytes.
pub async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, AwsError> {
    #[allow(clippy::disallowed_methods, reason = "the body is wrapped in Limited")]
    let collected = Limited::new(body, limit).collect().await;
    match collected {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(AwsError::new(
            413,
            "RequestEntityTooLargeException",
            format!("Request body exceeds the maximum of {limit} bytes"),
        )),
        Err(e) => {
            Err(AwsError::bad("IncompleteBody", "The request body could not be read").with_cause(e))
        }
    }
}

fn auth_error(service: Option<Service>, e: SigError) -> AwsError {
    let json = service.is_some_and(|s| {
        !matches!(
            s.protocol(),
            portico_core::Protocol::Query | portico_core::Protocol::Ec2Query
        )
    });
    match e {
        SigError::Incomplete(m) => AwsError::new(
            403,
            if json {
                "IncompleteSignatureException"
            } else {
                "IncompleteSignature"
            },
            m,
        ),
        SigError::Mismatch(m) => AwsError::new(
            403,
            if json {
                "InvalidSignatureException"
            } else {
                "SignatureDoesNotMatch"
            },
            m,
        ),
        SigError::UnknownKey => {
            let code = match service {
                Some(Service::Ec2) => "AuthFailure",
                Some(s) if !json || s == Service::Sts => "InvalidClientTokenId",
                _ => "UnrecognizedClientException",
            };
            AwsError::new(
                403,
                code,
                "The security token included in the request is invalid.",
            )
        }
    }
}

async fn aws_api(app: Arc<App>, req: http::Request<Incoming>) -> http::Response<Body> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let request_id = portico_core::ids::uuid();
    let body = match read_body(body, MAX_CONTROL_BODY).await {
        Ok(b) => b,
        Err(e) => return to_body(encode_error(None, &request_id, &e)),
    };
    let raw_path = parts.uri.path();
    let raw_query = parts.uri.query();
    let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok());
    let sig = sigv4::parse(header("authorization"), raw_query, header("x-amz-date"));
    let raw = RawRequest {
        method: parts.method.as_str(),
        path: raw_path,
        query: raw_query,
        headers: &parts.headers,
        body: &body,
    };
    let scope_service = sig
        .as_ref()
        .ok()
        .and_then(|s| s.as_ref().map(|s| s.service.clone()));
    let detected = match detect(&raw, scope_service.as_deref()) {
        Ok(d) => d,
        Err((svc, e)) => return to_body(encode_error(svc, &request_id, &e)),
    };
    let service = match &detected {
        Detected::Op { service, .. } | Detected::Rest { service } => Some(*service),
        Detected::NotAws => None,
    };
    let sig = match sig {
        Ok(s) => s,
        Err(e) => return to_body(encode_error(service, &request_id, &auth_error(service, e))),
    };
    if app.verify {
        let Some(s) = &sig else {
            let e = AwsError::new(
                403,
                "MissingAuthenticationToken",
                "Missing Authentication Token",
            );
            return to_body(encode_error(service, &request_id, &e));
        };
        let Some(secret) = app.credentials.get(&s.access_key_id) else {
            return to_body(encode_error(
                service,
                &request_id,
                &auth_error(service, SigError::UnknownKey),
            ));
        };
        let sreq = SignedRequest {
            method: parts.method.as_str(),
            raw_path,
            raw_query,
            headers: &parts.headers,
            body: &body,
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if let Err(e) = sigv4::verify(s, &sreq, secret, now) {
            return to_body(encode_error(service, &request_id, &auth_error(service, e)));
        }
    }
    let (service, operation, input, rest_status) = match detected {
        Detected::NotAws => {
            let e = AwsError::new(
                404,
                "NotFound",
                format!(
                    "No AWS service answers {} {raw_path} on this endpoint",
                    parts.method
                ),
            );
            return to_body(encode_error(None, &request_id, &e));
        }
        Detected::Op {
            service,
            operation,
            input,
        } => (service, operation, Input(input), 200),
        Detected::Rest { service } => {
            let Some(m) = app
                .control
                .rest_route(service, parts.method.as_str(), raw_path)
            else {
                let e = service.unknown_operation(&format!("{} {raw_path}", parts.method));
                return to_body(encode_error(Some(service), &request_id, &e));
            };
            let json = if body.iter().all(u8::is_ascii_whitespace) {
                serde_json::Value::Object(Default::default())
            } else {
                match serde_json::from_slice::<serde_json::Value>(&body) {
                    Ok(v @ serde_json::Value::Object(_)) => v,
                    _ => {
                        let e = AwsError::bad(
                            "BadRequestException",
                            "Invalid Request Body: the body must be a JSON object",
                        );
                        return to_body(encode_error(Some(service), &request_id, &e));
                    }
                }
            };
            let query: Vec<(String, String)> = raw_query.map(form_pairs).unwrap_or_default();
            let input = portico_control::services::rest_input(json, &query, &m.labels);
            (service, m.operation.to_string(), input, m.status)
        }
    };
    let (account, region) = match &sig {
        Some(s) => (
            account_for_key(
                Some(&s.access_key_id),
                &app.control.config().default_account,
            ),
            s.region.clone(),
        ),
        None => (
            app.control.config().default_account.clone(),
            app.control.config().default_region.clone(),
        ),
    };
    let rc = RequestContext {
        account_id: account,
        region,
        request_id: request_id.clone(),
        access_key_id: sig.as_ref().map(|s| s.access_key_id.clone()),
    };
    // Each call runs in its own task so that a panic becomes a 500 InternalFailure, never a
    // dropped connection.
    let control = app.control.clone();
    let op = operation.clone();
    let rc2 = rc.clone();
    let result = tokio::spawn(async move { control.call(&rc2, service, &op, input).await }).await;
    let result = match result {
        Ok(r) => r,
        Err(join) => Err(AwsError::internal(format!("operation panicked: {join}"))),
    };
    let elapsed = started.elapsed();
    let resp = match result {
        Ok(out) => encode_success(service, &operation, &request_id, &out, rest_status),
        Err(e) => {
            if let Some(cause) = &e.cause {
                tracing::error!(service = service.signing_name(), operation = %operation, code = %e.code, cause = %cause, "operation failed");
            }
            encode_error(Some(service), &request_id, &e)
        }
    };
    tracing::info!(
        service = service.signing_name(),
        operation = %operation,
        status = resp.status().as_u16(),
        duration_us = elapsed.as_micros() as u64,
        account = %rc.account_id,
        region = %rc.region,
        "api call"
    );
    to_body(resp)
}

fn form_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                portico_wire::rest::decode(&k.replace('+', " ")),
                portico_wire::rest::decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

/// A plain response for Portico's own endpoints.
pub fn plain(status: u16, content_type: &str, body: impl Into<Bytes>) -> http::Response<Body> {
    dbody::response(status, content_type, body)
}
