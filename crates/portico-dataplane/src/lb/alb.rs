//! HOT PATH
//! The ALB HTTP proxy. The life of a request: load the snapshot -> reject what an ALB rejects
//! (TRACE) -> select the rule (lowest matching priority) -> run its action: fixed response,
//! redirect, or forward (pick a target group by weight or stickiness cookie, pick a target among
//! healthy ones or fail open, rewrite headers, send over a pooled keep-alive connection, TLS
//! for HTTPS target groups) ->
//! map failures to AWS's pages: no target 503, refused/reset/malformed 502, timeouts 504.

use super::rules::{self, RequestFacts};
use super::{pool, Action, Engine, GroupRt, ListenerRt, Rt, XffMode};
use crate::body::{full, Body};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// An ALB-generated page, with `Server: awselb/2.0`.
pub(crate) fn page(status: u16) -> Response<Body> {
    let reason = match status {
        400 => "400 Bad Request",
        405 => "405 Method Not Allowed",
        408 => "408 Request Time-out",
        502 => "502 Bad Gateway",
        503 => "503 Service Temporarily Unavailable",
        504 => "504 Gateway Time-out",
        _ => "500 Internal Server Error",
    };
    let body = format!(
        "<html>\r\n<head><title>{reason}</title></head>\r\n<body>\r\n<center><h1>{reason}</h1></center>\r\n</body>\r\n</html>\r\n"
    );
    let mut r = Response::new(full(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert(header::SERVER, HeaderValue::from_static("awselb/2.0"));
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    r
}

/// A request that arrived on a listener socket.
pub(crate) async fn serve_on(
    engine: &Engine,
    arn: &str,
    req: Request<Body>,
    remote: SocketAddr,
) -> Response<Body> {
    let rt = engine.rt();
    match rt.listeners.get(arn).cloned() {
        Some(l) => serve(engine, &rt, &l, req, remote, None).await,
        None => page(503),
    }
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
const X_AMZN_TRACE_ID: HeaderName = HeaderName::from_static("x-amzn-trace-id");

/// Hop-by-hop headers, as names (removing by `&str` would parse the name every time).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

fn strip_hop_by_hop(h: &mut HeaderMap) {
    // One pass over the (few) headers finds what is there to remove, as a bit per entry of
    // HOP_BY_HOP (bit 8: Transfer-Encoding); only those are removed (a removal hashes the
    // name, and the usual response has just `Connection: keep-alive`).
    let mut found: u16 = 0;
    let mut names_others = false;
    for (k, v) in h.iter() {
        if k == header::CONNECTION {
            found |= 1;
            // Headers named by `Connection` are hop-by-hop too. The usual values
            // (`keep-alive`, `close`) name nothing else.
            names_others |= v
                .to_str()
                .map(|v| {
                    v.split(',').map(str::trim).any(|n| {
                        !n.is_empty()
                            && !n.eq_ignore_ascii_case("keep-alive")
                            && !n.eq_ignore_ascii_case("close")
                    })
                })
                .unwrap_or(false);
        } else if !matches!(k.as_str().len(), 2 | 7 | 10 | 16..=19) {
            // no hop-by-hop name has this length (a cheap filter before comparing names)
        } else if k == header::TRANSFER_ENCODING {
            found |= 1 << HOP_BY_HOP.len();
        } else if let Some(i) = HOP_BY_HOP.iter().position(|n| n == k) {
            found |= 1 << i;
        }
    }
    if found == 0 {
        return;
    }
    if names_others {
        let named: Vec<HeaderName> = h
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
            .collect();
        for n in named {
            h.remove(n);
        }
    }
    for (i, n) in HOP_BY_HOP.iter().enumerate() {
        if found & (1 << i) != 0 {
            h.remove(n);
        }
    }
    if found & (1 << HOP_BY_HOP.len()) != 0 {
        h.remove(header::TRANSFER_ENCODING);
    }
}

/// Serves one request on listener `l`. `outer` is the timeout of a caller that waits for the
/// answer (an HTTP API's integration timeout on the in-process VPC-link path): when it cannot
/// be longer than the load balancer's idle timeout, that timer could never fire first and is
/// not armed.
pub(crate) async fn serve(
    engine: &Engine,
    rt: &Rt,
    l: &Arc<ListenerRt>,
    req: Request<Body>,
    remote: SocketAddr,
    outer: Option<super::LinkCall>,
) -> Response<Body> {
    if req.method() == http::Method::TRACE {
        return page(405);
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    let facts = RequestFacts {
        method: req.method().as_str(),
        host,
        path: req.uri().path(),
        query: req.uri().query(),
        headers: req.headers(),
        source: remote.ip(),
    };
    let Some(rule) = rules::select(&l.spec.rules, &facts) else {
        return page(503);
    };
    match &rule.action {
        Action::Fixed {
            status,
            content_type,
            body,
        } => {
            let mut r = Response::new(full(body.clone()));
            *r.status_mut() = StatusCode::from_u16(*status).unwrap_or(StatusCode::OK);
            let h = r.headers_mut();
            h.insert(header::SERVER, HeaderValue::from_static("awselb/2.0"));
            if let Some(v) = content_type
                .as_deref()
                .and_then(|c| HeaderValue::from_str(c).ok())
            {
                h.insert(header::CONTENT_TYPE, v);
            }
            r
        }
        Action::Redirect(rd) => {
            let loc = rules::redirect_location(rd, &facts, &l.spec.protocol, l.spec.port);
            let mut r = Response::new(crate::body::empty());
            *r.status_mut() = if rd.permanent {
                StatusCode::MOVED_PERMANENTLY
            } else {
                StatusCode::FOUND
            };
            let h = r.headers_mut();
            h.insert(header::SERVER, HeaderValue::from_static("awselb/2.0"));
            if let Ok(v) = HeaderValue::from_str(&loc) {
                h.insert(header::LOCATION, v);
            }
            r
        }
        Action::Forward(fwd) => {
            // Target-group stickiness: a valid AWSALBTG cookie names the group.
            let cookie_tg = fwd
                .stickiness
                .and_then(|_| cookie(req.headers(), "AWSALBTG"))
                .and_then(|v| {
                    fwd.groups
                        .iter()
                        .position(|(arn, w)| *w > 0 && token(arn) == v)
                });
            let idx = match (cookie_tg, fwd.groups.as_slice()) {
                (Some(i), _) => Some(i),
                // one group: no draw needed
                (None, [(_, w)]) => (*w > 0).then_some(0),
                (None, groups) => {
                    let weights: Vec<u32> = groups.iter().map(|g| g.1).collect();
                    rules::pick_weighted(&weights, crate::rng::random::<u64>())
                }
            };
            let Some(idx) = idx else { return page(503) };
            let tg_arn = &fwd.groups[idx].0;
            let Some(group) = rt.groups.get(tg_arn) else {
                return page(503);
            };
            let mut resp = forward(engine, l, group, req, remote, outer).await;
            if let (Some(d), None) = (fwd.stickiness, cookie_tg) {
                set_cookie(&mut resp, "AWSALBTG", &token(tg_arn), d);
            }
            resp
        }
    }
}

/// A stable opaque token for a cookie value.
fn token(s: &str) -> String {
    // FNV-1a: stable across runs, so cookies survive restarts.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn cookie(h: &HeaderMap, name: &str) -> Option<String> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn set_cookie(r: &mut Response<Body>, name: &str, value: &str, d: Duration) {
    let secs = d.as_secs();
    for (n, extra) in [
        (name.to_string(), ""),
        (format!("{name}CORS"), "; SameSite=None; Secure"),
    ] {
        if let Ok(v) = HeaderValue::from_str(&format!("{n}={value}; Max-Age={secs}; Path=/{extra}"))
        {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
}

/// Decrements a target's in-flight count when the response body is done (or dropped).
struct InFlight(Arc<super::TargetState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn forward(
    engine: &Engine,
    l: &ListenerRt,
    group: &GroupRt,
    req: Request<Body>,
    remote: SocketAddr,
    outer: Option<super::LinkCall>,
) -> Response<Body> {
    let eligible = group.eligible();
    // Target stickiness (lb_cookie): a valid AWSALB cookie names an eligible target.
    let sticky = group.spec.stickiness.and_then(|_| {
        let v = cookie(req.headers(), "AWSALB")?;
        eligible
            .iter()
            .copied()
            .find(|t| token(&format!("{}:{}", t.ip, t.port)) == v)
    });
    let Some(target) = sticky.or_else(|| group.pick(&eligible)) else {
        return page(503);
    };
    if target.state.blocked.load(Ordering::Relaxed) {
        // security groups drop the connection attempt: the connect timeout ends it
        let wait = pool::CONNECT_TIMEOUT.min(l.lb.idle_timeout);
        return tokio::select! {
            _ = tokio::time::sleep(wait) => page(504),
            _ = target.state.left() => page(502),
        };
    }
    let Some(addr) = engine
        .addresses()
        .and_then(|b| b.resolve(target.ip, target.port))
    else {
        return page(502);
    };
    let lb = &l.lb;
    let (mut parts, body) = req.into_parts();
    // Origin form (`/path?query`) on the wire to the target.
    let uri = http::Uri::from(
        parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/")),
    );
    if !outer.is_some_and(|o| o.clean) {
        strip_hop_by_hop(&mut parts.headers);
    }
    // Host: ports 80/443 drop a `:port`; other ports gain the listener port.
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .and_then(|host| {
            let new = if lb.preserve_host {
                Cow::Borrowed(host)
            } else {
                let bare = rules::strip_port(host);
                if l.spec.port == 80 || l.spec.port == 443 {
                    Cow::Borrowed(bare)
                } else if bare.len() == host.len() {
                    Cow::Owned(format!("{host}:{}", l.spec.port))
                } else {
                    Cow::Borrowed(host)
                }
            };
            HeaderValue::from_str(&new).ok()
        });
    parts.uri = uri;
    parts.version = http::Version::HTTP_11;
    let h = &mut parts.headers;
    if let Some(v) = host {
        h.insert(header::HOST, v);
    }
    match lb.xff_mode {
        XffMode::Append => {
            let mut new = String::with_capacity(48);
            if let Some(prev) = h
                .get(&X_FORWARDED_FOR)
                .and_then(|v| v.to_str().ok())
                .filter(|p| !p.trim().is_empty())
            {
                new.push_str(prev);
                new.push_str(", ");
            }
            // the client's address, with its port when the attribute asks for it
            if lb.xff_client_port && remote.port() != 0 {
                let _ = match remote {
                    SocketAddr::V4(a) => write!(new, "{a}"),
                    SocketAddr::V6(a) => write!(new, "[{}]:{}", a.ip(), a.port()),
                };
            } else {
                crate::text::push_ip(&mut new, remote.ip());
            }
            if let Ok(v) = HeaderValue::from_maybe_shared(Bytes::from(new)) {
                h.insert(X_FORWARDED_FOR, v);
            }
        }
        XffMode::Preserve => {}
        XffMode::Remove => {
            h.remove(&X_FORWARDED_FOR);
        }
    }
    let proto = if l.spec.protocol == "HTTPS" {
        "https"
    } else {
        "http"
    };
    h.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    h.insert(
        X_FORWARDED_PORT,
        match l.spec.port {
            80 => HeaderValue::from_static("80"),
            443 => HeaderValue::from_static("443"),
            p => HeaderValue::from(p),
        },
    );
    let trace = trace_id(
        h.get(&X_AMZN_TRACE_ID).and_then(|v| v.to_str().ok()),
        outer.map(|o| o.epoch_secs),
    );
    if let Ok(v) = HeaderValue::from_maybe_shared(Bytes::from(trace)) {
        h.insert(X_AMZN_TRACE_ID, v);
    }
    let upstream = Request::from_parts(parts, body);

    target.state.inflight.fetch_add(1, Ordering::Relaxed);
    let guard = InFlight(target.state.clone());
    let sticky_cookie = group
        .spec
        .stickiness
        .filter(|_| sticky.is_none())
        .map(|d| (token(&format!("{}:{}", target.ip, target.port)), d));
    let pool = &engine.inner.pool;
    let state = target.state.clone();
    // HTTPS target groups: the same exchange over TLS (a failed handshake is a 502)
    let tls = group.spec.protocol == "HTTPS";
    // both futures pinned in place: `timeout()` and `select!` then move pointers, not them
    let exchange = std::pin::pin!(async {
        let up = if tls {
            pool.checkout_tls(addr).await?
        } else {
            pool.checkout(addr).await?
        };
        up.send(upstream).await
    });
    let timed = std::pin::pin!(async {
        if outer.is_some_and(|o| o.timeout <= lb.idle_timeout) {
            Ok(exchange.await)
        } else {
            tokio::time::timeout(lb.idle_timeout, exchange).await
        }
    });
    let result = tokio::select! {
        r = timed => r,
        // The draining delay ended (or the target was removed) with the request in flight.
        _ = state.left() => return page(502),
    };
    let (mut parts, ex) = match result {
        Err(_) | Ok(Err(pool::Failure::Timeout)) => return page(504),
        Ok(Err(pool::Failure::Bad)) => return page(502),
        Ok(Ok(x)) => x,
    };
    strip_hop_by_hop(&mut parts.headers);
    let body = ex.body(pool, addr, guard);
    let mut r = Response::from_parts(parts, body);
    if let Some((v, d)) = sticky_cookie {
        set_cookie(&mut r, "AWSALB", &v, d);
    }
    r
}

/// `X-Amzn-Trace-Id`: a fresh `Root` when absent; with a `Root`, a new `Self` in front.
/// `now_secs`: the request's time when the caller knows it (else the clock is read).
fn trace_id(incoming: Option<&str>, now_secs: Option<u64>) -> String {
    // `1-` + 8 hex digits of epoch seconds + `-` + 24 hex digits of randomness
    let fresh = |out: &mut String| {
        let secs = now_secs.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
        crate::text::push_trace_id(out, secs);
    };
    match incoming {
        // the usual case (an HTTP API's `Root=...` alone): `Self=...;` in front, nothing to split
        Some(t) if t.starts_with("Root=") && !t.contains(';') && !t.ends_with([' ', '\t']) => {
            // `Self=` + 35 + `;` + t: exact, so pushing never reallocates
            let mut out = String::with_capacity(t.len() + 41);
            out.push_str("Self=");
            fresh(&mut out);
            out.push(';');
            out.push_str(t);
            out
        }
        Some(t) if t.contains("Root=") => {
            let mut out = String::with_capacity(t.len() + 41);
            out.push_str("Self=");
            fresh(&mut out);
            for f in t
                .split(';')
                .map(str::trim)
                .filter(|f| !f.starts_with("Self="))
            {
                out.push(';');
                out.push_str(f);
            }
            if !out.contains(';') {
                // nothing but `Self` fields: the joined rest is empty
                out.push(';');
            }
            out
        }
        _ => {
            let mut out = String::with_capacity(40);
            out.push_str("Root=");
            fresh(&mut out);
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids() {
        let t = trace_id(None, None);
        assert!(t.starts_with("Root=1-") && t.len() == "Root=1-".len() + 8 + 1 + 24);
        let t = trace_id(Some("Root=1-abc-def;CalledFrom=app"), None);
        assert!(t.starts_with("Self=1-"));
        assert!(t.ends_with(";Root=1-abc-def;CalledFrom=app"));
        // the caller's time (an HTTP API's request time) is used when given
        let t = trace_id(Some("Root=1-abc-def"), Some(1_738_318_530));
        assert!(t.starts_with("Self=1-679ca2c2-") && t.ends_with(";Root=1-abc-def"));
        assert_eq!(t.matches(';').count(), 1);
        let t2 = trace_id(Some(&t), None);
        assert_eq!(t2.matches("Self=").count(), 1);
    }

    #[test]
    fn pages_are_awselb() {
        let p = page(503);
        assert_eq!(p.status(), 503);
        assert_eq!(p.headers()[header::SERVER], "awselb/2.0");
    }

    #[test]
    fn hop_by_hop_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("x-keep", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert!(h.get("x-secret").is_none() && h.get(header::CONNECTION).is_none());
        assert!(h.get("x-keep").is_some());
    }

    /// The straightforward rule: every hop-by-hop name, Transfer-Encoding and every name that
    /// `Connection` lists is removed; nothing else changes.
    fn strip_reference(h: &mut HeaderMap) {
        let named: Vec<HeaderName> = h
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
            .collect();
        for n in named.iter().chain(&HOP_BY_HOP) {
            h.remove(n);
        }
        h.remove(header::TRANSFER_ENCODING);
    }

    proptest::proptest! {
        #[test]
        fn hop_by_hop_removal_matches_the_reference(
            picks in proptest::collection::vec((0usize..14, 0usize..6), 0..12)
        ) {
            const NAMES: [&str; 14] = [
                "connection", "keep-alive", "proxy-connection", "proxy-authenticate",
                "proxy-authorization", "te", "trailer", "upgrade", "transfer-encoding", "host",
                "x-secret", "x-keep", "content-type", "cookie",
            ];
            const VALUES: [&str; 6] = [
                "keep-alive", "close", "Keep-Alive, x-secret", "x-keep,  ", "upgrade", "1",
            ];
            let mut h = HeaderMap::new();
            for (n, v) in picks {
                h.append(
                    HeaderName::from_static(NAMES[n]),
                    HeaderValue::from_static(VALUES[v]),
                );
            }
            let mut want = h.clone();
            strip_reference(&mut want);
            strip_hop_by_hop(&mut h);
            proptest::prop_assert_eq!(h, want);
        }
    }
}
