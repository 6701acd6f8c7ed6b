//! IAM users and groups: create/get/list/delete, group membership, and their inline and
//! attached managed policies (the same rules as roles: syntax-checked documents, URL-encoded on
//! the way out, DeleteConflict while anything hangs on them).
//!
//! Store kinds (account, region ""): `iam.user` and `iam.group` (id = lowercased name),
//! `iam.user-policy` and `iam.group-policy` (id = `{principal id}/{policy name}`).

use super::{
    aws_managed, boundary_of, check_name, check_path, check_policy, conflict, encode_doc, iam_id,
    load_policy, no_such, page, req, s, tags_of, Call,
};
use portico_core::{time, AwsError, AwsResult};
use portico_store::Tx;
use serde_json::{json, Value};

/// What differs between users and groups.
pub(super) struct Principal {
    pub kind: &'static str,
    pub inline: &'static str,
    pub name_field: &'static str,
    pub what: &'static str,
    pub id_prefix: &'static str,
    pub arn_type: &'static str,
}

pub(super) const USER: Principal = Principal {
    kind: "iam.user",
    inline: "iam.user-policy",
    name_field: "UserName",
    what: "user",
    id_prefix: "AIDA",
    arn_type: "user",
};

pub(super) const GROUP: Principal = Principal {
    kind: "iam.group",
    inline: "iam.group-policy",
    name_field: "GroupName",
    what: "group",
    id_prefix: "AGPA",
    arn_type: "group",
};

fn load(tx: &Tx<'_>, c: &Call<'_>, p: &Principal, name: &str) -> AwsResult<Value> {
    Ok(tx
        .get(c.scope, p.kind, &name.to_lowercase())?
        .ok_or_else(|| no_such(p.what, name))?
        .body)
}

fn save(tx: &Tx<'_>, c: &Call<'_>, p: &Principal, body: &Value) -> AwsResult<()> {
    let name = s(body, p.name_field);
    tx.put(
        c.scope,
        p.kind,
        &name.to_lowercase(),
        None,
        Some(&name),
        body,
    )?;
    Ok(())
}

fn render(p: &Principal, body: &Value, full: bool) -> Value {
    let id_field = if p.what == "user" {
        "UserId"
    } else {
        "GroupId"
    };
    let mut v = json!({
        "Path": body.get("Path"), p.name_field: body.get(p.name_field),
        id_field: body.get(id_field), "Arn": body.get("Arn"), "CreateDate": body.get("CreateDate"),
    });
    if full {
        if let Some(b) = body.get("PermissionsBoundary") {
            v["PermissionsBoundary"] = b.clone();
        }
        if let Some(Value::Array(t)) = body.get("Tags") {
            if !t.is_empty() {
                v["Tags"] = json!(t);
            }
        }
    }
    v
}

pub(super) fn create(tx: &Tx<'_>, c: &Call<'_>, p: &Principal) -> AwsResult<Value> {
    let name = req(c.input, p.name_field)?;
    let field = if p.what == "user" {
        "userName"
    } else {
        "groupName"
    };
    check_name(name, field, 64)?;
    let path = c.input.str("Path").unwrap_or("/");
    check_path(path)?;
    if tx.get(c.scope, p.kind, &name.to_lowercase())?.is_some() {
        let what = if p.what == "user" { "User" } else { "Group" };
        return Err(AwsError::new(
            409,
            "EntityAlreadyExists",
            format!("{what} with name {name} already exists."),
        ));
    }
    let id_field = if p.what == "user" {
        "UserId"
    } else {
        "GroupId"
    };
    let mut body = json!({
        "Path": path, p.name_field: name, id_field: iam_id(p.id_prefix, 17),
        "Arn": c.arn(&format!("{}{path}{name}", p.arn_type)),
        "CreateDate": time::iso_seconds(time::now_millis()), "_attached": [],
    });
    if p.what == "user" {
        body["Tags"] = json!(tags_of(c.input));
        if let Some(arn) = c.input.str("PermissionsBoundary") {
            body["PermissionsBoundary"] = boundary_of(tx, c, arn)?;
        }
    } else {
        body["_users"] = json!([]);
    }
    save(tx, c, p, &body)?;
    let key = if p.what == "user" { "User" } else { "Group" };
    Ok(json!({ key: render(p, &body, true) }))
}

pub(super) fn get_user(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    match c.input.str("UserName") {
        Some(name) => {
            let u = load(tx, c, &USER, name)?;
            Ok(json!({"User": render(&USER, &u, true)}))
        }
        // Without a name, the caller: Portico's callers are the account root.
        None => Ok(json!({"User": {
            "UserId": c.scope.account, "Arn": c.arn("root"),
            "CreateDate": time::iso_seconds(0),
        }})),
    }
}

fn members(g: &Value) -> Vec<String> {
    g.get("_users")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

pub(super) fn get_group(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let g = load(tx, c, &GROUP, req(c.input, "GroupName")?)?;
    let mut users = Vec::new();
    for id in members(&g) {
        if let Some(u) = tx.get(c.scope, USER.kind, &id)? {
            users.push(render(&USER, &u.body, false));
        }
    }
    let mut out = page(c.input, "Users", users)?;
    out["Group"] = render(&GROUP, &g, false);
    Ok(out)
}

pub(super) fn list(tx: &Tx<'_>, c: &Call<'_>, p: &Principal) -> AwsResult<Value> {
    let prefix = c.input.str("PathPrefix").unwrap_or("/");
    let mut items: Vec<Value> = tx
        .list(c.scope, p.kind, None)?
        .into_iter()
        .filter(|r| s(&r.body, "Path").starts_with(prefix))
        .map(|r| render(p, &r.body, false))
        .collect();
    items.sort_by_key(|v| s(v, p.name_field).to_lowercase());
    page(
        c.input,
        if p.what == "user" { "Users" } else { "Groups" },
        items,
    )
}

fn groups_of(tx: &Tx<'_>, c: &Call<'_>, user_id: &str) -> AwsResult<Vec<Value>> {
    Ok(tx
        .list(c.scope, GROUP.kind, None)?
        .into_iter()
        .filter(|g| members(&g.body).iter().any(|m| m == user_id))
        .map(|g| g.body)
        .collect())
}

pub(super) fn delete(tx: &Tx<'_>, c: &Call<'_>, p: &Principal) -> AwsResult<Value> {
    let name = req(c.input, p.name_field)?;
    let body = load(tx, c, p, name)?;
    let id = name.to_lowercase();
    if p.what == "group" && !members(&body).is_empty() {
        return Err(conflict(
            "Cannot delete entity, must remove users from group first.",
        ));
    }
    if p.what == "user" && !groups_of(tx, c, &id)?.is_empty() {
        return Err(conflict(
            "Cannot delete entity, must remove users from group first.",
        ));
    }
    if tx.count(c.scope, p.inline, Some(&id))? > 0 {
        return Err(conflict(
            "Cannot delete entity, must delete policies first.",
        ));
    }
    if !attached(&body).is_empty() {
        return Err(conflict(
            "Cannot delete entity, must detach all policies first.",
        ));
    }
    tx.delete(c.scope, p.kind, &id)?;
    Ok(json!({}))
}

pub(super) fn add_user_to_group(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let mut g = load(tx, c, &GROUP, req(c.input, "GroupName")?)?;
    let user = req(c.input, "UserName")?;
    load(tx, c, &USER, user)?;
    let mut m = members(&g);
    if !m.contains(&user.to_lowercase()) {
        m.push(user.to_lowercase());
    }
    g["_users"] = json!(m);
    save(tx, c, &GROUP, &g)?;
    Ok(json!({}))
}

pub(super) fn remove_user_from_group(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let mut g = load(tx, c, &GROUP, req(c.input, "GroupName")?)?;
    let user = req(c.input, "UserName")?;
    load(tx, c, &USER, user)?;
    let mut m = members(&g);
    let before = m.len();
    m.retain(|x| *x != user.to_lowercase());
    if m.len() == before {
        return Err(no_such("user", user));
    }
    g["_users"] = json!(m);
    save(tx, c, &GROUP, &g)?;
    Ok(json!({}))
}

pub(super) fn list_groups_for_user(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let user = req(c.input, "UserName")?;
    load(tx, c, &USER, user)?;
    let groups: Vec<Value> = groups_of(tx, c, &user.to_lowercase())?
        .iter()
        .map(|g| render(&GROUP, g, false))
        .collect();
    page(c.input, "Groups", groups)
}

// ---------------------------------------------------------------------------------------------
// Inline and attached policies

pub(super) fn put_policy(tx: &Tx<'_>, c: &Call<'_>, p: &Principal) -> AwsResult<Value> {
    let owner = load(tx, c, p, req(c.input, p.name_field)?)?;
    let name = req(c.input, "PolicyName")?;
    check_name(name, "policyName", 128)?;
    let doc = req(c.input, "PolicyDocument")?;
    check_policy(doc)?;
    let owner_name = s(&owner, p.name_field);
    let id = owner_name.to_lowercase();
    tx.put(
        c.scope,
        p.inline,
        &format!("{id}/{name}"),
        Some(&id),
        Some(name),
        &json!({p.name_field: owner_name, "PolicyName": name, "PolicyDocument": doc}),
    )?;
    Ok(json!({}))
}

pub(super) fn get_policy(tx: &Tx<'_>, c: &Call<'_>, p: &Principal) -> AwsResult<Value> {
    let owner = load(tx, c, p, req(c.input, p.name_field)?)?;
    let name = req(c.input, "PolicyName")?;
    let id = format!("{}/{name}", s(&owner, p.name_field).to_lowercase());
    let doc = tx
        .get(c.scope, p.inline, &id)?
        .ok_or_else(|| no_such(&format!("{} policy", p.what), name))?
        .body;
    Ok(json!({
        p.name_field: doc.get(p.name_field), "PolicyName": doc.get("PolicyName"),
        "PolicyDocument": encode_doc(&s(&doc, "PolicyDocument")),
    }))
}

pub(super) fn delete_policy(tx: &Tx<'_>, c: &Call<'_>, p: &Principal) -> AwsResult<Value> {
    let owner = load(tx, c, p, req(c.input, p.name_field)?)?;
    let name = req(c.input, "PolicyName")?;
    let id = format!("{}/{name}", s(&owner, p.name_field).to_lowercase());
    if !tx.delete(c.scope, p.inline, &id)? {
        return Err(no_such(&format!("{} policy", p.what), name));
    }
    Ok(json!({}))
}

pub(super) fn list_policies(tx: &Tx<'_>, c: &Call<'_>, p: &Principal) -> AwsResult<Value> {
    let owner = load(tx, c, p, req(c.input, p.name_field)?)?;
    let mut names: Vec<Value> = tx
        .list(
            c.scope,
            p.inline,
            Some(&s(&owner, p.name_field).to_lowercase()),
        )?
        .iter()
        .map(|r| json!(s(&r.body, "PolicyName")))
        .collect();
    names.sort_by_key(|v| v.as_str().unwrap_or_default().to_string());
    page(c.input, "PolicyNames", names)
}

fn attached(body: &Value) -> Vec<String> {
    body.get("_attached")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

pub(super) fn attach(tx: &Tx<'_>, c: &Call<'_>, p: &Principal) -> AwsResult<Value> {
    let mut owner = load(tx, c, p, req(c.input, p.name_field)?)?;
    let arn = req(c.input, "PolicyArn")?;
    if aws_managed(arn).is_none() {
        load_policy(tx, c, arn)?;
    }
    let mut list = attached(&owner);
    if !list.iter().any(|a| a == arn) {
        list.push(arn.to_string());
    }
    owner["_attached"] = json!(list);
    save(tx, c, p, &owner)?;
    Ok(json!({}))
}

pub(super) fn detach(tx: &Tx<'_>, c: &Call<'_>, p: &Principal) -> AwsResult<Value> {
    let mut owner = load(tx, c, p, req(c.input, p.name_field)?)?;
    let arn = req(c.input, "PolicyArn")?;
    let mut list = attached(&owner);
    let before = list.len();
    list.retain(|a| a != arn);
    if list.len() == before {
        return Err(AwsError::new(
            404,
            "NoSuchEntity",
            format!("Policy {arn} was not found."),
        ));
    }
    owner["_attached"] = json!(list);
    save(tx, c, p, &owner)?;
    Ok(json!({}))
}

pub(super) fn list_attached(tx: &Tx<'_>, c: &Call<'_>, p: &Principal) -> AwsResult<Value> {
    let owner = load(tx, c, p, req(c.input, p.name_field)?)?;
    let mut out = Vec::new();
    for arn in attached(&owner) {
        let name = match aws_managed(&arn) {
            Some((_, n)) => n,
            None => match tx.get(c.scope, super::KIND_POLICY, &arn)? {
                Some(r) => s(&r.body, "PolicyName"),
                None => continue,
            },
        };
        out.push(json!({"PolicyName": name, "PolicyArn": arn}));
    }
    page(c.input, "AttachedPolicies", out)
}

/// How many users and groups have `arn` attached (for a policy's AttachmentCount).
pub(super) fn attachment_count(tx: &Tx<'_>, c: &Call<'_>, arn: &str) -> AwsResult<usize> {
    let mut n = 0;
    for kind in [USER.kind, GROUP.kind] {
        n += tx
            .list(c.scope, kind, None)?
            .iter()
            .filter(|r| attached(&r.body).iter().any(|a| a == arn))
            .count();
    }
    Ok(n)
}
