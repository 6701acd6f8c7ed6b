//! The engine's persistent state: stacks (with their resources), events and change sets, as
//! store documents of kinds `cfn.stack`, `cfn.event` and `cfn.changeset`. Every state change is
//! one store transaction, so a restart always finds a consistent stack to resume from. A member
//! missing from a stored document takes its default (`#[serde(default)]` on each record).

use portico_core::{time, AwsError, AwsResult};
use portico_store::{Scope, Store};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

pub(crate) const KIND_STACK: &str = "cfn.stack";
pub(crate) const KIND_EVENT: &str = "cfn.event";
pub(crate) const KIND_CHANGESET: &str = "cfn.changeset";

/// One parameter as the stack keeps it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub(crate) struct StoredParam {
    pub key: String,
    /// The value as given (or the default); for SSM types, the parameter name.
    pub value: String,
    /// SSM-typed parameters: the value fetched from Parameter Store.
    pub resolved: Option<String>,
    pub no_echo: bool,
    pub type_name: String,
}

/// One resource of a stack.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub(crate) struct ResRec {
    pub logical: String,
    pub type_name: String,
    pub physical: Option<String>,
    pub status: String,
    pub reason: Option<String>,
    pub updated_ms: i64,
    /// Properties as resolved when the resource was last created or updated.
    pub props: Value,
    /// GetAtt values.
    pub attrs: Map<String, Value>,
    /// Logical ids this resource depends on (for deletion order).
    pub deps: Vec<String>,
    pub metadata: Option<Value>,
    pub deletion_policy: Option<String>,
    pub update_replace_policy: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct OutputRec {
    pub key: String,
    pub value: String,
    pub description: Option<String>,
    pub export: Option<String>,
}

/// What an in-progress operation is doing, so a restart can finish it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) enum Operation {
    Create,
    Update,
    Delete,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Stack {
    pub stack_id: String,
    pub stack_name: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub creation_ms: i64,
    pub last_updated_ms: Option<i64>,
    pub deletion_ms: Option<i64>,
    pub description: Option<String>,
    pub template_body: String,
    pub params: Vec<StoredParam>,
    /// The template and parameters before the running update (its rollback target).
    pub previous: Option<(String, Vec<StoredParam>)>,
    pub capabilities: Vec<String>,
    pub tags: Vec<(String, String)>,
    pub notification_arns: Vec<String>,
    pub disable_rollback: bool,
    /// `ROLLBACK`, `DO_NOTHING` or `DELETE`.
    pub on_failure: Option<String>,
    pub timeout_minutes: Option<i64>,
    pub termination_protection: bool,
    pub role_arn: Option<String>,
    pub outputs: Vec<OutputRec>,
    /// Resources by logical id.
    pub resources: BTreeMap<String, ResRec>,
    /// Physical resources replaced by an update, deleted in its cleanup phase.
    pub orphans: Vec<ResRec>,
    pub stack_policy: Option<String>,
    pub change_set_id: Option<String>,
    pub operation: Option<Operation>,
    pub client_request_token: Option<String>,
    pub retain_except_on_create: bool,
    /// DeleteStack arrived while the create was running: delete once it has stopped.
    pub delete_requested: bool,
}

impl Stack {
    pub(crate) fn is_deleted(&self) -> bool {
        self.status == "DELETE_COMPLETE"
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct ChangeSet {
    pub id: String,
    pub name: String,
    pub stack_id: String,
    pub stack_name: String,
    pub change_set_type: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub execution_status: String,
    pub creation_ms: i64,
    pub description: Option<String>,
    pub template_body: String,
    pub params: Vec<StoredParam>,
    pub capabilities: Vec<String>,
    pub tags: Vec<(String, String)>,
    pub notification_arns: Vec<String>,
    pub changes: Vec<Value>,
    pub disable_rollback: bool,
    pub role_arn: Option<String>,
}

/// Stack-level event.
pub(crate) fn stack_event(s: &Stack, status: &str, reason: Option<&str>) -> Value {
    let mut e = json!({
        "StackId": s.stack_id,
        "EventId": portico_core::ids::uuid(),
        "StackName": s.stack_name,
        "LogicalResourceId": s.stack_name,
        "PhysicalResourceId": s.stack_id,
        "ResourceType": "AWS::CloudFormation::Stack",
        "Timestamp": time::iso_millis(time::now_millis()),
        "ResourceStatus": status,
    });
    if let Some(r) = reason {
        e["ResourceStatusReason"] = json!(r);
    }
    if let Some(t) = &s.client_request_token {
        e["ClientRequestToken"] = json!(t);
    }
    e
}

/// Resource-level event.
pub(crate) fn resource_event(
    s: &Stack,
    logical: &str,
    type_name: &str,
    physical: &str,
    status: &str,
    reason: Option<&str>,
    props: Option<&Value>,
) -> Value {
    let ts = time::iso_millis(time::now_millis());
    let mut e = json!({
        "StackId": s.stack_id,
        "EventId": format!("{logical}-{status}-{ts}"),
        "StackName": s.stack_name,
        "LogicalResourceId": logical,
        "PhysicalResourceId": physical,
        "ResourceType": type_name,
        "Timestamp": ts,
        "ResourceStatus": status,
    });
    if let Some(r) = reason {
        e["ResourceStatusReason"] = json!(r);
    }
    if let Some(p) = props {
        if p.as_object().is_some_and(|m| !m.is_empty()) {
            e["ResourceProperties"] = json!(p.to_string());
        }
    }
    if let Some(t) = &s.client_request_token {
        e["ClientRequestToken"] = json!(t);
    }
    e
}

pub(crate) fn put_stack(tx: &portico_store::Tx<'_>, scope: &Scope, s: &Stack) -> AwsResult<()> {
    tx.put_as(scope, KIND_STACK, &s.stack_id, None, Some(&s.stack_name), s)?;
    Ok(())
}

pub(crate) fn put_event(tx: &portico_store::Tx<'_>, scope: &Scope, e: &Value) -> AwsResult<()> {
    let parent = e["StackId"].as_str().unwrap_or_default().to_string();
    tx.put(
        scope,
        KIND_EVENT,
        &portico_core::ids::uuid(),
        Some(&parent),
        None,
        e,
    )?;
    Ok(())
}

pub(crate) fn get_stack(
    tx: &portico_store::Tx<'_>,
    scope: &Scope,
    id: &str,
) -> AwsResult<Option<Stack>> {
    Ok(tx.get_as(scope, KIND_STACK, id)?)
}

/// A stack by name (live stacks only) or by stack id (deleted ones too).
pub(crate) fn find_stack(
    tx: &portico_store::Tx<'_>,
    scope: &Scope,
    name_or_id: &str,
) -> AwsResult<Option<Stack>> {
    if name_or_id.starts_with("arn:") {
        return get_stack(tx, scope, name_or_id);
    }
    let mut found = None;
    for r in tx.find_by_name(scope, KIND_STACK, name_or_id)? {
        let s: Stack = serde_json::from_value(r.body).map_err(AwsError::internal)?;
        if !s.is_deleted() {
            found = Some(s);
        }
    }
    Ok(found)
}

/// Reads a stack, changes it with `f` and writes it back plus the events `f` returns, in one
/// transaction.
pub(crate) fn update_stack<T>(
    store: &Store,
    scope: &Scope,
    id: &str,
    f: impl FnOnce(&mut Stack) -> (T, Vec<Value>),
) -> AwsResult<T> {
    store.write(|tx| {
        let mut s = get_stack(tx, scope, id)?
            .ok_or_else(|| AwsError::internal(format!("stack {id} vanished")))?;
        let (out, events) = f(&mut s);
        put_stack(tx, scope, &s)?;
        for e in &events {
            put_event(tx, scope, e)?;
        }
        Ok(out)
    })
}

pub(crate) fn not_found(name: &str) -> AwsError {
    AwsError::bad(
        "ValidationError",
        format!("Stack with id {name} does not exist"),
    )
}

pub(crate) fn not_found_brackets(name: &str) -> AwsError {
    AwsError::bad("ValidationError", format!("Stack [{name}] does not exist"))
}
