//! HOT PATH
//! NLB TCP pass-through: for each accepted connection pick an eligible target of the listener's
//! forward target group, connect, and copy bytes both ways, passing half-closes along. With no
//! target to go to, the client connection is closed (NLBs have no error pages). TLS listeners
//! terminate TLS first and pass the decrypted bytes on (re-encrypting for TLS target groups).

use super::{Action, Engine, GroupRt, Rt};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
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
    if l.spec.protocol == "TLS" {
        let Some(acceptor) = l.tls.clone() else {
            return;
        };
        let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(client));
        if let Ok(Ok(tls)) = handshake.await {
            pass(engine, &rt, &arn, tls).await;
        }
    } else {
        pass(engine, &rt, &arn, client).await;
    }
}

async fn pass<S: AsyncRead + AsyncWrite + Unpin>(
    engine: Engine,
    rt: &Rt,
    arn: &str,
    mut client: S,
) {
    let Some(group) = forward_group(rt, arn, rand::random::<u64>()) else {
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
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut up) => {}
                _ = state.left() => {}
            }
        }
    } else {
        let mut up = upstream;
        // copy_bidirectional shuts down each write side when the other side reaches EOF:
        // half-close.
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut client, &mut up) => {}
            // The target left its group (end of draining): its flows end.
            _ = state.left() => {}
        }
    }
    state.inflight.fetch_sub(1, Ordering::Relaxed);
}
