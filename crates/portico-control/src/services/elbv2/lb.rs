//! Load balancers: create (subnets and security groups checked against EC2, one ENI per
//! subnet), describe, delete, attributes, security groups, subnets, IP address type; account
//! limits and SSL policies.

use super::model::{self, LoadBalancer, SubnetPlacement, KIND_LB, KIND_LISTENER, KIND_RULE};
use super::{check_name, enum_check, new_id, paginate, req, tags, validation, with_marker};
use crate::services::ec2::shared;
use crate::Ctx;
use portico_core::{AwsError, AwsResult, Input};
use portico_store::{Scope, Tx};
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn invalid_config(msg: impl Into<String>) -> AwsError {
    AwsError::bad("InvalidConfigurationRequest", msg)
}

pub(crate) fn default_attributes(lb_type: &str) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    let mut put = |k: &str, v: &str| {
        a.insert(k.to_string(), v.to_string());
    };
    put("deletion_protection.enabled", "false");
    put("access_logs.s3.enabled", "false");
    put("access_logs.s3.bucket", "");
    put("access_logs.s3.prefix", "");
    if lb_type == "application" {
        put("idle_timeout.timeout_seconds", "60");
        put("client_keep_alive.seconds", "3600");
        put("routing.http2.enabled", "true");
        put("routing.http.drop_invalid_header_fields.enabled", "false");
        put("routing.http.preserve_host_header.enabled", "false");
        put("routing.http.xff_header_processing.mode", "append");
        put("routing.http.xff_client_port.enabled", "false");
        put("routing.http.desync_mitigation_mode", "defensive");
        put(
            "routing.http.x_amzn_tls_version_and_cipher_suite.enabled",
            "false",
        );
        put("waf.fail_open.enabled", "false");
        put("load_balancing.cross_zone.enabled", "true");
        put("connection_logs.s3.enabled", "false");
        put("connection_logs.s3.bucket", "");
        put("connection_logs.s3.prefix", "");
        put("zonal_shift.config.enabled", "false");
    } else {
        put("load_balancing.cross_zone.enabled", "false");
        put("dns_record.client_routing_policy", "any_availability_zone");
        put("zonal_shift.config.enabled", "false");
    }
    a
}

fn check_attribute(lb_type: &str, k: &str, v: &str) -> AwsResult<()> {
    match k {
        "idle_timeout.timeout_seconds" => model::int_attr(k, v, 1, 4000),
        "client_keep_alive.seconds" => model::int_attr(k, v, 60, 604800),
        "routing.http.xff_header_processing.mode" => {
            model::enum_attr(k, v, &["append", "preserve", "remove"])
        }
        "routing.http.desync_mitigation_mode" => {
            model::enum_attr(k, v, &["monitor", "defensive", "strictest"])
        }
        "dns_record.client_routing_policy" => model::enum_attr(
            k,
            v,
            &[
                "availability_zone_affinity",
                "partial_availability_zone_affinity",
                "any_availability_zone",
            ],
        ),
        "load_balancing.cross_zone.enabled" if lb_type == "application" && v != "true" => {
            Err(invalid_config(
                "Cross-zone load balancing cannot be disabled for Application Load Balancers",
            ))
        }
        "access_logs.s3.bucket"
        | "access_logs.s3.prefix"
        | "connection_logs.s3.bucket"
        | "connection_logs.s3.prefix" => Ok(()),
        k if k.ends_with(".enabled") => model::bool_attr(k, v),
        _ => Ok(()),
    }
}

/// A stable loopback address of the load balancer's own, from its id: `127.x.y.z`, never
/// `127.0.0.1`.
fn local_ip(id: &str) -> String {
    let b = |i: usize| u8::from_str_radix(id.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0);
    format!("127.{}.{}.{}", 1 + b(0) % 254, b(2), 1 + b(4) % 254)
}

fn dns_name(ctx: &Ctx<'_>, name: &str, scheme: &str, lb_type: &str) -> String {
    let region = &ctx.rc.region;
    let prefix = if scheme == "internal" {
        "internal-"
    } else {
        ""
    };
    let aws = ctx.control.config().aws_endpoints;
    if lb_type == "network" {
        let suffix = if aws { "amazonaws.com" } else { "localhost" };
        format!(
            "{prefix}{name}-{}.elb.{region}.{suffix}",
            portico_core::ids::hex(16)
        )
    } else {
        let suffix = if aws {
            "elb.amazonaws.com"
        } else {
            "elb.localhost"
        };
        let digits: u64 = 1_000_000_000 + rand::random::<u64>() % 8_999_999_999;
        format!("{prefix}{name}-{digits}.{region}.{suffix}")
    }
}

/// Subnets (or subnet mappings) validated against EC2: exist, one VPC, one per zone.
fn resolve_subnets(
    tx: &Tx<'_>,
    scope: &Scope,
    input: &Input,
    lb_type: &str,
) -> AwsResult<Vec<shared::Subnet>> {
    let ids: Vec<String> = match (input.str_list("Subnets"), input.list("SubnetMappings")) {
        (Some(_), Some(_)) => {
            return Err(validation(
                "You can specify subnets or subnet mappings, not both",
            ))
        }
        (Some(s), None) => s,
        (None, Some(m)) => m
            .iter()
            .map(|m| {
                m.str("SubnetId").map(str::to_string).ok_or_else(|| {
                    validation("A subnet ID must be specified in each subnet mapping")
                })
            })
            .collect::<AwsResult<_>>()?,
        (None, None) => Vec::new(),
    };
    if ids.is_empty() {
        return Err(validation("At least one subnet must be specified"));
    }
    let mut subnets: Vec<shared::Subnet> = Vec::new();
    for id in &ids {
        let s = shared::get_subnet(tx, scope, id)?.ok_or_else(|| {
            AwsError::bad(
                "SubnetNotFound",
                format!("The subnet ID '{id}' is not valid"),
            )
        })?;
        if subnets.iter().any(|o| o.subnet_id == s.subnet_id) {
            continue;
        }
        if let Some(first) = subnets.first() {
            if first.vpc_id != s.vpc_id {
                return Err(AwsError::bad(
                    "InvalidSubnet",
                    "All subnets must belong to the same VPC",
                ));
            }
        }
        if subnets
            .iter()
            .any(|o| o.availability_zone == s.availability_zone)
        {
            return Err(invalid_config(
                "A load balancer cannot be attached to multiple subnets in the same Availability Zone",
            ));
        }
        subnets.push(s);
    }
    if lb_type == "application" && subnets.len() < 2 {
        return Err(invalid_config(
            "At least two subnets in two different Availability Zones must be specified",
        ));
    }
    Ok(subnets)
}

fn resolve_groups(
    tx: &Tx<'_>,
    scope: &Scope,
    groups: &[String],
    vpc_id: &str,
) -> AwsResult<Vec<String>> {
    let mut out = Vec::new();
    for g in groups {
        match shared::get_security_group(tx, scope, g)? {
            Some(sg) if sg.vpc_id == vpc_id => {
                if !out.contains(&sg.group_id) {
                    out.push(sg.group_id)
                }
            }
            _ => {
                return Err(AwsError::bad(
                    "InvalidSecurityGroup",
                    format!("Security group '{g}' does not exist"),
                ))
            }
        }
    }
    Ok(out)
}

fn default_group(tx: &Tx<'_>, scope: &Scope, vpc_id: &str) -> AwsResult<Vec<String>> {
    Ok(tx
        .list_as::<shared::SecurityGroup>(scope, shared::KIND_SG, Some(vpc_id))?
        .into_iter()
        .filter(|g| g.group_name == "default")
        .map(|g| g.group_id)
        .take(1)
        .collect())
}

fn place(
    tx: &Tx<'_>,
    scope: &Scope,
    lb_type: &str,
    lb_name: &str,
    lb_id: &str,
    subnets: &[shared::Subnet],
    groups: &[String],
) -> AwsResult<Vec<SubnetPlacement>> {
    let seg = model::type_segment(lb_type);
    let iface = if lb_type == "network" {
        "network_load_balancer"
    } else {
        "interface"
    };
    subnets
        .iter()
        .map(|s| {
            let eni = shared::create_eni(
                tx,
                scope,
                &s.subnet_id,
                groups,
                &format!("ELB {seg}/{lb_name}/{lb_id}"),
                iface,
                "amazon-elb",
                None,
            )?;
            Ok(SubnetPlacement {
                subnet_id: s.subnet_id.clone(),
                zone_name: s.availability_zone.clone(),
                eni_id: eni.network_interface_id,
                private_ip: eni.private_ip_address,
            })
        })
        .collect()
}

pub(crate) fn create(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let name = req(input, "Name")?.to_string();
    check_name(&name, "Load balancer")?;
    if name.starts_with("internal-") {
        return Err(validation(format!(
            "Load balancer name '{name}' cannot begin with 'internal-'"
        )));
    }
    let lb_type = input.str("Type").unwrap_or("application").to_string();
    enum_check(&lb_type, "type", &["application", "network", "gateway"])?;
    if lb_type == "gateway" {
        return Err(AwsError::bad(
            "UnsupportedProtocol",
            "Gateway Load Balancers are not supported by Portico",
        ));
    }
    let scheme = input.str("Scheme").unwrap_or("internet-facing").to_string();
    enum_check(&scheme, "scheme", &["internet-facing", "internal"])?;
    let ip_type = input.str("IpAddressType").unwrap_or("ipv4").to_string();
    enum_check(
        &ip_type,
        "ipAddressType",
        &["ipv4", "dualstack", "dualstack-without-public-ipv4"],
    )?;
    if scheme == "internal" && ip_type != "ipv4" {
        return Err(invalid_config(
            "Internal load balancers must use the 'ipv4' IP address type",
        ));
    }
    let new_tags = tags::parse_tags(input)?;
    let sg_input = input.str_list("SecurityGroups");
    let scope = ctx.scope.clone();
    ctx.store().write(|tx| {
        let subnets = resolve_subnets(tx, &scope, input, &lb_type)?;
        let vpc_id = subnets[0].vpc_id.clone();
        let groups = match &sg_input {
            Some(g) => resolve_groups(tx, &scope, g, &vpc_id)?,
            None if lb_type == "application" => default_group(tx, &scope, &vpc_id)?,
            None => Vec::new(),
        };
        let mut subnet_ids: Vec<&str> = subnets.iter().map(|s| s.subnet_id.as_str()).collect();
        subnet_ids.sort();
        if let Some(existing) = tx.find_by_name(&scope, KIND_LB, &name)?.into_iter().next() {
            let lb: LoadBalancer = serde_json::from_value(existing.body).map_err(AwsError::internal)?;
            let mut have: Vec<&str> = lb.subnets.iter().map(|s| s.subnet_id.as_str()).collect();
            have.sort();
            let same = lb.lb_type == lb_type
                && lb.scheme == scheme
                && have == subnet_ids
                && (sg_input.is_none() || lb.security_groups == groups);
            if same {
                return Ok(json!({"LoadBalancers": [model::lb_json(&lb)]}));
            }
            return Err(AwsError::bad(
                "DuplicateLoadBalancerName",
                format!("A load balancer with the same name '{name}' exists, but with different settings"),
            ));
        }
        let id = new_id();
        let seg = model::type_segment(&lb_type);
        let arn = ctx.rc.arn(
            "elasticloadbalancing",
            &format!("loadbalancer/{seg}/{name}/{id}"),
        );
        let placements = place(tx, &scope, &lb_type, &name, &id, &subnets, &groups)?;
        let lb = LoadBalancer {
            arn,
            name: name.clone(),
            id: id.clone(),
            lb_type: lb_type.clone(),
            scheme: scheme.clone(),
            vpc_id,
            subnets: placements,
            security_groups: groups,
            ip_address_type: ip_type.clone(),
            dns_name: dns_name(ctx, &name, &scheme, &lb_type),
            created_ms: portico_core::time::now_millis(),
            state: "provisioning".into(),
            attributes: default_attributes(&lb_type),
            tags: new_tags.clone(),
            local_ip: local_ip(&id),
            local_certificate: None,
        };
        model::put_lb(tx, &scope, &lb)?;
        Ok(json!({"LoadBalancers": [model::lb_json(&lb)]}))
    })
}

pub(crate) fn describe(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let arns = input.str_list("LoadBalancerArns");
    let names = input.str_list("Names");
    if arns.is_some() && names.is_some() {
        return Err(validation(
            "Load balancer names and load balancer ARNs cannot be specified at the same time",
        ));
    }
    let scope = ctx.scope.clone();
    let items = ctx.store().read(|tx| {
        let lbs: Vec<LoadBalancer> = match (&arns, &names) {
            (Some(a), _) => a
                .iter()
                .map(|arn| model::get_lb(tx, &scope, arn))
                .collect::<AwsResult<_>>()?,
            (_, Some(n)) => {
                let mut out = Vec::new();
                for name in n {
                    let r = tx.find_by_name(&scope, KIND_LB, name)?;
                    let Some(r) = r.into_iter().next() else {
                        return Err(AwsError::bad(
                            "LoadBalancerNotFound",
                            format!("Load balancers '[{name}]' not found"),
                        ));
                    };
                    out.push(serde_json::from_value(r.body).map_err(AwsError::internal)?);
                }
                out
            }
            _ => tx.list_as(&scope, KIND_LB, None)?,
        };
        Ok(lbs.iter().map(model::lb_json).collect::<Vec<_>>())
    })?;
    let (page, next) = paginate(items, input)?;
    Ok(with_marker(json!({"LoadBalancers": page}), next))
}

/// Deletes a load balancer's listeners and rules (inside the caller's transaction).
pub(crate) fn delete_listeners_of(tx: &Tx<'_>, scope: &Scope, lb_arn: &str) -> AwsResult<()> {
    for l in tx.list(scope, KIND_LISTENER, Some(lb_arn))? {
        for r in tx.list(scope, KIND_RULE, Some(&l.id))? {
            tx.delete(scope, KIND_RULE, &r.id)?;
        }
        tx.delete(scope, KIND_LISTENER, &l.id)?;
    }
    Ok(())
}

pub(crate) fn delete(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let arn = req(input, "LoadBalancerArn")?.to_string();
    let scope = ctx.scope.clone();
    ctx.store().write(|tx| {
        let Some(lb) = tx.get_as::<LoadBalancer>(&scope, KIND_LB, &arn)? else {
            return Ok(model::empty());
        };
        if lb.attributes.get("deletion_protection.enabled").map(String::as_str) == Some("true") {
            return Err(AwsError::bad(
                "OperationNotPermitted",
                format!("Load balancer '{arn}' cannot be deleted because deletion protection is enabled"),
            ));
        }
        delete_listeners_of(tx, &scope, &arn)?;
        for s in &lb.subnets {
            shared::delete_eni(tx, &scope, &s.eni_id)?;
        }
        tx.delete(&scope, KIND_LB, &arn)?;
        Ok(model::empty())
    })
}

pub(crate) fn describe_attributes(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let arn = req(input, "LoadBalancerArn")?.to_string();
    let scope = ctx.scope.clone();
    let lb = ctx.store().read(|tx| model::get_lb(tx, &scope, &arn))?;
    Ok(json!({"Attributes": model::attributes_json(&lb.attributes)}))
}

pub(crate) fn modify_attributes(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let arn = req(input, "LoadBalancerArn")?.to_string();
    let attrs = model::input_attributes(input)?;
    let scope = ctx.scope.clone();
    ctx.store().write(|tx| {
        let mut lb = model::get_lb(tx, &scope, &arn)?;
        let known = default_attributes(&lb.lb_type);
        for (k, v) in &attrs {
            if !known.contains_key(k) {
                return Err(model::unknown_attr(k));
            }
            check_attribute(&lb.lb_type, k, v)?;
            lb.attributes.insert(k.clone(), v.clone());
        }
        model::put_lb(tx, &scope, &lb)?;
        Ok(json!({"Attributes": model::attributes_json(&lb.attributes)}))
    })
}

pub(crate) fn set_security_groups(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let arn = req(input, "LoadBalancerArn")?.to_string();
    let groups = input
        .str_list("SecurityGroups")
        .ok_or_else(|| validation("1 validation error detected: Value null at 'securityGroups' failed to satisfy constraint: Member must not be null"))?;
    let scope = ctx.scope.clone();
    ctx.store().write(|tx| {
        let mut lb = model::get_lb(tx, &scope, &arn)?;
        if lb.lb_type == "application" && groups.is_empty() {
            return Err(invalid_config(
                "An Application Load Balancer must have at least one security group",
            ));
        }
        lb.security_groups = resolve_groups(tx, &scope, &groups, &lb.vpc_id)?;
        for s in &lb.subnets {
            if let Some(mut eni) = shared::get_eni(tx, &scope, &s.eni_id)? {
                eni.group_ids = lb.security_groups.clone();
                tx.put_as(
                    &scope,
                    shared::KIND_ENI,
                    &eni.network_interface_id.clone(),
                    Some(&s.subnet_id),
                    None,
                    &eni,
                )?;
            }
        }
        model::put_lb(tx, &scope, &lb)?;
        Ok(json!({"SecurityGroupIds": lb.security_groups}))
    })
}

pub(crate) fn set_subnets(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let arn = req(input, "LoadBalancerArn")?.to_string();
    let scope = ctx.scope.clone();
    ctx.store().write(|tx| {
        let mut lb = model::get_lb(tx, &scope, &arn)?;
        let subnets = resolve_subnets(tx, &scope, input, &lb.lb_type)?;
        if subnets[0].vpc_id != lb.vpc_id {
            return Err(AwsError::bad(
                "InvalidSubnet",
                "The subnets must belong to the load balancer's VPC",
            ));
        }
        // Keep placements (and their ENIs) for subnets that stay; add and remove the rest.
        let mut kept = Vec::new();
        for p in std::mem::take(&mut lb.subnets) {
            if subnets.iter().any(|s| s.subnet_id == p.subnet_id) {
                kept.push(p);
            } else {
                shared::delete_eni(tx, &scope, &p.eni_id)?;
            }
        }
        let new: Vec<shared::Subnet> = subnets
            .iter()
            .filter(|s| !kept.iter().any(|p| p.subnet_id == s.subnet_id))
            .cloned()
            .collect();
        kept.extend(place(
            tx,
            &scope,
            &lb.lb_type,
            &lb.name,
            &lb.id,
            &new,
            &lb.security_groups,
        )?);
        lb.subnets = kept;
        model::put_lb(tx, &scope, &lb)?;
        let v = model::lb_json(&lb);
        Ok(json!({"AvailabilityZones": v["AvailabilityZones"], "IpAddressType": lb.ip_address_type}))
    })
}

pub(crate) fn set_ip_address_type(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let arn = req(input, "LoadBalancerArn")?.to_string();
    let t = req(input, "IpAddressType")?.to_string();
    enum_check(
        &t,
        "ipAddressType",
        &["ipv4", "dualstack", "dualstack-without-public-ipv4"],
    )?;
    let scope = ctx.scope.clone();
    ctx.store().write(|tx| {
        let mut lb = model::get_lb(tx, &scope, &arn)?;
        if lb.scheme == "internal" && t != "ipv4" {
            return Err(invalid_config(
                "Internal load balancers must use the 'ipv4' IP address type",
            ));
        }
        lb.ip_address_type = t.clone();
        model::put_lb(tx, &scope, &lb)?;
        Ok(json!({"IpAddressType": t}))
    })
}

pub(crate) fn account_limits() -> Value {
    let limits = [
        ("application-load-balancers", "50"),
        ("target-groups", "3000"),
        ("targets-per-application-load-balancer", "1000"),
        ("listeners-per-application-load-balancer", "50"),
        ("rules-per-application-load-balancer", "100"),
        ("network-load-balancers", "50"),
        ("targets-per-network-load-balancer", "3000"),
        (
            "targets-per-availability-zone-per-network-load-balancer",
            "500",
        ),
        ("listeners-per-network-load-balancer", "50"),
        ("condition-values-per-alb-rule", "5"),
        ("condition-wildcards-per-alb-rule", "5"),
        ("target-groups-per-application-load-balancer", "100"),
        ("target-groups-per-action-on-application-load-balancer", "5"),
        ("target-groups-per-action-on-network-load-balancer", "1"),
        ("certificates-per-application-load-balancer", "25"),
        ("certificates-per-network-load-balancer", "25"),
        ("targets-per-target-group", "1000"),
        (
            "target-id-registrations-per-application-load-balancer",
            "1000",
        ),
    ];
    json!({"Limits": limits.iter().map(|(n, m)| json!({"Name": n, "Max": m})).collect::<Vec<_>>()})
}

/// The TLS versions a predefined policy allows (by its name's pattern).
fn policy_protocols(name: &str) -> Vec<&'static str> {
    let tls13 = name.contains("TLS13");
    // The minimum version is the `1-N` pair of dash-separated tokens (`...-TLS13-1-2-...`).
    let tokens: Vec<&str> = name.split('-').collect();
    let min = tokens
        .windows(2)
        .find(|w| w[0] == "1" && matches!(w[1], "0" | "1" | "2" | "3"))
        .map_or("0", |w| w[1]);
    let mut v: Vec<&'static str> = match min {
        "3" => vec![],
        "2" => vec!["TLSv1.2"],
        "1" => vec!["TLSv1.1", "TLSv1.2"],
        _ => vec!["TLSv1", "TLSv1.1", "TLSv1.2"],
    };
    if tls13 {
        v.push("TLSv1.3");
    }
    v
}

#[cfg(test)]
#[test]
fn policy_versions_from_names() {
    assert_eq!(
        policy_protocols("ELBSecurityPolicy-TLS13-1-1-2021-06"),
        vec!["TLSv1.1", "TLSv1.2", "TLSv1.3"]
    );
    assert_eq!(
        policy_protocols("ELBSecurityPolicy-TLS13-1-3-2021-06"),
        vec!["TLSv1.3"]
    );
    assert_eq!(
        policy_protocols("ELBSecurityPolicy-FS-1-2-Res-2019-08"),
        vec!["TLSv1.2"]
    );
    assert_eq!(
        policy_protocols("ELBSecurityPolicy-2016-08"),
        vec!["TLSv1", "TLSv1.1", "TLSv1.2"]
    );
}

pub(crate) fn ssl_policies(input: &Input) -> AwsResult<Value> {
    let all: Vec<(&str, Vec<&str>)> = super::listener::SSL_POLICIES
        .iter()
        .map(|n| (*n, policy_protocols(n)))
        .collect();
    let names = input.str_list("Names");
    let mut out = Vec::new();
    for (n, protos) in &all {
        if names.as_ref().is_some_and(|ns| !ns.iter().any(|x| x == n)) {
            continue;
        }
        // The suites Portico's TLS (rustls) really negotiates under this policy, by AWS's
        // (OpenSSL) names; AWS's own lists also name CBC suites rustls does not offer.
        let mut ciphers: Vec<&str> = Vec::new();
        if protos.contains(&"TLSv1.3") {
            ciphers.extend([
                "TLS_AES_128_GCM_SHA256",
                "TLS_AES_256_GCM_SHA384",
                "TLS_CHACHA20_POLY1305_SHA256",
            ]);
        }
        if protos.contains(&"TLSv1.2") {
            ciphers.extend([
                "ECDHE-ECDSA-AES128-GCM-SHA256",
                "ECDHE-RSA-AES128-GCM-SHA256",
                "ECDHE-ECDSA-AES256-GCM-SHA384",
                "ECDHE-RSA-AES256-GCM-SHA384",
                "ECDHE-ECDSA-CHACHA20-POLY1305",
                "ECDHE-RSA-CHACHA20-POLY1305",
            ]);
        }
        let ciphers: Vec<Value> = ciphers
            .iter()
            .enumerate()
            .map(|(i, c)| json!({"Name": c, "Priority": i + 1}))
            .collect();
        out.push(json!({
            "Name": n,
            "SslProtocols": protos,
            "Ciphers": ciphers,
            "SupportedLoadBalancerTypes": ["application", "network"],
        }));
    }
    if let Some(ns) = &names {
        if let Some(missing) = ns.iter().find(|n| !all.iter().any(|(a, _)| a == n)) {
            return Err(AwsError::bad(
                "SSLPolicyNotFound",
                format!("SSL policy '{missing}' not found"),
            ));
        }
    }
    Ok(json!({"SslPolicies": out}))
}
