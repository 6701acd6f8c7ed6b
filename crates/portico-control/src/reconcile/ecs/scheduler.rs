//! The replica service scheduler as a pure state transition: given a service and its tasks,
//! decide which tasks to start and stop, and update the service (events, deployments, rollout
//! state, launch back-off). No IO: the caller creates and stops the tasks it names. Tests
//! render the whole state as text after each step (snapshot style).

use crate::services::ecs::model::{Deployment, ServiceRec, TaskRec};

/// What the scheduler sees of one task.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TaskView {
    pub id: String,
    pub deployment_id: Option<String>,
    pub last_status: String,
    pub desired_running: bool,
    pub ever_running: bool,
    pub failed_to_start: bool,
    pub created_at: i64,
    /// RUNNING and healthy: container health checks (if any) HEALTHY, targets (if any)
    /// healthy in their target groups.
    pub healthy: bool,
}

impl TaskView {
    pub fn of(t: &TaskRec) -> TaskView {
        TaskView {
            id: t.task_id.clone(),
            deployment_id: t.deployment_id.clone(),
            last_status: t.last_status.clone(),
            desired_running: t.desired_status == "RUNNING",
            ever_running: t.ever_running,
            failed_to_start: t.stop_code.as_deref() == Some("TaskFailedToStart"),
            created_at: t.created_at,
            healthy: t.last_status == "RUNNING"
                && (t.containers.iter().all(|c| !c.has_health_check)
                    || t.health_status == "HEALTHY")
                && (t.registrations.is_empty() || t.lb_healthy == Some(true)),
        }
    }
}

/// Tasks to create (ids chosen here, for the events) and to stop (id, reason).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Plan {
    pub start: Vec<String>,
    pub stop: Vec<(String, String)>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.start.is_empty() && self.stop.is_empty()
    }
}

/// First back-off after a task fails to start; doubles per failure, capped at 15 minutes.
const BACKOFF_BASE_MS: f64 = 2_000.0;
const BACKOFF_CAP_MS: f64 = 900_000.0;

fn task_list(ids: &[String]) -> String {
    ids.iter()
        .map(|i| format!("(task {i})"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What `step` needs a fresh id for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdKind {
    Task,
    Deployment,
}

/// One scheduling pass. `new_id` names tasks to start and rollback deployments;
/// `time_scale` shrinks back-offs.
pub(crate) fn step(
    svc: &mut ServiceRec,
    tasks: &[TaskView],
    now: i64,
    time_scale: f64,
    new_id: &mut dyn FnMut(IdKind) -> String,
) -> Plan {
    let mut plan = Plan::default();
    if svc.status == "INACTIVE" {
        return plan;
    }
    let name = svc.service_name.clone();
    let Some(primary) = svc.primary().cloned() else {
        return plan;
    };
    let scaling_reason = format!("Scaling activity initiated by (deployment {})", primary.id);
    let active: Vec<&TaskView> = tasks.iter().filter(|t| t.desired_running).collect();

    if svc.status == "DRAINING" {
        let ids: Vec<String> = active.iter().map(|t| t.id.clone()).collect();
        if !ids.is_empty() {
            svc.push_event(
                now,
                format!(
                    "(service {name}) has stopped {} running tasks: {}.",
                    ids.len(),
                    task_list(&ids)
                ),
            );
            plan.stop = ids
                .into_iter()
                .map(|i| (i, scaling_reason.clone()))
                .collect();
        } else if tasks.iter().all(|t| t.last_status == "STOPPED") {
            svc.status = "INACTIVE".into();
            for d in &mut svc.deployments {
                d.updated_at = now;
            }
        }
        return plan;
    }

    // Failures to start, counted once per task, drive the back-off and the circuit breaker.
    let mut failed_now = 0;
    for t in tasks {
        if t.failed_to_start
            && !t.ever_running
            && t.deployment_id.as_deref() == Some(primary.id.as_str())
            && !svc.counted_failures.contains(&t.id)
        {
            svc.counted_failures.push(t.id.clone());
            failed_now += 1;
        }
    }
    let len = svc.counted_failures.len();
    if len > 50 {
        svc.counted_failures.drain(..len - 50);
    }
    let primary_running_any = active.iter().any(|t| {
        t.deployment_id.as_deref() == Some(primary.id.as_str()) && t.last_status == "RUNNING"
    });
    let (cb_enable, _) = svc.circuit_breaker();
    if let Some(p) = svc.deployments.iter_mut().find(|d| d.status == "PRIMARY") {
        if failed_now > 0 {
            p.failed_tasks += failed_now;
            p.updated_at = now;
            let exp = (p.failed_tasks - 1).clamp(0, 20) as i32;
            let wait = (BACKOFF_BASE_MS * 2f64.powi(exp)).min(BACKOFF_CAP_MS) * time_scale;
            svc.backoff_until = Some(now + wait as i64);
            let threshold = ((p.desired_count as f64 * 0.5).ceil() as i64).clamp(10, 200);
            if cb_enable && p.failed_tasks >= threshold && p.rollout_state == "IN_PROGRESS" {
                p.rollout_state = "FAILED".into();
                p.rollout_state_reason =
                    "ECS deployment circuit breaker: tasks failed to start.".into();
            }
        } else if primary_running_any && p.failed_tasks > 0 {
            p.failed_tasks = 0;
            svc.backoff_until = None;
        }
    }
    if failed_now > 0 {
        let p_failed = svc.primary().map_or(0, |p| p.failed_tasks);
        if p_failed >= 3 && p_failed - failed_now < 3 {
            svc.push_event(
                now,
                format!("(service {name}) is unable to consistently start tasks successfully."),
            );
        }
    }
    // A failed rollout with rollback on goes back to the last completed task definition.
    let (_, cb_rollback) = svc.circuit_breaker();
    if let (true, Some(p)) = (cb_rollback, svc.primary().cloned()) {
        let target = svc
            .last_completed
            .clone()
            .filter(|(_, td)| *td != p.task_definition);
        if let (true, Some((good_id, td))) = (p.rollout_state == "FAILED", target) {
            for d in &mut svc.deployments {
                if d.status == "PRIMARY" {
                    d.status = "ACTIVE".into();
                    d.updated_at = now;
                }
            }
            let id = new_id(IdKind::Deployment);
            svc.deployments.insert(
                0,
                Deployment {
                    id: id.clone(),
                    status: "PRIMARY".into(),
                    task_definition: td.clone(),
                    desired_count: svc.desired_count,
                    failed_tasks: 0,
                    created_at: now,
                    updated_at: now,
                    launch_type: p.launch_type.clone(),
                    capacity_provider_strategy: p.capacity_provider_strategy.clone(),
                    platform_version: p.platform_version.clone(),
                    network_configuration: p.network_configuration.clone(),
                    rollout_state: "IN_PROGRESS".into(),
                    rollout_state_reason: format!(
                        "ECS deployment circuit breaker: rolling back to deploymentId {good_id}."
                    ),
                },
            );
            svc.task_definition = td;
            svc.backoff_until = None;
            svc.push_event(
                now,
                format!(
                    "(service {name}) (deployment {}) deployment failed: tasks failed to start.",
                    p.id
                ),
            );
        }
    }
    let primary = svc.primary().cloned().unwrap_or(primary);

    let desired = primary.desired_count.max(0);
    let max_bound = desired * svc.max_percent() / 100;
    let min_bound = (desired * svc.min_percent() + 99) / 100;
    let is_primary = |t: &&TaskView| t.deployment_id.as_deref() == Some(primary.id.as_str());
    let mut prim: Vec<&TaskView> = active.iter().copied().filter(is_primary).collect();
    let old: Vec<&TaskView> = active.iter().copied().filter(|t| !is_primary(t)).collect();
    let total = active.len() as i64;

    // Scale out the primary deployment, within maximumPercent.
    let mut started = 0;
    if (prim.len() as i64) < desired {
        let may_launch =
            primary.rollout_state != "FAILED" && svc.backoff_until.is_none_or(|b| b <= now);
        let room = (max_bound.max(desired.min(1)) - total).max(0);
        let n = (desired - prim.len() as i64).min(room);
        if may_launch && n > 0 {
            plan.start = (0..n).map(|_| new_id(IdKind::Task)).collect();
            started = n;
            svc.push_event(
                now,
                format!(
                    "(service {name}) has started {n} tasks: {}.",
                    task_list(&plan.start)
                ),
            );
        }
    }
    // Scale in the primary: pending ones first, then the newest.
    if (prim.len() as i64) > desired {
        prim.sort_by_key(|t| (t.last_status == "RUNNING", std::cmp::Reverse(t.created_at)));
        let n = prim.len() - desired as usize;
        for t in prim.iter().take(n) {
            plan.stop.push((t.id.clone(), scaling_reason.clone()));
        }
    }
    // Drain old deployments while enough healthy tasks remain.
    let mut healthy = active
        .iter()
        .filter(|t| t.healthy && !plan.stop.iter().any(|(i, _)| *i == t.id))
        .count() as i64;
    let mut blocked = false;
    let mut old_sorted = old.clone();
    old_sorted.sort_by_key(|t| (t.healthy, t.created_at));
    for t in old_sorted {
        if !t.healthy {
            plan.stop.push((t.id.clone(), scaling_reason.clone()));
        } else if healthy > min_bound {
            healthy -= 1;
            plan.stop.push((t.id.clone(), scaling_reason.clone()));
        } else {
            blocked = true;
        }
    }
    if !plan.stop.is_empty() {
        let ids: Vec<String> = plan.stop.iter().map(|(i, _)| i.clone()).collect();
        svc.push_event(
            now,
            format!(
                "(service {name}) has stopped {} running tasks: {}.",
                ids.len(),
                task_list(&ids)
            ),
        );
    }
    if blocked && started == 0 && plan.stop.is_empty() && (prim.len() as i64) < desired {
        let msg = format!("(service {name}) was unable to stop or start tasks during a deployment because of the service deployment configuration. Update the minimumHealthyPercent or maximumPercent value and try again.");
        if svc.events.first().map(|e| &e.message) != Some(&msg) {
            svc.push_event(now, msg);
        }
    }

    // Deployments that have no tasks left are done.
    let has_tasks = |d: &Deployment| {
        active
            .iter()
            .any(|t| t.deployment_id.as_deref() == Some(d.id.as_str()))
    };
    svc.deployments
        .retain(|d| d.status == "PRIMARY" || has_tasks(d));

    // Steady state: the primary runs exactly its desired count and nothing else runs.
    let running_primary = active.iter().filter(|t| is_primary(t) && t.healthy).count() as i64;
    let steady = plan.is_empty()
        && old.is_empty()
        && running_primary == desired
        && active.len() as i64 == desired;
    if steady {
        if let Some(p) = svc.deployments.iter_mut().find(|d| d.status == "PRIMARY") {
            if p.rollout_state == "IN_PROGRESS" {
                p.rollout_state = "COMPLETED".into();
                p.rollout_state_reason = format!("ECS deployment {} completed.", p.id);
                p.updated_at = now;
                let id = p.id.clone();
                svc.last_completed = Some((id.clone(), p.task_definition.clone()));
                svc.push_event(
                    now,
                    format!("(service {name}) (deployment {id}) deployment completed."),
                );
            }
        }
        if !svc.steady {
            svc.steady = true;
            svc.push_event(now, format!("(service {name}) has reached a steady state."));
        }
    } else {
        svc.steady = false;
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(desired: i64, min: i64, max: i64) -> ServiceRec {
        serde_json::from_value(json!({
            "id": "s1", "serviceArn": "arn:aws:ecs:us-east-1:000000000000:service/c/web",
            "serviceName": "web", "clusterName": "c",
            "clusterArn": "arn:aws:ecs:us-east-1:000000000000:cluster/c", "status": "ACTIVE",
            "desiredCount": desired, "taskDefinition": "td:1",
            "deploymentConfiguration": {"maximumPercent": max, "minimumHealthyPercent": min,
                "deploymentCircuitBreaker": {"enable": true, "rollback": false}},
            "deployments": [{"id": "ecs-svc/1", "status": "PRIMARY", "taskDefinition": "td:1",
                "desiredCount": desired, "createdAt": 0, "updatedAt": 0,
                "rolloutState": "IN_PROGRESS", "rolloutStateReason": "ECS deployment ecs-svc/1 in progress."}],
            "schedulingStrategy": "REPLICA", "deploymentController": {"type": "ECS"},
            "createdAt": 0, "createdBy": "me", "propagateTags": "NONE", "roleArn": "r"
        }))
        .unwrap()
    }

    /// A little world: the service, its tasks, and a clock.
    struct World {
        svc: ServiceRec,
        tasks: Vec<TaskView>,
        now: i64,
        next: usize,
        log: String,
    }

    impl World {
        fn new(svc: ServiceRec) -> World {
            World {
                svc,
                tasks: Vec::new(),
                now: 1000,
                next: 0,
                log: String::new(),
            }
        }

        /// One scheduler pass; started tasks appear as PROVISIONING, stopped ones as STOPPED.
        fn step(&mut self) {
            self.now += 1000;
            let mut next = self.next;
            let dep = self.svc.primary().map(|d| d.id.clone());
            let events_before = self.svc.events.len();
            let plan = step(&mut self.svc, &self.tasks, self.now, 1.0, &mut |k| {
                next += 1;
                match k {
                    IdKind::Task => format!("t{next}"),
                    IdKind::Deployment => format!("ecs-svc/{next}"),
                }
            });
            self.next = next;
            for id in &plan.start {
                self.tasks.push(TaskView {
                    id: id.clone(),
                    deployment_id: dep.clone(),
                    last_status: "PROVISIONING".into(),
                    desired_running: true,
                    ever_running: false,
                    failed_to_start: false,
                    created_at: self.now,
                    healthy: false,
                });
            }
            for (id, _) in &plan.stop {
                if let Some(t) = self.tasks.iter_mut().find(|t| t.id == *id) {
                    t.desired_running = false;
                    t.last_status = "STOPPED".into();
                }
            }
            self.tasks.retain(|t| t.desired_running);
            let new_events = self.svc.events.len().saturating_sub(events_before);
            let mut ev: Vec<&str> = self.svc.events[..new_events.min(self.svc.events.len())]
                .iter()
                .map(|e| e.message.as_str())
                .collect();
            ev.reverse();
            self.log.push_str(&self.snapshot(&ev));
        }

        fn run_all(&mut self) {
            for t in &mut self.tasks {
                t.last_status = "RUNNING".into();
                t.ever_running = true;
                t.healthy = true;
            }
        }

        fn snapshot(&self, events: &[&str]) -> String {
            let mut s = format!(
                "--- status={} steady={}\n",
                self.svc.status, self.svc.steady
            );
            for d in &self.svc.deployments {
                s += &format!(
                    "deployment {} {} desired={} failed={} {}\n",
                    d.id, d.status, d.desired_count, d.failed_tasks, d.rollout_state
                );
            }
            for t in &self.tasks {
                s += &format!(
                    "task {} {} {}\n",
                    t.id,
                    t.deployment_id.as_deref().unwrap_or("-"),
                    t.last_status
                );
            }
            for e in events {
                s += &format!("event {e}\n");
            }
            s
        }
    }

    fn check(actual: &str, expect: &str) {
        let norm = |x: &str| {
            x.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(norm(actual), norm(expect), "\nactual:\n{actual}");
    }

    #[test]
    fn create_scale_replace_and_scale_in() {
        let mut w = World::new(service(2, 100, 200));
        w.step();
        w.run_all();
        w.step();
        // One task dies: the next pass replaces it.
        w.tasks.retain(|t| t.id != "t1");
        w.step();
        w.run_all();
        w.step();
        // Scale to 0.
        w.svc.desired_count = 0;
        w.svc.deployments[0].desired_count = 0;
        w.step();
        w.step();
        check(
            &w.log,
            "
            --- status=ACTIVE steady=false
            deployment ecs-svc/1 PRIMARY desired=2 failed=0 IN_PROGRESS
            task t1 ecs-svc/1 PROVISIONING
            task t2 ecs-svc/1 PROVISIONING
            event (service web) has started 2 tasks: (task t1) (task t2).
            --- status=ACTIVE steady=true
            deployment ecs-svc/1 PRIMARY desired=2 failed=0 COMPLETED
            task t1 ecs-svc/1 RUNNING
            task t2 ecs-svc/1 RUNNING
            event (service web) (deployment ecs-svc/1) deployment completed.
            event (service web) has reached a steady state.
            --- status=ACTIVE steady=false
            deployment ecs-svc/1 PRIMARY desired=2 failed=0 COMPLETED
            task t2 ecs-svc/1 RUNNING
            task t3 ecs-svc/1 PROVISIONING
            event (service web) has started 1 tasks: (task t3).
            --- status=ACTIVE steady=true
            deployment ecs-svc/1 PRIMARY desired=2 failed=0 COMPLETED
            task t2 ecs-svc/1 RUNNING
            task t3 ecs-svc/1 RUNNING
            event (service web) has reached a steady state.
            --- status=ACTIVE steady=false
            deployment ecs-svc/1 PRIMARY desired=0 failed=0 COMPLETED
            event (service web) has stopped 2 running tasks: (task t3) (task t2).
            --- status=ACTIVE steady=true
            deployment ecs-svc/1 PRIMARY desired=0 failed=0 COMPLETED
            event (service web) has reached a steady state.
            ",
        );
    }

    #[test]
    fn a_steady_service_is_left_alone() {
        // The reconciler writes only when a pass changes something: a steady pass must not.
        let mut w = World::new(service(2, 100, 200));
        w.step();
        w.run_all();
        w.step();
        let before = w.svc.clone();
        let plan = step(
            &mut w.svc,
            &w.tasks,
            w.now + 5000,
            1.0,
            &mut |_| unreachable!(),
        );
        assert!(plan.is_empty());
        assert_eq!(w.svc, before);
    }

    #[test]
    fn rolling_deployment_honours_min_and_max() {
        // desired 2, min 50%, max 100%: stop one old task, start one new, and so on.
        let mut w = World::new(service(2, 50, 100));
        w.step();
        w.run_all();
        w.step();
        w.log.clear();
        w.svc.deployments[0].status = "ACTIVE".into();
        w.svc.deployments.insert(
            0,
            Deployment {
                id: "ecs-svc/2".into(),
                status: "PRIMARY".into(),
                task_definition: "td:2".into(),
                desired_count: 2,
                failed_tasks: 0,
                created_at: 0,
                updated_at: 0,
                launch_type: None,
                capacity_provider_strategy: None,
                platform_version: None,
                network_configuration: None,
                rollout_state: "IN_PROGRESS".into(),
                rollout_state_reason: String::new(),
            },
        );
        w.step();
        w.step();
        w.run_all();
        w.step();
        w.step();
        w.run_all();
        w.step();
        check(
            &w.log,
            "
            --- status=ACTIVE steady=false
            deployment ecs-svc/2 PRIMARY desired=2 failed=0 IN_PROGRESS
            deployment ecs-svc/1 ACTIVE desired=2 failed=0 COMPLETED
            task t2 ecs-svc/1 RUNNING
            event (service web) has stopped 1 running tasks: (task t1).
            --- status=ACTIVE steady=false
            deployment ecs-svc/2 PRIMARY desired=2 failed=0 IN_PROGRESS
            deployment ecs-svc/1 ACTIVE desired=2 failed=0 COMPLETED
            task t2 ecs-svc/1 RUNNING
            task t3 ecs-svc/2 PROVISIONING
            event (service web) has started 1 tasks: (task t3).
            --- status=ACTIVE steady=false
            deployment ecs-svc/2 PRIMARY desired=2 failed=0 IN_PROGRESS
            deployment ecs-svc/1 ACTIVE desired=2 failed=0 COMPLETED
            task t3 ecs-svc/2 RUNNING
            event (service web) has stopped 1 running tasks: (task t2).
            --- status=ACTIVE steady=false
            deployment ecs-svc/2 PRIMARY desired=2 failed=0 IN_PROGRESS
            task t3 ecs-svc/2 RUNNING
            task t4 ecs-svc/2 PROVISIONING
            event (service web) has started 1 tasks: (task t4).
            --- status=ACTIVE steady=true
            deployment ecs-svc/2 PRIMARY desired=2 failed=0 COMPLETED
            task t3 ecs-svc/2 RUNNING
            task t4 ecs-svc/2 RUNNING
            event (service web) (deployment ecs-svc/2) deployment completed.
            event (service web) has reached a steady state.
            ",
        );
    }

    #[test]
    fn failures_to_start_back_off_and_trip_the_breaker() {
        let mut w = World::new(service(1, 100, 200));
        for _ in 0..12 {
            w.now += 10_000_000;
            w.step();
            for t in &mut w.tasks {
                t.desired_running = false;
                t.last_status = "STOPPED".into();
                t.failed_to_start = true;
            }
            // The stopped tasks stay visible to the next pass, then go.
            let stopped = std::mem::take(&mut w.tasks);
            let mut n = w.next;
            step(&mut w.svc, &stopped, w.now, 1.0, &mut |_| {
                n += 1;
                format!("x{n}")
            });
        }
        let p = w.svc.primary().unwrap();
        assert_eq!(p.rollout_state, "FAILED");
        assert_eq!(p.failed_tasks, 10);
        assert!(w
            .svc
            .events
            .iter()
            .any(|e| e.message
                == "(service web) is unable to consistently start tasks successfully."));
    }

    #[test]
    fn circuit_breaker_rolls_back_to_the_last_completed_deployment() {
        let mut w = World::new(service(1, 100, 200));
        w.svc.deployment_configuration["deploymentCircuitBreaker"]["rollback"] = json!(true);
        w.step();
        w.run_all();
        w.step();
        // A new deployment whose tasks never start.
        w.svc.deployments[0].status = "ACTIVE".into();
        w.svc.deployments.insert(
            0,
            Deployment {
                id: "ecs-svc/2".into(),
                status: "PRIMARY".into(),
                task_definition: "td:2".into(),
                desired_count: 1,
                failed_tasks: 9,
                created_at: 0,
                updated_at: 0,
                launch_type: None,
                capacity_provider_strategy: None,
                platform_version: None,
                network_configuration: None,
                rollout_state: "IN_PROGRESS".into(),
                rollout_state_reason: String::new(),
            },
        );
        w.step();
        for t in &mut w.tasks {
            if t.deployment_id.as_deref() == Some("ecs-svc/2") {
                t.desired_running = false;
                t.last_status = "STOPPED".into();
                t.failed_to_start = true;
            }
        }
        w.log.clear();
        let stopped = w.tasks.clone();
        w.tasks.retain(|t| t.desired_running);
        w.now += 10_000_000;
        let mut n = 100;
        step(&mut w.svc, &stopped, w.now, 1.0, &mut |_| {
            n += 1;
            format!("ecs-svc/{n}")
        });
        w.tasks.retain(|t| t.desired_running);
        w.step();
        w.run_all();
        w.step();
        w.step();
        check(
            &w.log,
            "
            --- status=ACTIVE steady=false
            deployment ecs-svc/101 PRIMARY desired=1 failed=0 IN_PROGRESS
            deployment ecs-svc/1 ACTIVE desired=1 failed=0 COMPLETED
            task t1 ecs-svc/1 RUNNING
            task t3 ecs-svc/101 PROVISIONING
            event (service web) has started 1 tasks: (task t3).
            --- status=ACTIVE steady=false
            deployment ecs-svc/101 PRIMARY desired=1 failed=0 IN_PROGRESS
            deployment ecs-svc/1 ACTIVE desired=1 failed=0 COMPLETED
            task t3 ecs-svc/101 RUNNING
            event (service web) has stopped 1 running tasks: (task t1).
            --- status=ACTIVE steady=true
            deployment ecs-svc/101 PRIMARY desired=1 failed=0 COMPLETED
            task t3 ecs-svc/101 RUNNING
            event (service web) (deployment ecs-svc/101) deployment completed.
            event (service web) has reached a steady state.
            ",
        );
        assert_eq!(
            w.svc.primary().unwrap().rollout_state_reason,
            "ECS deployment ecs-svc/101 completed."
        );
        assert_eq!(w.svc.task_definition, "td:1");
        let reasons: Vec<&str> = w.svc.events.iter().map(|e| e.message.as_str()).collect();
        assert!(reasons.contains(
            &"(service web) (deployment ecs-svc/2) deployment failed: tasks failed to start."
        ));
    }

    #[test]
    fn delete_drains_then_goes_inactive() {
        let mut w = World::new(service(1, 100, 200));
        w.step();
        w.run_all();
        w.step();
        w.log.clear();
        w.svc.status = "DRAINING".into();
        w.step();
        w.step();
        check(
            &w.log,
            "
            --- status=DRAINING steady=true
            deployment ecs-svc/1 PRIMARY desired=1 failed=0 COMPLETED
            event (service web) has stopped 1 running tasks: (task t1).
            --- status=INACTIVE steady=true
            deployment ecs-svc/1 PRIMARY desired=1 failed=0 COMPLETED
            ",
        );
    }
}
