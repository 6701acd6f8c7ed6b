//! HOT PATH. Listener sockets: one bound socket per listener, on the load balancer's own loopback address
//! and the listener's port when that can be bound, else on an allocated port. Accept loops look
//! up their listener in the current snapshot for every connection (NLB) or request (ALB), so a
//! snapshot swap never closes a socket. Removing a listener stops its accept loop; connections
//! already accepted run to completion.

use super::{alb, nlb, Engine, LbKind};
use crate::body::BoxError;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

/// A listener the control plane wants bound.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerBind {
    pub arn: String,
    /// The load balancer's local address (e.g. a 127.x.y.z of its own).
    pub ip: IpAddr,
    pub port: u16,
    pub kind: LbKind,
}

pub(crate) struct BoundListener {
    want: ListenerBind,
    local: SocketAddr,
    task: tokio::task::AbortHandle,
}

pub(crate) type Bound = HashMap<String, BoundListener>;

pub(crate) fn local_address(engine: &Engine, arn: &str) -> Option<SocketAddr> {
    engine.inner.bound.lock().get(arn).map(|b| b.local)
}

pub(crate) fn sync(engine: &Engine, wanted: Vec<ListenerBind>) -> HashMap<String, SocketAddr> {
    let mut bound = engine.inner.bound.lock();
    let keep: HashMap<&str, &ListenerBind> = wanted.iter().map(|w| (w.arn.as_str(), w)).collect();
    bound.retain(|arn, b| {
        let same = keep.get(arn.as_str()).is_some_and(|w| **w == b.want);
        if !same {
            b.task.abort();
        }
        same
    });
    for w in wanted {
        if bound.contains_key(&w.arn) {
            continue;
        }
        let Some(listener) = bind_one(w.ip, w.port) else {
            tracing::warn!(listener = %w.arn, ip = %w.ip, port = w.port, "cannot bind listener");
            continue;
        };
        let Ok(local) = listener.local_addr() else {
            continue;
        };
        let task = match w.kind {
            LbKind::Application => {
                tokio::spawn(accept_http(engine.clone(), w.arn.clone(), listener))
            }
            LbKind::Network => tokio::spawn(accept_tcp(engine.clone(), w.arn.clone(), listener)),
        }
        .abort_handle();
        tracing::info!(listener = %w.arn, address = %local, "load balancer listener bound");
        bound.insert(
            w.arn.clone(),
            BoundListener {
                want: w,
                local,
                task,
            },
        );
    }
    bound.iter().map(|(k, b)| (k.clone(), b.local)).collect()
}

/// Binds `ip:port`, else `ip:0`, else `127.0.0.1:0`.
fn bind_one(ip: IpAddr, port: u16) -> Option<tokio::net::TcpListener> {
    let candidates = [
        SocketAddr::new(ip, port),
        SocketAddr::new(ip, 0),
        SocketAddr::new(IpAddr::from([127, 0, 0, 1]), 0),
    ];
    candidates.iter().find_map(|a| {
        let l = std::net::TcpListener::bind(a).ok()?;
        l.set_nonblocking(true).ok()?;
        tokio::net::TcpListener::from_std(l).ok()
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
        crate::workers::spawn_connection(stream, move |stream| async move {
            let svc =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let engine = engine.clone();
                    let arn = arn.clone();
                    async move {
                        let req = req.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed());
                        Ok::<_, std::convert::Infallible>(
                            alb::serve_on(&engine, &arn, req, remote).await,
                        )
                    }
                });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
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
