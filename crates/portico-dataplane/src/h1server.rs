//! HOT PATH. The data plane's own HTTP/1.1 server loop for the plain keep-alive traffic that
//! almost every data-plane connection carries: a request head parsed with httparse, the engine
//! called with an `http::Request`, the response head encoded as hyper encodes it and written
//! with the body in one `writev`. hyper's server dispatcher cost about a quarter of a hop's
//! user-space instructions (docs/dataplane-performance.md, "Session 4").
//!
//! Anything outside that subset is served by hyper, as before, for the rest of the connection:
//! the bytes read so far are handed over with the socket ([`Prefixed`]). That is a request that
//! is not HTTP/1.1, does not parse, has a body that is chunked, larger than [`MAX_BODY`] or
//! behind `Expect: 100-continue`, asks for an upgrade, is a `HEAD` or `CONNECT`, or that the
//! caller's service declines (the main port serves API calls through hyper). So the subset
//! never answers differently from hyper: errors, 400s for garbage, HTTP/2 and the rest stay
//! hyper's.

use crate::body::Body;
use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::Body as _;
use std::future::Future;
use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// Most headers a request on this path may have (more go to hyper, which allows 100).
const MAX_HEADERS: usize = 64;
/// Largest request head read before handing the connection to hyper (which answers a head
/// that is too large with its 431).
const MAX_HEAD: usize = 16 * 1024;
/// Largest request body read whole before the engine is called; larger bodies stream through
/// hyper.
pub const MAX_BODY: usize = 64 * 1024;

/// A connection's socket with bytes already read from it in front.
pub struct Prefixed {
    prefix: Bytes,
    io: TcpStream,
}

impl Prefixed {
    pub fn new(prefix: Bytes, io: TcpStream) -> Self {
        Prefixed { prefix, io }
    }
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// `Box::pin(make())` with the box allocated first, so that the compiler can build the
/// future in the box instead of building it on the stack and copying it there (an engine's
/// future is several KB, and that copy was the largest `memcpy` per request).
pub fn boxed_in_place<F: Future>(make: impl FnOnce() -> F) -> Pin<Box<F>> {
    Box::into_pin(Box::write(Box::new_uninit(), make()))
}

/// What the head parser found.
#[derive(Debug, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "returned once per request and matched at once"
)]
enum Head {
    /// Need more bytes.
    Partial,
    /// Not for this loop: hyper serves the connection.
    Hyper,
    Simple(Simple),
}

/// A byte range of the read buffer (heads are at most `MAX_HEAD + MAX_BODY` bytes).
type Span = (u32, u32);

/// A request head this loop serves, as offsets into the read buffer.
#[derive(Debug, PartialEq)]
struct Simple {
    head_len: usize,
    method: Method,
    target: Span,
    headers: smallvec::SmallVec<[(Span, Span); 16]>,
    body_len: usize,
    close: bool,
    /// The `Host` value, if any.
    host: Option<Span>,
}

fn offset(buf: &[u8], part: &[u8]) -> Span {
    let start = part.as_ptr() as usize - buf.as_ptr() as usize;
    (start as u32, (start + part.len()) as u32)
}

fn range((s, e): Span) -> std::ops::Range<usize> {
    s as usize..e as usize
}

/// Whether a comma-separated header value lists `token` (case-insensitive).
fn has_token(v: &[u8], token: &str) -> bool {
    v.split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

fn parse(buf: &[u8]) -> Head {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let head_len = match req.parse_with_uninit_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Head::Partial,
        // garbage (hyper's 400), too many headers, HTTP/2's preface: hyper's answers
        Err(_) => return Head::Hyper,
    };
    if req.version != Some(1) {
        return Head::Hyper;
    }
    let method = match req.method {
        Some("GET") => Method::GET,
        Some("POST") => Method::POST,
        Some("PUT") => Method::PUT,
        Some("DELETE") => Method::DELETE,
        Some("PATCH") => Method::PATCH,
        Some("OPTIONS") => Method::OPTIONS,
        // HEAD and CONNECT have their own framing rules; other methods are rare
        _ => return Head::Hyper,
    };
    let Some(path) = req.path else {
        return Head::Hyper;
    };
    let mut headers = smallvec::SmallVec::new();
    let mut body_len: Option<usize> = None;
    let mut close = false;
    let mut host = None;
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        if name.len() == 4 && name.eq_ignore_ascii_case(b"host") {
            host = Some(offset(buf, h.value));
        }
        // the framing and connection headers decide whether this loop can serve the request
        if name.len() == 14 && name.eq_ignore_ascii_case(b"content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<usize>().ok());
            match (n, body_len) {
                (Some(n), None) if n <= MAX_BODY => body_len = Some(n),
                _ => return Head::Hyper,
            }
        } else if (name.len() == 17 && name.eq_ignore_ascii_case(b"transfer-encoding"))
            || (name.len() == 6 && name.eq_ignore_ascii_case(b"expect"))
            || (name.len() == 7 && name.eq_ignore_ascii_case(b"upgrade"))
        {
            return Head::Hyper;
        } else if name.len() == 10 && name.eq_ignore_ascii_case(b"connection") {
            if has_token(h.value, "upgrade") {
                return Head::Hyper;
            }
            close |= has_token(h.value, "close");
        }
        headers.push((offset(buf, name), offset(buf, h.value)));
    }
    Head::Simple(Simple {
        head_len,
        method,
        target: offset(buf, path.as_bytes()),
        headers,
        body_len: body_len.unwrap_or(0),
        close,
        host,
    })
}

/// Builds the request from a parsed head; header values and the body share `raw` (no copy).
/// `None` when a part is not valid for `http` (hyper then answers as it does).
/// `slack`: room for headers the engine adds to this map.
fn request(s: &Simple, raw: &Bytes, slack: usize) -> Option<Request<Body>> {
    let mut headers = HeaderMap::with_capacity(s.headers.len() + slack);
    for &(name, value) in &s.headers {
        let name = HeaderName::from_bytes(&raw[range(name)]).ok()?;
        let value = HeaderValue::from_maybe_shared(raw.slice(range(value))).ok()?;
        headers.append(name, value);
    }
    let uri = Uri::from_maybe_shared(raw.slice(range(s.target))).ok()?;
    let body = crate::body::full(raw.slice(s.head_len..s.head_len + s.body_len));
    let mut req = Request::new(body);
    *req.method_mut() = s.method.clone();
    *req.uri_mut() = uri;
    *req.version_mut() = Version::HTTP_11;
    *req.headers_mut() = headers;
    Some(req)
}

/// Serves `io` with `svc` while its requests are simple (see the module comment); `svc`
/// returning `None` (the request is not the caller's to serve here) or anything outside the
/// subset hands the connection, with the bytes read so far, to `fallback` (hyper).
///
/// `slack(host)` is how many headers the engine for a request with that `Host` value adds to
/// the request's own map (an ALB adds X-Forwarded-* and a trace id in place): the map is
/// made with room for them, since growing a HeaderMap rehashes it (~1.2k instructions per
/// request on the ALB hop), while room that is never used costs its allocation.
pub async fn serve<S, Fut, F, FFut>(
    mut io: TcpStream,
    slack: fn(&[u8]) -> usize,
    mut svc: S,
    fallback: F,
) where
    S: FnMut(Request<Body>) -> Option<Fut>,
    Fut: Future<Output = Response<Body>>,
    F: FnOnce(Prefixed) -> FFut,
    FFut: Future<Output = ()>,
{
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let mut out: Vec<u8> = Vec::with_capacity(512);
    loop {
        let simple = loop {
            if !buf.is_empty() {
                match parse(&buf) {
                    Head::Simple(s) if buf.len() >= s.head_len + s.body_len => break s,
                    Head::Simple(_) | Head::Partial if buf.len() < MAX_HEAD + MAX_BODY => {}
                    _ => return fallback(Prefixed::new(buf.freeze(), io)).await,
                }
            }
            if buf.capacity() - buf.len() < 1024 {
                buf.reserve(8 * 1024);
            }
            match io.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        let raw = buf.split_to(simple.head_len + simple.body_len).freeze();
        let room = slack(simple.host.map_or(&[][..], |h| &raw[range(h)]));
        let Some(fut) = request(&simple, &raw, room).and_then(&mut svc) else {
            // hyper serves this request and the rest: hand over every byte read
            let mut all = BytesMut::with_capacity(raw.len() + buf.len());
            all.extend_from_slice(&raw);
            all.extend_from_slice(&buf);
            return fallback(Prefixed::new(all.freeze(), io)).await;
        };
        drop(raw);
        let resp = fut.await;
        match respond(&mut io, &mut out, resp, simple.close).await {
            Ok(true) => {}
            Ok(false) | Err(_) => {
                let _ = io.shutdown().await;
                return;
            }
        }
    }
}

/// How the response body goes on the wire.
#[derive(Debug, PartialEq)]
enum Framing {
    Length(u64),
    Chunked,
    /// Until the connection closes (a length hyper would not announce).
    Close,
}

/// Encodes the response head into `out` as hyper's server does for an HTTP/1.1 request that
/// is not `HEAD` or `CONNECT` (role.rs `Server::encode`): the status line with the canonical
/// reason, the headers in map order (lower case), a `content-length` from the body's exact
/// size (or `transfer-encoding: chunked`), `date` when absent, `connection: close` when the
/// client asked to close. Returns the framing and whether the connection closes after it.
fn encode_head(
    out: &mut Vec<u8>,
    status: StatusCode,
    headers: &HeaderMap,
    body_len: Option<Option<u64>>,
    client_close: bool,
) -> (Framing, bool) {
    out.clear();
    if status == StatusCode::OK {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(status.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(status.canonical_reason().unwrap_or("<none>").as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let can_have_length = !matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED);
    let can_have_body = can_have_length;
    let mut framing = None;
    let mut wrote_date = false;
    let mut close = client_close;
    let mut conn_close_sent = false;
    let mut last_name: Option<&HeaderName> = None;
    // set while a `connection` or `transfer-encoding` line is open (values joined with ", ")
    let mut open_line = false;
    let mut must_add_chunked = false;
    for (name, value) in headers {
        let same = last_name == Some(name);
        if open_line && !same {
            if must_add_chunked {
                out.extend_from_slice(b", chunked");
                must_add_chunked = false;
            }
            out.extend_from_slice(b"\r\n");
            open_line = false;
        }
        last_name = Some(name);
        if name == header::CONTENT_LENGTH {
            if framing.is_some() || !can_have_length {
                continue;
            }
            match body_len {
                // an empty body: the header is not sent (the implicit zero below is)
                None => continue,
                Some(Some(n)) => framing = Some(Framing::Length(n)),
                Some(None) => match std::str::from_utf8(value.as_bytes())
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                {
                    Some(n) => framing = Some(Framing::Length(n)),
                    None => continue,
                },
            }
        } else if name == header::TRANSFER_ENCODING {
            if !can_have_body || matches!(framing, Some(Framing::Length(_))) {
                continue;
            }
            must_add_chunked = !value
                .as_bytes()
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            open_line = join_value(out, b"transfer-encoding: ", same && open_line, value);
            framing = Some(Framing::Chunked);
            continue;
        } else if name == header::CONNECTION {
            if has_token(value.as_bytes(), "close") {
                close = true;
                conn_close_sent = true;
            }
            open_line = join_value(out, b"connection: ", same && open_line, value);
            continue;
        } else if name == header::DATE {
            wrote_date = true;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if open_line {
        if must_add_chunked {
            out.extend_from_slice(b", chunked");
        }
        out.extend_from_slice(b"\r\n");
    }
    if client_close && !conn_close_sent {
        out.extend_from_slice(b"connection: close\r\n");
    }
    let framing = match framing {
        Some(f) => f,
        None => match body_len {
            None | Some(Some(0)) => {
                if can_have_length {
                    out.extend_from_slice(b"content-length: 0\r\n");
                }
                Framing::Length(0)
            }
            Some(Some(n)) if can_have_length => {
                out.extend_from_slice(b"content-length: ");
                out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
                out.extend_from_slice(b"\r\n");
                Framing::Length(n)
            }
            Some(Some(_)) => Framing::Length(0),
            Some(None) if can_have_body => {
                out.extend_from_slice(b"transfer-encoding: chunked\r\n");
                Framing::Chunked
            }
            Some(None) => Framing::Close,
        },
    };
    let framing = if can_have_body {
        framing
    } else {
        Framing::Length(0)
    };
    if !wrote_date {
        out.extend_from_slice(b"date: ");
        date(out);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    let close = close || framing == Framing::Close;
    (framing, close)
}

/// Writes `value` as hyper does for `connection` and `transfer-encoding`: joined with ", " to
/// the open line of the same name (`joining`), else on a new line started with `name`. The
/// line stays open (returns `true`) until a header of another name ends it.
fn join_value(out: &mut Vec<u8>, name: &[u8], joining: bool, value: &HeaderValue) -> bool {
    out.extend_from_slice(if joining { b", " } else { name });
    out.extend_from_slice(value.as_bytes());
    true
}

/// Appends the current time as an HTTP date, formatted once per second per thread.
fn date(out: &mut Vec<u8>) {
    use std::cell::RefCell;
    thread_local! {
        static CACHE: RefCell<(u64, [u8; 29])> = const { RefCell::new((u64::MAX, [0; 29])) };
    }
    let now = std::time::SystemTime::now();
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs {
            let s = httpdate::fmt_http_date(now);
            if s.len() == 29 {
                c.1.copy_from_slice(s.as_bytes());
                c.0 = secs;
            } else {
                out.extend_from_slice(s.as_bytes());
                return;
            }
        }
        out.extend_from_slice(&c.1);
    });
}

/// Writes every byte of `bufs` (one `writev` when the socket takes them all).
async fn write_all(io: &mut TcpStream, bufs: &mut [IoSlice<'_>]) -> std::io::Result<()> {
    let mut bufs = bufs;
    while !bufs.is_empty() {
        let n = io.write_vectored(bufs).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut bufs, n);
    }
    Ok(())
}

/// Writes `head` (possibly empty) and one body frame, as a chunk when `chunked` (an empty
/// frame writes no chunk: that would end the body).
async fn write_data(
    io: &mut TcpStream,
    head: &[u8],
    data: &[u8],
    chunked: bool,
) -> std::io::Result<()> {
    if chunked && !data.is_empty() {
        let size = format!("{:x}\r\n", data.len());
        let parts = [head, size.as_bytes(), data, b"\r\n"];
        write_all(io, &mut parts.map(IoSlice::new)).await
    } else {
        write_all(io, &mut [IoSlice::new(head), IoSlice::new(data)]).await
    }
}

/// Polls the body once without waiting: the first frame when it is ready now.
async fn frame_now(body: &mut Body) -> Option<Option<Result<hyper::body::Frame<Bytes>, ()>>> {
    std::future::poll_fn(|cx| match Pin::new(&mut *body).poll_frame(cx) {
        Poll::Ready(f) => Poll::Ready(Some(f.map(|r| r.map_err(|_| ())))),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// Writes one response; `Ok(true)` when the connection stays open for the next request.
async fn respond(
    io: &mut TcpStream,
    out: &mut Vec<u8>,
    resp: Response<Body>,
    client_close: bool,
) -> std::io::Result<bool> {
    let (parts, mut body) = resp.into_parts();
    let body_len = if body.is_end_stream() {
        None
    } else {
        Some(body.size_hint().exact())
    };
    let (framing, close) = encode_head(out, parts.status, &parts.headers, body_len, client_close);
    drop(parts);
    let mut sent: u64 = 0;
    let mut head_sent = false;
    if framing != Framing::Length(0) && body_len.is_some() {
        // the usual body is one frame that is ready now: it goes out with the head
        match frame_now(&mut body).await {
            Some(Some(Ok(f))) => {
                if let Ok(data) = f.into_data() {
                    sent += data.len() as u64;
                    write_data(io, out, &data, framing == Framing::Chunked).await?;
                    head_sent = true;
                }
            }
            Some(Some(Err(()))) => return Ok(false),
            Some(None) | None => {}
        }
    }
    if !head_sent {
        write_all(io, &mut [IoSlice::new(out)]).await?;
    }
    if framing == Framing::Length(0) {
        return Ok(!close);
    }
    while !body.is_end_stream() {
        let Some(frame) = body.frame().await else {
            break;
        };
        let Ok(frame) = frame else {
            // the body failed midway: the client sees the connection end, as with hyper
            return Ok(false);
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        sent += data.len() as u64;
        write_data(io, &[], &data, framing == Framing::Chunked).await?;
    }
    match framing {
        Framing::Chunked => {
            write_all(io, &mut [IoSlice::new(b"0\r\n\r\n")]).await?;
            Ok(!close)
        }
        // a body shorter than its announced length cannot be followed by another response
        Framing::Length(n) => Ok(!close && sent == n),
        Framing::Close => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn simple(raw: &[u8]) -> Simple {
        match parse(raw) {
            Head::Simple(s) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_subset_and_what_goes_to_hyper() {
        let s = simple(b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n");
        assert_eq!((s.method, s.body_len, s.close), (Method::GET, 0, false));
        assert_eq!(s.headers.len(), 2);
        let s = simple(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nConnection: Close\r\n\r\nabc");
        assert_eq!((s.body_len, s.close), (3, true));
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost: x\r\n"), Head::Partial);
        for hyper in [
            &b"GET / HTTP/1.0\r\n\r\n"[..],
            b"HEAD / HTTP/1.1\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
            b"G\x01T / HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(
                parse(hyper),
                Head::Hyper,
                "{}",
                String::from_utf8_lossy(hyper)
            );
        }
    }

    fn head(status: u16, h: &[(&str, &str)], len: Option<Option<u64>>, close: bool) -> String {
        let mut m = HeaderMap::new();
        for (k, v) in h {
            m.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let mut out = Vec::new();
        let (f, c) = encode_head(
            &mut out,
            StatusCode::from_u16(status).unwrap(),
            &m,
            len,
            close,
        );
        format!("{f:?} {c} {}", String::from_utf8(out).unwrap())
    }

    /// Serves one connection with an echo service: this loop's answers carry `x-by: loop`,
    /// hyper's `x-by: hyper`; requests to `/hyper` are declined by the loop.
    async fn echo_server() -> std::net::SocketAddr {
        use hyper_util::rt::TokioIo;
        // boxed as a `Send` future (see `read_limited` in http_api/forward.rs)
        fn echo(
            req: Request<Body>,
            by: &'static str,
        ) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>> {
            Box::pin(async move {
                let (parts, mut body) = req.into_parts();
                let mut got = Vec::new();
                while let Some(Ok(f)) = body.frame().await {
                    if let Ok(d) = f.into_data() {
                        got.extend_from_slice(&d);
                    }
                }
                let mut text = format!("{} {} ", parts.method, parts.uri).into_bytes();
                text.extend_from_slice(&got);
                let mut r = Response::new(crate::body::full(text));
                r.headers_mut().insert("x-by", HeaderValue::from_static(by));
                r
            })
        }
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let fast =
                |req: Request<Body>| (req.uri().path() != "/hyper").then(|| echo(req, "loop"));
            let hyper = |io| async move {
                let svc = hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async {
                    let req =
                        req.map(|b| b.map_err(|e| Box::new(e) as crate::body::BoxError).boxed());
                    Ok::<_, std::convert::Infallible>(echo(req, "hyper").await)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(io), svc)
                    .await;
            };
            serve(s, |_| 0, fast, hyper).await;
        });
        addr
    }

    async fn exchange(addr: std::net::SocketAddr, send: &[u8]) -> String {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(send).await.unwrap();
        c.shutdown().await.unwrap();
        let mut got = String::new();
        c.read_to_string(&mut got).await.unwrap();
        got
    }

    #[tokio::test]
    async fn pipelined_requests_then_hyper_for_the_rest_of_the_connection() {
        let addr = echo_server().await;
        let got = exchange(
            addr,
            b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n\
              POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc\
              POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n\
              GET /d HTTP/1.1\r\n\r\n",
        )
        .await;
        let answers: Vec<(&str, &str)> = got
            .split("HTTP/1.1 200 OK\r\n")
            .skip(1)
            .map(|r| {
                let (head, body) = r.split_once("\r\n\r\n").unwrap();
                let by = head.lines().find_map(|l| l.strip_prefix("x-by: ")).unwrap();
                (by, body)
            })
            .collect();
        assert_eq!(
            answers,
            [
                ("loop", "GET /a?x=1 "),
                ("loop", "POST /b abc"),
                ("hyper", "POST /c xyz"),
                ("hyper", "GET /d ")
            ],
            "{got}"
        );
        assert!(got.contains("content-length: 11\r\n"), "{got}");
    }

    #[tokio::test]
    async fn a_declined_request_and_a_close_and_garbage() {
        // declined by the service: hyper answers it and what follows
        let addr = echo_server().await;
        let got = exchange(addr, b"GET /hyper HTTP/1.1\r\n\r\nGET /e HTTP/1.1\r\n\r\n").await;
        assert_eq!(got.matches("x-by: hyper").count(), 2, "{got}");
        // `Connection: close`: answered with it, then the loop closes (the second request is
        // never read)
        let addr = echo_server().await;
        let got = exchange(
            addr,
            b"GET /f HTTP/1.1\r\nConnection: close\r\n\r\nGET /g HTTP/1.1\r\n\r\n",
        )
        .await;
        assert_eq!(got.matches("HTTP/1.1 200 OK").count(), 1, "{got}");
        assert!(
            got.contains("connection: close\r\n") && got.ends_with("GET /f "),
            "{got}"
        );
        // garbage gets hyper's 400
        let addr = echo_server().await;
        let got = exchange(addr, b"NOT HTTP AT ALL\r\n\r\n").await;
        assert!(got.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{got}");
    }

    #[test]
    fn heads_are_encoded_as_hyper_encodes_them() {
        let d = "date: Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(
            head(
                200,
                &[("date", &d[6..]), ("x-a", "1")],
                Some(Some(5)),
                false
            ),
            format!(
                "Length(5) false HTTP/1.1 200 OK\r\n{d}\r\nx-a: 1\r\ncontent-length: 5\r\n\r\n"
            )
        );
        // a length header is trusted when the body's length is known
        assert_eq!(
            head(404, &[("content-length", "5"), ("date", &d[6..])], Some(Some(5)), true),
            format!("Length(5) true HTTP/1.1 404 Not Found\r\ncontent-length: 5\r\n{d}\r\nconnection: close\r\n\r\n")
        );
        // an empty body: the implicit zero, a stale length header dropped
        assert_eq!(
            head(503, &[("content-length", "9"), ("date", &d[6..])], None, false),
            format!("Length(0) false HTTP/1.1 503 Service Unavailable\r\n{d}\r\ncontent-length: 0\r\n\r\n")
        );
        // unknown length: chunked; 204 has no length and no body
        assert_eq!(
            head(200, &[("date", &d[6..])], Some(None), false),
            format!("Chunked false HTTP/1.1 200 OK\r\n{d}\r\ntransfer-encoding: chunked\r\n\r\n")
        );
        assert_eq!(
            head(204, &[("date", &d[6..])], Some(Some(3)), false),
            format!("Length(0) false HTTP/1.1 204 No Content\r\n{d}\r\n\r\n")
        );
        // connection values are joined, and a close in them closes
        assert_eq!(
            head(200, &[("connection", "a"), ("connection", "close"), ("date", &d[6..])], None, false),
            format!("Length(0) true HTTP/1.1 200 OK\r\nconnection: a, close\r\n{d}\r\ncontent-length: 0\r\n\r\n")
        );
        // a date is added when absent
        let h = head(200, &[], None, false);
        assert!(
            h.contains("\r\ndate: ") && h.ends_with(" GMT\r\n\r\n"),
            "{h}"
        );
    }
}
