//! The CloudFormation API (awsQuery, version 2010-05-15): validate and record, then hand the
//! work to the executor. Outputs are JSON objects whose keys become XML elements.

use crate::executor::Engine;
use crate::model::{
    self, find_stack, not_found, not_found_brackets, put_event, put_stack, stack_event, ChangeSet,
    Operation, Stack, StoredParam,
};
use crate::prepare::{self, given_params, validation, Pseudo};
use crate::template::{self, section, MAX_BODY};
use portico_core::{time, AwsError, AwsResult, Input, RequestContext, Service};
use portico_store::Scope;
use serde_json::{json, Value};
use std::sync::Arc;

/// Stack-changing calls answer once the operation has settled or after this long, whichever
/// comes first. AWS answers at once; the CLI's waiters then poll every 30 s (5 s for change
/// sets), so a small stack that settles within this bound is reported complete at the waiter's
/// first poll instead of half a minute later. What any later call sees is the same either way.
pub(crate) const SETTLE: std::time::Duration = std::time::Duration::from_millis(1500);

pub(crate) async fn dispatch(
    engine: &Arc<Engine>,
    rc: &RequestContext,
    op: &str,
    input: Input,
) -> AwsResult<Value> {
    let a = Api {
        engine,
        rc,
        scope: Scope::of(rc),
    };
    match op {
        "ValidateTemplate" => a.validate_template(&input),
        "CreateStack" => a.settled(a.create_stack(&input).await).await,
        "UpdateStack" => a.settled(a.update_stack(&input).await).await,
        "DeleteStack" => {
            let name = input.string("StackName").unwrap_or_default();
            let id = a.stack(&name).ok().flatten().map(|s| s.stack_id);
            let out = a.delete_stack(&input)?;
            if let Some(id) = id {
                engine.settle(&a.scope, &id, SETTLE).await;
            }
            Ok(out)
        }
        "DescribeStacks" => a.describe_stacks(&input),
        "ListStacks" => a.list_stacks(&input),
        "DescribeStackEvents" => a.describe_stack_events(&input),
        "DescribeStackResource" => a.describe_stack_resource(&input),
        "DescribeStackResources" => a.describe_stack_resources(&input),
        "ListStackResources" => a.list_stack_resources(&input),
        "GetTemplate" => a.get_template(&input),
        "GetTemplateSummary" => a.get_template_summary(&input),
        "CreateChangeSet" => a.create_change_set(&input).await,
        "DescribeChangeSet" => a.describe_change_set(&input),
        "ExecuteChangeSet" => {
            let out = a.execute_change_set(&input)?;
            if let Some(id) = out.get("StackId").and_then(Value::as_str) {
                engine.settle(&a.scope, id, SETTLE).await;
            }
            Ok(json!({}))
        }
        "DeleteChangeSet" => a.delete_change_set(&input),
        "ListChangeSets" => a.list_change_sets(&input),
        "UpdateTerminationProtection" => a.update_termination_protection(&input),
        "ListExports" => a.list_exports(),
        "ListImports" => a.list_imports(&input),
        "SetStackPolicy" => a.set_stack_policy(&input),
        "GetStackPolicy" => a.get_stack_policy(&input),
        _ => Err(Service::CloudFormation.unknown_operation(op)),
    }
}

struct Api<'a> {
    engine: &'a Arc<Engine>,
    rc: &'a RequestContext,
    scope: Scope,
}

fn check_stack_name(name: &str) -> AwsResult<()> {
    let ok = name.len() <= 128
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok || name.starts_with("arn:") {
        Ok(())
    } else {
        Err(AwsError::validation(
            "ValidationError",
            &[format!("Value '{name}' at 'stackName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z][-a-zA-Z0-9]*|arn:[-a-zA-Z0-9:/._+]*")],
        ))
    }
}

/// The template body of a request (`TemplateURL` needs S3, which Portico does not have).
fn body_of(input: &Input) -> AwsResult<String> {
    if let Some(b) = input.string("TemplateBody") {
        if b.len() > MAX_BODY {
            return Err(AwsError::validation(
                "ValidationError",
                &[format!("Value '{}' at 'templateBody' failed to satisfy constraint: Member must have length less than or equal to {MAX_BODY}", b.chars().take(64).collect::<String>())],
            ));
        }
        return Ok(b);
    }
    if input.has("TemplateURL") {
        return Err(validation("TemplateURL must be a supported URL."));
    }
    Err(validation(
        "Either Template URL or Template Body must be specified.",
    ))
}

fn parsed(body: &str) -> AwsResult<Value> {
    let t = template::parse(body)?;
    template::validate(&t)?;
    Ok(t)
}

fn tags_of(input: &Input) -> Vec<(String, String)> {
    input
        .list("Tags")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|t| Some((t.string("Key")?, t.string("Value").unwrap_or_default())))
        .collect()
}

fn caps_of(input: &Input) -> Vec<String> {
    input.str_list("Capabilities").unwrap_or_default()
}

fn render_params(params: &[StoredParam]) -> Value {
    Value::Array(
        params
            .iter()
            .map(|p| {
                let mut v = json!({
                    "ParameterKey": p.key,
                    "ParameterValue": if p.no_echo { "****".to_string() } else { p.value.clone() },
                });
                if let Some(r) = &p.resolved {
                    v["ResolvedValue"] = json!(if p.no_echo { "****" } else { r.as_str() });
                }
                v
            })
            .collect(),
    )
}

fn render_tags(tags: &[(String, String)]) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect(),
    )
}

/// Starts the operation a user asked for: the stack's status becomes `<OP>_IN_PROGRESS` "User
/// Initiated", and the stack and its event are written in `tx`.
fn user_initiated(
    tx: &portico_store::Tx<'_>,
    scope: &portico_store::Scope,
    s: &mut Stack,
    op: Operation,
) -> AwsResult<()> {
    let status = match op {
        Operation::Create => "CREATE_IN_PROGRESS",
        Operation::Update => "UPDATE_IN_PROGRESS",
        Operation::Delete => "DELETE_IN_PROGRESS",
    };
    s.status = status.into();
    s.status_reason = Some("User Initiated".into());
    s.operation = Some(op);
    put_stack(tx, scope, s)?;
    put_event(tx, scope, &stack_event(s, status, Some("User Initiated")))
}

/// One resource as DescribeStackResource(s) and ListStackResources show it: `stack` adds its
/// StackName and StackId, `time_key` names the timestamp member, `metadata` adds the template's
/// Metadata (DescribeStackResource only). Members in AWS's order.
fn resource_row(r: &model::ResRec, stack: Option<&Stack>, time_key: &str, metadata: bool) -> Value {
    let mut v = serde_json::Map::new();
    if let Some(s) = stack {
        v.insert("StackName".into(), json!(s.stack_name));
        v.insert("StackId".into(), json!(s.stack_id));
    }
    v.insert("LogicalResourceId".into(), json!(r.logical));
    v.insert(
        "PhysicalResourceId".into(),
        json!(r.physical.clone().unwrap_or_default()),
    );
    v.insert("ResourceType".into(), json!(r.type_name));
    v.insert(time_key.into(), json!(time::iso_millis(r.updated_ms)));
    v.insert("ResourceStatus".into(), json!(r.status));
    if let Some(reason) = &r.reason {
        v.insert("ResourceStatusReason".into(), json!(reason));
    }
    if let (true, Some(m)) = (metadata, &r.metadata) {
        v.insert("Metadata".into(), json!(m.to_string()));
    }
    v.insert(
        "DriftInformation".into(),
        json!({"StackResourceDriftStatus": "NOT_CHECKED"}),
    );
    Value::Object(v)
}

fn render_stack(s: &Stack) -> Value {
    let mut v = json!({
        "StackId": s.stack_id,
        "StackName": s.stack_name,
    });
    if let Some(c) = &s.change_set_id {
        v["ChangeSetId"] = json!(c);
    }
    if let Some(d) = &s.description {
        v["Description"] = json!(d);
    }
    if !s.params.is_empty() {
        v["Parameters"] = render_params(&s.params);
    }
    v["CreationTime"] = json!(time::iso_millis(s.creation_ms));
    if let Some(d) = s.deletion_ms {
        v["DeletionTime"] = json!(time::iso_millis(d));
    }
    if let Some(u) = s.last_updated_ms {
        v["LastUpdatedTime"] = json!(time::iso_millis(u));
    }
    v["RollbackConfiguration"] = json!({});
    v["StackStatus"] = json!(s.status);
    if let Some(r) = &s.status_reason {
        v["StackStatusReason"] = json!(r);
    }
    v["DisableRollback"] = json!(s.disable_rollback);
    v["NotificationARNs"] = json!(s.notification_arns);
    if let Some(t) = s.timeout_minutes {
        v["TimeoutInMinutes"] = json!(t);
    }
    if !s.capabilities.is_empty() {
        v["Capabilities"] = json!(s.capabilities);
    }
    if !s.outputs.is_empty() {
        v["Outputs"] = Value::Array(
            s.outputs
                .iter()
                .map(|o| {
                    let mut x = json!({"OutputKey": o.key, "OutputValue": o.value});
                    if let Some(d) = &o.description {
                        x["Description"] = json!(d);
                    }
                    if let Some(e) = &o.export {
                        x["ExportName"] = json!(e);
                    }
                    x
                })
                .collect(),
        );
    }
    if let Some(r) = &s.role_arn {
        v["RoleARN"] = json!(r);
    }
    v["Tags"] = render_tags(&s.tags);
    v["EnableTerminationProtection"] = json!(s.termination_protection);
    v["DriftInformation"] = json!({"StackDriftStatus": "NOT_CHECKED"});
    v
}

/// DescribeStackEvents page size (AWS pages at 100).
const EVENTS_PAGE: usize = 100;

const UPDATABLE: &[&str] = &[
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
];

impl Api<'_> {
    /// Waits (bounded) for the operation a call started; passes the call's answer through.
    async fn settled(&self, out: AwsResult<Value>) -> AwsResult<Value> {
        if let Ok(v) = &out {
            if let Some(id) = v.get("StackId").and_then(Value::as_str) {
                self.engine.settle(&self.scope, id, SETTLE).await;
            }
        }
        out
    }

    fn store(&self) -> &portico_store::Store {
        self.engine.control.store()
    }

    fn stack(&self, name: &str) -> AwsResult<Option<Stack>> {
        self.store().read(|tx| find_stack(tx, &self.scope, name))
    }

    fn pseudo(&self, name: &str, id: &str, arns: &[String]) -> Pseudo {
        Pseudo {
            account: self.rc.account_id.clone(),
            region: self.rc.region.clone(),
            stack_name: name.to_string(),
            stack_id: id.to_string(),
            notification_arns: arns.to_vec(),
        }
    }

    fn new_stack_id(&self, name: &str) -> String {
        self.rc.arn(
            "cloudformation",
            &format!("stack/{name}/{}", portico_core::ids::uuid()),
        )
    }

    fn validate_template(&self, input: &Input) -> AwsResult<Value> {
        let body = body_of(input)?;
        let t = parsed(&body)?;
        // References and cycles, with every resource and both branches of every Fn::If.
        let names: std::collections::HashSet<String> =
            section(&t, "Parameters").keys().cloned().collect();
        crate::graph::build(
            section(&t, "Resources"),
            &names,
            &Default::default(),
            section(&t, "Outputs"),
        )?;
        let mut out = described(&t, false);
        add_transforms(&mut out, &t);
        Ok(out)
    }

    async fn create_stack(&self, input: &Input) -> AwsResult<Value> {
        let name = input.req_str("StackName", "ValidationError")?.to_string();
        check_stack_name(&name)?;
        let body = body_of(input)?;
        let t = parsed(&body)?;
        if input.has("OnFailure") && input.has("DisableRollback") {
            return Err(validation(
                "You cannot specify both DisableRollback and OnFailure.",
            ));
        }
        let on_failure = input.string("OnFailure");
        if let Some(of) = &on_failure {
            if !matches!(of.as_str(), "ROLLBACK" | "DO_NOTHING" | "DELETE") {
                return Err(AwsError::validation(
                    "ValidationError",
                    &[format!("Value '{of}' at 'onFailure' failed to satisfy constraint: Member must satisfy enum value set: [DO_NOTHING, ROLLBACK, DELETE]")],
                ));
            }
        }
        let stack_id = self.new_stack_id(&name);
        let arns = input.str_list("NotificationARNs").unwrap_or_default();
        let params = prepare::resolve_params(
            &self.engine.control,
            self.rc,
            &t,
            &given_params(input),
            None,
        )
        .await?;
        prepare::prepare(&t, &params, &self.pseudo(&name, &stack_id, &arns))?;
        let caps = caps_of(input);
        prepare::check_capabilities(&t, &caps, true)?;
        let now = time::now_millis();
        let mut stack = Stack {
            stack_id: stack_id.clone(),
            stack_name: name.clone(),
            status: String::new(),
            status_reason: None,
            creation_ms: now,
            last_updated_ms: None,
            deletion_ms: None,
            description: t.get("Description").map(template::scalar_text),
            template_body: body,
            params,
            previous: None,
            capabilities: caps,
            tags: tags_of(input),
            notification_arns: arns,
            disable_rollback: input
                .bool("DisableRollback")
                .ok()
                .flatten()
                .unwrap_or(false),
            on_failure,
            timeout_minutes: input.i64("TimeoutInMinutes").ok().flatten(),
            termination_protection: input
                .bool("EnableTerminationProtection")
                .ok()
                .flatten()
                .unwrap_or(false),
            role_arn: input.string("RoleARN"),
            outputs: Vec::new(),
            resources: Default::default(),
            orphans: Vec::new(),
            stack_policy: input.string("StackPolicyBody"),
            change_set_id: None,
            operation: None,
            client_request_token: input.string("ClientRequestToken"),
            retain_except_on_create: input
                .bool("RetainExceptOnCreate")
                .ok()
                .flatten()
                .unwrap_or(false),
            delete_requested: false,
        };
        self.store().write(|tx| {
            if find_stack(tx, &self.scope, &name)?.is_some() {
                return Err(AwsError::bad(
                    "AlreadyExistsException",
                    format!("Stack [{name}] already exists"),
                ));
            }
            user_initiated(tx, &self.scope, &mut stack, Operation::Create)
        })?;
        self.engine.spawn(self.scope.clone(), stack_id.clone());
        Ok(json!({ "StackId": stack_id }))
    }

    /// Template and parameters for an update or change set: new body or the previous one.
    async fn next_template(
        &self,
        input: &Input,
        s: &Stack,
    ) -> AwsResult<(String, Value, Vec<StoredParam>)> {
        let use_prev = input
            .bool("UsePreviousTemplate")
            .ok()
            .flatten()
            .unwrap_or(false);
        let body = if use_prev {
            if input.has("TemplateBody") || input.has("TemplateURL") {
                return Err(validation(
                    "Exactly one of TemplateBody, TemplateUrl or UsePreviousTemplate must be specified.",
                ));
            }
            s.template_body.clone()
        } else {
            body_of(input)?
        };
        let t = parsed(&body)?;
        let params = prepare::resolve_params(
            &self.engine.control,
            self.rc,
            &t,
            &given_params(input),
            Some(&s.params),
        )
        .await?;
        prepare::prepare(
            &t,
            &params,
            &self.pseudo(&s.stack_name, &s.stack_id, &s.notification_arns),
        )?;
        Ok((body, t, params))
    }

    async fn update_stack(&self, input: &Input) -> AwsResult<Value> {
        let name = input.req_str("StackName", "ValidationError")?.to_string();
        let s = self.stack(&name)?.ok_or_else(|| not_found(&name))?;
        if !UPDATABLE.contains(&s.status.as_str()) {
            return Err(validation(format!(
                "Stack:{} is in {} state and can not be updated.",
                s.stack_id, s.status
            )));
        }
        let (body, t, params) = self.next_template(input, &s).await?;
        let caps = caps_of(input);
        prepare::check_capabilities(&t, &caps, true)?;
        let tags = if input.has("Tags") {
            tags_of(input)
        } else {
            s.tags.clone()
        };
        if body == s.template_body && params == s.params && tags == s.tags {
            return Err(validation("No updates are to be performed."));
        }
        let disable = input.bool("DisableRollback").ok().flatten();
        self.begin_update(&s, body, &t, params, caps, tags, disable, None)?;
        Ok(json!({ "StackId": s.stack_id }))
    }

    #[allow(clippy::too_many_arguments)]
    fn begin_update(
        &self,
        s: &Stack,
        body: String,
        t: &Value,
        params: Vec<StoredParam>,
        caps: Vec<String>,
        tags: Vec<(String, String)>,
        disable_rollback: Option<bool>,
        change_set: Option<&str>,
    ) -> AwsResult<()> {
        let description = t.get("Description").map(template::scalar_text);
        self.store().write(|tx| {
            let mut cur = model::get_stack(tx, &self.scope, &s.stack_id)?
                .ok_or_else(|| not_found(&s.stack_name))?;
            if !UPDATABLE.contains(&cur.status.as_str()) {
                return Err(validation(format!(
                    "Stack:{} is in {} state and can not be updated.",
                    cur.stack_id, cur.status
                )));
            }
            cur.previous = Some((cur.template_body.clone(), cur.params.clone()));
            cur.template_body = body.clone();
            cur.params = params.clone();
            cur.capabilities = caps.clone();
            cur.tags = tags.clone();
            cur.description = description.clone();
            if let Some(d) = disable_rollback {
                cur.disable_rollback = d;
            }
            if let Some(cs) = change_set {
                cur.change_set_id = Some(cs.to_string());
            }
            cur.last_updated_ms = Some(time::now_millis());
            user_initiated(tx, &self.scope, &mut cur, Operation::Update)
        })?;
        self.engine.spawn(self.scope.clone(), s.stack_id.clone());
        Ok(())
    }

    fn delete_stack(&self, input: &Input) -> AwsResult<Value> {
        let name = input.req_str("StackName", "ValidationError")?.to_string();
        let retain = input.str_list("RetainResources").unwrap_or_default();
        let Some(s) = self.stack(&name)? else {
            return Ok(json!({}));
        };
        if s.is_deleted() || s.status == "DELETE_IN_PROGRESS" {
            return Ok(json!({}));
        }
        if s.termination_protection {
            return Err(validation(format!(
                "Stack [{}] cannot be deleted while TerminationProtection is enabled",
                s.stack_name
            )));
        }
        if !retain.is_empty() && s.status != "DELETE_FAILED" {
            return Err(validation(format!(
                "Invalid operation on stack [{}]. RetainResources can only be specified when the stack is in the DELETE_FAILED state",
                s.stack_id
            )));
        }
        if s.status == "CREATE_IN_PROGRESS" {
            // Cancel the create; the executor deletes the stack once it has stopped.
            self.store().write(|tx| {
                let mut cur = model::get_stack(tx, &self.scope, &s.stack_id)?
                    .ok_or_else(|| not_found(&name))?;
                cur.delete_requested = true;
                put_stack(tx, &self.scope, &cur)
            })?;
            self.engine
                .cancel(&s.stack_id, "Resource creation cancelled");
            return Ok(json!({}));
        }
        if s.status.ends_with("_IN_PROGRESS") && s.status != "REVIEW_IN_PROGRESS" {
            return Err(validation(format!(
                "Stack [{}] cannot be deleted while in status {}",
                s.stack_name, s.status
            )));
        }
        let review = s.status == "REVIEW_IN_PROGRESS";
        self.store().write(|tx| {
            let mut cur =
                model::get_stack(tx, &self.scope, &s.stack_id)?.ok_or_else(|| not_found(&name))?;
            for r in &retain {
                if let Some(x) = cur.resources.get_mut(r) {
                    x.deletion_policy = Some("Retain".into());
                }
            }
            user_initiated(tx, &self.scope, &mut cur, Operation::Delete)?;
            if review {
                for cs in tx.list(&self.scope, model::KIND_CHANGESET, Some(&cur.stack_id))? {
                    tx.delete(&self.scope, model::KIND_CHANGESET, &cs.id)?;
                }
            }
            Ok(())
        })?;
        self.engine.spawn(self.scope.clone(), s.stack_id.clone());
        Ok(json!({}))
    }

    fn all_stacks(&self) -> AwsResult<Vec<Stack>> {
        self.store().read(|tx| {
            tx.list(&self.scope, model::KIND_STACK, None)?
                .into_iter()
                .map(|r| serde_json::from_value::<Stack>(r.body).map_err(AwsError::internal))
                .collect()
        })
    }

    fn describe_stacks(&self, input: &Input) -> AwsResult<Value> {
        if let Some(name) = input.string("StackName") {
            let s = self.stack(&name)?.ok_or_else(|| not_found(&name))?;
            return Ok(json!({ "Stacks": [render_stack(&s)] }));
        }
        let mut all: Vec<Stack> = self
            .all_stacks()?
            .into_iter()
            .filter(|s| !s.is_deleted())
            .collect();
        all.reverse();
        Ok(json!({ "Stacks": all.iter().map(render_stack).collect::<Vec<_>>() }))
    }

    fn list_stacks(&self, input: &Input) -> AwsResult<Value> {
        let filter = input.str_list("StackStatusFilter").unwrap_or_default();
        let mut all = self.all_stacks()?;
        all.reverse();
        let out: Vec<Value> = all
            .iter()
            .filter(|s| filter.is_empty() || filter.contains(&s.status))
            .map(|s| {
                let mut v = json!({
                    "StackId": s.stack_id,
                    "StackName": s.stack_name,
                });
                if let Some(d) = &s.description {
                    v["TemplateDescription"] = json!(d);
                }
                v["CreationTime"] = json!(time::iso_millis(s.creation_ms));
                if let Some(u) = s.last_updated_ms {
                    v["LastUpdatedTime"] = json!(time::iso_millis(u));
                }
                if let Some(d) = s.deletion_ms {
                    v["DeletionTime"] = json!(time::iso_millis(d));
                }
                v["StackStatus"] = json!(s.status);
                if let Some(r) = &s.status_reason {
                    v["StackStatusReason"] = json!(r);
                }
                v["DriftInformation"] = json!({"StackDriftStatus": "NOT_CHECKED"});
                v
            })
            .collect();
        Ok(json!({ "StackSummaries": out }))
    }

    fn describe_stack_events(&self, input: &Input) -> AwsResult<Value> {
        let name = input.req_str("StackName", "ValidationError")?;
        let s = self.stack(name)?.ok_or_else(|| not_found_brackets(name))?;
        let mut events: Vec<Value> = self.store().read(|tx| {
            Ok(tx
                .list(&self.scope, model::KIND_EVENT, Some(&s.stack_id))?
                .into_iter()
                .map(|r| r.body)
                .collect())
        })?;
        events.reverse();
        let start: usize = match input.str("NextToken") {
            Some(t) => t.parse().map_err(|_| validation("Invalid NextToken"))?,
            None => 0,
        };
        let page: Vec<Value> = events
            .iter()
            .skip(start)
            .take(EVENTS_PAGE)
            .cloned()
            .collect();
        let mut out = json!({ "StackEvents": page });
        // A client's token can be any number: no overflow (a panic in debug builds).
        let end = start.saturating_add(EVENTS_PAGE);
        if end < events.len() {
            out["NextToken"] = json!(end.to_string());
        }
        Ok(out)
    }

    fn resource_rows<'s>(&self, s: &'s Stack) -> Vec<&'s model::ResRec> {
        s.resources.values().collect()
    }

    fn describe_stack_resource(&self, input: &Input) -> AwsResult<Value> {
        let name = input.req_str("StackName", "ValidationError")?;
        let logical = input.req_str("LogicalResourceId", "ValidationError")?;
        let s = self.stack(name)?.ok_or_else(|| not_found(name))?;
        let r = s.resources.get(logical).ok_or_else(|| {
            validation(format!(
                "Resource {logical} does not exist for stack {name}"
            ))
        })?;
        Ok(
            json!({ "StackResourceDetail": resource_row(r, Some(&s), "LastUpdatedTimestamp", true) }),
        )
    }

    fn describe_stack_resources(&self, input: &Input) -> AwsResult<Value> {
        let by_name = input.string("StackName");
        let by_physical = input.string("PhysicalResourceId");
        let s = match (by_name, by_physical) {
            (Some(_), Some(_)) => {
                return Err(validation(
                    "Cannot specify both StackName and PhysicalResourceId",
                ))
            }
            (Some(n), None) => self.stack(&n)?.ok_or_else(|| not_found(&n))?,
            (None, Some(p)) => self
                .all_stacks()?
                .into_iter()
                .rev()
                .find(|s| {
                    s.resources
                        .values()
                        .any(|r| r.physical.as_deref() == Some(p.as_str()))
                })
                .ok_or_else(|| validation(format!("Stack for {p} does not exist")))?,
            (None, None) => {
                return Err(validation(
                    "Either StackName or PhysicalResourceId must be specified",
                ))
            }
        };
        let logical = input.string("LogicalResourceId");
        let rows: Vec<Value> = self
            .resource_rows(&s)
            .into_iter()
            .filter(|r| logical.as_deref().is_none_or(|l| l == r.logical))
            .map(|r| resource_row(r, Some(&s), "Timestamp", false))
            .collect();
        Ok(json!({ "StackResources": rows }))
    }

    fn list_stack_resources(&self, input: &Input) -> AwsResult<Value> {
        let name = input.req_str("StackName", "ValidationError")?;
        let s = self.stack(name)?.ok_or_else(|| not_found_brackets(name))?;
        let rows: Vec<Value> = self
            .resource_rows(&s)
            .into_iter()
            .map(|r| resource_row(r, None, "LastUpdatedTimestamp", false))
            .collect();
        Ok(json!({ "StackResourceSummaries": rows }))
    }

    fn get_template(&self, input: &Input) -> AwsResult<Value> {
        if let Some(cs) = input.string("ChangeSetName") {
            let c = self.change_set(&cs, input.string("StackName").as_deref())?;
            return Ok(
                json!({"TemplateBody": c.template_body, "StagesAvailable": ["Original", "Processed"]}),
            );
        }
        let name = input.req_str("StackName", "ValidationError")?;
        let s = self.stack(name)?.ok_or_else(|| not_found(name))?;
        Ok(json!({"TemplateBody": s.template_body, "StagesAvailable": ["Original", "Processed"]}))
    }

    fn get_template_summary(&self, input: &Input) -> AwsResult<Value> {
        let body = match input.string("StackName") {
            Some(n) if !input.has("TemplateBody") => {
                self.stack(&n)?.ok_or_else(|| not_found(&n))?.template_body
            }
            _ => body_of(input)?,
        };
        let t = parsed(&body)?;
        let mut types: Vec<String> = Vec::new();
        for r in section(&t, "Resources").values() {
            if let Some(ty) = r.get("Type").and_then(Value::as_str) {
                if !types.iter().any(|x| x == ty) {
                    types.push(ty.to_string());
                }
            }
        }
        let mut out = described(&t, true);
        out["ResourceTypes"] = json!(types);
        out["Version"] = json!("2010-09-09");
        if let Some(m) = t.get("Metadata") {
            out["Metadata"] = json!(m.to_string());
        }
        add_transforms(&mut out, &t);
        Ok(out)
    }

    async fn create_change_set(&self, input: &Input) -> AwsResult<Value> {
        let name = input.req_str("StackName", "ValidationError")?.to_string();
        check_stack_name(&name)?;
        let cs_name = input
            .req_str("ChangeSetName", "ValidationError")?
            .to_string();
        let ok = cs_name.len() <= 128
            && cs_name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
            && cs_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            return Err(AwsError::validation(
                "ValidationError",
                &[format!("Value '{cs_name}' at 'changeSetName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z][-a-zA-Z0-9]*")],
            ));
        }
        let cs_type = input
            .string("ChangeSetType")
            .unwrap_or_else(|| "UPDATE".into());
        let existing = self.stack(&name)?;
        let (stack, body, t, params, fresh) = match cs_type.as_str() {
            "CREATE" => {
                if let Some(s) = &existing {
                    if s.status != "REVIEW_IN_PROGRESS" {
                        return Err(validation(format!(
                            "Stack [{name}] already exists and cannot be created again with the changeSet [{cs_name}]."
                        )));
                    }
                }
                let body = body_of(input)?;
                let t = parsed(&body)?;
                let params = prepare::resolve_params(
                    &self.engine.control,
                    self.rc,
                    &t,
                    &given_params(input),
                    None,
                )
                .await?;
                let stack = match existing {
                    Some(s) => s,
                    None => {
                        let id = self.new_stack_id(&name);
                        Stack {
                            stack_id: id,
                            stack_name: name.clone(),
                            status: "REVIEW_IN_PROGRESS".into(),
                            status_reason: Some("User Initiated".into()),
                            creation_ms: time::now_millis(),
                            last_updated_ms: None,
                            deletion_ms: None,
                            description: None,
                            template_body: String::new(),
                            params: Vec::new(),
                            previous: None,
                            capabilities: Vec::new(),
                            tags: Vec::new(),
                            notification_arns: Vec::new(),
                            disable_rollback: false,
                            on_failure: None,
                            timeout_minutes: None,
                            termination_protection: false,
                            role_arn: None,
                            outputs: Vec::new(),
                            resources: Default::default(),
                            orphans: Vec::new(),
                            stack_policy: None,
                            change_set_id: None,
                            operation: None,
                            client_request_token: None,
                            retain_except_on_create: false,
                            delete_requested: false,
                        }
                    }
                };
                prepare::prepare(&t, &params, &self.pseudo(&name, &stack.stack_id, &[]))?;
                let fresh = stack.status == "REVIEW_IN_PROGRESS" && stack.template_body.is_empty();
                (stack, body, t, params, fresh)
            }
            "UPDATE" => {
                let s = existing.ok_or_else(|| not_found_brackets(&name))?;
                if !UPDATABLE.contains(&s.status.as_str()) {
                    return Err(validation(format!(
                        "Stack:{} is in {} state and can not be updated.",
                        s.stack_id, s.status
                    )));
                }
                let (body, t, params) = self.next_template(input, &s).await?;
                (s, body, t, params, false)
            }
            other => {
                return Err(validation(format!(
                    "ChangeSetType {other} is not supported"
                )))
            }
        };
        let caps = caps_of(input);
        prepare::check_capabilities(&t, &caps, false)?;
        let tags = if input.has("Tags") {
            tags_of(input)
        } else {
            stack.tags.clone()
        };
        let changes = self.changes(&stack, &t, &params);
        let unchanged = cs_type == "UPDATE"
            && body == stack.template_body
            && params == stack.params
            && tags == stack.tags;
        let id = self.rc.arn(
            "cloudformation",
            &format!("changeSet/{cs_name}/{}", portico_core::ids::uuid()),
        );
        let cs = ChangeSet {
            id: id.clone(),
            name: cs_name.clone(),
            stack_id: stack.stack_id.clone(),
            stack_name: stack.stack_name.clone(),
            change_set_type: cs_type.clone(),
            status: if unchanged { "FAILED" } else { "CREATE_COMPLETE" }.into(),
            status_reason: unchanged.then(|| "The submitted information didn't contain changes. Submit different information to create a change set.".to_string()),
            execution_status: if unchanged { "UNAVAILABLE" } else { "AVAILABLE" }.into(),
            creation_ms: time::now_millis(),
            description: input.string("Description"),
            template_body: body,
            params,
            capabilities: caps,
            tags,
            notification_arns: input.str_list("NotificationARNs").unwrap_or_default(),
            changes,
            disable_rollback: false,
            role_arn: input.string("RoleARN"),
        };
        self.store().write(|tx| {
            for other in tx.list(&self.scope, model::KIND_CHANGESET, Some(&stack.stack_id))? {
                // Executing a change set deletes the stack's other change sets; the name of an
                // executed one is free again (`aws cloudformation deploy` names its change sets
                // by the second and reuses a name quickly). OBSOLETE: state from older versions.
                let spent = other.body.get("execution_status").and_then(Value::as_str).is_some_and(|st| {
                    st.starts_with("EXECUTE_") || st == "OBSOLETE"
                });
                if other.name.as_deref() == Some(cs_name.as_str()) && !spent {
                    return Err(AwsError::bad(
                        "AlreadyExistsException",
                        format!("ChangeSet {cs_name} already exists"),
                    ));
                }
            }
            if fresh && model::get_stack(tx, &self.scope, &stack.stack_id)?.is_none() {
                if find_stack(tx, &self.scope, &name)?.is_some() {
                    return Err(validation(format!(
                        "Stack [{name}] already exists and cannot be created again with the changeSet [{cs_name}]."
                    )));
                }
                put_stack(tx, &self.scope, &stack)?;
                put_event(tx, &self.scope, &stack_event(&stack, "REVIEW_IN_PROGRESS", Some("User Initiated")))?;
            }
            tx.put_as(&self.scope, model::KIND_CHANGESET, &cs.id, Some(&stack.stack_id), Some(&cs.name), &cs)?;
            Ok(())
        })?;
        Ok(json!({"Id": id, "StackId": stack.stack_id}))
    }

    /// The resource changes a template would make to a stack.
    fn changes(&self, s: &Stack, t: &Value, params: &[StoredParam]) -> Vec<Value> {
        let pseudo = self.pseudo(&s.stack_name, &s.stack_id, &s.notification_arns);
        let Ok(p) = prepare::prepare(t, params, &pseudo) else {
            return Vec::new();
        };
        let old_prepared = if s.template_body.is_empty() {
            None
        } else {
            template::parse(&s.template_body)
                .ok()
                .and_then(|ot| prepare::prepare(&ot, &s.params, &pseudo).ok())
        };
        let mut out = Vec::new();
        for id in &p.graph.order {
            let r = &p.resources[id];
            let ty = r.get("Type").and_then(Value::as_str).unwrap_or_default();
            let live = s.resources.get(id).filter(|x| x.physical.is_some());
            let change = match live {
                None => {
                    json!({"Action": "Add", "LogicalResourceId": id, "ResourceType": ty, "Scope": [], "Details": []})
                }
                Some(x) => {
                    let old_raw = old_prepared
                        .as_ref()
                        .and_then(|o| o.resources.get(id))
                        .and_then(|o| o.get("Properties"));
                    let new_raw = r.get("Properties");
                    let old_vals = old_prepared.as_ref().map(|o| &o.values);
                    if old_raw == new_raw && old_vals == Some(&p.values) && x.type_name == ty {
                        continue;
                    }
                    let empty = json!({});
                    let keys: Vec<String> = {
                        let (o, n) = (old_raw.unwrap_or(&empty), new_raw.unwrap_or(&empty));
                        let mut ks: Vec<String> = o
                            .as_object()
                            .into_iter()
                            .flat_map(|m| m.keys())
                            .chain(n.as_object().into_iter().flat_map(|m| m.keys()))
                            .filter(|k| o.get(*k) != n.get(*k))
                            .cloned()
                            .collect();
                        ks.dedup();
                        ks
                    };
                    let replace = x.type_name != ty || providers_replacement(ty, &keys);
                    json!({
                        "Action": "Modify",
                        "LogicalResourceId": id,
                        "PhysicalResourceId": x.physical,
                        "ResourceType": ty,
                        "Replacement": if replace { "True" } else { "False" },
                        "Scope": ["Properties"],
                        "Details": keys.iter().map(|k| json!({
                            "Target": {"Attribute": "Properties", "Name": k, "RequiresRecreation": if replace { "Always" } else { "Never" }},
                            "Evaluation": "Static",
                            "ChangeSource": "DirectModification",
                        })).collect::<Vec<_>>(),
                    })
                }
            };
            out.push(json!({"Type": "Resource", "ResourceChange": change}));
        }
        for (id, r) in &s.resources {
            if !p.resources.contains_key(id) && r.physical.is_some() {
                out.push(json!({"Type": "Resource", "ResourceChange": {
                    "Action": "Remove", "LogicalResourceId": id, "PhysicalResourceId": r.physical,
                    "ResourceType": r.type_name, "Scope": [], "Details": []}}));
            }
        }
        out
    }

    fn change_set(&self, name_or_id: &str, stack: Option<&str>) -> AwsResult<ChangeSet> {
        let nf = || {
            AwsError::new(
                404,
                "ChangeSetNotFound",
                format!("ChangeSet [{name_or_id}] does not exist"),
            )
        };
        self.store().read(|tx| {
            if name_or_id.starts_with("arn:") {
                return tx
                    .get_as::<ChangeSet>(&self.scope, model::KIND_CHANGESET, name_or_id)?
                    .ok_or_else(nf);
            }
            let Some(stack) = stack else {
                return Err(validation(
                    "StackName must be specified if ChangeSetName is not specified as an ARN.",
                ));
            };
            let s = find_stack(tx, &self.scope, stack)?.ok_or_else(nf)?;
            // The newest change set of that name: an executed one's name can be reused.
            for r in tx
                .list(&self.scope, model::KIND_CHANGESET, Some(&s.stack_id))?
                .into_iter()
                .rev()
            {
                if r.name.as_deref() == Some(name_or_id) {
                    return serde_json::from_value(r.body).map_err(AwsError::internal);
                }
            }
            Err(nf())
        })
    }

    fn describe_change_set(&self, input: &Input) -> AwsResult<Value> {
        let n = input.req_str("ChangeSetName", "ValidationError")?;
        let c = self.change_set(n, input.str("StackName"))?;
        let mut v = json!({
            "ChangeSetName": c.name,
            "ChangeSetId": c.id,
            "StackId": c.stack_id,
            "StackName": c.stack_name,
        });
        if let Some(d) = &c.description {
            v["Description"] = json!(d);
        }
        if !c.params.is_empty() {
            v["Parameters"] = render_params(&c.params);
        }
        v["CreationTime"] = json!(time::iso_millis(c.creation_ms));
        v["ExecutionStatus"] = json!(c.execution_status);
        v["Status"] = json!(c.status);
        if let Some(r) = &c.status_reason {
            v["StatusReason"] = json!(r);
        }
        v["NotificationARNs"] = json!(c.notification_arns);
        v["RollbackConfiguration"] = json!({});
        if !c.capabilities.is_empty() {
            v["Capabilities"] = json!(c.capabilities);
        }
        v["Tags"] = render_tags(&c.tags);
        v["Changes"] = json!(c.changes);
        v["IncludeNestedStacks"] = json!(false);
        Ok(v)
    }

    fn execute_change_set(&self, input: &Input) -> AwsResult<Value> {
        let n = input.req_str("ChangeSetName", "ValidationError")?;
        let c = self.change_set(n, input.str("StackName"))?;
        if c.execution_status != "AVAILABLE" {
            return Err(AwsError::bad(
                "InvalidChangeSetStatus",
                format!(
                    "ChangeSet [{}] cannot be executed in its current status of [{}]",
                    c.id, c.status
                ),
            ));
        }
        let s = self
            .store()
            .read(|tx| model::get_stack(tx, &self.scope, &c.stack_id))?
            .ok_or_else(|| not_found(&c.stack_name))?;
        let disable = input.bool("DisableRollback").ok().flatten();
        let t = parsed(&c.template_body)?;
        if s.status == "REVIEW_IN_PROGRESS" {
            self.store().write(|tx| {
                let mut cur = model::get_stack(tx, &self.scope, &s.stack_id)?
                    .ok_or_else(|| not_found(&s.stack_name))?;
                if cur.status != "REVIEW_IN_PROGRESS" {
                    return Err(validation(format!(
                        "Stack:{} is in {} state and can not be updated.",
                        cur.stack_id, cur.status
                    )));
                }
                cur.template_body = c.template_body.clone();
                cur.params = c.params.clone();
                cur.capabilities = c.capabilities.clone();
                cur.tags = c.tags.clone();
                cur.notification_arns = c.notification_arns.clone();
                cur.description = t.get("Description").map(template::scalar_text);
                cur.disable_rollback = disable.unwrap_or(false);
                cur.change_set_id = Some(c.id.clone());
                cur.last_updated_ms = Some(time::now_millis());
                user_initiated(tx, &self.scope, &mut cur, Operation::Create)?;
                self.mark_executed(tx, &c)
            })?;
            self.engine.spawn(self.scope.clone(), s.stack_id.clone());
        } else {
            self.begin_update(
                &s,
                c.template_body.clone(),
                &t,
                c.params.clone(),
                c.capabilities.clone(),
                c.tags.clone(),
                disable,
                Some(&c.id),
            )?;
            self.store().write(|tx| self.mark_executed(tx, &c))?;
        }
        Ok(json!({ "StackId": c.stack_id }))
    }

    /// The change set starts executing; CloudFormation deletes the stack's other change sets
    /// (they are not valid for the updated stack), as the ExecuteChangeSet reference says.
    fn mark_executed(&self, tx: &portico_store::Tx<'_>, c: &ChangeSet) -> AwsResult<()> {
        for r in tx.list(&self.scope, model::KIND_CHANGESET, Some(&c.stack_id))? {
            if r.id != c.id {
                tx.delete(&self.scope, model::KIND_CHANGESET, &r.id)?;
            }
        }
        let mut me = c.clone();
        me.execution_status = "EXECUTE_IN_PROGRESS".into();
        tx.put_as(
            &self.scope,
            model::KIND_CHANGESET,
            &me.id,
            Some(&c.stack_id),
            Some(&me.name),
            &me,
        )?;
        Ok(())
    }

    fn delete_change_set(&self, input: &Input) -> AwsResult<Value> {
        let n = input.req_str("ChangeSetName", "ValidationError")?;
        let c = self.change_set(n, input.str("StackName"))?;
        if c.execution_status == "EXECUTE_IN_PROGRESS" {
            return Err(AwsError::bad(
                "InvalidChangeSetStatus",
                format!(
                    "Cannot delete ChangeSet [{}] in status EXECUTE_IN_PROGRESS",
                    c.id
                ),
            ));
        }
        self.store().write(|tx| {
            tx.delete(&self.scope, model::KIND_CHANGESET, &c.id)?;
            Ok(())
        })?;
        Ok(json!({}))
    }

    fn list_change_sets(&self, input: &Input) -> AwsResult<Value> {
        let name = input.req_str("StackName", "ValidationError")?;
        let s = self.stack(name)?.ok_or_else(|| not_found_brackets(name))?;
        let sets: Vec<ChangeSet> = self
            .store()
            .read(|tx| Ok(tx.list_as(&self.scope, model::KIND_CHANGESET, Some(&s.stack_id))?))?;
        let rows: Vec<Value> = sets
            .iter()
            .map(|c| {
                let mut v = json!({
                    "StackId": c.stack_id, "StackName": c.stack_name, "ChangeSetId": c.id,
                    "ChangeSetName": c.name, "ExecutionStatus": c.execution_status, "Status": c.status,
                });
                if let Some(r) = &c.status_reason {
                    v["StatusReason"] = json!(r);
                }
                v["CreationTime"] = json!(time::iso_millis(c.creation_ms));
                if let Some(d) = &c.description {
                    v["Description"] = json!(d);
                }
                v["IncludeNestedStacks"] = json!(false);
                v
            })
            .collect();
        Ok(json!({ "Summaries": rows }))
    }

    fn update_termination_protection(&self, input: &Input) -> AwsResult<Value> {
        let name = input.req_str("StackName", "ValidationError")?;
        let on = input
            .bool("EnableTerminationProtection")
            .ok()
            .flatten()
            .ok_or_else(|| {
                AwsError::validation(
                    "ValidationError",
                    &["Value null at 'enableTerminationProtection' failed to satisfy constraint: Member must not be null".into()],
                )
            })?;
        let s = self.stack(name)?.ok_or_else(|| not_found(name))?;
        self.store().write(|tx| {
            let mut cur =
                model::get_stack(tx, &self.scope, &s.stack_id)?.ok_or_else(|| not_found(name))?;
            cur.termination_protection = on;
            put_stack(tx, &self.scope, &cur)
        })?;
        Ok(json!({ "StackId": s.stack_id }))
    }

    fn list_exports(&self) -> AwsResult<Value> {
        let mut out = Vec::new();
        for s in self.all_stacks()? {
            if s.is_deleted() {
                continue;
            }
            for o in &s.outputs {
                if let Some(e) = &o.export {
                    out.push(json!({"ExportingStackId": s.stack_id, "Name": e, "Value": o.value}));
                }
            }
        }
        Ok(json!({ "Exports": out }))
    }

    fn list_imports(&self, input: &Input) -> AwsResult<Value> {
        let name = input.req_str("ExportName", "ValidationError")?;
        let stacks = self.all_stacks()?;
        if !stacks
            .iter()
            .any(|s| !s.is_deleted() && s.outputs.iter().any(|o| o.export.as_deref() == Some(name)))
        {
            return Err(validation(format!("Export '{name}' does not exist.")));
        }
        let importers: Vec<String> = stacks
            .iter()
            .filter(|s| {
                !s.is_deleted()
                    && s.template_body.contains(name)
                    && s.template_body.contains("ImportValue")
            })
            .map(|s| s.stack_name.clone())
            .collect();
        Ok(json!({ "Imports": importers }))
    }

    fn set_stack_policy(&self, input: &Input) -> AwsResult<Value> {
        let name = input.req_str("StackName", "ValidationError")?;
        let body = input.string("StackPolicyBody");
        if let Some(b) = &body {
            if serde_json::from_str::<Value>(b).is_err() {
                return Err(validation(
                    "Error validating stack policy: Invalid stack policy",
                ));
            }
        }
        let s = self.stack(name)?.ok_or_else(|| not_found(name))?;
        self.store().write(|tx| {
            let mut cur =
                model::get_stack(tx, &self.scope, &s.stack_id)?.ok_or_else(|| not_found(name))?;
            cur.stack_policy = body.clone();
            put_stack(tx, &self.scope, &cur)
        })?;
        Ok(json!({}))
    }

    fn get_stack_policy(&self, input: &Input) -> AwsResult<Value> {
        let name = input.req_str("StackName", "ValidationError")?;
        let s = self.stack(name)?.ok_or_else(|| not_found(name))?;
        Ok(match s.stack_policy {
            Some(p) => json!({ "StackPolicyBody": p }),
            None => json!({}),
        })
    }
}

fn providers_replacement(ty: &str, changed: &[String]) -> bool {
    match crate::providers::spec(ty) {
        Some(s) => {
            !s.updatable
                || s.create_only.contains(&"*")
                || changed.iter().any(|k| s.create_only.contains(&k.as_str()))
        }
        None => true,
    }
}

/// The Parameters list of ValidateTemplate (`full` adds GetTemplateSummary's members).
/// What ValidateTemplate and GetTemplateSummary both answer first: Parameters (`full`: with
/// their types and constraints, as the summary shows them), Description, and the capabilities
/// the template needs with the reason.
fn described(t: &Value, full: bool) -> Value {
    let mut out = json!({"Parameters": template_params(t, full)});
    if let Some(d) = t.get("Description") {
        out["Description"] = json!(template::scalar_text(d));
    }
    let (caps, types) = prepare::needed_capabilities(t, false);
    if !caps.is_empty() {
        out["Capabilities"] = json!(caps);
        out["CapabilitiesReason"] = json!(format!(
            "The following resource(s) require capabilities: [{}]",
            types.join(", ")
        ));
    }
    out
}

/// What ValidateTemplate and GetTemplateSummary both answer last: the template's transforms.
fn add_transforms(out: &mut Value, t: &Value) {
    let tr = template::transforms(t);
    if !tr.is_empty() {
        out["DeclaredTransforms"] = json!(tr);
    }
}

fn template_params(t: &Value, full: bool) -> Value {
    Value::Array(
        section(t, "Parameters")
            .iter()
            .map(|(k, d)| {
                let mut v = json!({"ParameterKey": k});
                if let Some(def) = d.get("Default") {
                    v["DefaultValue"] = json!(match def {
                        Value::Array(a) => a.iter().map(template::scalar_text).collect::<Vec<_>>().join(","),
                        other => template::scalar_text(other),
                    });
                }
                if full {
                    v["ParameterType"] = json!(d.get("Type").map(template::scalar_text).unwrap_or_default());
                }
                v["NoEcho"] = json!(d.get("NoEcho").map(|x| template::scalar_text(x) == "true").unwrap_or(false));
                if let Some(desc) = d.get("Description") {
                    v["Description"] = json!(template::scalar_text(desc));
                }
                if full {
                    v["ParameterConstraints"] = match d.get("AllowedValues") {
                        Some(Value::Array(a)) => json!({"AllowedValues": a.iter().map(template::scalar_text).collect::<Vec<_>>()}),
                        _ => json!({}),
                    };
                }
                v
            })
            .collect(),
    )
}
