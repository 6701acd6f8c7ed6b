//! Listeners (with their default rule) and listener rules.

use super::actions::{parse_actions, parse_conditions};
use super::model::{self, Listener, Rule, KIND_LISTENER, KIND_RULE, KIND_TG};
use super::{enum_check, new_id, paginate, req, tags, validation, with_marker};
use crate::Ctx;
use portico_core::{AwsError, AwsResult, Input};
use portico_store::{Scope, Tx};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const PROTOCOLS: [&str; 7] = ["HTTP", "HTTPS", "TCP", "TLS", "UDP", "TCP_UDP", "GENEVE"];

fn default_listener_attributes(protocol: &str) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    if matches!(protocol, "HTTP" | "HTTPS") {
        a.insert("routing.http.response.server.enabled".into(), "true".into());
    } else if matches!(protocol, "TCP" | "TLS" | "TCP_UDP") {
        a.insert("tcp.idle_timeout.seconds".into(), "350".into());
    }
    a
}

/// Portico's own listener attribute: where the listener really accepts connections.
pub(crate) const LOCAL_ADDRESS_ATTR: &str = "portico.local_address";

fn check_protocol(lb_type: &str, protocol: &str) -> AwsResult<()> {
    enum_check(protocol, "protocol", &PROTOCOLS)?;
    let ok = if lb_type == "application" {
        matches!(protocol, "HTTP" | "HTTPS")
    } else {
        matches!(protocol, "TCP" | "TLS" | "UDP" | "TCP_UDP")
    };
    if !ok {
        return Err(AwsError::bad(
            "UnsupportedProtocol",
            format!(
                "The protocol '{protocol}' is not supported for load balancers of type '{lb_type}'"
            ),
        ));
    }
    Ok(())
}

/// Each forwarded target group may serve only this load balancer, and must live in its VPC.
fn check_association(
    tx: &Tx<'_>,
    scope: &Scope,
    lb: &model::LoadBalancer,
    actions: &[Value],
) -> AwsResult<()> {
    for arn in model::forward_targets(actions) {
        let tg: model::TargetGroup = tx
            .get_as(scope, KIND_TG, &arn)?
            .ok_or_else(model::tg_not_found)?;
        if tg.vpc_id != lb.vpc_id {
            return Err(AwsError::bad(
                "InvalidConfigurationRequest",
                format!("The target group '{arn}' is not in the same VPC as the load balancer"),
            ));
        }
        let users = model::lbs_of_tg(tx, scope, &arn)?;
        if users.iter().any(|u| *u != lb.arn) {
            return Err(AwsError::bad(
                "TargetGroupAssociationLimit",
                format!("The following target groups cannot be associated with more than one load balancer: {arn}"),
            ));
        }
    }
    Ok(())
}

/// AWS's predefined security policies that Portico accepts (TLS 1.0/1.1 are not offered by
/// rustls: listeners negotiate TLS 1.2 or 1.3; policies named `TLS13-1-3` allow TLS 1.3 only).
pub(crate) const SSL_POLICIES: [&str; 20] = [
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06",
    "ELBSecurityPolicy-TLS13-1-1-2021-06",
    "ELBSecurityPolicy-TLS13-1-0-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
    "ELBSecurityPolicy-2016-08",
    "ELBSecurityPolicy-TLS-1-0-2015-04",
    "ELBSecurityPolicy-TLS-1-1-2017-01",
    "ELBSecurityPolicy-TLS-1-2-2017-01",
    "ELBSecurityPolicy-TLS-1-2-Ext-2018-06",
    "ELBSecurityPolicy-FS-2018-06",
    "ELBSecurityPolicy-FS-1-1-2019-08",
    "ELBSecurityPolicy-FS-1-2-2019-08",
    "ELBSecurityPolicy-FS-1-2-Res-2019-08",
    "ELBSecurityPolicy-FS-1-2-Res-2020-10",
    "ELBSecurityPolicy-2015-05",
];

fn check_ssl_policy(p: &str) -> AwsResult<()> {
    if SSL_POLICIES.contains(&p) {
        Ok(())
    } else {
        Err(AwsError::bad(
            "SSLPolicyNotFound",
            format!("SSL policy '{p}' not found"),
        ))
    }
}

const ALPN_POLICIES: [&str; 5] = [
    "HTTP1Only",
    "HTTP2Only",
    "HTTP2Optional",
    "HTTP2Preferred",
    "None",
];

fn alpn_policy(input: &Input, protocol: &str) -> AwsResult<Option<Vec<String>>> {
    let Some(list) = input.str_list("AlpnPolicy") else {
        return Ok(None);
    };
    if list.len() > 1 {
        return Err(validation("Only one ALPN policy can be specified"));
    }
    for p in &list {
        if !ALPN_POLICIES.contains(&p.as_str()) {
            return Err(AwsError::bad(
                "ALPNPolicyNotFound",
                format!("ALPN policy '{p}' not found"),
            ));
        }
    }
    if protocol != "TLS" && !list.is_empty() {
        return Err(validation(
            "ALPN policies can only be specified for listeners with the protocol 'TLS'",
        ));
    }
    Ok(Some(list))
}

/// Is `arn` a certificate a listener can name: an IAM server certificate that exists, or an
/// ACM certificate ARN (Portico has no ACM: such a listener serves a self-signed certificate
/// for the load balancer's DNS name).
fn check_certificate(tx: &Tx<'_>, scope: &Scope, arn: &str) -> AwsResult<()> {
    let not_found = || {
        AwsError::bad(
            "CertificateNotFound",
            format!("Certificate '{arn}' not found"),
        )
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" {
        return Err(not_found());
    }
    match parts[2] {
        "acm" if parts[5].starts_with("certificate/") => Ok(()),
        "iam" if parts[5].starts_with("server-certificate/") => {
            match crate::services::iam::server_certs::by_arn(tx, scope, arn)? {
                Some(_) => Ok(()),
                None => Err(not_found()),
            }
        }
        _ => Err(not_found()),
    }
}

/// The certificate ARNs of a `Certificates` list, each checked.
fn input_certificates(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Vec<String>> {
    let mut out = Vec::new();
    for c in input.list("Certificates").unwrap_or_default() {
        let arn = c
            .str("CertificateArn")
            .ok_or_else(|| validation("A certificate ARN must be specified"))?;
        check_certificate(tx, scope, arn)?;
        out.push(arn.to_string());
    }
    Ok(out)
}

/// The default certificate of a new listener (HTTPS/TLS listeners need exactly one).
fn certificates(
    tx: &Tx<'_>,
    scope: &Scope,
    input: &Input,
    protocol: &str,
) -> AwsResult<Vec<Value>> {
    let arns = input_certificates(tx, scope, input)?;
    if matches!(protocol, "HTTPS" | "TLS") && arns.is_empty() {
        return Err(validation(format!(
            "A certificate must be specified for {protocol} listeners"
        )));
    }
    if arns.len() > 1 {
        return Err(validation(
            "A listener can have only one default certificate",
        ));
    }
    Ok(arns
        .into_iter()
        .map(|a| json!({"CertificateArn": a}))
        .collect())
}

pub(crate) fn create(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let lb_arn = req(input, "LoadBalancerArn")?.to_string();
    let port = super::int(input, "Port", 1, 65535)?
        .ok_or_else(|| validation("A listener port must be specified"))? as u16;
    let new_tags = tags::parse_tags(input)?;
    let scope = ctx.scope.clone();
    ctx.store().write(|tx| {
        let lb = model::get_lb(tx, &scope, &lb_arn)?;
        let protocol = match input.str("Protocol") {
            Some(p) => p.to_string(),
            None => return Err(validation("A listener protocol must be specified")),
        };
        check_protocol(&lb.lb_type, &protocol)?;
        let certs = certificates(tx, &scope, input, &protocol)?;
        if let Some(p) = input.str("SslPolicy") {
            check_ssl_policy(p)?;
        }
        let alpn = alpn_policy(input, &protocol)?;
        let ssl_policy = input.str("SslPolicy").map(str::to_string).or_else(|| {
            matches!(protocol.as_str(), "HTTPS" | "TLS")
                .then(|| "ELBSecurityPolicy-2016-08".to_string())
        });
        let list = input.list("DefaultActions").unwrap_or_default();
        let actions = parse_actions(tx, &scope, &list, "defaultActions", &lb.lb_type, &protocol)?;
        check_association(tx, &scope, &lb, &actions)?;
        let existing: Vec<Listener> = tx.list_as(&scope, KIND_LISTENER, Some(&lb_arn))?;
        if let Some(l) = existing.iter().find(|l| l.port == port) {
            let same_certs = l.certificates.first() == certs.first();
            if l.protocol == protocol && l.default_actions == actions && same_certs {
                return Ok(json!({"Listeners": [model::listener_json(l)]}));
            }
            return Err(AwsError::bad(
                "DuplicateListener",
                "A listener already exists on this port for this load balancer",
            ));
        }
        if existing.len() >= 50 {
            return Err(AwsError::bad(
                "TooManyListeners",
                "The quota for the number of listeners per load balancer has been reached",
            ));
        }
        let seg = model::type_segment(&lb.lb_type);
        let lid = new_id();
        let arn = ctx.rc.arn(
            "elasticloadbalancing",
            &format!("listener/{seg}/{}/{}/{lid}", lb.name, lb.id),
        );
        let rule_arn = ctx.rc.arn(
            "elasticloadbalancing",
            &format!(
                "listener-rule/{seg}/{}/{}/{lid}/{}",
                lb.name,
                lb.id,
                new_id()
            ),
        );
        let l = Listener {
            arn: arn.clone(),
            lb_arn: lb_arn.clone(),
            port,
            protocol: protocol.clone(),
            certificates: certs,
            ssl_policy,
            alpn_policy: alpn,
            default_actions: actions,
            attributes: default_listener_attributes(&protocol),
            tags: new_tags.clone(),
            default_rule_arn: rule_arn.clone(),
            local_address: None,
        };
        model::put_listener(tx, &scope, &l)?;
        model::put_rule(
            tx,
            &scope,
            &Rule {
                arn: rule_arn,
                listener_arn: arn,
                priority: None,
                conditions: vec![],
                actions: vec![],
                tags: vec![],
            },
        )?;
        Ok(json!({"Listeners": [model::listener_json(&l)]}))
    })
}

pub(crate) fn describe(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let lb_arn = input.str("LoadBalancerArn").map(str::to_string);
    let arns = input.str_list("ListenerArns");
    if lb_arn.is_some() == arns.is_some() {
        return Err(validation(
            "You must specify either listener ARNs or a load balancer ARN",
        ));
    }
    let scope = ctx.scope.clone();
    let items = ctx.store().read(|tx| {
        let ls: Vec<Listener> = match (&lb_arn, &arns) {
            (Some(lb), _) => {
                model::get_lb(tx, &scope, lb)?;
                tx.list_as(&scope, KIND_LISTENER, Some(lb))?
            }
            (_, Some(a)) => a
                .iter()
                .map(|arn| model::get_listener(tx, &scope, arn))
                .collect::<AwsResult<_>>()?,
            _ => Vec::new(),
        };
        Ok(ls.iter().map(model::listener_json).collect::<Vec<_>>())
    })?;
    let (page, next) = paginate(items, input)?;
    Ok(with_marker(json!({"Listeners": page}), next))
}

pub(crate) fn modify(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let arn = req(input, "ListenerArn")?.to_string();
    let port = super::int(input, "Port", 1, 65535)?;
    let scope = ctx.scope.clone();
    ctx.store().write(|tx| {
        let mut l = model::get_listener(tx, &scope, &arn)?;
        let lb = model::get_lb(tx, &scope, &l.lb_arn)?;
        if let Some(p) = input.str("Protocol") {
            check_protocol(&lb.lb_type, p)?;
            l.protocol = p.to_string();
        }
        if let Some(p) = port {
            let p = p as u16;
            let clash = tx
                .list_as::<Listener>(&scope, KIND_LISTENER, Some(&l.lb_arn))?
                .iter()
                .any(|o| o.port == p && o.arn != l.arn);
            if clash {
                return Err(AwsError::bad(
                    "DuplicateListener",
                    "A listener already exists on this port for this load balancer",
                ));
            }
            l.port = p;
        }
        if !matches!(l.protocol.as_str(), "HTTPS" | "TLS") {
            // A listener that no longer terminates TLS has no certificates or TLS policies.
            l.certificates.clear();
            l.ssl_policy = None;
            l.alpn_policy = None;
        }
        let tls = matches!(l.protocol.as_str(), "HTTPS" | "TLS");
        if tls && input.has("Certificates") {
            // Replaces the default certificate; certificates added with
            // AddListenerCertificates stay.
            let new = certificates(tx, &scope, input, &l.protocol)?;
            if let Some(d) = new.into_iter().next() {
                if !l.certificates.is_empty() {
                    l.certificates.remove(0);
                }
                l.certificates.retain(|c| *c != d);
                l.certificates.insert(0, d);
            }
        } else if matches!(l.protocol.as_str(), "HTTPS" | "TLS") && l.certificates.is_empty() {
            return Err(validation(format!(
                "A certificate must be specified for {} listeners",
                l.protocol
            )));
        }
        if let Some(p) = input.str("SslPolicy").filter(|_| tls) {
            check_ssl_policy(p)?;
            l.ssl_policy = Some(p.to_string());
        } else if tls && l.ssl_policy.is_none() {
            l.ssl_policy = Some("ELBSecurityPolicy-2016-08".into());
        }
        if input.has("AlpnPolicy") {
            l.alpn_policy = alpn_policy(input, &l.protocol)?;
        }
        if let Some(list) = input.list("DefaultActions") {
            let actions = parse_actions(
                tx,
                &scope,
                &list,
                "defaultActions",
                &lb.lb_type,
                &l.protocol,
            )?;
            check_association(tx, &scope, &lb, &actions)?;
            l.default_actions = actions;
        } else {
            // A protocol change must still suit the target groups already forwarded to.
            for tg_arn in model::forward_targets(&l.default_actions) {
                let tg = model::get_tg(tx, &scope, &tg_arn)?;
                super::actions::compatible(&tg, &lb.lb_type, &l.protocol)?;
            }
        }
        model::put_listener(tx, &scope, &l)?;
        Ok(json!({"Listeners": [model::listener_json(&l)]}))
    })
}

pub(crate) fn delete(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let arn = req(input, "ListenerArn")?.to_string();
    let scope = ctx.scope.clone();
    ctx.store().write(|tx| {
        model::get_listener(tx, &scope, &arn)?;
        for r in tx.list(&scope, KIND_RULE, Some(&arn))? {
            tx.delete(&scope, KIND_RULE, &r.id)?;
        }
        tx.delete(&scope, KIND_LISTENER, &arn)?;
        Ok(model::empty())
    })
}

fn listener_attributes(l: &Listener) -> BTreeMap<String, String> {
    let mut a = l.attributes.clone();
    if let Some(addr) = &l.local_address {
        a.insert(LOCAL_ADDRESS_ATTR.into(), addr.clone());
    }
    a
}

pub(crate) fn describe_attributes(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let arn = req(input, "ListenerArn")?.to_string();
    let scope = ctx.scope.clone();
    let l = ctx
        .store()
        .read(|tx| model::get_listener(tx, &scope, &arn))?;
    Ok(json!({"Attributes": model::attributes_json(&listener_attributes(&l))}))
}

pub(crate) fn modify_attributes(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let arn = req(input, "ListenerArn")?.to_string();
    let attrs = model::input_attributes(input)?;
    let scope = ctx.scope.clone();
    ctx.store().write(|tx| {
        let mut l = model::get_listener(tx, &scope, &arn)?;
        for (k, v) in &attrs {
            if !l.attributes.contains_key(k) {
                return Err(model::unknown_attr(k));
            }
            match k.as_str() {
                "tcp.idle_timeout.seconds" => model::int_attr(k, v, 60, 6000)?,
                _ => model::bool_attr(k, v)?,
            }
            l.attributes.insert(k.clone(), v.clone());
        }
        model::put_listener(tx, &scope, &l)?;
        Ok(json!({"Attributes": model::attributes_json(&listener_attributes(&l))}))
    })
}

pub(crate) fn describe_certificates(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let arn = req(input, "ListenerArn")?.to_string();
    let scope = ctx.scope.clone();
    let l = ctx
        .store()
        .read(|tx| model::get_listener(tx, &scope, &arn))?;
    let certs: Vec<Value> = l
        .certificates
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut c = c.clone();
            c["IsDefault"] = json!(i == 0);
            c
        })
        .collect();
    let (page, next) = paginate(certs, input)?;
    Ok(with_marker(json!({"Certificates": page}), next))
}

/// Adds certificates to an HTTPS/TLS listener's certificate list (chosen by SNI).
pub(crate) fn add_certificates(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let arn = req(input, "ListenerArn")?.to_string();
    let scope = ctx.scope.clone();
    ctx.store().write(|tx| {
        let mut l = model::get_listener(tx, &scope, &arn)?;
        let arns = input_certificates(tx, &scope, input)?;
        if arns.is_empty() {
            return Err(validation("At least one certificate must be specified"));
        }
        let mut added = Vec::new();
        for a in arns {
            let c = json!({"CertificateArn": a});
            if !l.certificates.contains(&c) {
                l.certificates.push(c.clone());
            }
            added.push(json!({"CertificateArn": a, "IsDefault": false}));
        }
        if l.certificates.len() > 26 {
            return Err(AwsError::bad(
                "TooManyCertificates",
                "You've reached the limit on the number of certificates per load balancer",
            ));
        }
        model::put_listener(tx, &scope, &l)?;
        Ok(json!({"Certificates": added}))
    })
}

/// Removes added (non-default) certificates from a listener.
pub(crate) fn remove_certificates(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let arn = req(input, "ListenerArn")?.to_string();
    let scope = ctx.scope.clone();
    ctx.store().write(|tx| {
        let mut l = model::get_listener(tx, &scope, &arn)?;
        let list = input.list("Certificates").unwrap_or_default();
        if list.is_empty() {
            return Err(validation("At least one certificate must be specified"));
        }
        for c in list {
            let a = c
                .str("CertificateArn")
                .ok_or_else(|| validation("A certificate ARN must be specified"))?;
            let v = json!({"CertificateArn": a});
            if l.certificates.first() == Some(&v) {
                return Err(AwsError::bad(
                    "OperationNotPermitted",
                    "The default certificate cannot be removed from a listener",
                ));
            }
            l.certificates.retain(|x| *x != v);
        }
        model::put_listener(tx, &scope, &l)?;
        Ok(model::empty())
    })
}

fn check_priority(input: &Input, key: &str) -> AwsResult<u32> {
    Ok(super::int(input, key, 1, 50000)?
        .ok_or_else(|| validation("A rule priority must be specified"))? as u32)
}

fn priority_in_use(p: u32) -> AwsError {
    AwsError::bad(
        "PriorityInUse",
        format!("Priority '{p}' is currently in use"),
    )
}

pub(crate) fn create_rule(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let listener_arn = req(input, "ListenerArn")?.to_string();
    let priority = check_priority(input, "Priority")?;
    let conditions = parse_conditions(&input.list("Conditions").unwrap_or_default())?;
    let new_tags = tags::parse_tags(input)?;
    let scope = ctx.scope.clone();
    ctx.store().write(|tx| {
        let l = model::get_listener(tx, &scope, &listener_arn)?;
        let lb = model::get_lb(tx, &scope, &l.lb_arn)?;
        if lb.lb_type != "application" {
            return Err(AwsError::bad(
                "UnsupportedProtocol",
                "Rules are not supported for Network Load Balancer listeners",
            ));
        }
        let list = input.list("Actions").unwrap_or_default();
        let actions = parse_actions(tx, &scope, &list, "actions", &lb.lb_type, &l.protocol)?;
        check_association(tx, &scope, &lb, &actions)?;
        let rules: Vec<Rule> = tx.list_as(&scope, KIND_RULE, Some(&listener_arn))?;
        if rules.iter().any(|r| r.priority == Some(priority)) {
            return Err(priority_in_use(priority));
        }
        let mut on_lb = 0;
        for ol in tx.list_as::<Listener>(&scope, KIND_LISTENER, Some(&lb.arn))? {
            on_lb += tx
                .list_as::<Rule>(&scope, KIND_RULE, Some(&ol.arn))?
                .iter()
                .filter(|r| r.priority.is_some())
                .count();
        }
        if on_lb >= 100 {
            return Err(AwsError::bad(
                "TooManyRules",
                "The quota for the number of rules per load balancer has been reached",
            ));
        }
        let lid = listener_arn.rsplit('/').next().unwrap_or("");
        let seg = model::type_segment(&lb.lb_type);
        let r = Rule {
            arn: ctx.rc.arn(
                "elasticloadbalancing",
                &format!(
                    "listener-rule/{seg}/{}/{}/{lid}/{}",
                    lb.name,
                    lb.id,
                    new_id()
                ),
            ),
            listener_arn: listener_arn.clone(),
            priority: Some(priority),
            conditions,
            actions,
            tags: new_tags.clone(),
        };
        model::put_rule(tx, &scope, &r)?;
        Ok(json!({"Rules": [model::rule_json(&r, &l)]}))
    })
}

fn sort_rules(rules: &mut [Rule]) {
    rules.sort_by_key(|r| r.priority.unwrap_or(u32::MAX));
}

pub(crate) fn describe_rules(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let listener_arn = input.str("ListenerArn").map(str::to_string);
    let arns = input.str_list("RuleArns");
    if listener_arn.is_some() == arns.is_some() {
        return Err(validation(
            "You must specify either listener ARN or rule ARNs",
        ));
    }
    let scope = ctx.scope.clone();
    let items = ctx.store().read(|tx| {
        let mut rules: Vec<Rule> = match (&listener_arn, &arns) {
            (Some(l), _) => {
                model::get_listener(tx, &scope, l)?;
                tx.list_as(&scope, KIND_RULE, Some(l))?
            }
            (_, Some(a)) => a
                .iter()
                .map(|arn| model::get_rule(tx, &scope, arn))
                .collect::<AwsResult<_>>()?,
            _ => Vec::new(),
        };
        if listener_arn.is_some() {
            sort_rules(&mut rules);
        }
        rules
            .iter()
            .map(|r| {
                let l = model::get_listener(tx, &scope, &r.listener_arn)?;
                Ok(model::rule_json(r, &l))
            })
            .collect::<AwsResult<Vec<_>>>()
    })?;
    let (page, next) = paginate(items, input)?;
    Ok(with_marker(json!({"Rules": page}), next))
}

pub(crate) fn modify_rule(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let arn = req(input, "RuleArn")?.to_string();
    let conditions = match input.list("Conditions") {
        Some(c) => Some(parse_conditions(&c)?),
        None => None,
    };
    let scope = ctx.scope.clone();
    ctx.store().write(|tx| {
        let mut r = model::get_rule(tx, &scope, &arn)?;
        let mut l = model::get_listener(tx, &scope, &r.listener_arn)?;
        let lb = model::get_lb(tx, &scope, &l.lb_arn)?;
        if r.priority.is_none() && conditions.is_some() {
            return Err(AwsError::bad(
                "OperationNotPermitted",
                "Conditions cannot be set on a default rule",
            ));
        }
        if let Some(list) = input.list("Actions") {
            let actions = parse_actions(tx, &scope, &list, "actions", &lb.lb_type, &l.protocol)?;
            check_association(tx, &scope, &lb, &actions)?;
            if r.priority.is_none() {
                l.default_actions = actions;
                model::put_listener(tx, &scope, &l)?;
            } else {
                r.actions = actions;
            }
        }
        if let Some(c) = conditions {
            r.conditions = c;
        }
        model::put_rule(tx, &scope, &r)?;
        Ok(json!({"Rules": [model::rule_json(&r, &l)]}))
    })
}

pub(crate) fn set_rule_priorities(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let list = input
        .list("RulePriorities")
        .ok_or_else(|| validation("1 validation error detected: Value null at 'rulePriorities' failed to satisfy constraint: Member must not be null"))?;
    let mut wanted = Vec::new();
    for p in &list {
        let arn = req(p, "RuleArn")?.to_string();
        wanted.push((arn, check_priority(p, "Priority")?));
    }
    let scope = ctx.scope.clone();
    ctx.store().write(|tx| {
        let mut changed = Vec::new();
        for (arn, p) in &wanted {
            let mut r = model::get_rule(tx, &scope, arn)?;
            if r.priority.is_none() {
                return Err(AwsError::bad(
                    "OperationNotPermitted",
                    "The default rule's priority cannot be changed",
                ));
            }
            r.priority = Some(*p);
            model::put_rule(tx, &scope, &r)?;
            changed.push(r);
        }
        // Priorities must stay unique on every listener touched.
        let mut listeners: Vec<String> = changed.iter().map(|r| r.listener_arn.clone()).collect();
        listeners.dedup();
        for la in &listeners {
            let mut seen = std::collections::HashSet::new();
            for r in tx.list_as::<Rule>(&scope, KIND_RULE, Some(la))? {
                if let Some(p) = r.priority {
                    if !seen.insert(p) {
                        return Err(priority_in_use(p));
                    }
                }
            }
        }
        let mut out = Vec::new();
        for r in &changed {
            let l = model::get_listener(tx, &scope, &r.listener_arn)?;
            out.push(model::rule_json(r, &l));
        }
        Ok(json!({"Rules": out}))
    })
}

pub(crate) fn delete_rule(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let arn = req(input, "RuleArn")?.to_string();
    let scope = ctx.scope.clone();
    ctx.store().write(|tx| {
        let r = model::get_rule(tx, &scope, &arn)?;
        if r.priority.is_none() {
            return Err(AwsError::bad(
                "OperationNotPermitted",
                format!("Default rule '{arn}' cannot be deleted"),
            ));
        }
        tx.delete(&scope, KIND_RULE, &arn)?;
        Ok(model::empty())
    })
}
