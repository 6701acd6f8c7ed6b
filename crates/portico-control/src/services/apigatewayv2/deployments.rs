//! Deployment operations and auto-deploy. A deployment freezes the API's routes, integrations,
//! authorizers and API-level settings (`_snapshot`); a stage serves the deployment it names.
//! Auto-deploy stages get a new deployment in the same transaction as every change, so a
//! request right after `CreateRoute` already sees the route.

use super::*;
use serde_json::json;

pub(crate) const AUTO_DESCRIPTION: &str =
    "Automatic deployment triggered by changes to the Api configuration";

/// The frozen configuration a deployment serves.
fn snapshot(ctx: &Ctx<'_>, tx: &Tx<'_>, api_id: &str, api: &Value) -> AwsResult<Value> {
    Ok(json!({
        "routes": children(tx, &ctx.scope, KIND_ROUTE, api_id)?,
        "integrations": children(tx, &ctx.scope, KIND_INTEGRATION, api_id)?,
        "authorizers": children(tx, &ctx.scope, KIND_AUTHORIZER, api_id)?,
        "corsConfiguration": api.get("corsConfiguration").cloned().unwrap_or(Value::Null),
        "disableExecuteApiEndpoint": api.get("disableExecuteApiEndpoint").cloned().unwrap_or(json!(false)),
    }))
}

/// Writes a new deployment of the API as it is now; `None` when it has no routes.
pub(crate) fn deploy(
    ctx: &Ctx<'_>,
    tx: &Tx<'_>,
    api_id: &str,
    description: Option<&str>,
    auto: bool,
) -> AwsResult<Option<String>> {
    let api = load_api(ctx, tx, api_id)?;
    if tx.count(&ctx.scope, KIND_ROUTE, Some(api_id))? == 0 {
        return Ok(None);
    }
    let id = fresh_id(tx, &ctx.scope, KIND_DEPLOYMENT, Some(api_id), 6)?;
    let mut m = Map::new();
    m.insert("autoDeployed".into(), json!(auto));
    m.insert("createdDate".into(), json!(now()));
    m.insert("deploymentId".into(), json!(id));
    m.insert("deploymentStatus".into(), json!("DEPLOYED"));
    if let Some(d) = description {
        m.insert("description".into(), json!(d));
    }
    m.insert("_snapshot".into(), snapshot(ctx, tx, api_id, &api)?);
    tx.put(
        &ctx.scope,
        KIND_DEPLOYMENT,
        &child_id(api_id, &id),
        Some(api_id),
        None,
        &Value::Object(m),
    )?;
    Ok(Some(id))
}

/// Redeploys every auto-deploy stage of the API.
pub(crate) fn auto_deploy(ctx: &Ctx<'_>, tx: &Tx<'_>, api_id: &str) -> AwsResult<()> {
    for r in tx.list(&ctx.scope, KIND_STAGE, Some(api_id))? {
        if r.body.get("autoDeploy") != Some(&Value::Bool(true)) {
            continue;
        }
        let mut stage = r.body.clone();
        deploy_stage(ctx, tx, api_id, &mut stage)?;
        tx.put(
            &ctx.scope,
            KIND_STAGE,
            &r.id,
            r.parent.as_deref(),
            r.name.as_deref(),
            &stage,
        )?;
    }
    Ok(())
}

/// Deploys the API to an auto-deploy stage body (not written).
pub(crate) fn deploy_stage(
    ctx: &Ctx<'_>,
    tx: &Tx<'_>,
    api_id: &str,
    stage: &mut Value,
) -> AwsResult<()> {
    match deploy(ctx, tx, api_id, Some(AUTO_DESCRIPTION), true)? {
        Some(id) => {
            stage["deploymentId"] = json!(id);
            stage["lastDeploymentStatusMessage"] = json!(format!(
                "Successfully deployed stage with deployment ID '{id}'"
            ));
        }
        None => {
            stage["lastDeploymentStatusMessage"] = json!(
                "Deployment attempt failed: Unable to deploy API because no routes exist in this API"
            );
        }
    }
    stage["lastUpdatedDate"] = json!(now());
    Ok(())
}

pub(crate) fn create(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let api_id = req_label(input, "apiId")?;
    let description = opt_str(input, "description")?;
    if let Some(d) = &description {
        check_len("description", d, 0, 1024)?;
    }
    let stage_name = opt_str(input, "stageName")?;
    ctx.store().write(|tx| {
        load_api(ctx, tx, &api_id)?;
        let stage = match &stage_name {
            Some(s) => {
                let r = tx
                    .get(&ctx.scope, KIND_STAGE, &child_id(&api_id, s))?
                    .ok_or_else(|| child_not_found(ctx, "Stage", &api_id, s))?;
                if r.body.get("autoDeploy") == Some(&Value::Bool(true)) {
                    return Err(bad(format!(
                        "Stage {s} has autoDeploy enabled: it is deployed automatically on every change"
                    )));
                }
                Some(r)
            }
            None => None,
        };
        let id = deploy(ctx, tx, &api_id, description.as_deref(), false)?
            .ok_or_else(|| bad("Unable to deploy API because no routes exist in this API"))?;
        if let Some(r) = stage {
            let mut b = r.body.clone();
            b["deploymentId"] = json!(id);
            b["lastUpdatedDate"] = json!(now());
            tx.put(&ctx.scope, KIND_STAGE, &r.id, r.parent.as_deref(), r.name.as_deref(), &b)?;
        }
        load_child(ctx, tx, KIND_DEPLOYMENT, "Deployment", &api_id, &id).map(public)
    })
}

pub(crate) fn list(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let api_id = req_label(input, "apiId")?;
    let items = ctx.store().read(|tx| {
        load_api(ctx, tx, &api_id)?;
        children(tx, &ctx.scope, KIND_DEPLOYMENT, &api_id)
    })?;
    paginate(input, items)
}

pub(crate) fn get(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let api_id = req_label(input, "apiId")?;
    let id = req_label(input, "deploymentId")?;
    ctx.store().read(|tx| {
        load_api(ctx, tx, &api_id)?;
        load_child(ctx, tx, KIND_DEPLOYMENT, "Deployment", &api_id, &id).map(public)
    })
}

pub(crate) fn update(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let api_id = req_label(input, "apiId")?;
    let id = req_label(input, "deploymentId")?;
    let description = opt_str(input, "description")?;
    if let Some(d) = &description {
        check_len("description", d, 0, 1024)?;
    }
    ctx.store().write(|tx| {
        load_api(ctx, tx, &api_id)?;
        let mut body = load_child(ctx, tx, KIND_DEPLOYMENT, "Deployment", &api_id, &id)?;
        if let Some(d) = description {
            body["description"] = json!(d);
        }
        tx.put(
            &ctx.scope,
            KIND_DEPLOYMENT,
            &child_id(&api_id, &id),
            Some(&api_id),
            None,
            &body,
        )?;
        Ok(public(body))
    })
}

pub(crate) fn delete(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let api_id = req_label(input, "apiId")?;
    let id = req_label(input, "deploymentId")?;
    ctx.store().write(|tx| {
        load_api(ctx, tx, &api_id)?;
        load_child(ctx, tx, KIND_DEPLOYMENT, "Deployment", &api_id, &id)?;
        let used = children(tx, &ctx.scope, KIND_STAGE, &api_id)?
            .iter()
            .any(|s| s.get("deploymentId").and_then(Value::as_str) == Some(id.as_str()));
        if used {
            return Err(bad(
                "Active stages pointing to this deployment must be moved or deleted",
            ));
        }
        tx.delete(&ctx.scope, KIND_DEPLOYMENT, &child_id(&api_id, &id))?;
        Ok(json!({}))
    })
}
