//! HOT PATH
//! NLB TCP pass-through: for each accepted connection pick an eligible target of the listener's
//! forward target group, connect, and copy bytes both ways, passing half-closes along. With no
//! target to go to, the client connection is closed (NLBs have no error pages). TLS listeners
//! terminate TLS first and pass the decrypted bytes on (re-encrypting for TLS target groups).
//! A flow with no bytes either way for the listener's idle timeout (`tcp.idle_timeout.seconds`,
//! AWS's 350 s by default) is forgotten: the next packet from either side is answered with a
//! TCP reset, as AWS does.

use super::{Action, Engine, GroupRt, Rt};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How many idle timeouts a forgotten flow's sockets are kept to answer its next packet.
const HOLD_IDLE_FLOWS: u32 = 4;

/// AWS's default idle timeout for NLB TCP flows (`tcp.idle_timeout.seconds`, 60-6000).
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(350);
pub(crate) use super::tls::HANDSHAKE_TIMEOUT;

/// The target group the listener's default action forwards to (weighted choice with `seed`).
pub(crate) fn forward_group(rt: &Rt, arn: &str, seed: u64) -> Option<Arc<GroupRt>> {
    let l = rt.listeners.get(arn)?;
    let rule = l.spec.rules.iter().max_by_key(|r| r.priority)?;
    let Action::Forward(fwd) = &rule.action else {
        return None;
    };
    let weights: Vec<u32> = fwd.groups.iter().map(|g| g.1).collect();
    let i = super::rules::pick_weighted(&weights, seed)?;
    rt.groups.get(&fwd.groups[i].0).cloned()
}

pub(crate) async fn serve(engine: Engine, arn: String, client: TcpStream) {
    let rt = engine.rt();
    let Some(l) = rt.listeners.get(&arn).cloned() else {
        return;
    };
    let idle = match l.spec.tcp_idle_timeout {
        d if d.is_zero() => TCP_IDLE_TIMEOUT,
        d => d,
    };
    if l.spec.protocol == "TLS" {
        let Some(acceptor) = l.tls.clone() else {
            return;
        };
        let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(client));
        if let Ok(Ok(tls)) = handshake.await {
            pass(engine, &rt, &arn, tls, idle).await;
        }
    } else {
        pass(engine, &rt, &arn, client, idle).await;
    }
}

/// One side of a flow: a byte stream over a TCP connection that can be reset.
trait Side: AsyncRead + AsyncWrite + Unpin {
    fn tcp(&self) -> &TcpStream;
}

impl Side for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Side for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

impl Side for tokio_rustls::client::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

async fn pass<S: Side>(engine: Engine, rt: &Rt, arn: &str, mut client: S, idle: Duration) {
    let Some(group) = forward_group(rt, arn, crate::rng::random::<u64>()) else {
        return;
    };
    let eligible = group.eligible();
    let Some(target) = group.pick(&eligible) else {
        return;
    };
    let Some(addr) = engine
        .addresses()
        .and_then(|b| b.resolve(target.ip, target.port))
    else {
        return;
    };
    let state = target.state.clone();
    if state.blocked.load(Ordering::Relaxed) {
        // security groups drop the connection attempt: give up after the connect timeout
        tokio::time::sleep(CONNECT_TIMEOUT).await;
        return;
    }
    let Ok(Ok(upstream)) = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await
    else {
        return;
    };
    let _ = upstream.set_nodelay(true);
    state.inflight.fetch_add(1, Ordering::Relaxed);
    if group.spec.protocol == "TLS" {
        if let Some(mut up) = super::tls::connect_target(upstream, addr).await {
            relay(&mut client, &mut up, &state, idle).await;
        }
    } else {
        let mut up = upstream;
        relay(&mut client, &mut up, &state, idle).await;
    }
    state.inflight.fetch_sub(1, Ordering::Relaxed);
}

/// Copies bytes both ways until both sides are done, the target leaves its group, or the flow
/// idles out.
async fn relay<C: Side, U: Side>(
    client: &mut C,
    up: &mut U,
    state: &super::TargetState,
    idle: Duration,
) {
    let epoch = Instant::now();
    let last = AtomicU64::new(0);
    let expired = {
        let mut c = Tracked {
            inner: &mut *client,
            last: &last,
            epoch,
        };
        let mut u = Tracked {
            inner: &mut *up,
            last: &last,
            epoch,
        };
        // copy_bidirectional shuts down each write side when the other side reaches EOF:
        // half-close.
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut c, &mut u) => false,
            // The target left its group (end of draining): its flows end.
            _ = state.left() => false,
            _ = idled_out(&last, epoch, idle) => true,
        }
    };
    if expired {
        reset_on_next_packet(client, up, idle).await;
    }
}

/// Resolves once no bytes have moved for `idle` since the last read recorded in `last`
/// (milliseconds after `epoch`).
async fn idled_out(last: &AtomicU64, epoch: Instant, idle: Duration) {
    loop {
        let deadline = epoch + Duration::from_millis(last.load(Ordering::Relaxed)) + idle;
        if Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep_until(deadline.into()).await;
    }
}

/// The load balancer has forgotten the flow: whatever either side sends next (data or FIN) is
/// answered with a reset, and both connections end there. A flow where neither side sends
/// within [`HOLD_IDLE_FLOWS`] more idle periods is reset then (AWS would keep silent; Portico
/// must not hold the sockets forever).
async fn reset_on_next_packet<C: Side, U: Side>(client: &mut C, up: &mut U, idle: Duration) {
    let (mut a, mut b) = ([0u8; 1], [0u8; 1]);
    tokio::select! {
        _ = client.read(&mut a) => {}
        _ = up.read(&mut b) => {}
        _ = tokio::time::sleep(idle * HOLD_IDLE_FLOWS) => {}
    }
    // SO_LINGER 0: closing sends RST instead of FIN.
    let _ = client.tcp().set_zero_linger();
    let _ = up.tcp().set_zero_linger();
}

/// A side whose reads record the time of the flow's last activity. Writes need no record: every
/// byte written was just read from the other side.
struct Tracked<'a, S> {
    inner: &'a mut S,
    last: &'a AtomicU64,
    epoch: Instant,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<'_, S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut *self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let ms = self.epoch.elapsed().as_millis() as u64;
            self.last.store(ms, Ordering::Relaxed);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<'_, S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A TCP echo server on loopback.
    async fn echo() -> SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        a
    }

    fn snapshot(t: SocketAddr, idle: Duration) -> Snapshot {
        let mut l = fixture::listener("t", 80, "TCP");
        l.tcp_idle_timeout = idle;
        Snapshot {
            load_balancers: vec![fixture::lb(LbKind::Network, "n", vec![l])],
            target_groups: vec![fixture::group("TCP", &[t])],
        }
    }

    #[tokio::test]
    async fn an_idle_flow_is_reset_on_its_next_packet_and_a_busy_one_lives() {
        let e = Engine::default();
        let t = echo().await;
        e.publish(
            snapshot(t, Duration::from_millis(400)),
            &crate::addr::AddressBook::default(),
        );
        let bound = e.bind(vec![ListenerBind {
            arn: "t".into(),
            ip: "127.0.0.1".parse().unwrap(),
            port: 0,
            kind: LbKind::Network,
            protocol: "TCP".into(),
            udp_idle_timeout: Duration::ZERO,
        }]);
        let lb = bound["t"];
        let mut buf = [0u8; 16];
        let mut idle = tokio::net::TcpStream::connect(lb).await.unwrap();
        idle.write_all(b"hi").await.unwrap();
        assert_eq!(idle.read(&mut buf).await.unwrap(), 2);
        // A flow that carries a byte every 100 ms lives well past the idle timeout.
        let mut busy = tokio::net::TcpStream::connect(lb).await.unwrap();
        for _ in 0..8 {
            busy.write_all(b"x").await.unwrap();
            assert_eq!(busy.read(&mut buf).await.unwrap(), 1);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The idle flow was forgotten: its next packet is answered with a reset (which the
        // write may already report).
        let w = idle.write_all(b"late").await.map_err(|e| e.kind());
        let r = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf))
            .await
            .unwrap()
            .map_err(|e| e.kind());
        use std::io::ErrorKind::{BrokenPipe, ConnectionReset};
        assert!(
            matches!(w, Err(ConnectionReset | BrokenPipe)) || r == Err(ConnectionReset),
            "{w:?} {r:?}"
        );
    }
}
