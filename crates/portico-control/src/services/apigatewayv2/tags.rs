//! Tag operations on API, stage and VPC link ARNs: TagResource, GetTags, UntagResource.
//! ARNs arrive percent-decoded from the path label: `arn:aws:apigateway:{region}::/apis/{id}`,
//! `.../apis/{id}/stages/{name}`, `.../vpclinks/{id}`.

use super::*;
use serde_json::json;

/// The store kind and id an ARN names, if it is one of ours in this region.
fn resolve(ctx: &Ctx<'_>, arn: &str) -> AwsResult<(&'static str, String)> {
    let unknown = || not_found("Resource", format!("Invalid resource ARN specified {arn}"));
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6
        || parts[0] != "arn"
        || parts[2] != "apigateway"
        || parts[3] != ctx.rc.region
    {
        return Err(unknown());
    }
    let segs: Vec<&str> = parts[5].trim_start_matches('/').split('/').collect();
    match segs.as_slice() {
        ["apis", id] => Ok((KIND_API, (*id).to_string())),
        ["apis", id, "stages", name] => Ok((KIND_STAGE, child_id(id, name))),
        ["vpclinks", id] => Ok((KIND_VPCLINK, (*id).to_string())),
        _ => Err(unknown()),
    }
}

fn load(ctx: &Ctx<'_>, tx: &Tx<'_>, arn: &str) -> AwsResult<portico_store::Record> {
    let (kind, id) = resolve(ctx, arn)?;
    tx.get(&ctx.scope, kind, &id)?
        .ok_or_else(|| not_found("Resource", format!("Invalid resource ARN specified {arn}")))
}

fn arn_label(input: &Input) -> AwsResult<String> {
    req_label(input, "resource-arn")
}

pub(crate) fn tag(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let arn = arn_label(input)?;
    let tags = opt_str_map(input, "tags")?.ok_or_else(|| bad("tags is required"))?;
    ctx.store().write(|tx| {
        let mut r = load(ctx, tx, &arn)?;
        let mut cur = r
            .body
            .get("tags")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (k, v) in tags {
            cur.insert(k, v);
        }
        check_tags(&cur)?;
        r.body["tags"] = Value::Object(cur);
        tx.put(
            &ctx.scope,
            &r.kind,
            &r.id,
            r.parent.as_deref(),
            r.name.as_deref(),
            &r.body,
        )?;
        Ok(json!({}))
    })
}

pub(crate) fn get(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let arn = arn_label(input)?;
    ctx.store().read(|tx| {
        let r = load(ctx, tx, &arn)?;
        Ok(json!({"tags": r.body.get("tags").cloned().unwrap_or(json!({}))}))
    })
}

pub(crate) fn untag(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let arn = arn_label(input)?;
    let keys = opt_str_list(input, "tagKeys")?.ok_or_else(|| bad("tagKeys is required"))?;
    for k in &keys {
        check_tag_key(k)?;
    }
    ctx.store().write(|tx| {
        let mut r = load(ctx, tx, &arn)?;
        let mut cur = r
            .body
            .get("tags")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for k in &keys {
            cur.remove(k);
        }
        r.body["tags"] = Value::Object(cur);
        tx.put(
            &ctx.scope,
            &r.kind,
            &r.id,
            r.parent.as_deref(),
            r.name.as_deref(),
            &r.body,
        )?;
        Ok(json!({}))
    })
}
