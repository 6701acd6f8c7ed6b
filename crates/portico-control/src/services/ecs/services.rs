//! Services: create/describe/list/update/delete. A service is desired state only; the
//! scheduler (`reconcile/ecs/scheduler.rs`) starts and stops its tasks.

use super::model::*;
use super::tasks::{launch_type, validate_network};
use super::*;
use portico_core::time::now_millis;
use rand::Rng;

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 255
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub(crate) fn deployment_id() -> String {
    let mut rng = rand::thread_rng();
    let digits: String = (0..19)
        .map(|i| {
            let d = if i == 0 {
                rng.gen_range(1..10)
            } else {
                rng.gen_range(0..10)
            };
            char::from(b'0' + d as u8)
        })
        .collect();
    format!("ecs-svc/{digits}")
}

fn service_not_active() -> AwsError {
    AwsError::bad("ServiceNotActiveException", "Service was not ACTIVE.")
}

fn deployment_config(base: Option<&Value>, input: Option<&Value>) -> AwsResult<Value> {
    let mut c = base.cloned().unwrap_or_else(|| {
        json!({"deploymentCircuitBreaker": {"enable": false, "rollback": false},
               "maximumPercent": 200, "minimumHealthyPercent": 100})
    });
    if let Some(Value::Object(m)) = input {
        for (k, v) in m {
            c[k] = v.clone();
        }
    }
    let max = c["maximumPercent"].as_i64().unwrap_or(200);
    let min = c["minimumHealthyPercent"].as_i64().unwrap_or(100);
    if !(0..=100).contains(&min) {
        return Err(invalid("minimumHealthyPercent must be between 0 and 100."));
    }
    if max < 100 && min >= 100 || max < 0 {
        return Err(invalid("The maximumPercent and minimumHealthyPercent values are not valid for the service's deployment configuration."));
    }
    Ok(c)
}

/// What DescribeTargetGroups says of one target group: (target type, load balancer count).
/// Returns a boxed future: Control::call leads back into this module's dispatch, and a named
/// `dyn Future + Send` breaks that cycle for the compiler.
fn target_group_facts<'a>(
    ctx: &'a Ctx<'a>,
    arn: &'a str,
) -> crate::BoxFuture<'a, AwsResult<Option<(String, usize)>>> {
    Box::pin(async move {
        let out = ctx
            .control
            .call(
                ctx.rc,
                Service::Elbv2,
                "DescribeTargetGroups",
                Input(json!({"TargetGroupArns": [arn]})),
            )
            .await;
        match out {
            Ok(v) => {
                let tgs = v
                    .pointer("/TargetGroups")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let Some(tg) = tgs.first() else {
                    return Ok(None);
                };
                let lbs = match tg.get("LoadBalancerArns") {
                    Some(Value::Array(a)) => a.len(),
                    Some(Value::String(s)) if !s.is_empty() => 1,
                    _ => 0,
                };
                Ok(Some((
                    tg.get("TargetType")
                        .and_then(Value::as_str)
                        .unwrap_or("instance")
                        .to_string(),
                    lbs,
                )))
            }
            Err(e) if e.status < 500 => Ok(None),
            Err(e) => Err(e),
        }
    })
}

/// Validates `loadBalancers` against the task definition and ELBv2.
async fn check_load_balancers(ctx: &Ctx<'_>, lbs: &[Value], td: &TaskDefRec) -> AwsResult<()> {
    for lb in lbs {
        let lb = Input(lb.clone());
        let Some(tg) = lb.str("targetGroupArn") else {
            return Err(invalid("Load balancers must specify a targetGroupArn (Classic Load Balancers are not supported by Portico)."));
        };
        let name = lb.str("containerName").unwrap_or("");
        let port = lb.i64("containerPort").ok().flatten().unwrap_or(0);
        let containers = td.containers();
        let Some(c) = containers.iter().find(|c| c["name"] == name) else {
            return Err(invalid(format!(
                "The container {name} does not exist in the task definition."
            )));
        };
        let has_port = c["portMappings"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["containerPort"].as_i64() == Some(port));
        if !has_port {
            return Err(invalid(format!(
                "The container {name} did not have a container port {port} defined."
            )));
        }
        match target_group_facts(ctx, tg).await? {
            None => {
                return Err(invalid(format!(
                    "The target group with targetGroupArn {tg} does not exist."
                )))
            }
            Some((_, 0)) => {
                return Err(invalid(format!(
                    "The target group with targetGroupArn {tg} does not have an associated load balancer."
                )))
            }
            Some((tt, _)) if tt != "ip" && td.network_mode() == "awsvpc" => {
                return Err(invalid(format!(
                    "The provided target group {tg} has target type {tt}, which is incompatible with the awsvpc network mode specified in the task definition."
                )))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn normalized_netconf(
    netconf: Option<&Value>,
    net: &Option<super::tasks::AwsVpc>,
) -> Option<Value> {
    let net = net.as_ref()?;
    let assign = netconf
        .and_then(|n| n.pointer("/awsvpcConfiguration/assignPublicIp"))
        .and_then(Value::as_str)
        .unwrap_or("DISABLED");
    Some(json!({"awsvpcConfiguration": {"subnets": net.subnets,
        "securityGroups": net.security_groups, "assignPublicIp": assign}}))
}

pub(crate) async fn create(ctx: &Ctx<'_>, input: Input) -> AwsResult<Value> {
    let name = input
        .req_str("serviceName", "InvalidParameterException")?
        .to_string();
    if !valid_name(&name) {
        return Err(invalid("Service name can only contain letters, numbers, hyphens and underscores. Max length 255."));
    }
    let strategy = input
        .str("schedulingStrategy")
        .unwrap_or("REPLICA")
        .to_string();
    if strategy != "REPLICA" && strategy != "DAEMON" {
        return Err(invalid(format!("Invalid schedulingStrategy: {strategy}")));
    }
    let desired = match input.i64("desiredCount") {
        Ok(Some(n)) if n >= 0 => n,
        Ok(Some(_)) => return Err(invalid("Invalid desiredCount: must be 0 or greater.")),
        Ok(None) if strategy == "REPLICA" => {
            return Err(invalid("The desired count must be specified for services using the REPLICA scheduling strategy."))
        }
        Ok(None) => 0,
        Err(_) => return Err(invalid("desiredCount must be an integer.")),
    };
    let controller = input
        .get("deploymentController")
        .cloned()
        .unwrap_or(json!({"type": "ECS"}));
    if controller["type"] != "ECS" {
        return Err(invalid(
            "Portico supports only the ECS deployment controller.",
        ));
    }
    let td_ref = input
        .req_str("taskDefinition", "InvalidParameterException")?
        .to_string();
    let lbs = input
        .get("loadBalancers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let grace = input
        .i64("healthCheckGracePeriodSeconds")
        .map_err(|_| invalid("healthCheckGracePeriodSeconds must be an integer."))?;
    if grace.is_some() && lbs.is_empty() {
        return Err(invalid(
            "Health check grace period is only valid for services configured to use load balancers",
        ));
    }
    let dc = deployment_config(None, input.get("deploymentConfiguration"))?;
    let tags = tags_of(&input, "tags")?;
    // Read-only checks (cluster, task definition) before asking ELBv2 about target groups.
    let td = ctx.store().read(|tx| {
        active_cluster(tx, &ctx.scope, &input)?;
        let td = super::taskdefs::resolve(tx, &ctx.scope, &td_ref)?
            .ok_or_else(|| invalid("TaskDefinition not found."))?;
        if td.status() != "ACTIVE" {
            return Err(client("TaskDefinition is inactive"));
        }
        Ok(td)
    })?;
    if input.has("role") && td.network_mode() == "awsvpc" {
        return Err(invalid(
            "You cannot specify an IAM role for services that require a service linked role.",
        ));
    }
    check_load_balancers(ctx, &lbs, &td).await?;
    let now = now_millis();
    ctx.store().write(|tx| {
        let cluster = active_cluster(tx, &ctx.scope, &input)?;
        if let Some(s) = find_service(tx, &ctx.scope, &cluster.cluster_name, &name)? {
            if s.status != "INACTIVE" {
                return Err(invalid("Creation of service was not idempotent."));
            }
        }
        let (launch, cps) = launch_type(&input, &cluster, &td)?;
        if strategy == "DAEMON" && launch == "FARGATE" {
            return Err(invalid(
                "The daemon scheduling strategy is not supported with the FARGATE launch type.",
            ));
        }
        let net = validate_network(tx, &ctx.scope, &td, input.get("networkConfiguration"))?;
        let netconf = normalized_netconf(input.get("networkConfiguration"), &net);
        let pv = (launch == "FARGATE")
            .then(|| input.str("platformVersion").unwrap_or("LATEST").to_string());
        let dep = deployment_id();
        let s = ServiceRec {
            id: portico_core::ids::uuid(),
            service_arn: ctx
                .rc
                .arn("ecs", &format!("service/{}/{name}", cluster.cluster_name)),
            service_name: name.clone(),
            cluster_name: cluster.cluster_name.clone(),
            cluster_arn: cluster.cluster_arn.clone(),
            status: "ACTIVE".into(),
            desired_count: desired,
            launch_type: cps.is_none().then(|| launch.clone()),
            capacity_provider_strategy: cps.clone(),
            platform_version: pv.clone(),
            task_definition: td.arn().to_string(),
            deployment_configuration: dc,
            deployments: vec![Deployment {
                id: dep.clone(),
                status: "PRIMARY".into(),
                task_definition: td.arn().to_string(),
                desired_count: desired,
                failed_tasks: 0,
                created_at: now,
                updated_at: now,
                launch_type: cps.is_none().then(|| launch.clone()),
                capacity_provider_strategy: cps,
                platform_version: pv,
                network_configuration: netconf.clone(),
                rollout_state: "IN_PROGRESS".into(),
                rollout_state_reason: format!("ECS deployment {dep} in progress."),
            }],
            events: Vec::new(),
            load_balancers: lbs,
            network_configuration: netconf,
            health_check_grace_period_seconds: grace,
            scheduling_strategy: strategy,
            deployment_controller: controller,
            created_at: now,
            created_by: ctx.rc.global_arn("iam", "root"),
            enable_ecs_managed_tags: input
                .bool("enableECSManagedTags")
                .ok()
                .flatten()
                .unwrap_or(false),
            propagate_tags: input.str("propagateTags").unwrap_or("NONE").to_string(),
            enable_execute_command: input
                .bool("enableExecuteCommand")
                .ok()
                .flatten()
                .unwrap_or(false),
            tags,
            role_arn: ctx.rc.global_arn(
                "iam",
                "role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS",
            ),
            placement_constraints: input
                .get("placementConstraints")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            placement_strategy: input
                .get("placementStrategy")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            steady: false,
            backoff_until: None,
            next_subnet: 0,
            counted_failures: Vec::new(),
            last_completed: None,
        };
        put_service(tx, &ctx.scope, &s)?;
        Ok(json!({"service": s.render(&[], true)}))
    })
}

pub(crate) fn describe(ctx: &Ctx<'_>, input: Input) -> AwsResult<Value> {
    let names = input.str_list("services").unwrap_or_default();
    if names.is_empty() {
        return Err(invalid("Services cannot be empty."));
    }
    if names.len() > 10 {
        return Err(invalid("Services cannot contain more than 10 items."));
    }
    let tags = includes(&input, "TAGS");
    ctx.store().read(|tx| {
        let cluster = active_cluster(tx, &ctx.scope, &input)?;
        let tasks = tasks_of_cluster(tx, &ctx.scope, &cluster.cluster_name)?;
        let mut services = Vec::new();
        let mut failures = Vec::new();
        for n in names {
            match find_service(tx, &ctx.scope, &cluster.cluster_name, &n)? {
                Some(s) => services.push(s.render(&tasks, tags)),
                None => failures.push(json!({
                    "arn": ctx.rc.arn("ecs", &format!("service/{}/{}", cluster.cluster_name, last_segment(&n))),
                    "reason": "MISSING"})),
            }
        }
        Ok(json!({"services": services, "failures": failures}))
    })
}

pub(crate) fn list(ctx: &Ctx<'_>, input: Input) -> AwsResult<Value> {
    let lt = input.str("launchType").map(str::to_string);
    let st = input.str("schedulingStrategy").map(str::to_string);
    let arns = ctx.store().read(|tx| {
        let cluster = active_cluster(tx, &ctx.scope, &input)?;
        Ok(services_of_cluster(tx, &ctx.scope, &cluster.cluster_name)?
            .into_iter()
            .filter(|s| s.status == "ACTIVE")
            .filter(|s| lt.is_none() || s.launch_type == lt)
            .filter(|s| st.as_ref().is_none_or(|x| *x == s.scheduling_strategy))
            .map(|s| s.service_arn)
            .collect::<Vec<_>>())
    })?;
    paginate(arns, &input, "serviceArns")
}

pub(crate) async fn update(ctx: &Ctx<'_>, input: Input) -> AwsResult<Value> {
    let sref = input
        .req_str("service", "InvalidParameterException")?
        .to_string();
    let desired = match input.i64("desiredCount") {
        Ok(Some(n)) if n < 0 => return Err(invalid("Invalid desiredCount: must be 0 or greater.")),
        Ok(x) => x,
        Err(_) => return Err(invalid("desiredCount must be an integer.")),
    };
    let grace = input
        .i64("healthCheckGracePeriodSeconds")
        .map_err(|_| invalid("healthCheckGracePeriodSeconds must be an integer."))?;
    let force = input
        .bool("forceNewDeployment")
        .ok()
        .flatten()
        .unwrap_or(false);
    // Checks that need ELBv2 happen before the write.
    let (svc, new_td) = ctx.store().read(|tx| {
        let cluster = active_cluster(tx, &ctx.scope, &input)?;
        let s = find_service(tx, &ctx.scope, &cluster.cluster_name, &sref)?
            .ok_or_else(service_not_found)?;
        if s.status != "ACTIVE" {
            return Err(service_not_active());
        }
        let td = match input.str("taskDefinition") {
            Some(r) => {
                let td = super::taskdefs::resolve(tx, &ctx.scope, r)?
                    .ok_or_else(|| invalid("TaskDefinition not found."))?;
                if td.status() != "ACTIVE" {
                    return Err(client("TaskDefinition is inactive"));
                }
                td
            }
            None => super::taskdefs::resolve(tx, &ctx.scope, &s.task_definition)?
                .ok_or_else(|| invalid("TaskDefinition not found."))?,
        };
        Ok((s, td))
    })?;
    let lbs = input
        .get("loadBalancers")
        .and_then(Value::as_array)
        .cloned();
    if let Some(l) = &lbs {
        check_load_balancers(ctx, l, &new_td).await?;
    } else if input.has("taskDefinition") {
        check_load_balancers(ctx, &svc.load_balancers, &new_td).await?;
    }
    let dc_in = input.get("deploymentConfiguration").cloned();
    let now = now_millis();
    ctx.store().write(|tx| {
        let cluster = active_cluster(tx, &ctx.scope, &input)?;
        let mut s = find_service(tx, &ctx.scope, &cluster.cluster_name, &sref)?
            .ok_or_else(service_not_found)?;
        if s.status != "ACTIVE" || s.id != svc.id {
            return Err(service_not_active());
        }
        if let Some(g) = grace {
            let lb_count = lbs.as_ref().map_or(s.load_balancers.len(), Vec::len);
            if lb_count == 0 {
                return Err(invalid("Health check grace period is only valid for services configured to use load balancers"));
            }
            s.health_check_grace_period_seconds = Some(g);
        }
        if dc_in.is_some() {
            s.deployment_configuration =
                deployment_config(Some(&s.deployment_configuration), dc_in.as_ref())?;
        }
        let mut redeploy = force;
        if new_td.arn() != s.task_definition {
            let (launch, _) = launch_type(
                &Input(json!({"launchType": s.launch_type})),
                &cluster,
                &new_td,
            )?;
            let _ = launch;
            s.task_definition = new_td.arn().to_string();
            redeploy = true;
        }
        if input.has("networkConfiguration") {
            let net = validate_network(tx, &ctx.scope, &new_td, input.get("networkConfiguration"))?;
            let nc = normalized_netconf(input.get("networkConfiguration"), &net);
            if nc != s.network_configuration {
                s.network_configuration = nc;
                redeploy = true;
            }
        } else if redeploy {
            // The new task definition must still fit the service's network configuration.
            validate_network(tx, &ctx.scope, &new_td, s.network_configuration.as_ref())?;
        }
        if let Some(l) = lbs {
            if l != s.load_balancers {
                s.load_balancers = l;
                redeploy = true;
            }
        }
        if let Some(pv) = input.str("platformVersion") {
            if s.platform_version.as_deref() != Some(pv) {
                s.platform_version = Some(pv.to_string());
                redeploy = true;
            }
        }
        if let Some(d) = desired {
            s.desired_count = d;
        }
        if redeploy {
            for d in &mut s.deployments {
                if d.status == "PRIMARY" {
                    d.status = "ACTIVE".into();
                    d.updated_at = now;
                }
            }
            let id = deployment_id();
            s.deployments.insert(
                0,
                Deployment {
                    id: id.clone(),
                    status: "PRIMARY".into(),
                    task_definition: s.task_definition.clone(),
                    desired_count: s.desired_count,
                    failed_tasks: 0,
                    created_at: now,
                    updated_at: now,
                    launch_type: s.launch_type.clone(),
                    capacity_provider_strategy: s.capacity_provider_strategy.clone(),
                    platform_version: s.platform_version.clone(),
                    network_configuration: s.network_configuration.clone(),
                    rollout_state: "IN_PROGRESS".into(),
                    rollout_state_reason: format!("ECS deployment {id} in progress."),
                },
            );
            s.backoff_until = None;
        }
        for d in &mut s.deployments {
            if d.status == "PRIMARY" && d.desired_count != s.desired_count {
                d.desired_count = s.desired_count;
                d.updated_at = now;
            }
        }
        s.steady = false;
        put_service(tx, &ctx.scope, &s)?;
        let tasks = tasks_of_cluster(tx, &ctx.scope, &cluster.cluster_name)?;
        Ok(json!({"service": s.render(&tasks, false)}))
    })
}

pub(crate) fn delete(ctx: &Ctx<'_>, input: Input) -> AwsResult<Value> {
    let sref = input
        .req_str("service", "InvalidParameterException")?
        .to_string();
    let force = input.bool("force").ok().flatten().unwrap_or(false);
    let now = now_millis();
    ctx.store().write(|tx| {
        let cluster = active_cluster(tx, &ctx.scope, &input)?;
        let mut s = find_service(tx, &ctx.scope, &cluster.cluster_name, &sref)?
            .ok_or_else(service_not_found)?;
        if s.status != "ACTIVE" {
            return Err(service_not_active());
        }
        if s.desired_count > 0 && !force {
            return Err(invalid(
                "The service cannot be stopped while it is scaled above 0.",
            ));
        }
        s.status = "DRAINING".into();
        s.desired_count = 0;
        for d in &mut s.deployments {
            d.desired_count = 0;
            d.updated_at = now;
        }
        s.steady = false;
        put_service(tx, &ctx.scope, &s)?;
        let tasks = tasks_of_cluster(tx, &ctx.scope, &cluster.cluster_name)?;
        Ok(json!({"service": s.render(&tasks, false)}))
    })
}
