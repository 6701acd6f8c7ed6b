//! Clusters: create, describe (with live task and service counts), list, update, delete.

use super::model::*;
use super::*;

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 255
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Writes the cluster and answers with it, as every cluster write operation does.
fn save(tx: &Tx<'_>, scope: &Scope, c: &ClusterRec) -> AwsResult<Value> {
    tx.put_as(
        scope,
        KIND_CLUSTER,
        &c.cluster_name,
        None,
        Some(&c.cluster_name),
        c,
    )?;
    Ok(json!({"cluster": render(tx, scope, c, true)?}))
}

pub(crate) fn render(tx: &Tx<'_>, scope: &Scope, c: &ClusterRec, tags: bool) -> AwsResult<Value> {
    let tasks = tasks_of_cluster(tx, scope, &c.cluster_name)?;
    let mut running = 0;
    let mut pending = 0;
    for t in &tasks {
        match t.last_status.as_str() {
            "RUNNING" => running += 1,
            "PROVISIONING" | "PENDING" | "ACTIVATING" => pending += 1,
            _ => {}
        }
    }
    let active = services_of_cluster(tx, scope, &c.cluster_name)?
        .iter()
        .filter(|s| s.status == "ACTIVE")
        .count();
    let mut o = json!({
        "clusterArn": c.cluster_arn, "clusterName": c.cluster_name, "status": c.status,
        "registeredContainerInstancesCount": 0, "runningTasksCount": running,
        "pendingTasksCount": pending, "activeServicesCount": active, "statistics": [],
        "settings": c.settings, "capacityProviders": c.capacity_providers,
        "defaultCapacityProviderStrategy": c.default_capacity_provider_strategy,
    });
    if tags {
        o["tags"] = json!(c.tags);
    }
    if let Some(x) = &c.configuration {
        o["configuration"] = x.clone();
    }
    if let Some(x) = &c.service_connect_defaults {
        o["serviceConnectDefaults"] = x.clone();
    }
    Ok(o)
}

fn capacity_providers(input: &Input) -> AwsResult<(Vec<String>, Vec<Value>)> {
    let cps = input.str_list("capacityProviders").unwrap_or_default();
    for cp in &cps {
        if cp != "FARGATE" && cp != "FARGATE_SPOT" {
            return Err(invalid(format!(
                "The specified capacity provider {cp} is not in an ACTIVE state. Specify a valid capacity provider and try again."
            )));
        }
    }
    let mut strategy = Vec::new();
    for s in input
        .list("defaultCapacityProviderStrategy")
        .unwrap_or_default()
    {
        let name = s.str("capacityProvider").unwrap_or("");
        if !cps.iter().any(|c| c == name) {
            return Err(invalid("The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster. Associate the capacity provider with the cluster or specify a valid capacity provider and try again."));
        }
        let mut o = json!({"capacityProvider": name, "weight": s.i64("weight").ok().flatten().unwrap_or(0), "base": s.i64("base").ok().flatten().unwrap_or(0)});
        if o["weight"].as_i64().unwrap_or(0) < 0 {
            o["weight"] = json!(0);
        }
        strategy.push(o);
    }
    Ok((cps, strategy))
}

pub(crate) fn create(ctx: &Ctx<'_>, input: Input) -> AwsResult<Value> {
    let name = input.str("clusterName").unwrap_or("default").to_string();
    if !valid_name(&name) {
        return Err(invalid("Cluster name can only contain letters, numbers, hyphens and underscores. Max length 255."));
    }
    let tags = tags_of(&input, "tags")?;
    let (cps, strategy) = capacity_providers(&input)?;
    let settings = match input.list("settings") {
        Some(s) if !s.is_empty() => s.into_iter().map(|i| i.0).collect(),
        _ => vec![json!({"name": "containerInsights", "value": "disabled"})],
    };
    ctx.store().write(|tx| {
        if let Some(c) = tx.get_as::<ClusterRec>(&ctx.scope, KIND_CLUSTER, &name)? {
            if c.status == "ACTIVE" {
                return Ok(json!({"cluster": render(tx, &ctx.scope, &c, true)?}));
            }
        }
        let c = ClusterRec {
            cluster_arn: cluster_arn(ctx, &name),
            cluster_name: name.clone(),
            status: "ACTIVE".into(),
            tags,
            settings,
            configuration: input.get("configuration").cloned(),
            capacity_providers: cps,
            default_capacity_provider_strategy: strategy,
            service_connect_defaults: input.get("serviceConnectDefaults").cloned(),
        };
        save(tx, &ctx.scope, &c)
    })
}

pub(crate) fn describe(ctx: &Ctx<'_>, input: Input) -> AwsResult<Value> {
    let names = match input.str_list("clusters") {
        Some(l) if !l.is_empty() => l,
        _ => vec!["default".to_string()],
    };
    let tags = includes(&input, "TAGS");
    ctx.store().read(|tx| {
        let mut clusters = Vec::new();
        let mut failures = Vec::new();
        for n in names {
            let name = if n.starts_with("arn:") {
                n.split_once(":cluster/").map_or(n.as_str(), |(_, x)| x)
            } else {
                n.as_str()
            };
            match tx.get_as::<ClusterRec>(&ctx.scope, KIND_CLUSTER, name)? {
                Some(c) => clusters.push(render(tx, &ctx.scope, &c, tags)?),
                None => failures.push(json!({"arn": cluster_arn(ctx, name), "reason": "MISSING"})),
            }
        }
        Ok(json!({"clusters": clusters, "failures": failures}))
    })
}

/// The two fields of a [`ClusterRec`] ListClusters needs (it lists every cluster: the rest
/// of each record is not deserialized).
#[derive(Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Listed {
    cluster_arn: String,
    status: String,
}

pub(crate) fn list(ctx: &Ctx<'_>, input: Input) -> AwsResult<Value> {
    let arns: Vec<String> = ctx.store().read(|tx| {
        Ok(tx
            .list_as::<Listed>(&ctx.scope, KIND_CLUSTER, None)?
            .into_iter()
            .filter(|c| c.status == "ACTIVE")
            .map(|c| c.cluster_arn)
            .collect())
    })?;
    paginate(arns, &input, "clusterArns")
}

pub(crate) fn delete(ctx: &Ctx<'_>, input: Input) -> AwsResult<Value> {
    input.req_str("cluster", "InvalidParameterException")?;
    ctx.store().write(|tx| {
        let mut c = active_cluster(tx, &ctx.scope, &input)?;
        if services_of_cluster(tx, &ctx.scope, &c.cluster_name)?
            .iter()
            .any(|s| s.status != "INACTIVE")
        {
            return Err(AwsError::bad(
                "ClusterContainsServicesException",
                "The Cluster cannot be deleted while Services are active.",
            ));
        }
        if tasks_of_cluster(tx, &ctx.scope, &c.cluster_name)?
            .iter()
            .any(|t| t.last_status != "STOPPED")
        {
            return Err(AwsError::bad(
                "ClusterContainsTasksException",
                "The Cluster cannot be deleted while Tasks are active.",
            ));
        }
        c.status = "INACTIVE".into();
        save(tx, &ctx.scope, &c)
    })
}

pub(crate) fn update(ctx: &Ctx<'_>, input: Input) -> AwsResult<Value> {
    input.req_str("cluster", "InvalidParameterException")?;
    ctx.store().write(|tx| {
        let mut c = active_cluster(tx, &ctx.scope, &input)?;
        if let Some(s) = input.list("settings") {
            c.settings = s.into_iter().map(|i| i.0).collect();
        }
        if let Some(x) = input.get("configuration") {
            c.configuration = Some(x.clone());
        }
        if let Some(x) = input.get("serviceConnectDefaults") {
            c.service_connect_defaults = Some(x.clone());
        }
        save(tx, &ctx.scope, &c)
    })
}

pub(crate) fn update_settings(ctx: &Ctx<'_>, input: Input) -> AwsResult<Value> {
    input.req_str("cluster", "InvalidParameterException")?;
    ctx.store().write(|tx| {
        let mut c = active_cluster(tx, &ctx.scope, &input)?;
        for s in input.list("settings").unwrap_or_default() {
            let name = s.get("name").cloned();
            c.settings.retain(|e| e.get("name") != name.as_ref());
            c.settings.push(s.0);
        }
        save(tx, &ctx.scope, &c)
    })
}

pub(crate) fn put_capacity_providers(ctx: &Ctx<'_>, input: Input) -> AwsResult<Value> {
    input.req_str("cluster", "InvalidParameterException")?;
    let (cps, strategy) = capacity_providers(&input)?;
    ctx.store().write(|tx| {
        let mut c = active_cluster(tx, &ctx.scope, &input)?;
        c.capacity_providers = cps;
        c.default_capacity_provider_strategy = strategy;
        save(tx, &ctx.scope, &c)
    })
}

pub(crate) fn describe_capacity_providers(ctx: &Ctx<'_>) -> Value {
    let cp = |n: &str| {
        json!({"capacityProviderArn": ctx.rc.arn("ecs", &format!("capacity-provider/{n}")),
               "name": n, "status": "ACTIVE", "tags": []})
    };
    json!({"capacityProviders": [cp("FARGATE"), cp("FARGATE_SPOT")], "failures": []})
}

pub(crate) fn list_account_settings(ctx: &Ctx<'_>) -> Value {
    let principal = ctx.rc.global_arn("iam", "root");
    let s = |n: &str, v: &str| json!({"name": n, "value": v, "principalArn": principal});
    json!({"settings": [
        s("serviceLongArnFormat", "enabled"), s("taskLongArnFormat", "enabled"),
        s("containerInstanceLongArnFormat", "enabled"), s("awsvpcTrunking", "disabled"),
        s("containerInsights", "disabled"),
    ]})
}
