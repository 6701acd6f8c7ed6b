//! The ELBv2 reconciler: turns the stored load balancers, listeners, rules and target groups into
//! the data plane's snapshot, binds each listener's socket (the LB's own 127.x.y.z on the
//! listener port, else an allocated port), records where it listens, maps each LB ENI's private
//! address to it in the address book, moves load balancers from `provisioning` to `active` once
//! their sockets are bound, and removes draining targets when their deregistration delay ends.
//! HTTPS/TLS listeners get their certificates here: IAM server certificates by ARN, and for ACM
//! ARNs (Portico has no ACM) a self-signed certificate for the load balancer's DNS name, made
//! once and stored on the load balancer record.
//! Idempotent: a run with nothing new changes nothing and writes nothing.

use crate::services::elbv2::model::{
    self, Listener, LoadBalancer, Rule, TargetGroup, KIND_LB, KIND_LISTENER, KIND_RULE, KIND_TG,
};
use crate::Control;
use portico_core::AwsResult;
use portico_dataplane::lb as dp;
use portico_store::{Record, Scope, Tx};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The kinds whose changes this reconciler follows: its own, and the security groups, ENIs and
/// VPCs that decide which targets the load balancers reach; IAM server certificates are what TLS
/// listeners serve.
const FOLLOWED: &[&str] = &["elbv2.", "ec2.sg", "ec2.eni", "ec2.vpc", "iam."];

pub(crate) fn spawn(control: &Control) {
    let mut mapped: HashSet<(IpAddr, u16)> = HashSet::new();
    let mut self_signed: HashMap<String, dp::CertPem> = HashMap::new();
    let feed = control.store().feed(FOLLOWED);
    let mut cache = Cache::default();
    super::spawn_loop_on(
        control,
        "elbv2",
        Duration::from_millis(500),
        FOLLOWED,
        move |c| {
            if let Err(e) = step(&c, &feed, &mut cache, &mut mapped, &mut self_signed) {
                tracing::error!(error = %e, cause = ?e.cause, "elbv2 reconcile failed");
            }
            async {}
        },
    );
}

/// The parsed records of one kind, in store order (`list_all` order: by the store's `seq`, which
/// a record gets when created and keeps when updated; positions here are given the same way).
struct Kind<T> {
    by_pos: BTreeMap<u64, (Scope, T)>,
    pos_of: HashMap<(Scope, String), u64>,
    next: u64,
}

impl<T> Default for Kind<T> {
    fn default() -> Self {
        Kind {
            by_pos: BTreeMap::new(),
            pos_of: HashMap::new(),
            next: 0,
        }
    }
}

impl<T: serde::de::DeserializeOwned> Kind<T> {
    fn load(tx: &Tx<'_>, kind: &str) -> AwsResult<Kind<T>> {
        let mut k = Kind::default();
        for r in tx.list_all(kind)? {
            k.put(r);
        }
        Ok(k)
    }

    fn put(&mut self, r: Record) {
        let key = (r.scope.clone(), r.id);
        let pos = match self.pos_of.get(&key) {
            Some(p) => *p,
            None => {
                self.next += 1;
                self.pos_of.insert(key, self.next);
                self.next
            }
        };
        // a body that does not parse is left out, as a full read leaves it out
        match serde_json::from_value::<T>(r.body) {
            Ok(v) => self.by_pos.insert(pos, (r.scope, v)),
            Err(_) => self.by_pos.remove(&pos),
        };
    }

    /// Re-reads one record after a change (put or delete).
    fn refresh(&mut self, tx: &Tx<'_>, scope: &Scope, kind: &str, id: &str) -> AwsResult<()> {
        match tx.get(scope, kind, id)? {
            Some(r) => self.put(r),
            None => {
                if let Some(pos) = self.pos_of.remove(&(scope.clone(), id.to_string())) {
                    self.by_pos.remove(&pos);
                }
            }
        }
        Ok(())
    }

    fn iter(&self) -> impl Iterator<Item = &(Scope, T)> {
        self.by_pos.values()
    }
}

/// What the last pass read, kept up to date from the change feed so a pass re-reads only the
/// records written since (at hundreds of target groups, re-reading and parsing every record on
/// every ELB write was a fifth of the server's CPU).
#[derive(Default)]
struct Cache {
    loaded: bool,
    lbs: Kind<LoadBalancer>,
    listeners: Kind<Listener>,
    rules: Kind<Rule>,
    tgs: Kind<TargetGroup>,
    /// Dropped when a VPC, group, ENI, load balancer or listener changes.
    net: Option<super::vpc_reach::Network>,
    /// Dropped when an IAM record changes.
    certs: Option<HashMap<String, dp::CertPem>>,
    /// The last pass wrote nothing and bound every listener: with no change since, and before
    /// `next_drain`, a pass would do nothing.
    settled: bool,
    next_drain: Option<i64>,
}

impl Cache {
    /// Brings the cache up to date with `changes` (everything when not loaded yet).
    fn apply(&mut self, tx: &Tx<'_>, changes: &portico_store::Changes) -> AwsResult<()> {
        if !self.loaded || changes.everything {
            *self = Cache {
                lbs: Kind::load(tx, KIND_LB)?,
                listeners: Kind::load(tx, KIND_LISTENER)?,
                rules: Kind::load(tx, KIND_RULE)?,
                tgs: Kind::load(tx, KIND_TG)?,
                loaded: true,
                ..Cache::default()
            };
            return Ok(());
        }
        for ch in &changes.changes {
            let (scope, kind, id) = (&ch.scope, ch.kind.as_str(), ch.id.as_str());
            match kind {
                KIND_LB => {
                    self.lbs.refresh(tx, scope, kind, id)?;
                    self.net = None;
                }
                KIND_LISTENER => {
                    self.listeners.refresh(tx, scope, kind, id)?;
                    self.net = None;
                }
                KIND_RULE => self.rules.refresh(tx, scope, kind, id)?,
                KIND_TG => self.tgs.refresh(tx, scope, kind, id)?,
                k if k.starts_with("iam.") => self.certs = None,
                k if k.starts_with("ec2.") => self.net = None,
                _ => {}
            }
        }
        Ok(())
    }

    /// Loads the network and certificates if this pass needs them and they are not cached.
    fn fill(&mut self, tx: &Tx<'_>) -> AwsResult<()> {
        if self.net.is_none() && !self.lbs.by_pos.is_empty() {
            self.net = Some(super::vpc_reach::Network::load(tx)?);
        }
        // Server certificates (with their keys) are read only when some listener needs them.
        let tls = self
            .listeners
            .iter()
            .any(|(_, l)| matches!(l.protocol.as_str(), "HTTPS" | "TLS"));
        if self.certs.is_none() && tls {
            self.certs = Some(
                crate::services::iam::server_certs::all(tx)?
                    .into_iter()
                    .collect(),
            );
        }
        Ok(())
    }
}

fn scaled(c: &Control, secs: i64) -> Duration {
    let s = c.config().time_scale;
    let s = if s > 0.0 && s < 1.0 { s } else { 1.0 };
    Duration::from_secs_f64((secs.max(0) as f64 * s).max(0.05))
}

/// A TCP/TLS listener's `tcp.idle_timeout.seconds` (AWS's 350 s unless modified).
fn tcp_idle_secs(l: &Listener) -> i64 {
    l.attributes
        .get("tcp.idle_timeout.seconds")
        .and_then(|v| v.parse().ok())
        .unwrap_or(dp::TCP_IDLE_TIMEOUT.as_secs() as i64)
}

fn tg_spec(c: &Control, tg: &TargetGroup, in_use: bool) -> dp::TargetGroupSpec {
    let h = &tg.health;
    let health = h.enabled.then(|| {
        let http = h.protocol != "TCP";
        let default_matcher = if matches!(tg.protocol.as_str(), "HTTP" | "HTTPS") {
            "200"
        } else {
            "200-399"
        };
        dp::HealthSpec {
            protocol: match h.protocol.as_str() {
                "HTTP" => dp::HealthProtocol::Http,
                "HTTPS" => dp::HealthProtocol::Https,
                _ => dp::HealthProtocol::Tcp,
            },
            port: h.port.parse().ok(),
            path: h.path.clone().unwrap_or_else(|| "/".into()),
            interval: scaled(c, h.interval),
            timeout: scaled(c, h.timeout),
            healthy_threshold: h.healthy_threshold as u32,
            unhealthy_threshold: h.unhealthy_threshold as u32,
            matcher: if http {
                crate::services::elbv2::tg_matcher(h.matcher.as_deref().unwrap_or(default_matcher))
            } else {
                vec![]
            },
        }
    });
    let attr = |k: &str| tg.attributes.get(k).map(String::as_str);
    let algorithm = match attr("load_balancing.algorithm.type") {
        Some("least_outstanding_requests") => dp::Algorithm::LeastOutstanding,
        Some("weighted_random") => dp::Algorithm::WeightedRandom,
        _ => dp::Algorithm::RoundRobin,
    };
    let stickiness = (attr("stickiness.enabled") == Some("true")
        && attr("stickiness.type") == Some("lb_cookie"))
    .then(|| {
        Duration::from_secs(
            attr("stickiness.lb_cookie.duration_seconds")
                .and_then(|v| v.parse().ok())
                .unwrap_or(86400),
        )
    });
    let live = tg
        .targets
        .iter()
        .filter(|t| t.draining_until_ms.is_none())
        .count();
    let by_count: usize =
        attr("target_group_health.unhealthy_state_routing.minimum_healthy_targets.count")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
    let by_percent =
        attr("target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage")
            .and_then(|v| v.parse::<usize>().ok())
            .map(|p| (live * p).div_ceil(100))
            .unwrap_or(0);
    dp::TargetGroupSpec {
        min_healthy: by_count.max(by_percent),
        arn: tg.arn.clone(),
        protocol: tg.protocol.clone(),
        health,
        algorithm,
        in_use,
        stickiness,
        targets: tg
            .targets
            .iter()
            .filter_map(|t| {
                Some(dp::TargetSpec {
                    ip: t.id.parse().ok()?,
                    port: t.port,
                    draining: t.draining_until_ms.is_some(),
                    blocked: false,
                    health_blocked: false,
                })
            })
            .collect(),
    }
}

/// ALPN protocol ids for a listener: ALBs offer h2 and HTTP/1.1 (HTTP/1.1 only with
/// `routing.http2.enabled=false`); NLB TLS listeners follow their `AlpnPolicy`.
fn alpn(protocol: &str, policy: Option<&[String]>, http2: bool) -> Vec<String> {
    let ids: &[&str] = if protocol == "HTTPS" {
        if http2 {
            &["h2", "http/1.1"]
        } else {
            &["http/1.1"]
        }
    } else {
        match policy.and_then(|p| p.first()).map(String::as_str) {
            Some("HTTP1Only") => &["http/1.1"],
            Some("HTTP2Only") => &["h2"],
            Some("HTTP2Optional") => &["http/1.1", "h2"],
            Some("HTTP2Preferred") => &["h2", "http/1.1"],
            _ => &[],
        }
    };
    ids.iter().map(|s| s.to_string()).collect()
}

/// What an HTTPS/TLS listener serves: its certificates in order (default first).
/// `generated` collects the self-signed certificates made in this run (to be stored on their
/// load balancer).
fn tls_spec(
    l: &Listener,
    lb: &LoadBalancer,
    iam: &HashMap<String, dp::CertPem>,
    self_signed: &mut HashMap<String, dp::CertPem>,
    generated: &mut HashMap<String, dp::CertPem>,
) -> Option<dp::TlsSpec> {
    if !matches!(l.protocol.as_str(), "HTTPS" | "TLS") {
        return None;
    }
    let mut certificates = Vec::new();
    for c in &l.certificates {
        let Some(arn) = c.get("CertificateArn").and_then(|v| v.as_str()) else {
            continue;
        };
        if let Some(pem) = iam.get(arn) {
            certificates.push(pem.clone());
        } else if arn.split(':').nth(2) == Some("acm") {
            if let Some(c) = &lb.local_certificate {
                certificates.push(dp::CertPem {
                    certificate: c.certificate.clone(),
                    chain: None,
                    private_key: c.private_key.clone(),
                });
                continue;
            }
            let name = lb.dns_name.to_ascii_lowercase();
            if !self_signed.contains_key(&name) {
                match dp::tls::self_signed(&name) {
                    Ok(pem) => {
                        self_signed.insert(name.clone(), pem);
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot make a self-signed certificate"),
                }
            }
            if let Some(pem) = self_signed.get(&name) {
                generated.insert(lb.arn.clone(), pem.clone());
                certificates.push(pem.clone());
            }
        }
    }
    Some(dp::TlsSpec {
        certificates,
        alpn: alpn(
            &l.protocol,
            l.alpn_policy.as_deref(),
            lb.attributes
                .get("routing.http2.enabled")
                .map(String::as_str)
                != Some("false"),
        ),
        tls13_only: l
            .ssl_policy
            .as_deref()
            .is_some_and(|p| p.contains("TLS13-1-3")),
    })
}

fn step(
    c: &Control,
    feed: &portico_store::ChangeFeed,
    cache: &mut Cache,
    mapped: &mut HashSet<(IpAddr, u16)>,
    self_signed: &mut HashMap<String, dp::CertPem>,
) -> AwsResult<()> {
    // taken before the read: a commit after this is either in the read or in the next take
    let changes = feed.take();
    let now = portico_core::time::now_millis();
    if cache.loaded
        && changes.is_empty()
        && cache.settled
        && cache.next_drain.is_none_or(|d| now < d)
    {
        return Ok(());
    }
    cache.settled = false;
    let r = c.store().read(|tx| {
        cache.apply(tx, &changes)?;
        cache.fill(tx)
    });
    if r.is_err() {
        // changes taken but not applied: read everything next time
        cache.loaded = false;
    }
    r?;
    let no_certs = HashMap::new();
    let iam_certs = cache.certs.as_ref().unwrap_or(&no_certs);
    let no_net = super::vpc_reach::Network::default();
    let net = cache.net.as_ref().unwrap_or(&no_net);
    let lbs: Vec<&(Scope, LoadBalancer)> = cache.lbs.iter().collect();
    let listeners: Vec<&(Scope, Listener)> = cache.listeners.iter().collect();
    let rules: Vec<&(Scope, Rule)> = cache.rules.iter().collect();
    let tgs: Vec<&(Scope, TargetGroup)> = cache.tgs.iter().collect();

    let mut rules_of: HashMap<&str, Vec<&Rule>> = HashMap::new();
    for (_, r) in &rules {
        rules_of.entry(r.listener_arn.as_str()).or_default().push(r);
    }
    let mut used: HashSet<String> = HashSet::new();
    let mut listeners_of: HashMap<&str, Vec<&Listener>> = HashMap::new();
    for (_, l) in &listeners {
        listeners_of.entry(l.lb_arn.as_str()).or_default().push(l);
    }

    let mut snapshot = dp::Snapshot::default();
    let mut wanted = Vec::new();
    let mut generated: HashMap<String, dp::CertPem> = HashMap::new();
    for (_, lb) in &lbs {
        let kind = if lb.lb_type == "network" {
            dp::LbKind::Network
        } else {
            dp::LbKind::Application
        };
        let ip: IpAddr = lb.local_ip.parse().unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let mut specs = Vec::new();
        for l in listeners_of.get(lb.arn.as_str()).into_iter().flatten() {
            let mut dp_rules = Vec::new();
            used.extend(model::forward_targets(&l.default_actions));
            if let Some(a) = crate::services::elbv2::dp_action(&l.default_actions) {
                dp_rules.push(dp::Rule {
                    priority: u32::MAX,
                    conditions: vec![],
                    action: a,
                });
            }
            for r in rules_of.get(l.arn.as_str()).into_iter().flatten() {
                let Some(p) = r.priority else { continue };
                used.extend(model::forward_targets(&r.actions));
                let conditions: Option<Vec<dp::Condition>> = r
                    .conditions
                    .iter()
                    .map(crate::services::elbv2::dp_condition)
                    .collect();
                if let (Some(conditions), Some(action)) =
                    (conditions, crate::services::elbv2::dp_action(&r.actions))
                {
                    dp_rules.push(dp::Rule {
                        priority: p,
                        conditions,
                        action,
                    });
                }
            }
            let udp_idle_timeout = scaled(c, dp::UDP_IDLE_TIMEOUT.as_secs() as i64);
            wanted.push(dp::ListenerBind {
                arn: l.arn.clone(),
                ip,
                port: l.port,
                kind,
                protocol: l.protocol.clone(),
                udp_idle_timeout,
            });
            specs.push(dp::ListenerSpec {
                arn: l.arn.clone(),
                port: l.port,
                protocol: l.protocol.clone(),
                rules: dp_rules,
                tls: tls_spec(l, lb, iam_certs, self_signed, &mut generated),
                udp_idle_timeout,
                tcp_idle_timeout: scaled(c, tcp_idle_secs(l)),
            });
        }
        let attr = |k: &str| lb.attributes.get(k).map(String::as_str);
        snapshot.load_balancers.push(dp::LoadBalancerSpec {
            arn: lb.arn.clone(),
            kind,
            dns_name: lb.dns_name.clone(),
            idle_timeout: Duration::from_secs(
                attr("idle_timeout.timeout_seconds")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(60),
            ),
            xff_mode: match attr("routing.http.xff_header_processing.mode") {
                Some("preserve") => dp::XffMode::Preserve,
                Some("remove") => dp::XffMode::Remove,
                _ => dp::XffMode::Append,
            },
            xff_client_port: attr("routing.http.xff_client_port.enabled") == Some("true"),
            preserve_host: attr("routing.http.preserve_host_header.enabled") == Some("true"),
            listeners: specs,
        });
    }
    // The load balancer each target group serves (one at most), for security-group checks.
    let mut lb_of_tg: HashMap<String, &str> = HashMap::new();
    for (_, l) in &listeners {
        let rule_actions = rules_of.get(l.arn.as_str()).into_iter().flatten();
        for tg in model::forward_targets(&l.default_actions)
            .into_iter()
            .chain(rule_actions.flat_map(|r| model::forward_targets(&r.actions)))
        {
            lb_of_tg.insert(tg, l.lb_arn.as_str());
        }
    }
    for (_, tg) in &tgs {
        let mut spec = tg_spec(c, tg, used.contains(&tg.arn));
        if let Some(lb) = lb_of_tg.get(&tg.arn) {
            let proto = super::vpc_reach::Proto::of(&tg.protocol);
            let preserved =
                tg.attributes.get("preserve_client_ip.enabled") == Some(&"true".to_string());
            // health checks (TCP, HTTP or HTTPS) always come from the load balancer's nodes
            let health_port = tg.health.port.parse::<u16>().ok();
            for t in &mut spec.targets {
                t.blocked = net
                    .lb_to_target(lb, t.ip, t.port, proto, preserved)
                    .is_some();
                let hp = health_port.unwrap_or(t.port);
                t.health_blocked = net
                    .lb_to_target(lb, t.ip, hp, super::vpc_reach::Proto::Tcp, false)
                    .is_some();
            }
        }
        snapshot.target_groups.push(spec);
    }

    let engine = &c.dataplane().lb;
    engine.publish(snapshot, &c.dataplane().addresses);
    let bound = engine.bind(wanted);

    // The LB's private addresses (one per subnet ENI) lead to its listener sockets.
    let mut now_mapped = HashSet::new();
    for (_, lb) in &lbs {
        for l in listeners_of.get(lb.arn.as_str()).into_iter().flatten() {
            let Some(local) = bound.get(&l.arn) else {
                continue;
            };
            for s in &lb.subnets {
                if let Ok(ip) = s.private_ip.parse::<IpAddr>() {
                    c.dataplane().addresses.bind(ip, l.port, *local);
                    now_mapped.insert((ip, l.port));
                }
            }
        }
    }
    for gone in mapped.difference(&now_mapped) {
        c.dataplane().addresses.unbind(gone.0, gone.1);
    }
    *mapped = now_mapped;

    // Write back only what changed.
    let now = portico_core::time::now_millis();
    let addr_of = |arn: &str| bound.get(arn).map(SocketAddr::to_string);
    let listener_updates: Vec<&(Scope, Listener)> = listeners
        .iter()
        .copied()
        .filter(|(_, l)| addr_of(&l.arn) != l.local_address)
        .collect();
    let lb_updates: Vec<&(Scope, LoadBalancer)> = lbs
        .iter()
        .copied()
        .filter(|(_, lb)| {
            lb.state == "provisioning"
                && listeners_of
                    .get(lb.arn.as_str())
                    .into_iter()
                    .flatten()
                    .all(|l| bound.contains_key(&l.arn))
        })
        .collect();
    let tg_updates: Vec<&(Scope, TargetGroup)> = tgs
        .iter()
        .copied()
        .filter(|(_, tg)| {
            tg.targets
                .iter()
                .any(|t| t.draining_until_ms.is_some_and(|u| u <= now))
        })
        .collect();
    if listener_updates.is_empty()
        && lb_updates.is_empty()
        && tg_updates.is_empty()
        && generated.is_empty()
    {
        let next_drain = tgs
            .iter()
            .flat_map(|(_, tg)| tg.targets.iter().filter_map(|t| t.draining_until_ms))
            .min();
        let all_bound = listeners.iter().all(|(_, l)| bound.contains_key(&l.arn));
        cache.next_drain = next_drain;
        cache.settled = all_bound;
        return Ok(());
    }
    c.store().write(|tx| {
        for (scope, l) in &listener_updates {
            if let Some(mut cur) = tx.get_as::<Listener>(scope, KIND_LISTENER, &l.arn)? {
                cur.local_address = addr_of(&l.arn);
                model::put_listener(tx, scope, &cur)?;
            }
        }
        // Self-signed certificates are kept on their load balancer (they survive restarts).
        for (scope, lb) in &lbs {
            let Some(pem) = generated.get(&lb.arn) else {
                continue;
            };
            if let Some(mut cur) = tx.get_as::<LoadBalancer>(scope, KIND_LB, &lb.arn)? {
                cur.local_certificate = Some(model::LocalCertificate {
                    certificate: pem.certificate.clone(),
                    private_key: pem.private_key.clone(),
                });
                model::put_lb(tx, scope, &cur)?;
            }
        }
        for (scope, lb) in &lb_updates {
            if let Some(mut cur) = tx.get_as::<LoadBalancer>(scope, KIND_LB, &lb.arn)? {
                cur.state = "active".into();
                model::put_lb(tx, scope, &cur)?;
            }
        }
        for (scope, tg) in &tg_updates {
            if let Some(mut cur) = tx.get_as::<TargetGroup>(scope, KIND_TG, &tg.arn)? {
                cur.targets
                    .retain(|t| t.draining_until_ms.is_none_or(|u| u > now));
                model::put_tg(tx, scope, &cur)?;
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn contents(k: &Kind<Value>) -> Vec<(Scope, Value)> {
        k.iter().cloned().collect()
    }

    /// A cache kept up to date from the change feed holds what a full read would, in the same
    /// order, after every step of a sequence of puts, updates, deletes and re-creations.
    #[test]
    fn incremental_kind_equals_full_read() {
        let store = portico_store::Store::in_memory().unwrap();
        let feed = store.feed(FOLLOWED);
        let a = Scope::new("000000000000", "us-east-1");
        let b = Scope::new("000000000000", "eu-west-1");
        let mut inc: Kind<Value> = Kind::default();
        let steps: Vec<Vec<(&Scope, &str, Option<Value>)>> = vec![
            vec![
                (&a, "tg-1", Some(json!({"n": 1}))),
                (&a, "tg-2", Some(json!({"n": 2}))),
                (&b, "tg-1", Some(json!({"n": 3}))),
            ],
            vec![(&a, "tg-1", Some(json!({"n": 10})))],
            vec![(&a, "tg-1", None), (&a, "tg-3", Some(json!({"n": 4})))],
            vec![
                (&a, "tg-1", Some(json!({"n": 11}))),
                (&a, "tg-2", Some(json!({"n": 20}))),
                (&b, "tg-1", None),
            ],
            vec![(&b, "tg-1", Some(json!({"n": 30}))), (&a, "tg-9", None)],
        ];
        for step in steps {
            store
                .write(|tx| {
                    for (scope, id, body) in &step {
                        match body {
                            Some(v) => tx.put_as(scope, KIND_TG, id, None, None, v)?,
                            None => {
                                tx.delete(scope, KIND_TG, id)?;
                            }
                        }
                    }
                    // an unrelated kind is ignored
                    tx.put_as(&a, "ecs.cluster", "c", None, None, &json!({}))?;
                    Ok(())
                })
                .unwrap();
            let changes = feed.take();
            assert!(!changes.everything);
            let full = store
                .read(|tx| {
                    for ch in changes.changes.iter().filter(|c| c.kind == KIND_TG) {
                        inc.refresh(tx, &ch.scope, KIND_TG, &ch.id)?;
                    }
                    Kind::<Value>::load(tx, KIND_TG)
                })
                .unwrap();
            assert_eq!(contents(&inc), contents(&full));
        }
        assert_eq!(contents(&inc).len(), 4);
    }

    /// Target group and rule changes keep the cached network; group, ENI, VPC, load balancer and
    /// listener changes drop it, IAM changes drop the certificates, and a reset reads it all.
    #[test]
    fn cache_drops_what_a_change_makes_stale() {
        let store = portico_store::Store::in_memory().unwrap();
        let mut cache = Cache::default();
        let change = |kind: &str| portico_store::Changes {
            everything: false,
            changes: vec![portico_store::Change {
                scope: Scope::new("000000000000", "us-east-1"),
                kind: kind.into(),
                id: "x".into(),
                parent: None,
            }],
        };
        store
            .read(|tx| {
                cache.apply(tx, &portico_store::Changes::default())?;
                assert!(cache.loaded);
                for (kind, net_kept, certs_kept) in [
                    (KIND_TG, true, true),
                    (KIND_RULE, true, true),
                    ("ec2.sg", false, true),
                    ("ec2.eni", false, true),
                    ("ec2.vpc", false, true),
                    (KIND_LB, false, true),
                    (KIND_LISTENER, false, true),
                    ("iam.server-certificate", true, false),
                ] {
                    cache.net = Some(super::super::vpc_reach::Network::default());
                    cache.certs = Some(HashMap::new());
                    cache.apply(tx, &change(kind))?;
                    assert_eq!(cache.net.is_some(), net_kept, "{kind}");
                    assert_eq!(cache.certs.is_some(), certs_kept, "{kind}");
                }
                cache.net = Some(super::super::vpc_reach::Network::default());
                cache.apply(
                    tx,
                    &portico_store::Changes {
                        everything: true,
                        changes: vec![],
                    },
                )?;
                assert!(cache.net.is_none() && cache.loaded);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn alpn_by_listener_and_policy() {
        let p = |v: &str| vec![v.to_string()];
        assert_eq!(alpn("HTTPS", None, true), ["h2", "http/1.1"]);
        assert_eq!(alpn("HTTPS", None, false), ["http/1.1"]);
        assert!(alpn("TLS", None, true).is_empty());
        assert!(alpn("TLS", Some(&p("None")), true).is_empty());
        assert_eq!(alpn("TLS", Some(&p("HTTP1Only")), true), ["http/1.1"]);
        assert_eq!(alpn("TLS", Some(&p("HTTP2Only")), true), ["h2"]);
        assert_eq!(
            alpn("TLS", Some(&p("HTTP2Optional")), true),
            ["http/1.1", "h2"]
        );
        assert_eq!(
            alpn("TLS", Some(&p("HTTP2Preferred")), true),
            ["h2", "http/1.1"]
        );
    }
}
