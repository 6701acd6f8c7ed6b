//! Elastic Load Balancing v2 (awsQuery, `2015-12-01`): application and network load balancers,
//! listeners, rules, target groups, targets and their health, tags. Every operation validates
//! fully, then writes in one transaction; the `reconcile::elbv2` loop turns the records into a
//! data-plane snapshot and bound listener sockets. Operations not built here answer the
//! protocol's unknown-operation error, never a fake success.
//!
//! Store kinds (scoped to account and region; ids are ARNs):
//! - `elbv2.lb`       name = load balancer name, body [`model::LoadBalancer`]
//! - `elbv2.listener` parent = LB ARN, body [`model::Listener`]
//! - `elbv2.rule`     parent = listener ARN, body [`model::Rule`] (the default rule too)
//! - `elbv2.tg`       name = target group name, body [`model::TargetGroup`] (targets inside)

mod actions;
mod lb;
mod listener;
pub(crate) mod model;
mod tags;
mod tg;

use crate::Ctx;
use portico_core::{AwsError, AwsResult, Input, Service};
use serde_json::Value;

pub async fn dispatch(ctx: &Ctx<'_>, op: &str, input: Input) -> AwsResult<Value> {
    match op {
        "CreateLoadBalancer" => lb::create(ctx, &input),
        "DescribeLoadBalancers" => lb::describe(ctx, &input),
        "DeleteLoadBalancer" => lb::delete(ctx, &input),
        "DescribeLoadBalancerAttributes" => lb::describe_attributes(ctx, &input),
        "ModifyLoadBalancerAttributes" => lb::modify_attributes(ctx, &input),
        "SetSecurityGroups" => lb::set_security_groups(ctx, &input),
        "SetSubnets" => lb::set_subnets(ctx, &input),
        "SetIpAddressType" => lb::set_ip_address_type(ctx, &input),
        "CreateListener" => listener::create(ctx, &input),
        "DescribeListeners" => listener::describe(ctx, &input),
        "ModifyListener" => listener::modify(ctx, &input),
        "DeleteListener" => listener::delete(ctx, &input),
        "DescribeListenerAttributes" => listener::describe_attributes(ctx, &input),
        "ModifyListenerAttributes" => listener::modify_attributes(ctx, &input),
        "DescribeListenerCertificates" => listener::describe_certificates(ctx, &input),
        "AddListenerCertificates" => listener::add_certificates(ctx, &input),
        "RemoveListenerCertificates" => listener::remove_certificates(ctx, &input),
        "CreateRule" => listener::create_rule(ctx, &input),
        "DescribeRules" => listener::describe_rules(ctx, &input),
        "ModifyRule" => listener::modify_rule(ctx, &input),
        "SetRulePriorities" => listener::set_rule_priorities(ctx, &input),
        "DeleteRule" => listener::delete_rule(ctx, &input),
        "CreateTargetGroup" => tg::create(ctx, &input),
        "DescribeTargetGroups" => tg::describe(ctx, &input),
        "ModifyTargetGroup" => tg::modify(ctx, &input),
        "DeleteTargetGroup" => tg::delete(ctx, &input),
        "DescribeTargetGroupAttributes" => tg::describe_attributes(ctx, &input),
        "ModifyTargetGroupAttributes" => tg::modify_attributes(ctx, &input),
        "RegisterTargets" => tg::register(ctx, &input),
        "DeregisterTargets" => tg::deregister(ctx, &input),
        "DescribeTargetHealth" => tg::describe_health(ctx, &input),
        "AddTags" => tags::add(ctx, &input),
        "RemoveTags" => tags::remove(ctx, &input),
        "DescribeTags" => tags::describe(ctx, &input),
        "DescribeAccountLimits" => Ok(lb::account_limits()),
        "DescribeSSLPolicies" => lb::ssl_policies(&input),
        _ => Err(Service::Elbv2.unknown_operation(op)),
    }
}

/// ELB's generic validation error (`ValidationError`, AWS's "1 validation error detected" form
/// when `generic`).
pub(crate) fn validation(msg: impl Into<String>) -> AwsError {
    AwsError::bad("ValidationError", msg)
}

/// `1 validation error detected: Value 'x' at 'field' failed to satisfy constraint: ...`.
pub(crate) fn constraint(value: &str, field: &str, constraint: &str) -> AwsError {
    AwsError::validation(
        "ValidationError",
        &[format!(
            "Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
        )],
    )
}

pub(crate) fn enum_check(value: &str, field: &str, allowed: &[&str]) -> AwsResult<()> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(constraint(
            value,
            field,
            &format!(
                "Member must satisfy enum value set: [{}]",
                allowed.join(", ")
            ),
        ))
    }
}

pub(crate) fn req<'a>(input: &'a Input, key: &str) -> AwsResult<&'a str> {
    input.req_str(key, "ValidationError")
}

/// An optional integer in `[min, max]`.
pub(crate) fn int(input: &Input, key: &str, min: i64, max: i64) -> AwsResult<Option<i64>> {
    let field = lower_first(key);
    match input.i64(key) {
        Err(raw) => Err(constraint(&raw, &field, "Member must be an integer")),
        Ok(None) => Ok(None),
        Ok(Some(v)) if v < min => Err(constraint(
            &v.to_string(),
            &field,
            &format!("Member must have value greater than or equal to {min}"),
        )),
        Ok(Some(v)) if v > max => Err(constraint(
            &v.to_string(),
            &field,
            &format!("Member must have value less than or equal to {max}"),
        )),
        Ok(Some(v)) => Ok(Some(v)),
    }
}

pub(crate) fn boolean(input: &Input, key: &str) -> AwsResult<Option<bool>> {
    input
        .bool(key)
        .map_err(|raw| constraint(&raw, &lower_first(key), "Member must be a boolean"))
}

pub(crate) fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// Load balancer and target group names: 1-32 letters, digits and hyphens, no hyphen at
/// either end.
pub(crate) fn check_name(name: &str, what: &str) -> AwsResult<()> {
    if name.is_empty() || name.len() > 32 {
        return Err(validation(format!(
            "{what} name cannot be longer than 32 characters"
        )));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(validation(format!(
            "{what} name cannot contain characters that are not letters, or digits or the dash."
        )));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(validation(format!(
            "{what} name cannot begin or end with '-'"
        )));
    }
    Ok(())
}

/// `Marker`/`PageSize` pagination over an already ordered list. The marker is the decimal
/// offset of the next item.
pub(crate) fn paginate(
    items: Vec<Value>,
    input: &Input,
) -> AwsResult<(Vec<Value>, Option<String>)> {
    let size = int(input, "PageSize", 1, 400)?.unwrap_or(400) as usize;
    let start = match input.str("Marker") {
        None => 0,
        Some(m) => m
            .parse::<usize>()
            .map_err(|_| validation("The specified marker is not valid"))?,
    };
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(start).take(size).collect();
    let next = (start + size < total).then(|| (start + size).to_string());
    Ok((page, next))
}

/// Adds `NextMarker` when there is one.
pub(crate) fn with_marker(mut out: Value, next: Option<String>) -> Value {
    if let (Some(m), Some(o)) = (next, out.as_object_mut()) {
        o.insert("NextMarker".into(), Value::String(m));
    }
    out
}

/// Elb-style id: 16 lowercase hex.
pub(crate) fn new_id() -> String {
    portico_core::ids::hex(16)
}

/// Seconds scaled by the configured time scale (below 1.0 shortens AWS's waits), in millis.
pub(crate) fn scaled_ms(ctx: &Ctx<'_>, seconds: i64) -> i64 {
    let scale = ctx.control.config().time_scale;
    let scale = if scale > 0.0 && scale < 1.0 {
        scale
    } else {
        1.0
    };
    (seconds as f64 * 1000.0 * scale) as i64
}

/// A stored condition as the data plane's type (for the reconciler).
pub(crate) fn dp_condition(c: &Value) -> Option<portico_dataplane::lb::Condition> {
    actions::to_dp_condition(c)
}

/// A stored action list's terminal action as the data plane's type (for the reconciler).
pub(crate) fn dp_action(a: &[Value]) -> Option<portico_dataplane::lb::Action> {
    actions::to_dp_action(a)
}

/// A stored matcher (`200,202-299`) as inclusive ranges.
pub(crate) fn tg_matcher(m: &str) -> Vec<(u16, u16)> {
    tg::parse_matcher(m, 100, 599).unwrap_or_else(|| vec![(200, 200)])
}
