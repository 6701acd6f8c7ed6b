//! The stack executor: runs a create, update or delete in the background, resources in
//! parallel as their dependencies complete, and rolls back on failure (reverse dependency order).
//! Every step is one store write (resource record + event), so a restart can finish or roll
//! back whatever was running.

use crate::intrinsics::{Eval, Live};
use crate::model::{
    self, resource_event, stack_event, update_stack, Operation, OutputRec, ResRec, Stack,
};
use crate::prepare::{self, Prepared, Pseudo};
use crate::providers::{self, Done, Failure, Pcx};
use crate::template;
use portico_control::Control;
use portico_core::{time, AwsResult, Input, RequestContext, Service};
use portico_store::Scope;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub(crate) struct Engine {
    pub control: Control,
    /// Stacks with a task running; `true` when another operation was started meanwhile and the
    /// task must look at the stack again before it ends.
    running: parking_lot::Mutex<HashMap<String, bool>>,
    /// Running applies by stack id: sending a reason stops scheduling and cancels waits.
    cancels: parking_lot::Mutex<HashMap<String, watch::Sender<Option<String>>>>,
}

/// What a running operation carries around.
#[derive(Clone)]
struct Op {
    scope: Scope,
    stack_id: String,
    stack_name: String,
    rc: RequestContext,
    tags: Vec<(String, String)>,
    /// Values of NoEcho parameters: shown as `****` in events' ResourceProperties.
    secrets: Vec<String>,
}

/// How one resource is brought to its desired state.
enum Action {
    Create,
    Update,
    Replace,
    /// An update rollback finds the physical resource an update replaced, still waiting for
    /// cleanup with exactly the wanted properties: it becomes current again.
    SwapBack(Box<ResRec>),
}

type JobResult = (String, Result<(), (String, bool)>);

impl Live {
    /// What the evaluator knows of a recorded resource.
    fn of(r: &ResRec) -> Live {
        Live {
            type_name: r.type_name.clone(),
            physical: r.physical.clone(),
            attrs: r.attrs.clone(),
        }
    }
}

impl Engine {
    pub(crate) fn new(control: Control) -> Arc<Engine> {
        Arc::new(Engine {
            control,
            running: parking_lot::Mutex::new(HashMap::new()),
            cancels: parking_lot::Mutex::new(HashMap::new()),
        })
    }

    /// Starts (or resumes) the operation a stack records, unless one is already running.
    pub(crate) fn spawn(self: &Arc<Self>, scope: Scope, stack_id: String) {
        {
            let mut running = self.running.lock();
            if let Some(again) = running.get_mut(&stack_id) {
                // The running task is finishing the previous operation: it runs this one next.
                *again = true;
                return;
            }
            running.insert(stack_id.clone(), false);
        }
        let engine = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = engine.run(scope.clone(), stack_id.clone()).await {
                    tracing::error!(stack = %stack_id, error = %e, cause = ?e.cause, "stack operation failed");
                }
                let mut running = engine.running.lock();
                match running.get_mut(&stack_id) {
                    Some(again) if *again => *again = false,
                    _ => {
                        running.remove(&stack_id);
                        break;
                    }
                }
            }
        });
    }

    /// Stops a running create or update: nothing new starts, waits are cancelled, and the
    /// operation fails with `reason` (then rolls back, or deletes if that was requested).
    pub(crate) fn cancel(&self, stack_id: &str, reason: &str) {
        if let Some(tx) = self.cancels.lock().get(stack_id) {
            let _ = tx.send(Some(reason.to_string()));
        }
    }

    /// Waits until the stack's operation settles or `limit` passes (see `api::SETTLE`).
    pub(crate) async fn settle(&self, scope: &Scope, id: &str, limit: std::time::Duration) {
        let mut rx = self.control.store().watch();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match self.load(scope, id) {
                Ok(s) if s.status.ends_with("_IN_PROGRESS") && s.status != "REVIEW_IN_PROGRESS" => {
                }
                _ => return,
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                return;
            }
        }
    }

    fn load(&self, scope: &Scope, id: &str) -> AwsResult<Stack> {
        self.control
            .store()
            .read(|tx| model::get_stack(tx, scope, id))?
            .ok_or_else(|| model::not_found(id))
    }

    fn set_status(&self, op: &Op, status: &str, reason: Option<&str>) -> AwsResult<()> {
        let terminal = status.ends_with("_COMPLETE") || status.ends_with("_FAILED");
        if terminal {
            self.finish_change_set(op, status)?;
        }
        update_stack(self.control.store(), &op.scope, &op.stack_id, |s| {
            s.status = status.to_string();
            s.status_reason = reason.map(str::to_string);
            if status.ends_with("_COMPLETE") || status.ends_with("_FAILED") {
                s.operation = None;
            }
            if status == "DELETE_COMPLETE" {
                s.deletion_ms = Some(time::now_millis());
            }
            let e = stack_event(s, status, reason);
            ((), vec![e])
        })
    }

    /// The executing change set ends EXECUTE_COMPLETE or EXECUTE_FAILED with its operation.
    fn finish_change_set(&self, op: &Op, status: &str) -> AwsResult<()> {
        self.control.store().write(|tx| {
            for r in tx.list(&op.scope, model::KIND_CHANGESET, Some(&op.stack_id))? {
                let Ok(mut c) = serde_json::from_value::<model::ChangeSet>(r.body) else {
                    continue;
                };
                if c.execution_status == "EXECUTE_IN_PROGRESS" {
                    c.execution_status = if matches!(status, "CREATE_COMPLETE" | "UPDATE_COMPLETE")
                    {
                        "EXECUTE_COMPLETE".into()
                    } else {
                        "EXECUTE_FAILED".into()
                    };
                    tx.put_as(
                        &op.scope,
                        model::KIND_CHANGESET,
                        &c.id,
                        Some(&op.stack_id),
                        Some(&c.name),
                        &c,
                    )?;
                }
            }
            Ok(())
        })
    }

    async fn run(self: &Arc<Self>, scope: Scope, stack_id: String) -> AwsResult<()> {
        let s = self.load(&scope, &stack_id)?;
        let op = Op {
            scope: scope.clone(),
            stack_id: s.stack_id.clone(),
            stack_name: s.stack_name.clone(),
            rc: RequestContext::new(&scope.account, &scope.region),
            tags: s.tags.clone(),
            secrets: s
                .params
                .iter()
                .filter(|p| p.no_echo)
                .flat_map(|p| [Some(p.value.clone()), p.resolved.clone()])
                .flatten()
                .filter(|v| !v.is_empty())
                .collect(),
        };
        match (s.operation, s.status.as_str()) {
            (Some(Operation::Create), "CREATE_IN_PROGRESS") => self.create(&op, &s).await,
            (Some(Operation::Create), "ROLLBACK_IN_PROGRESS") => self.rollback_create(&op).await,
            (Some(_), "DELETE_IN_PROGRESS") => self.delete(&op).await,
            (Some(Operation::Update), "UPDATE_IN_PROGRESS") => self.update(&op, &s).await,
            (Some(Operation::Update), "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS") => {
                self.finish_update(&op, &s).await
            }
            (Some(Operation::Update), "UPDATE_ROLLBACK_IN_PROGRESS") => {
                self.rollback_update(&op).await
            }
            (Some(Operation::Update), "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS") => {
                self.finish_update_rollback(&op, &s).await
            }
            _ => Ok(()),
        }
    }

    fn pseudo(&self, s: &Stack) -> Pseudo {
        Pseudo {
            account: s_account(&s.stack_id),
            region: s_region(&s.stack_id),
            stack_name: s.stack_name.clone(),
            stack_id: s.stack_id.clone(),
            notification_arns: s.notification_arns.clone(),
        }
    }

    fn prepared(
        &self,
        s: &Stack,
        body: &str,
        params: &[model::StoredParam],
    ) -> Result<Prepared, String> {
        let t = template::parse(body).map_err(|e| e.message)?;
        prepare::prepare(&t, params, &self.pseudo(s)).map_err(|e| e.message)
    }

    async fn create(self: &Arc<Self>, op: &Op, s: &Stack) -> AwsResult<()> {
        let timer = s.timeout_minutes.filter(|m| *m > 0).map(|m| {
            let engine = self.clone();
            let id = op.stack_id.clone();
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_secs(
                    u64::try_from(m).unwrap_or(0).saturating_mul(60),
                ))
                .await;
                engine.cancel(&id, "Stack creation time exceeded the specified timeout. ");
            })
        });
        let result = match self.prepared(s, &s.template_body, &s.params) {
            Ok(p) => match self.apply(op, &p).await {
                Ok(()) => self.outputs(op, &p).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        if let Some(t) = timer {
            t.abort();
        }
        let s = self.load(&op.scope, &op.stack_id)?;
        if s.delete_requested {
            update_stack(self.control.store(), &op.scope, &op.stack_id, |s| {
                s.operation = Some(Operation::Delete);
                ((), vec![])
            })?;
            self.set_status(op, "DELETE_IN_PROGRESS", Some("User Initiated"))?;
            return self.delete(op).await;
        }
        let Err(reason) = result else {
            return self.set_status(op, "CREATE_COMPLETE", None);
        };
        match s.on_failure.as_deref() {
            Some("DO_NOTHING") => self.set_status(op, "CREATE_FAILED", Some(&reason)),
            _ if s.disable_rollback => self.set_status(op, "CREATE_FAILED", Some(&reason)),
            Some("DELETE") => {
                self.set_status(
                    op,
                    "ROLLBACK_IN_PROGRESS",
                    Some(&format!("{reason}Rollback requested by user.")),
                )?;
                update_stack(self.control.store(), &op.scope, &op.stack_id, |s| {
                    s.operation = Some(Operation::Delete);
                    ((), vec![])
                })?;
                let _ = self.cleanup(op, &HashSet::new(), true).await;
                self.set_status(op, "ROLLBACK_COMPLETE", None)?;
                self.set_status(op, "DELETE_IN_PROGRESS", Some("User Initiated"))?;
                self.set_status(op, "DELETE_COMPLETE", None)
            }
            _ => {
                self.set_status(
                    op,
                    "ROLLBACK_IN_PROGRESS",
                    Some(&format!("{reason}Rollback requested by user.")),
                )?;
                self.rollback_create(op).await
            }
        }
    }

    async fn rollback_create(self: &Arc<Self>, op: &Op) -> AwsResult<()> {
        match self.cleanup(op, &HashSet::new(), true).await {
            Ok(()) => self.set_status(op, "ROLLBACK_COMPLETE", None),
            Err(failed) => self.set_status(
                op,
                "ROLLBACK_FAILED",
                Some(&format!(
                    "The following resource(s) failed to delete: [{}]. ",
                    failed.join(", ")
                )),
            ),
        }
    }

    async fn delete(self: &Arc<Self>, op: &Op) -> AwsResult<()> {
        match self.cleanup(op, &HashSet::new(), false).await {
            Ok(()) => self.set_status(op, "DELETE_COMPLETE", None),
            Err(failed) => self.set_status(
                op,
                "DELETE_FAILED",
                Some(&format!(
                    "The following resource(s) failed to delete: [{}]. ",
                    failed.join(", ")
                )),
            ),
        }
    }

    async fn update(self: &Arc<Self>, op: &Op, s: &Stack) -> AwsResult<()> {
        let result = match self.prepared(s, &s.template_body, &s.params) {
            Ok(p) => match self.apply(op, &p).await {
                Ok(()) => self.outputs(op, &p).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                self.set_status(op, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", None)?;
                let s = self.load(&op.scope, &op.stack_id)?;
                self.finish_update(op, &s).await
            }
            Err(reason) => {
                let s = self.load(&op.scope, &op.stack_id)?;
                if s.disable_rollback {
                    return self.set_status(op, "UPDATE_FAILED", Some(&reason));
                }
                self.set_status(op, "UPDATE_ROLLBACK_IN_PROGRESS", Some(&reason))?;
                self.rollback_update(op).await
            }
        }
    }

    /// Resources to keep after an update: the ones the given template deploys.
    fn keep_set(&self, s: &Stack, body: &str, params: &[model::StoredParam]) -> HashSet<String> {
        match self.prepared(s, body, params) {
            Ok(p) => p.resources.keys().cloned().collect(),
            Err(_) => s.resources.keys().cloned().collect(),
        }
    }

    async fn finish_update(self: &Arc<Self>, op: &Op, s: &Stack) -> AwsResult<()> {
        let keep = self.keep_set(s, &s.template_body, &s.params);
        let _ = self.cleanup(op, &keep, false).await;
        update_stack(self.control.store(), &op.scope, &op.stack_id, |s| {
            s.previous = None;
            ((), vec![])
        })?;
        self.set_status(op, "UPDATE_COMPLETE", None)
    }

    async fn rollback_update(self: &Arc<Self>, op: &Op) -> AwsResult<()> {
        let s = self.load(&op.scope, &op.stack_id)?;
        let Some((body, params)) = s.previous.clone() else {
            return self.set_status(op, "UPDATE_ROLLBACK_COMPLETE", None);
        };
        // Back to the previous template and parameters; its outputs are recomputed below.
        update_stack(self.control.store(), &op.scope, &op.stack_id, |st| {
            st.template_body = body.clone();
            st.params = params.clone();
            st.description = template::parse(&body).ok().and_then(|t| {
                t.get("Description")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            });
            ((), vec![])
        })?;
        let ok = match self.prepared(&s, &body, &params) {
            Ok(p) => self.apply(op, &p).await.is_ok() && self.outputs(op, &p).await.is_ok(),
            Err(_) => false,
        };
        if !ok {
            return self.set_status(op, "UPDATE_ROLLBACK_FAILED", None);
        }
        self.set_status(op, "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", None)?;
        let s = self.load(&op.scope, &op.stack_id)?;
        self.finish_update_rollback(op, &s).await
    }

    async fn finish_update_rollback(self: &Arc<Self>, op: &Op, s: &Stack) -> AwsResult<()> {
        let keep = self.keep_set(s, &s.template_body, &s.params);
        let _ = self.cleanup(op, &keep, false).await;
        update_stack(self.control.store(), &op.scope, &op.stack_id, |s| {
            s.previous = None;
            ((), vec![])
        })?;
        self.set_status(op, "UPDATE_ROLLBACK_COMPLETE", None)
    }

    /// Availability zones as EC2 reports them (a fixed list until EC2 answers).
    async fn azs(&self, op: &Op) -> Vec<String> {
        let out = self
            .control
            .call(
                &op.rc,
                Service::Ec2,
                "DescribeAvailabilityZones",
                Input::empty(),
            )
            .await;
        let mut azs: Vec<String> = out
            .ok()
            .and_then(|v| {
                providers::field(&v, "AvailabilityZoneInfo")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|z| providers::fstr(z, "ZoneName"))
                            .collect()
                    })
            })
            .unwrap_or_default();
        if azs.is_empty() {
            azs = ["a", "b", "c"]
                .iter()
                .map(|x| format!("{}{x}", op.scope.region))
                .collect();
        }
        azs.sort();
        azs
    }

    /// Every export in the region (name -> value).
    fn exports(&self, scope: &Scope) -> HashMap<String, String> {
        self.control
            .store()
            .read(|tx| {
                let mut out = HashMap::new();
                for r in tx.list(scope, model::KIND_STACK, None)? {
                    let Ok(s) = serde_json::from_value::<Stack>(r.body) else {
                        continue;
                    };
                    if s.is_deleted() {
                        continue;
                    }
                    for o in s.outputs {
                        if let Some(e) = o.export {
                            out.insert(e, o.value);
                        }
                    }
                }
                Ok(out)
            })
            .unwrap_or_default()
    }

    /// Brings every resource of `p` to its desired state, in dependency order, in parallel.
    /// `Err` is the stack status reason.
    async fn apply(self: &Arc<Self>, op: &Op, p: &Prepared) -> Result<(), String> {
        let azs = self.azs(op).await;
        let exports = self.exports(&op.scope);
        let stack = self.load(&op.scope, &op.stack_id).map_err(|e| e.message)?;
        let declared: HashSet<String> = p.resources.keys().cloned().collect();
        let mut live: HashMap<String, Live> = stack
            .resources
            .values()
            .filter(|r| r.physical.is_some() && !r.status.starts_with("DELETE_"))
            .map(|r| (r.logical.clone(), Live::of(r)))
            .collect();
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let (ext_tx, mut ext_rx) = watch::channel(None::<String>);
        self.cancels.lock().insert(op.stack_id.clone(), ext_tx);
        let _unregister = Unregister(self, &op.stack_id);
        let mut ext_reason: Option<String> = None;
        let mut started: HashSet<String> = HashSet::new();
        let mut done: HashSet<String> = HashSet::new();
        let mut failed: Vec<String> = Vec::new();
        let mut set: JoinSet<JobResult> = JoinSet::new();
        loop {
            let mut progressed = true;
            if ext_reason.is_none() {
                if let Some(r) = ext_rx.borrow().clone() {
                    ext_reason = Some(r);
                    let _ = cancel_tx.send(true);
                }
            }
            while failed.is_empty() && ext_reason.is_none() && progressed {
                progressed = false;
                for id in &p.graph.order {
                    if started.contains(id) || !p.graph.deps[id].iter().all(|d| done.contains(d)) {
                        continue;
                    }
                    started.insert(id.clone());
                    let r = &p.resources[id];
                    let ty = r
                        .get("Type")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    let eval = Eval {
                        params: &p.values,
                        mappings: template::section(&p.template, "Mappings"),
                        conditions: &p.conditions,
                        declared: &declared,
                        live: &live,
                        azs: &azs,
                        region: &op.scope.region,
                        exports: &exports,
                    };
                    let props = match r.get("Properties") {
                        Some(v) => eval.value(v),
                        None => Ok(json!({})),
                    };
                    let metadata = match r.get("Metadata") {
                        Some(m) => eval.value(m).ok(),
                        None => None,
                    };
                    let existing = stack.resources.get(id).filter(|x| {
                        x.physical.is_some()
                            && !x.status.starts_with("DELETE_")
                            && x.status != "CREATE_FAILED"
                    });
                    let action = match existing {
                        None => Action::Create,
                        Some(x) if x.type_name != ty => Action::Replace,
                        Some(x) => match &props {
                            Ok(pv) if *pv == x.props && !x.status.ends_with("_FAILED") => {
                                done.insert(id.clone());
                                progressed = true;
                                continue;
                            }
                            Ok(pv) if providers::needs_replacement(&ty, &x.props, pv) => {
                                match stack.orphans.iter().find(|o| {
                                    o.logical == *id && o.type_name == ty && o.props == *pv
                                }) {
                                    Some(o) => Action::SwapBack(Box::new(o.clone())),
                                    None => Action::Replace,
                                }
                            }
                            _ => Action::Update,
                        },
                    };
                    let rec = ResRec {
                        logical: id.clone(),
                        type_name: ty.clone(),
                        physical: existing.and_then(|x| x.physical.clone()),
                        status: String::new(),
                        reason: None,
                        updated_ms: time::now_millis(),
                        props: props.clone().unwrap_or(Value::Null),
                        attrs: existing.map(|x| x.attrs.clone()).unwrap_or_default(),
                        deps: p.graph.deps[id].iter().cloned().collect(),
                        metadata,
                        deletion_policy: r.get("DeletionPolicy").map(template::scalar_text),
                        update_replace_policy: r
                            .get("UpdateReplacePolicy")
                            .map(template::scalar_text),
                    };
                    let old = existing.cloned();
                    let engine = self.clone();
                    let op2 = op.clone();
                    let rx = cancel_rx.clone();
                    let props_err = props.err();
                    set.spawn(async move {
                        let id = rec.logical.clone();
                        let out = engine
                            .run_resource(&op2, rec, old, action, props_err, rx)
                            .await;
                        (id, out)
                    });
                }
            }
            if set.is_empty() {
                break;
            }
            let joined = tokio::select! {
                j = set.join_next() => j,
                _ = ext_rx.changed() => continue,
            };
            let Some(joined) = joined else {
                break;
            };
            let (id, out) = match joined {
                Ok(x) => x,
                Err(e) => {
                    tracing::error!(error = %e, "resource task panicked");
                    failed.push("(internal)".into());
                    let _ = cancel_tx.send(true);
                    continue;
                }
            };
            match out {
                Ok(()) => {
                    if let Ok(s) = self.load(&op.scope, &op.stack_id) {
                        if let Some(r) = s.resources.get(&id) {
                            live.insert(id.clone(), Live::of(r));
                        }
                    }
                    done.insert(id);
                }
                Err((_, cancelled)) => {
                    if !cancelled {
                        failed.push(id);
                    }
                    let _ = cancel_tx.send(true);
                }
            }
        }
        if failed.is_empty() && done.len() == p.graph.order.len() {
            return Ok(());
        }
        if let Some(r) = ext_reason {
            if failed.is_empty() {
                return Err(r);
            }
        }
        failed.sort();
        let s = self.load(&op.scope, &op.stack_id).map_err(|e| e.message)?;
        let verb = if failed.iter().any(|f| {
            s.resources
                .get(f)
                .is_some_and(|r| r.status == "UPDATE_FAILED")
        }) {
            "update"
        } else {
            "create"
        };
        Err(format!(
            "The following resource(s) failed to {verb}: [{}]. ",
            failed.join(", ")
        ))
    }

    fn record(
        &self,
        op: &Op,
        rec: &ResRec,
        status: &str,
        reason: Option<&str>,
        props: Option<&Value>,
    ) -> Result<(), String> {
        let mut rec = rec.clone();
        rec.status = status.to_string();
        rec.reason = reason.map(str::to_string);
        rec.updated_ms = time::now_millis();
        let shown = props.map(|p| mask(p, &op.secrets));
        update_stack(self.control.store(), &op.scope, &op.stack_id, |s| {
            let e = resource_event(
                s,
                &rec.logical,
                &rec.type_name,
                rec.physical.as_deref().unwrap_or(""),
                status,
                reason,
                shown.as_ref(),
            );
            s.resources.insert(rec.logical.clone(), rec);
            ((), vec![e])
        })
        .map_err(|e| e.message)
    }

    /// Creates, updates or replaces one resource, recording each step.
    async fn run_resource(
        &self,
        op: &Op,
        mut rec: ResRec,
        old: Option<ResRec>,
        action: Action,
        props_err: Option<String>,
        cancel: watch::Receiver<bool>,
    ) -> Result<(), (String, bool)> {
        if let Action::SwapBack(orig) = &action {
            let current = old.clone();
            let deps = rec.deps.clone();
            return update_stack(self.control.store(), &op.scope, &op.stack_id, |s| {
                s.orphans
                    .retain(|o| !(o.logical == orig.logical && o.physical == orig.physical));
                if let Some(mut c) = current.filter(|c| c.physical.is_some()) {
                    c.status = "UPDATE_COMPLETE".into();
                    s.orphans.push(c);
                }
                let mut r = (**orig).clone();
                r.status = "UPDATE_COMPLETE".into();
                r.reason = None;
                r.updated_ms = time::now_millis();
                r.deps = deps;
                let physical = r.physical.clone().unwrap_or_default();
                let events = ["UPDATE_IN_PROGRESS", "UPDATE_COMPLETE"]
                    .iter()
                    .map(|st| {
                        resource_event(s, &r.logical, &r.type_name, &physical, st, None, None)
                    })
                    .collect();
                s.resources.insert(r.logical.clone(), r);
                ((), events)
            })
            .map_err(|e| (e.message, false));
        }
        let (in_progress, complete, failed) = match action {
            Action::Create => ("CREATE_IN_PROGRESS", "CREATE_COMPLETE", "CREATE_FAILED"),
            _ => ("UPDATE_IN_PROGRESS", "UPDATE_COMPLETE", "UPDATE_FAILED"),
        };
        let fail = |rec: &ResRec, reason: String, cancelled: bool| {
            let _ = self.record(op, rec, failed, Some(&reason), None);
            Err((reason, cancelled))
        };
        if let Some(e) = props_err {
            let mut r = rec.clone();
            r.physical = old.as_ref().and_then(|o| o.physical.clone());
            if matches!(action, Action::Create) {
                let _ = self.record(op, &r, in_progress, None, None);
            }
            return fail(&r, e, false);
        }
        let cx = Pcx {
            control: &self.control,
            rc: &op.rc,
            stack_name: &op.stack_name,
            stack_id: &op.stack_id,
            logical: &rec.logical,
            tags: &op.tags,
            cancel,
        };
        let mut props = rec.props.clone();
        if let Err(reason) = dynamic_references(&self.control, &op.rc, &mut props).await {
            let mut r = rec.clone();
            r.physical = old.as_ref().and_then(|o| o.physical.clone());
            if matches!(action, Action::Create) {
                let _ = self.record(op, &r, in_progress, None, None);
            }
            return fail(&r, reason, false);
        }
        match action {
            Action::Create | Action::Replace => {
                let replacing = matches!(action, Action::Replace);
                if replacing {
                    // The old physical resource stays in place until the new one is complete.
                    let old_rec = old.clone().unwrap_or_default();
                    let mut shown = old_rec.clone();
                    shown.props = props.clone();
                    let _ = self.record(
                        op,
                        &shown,
                        in_progress,
                        Some("Requested update requires the creation of a new physical resource; hence creating one."),
                        Some(&props),
                    );
                } else {
                    rec.physical = None;
                    let _ = self.record(op, &rec, in_progress, None, Some(&props));
                }
                let created = providers::create(&cx, &rec.type_name, &props).await;
                let mut done = match created {
                    Ok(d) => d,
                    Err(Failure { physical, reason }) => {
                        return self.fail_new(
                            op,
                            &rec,
                            old.as_ref(),
                            physical,
                            failed,
                            reason,
                            replacing,
                        );
                    }
                };
                rec.physical = Some(done.physical.clone());
                rec.attrs = done.attrs.clone();
                if !replacing {
                    let _ = self.record(
                        op,
                        &rec,
                        in_progress,
                        Some("Resource creation Initiated"),
                        None,
                    );
                } else {
                    let _ = self.record_event_only(
                        op,
                        &rec,
                        in_progress,
                        Some("Resource creation Initiated"),
                    );
                }
                if let Err(f) = providers::stabilize(&cx, &rec.type_name, &mut done).await {
                    let cancelled = f.reason == "Resource creation cancelled";
                    let r = self.fail_new(
                        op,
                        &rec,
                        old.as_ref(),
                        Some(done.physical.clone()),
                        failed,
                        f.reason,
                        replacing,
                    );
                    return r.map_err(|(m, _)| (m, cancelled));
                }
                rec.attrs = done.attrs;
                if replacing {
                    if let Some(o) = old {
                        let _ = update_stack(self.control.store(), &op.scope, &op.stack_id, |s| {
                            s.orphans.push(o);
                            ((), vec![])
                        });
                    }
                }
                self.record(op, &rec, complete, None, None)
                    .map_err(|m| (m, false))
            }
            Action::SwapBack(_) => Ok(()),
            Action::Update => {
                let Some(o) = old else {
                    return fail(&rec, "nothing to update".into(), false);
                };
                let physical = o.physical.clone().unwrap_or_default();
                rec.physical = Some(physical.clone());
                let _ = self.record(op, &rec, in_progress, None, Some(&props));
                let mut done: Done = match providers::update(
                    &cx,
                    &rec.type_name,
                    &physical,
                    &o.props,
                    &props,
                    &o.attrs,
                )
                .await
                {
                    Ok(d) => d,
                    Err(f) => {
                        let mut back = o.clone();
                        back.physical = Some(physical);
                        return fail(&back, f.reason, false);
                    }
                };
                if let Err(f) = providers::stabilize(&cx, &rec.type_name, &mut done).await {
                    let cancelled = f.reason == "Resource creation cancelled";
                    return fail(&rec, f.reason, cancelled);
                }
                rec.attrs = done.attrs;
                self.record(op, &rec, complete, None, None)
                    .map_err(|m| (m, false))
            }
        }
    }

    fn record_event_only(
        &self,
        op: &Op,
        rec: &ResRec,
        status: &str,
        reason: Option<&str>,
    ) -> Result<(), String> {
        update_stack(self.control.store(), &op.scope, &op.stack_id, |s| {
            let e = resource_event(
                s,
                &rec.logical,
                &rec.type_name,
                rec.physical.as_deref().unwrap_or(""),
                status,
                reason,
                None,
            );
            ((), vec![e])
        })
        .map_err(|e| e.message)
    }

    /// A new physical resource failed: record the failure; for a replacement the old resource
    /// stays current and the new one (if any) is queued for deletion.
    #[allow(clippy::too_many_arguments)]
    fn fail_new(
        &self,
        op: &Op,
        rec: &ResRec,
        old: Option<&ResRec>,
        physical: Option<String>,
        failed: &str,
        reason: String,
        replacing: bool,
    ) -> Result<(), (String, bool)> {
        let cancelled = reason == "Resource creation cancelled";
        if replacing {
            let mut orphan = rec.clone();
            orphan.physical = physical;
            let mut cur = old.cloned().unwrap_or_else(|| rec.clone());
            cur.status = failed.to_string();
            cur.reason = Some(reason.clone());
            let _ = update_stack(self.control.store(), &op.scope, &op.stack_id, |s| {
                let e = resource_event(
                    s,
                    &cur.logical,
                    &cur.type_name,
                    orphan.physical.as_deref().unwrap_or(""),
                    failed,
                    Some(&reason),
                    None,
                );
                if orphan.physical.is_some() {
                    orphan.status = "CREATE_COMPLETE".into();
                    s.orphans.push(orphan);
                }
                s.resources.insert(cur.logical.clone(), cur);
                ((), vec![e])
            });
        } else {
            let mut r = rec.clone();
            r.physical = physical;
            let _ = self.record(op, &r, failed, Some(&reason), None);
        }
        Err((reason, cancelled))
    }

    /// Evaluates Outputs and records them. `Err` is the stack status reason.
    async fn outputs(&self, op: &Op, p: &Prepared) -> Result<(), String> {
        let stack = self.load(&op.scope, &op.stack_id).map_err(|e| e.message)?;
        let azs = self.azs(op).await;
        let exports = self.exports(&op.scope);
        let declared: HashSet<String> = p.resources.keys().cloned().collect();
        let live: HashMap<String, Live> = stack
            .resources
            .values()
            .filter(|r| declared.contains(&r.logical))
            .map(|r| (r.logical.clone(), Live::of(r)))
            .collect();
        let eval = Eval {
            params: &p.values,
            mappings: template::section(&p.template, "Mappings"),
            conditions: &p.conditions,
            declared: &declared,
            live: &live,
            azs: &azs,
            region: &op.scope.region,
            exports: &exports,
        };
        let mut outs = Vec::new();
        for (key, o) in template::section(&p.template, "Outputs") {
            if let Some(c) = o.get("Condition").and_then(Value::as_str) {
                if !p.conditions.get(c).copied().unwrap_or(false) {
                    continue;
                }
            }
            let raw = o.get("Value").cloned().unwrap_or(Value::Null);
            let fname = raw
                .as_object()
                .and_then(|m| m.keys().next().cloned())
                .map(|f| format!("/{f}"))
                .unwrap_or_default();
            let value = eval
                .value(&raw)
                .map_err(|m| format!("[Error] /Outputs/{key}/Value{fname}: {m}. "))?;
            let value = match value {
                Value::Array(_) | Value::Object(_) | Value::Null => {
                    return Err(format!(
                        "Template error: every value of the Outputs section must be a string: Outputs/{key}/Value"
                    ))
                }
                v => template::scalar_text(&v),
            };
            let export = match o.get("Export").and_then(|e| e.get("Name")) {
                Some(n) => {
                    Some(template::scalar_text(&eval.value(n).map_err(|m| {
                        format!("[Error] /Outputs/{key}/Export/Name: {m}. ")
                    })?))
                }
                None => None,
            };
            if let Some(e) = &export {
                let taken = self.control.store().read(|tx| {
                    for r in tx.list(&op.scope, model::KIND_STACK, None)? {
                        let Ok(s) = serde_json::from_value::<Stack>(r.body) else {
                            continue;
                        };
                        if s.stack_id != op.stack_id
                            && !s.is_deleted()
                            && s.outputs.iter().any(|o| o.export.as_deref() == Some(e))
                        {
                            return Ok(Some(s.stack_name));
                        }
                    }
                    Ok(None)
                });
                if let Ok(Some(other)) = taken {
                    return Err(format!(
                        "Export with name {e} is already exported by stack {other}. "
                    ));
                }
            }
            outs.push(OutputRec {
                key: key.clone(),
                value,
                description: o.get("Description").map(template::scalar_text),
                export,
            });
        }
        update_stack(self.control.store(), &op.scope, &op.stack_id, |s| {
            s.outputs = outs;
            ((), vec![])
        })
        .map_err(|e| e.message)
    }

    /// Deletes every resource not in `keep` (and every replaced physical resource), dependents
    /// first, in parallel. `Err` lists the resources that failed to delete.
    async fn cleanup(
        self: &Arc<Self>,
        op: &Op,
        keep: &HashSet<String>,
        create_rollback: bool,
    ) -> Result<(), Vec<String>> {
        let s = self
            .load(&op.scope, &op.stack_id)
            .map_err(|e| vec![e.message])?;
        // Replaced physical resources first: nothing in the stack depends on them any more.
        let mut failed_orphans = Vec::new();
        for o in s.orphans.clone() {
            if self
                .delete_one(op, &o, true, create_rollback)
                .await
                .is_err()
            {
                failed_orphans.push(o.logical.clone());
            }
        }
        let _ = update_stack(self.control.store(), &op.scope, &op.stack_id, |s| {
            s.orphans.clear();
            ((), vec![])
        });
        let targets: HashMap<String, ResRec> = s
            .resources
            .iter()
            .filter(|(k, r)| {
                !keep.contains(*k)
                    && !matches!(r.status.as_str(), "DELETE_COMPLETE" | "DELETE_SKIPPED")
            })
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect();
        let mut remaining: BTreeSet<String> = targets.keys().cloned().collect();
        let mut blocked: HashSet<String> = HashSet::new();
        let mut failed: Vec<String> = Vec::new();
        let mut set: JoinSet<(String, bool)> = JoinSet::new();
        let mut running: HashSet<String> = HashSet::new();
        loop {
            let ready: Vec<String> = remaining
                .iter()
                .filter(|x| {
                    !running.contains(*x)
                        && !blocked.contains(*x)
                        && !remaining
                            .iter()
                            .any(|o| o != *x && targets[o].deps.contains(x))
                })
                .cloned()
                .collect();
            for id in ready {
                running.insert(id.clone());
                let engine = self.clone();
                let op2 = op.clone();
                let rec = targets[&id].clone();
                set.spawn(async move {
                    let ok = engine
                        .delete_one(&op2, &rec, false, create_rollback)
                        .await
                        .is_ok();
                    (rec.logical, ok)
                });
            }
            let Some(j) = set.join_next().await else {
                break;
            };
            let Ok((id, ok)) = j else {
                continue;
            };
            running.remove(&id);
            remaining.remove(&id);
            if !ok {
                failed.push(id.clone());
                // What this resource depends on must stay: it still exists.
                let mut stack = vec![id];
                while let Some(x) = stack.pop() {
                    for d in &targets[&x].deps {
                        if remaining.contains(d) && blocked.insert(d.clone()) {
                            stack.push(d.clone());
                        }
                    }
                }
            }
            if remaining.iter().all(|x| blocked.contains(x)) && running.is_empty() {
                break;
            }
        }
        // Records deleted by an update's cleanup leave the stack.
        if !keep.is_empty() {
            let _ = update_stack(self.control.store(), &op.scope, &op.stack_id, |s| {
                s.resources.retain(|k, r| {
                    keep.contains(k)
                        || !matches!(r.status.as_str(), "DELETE_COMPLETE" | "DELETE_SKIPPED")
                });
                ((), vec![])
            });
        }
        failed.extend(failed_orphans);
        if failed.is_empty() {
            Ok(())
        } else {
            failed.sort();
            Err(failed)
        }
    }

    async fn delete_one(
        &self,
        op: &Op,
        rec: &ResRec,
        orphan: bool,
        create_rollback: bool,
    ) -> Result<(), String> {
        let policy = if orphan {
            rec.update_replace_policy.as_deref()
        } else {
            rec.deletion_policy.as_deref()
        };
        let retain = match policy {
            Some("Retain") => true,
            Some("RetainExceptOnCreate") => !create_rollback,
            _ => false,
        };
        let write = |status: &str, reason: Option<&str>| -> Result<(), String> {
            update_stack(self.control.store(), &op.scope, &op.stack_id, |s| {
                let e = resource_event(
                    s,
                    &rec.logical,
                    &rec.type_name,
                    rec.physical.as_deref().unwrap_or(""),
                    status,
                    reason,
                    None,
                );
                if !orphan {
                    if let Some(r) = s.resources.get_mut(&rec.logical) {
                        r.status = status.to_string();
                        r.reason = reason.map(str::to_string);
                        r.updated_ms = time::now_millis();
                    }
                }
                ((), vec![e])
            })
            .map_err(|e| e.message)
        };
        if retain && rec.physical.is_some() {
            return write("DELETE_SKIPPED", None);
        }
        write("DELETE_IN_PROGRESS", None)?;
        if let Some(physical) = &rec.physical {
            let (_tx, rx) = watch::channel(false);
            let cx = Pcx {
                control: &self.control,
                rc: &op.rc,
                stack_name: &op.stack_name,
                stack_id: &op.stack_id,
                logical: &rec.logical,
                tags: &op.tags,
                cancel: rx,
            };
            if let Err(f) =
                providers::delete(&cx, &rec.type_name, physical, &rec.props, &rec.attrs).await
            {
                write("DELETE_FAILED", Some(&f.reason))?;
                return Err(f.reason);
            }
        }
        write("DELETE_COMPLETE", None)
    }

    /// On start-up: every stack left in progress is finished or rolled back.
    pub(crate) fn recover(self: &Arc<Self>) {
        let stacks = self
            .control
            .store()
            .read(|tx| Ok(tx.list_all(model::KIND_STACK)?))
            .unwrap_or_default();
        for r in stacks {
            let Ok(s) = serde_json::from_value::<Stack>(r.body) else {
                continue;
            };
            if !s.status.ends_with("_IN_PROGRESS") || s.status == "REVIEW_IN_PROGRESS" {
                continue;
            }
            let reason = "Portico restarted while the operation was in progress. Rollback requested by user.";
            let scope = r.scope.clone();
            let next = match s.status.as_str() {
                "CREATE_IN_PROGRESS" => Some("ROLLBACK_IN_PROGRESS"),
                "UPDATE_IN_PROGRESS" => Some("UPDATE_ROLLBACK_IN_PROGRESS"),
                _ => None,
            };
            if let Some(next) = next {
                let res = update_stack(self.control.store(), &scope, &s.stack_id, |st| {
                    if st.operation.is_none() {
                        st.operation = Some(if next == "ROLLBACK_IN_PROGRESS" {
                            Operation::Create
                        } else {
                            Operation::Update
                        });
                    }
                    st.status = next.to_string();
                    st.status_reason = Some(reason.to_string());
                    let e = stack_event(st, next, Some(reason));
                    ((), vec![e])
                });
                if let Err(e) = res {
                    tracing::error!(stack = %s.stack_id, error = %e, "cannot recover stack");
                    continue;
                }
            }
            tracing::info!(stack = %s.stack_name, status = %s.status, "resuming interrupted stack operation");
            self.spawn(scope, s.stack_id.clone());
        }
    }
}

/// Resolves `{{resolve:ssm:name[:version]}}` in string values through Parameter Store. Other
/// services' references (`ssm-secure`, `secretsmanager`) fail the resource with a clear reason:
/// a reference is never passed through as literal text.
async fn dynamic_references(
    control: &Control,
    rc: &RequestContext,
    v: &mut Value,
) -> Result<(), String> {
    match v {
        Value::String(s) if s.contains("{{resolve:") => {
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(i) = rest.find("{{resolve:") {
                out.push_str(&rest[..i]);
                let after = &rest[i + 2..];
                let Some(end) = after.find("}}") else {
                    return Err(format!("Malformed dynamic reference in {s}"));
                };
                let inner = &after[..end];
                let parts: Vec<&str> = inner.splitn(3, ':').collect();
                match parts.as_slice() {
                    ["resolve", "ssm", name_ver] => {
                        let (name, version) = match name_ver.rsplit_once(':') {
                            Some((n, ver)) if ver.chars().all(|c| c.is_ascii_digit()) => (n, Some(ver)),
                            _ => (*name_ver, None),
                        };
                        let full = match version {
                            Some(ver) => format!("{name}:{ver}"),
                            None => name.to_string(),
                        };
                        let got = control
                            .call(rc, Service::Ssm, "GetParameter", Input(json!({"Name": full})))
                            .await
                            .ok()
                            .and_then(|o| o["Parameter"]["Value"].as_str().map(str::to_string));
                        match got {
                            Some(val) => out.push_str(&val),
                            None => {
                                return Err(format!(
                                    "Unable to fetch parameters [{name}] from parameter store for this account."
                                ))
                            }
                        }
                    }
                    ["resolve", svc, _] => {
                        return Err(format!(
                            "Dynamic references to {svc} ({{{{{inner}}}}}) are not supported by Portico"
                        ))
                    }
                    _ => return Err(format!("Malformed dynamic reference {{{{{inner}}}}}")),
                }
                rest = &after[end + 2..];
            }
            out.push_str(rest);
            *s = out;
            Ok(())
        }
        Value::Array(a) => {
            for x in a.iter_mut() {
                Box::pin(dynamic_references(control, rc, x)).await?;
            }
            Ok(())
        }
        Value::Object(m) => {
            for x in m.values_mut() {
                Box::pin(dynamic_references(control, rc, x)).await?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// `v` with every NoEcho parameter value replaced by `****`.
fn mask(v: &Value, secrets: &[String]) -> Value {
    match v {
        Value::String(s) => {
            let mut out = s.clone();
            for secret in secrets {
                out = out.replace(secret.as_str(), "****");
            }
            Value::String(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| mask(x, secrets)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), mask(x, secrets)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Removes a stack's cancel handle when its apply ends.
struct Unregister<'a>(&'a Engine, &'a str);

impl Drop for Unregister<'_> {
    fn drop(&mut self) {
        self.0.cancels.lock().remove(self.1);
    }
}

fn s_account(stack_id: &str) -> String {
    stack_id.split(':').nth(4).unwrap_or_default().to_string()
}

fn s_region(stack_id: &str) -> String {
    stack_id.split(':').nth(3).unwrap_or_default().to_string()
}
