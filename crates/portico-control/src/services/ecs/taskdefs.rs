//! Task definitions: families and revisions, container-definition normalisation, Fargate
//! cpu/memory validation, deregistration and deletion.

use super::model::*;
use super::*;
use portico_core::time::now_millis;

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 255
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `"256"`, `"0.25 vCPU"`, `"1 vcpu"` -> CPU units.
pub(crate) fn parse_cpu(s: &str) -> Option<i64> {
    let t = s.trim().to_ascii_lowercase();
    if let Some(v) = t.strip_suffix("vcpu") {
        let f: f64 = v.trim().parse().ok()?;
        return Some((f * 1024.0).round() as i64);
    }
    t.parse().ok()
}

/// `"512"`, `"1GB"`, `"1 gb"` -> MiB.
pub(crate) fn parse_memory(s: &str) -> Option<i64> {
    let t = s.trim().to_ascii_lowercase();
    if let Some(v) = t.strip_suffix("gb") {
        let f: f64 = v.trim().parse().ok()?;
        return Some((f * 1024.0).round() as i64);
    }
    if let Some(v) = t.strip_suffix("mb") {
        return v.trim().parse().ok();
    }
    t.parse().ok()
}

/// Whether (cpu units, MiB) is a Fargate size.
pub(crate) fn fargate_size_ok(cpu: i64, mem: i64) -> bool {
    let range = |lo: i64, hi: i64, step: i64| mem >= lo && mem <= hi && (mem - lo) % step == 0;
    match cpu {
        256 => matches!(mem, 512 | 1024 | 2048),
        512 => range(1024, 4096, 1024),
        1024 => range(2048, 8192, 1024),
        2048 => range(4096, 16384, 1024),
        4096 => range(8192, 30720, 1024),
        8192 => range(16384, 61440, 4096),
        16384 => range(32768, 122880, 8192),
        _ => false,
    }
}

fn int_of(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Normalises one container definition as DescribeTaskDefinition returns it.
fn normalize_container(c: &Input, awsvpc: bool) -> AwsResult<Value> {
    let name = c.str("name").unwrap_or("");
    if name.is_empty() {
        return Err(client("Container.name should not be null or empty."));
    }
    if !valid_name(name) {
        return Err(client(format!(
            "Container name '{name}' can only contain letters, numbers, hyphens and underscores. Max length 255."
        )));
    }
    if c.str("image").unwrap_or("").is_empty() {
        return Err(client("Container.image should not be null or empty."));
    }
    let mut o = match &c.0 {
        Value::Object(m) => m.clone(),
        _ => return Err(client("Container definitions must be objects.")),
    };
    o.entry("cpu").or_insert(json!(0));
    o.entry("essential").or_insert(json!(true));
    for k in [
        "environment",
        "mountPoints",
        "volumesFrom",
        "systemControls",
    ] {
        o.entry(k).or_insert(json!([]));
    }
    let mut maps = Vec::new();
    let mut seen: Vec<(i64, String)> = Vec::new();
    for pm in c.list("portMappings").unwrap_or_default() {
        let cp = int_of(pm.get("containerPort"));
        let Some(cp) = cp.filter(|p| (1..=65535).contains(p)) else {
            return Err(client(format!(
                "Invalid 'containerPort' setting for container '{name}'."
            )));
        };
        let proto = pm.str("protocol").unwrap_or("tcp").to_string();
        if proto != "tcp" && proto != "udp" {
            return Err(client(format!(
                "Invalid 'protocol' setting for container '{name}'."
            )));
        }
        let hp = int_of(pm.get("hostPort"));
        if awsvpc && hp.is_some_and(|h| h != cp) {
            return Err(client(
                "When networkMode=awsvpc, the host ports and container ports in port mappings must match.",
            ));
        }
        if seen.iter().any(|(p, pr)| *p == cp && *pr == proto) {
            return Err(invalid(format!(
                "Container port {cp} is used in more than one port mapping for container {name}"
            )));
        }
        seen.push((cp, proto.clone()));
        let mut m = match pm.0 {
            Value::Object(m) => m,
            _ => Default::default(),
        };
        m.insert("containerPort".into(), json!(cp));
        m.insert(
            "hostPort".into(),
            json!(hp.unwrap_or(if awsvpc { cp } else { 0 })),
        );
        m.insert("protocol".into(), json!(proto));
        maps.push(Value::Object(m));
    }
    o.insert("portMappings".into(), json!(maps));
    if let Some(hc) = c.get("healthCheck") {
        let hc = Input(hc.clone());
        let cmd = hc.str_list("command").unwrap_or_default();
        if cmd.is_empty() {
            return Err(client(format!("Invalid 'healthCheck' setting for container '{name}'. 'command' must not be empty.")));
        }
        let get = |k: &str, d: i64, lo: i64, hi: i64| -> AwsResult<i64> {
            let v = int_of(hc.get(k)).unwrap_or(d);
            if v < lo || v > hi {
                return Err(client(format!(
                    "Invalid 'healthCheck' setting for container '{name}'. '{k}' must be between {lo} and {hi}."
                )));
            }
            Ok(v)
        };
        let mut h = json!({"command": cmd, "interval": get("interval", 30, 5, 300)?,
            "timeout": get("timeout", 5, 2, 60)?, "retries": get("retries", 3, 1, 10)?});
        if hc.has("startPeriod") {
            h["startPeriod"] = json!(get("startPeriod", 0, 0, 300)?);
        }
        o.insert("healthCheck".into(), h);
    }
    Ok(Value::Object(o))
}

pub(crate) fn register(ctx: &Ctx<'_>, input: Input) -> AwsResult<Value> {
    let family = input.req_str("family", "ClientException")?.to_string();
    if !valid_name(&family) {
        return Err(client("Family contains invalid characters. Up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed."));
    }
    let network_mode = input.str("networkMode").map(str::to_string);
    let awsvpc = network_mode.as_deref() == Some("awsvpc");
    if let Some(m) = &network_mode {
        if !["bridge", "host", "awsvpc", "none"].contains(&m.as_str()) {
            return Err(client(format!("Invalid networkMode '{m}'.")));
        }
    }
    let defs = input.list("containerDefinitions").unwrap_or_default();
    if defs.is_empty() {
        return Err(client("Container list cannot be empty."));
    }
    let mut containers = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for d in &defs {
        let c = normalize_container(d, awsvpc)?;
        let n = d.str("name").unwrap_or("").to_string();
        if names.contains(&n) {
            return Err(client(format!(
                "Duplicate container name '{n}' found in the task definition."
            )));
        }
        names.push(n);
        containers.push(c);
    }
    // Host ports are shared by every container of a task.
    let mut host_ports: Vec<(i64, String)> = Vec::new();
    for c in &containers {
        for pm in c["portMappings"].as_array().into_iter().flatten() {
            let hp = pm["hostPort"].as_i64().unwrap_or(0);
            let proto = pm["protocol"].as_str().unwrap_or("tcp").to_string();
            if hp == 0 {
                continue;
            }
            if host_ports.contains(&(hp, proto.clone())) {
                return Err(client(format!(
                    "{} host port '{hp}' is mapped multiple times in task.",
                    proto.to_ascii_uppercase()
                )));
            }
            host_ports.push((hp, proto));
        }
    }
    for c in &containers {
        let me = c["name"].as_str().unwrap_or("");
        for d in c["dependsOn"].as_array().into_iter().flatten() {
            let dep = d["containerName"].as_str().unwrap_or("");
            let cond = d["condition"].as_str().unwrap_or("");
            if !["START", "COMPLETE", "SUCCESS", "HEALTHY"].contains(&cond) {
                return Err(client(format!(
                    "Invalid 'dependsOn' setting for container '{me}'. Invalid condition '{cond}'."
                )));
            }
            let Some(target) = containers.iter().find(|x| x["name"].as_str() == Some(dep)) else {
                return Err(client(format!("Invalid 'dependsOn' setting for container '{me}'. Container '{dep}' does not exist in the task definition.")));
            };
            if cond == "HEALTHY" && target.get("healthCheck").is_none() {
                return Err(client(format!("Invalid 'dependsOn' setting for container '{me}'. Container '{dep}' must have a health check to use the HEALTHY condition.")));
            }
        }
    }
    if !containers
        .iter()
        .any(|c| c["essential"].as_bool().unwrap_or(true))
    {
        return Err(client(
            "A task definition must contain at least one essential container.",
        ));
    }
    let cpu_in = input.string("cpu");
    let mem_in = input.string("memory");
    let cpu = match &cpu_in {
        Some(s) => Some(parse_cpu(s).ok_or_else(|| {
            client(format!(
                "Invalid 'cpu' setting for task. '{s}' is not a valid value."
            ))
        })?),
        None => None,
    };
    let mem = match &mem_in {
        Some(s) => Some(parse_memory(s).ok_or_else(|| {
            client(format!(
                "Invalid 'memory' setting for task. '{s}' is not a valid value."
            ))
        })?),
        None => None,
    };
    let requires = input
        .str_list("requiresCompatibilities")
        .unwrap_or_default();
    for r in &requires {
        if !["EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES"].contains(&r.as_str()) {
            return Err(client(format!(
                "Invalid requiresCompatibilities value '{r}'."
            )));
        }
    }
    let fargate = requires.iter().any(|r| r == "FARGATE");
    let uses_awslogs = containers.iter().any(|c| {
        c.pointer("/logConfiguration/logDriver")
            .and_then(Value::as_str)
            == Some("awslogs")
    });
    let execution_role = input.str("executionRoleArn").map(str::to_string);
    if fargate {
        if !awsvpc {
            return Err(client(
                "Fargate only supports network mode \u{2018}awsvpc\u{2019}.",
            ));
        }
        let Some(c) = cpu else {
            return Err(client(
                "Fargate requires that 'cpu' be defined at the task level.",
            ));
        };
        let Some(m) = mem else {
            return Err(client(
                "Fargate requires that 'memory' be defined at the task level.",
            ));
        };
        if !fargate_size_ok(c, m) {
            return Err(client(format!(
                "No Fargate configuration exists for given values: {} CPU, {} memory. See the Amazon ECS documentation for the valid values.",
                cpu_in.as_deref().unwrap_or(""),
                mem_in.as_deref().unwrap_or("")
            )));
        }
        if uses_awslogs && execution_role.is_none() {
            return Err(client("Fargate requires task definition to have execution role ARN to support log driver awslogs."));
        }
    } else if mem.is_none() {
        for c in &containers {
            if c.get("memory").is_none() && c.get("memoryReservation").is_none() {
                return Err(client(format!(
                    "Invalid setting for container '{}'. At least one of 'memory' or 'memoryReservation' must be specified.",
                    c["name"].as_str().unwrap_or("")
                )));
            }
        }
    }
    if let Some(m) = mem {
        let sum: i64 = containers
            .iter()
            .map(|c| {
                int_of(c.get("memory"))
                    .or_else(|| int_of(c.get("memoryReservation")))
                    .unwrap_or(0)
            })
            .sum();
        if sum > m {
            return Err(client(format!("The sum of all container memory reservations ({sum} MiB) is greater than the task memory ({m} MiB).")));
        }
    }
    let tags = tags_of(&input, "tags")?;
    let fargate_ok = awsvpc && matches!((cpu, mem), (Some(c), Some(m)) if fargate_size_ok(c, m));
    let mut attrs = vec![json!({"name": "com.amazonaws.ecs.capability.docker-remote-api.1.18"})];
    if awsvpc {
        attrs.push(json!({"name": "ecs.capability.task-eni"}));
    }
    if uses_awslogs {
        attrs.push(json!({"name": "com.amazonaws.ecs.capability.logging-driver.awslogs"}));
        if execution_role.is_some() {
            attrs.push(json!({"name": "ecs.capability.execution-role-awslogs"}));
        }
    }
    if input.has("taskRoleArn") {
        attrs.push(json!({"name": "com.amazonaws.ecs.capability.task-iam-role"}));
    }
    ctx.store().write(|tx| {
        let rev = tx.next_counter(&format!(
            "ecs.taskdef/{}/{}/{family}",
            ctx.scope.account, ctx.scope.region
        ))?;
        let arn = ctx
            .rc
            .arn("ecs", &format!("task-definition/{family}:{rev}"));
        let mut def = json!({
            "taskDefinitionArn": arn, "containerDefinitions": containers, "family": family,
            "revision": rev, "volumes": input.get("volumes").cloned().unwrap_or(json!([])),
            "status": "ACTIVE", "requiresAttributes": attrs,
            "placementConstraints": input.get("placementConstraints").cloned().unwrap_or(json!([])),
            "compatibilities": if fargate_ok { json!(["EC2", "FARGATE"]) } else { json!(["EC2"]) },
            "registeredAt": ts(now_millis()),
            "registeredBy": ctx.rc.global_arn("iam", "root"),
        });
        if let Some(m) = &network_mode {
            def["networkMode"] = json!(m);
        }
        if !requires.is_empty() {
            def["requiresCompatibilities"] = json!(requires);
        }
        if let Some(c) = cpu {
            def["cpu"] = json!(c.to_string());
        }
        if let Some(m) = mem {
            def["memory"] = json!(m.to_string());
        }
        for k in [
            "taskRoleArn",
            "executionRoleArn",
            "pidMode",
            "ipcMode",
            "proxyConfiguration",
            "runtimePlatform",
            "ephemeralStorage",
            "inferenceAccelerators",
        ] {
            if let Some(v) = input.get(k) {
                def[k] = v.clone();
            }
        }
        let rec = TaskDefRec {
            def: def.clone(),
            tags: tags.clone(),
        };
        tx.put_as(
            &ctx.scope,
            KIND_TASKDEF,
            &format!("{family}:{rev}"),
            None,
            Some(&family),
            &rec,
        )?;
        Ok(json!({"taskDefinition": def, "tags": tags}))
    })
}

/// A task definition by `family`, `family:revision` or ARN (`family` = latest ACTIVE).
pub(crate) fn resolve(
    tx: &Tx<'_>,
    scope: &Scope,
    reference: &str,
) -> AwsResult<Option<TaskDefRec>> {
    let r = match reference.split_once(":task-definition/") {
        Some((_, x)) => x,
        None => reference,
    };
    if let Some((family, rev)) = r.split_once(':') {
        if rev.parse::<i64>().is_err() {
            return Ok(None);
        }
        return Ok(tx.get_as(scope, KIND_TASKDEF, &format!("{family}:{rev}"))?);
    }
    let mut best: Option<(i64, TaskDefRec)> = None;
    for rec in tx.find_by_name(scope, KIND_TASKDEF, r)? {
        let t: TaskDefRec = serde_json::from_value(rec.body).map_err(AwsError::internal)?;
        let rev = t.def["revision"].as_i64().unwrap_or(0);
        if t.status() == "ACTIVE" && best.as_ref().is_none_or(|(b, _)| rev > *b) {
            best = Some((rev, t));
        }
    }
    Ok(best.map(|(_, t)| t))
}

fn not_found() -> AwsError {
    client("Unable to describe task definition.")
}

pub(crate) fn describe(ctx: &Ctx<'_>, input: Input) -> AwsResult<Value> {
    let r = input
        .req_str("taskDefinition", "ClientException")?
        .to_string();
    let tags = includes(&input, "TAGS");
    ctx.store().read(|tx| {
        let t = resolve(tx, &ctx.scope, &r)?.ok_or_else(not_found)?;
        let mut o = json!({"taskDefinition": t.def});
        if tags {
            o["tags"] = json!(t.tags);
        }
        Ok(o)
    })
}

fn all(tx: &Tx<'_>, scope: &Scope) -> AwsResult<Vec<TaskDefRec>> {
    Ok(tx.list_as(scope, KIND_TASKDEF, None)?)
}

pub(crate) fn list(ctx: &Ctx<'_>, input: Input) -> AwsResult<Value> {
    let prefix = input.str("familyPrefix").unwrap_or("").to_string();
    let status = input.str("status").unwrap_or("ACTIVE").to_string();
    let desc = input.str("sort") == Some("DESC");
    let mut items: Vec<(String, i64, String)> = ctx.store().read(|tx| {
        Ok(all(tx, &ctx.scope)?
            .into_iter()
            .filter(|t| t.family().starts_with(&prefix) && t.status() == status)
            .map(|t| {
                (
                    t.family().to_string(),
                    t.def["revision"].as_i64().unwrap_or(0),
                    t.arn().to_string(),
                )
            })
            .collect())
    })?;
    items.sort();
    if desc {
        items.reverse();
    }
    paginate(
        items.into_iter().map(|x| x.2).collect(),
        &input,
        "taskDefinitionArns",
    )
}

pub(crate) fn list_families(ctx: &Ctx<'_>, input: Input) -> AwsResult<Value> {
    let prefix = input.str("familyPrefix").unwrap_or("").to_string();
    let status = input.str("status").unwrap_or("ACTIVE").to_string();
    let mut fams: Vec<String> = ctx.store().read(|tx| {
        let defs = all(tx, &ctx.scope)?;
        let mut out: Vec<String> = Vec::new();
        for t in &defs {
            let f = t.family();
            if !f.starts_with(&prefix) || out.iter().any(|o| o == f) {
                continue;
            }
            let any_active = defs
                .iter()
                .any(|d| d.family() == f && d.status() == "ACTIVE");
            let keep = match status.as_str() {
                "ALL" => true,
                "INACTIVE" => !any_active,
                _ => any_active,
            };
            if keep {
                out.push(f.to_string());
            }
        }
        Ok(out)
    })?;
    fams.sort();
    paginate(fams, &input, "families")
}

pub(crate) fn deregister(ctx: &Ctx<'_>, input: Input) -> AwsResult<Value> {
    let r = input
        .req_str("taskDefinition", "ClientException")?
        .to_string();
    let id = r
        .split_once(":task-definition/")
        .map_or(r.as_str(), |(_, x)| x);
    if !id.contains(':') {
        return Err(client("Invalid revision number. Number: undefined"));
    }
    ctx.store().write(|tx| {
        let mut t: TaskDefRec = tx
            .get_as(&ctx.scope, KIND_TASKDEF, id)?
            .ok_or_else(not_found)?;
        if t.status() == "ACTIVE" {
            t.def["status"] = json!("INACTIVE");
            t.def["deregisteredAt"] = ts(now_millis());
            tx.put_as(&ctx.scope, KIND_TASKDEF, id, None, Some(t.family()), &t)?;
        }
        Ok(json!({"taskDefinition": t.def}))
    })
}

pub(crate) fn delete(ctx: &Ctx<'_>, input: Input) -> AwsResult<Value> {
    let refs = input.str_list("taskDefinitions").unwrap_or_default();
    ctx.store().write(|tx| {
        let mut done = Vec::new();
        let mut failures = Vec::new();
        for r in refs {
            let id = r.split_once(":task-definition/").map_or(r.as_str(), |(_, x)| x).to_string();
            let arn = ctx.rc.arn("ecs", &format!("task-definition/{id}"));
            match tx.get_as::<TaskDefRec>(&ctx.scope, KIND_TASKDEF, &id)? {
                Some(mut t) if t.status() == "INACTIVE" => {
                    t.def["status"] = json!("DELETE_IN_PROGRESS");
                    tx.put_as(&ctx.scope, KIND_TASKDEF, &id, None, Some(t.family()), &t)?;
                    done.push(t.def);
                }
                Some(t) if t.status() == "DELETE_IN_PROGRESS" => done.push(t.def),
                Some(_) => failures.push(json!({"arn": arn, "reason": "The specified task definition is still in ACTIVE status. Please deregister the target and try again."})),
                None => failures.push(json!({"arn": arn, "reason": "The specified task definition does not exist. Specify a valid account, family, revision and try again."})),
            }
        }
        Ok(json!({"taskDefinitions": done, "failures": failures}))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_cpu("0.25 vCPU"), Some(256));
        assert_eq!(parse_cpu("1 vcpu"), Some(1024));
        assert_eq!(parse_memory("1GB"), Some(1024));
        assert_eq!(parse_memory("0.5 GB"), Some(512));
        assert!(fargate_size_ok(256, 512));
        assert!(!fargate_size_ok(256, 4096));
        assert!(fargate_size_ok(512, 3072));
        assert!(fargate_size_ok(8192, 20480));
        assert!(!fargate_size_ok(8192, 17408));
        assert!(!fargate_size_ok(300, 512));
    }
}
