//! HOT PATH
//! NLB TCP pass-through: for each accepted connection pick an eligible target of the listener's
//! forward target group, connect, and copy bytes both ways, passing half-closes along. With no
//! target to go to, the client connection is closed (NLBs have no error pages).

use super::{Action, Engine};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::TcpStream;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) async fn serve(engine: Engine, arn: String, mut client: TcpStream) {
    let rt = engine.rt();
    let Some(l) = rt.listeners.get(&arn) else {
        return;
    };
    let Some(rule) = l.spec.rules.iter().max_by_key(|r| r.priority) else {
        return;
    };
    let Action::Forward(fwd) = &rule.action else {
        return;
    };
    let weights: Vec<u32> = fwd.groups.iter().map(|g| g.1).collect();
    let Some(i) = super::rules::pick_weighted(&weights, rand::random::<u64>()) else {
        return;
    };
    let Some(group) = rt.groups.get(&fwd.groups[i].0) else {
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
    let Ok(Ok(mut upstream)) =
        tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await
    else {
        return;
    };
    let _ = upstream.set_nodelay(true);
    state.inflight.fetch_add(1, Ordering::Relaxed);
    // copy_bidirectional shuts down each write side when the other side reaches EOF: half-close.
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
        // The target left its group (end of draining): its flows end.
        _ = state.left() => {}
    }
    state.inflight.fetch_sub(1, Ordering::Relaxed);
}
