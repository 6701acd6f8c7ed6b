//! Amazon ECS (awsJson 1.1): clusters, task definitions, services and tasks. Operations only
//! validate and write; the ECS reconciler (`reconcile/ecs.rs`) runs the tasks, walks their
//! lifecycle and keeps services at their desired count. Unknown or not-yet-built operations
//! answer the protocol's unknown-operation error, never a fake success.

pub(crate) mod clusters;
pub(crate) mod model;
pub(crate) mod services;
pub(crate) mod taskdefs;
pub(crate) mod tasks;

use crate::Ctx;
use model::*;
use portico_core::{AwsError, AwsResult, Input, Service};
use portico_store::{Scope, Tx};
use serde_json::{json, Value};

pub async fn dispatch(ctx: &Ctx<'_>, op: &str, input: Input) -> AwsResult<Value> {
    match op {
        "CreateCluster" => clusters::create(ctx, input),
        "DescribeClusters" => clusters::describe(ctx, input),
        "ListClusters" => clusters::list(ctx, input),
        "DeleteCluster" => clusters::delete(ctx, input),
        "UpdateCluster" => clusters::update(ctx, input),
        "UpdateClusterSettings" => clusters::update_settings(ctx, input),
        "PutClusterCapacityProviders" => clusters::put_capacity_providers(ctx, input),
        "DescribeCapacityProviders" => Ok(clusters::describe_capacity_providers(ctx)),
        "ListAccountSettings" => Ok(clusters::list_account_settings(ctx)),
        "RegisterTaskDefinition" => taskdefs::register(ctx, input),
        "DescribeTaskDefinition" => taskdefs::describe(ctx, input),
        "ListTaskDefinitions" => taskdefs::list(ctx, input),
        "ListTaskDefinitionFamilies" => taskdefs::list_families(ctx, input),
        "DeregisterTaskDefinition" => taskdefs::deregister(ctx, input),
        "DeleteTaskDefinitions" => taskdefs::delete(ctx, input),
        "CreateService" => services::create(ctx, input).await,
        "DescribeServices" => services::describe(ctx, input),
        "ListServices" => services::list(ctx, input),
        "UpdateService" => services::update(ctx, input).await,
        "DeleteService" => services::delete(ctx, input),
        "RunTask" => tasks::run(ctx, input),
        "StartTask" => tasks::start(ctx, input),
        "StopTask" => tasks::stop(ctx, input),
        "DescribeTasks" => tasks::describe(ctx, input),
        "ListTasks" => tasks::list(ctx, input),
        "TagResource" => tag_resource(ctx, input),
        "UntagResource" => untag_resource(ctx, input),
        "ListTagsForResource" => list_tags(ctx, input),
        _ => Err(Service::Ecs.unknown_operation(op)),
    }
}

pub(crate) fn client(msg: impl Into<String>) -> AwsError {
    AwsError::bad("ClientException", msg)
}

pub(crate) fn invalid(msg: impl Into<String>) -> AwsError {
    AwsError::bad("InvalidParameterException", msg)
}

pub(crate) fn cluster_not_found() -> AwsError {
    AwsError::bad("ClusterNotFoundException", "Cluster not found.")
}

pub(crate) fn service_not_found() -> AwsError {
    AwsError::bad("ServiceNotFoundException", "Service not found.")
}

/// The last `/`-separated part of a name or ARN (`arn:…:cluster/x` -> `x`).
pub(crate) fn last_segment(reference: &str) -> &str {
    reference.rsplit('/').next().unwrap_or(reference)
}

/// The cluster an input names (`cluster` member, name or ARN; default `default`).
pub(crate) fn cluster_name_of(input: &Input) -> String {
    match input.str("cluster") {
        Some(c) if c.starts_with("arn:") => c.split_once(":cluster/").map_or(c, |(_, n)| n),
        Some(c) => c,
        None => "default",
    }
    .to_string()
}

pub(crate) fn cluster_arn(ctx: &Ctx<'_>, name: &str) -> String {
    ctx.rc.arn("ecs", &format!("cluster/{name}"))
}

/// The ACTIVE cluster an input names, or ClusterNotFoundException.
pub(crate) fn active_cluster(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<ClusterRec> {
    let name = cluster_name_of(input);
    match tx.get_as::<ClusterRec>(scope, KIND_CLUSTER, &name)? {
        Some(c) if c.status == "ACTIVE" => Ok(c),
        _ => Err(cluster_not_found()),
    }
}

pub(crate) fn tasks_of_cluster(
    tx: &Tx<'_>,
    scope: &Scope,
    cluster: &str,
) -> AwsResult<Vec<TaskRec>> {
    Ok(tx.list_as(scope, KIND_TASK, Some(cluster))?)
}

pub(crate) fn services_of_cluster(
    tx: &Tx<'_>,
    scope: &Scope,
    cluster: &str,
) -> AwsResult<Vec<ServiceRec>> {
    Ok(tx.list_as(scope, KIND_SERVICE, Some(cluster))?)
}

/// A service by name or ARN in a cluster: the ACTIVE/DRAINING one, else the newest INACTIVE.
pub(crate) fn find_service(
    tx: &Tx<'_>,
    scope: &Scope,
    cluster: &str,
    reference: &str,
) -> AwsResult<Option<ServiceRec>> {
    let name = last_segment(reference);
    let all: Vec<ServiceRec> = tx
        .find_by_name(scope, KIND_SERVICE, name)?
        .into_iter()
        .filter(|r| r.parent.as_deref() == Some(cluster))
        .filter_map(|r| serde_json::from_value(r.body).ok())
        .collect();
    if let Some(live) = all.iter().find(|s| s.status != "INACTIVE") {
        return Ok(Some(live.clone()));
    }
    Ok(all.into_iter().last())
}

pub(crate) fn put_service(tx: &Tx<'_>, scope: &Scope, s: &ServiceRec) -> AwsResult<()> {
    tx.put_as(
        scope,
        KIND_SERVICE,
        &s.id,
        Some(&s.cluster_name),
        Some(&s.service_name),
        s,
    )?;
    Ok(())
}

pub(crate) fn put_task(tx: &Tx<'_>, scope: &Scope, t: &TaskRec) -> AwsResult<()> {
    tx.put_as(scope, KIND_TASK, &t.task_id, Some(&t.cluster_name), None, t)?;
    Ok(())
}

/// Whether `include` asks for `what` (`TAGS`, `SETTINGS`, ...).
pub(crate) fn includes(input: &Input, what: &str) -> bool {
    input
        .str_list("include")
        .unwrap_or_default()
        .iter()
        .any(|i| i == what)
}

/// Validated `tags` (`[{key, value}]`).
pub(crate) fn tags_of(input: &Input, key: &str) -> AwsResult<Vec<Value>> {
    let mut out = Vec::new();
    for t in input.list(key).unwrap_or_default() {
        let k = t.str("key").unwrap_or("");
        let v = t.str("value").unwrap_or("");
        if k.is_empty() || k.len() > 128 || v.len() > 256 {
            return Err(invalid("The specified tags are not valid."));
        }
        if crate::services::tags::refused(k) {
            return Err(invalid("Tag keys beginning with 'aws:' are reserved."));
        }
        out.push(json!({"key": k, "value": v}));
    }
    if crate::services::tags::counted(&out) > 50 {
        return Err(invalid("The number of tags exceeds the maximum of 50."));
    }
    Ok(out)
}

fn merge_tags(existing: &mut Vec<Value>, new: Vec<Value>) {
    for t in new {
        let k = t.get("key").cloned();
        existing.retain(|e| e.get("key") != k.as_ref());
        existing.push(t);
    }
}

/// Paginates ARNs with `maxResults`/`nextToken` (the token is an offset).
pub(crate) fn paginate(items: Vec<String>, input: &Input, key: &str) -> AwsResult<Value> {
    let start = match input.str("nextToken") {
        Some(t) => t.parse::<usize>().map_err(|_| invalid("Invalid token"))?,
        None => 0,
    };
    let max = input
        .i64("maxResults")
        .map_err(|_| invalid("maxResults must be an integer"))?
        .unwrap_or(100)
        .clamp(1, 100) as usize;
    let page: Vec<String> = items.iter().skip(start).take(max).cloned().collect();
    let mut out = json!({ key: page });
    // A client's token can be any number: no overflow (a panic in debug builds).
    let end = start.saturating_add(max);
    if end < items.len() {
        out["nextToken"] = json!(end.to_string());
    }
    Ok(out)
}

enum Tagged {
    Cluster(ClusterRec),
    TaskDef(String, TaskDefRec),
    Service(ServiceRec),
    Task(TaskRec),
}

fn find_tagged(tx: &Tx<'_>, scope: &Scope, arn: &str) -> AwsResult<Tagged> {
    let not_found = || {
        AwsError::bad(
            "ResourceNotFoundException",
            "The specified resource could not be found.",
        )
    };
    let resource = arn
        .splitn(6, ':')
        .nth(5)
        .ok_or_else(|| invalid("Invalid resource ARN."))?;
    let (kind, rest) = resource
        .split_once('/')
        .ok_or_else(|| invalid("Invalid resource ARN."))?;
    match kind {
        "cluster" => match tx.get_as::<ClusterRec>(scope, KIND_CLUSTER, rest)? {
            Some(c) if c.status == "ACTIVE" => Ok(Tagged::Cluster(c)),
            _ => Err(cluster_not_found()),
        },
        "task-definition" => tx
            .get_as::<TaskDefRec>(scope, KIND_TASKDEF, rest)?
            .map(|t| Tagged::TaskDef(rest.to_string(), t))
            .ok_or_else(not_found),
        "service" => {
            let (cluster, name) = rest.split_once('/').ok_or_else(not_found)?;
            find_service(tx, scope, cluster, name)?
                .map(Tagged::Service)
                .ok_or_else(not_found)
        }
        "task" => {
            let (_, id) = rest.split_once('/').ok_or_else(not_found)?;
            tx.get_as::<TaskRec>(scope, KIND_TASK, id)?
                .map(Tagged::Task)
                .ok_or_else(not_found)
        }
        _ => Err(invalid("Invalid resource ARN.")),
    }
}

fn put_tagged(tx: &Tx<'_>, scope: &Scope, t: &Tagged) -> AwsResult<()> {
    match t {
        Tagged::Cluster(c) => tx.put_as(
            scope,
            KIND_CLUSTER,
            &c.cluster_name,
            None,
            Some(&c.cluster_name),
            c,
        )?,
        Tagged::TaskDef(id, d) => tx.put_as(scope, KIND_TASKDEF, id, None, Some(d.family()), d)?,
        Tagged::Service(s) => put_service(tx, scope, s)?,
        Tagged::Task(t) => put_task(tx, scope, t)?,
    }
    Ok(())
}

fn tags_mut(t: &mut Tagged) -> &mut Vec<Value> {
    match t {
        Tagged::Cluster(c) => &mut c.tags,
        Tagged::TaskDef(_, d) => &mut d.tags,
        Tagged::Service(s) => &mut s.tags,
        Tagged::Task(t) => &mut t.tags,
    }
}

fn tag_resource(ctx: &Ctx<'_>, input: Input) -> AwsResult<Value> {
    let arn = input
        .req_str("resourceArn", "InvalidParameterException")?
        .to_string();
    let tags = tags_of(&input, "tags")?;
    ctx.store().write(|tx| {
        let mut t = find_tagged(tx, &ctx.scope, &arn)?;
        merge_tags(tags_mut(&mut t), tags);
        if crate::services::tags::counted(tags_mut(&mut t)) > 50 {
            return Err(invalid("The number of tags exceeds the maximum of 50."));
        }
        put_tagged(tx, &ctx.scope, &t)?;
        Ok(json!({}))
    })
}

fn untag_resource(ctx: &Ctx<'_>, input: Input) -> AwsResult<Value> {
    let arn = input
        .req_str("resourceArn", "InvalidParameterException")?
        .to_string();
    let keys = input.str_list("tagKeys").unwrap_or_default();
    if keys.iter().any(|k| crate::services::tags::refused(k)) {
        return Err(invalid("Tag keys beginning with 'aws:' are reserved."));
    }
    ctx.store().write(|tx| {
        let mut t = find_tagged(tx, &ctx.scope, &arn)?;
        tags_mut(&mut t).retain(|v| {
            !keys
                .iter()
                .any(|k| v.get("key").and_then(Value::as_str) == Some(k.as_str()))
        });
        put_tagged(tx, &ctx.scope, &t)?;
        Ok(json!({}))
    })
}

fn list_tags(ctx: &Ctx<'_>, input: Input) -> AwsResult<Value> {
    let arn = input
        .req_str("resourceArn", "InvalidParameterException")?
        .to_string();
    ctx.store().read(|tx| {
        let mut t = find_tagged(tx, &ctx.scope, &arn)?;
        Ok(json!({"tags": tags_mut(&mut t).clone()}))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_next_token_is_an_empty_last_page() {
        let items = vec!["a".to_string(), "b".to_string()];
        let input = Input(json!({"nextToken": usize::MAX.to_string(), "maxResults": 1}));
        let out = paginate(items.clone(), &input, "arns").unwrap();
        assert_eq!(out, json!({"arns": []}));
        let out = paginate(items, &Input(json!({"maxResults": 1})), "arns").unwrap();
        assert_eq!(out, json!({"arns": ["a"], "nextToken": "1"}));
    }
}
