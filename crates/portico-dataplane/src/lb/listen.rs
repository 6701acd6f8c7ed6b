//! HOT PATH. Listener sockets: one bound socket per listener, on the load balancer's own loopback address
//! and the listener's port when that can be bound, else on an allocated port. Accept loops look
//! up their listener in the current snapshot for every connection (NLB) or request (ALB), so a
//! snapshot swap never closes a socket. Removing a listener stops its accept loop; connections
//! already accepted run to completion. UDP listeners bind a UDP socket; TCP_UDP listeners bind
//! TCP and UDP on the same port. HTTPS listeners terminate TLS before HTTP, and answer a plain
//! request with the ALB's 400 page.

use super::{alb, nlb, udp, Engine, LbKind};
use crate::body::{Body, BoxError};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// A listener the control plane wants bound.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerBind {
    pub arn: String,
    /// The load balancer's local address (e.g. a 127.x.y.z of its own).
    pub ip: IpAddr,
    pub port: u16,
    pub kind: LbKind,
    /// The listener protocol: `UDP` binds UDP, `TCP_UDP` binds both, others bind TCP.
    pub protocol: String,
    /// Idle timeout of UDP flows.
    pub udp_idle_timeout: std::time::Duration,
}

pub(crate) struct BoundListener {
    want: ListenerBind,
    local: SocketAddr,
    tasks: Vec<tokio::task::AbortHandle>,
}

impl Drop for BoundListener {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The bound sockets of one listener.
enum Sockets {
    Tcp(tokio::net::TcpListener),
    Udp(tokio::net::UdpSocket),
    Both(tokio::net::TcpListener, tokio::net::UdpSocket),
}

/// The bound listeners, and the addresses given up recently (listener deleted or changed):
/// those are rebound only on their exact port for a short while, because the old sockets close
/// only once the runtime has cancelled their tasks.
#[derive(Default)]
pub(crate) struct Bound {
    listeners: HashMap<String, BoundListener>,
    released: HashMap<(IpAddr, u16), std::time::Instant>,
}

/// How long a released address is waited for before a listener falls back to another port.
const REBIND_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

pub(crate) fn local_address(engine: &Engine, arn: &str) -> Option<SocketAddr> {
    engine
        .inner
        .bound
        .lock()
        .listeners
        .get(arn)
        .map(|b| b.local)
}

pub(crate) fn sync(engine: &Engine, wanted: Vec<ListenerBind>) -> HashMap<String, SocketAddr> {
    let mut guard = engine.inner.bound.lock();
    let Bound {
        listeners: bound,
        released,
    } = &mut *guard;
    let keep: HashMap<&str, &ListenerBind> = wanted.iter().map(|w| (w.arn.as_str(), w)).collect();
    // Dropping a bound listener aborts its tasks (and so closes its sockets, once the runtime
    // has cancelled them).
    let now = std::time::Instant::now();
    released.retain(|_, at| now.duration_since(*at) < REBIND_GRACE);
    bound.retain(|arn, b| {
        let same = keep.get(arn.as_str()).is_some_and(|w| **w == b.want);
        if !same {
            released.insert((b.want.ip, b.want.port), now);
        }
        same
    });
    for w in wanted {
        if bound.contains_key(&w.arn) {
            continue;
        }
        // A listener recreated or changed on a port just given up waits for that port.
        let exact_only = released.contains_key(&(w.ip, w.port));
        let sockets = match w.protocol.as_str() {
            "UDP" => bind_udp(w.ip, w.port, exact_only).map(Sockets::Udp),
            "TCP_UDP" => bind_both(w.ip, w.port, exact_only).map(|(t, u)| Sockets::Both(t, u)),
            _ => bind_one(w.ip, w.port, exact_only).map(Sockets::Tcp),
        };
        let Some(sockets) = sockets else {
            if !exact_only {
                tracing::warn!(listener = %w.arn, ip = %w.ip, port = w.port, "cannot bind listener");
            }
            continue;
        };
        let (tcp, udp_socket) = match sockets {
            Sockets::Tcp(t) => (Some(t), None),
            Sockets::Udp(u) => (None, Some(u)),
            Sockets::Both(t, u) => (Some(t), Some(u)),
        };
        let local = match (&tcp, &udp_socket) {
            (Some(t), _) => t.local_addr(),
            (None, Some(u)) => u.local_addr(),
            (None, None) => continue,
        };
        let Ok(local) = local else {
            continue;
        };
        let mut tasks = Vec::new();
        if let Some(listener) = tcp {
            let task = match w.kind {
                LbKind::Application => {
                    tokio::spawn(accept_http(engine.clone(), w.arn.clone(), listener))
                }
                LbKind::Network => {
                    tokio::spawn(accept_tcp(engine.clone(), w.arn.clone(), listener))
                }
            };
            tasks.push(task.abort_handle());
        }
        if let Some(socket) = udp_socket {
            let idle = if w.udp_idle_timeout.is_zero() {
                udp::UDP_IDLE_TIMEOUT
            } else {
                w.udp_idle_timeout
            };
            let task = tokio::spawn(udp::serve(engine.clone(), w.arn.clone(), socket, idle));
            tasks.push(task.abort_handle());
        }
        released.remove(&(w.ip, w.port));
        tracing::info!(listener = %w.arn, address = %local, protocol = %w.protocol, "load balancer listener bound");
        bound.insert(
            w.arn.clone(),
            BoundListener {
                want: w,
                local,
                tasks,
            },
        );
    }
    bound.iter().map(|(k, b)| (k.clone(), b.local)).collect()
}

/// Where to try binding: `ip:port`, else (unless `exact_only`) `ip:0`, else `127.0.0.1:0`.
fn candidates(ip: IpAddr, port: u16, exact_only: bool) -> Vec<SocketAddr> {
    let mut c = vec![SocketAddr::new(ip, port)];
    if !exact_only {
        c.push(SocketAddr::new(ip, 0));
        c.push(SocketAddr::new(IpAddr::from([127, 0, 0, 1]), 0));
    }
    c
}

/// Binds TCP on the first of [`candidates`] that is free.
fn bind_one(ip: IpAddr, port: u16, exact_only: bool) -> Option<tokio::net::TcpListener> {
    candidates(ip, port, exact_only).iter().find_map(|a| {
        let l = std::net::TcpListener::bind(a).ok()?;
        l.set_nonblocking(true).ok()?;
        tokio::net::TcpListener::from_std(l).ok()
    })
}

fn udp_socket(a: SocketAddr) -> Option<tokio::net::UdpSocket> {
    let s = std::net::UdpSocket::bind(a).ok()?;
    s.set_nonblocking(true).ok()?;
    tokio::net::UdpSocket::from_std(s).ok()
}

/// Binds UDP on the first of [`candidates`] that is free.
fn bind_udp(ip: IpAddr, port: u16, exact_only: bool) -> Option<tokio::net::UdpSocket> {
    candidates(ip, port, exact_only)
        .into_iter()
        .find_map(udp_socket)
}

/// Binds TCP and UDP on one port: `ip:port`, else a port allocated for TCP that UDP can share.
fn bind_both(
    ip: IpAddr,
    port: u16,
    exact_only: bool,
) -> Option<(tokio::net::TcpListener, tokio::net::UdpSocket)> {
    let pair = |ip: IpAddr, port: u16| {
        let t = std::net::TcpListener::bind(SocketAddr::new(ip, port)).ok()?;
        let a = t.local_addr().ok()?;
        let u = udp_socket(a)?;
        t.set_nonblocking(true).ok()?;
        Some((tokio::net::TcpListener::from_std(t).ok()?, u))
    };
    pair(ip, port).or_else(|| {
        if exact_only {
            return None;
        }
        (0..8).find_map(|_| pair(ip, 0).or_else(|| pair(IpAddr::from([127, 0, 0, 1]), 0)))
    })
}

async fn accept_http(engine: Engine, arn: String, listener: tokio::net::TcpListener) {
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "load balancer accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let engine = engine.clone();
        let arn = arn.clone();
        let tls = match engine.inner.rt.load().listeners.get(&arn) {
            Some(l) if l.spec.protocol == "HTTPS" => match &l.tls {
                Some(a) => Some(a.clone()),
                // No usable certificate: the connection cannot be served.
                None => continue,
            },
            _ => None,
        };
        let (fast_engine, fast_arn) = (engine.clone(), arn.clone());
        crate::workers::spawn_connection(stream, move |stream| async move {
            let svc =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let engine = engine.clone();
                    let arn = arn.clone();
                    async move {
                        let req = req.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed());
                        Ok::<_, std::convert::Infallible>(
                            // boxed: hyper moves this future per request (see server.rs)
                            crate::h1server::boxed_in_place(|| {
                                alb::serve_on(&engine, &arn, req, remote)
                            })
                            .await,
                        )
                    }
                });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            match tls {
                None => {
                    // plain HTTP/1.1 by the data plane's own loop, anything else by hyper
                    let engine = fast_engine;
                    let arn: Arc<str> = fast_arn.into();
                    let fast = move |req: http::Request<Body>| {
                        let engine = engine.clone();
                        let arn = arn.clone();
                        Some(Box::pin(async move {
                            // two boxes on purpose (see `dataplane_request` in server.rs)
                            crate::h1server::boxed_in_place(|| {
                                alb::serve_on(&engine, &arn, req, remote)
                            })
                            .await
                        }))
                    };
                    let hyper = move |io| async move {
                        let _ = builder.serve_connection(TokioIo::new(io), svc).await;
                    };
                    // the ALB adds X-Forwarded-For/Proto/Port and a trace id to the request (a
                    // HeaderMap grows at three quarters full)
                    crate::h1server::serve(stream, |_| 8, fast, hyper).await;
                }
                Some(acceptor) => {
                    // The first byte tells a TLS record from a plain request; peeking leaves
                    // it for the acceptor. One deadline covers the wait and the handshake.
                    let accepted = tokio::time::timeout(nlb::HANDSHAKE_TIMEOUT, async {
                        match opening(peek_first(&stream).await) {
                            Opening::Tls => acceptor.accept(stream).await.ok(),
                            Opening::Plain => {
                                answer_plain_on_tls_port(stream).await;
                                None
                            }
                            Opening::Closed => None,
                        }
                    });
                    if let Ok(Some(s)) = accepted.await {
                        let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                    }
                }
            }
        });
    }
}

/// How a connection to an HTTPS listener opens.
#[derive(Debug, PartialEq)]
enum Opening {
    /// A TLS handshake record (content type 22): hand it to the acceptor.
    Tls,
    /// Anything else: a plain-HTTP request sent to the TLS port.
    Plain,
    /// Closed (or failed) before sending a byte.
    Closed,
}

fn opening(first: Option<u8>) -> Opening {
    match first {
        Some(0x16) => Opening::Tls,
        Some(_) => Opening::Plain,
        None => Opening::Closed,
    }
}

/// The connection's first byte, left unread.
async fn peek_first(stream: &tokio::net::TcpStream) -> Option<u8> {
    let mut b = [0u8; 1];
    match stream.peek(&mut b).await {
        Ok(1) => Some(b[0]),
        _ => None,
    }
}

/// Answers a plain-HTTP request on an HTTPS listener as an ALB does: its 400 page "The plain
/// HTTP request was sent to HTTPS port", then closes. hyper reads the request head (and answers
/// a request it cannot parse with its own 400), so the client sees a complete response.
async fn answer_plain_on_tls_port(stream: tokio::net::TcpStream) {
    let svc = hyper::service::service_fn(|_req: http::Request<hyper::body::Incoming>| async {
        Ok::<_, std::convert::Infallible>(super::tls::plain_http_to_https_port())
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), svc)
        .await;
}

async fn accept_tcp(engine: Engine, arn: String, listener: tokio::net::TcpListener) {
    loop {
        let (stream, _remote) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "load balancer accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(nlb::serve(engine.clone(), arn.clone(), stream));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn the_first_byte_tells_tls_from_plain() {
        assert_eq!(opening(Some(0x16)), Opening::Tls);
        assert_eq!(opening(Some(b'G')), Opening::Plain);
        assert_eq!(opening(Some(b'P')), Opening::Plain);
        assert_eq!(opening(None), Opening::Closed);
    }

    #[tokio::test]
    async fn peeking_leaves_the_byte_and_a_plain_request_gets_the_400_page() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
            c.write_all(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
                .await
                .unwrap();
            let mut got = Vec::new();
            c.read_to_end(&mut got).await.unwrap();
            String::from_utf8(got).unwrap()
        });
        let (s, _) = l.accept().await.unwrap();
        assert_eq!(peek_first(&s).await, Some(b'G'));
        assert_eq!(peek_first(&s).await, Some(b'G'), "peek consumes nothing");
        answer_plain_on_tls_port(s).await;
        let got = client.await.unwrap();
        assert!(got.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{got}");
        let lower = got.to_ascii_lowercase();
        assert!(lower.contains("\r\nserver: awselb/2.0\r\n"), "{got}");
        assert!(lower.contains("\r\nconnection: close\r\n"), "{got}");
        assert!(got.contains("<center>The plain HTTP request was sent to HTTPS port</center>"));
    }

    #[tokio::test]
    async fn a_connection_closed_before_a_byte_is_closed() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        drop(tokio::net::TcpStream::connect(addr).await.unwrap());
        let (s, _) = l.accept().await.unwrap();
        assert_eq!(opening(peek_first(&s).await), Opening::Closed);
    }
}
