//! IAM (awsQuery, global: region `""`): roles with trust policies, inline role policies, managed
//! policies with versions and attachments, instance profiles, service-linked roles and role tags.
//! Policy documents are stored as given and checked for JSON syntax and basic grammar; they are
//! not enforced. Documents are returned URL-encoded, as IAM does.
//!
//! Store kinds (account, region ""):
//! - `iam.role`             id = lowercased role name (names are case-insensitive), name = RoleName
//! - `iam.role-policy`      id = `{role id}/{policy name}`, parent = role id
//! - `iam.policy`           id = policy ARN, name = PolicyName
//! - `iam.instance-profile` id = lowercased profile name
//! - `iam.user`, `iam.group`, `iam.user-policy`, `iam.group-policy`: see [`principals`]

mod principals;
pub(crate) mod server_certs;

use crate::Ctx;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use portico_core::context::partition_of;
use portico_core::{time, AwsError, AwsResult, Input, Service};
use portico_store::{Scope, Tx};
use principals::{GROUP, USER};
use rand::Rng;
use serde_json::{json, Value};

pub(crate) const KIND_ROLE: &str = "iam.role";
const KIND_ROLE_POLICY: &str = "iam.role-policy";
const KIND_POLICY: &str = "iam.policy";
const KIND_PROFILE: &str = "iam.instance-profile";

/// What IAM leaves unescaped when it URL-encodes a policy document (RFC 3986 unreserved).
const DOC: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub async fn dispatch(ctx: &Ctx<'_>, op: &str, input: Input) -> AwsResult<Value> {
    let scope = ctx.scope.global();
    let partition = partition_of(&ctx.rc.region);
    let c = Call {
        scope: &scope,
        partition,
        input: &input,
    };
    let store = ctx.store();
    match op {
        "CreateRole" => store.write(|tx| create_role(tx, &c)),
        "GetRole" => store.read(|tx| get_role(tx, &c)),
        "ListRoles" => store.read(|tx| list_roles(tx, &c)),
        "DeleteRole" => store.write(|tx| delete_role(tx, &c)),
        "UpdateRole" => store.write(|tx| update_role(tx, &c)),
        "UpdateRoleDescription" => store.write(|tx| {
            update_role(tx, &c)?;
            get_role(tx, &c)
        }),
        "UpdateAssumeRolePolicy" => store.write(|tx| update_assume_role_policy(tx, &c)),
        "TagRole" => store.write(|tx| tag_role(tx, &c)),
        "PutRolePermissionsBoundary" => store.write(|tx| put_role_permissions_boundary(tx, &c)),
        "DeleteRolePermissionsBoundary" => {
            store.write(|tx| delete_role_permissions_boundary(tx, &c))
        }
        "UntagRole" => store.write(|tx| untag_role(tx, &c)),
        "ListRoleTags" => store.read(|tx| list_role_tags(tx, &c)),
        "PutRolePolicy" => store.write(|tx| put_role_policy(tx, &c)),
        "GetRolePolicy" => store.read(|tx| get_role_policy(tx, &c)),
        "DeleteRolePolicy" => store.write(|tx| delete_role_policy(tx, &c)),
        "ListRolePolicies" => store.read(|tx| list_role_policies(tx, &c)),
        "CreatePolicy" => store.write(|tx| create_policy(tx, &c)),
        "GetPolicy" => store.read(|tx| get_policy(tx, &c)),
        "DeletePolicy" => store.write(|tx| delete_policy(tx, &c)),
        "ListPolicies" => store.read(|tx| list_policies(tx, &c)),
        "CreatePolicyVersion" => store.write(|tx| create_policy_version(tx, &c)),
        "GetPolicyVersion" => store.read(|tx| get_policy_version(tx, &c)),
        "ListPolicyVersions" => store.read(|tx| list_policy_versions(tx, &c)),
        "DeletePolicyVersion" => store.write(|tx| delete_policy_version(tx, &c)),
        "SetDefaultPolicyVersion" => store.write(|tx| set_default_policy_version(tx, &c)),
        "AttachRolePolicy" => store.write(|tx| attach_role_policy(tx, &c)),
        "DetachRolePolicy" => store.write(|tx| detach_role_policy(tx, &c)),
        "ListAttachedRolePolicies" => store.read(|tx| list_attached_role_policies(tx, &c)),
        "CreateInstanceProfile" => store.write(|tx| create_instance_profile(tx, &c)),
        "GetInstanceProfile" => store.read(|tx| get_instance_profile(tx, &c)),
        "DeleteInstanceProfile" => store.write(|tx| delete_instance_profile(tx, &c)),
        "AddRoleToInstanceProfile" => store.write(|tx| add_role_to_instance_profile(tx, &c)),
        "RemoveRoleFromInstanceProfile" => {
            store.write(|tx| remove_role_from_instance_profile(tx, &c))
        }
        "ListInstanceProfiles" => store.read(|tx| list_instance_profiles(tx, &c, None)),
        "ListInstanceProfilesForRole" => store.read(|tx| {
            let role = load_role(tx, &c, req(&input, "RoleName")?)?;
            list_instance_profiles(tx, &c, Some(&s(&role, "RoleName")))
        }),
        "CreateServiceLinkedRole" => store.write(|tx| create_service_linked_role(tx, &c)),
        "CreateUser" => store.write(|tx| principals::create(tx, &c, &USER)),
        "GetUser" => store.read(|tx| principals::get_user(tx, &c)),
        "ListUsers" => store.read(|tx| principals::list(tx, &c, &USER)),
        "DeleteUser" => store.write(|tx| principals::delete(tx, &c, &USER)),
        "CreateGroup" => store.write(|tx| principals::create(tx, &c, &GROUP)),
        "GetGroup" => store.read(|tx| principals::get_group(tx, &c)),
        "ListGroups" => store.read(|tx| principals::list(tx, &c, &GROUP)),
        "DeleteGroup" => store.write(|tx| principals::delete(tx, &c, &GROUP)),
        "AddUserToGroup" => store.write(|tx| principals::add_user_to_group(tx, &c)),
        "RemoveUserFromGroup" => store.write(|tx| principals::remove_user_from_group(tx, &c)),
        "ListGroupsForUser" => store.read(|tx| principals::list_groups_for_user(tx, &c)),
        "PutUserPolicy" => store.write(|tx| principals::put_policy(tx, &c, &USER)),
        "GetUserPolicy" => store.read(|tx| principals::get_policy(tx, &c, &USER)),
        "DeleteUserPolicy" => store.write(|tx| principals::delete_policy(tx, &c, &USER)),
        "ListUserPolicies" => store.read(|tx| principals::list_policies(tx, &c, &USER)),
        "PutGroupPolicy" => store.write(|tx| principals::put_policy(tx, &c, &GROUP)),
        "GetGroupPolicy" => store.read(|tx| principals::get_policy(tx, &c, &GROUP)),
        "DeleteGroupPolicy" => store.write(|tx| principals::delete_policy(tx, &c, &GROUP)),
        "ListGroupPolicies" => store.read(|tx| principals::list_policies(tx, &c, &GROUP)),
        "AttachUserPolicy" => store.write(|tx| principals::attach(tx, &c, &USER)),
        "DetachUserPolicy" => store.write(|tx| principals::detach(tx, &c, &USER)),
        "ListAttachedUserPolicies" => store.read(|tx| principals::list_attached(tx, &c, &USER)),
        "AttachGroupPolicy" => store.write(|tx| principals::attach(tx, &c, &GROUP)),
        "DetachGroupPolicy" => store.write(|tx| principals::detach(tx, &c, &GROUP)),
        "ListAttachedGroupPolicies" => store.read(|tx| principals::list_attached(tx, &c, &GROUP)),
        op if server_certs::handles(op) => server_certs::dispatch(store, op, &c),
        _ => Err(Service::Iam.unknown_operation(op)),
    }
}

struct Call<'a> {
    scope: &'a Scope,
    partition: &'static str,
    input: &'a Input,
}

impl Call<'_> {
    fn arn(&self, resource: &str) -> String {
        format!(
            "arn:{}:iam::{}:{resource}",
            self.partition, self.scope.account
        )
    }
}

fn s(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn req<'a>(input: &'a Input, key: &str) -> AwsResult<&'a str> {
    input.req_str(key, "ValidationError")
}

/// IAM ids: a four-letter prefix (`AROA` role, `ANPA` policy, `AIPA` instance profile, `ASIA`
/// temporary key) and upper-case alphanumerics.
pub(crate) fn iam_id(prefix: &str, n: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::thread_rng();
    let tail: String = (0..n)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect();
    format!("{prefix}{tail}")
}

pub(crate) fn encode_doc(doc: &str) -> String {
    utf8_percent_encode(doc, DOC).to_string()
}

fn no_such(what: &str, name: &str) -> AwsError {
    AwsError::new(
        404,
        "NoSuchEntity",
        format!("The {what} with name {name} cannot be found."),
    )
}

fn conflict(msg: impl Into<String>) -> AwsError {
    AwsError::new(409, "DeleteConflict", msg)
}

fn malformed(msg: &str) -> AwsError {
    AwsError::bad("MalformedPolicyDocument", msg)
}

/// Checks a policy document's syntax: JSON, an object with a known Version (if any) and a
/// Statement (object or list of objects) whose Effect is Allow or Deny.
pub(crate) fn check_policy(doc: &str) -> AwsResult<()> {
    let v: Value =
        serde_json::from_str(doc).map_err(|_| malformed("This policy contains invalid Json"))?;
    let obj = v
        .as_object()
        .ok_or_else(|| malformed("This policy contains invalid Json"))?;
    if let Some(ver) = obj.get("Version") {
        if !matches!(ver.as_str(), Some("2012-10-17" | "2008-10-17")) {
            return Err(malformed("The policy failed legacy parsing"));
        }
    }
    let statements = match obj.get("Statement") {
        Some(Value::Array(a)) if !a.is_empty() => a.clone(),
        Some(o @ Value::Object(_)) => vec![o.clone()],
        _ => return Err(malformed("Syntax errors in policy.")),
    };
    for st in statements {
        match st.get("Effect").and_then(Value::as_str) {
            Some("Allow" | "Deny") => {}
            Some(_) => return Err(malformed("Invalid effect.")),
            None => return Err(malformed("Missing required field Effect")),
        }
    }
    Ok(())
}

fn check_name(name: &str, field: &str, max: usize) -> AwsResult<()> {
    let ok = !name.is_empty()
        && name.len() <= max
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(AwsError::validation(
            "ValidationError",
            &[format!(
                "Value '{name}' at '{field}' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
            )],
        ))
    }
}

fn check_path(path: &str) -> AwsResult<()> {
    let ok = path.starts_with('/')
        && path.ends_with('/')
        && path.len() <= 512
        && path.chars().all(|c| ('!'..='~').contains(&c));
    if ok {
        Ok(())
    } else {
        Err(AwsError::bad(
            "ValidationError",
            "The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters.",
        ))
    }
}

fn tags_of(input: &Input) -> Vec<Value> {
    input
        .list("Tags")
        .unwrap_or_default()
        .iter()
        .filter_map(|t| {
            Some(json!({"Key": t.string("Key")?, "Value": t.string("Value").unwrap_or_default()}))
        })
        .collect()
}

/// One page of `items` from `Marker` (an offset) and `MaxItems` (default 100).
fn page(input: &Input, key: &str, items: Vec<Value>) -> AwsResult<Value> {
    let start = match input.str("Marker") {
        Some(m) => m
            .parse::<usize>()
            .map_err(|_| AwsError::bad("ValidationError", "Invalid Marker."))?,
        None => 0,
    };
    let max = input
        .i64("MaxItems")
        .map_err(|raw| AwsError::bad("ValidationError", format!("Invalid MaxItems {raw}")))?
        .unwrap_or(100);
    if !(1..=1000).contains(&max) {
        return Err(AwsError::validation(
            "ValidationError",
            &[format!("Value '{max}' at 'maxItems' failed to satisfy constraint: Member must have value greater than or equal to 1")],
        ));
    }
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(start).take(max as usize).collect();
    let end = start + page.len();
    let mut out = json!({key: page, "IsTruncated": end < total});
    if end < total {
        out["Marker"] = json!(end.to_string());
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Roles

fn load_role(tx: &Tx<'_>, c: &Call<'_>, name: &str) -> AwsResult<Value> {
    Ok(tx
        .get(c.scope, KIND_ROLE, &name.to_lowercase())?
        .ok_or_else(|| no_such("role", name))?
        .body)
}

fn save_role(tx: &Tx<'_>, c: &Call<'_>, role: &Value) -> AwsResult<()> {
    let name = s(role, "RoleName");
    tx.put(
        c.scope,
        KIND_ROLE,
        &name.to_lowercase(),
        None,
        Some(&name),
        role,
    )?;
    Ok(())
}

/// A role as IAM renders it: trust policy URL-encoded, internal members dropped.
fn render_role(role: &Value, full: bool) -> Value {
    let mut v = json!({
        "Path": role.get("Path"), "RoleName": role.get("RoleName"), "RoleId": role.get("RoleId"),
        "Arn": role.get("Arn"), "CreateDate": role.get("CreateDate"),
        "AssumeRolePolicyDocument": encode_doc(&s(role, "AssumeRolePolicyDocument")),
    });
    if let Some(d) = role.get("Description") {
        v["Description"] = d.clone();
    }
    v["MaxSessionDuration"] = role
        .get("MaxSessionDuration")
        .cloned()
        .unwrap_or(json!(3600));
    if let Some(b) = role.get("PermissionsBoundary") {
        v["PermissionsBoundary"] = b.clone();
    }
    if let Some(Value::Array(t)) = role.get("Tags") {
        if !t.is_empty() {
            v["Tags"] = json!(t);
        }
    }
    if full {
        v["RoleLastUsed"] = json!({});
    }
    v
}

#[allow(clippy::too_many_arguments, reason = "mirrors CreateRole's members")]
fn new_role(
    tx: &Tx<'_>,
    c: &Call<'_>,
    name: &str,
    path: &str,
    trust: &str,
    description: Option<String>,
    max_session: i64,
    tags: Vec<Value>,
) -> AwsResult<Value> {
    if tx.get(c.scope, KIND_ROLE, &name.to_lowercase())?.is_some() {
        return Err(AwsError::new(
            409,
            "EntityAlreadyExists",
            format!("Role with name {name} already exists."),
        ));
    }
    let mut role = json!({
        "Path": path, "RoleName": name, "RoleId": iam_id("AROA", 17),
        "Arn": c.arn(&format!("role{path}{name}")),
        "CreateDate": time::iso_seconds(time::now_millis()),
        "AssumeRolePolicyDocument": trust, "MaxSessionDuration": max_session,
        "Tags": tags, "_attached": [],
    });
    if let Some(d) = description {
        role["Description"] = json!(d);
    }
    save_role(tx, c, &role)?;
    Ok(role)
}

fn create_role(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let name = req(c.input, "RoleName")?;
    check_name(name, "roleName", 64)?;
    let path = c.input.str("Path").unwrap_or("/");
    check_path(path)?;
    let trust = req(c.input, "AssumeRolePolicyDocument")?;
    check_policy(trust)?;
    let max = c
        .input
        .i64("MaxSessionDuration")
        .map_err(|raw| {
            AwsError::bad(
                "ValidationError",
                format!("Invalid MaxSessionDuration {raw}"),
            )
        })?
        .unwrap_or(3600);
    if !(3600..=43200).contains(&max) {
        return Err(AwsError::validation(
            "ValidationError",
            &[format!("Value '{max}' at 'maxSessionDuration' failed to satisfy constraint: Member must have value greater than or equal to 3600")],
        ));
    }
    let boundary = match c.input.str("PermissionsBoundary") {
        Some(arn) => Some(boundary_of(tx, c, arn)?),
        None => None,
    };
    let mut role = new_role(
        tx,
        c,
        name,
        path,
        trust,
        c.input.string("Description"),
        max,
        tags_of(c.input),
    )?;
    if let Some(b) = boundary {
        role["PermissionsBoundary"] = b;
        save_role(tx, c, &role)?;
    }
    Ok(json!({"Role": render_role(&role, false)}))
}

fn get_role(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let role = load_role(tx, c, req(c.input, "RoleName")?)?;
    Ok(json!({"Role": render_role(&role, true)}))
}

fn list_roles(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let prefix = c.input.str("PathPrefix").unwrap_or("/");
    let mut roles: Vec<Value> = tx
        .list(c.scope, KIND_ROLE, None)?
        .into_iter()
        .filter(|r| s(&r.body, "Path").starts_with(prefix))
        .map(|r| {
            let mut v = render_role(&r.body, false);
            if let Some(o) = v.as_object_mut() {
                o.remove("Tags");
            }
            v
        })
        .collect();
    roles.sort_by_key(|r| s(r, "RoleName").to_lowercase());
    page(c.input, "Roles", roles)
}

fn update_role(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let mut role = load_role(tx, c, req(c.input, "RoleName")?)?;
    if let Some(d) = c.input.string("Description") {
        role["Description"] = json!(d);
    }
    if let Some(m) = c.input.i64("MaxSessionDuration").map_err(|raw| {
        AwsError::bad(
            "ValidationError",
            format!("Invalid MaxSessionDuration {raw}"),
        )
    })? {
        if !(3600..=43200).contains(&m) {
            return Err(AwsError::bad(
                "ValidationError",
                format!(
                    "The requested MaxSessionDuration {m} is not between 3600 and 43200 seconds."
                ),
            ));
        }
        role["MaxSessionDuration"] = json!(m);
    }
    save_role(tx, c, &role)?;
    Ok(json!({}))
}

fn update_assume_role_policy(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let mut role = load_role(tx, c, req(c.input, "RoleName")?)?;
    let doc = req(c.input, "PolicyDocument")?;
    check_policy(doc)?;
    role["AssumeRolePolicyDocument"] = json!(doc);
    save_role(tx, c, &role)?;
    Ok(json!({}))
}

fn delete_role(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let name = req(c.input, "RoleName")?;
    let role = load_role(tx, c, name)?;
    let id = name.to_lowercase();
    if tx.count(c.scope, KIND_ROLE_POLICY, Some(&id))? > 0 {
        return Err(conflict(
            "Cannot delete entity, must delete policies first.",
        ));
    }
    if role
        .get("_attached")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
    {
        return Err(conflict(
            "Cannot delete entity, must detach all policies first.",
        ));
    }
    let in_profile = tx.list(c.scope, KIND_PROFILE, None)?.iter().any(|p| {
        p.body
            .get("_roles")
            .and_then(Value::as_array)
            .is_some_and(|r| r.iter().any(|x| x.as_str() == Some(id.as_str())))
    });
    if in_profile {
        return Err(conflict(
            "Cannot delete entity, must remove roles from instance profile first.",
        ));
    }
    tx.delete(c.scope, KIND_ROLE, &id)?;
    Ok(json!({}))
}

fn tag_role(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let mut role = load_role(tx, c, req(c.input, "RoleName")?)?;
    let mut tags = role
        .get("Tags")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for t in tags_of(c.input) {
        tags.retain(|x| x.get("Key") != t.get("Key"));
        tags.push(t);
    }
    if tags.len() > 50 {
        return Err(AwsError::new(
            409,
            "LimitExceeded",
            "The number of tags has reached the maximum limit.",
        ));
    }
    role["Tags"] = json!(tags);
    save_role(tx, c, &role)?;
    Ok(json!({}))
}

fn untag_role(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let mut role = load_role(tx, c, req(c.input, "RoleName")?)?;
    let keys = c.input.str_list("TagKeys").unwrap_or_default();
    let mut tags = role
        .get("Tags")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    tags.retain(|t| {
        !keys
            .iter()
            .any(|k| t.get("Key").and_then(Value::as_str) == Some(k.as_str()))
    });
    role["Tags"] = json!(tags);
    save_role(tx, c, &role)?;
    Ok(json!({}))
}

fn list_role_tags(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let role = load_role(tx, c, req(c.input, "RoleName")?)?;
    let tags = role
        .get("Tags")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    page(c.input, "Tags", tags)
}

/// A permissions boundary: an existing managed policy (or an AWS-managed ARN).
fn boundary_of(tx: &Tx<'_>, c: &Call<'_>, arn: &str) -> AwsResult<Value> {
    if aws_managed(arn).is_none() && tx.get(c.scope, KIND_POLICY, arn)?.is_none() {
        return Err(AwsError::new(
            404,
            "NoSuchEntity",
            format!("Scope ARN: {arn} does not exist or is not attachable."),
        ));
    }
    Ok(json!({"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": arn}))
}

fn put_role_permissions_boundary(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let mut role = load_role(tx, c, req(c.input, "RoleName")?)?;
    let arn = req(c.input, "PermissionsBoundary")?;
    role["PermissionsBoundary"] = boundary_of(tx, c, arn)?;
    save_role(tx, c, &role)?;
    Ok(json!({}))
}

fn delete_role_permissions_boundary(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let name = req(c.input, "RoleName")?;
    let mut role = load_role(tx, c, name)?;
    let removed = role
        .as_object_mut()
        .and_then(|o| o.remove("PermissionsBoundary"));
    if removed.is_none() {
        return Err(AwsError::new(
            404,
            "NoSuchEntity",
            format!("The role with name {name} does not have a permissions boundary."),
        ));
    }
    save_role(tx, c, &role)?;
    Ok(json!({}))
}

fn boundary_count(tx: &Tx<'_>, c: &Call<'_>, arn: &str) -> AwsResult<usize> {
    Ok(tx
        .list(c.scope, KIND_ROLE, None)?
        .iter()
        .filter(|r| {
            r.body
                .pointer("/PermissionsBoundary/PermissionsBoundaryArn")
                .and_then(Value::as_str)
                == Some(arn)
        })
        .count())
}

// ---------------------------------------------------------------------------------------------
// Inline role policies

fn put_role_policy(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let role = load_role(tx, c, req(c.input, "RoleName")?)?;
    let name = req(c.input, "PolicyName")?;
    check_name(name, "policyName", 128)?;
    let doc = req(c.input, "PolicyDocument")?;
    check_policy(doc)?;
    let role_id = s(&role, "RoleName").to_lowercase();
    tx.put(
        c.scope,
        KIND_ROLE_POLICY,
        &format!("{role_id}/{name}"),
        Some(&role_id),
        Some(name),
        &json!({"RoleName": role.get("RoleName"), "PolicyName": name, "PolicyDocument": doc}),
    )?;
    Ok(json!({}))
}

fn get_role_policy(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let role = load_role(tx, c, req(c.input, "RoleName")?)?;
    let name = req(c.input, "PolicyName")?;
    let id = format!("{}/{name}", s(&role, "RoleName").to_lowercase());
    let p = tx
        .get(c.scope, KIND_ROLE_POLICY, &id)?
        .ok_or_else(|| no_such("role policy", name))?
        .body;
    Ok(json!({
        "RoleName": p.get("RoleName"), "PolicyName": p.get("PolicyName"),
        "PolicyDocument": encode_doc(&s(&p, "PolicyDocument")),
    }))
}

fn delete_role_policy(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let role = load_role(tx, c, req(c.input, "RoleName")?)?;
    let name = req(c.input, "PolicyName")?;
    let id = format!("{}/{name}", s(&role, "RoleName").to_lowercase());
    if !tx.delete(c.scope, KIND_ROLE_POLICY, &id)? {
        return Err(no_such("role policy", name));
    }
    Ok(json!({}))
}

fn list_role_policies(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let role = load_role(tx, c, req(c.input, "RoleName")?)?;
    let mut names: Vec<Value> = tx
        .list(
            c.scope,
            KIND_ROLE_POLICY,
            Some(&s(&role, "RoleName").to_lowercase()),
        )?
        .iter()
        .map(|r| json!(s(&r.body, "PolicyName")))
        .collect();
    names.sort_by_key(|v| v.as_str().unwrap_or_default().to_string());
    page(c.input, "PolicyNames", names)
}

// ---------------------------------------------------------------------------------------------
// Managed policies

/// `arn:aws:iam::aws:policy/...`: AWS's own managed policies. Portico has no catalogue of
/// their documents; it accepts any such ARN for attachment.
fn aws_managed(arn: &str) -> Option<(String, String)> {
    let rest = arn.split_once(":iam::aws:policy")?.1;
    if !arn.starts_with("arn:aws") || !rest.starts_with('/') {
        return None;
    }
    let (path, name) = rest.rsplit_once('/')?;
    if name.is_empty() {
        return None;
    }
    Some((format!("{path}/"), name.to_string()))
}

fn policy_not_found(arn: &str) -> AwsError {
    AwsError::new(
        404,
        "NoSuchEntity",
        format!("Policy {arn} does not exist or is not attachable."),
    )
}

fn attachment_count(tx: &Tx<'_>, c: &Call<'_>, arn: &str) -> AwsResult<usize> {
    Ok(principals::attachment_count(tx, c, arn)?
        + tx.list(c.scope, KIND_ROLE, None)?
            .iter()
            .filter(|r| {
                r.body
                    .get("_attached")
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(arn)))
            })
            .count())
}

fn render_policy(tx: &Tx<'_>, c: &Call<'_>, p: &Value) -> AwsResult<Value> {
    let arn = s(p, "Arn");
    let mut v = json!({
        "PolicyName": p.get("PolicyName"), "PolicyId": p.get("PolicyId"), "Arn": arn,
        "Path": p.get("Path"), "DefaultVersionId": p.get("DefaultVersionId"),
        "AttachmentCount": attachment_count(tx, c, &arn)?,
        "PermissionsBoundaryUsageCount": boundary_count(tx, c, &arn)?,
        "IsAttachable": true, "CreateDate": p.get("CreateDate"), "UpdateDate": p.get("UpdateDate"),
    });
    if let Some(d) = p.get("Description") {
        v["Description"] = d.clone();
    }
    if let Some(Value::Array(t)) = p.get("Tags") {
        if !t.is_empty() {
            v["Tags"] = json!(t);
        }
    }
    Ok(v)
}

fn load_policy(tx: &Tx<'_>, c: &Call<'_>, arn: &str) -> AwsResult<Value> {
    Ok(tx
        .get(c.scope, KIND_POLICY, arn)?
        .ok_or_else(|| policy_not_found(arn))?
        .body)
}

fn save_policy(tx: &Tx<'_>, c: &Call<'_>, p: &Value) -> AwsResult<()> {
    tx.put(
        c.scope,
        KIND_POLICY,
        &s(p, "Arn"),
        None,
        Some(&s(p, "PolicyName")),
        p,
    )?;
    Ok(())
}

fn create_policy(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let name = req(c.input, "PolicyName")?;
    check_name(name, "policyName", 128)?;
    let path = c.input.str("Path").unwrap_or("/");
    check_path(path)?;
    let doc = req(c.input, "PolicyDocument")?;
    check_policy(doc)?;
    let arn = c.arn(&format!("policy{path}{name}"));
    if tx.get(c.scope, KIND_POLICY, &arn)?.is_some() {
        return Err(AwsError::new(
            409,
            "EntityAlreadyExists",
            format!("A policy called {name} already exists. Duplicate names are not allowed."),
        ));
    }
    let now = time::iso_seconds(time::now_millis());
    let mut p = json!({
        "PolicyName": name, "PolicyId": iam_id("ANPA", 17), "Arn": arn, "Path": path,
        "DefaultVersionId": "v1", "CreateDate": now, "UpdateDate": now, "Tags": tags_of(c.input),
        "_versions": [{"VersionId": "v1", "Document": doc, "IsDefaultVersion": true, "CreateDate": now}],
        "_nextVersion": 2,
    });
    if let Some(d) = c.input.string("Description") {
        p["Description"] = json!(d);
    }
    save_policy(tx, c, &p)?;
    Ok(json!({"Policy": render_policy(tx, c, &p)?}))
}

fn get_policy(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let arn = req(c.input, "PolicyArn")?;
    if let Some((path, name)) = aws_managed(arn) {
        let id: String = arn
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
            .to_string();
        return Ok(json!({"Policy": {
            "PolicyName": name, "PolicyId": format!("ANPA{:0>17}", &id[..id.len().min(17)]), "Arn": arn,
            "Path": path, "DefaultVersionId": "v1", "AttachmentCount": attachment_count(tx, c, arn)?,
            "PermissionsBoundaryUsageCount": boundary_count(tx, c, arn)?, "IsAttachable": true,
        }}));
    }
    let p = load_policy(tx, c, arn)?;
    Ok(json!({"Policy": render_policy(tx, c, &p)?}))
}

fn delete_policy(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let arn = req(c.input, "PolicyArn")?;
    let p = load_policy(tx, c, arn)?;
    if attachment_count(tx, c, arn)? > 0 || boundary_count(tx, c, arn)? > 0 {
        return Err(conflict("Cannot delete a policy attached to entities."));
    }
    if p.get("_versions")
        .and_then(Value::as_array)
        .is_some_and(|v| v.len() > 1)
    {
        return Err(conflict("This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy."));
    }
    tx.delete(c.scope, KIND_POLICY, arn)?;
    Ok(json!({}))
}

fn list_policies(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let scope = c.input.str("Scope").unwrap_or("All");
    let only_attached = c.input.bool("OnlyAttached").ok().flatten() == Some(true);
    let prefix = c.input.str("PathPrefix").unwrap_or("/");
    let mut out = Vec::new();
    if scope != "AWS" {
        for r in tx.list(c.scope, KIND_POLICY, None)? {
            let v = render_policy(tx, c, &r.body)?;
            if !s(&v, "Path").starts_with(prefix) {
                continue;
            }
            if only_attached && v["AttachmentCount"] == json!(0) {
                continue;
            }
            out.push(v);
        }
    }
    page(c.input, "Policies", out)
}

fn versions(p: &Value) -> Vec<Value> {
    p.get("_versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn render_version(v: &Value, with_doc: bool) -> Value {
    let mut out = json!({"VersionId": v.get("VersionId"), "IsDefaultVersion": v.get("IsDefaultVersion"), "CreateDate": v.get("CreateDate")});
    if with_doc {
        out["Document"] = json!(encode_doc(&s(v, "Document")));
    }
    out
}

fn create_policy_version(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let arn = req(c.input, "PolicyArn")?;
    let mut p = load_policy(tx, c, arn)?;
    let doc = req(c.input, "PolicyDocument")?;
    check_policy(doc)?;
    let mut vs = versions(&p);
    if vs.len() >= 5 {
        return Err(AwsError::new(
            409,
            "LimitExceeded",
            "A managed policy can have up to 5 versions. Before you create a new version, you must delete an existing version.",
        ));
    }
    let n = p.get("_nextVersion").and_then(Value::as_i64).unwrap_or(2);
    let id = format!("v{n}");
    let default = c.input.bool("SetAsDefault").ok().flatten() == Some(true);
    if default {
        for v in vs.iter_mut() {
            v["IsDefaultVersion"] = json!(false);
        }
        p["DefaultVersionId"] = json!(id);
    }
    let now = time::iso_seconds(time::now_millis());
    let v =
        json!({"VersionId": id, "Document": doc, "IsDefaultVersion": default, "CreateDate": now});
    vs.push(v.clone());
    p["_versions"] = json!(vs);
    p["_nextVersion"] = json!(n + 1);
    p["UpdateDate"] = json!(now);
    save_policy(tx, c, &p)?;
    Ok(json!({"PolicyVersion": render_version(&v, false)}))
}

fn find_version(p: &Value, id: &str) -> AwsResult<Value> {
    versions(p)
        .into_iter()
        .find(|v| v.get("VersionId").and_then(Value::as_str) == Some(id))
        .ok_or_else(|| {
            AwsError::new(
                404,
                "NoSuchEntity",
                format!(
                    "Policy {} version {id} does not exist or is not attachable.",
                    s(p, "Arn")
                ),
            )
        })
}

fn get_policy_version(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let p = load_policy(tx, c, req(c.input, "PolicyArn")?)?;
    let v = find_version(&p, req(c.input, "VersionId")?)?;
    Ok(json!({"PolicyVersion": render_version(&v, true)}))
}

fn list_policy_versions(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let p = load_policy(tx, c, req(c.input, "PolicyArn")?)?;
    let mut vs: Vec<Value> = versions(&p)
        .iter()
        .map(|v| render_version(v, false))
        .collect();
    vs.reverse();
    page(c.input, "Versions", vs)
}

fn delete_policy_version(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let mut p = load_policy(tx, c, req(c.input, "PolicyArn")?)?;
    let id = req(c.input, "VersionId")?;
    let v = find_version(&p, id)?;
    if v.get("IsDefaultVersion").and_then(Value::as_bool) == Some(true) {
        return Err(conflict("Cannot delete the default version of a policy."));
    }
    let vs: Vec<Value> = versions(&p)
        .into_iter()
        .filter(|x| x.get("VersionId").and_then(Value::as_str) != Some(id))
        .collect();
    p["_versions"] = json!(vs);
    save_policy(tx, c, &p)?;
    Ok(json!({}))
}

fn set_default_policy_version(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let mut p = load_policy(tx, c, req(c.input, "PolicyArn")?)?;
    let id = req(c.input, "VersionId")?;
    find_version(&p, id)?;
    let vs: Vec<Value> = versions(&p)
        .into_iter()
        .map(|mut x| {
            let is = x.get("VersionId").and_then(Value::as_str) == Some(id);
            x["IsDefaultVersion"] = json!(is);
            x
        })
        .collect();
    p["_versions"] = json!(vs);
    p["DefaultVersionId"] = json!(id);
    save_policy(tx, c, &p)?;
    Ok(json!({}))
}

fn attached(role: &Value) -> Vec<String> {
    role.get("_attached")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

fn attach_role_policy(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let mut role = load_role(tx, c, req(c.input, "RoleName")?)?;
    let arn = req(c.input, "PolicyArn")?;
    if aws_managed(arn).is_none() {
        if !arn.starts_with("arn:") || arn.split(':').count() < 6 {
            return Err(AwsError::bad(
                "InvalidInput",
                format!("ARN {arn} is not valid."),
            ));
        }
        load_policy(tx, c, arn)?;
    }
    let mut list = attached(&role);
    if !list.iter().any(|a| a == arn) {
        if list.len() >= 20 {
            return Err(AwsError::new(
                409,
                "LimitExceeded",
                "Cannot exceed quota for PoliciesPerRole: 20",
            ));
        }
        list.push(arn.to_string());
    }
    role["_attached"] = json!(list);
    save_role(tx, c, &role)?;
    Ok(json!({}))
}

fn detach_role_policy(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let mut role = load_role(tx, c, req(c.input, "RoleName")?)?;
    let arn = req(c.input, "PolicyArn")?;
    let mut list = attached(&role);
    let before = list.len();
    list.retain(|a| a != arn);
    if list.len() == before {
        return Err(AwsError::new(
            404,
            "NoSuchEntity",
            format!("Policy {arn} was not found."),
        ));
    }
    role["_attached"] = json!(list);
    save_role(tx, c, &role)?;
    Ok(json!({}))
}

fn list_attached_role_policies(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let role = load_role(tx, c, req(c.input, "RoleName")?)?;
    let prefix = c.input.str("PathPrefix").unwrap_or("/");
    let mut out = Vec::new();
    for arn in attached(&role) {
        let (path, name) = match aws_managed(&arn) {
            Some(x) => x,
            None => match tx.get(c.scope, KIND_POLICY, &arn)? {
                Some(r) => (s(&r.body, "Path"), s(&r.body, "PolicyName")),
                None => continue,
            },
        };
        if path.starts_with(prefix) {
            out.push(json!({"PolicyName": name, "PolicyArn": arn}));
        }
    }
    page(c.input, "AttachedPolicies", out)
}

// ---------------------------------------------------------------------------------------------
// Instance profiles

fn load_profile(tx: &Tx<'_>, c: &Call<'_>, name: &str) -> AwsResult<Value> {
    Ok(tx
        .get(c.scope, KIND_PROFILE, &name.to_lowercase())?
        .ok_or_else(|| no_such("instance profile", name))?
        .body)
}

fn save_profile(tx: &Tx<'_>, c: &Call<'_>, p: &Value) -> AwsResult<()> {
    let name = s(p, "InstanceProfileName");
    tx.put(
        c.scope,
        KIND_PROFILE,
        &name.to_lowercase(),
        None,
        Some(&name),
        p,
    )?;
    Ok(())
}

fn render_profile(tx: &Tx<'_>, c: &Call<'_>, p: &Value) -> AwsResult<Value> {
    let mut roles = Vec::new();
    for r in p
        .get("_roles")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(role) = tx.get(c.scope, KIND_ROLE, r.as_str().unwrap_or_default())? {
            let mut v = render_role(&role.body, false);
            if let Some(o) = v.as_object_mut() {
                o.remove("Tags");
                o.remove("MaxSessionDuration");
            }
            roles.push(v);
        }
    }
    let mut v = json!({
        "Path": p.get("Path"), "InstanceProfileName": p.get("InstanceProfileName"),
        "InstanceProfileId": p.get("InstanceProfileId"), "Arn": p.get("Arn"),
        "CreateDate": p.get("CreateDate"), "Roles": roles,
    });
    if let Some(Value::Array(t)) = p.get("Tags") {
        if !t.is_empty() {
            v["Tags"] = json!(t);
        }
    }
    Ok(v)
}

fn create_instance_profile(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let name = req(c.input, "InstanceProfileName")?;
    check_name(name, "instanceProfileName", 128)?;
    let path = c.input.str("Path").unwrap_or("/");
    check_path(path)?;
    if tx
        .get(c.scope, KIND_PROFILE, &name.to_lowercase())?
        .is_some()
    {
        return Err(AwsError::new(
            409,
            "EntityAlreadyExists",
            format!("Instance Profile {name} already exists."),
        ));
    }
    let p = json!({
        "Path": path, "InstanceProfileName": name, "InstanceProfileId": iam_id("AIPA", 17),
        "Arn": c.arn(&format!("instance-profile{path}{name}")),
        "CreateDate": time::iso_seconds(time::now_millis()), "Tags": tags_of(c.input), "_roles": [],
    });
    save_profile(tx, c, &p)?;
    Ok(json!({"InstanceProfile": render_profile(tx, c, &p)?}))
}

fn get_instance_profile(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let p = load_profile(tx, c, req(c.input, "InstanceProfileName")?)?;
    Ok(json!({"InstanceProfile": render_profile(tx, c, &p)?}))
}

fn profile_roles(p: &Value) -> Vec<String> {
    p.get("_roles")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

fn delete_instance_profile(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let name = req(c.input, "InstanceProfileName")?;
    let p = load_profile(tx, c, name)?;
    if !profile_roles(&p).is_empty() {
        return Err(conflict(
            "Cannot delete entity, must remove roles from instance profile first.",
        ));
    }
    tx.delete(c.scope, KIND_PROFILE, &name.to_lowercase())?;
    Ok(json!({}))
}

fn add_role_to_instance_profile(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let mut p = load_profile(tx, c, req(c.input, "InstanceProfileName")?)?;
    let role = load_role(tx, c, req(c.input, "RoleName")?)?;
    let id = s(&role, "RoleName").to_lowercase();
    let mut roles = profile_roles(&p);
    if !roles.is_empty() {
        return Err(AwsError::new(
            409,
            "LimitExceeded",
            "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1",
        ));
    }
    roles.push(id);
    p["_roles"] = json!(roles);
    save_profile(tx, c, &p)?;
    Ok(json!({}))
}

fn remove_role_from_instance_profile(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let mut p = load_profile(tx, c, req(c.input, "InstanceProfileName")?)?;
    let name = req(c.input, "RoleName")?;
    let mut roles = profile_roles(&p);
    let before = roles.len();
    roles.retain(|r| *r != name.to_lowercase());
    if roles.len() == before {
        return Err(no_such("role", name));
    }
    p["_roles"] = json!(roles);
    save_profile(tx, c, &p)?;
    Ok(json!({}))
}

fn list_instance_profiles(tx: &Tx<'_>, c: &Call<'_>, role: Option<&str>) -> AwsResult<Value> {
    let prefix = c.input.str("PathPrefix").unwrap_or("/");
    let mut out = Vec::new();
    for r in tx.list(c.scope, KIND_PROFILE, None)? {
        if !s(&r.body, "Path").starts_with(prefix) {
            continue;
        }
        if let Some(role) = role {
            if !profile_roles(&r.body).contains(&role.to_lowercase()) {
                continue;
            }
        }
        out.push(render_profile(tx, c, &r.body)?);
    }
    page(c.input, "InstanceProfiles", out)
}

// ---------------------------------------------------------------------------------------------
// Service-linked roles

/// The role name and AWS-managed policy AWS uses for a service's linked role.
fn service_linked(service: &str) -> (String, Option<&'static str>) {
    match service {
        "ecs.amazonaws.com" => (
            "AWSServiceRoleForECS".into(),
            Some("aws-service-role/AmazonECSServiceRolePolicy"),
        ),
        "elasticloadbalancing.amazonaws.com" => (
            "AWSServiceRoleForElasticLoadBalancing".into(),
            Some("aws-service-role/AWSElasticLoadBalancingServiceRolePolicy"),
        ),
        "ecs.application-autoscaling.amazonaws.com" => (
            "AWSServiceRoleForApplicationAutoScaling_ECSService".into(),
            Some("aws-service-role/AWSApplicationAutoscalingECSServicePolicy"),
        ),
        "autoscaling.amazonaws.com" => (
            "AWSServiceRoleForAutoScaling".into(),
            Some("aws-service-role/AutoScalingServiceRolePolicy"),
        ),
        "ops.apigateway.amazonaws.com" => (
            "AWSServiceRoleForAPIGateway".into(),
            Some("aws-service-role/APIGatewayServiceRolePolicy"),
        ),
        other => {
            let head = other.split('.').next().unwrap_or(other);
            let mut c = head.chars();
            let cap = c
                .next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default();
            (format!("AWSServiceRoleFor{cap}"), None)
        }
    }
}

fn create_service_linked_role(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let service = req(c.input, "AWSServiceName")?;
    if !service.ends_with(".amazonaws.com") {
        return Err(AwsError::bad(
            "InvalidInput",
            format!("Invalid Service Name: {service}"),
        ));
    }
    let (mut name, policy) = service_linked(service);
    if let Some(suffix) = c.input.str("CustomSuffix") {
        name = format!("{name}_{suffix}");
    }
    if tx.get(c.scope, KIND_ROLE, &name.to_lowercase())?.is_some() {
        return Err(AwsError::bad(
            "InvalidInput",
            format!("Service role name {name} has been taken in this account, please try a different suffix."),
        ));
    }
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": [service]}, "Action": ["sts:AssumeRole"]}]}).to_string();
    let mut role = new_role(
        tx,
        c,
        &name,
        &format!("/aws-service-role/{service}/"),
        &trust,
        c.input.string("Description"),
        3600,
        Vec::new(),
    )?;
    if let Some(p) = policy {
        role["_attached"] = json!([format!("arn:{}:iam::aws:policy/{p}", c.partition)]);
        save_role(tx, c, &role)?;
    }
    Ok(json!({"Role": render_role(&role, false)}))
}

/// The role an ARN names, if it exists (STS AssumeRole).
pub(crate) fn role_by_arn(tx: &Tx<'_>, arn: &str) -> AwsResult<Option<Value>> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[2] != "iam" {
        return Ok(None);
    }
    let Some(path_name) = parts[5].strip_prefix("role/") else {
        return Ok(None);
    };
    let name = path_name.rsplit('/').next().unwrap_or(path_name);
    let scope = Scope::new(parts[4], "");
    let role = tx.get(&scope, KIND_ROLE, &name.to_lowercase())?;
    Ok(role.map(|r| r.body).filter(|b| s(b, "Arn") == arn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_syntax() {
        let ok = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
        assert!(check_policy(ok).is_ok());
        let one = r#"{"Statement":{"Effect":"Deny","Action":"*","Resource":"*"}}"#;
        assert!(check_policy(one).is_ok());
        for bad in [
            "{",
            "[]",
            r#"{"Version":"2012-10-17"}"#,
            r#"{"Version":"2019-01-01","Statement":[{"Effect":"Allow"}]}"#,
            r#"{"Statement":[{"Effect":"Maybe"}]}"#,
            r#"{"Statement":[{"Action":"*"}]}"#,
        ] {
            let e = check_policy(bad).unwrap_err();
            assert_eq!(e.code, "MalformedPolicyDocument", "{bad}");
        }
    }

    #[test]
    fn ids_and_encoding() {
        let id = iam_id("AROA", 17);
        assert_eq!(id.len(), 21);
        assert!(id[4..]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
        assert_eq!(
            encode_doc(r#"{"a": "b c/d"}"#),
            "%7B%22a%22%3A%20%22b%20c%2Fd%22%7D"
        );
        assert_eq!(
            aws_managed("arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"),
            Some((
                "/service-role/".to_string(),
                "AmazonECSTaskExecutionRolePolicy".to_string()
            ))
        );
        assert_eq!(aws_managed("arn:aws:iam::123456789012:policy/x"), None);
    }
}
