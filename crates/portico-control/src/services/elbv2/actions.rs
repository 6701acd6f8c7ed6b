//! Listener and rule actions and rule conditions: validation with AWS's errors, normalisation
//! into Describe's shape (both condition encodings accepted), and translation of stored records
//! into the data plane's rule types.

use super::model::{self, TargetGroup, KIND_TG};
use super::{constraint, enum_check, validation};
use portico_core::{AwsError, AwsResult, Input};
use portico_dataplane::lb as dp;
use portico_store::{Scope, Tx};
use serde_json::{json, Map, Value};
use std::time::Duration;

fn bad_action(msg: impl Into<String>) -> AwsError {
    AwsError::bad("InvalidLoadBalancerAction", msg)
}

/// Validates and normalises an action list for a listener of `protocol` on an LB of
/// `lb_type`. Returns the normalised actions and the target groups they forward to.
pub(crate) fn parse_actions(
    tx: &Tx<'_>,
    scope: &Scope,
    list: &[Input],
    field: &str,
    lb_type: &str,
    protocol: &str,
) -> AwsResult<Vec<Value>> {
    if list.is_empty() {
        return Err(validation(format!(
            "1 validation error detected: Value '[]' at '{field}' failed to satisfy constraint: Member must have length greater than or equal to 1"
        )));
    }
    if list.len() > 1 && list.iter().any(|a| !a.has("Order")) {
        return Err(validation(
            "An order must be specified for each action when there are multiple actions",
        ));
    }
    let mut out: Vec<(i64, Value)> = Vec::new();
    for (i, a) in list.iter().enumerate() {
        let t = a
            .str("Type")
            .ok_or_else(|| validation(format!("1 validation error detected: Value null at '{field}.{}.member.type' failed to satisfy constraint: Member must not be null", i + 1)))?;
        enum_check(
            t,
            &format!("{field}.{}.member.type", i + 1),
            &[
                "forward",
                "authenticate-oidc",
                "authenticate-cognito",
                "redirect",
                "fixed-response",
            ],
        )?;
        let order = super::int(a, "Order", 1, 50000)?;
        let mut v = Map::new();
        v.insert("Type".into(), json!(t));
        if lb_type == "network" && t != "forward" {
            return Err(bad_action(format!(
                "The action type '{t}' is not supported for Network Load Balancers"
            )));
        }
        match t {
            "forward" => forward(tx, scope, a, lb_type, protocol, &mut v)?,
            "fixed-response" => fixed_response(a, &mut v)?,
            "redirect" => redirect(a, protocol, &mut v)?,
            _ => {
                return Err(bad_action(format!(
                    "The action type '{t}' is not supported by Portico"
                )))
            }
        }
        if let Some(o) = order {
            v.insert("Order".into(), json!(o));
        }
        out.push((order.unwrap_or(i as i64 + 1), Value::Object(v)));
    }
    out.sort_by_key(|(o, _)| *o);
    if out.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(bad_action("Action orders must be unique"));
    }
    let terminal = out.len();
    if terminal != 1 {
        return Err(bad_action(
            "A rule can have only one terminal action (forward, redirect or fixed-response)",
        ));
    }
    Ok(out.into_iter().map(|(_, v)| v).collect())
}

fn forward(
    tx: &Tx<'_>,
    scope: &Scope,
    a: &Input,
    lb_type: &str,
    protocol: &str,
    v: &mut Map<String, Value>,
) -> AwsResult<()> {
    let single = a.str("TargetGroupArn").map(str::to_string);
    let cfg = a.sub("ForwardConfig");
    let listed = if cfg.is_null() {
        None
    } else {
        cfg.list("TargetGroups")
    };
    let mut groups: Vec<(String, i64)> = Vec::new();
    match (&single, &listed) {
        (None, None) => {
            return Err(validation(
                "A target group ARN must be specified for a forward action",
            ))
        }
        (Some(s), None) => groups.push((s.clone(), 1)),
        (_, Some(l)) => {
            for t in l {
                let arn = t
                    .str("TargetGroupArn")
                    .ok_or_else(|| validation("A target group ARN must be specified"))?;
                let w = super::int(t, "Weight", 0, 999)?;
                if l.len() > 1 && w.is_none() {
                    return Err(validation(
                        "A weight must be specified for each target group when there are multiple target groups",
                    ));
                }
                if groups.iter().any(|(g, _)| g == arn) {
                    return Err(bad_action(format!(
                        "Target group '{arn}' is specified more than once"
                    )));
                }
                groups.push((arn.to_string(), w.unwrap_or(1)));
            }
            if let Some(s) = &single {
                if groups.len() != 1 || &groups[0].0 != s {
                    return Err(bad_action(
                        "You cannot specify both a target group ARN and a forward config with different target groups",
                    ));
                }
            }
        }
    }
    if groups.is_empty() {
        return Err(validation(
            "A forward action needs at least one target group",
        ));
    }
    let max = if lb_type == "network" { 1 } else { 5 };
    if groups.len() > max {
        return Err(AwsError::bad(
            "TooManyTargetGroups",
            format!("A forward action can have at most {max} target groups"),
        ));
    }
    for (arn, _) in &groups {
        let tg: TargetGroup = tx
            .get_as(scope, KIND_TG, arn)?
            .ok_or_else(model::tg_not_found)?;
        compatible(&tg, lb_type, protocol)?;
    }
    let sticky = cfg.sub("TargetGroupStickinessConfig");
    let enabled = super::boolean(&sticky, "Enabled")?.unwrap_or(false);
    let mut stick = json!({"Enabled": enabled});
    if let Some(d) = super::int(&sticky, "DurationSeconds", 1, 604800)? {
        stick["DurationSeconds"] = json!(d);
    } else if enabled {
        return Err(validation(
            "A duration must be specified when target group stickiness is enabled",
        ));
    }
    if groups.len() == 1 {
        v.insert("TargetGroupArn".into(), json!(groups[0].0));
    }
    v.insert(
        "ForwardConfig".into(),
        json!({
            "TargetGroups": groups.iter().map(|(a, w)| json!({"TargetGroupArn": a, "Weight": w})).collect::<Vec<_>>(),
            "TargetGroupStickinessConfig": stick,
        }),
    );
    Ok(())
}

/// A target group's protocol must suit the listener.
/// The NLB listener/target-group protocol pairs AWS allows: TCP -> TCP or TCP_UDP; TLS -> TCP
/// or TLS; UDP -> UDP or TCP_UDP; TCP_UDP -> TCP_UDP.
pub(crate) fn nlb_combination(listener: &str, tg: &str) -> bool {
    match listener {
        "TCP" => matches!(tg, "TCP" | "TCP_UDP"),
        "TLS" => matches!(tg, "TCP" | "TLS"),
        "UDP" => matches!(tg, "UDP" | "TCP_UDP"),
        "TCP_UDP" => tg == "TCP_UDP",
        _ => false,
    }
}

pub(crate) fn compatible(tg: &TargetGroup, lb_type: &str, protocol: &str) -> AwsResult<()> {
    let ok = if lb_type == "application" {
        matches!(tg.protocol.as_str(), "HTTP" | "HTTPS")
    } else {
        nlb_combination(protocol, &tg.protocol)
    };
    if !ok {
        return Err(AwsError::bad(
            "IncompatibleProtocols",
            format!(
                "Listener protocol '{protocol}' is not supported with a target group with the protocol '{}'",
                tg.protocol
            ),
        ));
    }
    Ok(())
}

fn fixed_response(a: &Input, v: &mut Map<String, Value>) -> AwsResult<()> {
    let c = a.sub("FixedResponseConfig");
    if c.is_null() {
        return Err(validation(
            "A fixed response config must be specified for a fixed-response action",
        ));
    }
    let code = c
        .string("StatusCode")
        .ok_or_else(|| validation("A status code must be specified for a fixed response"))?;
    let ok = code.len() == 3
        && matches!(code.as_bytes()[0], b'2' | b'4' | b'5')
        && code.bytes().all(|b| b.is_ascii_digit());
    if !ok {
        return Err(constraint(
            &code,
            "fixedResponseConfig.statusCode",
            "Member must satisfy regular expression pattern: ^(2|4|5)\\d\\d$",
        ));
    }
    let mut out = json!({"StatusCode": code});
    if let Some(ct) = c.str("ContentType") {
        enum_check(
            ct,
            "fixedResponseConfig.contentType",
            &[
                "text/plain",
                "text/css",
                "text/html",
                "application/javascript",
                "application/json",
            ],
        )?;
        out["ContentType"] = json!(ct);
    }
    if let Some(b) = c.string("MessageBody") {
        if b.chars().count() > 1024 {
            return Err(constraint(
                "...",
                "fixedResponseConfig.messageBody",
                "Member must have length less than or equal to 1024",
            ));
        }
        out["MessageBody"] = json!(b);
    }
    v.insert("FixedResponseConfig".into(), out);
    Ok(())
}

fn redirect(a: &Input, listener_protocol: &str, v: &mut Map<String, Value>) -> AwsResult<()> {
    let c = a.sub("RedirectConfig");
    if c.is_null() {
        return Err(validation(
            "A redirect config must be specified for a redirect action",
        ));
    }
    let code = c
        .str("StatusCode")
        .ok_or_else(|| validation("A status code must be specified for a redirect"))?;
    enum_check(code, "redirectConfig.statusCode", &["HTTP_301", "HTTP_302"])?;
    let mut out = json!({"StatusCode": code});
    let mut changes = false;
    for (k, identity) in [
        ("Protocol", "#{protocol}"),
        ("Port", "#{port}"),
        ("Host", "#{host}"),
        ("Path", "/#{path}"),
        ("Query", "#{query}"),
    ] {
        if let Some(val) = c.string(k) {
            if k == "Protocol" && !matches!(val.as_str(), "HTTP" | "HTTPS" | "#{protocol}") {
                return Err(constraint(
                    &val,
                    "redirectConfig.protocol",
                    "Member must satisfy regular expression pattern: ^(HTTPS?|#\\{protocol\\})$",
                ));
            }
            if k == "Protocol" && val == "HTTP" && listener_protocol == "HTTPS" {
                return Err(bad_action("Redirects from HTTPS to HTTP are not allowed"));
            }
            if k == "Path" && !val.starts_with('/') {
                return Err(bad_action("The redirect path must start with a '/'"));
            }
            if k != "Query" && val != identity {
                changes = true;
            }
            out[k] = json!(val);
        } else {
            out[k] = json!(identity);
        }
    }
    if !changes {
        return Err(bad_action(
            "The redirect configuration is not valid: it would redirect to the same location",
        ));
    }
    v.insert("RedirectConfig".into(), out);
    Ok(())
}

const FIELDS: [&str; 6] = [
    "http-header",
    "http-request-method",
    "host-header",
    "path-pattern",
    "query-string",
    "source-ip",
];

fn non_empty(values: &[String], field: &str) -> AwsResult<()> {
    if values.is_empty() {
        return Err(validation(format!(
            "A '{field}' condition must have at least one value"
        )));
    }
    for v in values {
        if v.is_empty() {
            return Err(validation("Condition values cannot be empty"));
        }
        if v.chars().count() > 128 {
            return Err(validation(format!(
                "Condition value '{v}' must be at most 128 characters"
            )));
        }
    }
    Ok(())
}

fn check_host(v: &str) -> AwsResult<()> {
    let chars_ok = v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '*' | '?'));
    let tld_ok = v.rsplit_once('.').is_some_and(|(_, t)| {
        !t.is_empty()
            && t.chars()
                .all(|c| c.is_ascii_alphabetic() || c == '*' || c == '?')
    });
    if !chars_ok || !tld_ok {
        return Err(validation(format!(
            "Condition value '{v}' is not a valid host header pattern"
        )));
    }
    Ok(())
}

fn check_path(v: &str) -> AwsResult<()> {
    let ok = v.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                '_' | '-'
                    | '.'
                    | '$'
                    | '/'
                    | '~'
                    | '"'
                    | '\''
                    | '@'
                    | ':'
                    | '+'
                    | '&'
                    | '*'
                    | '?'
                    | '='
                    | '%'
                    | ';'
                    | ','
            )
    });
    if !ok {
        return Err(validation(format!(
            "Condition value '{v}' is not a valid path pattern"
        )));
    }
    Ok(())
}

/// Validates and normalises rule conditions (legacy `Values` or the `*Config` form).
pub(crate) fn parse_conditions(list: &[Input]) -> AwsResult<Vec<Value>> {
    if list.is_empty() {
        return Err(validation("A rule must have at least one condition"));
    }
    let mut out = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    let mut total_values = 0usize;
    let mut wildcards = 0usize;
    for (i, c) in list.iter().enumerate() {
        let field = c.str("Field").ok_or_else(|| {
            validation(format!("1 validation error detected: Value null at 'conditions.{}.member.field' failed to satisfy constraint: Member must not be null", i + 1))
        })?;
        if !FIELDS.contains(&field) {
            return Err(validation(format!(
                "Condition field '{field}' must be one of '[{}]'",
                FIELDS.join(", ")
            )));
        }
        let once = matches!(
            field,
            "host-header" | "path-pattern" | "http-request-method" | "source-ip"
        );
        if once && seen.contains(&field) {
            return Err(validation(format!(
                "A rule can only have one '{field}' condition"
            )));
        }
        seen.push(field);
        let legacy = c.str_list("Values");
        let cfg_key = match field {
            "host-header" => "HostHeaderConfig",
            "path-pattern" => "PathPatternConfig",
            "http-header" => "HttpHeaderConfig",
            "http-request-method" => "HttpRequestMethodConfig",
            "query-string" => "QueryStringConfig",
            _ => "SourceIpConfig",
        };
        let cfg = c.sub(cfg_key);
        if !cfg.is_null() && cfg.has("RegexValues") || c.has("RegexValues") {
            return Err(validation(
                "Regex condition values are not supported by Portico",
            ));
        }
        if legacy.is_some() && !cfg.is_null() {
            return Err(validation(format!(
                "You cannot specify both 'Values' and '{cfg_key}' in the same condition"
            )));
        }
        let mut v = json!({"Field": field});
        match field {
            "host-header" | "path-pattern" => {
                let values = match legacy {
                    Some(l) => l,
                    None => cfg.str_list("Values").unwrap_or_default(),
                };
                non_empty(&values, field)?;
                for x in &values {
                    if field == "host-header" {
                        check_host(x)?;
                    } else {
                        check_path(x)?;
                    }
                    wildcards += x.chars().filter(|c| *c == '*' || *c == '?').count();
                }
                total_values += values.len();
                v["Values"] = json!(values);
                v[cfg_key] = json!({"Values": values});
            }
            _ if legacy.is_some() => {
                return Err(validation(format!(
                    "The '{field}' condition must be specified with '{cfg_key}'"
                )));
            }
            "http-header" => {
                let name = cfg.str("HttpHeaderName").ok_or_else(|| {
                    validation("A header name must be specified for an 'http-header' condition")
                })?;
                let token_ok = !name.is_empty()
                    && name.len() <= 40
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
                    && !name.contains(['*', '?']);
                if !token_ok {
                    return Err(validation(format!("Header name '{name}' is not valid")));
                }
                if name.eq_ignore_ascii_case("host") {
                    return Err(validation(
                        "Use a 'host-header' condition to match the Host header",
                    ));
                }
                let values = cfg.str_list("Values").unwrap_or_default();
                non_empty(&values, field)?;
                total_values += values.len();
                wildcards += values
                    .iter()
                    .map(|x| x.chars().filter(|c| *c == '*' || *c == '?').count())
                    .sum::<usize>();
                v[cfg_key] = json!({"HttpHeaderName": name, "Values": values});
            }
            "http-request-method" => {
                let values = cfg.str_list("Values").unwrap_or_default();
                non_empty(&values, field)?;
                for m in &values {
                    if m.len() > 40
                        || !m
                            .bytes()
                            .all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_')
                    {
                        return Err(validation(format!(
                            "HTTP request method '{m}' is not valid"
                        )));
                    }
                }
                total_values += values.len();
                v[cfg_key] = json!({"Values": values});
            }
            "query-string" => {
                let pairs = cfg.list("Values").unwrap_or_default();
                if pairs.is_empty() {
                    return Err(validation(
                        "A 'query-string' condition must have at least one value",
                    ));
                }
                let mut vals = Vec::new();
                for p in &pairs {
                    let value = p
                        .string("Value")
                        .filter(|s| !s.is_empty())
                        .ok_or_else(|| validation("A query string value must be specified"))?;
                    let mut o = json!({"Value": value});
                    wildcards += value.chars().filter(|c| *c == '*' || *c == '?').count();
                    if let Some(k) = p.string("Key") {
                        if k.is_empty() {
                            return Err(validation("Query string keys cannot be empty"));
                        }
                        wildcards += k.chars().filter(|c| *c == '*' || *c == '?').count();
                        o["Key"] = json!(k);
                    }
                    vals.push(o);
                }
                total_values += vals.len();
                v[cfg_key] = json!({"Values": vals});
            }
            _ => {
                let values = cfg.str_list("Values").unwrap_or_default();
                non_empty(&values, field)?;
                for x in &values {
                    if dp::Cidr::parse(x).is_none() || x == "255.255.255.255/32" {
                        return Err(validation(format!("The CIDR '{x}' is not valid")));
                    }
                }
                total_values += values.len();
                v[cfg_key] = json!({"Values": values});
            }
        }
        out.push(v);
    }
    if total_values > 5 {
        return Err(validation("A rule can only have '5' condition values"));
    }
    if wildcards > 5 {
        return Err(validation(
            "A rule can only have '5' wildcards in its condition values",
        ));
    }
    Ok(out)
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A stored condition as the data plane's type.
pub(crate) fn to_dp_condition(c: &Value) -> Option<dp::Condition> {
    let field = c.get("Field")?.as_str()?;
    let cfg_values = |k: &str| strs(&c[k]["Values"]);
    Some(match field {
        "host-header" => dp::Condition::Host(cfg_values("HostHeaderConfig")),
        "path-pattern" => dp::Condition::Path(cfg_values("PathPatternConfig")),
        "http-header" => dp::Condition::Header {
            name: c["HttpHeaderConfig"]["HttpHeaderName"]
                .as_str()?
                .to_ascii_lowercase(),
            values: cfg_values("HttpHeaderConfig"),
        },
        "http-request-method" => dp::Condition::Method(cfg_values("HttpRequestMethodConfig")),
        "query-string" => dp::Condition::Query(
            c["QueryStringConfig"]["Values"]
                .as_array()?
                .iter()
                .filter_map(|p| {
                    Some((
                        p.get("Key").and_then(Value::as_str).map(str::to_string),
                        p.get("Value")?.as_str()?.to_string(),
                    ))
                })
                .collect(),
        ),
        "source-ip" => dp::Condition::SourceIp(
            cfg_values("SourceIpConfig")
                .iter()
                .filter_map(|s| dp::Cidr::parse(s))
                .collect(),
        ),
        _ => return None,
    })
}

/// The terminal action of a stored action list as the data plane's type.
pub(crate) fn to_dp_action(actions: &[Value]) -> Option<dp::Action> {
    let a = actions.last()?;
    Some(match a.get("Type")?.as_str()? {
        "forward" => {
            let fc = &a["ForwardConfig"];
            let groups = fc["TargetGroups"]
                .as_array()?
                .iter()
                .filter_map(|g| {
                    Some((
                        g.get("TargetGroupArn")?.as_str()?.to_string(),
                        g.get("Weight").and_then(Value::as_u64).unwrap_or(1) as u32,
                    ))
                })
                .collect();
            let st = &fc["TargetGroupStickinessConfig"];
            let stickiness = (st["Enabled"].as_bool() == Some(true))
                .then(|| Duration::from_secs(st["DurationSeconds"].as_u64().unwrap_or(3600)));
            dp::Action::Forward(dp::Forward { groups, stickiness })
        }
        "fixed-response" => {
            let c = &a["FixedResponseConfig"];
            dp::Action::Fixed {
                status: c["StatusCode"].as_str()?.parse().ok()?,
                content_type: c["ContentType"].as_str().map(str::to_string),
                body: c["MessageBody"].as_str().unwrap_or("").to_string(),
            }
        }
        "redirect" => {
            let c = &a["RedirectConfig"];
            let s = |k: &str| c[k].as_str().map(str::to_string);
            dp::Action::Redirect(dp::Redirect {
                protocol: s("Protocol"),
                host: s("Host"),
                port: s("Port"),
                path: s("Path"),
                query: s("Query"),
                permanent: c["StatusCode"].as_str() == Some("HTTP_301"),
            })
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conds(v: Value) -> AwsResult<Vec<Value>> {
        let list: Vec<Input> = v.as_array().unwrap().iter().cloned().map(Input).collect();
        parse_conditions(&list)
    }

    #[test]
    fn nlb_protocol_combinations() {
        let listeners = ["TCP", "TLS", "UDP", "TCP_UDP"];
        let tgs = ["TCP", "TLS", "UDP", "TCP_UDP"];
        let allowed: Vec<(&str, &str)> = listeners
            .iter()
            .flat_map(|l| tgs.iter().map(move |t| (*l, *t)))
            .filter(|(l, t)| nlb_combination(l, t))
            .collect();
        assert_eq!(
            allowed,
            vec![
                ("TCP", "TCP"),
                ("TCP", "TCP_UDP"),
                ("TLS", "TCP"),
                ("TLS", "TLS"),
                ("UDP", "UDP"),
                ("UDP", "TCP_UDP"),
                ("TCP_UDP", "TCP_UDP"),
            ]
        );
        assert!(!nlb_combination("HTTP", "TCP"));
    }

    #[test]
    fn both_encodings_normalise_alike() {
        let a = conds(json!([{"Field": "path-pattern", "Values": ["/a/*"]}])).unwrap();
        let b =
            conds(json!([{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/a/*"]}}]))
                .unwrap();
        assert_eq!(a, b);
        assert_eq!(
            to_dp_condition(&a[0]),
            Some(dp::Condition::Path(vec!["/a/*".into()]))
        );
    }

    #[test]
    fn malformed_conditions_rejected() {
        for bad in [
            json!([{"Field": "nope", "Values": ["x"]}]),
            json!([{"Field": "path-pattern", "Values": ["/a"], "PathPatternConfig": {"Values": ["/b"]}}]),
            json!([{"Field": "path-pattern", "Values": [""]}]),
            json!([{"Field": "host-header", "Values": ["nodot"]}]),
            json!([{"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["get"]}}]),
            json!([{"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/40"]}}]),
            json!([{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "Host", "Values": ["x"]}}]),
            json!([{"Field": "path-pattern", "Values": ["/a"]}, {"Field": "path-pattern", "Values": ["/b"]}]),
            json!([{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/1", "/2", "/3", "/4", "/5", "/6"]}}]),
            json!([]),
        ] {
            let e = conds(bad.clone()).unwrap_err();
            assert_eq!(e.code, "ValidationError", "{bad}");
        }
    }
}
