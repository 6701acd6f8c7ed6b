//! HOT PATH. The load-balancer engine: ALB and NLB listeners. The control plane publishes a [`Snapshot`]
//! (load balancers, listeners with their rules, target groups with their targets) and asks the
//! engine to bind listener sockets ([`Engine::bind`]); the engine serves traffic from the
//! snapshot alone, health-checks the targets of target groups in use, and reports target health
//! back ([`Engine::target_health`]). A new snapshot replaces the old one atomically: requests in
//! flight keep the snapshot they started with, so changes never drop them.
//!
//! Parts: [`rules`] (pure rule matching), `alb` (HTTP proxy), `nlb` (TCP pass-through),
//! `udp` (UDP flows), [`tls`] (TLS termination and certificates), `health` (probes and the
//! health state machine), `listen` (listener sockets).

mod alb;
mod health;
mod listen;
mod nlb;
pub(crate) mod pool;
pub mod rules;
pub mod tls;
mod udp;

use crate::addr::AddressBook;
use crate::body::Body;
use crate::FastMap;
use arc_swap::ArcSwap;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub use health::{HealthState, TargetHealth};
pub use listen::ListenerBind;
pub use nlb::TCP_IDLE_TIMEOUT;
pub use rules::{Cidr, Condition, Redirect, Rule};
pub use tls::{CertPem, LinkTls, TlsSpec};
pub use udp::UDP_IDLE_TIMEOUT;

/// What a rule does (the terminal action).
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Forward(Forward),
    Fixed {
        status: u16,
        content_type: Option<String>,
        body: String,
    },
    Redirect(Redirect),
}

/// A forward to one or more weighted target groups.
#[derive(Debug, Clone, PartialEq)]
pub struct Forward {
    /// (target group ARN, weight).
    pub groups: Vec<(String, u32)>,
    /// Target-group stickiness (`AWSALBTG` cookie) and its duration.
    pub stickiness: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbKind {
    Application,
    Network,
}

/// How `X-Forwarded-For` is treated (`routing.http.xff_header_processing.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XffMode {
    #[default]
    Append,
    Preserve,
    Remove,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoadBalancerSpec {
    pub arn: String,
    pub kind: LbKind,
    /// The DNS name; requests on the main port whose Host is this name reach this LB.
    pub dns_name: String,
    pub idle_timeout: Duration,
    pub xff_mode: XffMode,
    pub xff_client_port: bool,
    pub preserve_host: bool,
    pub listeners: Vec<ListenerSpec>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListenerSpec {
    pub arn: String,
    pub port: u16,
    /// `HTTP`, `HTTPS`, `TCP`, `TLS`, `UDP`, `TCP_UDP`.
    pub protocol: String,
    /// Every rule including the default one (priority `u32::MAX`, no conditions).
    pub rules: Vec<Rule<Action>>,
    /// Certificates, ALPN and policy of an `HTTPS` or `TLS` listener (terminated here).
    pub tls: Option<TlsSpec>,
    /// How long a UDP flow lives without datagrams (zero = AWS's 120 s).
    pub udp_idle_timeout: Duration,
    /// How long an NLB TCP/TLS flow lives without bytes either way
    /// (`tcp.idle_timeout.seconds`, time-scaled; zero = AWS's 350 s).
    pub tcp_idle_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    #[default]
    RoundRobin,
    LeastOutstanding,
    WeightedRandom,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TargetGroupSpec {
    pub arn: String,
    pub protocol: String,
    /// `None` when health checks are disabled (targets then count as healthy).
    pub health: Option<health::HealthSpec>,
    pub algorithm: Algorithm,
    /// Referenced by a listener or rule of some load balancer: only then are targets probed.
    pub in_use: bool,
    /// Target stickiness (`AWSALB` cookie) duration, when `stickiness.enabled`.
    pub stickiness: Option<Duration>,
    pub targets: Vec<TargetSpec>,
    /// Fail open (route to every non-draining target) when fewer targets than this are
    /// healthy: `target_group_health.unhealthy_state_routing.minimum_healthy_targets.*`, as a
    /// count (the percentage already converted by the control plane). AWS's default is 1.
    pub min_healthy: usize,
}

pub use health::{HealthProtocol, HealthSpec};

#[derive(Debug, Clone, PartialEq)]
pub struct TargetSpec {
    /// The registered (VPC-side) address; resolved through the address book at connect time.
    pub ip: IpAddr,
    pub port: u16,
    /// Deregistration in progress: no new requests or connections.
    pub draining: bool,
    /// Security groups drop the load balancer's packets to this target's traffic port:
    /// requests time out, as on AWS (docs/security-groups.md).
    pub blocked: bool,
    /// The same for the health-check port: probes time out (`Target.Timeout`).
    pub health_blocked: bool,
}

/// Everything the engine serves, built by the control plane.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub load_balancers: Vec<LoadBalancerSpec>,
    pub target_groups: Vec<TargetGroupSpec>,
}

/// The live state of one registered target; survives snapshot swaps.
#[derive(Debug, Default)]
pub(crate) struct TargetState {
    /// A [`HealthState`] as u8.
    pub(crate) health: AtomicU8,
    pub(crate) reason: Mutex<Option<(&'static str, String)>>,
    pub(crate) ok_run: AtomicU32,
    pub(crate) fail_run: AtomicU32,
    pub(crate) inflight: AtomicUsize,
    /// Set when the target leaves its group (end of draining): requests still waiting on it
    /// give up with a 502, as AWS's do when the deregistration delay expires.
    pub(crate) gone: std::sync::atomic::AtomicBool,
    pub(crate) gone_notify: tokio::sync::Notify,
    /// [`TargetSpec::blocked`] and [`TargetSpec::health_blocked`] of the latest snapshot.
    pub(crate) blocked: std::sync::atomic::AtomicBool,
    pub(crate) health_blocked: std::sync::atomic::AtomicBool,
}

impl TargetState {
    /// Resolves once the target has left its group.
    pub(crate) async fn left(&self) {
        loop {
            let n = self.gone_notify.notified();
            if self.gone.load(Ordering::Acquire) {
                return;
            }
            n.await;
        }
    }
}

pub(crate) struct TargetRt {
    pub(crate) ip: IpAddr,
    pub(crate) port: u16,
    pub(crate) draining: bool,
    pub(crate) state: Arc<TargetState>,
}

pub(crate) struct GroupRt {
    pub(crate) spec: TargetGroupSpec,
    pub(crate) targets: Vec<TargetRt>,
    pub(crate) rr: Arc<AtomicUsize>,
}

pub(crate) struct ListenerRt {
    pub(crate) spec: ListenerSpec,
    pub(crate) lb: Arc<LoadBalancerSpec>,
    /// The TLS acceptor of an HTTPS/TLS listener (`None` when its certificates are unusable:
    /// connections are then closed).
    pub(crate) tls: Option<tokio_rustls::TlsAcceptor>,
}

/// The routing table built from one snapshot.
#[derive(Default)]
pub(crate) struct Rt {
    pub(crate) listeners: FastMap<String, Arc<ListenerRt>>,
    /// Lower-cased DNS name -> (port, listener ARN) of its HTTP listeners.
    pub(crate) hosts: FastMap<String, Vec<(u16, Arc<str>)>>,
    pub(crate) groups: FastMap<String, Arc<GroupRt>>,
}

type TargetKey = (String, IpAddr, u16);

/// The targets a request may go to; inline (no allocation per request) up to 8.
pub(crate) type Eligible<'a> = smallvec::SmallVec<[&'a TargetRt; 8]>;

struct Inner {
    rt: ArcSwap<Rt>,
    targets: Mutex<HashMap<TargetKey, Arc<TargetState>>>,
    round_robin: Mutex<HashMap<String, Arc<AtomicUsize>>>,
    addresses: OnceLock<AddressBook>,
    pool: Arc<pool::Pool>,
    probes: Mutex<health::Probes>,
    bound: Mutex<listen::Bound>,
    /// TLS acceptors by listener, rebuilt only when the listener's [`TlsSpec`] changes.
    tls: Mutex<HashMap<String, (TlsSpec, Option<tokio_rustls::TlsAcceptor>)>>,
}

/// The ALB/NLB engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Default for Engine {
    fn default() -> Self {
        Engine {
            inner: Arc::new(Inner {
                rt: ArcSwap::default(),
                targets: Mutex::default(),
                round_robin: Mutex::default(),
                addresses: OnceLock::new(),
                pool: Arc::default(),
                probes: Mutex::default(),
                bound: Mutex::default(),
                tls: Mutex::default(),
            }),
        }
    }
}

/// What an HTTP API that hands a request to an ALB through a VPC link already knows.
#[derive(Clone, Copy, Debug)]
pub struct LinkCall {
    /// The integration timeout: the caller gives up then.
    pub timeout: std::time::Duration,
    /// The request carries no hop-by-hop header (the HTTP API dropped them and no parameter
    /// mapping added any): the ALB need not look for them.
    pub clean: bool,
    /// When the request arrived, in epoch seconds (the ALB's trace id needs no clock read).
    pub epoch_secs: u64,
}

impl Engine {
    /// Replaces what the engine serves. Targets keep their health across snapshots; targets no
    /// longer present are forgotten (a re-registration starts again at `initial`). Must run
    /// inside a tokio runtime (it starts and stops health probes).
    pub fn publish(&self, snapshot: Snapshot, addresses: &AddressBook) {
        let _ = self.inner.addresses.set(addresses.clone());
        let mut groups = FastMap::default();
        {
            let mut states = self.inner.targets.lock();
            let mut rrs = self.inner.round_robin.lock();
            let mut keep = std::collections::HashSet::new();
            let mut keep_rr = std::collections::HashSet::new();
            for g in snapshot.target_groups {
                let targets = g
                    .targets
                    .iter()
                    .map(|t| {
                        let key = (g.arn.clone(), t.ip, t.port);
                        let state = states.entry(key.clone()).or_default().clone();
                        state.blocked.store(t.blocked, Ordering::Relaxed);
                        state
                            .health_blocked
                            .store(t.health_blocked, Ordering::Relaxed);
                        keep.insert(key);
                        TargetRt {
                            ip: t.ip,
                            port: t.port,
                            draining: t.draining,
                            state,
                        }
                    })
                    .collect();
                let rr = rrs.entry(g.arn.clone()).or_default().clone();
                keep_rr.insert(g.arn.clone());
                groups.insert(
                    g.arn.clone(),
                    Arc::new(GroupRt {
                        spec: g,
                        targets,
                        rr,
                    }),
                );
            }
            states.retain(|k, st| {
                let stay = keep.contains(k);
                if !stay {
                    st.gone.store(true, Ordering::Release);
                    st.gone_notify.notify_waiters();
                }
                stay
            });
            rrs.retain(|k, _| keep_rr.contains(k));
        }
        let mut listeners = FastMap::default();
        let mut hosts: FastMap<String, Vec<(u16, Arc<str>)>> = FastMap::default();
        let mut tls_cache = self.inner.tls.lock();
        let mut keep_tls = std::collections::HashSet::new();
        for lb in snapshot.load_balancers {
            let lb = Arc::new(lb);
            for l in &lb.listeners {
                if lb.kind == LbKind::Application {
                    hosts
                        .entry(lb.dns_name.to_ascii_lowercase())
                        .or_default()
                        .push((l.port, Arc::from(l.arn.as_str())));
                }
                let tls = l.tls.as_ref().and_then(|spec| {
                    keep_tls.insert(l.arn.clone());
                    match tls_cache.get(&l.arn) {
                        Some((s, a)) if s == spec => a.clone(),
                        _ => {
                            let a = tls::acceptor(spec)
                                .map_err(|e| {
                                    tracing::warn!(listener = %l.arn, error = %e, "listener has no usable certificate");
                                })
                                .ok();
                            tls_cache.insert(l.arn.clone(), (spec.clone(), a.clone()));
                            a
                        }
                    }
                });
                listeners.insert(
                    l.arn.clone(),
                    Arc::new(ListenerRt {
                        spec: l.clone(),
                        lb: lb.clone(),
                        tls,
                    }),
                );
            }
        }
        tls_cache.retain(|k, _| keep_tls.contains(k));
        drop(tls_cache);
        let rt = Arc::new(Rt {
            listeners,
            hosts,
            groups,
        });
        health::sync(self, &rt);
        self.inner.rt.store(rt);
    }

    /// Makes the bound listener sockets match `wanted`; returns where each listener really
    /// listens (its own address and port when free, else an allocated port).
    pub fn bind(&self, wanted: Vec<ListenerBind>) -> HashMap<String, SocketAddr> {
        listen::sync(self, wanted)
    }

    /// Serves an HTTP request as if it had arrived on the given ALB listener: rules, health,
    /// weights and AWS's error pages, exactly as on the listener's socket. `None` when no such
    /// listener (or it is not an HTTP listener). API Gateway's VPC links call this in-process.
    pub async fn serve_http(
        &self,
        listener_arn: &str,
        req: http::Request<Body>,
        client_ip: IpAddr,
    ) -> Option<http::Response<Body>> {
        let rt = self.inner.rt.load_full();
        let l = rt.listeners.get(listener_arn)?.clone();
        if l.lb.kind != LbKind::Application {
            return None;
        }
        Some(alb::serve(self, &rt, &l, req, SocketAddr::new(client_ip, 0), None).await)
    }

    /// A request from an API Gateway VPC link with the integration's `tlsConfig` (`tls`): with
    /// one, the TLS handshake API Gateway would make with the listener must succeed (`Err`
    /// with why not: the listener speaks plain HTTP, or its certificate does not cover
    /// `serverNameToVerify`); without one, an HTTPS listener answers the plain request with
    /// its 400 page. Otherwise as [`Engine::serve_http`]. An NLB listener is reached only with
    /// a `tlsConfig` (plain requests to an NLB go to its socket by the caller): over TLS to its
    /// socket, the NLB's own certificate (TLS listener) or the target's (TCP) checked.
    pub async fn serve_link(
        &self,
        listener_arn: &str,
        req: http::Request<Body>,
        client_ip: IpAddr,
        tls: Option<&LinkTls>,
    ) -> Option<Result<http::Response<Body>, String>> {
        self.serve_link_within(listener_arn, req, client_ip, tls, None)
            .await
    }

    /// [`Engine::serve_link`] for an HTTP API's integration request (`outer`): the ALB arms
    /// its own idle timer only if it could fire before the integration timeout, and takes what
    /// the caller already knows about the request (see [`LinkCall`]).
    pub async fn serve_link_within(
        &self,
        listener_arn: &str,
        req: http::Request<Body>,
        client_ip: IpAddr,
        tls: Option<&LinkTls>,
        outer: Option<LinkCall>,
    ) -> Option<Result<http::Response<Body>, String>> {
        let rt = self.inner.rt.load_full();
        let l = rt.listeners.get(listener_arn)?.clone();
        if l.lb.kind != LbKind::Application {
            let addr = self.local_address(listener_arn)?;
            // boxed, as the handshake below: the plain path's future stays as small as it was
            return Some(Box::pin(pool::send_link(&self.inner.pool, addr, req, tls?)).await);
        }
        match tls {
            None if l.spec.protocol == "HTTPS" => return Some(Ok(tls::plain_http_to_https_port())),
            None => {}
            Some(t) => {
                if let Err(e) = Box::pin(tls::link_check(&l, t)).await {
                    return Some(Err(e));
                }
            }
        }
        Some(Ok(alb::serve(
            self,
            &rt,
            &l,
            req,
            SocketAddr::new(client_ip, 0),
            outer,
        )
        .await))
    }

    /// The HTTP listener a request on the main port addressed to `host` (an ALB's DNS name,
    /// optionally with `:port`) belongs to: the listener on that port, else on port 80, else
    /// the only listener.
    /// (An `Arc`: this runs per request on the main port, and the ARN is not copied.)
    pub fn listener_for_host(&self, host: &str) -> Option<Arc<str>> {
        let (name, port) = match host.rsplit_once(':') {
            Some((n, p)) => (n, p.parse::<u16>().ok()),
            None => (host, None),
        };
        let rt = self.inner.rt.load();
        // DNS names are stored in lower case; most clients send them so (no copy then)
        let ls = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            rt.hosts.get(&name.to_ascii_lowercase())
        } else {
            rt.hosts.get(name)
        }?;
        let by_port = |p: u16| ls.iter().find(|(lp, _)| *lp == p).map(|(_, a)| a.clone());
        match port {
            Some(p) => by_port(p),
            None => by_port(80).or_else(|| (ls.len() == 1).then(|| ls[0].1.clone())),
        }
    }

    /// Health of one target as the engine sees it; `None` when it is not being tracked (not
    /// registered, or its target group is not in use).
    pub fn target_health(&self, tg_arn: &str, ip: IpAddr, port: u16) -> Option<TargetHealth> {
        let st = self
            .inner
            .targets
            .lock()
            .get(&(tg_arn.to_string(), ip, port))
            .cloned()?;
        Some(health::report(&st))
    }

    /// Where a listener is bound, if it is.
    pub fn local_address(&self, listener_arn: &str) -> Option<SocketAddr> {
        listen::local_address(self, listener_arn)
    }

    pub(crate) fn addresses(&self) -> Option<&AddressBook> {
        self.inner.addresses.get()
    }

    pub(crate) fn rt(&self) -> Arc<Rt> {
        self.inner.rt.load_full()
    }
}

impl GroupRt {
    /// The targets a new request or connection may go to: healthy, non-draining ones; when none
    /// is healthy, every non-draining target (AWS's fail-open). Empty when nothing is routable.
    pub(crate) fn eligible(&self) -> Eligible<'_> {
        let live: Eligible<'_> = self.targets.iter().filter(|t| !t.draining).collect();
        if self.spec.health.is_none() || !self.spec.in_use {
            return live;
        }
        let healthy: Eligible<'_> = live
            .iter()
            .copied()
            .filter(|t| t.state.health.load(Ordering::Relaxed) == HealthState::Healthy as u8)
            .collect();
        if healthy.len() < self.spec.min_healthy.max(1) {
            live
        } else {
            healthy
        }
    }

    /// Picks one target by the group's algorithm.
    pub(crate) fn pick<'a>(&self, eligible: &[&'a TargetRt]) -> Option<&'a TargetRt> {
        if eligible.is_empty() {
            return None;
        }
        let n = self.rr.fetch_add(1, Ordering::Relaxed);
        match self.spec.algorithm {
            Algorithm::RoundRobin => Some(eligible[n % eligible.len()]),
            Algorithm::WeightedRandom => {
                Some(eligible[crate::rng::random::<usize>() % eligible.len()])
            }
            Algorithm::LeastOutstanding => {
                let len = eligible.len();
                (0..len)
                    .map(|i| eligible[(n + i) % len])
                    .min_by_key(|t| t.state.inflight.load(Ordering::Relaxed))
            }
        }
    }
}

/// Snapshots for the engine's unit tests: one load balancer `lb`, listeners whose one rule
/// forwards everything to target group `tg`.
#[cfg(test)]
pub(crate) mod fixture {
    use super::*;

    /// Load balancer `lb` of `kind` named `dns_name`, idle timeout 5 s.
    pub(crate) fn lb(
        kind: LbKind,
        dns_name: &str,
        listeners: Vec<ListenerSpec>,
    ) -> LoadBalancerSpec {
        LoadBalancerSpec {
            arn: "lb".into(),
            kind,
            dns_name: dns_name.into(),
            idle_timeout: Duration::from_secs(5),
            xff_mode: XffMode::Append,
            xff_client_port: false,
            preserve_host: false,
            listeners,
        }
    }

    /// A listener without TLS or flow timeouts whose only rule forwards to `tg`.
    pub(crate) fn listener(arn: &str, port: u16, protocol: &str) -> ListenerSpec {
        ListenerSpec {
            arn: arn.into(),
            port,
            protocol: protocol.into(),
            rules: vec![Rule {
                priority: u32::MAX,
                conditions: vec![],
                action: Action::Forward(Forward {
                    groups: vec![("tg".into(), 1)],
                    stickiness: None,
                }),
            }],
            tls: None,
            udp_idle_timeout: Duration::ZERO,
            tcp_idle_timeout: Duration::ZERO,
        }
    }

    /// Target group `tg` (round robin, no health checks) with these targets.
    pub(crate) fn group(protocol: &str, targets: &[SocketAddr]) -> TargetGroupSpec {
        TargetGroupSpec {
            arn: "tg".into(),
            protocol: protocol.into(),
            health: None,
            algorithm: Algorithm::RoundRobin,
            in_use: true,
            stickiness: None,
            targets: targets
                .iter()
                .map(|t| TargetSpec {
                    ip: t.ip(),
                    port: t.port(),
                    draining: false,
                    blocked: false,
                    health_blocked: false,
                })
                .collect(),
            min_healthy: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// A one-response-per-connection HTTP server that echoes the X-Forwarded-For it got.
    async fn backend() -> SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    let req = String::from_utf8_lossy(&buf[..n]).to_lowercase();
                    let xff = req
                        .lines()
                        .find_map(|l| l.strip_prefix("x-forwarded-for: "))
                        .unwrap_or("-")
                        .trim()
                        .to_string();
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{xff}",
                        xff.len()
                    );
                    let _ = s.write_all(resp.as_bytes()).await;
                });
            }
        });
        a
    }

    fn snapshot(targets: Vec<TargetSpec>) -> Snapshot {
        let mut l = fixture::listener("l", 80, "HTTP");
        l.rules.insert(
            0,
            Rule {
                priority: 5,
                conditions: vec![Condition::Path(vec!["/fixed".into()])],
                action: Action::Fixed {
                    status: 418,
                    content_type: Some("text/plain".into()),
                    body: "tea".into(),
                },
            },
        );
        let mut group = fixture::group("HTTP", &[]);
        group.targets = targets;
        Snapshot {
            load_balancers: vec![fixture::lb(
                LbKind::Application,
                "internal-x-1.us-east-1.elb.localhost",
                vec![l],
            )],
            target_groups: vec![group],
        }
    }

    #[allow(clippy::disallowed_methods, reason = "the body is wrapped in Limited")]
    async fn get(e: &Engine, path: &str) -> (u16, String) {
        let req = http::Request::builder()
            .uri(path)
            .header("host", "x")
            .body(crate::body::empty())
            .unwrap();
        let r = e
            .serve_http("l", req, "10.1.2.3".parse().unwrap())
            .await
            .unwrap();
        let s = r.status().as_u16();
        let b = http_body_util::Limited::new(r.into_body(), 1 << 20)
            .collect()
            .await
            .unwrap()
            .to_bytes();
        (s, String::from_utf8_lossy(&b).into_owned())
    }

    #[tokio::test]
    async fn serve_http_forwards_and_fails_like_an_alb() {
        let e = Engine::default();
        let book = AddressBook::default();
        e.publish(snapshot(vec![]), &book);
        assert_eq!(get(&e, "/").await.0, 503);
        assert_eq!(get(&e, "/fixed").await, (418, "tea".into()));
        let a = backend().await;
        let private: IpAddr = "10.0.3.7".parse().unwrap();
        book.bind(private, 8080, a);
        let t = |port| TargetSpec {
            ip: private,
            port,
            draining: false,
            blocked: false,
            health_blocked: false,
        };
        e.publish(snapshot(vec![t(8080)]), &book);
        assert_eq!(get(&e, "/").await, (200, "10.1.2.3".into()));
        // Nothing listens behind 10.0.3.7:9: the address book has no entry -> 502.
        e.publish(snapshot(vec![t(9)]), &book);
        assert_eq!(get(&e, "/").await.0, 502);
        assert!(e
            .serve_http("nope", http::Request::new(crate::body::empty()), private)
            .await
            .is_none());
        assert_eq!(
            e.listener_for_host("INTERNAL-x-1.us-east-1.elb.localhost"),
            Some("l".into())
        );
    }

    #[tokio::test]
    async fn removing_a_target_ends_its_requests_with_502() {
        let e = Engine::default();
        let book = AddressBook::default();
        // A target that accepts and never answers.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = l.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                held.push(s);
            }
        });
        let t = TargetSpec {
            ip: a.ip(),
            port: a.port(),
            draining: false,
            blocked: false,
            health_blocked: false,
        };
        e.publish(snapshot(vec![t.clone()]), &book);
        let (r, ()) = tokio::join!(get(&e, "/"), async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            // Draining: the request in flight continues...
            e.publish(
                snapshot(vec![TargetSpec {
                    draining: true,
                    ..t.clone()
                }]),
                &book,
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
            // ...until the target leaves the group.
            e.publish(snapshot(vec![]), &book);
        });
        assert_eq!(r.0, 502);
        // With only a draining target, new requests find nothing routable.
        e.publish(
            snapshot(vec![TargetSpec {
                draining: true,
                ..t
            }]),
            &book,
        );
        assert_eq!(get(&e, "/").await.0, 503);
    }

    #[tokio::test]
    async fn a_blocked_target_times_out_until_unblocked() {
        let e = Engine::default();
        let book = AddressBook::default();
        let a = backend().await;
        let mut s = snapshot(vec![TargetSpec {
            ip: a.ip(),
            port: a.port(),
            draining: false,
            blocked: true,
            health_blocked: true,
        }]);
        s.load_balancers[0].idle_timeout = Duration::from_millis(100);
        s.target_groups[0].health = Some(HealthSpec {
            protocol: HealthProtocol::Http,
            port: None,
            path: "/".into(),
            interval: Duration::from_millis(20),
            timeout: Duration::from_millis(20),
            healthy_threshold: 1,
            unhealthy_threshold: 1,
            matcher: vec![(200, 200)],
        });
        e.publish(s.clone(), &book);
        // security groups drop the connection attempt: the ALB gives up with a 504
        assert_eq!(get(&e, "/").await.0, 504);
        let health = || e.target_health("tg", a.ip(), a.port()).unwrap();
        for _ in 0..200 {
            if health().state == HealthState::Unhealthy {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(health().reason.unwrap().0, "Target.Timeout");
        s.target_groups[0].targets[0].blocked = false;
        s.target_groups[0].targets[0].health_blocked = false;
        e.publish(s.clone(), &book);
        for _ in 0..200 {
            if health().state == HealthState::Healthy {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(health().state, HealthState::Healthy);
        assert_eq!(get(&e, "/").await, (200, "10.1.2.3".into()));
        // only the health-check port dropped: unhealthy, and the ALB fails open to it
        s.target_groups[0].targets[0].health_blocked = true;
        e.publish(s, &book);
        for _ in 0..200 {
            if health().state == HealthState::Unhealthy {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(health().reason.unwrap().0, "Target.Timeout");
        assert_eq!(get(&e, "/").await, (200, "10.1.2.3".into()));
    }

    #[test]
    fn fail_open_below_minimum_healthy() {
        let target = |port, health: HealthState, draining| {
            let state = Arc::new(TargetState::default());
            state.health.store(health as u8, Ordering::Relaxed);
            TargetRt {
                ip: "10.0.0.1".parse().unwrap(),
                port,
                draining,
                state,
            }
        };
        let mut g = GroupRt {
            spec: snapshot(vec![]).target_groups.remove(0),
            targets: vec![
                target(1, HealthState::Healthy, false),
                target(2, HealthState::Unhealthy, false),
                target(3, HealthState::Initial, false),
                target(4, HealthState::Healthy, true),
            ],
            rr: Arc::default(),
        };
        g.spec.health = Some(HealthSpec {
            protocol: HealthProtocol::Http,
            port: None,
            path: "/".into(),
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            healthy_threshold: 2,
            unhealthy_threshold: 2,
            matcher: vec![(200, 200)],
        });
        let ports = |g: &GroupRt| g.eligible().iter().map(|t| t.port).collect::<Vec<_>>();
        assert_eq!(ports(&g), vec![1]);
        g.spec.min_healthy = 2;
        assert_eq!(ports(&g), vec![1, 2, 3]);
        g.spec.min_healthy = 1;
        g.targets[0] = target(1, HealthState::Unhealthy, false);
        assert_eq!(ports(&g), vec![1, 2, 3]);
    }
}
