//! Tasks: RunTask/StartTask/StopTask/DescribeTasks/ListTasks, and [`new_task`], which the
//! service scheduler also uses to create a task record (with its ENI, for awsvpc).

use super::model::*;
use super::*;
use crate::services::ec2::shared;
use portico_core::{ids, time::now_millis};

/// The task's VPC networking, validated.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AwsVpc {
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
}

/// Checks `networkConfiguration` against the task definition's network mode and EC2.
pub(crate) fn validate_network(
    tx: &Tx<'_>,
    scope: &Scope,
    td: &TaskDefRec,
    netconf: Option<&Value>,
) -> AwsResult<Option<AwsVpc>> {
    let vpc_conf = netconf.and_then(|n| n.get("awsvpcConfiguration"));
    if td.network_mode() != "awsvpc" {
        if vpc_conf.is_some() {
            return Err(invalid("Network Configuration is not valid for the given networkMode of this task definition."));
        }
        return Ok(None);
    }
    let Some(conf) = vpc_conf else {
        return Err(invalid(
            "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
        ));
    };
    let conf = Input(conf.clone());
    let subnets = conf.str_list("subnets").unwrap_or_default();
    if subnets.is_empty() {
        return Err(invalid("subnets can not be empty."));
    }
    if subnets.len() > 16 {
        return Err(invalid("subnets can have at most 16 items."));
    }
    let mut vpc: Option<String> = None;
    for s in &subnets {
        let Some(sub) = shared::get_subnet(tx, scope, s)? else {
            return Err(invalid(format!(
                "Error retrieving subnet information for [{s}]: The subnet ID '{s}' does not exist (ErrorCode: InvalidSubnetID.NotFound)"
            )));
        };
        match &vpc {
            Some(v) if *v != sub.vpc_id => {
                return Err(invalid("Subnets must all belong to the same VPC."))
            }
            _ => vpc = Some(sub.vpc_id),
        }
    }
    let mut sgs = conf.str_list("securityGroups").unwrap_or_default();
    if sgs.len() > 5 {
        return Err(invalid("securityGroups can have at most 5 items."));
    }
    for g in &sgs {
        match shared::get_security_group(tx, scope, g)? {
            Some(sg) if Some(&sg.vpc_id) == vpc.as_ref() => {}
            Some(_) => {
                return Err(invalid(format!(
                    "Security group {g} does not belong to the VPC of the subnets."
                )))
            }
            None => {
                return Err(invalid(format!(
                    "Error retrieving security group information for [{g}]: The security group '{g}' does not exist (ErrorCode: InvalidGroup.NotFound)"
                )))
            }
        }
    }
    if sgs.is_empty() {
        if let Some(v) = &vpc {
            sgs = tx
                .list_as::<shared::SecurityGroup>(scope, shared::KIND_SG, Some(v))?
                .into_iter()
                .filter(|g| g.group_name == "default")
                .map(|g| g.group_id)
                .take(1)
                .collect();
        }
    }
    if let Some(a) = conf.str("assignPublicIp") {
        if a != "ENABLED" && a != "DISABLED" {
            return Err(invalid(format!("Invalid value for assignPublicIp: {a}")));
        }
    }
    Ok(Some(AwsVpc {
        subnets,
        security_groups: sgs,
    }))
}

/// Checks overrides name containers of the task definition.
pub(crate) fn validate_overrides(td: &TaskDefRec, overrides: Option<&Value>) -> AwsResult<Value> {
    let Some(o) = overrides else {
        return Ok(Value::Null);
    };
    let names: Vec<String> = td
        .containers()
        .iter()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    for co in o
        .get("containerOverrides")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let n = co.get("name").and_then(Value::as_str).unwrap_or("");
        if !names.iter().any(|x| x == n) {
            return Err(invalid(format!(
                "Override for container named {n} is not a container in the TaskDefinition."
            )));
        }
    }
    let mut o = o.clone();
    if o.get("inferenceAcceleratorOverrides").is_none() {
        o["inferenceAcceleratorOverrides"] = json!([]);
    }
    Ok(o)
}

/// Everything a new task record needs.
pub(crate) struct NewTask<'a> {
    /// 32 lowercase hex digits.
    pub task_id: String,
    pub cluster: &'a ClusterRec,
    pub td: &'a TaskDefRec,
    pub launch_type: String,
    pub platform_version: Option<String>,
    pub network: Option<&'a AwsVpc>,
    /// Which of the network's subnets to use.
    pub subnet_index: usize,
    pub group: String,
    pub started_by: Option<String>,
    pub service_id: Option<String>,
    pub deployment_id: Option<String>,
    pub overrides: Value,
    pub tags: Vec<Value>,
    pub now: i64,
}

fn mac() -> String {
    let h = ids::hex(10);
    let b = h.as_bytes();
    let mut parts = vec!["0a".to_string()];
    for i in 0..5 {
        parts.push(String::from_utf8_lossy(&b[i * 2..i * 2 + 2]).into_owned());
    }
    parts.join(":")
}

/// Creates a task record in PROVISIONING (with its ENI, for awsvpc) and stores it.
pub(crate) fn new_task(tx: &Tx<'_>, scope: &Scope, n: NewTask<'_>) -> AwsResult<TaskRec> {
    let prefix = n
        .cluster
        .cluster_arn
        .split("cluster/")
        .next()
        .unwrap_or("")
        .to_string();
    let task_id = n.task_id.clone();
    let cname = &n.cluster.cluster_name;
    let task_arn = format!("{prefix}task/{cname}/{task_id}");
    let mut attachment = None;
    let mut az = None;
    if let Some(net) = n.network {
        let subnet = &net.subnets[n.subnet_index % net.subnets.len()];
        let attachment_id = ids::uuid();
        let eni = shared::create_eni(
            tx,
            scope,
            subnet,
            &net.security_groups,
            &format!("{prefix}attachment/{attachment_id}"),
            "interface",
            "amazon-ecs",
            None,
        )?;
        let dns_suffix = if scope.region == "us-east-1" {
            "ec2.internal".to_string()
        } else {
            format!("{}.compute.internal", scope.region)
        };
        az = Some(eni.availability_zone.clone());
        attachment = Some(EniAttachment {
            id: attachment_id,
            status: "PRECREATED".into(),
            subnet_id: eni.subnet_id.clone(),
            eni_id: eni.network_interface_id.clone(),
            mac: mac(),
            private_dns: format!(
                "ip-{}.{dns_suffix}",
                eni.private_ip_address.replace('.', "-")
            ),
            private_ip: eni.private_ip_address,
        });
    }
    let containers =
        n.td.containers()
            .iter()
            .map(|c| ContainerRec {
                container_arn: format!("{prefix}container/{cname}/{task_id}/{}", ids::uuid()),
                name: c["name"].as_str().unwrap_or("").to_string(),
                image: c["image"].as_str().unwrap_or("").to_string(),
                last_status: "PENDING".into(),
                exit_code: None,
                reason: None,
                runtime_id: None,
                bindings: Vec::new(),
                health_status: "UNKNOWN".into(),
                cpu: c
                    .get("cpu")
                    .map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .unwrap_or_else(|| "0".into()),
                memory: c
                    .get("memory")
                    .map(|v| v.to_string().trim_matches('"').to_string()),
                memory_reservation: c
                    .get("memoryReservation")
                    .map(|v| v.to_string().trim_matches('"').to_string()),
                essential: c["essential"].as_bool().unwrap_or(true),
                has_health_check: c.get("healthCheck").is_some(),
            })
            .collect();
    let overrides = if n.overrides.is_object() {
        n.overrides
    } else {
        json!({"containerOverrides": n.td.containers().iter().map(|c| json!({"name": c["name"]})).collect::<Vec<_>>(), "inferenceAcceleratorOverrides": []})
    };
    let t = TaskRec {
        task_id,
        task_arn,
        cluster_name: cname.clone(),
        cluster_arn: n.cluster.cluster_arn.clone(),
        task_definition_arn: n.td.arn().to_string(),
        group: n.group,
        started_by: n.started_by,
        service_id: n.service_id,
        deployment_id: n.deployment_id,
        launch_type: n.launch_type,
        platform_version: n.platform_version,
        cpu: n.td.str_field("cpu"),
        memory: n.td.str_field("memory"),
        last_status: "PROVISIONING".into(),
        desired_status: "RUNNING".into(),
        health_status: "UNKNOWN".into(),
        created_at: n.now,
        pull_started_at: None,
        pull_stopped_at: None,
        started_at: None,
        connectivity_at: None,
        stopping_at: None,
        execution_stopped_at: None,
        stopped_at: None,
        stop_code: None,
        stopped_reason: None,
        version: 1,
        attachment,
        availability_zone: az,
        containers,
        overrides,
        tags: n.tags,
        registrations: Vec::new(),
        draining: Vec::new(),
        lb_healthy: None,
        ever_running: false,
    };
    put_task(tx, scope, &t)?;
    Ok(t)
}

/// The launch type a call asks for (`launchType` xor `capacityProviderStrategy`), checked
/// against the task definition.
pub(crate) fn launch_type(
    input: &Input,
    cluster: &ClusterRec,
    td: &TaskDefRec,
) -> AwsResult<(String, Option<Value>)> {
    let lt = input.str("launchType");
    let cps = input
        .get("capacityProviderStrategy")
        .filter(|v| v.as_array().is_some_and(|a| !a.is_empty()));
    if lt.is_some() && cps.is_some() {
        return Err(invalid("Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again."));
    }
    let (launch, strategy) = match (lt, cps) {
        (Some(l), _) => (l.to_string(), None),
        (None, Some(s)) => ("FARGATE".to_string(), Some(s.clone())),
        (None, None) if !cluster.default_capacity_provider_strategy.is_empty() => (
            "FARGATE".to_string(),
            Some(json!(cluster.default_capacity_provider_strategy)),
        ),
        (None, None) => ("EC2".to_string(), None),
    };
    if !["EC2", "FARGATE", "EXTERNAL"].contains(&launch.as_str()) {
        return Err(invalid(format!("Invalid launch type: {launch}")));
    }
    if launch == "FARGATE" {
        let compat = td.def["compatibilities"]
            .as_array()
            .is_some_and(|a| a.iter().any(|c| c == "FARGATE"));
        if !compat {
            return Err(invalid(
                "Task definition does not support launch_type FARGATE.",
            ));
        }
    }
    Ok((launch, strategy))
}

fn usable_taskdef(tx: &Tx<'_>, scope: &Scope, reference: &str) -> AwsResult<TaskDefRec> {
    let td = super::taskdefs::resolve(tx, scope, reference)?
        .ok_or_else(|| invalid("TaskDefinition not found."))?;
    if td.status() != "ACTIVE" {
        return Err(client("TaskDefinition is inactive"));
    }
    Ok(td)
}

pub(crate) fn run(ctx: &Ctx<'_>, input: Input) -> AwsResult<Value> {
    let reference = input
        .req_str("taskDefinition", "InvalidParameterException")?
        .to_string();
    let count = input
        .i64("count")
        .map_err(|_| invalid("count must be an integer"))?
        .unwrap_or(1);
    if !(1..=10).contains(&count) {
        return Err(invalid("Count must be between 1 and 10."));
    }
    let mut tags = tags_of(&input, "tags")?;
    let managed = input
        .bool("enableECSManagedTags")
        .ok()
        .flatten()
        .unwrap_or(false);
    let now = now_millis();
    ctx.store().write(|tx| {
        let cluster = active_cluster(tx, &ctx.scope, &input)?;
        let td = usable_taskdef(tx, &ctx.scope, &reference)?;
        if input.str("propagateTags") == Some("TASK_DEFINITION") {
            tags.extend(td.tags.iter().cloned());
        }
        if managed {
            tags.push(json!({"key": "aws:ecs:clusterName", "value": cluster.cluster_name}));
        }
        let (launch, _) = launch_type(&input, &cluster, &td)?;
        let net = validate_network(tx, &ctx.scope, &td, input.get("networkConfiguration"))?;
        let overrides = validate_overrides(&td, input.get("overrides"))?;
        let group = input
            .string("group")
            .unwrap_or_else(|| format!("family:{}", td.family()));
        let mut tasks = Vec::new();
        for i in 0..count as usize {
            let t = new_task(
                tx,
                &ctx.scope,
                NewTask {
                    task_id: ids::hex(32),
                    cluster: &cluster,
                    td: &td,
                    launch_type: launch.clone(),
                    platform_version: (launch == "FARGATE").then(|| {
                        match input.str("platformVersion") {
                            Some(v) if v != "LATEST" => v.to_string(),
                            _ => "1.4.0".to_string(),
                        }
                    }),
                    network: net.as_ref(),
                    subnet_index: i,
                    group: group.clone(),
                    started_by: input.string("startedBy"),
                    service_id: None,
                    deployment_id: None,
                    overrides: overrides.clone(),
                    tags: tags.clone(),
                    now,
                },
            )?;
            tasks.push(t.render(true));
        }
        Ok(json!({"tasks": tasks, "failures": []}))
    })
}

pub(crate) fn start(ctx: &Ctx<'_>, input: Input) -> AwsResult<Value> {
    let reference = input
        .req_str("taskDefinition", "InvalidParameterException")?
        .to_string();
    let instances = input.str_list("containerInstances").unwrap_or_default();
    if instances.is_empty() {
        return Err(invalid("containerInstances can not be empty."));
    }
    ctx.store().read(|tx| {
        active_cluster(tx, &ctx.scope, &input)?;
        usable_taskdef(tx, &ctx.scope, &reference)?;
        // Portico has no container instances: every one named is missing.
        let failures: Vec<Value> = instances
            .iter()
            .map(|i| json!({"arn": i, "reason": "MISSING"}))
            .collect();
        Ok(json!({"tasks": [], "failures": failures}))
    })
}

fn task_id_of(reference: &str) -> &str {
    last_segment(reference)
}

pub(crate) fn stop(ctx: &Ctx<'_>, input: Input) -> AwsResult<Value> {
    let reference = input
        .req_str("task", "InvalidParameterException")?
        .to_string();
    let reason = input
        .string("reason")
        .unwrap_or_else(|| "Task stopped by user".into());
    ctx.store().write(|tx| {
        let cluster = active_cluster(tx, &ctx.scope, &input)?;
        let mut t = match tx.get_as::<TaskRec>(&ctx.scope, KIND_TASK, task_id_of(&reference))? {
            Some(t) if t.cluster_name == cluster.cluster_name => t,
            _ => return Err(invalid("The referenced task was not found.")),
        };
        if t.desired_status != "STOPPED" {
            t.request_stop("UserInitiated", &reason);
            put_task(tx, &ctx.scope, &t)?;
        }
        Ok(json!({"task": t.render(true)}))
    })
}

pub(crate) fn describe(ctx: &Ctx<'_>, input: Input) -> AwsResult<Value> {
    let refs = input.str_list("tasks").unwrap_or_default();
    if refs.is_empty() {
        return Err(invalid("Tasks cannot be empty."));
    }
    if refs.len() > 100 {
        return Err(invalid("Tasks cannot contain more than 100 items."));
    }
    let tags = includes(&input, "TAGS");
    ctx.store().read(|tx| {
        let cluster = active_cluster(tx, &ctx.scope, &input)?;
        let mut tasks = Vec::new();
        let mut failures = Vec::new();
        for r in refs {
            let id = task_id_of(&r);
            match tx.get_as::<TaskRec>(&ctx.scope, KIND_TASK, id)? {
                Some(t) if t.cluster_name == cluster.cluster_name => tasks.push(t.render(tags)),
                _ => {
                    let arn = if r.starts_with("arn:") {
                        r.clone()
                    } else {
                        ctx.rc
                            .arn("ecs", &format!("task/{}/{id}", cluster.cluster_name))
                    };
                    failures.push(json!({"arn": arn, "reason": "MISSING"}));
                }
            }
        }
        Ok(json!({"tasks": tasks, "failures": failures}))
    })
}

pub(crate) fn list(ctx: &Ctx<'_>, input: Input) -> AwsResult<Value> {
    let desired = input.str("desiredStatus").unwrap_or("RUNNING").to_string();
    if !["RUNNING", "PENDING", "STOPPED"].contains(&desired.as_str()) {
        return Err(invalid(format!("Invalid desiredStatus: {desired}")));
    }
    let arns = ctx.store().read(|tx| {
        let cluster = active_cluster(tx, &ctx.scope, &input)?;
        let service_id = match input.str("serviceName") {
            Some(s) => Some(
                find_service(tx, &ctx.scope, &cluster.cluster_name, s)?
                    .ok_or_else(service_not_found)?
                    .id,
            ),
            None => None,
        };
        let family = input.str("family");
        let started_by = input.str("startedBy");
        let lt = input.str("launchType");
        Ok(tasks_of_cluster(tx, &ctx.scope, &cluster.cluster_name)?
            .into_iter()
            .filter(|t| t.desired_status == desired)
            .filter(|t| service_id.is_none() || t.service_id == service_id)
            .filter(|t| {
                family.is_none_or(|f| {
                    t.task_definition_arn
                        .rsplit('/')
                        .next()
                        .and_then(|x| x.split(':').next())
                        == Some(f)
                })
            })
            .filter(|t| started_by.is_none_or(|s| t.started_by.as_deref() == Some(s)))
            .filter(|t| lt.is_none_or(|l| t.launch_type == l))
            .map(|t| t.task_arn)
            .collect::<Vec<_>>())
    })?;
    paginate(arns, &input, "taskArns")
}
