//! ECS providers: Cluster, TaskDefinition (every change registers a new revision) and Service
//! (stabilises when its deployment is steady; deleted by scaling to zero and waiting for
//! INACTIVE), through the awsJson operations with lowerCamel members.

use super::{camel, field, fstr, prop_str, text, unsupported, Done, Failure, PResult, Pcx};
use portico_core::Service;
use serde_json::{json, Map, Value};
use std::time::Duration;

/// Maps whose keys are data, not member names.
const KEEP: &[&str] = &["Options", "DockerLabels", "Labels", "DriverOpts"];

/// How long a service may take to reach a steady state before the resource fails (AWS waits up
/// to three hours; a local task that does not start in ten minutes will not start).
const STEADY: Duration = Duration::from_secs(600);

/// ECS's `[{key, value}]`. Only clusters get CloudFormation's own tags: AWS does not tag services
/// or task definitions (cloudformation-coverage-roadmap issues 2062, 2063).
fn ecs_tags(cx: &Pcx<'_>, props: &Value, auto: bool) -> Vec<Value> {
    let list = if auto {
        cx.auto_tag_list(props)
    } else {
        cx.tag_list(props)
    };
    list.iter()
        .map(|t| json!({"key": t.get("Key").map(text).unwrap_or_default(), "value": t.get("Value").map(text).unwrap_or_default()}))
        .collect()
}

/// Container-level numbers arrive as strings from YAML or parameters; ECS wants integers.
fn numbers(v: &mut Value) {
    const INTS: &[&str] = &[
        "cpu",
        "memory",
        "memoryReservation",
        "containerPort",
        "hostPort",
        "startPeriod",
        "interval",
        "timeout",
        "retries",
        "stopTimeout",
        "startTimeout",
        "softLimit",
        "hardLimit",
        "size",
        "sharedMemorySize",
        "maxSwap",
        "swappiness",
    ];
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if INTS.contains(&k.as_str()) {
                    if let Value::String(s) = x {
                        if let Ok(n) = s.trim().parse::<i64>() {
                            *x = json!(n);
                        }
                    }
                } else {
                    numbers(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(numbers),
        _ => {}
    }
}

fn service_done(svc: &Value) -> Done {
    let arn = fstr(svc, "serviceArn").unwrap_or_default();
    let mut m = Map::new();
    m.insert("ServiceArn".into(), json!(arn));
    m.insert(
        "Name".into(),
        json!(fstr(svc, "serviceName").unwrap_or_default()),
    );
    Done {
        physical: arn,
        attrs: m,
    }
}

fn cluster_of(props: &Value) -> String {
    prop_str(props, "Cluster").unwrap_or_else(|| "default".into())
}

/// The ServiceUpdate/CreateService members from template properties.
fn service_input(props: &Value) -> Value {
    let mut input = camel(props, KEEP);
    if let Some(m) = input.as_object_mut() {
        m.remove("tags");
        m.remove("serviceConnectConfiguration");
        m.remove("volumeConfigurations");
    }
    numbers(&mut input);
    input
}

pub(super) async fn create(cx: &Pcx<'_>, ty: &str, props: &Value) -> PResult<Done> {
    match ty {
        "AWS::ECS::Cluster" => {
            let name = prop_str(props, "ClusterName").unwrap_or_else(|| cx.name(255));
            let mut input = camel(props, KEEP);
            input["clusterName"] = json!(name);
            if let Some(s) = input
                .as_object_mut()
                .and_then(|m| m.remove("clusterSettings"))
            {
                input["settings"] = s;
            }
            input["tags"] = json!(ecs_tags(cx, props, true));
            let out = cx.call(Service::Ecs, "CreateCluster", input).await?;
            let arn = field(&out, "cluster")
                .and_then(|c| fstr(c, "clusterArn"))
                .unwrap_or_default();
            let mut m = Map::new();
            m.insert("Arn".into(), json!(arn));
            Ok(Done {
                physical: name,
                attrs: m,
            })
        }
        "AWS::ECS::TaskDefinition" => {
            let mut input = camel(props, KEEP);
            let family = prop_str(props, "Family").unwrap_or_else(|| cx.name(255));
            input["family"] = json!(family);
            numbers(&mut input);
            for k in ["cpu", "memory"] {
                if let Some(v) = input.get(k).cloned() {
                    input[k] = json!(text(&v));
                }
            }
            let tags = ecs_tags(cx, props, false);
            if !tags.is_empty() {
                input["tags"] = json!(tags);
            }
            let out = cx
                .call(Service::Ecs, "RegisterTaskDefinition", input)
                .await?;
            let arn = field(&out, "taskDefinition")
                .and_then(|t| fstr(t, "taskDefinitionArn"))
                .unwrap_or_default();
            let mut m = Map::new();
            m.insert("TaskDefinitionArn".into(), json!(arn));
            Ok(Done {
                physical: arn,
                attrs: m,
            })
        }
        "AWS::ECS::Service" => {
            let mut input = service_input(props);
            let name = prop_str(props, "ServiceName").unwrap_or_else(|| cx.name(255));
            input["serviceName"] = json!(name);
            input["cluster"] = json!(cluster_of(props));
            if input.get("desiredCount").is_none()
                && prop_str(props, "SchedulingStrategy").as_deref() != Some("DAEMON")
            {
                input["desiredCount"] = json!(1);
            }
            let tags = ecs_tags(cx, props, false);
            if !tags.is_empty() {
                input["tags"] = json!(tags);
            }
            let out = cx.call(Service::Ecs, "CreateService", input).await?;
            let svc = field(&out, "service").cloned().unwrap_or(Value::Null);
            Ok(service_done(&svc))
        }
        other => Err(unsupported(other)),
    }
}

fn cluster_from_arn(service_arn: &str) -> String {
    // arn:aws:ecs:region:acct:service/<cluster>/<name>
    service_arn
        .split_once(":service/")
        .and_then(|(_, rest)| rest.split_once('/'))
        .map(|(c, _)| c.to_string())
        .unwrap_or_else(|| "default".into())
}

async fn describe_service(cx: &Pcx<'_>, arn: &str) -> PResult<Option<Value>> {
    let out = cx
        .call(
            Service::Ecs,
            "DescribeServices",
            json!({"cluster": cluster_from_arn(arn), "services": [arn]}),
        )
        .await?;
    Ok(field(&out, "services")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .cloned())
}

pub(super) async fn stabilize(cx: &Pcx<'_>, ty: &str, done: &mut Done) -> PResult<()> {
    if ty != "AWS::ECS::Service" {
        return Ok(());
    }
    let arn = done.physical.clone();
    cx.wait_for("the ECS service to reach a steady state", STEADY, || async {
        let Some(svc) = describe_service(cx, &arn).await? else {
            return Ok(None);
        };
        let deployments = field(&svc, "deployments").and_then(Value::as_array).cloned().unwrap_or_default();
        let primary = deployments
            .iter()
            .find(|d| fstr(d, "status").as_deref() == Some("PRIMARY"))
            .cloned()
            .unwrap_or(Value::Null);
        let desired = field(&svc, "desiredCount").and_then(Value::as_i64).unwrap_or(0);
        let running = field(&svc, "runningCount").and_then(Value::as_i64).unwrap_or(-1);
        match fstr(&primary, "rolloutState").as_deref() {
            // A desiredCount change makes no new deployment: the PRIMARY one stays COMPLETED
            // from before, so steady also needs the running count to have caught up.
            Some("COMPLETED") => return Ok((deployments.len() == 1 && running == desired).then_some(())),
            Some("FAILED") => {
                return Err(Failure::msg(format!(
                    "Resource handler returned message: \"Error occurred during operation 'ECS Deployment Circuit Breaker was triggered'. {}\" (RequestToken: {}, HandlerErrorCode: GeneralServiceException)",
                    fstr(&primary, "rolloutStateReason").unwrap_or_default(),
                    portico_core::ids::uuid()
                )))
            }
            _ => {}
        }
        Ok((deployments.len() == 1 && running == desired && fstr(&primary, "rolloutState").is_none()).then_some(()))
    })
    .await
    .map_err(|e| e.with_physical(&done.physical))
}

pub(super) async fn update(
    cx: &Pcx<'_>,
    ty: &str,
    physical: &str,
    _old: &Value,
    new: &Value,
    attrs: &Map<String, Value>,
) -> PResult<Done> {
    match ty {
        "AWS::ECS::Cluster" => {
            if let Some(s) = new.get("ClusterSettings") {
                cx.call(
                    Service::Ecs,
                    "UpdateClusterSettings",
                    json!({"cluster": physical, "settings": camel(s, KEEP)}),
                )
                .await?;
            }
            Ok(Done::existing(physical, attrs))
        }
        "AWS::ECS::Service" => {
            let mut input = service_input(new);
            if let Some(m) = input.as_object_mut() {
                for k in [
                    "serviceName",
                    "launchType",
                    "schedulingStrategy",
                    "role",
                    "deploymentController",
                    "enableECSManagedTags",
                    "propagateTags",
                ] {
                    m.remove(k);
                }
            }
            input["cluster"] = json!(cluster_of(new));
            input["service"] = json!(physical);
            if input.get("desiredCount").is_none() {
                input["desiredCount"] = json!(1);
            }
            let out = cx.call(Service::Ecs, "UpdateService", input).await?;
            let svc = field(&out, "service").cloned().unwrap_or(Value::Null);
            let mut d = service_done(&svc);
            if d.physical.is_empty() {
                d = Done::existing(physical, attrs);
            }
            Ok(d)
        }
        other => Err(unsupported(other)),
    }
}

pub(super) async fn delete(
    cx: &Pcx<'_>,
    ty: &str,
    physical: &str,
    props: &Value,
    _attrs: &Map<String, Value>,
) -> PResult<()> {
    match ty {
        "AWS::ECS::Cluster" => {
            cx.delete_call(Service::Ecs, "DeleteCluster", json!({"cluster": physical}))
                .await
        }
        "AWS::ECS::TaskDefinition" => {
            cx.delete_call(
                Service::Ecs,
                "DeregisterTaskDefinition",
                json!({"taskDefinition": physical}),
            )
            .await
        }
        "AWS::ECS::Service" => {
            let cluster = prop_str(props, "Cluster").unwrap_or_else(|| cluster_from_arn(physical));
            let scaled = cx
                .call_raw(
                    Service::Ecs,
                    "UpdateService",
                    json!({"cluster": cluster, "service": physical, "desiredCount": 0}),
                )
                .await;
            if let Err(e) = scaled {
                if super::is_gone(&e)
                    || e.message.contains("not active")
                    || e.code == "ServiceNotActiveException"
                {
                    return Ok(());
                }
                return Err(Failure::msg(cx.reason(Service::Ecs, &e)));
            }
            cx.delete_call(
                Service::Ecs,
                "DeleteService",
                json!({"cluster": cluster, "service": physical, "force": true}),
            )
            .await?;
            let arn = physical.to_string();
            cx.wait_for("the ECS service to become INACTIVE", STEADY, || async {
                match describe_service(cx, &arn).await {
                    Ok(None) | Err(_) => Ok(Some(())),
                    Ok(Some(s)) => {
                        Ok((fstr(&s, "status").as_deref() == Some("INACTIVE")).then_some(()))
                    }
                }
            })
            .await
        }
        other => Err(unsupported(other)),
    }
}
