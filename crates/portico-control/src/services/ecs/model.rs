//! ECS records as stored, and how they render on the wire. Store kinds (scoped to account and
//! region):
//! - `ecs.cluster`  id = cluster name, body [`ClusterRec`]
//! - `ecs.taskdef`  id = `family:revision`, name = family, body [`TaskDefRec`]
//! - `ecs.service`  id = random, parent = cluster name, name = service name, body [`ServiceRec`]
//! - `ecs.task`     id = task id (32 hex), parent = cluster name, body [`TaskRec`]
//!
//! Timestamps are stored as epoch milliseconds and rendered as epoch seconds. A member missing
//! from a stored body takes its default (`#[serde(default)]` on the record structs).

use portico_core::time::epoch_seconds;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

pub const KIND_CLUSTER: &str = "ecs.cluster";
pub const KIND_TASKDEF: &str = "ecs.taskdef";
pub const KIND_SERVICE: &str = "ecs.service";
pub const KIND_TASK: &str = "ecs.task";

/// Task lifecycle, in order; `lastStatus` only moves forward.
pub const LIFECYCLE: &[&str] = &[
    "PROVISIONING",
    "PENDING",
    "ACTIVATING",
    "RUNNING",
    "DEACTIVATING",
    "STOPPING",
    "DEPROVISIONING",
    "STOPPED",
];

pub fn ts(ms: i64) -> Value {
    json!(epoch_seconds(ms))
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterRec {
    pub cluster_arn: String,
    pub cluster_name: String,
    pub status: String,
    pub tags: Vec<Value>,
    pub settings: Vec<Value>,
    pub configuration: Option<Value>,
    pub capacity_providers: Vec<String>,
    pub default_capacity_provider_strategy: Vec<Value>,
    pub service_connect_defaults: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefRec {
    /// The `taskDefinition` object exactly as DescribeTaskDefinition returns it.
    pub def: Value,
    #[serde(default)]
    pub tags: Vec<Value>,
}

impl TaskDefRec {
    pub fn arn(&self) -> &str {
        self.def
            .get("taskDefinitionArn")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
    pub fn status(&self) -> &str {
        self.def.get("status").and_then(Value::as_str).unwrap_or("")
    }
    pub fn family(&self) -> &str {
        self.def.get("family").and_then(Value::as_str).unwrap_or("")
    }
    pub fn containers(&self) -> Vec<Value> {
        self.def
            .get("containerDefinitions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }
    pub fn network_mode(&self) -> &str {
        self.def
            .get("networkMode")
            .and_then(Value::as_str)
            .unwrap_or("bridge")
    }
    pub fn str_field(&self, k: &str) -> Option<String> {
        self.def.get(k).and_then(Value::as_str).map(str::to_string)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Deployment {
    pub id: String,
    pub status: String,
    pub task_definition: String,
    pub desired_count: i64,
    pub failed_tasks: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub launch_type: Option<String>,
    pub capacity_provider_strategy: Option<Value>,
    pub platform_version: Option<String>,
    pub network_configuration: Option<Value>,
    pub rollout_state: String,
    pub rollout_state_reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: String,
    pub created_at: i64,
    pub message: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceRec {
    /// Store id (a service name may be reused once the old service is INACTIVE).
    pub id: String,
    pub service_arn: String,
    pub service_name: String,
    pub cluster_name: String,
    pub cluster_arn: String,
    pub status: String,
    pub desired_count: i64,
    pub launch_type: Option<String>,
    pub capacity_provider_strategy: Option<Value>,
    pub platform_version: Option<String>,
    pub task_definition: String,
    pub deployment_configuration: Value,
    pub deployments: Vec<Deployment>,
    pub events: Vec<Event>,
    pub load_balancers: Vec<Value>,
    pub network_configuration: Option<Value>,
    pub health_check_grace_period_seconds: Option<i64>,
    pub scheduling_strategy: String,
    pub deployment_controller: Value,
    pub created_at: i64,
    pub created_by: String,
    pub enable_ecs_managed_tags: bool,
    pub propagate_tags: String,
    pub enable_execute_command: bool,
    pub tags: Vec<Value>,
    pub role_arn: String,
    pub placement_constraints: Vec<Value>,
    pub placement_strategy: Vec<Value>,
    /// The last steady-state event was emitted and nothing has changed since.
    pub steady: bool,
    /// Launch back-off for tasks that never reach RUNNING (epoch ms).
    pub backoff_until: Option<i64>,
    /// Round-robin cursor over the service's subnets.
    pub next_subnet: usize,
    /// Tasks already counted in a deployment's `failedTasks`.
    pub counted_failures: Vec<String>,
    /// The last deployment that completed: (id, task definition), the circuit breaker's
    /// rollback target.
    pub last_completed: Option<(String, String)>,
}

impl ServiceRec {
    pub fn primary(&self) -> Option<&Deployment> {
        self.deployments.iter().find(|d| d.status == "PRIMARY")
    }
    pub fn max_percent(&self) -> i64 {
        self.deployment_configuration
            .get("maximumPercent")
            .and_then(Value::as_i64)
            .unwrap_or(200)
    }
    pub fn min_percent(&self) -> i64 {
        self.deployment_configuration
            .get("minimumHealthyPercent")
            .and_then(Value::as_i64)
            .unwrap_or(100)
    }
    pub fn circuit_breaker(&self) -> (bool, bool) {
        let cb = self
            .deployment_configuration
            .get("deploymentCircuitBreaker");
        let f = |k| {
            cb.and_then(|c| c.get(k))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        (f("enable"), f("rollback"))
    }
    pub fn push_event(&mut self, now: i64, message: String) {
        self.events.insert(
            0,
            Event {
                id: portico_core::ids::uuid(),
                created_at: now,
                message,
            },
        );
        self.events.truncate(100);
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EniAttachment {
    pub id: String,
    pub status: String,
    pub subnet_id: String,
    pub eni_id: String,
    pub mac: String,
    pub private_ip: String,
    pub private_dns: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Binding {
    pub container_port: u16,
    pub bind_ip: String,
    pub host_port: u16,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContainerRec {
    pub container_arn: String,
    pub name: String,
    pub image: String,
    pub last_status: String,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub reason: Option<String>,
    /// The process id (also its process group id) while it runs.
    #[serde(default)]
    pub runtime_id: Option<String>,
    #[serde(default)]
    pub bindings: Vec<Binding>,
    pub health_status: String,
    pub cpu: String,
    #[serde(default)]
    pub memory: Option<String>,
    #[serde(default)]
    pub memory_reservation: Option<String>,
    #[serde(default = "yes")]
    pub essential: bool,
    /// The container definition has a `healthCheck`.
    #[serde(default)]
    pub has_health_check: bool,
}

fn yes() -> bool {
    true
}

/// A target this task registered in a target group.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    pub target_group_arn: String,
    pub id: String,
    pub port: u16,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskRec {
    pub task_id: String,
    pub task_arn: String,
    pub cluster_name: String,
    pub cluster_arn: String,
    pub task_definition_arn: String,
    pub group: String,
    pub started_by: Option<String>,
    /// The service (store id) that owns it.
    pub service_id: Option<String>,
    /// The deployment that started it (service tasks).
    pub deployment_id: Option<String>,
    pub launch_type: String,
    pub platform_version: Option<String>,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub last_status: String,
    pub desired_status: String,
    pub health_status: String,
    pub created_at: i64,
    pub pull_started_at: Option<i64>,
    pub pull_stopped_at: Option<i64>,
    pub started_at: Option<i64>,
    pub connectivity_at: Option<i64>,
    pub stopping_at: Option<i64>,
    pub execution_stopped_at: Option<i64>,
    pub stopped_at: Option<i64>,
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
    pub version: i64,
    pub attachment: Option<EniAttachment>,
    pub availability_zone: Option<String>,
    pub containers: Vec<ContainerRec>,
    pub overrides: Value,
    pub tags: Vec<Value>,
    pub registrations: Vec<Registration>,
    /// Deregistered targets still draining in their target group.
    pub draining: Vec<Registration>,
    /// Health of its targets: `Some(true)` when all are healthy, `Some(false)` when one is
    /// unhealthy, `None` before the load balancer has a verdict (or without targets).
    pub lb_healthy: Option<bool>,
    /// It reached RUNNING at some point.
    pub ever_running: bool,
}

impl TaskRec {
    pub fn stage(&self) -> usize {
        LIFECYCLE
            .iter()
            .position(|s| *s == self.last_status)
            .unwrap_or(0)
    }

    /// Moves `lastStatus` forward (never back) and bumps `version`.
    pub fn advance(&mut self, to: &str) {
        let target = LIFECYCLE.iter().position(|s| *s == to).unwrap_or(0);
        if target > self.stage() {
            self.last_status = to.to_string();
            self.version += 1;
        }
    }

    /// Decides to stop it (once): desiredStatus STOPPED with a code and reason.
    pub fn request_stop(&mut self, code: &str, reason: &str) {
        if self.desired_status != "STOPPED" {
            self.desired_status = "STOPPED".into();
            self.stop_code = Some(code.into());
            self.stopped_reason = Some(reason.into());
            self.version += 1;
        }
    }

    pub fn render(&self, include_tags: bool) -> Value {
        let mut m = Map::new();
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_string(), v);
        };
        let attachments: Vec<Value> = self
            .attachment
            .iter()
            .map(|a| {
                json!({
                    "id": a.id, "type": "ElasticNetworkInterface", "status": a.status,
                    "details": [
                        {"name": "subnetId", "value": a.subnet_id},
                        {"name": "networkInterfaceId", "value": a.eni_id},
                        {"name": "macAddress", "value": a.mac},
                        {"name": "privateDnsName", "value": a.private_dns},
                        {"name": "privateIPv4Address", "value": a.private_ip},
                    ]
                })
            })
            .collect();
        put("attachments", json!(attachments));
        put(
            "attributes",
            json!([{"name": "ecs.cpu-architecture", "value": "x86_64"}]),
        );
        if let Some(az) = &self.availability_zone {
            put("availabilityZone", json!(az));
        }
        put("clusterArn", json!(self.cluster_arn));
        if self.last_status == "RUNNING" || self.connectivity_at.is_some() {
            put("connectivity", json!("CONNECTED"));
        }
        if let Some(t) = self.connectivity_at {
            put("connectivityAt", ts(t));
        }
        let containers: Vec<Value> = self
            .containers
            .iter()
            .map(|c| {
                let mut o = json!({
                    "containerArn": c.container_arn, "taskArn": self.task_arn, "name": c.name,
                    "image": c.image, "lastStatus": c.last_status,
                    "networkBindings": c.bindings.iter().map(|b| json!({
                        "bindIP": b.bind_ip, "containerPort": b.container_port,
                        "hostPort": b.host_port, "protocol": "tcp"})).collect::<Vec<_>>(),
                    "networkInterfaces": self.attachment.iter().map(|a| json!({
                        "attachmentId": a.id, "privateIpv4Address": a.private_ip})).collect::<Vec<_>>(),
                    "healthStatus": c.health_status, "cpu": c.cpu,
                });
                if let Some(x) = &c.runtime_id {
                    o["runtimeId"] = json!(x);
                }
                if let Some(x) = c.exit_code {
                    o["exitCode"] = json!(x);
                }
                if let Some(x) = &c.reason {
                    o["reason"] = json!(x);
                }
                if let Some(x) = &c.memory {
                    o["memory"] = json!(x);
                }
                if let Some(x) = &c.memory_reservation {
                    o["memoryReservation"] = json!(x);
                }
                o
            })
            .collect();
        put("containers", json!(containers));
        if let Some(x) = &self.cpu {
            put("cpu", json!(x));
        }
        put("createdAt", ts(self.created_at));
        put("desiredStatus", json!(self.desired_status));
        put("enableExecuteCommand", json!(false));
        if let Some(t) = self.execution_stopped_at {
            put("executionStoppedAt", ts(t));
        }
        put("group", json!(self.group));
        put("healthStatus", json!(self.health_status));
        put("lastStatus", json!(self.last_status));
        put("launchType", json!(self.launch_type));
        if let Some(x) = &self.memory {
            put("memory", json!(x));
        }
        put(
            "overrides",
            if self.overrides.is_object() {
                self.overrides.clone()
            } else {
                json!({"containerOverrides": self.containers.iter().map(|c| json!({"name": c.name})).collect::<Vec<_>>(), "inferenceAcceleratorOverrides": []})
            },
        );
        if let Some(x) = &self.platform_version {
            put("platformVersion", json!(x));
            put("platformFamily", json!("Linux"));
        }
        for (k, v) in [
            ("pullStartedAt", self.pull_started_at),
            ("pullStoppedAt", self.pull_stopped_at),
            ("startedAt", self.started_at),
            ("stoppingAt", self.stopping_at),
            ("stoppedAt", self.stopped_at),
        ] {
            if let Some(t) = v {
                put(k, ts(t));
            }
        }
        if let Some(x) = &self.started_by {
            put("startedBy", json!(x));
        }
        if let Some(x) = &self.stop_code {
            put("stopCode", json!(x));
        }
        if let Some(x) = &self.stopped_reason {
            put("stoppedReason", json!(x));
        }
        if include_tags {
            put("tags", json!(self.tags));
        }
        put("taskArn", json!(self.task_arn));
        put("taskDefinitionArn", json!(self.task_definition_arn));
        put("version", json!(self.version));
        if self.launch_type == "FARGATE" {
            put("ephemeralStorage", json!({"sizeInGiB": 20}));
        }
        Value::Object(m)
    }
}

/// Live counts of a service's (or one deployment's) tasks.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    pub running: i64,
    pub pending: i64,
}

impl Counts {
    pub fn add(&mut self, t: &TaskRec) {
        match t.last_status.as_str() {
            "RUNNING" => self.running += 1,
            "PROVISIONING" | "PENDING" | "ACTIVATING" => self.pending += 1,
            _ => {}
        }
    }
}

/// The members a service shares with each of its deployments (those set).
fn put_launch(
    o: &mut Value,
    launch_type: &Option<String>,
    strategy: &Option<Value>,
    platform_version: &Option<String>,
    network: &Option<Value>,
) {
    if let Some(x) = launch_type {
        o["launchType"] = json!(x);
    }
    if let Some(x) = strategy {
        o["capacityProviderStrategy"] = x.clone();
    }
    if let Some(x) = platform_version {
        o["platformVersion"] = json!(x);
        o["platformFamily"] = json!("Linux");
    }
    if let Some(x) = network {
        o["networkConfiguration"] = x.clone();
    }
}

impl ServiceRec {
    pub fn render(&self, tasks: &[TaskRec], include_tags: bool) -> Value {
        let mine: Vec<&TaskRec> = tasks
            .iter()
            .filter(|t| t.service_id.as_deref() == Some(self.id.as_str()))
            .collect();
        let mut total = Counts::default();
        for t in &mine {
            total.add(t);
        }
        let deployments: Vec<Value> = self
            .deployments
            .iter()
            .map(|d| {
                let mut c = Counts::default();
                for t in mine
                    .iter()
                    .filter(|t| t.deployment_id.as_deref() == Some(d.id.as_str()))
                {
                    c.add(t);
                }
                let mut o = json!({
                    "id": d.id, "status": d.status, "taskDefinition": d.task_definition,
                    "desiredCount": d.desired_count, "pendingCount": c.pending,
                    "runningCount": c.running, "failedTasks": d.failed_tasks,
                    "createdAt": ts(d.created_at), "updatedAt": ts(d.updated_at),
                    "rolloutState": d.rollout_state, "rolloutStateReason": d.rollout_state_reason,
                });
                put_launch(
                    &mut o,
                    &d.launch_type,
                    &d.capacity_provider_strategy,
                    &d.platform_version,
                    &d.network_configuration,
                );
                o
            })
            .collect();
        let mut o = json!({
            "serviceArn": self.service_arn, "serviceName": self.service_name,
            "clusterArn": self.cluster_arn, "loadBalancers": self.load_balancers,
            "serviceRegistries": [], "status": self.status, "desiredCount": self.desired_count,
            "runningCount": total.running, "pendingCount": total.pending,
            "taskDefinition": self.task_definition,
            "deploymentConfiguration": self.deployment_configuration,
            "deployments": deployments, "roleArn": self.role_arn,
            "events": self.events.iter().map(|e| json!({"id": e.id, "createdAt": ts(e.created_at), "message": e.message})).collect::<Vec<_>>(),
            "createdAt": ts(self.created_at),
            "placementConstraints": self.placement_constraints,
            "placementStrategy": self.placement_strategy,
            "schedulingStrategy": self.scheduling_strategy,
            "deploymentController": self.deployment_controller,
            "createdBy": self.created_by, "enableECSManagedTags": self.enable_ecs_managed_tags,
            "propagateTags": self.propagate_tags, "enableExecuteCommand": self.enable_execute_command,
        });
        put_launch(
            &mut o,
            &self.launch_type,
            &self.capacity_provider_strategy,
            &self.platform_version,
            &self.network_configuration,
        );
        if let Some(x) = self.health_check_grace_period_seconds {
            o["healthCheckGracePeriodSeconds"] = json!(x);
        }
        if include_tags {
            o["tags"] = json!(self.tags);
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> TaskRec {
        serde_json::from_value(json!({
            "taskId": "t", "taskArn": "arn:aws:ecs:us-east-1:000000000000:task/c/t",
            "clusterName": "c", "clusterArn": "arn:aws:ecs:us-east-1:000000000000:cluster/c",
            "taskDefinitionArn": "td", "group": "family:td", "launchType": "FARGATE",
            "lastStatus": "PROVISIONING", "desiredStatus": "RUNNING", "healthStatus": "UNKNOWN",
            "createdAt": 1500, "version": 1, "containers": []
        }))
        .unwrap()
    }

    #[test]
    fn last_status_only_moves_forward() {
        let mut t = task();
        t.advance("RUNNING");
        assert_eq!((t.last_status.as_str(), t.version), ("RUNNING", 2));
        t.advance("PENDING");
        assert_eq!((t.last_status.as_str(), t.version), ("RUNNING", 2));
        t.request_stop("UserInitiated", "first");
        t.request_stop("ServiceSchedulerInitiated", "second");
        assert_eq!(t.stopped_reason.as_deref(), Some("first"));
        assert_eq!(t.version, 3);
    }

    #[test]
    fn renders_epoch_seconds_and_omits_unset_members() {
        let v = task().render(false);
        assert_eq!(v["createdAt"], json!(1.5));
        assert!(v.get("stoppedAt").is_none() && v.get("stopCode").is_none());
        assert!(v.get("tags").is_none() && v.get("connectivity").is_none());
        assert_eq!(v["ephemeralStorage"], json!({"sizeInGiB": 20}));
    }
}
