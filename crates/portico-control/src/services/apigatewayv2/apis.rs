//! Api operations: CreateApi (with quick create), GetApi(s), UpdateApi, DeleteApi,
//! DeleteCorsConfiguration.

use super::*;
use serde_json::json;

/// `apiEndpoint`: the local URL by default, AWS's exact shape when configured.
pub(crate) fn endpoint(ctx: &Ctx<'_>, api_id: &str) -> String {
    let c = ctx.control.config();
    if c.aws_endpoints {
        format!(
            "https://{api_id}.execute-api.{}.amazonaws.com",
            ctx.rc.region
        )
    } else {
        format!("http://{api_id}.execute-api.{}:{}", c.public_host, c.port)
    }
}

/// The output form of a stored API: `apiEndpoint` follows the current port and settings (the
/// port can change across restarts).
fn view(ctx: &Ctx<'_>, api: Value) -> Value {
    let mut v = public(api);
    if let Some(id) = v.get("apiId").and_then(Value::as_str).map(String::from) {
        v["apiEndpoint"] = json!(endpoint(ctx, &id));
    }
    v
}

/// Validates a `corsConfiguration` object (whole, after any merge).
pub(crate) fn validate_cors(c: &Map<String, Value>) -> AwsResult<()> {
    let input = Input(Value::Object(c.clone()));
    let origins = opt_str_list(&input, "allowOrigins")?.unwrap_or_default();
    for key in ["allowHeaders", "exposeHeaders"] {
        opt_str_list(&input, key)?;
    }
    for m in opt_str_list(&input, "allowMethods")?.unwrap_or_default() {
        check_len("allowMethods member", &m, 1, 64)?;
    }
    if let Some(age) = opt_int(&input, "maxAge")? {
        if !(-1..=86400).contains(&age) {
            return Err(bad("maxAge must be between -1 and 86400"));
        }
    }
    if opt_bool(&input, "allowCredentials")? == Some(true) && origins.iter().any(|o| o == "*") {
        return Err(bad(
            "allow-credentials is not supported if 'allow-origin' is *",
        ));
    }
    Ok(())
}

fn check_route_selection(input: &Input) -> AwsResult<()> {
    if let Some(rse) = opt_str(input, "routeSelectionExpression")? {
        if rse != "${request.method} ${request.path}" && rse != "$request.method $request.path" {
            return Err(bad(
                "Unsupported route selection expression for HTTP API: ${request.method} ${request.path} is the only supported value",
            ));
        }
    }
    Ok(())
}

fn check_common(input: &Input) -> AwsResult<()> {
    if let Some(d) = opt_str(input, "description")? {
        check_len("description", &d, 0, 1024)?;
    }
    if let Some(v) = opt_str(input, "version")? {
        check_len("version", &v, 1, 64)?;
    }
    if let Some(t) = opt_str(input, "ipAddressType")? {
        if t != "ipv4" && t != "dualstack" {
            return Err(bad(format!(
                "Invalid IpAddressType: {t}. Valid values are ipv4, dualstack"
            )));
        }
    }
    opt_bool(input, "disableExecuteApiEndpoint")?;
    opt_bool(input, "disableSchemaValidation")?;
    opt_str(input, "apiKeySelectionExpression")?;
    check_route_selection(input)?;
    if let Some(c) = opt_obj(input, "corsConfiguration")? {
        validate_cors(&c)?;
    }
    Ok(())
}

pub(crate) fn create(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let name = req_str(input, "name")?;
    check_len("name", &name, 1, 128)?;
    let protocol = req_str(input, "protocolType")?;
    match protocol.as_str() {
        "HTTP" => {}
        "WEBSOCKET" => {
            return Err(bad(
                "WebSocket APIs are not supported by Portico: only HTTP APIs (protocolType HTTP) can be created",
            ))
        }
        other => {
            return Err(bad(format!(
                "Invalid protocol type {other}: must be HTTP or WEBSOCKET"
            )))
        }
    }
    check_common(input)?;
    let tags = opt_str_map(input, "tags")?.unwrap_or_default();
    check_tags(&tags)?;
    let target = opt_str(input, "target")?;
    let route_key = opt_str(input, "routeKey")?;
    let credentials = opt_str(input, "credentialsArn")?;
    if target.is_none() && (route_key.is_some() || credentials.is_some()) {
        return Err(bad(
            "routeKey and credentialsArn are only supported for quick create (with target)",
        ));
    }
    ctx.store().write(|tx| {
        let api_id = fresh_id(tx, &ctx.scope, KIND_API, None, 10)?;
        let mut api = Map::new();
        api.insert("apiEndpoint".into(), json!(endpoint(ctx, &api_id)));
        if target.is_some() {
            api.insert("apiGatewayManaged".into(), json!(true));
        }
        api.insert("apiId".into(), json!(api_id));
        api.insert(
            "apiKeySelectionExpression".into(),
            json!(input
                .str("apiKeySelectionExpression")
                .unwrap_or("$request.header.x-api-key")),
        );
        if let Some(c) = opt_obj(input, "corsConfiguration")? {
            api.insert("corsConfiguration".into(), Value::Object(c));
        }
        api.insert("createdDate".into(), json!(now()));
        if let Some(d) = input.str("description") {
            api.insert("description".into(), json!(d));
        }
        api.insert(
            "disableExecuteApiEndpoint".into(),
            json!(opt_bool(input, "disableExecuteApiEndpoint")?.unwrap_or(false)),
        );
        api.insert(
            "ipAddressType".into(),
            json!(input.str("ipAddressType").unwrap_or("ipv4")),
        );
        api.insert("name".into(), json!(name));
        api.insert("protocolType".into(), json!("HTTP"));
        api.insert(
            "routeSelectionExpression".into(),
            json!("$request.method $request.path"),
        );
        api.insert("tags".into(), Value::Object(tags.clone()));
        if let Some(v) = input.str("version") {
            api.insert("version".into(), json!(v));
        }
        let api = Value::Object(api);
        tx.put(&ctx.scope, KIND_API, &api_id, None, Some(&name), &api)?;
        if let Some(t) = &target {
            quick_create(
                ctx,
                tx,
                &api_id,
                t,
                route_key.as_deref().unwrap_or("$default"),
                credentials.as_deref(),
            )?;
        }
        Ok(view(ctx, api))
    })
}

/// Quick create: an integration to `target`, a route with `route_key`, and an auto-deployed
/// `$default` stage, all `apiGatewayManaged`.
fn quick_create(
    ctx: &Ctx<'_>,
    tx: &Tx<'_>,
    api_id: &str,
    target: &str,
    route_key: &str,
    credentials: Option<&str>,
) -> AwsResult<()> {
    let lambda = target.starts_with("arn:");
    let mut spec = json!({
        "integrationType": if lambda { "AWS_PROXY" } else { "HTTP_PROXY" },
        "integrationUri": target,
        "integrationMethod": if lambda { "POST" } else { "ANY" },
        "payloadFormatVersion": if lambda { "2.0" } else { "1.0" },
    });
    if let Some(c) = credentials {
        spec["credentialsArn"] = json!(c);
    }
    let integration = super::integrations::insert(ctx, tx, api_id, &Input(spec), true)?;
    let iid = integration["integrationId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    super::routes::insert(
        ctx,
        tx,
        api_id,
        &Input(json!({"routeKey": route_key, "target": format!("integrations/{iid}")})),
        true,
    )?;
    super::stages::insert(
        ctx,
        tx,
        api_id,
        &Input(json!({"stageName": "$default", "autoDeploy": true})),
        true,
    )?;
    Ok(())
}

pub(crate) fn list(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let items = ctx.store().read(|tx| {
        Ok(tx
            .list(&ctx.scope, KIND_API, None)?
            .into_iter()
            .map(|r| view(ctx, r.body))
            .collect::<Vec<_>>())
    })?;
    paginate(input, items)
}

pub(crate) fn get(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let api_id = req_label(input, "apiId")?;
    ctx.store()
        .read(|tx| load_api(ctx, tx, &api_id).map(|a| view(ctx, a)))
}

pub(crate) fn update(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let api_id = req_label(input, "apiId")?;
    check_common(input)?;
    if let Some(n) = opt_str(input, "name")? {
        check_len("name", &n, 1, 128)?;
    }
    if let Some(p) = opt_str(input, "protocolType")? {
        if p != "HTTP" {
            return Err(bad("The protocol type of an API cannot be changed"));
        }
    }
    if input.has("target") || input.has("routeKey") || input.has("credentialsArn") {
        opt_str(input, "target")?;
        opt_str(input, "routeKey")?;
    }
    ctx.store().write(|tx| {
        let mut api = load_api(ctx, tx, &api_id)?;
        let m = api
            .as_object_mut()
            .ok_or_else(|| AwsError::internal("api body is not an object"))?;
        for key in [
            "name",
            "description",
            "version",
            "disableExecuteApiEndpoint",
            "ipAddressType",
            "apiKeySelectionExpression",
        ] {
            if let Some(v) = input.get(key) {
                m.insert(key.into(), v.clone());
            }
        }
        if let Some(c) = opt_obj(input, "corsConfiguration")? {
            // member-wise merge, as AWS does
            let mut merged = m
                .get("corsConfiguration")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            for (k, v) in c {
                merged.insert(k, v);
            }
            validate_cors(&merged)?;
            m.insert("corsConfiguration".into(), Value::Object(merged));
        }
        if input.has("target") || input.has("routeKey") {
            if m.get("apiGatewayManaged") != Some(&Value::Bool(true)) {
                return Err(bad(
                    "target and routeKey can only be updated on an API made by quick create",
                ));
            }
            update_managed(ctx, tx, &api_id, input)?;
        }
        let name = m.get("name").and_then(Value::as_str).map(String::from);
        tx.put(&ctx.scope, KIND_API, &api_id, None, name.as_deref(), &api)?;
        api_changed(ctx, tx, &api_id)?;
        Ok(view(ctx, api))
    })
}

/// UpdateApi with `target`/`routeKey` on a quick-created API changes its managed pieces.
fn update_managed(ctx: &Ctx<'_>, tx: &Tx<'_>, api_id: &str, input: &Input) -> AwsResult<()> {
    if let Some(t) = input.str("target") {
        for r in tx.list(&ctx.scope, KIND_INTEGRATION, Some(api_id))? {
            if r.body.get("apiGatewayManaged") == Some(&Value::Bool(true)) {
                let mut b = r.body.clone();
                super::integrations::check_uri("HTTP_PROXY", "INTERNET", t)?;
                b["integrationUri"] = json!(t);
                tx.put(
                    &ctx.scope,
                    KIND_INTEGRATION,
                    &r.id,
                    r.parent.as_deref(),
                    None,
                    &b,
                )?;
            }
        }
    }
    if let Some(k) = input.str("routeKey") {
        super::routes::parse_key(k)?;
        for r in tx.list(&ctx.scope, KIND_ROUTE, Some(api_id))? {
            if r.body.get("apiGatewayManaged") == Some(&Value::Bool(true)) {
                let mut b = r.body.clone();
                b["routeKey"] = json!(k);
                tx.put(
                    &ctx.scope,
                    KIND_ROUTE,
                    &r.id,
                    r.parent.as_deref(),
                    Some(k),
                    &b,
                )?;
            }
        }
    }
    Ok(())
}

/// Deletes an API and everything under it.
pub(crate) fn delete(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let api_id = req_label(input, "apiId")?;
    ctx.store().write(|tx| {
        load_api(ctx, tx, &api_id)?;
        for kind in [
            KIND_ROUTE,
            KIND_INTEGRATION,
            KIND_AUTHORIZER,
            KIND_STAGE,
            KIND_DEPLOYMENT,
        ] {
            for r in tx.list(&ctx.scope, kind, Some(&api_id))? {
                tx.delete(&ctx.scope, kind, &r.id)?;
            }
        }
        tx.delete(&ctx.scope, KIND_API, &api_id)?;
        Ok(json!({}))
    })
}

pub(crate) fn delete_cors(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let api_id = req_label(input, "apiId")?;
    ctx.store().write(|tx| {
        let mut api = load_api(ctx, tx, &api_id)?;
        if let Some(m) = api.as_object_mut() {
            m.remove("corsConfiguration");
        }
        let name = api.get("name").and_then(Value::as_str).map(String::from);
        tx.put(&ctx.scope, KIND_API, &api_id, None, name.as_deref(), &api)?;
        api_changed(ctx, tx, &api_id)?;
        Ok(json!({}))
    })
}
