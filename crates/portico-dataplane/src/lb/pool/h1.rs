//! HOT PATH. The HTTP/1.1 client codec of the upstream pool: request heads written straight
//! into a byte buffer, response heads parsed with httparse into `http` types, and the response
//! body framing (length, chunked, close-delimited). It follows hyper's client rules
//! (`hyper::proto::h1::role::Client`) so that what reaches a target, and what comes back, is
//! what hyper's client sent and accepted before; there is no IO here (see `super` for that).

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};
use smallvec::SmallVec;

/// Most header lines a response head may have (hyper's default).
const MAX_HEADERS: usize = 100;

/// How the request body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReqFraming {
    /// Exactly this many bytes (`Content-Length`, or none at all for 0).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// What the caller knows about the request body before sending it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyLen {
    /// The body is already at its end (nothing to send).
    Empty,
    Known(u64),
    Unknown,
}

/// Writes `METHOD target HTTP/1.1`, the headers (lower-case names, in map order) and the blank
/// line into `dst`, adjusting `Content-Length`/`Transfer-Encoding` as hyper's client does:
/// a user-set `Transfer-Encoding` wins (made to end in `chunked`), then a valid user-set
/// `Content-Length`, then the body's known length; an unknown length is chunked, except for
/// GET/HEAD/CONNECT, which are sent without a body.
pub(crate) fn encode_request_head(
    method: &Method,
    target: &str,
    headers: &mut HeaderMap,
    body: BodyLen,
    dst: &mut Vec<u8>,
) -> ReqFraming {
    let framing = set_length(method, headers, body);
    // room for the usual head without growing (a reallocation cost ~450 instructions per
    // request on the VPC-link path, whose forwarded headers are long); computing the exact
    // size costs a pass over the headers, more than it saves on short heads
    dst.reserve(32 + target.len() + headers.len() * 64);
    dst.extend_from_slice(method.as_str().as_bytes());
    dst.push(b' ');
    dst.extend_from_slice(target.as_bytes());
    dst.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers.iter() {
        dst.extend_from_slice(name.as_str().as_bytes());
        dst.extend_from_slice(b": ");
        dst.extend_from_slice(value.as_bytes());
        dst.extend_from_slice(b"\r\n");
    }
    dst.extend_from_slice(b"\r\n");
    framing
}

fn set_length(method: &Method, headers: &mut HeaderMap, body: BodyLen) -> ReqFraming {
    if body == BodyLen::Empty {
        headers.remove(header::TRANSFER_ENCODING);
        return ReqFraming::Length(0);
    }
    let existing = content_length(headers);
    if let Some(te) = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .next_back()
    {
        if !ends_in_chunked(te) {
            let v = te.to_str().unwrap_or("");
            let fixed = HeaderValue::from_str(&format!("{v}, chunked"))
                .unwrap_or(HeaderValue::from_static("chunked"));
            // hyper appends `chunked` to the last value; the map keeps earlier ones
            let mut all: Vec<HeaderValue> = headers
                .get_all(header::TRANSFER_ENCODING)
                .iter()
                .cloned()
                .collect();
            all.pop();
            all.push(fixed);
            headers.remove(header::TRANSFER_ENCODING);
            for v in all {
                headers.append(header::TRANSFER_ENCODING, v);
            }
        }
        headers.remove(header::CONTENT_LENGTH);
        return ReqFraming::Chunked;
    }
    if let Some(len) = existing {
        return ReqFraming::Length(len);
    }
    match body {
        BodyLen::Unknown => match *method {
            Method::GET | Method::HEAD | Method::CONNECT => ReqFraming::Length(0),
            _ => {
                headers.insert(
                    header::TRANSFER_ENCODING,
                    HeaderValue::from_static("chunked"),
                );
                headers.remove(header::CONTENT_LENGTH);
                ReqFraming::Chunked
            }
        },
        BodyLen::Known(n) => {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
            ReqFraming::Length(n)
        }
        BodyLen::Empty => ReqFraming::Length(0),
    }
}

fn ends_in_chunked(v: &HeaderValue) -> bool {
    v.to_str()
        .ok()
        .and_then(|s| s.rsplit(',').next())
        .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
}

/// All `Content-Length` values agree on one number (hyper's `content_length_parse_all`).
fn content_length(headers: &HeaderMap) -> Option<u64> {
    // the usual case, one plain number, without the general path's splitting and parsing
    let mut all = headers.get_all(header::CONTENT_LENGTH).iter();
    if let (Some(v), None) = (all.next(), all.next()) {
        let b = v.as_bytes();
        if !b.is_empty() && b.len() <= 18 && b.iter().all(u8::is_ascii_digit) {
            return Some(b.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')));
        }
    }
    content_length_all(headers)
}

/// [`content_length`] without its fast path: every comma-separated value is all digits, and
/// they agree.
fn content_length_all(headers: &HeaderMap) -> Option<u64> {
    let mut found: Option<u64> = None;
    for v in headers.get_all(header::CONTENT_LENGTH) {
        for part in v.to_str().ok()?.split(',') {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let n: u64 = part.parse().ok()?;
            if found.is_some_and(|f| f != n) {
                return None;
            }
            found = Some(n);
        }
    }
    found
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RespFraming {
    Empty,
    Length(u64),
    Chunked,
    /// Until the target closes the connection.
    Close,
}

/// A parsed response head.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub parts: http::response::Parts,
    pub framing: RespFraming,
    /// The connection may carry another request after this response.
    pub keep_alive: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ParseError;

/// Parses one response head at the start of `buf`, skipping informational (1xx but 101)
/// responses. `Ok(None)`: more bytes are needed. On success the head's bytes are split off
/// `buf` (header values share them, nothing is copied).
pub(crate) fn parse_response(
    buf: &mut BytesMut,
    req_method: &Method,
) -> Result<Option<ResponseHead>, ParseError> {
    loop {
        // Where each header's name and value lie in the head (offsets, since the head is split
        // off `buf` only after the parser's borrow ends). Neither this nor httparse's header
        // array is zero-filled first: that memset was 7% of the HTTP API hop's instructions.
        let mut idx: SmallVec<[(usize, usize, usize, usize); 24]> = SmallVec::new();
        let (len, code, version) = {
            let mut raw =
                [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
            let mut res = httparse::Response::new(&mut []);
            let base = buf.as_ptr() as usize;
            match httparse::ParserConfig::default()
                .parse_response_with_uninit_headers(&mut res, buf, &mut raw)
            {
                Ok(httparse::Status::Complete(len)) => {
                    for h in res.headers.iter() {
                        let name = h.name.as_ptr() as usize - base;
                        let value = h.value.as_ptr() as usize - base;
                        idx.push((name, name + h.name.len(), value, value + h.value.len()));
                    }
                    (
                        len,
                        res.code.ok_or(ParseError)?,
                        res.version.ok_or(ParseError)?,
                    )
                }
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(_) => return Err(ParseError),
            }
        };
        let status = StatusCode::from_u16(code).map_err(|_| ParseError)?;
        let version = if version == 1 {
            Version::HTTP_11
        } else {
            Version::HTTP_10
        };
        let head = buf.split_to(len).freeze();
        if matches!(code, 100 | 102..=199) {
            continue;
        }
        let mut headers = HeaderMap::with_capacity(idx.len());
        let mut keep_alive = version == Version::HTTP_11;
        let mut saw_close = false;
        for &(ns, ne, vs, ve) in &idx {
            let name = HeaderName::from_bytes(&head[ns..ne]).map_err(|_| ParseError)?;
            let value =
                HeaderValue::from_maybe_shared(head.slice(vs..ve)).map_err(|_| ParseError)?;
            if name == header::CONNECTION {
                if saw_close || has_token(&value, "close") {
                    saw_close = true;
                    keep_alive = false;
                } else if !keep_alive {
                    keep_alive = has_token(&value, "keep-alive");
                }
            }
            headers.append(name, value);
        }
        let framing = match code {
            101 => {
                keep_alive = false;
                RespFraming::Empty
            }
            204 | 304 => RespFraming::Empty,
            _ if *req_method == Method::HEAD => RespFraming::Empty,
            200..=299 if *req_method == Method::CONNECT => {
                keep_alive = false;
                RespFraming::Empty
            }
            _ => {
                if headers.contains_key(header::TRANSFER_ENCODING) {
                    if version == Version::HTTP_10 {
                        return Err(ParseError);
                    }
                    match headers
                        .get_all(header::TRANSFER_ENCODING)
                        .iter()
                        .next_back()
                    {
                        Some(te) if ends_in_chunked(te) => RespFraming::Chunked,
                        _ => RespFraming::Close,
                    }
                } else if let Some(n) = content_length(&headers) {
                    RespFraming::Length(n)
                } else if headers.contains_key(header::CONTENT_LENGTH) {
                    return Err(ParseError);
                } else {
                    RespFraming::Close
                }
            }
        };
        if framing == RespFraming::Close {
            keep_alive = false;
        }
        let mut r = http::Response::new(());
        *r.status_mut() = status;
        *r.version_mut() = version;
        *r.headers_mut() = headers;
        let (parts, ()) = r.into_parts();
        return Ok(Some(ResponseHead {
            parts,
            framing,
            keep_alive,
        }));
    }
}

fn has_token(v: &HeaderValue, token: &str) -> bool {
    // the usual case: the value is just the token
    if v.as_bytes().eq_ignore_ascii_case(token.as_bytes()) {
        return true;
    }
    v.to_str()
        .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        .unwrap_or(false)
}

/// What the chunked decoder produced from the bytes it had.
#[derive(Debug, PartialEq)]
pub(crate) enum Chunk {
    /// Needs more bytes.
    More,
    Data(Bytes),
    /// The last chunk and the trailer section (possibly empty) were read.
    End(HeaderMap),
}

/// Decodes a chunked body from the front of a buffer, consuming what it uses.
#[derive(Debug, Default)]
pub(crate) struct ChunkedDecoder {
    state: ChunkState,
}

#[derive(Debug, Default)]
enum ChunkState {
    #[default]
    Size,
    Data(u64),
    DataEnd,
    Trailers,
    Done,
}

/// Longest chunk-size line (with extensions) or trailer section accepted.
const MAX_LINE: usize = 16 * 1024;

impl ChunkedDecoder {
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Chunk, ParseError> {
        loop {
            match self.state {
                ChunkState::Size => match httparse::parse_chunk_size(buf) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        let _ = buf.split_to(used);
                        self.state = if size == 0 {
                            ChunkState::Trailers
                        } else {
                            ChunkState::Data(size)
                        };
                    }
                    Ok(httparse::Status::Partial) if buf.len() < MAX_LINE => {
                        return Ok(Chunk::More)
                    }
                    _ => return Err(ParseError),
                },
                ChunkState::Data(rem) => {
                    if buf.is_empty() {
                        return Ok(Chunk::More);
                    }
                    let n = usize::try_from(rem).unwrap_or(usize::MAX).min(buf.len());
                    let data = buf.split_to(n).freeze();
                    let left = rem - n as u64;
                    self.state = if left == 0 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left)
                    };
                    return Ok(Chunk::Data(data));
                }
                ChunkState::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(Chunk::More);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(ParseError);
                    }
                    let _ = buf.split_to(2);
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailers => {
                    if buf.starts_with(b"\r\n") {
                        let _ = buf.split_to(2);
                        self.state = ChunkState::Done;
                        return Ok(Chunk::End(HeaderMap::new()));
                    }
                    let mut raw = [httparse::EMPTY_HEADER; MAX_HEADERS];
                    match httparse::parse_headers(buf, &mut raw) {
                        Ok(httparse::Status::Complete((used, hs))) => {
                            let mut trailers = HeaderMap::new();
                            for h in hs {
                                if let (Ok(n), Ok(v)) = (
                                    HeaderName::from_bytes(h.name.as_bytes()),
                                    HeaderValue::from_bytes(h.value),
                                ) {
                                    trailers.append(n, v);
                                }
                            }
                            let _ = buf.split_to(used);
                            self.state = ChunkState::Done;
                            return Ok(Chunk::End(trailers));
                        }
                        Ok(httparse::Status::Partial) if buf.len() < MAX_LINE => {
                            return Ok(Chunk::More)
                        }
                        _ => return Err(ParseError),
                    }
                }
                ChunkState::Done => return Ok(Chunk::End(HeaderMap::new())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn head(bytes: &[u8], method: &Method) -> Result<Option<ResponseHead>, ParseError> {
        parse_response(&mut BytesMut::from(bytes), method)
    }

    #[test]
    fn request_heads_follow_hypers_length_rules() {
        let mut out = Vec::new();
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("b:80"));
        let f = encode_request_head(&Method::GET, "/x?y", &mut h, BodyLen::Empty, &mut out);
        assert_eq!(f, ReqFraming::Length(0));
        assert_eq!(out, b"GET /x?y HTTP/1.1\r\nhost: b:80\r\n\r\n");

        let mut h = HeaderMap::new();
        let f = encode_request_head(
            &Method::POST,
            "/",
            &mut h,
            BodyLen::Known(5),
            &mut Vec::new(),
        );
        assert_eq!(
            (f, &h[header::CONTENT_LENGTH]),
            (ReqFraming::Length(5), &HeaderValue::from(5))
        );

        let mut h = HeaderMap::new();
        let f = encode_request_head(
            &Method::POST,
            "/",
            &mut h,
            BodyLen::Unknown,
            &mut Vec::new(),
        );
        assert_eq!(f, ReqFraming::Chunked);
        assert_eq!(h[header::TRANSFER_ENCODING], "chunked");

        let mut h = HeaderMap::new();
        let f = encode_request_head(&Method::GET, "/", &mut h, BodyLen::Unknown, &mut Vec::new());
        assert_eq!((f, h.len()), (ReqFraming::Length(0), 0));

        // a user-set Content-Length wins over the body's idea
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(7));
        let f = encode_request_head(&Method::PUT, "/", &mut h, BodyLen::Unknown, &mut Vec::new());
        assert_eq!(f, ReqFraming::Length(7));

        // a user-set Transfer-Encoding wins and gets `chunked` at its end
        let mut h = HeaderMap::new();
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("gzip"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(7));
        let f = encode_request_head(
            &Method::PUT,
            "/",
            &mut h,
            BodyLen::Known(7),
            &mut Vec::new(),
        );
        assert_eq!(f, ReqFraming::Chunked);
        assert_eq!(h[header::TRANSFER_ENCODING], "gzip, chunked");
        assert!(!h.contains_key(header::CONTENT_LENGTH));
    }

    #[test]
    fn response_framing() {
        let r = head(
            b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc",
            &Method::GET,
        )
        .unwrap()
        .unwrap();
        assert_eq!((r.framing, r.keep_alive), (RespFraming::Length(3), true));
        let r = head(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
            &Method::GET,
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.framing, RespFraming::Chunked);
        let r = head(b"HTTP/1.1 200 OK\r\n\r\n", &Method::GET)
            .unwrap()
            .unwrap();
        assert_eq!((r.framing, r.keep_alive), (RespFraming::Close, false));
        let r = head(
            b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n",
            &Method::HEAD,
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.framing, RespFraming::Empty);
        let r = head(b"HTTP/1.1 204 No Content\r\n\r\n", &Method::GET)
            .unwrap()
            .unwrap();
        assert_eq!((r.framing, r.keep_alive), (RespFraming::Empty, true));
        let r = head(
            b"HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n",
            &Method::GET,
        )
        .unwrap()
        .unwrap();
        assert!(!r.keep_alive);
        let r = head(
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\ncontent-length: 1\r\n\r\n",
            &Method::GET,
        )
        .unwrap()
        .unwrap();
        assert!(r.keep_alive);
        let r = head(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\ncontent-length: 1\r\n\r\n",
            &Method::GET,
        )
        .unwrap()
        .unwrap();
        assert!(!r.keep_alive);
        // 100 Continue is skipped
        let mut b = BytesMut::from(
            &b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n"[..],
        );
        let r = parse_response(&mut b, &Method::POST).unwrap().unwrap();
        assert_eq!(r.parts.status, 201);
        assert!(b.is_empty());
        // partial, then malformed
        assert!(head(b"HTTP/1.1 200 OK\r\ncontent-le", &Method::GET)
            .unwrap()
            .is_none());
        assert!(head(
            b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n",
            &Method::GET
        )
        .is_err());
        assert!(head(
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
            &Method::GET
        )
        .is_err());
        assert!(head(b"garbage\r\n\r\n", &Method::GET).is_err());
    }

    /// Decodes `wire` fed in pieces of `step` bytes.
    fn decode_all(wire: &[u8], step: usize) -> Result<(Vec<u8>, HeaderMap), ParseError> {
        let mut d = ChunkedDecoder::default();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut fed = 0;
        loop {
            match d.decode(&mut buf)? {
                Chunk::Data(b) => out.extend_from_slice(&b),
                Chunk::End(t) => return Ok((out, t)),
                Chunk::More => {
                    if fed >= wire.len() {
                        return Err(ParseError);
                    }
                    let end = (fed + step).min(wire.len());
                    buf.extend_from_slice(&wire[fed..end]);
                    fed = end;
                }
            }
        }
    }

    /// A straightforward reference decoder over the whole message.
    fn reference_decode(mut wire: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let line_end = wire.windows(2).position(|w| w == b"\r\n")?;
            let line = std::str::from_utf8(&wire[..line_end]).ok()?;
            let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
            wire = &wire[line_end + 2..];
            if size == 0 {
                // trailers until an empty line
                loop {
                    let e = wire.windows(2).position(|w| w == b"\r\n")?;
                    wire = &wire[e + 2..];
                    if e == 0 {
                        return Some(out);
                    }
                }
            }
            out.extend_from_slice(wire.get(..size)?);
            if wire.get(size..size + 2)? != b"\r\n" {
                return None;
            }
            wire = &wire[size + 2..];
        }
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let wire = b"3;ext=1\r\nabc\r\n0\r\nx-t: 1\r\n\r\n";
        let (data, t) = decode_all(wire, 1).unwrap();
        assert_eq!(data.as_slice(), &b"abc"[..]);
        assert_eq!(t["x-t"], "1");
        assert!(decode_all(b"3\r\nabcX\r\n0\r\n\r\n", 64).is_err());
        assert!(decode_all(b"zz\r\n", 64).is_err());
    }

    proptest! {
        #[test]
        fn content_length_fast_path_agrees_with_the_general_rule(
            values in proptest::collection::vec("[0-9 ,]{0,22}|[0-9]{1,21}|1[0-9]{0,3}x?", 0..3)
        ) {
            let mut h = HeaderMap::new();
            for v in &values {
                h.append(header::CONTENT_LENGTH, HeaderValue::from_str(v).unwrap());
            }
            prop_assert_eq!(content_length(&h), content_length_all(&h));
        }
    }

    proptest! {
        #[test]
        fn chunked_matches_the_reference(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..200), 0..8),
            ext in proptest::bool::ANY,
            trailer in proptest::bool::ANY,
            step in 1usize..64,
        ) {
            let mut wire = Vec::new();
            for c in &chunks {
                wire.extend_from_slice(format!("{:x}{}\r\n", c.len(), if ext { ";a=b" } else { "" }).as_bytes());
                wire.extend_from_slice(c);
                wire.extend_from_slice(b"\r\n");
            }
            wire.extend_from_slice(b"0\r\n");
            if trailer {
                wire.extend_from_slice(b"x-sum: 1\r\n");
            }
            wire.extend_from_slice(b"\r\n");
            let expected: Vec<u8> = chunks.concat();
            prop_assert_eq!(reference_decode(&wire), Some(expected.clone()));
            let (got, t) = decode_all(&wire, step).unwrap();
            prop_assert_eq!(got, expected);
            prop_assert_eq!(t.contains_key("x-sum"), trailer);
        }

        #[test]
        fn response_heads_round_trip(
            status in 200u16..600,
            headers in proptest::collection::vec(("[a-z][a-z0-9-]{0,15}", "[ -~]{0,40}"), 0..20),
            len in 0u64..100_000,
        ) {
            let mut map = HeaderMap::new();
            for (n, v) in &headers {
                if n == "content-length" || n == "transfer-encoding" || n == "connection" {
                    continue;
                }
                let v = v.trim();
                map.append(HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
            }
            map.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            // serialize as a server would, then parse
            let mut wire = format!("HTTP/1.1 {status} X\r\n").into_bytes();
            for (n, v) in &map {
                wire.extend_from_slice(n.as_str().as_bytes());
                wire.extend_from_slice(b": ");
                wire.extend_from_slice(v.as_bytes());
                wire.extend_from_slice(b"\r\n");
            }
            wire.extend_from_slice(b"\r\n");
            let method = Method::GET;
            let r = head(&wire, &method).unwrap().unwrap();
            prop_assert_eq!(r.parts.status.as_u16(), status);
            prop_assert_eq!(&r.parts.headers, &map);
            let want = if status == 204 || status == 304 { RespFraming::Empty } else { RespFraming::Length(len) };
            prop_assert_eq!(r.framing, want);
        }

        #[test]
        fn request_heads_round_trip(
            method in prop_oneof![Just(Method::GET), Just(Method::POST), Just(Method::DELETE), Just(Method::PATCH)],
            path in "/[a-zA-Z0-9/_.~-]{0,40}(\\?[a-z0-9=&]{0,20})?",
            headers in proptest::collection::vec(("[a-z][a-z0-9-]{0,15}", "[!-~]([ -~]{0,38}[!-~])?"), 0..20),
            body_len in 0u64..1000,
        ) {
            let mut map = HeaderMap::new();
            for (n, v) in &headers {
                if n == "content-length" || n == "transfer-encoding" {
                    continue;
                }
                map.append(HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
            }
            let body = if body_len == 0 { BodyLen::Empty } else { BodyLen::Known(body_len) };
            let mut wire = Vec::new();
            let framing = encode_request_head(&method, &path, &mut map, body, &mut wire);
            prop_assert_eq!(framing, ReqFraming::Length(body_len));
            let mut raw = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut raw);
            let used = req.parse(&wire).unwrap();
            prop_assert_eq!(used, httparse::Status::Complete(wire.len()));
            prop_assert_eq!(req.method, Some(method.as_str()));
            prop_assert_eq!(req.path, Some(path.as_str()));
            let mut parsed = HeaderMap::new();
            for h in req.headers.iter() {
                parsed.append(HeaderName::from_bytes(h.name.as_bytes()).unwrap(), HeaderValue::from_bytes(h.value).unwrap());
            }
            prop_assert_eq!(parsed, map);
        }
    }
}
