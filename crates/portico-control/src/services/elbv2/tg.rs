//! Target groups, their attributes and health-check settings, target registration, and target
//! health (the data plane's probes seen through AWS's states and reason codes).

use super::model::{self, HealthCheck, Target, TargetGroup, KIND_TG};
use super::{check_name, enum_check, new_id, paginate, req, tags, validation, with_marker};
use crate::services::ec2::shared;
use crate::Ctx;
use portico_core::{AwsError, AwsResult, Input};
use portico_dataplane::lb::HealthState;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

fn invalid_config(msg: impl Into<String>) -> AwsError {
    AwsError::bad("InvalidConfigurationRequest", msg)
}

fn is_http(p: &str) -> bool {
    matches!(p, "HTTP" | "HTTPS")
}

pub(crate) fn default_attributes(protocol: &str, target_type: &str) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    let mut put = |k: &str, v: &str| {
        a.insert(k.to_string(), v.to_string());
    };
    put("deregistration_delay.timeout_seconds", "300");
    put("stickiness.enabled", "false");
    put(
        "load_balancing.cross_zone.enabled",
        "use_load_balancer_configuration",
    );
    put(
        "target_group_health.dns_failover.minimum_healthy_targets.count",
        "1",
    );
    put(
        "target_group_health.dns_failover.minimum_healthy_targets.percentage",
        "off",
    );
    put(
        "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count",
        "1",
    );
    put(
        "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage",
        "off",
    );
    if is_http(protocol) {
        put("stickiness.type", "lb_cookie");
        put("stickiness.lb_cookie.duration_seconds", "86400");
        put("stickiness.app_cookie.cookie_name", "");
        put("stickiness.app_cookie.duration_seconds", "86400");
        put("load_balancing.algorithm.type", "round_robin");
        put("load_balancing.algorithm.anomaly_mitigation", "off");
        put("slow_start.duration_seconds", "0");
    } else {
        put("stickiness.type", "source_ip");
        put(
            "deregistration_delay.connection_termination.enabled",
            "false",
        );
        put(
            "preserve_client_ip.enabled",
            if target_type == "ip" && matches!(protocol, "TCP" | "TLS") {
                "false"
            } else {
                "true"
            },
        );
        put("proxy_protocol_v2.enabled", "false");
        put(
            "target_health_state.unhealthy.connection_termination.enabled",
            "true",
        );
    }
    a
}

fn check_attribute(k: &str, v: &str) -> AwsResult<()> {
    match k {
        "deregistration_delay.timeout_seconds" => model::int_attr(k, v, 0, 3600),
        "stickiness.lb_cookie.duration_seconds" | "stickiness.app_cookie.duration_seconds" => {
            model::int_attr(k, v, 1, 604800)
        }
        "stickiness.type" => model::enum_attr(k, v, &["lb_cookie", "app_cookie", "source_ip"]),
        "load_balancing.algorithm.type" => model::enum_attr(
            k,
            v,
            &[
                "round_robin",
                "least_outstanding_requests",
                "weighted_random",
            ],
        ),
        "load_balancing.algorithm.anomaly_mitigation" => model::enum_attr(k, v, &["on", "off"]),
        "slow_start.duration_seconds" => match v.parse::<i64>() {
            Ok(0) | Ok(30..=900) => Ok(()),
            _ => Err(invalid_config(
                "The value of 'slow_start.duration_seconds' must be 0 or between 30 and 900",
            )),
        },
        "load_balancing.cross_zone.enabled" => {
            model::enum_attr(k, v, &["true", "false", "use_load_balancer_configuration"])
        }
        "stickiness.app_cookie.cookie_name" => {
            if v.starts_with("AWSALB") {
                Err(invalid_config(
                    "Cookie names starting with 'AWSALB' are reserved",
                ))
            } else {
                Ok(())
            }
        }
        k if k.ends_with(".enabled") => model::bool_attr(k, v),
        k if k.ends_with(".count") => model::int_attr(k, v, 1, 1000),
        k if k.ends_with(".percentage") && v != "off" => model::int_attr(k, v, 1, 100),
        _ => Ok(()),
    }
}

/// `200`, `200,202`, `200-299` with every code in `[lo, hi]`.
pub(crate) fn parse_matcher(m: &str, lo: u16, hi: u16) -> Option<Vec<(u16, u16)>> {
    let mut out = Vec::new();
    for part in m.split(',') {
        let part = part.trim();
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?),
            None => {
                let c = part.parse::<u16>().ok()?;
                (c, c)
            }
        };
        if a > b || a < lo || b > hi {
            return None;
        }
        out.push((a, b));
    }
    (!out.is_empty()).then_some(out)
}

/// Health-check settings from input over `base` (defaults on create, current on modify).
fn health_settings(
    input: &Input,
    base: HealthCheck,
    protocol: &str,
    target_type: &str,
) -> AwsResult<HealthCheck> {
    let mut h = base;
    if let Some(p) = input.str("HealthCheckProtocol") {
        enum_check(p, "healthCheckProtocol", &["HTTP", "HTTPS", "TCP"])?;
        if is_http(protocol) && p == "TCP" {
            return Err(invalid_config(
                "Health check protocol 'TCP' is not supported for target groups with the protocol 'HTTP' or 'HTTPS'",
            ));
        }
        if h.protocol != p {
            // Switching between TCP and HTTP checks brings the other kind's defaults.
            if p == "TCP" {
                h.path = None;
                h.matcher = None;
            } else {
                h.path.get_or_insert_with(|| "/".into());
                h.matcher.get_or_insert_with(|| {
                    if is_http(protocol) { "200" } else { "200-399" }.into()
                });
            }
        }
        h.protocol = p.to_string();
    }
    if let Some(port) = input.string("HealthCheckPort") {
        if port != "traffic-port" && !port.parse::<u16>().is_ok_and(|p| p >= 1) {
            return Err(validation(format!(
                "Health check port '{port}' must be 'traffic-port' or a number between 1 and 65535"
            )));
        }
        h.port = port;
    }
    if let Some(p) = input.string("HealthCheckPath") {
        if !p.starts_with('/') || p.len() > 1024 {
            return Err(validation(
                "Health check path must begin with a '/' and be at most 1024 characters",
            ));
        }
        if h.protocol == "TCP" {
            return Err(invalid_config(
                "A health check path cannot be set for TCP health checks",
            ));
        }
        h.path = Some(p);
    }
    if let Some(e) = super::boolean(input, "HealthCheckEnabled")? {
        if !e && matches!(target_type, "instance" | "ip") {
            return Err(invalid_config(
                "Health checks cannot be disabled for target groups with target type 'instance' or 'ip'",
            ));
        }
        h.enabled = e;
    }
    if let Some(i) = super::int(input, "HealthCheckIntervalSeconds", 5, 300)? {
        h.interval = i;
    }
    if let Some(t) = super::int(input, "HealthCheckTimeoutSeconds", 2, 120)? {
        h.timeout = t;
    }
    if let Some(t) = super::int(input, "HealthyThresholdCount", 2, 10)? {
        h.healthy_threshold = t;
    }
    if let Some(t) = super::int(input, "UnhealthyThresholdCount", 2, 10)? {
        h.unhealthy_threshold = t;
    }
    let m = input.sub("Matcher");
    if let Some(code) = m.string("HttpCode") {
        let (lo, hi) = if is_http(protocol) {
            (200, 499)
        } else {
            (200, 599)
        };
        if parse_matcher(&code, lo, hi).is_none() {
            return Err(validation(format!(
                "Health check matcher HTTP code '{code}' must be within '{lo}-{hi}'"
            )));
        }
        if h.protocol == "TCP" {
            return Err(invalid_config(
                "A matcher cannot be set for TCP health checks",
            ));
        }
        h.matcher = Some(code);
    } else if m.has("GrpcCode") {
        return Err(validation("gRPC matchers are not supported by Portico"));
    }
    if !input.has("HealthCheckTimeoutSeconds") && h.timeout >= h.interval {
        // Only the interval was given: an implied (default) timeout follows it down.
        h.timeout = (h.interval - 1).max(2);
    }
    if h.timeout >= h.interval {
        return Err(invalid_config(format!(
            "Health check timeout '{}' must be smaller than the interval '{}'",
            h.timeout, h.interval
        )));
    }
    Ok(h)
}

fn default_health(protocol: &str) -> HealthCheck {
    if is_http(protocol) {
        HealthCheck {
            enabled: true,
            protocol: protocol.to_string(),
            port: "traffic-port".into(),
            path: Some("/".into()),
            interval: 30,
            timeout: 5,
            healthy_threshold: 5,
            unhealthy_threshold: 2,
            matcher: Some("200".into()),
        }
    } else {
        HealthCheck {
            enabled: true,
            protocol: "TCP".into(),
            port: "traffic-port".into(),
            path: None,
            interval: 30,
            timeout: 10,
            healthy_threshold: 5,
            unhealthy_threshold: 2,
            matcher: None,
        }
    }
}

pub(crate) fn create(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let name = req(input, "Name")?.to_string();
    check_name(&name, "Target group")?;
    let target_type = input.str("TargetType").unwrap_or("instance").to_string();
    enum_check(
        &target_type,
        "targetType",
        &["instance", "ip", "lambda", "alb"],
    )?;
    if matches!(target_type.as_str(), "lambda" | "alb") {
        return Err(invalid_config(format!(
            "Target groups with target type '{target_type}' are not supported by Portico"
        )));
    }
    let protocol = input
        .str("Protocol")
        .ok_or_else(|| validation("A protocol must be specified for target groups with target type 'instance' or 'ip'"))?
        .to_string();
    enum_check(
        &protocol,
        "protocol",
        &["HTTP", "HTTPS", "TCP", "TLS", "UDP", "TCP_UDP", "GENEVE"],
    )?;
    if protocol == "GENEVE" {
        return Err(AwsError::bad(
            "UnsupportedProtocol",
            "The protocol 'GENEVE' is not supported by Portico",
        ));
    }
    let port = super::int(input, "Port", 1, 65535)?.ok_or_else(|| {
        validation("A port must be specified for target groups with target type 'instance' or 'ip'")
    })? as u16;
    let vpc_id = input
        .str("VpcId")
        .ok_or_else(|| {
            validation(
                "A VPC ID must be specified for target groups with target type 'instance' or 'ip'",
            )
        })?
        .to_string();
    let protocol_version = match input.str("ProtocolVersion") {
        Some(v) => {
            if !is_http(&protocol) {
                return Err(validation(
                    "A protocol version can only be specified for HTTP and HTTPS target groups",
                ));
            }
            enum_check(
                &v.to_ascii_uppercase(),
                "protocolVersion",
                &["HTTP1", "HTTP2", "GRPC"],
            )?;
            Some(v.to_ascii_uppercase())
        }
        None => is_http(&protocol).then(|| "HTTP1".to_string()),
    };
    let ip_type = input.str("IpAddressType").unwrap_or("ipv4").to_string();
    enum_check(&ip_type, "ipAddressType", &["ipv4", "ipv6"])?;
    let health = health_settings(input, default_health(&protocol), &protocol, &target_type)?;
    let new_tags = tags::parse_tags(input)?;
    let scope = ctx.scope.clone();
    ctx.store().write(|tx| {
        if shared::get_vpc(tx, &scope, &vpc_id)?.is_none() {
            return Err(validation(format!("The VPC ID '{vpc_id}' is not found")));
        }
        if let Some(r) = tx.find_by_name(&scope, KIND_TG, &name)?.into_iter().next() {
            let tg: TargetGroup = serde_json::from_value(r.body).map_err(AwsError::internal)?;
            let same = tg.protocol == protocol
                && tg.port == port
                && tg.vpc_id == vpc_id
                && tg.target_type == target_type
                && tg.health == health;
            if same {
                let lbs = model::lbs_of_tg(tx, &scope, &tg.arn)?;
                return Ok(json!({"TargetGroups": [model::tg_json(&tg, lbs)]}));
            }
            return Err(AwsError::bad(
                "DuplicateTargetGroupName",
                "A target group with the same name exists, but with different settings",
            ));
        }
        let arn = ctx.rc.arn(
            "elasticloadbalancing",
            &format!("targetgroup/{name}/{}", new_id()),
        );
        let tg = TargetGroup {
            arn,
            name: name.clone(),
            protocol: protocol.clone(),
            protocol_version: protocol_version.clone(),
            port,
            vpc_id: vpc_id.clone(),
            target_type: target_type.clone(),
            ip_address_type: ip_type.clone(),
            health: health.clone(),
            attributes: default_attributes(&protocol, &target_type),
            tags: new_tags.clone(),
            targets: vec![],
        };
        model::put_tg(tx, &scope, &tg)?;
        Ok(json!({"TargetGroups": [model::tg_json(&tg, vec![])]}))
    })
}

pub(crate) fn describe(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let lb_arn = input.str("LoadBalancerArn").map(str::to_string);
    let arns = input.str_list("TargetGroupArns");
    let names = input.str_list("Names");
    if [lb_arn.is_some(), arns.is_some(), names.is_some()]
        .iter()
        .filter(|b| **b)
        .count()
        > 1
    {
        return Err(validation(
            "Only one of load balancer ARN, target group ARNs or names can be specified",
        ));
    }
    let scope = ctx.scope.clone();
    let items = ctx.store().read(|tx| {
        let tgs: Vec<TargetGroup> = if let Some(a) = &arns {
            a.iter()
                .map(|arn| model::get_tg(tx, &scope, arn))
                .collect::<AwsResult<_>>()?
        } else if let Some(n) = &names {
            let mut out = Vec::new();
            for name in n {
                let Some(r) = tx.find_by_name(&scope, KIND_TG, name)?.into_iter().next() else {
                    return Err(AwsError::bad(
                        "TargetGroupNotFound",
                        format!("Target groups '[{name}]' not found"),
                    ));
                };
                out.push(serde_json::from_value(r.body).map_err(AwsError::internal)?);
            }
            out
        } else {
            let all: Vec<TargetGroup> = tx.list_as(&scope, KIND_TG, None)?;
            match &lb_arn {
                Some(lb) => {
                    model::get_lb(tx, &scope, lb)?;
                    let mut out = Vec::new();
                    for tg in all {
                        if model::lbs_of_tg(tx, &scope, &tg.arn)?.contains(lb) {
                            out.push(tg);
                        }
                    }
                    out
                }
                None => all,
            }
        };
        tgs.iter()
            .map(|tg| Ok(model::tg_json(tg, model::lbs_of_tg(tx, &scope, &tg.arn)?)))
            .collect::<AwsResult<Vec<_>>>()
    })?;
    let (page, next) = paginate(items, input)?;
    Ok(with_marker(json!({"TargetGroups": page}), next))
}

pub(crate) fn modify(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let arn = req(input, "TargetGroupArn")?.to_string();
    let scope = ctx.scope.clone();
    ctx.store().write(|tx| {
        let mut tg = model::get_tg(tx, &scope, &arn)?;
        tg.health = health_settings(input, tg.health.clone(), &tg.protocol, &tg.target_type)?;
        model::put_tg(tx, &scope, &tg)?;
        let lbs = model::lbs_of_tg(tx, &scope, &arn)?;
        Ok(json!({"TargetGroups": [model::tg_json(&tg, lbs)]}))
    })
}

pub(crate) fn delete(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let arn = req(input, "TargetGroupArn")?.to_string();
    let scope = ctx.scope.clone();
    ctx.store().write(|tx| {
        if tx.get(&scope, KIND_TG, &arn)?.is_none() {
            return Ok(model::empty());
        }
        if !model::lbs_of_tg(tx, &scope, &arn)?.is_empty() {
            return Err(AwsError::bad(
                "ResourceInUse",
                format!("Target group '{arn}' is currently in use by a listener or a rule"),
            ));
        }
        tx.delete(&scope, KIND_TG, &arn)?;
        Ok(model::empty())
    })
}

pub(crate) fn describe_attributes(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let arn = req(input, "TargetGroupArn")?.to_string();
    let scope = ctx.scope.clone();
    let tg = ctx.store().read(|tx| model::get_tg(tx, &scope, &arn))?;
    Ok(json!({"Attributes": model::attributes_json(&tg.attributes)}))
}

pub(crate) fn modify_attributes(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let arn = req(input, "TargetGroupArn")?.to_string();
    let attrs = model::input_attributes(input)?;
    let scope = ctx.scope.clone();
    ctx.store().write(|tx| {
        let mut tg = model::get_tg(tx, &scope, &arn)?;
        for (k, v) in &attrs {
            if !tg.attributes.contains_key(k) {
                return Err(model::unknown_attr(k));
            }
            check_attribute(k, v)?;
            tg.attributes.insert(k.clone(), v.clone());
        }
        if tg
            .attributes
            .get("load_balancing.algorithm.type")
            .map(String::as_str)
            == Some("least_outstanding_requests")
            && tg
                .attributes
                .get("slow_start.duration_seconds")
                .map(String::as_str)
                != Some("0")
        {
            return Err(invalid_config(
                "Slow start cannot be combined with the least outstanding requests algorithm",
            ));
        }
        model::put_tg(tx, &scope, &tg)?;
        Ok(json!({"Attributes": model::attributes_json(&tg.attributes)}))
    })
}

/// `(Id, Port)` pairs from `Targets`, ports defaulting to the group's.
fn input_targets(input: &Input, tg: &TargetGroup) -> AwsResult<Vec<Target>> {
    let list = input.list("Targets").unwrap_or_default();
    if list.is_empty() {
        return Err(validation("1 validation error detected: Value null at 'targets' failed to satisfy constraint: Member must not be null"));
    }
    list.iter()
        .map(|t| {
            let id = req(t, "Id")?.to_string();
            let port = super::int(t, "Port", 1, 65535)?
                .map(|p| p as u16)
                .unwrap_or(tg.port);
            Ok(Target {
                id,
                port,
                availability_zone: t.str("AvailabilityZone").map(str::to_string),
                draining_until_ms: None,
            })
        })
        .collect()
}

fn in_ranges(ip: Ipv4Addr, vpc_cidr: &str) -> bool {
    let within = |cidr: &str| {
        portico_dataplane::lb::Cidr::parse(cidr).is_some_and(|c| c.contains(IpAddr::V4(ip)))
    };
    // Portico extension: 127.0.0.0/8 so that tests and local tools can register loopback servers.
    within(vpc_cidr)
        || [
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "100.64.0.0/10",
            "127.0.0.0/8",
        ]
        .iter()
        .any(|c| within(c))
}

pub(crate) fn register(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let arn = req(input, "TargetGroupArn")?.to_string();
    let scope = ctx.scope.clone();
    ctx.store().write(|tx| {
        let mut tg = model::get_tg(tx, &scope, &arn)?;
        let targets = input_targets(input, &tg)?;
        let vpc_cidr = shared::get_vpc(tx, &scope, &tg.vpc_id)?
            .map(|v| v.cidr_block)
            .unwrap_or_default();
        for t in &targets {
            if tg.target_type == "ip" {
                let ok = t.id.parse::<Ipv4Addr>().is_ok_and(|ip| in_ranges(ip, &vpc_cidr));
                if !ok {
                    return Err(AwsError::bad(
                        "InvalidTarget",
                        format!("The IP address '{}' is not a valid IPv4 address within the VPC's CIDR or the RFC 1918 ranges", t.id),
                    ));
                }
            } else if !(t.id.starts_with("i-") && t.id.len() > 2 && t.id[2..].bytes().all(|b| b.is_ascii_hexdigit())) {
                return Err(AwsError::bad(
                    "InvalidTarget",
                    format!("The following targets are not valid instances: '{}'", t.id),
                ));
            }
        }
        for t in targets {
            match tg.targets.iter_mut().find(|o| o.id == t.id && o.port == t.port) {
                // Registering a draining target again puts it back in service.
                Some(o) => o.draining_until_ms = None,
                None => {
                    if tg.targets.len() >= 1000 {
                        return Err(AwsError::bad(
                            "TooManyTargets",
                            "You've reached the limit on the number of targets",
                        ));
                    }
                    tg.targets.push(t)
                }
            }
        }
        model::put_tg(tx, &scope, &tg)?;
        Ok(model::empty())
    })
}

pub(crate) fn deregister(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let arn = req(input, "TargetGroupArn")?.to_string();
    let scope = ctx.scope.clone();
    ctx.store().write(|tx| {
        let mut tg = model::get_tg(tx, &scope, &arn)?;
        let targets = input_targets(input, &tg)?;
        let in_use = !model::lbs_of_tg(tx, &scope, &arn)?.is_empty();
        let delay: i64 = tg
            .attributes
            .get("deregistration_delay.timeout_seconds")
            .and_then(|v| v.parse().ok())
            .unwrap_or(300);
        let until = portico_core::time::now_millis() + super::scaled_ms(ctx, delay);
        for t in &targets {
            if in_use && delay > 0 {
                if let Some(o) = tg
                    .targets
                    .iter_mut()
                    .find(|o| o.id == t.id && o.port == t.port)
                {
                    o.draining_until_ms.get_or_insert(until);
                }
            } else {
                tg.targets.retain(|o| !(o.id == t.id && o.port == t.port));
            }
        }
        model::put_tg(tx, &scope, &tg)?;
        Ok(model::empty())
    })
}

fn health_entry(t: &Target, hc_port: &str, state: &str, reason: Option<(&str, String)>) -> Value {
    let mut target = json!({"Id": t.id, "Port": t.port});
    if let Some(az) = &t.availability_zone {
        target["AvailabilityZone"] = json!(az);
    }
    let mut h = json!({"State": state});
    if let Some((code, desc)) = reason {
        h["Reason"] = json!(code);
        h["Description"] = json!(desc);
    }
    let port = if hc_port == "traffic-port" {
        t.port.to_string()
    } else {
        hc_port.to_string()
    };
    json!({"Target": target, "HealthCheckPort": port, "TargetHealth": h})
}

pub(crate) fn describe_health(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let arn = req(input, "TargetGroupArn")?.to_string();
    let scope = ctx.scope.clone();
    let (tg, in_use) = ctx.store().read(|tx| {
        let tg = model::get_tg(tx, &scope, &arn)?;
        let in_use = !model::lbs_of_tg(tx, &scope, &arn)?.is_empty();
        Ok((tg, in_use))
    })?;
    let asked = if input.has("Targets") {
        Some(input_targets(input, &tg)?)
    } else {
        None
    };
    let engine = &ctx.control.dataplane().lb;
    let entry = |t: &Target| -> Value {
        let hp = &tg.health.port;
        let Some(reg) = tg.targets.iter().find(|o| o.id == t.id && o.port == t.port) else {
            return health_entry(
                t,
                hp,
                "unused",
                Some((
                    "Target.NotRegistered",
                    "Target is not registered to the target group".into(),
                )),
            );
        };
        if reg.draining_until_ms.is_some() {
            return health_entry(
                reg,
                hp,
                "draining",
                Some((
                    "Target.DeregistrationInProgress",
                    "Target deregistration is in progress".into(),
                )),
            );
        }
        if !in_use {
            return health_entry(
                reg,
                hp,
                "unused",
                Some((
                    "Target.NotInUse",
                    "Target group is not configured to receive traffic from the load balancer"
                        .into(),
                )),
            );
        }
        if !tg.health.enabled {
            return health_entry(
                reg,
                hp,
                "unavailable",
                Some((
                    "Target.HealthCheckDisabled",
                    "Health checks are disabled".into(),
                )),
            );
        }
        let ip: Option<IpAddr> = reg.id.parse().ok();
        match ip.and_then(|ip| engine.target_health(&tg.arn, ip, reg.port)) {
            None => health_entry(
                reg,
                hp,
                "initial",
                Some((
                    "Elb.RegistrationInProgress",
                    "Target registration is in progress".into(),
                )),
            ),
            Some(h) => {
                let state = match h.state {
                    HealthState::Initial => "initial",
                    HealthState::Healthy => "healthy",
                    HealthState::Unhealthy => "unhealthy",
                };
                let mut reason = h.reason;
                if tg.protocol != "HTTP"
                    && tg.protocol != "HTTPS"
                    && h.state == HealthState::Unhealthy
                {
                    // NLB target groups report every failure as Target.FailedHealthChecks.
                    reason = Some(("Target.FailedHealthChecks", "Health checks failed".into()));
                }
                health_entry(reg, hp, state, reason)
            }
        }
    };
    let out: Vec<Value> = match &asked {
        Some(a) => a.iter().map(entry).collect(),
        None => tg.targets.iter().map(entry).collect(),
    };
    Ok(json!({"TargetHealthDescriptions": out}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers() {
        assert_eq!(parse_matcher("200", 200, 499), Some(vec![(200, 200)]));
        assert_eq!(
            parse_matcher("200,202-204", 200, 499),
            Some(vec![(200, 200), (202, 204)])
        );
        assert_eq!(parse_matcher("500", 200, 499), None);
        assert_eq!(parse_matcher("x", 200, 499), None);
        assert_eq!(parse_matcher("300-200", 200, 499), None);
    }

    #[test]
    fn target_ranges() {
        let ip = |s: &str| s.parse().unwrap();
        assert!(in_ranges(ip("10.0.1.5"), "10.0.0.0/16"));
        assert!(in_ranges(ip("127.0.0.1"), "10.0.0.0/16"));
        assert!(!in_ranges(ip("8.8.8.8"), "10.0.0.0/16"));
        assert!(in_ranges(ip("8.8.8.8"), "8.8.0.0/16"));
    }

    #[test]
    fn constraint_message_shape() {
        let e = super::super::constraint(
            "FOO",
            "protocol",
            "Member must satisfy enum value set: [HTTP]",
        );
        assert_eq!(e.message, "1 validation error detected: Value 'FOO' at 'protocol' failed to satisfy constraint: Member must satisfy enum value set: [HTTP]");
    }
}
