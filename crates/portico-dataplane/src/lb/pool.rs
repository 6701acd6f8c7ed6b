//! HOT PATH
//! Keep-alive HTTP/1.1 connections to targets, spoken directly on the socket: the request head
//! is written into a buffer and sent with its first body bytes in one `writev`, the response
//! head is parsed with httparse (`h1`), and the response body is decoded as the client side
//! reads it, all inside the task that serves the client request. No connection task, no
//! channel between a request sender and a connection driver, no wake-up between them (hyper's
//! client dispatch cost a mpsc + oneshot round trip per request; see
//! docs/dataplane-performance.md). A connection goes back to the pool when its response has
//! been read to the end and the request body was sent in full.
//!
//! Targets of HTTPS target groups get the same exchange over TLS (`checkout_tls`; the target's
//! certificate is not validated, as on AWS). TLS and plain connections idle in separate maps,
//! so they never mix; the plain path is unchanged but for one enum match per socket call.

mod h1;

use crate::body::BoxError;
use bytes::{Bytes, BytesMut};
use h1::{BodyLen, Chunk, ChunkedDecoder, ReqFraming, RespFraming};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Frame, SizeHint};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::future::Future;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The socket under a connection: plain TCP, or TLS to a target of an HTTPS target group (boxed:
/// the TLS state is large and the plain arm should not pay for its size).
pub(crate) enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// TLS that API Gateway opened to a listener for one request, its certificate checked
    /// against one `serverNameToVerify`: never pooled, so a connection checked for one name
    /// never serves another.
    Link(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Conn {
    /// Pushes out what TLS buffered when the socket did not take it all (a plain socket buffers
    /// nothing: ready at once).
    #[inline]
    fn poll_flush_tls(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self {
            Conn::Plain(_) => Poll::Ready(Ok(())),
            Conn::Tls(t) | Conn::Link(t) => Pin::new(&mut **t).poll_flush(cx),
        }
    }
}

impl AsyncRead for Conn {
    #[inline]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(t) | Conn::Link(t) => Pin::new(&mut **t).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    #[inline]
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(t) | Conn::Link(t) => Pin::new(&mut **t).poll_write(cx, buf),
        }
    }

    #[inline]
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Tls(t) | Conn::Link(t) => Pin::new(&mut **t).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.get_mut().poll_flush_tls(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(t) | Conn::Link(t) => Pin::new(&mut **t).poll_shutdown(cx),
        }
    }
}

/// One open HTTP/1.1 connection to a target, idle between requests.
pub(crate) struct Upstream {
    io: Conn,
    /// Bytes read and not yet used (always empty while idle).
    rbuf: BytesMut,
    idle_since: Instant,
}

type Idle = Mutex<crate::FastMap<(usize, SocketAddr), Vec<Upstream>>>;

/// Idle connections per (thread, target address). A connection is only reused on the thread
/// that opened it: its socket is registered with that thread's reactor (see `crate::workers`),
/// so using it elsewhere would turn every readiness event into a cross-thread wake-up.
#[derive(Default)]
pub(crate) struct Pool {
    /// Plain TCP connections.
    idle: Idle,
    /// TLS connections (HTTPS target groups).
    idle_tls: Idle,
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
/// Largest response head accepted (hyper's default read buffer limit).
const MAX_HEAD: usize = 8192 + 4096 * 100;
/// Read buffer: grown by this much when less than `READ_MIN` bytes of room are left.
const READ_CHUNK: usize = 16 * 1024;
const READ_MIN: usize = 4096;
/// Request body bytes queued before writing them (more are read once these are written).
const WRITE_QUEUE: usize = 64 * 1024;

/// Why a request to a target failed, as the ALB reports it.
pub(crate) enum Failure {
    /// Refused, reset, closed, malformed, TLS handshake failed: 502.
    Bad,
    /// Connect not established in time: 504.
    Timeout,
}

/// Reads what the socket has into `buf` (one `read`).
fn poll_fill(
    io: &mut Conn,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<std::io::Result<usize>> {
    if buf.capacity() - buf.len() < READ_MIN {
        buf.reserve(READ_CHUNK);
    }
    pin!(io.read_buf(buf)).poll(cx)
}

/// An idle connection of `idle` to `addr` that is still open.
async fn reuse(idle: &Idle, addr: SocketAddr) -> Option<Upstream> {
    loop {
        let candidate = {
            let mut idle = idle.lock();
            idle.get_mut(&(thread_key(), addr)).and_then(Vec::pop)
        };
        let mut up = candidate?;
        let now = crate::workers::coarse_now().unwrap_or_else(Instant::now);
        if now.saturating_duration_since(up.idle_since) > IDLE_EXPIRY {
            continue;
        }
        // Poll the socket once: a connection the target closed while idle reads EOF here
        // (no syscall when nothing happened: the socket is not readable).
        let open = std::future::poll_fn(|cx| {
            Poll::Ready(poll_fill(&mut up.io, &mut up.rbuf, cx).is_pending())
        })
        .await;
        if open {
            return Some(up);
        }
    }
}

/// A new TCP connection, within AWS's connect timeout.
async fn connect(addr: SocketAddr) -> Result<TcpStream, Failure> {
    let io = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Err(_) => return Err(Failure::Timeout),
        Ok(Err(_)) => return Err(Failure::Bad),
        Ok(Ok(s)) => s,
    };
    let _ = io.set_nodelay(true);
    Ok(io)
}

impl Upstream {
    fn new(io: Conn) -> Self {
        Upstream {
            io,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            idle_since: Instant::now(),
        }
    }
}

impl Pool {
    /// An idle plain connection that is still open, or a new one.
    pub(crate) async fn checkout(self: &Arc<Self>, addr: SocketAddr) -> Result<Upstream, Failure> {
        if let Some(up) = reuse(&self.idle, addr).await {
            return Ok(up);
        }
        Ok(Upstream::new(Conn::Plain(connect(addr).await?)))
    }

    /// The same over TLS (a target of an HTTPS target group): a handshake that fails (the
    /// target speaks plain HTTP, or no TLS version or cipher in common) is a 502.
    pub(crate) async fn checkout_tls(
        self: &Arc<Self>,
        addr: SocketAddr,
    ) -> Result<Upstream, Failure> {
        if let Some(up) = reuse(&self.idle_tls, addr).await {
            return Ok(up);
        }
        let tcp = connect(addr).await?;
        // boxed: the handshake's state would otherwise enlarge every caller's future
        let tls = Box::pin(super::tls::connect_target(tcp, addr))
            .await
            .ok_or(Failure::Bad)?;
        Ok(Upstream::new(Conn::Tls(Box::new(tls))))
    }

    /// A connection API Gateway opens to a listener for a private integration with a
    /// `tlsConfig`: TLS with `serverNameToVerify` as SNI, the certificate's name checked (see
    /// `tls::link_handshake`). Used once, never pooled.
    pub(crate) async fn open_link(
        addr: SocketAddr,
        link: &super::tls::LinkTls,
    ) -> Result<Upstream, String> {
        let tcp = connect(addr).await.map_err(|f| match f {
            Failure::Timeout => "connecting to the listener timed out".to_string(),
            Failure::Bad => "the listener refused the connection".to_string(),
        })?;
        let tls = super::tls::connect_link(tcp, link).await?;
        Ok(Upstream::new(Conn::Link(Box::new(tls))))
    }

    fn checkin(&self, addr: SocketAddr, mut up: Upstream) {
        // no clock read on a worker (`coarse_now`), one elsewhere (not one per idle
        // connection): a read costs ~1% of a request's CPU on a VM
        let now = crate::workers::coarse_now().unwrap_or_else(Instant::now);
        up.idle_since = now;
        let idle = match up.io {
            Conn::Plain(_) => &self.idle,
            Conn::Tls(_) => &self.idle_tls,
            Conn::Link(_) => return,
        };
        let mut idle = idle.lock();
        let list = idle.entry((thread_key(), addr)).or_default();
        list.retain(|u| now.saturating_duration_since(u.idle_since) <= IDLE_EXPIRY);
        if list.len() < MAX_IDLE_PER_TARGET {
            list.push(up);
        }
    }
}

/// Sends a request's head and body: queued bytes are written with `writev`, the body is read
/// as the socket takes it.
struct Writer {
    queue: VecDeque<Bytes>,
    queued: usize,
    body: Option<crate::body::Body>,
    framing: ReqFraming,
    /// Bytes the body may still carry (length framing).
    left: u64,
}

impl Writer {
    fn push(&mut self, b: Bytes) {
        self.queued += b.len();
        self.queue.push_back(b);
    }

    fn push_data(&mut self, d: Bytes) -> Result<(), ()> {
        match self.framing {
            ReqFraming::Length(_) => {
                // more than the declared length: refused (hyper refuses it too)
                self.left = self.left.checked_sub(d.len() as u64).ok_or(())?;
                self.push(d);
            }
            ReqFraming::Chunked => {
                self.push(Bytes::from(format!("{:x}\r\n", d.len())));
                self.push(d);
                self.push(Bytes::from_static(b"\r\n"));
            }
        }
        Ok(())
    }

    /// Ready(Ok) once everything was written; Ready(Err) when the body or the socket failed.
    fn poll(&mut self, io: &mut Conn, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        loop {
            if let (Some(body), true) = (&mut self.body, self.queued < WRITE_QUEUE) {
                match Pin::new(body).poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => {
                        if let Ok(d) = frame.into_data() {
                            if !d.is_empty() {
                                self.push_data(d)?;
                            }
                        }
                        continue;
                    }
                    Poll::Ready(Some(Err(_))) => return Poll::Ready(Err(())),
                    Poll::Ready(None) => {
                        self.body = None;
                        match self.framing {
                            ReqFraming::Chunked => self.push(Bytes::from_static(b"0\r\n\r\n")),
                            ReqFraming::Length(_) if self.left != 0 => return Poll::Ready(Err(())),
                            ReqFraming::Length(_) => {}
                        }
                        continue;
                    }
                    Poll::Pending if self.queue.is_empty() => return Poll::Pending,
                    Poll::Pending => {}
                }
            }
            if self.queue.is_empty() {
                // TLS may hold records the socket did not take yet
                if ready!(io.poll_flush_tls(cx)).is_err() {
                    return Poll::Ready(Err(()));
                }
                return if self.body.is_none() {
                    Poll::Ready(Ok(()))
                } else {
                    // the queue is full of nothing: only reachable with an empty queue and a
                    // body that was not polled, which the branch above rules out
                    Poll::Pending
                };
            }
            let mut slices = [IoSlice::new(&[]); 8];
            let n = self.queue.len().min(slices.len());
            for (s, b) in slices.iter_mut().zip(self.queue.iter()) {
                *s = IoSlice::new(b);
            }
            let written = match ready!(Pin::new(&mut *io).poll_write_vectored(cx, &slices[..n])) {
                Ok(0) | Err(_) => return Poll::Ready(Err(())),
                Ok(w) => w,
            };
            self.queued -= written;
            let mut w = written;
            while w > 0 {
                let Some(front) = self.queue.front_mut() else {
                    break;
                };
                if front.len() <= w {
                    w -= front.len();
                    self.queue.pop_front();
                } else {
                    let _ = front.split_to(w);
                    w = 0;
                }
            }
        }
    }
}

/// One request in flight on a connection: the response head has arrived.
pub(crate) struct Exchange {
    up: Upstream,
    /// Still sending the request body (the target answered before reading it all).
    writer: Option<Writer>,
    framing: RespFraming,
    /// The connection may be reused once this exchange ends.
    reusable: bool,
}

impl Upstream {
    /// Sends one request and waits for the response head; the request body is written while
    /// the head is awaited (a target may answer before reading it).
    pub(crate) async fn send(
        mut self,
        req: http::Request<crate::body::Body>,
    ) -> Result<(http::response::Parts, Exchange), Failure> {
        let (parts, body) = req.into_parts();
        let mut headers = parts.headers;
        let len = if body.is_end_stream() {
            BodyLen::Empty
        } else {
            match body.size_hint().exact() {
                Some(n) => BodyLen::Known(n),
                None => BodyLen::Unknown,
            }
        };
        let absolute;
        let target = if parts.uri.scheme().is_some() {
            absolute = parts.uri.to_string();
            absolute.as_str()
        } else {
            parts.uri.path_and_query().map_or("/", |p| p.as_str())
        };
        let mut head = Vec::new();
        let framing = h1::encode_request_head(&parts.method, target, &mut headers, len, &mut head);
        let mut writer = Writer {
            queued: 0,
            queue: VecDeque::new(),
            body: (len != BodyLen::Empty).then_some(body),
            framing,
            left: match framing {
                ReqFraming::Length(n) => n,
                ReqFraming::Chunked => 0,
            },
        };
        writer.push(Bytes::from(head));
        let method = parts.method;
        let mut writing = true;
        let mut write_ok = true;
        let head = std::future::poll_fn(|cx| {
            if writing {
                if let Poll::Ready(r) = writer.poll(&mut self.io, cx) {
                    writing = false;
                    write_ok = r.is_ok();
                }
            }
            loop {
                if !self.rbuf.is_empty() {
                    match h1::parse_response(&mut self.rbuf, &method) {
                        Ok(Some(h)) => return Poll::Ready(Ok(h)),
                        Ok(None) if self.rbuf.len() < MAX_HEAD => {}
                        _ => return Poll::Ready(Err(Failure::Bad)),
                    }
                }
                match ready!(poll_fill(&mut self.io, &mut self.rbuf, cx)) {
                    Ok(0) | Err(_) => return Poll::Ready(Err(Failure::Bad)),
                    Ok(_) => {}
                }
            }
        })
        .await?;
        let ex = Exchange {
            up: self,
            writer: writing.then_some(writer),
            framing: head.framing,
            reusable: head.keep_alive && write_ok,
        };
        Ok((head.parts, ex))
    }
}

impl Exchange {
    /// The response body, decoded as it is read; the connection returns to the pool at its
    /// end. `guard` lives as long as the body.
    pub(crate) fn body<G: Send + Sync + Unpin + 'static>(
        self,
        pool: &Arc<Pool>,
        addr: SocketAddr,
        guard: G,
    ) -> crate::body::Body {
        let state = match self.framing {
            RespFraming::Empty => {
                // Nothing to read (204, 304, HEAD): the connection is free now.
                release(pool, addr, self);
                drop(guard);
                return crate::body::empty();
            }
            RespFraming::Length(n) => BodyState::Length(n),
            RespFraming::Chunked => BodyState::Chunked(ChunkedDecoder::default()),
            RespFraming::Close => BodyState::Close,
        };
        UpstreamBody {
            ex: Some(self),
            state,
            pool: pool.clone(),
            addr,
            _guard: guard,
        }
        .boxed()
    }
}

/// One request over a connection [`Pool::open_link`] opens (its body read as the caller reads
/// it; the connection closes at its end).
pub(crate) async fn send_link(
    pool: &Arc<Pool>,
    addr: SocketAddr,
    req: http::Request<crate::body::Body>,
    link: &super::tls::LinkTls,
) -> Result<http::Response<crate::body::Body>, String> {
    let up = Pool::open_link(addr, link).await?;
    let (parts, ex) = up
        .send(req)
        .await
        .map_err(|_| "the connection through the listener failed".to_string())?;
    Ok(http::Response::from_parts(parts, ex.body(pool, addr, ())))
}

/// Back to the pool if the exchange ended cleanly: request sent in full, response read to its
/// end and nothing more arrived.
fn release(pool: &Pool, addr: SocketAddr, ex: Exchange) {
    if ex.reusable && ex.writer.is_none() && ex.up.rbuf.is_empty() {
        pool.checkin(addr, ex.up);
    }
}

enum BodyState {
    Length(u64),
    Chunked(ChunkedDecoder),
    Close,
    Done,
}

struct UpstreamBody<G> {
    /// None once the body ended (the connection was released or dropped).
    ex: Option<Exchange>,
    state: BodyState,
    pool: Arc<Pool>,
    addr: SocketAddr,
    _guard: G,
}

fn broken(what: &'static str) -> BoxError {
    Box::new(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, what))
}

impl<G: Unpin> UpstreamBody<G> {
    fn end(&mut self) {
        self.state = BodyState::Done;
        if let Some(ex) = self.ex.take() {
            release(&self.pool, self.addr, ex);
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
        loop {
            let Some(ex) = &mut this.ex else {
                return Poll::Ready(None);
            };
            if let Some(w) = &mut ex.writer {
                if let Poll::Ready(r) = w.poll(&mut ex.up.io, cx) {
                    ex.writer = None;
                    ex.reusable &= r.is_ok();
                }
            }
            let buf = &mut ex.up.rbuf;
            match &mut this.state {
                BodyState::Length(0) | BodyState::Done => {
                    this.end();
                    return Poll::Ready(None);
                }
                BodyState::Length(left) => {
                    if !buf.is_empty() {
                        let n = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
                        let data = buf.split_to(n).freeze();
                        *left -= n as u64;
                        if *left == 0 {
                            // the last bytes: free the connection now, the reader may not
                            // poll again once `is_end_stream` says so
                            this.end();
                        }
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                }
                BodyState::Chunked(dec) => match dec.decode(buf) {
                    Ok(Chunk::Data(d)) => return Poll::Ready(Some(Ok(Frame::data(d)))),
                    Ok(Chunk::End(trailers)) => {
                        this.end();
                        return Poll::Ready(
                            (!trailers.is_empty()).then(|| Ok(Frame::trailers(trailers))),
                        );
                    }
                    Ok(Chunk::More) => {}
                    Err(_) => {
                        this.ex = None;
                        return Poll::Ready(Some(Err(broken("malformed chunked body"))));
                    }
                },
                BodyState::Close => {
                    if !buf.is_empty() {
                        let data = buf.split().freeze();
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                }
            }
            match ready!(poll_fill(&mut ex.up.io, &mut ex.up.rbuf, cx)) {
                Ok(0) if matches!(this.state, BodyState::Close) => {
                    this.state = BodyState::Done;
                    this.ex = None;
                    return Poll::Ready(None);
                }
                Ok(0) | Err(_) => {
                    this.ex = None;
                    return Poll::Ready(Some(Err(broken(
                        "the target closed the connection mid-body",
                    ))));
                }
                Ok(_) => {}
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, BodyState::Length(0) | BodyState::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            BodyState::Length(n) => SizeHint::with_exact(n),
            BodyState::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncWriteExt;

    /// A request body of several frames and no known length (sent chunked).
    struct Frames(VecDeque<Bytes>);

    impl hyper::body::Body for Frames {
        type Data = Bytes;
        type Error = BoxError;
        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            Poll::Ready(self.get_mut().0.pop_front().map(|b| Ok(Frame::data(b))))
        }
    }

    /// Reads one request (head and body, chunked or by length) from a raw socket.
    async fn read_request<S: AsyncRead + Unpin>(
        s: &mut S,
        buf: &mut BytesMut,
    ) -> Option<(String, Vec<u8>)> {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8(buf.split_to(end + 4).to_vec()).ok()?;
                let lower = head.to_ascii_lowercase();
                let mut body = Vec::new();
                if lower.contains("transfer-encoding: chunked") {
                    let mut dec = ChunkedDecoder::default();
                    loop {
                        match dec.decode(buf).ok()? {
                            Chunk::Data(d) => body.extend_from_slice(&d),
                            Chunk::End(_) => break,
                            Chunk::More => {
                                if s.read_buf(buf).await.ok()? == 0 {
                                    return None;
                                }
                            }
                        }
                    }
                } else if let Some(l) = lower.split("content-length: ").nth(1) {
                    let n: usize = l.split("\r\n").next()?.parse().ok()?;
                    while buf.len() < n {
                        if s.read_buf(buf).await.ok()? == 0 {
                            return None;
                        }
                    }
                    body = buf.split_to(n).to_vec();
                }
                return Some((head, body));
            }
            if s.read_buf(buf).await.ok()? == 0 {
                return None;
            }
        }
    }

    #[allow(clippy::disallowed_methods, reason = "the body is wrapped in Limited")]
    async fn collect(b: crate::body::Body) -> Vec<u8> {
        http_body_util::Limited::new(b, 8 << 20)
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec()
    }

    #[tokio::test]
    async fn streams_chunked_and_large_bodies_both_ways_and_reuses_the_connection() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let accepts = Arc::new(AtomicUsize::new(0));
        let a2 = accepts.clone();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                a2.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    let mut buf = BytesMut::new();
                    while let Some((head, body)) = read_request(&mut s, &mut buf).await {
                        let reply = if head.starts_with("POST /chunked") {
                            // echo the body back chunked, in two chunks, with a trailer
                            let (a, b) = body.split_at(body.len() / 2);
                            let mut r =
                                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
                            for part in [a, b] {
                                r.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                                r.extend_from_slice(part);
                                r.extend_from_slice(b"\r\n");
                            }
                            r.extend_from_slice(b"0\r\nx-t: 1\r\n\r\n");
                            r
                        } else {
                            let mut r = format!(
                                "HTTP/1.1 201 Created\r\ncontent-length: {}\r\n\r\n",
                                body.len() * 2
                            )
                            .into_bytes();
                            r.extend_from_slice(&body);
                            r.extend_from_slice(&body);
                            r
                        };
                        s.write_all(&reply).await.unwrap();
                    }
                });
            }
        });
        let pool = Arc::new(Pool::default());
        // a chunked request body (unknown length), a chunked response
        let frames: VecDeque<Bytes> = (0..5).map(|i| Bytes::from(vec![b'a' + i; 1000])).collect();
        let want: Vec<u8> = frames.iter().flat_map(|b| b.to_vec()).collect();
        let mut req = http::Request::new(Frames(frames).boxed());
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = "/chunked".parse().unwrap();
        let up = pool.checkout(addr).await.ok().unwrap();
        let (parts, ex) = up.send(req).await.ok().unwrap();
        assert_eq!(parts.status, 200);
        assert_eq!(collect(ex.body(&pool, addr, ())).await, want);
        // a 1 MB request body by length, a 2 MB response by length, on the same connection
        let big = vec![b'z'; 1 << 20];
        let mut req = http::Request::new(crate::body::full(big.clone()));
        *req.method_mut() = http::Method::PUT;
        *req.uri_mut() = "/big".parse().unwrap();
        let up = pool.checkout(addr).await.ok().unwrap();
        let (parts, ex) = up.send(req).await.ok().unwrap();
        assert_eq!(parts.status, 201);
        assert_eq!(parts.headers[http::header::CONTENT_LENGTH], "2097152");
        assert_eq!(collect(ex.body(&pool, addr, ())).await.len(), 2 << 20);
        // and an empty GET
        let up = pool.checkout(addr).await.ok().unwrap();
        let (parts, ex) = up
            .send(http::Request::new(crate::body::empty()))
            .await
            .ok()
            .unwrap();
        assert_eq!(parts.status, 201);
        assert!(collect(ex.body(&pool, addr, ())).await.is_empty());
        assert_eq!(
            accepts.load(Ordering::Relaxed),
            1,
            "one keep-alive connection for all"
        );
    }

    #[allow(clippy::disallowed_methods, reason = "the body is wrapped in Limited")]
    #[tokio::test]
    async fn a_malformed_head_or_an_early_close_fails() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            for reply in [
                &b"HTTP/1.1 200 OK\r\ncontent-length: nope\r\n\r\n"[..],
                b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc",
            ] {
                let (mut s, _) = l.accept().await.unwrap();
                let mut buf = BytesMut::new();
                let _ = read_request(&mut s, &mut buf).await;
                s.write_all(reply).await.unwrap();
            }
        });
        let pool = Arc::new(Pool::default());
        let up = pool.checkout(addr).await.ok().unwrap();
        assert!(up
            .send(http::Request::new(crate::body::empty()))
            .await
            .is_err());
        let up = pool.checkout(addr).await.ok().unwrap();
        let (_, ex) = up
            .send(http::Request::new(crate::body::empty()))
            .await
            .ok()
            .unwrap();
        assert!(http_body_util::Limited::new(ex.body(&pool, addr, ()), 1024)
            .collect()
            .await
            .is_err());
    }

    /// An HTTPS target: TLS with a self-signed certificate, keep-alive, answers each request
    /// with its body length and whether it came over TLS. Counts accepted connections.
    async fn tls_target() -> (SocketAddr, Arc<AtomicUsize>) {
        let spec = super::super::tls::TlsSpec {
            certificates: vec![super::super::tls::self_signed("target.internal").unwrap()],
            alpn: vec![],
            tls13_only: false,
        };
        let acceptor = super::super::tls::acceptor(&spec).unwrap();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let accepts = Arc::new(AtomicUsize::new(0));
        let a2 = accepts.clone();
        tokio::spawn(async move {
            loop {
                let (s, _) = l.accept().await.unwrap();
                a2.fetch_add(1, Ordering::Relaxed);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut s) = acceptor.accept(s).await else {
                        return;
                    };
                    let mut buf = BytesMut::new();
                    while let Some((_, body)) = read_request(&mut s, &mut buf).await {
                        let text = format!("tls {}", body.len());
                        let reply = format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{text}",
                            text.len()
                        );
                        s.write_all(reply.as_bytes()).await.unwrap();
                    }
                });
            }
        });
        (addr, accepts)
    }

    #[tokio::test]
    async fn https_targets_get_tls_with_keep_alive_apart_from_plain_connections() {
        let (addr, accepts) = tls_target().await;
        let pool = Arc::new(Pool::default());
        for body in [vec![], vec![b'x'; 3 << 20], vec![b'y'; 10]] {
            let n = body.len();
            let mut req = http::Request::new(crate::body::full(body));
            *req.method_mut() = http::Method::POST;
            let up = pool.checkout_tls(addr).await.ok().unwrap();
            let (parts, ex) = up.send(req).await.ok().unwrap();
            assert_eq!(parts.status, 200);
            assert_eq!(
                collect(ex.body(&pool, addr, ())).await,
                format!("tls {n}").into_bytes()
            );
        }
        assert_eq!(
            accepts.load(Ordering::Relaxed),
            1,
            "one TLS connection reused"
        );
        // a plain checkout never gets the idle TLS connection: it opens its own, and the
        // target's TLS acceptor refuses what it says
        let up = pool.checkout(addr).await.ok().unwrap();
        assert!(up
            .send(http::Request::new(crate::body::empty()))
            .await
            .is_err());
        assert_eq!(accepts.load(Ordering::Relaxed), 2);
        assert_eq!(
            pool.idle_tls.lock().values().map(Vec::len).sum::<usize>(),
            1
        );
    }

    #[tokio::test]
    async fn link_connections_are_used_once_and_never_pooled() {
        let (addr, accepts) = tls_target().await;
        let pool = Arc::new(Pool::default());
        let link = super::super::tls::LinkTls {
            server_name: Some("target.internal".into()),
        };
        for _ in 0..2 {
            let r = send_link(&pool, addr, http::Request::new(crate::body::empty()), &link)
                .await
                .unwrap();
            assert_eq!(collect(r.into_body()).await, b"tls 0");
        }
        assert_eq!(accepts.load(Ordering::Relaxed), 2);
        assert!(pool.idle_tls.lock().values().all(Vec::is_empty));
    }

    #[tokio::test]
    async fn a_plain_target_fails_the_tls_handshake() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = BytesMut::new();
                    // what a plain HTTP server says to a ClientHello
                    let _ = s.read_buf(&mut buf).await;
                    let _ = s
                        .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                        .await;
                });
            }
        });
        let pool = Arc::new(Pool::default());
        assert!(matches!(pool.checkout_tls(addr).await, Err(Failure::Bad)));
    }
}
