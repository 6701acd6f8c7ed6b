//! ELBv2 providers: LoadBalancer (stabilises at `active`), Listener, ListenerRule and
//! TargetGroup, through the ELBv2 query operations (PascalCase members, as CloudFormation's).

use super::{
    copy, field, first_of, fstr, prop_str, required, text, unsupported, Done, Failure, PResult, Pcx,
};
use portico_core::Service;
use serde_json::{json, Map, Value};
use std::time::Duration;

fn attrs_of(lb: &Value) -> Map<String, Value> {
    let arn = fstr(lb, "LoadBalancerArn").unwrap_or_default();
    let full = arn
        .split_once(":loadbalancer/")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    let mut m = Map::new();
    m.insert("LoadBalancerArn".into(), json!(arn));
    m.insert(
        "DNSName".into(),
        json!(fstr(lb, "DNSName").unwrap_or_default()),
    );
    m.insert(
        "CanonicalHostedZoneID".into(),
        json!(fstr(lb, "CanonicalHostedZoneId").unwrap_or_default()),
    );
    m.insert("LoadBalancerFullName".into(), json!(full));
    m.insert(
        "LoadBalancerName".into(),
        json!(fstr(lb, "LoadBalancerName").unwrap_or_default()),
    );
    m.insert(
        "SecurityGroups".into(),
        field(lb, "SecurityGroups").cloned().unwrap_or(json!([])),
    );
    m
}

fn key_values(props: &Value, key: &str) -> Vec<Value> {
    props
        .get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| json!({"Key": x.get("Key").map(text).unwrap_or_default(), "Value": x.get("Value").map(text).unwrap_or_default()}))
                .collect()
        })
        .unwrap_or_default()
}

fn tg_attrs(tg: &Value) -> Map<String, Value> {
    let arn = fstr(tg, "TargetGroupArn").unwrap_or_default();
    let full = arn
        .rsplit_once(':')
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    let mut m = Map::new();
    m.insert("TargetGroupArn".into(), json!(arn));
    m.insert("TargetGroupFullName".into(), json!(full));
    m.insert(
        "TargetGroupName".into(),
        json!(fstr(tg, "TargetGroupName").unwrap_or_default()),
    );
    m.insert(
        "LoadBalancerArns".into(),
        field(tg, "LoadBalancerArns").cloned().unwrap_or(json!([])),
    );
    m
}

const TG_HEALTH: &[&str] = &[
    "HealthCheckProtocol",
    "HealthCheckPort",
    "HealthCheckEnabled",
    "HealthCheckPath",
    "HealthCheckIntervalSeconds",
    "HealthCheckTimeoutSeconds",
    "HealthyThresholdCount",
    "UnhealthyThresholdCount",
    "Matcher",
];

fn targets(props: &Value) -> Vec<Value> {
    props
        .get("Targets")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

pub(super) async fn create(cx: &Pcx<'_>, ty: &str, props: &Value) -> PResult<Done> {
    match ty {
        "AWS::ElasticLoadBalancingV2::LoadBalancer" => {
            let name = prop_str(props, "Name").unwrap_or_else(|| cx.name(32));
            let mut input = json!({"Name": name});
            copy(
                props,
                &mut input,
                &[
                    "Subnets",
                    "SubnetMappings",
                    "SecurityGroups",
                    "Scheme",
                    "Type",
                    "IpAddressType",
                ],
            );
            input["Tags"] = json!(cx.auto_tag_list(props));
            let out = cx.call(Service::Elbv2, "CreateLoadBalancer", input).await?;
            let lb = first_of(&out, "LoadBalancers");
            let arn = fstr(&lb, "LoadBalancerArn").unwrap_or_default();
            let attributes = key_values(props, "LoadBalancerAttributes");
            if !attributes.is_empty() {
                cx.call(
                    Service::Elbv2,
                    "ModifyLoadBalancerAttributes",
                    json!({"LoadBalancerArn": arn, "Attributes": attributes}),
                )
                .await
                .map_err(|e| e.with_physical(&arn))?;
            }
            Ok(Done {
                physical: arn,
                attrs: attrs_of(&lb),
            })
        }
        "AWS::ElasticLoadBalancingV2::Listener" => {
            let mut input = json!({
                "LoadBalancerArn": text(&required(props, "LoadBalancerArn")?),
                "DefaultActions": required(props, "DefaultActions")?,
            });
            copy(
                props,
                &mut input,
                &[
                    "Port",
                    "Protocol",
                    "Certificates",
                    "SslPolicy",
                    "AlpnPolicy",
                ],
            );
            let out = cx.call(Service::Elbv2, "CreateListener", input).await?;
            let arn = fstr(&first_of(&out, "Listeners"), "ListenerArn").unwrap_or_default();
            let mut m = Map::new();
            m.insert("ListenerArn".into(), json!(arn));
            Ok(Done {
                physical: arn,
                attrs: m,
            })
        }
        "AWS::ElasticLoadBalancingV2::ListenerRule" => {
            let mut input = json!({
                "ListenerArn": text(&required(props, "ListenerArn")?),
                "Priority": text(&required(props, "Priority")?),
                "Conditions": required(props, "Conditions")?,
                "Actions": required(props, "Actions")?,
            });
            copy(props, &mut input, &["Tags"]);
            let out = cx.call(Service::Elbv2, "CreateRule", input).await?;
            let rule = first_of(&out, "Rules");
            let arn = fstr(&rule, "RuleArn").unwrap_or_default();
            let mut m = Map::new();
            m.insert("RuleArn".into(), json!(arn));
            m.insert(
                "IsDefault".into(),
                json!(fstr(&rule, "IsDefault").unwrap_or_else(|| "false".into())),
            );
            Ok(Done {
                physical: arn,
                attrs: m,
            })
        }
        "AWS::ElasticLoadBalancingV2::TargetGroup" => {
            let name = prop_str(props, "Name").unwrap_or_else(|| cx.name(32));
            let mut input = json!({"Name": name});
            copy(
                props,
                &mut input,
                &[
                    "Protocol",
                    "ProtocolVersion",
                    "Port",
                    "VpcId",
                    "TargetType",
                    "IpAddressType",
                ],
            );
            copy(props, &mut input, TG_HEALTH);
            input["Tags"] = json!(cx.auto_tag_list(props));
            let out = cx.call(Service::Elbv2, "CreateTargetGroup", input).await?;
            let tg = first_of(&out, "TargetGroups");
            let arn = fstr(&tg, "TargetGroupArn").unwrap_or_default();
            let f = |e: Failure| e.with_physical(&arn);
            let attributes = key_values(props, "TargetGroupAttributes");
            if !attributes.is_empty() {
                cx.call(
                    Service::Elbv2,
                    "ModifyTargetGroupAttributes",
                    json!({"TargetGroupArn": arn, "Attributes": attributes}),
                )
                .await
                .map_err(f)?;
            }
            let t = targets(props);
            if !t.is_empty() {
                cx.call(
                    Service::Elbv2,
                    "RegisterTargets",
                    json!({"TargetGroupArn": arn, "Targets": t}),
                )
                .await
                .map_err(f)?;
            }
            Ok(Done {
                physical: arn,
                attrs: tg_attrs(&tg),
            })
        }
        other => Err(unsupported(other)),
    }
}

pub(super) async fn stabilize(cx: &Pcx<'_>, ty: &str, done: &mut Done) -> PResult<()> {
    match ty {
        "AWS::ElasticLoadBalancingV2::LoadBalancer" => {
            let arn = done.physical.clone();
            let lb = cx
                .wait_for(
                    "the load balancer to become active",
                    Duration::from_secs(300),
                    || async {
                        let out = cx
                            .call(
                                Service::Elbv2,
                                "DescribeLoadBalancers",
                                json!({"LoadBalancerArns": [arn]}),
                            )
                            .await?;
                        let lb = first_of(&out, "LoadBalancers");
                        let state = field(&lb, "State").and_then(|s| fstr(s, "Code"));
                        match state.as_deref() {
                            Some("active") => Ok(Some(lb)),
                            Some("failed") => Err(Failure::msg(format!(
                                "Load balancer {arn} failed to become active"
                            ))),
                            _ => Ok(None),
                        }
                    },
                )
                .await
                .map_err(|e| e.with_physical(&done.physical))?;
            done.attrs = attrs_of(&lb);
            Ok(())
        }
        "AWS::ElasticLoadBalancingV2::TargetGroup" => {
            // LoadBalancerArns as of now (listeners created later refresh nothing; AWS reads it live).
            Ok(())
        }
        _ => Ok(()),
    }
}

pub(super) async fn update(
    cx: &Pcx<'_>,
    ty: &str,
    physical: &str,
    old: &Value,
    new: &Value,
    attrs: &Map<String, Value>,
) -> PResult<Done> {
    let done = Done::existing(physical, attrs);
    let changed = |k: &str| old.get(k) != new.get(k);
    match ty {
        "AWS::ElasticLoadBalancingV2::LoadBalancer" => {
            if changed("SecurityGroups") {
                cx.call(Service::Elbv2, "SetSecurityGroups", json!({"LoadBalancerArn": physical, "SecurityGroups": new.get("SecurityGroups").cloned().unwrap_or(json!([]))}))
                    .await?;
            }
            if changed("Subnets") || changed("SubnetMappings") {
                let mut input = json!({"LoadBalancerArn": physical});
                copy(new, &mut input, &["Subnets", "SubnetMappings"]);
                cx.call(Service::Elbv2, "SetSubnets", input).await?;
            }
            if changed("IpAddressType") {
                cx.call(Service::Elbv2, "SetIpAddressType", json!({"LoadBalancerArn": physical, "IpAddressType": prop_str(new, "IpAddressType").unwrap_or_else(|| "ipv4".into())}))
                    .await?;
            }
            if changed("LoadBalancerAttributes") {
                cx.call(Service::Elbv2, "ModifyLoadBalancerAttributes", json!({"LoadBalancerArn": physical, "Attributes": key_values(new, "LoadBalancerAttributes")}))
                    .await?;
            }
            Ok(done)
        }
        "AWS::ElasticLoadBalancingV2::Listener" => {
            let mut input = json!({"ListenerArn": physical});
            copy(
                new,
                &mut input,
                &[
                    "Port",
                    "Protocol",
                    "DefaultActions",
                    "Certificates",
                    "SslPolicy",
                    "AlpnPolicy",
                ],
            );
            cx.call(Service::Elbv2, "ModifyListener", input).await?;
            Ok(done)
        }
        "AWS::ElasticLoadBalancingV2::ListenerRule" => {
            if changed("Conditions") || changed("Actions") {
                let mut input = json!({"RuleArn": physical});
                copy(new, &mut input, &["Conditions", "Actions"]);
                cx.call(Service::Elbv2, "ModifyRule", input).await?;
            }
            if changed("Priority") {
                cx.call(
                    Service::Elbv2,
                    "SetRulePriorities",
                    json!({"RulePriorities": [{"RuleArn": physical, "Priority": prop_str(new, "Priority").unwrap_or_default()}]}),
                )
                .await?;
            }
            Ok(done)
        }
        "AWS::ElasticLoadBalancingV2::TargetGroup" => {
            if TG_HEALTH.iter().any(|k| changed(k)) {
                let mut input = json!({"TargetGroupArn": physical});
                copy(new, &mut input, TG_HEALTH);
                cx.call(Service::Elbv2, "ModifyTargetGroup", input).await?;
            }
            if changed("TargetGroupAttributes") {
                cx.call(Service::Elbv2, "ModifyTargetGroupAttributes", json!({"TargetGroupArn": physical, "Attributes": key_values(new, "TargetGroupAttributes")}))
                    .await?;
            }
            if changed("Targets") {
                let (o, n) = (targets(old), targets(new));
                let gone: Vec<Value> = o.iter().filter(|t| !n.contains(t)).cloned().collect();
                let added: Vec<Value> = n.iter().filter(|t| !o.contains(t)).cloned().collect();
                if !gone.is_empty() {
                    cx.call(
                        Service::Elbv2,
                        "DeregisterTargets",
                        json!({"TargetGroupArn": physical, "Targets": gone}),
                    )
                    .await?;
                }
                if !added.is_empty() {
                    cx.call(
                        Service::Elbv2,
                        "RegisterTargets",
                        json!({"TargetGroupArn": physical, "Targets": added}),
                    )
                    .await?;
                }
            }
            Ok(done)
        }
        other => Err(unsupported(other)),
    }
}

pub(super) async fn delete(
    cx: &Pcx<'_>,
    ty: &str,
    physical: &str,
    _props: &Value,
    _attrs: &Map<String, Value>,
) -> PResult<()> {
    match ty {
        "AWS::ElasticLoadBalancingV2::LoadBalancer" => {
            cx.delete_call(
                Service::Elbv2,
                "DeleteLoadBalancer",
                json!({"LoadBalancerArn": physical}),
            )
            .await
        }
        "AWS::ElasticLoadBalancingV2::Listener" => {
            cx.delete_call(
                Service::Elbv2,
                "DeleteListener",
                json!({"ListenerArn": physical}),
            )
            .await
        }
        "AWS::ElasticLoadBalancingV2::ListenerRule" => {
            cx.delete_call(Service::Elbv2, "DeleteRule", json!({"RuleArn": physical}))
                .await
        }
        "AWS::ElasticLoadBalancingV2::TargetGroup" => {
            // A target group stays "in use" until its load balancer's listeners are gone.
            let start = std::time::Instant::now();
            loop {
                match cx
                    .call_raw(
                        Service::Elbv2,
                        "DeleteTargetGroup",
                        json!({"TargetGroupArn": physical}),
                    )
                    .await
                {
                    Ok(_) => return Ok(()),
                    Err(e) if super::is_gone(&e) => return Ok(()),
                    Err(e)
                        if e.code == "ResourceInUse"
                            && start.elapsed() < Duration::from_secs(120) =>
                    {
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                    Err(e) => return Err(Failure::msg(cx.reason(Service::Elbv2, &e))),
                }
            }
        }
        other => Err(unsupported(other)),
    }
}
