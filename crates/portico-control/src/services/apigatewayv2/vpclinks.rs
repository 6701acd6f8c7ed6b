//! VPC link operations: CreateVpcLink, GetVpcLink(s), UpdateVpcLink, DeleteVpcLink. A link is
//! created `PENDING`; the reconciler (reconcile/apigw.rs) checks its subnets and security
//! groups against the EC2 records, creates one ENI per subnet and makes it `AVAILABLE` (or
//! `FAILED` with the reason). Deletion is `DELETING` (202) until the reconciler removes the ENIs
//! and the link.

use super::*;
use serde_json::json;

pub const PENDING_MESSAGE: &str = "VPC link is provisioning ENIs";
pub const AVAILABLE_MESSAGE: &str = "VPC link is ready to route traffic";
pub const DELETING_MESSAGE: &str = "VPC link is deleting";

fn link_not_found(ctx: &Ctx<'_>, id: &str) -> AwsError {
    not_found(
        "VpcLink",
        format!(
            "Invalid VpcLink identifier specified {}:{id}",
            ctx.rc.account_id
        ),
    )
}

pub(crate) fn load(ctx: &Ctx<'_>, tx: &Tx<'_>, id: &str) -> AwsResult<Value> {
    tx.get(&ctx.scope, KIND_VPCLINK, id)?
        .map(|r| r.body)
        .ok_or_else(|| link_not_found(ctx, id))
}

pub(crate) fn create(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let name = req_str(input, "name")?;
    check_len("name", &name, 1, 128)?;
    let subnets = opt_str_list(input, "subnetIds")?.ok_or_else(|| bad("subnetIds is required"))?;
    if subnets.is_empty() || subnets.len() > 10 {
        return Err(bad("A VPC link needs between 1 and 10 subnetIds"));
    }
    let groups = opt_str_list(input, "securityGroupIds")?.unwrap_or_default();
    if groups.len() > 5 {
        return Err(bad("A VPC link can have at most 5 securityGroupIds"));
    }
    for s in &subnets {
        if !s.starts_with("subnet-") {
            return Err(bad(format!("Invalid subnet id {s}")));
        }
    }
    for g in &groups {
        if !g.starts_with("sg-") {
            return Err(bad(format!("Invalid security group id {g}")));
        }
    }
    let tags = opt_str_map(input, "tags")?.unwrap_or_default();
    check_tags(&tags)?;
    ctx.store().write(|tx| {
        if tx.count(&ctx.scope, KIND_VPCLINK, None)? >= 10 {
            return Err(bad(
                "Maximum number of VPC links (10) reached for this account and region",
            ));
        }
        let id = fresh_id(tx, &ctx.scope, KIND_VPCLINK, None, 6)?;
        let body = json!({
            "createdDate": now(),
            "name": name,
            "securityGroupIds": groups,
            "subnetIds": subnets,
            "tags": tags,
            "vpcLinkId": id,
            "vpcLinkStatus": "PENDING",
            "vpcLinkStatusMessage": PENDING_MESSAGE,
            "vpcLinkVersion": "V2",
            "_since": portico_core::time::now_millis(),
        });
        tx.put(&ctx.scope, KIND_VPCLINK, &id, None, Some(&name), &body)?;
        Ok(public(body))
    })
}

pub(crate) fn list(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let items = ctx.store().read(|tx| {
        Ok(tx
            .list(&ctx.scope, KIND_VPCLINK, None)?
            .into_iter()
            .map(|r| r.body)
            .collect::<Vec<_>>())
    })?;
    paginate(input, items)
}

pub(crate) fn get(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let id = req_label(input, "vpcLinkId")?;
    ctx.store().read(|tx| load(ctx, tx, &id).map(public))
}

pub(crate) fn update(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let id = req_label(input, "vpcLinkId")?;
    let name = opt_str(input, "name")?;
    if let Some(n) = &name {
        check_len("name", n, 1, 128)?;
    }
    ctx.store().write(|tx| {
        let mut body = load(ctx, tx, &id)?;
        if let Some(n) = &name {
            body["name"] = json!(n);
        }
        let n = body.get("name").and_then(Value::as_str).map(String::from);
        tx.put(&ctx.scope, KIND_VPCLINK, &id, None, n.as_deref(), &body)?;
        Ok(public(body))
    })
}

pub(crate) fn delete(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let id = req_label(input, "vpcLinkId")?;
    ctx.store().write(|tx| {
        let mut body = load(ctx, tx, &id)?;
        let users: Vec<String> = tx
            .list(&ctx.scope, KIND_INTEGRATION, None)?
            .into_iter()
            .filter(|r| {
                r.body.get("connectionType").and_then(Value::as_str) == Some("VPC_LINK")
                    && r.body.get("connectionId").and_then(Value::as_str) == Some(id.as_str())
            })
            .map(|r| {
                format!(
                    "{}:{}",
                    r.body.get("integrationMethod").and_then(Value::as_str).unwrap_or("ANY"),
                    r.body.get("integrationId").and_then(Value::as_str).unwrap_or_default()
                )
            })
            .collect();
        if !users.is_empty() {
            return Err(bad(format!(
                "Cannot delete vpc link. Vpc link '{id}', is referenced in [{}] in format of [Method:Resource].",
                users.join(", ")
            )));
        }
        if body.get("vpcLinkStatus").and_then(Value::as_str) != Some("DELETING") {
            body["vpcLinkStatus"] = json!("DELETING");
            body["vpcLinkStatusMessage"] = json!(DELETING_MESSAGE);
            body["_since"] = json!(portico_core::time::now_millis());
            let n = body.get("name").and_then(Value::as_str).map(String::from);
            tx.put(&ctx.scope, KIND_VPCLINK, &id, None, n.as_deref(), &body)?;
        }
        Ok(json!({}))
    })
}
