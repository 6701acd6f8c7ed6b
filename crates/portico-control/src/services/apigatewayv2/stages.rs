//! Stage operations: CreateStage, GetStage(s), UpdateStage, DeleteStage,
//! DeleteAccessLogSettings, DeleteRouteSettings, ResetAuthorizersCache. Stage settings
//! (variables, throttling, access logs) act on the next request without a deployment.

use super::*;
use serde_json::json;

fn check_name(name: &str) -> AwsResult<()> {
    if name == "$default" {
        return Ok(());
    }
    let ok = (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        return Err(bad(format!(
            "Invalid stage name {name}: stage names are $default or 1 to 128 characters a-zA-Z0-9_-"
        )));
    }
    Ok(())
}

/// Validates one `RouteSettings` object and returns it with `detailedMetricsEnabled` filled.
fn route_settings(v: &Value, what: &str) -> AwsResult<Value> {
    let m = v
        .as_object()
        .ok_or_else(|| bad(format!("{what} must be an object")))?;
    let input = Input(v.clone());
    if input.has("loggingLevel") || input.has("dataTraceEnabled") {
        return Err(bad(
            "loggingLevel and dataTraceEnabled are supported only for WebSocket APIs",
        ));
    }
    if let Some(b) = opt_int(&input, "throttlingBurstLimit")? {
        if b < 0 {
            return Err(bad("throttlingBurstLimit must not be negative"));
        }
    }
    if let Some(r) = opt_f64(&input, "throttlingRateLimit")? {
        if r < 0.0 {
            return Err(bad("throttlingRateLimit must not be negative"));
        }
    }
    opt_bool(&input, "detailedMetricsEnabled")?;
    let mut out = m.clone();
    out.entry("detailedMetricsEnabled").or_insert(json!(false));
    Ok(Value::Object(out))
}

fn check_variables(vars: &Map<String, Value>) -> AwsResult<()> {
    if vars.len() > 100 {
        return Err(bad("A stage can have at most 100 stage variables"));
    }
    for (k, v) in vars {
        if k.is_empty()
            || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            || k.len() > 64
        {
            return Err(bad(format!(
                "Invalid stage variable name {k}: names are 1 to 64 characters a-zA-Z0-9_"
            )));
        }
        check_len("stage variable value", v.as_str().unwrap_or(""), 0, 2048)?;
    }
    Ok(())
}

fn check_access_logs(m: &Map<String, Value>) -> AwsResult<()> {
    let input = Input(Value::Object(m.clone()));
    if let Some(arn) = opt_str(&input, "destinationArn")? {
        if !(arn.starts_with("arn:") && arn.contains(":logs:") && arn.contains(":log-group:")) {
            return Err(bad(format!(
                "Invalid destinationArn {arn}: must be a CloudWatch Logs log group ARN"
            )));
        }
    }
    if let Some(f) = opt_str(&input, "format")? {
        if f.len() > 3072 || f.contains('\n') {
            return Err(bad(
                "The access log format must be a single line of at most 3 KB",
            ));
        }
        if !f.contains("$context.requestId") && !f.contains("$context.extendedRequestId") {
            return Err(bad("The access log format must contain $context.requestId"));
        }
    }
    Ok(())
}

fn check_route_keys(ctx: &Ctx<'_>, tx: &Tx<'_>, api_id: &str, keys: &[&String]) -> AwsResult<()> {
    let routes = children(tx, &ctx.scope, KIND_ROUTE, api_id)?;
    for k in keys {
        if !routes
            .iter()
            .any(|r| r.get("routeKey").and_then(Value::as_str) == Some(k.as_str()))
        {
            return Err(not_found(
                "Route",
                format!("Unable to find Route by key {k} within the provided RouteSettings"),
            ));
        }
    }
    Ok(())
}

fn check_deployment(ctx: &Ctx<'_>, tx: &Tx<'_>, api_id: &str, id: &str) -> AwsResult<()> {
    load_child(ctx, tx, KIND_DEPLOYMENT, "Deployment", api_id, id).map(|_| ())
}

/// Creates a stage in the caller's transaction (CreateStage and quick create).
pub(crate) fn insert(
    ctx: &Ctx<'_>,
    tx: &Tx<'_>,
    api_id: &str,
    input: &Input,
    managed: bool,
) -> AwsResult<Value> {
    let name = req_str(input, "stageName")?;
    check_name(&name)?;
    load_api(ctx, tx, api_id)?;
    if tx
        .get(&ctx.scope, KIND_STAGE, &child_id(api_id, &name))?
        .is_some()
    {
        return Err(conflict(format!("Stage {name} already exists")));
    }
    if tx.count(&ctx.scope, KIND_STAGE, Some(api_id))? >= 10 {
        return Err(bad("Maximum number of stages (10) reached for this API"));
    }
    let auto = opt_bool(input, "autoDeploy")?.unwrap_or(false);
    let deployment = opt_str(input, "deploymentId")?;
    if auto && deployment.is_some() {
        return Err(bad(
            "A deploymentId cannot be set on a stage with autoDeploy enabled",
        ));
    }
    if input.has("clientCertificateId") {
        return Err(bad(
            "clientCertificateId is supported only for WebSocket APIs",
        ));
    }
    let mut m = Map::new();
    if let Some(a) = opt_obj(input, "accessLogSettings")? {
        check_access_logs(&a)?;
        m.insert("accessLogSettings".into(), Value::Object(a));
    }
    if managed {
        m.insert("apiGatewayManaged".into(), json!(true));
    }
    if auto {
        m.insert("autoDeploy".into(), json!(true));
    }
    m.insert("createdDate".into(), json!(now()));
    let default_rs = match input.get("defaultRouteSettings") {
        Some(v) => route_settings(v, "defaultRouteSettings")?,
        None => json!({"detailedMetricsEnabled": false}),
    };
    m.insert("defaultRouteSettings".into(), default_rs);
    if let Some(d) = &deployment {
        check_deployment(ctx, tx, api_id, d)?;
        m.insert("deploymentId".into(), json!(d));
    }
    if let Some(d) = opt_str(input, "description")? {
        check_len("description", &d, 0, 1024)?;
        m.insert("description".into(), json!(d));
    }
    m.insert("lastUpdatedDate".into(), json!(now()));
    let mut rs = Map::new();
    if let Some(given) = opt_obj(input, "routeSettings")? {
        check_route_keys(ctx, tx, api_id, &given.keys().collect::<Vec<_>>())?;
        for (k, v) in given {
            rs.insert(k.clone(), route_settings(&v, "routeSettings")?);
        }
    }
    m.insert("routeSettings".into(), Value::Object(rs));
    m.insert("stageName".into(), json!(name));
    let vars = opt_str_map(input, "stageVariables")?.unwrap_or_default();
    check_variables(&vars)?;
    m.insert("stageVariables".into(), Value::Object(vars));
    let tags = opt_str_map(input, "tags")?.unwrap_or_default();
    check_tags(&tags)?;
    m.insert("tags".into(), Value::Object(tags));
    let mut body = Value::Object(m);
    if auto {
        super::deployments::deploy_stage(ctx, tx, api_id, &mut body)?;
        if body.get("deploymentId").is_none() {
            // nothing to deploy yet: no message until the first change
            if let Some(m) = body.as_object_mut() {
                m.remove("lastDeploymentStatusMessage");
            }
        }
    }
    tx.put(
        &ctx.scope,
        KIND_STAGE,
        &child_id(api_id, &name),
        Some(api_id),
        Some(&name),
        &body,
    )?;
    Ok(body)
}

pub(crate) fn create(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let api_id = req_label(input, "apiId")?;
    ctx.store()
        .write(|tx| insert(ctx, tx, &api_id, input, false).map(public))
}

pub(crate) fn list(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let api_id = req_label(input, "apiId")?;
    let items = ctx.store().read(|tx| {
        load_api(ctx, tx, &api_id)?;
        children(tx, &ctx.scope, KIND_STAGE, &api_id)
    })?;
    paginate(input, items)
}

pub(crate) fn get(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let api_id = req_label(input, "apiId")?;
    let name = req_label(input, "stageName")?;
    ctx.store().read(|tx| {
        load_api(ctx, tx, &api_id)?;
        load_child(ctx, tx, KIND_STAGE, "Stage", &api_id, &name).map(public)
    })
}

fn write_stage(
    ctx: &Ctx<'_>,
    tx: &Tx<'_>,
    api_id: &str,
    name: &str,
    body: &Value,
) -> AwsResult<()> {
    tx.put(
        &ctx.scope,
        KIND_STAGE,
        &child_id(api_id, name),
        Some(api_id),
        Some(name),
        body,
    )?;
    Ok(())
}

pub(crate) fn update(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let api_id = req_label(input, "apiId")?;
    let name = req_label(input, "stageName")?;
    if input.has("clientCertificateId") {
        return Err(bad(
            "clientCertificateId is supported only for WebSocket APIs",
        ));
    }
    ctx.store().write(|tx| {
        load_api(ctx, tx, &api_id)?;
        let mut body = load_child(ctx, tx, KIND_STAGE, "Stage", &api_id, &name)?;
        let was_auto = body.get("autoDeploy") == Some(&Value::Bool(true));
        let m = body
            .as_object_mut()
            .ok_or_else(|| AwsError::internal("stage body is not an object"))?;
        let auto = opt_bool(input, "autoDeploy")?.unwrap_or(was_auto);
        let deployment = opt_str(input, "deploymentId")?;
        if auto && deployment.is_some() {
            return Err(bad(
                "A deploymentId cannot be set on a stage with autoDeploy enabled",
            ));
        }
        if let Some(d) = &deployment {
            check_deployment(ctx, tx, &api_id, d)?;
            m.insert("deploymentId".into(), json!(d));
        }
        if auto {
            m.insert("autoDeploy".into(), json!(true));
        } else {
            m.remove("autoDeploy");
            m.remove("lastDeploymentStatusMessage");
        }
        if let Some(d) = opt_str(input, "description")? {
            check_len("description", &d, 0, 1024)?;
            m.insert("description".into(), json!(d));
        }
        if let Some(a) = opt_obj(input, "accessLogSettings")? {
            check_access_logs(&a)?;
            m.insert("accessLogSettings".into(), Value::Object(a));
        }
        if let Some(v) = input.get("defaultRouteSettings") {
            let given = route_settings(v, "defaultRouteSettings")?;
            let mut cur = m
                .get("defaultRouteSettings")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            if let Some(g) = given.as_object() {
                for (k, v) in g {
                    if input.sub("defaultRouteSettings").has(k) || !cur.contains_key(k) {
                        cur.insert(k.clone(), v.clone());
                    }
                }
            }
            m.insert("defaultRouteSettings".into(), Value::Object(cur));
        }
        if let Some(given) = opt_obj(input, "routeSettings")? {
            check_route_keys(ctx, tx, &api_id, &given.keys().collect::<Vec<_>>())?;
            let mut cur = m
                .get("routeSettings")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            for (k, v) in given {
                let v = route_settings(&v, "routeSettings")?;
                let mut merged = cur
                    .get(&k)
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                if let Some(o) = v.as_object() {
                    for (a, b) in o {
                        merged.insert(a.clone(), b.clone());
                    }
                }
                cur.insert(k, Value::Object(merged));
            }
            m.insert("routeSettings".into(), Value::Object(cur));
        }
        if let Some(vars) = opt_str_map(input, "stageVariables")? {
            let mut cur = m
                .get("stageVariables")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            for (k, v) in vars {
                if v.as_str() == Some("") {
                    cur.remove(&k);
                } else {
                    cur.insert(k, v);
                }
            }
            check_variables(&cur)?;
            m.insert("stageVariables".into(), Value::Object(cur));
        }
        m.insert("lastUpdatedDate".into(), json!(now()));
        if auto && !was_auto {
            super::deployments::deploy_stage(ctx, tx, &api_id, &mut body)?;
        }
        write_stage(ctx, tx, &api_id, &name, &body)?;
        Ok(public(body))
    })
}

pub(crate) fn delete(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let api_id = req_label(input, "apiId")?;
    let name = req_label(input, "stageName")?;
    ctx.store().write(|tx| {
        load_api(ctx, tx, &api_id)?;
        let body = load_child(ctx, tx, KIND_STAGE, "Stage", &api_id, &name)?;
        if body.get("apiGatewayManaged") == Some(&Value::Bool(true)) {
            return Err(super::routes::managed_error());
        }
        tx.delete(&ctx.scope, KIND_STAGE, &child_id(&api_id, &name))?;
        Ok(json!({}))
    })
}

pub(crate) fn delete_access_log_settings(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let api_id = req_label(input, "apiId")?;
    let name = req_label(input, "stageName")?;
    ctx.store().write(|tx| {
        load_api(ctx, tx, &api_id)?;
        let mut body = load_child(ctx, tx, KIND_STAGE, "Stage", &api_id, &name)?;
        if let Some(m) = body.as_object_mut() {
            m.remove("accessLogSettings");
            m.insert("lastUpdatedDate".into(), json!(now()));
        }
        write_stage(ctx, tx, &api_id, &name, &body)?;
        Ok(json!({}))
    })
}

pub(crate) fn delete_route_settings(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let api_id = req_label(input, "apiId")?;
    let name = req_label(input, "stageName")?;
    let key = req_label(input, "routeKey")?;
    ctx.store().write(|tx| {
        load_api(ctx, tx, &api_id)?;
        let mut body = load_child(ctx, tx, KIND_STAGE, "Stage", &api_id, &name)?;
        let removed = body
            .get_mut("routeSettings")
            .and_then(Value::as_object_mut)
            .and_then(|m| m.remove(&key));
        if removed.is_none() {
            return Err(not_found(
                "RouteSettings",
                format!("Unable to find route settings for route key {key} in stage {name}"),
            ));
        }
        body["lastUpdatedDate"] = json!(now());
        write_stage(ctx, tx, &api_id, &name, &body)?;
        Ok(json!({}))
    })
}

/// Flushes the stage's authorizer cache. JWT claims are checked per request (there is no
/// result cache), but the JWT authorizers' signing keys (JWKS) are cached per issuer: the reset
/// is a write (a counter on the stage, never rendered) that the HTTP API reconciler carries into
/// the stage's snapshot, and the data plane forgets the keys of that stage's issuers, so they are
/// fetched again.
pub(crate) fn reset_authorizers_cache(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let api_id = req_label(input, "apiId")?;
    let name = req_label(input, "stageName")?;
    ctx.store().write(|tx| {
        load_api(ctx, tx, &api_id)?;
        let mut body = load_child(ctx, tx, KIND_STAGE, "Stage", &api_id, &name)?;
        let epoch = body
            .get(AUTHORIZERS_CACHE_EPOCH)
            .and_then(Value::as_u64)
            .unwrap_or(0);
        body[AUTHORIZERS_CACHE_EPOCH] = json!(epoch.wrapping_add(1));
        write_stage(ctx, tx, &api_id, &name, &body)?;
        Ok(json!({}))
    })
}
