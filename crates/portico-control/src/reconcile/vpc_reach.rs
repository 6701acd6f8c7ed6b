//! Reachability inside the simulated VPCs, decided from the EC2 and ELBv2 records: can a VPC
//! link reach a load balancer's listener (same VPC; the link's security groups let the packets
//! out, the load balancer's let them in), and can a load balancer reach a target (its groups
//! let them out, the target ENI's groups let them in)? The decisions are pure functions over
//! security-group rules ([`connect`]); [`Network`] is a read-only view of the records that a
//! reconciler loads inside its own read transaction. Security groups drop packets, they do not
//! refuse connections, so the data plane turns a "blocked" verdict into a connection that never
//! completes (a timeout), as on AWS. Egress and ingress are both checked; groups are stateful,
//! so replies need no rule. Not modelled: network ACLs, route tables, IPv6 and prefix lists.

use crate::services::ec2::shared::{
    self, NetworkInterface, SecurityGroup, Vpc, KIND_ENI, KIND_SG, KIND_VPC,
};
use crate::services::elbv2::model::{Listener, LoadBalancer, KIND_LB, KIND_LISTENER};
use ipnet::Ipv4Net;
use portico_core::AwsResult;
use portico_store::{Scope, Tx};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};

/// The transport a connection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    /// The transport of a listener or target-group protocol (`HTTP`, `TCP`, `UDP`, ...).
    pub(crate) fn of(protocol: &str) -> Proto {
        if protocol.eq_ignore_ascii_case("udp") {
            Proto::Udp
        } else {
            Proto::Tcp
        }
    }

    fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// A rule's protocol as EC2 stores it (`-1`, `tcp`, `udp`, `icmp`, a number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RuleProto {
    All,
    Tcp,
    Udp,
    /// ICMP and other protocols: never match a TCP or UDP connection.
    Other,
}

/// Who a rule lets in (ingress) or out to (egress).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Peer {
    Cidr(Ipv4Net),
    Group(String),
    /// IPv6 ranges and prefix lists: Portico's VPCs are IPv4 only, so these match nothing.
    Unmatched,
}

/// One security-group rule.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rule {
    pub egress: bool,
    pub proto: RuleProto,
    pub from: i64,
    pub to: i64,
    pub peer: Peer,
}

impl Rule {
    /// A rule in EC2's SecurityGroupRule shape (services/ec2/sg.rs keeps them in `_rules`).
    pub(crate) fn from_json(v: &Value) -> Option<Rule> {
        let proto = match v.get("ipProtocol")?.as_str()?.to_ascii_lowercase().as_str() {
            "-1" | "all" => RuleProto::All,
            "tcp" | "6" => RuleProto::Tcp,
            "udp" | "17" => RuleProto::Udp,
            _ => RuleProto::Other,
        };
        let peer = if let Some(c) = v.get("cidrIpv4").and_then(Value::as_str) {
            c.parse().map(Peer::Cidr).unwrap_or(Peer::Unmatched)
        } else if let Some(g) = v
            .pointer("/referencedGroupInfo/groupId")
            .and_then(Value::as_str)
        {
            Peer::Group(g.to_string())
        } else {
            Peer::Unmatched
        };
        Some(Rule {
            egress: v.get("isEgress").and_then(Value::as_bool).unwrap_or(false),
            proto,
            from: v.get("fromPort").and_then(Value::as_i64).unwrap_or(-1),
            to: v.get("toPort").and_then(Value::as_i64).unwrap_or(-1),
            peer,
        })
    }

    fn covers(&self, proto: Proto, port: u16) -> bool {
        let p = i64::from(port);
        match (self.proto, proto) {
            (RuleProto::All, _) => true,
            (RuleProto::Tcp, Proto::Tcp) | (RuleProto::Udp, Proto::Udp) => {
                self.from <= p && p <= self.to
            }
            _ => false,
        }
    }

    fn admits(&self, other: &Endpoint<'_>, ip: Option<Ipv4Addr>) -> bool {
        match &self.peer {
            Peer::Group(g) => other.groups.iter().any(|o| o == g),
            Peer::Cidr(net) => ip.is_some_and(|ip| net.contains(&ip)),
            Peer::Unmatched => false,
        }
    }
}

/// One side of a connection: its network interfaces' addresses and security groups.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Endpoint<'a> {
    pub ips: &'a [Ipv4Addr],
    pub groups: &'a [String],
}

/// Whether `rules` (one side's rules of the given direction) let traffic to or from `other`
/// through: for every address of `other`, some rule on (proto, port) names one of its groups or
/// a range holding that address. A side with several addresses (a VPC link's ENIs, a load
/// balancer's nodes) counts as admitted only when all of them are.
fn admitted<'r>(
    rules: impl Iterator<Item = &'r Rule> + Clone,
    other: &Endpoint<'_>,
    proto: Proto,
    port: u16,
) -> bool {
    let ok = |ip: Option<Ipv4Addr>| {
        rules
            .clone()
            .any(|r| r.covers(proto, port) && r.admits(other, ip))
    };
    if other.ips.is_empty() {
        ok(None)
    } else {
        other.ips.iter().all(|ip| ok(Some(*ip)))
    }
}

/// Why a connection does not get through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Denied {
    /// The source's groups do not let the packets out.
    Egress,
    /// The destination's groups do not let them in.
    Ingress,
}

/// Whether a connection from `src` to `dst` on (proto, port) gets through the security groups.
/// `rules_of` gives a group's rules (an unknown group has none). A side without groups is not
/// filtered on that side (an NLB without security groups, a loopback test target).
pub(crate) fn connect<'r>(
    rules_of: &impl Fn(&str) -> &'r [Rule],
    src: &Endpoint<'_>,
    dst: &Endpoint<'_>,
    proto: Proto,
    port: u16,
) -> Result<(), Denied> {
    if !src.groups.is_empty() {
        let out = src
            .groups
            .iter()
            .flat_map(|g| rules_of(g).iter())
            .filter(|r| r.egress);
        if !admitted(out, dst, proto, port) {
            return Err(Denied::Egress);
        }
    }
    if !dst.groups.is_empty() {
        let inn = dst
            .groups
            .iter()
            .flat_map(|g| rules_of(g).iter())
            .filter(|r| !r.egress);
        if !admitted(inn, src, proto, port) {
            return Err(Denied::Ingress);
        }
    }
    Ok(())
}

/// Whether two VPCs are the same network (Portico has no peering or transit gateways).
pub(crate) fn same_vpc(a: &str, b: &str) -> bool {
    a == b
}

/// A load balancer as reachability needs it.
#[derive(Debug, Clone)]
struct Lb {
    scope: Scope,
    vpc: String,
    groups: Vec<String>,
    ips: Vec<Ipv4Addr>,
}

/// An ENI as reachability needs it.
#[derive(Debug, Clone)]
struct Eni {
    vpc: String,
    ip: Option<Ipv4Addr>,
    groups: Vec<String>,
}

/// The records reachability is decided from, read in one transaction.
#[derive(Debug, Default)]
pub(crate) struct Network {
    rules: HashMap<(Scope, String), Vec<Rule>>,
    enis: HashMap<(Scope, String), Eni>,
    eni_by_ip: HashMap<(Scope, String, Ipv4Addr), String>,
    lbs: HashMap<String, Lb>,
    /// listener ARN -> (LB ARN, port, transport)
    listeners: HashMap<String, (String, u16, Proto)>,
}

impl Network {
    /// Every record of every scope (the ELBv2 reconciler checks all its targets at once).
    pub(crate) fn load(tx: &Tx<'_>) -> AwsResult<Network> {
        let mut net = Network::default();
        let mut default_group: HashMap<(Scope, String), String> = HashMap::new();
        for r in tx.list_all(KIND_VPC)? {
            if let Ok(v) = serde_json::from_value::<Vpc>(r.body) {
                if let Some(g) = shared::default_security_group_id(&v) {
                    default_group.insert((r.scope, v.vpc_id.clone()), g.to_string());
                }
            }
        }
        for r in tx.list_all(KIND_SG)? {
            if let Ok(g) = serde_json::from_value::<SecurityGroup>(r.body) {
                net.add_group(&r.scope, g);
            }
        }
        for r in tx.list_all(KIND_ENI)? {
            if let Ok(e) = serde_json::from_value::<NetworkInterface>(r.body) {
                let default = default_group.get(&(r.scope.clone(), e.vpc_id.clone()));
                net.add_eni(&r.scope, e, default.cloned());
            }
        }
        for r in tx.list_all(KIND_LB)? {
            if let Ok(lb) = serde_json::from_value::<LoadBalancer>(r.body) {
                net.add_lb(&r.scope, lb);
            }
        }
        for r in tx.list_all(KIND_LISTENER)? {
            if let Ok(l) = serde_json::from_value::<Listener>(r.body) {
                net.add_listener(l);
            }
        }
        Ok(net)
    }

    /// Only the records one VPC link -> listener verdict needs: the link's ENIs, the listener,
    /// its load balancer and the groups of both sides (rules naming other groups need only their
    /// ids). For snapshot builders that rebuild one API at a time.
    pub(crate) fn load_for_link(
        tx: &Tx<'_>,
        scope: &Scope,
        eni_ids: &[String],
        listener_arn: &str,
    ) -> AwsResult<Network> {
        let mut net = Network::default();
        let mut groups: Vec<String> = Vec::new();
        for id in eni_ids {
            let Some(e) = shared::get_eni(tx, scope, id)? else {
                continue;
            };
            let default = match e.group_ids.is_empty() {
                true => shared::get_vpc(tx, scope, &e.vpc_id)?
                    .and_then(|v| shared::default_security_group_id(&v).map(String::from)),
                false => None,
            };
            groups.extend(e.group_ids.iter().cloned().chain(default.clone()));
            net.add_eni(scope, e, default);
        }
        if let Some(l) = tx.get_as::<Listener>(scope, KIND_LISTENER, listener_arn)? {
            if let Some(lb) = tx.get_as::<LoadBalancer>(scope, KIND_LB, &l.lb_arn)? {
                groups.extend(lb.security_groups.iter().cloned());
                net.add_lb(scope, lb);
            }
            net.add_listener(l);
        }
        groups.sort();
        groups.dedup();
        for g in groups {
            if let Some(g) = shared::get_security_group(tx, scope, &g)? {
                net.add_group(scope, g);
            }
        }
        Ok(net)
    }

    fn add_group(&mut self, scope: &Scope, g: SecurityGroup) {
        let rules = g
            .rest
            .get("_rules")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Rule::from_json).collect())
            .unwrap_or_default();
        self.rules.insert((scope.clone(), g.group_id), rules);
    }

    /// `default_group`: the VPC's default group, which an interface without groups has.
    fn add_eni(&mut self, scope: &Scope, e: NetworkInterface, default_group: Option<String>) {
        let groups = if e.group_ids.is_empty() {
            default_group.into_iter().collect()
        } else {
            e.group_ids
        };
        let ip = e.private_ip_address.parse().ok();
        if let Some(ip) = ip {
            self.eni_by_ip.insert(
                (scope.clone(), e.vpc_id.clone(), ip),
                e.network_interface_id.clone(),
            );
        }
        self.enis.insert(
            (scope.clone(), e.network_interface_id),
            Eni {
                vpc: e.vpc_id,
                ip,
                groups,
            },
        );
    }

    fn add_lb(&mut self, scope: &Scope, lb: LoadBalancer) {
        self.lbs.insert(
            lb.arn.clone(),
            Lb {
                scope: scope.clone(),
                vpc: lb.vpc_id,
                groups: lb.security_groups,
                ips: lb
                    .subnets
                    .iter()
                    .filter_map(|s| s.private_ip.parse().ok())
                    .collect(),
            },
        );
    }

    fn add_listener(&mut self, l: Listener) {
        self.listeners
            .insert(l.arn, (l.lb_arn, l.port, Proto::of(&l.protocol)));
    }

    fn rules_of<'a>(&'a self, scope: &'a Scope) -> impl Fn(&str) -> &'a [Rule] + 'a {
        move |g: &str| {
            self.rules
                .get(&(scope.clone(), g.to_string()))
                .map(Vec::as_slice)
                .unwrap_or(&[])
        }
    }

    /// For a VPC link made of the ENIs `eni_ids`: the listeners of its scope it cannot reach,
    /// with the reason (another VPC, or security groups that drop its packets). Listeners it can
    /// reach are absent. A link without ENIs (not yet available) reaches nothing and is left to
    /// its status.
    pub(crate) fn unreachable_listeners(
        &self,
        scope: &Scope,
        link_id: &str,
        eni_ids: &[String],
    ) -> BTreeMap<String, String> {
        let enis: Vec<&Eni> = eni_ids
            .iter()
            .filter_map(|e| self.enis.get(&(scope.clone(), e.clone())))
            .collect();
        let mut out = BTreeMap::new();
        let Some(first) = enis.first() else {
            return out;
        };
        let ips: Vec<Ipv4Addr> = enis.iter().filter_map(|e| e.ip).collect();
        let mut groups: Vec<String> = enis.iter().flat_map(|e| e.groups.clone()).collect();
        groups.sort();
        groups.dedup();
        let link = Endpoint {
            ips: &ips,
            groups: &groups,
        };
        for (arn, (lb_arn, port, proto)) in &self.listeners {
            let Some(lb) = self.lbs.get(lb_arn).filter(|lb| lb.scope == *scope) else {
                continue;
            };
            if !same_vpc(&first.vpc, &lb.vpc) {
                out.insert(
                    arn.clone(),
                    format!(
                        "VPC link {link_id} is in {} and the load balancer in {}: no route between them",
                        first.vpc, lb.vpc
                    ),
                );
                continue;
            }
            let dst = Endpoint {
                ips: &lb.ips,
                groups: &lb.groups,
            };
            if let Err(d) = connect(&self.rules_of(scope), &link, &dst, *proto, *port) {
                out.insert(
                    arn.clone(),
                    denied_text(d, "VPC link", "load balancer", *proto, *port),
                );
            }
        }
        out
    }

    /// Why the load balancer `lb_arn` cannot reach the target `ip:port` (a VPC address of an
    /// ENI in its VPC), or `None` when it can. Targets that are no ENI of the VPC (loopback
    /// test servers) are not filtered. A load balancer without security groups (NLBs may have
    /// none) is filtered only by the target's groups, which must admit its node addresses; when
    /// the target group preserves client addresses (`client_ip_preserved`) the sources are the
    /// clients, which Portico does not model, so such targets are not filtered.
    pub(crate) fn lb_to_target(
        &self,
        lb_arn: &str,
        ip: IpAddr,
        port: u16,
        proto: Proto,
        client_ip_preserved: bool,
    ) -> Option<String> {
        let lb = self.lbs.get(lb_arn)?;
        if lb.groups.is_empty() && client_ip_preserved {
            return None;
        }
        let IpAddr::V4(ip) = ip else { return None };
        let eni_id = self
            .eni_by_ip
            .get(&(lb.scope.clone(), lb.vpc.clone(), ip))?;
        let eni = self.enis.get(&(lb.scope.clone(), eni_id.clone()))?;
        let src = Endpoint {
            ips: &lb.ips,
            groups: &lb.groups,
        };
        let target_ips = [ip];
        let dst = Endpoint {
            ips: &target_ips,
            groups: &eni.groups,
        };
        connect(&self.rules_of(&lb.scope), &src, &dst, proto, port)
            .err()
            .map(|d| denied_text(d, "load balancer", "target", proto, port))
    }
}

fn denied_text(d: Denied, src: &str, dst: &str, proto: Proto, port: u16) -> String {
    match d {
        Denied::Egress => format!(
            "the {src}'s security groups do not allow outbound {}/{port} to the {dst}",
            proto.name()
        ),
        Denied::Ingress => format!(
            "the {dst}'s security groups do not allow inbound {}/{port} from the {src}",
            proto.name()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn rule(egress: bool, proto: &str, from: i64, to: i64, peer: Value) -> Rule {
        let mut v =
            json!({"isEgress": egress, "ipProtocol": proto, "fromPort": from, "toPort": to});
        for (k, x) in peer.as_object().unwrap() {
            v[k] = x.clone();
        }
        Rule::from_json(&v).unwrap()
    }

    fn cidr(c: &str) -> Value {
        json!({ "cidrIpv4": c })
    }

    fn group(g: &str) -> Value {
        json!({"referencedGroupInfo": {"groupId": g}})
    }

    fn all_out() -> Rule {
        rule(true, "-1", -1, -1, cidr("0.0.0.0/0"))
    }

    /// (rules of the source group `src`, rules of the destination group `dst`) -> verdict for
    /// tcp/80 from 10.0.1.4 (group src) to 10.0.2.9 (group dst).
    fn check(src_rules: Vec<Rule>, dst_rules: Vec<Rule>) -> Result<(), Denied> {
        let table: HashMap<&str, Vec<Rule>> = [("src", src_rules), ("dst", dst_rules)].into();
        let rules_of = |g: &str| table.get(g).map(Vec::as_slice).unwrap_or(&[]);
        let (sips, dips) = (["10.0.1.4".parse().unwrap()], ["10.0.2.9".parse().unwrap()]);
        let (sg, dg) = (["src".to_string()], ["dst".to_string()]);
        connect(
            &rules_of,
            &Endpoint {
                ips: &sips,
                groups: &sg,
            },
            &Endpoint {
                ips: &dips,
                groups: &dg,
            },
            Proto::Tcp,
            80,
        )
    }

    /// (what, source group's rules, destination group's rules, verdict)
    type Case = (&'static str, Vec<Rule>, Vec<Rule>, Result<(), Denied>);

    #[test]
    #[rustfmt::skip]
    fn security_group_verdicts() {
        use Denied::*;
        let cases: Vec<Case> = vec![
            ("a new group admits nothing", vec![all_out()], vec![], Err(Ingress)),
            ("rule naming the source group", vec![all_out()], vec![rule(false, "tcp", 80, 80, group("src"))], Ok(())),
            ("rule naming another group", vec![all_out()], vec![rule(false, "tcp", 80, 80, group("other"))], Err(Ingress)),
            ("range holding the source", vec![all_out()], vec![rule(false, "tcp", 0, 65535, cidr("10.0.0.0/16"))], Ok(())),
            ("range missing the source", vec![all_out()], vec![rule(false, "tcp", 80, 80, cidr("10.0.2.0/24"))], Err(Ingress)),
            ("other port", vec![all_out()], vec![rule(false, "tcp", 443, 443, cidr("0.0.0.0/0"))], Err(Ingress)),
            ("port range", vec![all_out()], vec![rule(false, "6", 1, 1024, cidr("0.0.0.0/0"))], Ok(())),
            ("udp rule for tcp", vec![all_out()], vec![rule(false, "udp", 80, 80, cidr("0.0.0.0/0"))], Err(Ingress)),
            ("all traffic", vec![all_out()], vec![rule(false, "-1", -1, -1, group("src"))], Ok(())),
            ("icmp only", vec![all_out()], vec![rule(false, "icmp", -1, -1, cidr("0.0.0.0/0"))], Err(Ingress)),
            ("ipv6 range only", vec![all_out()], vec![rule(false, "-1", -1, -1, json!({"cidrIpv6": "::/0"}))], Err(Ingress)),
            ("ingress rule on the source does not count", vec![all_out(), rule(false, "-1", -1, -1, group("dst"))], vec![], Err(Ingress)),
            ("egress revoked", vec![], vec![rule(false, "tcp", 80, 80, group("src"))], Err(Egress)),
            ("egress only to the destination group", vec![rule(true, "tcp", 80, 80, group("dst"))], vec![rule(false, "tcp", 80, 80, group("src"))], Ok(())),
            ("egress to another port", vec![rule(true, "tcp", 8080, 8080, group("dst"))], vec![rule(false, "tcp", 80, 80, group("src"))], Err(Egress)),
        ];
        for (what, s, d, want) in cases {
            assert_eq!(check(s, d), want, "{what}");
        }
    }

    #[test]
    fn every_source_address_must_be_admitted() {
        let rules = [rule(false, "tcp", 80, 80, cidr("10.0.1.0/24"))];
        let rules_of = |_: &str| &rules[..];
        let one: Vec<Ipv4Addr> = vec!["10.0.1.4".parse().unwrap()];
        let two: Vec<Ipv4Addr> = vec!["10.0.1.4".parse().unwrap(), "10.0.2.4".parse().unwrap()];
        let dg = ["dst".to_string()];
        let dst = Endpoint {
            ips: &[],
            groups: &dg,
        };
        let src = |ips| Endpoint { ips, groups: &[] };
        assert_eq!(connect(&rules_of, &src(&one), &dst, Proto::Tcp, 80), Ok(()));
        assert_eq!(
            connect(&rules_of, &src(&two), &dst, Proto::Tcp, 80),
            Err(Denied::Ingress)
        );
    }

    #[test]
    fn sides_without_groups_are_not_filtered() {
        let rules_of = |_: &str| -> &[Rule] { &[] };
        let none = Endpoint {
            ips: &[],
            groups: &[],
        };
        assert_eq!(connect(&rules_of, &none, &none, Proto::Udp, 53), Ok(()));
        assert!(same_vpc("vpc-1", "vpc-1") && !same_vpc("vpc-1", "vpc-2"));
    }

    proptest! {
        /// An all-traffic rule naming the source group admits every port and transport, and a
        /// single-port rule admits exactly its port.
        #[test]
        fn port_rules(port in 0u16..=65535, other in 0u16..=65535, udp: bool) {
            let proto = if udp { Proto::Udp } else { Proto::Tcp };
            let all = check(vec![all_out()], vec![rule(false, "-1", -1, -1, group("src"))]);
            prop_assert_eq!(all, Ok(()));
            let table = [rule(false, proto.name(), i64::from(port), i64::from(port), group("src"))];
            let rules_of = |g: &str| if g == "dst" { &table[..] } else { &[][..] };
            let sg = ["src".to_string()];
            let dg = ["dst".to_string()];
            let src = Endpoint { ips: &[], groups: &sg };
            let dst = Endpoint { ips: &[], groups: &dg };
            prop_assert_eq!(connect(&rules_of, &src, &dst, proto, other).is_ok(), other == port);
        }

        /// A CIDR rule admits an address exactly when the range holds it.
        #[test]
        fn cidr_rules(a in any::<u32>(), b in any::<u32>(), len in 0u8..=32) {
            let net = Ipv4Net::new(Ipv4Addr::from(a), len).unwrap().trunc();
            let table = [rule(false, "tcp", 0, 65535, cidr(&net.to_string()))];
            let rules_of = |_: &str| &table[..];
            let ip = [Ipv4Addr::from(b)];
            let dg = ["dst".to_string()];
            let src = Endpoint { ips: &ip, groups: &[] };
            let dst = Endpoint { ips: &[], groups: &dg };
            prop_assert_eq!(connect(&rules_of, &src, &dst, Proto::Tcp, 80).is_ok(), net.contains(&ip[0]));
        }
    }

    /// The records as the APIs write them: a VPC with an ALB (its own group), a link's and a
    /// task's ENIs, and a second VPC.
    mod records {
        use super::super::*;
        use crate::services::ec2::shared;
        use crate::{Config, Control};
        use portico_core::{Input, RequestContext, Service};
        use serde_json::{json, Value};

        struct World {
            c: Control,
            scope: Scope,
            vpc: String,
            subnet: String,
            other_subnet: String,
            alb_sg: String,
            link_sg: String,
            task_sg: String,
            alb: String,
            listener: String,
            nlb: String,
            nlb_listener: String,
        }

        async fn call(c: &Control, svc: Service, op: &str, input: Value) -> Value {
            let rc = RequestContext::new("000000000000", "us-east-1");
            c.call(&rc, svc, op, Input(input)).await.expect(op)
        }

        async fn world() -> World {
            let c = Control::new(
                portico_store::Store::in_memory().expect("store"),
                Config::default(),
                Default::default(),
                Default::default(),
            );
            let vpc = |cidr: &'static str| {
                let c = c.clone();
                async move {
                    let v = call(&c, Service::Ec2, "CreateVpc", json!({"CidrBlock": cidr})).await;
                    v["vpc"]["vpcId"].as_str().expect("vpc").to_string()
                }
            };
            let (v1, v2) = (vpc("10.0.0.0/16").await, vpc("10.1.0.0/16").await);
            let mut subnets = Vec::new();
            for (v, cidr, az) in [
                (&v1, "10.0.1.0/24", "us-east-1a"),
                (&v1, "10.0.2.0/24", "us-east-1b"),
                (&v2, "10.1.1.0/24", "us-east-1a"),
            ] {
                let s = call(
                    &c,
                    Service::Ec2,
                    "CreateSubnet",
                    json!({"VpcId": v, "CidrBlock": cidr, "AvailabilityZone": az}),
                )
                .await;
                subnets.push(
                    s["subnet"]["subnetId"]
                        .as_str()
                        .expect("subnet")
                        .to_string(),
                );
            }
            let mut groups = Vec::new();
            for name in ["alb", "link", "task"] {
                let g = call(
                    &c,
                    Service::Ec2,
                    "CreateSecurityGroup",
                    json!({"GroupName": name, "GroupDescription": name, "VpcId": v1}),
                )
                .await;
                groups.push(g["groupId"].as_str().expect("sg").to_string());
            }
            let lb = |name: &'static str, kind: &'static str, sgs: Vec<String>| {
                let (c, subnets, v1) = (c.clone(), subnets[..2].to_vec(), v1.clone());
                async move {
                    let lb = call(&c, Service::Elbv2, "CreateLoadBalancer", json!({"Name": name, "Subnets": subnets, "SecurityGroups": sgs, "Scheme": "internal", "Type": kind})).await;
                    let arn = lb["LoadBalancers"][0]["LoadBalancerArn"]
                        .as_str()
                        .expect("lb")
                        .to_string();
                    let action = if kind == "network" {
                        let tg = call(&c, Service::Elbv2, "CreateTargetGroup", json!({"Name": format!("{name}-tg"), "Protocol": "TCP", "Port": "80", "VpcId": v1})).await;
                        json!({"Type": "forward", "TargetGroupArn": tg["TargetGroups"][0]["TargetGroupArn"]})
                    } else {
                        json!({"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "200"}})
                    };
                    let protocol = if kind == "network" { "TCP" } else { "HTTP" };
                    let l = call(&c, Service::Elbv2, "CreateListener", json!({"LoadBalancerArn": arn, "Protocol": protocol, "Port": "80", "DefaultActions": [action]})).await;
                    (
                        arn,
                        l["Listeners"][0]["ListenerArn"]
                            .as_str()
                            .expect("listener")
                            .to_string(),
                    )
                }
            };
            let (alb, listener) = lb("alb", "application", vec![groups[0].clone()]).await;
            let (nlb, nlb_listener) = lb("nlb", "network", vec![]).await;
            World {
                c,
                scope: Scope::new("000000000000", "us-east-1"),
                vpc: v1.clone(),
                subnet: subnets[0].clone(),
                other_subnet: subnets[2].clone(),
                alb_sg: groups[0].clone(),
                link_sg: groups[1].clone(),
                task_sg: groups[2].clone(),
                alb,
                listener,
                nlb,
                nlb_listener,
            }
        }

        impl World {
            fn eni(&self, subnet: &str, groups: &[String]) -> (String, IpAddr) {
                self.c
                    .store()
                    .write(|tx| {
                        let e = shared::create_eni(
                            tx,
                            &self.scope,
                            subnet,
                            groups,
                            "t",
                            "interface",
                            "me",
                            None,
                        )?;
                        Ok((
                            e.network_interface_id,
                            e.private_ip_address.parse().expect("ip"),
                        ))
                    })
                    .expect("eni")
            }

            fn net(&self) -> Network {
                self.c.store().read(Network::load).expect("load")
            }

            async fn ingress(&self, op: &str, group: &str, from: &str) {
                let perm = json!([{"IpProtocol": "tcp", "FromPort": "80", "ToPort": "80", "UserIdGroupPairs": [{"GroupId": from}]}]);
                call(
                    &self.c,
                    Service::Ec2,
                    op,
                    json!({"GroupId": group, "IpPermissions": perm}),
                )
                .await;
            }
        }

        #[tokio::test]
        async fn link_to_listener_follows_vpc_and_groups() {
            let w = world().await;
            let (link_eni, _) = w.eni(&w.subnet, std::slice::from_ref(&w.link_sg));
            let blocked = |w: &World| {
                let enis = std::slice::from_ref(&link_eni);
                let all = w.net().unreachable_listeners(&w.scope, "l1", enis);
                // the per-link loader reaches the same verdict from the records involved only
                for l in [&w.listener, &w.nlb_listener] {
                    let one =
                        w.c.store()
                            .read(|tx| Network::load_for_link(tx, &w.scope, enis, l))
                            .expect("load")
                            .unreachable_listeners(&w.scope, "l1", enis);
                    assert_eq!(one.get(l), all.get(l));
                }
                all
            };
            // the ALB's new group admits nobody; the NLB has no groups
            let b = blocked(&w);
            assert_eq!(b.keys().collect::<Vec<_>>(), vec![&w.listener]);
            assert!(
                b[&w.listener].contains("do not allow inbound tcp/80"),
                "{b:?}"
            );
            w.ingress("AuthorizeSecurityGroupIngress", &w.alb_sg, &w.link_sg)
                .await;
            assert!(blocked(&w).is_empty());
            // a link in another VPC reaches neither load balancer
            let (far, _) = w.eni(&w.other_subnet, &[]);
            let b = w.net().unreachable_listeners(&w.scope, "l2", &[far]);
            assert_eq!(b.len(), 2);
            assert!(b[&w.nlb_listener].contains("no route"), "{b:?}");
            // an ENI without groups has its VPC's default group
            let (plain, _) = w.eni(&w.subnet, &[]);
            let default_sg =
                w.c.store()
                    .read(|tx| shared::get_vpc(tx, &w.scope, &w.vpc))
                    .expect("read")
                    .and_then(|v| shared::default_security_group_id(&v).map(String::from))
                    .expect("default group");
            let plain_blocked = |w: &World| {
                w.net()
                    .unreachable_listeners(&w.scope, "l4", std::slice::from_ref(&plain))
            };
            assert!(plain_blocked(&w).contains_key(&w.listener));
            w.ingress("AuthorizeSecurityGroupIngress", &w.alb_sg, &default_sg)
                .await;
            assert!(plain_blocked(&w).is_empty());
            // a link without ENIs is left to its status
            assert!(w
                .net()
                .unreachable_listeners(&w.scope, "l3", &[])
                .is_empty());
        }

        #[tokio::test]
        async fn lb_to_target_follows_the_target_groups() {
            let w = world().await;
            let (_, task) = w.eni(&w.subnet, std::slice::from_ref(&w.task_sg));
            let reach = |lb: &str, ip: IpAddr, port: u16, preserved: bool| {
                w.net().lb_to_target(lb, ip, port, Proto::Tcp, preserved)
            };
            let why = reach(&w.alb, task, 80, false).expect("blocked");
            assert!(
                why.contains("target's security groups do not allow inbound tcp/80"),
                "{why}"
            );
            // not an ENI of the VPC (a loopback test server): open
            assert_eq!(reach(&w.alb, "127.0.0.1".parse().unwrap(), 80, false), None);
            w.ingress("AuthorizeSecurityGroupIngress", &w.task_sg, &w.alb_sg)
                .await;
            assert_eq!(reach(&w.alb, task, 80, false), None);
            assert!(reach(&w.alb, task, 8080, false).is_some());
            w.ingress("RevokeSecurityGroupIngress", &w.task_sg, &w.alb_sg)
                .await;
            assert!(reach(&w.alb, task, 80, false).is_some());
            // an NLB without groups: the target must admit the NLB's node addresses, unless
            // client addresses are preserved (the sources are then the clients: not modelled)
            assert!(reach(&w.nlb, task, 80, false).is_some());
            assert_eq!(reach(&w.nlb, task, 80, true), None);
            let range = json!([{"IpProtocol": "tcp", "FromPort": "80", "ToPort": "80",
                                "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}]);
            let input = json!({"GroupId": w.task_sg, "IpPermissions": range});
            call(&w.c, Service::Ec2, "AuthorizeSecurityGroupIngress", input).await;
            assert_eq!(reach(&w.nlb, task, 80, false), None);
        }
    }
}
