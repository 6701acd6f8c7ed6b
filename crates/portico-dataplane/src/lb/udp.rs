//! HOT PATH. NLB UDP listeners (UDP and the UDP half of TCP_UDP): datagrams from a client
//! start a flow; the flow's target is chosen by a hash of the 5-tuple among the eligible
//! (healthy, or fail-open) targets, as AWS does; each flow has its own upstream UDP socket, so
//! the target's replies are sent back to the client from the listener's address. A flow ends
//! after the UDP idle timeout (AWS: 120 s) with no datagram either way, when its target leaves
//! the group, or when the listener goes away.

use super::Engine;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

/// AWS's (fixed) idle timeout for UDP flows.
pub const UDP_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Largest datagram carried.
const MAX_DATAGRAM: usize = 65_535;

/// A stable hash of a flow's 5-tuple (protocol UDP = 17, source, destination): FNV-1a with a
/// final mix so that the low bits spread well.
pub(crate) fn flow_hash(src: SocketAddr, dst: SocketAddr) -> u64 {
    fn ip_bytes(ip: IpAddr) -> Vec<u8> {
        match ip {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        }
    }
    let mut bytes = vec![17u8];
    bytes.extend(ip_bytes(src.ip()));
    bytes.extend(src.port().to_be_bytes());
    bytes.extend(ip_bytes(dst.ip()));
    bytes.extend(dst.port().to_be_bytes());
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // splitmix64 finaliser.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

struct Flow {
    upstream: UdpSocket,
    /// Milliseconds since the listener's epoch of the last datagram either way.
    last: AtomicU64,
}

type Flows = Arc<Mutex<HashMap<SocketAddr, Arc<Flow>>>>;

/// Serves one UDP listener socket until the task is dropped (listener removed), which also ends
/// every flow it started.
pub(crate) async fn serve(engine: Engine, arn: String, socket: UdpSocket, idle: Duration) {
    let socket = Arc::new(socket);
    let Ok(local) = socket.local_addr() else {
        return;
    };
    let flows: Flows = Arc::default();
    let epoch = Instant::now();
    // Dropped with this task: every flow task watches it and ends.
    let (_stop, stop_rx) = tokio::sync::watch::channel(());
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, client) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(error = %e, "udp listener receive failed");
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        let existing = flows.lock().get(&client).cloned();
        let flow = match existing {
            Some(f) => f,
            None => {
                let Some(f) = open(&engine, &arn, client, local, epoch).await else {
                    continue;
                };
                flows.lock().insert(client, f.0.clone());
                tokio::spawn(replies(
                    f.0.clone(),
                    socket.clone(),
                    client,
                    flows.clone(),
                    f.1,
                    idle,
                    epoch,
                    stop_rx.clone(),
                ));
                f.0
            }
        };
        flow.last
            .store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        let _ = flow.upstream.send(&buf[..n]).await;
    }
}

/// Starts a flow: target by 5-tuple hash, an upstream socket connected to it.
async fn open(
    engine: &Engine,
    arn: &str,
    client: SocketAddr,
    local: SocketAddr,
    epoch: Instant,
) -> Option<(Arc<Flow>, Arc<super::TargetState>)> {
    let rt = engine.rt();
    let hash = flow_hash(client, local);
    let group = super::nlb::forward_group(&rt, arn, hash)?;
    let eligible = group.eligible();
    if eligible.is_empty() {
        return None;
    }
    let target = eligible[(hash % eligible.len() as u64) as usize];
    if target.state.blocked.load(Ordering::Relaxed) {
        // security groups drop the datagrams (docs/security-groups.md)
        return None;
    }
    let addr = engine.addresses()?.resolve(target.ip, target.port)?;
    // Loopback targets (every local one) are reached from a loopback socket.
    let bind: SocketAddr = match addr.ip() {
        ip if ip.is_loopback() => (ip, 0).into(),
        IpAddr::V4(_) => (IpAddr::from([0, 0, 0, 0]), 0).into(),
        IpAddr::V6(_) => (IpAddr::from([0u16; 8]), 0).into(),
    };
    let upstream = UdpSocket::bind(bind).await.ok()?;
    upstream.connect(addr).await.ok()?;
    let flow = Arc::new(Flow {
        upstream,
        last: AtomicU64::new(epoch.elapsed().as_millis() as u64),
    });
    Some((flow, target.state.clone()))
}

/// Carries the target's datagrams back to the client until the flow ends.
#[allow(
    clippy::too_many_arguments,
    reason = "one spawned task's whole state; a struct would only rename it"
)]
async fn replies(
    flow: Arc<Flow>,
    socket: Arc<UdpSocket>,
    client: SocketAddr,
    flows: Flows,
    state: Arc<super::TargetState>,
    idle: Duration,
    epoch: Instant,
    mut stop: tokio::sync::watch::Receiver<()>,
) {
    state.inflight.fetch_add(1, Ordering::Relaxed);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let since = epoch
            .elapsed()
            .saturating_sub(Duration::from_millis(flow.last.load(Ordering::Relaxed)));
        let Some(left) = idle.checked_sub(since).filter(|d| !d.is_zero()) else {
            break;
        };
        tokio::select! {
            r = tokio::time::timeout(left, flow.upstream.recv(&mut buf)) => match r {
                Ok(Ok(n)) => {
                    flow.last.store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
                    let _ = socket.send_to(&buf[..n], client).await;
                }
                // Nothing listens at the target (ICMP port unreachable): keep the flow, as the
                // load balancer would; the idle timer still runs.
                Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(5)).await,
                Err(_) => {}
            },
            _ = state.left() => break,
            _ = stop.changed() => break,
        }
    }
    {
        let mut f = flows.lock();
        if f.get(&client).is_some_and(|cur| Arc::ptr_eq(cur, &flow)) {
            f.remove(&client);
        }
    }
    state.inflight.fetch_sub(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::*;

    /// A UDP target that answers each datagram with the source port it came from.
    async fn target() -> SocketAddr {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let a = s.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            while let Ok((_, peer)) = s.recv_from(&mut buf).await {
                let _ = s.send_to(peer.port().to_string().as_bytes(), peer).await;
            }
        });
        a
    }

    fn snapshot(t: SocketAddr) -> Snapshot {
        let mut l = fixture::listener("u", 53, "UDP");
        l.udp_idle_timeout = Duration::from_millis(300);
        Snapshot {
            load_balancers: vec![fixture::lb(LbKind::Network, "n", vec![l])],
            target_groups: vec![fixture::group("UDP", &[t])],
        }
    }

    #[tokio::test]
    async fn flows_reply_from_the_listener_and_expire_when_idle() {
        let e = Engine::default();
        let t = target().await;
        e.publish(snapshot(t), &crate::addr::AddressBook::default());
        let bound = e.bind(vec![ListenerBind {
            arn: "u".into(),
            ip: "127.0.0.1".parse().unwrap(),
            port: 0,
            kind: LbKind::Network,
            protocol: "UDP".into(),
            udp_idle_timeout: Duration::from_millis(300),
        }]);
        let lb = bound["u"];
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut buf = [0u8; 64];
        let mut ask = async || {
            client.send_to(b"hi", lb).await.unwrap();
            let (n, from) =
                tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf))
                    .await
                    .unwrap()
                    .unwrap();
            assert_eq!(from, lb, "the reply comes from the listener's address");
            String::from_utf8_lossy(&buf[..n]).into_owned()
        };
        let first = ask().await;
        assert_eq!(ask().await, first, "one flow, one upstream socket");
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_ne!(
            ask().await,
            first,
            "an idle flow expired; a new one started"
        );
    }

    #[test]
    fn flow_hash_is_stable_and_spreads() {
        let dst: SocketAddr = "127.1.2.3:53".parse().unwrap();
        let a: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        assert_eq!(flow_hash(a, dst), flow_hash(a, dst));
        assert_ne!(
            flow_hash(a, dst),
            flow_hash("127.0.0.1:40001".parse().unwrap(), dst)
        );
        assert_ne!(
            flow_hash(a, dst),
            flow_hash(a, "127.1.2.3:54".parse().unwrap())
        );
        // Consecutive source ports spread over three targets roughly evenly.
        let mut counts = [0usize; 3];
        for p in 30000..33000u16 {
            let src = SocketAddr::new(a.ip(), p);
            counts[(flow_hash(src, dst) % 3) as usize] += 1;
        }
        assert!(counts.iter().all(|c| (800..1200).contains(c)), "{counts:?}");
    }
}
