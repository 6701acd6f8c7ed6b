//! Health checks: one probe loop per target of each target group in use, with the group's
//! settings (protocol, port, path, interval, timeout, thresholds, matcher), and the state
//! machine AWS documents: a new target turns healthy after one passing check; N consecutive
//! failures make it unhealthy; M consecutive passes make an unhealthy target healthy again.

use super::{Engine, Rt, TargetState};
use crate::addr::AddressBook;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthProtocol {
    Http,
    Https,
    Tcp,
}

/// A target group's health-check settings, durations already scaled by the control plane.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthSpec {
    pub protocol: HealthProtocol,
    /// `None` = the target's traffic port.
    pub port: Option<u16>,
    pub path: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    /// Accepted status codes as inclusive ranges.
    pub matcher: Vec<(u16, u16)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum HealthState {
    Initial = 0,
    Healthy = 1,
    Unhealthy = 2,
}

/// A target's health as DescribeTargetHealth reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHealth {
    pub state: HealthState,
    /// (reason code, description), absent when healthy.
    pub reason: Option<(&'static str, String)>,
}

pub(crate) fn report(st: &TargetState) -> TargetHealth {
    let state = match st.health.load(Ordering::Relaxed) {
        1 => HealthState::Healthy,
        2 => HealthState::Unhealthy,
        _ => HealthState::Initial,
    };
    let reason = match state {
        HealthState::Healthy => None,
        HealthState::Initial => Some(
            match st.ok_run.load(Ordering::Relaxed) + st.fail_run.load(Ordering::Relaxed) {
                0 => (
                    "Elb.RegistrationInProgress",
                    "Target registration is in progress".to_string(),
                ),
                _ => (
                    "Elb.InitialHealthChecking",
                    "Initial health checks in progress".to_string(),
                ),
            },
        ),
        HealthState::Unhealthy => st.reason.lock().clone(),
    };
    TargetHealth { state, reason }
}

/// Why a probe failed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Failure {
    Timeout,
    Codes(u16),
    Failed,
}

/// Applies one probe result to the state machine.
pub(crate) fn record(st: &TargetState, spec: &HealthSpec, result: Result<(), Failure>) {
    let cur = st.health.load(Ordering::Relaxed);
    match result {
        Ok(()) => {
            st.fail_run.store(0, Ordering::Relaxed);
            let oks = st.ok_run.fetch_add(1, Ordering::Relaxed) + 1;
            let need = if cur == HealthState::Unhealthy as u8 {
                spec.healthy_threshold.max(1)
            } else {
                1
            };
            if oks >= need && cur != HealthState::Healthy as u8 {
                st.health
                    .store(HealthState::Healthy as u8, Ordering::Relaxed);
                *st.reason.lock() = None;
            }
        }
        Err(f) => {
            st.ok_run.store(0, Ordering::Relaxed);
            let fails = st.fail_run.fetch_add(1, Ordering::Relaxed) + 1;
            let reason = match f {
                Failure::Timeout => ("Target.Timeout", "Request timed out".to_string()),
                Failure::Codes(c) => (
                    "Target.ResponseCodeMismatch",
                    format!("Health checks failed with these codes: [{c}]"),
                ),
                Failure::Failed => (
                    "Target.FailedHealthChecks",
                    "Health checks failed".to_string(),
                ),
            };
            if cur == HealthState::Unhealthy as u8 {
                *st.reason.lock() = Some(reason);
            } else if fails >= spec.unhealthy_threshold.max(1) {
                *st.reason.lock() = Some(reason);
                st.health
                    .store(HealthState::Unhealthy as u8, Ordering::Relaxed);
            }
        }
    }
}

type ProbeKey = (String, IpAddr, u16);

/// Running probe loops, by target.
pub(crate) type Probes = HashMap<ProbeKey, (HealthSpec, tokio::task::AbortHandle)>;

/// Starts probes for new targets (or changed settings) and stops those no longer wanted.
pub(crate) fn sync(engine: &Engine, rt: &Rt) {
    let Some(addresses) = engine.addresses().cloned() else {
        return;
    };
    let mut wanted: HashMap<ProbeKey, (HealthSpec, Arc<TargetState>)> = HashMap::new();
    for g in rt.groups.values() {
        let Some(spec) = &g.spec.health else { continue };
        if !g.spec.in_use {
            continue;
        }
        for t in g.targets.iter().filter(|t| !t.draining) {
            wanted.insert(
                (g.spec.arn.clone(), t.ip, t.port),
                (spec.clone(), t.state.clone()),
            );
        }
    }
    let mut probes = engine.inner.probes.lock();
    probes.retain(|k, (spec, h)| {
        let keep = wanted.get(k).is_some_and(|(s, _)| s == spec);
        if !keep {
            h.abort();
        }
        keep
    });
    for (k, (spec, state)) in wanted {
        if probes.contains_key(&k) {
            continue;
        }
        let (ip, port) = (k.1, k.2);
        let s = spec.clone();
        let book = addresses.clone();
        let h = tokio::spawn(probe_loop(state, s, ip, port, book)).abort_handle();
        probes.insert(k, (spec, h));
    }
}

async fn probe_loop(
    state: Arc<TargetState>,
    spec: HealthSpec,
    ip: IpAddr,
    port: u16,
    book: AddressBook,
) {
    // A little jitter so that many targets do not probe in lockstep.
    let jitter = spec.interval.as_millis().min(1000) as u64 / 10;
    if jitter > 0 {
        tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % jitter)).await;
    }
    let mut tick = tokio::time::interval(spec.interval.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let hport = spec.port.unwrap_or(port);
        let result = match book.resolve(ip, hport) {
            // security groups drop the probe: no answer within the timeout
            _ if state.health_blocked.load(Ordering::Relaxed) => {
                tokio::time::sleep(spec.timeout).await;
                Err(Failure::Timeout)
            }
            None => Err(Failure::Failed),
            Some(addr) => match tokio::time::timeout(spec.timeout, probe(&spec, addr)).await {
                Err(_) => Err(Failure::Timeout),
                Ok(r) => r,
            },
        };
        record(&state, &spec, result);
    }
}

/// One probe: a TCP handshake, and for HTTP checks a `GET` whose status must match (over TLS
/// for HTTPS checks).
async fn probe(spec: &HealthSpec, addr: SocketAddr) -> Result<(), Failure> {
    let s = TcpStream::connect(addr)
        .await
        .map_err(|_| Failure::Failed)?;
    match spec.protocol {
        HealthProtocol::Tcp => Ok(()),
        HealthProtocol::Http => http_probe(s, spec, addr).await,
        HealthProtocol::Https => {
            let s = super::tls::connect_target(s, addr)
                .await
                .ok_or(Failure::Failed)?;
            http_probe(s, spec, addr).await
        }
    }
}

async fn http_probe<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    spec: &HealthSpec,
    addr: SocketAddr,
) -> Result<(), Failure> {
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: ELB-HealthChecker/2.0\r\nAccept-Encoding: gzip, compressed\r\nConnection: close\r\n\r\n",
        spec.path
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|_| Failure::Failed)?;
    s.flush().await.map_err(|_| Failure::Failed)?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    while !buf.windows(2).any(|w| w == b"\r\n") {
        let n = s.read(&mut chunk).await.map_err(|_| Failure::Failed)?;
        if n == 0 || buf.len() > 8192 {
            return Err(Failure::Failed);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = String::from_utf8_lossy(&buf);
    let code: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .filter(|_| line.starts_with("HTTP/1."))
        .ok_or(Failure::Failed)?;
    if spec.matcher.iter().any(|(a, b)| (*a..=*b).contains(&code)) {
        Ok(())
    } else {
        Err(Failure::Codes(code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> HealthSpec {
        HealthSpec {
            protocol: HealthProtocol::Http,
            port: None,
            path: "/".into(),
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            healthy_threshold: 3,
            unhealthy_threshold: 2,
            matcher: vec![(200, 200)],
        }
    }

    #[test]
    fn state_machine() {
        let st = TargetState::default();
        let s = spec();
        assert_eq!(report(&st).reason.unwrap().0, "Elb.RegistrationInProgress");
        record(&st, &s, Err(Failure::Codes(404)));
        assert_eq!(report(&st).state, HealthState::Initial);
        assert_eq!(report(&st).reason.unwrap().0, "Elb.InitialHealthChecking");
        record(&st, &s, Ok(()));
        assert_eq!(report(&st).state, HealthState::Healthy);
        record(&st, &s, Err(Failure::Codes(404)));
        assert_eq!(report(&st).state, HealthState::Healthy);
        record(&st, &s, Err(Failure::Codes(500)));
        let r = report(&st);
        assert_eq!(r.state, HealthState::Unhealthy);
        assert_eq!(
            r.reason.unwrap().1,
            "Health checks failed with these codes: [500]"
        );
        record(&st, &s, Ok(()));
        record(&st, &s, Ok(()));
        assert_eq!(report(&st).state, HealthState::Unhealthy);
        record(&st, &s, Ok(()));
        assert_eq!(report(&st).state, HealthState::Healthy);
        assert!(report(&st).reason.is_none());
    }
}
