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
    ContainerSpec, ContainerState, LogLine, LogSink, TaskPhase, TaskSpec, TaskStatus,
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
    });
    super::spawn_loop(control, "ecs", Duration::from_millis(250), move |c| {
        let st = state.clone();
        async move { st.pass(&c).await }
    });
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
        let scale = c.config().time_scale.clamp(0.0, 1.0);
        for rec in services {
            let Ok(s) = serde_json::from_value::<ServiceRec>(rec.body) else {
                continue;
            };
            if s.status == "INACTIVE" {
                continue;
            }
            let scope = rec.scope.clone();
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
                let plan = scheduler::step(&mut svc, &views, now, scale, &mut || ids::hex(32));
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
                    let tags = match svc.propagate_tags.as_str() {
                        "SERVICE" => svc.tags.clone(),
                        "TASK_DEFINITION" => td.tags.clone(),
                        _ => Vec::new(),
                    };
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
                    None => {
                        let spec = self.task_spec(c, scope, &t)?;
                        let sink = self.log_sink(c, scope, &t)?;
                        c.runtime().launch(spec, sink);
                    }
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
                // Target deregistration; the ELB's draining happens on its side.
                service_events.extend(self.deregister_targets(c, scope, &mut t).await);
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
                }
            })
            .collect();
        Ok(TaskSpec {
            task_id: t.task_id.clone(),
            containers,
            catalog: c.config().state_dir.as_ref().map(|d| d.join("images.json")),
        })
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
                Ok(_) => events.push(format!(
                    "(service {svc_name}) deregistered 1 targets in (target-group {})",
                    r.target_group_arn
                )),
                Err(e) => {
                    tracing::warn!(task = %t.task_id, error = %e, "cannot deregister task from its target group")
                }
            }
        }
        t.version += 1;
        events
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
            if let Err(e) = c
                .call(
                    &rc,
                    Service::Logs,
                    "PutLogEvents",
                    Input(json!({"logGroupName": group, "logStreamName": stream, "logEvents": events})),
                )
                .await
            {
                tracing::debug!(group = %group, error = %e, "PutLogEvents failed");
                created.remove(&key);
            }
        }
    }
}
