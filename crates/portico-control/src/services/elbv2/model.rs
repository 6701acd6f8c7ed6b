//! ELBv2 records as stored, the lookups every operation shares, and their AWS-shaped renderings.

use super::validation;
use portico_core::{AwsError, AwsResult};
use portico_store::{Scope, Tx};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

pub(crate) const KIND_LB: &str = "elbv2.lb";
pub(crate) const KIND_LISTENER: &str = "elbv2.listener";
pub(crate) const KIND_RULE: &str = "elbv2.rule";
pub(crate) const KIND_TG: &str = "elbv2.tg";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Tag {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Value", default)]
    pub value: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SubnetPlacement {
    pub subnet_id: String,
    pub zone_name: String,
    pub eni_id: String,
    pub private_ip: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LoadBalancer {
    pub arn: String,
    pub name: String,
    pub id: String,
    /// `application` or `network`.
    pub lb_type: String,
    pub scheme: String,
    pub vpc_id: String,
    pub subnets: Vec<SubnetPlacement>,
    pub security_groups: Vec<String>,
    pub ip_address_type: String,
    pub dns_name: String,
    pub created_ms: i64,
    /// `provisioning` until the listener sockets are bound, then `active`.
    pub state: String,
    pub attributes: BTreeMap<String, String>,
    pub tags: Vec<Tag>,
    /// The loopback address this load balancer's listeners bind (Portico's own).
    pub local_ip: String,
    /// The self-signed certificate (PEM) served for ACM certificate ARNs, made once for the
    /// load balancer's DNS name and kept so that it survives restarts (Portico's own).
    #[serde(default)]
    pub local_certificate: Option<LocalCertificate>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LocalCertificate {
    pub certificate: String,
    pub private_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Listener {
    pub arn: String,
    pub lb_arn: String,
    pub port: u16,
    pub protocol: String,
    #[serde(default)]
    pub certificates: Vec<Value>,
    #[serde(default)]
    pub ssl_policy: Option<String>,
    #[serde(default)]
    pub alpn_policy: Option<Vec<String>>,
    /// Normalised actions, in Describe's shape.
    pub default_actions: Vec<Value>,
    pub attributes: BTreeMap<String, String>,
    pub tags: Vec<Tag>,
    pub default_rule_arn: String,
    /// Where the data plane really listens (`127.x.y.z:port`), once bound.
    #[serde(default)]
    pub local_address: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Rule {
    pub arn: String,
    pub listener_arn: String,
    /// `None` for the default rule (its actions are the listener's default actions).
    pub priority: Option<u32>,
    pub conditions: Vec<Value>,
    pub actions: Vec<Value>,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Target {
    pub id: String,
    pub port: u16,
    #[serde(default)]
    pub availability_zone: Option<String>,
    /// Set while draining: the epoch millis at which the target leaves the group.
    #[serde(default)]
    pub draining_until_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HealthCheck {
    pub enabled: bool,
    pub protocol: String,
    pub port: String,
    #[serde(default)]
    pub path: Option<String>,
    pub interval: i64,
    pub timeout: i64,
    pub healthy_threshold: i64,
    pub unhealthy_threshold: i64,
    #[serde(default)]
    pub matcher: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TargetGroup {
    pub arn: String,
    pub name: String,
    pub protocol: String,
    #[serde(default)]
    pub protocol_version: Option<String>,
    pub port: u16,
    pub vpc_id: String,
    pub target_type: String,
    pub ip_address_type: String,
    pub health: HealthCheck,
    pub attributes: BTreeMap<String, String>,
    pub tags: Vec<Tag>,
    pub targets: Vec<Target>,
}

pub(crate) fn get_lb(tx: &Tx<'_>, scope: &Scope, arn: &str) -> AwsResult<LoadBalancer> {
    tx.get_as(scope, KIND_LB, arn)?.ok_or_else(lb_not_found)
}

pub(crate) fn get_listener(tx: &Tx<'_>, scope: &Scope, arn: &str) -> AwsResult<Listener> {
    tx.get_as(scope, KIND_LISTENER, arn)?
        .ok_or_else(listener_not_found)
}

pub(crate) fn get_rule(tx: &Tx<'_>, scope: &Scope, arn: &str) -> AwsResult<Rule> {
    tx.get_as(scope, KIND_RULE, arn)?.ok_or_else(rule_not_found)
}

pub(crate) fn get_tg(tx: &Tx<'_>, scope: &Scope, arn: &str) -> AwsResult<TargetGroup> {
    tx.get_as(scope, KIND_TG, arn)?.ok_or_else(tg_not_found)
}

pub(crate) fn put_lb(tx: &Tx<'_>, scope: &Scope, lb: &LoadBalancer) -> AwsResult<()> {
    Ok(tx.put_as(scope, KIND_LB, &lb.arn, None, Some(&lb.name), lb)?)
}

pub(crate) fn put_listener(tx: &Tx<'_>, scope: &Scope, l: &Listener) -> AwsResult<()> {
    Ok(tx.put_as(scope, KIND_LISTENER, &l.arn, Some(&l.lb_arn), None, l)?)
}

pub(crate) fn put_rule(tx: &Tx<'_>, scope: &Scope, r: &Rule) -> AwsResult<()> {
    Ok(tx.put_as(scope, KIND_RULE, &r.arn, Some(&r.listener_arn), None, r)?)
}

pub(crate) fn put_tg(tx: &Tx<'_>, scope: &Scope, tg: &TargetGroup) -> AwsResult<()> {
    Ok(tx.put_as(scope, KIND_TG, &tg.arn, None, Some(&tg.name), tg)?)
}

pub(crate) fn lb_not_found() -> AwsError {
    AwsError::bad(
        "LoadBalancerNotFound",
        "One or more load balancers not found",
    )
}
pub(crate) fn listener_not_found() -> AwsError {
    AwsError::bad("ListenerNotFound", "One or more listeners not found")
}
pub(crate) fn rule_not_found() -> AwsError {
    AwsError::bad("RuleNotFound", "One or more rules not found")
}
pub(crate) fn tg_not_found() -> AwsError {
    AwsError::bad("TargetGroupNotFound", "One or more target groups not found")
}

/// The `app`/`net` segment of an LB's ARNs.
pub(crate) fn type_segment(lb_type: &str) -> &'static str {
    if lb_type == "network" {
        "net"
    } else {
        "app"
    }
}

/// Target-group ARNs an action list forwards to.
pub(crate) fn forward_targets(actions: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for a in actions {
        if a.get("Type").and_then(Value::as_str) != Some("forward") {
            continue;
        }
        if let Some(tgs) = a
            .pointer("/ForwardConfig/TargetGroups")
            .and_then(Value::as_array)
        {
            for t in tgs {
                if let Some(arn) = t.get("TargetGroupArn").and_then(Value::as_str) {
                    out.push(arn.to_string());
                }
            }
        } else if let Some(arn) = a.get("TargetGroupArn").and_then(Value::as_str) {
            out.push(arn.to_string());
        }
    }
    out
}

/// The load balancers whose listeners or rules forward to `tg_arn`.
pub(crate) fn lbs_of_tg(tx: &Tx<'_>, scope: &Scope, tg_arn: &str) -> AwsResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for l in tx.list_as::<Listener>(scope, KIND_LISTENER, None)? {
        let mut refs = forward_targets(&l.default_actions);
        for r in tx.list_as::<Rule>(scope, KIND_RULE, Some(&l.arn))? {
            refs.extend(forward_targets(&r.actions));
        }
        if refs.iter().any(|a| a == tg_arn) && !out.contains(&l.lb_arn) {
            out.push(l.lb_arn.clone());
        }
    }
    Ok(out)
}

pub(crate) fn lb_json(lb: &LoadBalancer) -> Value {
    let azs: Vec<Value> = lb
        .subnets
        .iter()
        .map(|s| {
            let mut az = json!({"ZoneName": s.zone_name, "SubnetId": s.subnet_id});
            if lb.lb_type == "network" {
                az["LoadBalancerAddresses"] = json!([{"PrivateIPv4Address": s.private_ip}]);
            }
            az
        })
        .collect();
    let mut v = json!({
        "LoadBalancerArn": lb.arn,
        "DNSName": lb.dns_name,
        "CanonicalHostedZoneId": hosted_zone(&lb.lb_type),
        "CreatedTime": portico_core::time::iso_millis(lb.created_ms),
        "LoadBalancerName": lb.name,
        "Scheme": lb.scheme,
        "VpcId": lb.vpc_id,
        "State": {"Code": lb.state},
        "Type": lb.lb_type,
        "AvailabilityZones": azs,
        "IpAddressType": lb.ip_address_type,
    });
    if lb.lb_type == "application" || !lb.security_groups.is_empty() {
        v["SecurityGroups"] = json!(lb.security_groups);
    }
    v
}

fn hosted_zone(lb_type: &str) -> &'static str {
    if lb_type == "network" {
        "Z26RNL4JYFTOTI"
    } else {
        "Z35SXDOTRQ7X7K"
    }
}

pub(crate) fn listener_json(l: &Listener) -> Value {
    let mut v = json!({
        "ListenerArn": l.arn,
        "LoadBalancerArn": l.lb_arn,
        "Port": l.port,
        "Protocol": l.protocol,
        "DefaultActions": l.default_actions,
    });
    // Describe shows the default certificate only (the rest: DescribeListenerCertificates).
    if let Some(c) = l.certificates.first() {
        v["Certificates"] = json!([c]);
    }
    if let Some(p) = &l.ssl_policy {
        v["SslPolicy"] = json!(p);
    }
    if let Some(p) = &l.alpn_policy {
        v["AlpnPolicy"] = json!(p);
    }
    v
}

pub(crate) fn rule_json(r: &Rule, listener: &Listener) -> Value {
    json!({
        "RuleArn": r.arn,
        "Priority": r.priority.map(|p| p.to_string()).unwrap_or_else(|| "default".into()),
        "Conditions": r.conditions,
        "Actions": if r.priority.is_none() { listener.default_actions.clone() } else { r.actions.clone() },
        "IsDefault": r.priority.is_none(),
    })
}

pub(crate) fn tg_json(tg: &TargetGroup, lb_arns: Vec<String>) -> Value {
    let h = &tg.health;
    let mut v = json!({
        "TargetGroupArn": tg.arn,
        "TargetGroupName": tg.name,
        "Protocol": tg.protocol,
        "Port": tg.port,
        "VpcId": tg.vpc_id,
        "HealthCheckProtocol": h.protocol,
        "HealthCheckPort": h.port,
        "HealthCheckEnabled": h.enabled,
        "HealthCheckIntervalSeconds": h.interval,
        "HealthCheckTimeoutSeconds": h.timeout,
        "HealthyThresholdCount": h.healthy_threshold,
        "UnhealthyThresholdCount": h.unhealthy_threshold,
        "LoadBalancerArns": lb_arns,
        "TargetType": tg.target_type,
        "IpAddressType": tg.ip_address_type,
    });
    if let Some(p) = &h.path {
        v["HealthCheckPath"] = json!(p);
    }
    if let Some(m) = &h.matcher {
        v["Matcher"] = json!({"HttpCode": m});
    }
    if let Some(pv) = &tg.protocol_version {
        v["ProtocolVersion"] = json!(pv);
    }
    v
}

/// Renders attributes as `[{Key, Value}]`.
pub(crate) fn attributes_json(a: &BTreeMap<String, String>) -> Value {
    Value::Array(
        a.iter()
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect(),
    )
}

/// Reads `Attributes[{Key, Value}]` from input.
pub(crate) fn input_attributes(input: &portico_core::Input) -> AwsResult<Vec<(String, String)>> {
    let list = input
        .list("Attributes")
        .ok_or_else(|| validation("1 validation error detected: Value null at 'attributes' failed to satisfy constraint: Member must not be null"))?;
    let mut out = Vec::new();
    for a in list {
        let k = a
            .str("Key")
            .ok_or_else(|| validation("An attribute key must be specified"))?;
        let v = a.string("Value").unwrap_or_default();
        out.push((k.to_string(), v));
    }
    Ok(out)
}

/// Validates a boolean attribute value.
pub(crate) fn bool_attr(k: &str, v: &str) -> AwsResult<()> {
    if v == "true" || v == "false" {
        Ok(())
    } else {
        Err(AwsError::bad(
            "InvalidConfigurationRequest",
            format!("The value of '{k}' must be 'true' or 'false'"),
        ))
    }
}

/// Validates an integer attribute value in `[min, max]`.
pub(crate) fn int_attr(k: &str, v: &str, min: i64, max: i64) -> AwsResult<()> {
    match v.parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(()),
        _ => Err(AwsError::bad(
            "InvalidConfigurationRequest",
            format!("The value of '{k}' must be an integer between {min} and {max}"),
        )),
    }
}

pub(crate) fn enum_attr(k: &str, v: &str, allowed: &[&str]) -> AwsResult<()> {
    if allowed.contains(&v) {
        Ok(())
    } else {
        Err(AwsError::bad(
            "InvalidConfigurationRequest",
            format!("The value of '{k}' must be one of: {}", allowed.join(", ")),
        ))
    }
}

pub(crate) fn unknown_attr(k: &str) -> AwsError {
    validation(format!("Attribute key '{k}' is not recognized"))
}

pub(crate) fn empty() -> Value {
    Value::Object(Map::new())
}
