//! The ECS reconciler: runs the service scheduler ([`scheduler`]) and walks every task through
//! its lifecycle against the runtime (`portico-runtime`):
//!
//! PROVISIONING (ENI attached) → PENDING (runtime launch; image resolved, processes spawned,
//! ports accept connections) → ACTIVATING (targets registered, address book bound) → RUNNING
//! → [desiredStatus STOPPED] → DEACTIVATING (targets deregistered) → STOPPING (SIGTERM, then
//! SIGKILL after stopTimeout) → DEPROVISIONING (address unbound, ENI deleted) → STOPPED.
//!
//! Each change to a task is one small transaction guarded by the task's `version`, so a
//! concurrent StopTask is never overwritten. Container output goes to CloudWatch Logs through
//! `Control::call(Service::Logs, …)` for containers with the awslogs driver.

mod scheduler;

use crate::services::ec2::shared;
use crate::services::ecs::model::*;
use crate::services::ecs::tasks::{new_task, AwsVpc, NewTask};
use crate::services::ecs::{put_service, put_task, taskdefs};
use crate::Control;
use parking_lot::Mutex;
use portico_core::{ids, time::now_millis, AwsResult, Input, RequestContext, Service};
use portico_runtime::{
    Condition, ContainerSpec, ContainerState, Health, HealthCheckSpec, LogLine, LogSink, TaskPhase,
    TaskSpec, TaskStatus,
};
use portico_store::Scope;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Stopped tasks stay visible this long.
const STOPPED_TTL_MS: i64 = 3_600_000;

/// Starts the ECS reconciler and its log shipper.
pub fn spawn(control: &Control) {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(ship_logs(control.clone(), rx));
    let state = Arc::new(Driver {
        logs: tx,
        bound: Mutex::new(HashMap::new()),
        reaped: std::sync::atomic::AtomicBool::new(false),
    });
    super::spawn_loop_on(
        control,
        "ecs",
        Duration::from_millis(250),
        &["ecs.", "elbv2."],
        move |c| {
            let st = state.clone();
            async move { st.pass(&c).await }
        },
    );
}

/// One line bound for CloudWatch Logs.
struct Shipment {
    scope: Scope,
    group: String,
    stream: String,
    create_group: bool,
    line: LogLine,
}

struct Driver {
    logs: mpsc::UnboundedSender<Shipment>,
    /// Address-book entries this reconciler made, per task.
    bound: Mutex<HashMap<String, Vec<(IpAddr, u16)>>>,
    /// Leftovers of a previous run have been looked for.
    reaped: std::sync::atomic::AtomicBool,
}

fn rc_of(scope: &Scope) -> RequestContext {
    RequestContext::new(&scope.account, &scope.region)
}

impl Driver {
    async fn pass(&self, c: &Control) {
        if let Err(e) = self.schedule(c) {
            tracing::warn!(error = %e, cause = ?e.cause, "ecs scheduling pass failed");
        }
        let tasks = match c.store().read(|tx| Ok(tx.list_all(KIND_TASK)?)) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "ecs: cannot read tasks");
                return;
            }
        };
        if !self.reaped.swap(true, std::sync::atomic::Ordering::Relaxed) {
            // First pass after start: anything still running for a task we know from a previous
            // run (a grandchild that outlived a `kill -9`) goes now.
            let ids: Vec<String> = tasks
                .iter()
                .filter_map(|r| r.body.get("taskId").and_then(Value::as_str))
                .map(str::to_string)
                .collect();
            let n = c.runtime().reap_strays(&ids);
            if n > 0 {
                tracing::info!(count = n, "killed processes left over from a previous run");
            }
        }
        let mut live = HashSet::new();
        for rec in tasks {
            let Ok(t) = serde_json::from_value::<TaskRec>(rec.body) else {
                continue;
            };
            if t.last_status != "STOPPED" {
                live.insert(t.task_id.clone());
            }
            if let Err(e) = self.drive(c, &rec.scope, t).await {
                tracing::warn!(error = %e, cause = ?e.cause, "ecs task step failed");
            }
        }
        // Processes of tasks that are no longer in the store (a reset) are stopped and forgotten.
        for id in c.runtime().task_ids() {
            if !live.contains(&id) {
                match c.runtime().status(&id) {
                    Some(st) if !st.all_exited() => {
                        if !st.stopping {
                            c.runtime().stop(&id);
                        }
                    }
                    _ => c.runtime().forget(&id),
                }
            }
        }
        // Anything bound for a task that is gone (reset, deleted) is unbound.
        let stale: Vec<String> = self
            .bound
            .lock()
            .keys()
            .filter(|k| !live.contains(*k))
            .cloned()
            .collect();
        for id in stale {
            self.unbind(c, &id);
        }
    }

    fn unbind(&self, c: &Control, task_id: &str) {
        if let Some(list) = self.bound.lock().remove(task_id) {
            for (ip, port) in list {
                c.dataplane().addresses.unbind(ip, port);
            }
        }
    }

    /// Runs the scheduler for every ACTIVE/DRAINING service, one transaction per service.
    fn schedule(&self, c: &Control) -> AwsResult<()> {
        let services = c.store().read(|tx| Ok(tx.list_all(KIND_SERVICE)?))?;
        let now = now_millis();
        let scale = time_scale(c);
        for rec in services {
            let Ok(s) = serde_json::from_value::<ServiceRec>(rec.body) else {
                continue;
            };
            if s.status == "INACTIVE" {
                continue;
            }
            let scope = rec.scope.clone();
            // A dry run first: a write would wake every reconciler, so write only on change.
            let changes = c.store().read(|tx| {
                let tasks: Vec<scheduler::TaskView> = tx
                    .list_as::<TaskRec>(&scope, KIND_TASK, Some(&s.cluster_name))?
                    .iter()
                    .filter(|t| t.service_id.as_deref() == Some(s.id.as_str()))
                    .map(scheduler::TaskView::of)
                    .collect();
                let mut dry = s.clone();
                let plan = scheduler::step(&mut dry, &tasks, now, scale, &mut |_| String::new());
                Ok(!plan.is_empty() || !same_ignoring_ids(&dry, &s))
            })?;
            if !changes {
                continue;
            }
            c.store().write(|tx| {
                let Some(mut svc) = tx.get_as::<ServiceRec>(&scope, KIND_SERVICE, &s.id)? else {
                    return Ok(());
                };
                let before = svc.clone();
                let tasks: Vec<TaskRec> = tx
                    .list_as::<TaskRec>(&scope, KIND_TASK, Some(&svc.cluster_name))?
                    .into_iter()
                    .filter(|t| t.service_id.as_deref() == Some(svc.id.as_str()))
                    .collect();
                let views: Vec<scheduler::TaskView> =
                    tasks.iter().map(scheduler::TaskView::of).collect();
                let plan = scheduler::step(&mut svc, &views, now, scale, &mut |k| match k {
                    scheduler::IdKind::Task => ids::hex(32),
                    scheduler::IdKind::Deployment => {
                        crate::services::ecs::services::deployment_id()
                    }
                });
                if !plan.start.is_empty() {
                    let cluster: ClusterRec = tx
                        .get_as(&scope, KIND_CLUSTER, &svc.cluster_name)?
                        .ok_or_else(|| {
                        portico_core::AwsError::internal("service without cluster")
                    })?;
                    let primary = svc.primary().cloned().ok_or_else(|| {
                        portico_core::AwsError::internal("service without primary deployment")
                    })?;
                    let td = taskdefs::resolve(tx, &scope, &primary.task_definition)?.ok_or_else(
                        || portico_core::AwsError::internal("deployment's task definition is gone"),
                    )?;
                    let net = primary
                        .network_configuration
                        .as_ref()
                        .and_then(|n| n.get("awsvpcConfiguration"))
                        .map(|a| AwsVpc {
                            subnets: str_list(a.get("subnets")),
                            security_groups: str_list(a.get("securityGroups")),
                        })
                        .filter(|n| !n.subnets.is_empty());
                    let mut tags = match svc.propagate_tags.as_str() {
                        "SERVICE" => svc.tags.clone(),
                        "TASK_DEFINITION" => td.tags.clone(),
                        _ => Vec::new(),
                    };
                    if svc.enable_ecs_managed_tags {
                        tags.push(json!({"key": "aws:ecs:clusterName", "value": svc.cluster_name}));
                        tags.push(json!({"key": "aws:ecs:serviceName", "value": svc.service_name}));
                    }
                    for id in &plan.start {
                        let idx = svc.next_subnet;
                        svc.next_subnet = svc.next_subnet.wrapping_add(1);
                        new_task(
                            tx,
                            &scope,
                            NewTask {
                                task_id: id.clone(),
                                cluster: &cluster,
                                td: &td,
                                launch_type: primary
                                    .launch_type
                                    .clone()
                                    .unwrap_or_else(|| "FARGATE".into()),
                                platform_version: primary.platform_version.as_ref().map(|v| {
                                    if v == "LATEST" {
                                        "1.4.0".to_string()
                                    } else {
                                        v.clone()
                                    }
                                }),
                                network: net.as_ref(),
                                subnet_index: idx,
                                group: format!("service:{}", svc.service_name),
                                started_by: Some(primary.id.clone()),
                                service_id: Some(svc.id.clone()),
                                deployment_id: Some(primary.id.clone()),
                                overrides: Value::Null,
                                tags: tags.clone(),
                                now,
                            },
                        )?;
                    }
                }
                for (id, reason) in &plan.stop {
                    if let Some(mut t) = tasks.iter().find(|t| t.task_id == *id).cloned() {
                        t.request_stop("ServiceSchedulerInitiated", reason);
                        put_task(tx, &scope, &t)?;
                    }
                }
                if svc != before {
                    put_service(tx, &scope, &svc)?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Moves one task as far along its lifecycle as the world allows right now.
    async fn drive(&self, c: &Control, scope: &Scope, mut t: TaskRec) -> AwsResult<()> {
        let now = now_millis();
        if t.last_status == "STOPPED" {
            if t.stopped_at.is_some_and(|s| now - s > STOPPED_TTL_MS) {
                c.store().write(|tx| {
                    tx.delete(scope, KIND_TASK, &t.task_id)?;
                    Ok(())
                })?;
            }
            return Ok(());
        }
        let version = t.version;
        let rt = c.runtime().status(&t.task_id);
        let mut service_events: Vec<String> = Vec::new();
        let mut delete_eni = None;
        if t.desired_status == "RUNNING" {
            match t.last_status.as_str() {
                "PROVISIONING" => {
                    if let Some(a) = &mut t.attachment {
                        a.status = "ATTACHED".into();
                    }
                    t.advance("PENDING");
                    t.pull_started_at = Some(now);
                }
                "PENDING" => match &rt {
                    None => match self.missing_log_group(c, scope, &t).await? {
                        Some(group) => {
                            let reason = format!("ResourceInitializationError: failed to validate logger args: create stream has been retried 1 times: failed to create Cloudwatch log stream: ResourceNotFoundException: The specified log group does not exist. : exit status 1 (log group {group})");
                            t.pull_stopped_at = Some(now);
                            t.request_stop("TaskFailedToStart", &reason);
                        }
                        None => match self.secrets(c, scope, &t).await? {
                            Err(reason) => {
                                t.pull_stopped_at = Some(now);
                                t.request_stop("TaskFailedToStart", &reason);
                            }
                            Ok(secrets) => {
                                let mut spec = self.task_spec(c, scope, &t)?;
                                for (container, name, value) in secrets {
                                    if let Some(cs) =
                                        spec.containers.iter_mut().find(|cs| cs.name == container)
                                    {
                                        cs.environment.retain(|(k, _)| *k != name);
                                        cs.environment.push((name, value));
                                    }
                                }
                                let sink = self.log_sink(c, scope, &t)?;
                                c.runtime().launch(spec, sink);
                            }
                        },
                    },
                    Some(TaskStatus {
                        phase: TaskPhase::Starting,
                        ..
                    }) => {}
                    Some(TaskStatus {
                        phase: TaskPhase::Failed { reason },
                        ..
                    }) => {
                        t.pull_stopped_at = Some(now);
                        for ct in &mut t.containers {
                            ct.reason = Some(reason.clone());
                        }
                        t.request_stop("TaskFailedToStart", reason);
                    }
                    Some(
                        st @ TaskStatus {
                            phase: TaskPhase::Running,
                            ..
                        },
                    ) => {
                        t.pull_stopped_at = Some(now);
                        self.record_containers(c, &mut t, st);
                        t.advance("ACTIVATING");
                    }
                },
                "ACTIVATING" => {
                    if rt.is_none() {
                        self.process_gone(&mut t);
                    } else {
                        service_events.extend(self.register_targets(c, scope, &mut t).await);
                        t.advance("RUNNING");
                        t.started_at = Some(now);
                        t.connectivity_at = Some(now);
                        t.ever_running = true;
                    }
                }
                "RUNNING" => match &rt {
                    None => self.process_gone(&mut t),
                    Some(st) => {
                        let mut essential_exit = false;
                        for (ct, s) in t.containers.iter_mut().zip(&st.containers) {
                            if let ContainerState::Exited { code } = s.state {
                                if ct.last_status != "STOPPED" {
                                    ct.last_status = "STOPPED".into();
                                    ct.exit_code = Some(code);
                                    ct.runtime_id = None;
                                    if s.reason.is_some() {
                                        ct.reason = s.reason.clone();
                                    }
                                    t.version += 1;
                                }
                                essential_exit |= s.essential;
                            }
                        }
                        if essential_exit {
                            t.request_stop(
                                "EssentialContainerExited",
                                "Essential container in task exited",
                            );
                        } else {
                            self.track_health(&mut t, st);
                            service_events.extend(self.enforce_health(c, scope, &mut t, now).await);
                        }
                    }
                },
                _ => {}
            }
        }
        if t.desired_status == "STOPPED" {
            if matches!(t.last_status.as_str(), "ACTIVATING" | "RUNNING") {
                t.advance("DEACTIVATING");
            }
            if t.last_status == "DEACTIVATING" {
                // Deregister, then stay here while the targets drain in their target groups.
                service_events.extend(self.deregister_targets(c, scope, &mut t).await);
                if !t.draining.is_empty() && !self.drained(c, scope, &mut t).await {
                    return self.save(c, scope, t, version, service_events, None, now);
                }
            }
            if t.stage() < 5 {
                t.advance("STOPPING");
                t.stopping_at = Some(now);
                c.runtime().stop(&t.task_id);
            } else if t.last_status == "STOPPING" {
                let done = rt.as_ref().is_none_or(|s| s.all_exited());
                if done {
                    if let Some(st) = &rt {
                        for (ct, s) in t.containers.iter_mut().zip(&st.containers) {
                            if let ContainerState::Exited { code } = s.state {
                                ct.exit_code.get_or_insert(code);
                            }
                        }
                    }
                    for ct in &mut t.containers {
                        ct.last_status = "STOPPED".into();
                        ct.runtime_id = None;
                    }
                    t.execution_stopped_at = Some(now);
                    t.advance("DEPROVISIONING");
                    self.unbind(c, &t.task_id);
                    if let Some(a) = &mut t.attachment {
                        a.status = "DELETED".into();
                        delete_eni = Some(a.eni_id.clone());
                    }
                    t.advance("STOPPED");
                    t.stopped_at = Some(now);
                    c.runtime().forget(&t.task_id);
                }
            }
        }
        self.save(c, scope, t, version, service_events, delete_eni, now)
    }

    /// Writes a task the reconciler changed, unless someone else changed it first.
    #[allow(
        clippy::too_many_arguments,
        reason = "one call site per lifecycle exit"
    )]
    fn save(
        &self,
        c: &Control,
        scope: &Scope,
        t: TaskRec,
        version: i64,
        service_events: Vec<String>,
        delete_eni: Option<String>,
        now: i64,
    ) -> AwsResult<()> {
        if t.version == version && service_events.is_empty() {
            return Ok(());
        }
        let task_id = t.task_id.clone();
        let service_id = t.service_id.clone();
        let wrote = c.store().write(|tx| {
            let Some(cur) = tx.get_as::<TaskRec>(scope, KIND_TASK, &task_id)? else {
                return Ok(false);
            };
            if cur.version != version {
                return Ok(false);
            }
            put_task(tx, scope, &t)?;
            if let Some(eni) = &delete_eni {
                shared::delete_eni(tx, scope, eni)?;
            }
            if let Some(sid) = &service_id {
                if !service_events.is_empty() {
                    if let Some(mut s) = tx.get_as::<ServiceRec>(scope, KIND_SERVICE, sid)? {
                        for e in &service_events {
                            s.push_event(now, e.clone());
                        }
                        put_service(tx, scope, &s)?;
                    }
                }
            }
            Ok(true)
        })?;
        if !wrote {
            tracing::debug!(task = %task_id, "task changed under the reconciler; retrying next pass");
        }
        Ok(())
    }

    /// The runtime lost the task (Portico restarted): its processes are gone.
    fn process_gone(&self, t: &mut TaskRec) {
        for ct in &mut t.containers {
            if ct.last_status != "STOPPED" {
                ct.last_status = "STOPPED".into();
                ct.runtime_id = None;
                ct.reason =
                    Some("The container's process is gone (Portico restarted while it ran)".into());
            }
        }
        t.request_stop(
            "EssentialContainerExited",
            "Essential container in task exited",
        );
    }

    /// Copies pids and ports from the runtime and binds the task's private IP to them.
    fn record_containers(&self, c: &Control, t: &mut TaskRec, st: &TaskStatus) {
        let ip: Option<IpAddr> = t
            .attachment
            .as_ref()
            .and_then(|a| a.private_ip.parse().ok());
        let mut bound = Vec::new();
        for (ct, s) in t.containers.iter_mut().zip(&st.containers) {
            ct.runtime_id = s.pid.map(|p| p.to_string());
            ct.last_status = match s.state {
                ContainerState::Exited { .. } => "STOPPED".into(),
                _ => "RUNNING".into(),
            };
            if let ContainerState::Exited { code } = s.state {
                ct.exit_code = Some(code);
                if s.reason.is_some() {
                    ct.reason = s.reason.clone();
                }
            }
            ct.bindings = s
                .ports
                .iter()
                .map(|(cp, local)| Binding {
                    container_port: *cp,
                    bind_ip: local.ip().to_string(),
                    host_port: local.port(),
                })
                .collect();
            if let Some(ip) = ip {
                for (cp, local) in &s.ports {
                    c.dataplane().addresses.bind(ip, *cp, *local);
                    bound.push((ip, *cp));
                }
            }
        }
        if !bound.is_empty() {
            self.bound.lock().insert(t.task_id.clone(), bound);
        }
    }

    /// The runtime's view of a task, from its task definition and overrides.
    fn task_spec(&self, c: &Control, scope: &Scope, t: &TaskRec) -> AwsResult<TaskSpec> {
        let td = c
            .store()
            .read(|tx| taskdefs::resolve(tx, scope, &t.task_definition_arn))?
            .ok_or_else(|| portico_core::AwsError::internal("task definition is gone"))?;
        let overrides: Vec<Value> = t
            .overrides
            .get("containerOverrides")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let scale = time_scale(c);
        let task_memory: Option<u64> = td.str_field("memory").and_then(|m| m.parse().ok());
        let containers = td
            .containers()
            .iter()
            .map(|cd| {
                let name = cd["name"].as_str().unwrap_or("").to_string();
                let ov = overrides.iter().find(|o| o["name"] == cd["name"]);
                let mut env: Vec<(String, String)> = pairs(cd.get("environment"));
                for (k, v) in pairs(ov.and_then(|o| o.get("environment"))) {
                    env.retain(|(ek, _)| *ek != k);
                    env.push((k, v));
                }
                ContainerSpec {
                    name,
                    image: cd["image"].as_str().unwrap_or("").to_string(),
                    entry_point: cd.get("entryPoint").map(|v| str_list(Some(v))),
                    command: ov
                        .and_then(|o| o.get("command"))
                        .or_else(|| cd.get("command"))
                        .map(|v| str_list(Some(v))),
                    environment: env,
                    working_directory: cd["workingDirectory"].as_str().map(str::to_string),
                    container_ports: cd["portMappings"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|p| p["protocol"].as_str().unwrap_or("tcp") == "tcp")
                        .filter_map(|p| p["containerPort"].as_u64())
                        .filter_map(|p| u16::try_from(p).ok())
                        .collect(),
                    essential: cd["essential"].as_bool().unwrap_or(true),
                    stop_timeout: Duration::from_secs(
                        cd["stopTimeout"].as_u64().unwrap_or(30).clamp(2, 120),
                    ),
                    // The container's hard limit, else the task's (Fargate's task size).
                    memory_limit_mib: match &cd["memory"] {
                        Value::Number(n) => n.as_u64(),
                        Value::String(x) => x.parse().ok(),
                        _ => None,
                    }
                    .or(task_memory),
                    depends_on: cd["dependsOn"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|d| {
                            Some((
                                d["containerName"].as_str()?.to_string(),
                                Condition::parse(d["condition"].as_str()?)?,
                            ))
                        })
                        .collect(),
                    health_check: cd.get("healthCheck").map(|h| {
                        let secs = |k: &str, d: u64| h[k].as_u64().unwrap_or(d) as f64;
                        let scaled = |x: f64| Duration::from_secs_f64((x * scale).max(0.05));
                        HealthCheckSpec {
                            command: str_list(h.get("command")),
                            interval: scaled(secs("interval", 30)),
                            timeout: Duration::from_secs_f64(secs("timeout", 5)),
                            retries: secs("retries", 3) as u32,
                            start_period: scaled(secs("startPeriod", 0)),
                        }
                    }),
                }
            })
            .collect();
        Ok(TaskSpec {
            task_id: t.task_id.clone(),
            containers,
            catalog: c.config().state_dir.as_ref().map(|d| d.join("images.json")),
        })
    }

    /// An awslogs group that does not exist and that the task may not create (AWS fails the
    /// task with ResourceInitializationError). `None` when Logs cannot tell.
    /// Each container's `secrets`, fetched as the task starts: SSM parameters (by name or ARN)
    /// through Parameter Store, decrypted. `Err` is the task's stop reason when one cannot be
    /// fetched (AWS stops the task with ResourceInitializationError): a missing parameter, a
    /// Secrets Manager secret (not emulated), or `environmentFiles` (they live in S3, which is
    /// not emulated either).
    async fn secrets(
        &self,
        c: &Control,
        scope: &Scope,
        t: &TaskRec,
    ) -> AwsResult<Result<Vec<(String, String, String)>, String>> {
        let td = c
            .store()
            .read(|tx| taskdefs::resolve(tx, scope, &t.task_definition_arn))?
            .ok_or_else(|| portico_core::AwsError::internal("task definition is gone"))?;
        let mut out = Vec::new();
        for cd in td.containers() {
            let container = cd["name"].as_str().unwrap_or("").to_string();
            if cd["environmentFiles"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
            {
                return Ok(Err(format!(
                    "ResourceInitializationError: failed to download env files: container {container}: environment files live in Amazon S3, which Portico does not emulate"
                )));
            }
            for sec in cd["secrets"].as_array().into_iter().flatten() {
                let (Some(name), Some(from)) = (sec["name"].as_str(), sec["valueFrom"].as_str())
                else {
                    continue;
                };
                // `arn:…:parameter/a/b` names `/a/b`; `arn:…:parameter/name` names `name`.
                let parameter = if let Some((_, p)) = from.split_once(":parameter/") {
                    if p.contains('/') {
                        format!("/{p}")
                    } else {
                        p.to_string()
                    }
                } else if from.starts_with("arn:") {
                    return Ok(Err(format!(
                        "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 1 time(s): the secret {from} is in AWS Secrets Manager, which Portico does not emulate (use an SSM parameter)"
                    )));
                } else {
                    from.to_string()
                };
                let got = c
                    .call(
                        &rc_of(scope),
                        Service::Ssm,
                        "GetParameter",
                        Input(json!({"Name": parameter, "WithDecryption": true})),
                    )
                    .await;
                match got {
                    Ok(v) => {
                        let value = v["Parameter"]["Value"].as_str().unwrap_or("").to_string();
                        out.push((container.clone(), name.to_string(), value));
                    }
                    Err(e) => {
                        return Ok(Err(format!(
                            "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secrets from ssm: service call has been retried 1 time(s): {}: {}",
                            e.code, e.message
                        )))
                    }
                }
            }
        }
        Ok(Ok(out))
    }

    async fn missing_log_group(
        &self,
        c: &Control,
        scope: &Scope,
        t: &TaskRec,
    ) -> AwsResult<Option<String>> {
        let td = c
            .store()
            .read(|tx| taskdefs::resolve(tx, scope, &t.task_definition_arn))?
            .ok_or_else(|| portico_core::AwsError::internal("task definition is gone"))?;
        for cd in td.containers() {
            if cd
                .pointer("/logConfiguration/logDriver")
                .and_then(Value::as_str)
                != Some("awslogs")
            {
                continue;
            }
            let opts = &cd["logConfiguration"]["options"];
            let (Some(group), false) = (
                opts["awslogs-group"].as_str(),
                opts["awslogs-create-group"].as_str() == Some("true"),
            ) else {
                continue;
            };
            let out = c
                .call(
                    &rc_of(scope),
                    Service::Logs,
                    "DescribeLogGroups",
                    Input(json!({"logGroupNamePrefix": group})),
                )
                .await;
            if let Ok(v) = out {
                let found = v["logGroups"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|g| g["logGroupName"].as_str() == Some(group));
                if !found {
                    return Ok(Some(group.to_string()));
                }
            }
        }
        Ok(None)
    }

    /// Where each container's lines go: awslogs containers to their group and stream.
    fn log_sink(&self, c: &Control, scope: &Scope, t: &TaskRec) -> AwsResult<LogSink> {
        let td = c
            .store()
            .read(|tx| taskdefs::resolve(tx, scope, &t.task_definition_arn))?
            .ok_or_else(|| portico_core::AwsError::internal("task definition is gone"))?;
        let mut dest: HashMap<String, (String, String, bool)> = HashMap::new();
        for cd in td.containers() {
            if cd
                .pointer("/logConfiguration/logDriver")
                .and_then(Value::as_str)
                != Some("awslogs")
            {
                continue;
            }
            let opts = &cd["logConfiguration"]["options"];
            let Some(group) = opts["awslogs-group"].as_str() else {
                continue;
            };
            let name = cd["name"].as_str().unwrap_or("");
            let stream = match opts["awslogs-stream-prefix"].as_str() {
                Some(p) => format!("{p}/{name}/{}", t.task_id),
                None => t.task_id.clone(),
            };
            let create = opts["awslogs-create-group"].as_str() == Some("true");
            dest.insert(name.to_string(), (group.to_string(), stream, create));
        }
        let tx = self.logs.clone();
        let scope = scope.clone();
        Ok(Arc::new(move |line: LogLine| {
            if let Some((group, stream, create)) = dest.get(&line.container) {
                let _ = tx.send(Shipment {
                    scope: scope.clone(),
                    group: group.clone(),
                    stream: stream.clone(),
                    create_group: *create,
                    line,
                });
            }
        }))
    }

    /// Registers a RUNNING-bound task's IP and container port in each of its service's target
    /// groups. Isolated here: the only place ECS talks to ELBv2 about targets.
    async fn register_targets(&self, c: &Control, scope: &Scope, t: &mut TaskRec) -> Vec<String> {
        let Some((svc_name, lbs)) = self.service_lbs(c, scope, t) else {
            return Vec::new();
        };
        let Some(ip) = t.attachment.as_ref().map(|a| a.private_ip.clone()) else {
            return Vec::new();
        };
        let mut events = Vec::new();
        for lb in lbs {
            let (Some(tg), Some(port)) = (
                lb["targetGroupArn"].as_str(),
                lb["containerPort"]
                    .as_u64()
                    .and_then(|p| u16::try_from(p).ok()),
            ) else {
                continue;
            };
            let out = elbv2(c, scope, "RegisterTargets", tg, &ip, port).await;
            match out {
                Ok(_) => {
                    t.registrations.push(Registration {
                        target_group_arn: tg.to_string(),
                        id: ip.clone(),
                        port,
                    });
                    t.version += 1;
                    events.push(format!(
                        "(service {svc_name}) registered 1 targets in (target-group {tg})"
                    ));
                }
                Err(e) => {
                    tracing::warn!(task = %t.task_id, target_group = tg, error = %e, "cannot register task in its target group");
                }
            }
        }
        events
    }

    async fn deregister_targets(&self, c: &Control, scope: &Scope, t: &mut TaskRec) -> Vec<String> {
        if t.registrations.is_empty() {
            return Vec::new();
        }
        let svc_name = self
            .service_lbs(c, scope, t)
            .map(|(n, _)| n)
            .unwrap_or_default();
        let mut events = vec![format!(
            "(service {svc_name}) has begun draining connections on 1 tasks."
        )];
        for r in std::mem::take(&mut t.registrations) {
            match elbv2(
                c,
                scope,
                "DeregisterTargets",
                &r.target_group_arn,
                &r.id,
                r.port,
            )
            .await
            {
                Ok(_) => {
                    events.push(format!(
                        "(service {svc_name}) deregistered 1 targets in (target-group {})",
                        r.target_group_arn
                    ));
                    t.draining.push(r);
                }
                Err(e) => {
                    tracing::warn!(task = %t.task_id, error = %e, "cannot deregister task from its target group")
                }
            }
        }
        t.version += 1;
        events
    }

    /// Copies container health from the runtime; the task's health follows its essential
    /// containers that have health checks.
    fn track_health(&self, t: &mut TaskRec, st: &TaskStatus) {
        for (ct, s) in t.containers.iter_mut().zip(&st.containers) {
            let h = match s.health {
                Health::Unknown => "UNKNOWN",
                Health::Healthy => "HEALTHY",
                Health::Unhealthy => "UNHEALTHY",
            };
            if ct.has_health_check && ct.health_status != h {
                ct.health_status = h.into();
                t.version += 1;
            }
        }
        let checked: Vec<&ContainerRec> = t
            .containers
            .iter()
            .filter(|c| c.essential && c.has_health_check)
            .collect();
        let task_health = if checked.iter().any(|c| c.health_status == "UNHEALTHY") {
            "UNHEALTHY"
        } else if !checked.is_empty() && checked.iter().all(|c| c.health_status == "HEALTHY") {
            "HEALTHY"
        } else {
            "UNKNOWN"
        };
        if t.health_status != task_health {
            t.health_status = task_health.into();
            t.version += 1;
        }
    }

    /// Service tasks: after the grace period, an UNHEALTHY task or one whose target is
    /// unhealthy in its target group is stopped (the scheduler then replaces it).
    async fn enforce_health(
        &self,
        c: &Control,
        scope: &Scope,
        t: &mut TaskRec,
        now: i64,
    ) -> Vec<String> {
        let Some(svc) = self.service_of(c, scope, t) else {
            return Vec::new();
        };
        let mut unhealthy_tg = None;
        if !t.registrations.is_empty() {
            let mut all_healthy = true;
            for r in &t.registrations {
                match target_state(c, scope, r).await.as_str() {
                    "healthy" => {}
                    "unhealthy" => {
                        all_healthy = false;
                        unhealthy_tg.get_or_insert((r.target_group_arn.clone(), r.port));
                    }
                    _ => all_healthy = false,
                }
            }
            let lb = if all_healthy {
                Some(true)
            } else if unhealthy_tg.is_some() {
                Some(false)
            } else {
                None
            };
            if t.lb_healthy != lb {
                t.lb_healthy = lb;
                t.version += 1;
            }
        }
        let grace_ms = (svc.health_check_grace_period_seconds.unwrap_or(0) as f64
            * 1000.0
            * time_scale(c)) as i64;
        if t.started_at.is_some_and(|s| now - s < grace_ms) {
            return Vec::new();
        }
        let name = &svc.service_name;
        let id = t.task_id.clone();
        if t.health_status == "UNHEALTHY" {
            t.request_stop(
                "ServiceSchedulerInitiated",
                "Task failed container health checks",
            );
            return vec![format!(
                "(service {name}) (task {id}) failed container health checks."
            )];
        }
        if let Some((tg, port)) = unhealthy_tg {
            t.request_stop(
                "ServiceSchedulerInitiated",
                &format!("Task failed ELB health checks in (target-group {tg})"),
            );
            return vec![format!("(service {name}) (port {port}) is unhealthy in (target-group {tg}) due to (reason Health checks failed).")];
        }
        Vec::new()
    }

    /// Whether every deregistered target has left `draining`.
    async fn drained(&self, c: &Control, scope: &Scope, t: &mut TaskRec) -> bool {
        let mut still = Vec::new();
        for r in std::mem::take(&mut t.draining) {
            if target_state(c, scope, &r).await == "draining" {
                still.push(r);
            }
        }
        let done = still.is_empty();
        t.draining = still;
        if done {
            t.version += 1;
        }
        done
    }

    fn service_of(&self, c: &Control, scope: &Scope, t: &TaskRec) -> Option<ServiceRec> {
        let sid = t.service_id.as_ref()?;
        c.store()
            .read(|tx| Ok(tx.get_as::<ServiceRec>(scope, KIND_SERVICE, sid)?))
            .ok()?
    }

    fn service_lbs(&self, c: &Control, scope: &Scope, t: &TaskRec) -> Option<(String, Vec<Value>)> {
        let sid = t.service_id.as_ref()?;
        let s = c
            .store()
            .read(|tx| Ok(tx.get_as::<ServiceRec>(scope, KIND_SERVICE, sid)?))
            .ok()??;
        Some((s.service_name, s.load_balancers))
    }
}

/// A target's state in its target group (`healthy`, `unhealthy`, `draining`, `initial`, …);
/// empty when ELBv2 cannot say.
async fn target_state(c: &Control, scope: &Scope, r: &Registration) -> String {
    let out = c
        .call(
            &rc_of(scope),
            Service::Elbv2,
            "DescribeTargetHealth",
            Input(json!({"TargetGroupArn": r.target_group_arn,
                         "Targets": [{"Id": r.id, "Port": r.port}]})),
        )
        .await;
    out.ok()
        .and_then(|v| {
            v.pointer("/TargetHealthDescriptions/0/TargetHealth/State")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default()
}

/// RegisterTargets / DeregisterTargets for one (ip, port) target.
async fn elbv2(
    c: &Control,
    scope: &Scope,
    op: &str,
    tg: &str,
    ip: &str,
    port: u16,
) -> AwsResult<Value> {
    let rc = rc_of(scope);
    c.call(
        &rc,
        Service::Elbv2,
        op,
        Input(json!({"TargetGroupArn": tg, "Targets": [{"Id": ip, "Port": port}]})),
    )
    .await
}

/// Whether a dry-run scheduler pass changed the service (event ids are random, so compare
/// event messages, not events).
fn same_ignoring_ids(a: &ServiceRec, b: &ServiceRec) -> bool {
    let strip = |s: &ServiceRec| {
        let mut s = s.clone();
        let msgs: Vec<String> = s.events.iter().map(|e| e.message.clone()).collect();
        s.events.clear();
        (s, msgs)
    };
    strip(a) == strip(b)
}

/// `--time-scale`, as a factor in (0, 1].
fn time_scale(c: &Control) -> f64 {
    let s = c.config().time_scale;
    if s > 0.0 && s < 1.0 {
        s
    } else {
        1.0
    }
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

fn pairs(v: Option<&Value>) -> Vec<(String, String)> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                e.get("name")?.as_str()?.to_string(),
                e.get("value")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            ))
        })
        .collect()
}

/// (scope, log group, log stream).
type StreamKey = (Scope, String, String);

/// Batches container lines and ships them with CreateLogGroup/CreateLogStream/PutLogEvents.
async fn ship_logs(c: Control, mut rx: mpsc::UnboundedReceiver<Shipment>) {
    let mut created: HashSet<StreamKey> = HashSet::new();
    let mut warned = false;
    while let Some(first) = rx.recv().await {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut batch = vec![first];
        while let Ok(s) = rx.try_recv() {
            batch.push(s);
        }
        let mut by_stream: Vec<(StreamKey, bool, Vec<Value>)> = Vec::new();
        for s in batch {
            // PutLogEvents refuses empty messages (and with them the whole batch); the awslogs
            // driver skips empty lines too.
            if s.line.line.is_empty() {
                continue;
            }
            let key = (s.scope, s.group, s.stream);
            let ev = json!({"timestamp": s.line.at_ms, "message": s.line.line});
            match by_stream.iter_mut().find(|(k, _, _)| *k == key) {
                Some((_, _, evs)) => evs.push(ev),
                None => by_stream.push((key, s.create_group, vec![ev])),
            }
        }
        for (key, create_group, events) in by_stream {
            let (scope, group, stream) = &key;
            let rc = rc_of(scope);
            if !created.contains(&key) {
                if create_group {
                    let _ = c
                        .call(
                            &rc,
                            Service::Logs,
                            "CreateLogGroup",
                            Input(json!({"logGroupName": group})),
                        )
                        .await;
                }
                match c
                    .call(
                        &rc,
                        Service::Logs,
                        "CreateLogStream",
                        Input(json!({"logGroupName": group, "logStreamName": stream})),
                    )
                    .await
                {
                    Ok(_) => {}
                    Err(e) if e.code == "ResourceAlreadyExistsException" => {}
                    Err(e) => {
                        if !warned {
                            tracing::warn!(group = %group, error = %e, "cannot ship container logs to CloudWatch Logs");
                            warned = true;
                        }
                        continue;
                    }
                }
                created.insert(key.clone());
            }
            for chunk in log_batches(events) {
                if let Err(e) = c
                    .call(
                        &rc,
                        Service::Logs,
                        "PutLogEvents",
                        Input(json!({"logGroupName": group, "logStreamName": stream, "logEvents": chunk})),
                    )
                    .await
                {
                    tracing::debug!(group = %group, error = %e, "PutLogEvents failed");
                    created.remove(&key);
                    break;
                }
            }
        }
    }
}

/// Splits one stream's events into PutLogEvents batches as CloudWatch Logs accepts them: in
/// timestamp order (stdout and stderr are read apart and may interleave out of order), at most
/// 10,000 events and 1,048,576 bytes (each event counts its message plus 26 bytes) each.
fn log_batches(mut events: Vec<Value>) -> Vec<Vec<Value>> {
    const MAX_EVENTS: usize = 10_000;
    const MAX_BYTES: usize = 1_048_576;
    events.sort_by_key(|e| e.get("timestamp").and_then(Value::as_i64).unwrap_or(0));
    let mut out: Vec<Vec<Value>> = Vec::new();
    let mut bytes = 0;
    for e in events {
        let size = e.get("message").and_then(Value::as_str).map_or(0, str::len) + 26;
        match out.last_mut() {
            Some(last) if last.len() < MAX_EVENTS && bytes + size <= MAX_BYTES => {
                bytes += size;
                last.push(e);
            }
            _ => {
                bytes = size;
                out.push(vec![e]);
            }
        }
    }
    out
}

#[cfg(test)]
mod log_batch_tests {
    use super::log_batches;
    use serde_json::json;

    #[test]
    fn sorted_and_split_by_count_and_size() {
        let evs = vec![
            json!({"timestamp": 3, "message": "c"}),
            json!({"timestamp": 1, "message": "a"}),
        ];
        let b = log_batches(evs);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0][0]["message"], "a");
        let many: Vec<_> = (0..10_001)
            .map(|i| json!({"timestamp": i, "message": "x"}))
            .collect();
        let b = log_batches(many);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![10_000, 1]);
        let big = "y".repeat(600_000);
        let b = log_batches(vec![
            json!({"timestamp": 1, "message": big}),
            json!({"timestamp": 2, "message": big}),
        ]);
        assert_eq!(b.len(), 2);
    }
}
