//! HOT PATH
//! Keep-alive connections to targets, driven inside the task that serves the client request
//! instead of a task of their own: the upstream connection is polled while we wait for the
//! response head and, afterwards, by the response body as the client side reads it. This avoids
//! a cross-task (often cross-thread) wake-up per request, which dominated the proxy's CPU cost.
//! A connection goes back to the pool when its response body has been read to the end.

use crate::body::BoxError;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

type Conn = http1::Connection<TokioIo<TcpStream>, crate::body::Body>;

/// One open HTTP/1.1 connection to a target.
pub(crate) struct Upstream {
    sender: http1::SendRequest<crate::body::Body>,
    conn: Pin<Box<Conn>>,
    /// The connection future has completed (closed, failed, or `Connection: close` served):
    /// never poll it again, never reuse it.
    done: bool,
    idle_since: Instant,
}

impl Upstream {
    /// Polls the connection unless it is done; true when it is (now) done.
    fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.done && self.conn.as_mut().poll(cx).is_ready() {
            self.done = true;
        }
        self.done
    }
}

/// Idle connections per (thread, target address). A connection is only reused on the thread
/// that opened it: its socket is registered with that thread's reactor (see `crate::workers`),
/// so using it elsewhere would turn every readiness event into a cross-thread wake-up.
#[derive(Default)]
pub(crate) struct Pool {
    idle: Mutex<HashMap<(usize, SocketAddr), Vec<Upstream>>>,
}

/// A small number naming the current thread (cheaper than `std::thread::current().id()`).
fn thread_key() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local!(static KEY: usize = NEXT.fetch_add(1, Ordering::Relaxed));
    KEY.with(|k| *k)
}

const MAX_IDLE_PER_TARGET: usize = 64;
const IDLE_EXPIRY: Duration = Duration::from_secs(50);
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a request to a target failed, as the ALB reports it.
pub(crate) enum Failure {
    /// Refused, reset, closed, malformed: 502.
    Bad,
    /// Connect not established in time: 504.
    Timeout,
}

impl Pool {
    /// An idle connection that is still open, or a new one.
    pub(crate) async fn checkout(self: &Arc<Self>, addr: SocketAddr) -> Result<Upstream, Failure> {
        loop {
            let candidate = {
                let mut idle = self.idle.lock();
                idle.get_mut(&(thread_key(), addr)).and_then(Vec::pop)
            };
            let Some(mut up) = candidate else { break };
            if up.idle_since.elapsed() > IDLE_EXPIRY {
                continue;
            }
            // Poll once: a connection the target closed while idle finishes here.
            let closed = std::future::poll_fn(|cx| Poll::Ready(up.drive(cx))).await;
            if !closed && up.sender.is_ready() {
                return Ok(up);
            }
        }
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Err(_) => return Err(Failure::Timeout),
            Ok(Err(_)) => return Err(Failure::Bad),
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| Failure::Bad)?;
        Ok(Upstream {
            sender,
            conn: Box::pin(conn),
            done: false,
            idle_since: Instant::now(),
        })
    }

    fn checkin(&self, addr: SocketAddr, mut up: Upstream) {
        if up.done || !up.sender.is_ready() {
            return;
        }
        up.idle_since = Instant::now();
        let mut idle = self.idle.lock();
        let list = idle.entry((thread_key(), addr)).or_default();
        list.retain(|u| u.idle_since.elapsed() <= IDLE_EXPIRY);
        if list.len() < MAX_IDLE_PER_TARGET {
            list.push(up);
        }
    }
}

impl Upstream {
    /// Sends one request and waits for the response head, driving the connection meanwhile.
    pub(crate) async fn send(
        mut self,
        req: http::Request<crate::body::Body>,
    ) -> Result<(http::Response<Incoming>, Self), Failure> {
        let result = {
            let mut send = std::pin::pin!(self.sender.send_request(req));
            loop {
                tokio::select! {
                    r = &mut send => break r,
                    // Drives the exchange; a connection that ends here has answered (or failed,
                    // which `send` then reports).
                    _ = std::future::poll_fn(|cx| if self.drive(cx) { Poll::Ready(()) } else { Poll::Pending }), if !self.done => {}
                }
            }
        };
        match result {
            Ok(r) => Ok((r, self)),
            Err(_) => Err(Failure::Bad),
        }
    }

    /// The response body, which keeps driving the connection and returns it to the pool at its
    /// end. `guard` lives as long as the body.
    pub(crate) fn body<G: Send + Sync + Unpin + 'static>(
        self,
        pool: &Arc<Pool>,
        addr: SocketAddr,
        body: Incoming,
        guard: G,
    ) -> crate::body::Body {
        if body.is_end_stream() {
            // Nothing to read (204, HEAD, empty): the connection is free now.
            pool.checkin(addr, self);
            drop(guard);
            return crate::body::empty();
        }
        UpstreamBody {
            inner: body,
            up: Some(self),
            pool: pool.clone(),
            addr,
            _guard: guard,
        }
        .boxed()
    }
}

struct UpstreamBody<G> {
    inner: Incoming,
    up: Option<Upstream>,
    pool: Arc<Pool>,
    addr: SocketAddr,
    _guard: G,
}

impl<G: Unpin> UpstreamBody<G> {
    fn release(&mut self, cx: &mut Context<'_>) {
        if let Some(mut up) = self.up.take() {
            // Let the connection finish the message and become idle.
            if !up.drive(cx) {
                self.pool.checkin(self.addr, up);
            }
        }
    }
}

impl<G: Unpin> hyper::body::Body for UpstreamBody<G> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(up) = &mut this.up {
            // Once done (closed, failed, or `Connection: close`), the body below ends on its own.
            up.drive(cx);
        }
        let r = Pin::new(&mut this.inner).poll_frame(cx);
        match &r {
            Poll::Ready(None) => this.release(cx),
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => this.release(cx),
            Poll::Ready(Some(Err(_))) => this.up = None,
            _ => {}
        }
        r.map_err(|e| Box::new(e) as BoxError)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
