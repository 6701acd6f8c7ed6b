//! IAM providers: `AWS::IAM::Role`, `AWS::IAM::Policy`, `AWS::IAM::ManagedPolicy`,
//! `AWS::IAM::InstanceProfile`, through the IAM query operations.

use super::{fstr, path, prop_str, required, text, unsupported, Done, Failure, PResult, Pcx};
use portico_core::Service;
use serde_json::{json, Map, Value};

/// A policy document as IAM wants it: JSON text.
fn doc(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn names(props: &Value, key: &str) -> Vec<String> {
    props
        .get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().map(text).collect())
        .unwrap_or_default()
}

fn inline_policies(props: &Value) -> Vec<(String, String)> {
    props
        .get("Policies")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|p| Some((prop_str(p, "PolicyName")?, doc(p.get("PolicyDocument")?))))
                .collect()
        })
        .unwrap_or_default()
}

pub(super) async fn create(cx: &Pcx<'_>, ty: &str, props: &Value) -> PResult<Done> {
    match ty {
        "AWS::IAM::Role" => {
            let name = prop_str(props, "RoleName").unwrap_or_else(|| cx.name(64));
            let mut input = json!({
                "RoleName": name,
                "AssumeRolePolicyDocument": doc(&required(props, "AssumeRolePolicyDocument")?),
                "Path": prop_str(props, "Path").unwrap_or_else(|| "/".into()),
            });
            for k in ["Description", "MaxSessionDuration", "PermissionsBoundary"] {
                if let Some(v) = prop_str(props, k) {
                    input[k] = json!(v);
                }
            }
            let tags = cx.tag_list(props);
            if !tags.is_empty() {
                input["Tags"] = Value::Array(tags);
            }
            let out = cx.call(Service::Iam, "CreateRole", input).await?;
            let fail = |f: Failure| f.with_physical(&name);
            for arn in names(props, "ManagedPolicyArns") {
                cx.call(
                    Service::Iam,
                    "AttachRolePolicy",
                    json!({"RoleName": name, "PolicyArn": arn}),
                )
                .await
                .map_err(fail)?;
            }
            for (pn, pd) in inline_policies(props) {
                cx.call(
                    Service::Iam,
                    "PutRolePolicy",
                    json!({"RoleName": name, "PolicyName": pn, "PolicyDocument": pd}),
                )
                .await
                .map_err(fail)?;
            }
            let role = path(&out, &["Role"]).cloned().unwrap_or(Value::Null);
            let mut attrs = Map::new();
            attrs.insert("Arn".into(), json!(fstr(&role, "Arn").unwrap_or_default()));
            attrs.insert(
                "RoleId".into(),
                json!(fstr(&role, "RoleId").unwrap_or_default()),
            );
            Ok(Done {
                physical: name,
                attrs,
            })
        }
        "AWS::IAM::Policy" => {
            let id = cx.name(64);
            let pn = text(&required(props, "PolicyName")?);
            let pd = doc(&required(props, "PolicyDocument")?);
            attach_inline(cx, props, &pn, &pd)
                .await
                .map_err(|f| f.with_physical(&id))?;
            let mut attrs = Map::new();
            attrs.insert("Id".into(), json!(id));
            Ok(Done {
                physical: id,
                attrs,
            })
        }
        "AWS::IAM::ManagedPolicy" => {
            let name = prop_str(props, "ManagedPolicyName").unwrap_or_else(|| cx.name(128));
            let mut input = json!({
                "PolicyName": name,
                "PolicyDocument": doc(&required(props, "PolicyDocument")?),
                "Path": prop_str(props, "Path").unwrap_or_else(|| "/".into()),
            });
            if let Some(d) = prop_str(props, "Description") {
                input["Description"] = json!(d);
            }
            let out = cx.call(Service::Iam, "CreatePolicy", input).await?;
            let arn = path(&out, &["Policy", "Arn"]).map(text).unwrap_or_default();
            attach_managed(cx, props, &arn, "Attach")
                .await
                .map_err(|f| f.with_physical(&arn))?;
            let mut attrs = Map::new();
            attrs.insert("PolicyArn".into(), json!(arn));
            Ok(Done {
                physical: arn,
                attrs,
            })
        }
        "AWS::IAM::InstanceProfile" => {
            let name = prop_str(props, "InstanceProfileName").unwrap_or_else(|| cx.name(128));
            let out = cx
                .call(
                    Service::Iam,
                    "CreateInstanceProfile",
                    json!({"InstanceProfileName": name, "Path": prop_str(props, "Path").unwrap_or_else(|| "/".into())}),
                )
                .await?;
            for r in names(props, "Roles") {
                cx.call(
                    Service::Iam,
                    "AddRoleToInstanceProfile",
                    json!({"InstanceProfileName": name, "RoleName": r}),
                )
                .await
                .map_err(|f| f.with_physical(&name))?;
            }
            let mut attrs = Map::new();
            attrs.insert(
                "Arn".into(),
                json!(path(&out, &["InstanceProfile", "Arn"])
                    .map(text)
                    .unwrap_or_default()),
            );
            Ok(Done {
                physical: name,
                attrs,
            })
        }
        other => Err(unsupported(other)),
    }
}

async fn attach_inline(cx: &Pcx<'_>, props: &Value, pn: &str, pd: &str) -> PResult<()> {
    for (key, op, member) in [
        ("Roles", "PutRolePolicy", "RoleName"),
        ("Users", "PutUserPolicy", "UserName"),
        ("Groups", "PutGroupPolicy", "GroupName"),
    ] {
        for n in names(props, key) {
            cx.call(
                Service::Iam,
                op,
                json!({ member: n, "PolicyName": pn, "PolicyDocument": pd }),
            )
            .await?;
        }
    }
    Ok(())
}

async fn detach_inline(cx: &Pcx<'_>, props: &Value, keep: Option<&Value>) -> PResult<()> {
    let pn = prop_str(props, "PolicyName").unwrap_or_default();
    for (key, op, member) in [
        ("Roles", "DeleteRolePolicy", "RoleName"),
        ("Users", "DeleteUserPolicy", "UserName"),
        ("Groups", "DeleteGroupPolicy", "GroupName"),
    ] {
        let kept = keep.map(|k| names(k, key)).unwrap_or_default();
        let same_name =
            keep.and_then(|k| prop_str(k, "PolicyName")).as_deref() == Some(pn.as_str());
        for n in names(props, key) {
            if same_name && kept.contains(&n) {
                continue;
            }
            cx.delete_call(Service::Iam, op, json!({ member: n, "PolicyName": pn }))
                .await?;
        }
    }
    Ok(())
}

async fn attach_managed(cx: &Pcx<'_>, props: &Value, arn: &str, verb: &str) -> PResult<()> {
    for (key, what, member) in [
        ("Roles", "Role", "RoleName"),
        ("Users", "User", "UserName"),
        ("Groups", "Group", "GroupName"),
    ] {
        for n in names(props, key) {
            let op = format!("{verb}{what}Policy");
            let input = json!({ member: n, "PolicyArn": arn });
            if verb == "Detach" {
                cx.delete_call(Service::Iam, &op, input).await?;
            } else {
                cx.call(Service::Iam, &op, input).await?;
            }
        }
    }
    Ok(())
}

pub(super) async fn update(
    cx: &Pcx<'_>,
    ty: &str,
    physical: &str,
    old: &Value,
    new: &Value,
    attrs: &Map<String, Value>,
) -> PResult<Done> {
    let done = Done::existing(physical, attrs);
    match ty {
        "AWS::IAM::Role" => {
            if old.get("AssumeRolePolicyDocument") != new.get("AssumeRolePolicyDocument") {
                cx.call(
                    Service::Iam,
                    "UpdateAssumeRolePolicy",
                    json!({"RoleName": physical, "PolicyDocument": doc(&required(new, "AssumeRolePolicyDocument")?)}),
                )
                .await?;
            }
            if old.get("Description") != new.get("Description")
                || old.get("MaxSessionDuration") != new.get("MaxSessionDuration")
            {
                let mut input = json!({"RoleName": physical});
                for k in ["Description", "MaxSessionDuration"] {
                    if let Some(v) = prop_str(new, k) {
                        input[k] = json!(v);
                    }
                }
                cx.call(Service::Iam, "UpdateRole", input).await?;
            }
            let (o, n) = (
                names(old, "ManagedPolicyArns"),
                names(new, "ManagedPolicyArns"),
            );
            for arn in o.iter().filter(|a| !n.contains(a)) {
                cx.delete_call(
                    Service::Iam,
                    "DetachRolePolicy",
                    json!({"RoleName": physical, "PolicyArn": arn}),
                )
                .await?;
            }
            for arn in n.iter().filter(|a| !o.contains(a)) {
                cx.call(
                    Service::Iam,
                    "AttachRolePolicy",
                    json!({"RoleName": physical, "PolicyArn": arn}),
                )
                .await?;
            }
            let (o, n) = (inline_policies(old), inline_policies(new));
            for (pn, _) in o.iter().filter(|(pn, _)| !n.iter().any(|(x, _)| x == pn)) {
                cx.delete_call(
                    Service::Iam,
                    "DeleteRolePolicy",
                    json!({"RoleName": physical, "PolicyName": pn}),
                )
                .await?;
            }
            for (pn, pd) in n.iter().filter(|p| !o.contains(p)) {
                cx.call(
                    Service::Iam,
                    "PutRolePolicy",
                    json!({"RoleName": physical, "PolicyName": pn, "PolicyDocument": pd}),
                )
                .await?;
            }
            Ok(done)
        }
        "AWS::IAM::Policy" => {
            detach_inline(cx, old, Some(new)).await?;
            let pn = text(&required(new, "PolicyName")?);
            attach_inline(cx, new, &pn, &doc(&required(new, "PolicyDocument")?)).await?;
            Ok(done)
        }
        "AWS::IAM::ManagedPolicy" => {
            if old.get("PolicyDocument") != new.get("PolicyDocument") {
                cx.call(
                    Service::Iam,
                    "CreatePolicyVersion",
                    json!({"PolicyArn": physical, "PolicyDocument": doc(&required(new, "PolicyDocument")?), "SetAsDefault": true}),
                )
                .await?;
            }
            attach_managed(cx, old, physical, "Detach").await?;
            attach_managed(cx, new, physical, "Attach").await?;
            Ok(done)
        }
        other => Err(unsupported(other)),
    }
}

pub(super) async fn delete(
    cx: &Pcx<'_>,
    ty: &str,
    physical: &str,
    props: &Value,
    _attrs: &Map<String, Value>,
) -> PResult<()> {
    match ty {
        "AWS::IAM::Role" => {
            for arn in names(props, "ManagedPolicyArns") {
                cx.delete_call(
                    Service::Iam,
                    "DetachRolePolicy",
                    json!({"RoleName": physical, "PolicyArn": arn}),
                )
                .await?;
            }
            for (pn, _) in inline_policies(props) {
                cx.delete_call(
                    Service::Iam,
                    "DeleteRolePolicy",
                    json!({"RoleName": physical, "PolicyName": pn}),
                )
                .await?;
            }
            cx.delete_call(Service::Iam, "DeleteRole", json!({"RoleName": physical}))
                .await
        }
        "AWS::IAM::Policy" => detach_inline(cx, props, None).await,
        "AWS::IAM::ManagedPolicy" => {
            attach_managed(cx, props, physical, "Detach").await?;
            cx.delete_call(Service::Iam, "DeletePolicy", json!({"PolicyArn": physical}))
                .await
        }
        "AWS::IAM::InstanceProfile" => {
            for r in names(props, "Roles") {
                cx.delete_call(
                    Service::Iam,
                    "RemoveRoleFromInstanceProfile",
                    json!({"InstanceProfileName": physical, "RoleName": r}),
                )
                .await?;
            }
            cx.delete_call(
                Service::Iam,
                "DeleteInstanceProfile",
                json!({"InstanceProfileName": physical}),
            )
            .await
        }
        other => Err(unsupported(other)),
    }
}
