//! Route operations: CreateRoute, GetRoute(s), UpdateRoute, DeleteRoute,
//! DeleteRouteRequestParameter. Route keys are parsed by the data plane's routing module, so
//! what the control plane accepts is exactly what the data plane can select.

use super::*;
use portico_dataplane::http_api::routing::{KeyError, RouteKey};
use serde_json::json;

pub(crate) fn parse_key(key: &str) -> AwsResult<RouteKey> {
    RouteKey::parse(key).map_err(|e| match e {
        KeyError::Missing => bad("Route key is required"),
        KeyError::Malformed => bad(format!(
            "Unable to parse route key '{key}': a route key is $default or an HTTP method (ANY, GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS), one space, and a path starting with /"
        )),
        KeyError::InvalidPathPart => bad("One or more path parts appear to be invalid"),
        KeyError::DuplicateVariable => bad(format!(
            "Route key '{key}' uses the same path variable name more than once"
        )),
    })
}

pub(crate) fn managed_error() -> AwsError {
    bad("Cannot modify or delete a resource created by quick create; update or delete the API instead")
}

/// Validates a whole route body (after merge) against the API's integrations and authorizers.
fn validate(ctx: &Ctx<'_>, tx: &Tx<'_>, api_id: &str, route: &Map<String, Value>) -> AwsResult<()> {
    let input = Input(Value::Object(route.clone()));
    let key = req_str(&input, "routeKey")?;
    parse_key(&key)?;
    if let Some(t) = opt_str(&input, "target")? {
        let iid = t
            .strip_prefix("integrations/")
            .filter(|i| !i.is_empty() && !i.contains('/'))
            .ok_or_else(|| {
                bad(format!(
                    "Invalid target {t}: a target must be integrations/{{integrationId}}"
                ))
            })?;
        if tx
            .get(&ctx.scope, KIND_INTEGRATION, &child_id(api_id, iid))?
            .is_none()
        {
            return Err(bad(format!(
                "Invalid target {t}: integration {iid} does not exist in API {api_id}"
            )));
        }
    }
    let auth = opt_str(&input, "authorizationType")?.unwrap_or_else(|| "NONE".into());
    let authorizer_id = opt_str(&input, "authorizerId")?;
    let scopes = opt_str_list(&input, "authorizationScopes")?.unwrap_or_default();
    match auth.as_str() {
        "NONE" | "AWS_IAM" => {
            if authorizer_id.is_some() {
                return Err(bad(format!(
                    "An authorizerId can only be used with authorizationType JWT or CUSTOM, not {auth}"
                )));
            }
        }
        "JWT" | "CUSTOM" => {
            let want = if auth == "JWT" { "JWT" } else { "REQUEST" };
            let Some(aid) = authorizer_id.as_deref() else {
                return Err(bad(format!(
                    "authorizationType {auth} requires an authorizerId"
                )));
            };
            let a = tx
                .get(&ctx.scope, KIND_AUTHORIZER, &child_id(api_id, aid))?
                .ok_or_else(|| bad(format!("Invalid authorizer id {aid} specified")))?;
            if a.body.get("authorizerType").and_then(Value::as_str) != Some(want) {
                return Err(bad(format!(
                    "authorizationType {auth} requires an authorizer of type {want}"
                )));
            }
        }
        other => {
            return Err(bad(format!(
                "Invalid authorization type {other}: must be one of NONE, AWS_IAM, JWT, CUSTOM"
            )))
        }
    }
    if !scopes.is_empty() && auth != "JWT" {
        return Err(bad(
            "authorizationScopes are only supported with authorizationType JWT",
        ));
    }
    if scopes.len() > 10 {
        return Err(bad("A route can have at most 10 authorizationScopes"));
    }
    for s in &scopes {
        check_len("authorization scope", s, 1, 64)?;
    }
    if let Some(o) = opt_str(&input, "operationName")? {
        check_len("operationName", &o, 1, 64)?;
    }
    if opt_bool(&input, "apiKeyRequired")? == Some(true) {
        return Err(bad("apiKeyRequired is supported only for WebSocket APIs"));
    }
    for k in [
        "requestModels",
        "modelSelectionExpression",
        "routeResponseSelectionExpression",
    ] {
        if input.has(k) {
            return Err(bad(format!("{k} is supported only for WebSocket APIs")));
        }
    }
    opt_obj(&input, "requestParameters")?;
    // route keys are unique within the API
    for other in tx.find_by_name_under(&ctx.scope, KIND_ROUTE, api_id, &key)? {
        if other.body.get("routeId") != route.get("routeId") {
            return Err(conflict(format!(
                "Route with key {key} already exists for this API"
            )));
        }
    }
    Ok(())
}

const MEMBERS: &[&str] = &[
    "routeKey",
    "target",
    "authorizationType",
    "authorizerId",
    "authorizationScopes",
    "operationName",
    "apiKeyRequired",
    "requestModels",
    "modelSelectionExpression",
    "routeResponseSelectionExpression",
    "requestParameters",
];

/// Creates a route in the caller's transaction (CreateRoute and quick create).
pub(crate) fn insert(
    ctx: &Ctx<'_>,
    tx: &Tx<'_>,
    api_id: &str,
    input: &Input,
    managed: bool,
) -> AwsResult<Value> {
    load_api(ctx, tx, api_id)?;
    if tx.count(&ctx.scope, KIND_ROUTE, Some(api_id))? >= 300 {
        return Err(bad("Maximum number of routes (300) reached for this API"));
    }
    let route_id = fresh_id(tx, &ctx.scope, KIND_ROUTE, Some(api_id), 7)?;
    let mut m = Map::new();
    if managed {
        m.insert("apiGatewayManaged".into(), json!(true));
    }
    m.insert("apiKeyRequired".into(), json!(false));
    m.insert("authorizationType".into(), json!("NONE"));
    m.insert("routeId".into(), json!(route_id));
    for k in MEMBERS {
        if let Some(v) = input.get(k) {
            m.insert((*k).into(), v.clone());
        }
    }
    validate(ctx, tx, api_id, &m)?;
    let key = m
        .get("routeKey")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let body = Value::Object(m);
    tx.put(
        &ctx.scope,
        KIND_ROUTE,
        &child_id(api_id, &route_id),
        Some(api_id),
        Some(&key),
        &body,
    )?;
    Ok(body)
}

pub(crate) fn create(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let api_id = req_label(input, "apiId")?;
    req_str(input, "routeKey")?;
    ctx.store().write(|tx| {
        let body = insert(ctx, tx, &api_id, input, false)?;
        api_changed(ctx, tx, &api_id)?;
        Ok(public(body))
    })
}

pub(crate) fn list(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let api_id = req_label(input, "apiId")?;
    let items = ctx.store().read(|tx| {
        load_api(ctx, tx, &api_id)?;
        children(tx, &ctx.scope, KIND_ROUTE, &api_id)
    })?;
    paginate(input, items)
}

pub(crate) fn get(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let api_id = req_label(input, "apiId")?;
    let id = req_label(input, "routeId")?;
    ctx.store().read(|tx| {
        load_api(ctx, tx, &api_id)?;
        load_child(ctx, tx, KIND_ROUTE, "Route", &api_id, &id).map(public)
    })
}

pub(crate) fn update(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let api_id = req_label(input, "apiId")?;
    let id = req_label(input, "routeId")?;
    ctx.store().write(|tx| {
        load_api(ctx, tx, &api_id)?;
        let mut body = load_child(ctx, tx, KIND_ROUTE, "Route", &api_id, &id)?;
        if body.get("apiGatewayManaged") == Some(&Value::Bool(true)) {
            return Err(managed_error());
        }
        let m = body
            .as_object_mut()
            .ok_or_else(|| AwsError::internal("route body is not an object"))?;
        for k in MEMBERS {
            if let Some(v) = input.get(k) {
                m.insert((*k).into(), v.clone());
            }
        }
        // switching away from JWT/CUSTOM drops the authorizer
        if matches!(input.str("authorizationType"), Some("NONE" | "AWS_IAM"))
            && !input.has("authorizerId")
        {
            m.remove("authorizerId");
            m.remove("authorizationScopes");
        }
        validate(ctx, tx, &api_id, m)?;
        let key = m
            .get("routeKey")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        tx.put(
            &ctx.scope,
            KIND_ROUTE,
            &child_id(&api_id, &id),
            Some(&api_id),
            Some(&key),
            &body,
        )?;
        api_changed(ctx, tx, &api_id)?;
        Ok(public(body))
    })
}

pub(crate) fn delete(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let api_id = req_label(input, "apiId")?;
    let id = req_label(input, "routeId")?;
    ctx.store().write(|tx| {
        load_api(ctx, tx, &api_id)?;
        let body = load_child(ctx, tx, KIND_ROUTE, "Route", &api_id, &id)?;
        if body.get("apiGatewayManaged") == Some(&Value::Bool(true)) {
            return Err(managed_error());
        }
        tx.delete(&ctx.scope, KIND_ROUTE, &child_id(&api_id, &id))?;
        api_changed(ctx, tx, &api_id)?;
        Ok(json!({}))
    })
}

pub(crate) fn delete_request_parameter(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let api_id = req_label(input, "apiId")?;
    let id = req_label(input, "routeId")?;
    let key = req_label(input, "requestParameterKey")?;
    ctx.store().write(|tx| {
        load_api(ctx, tx, &api_id)?;
        let mut body = load_child(ctx, tx, KIND_ROUTE, "Route", &api_id, &id)?;
        let removed = body
            .get_mut("requestParameters")
            .and_then(Value::as_object_mut)
            .and_then(|m| m.remove(&key));
        if removed.is_none() {
            return Err(not_found(
                "RequestParameter",
                format!("Invalid request parameter key {key} specified for route {id}"),
            ));
        }
        let rk = body
            .get("routeKey")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        tx.put(
            &ctx.scope,
            KIND_ROUTE,
            &child_id(&api_id, &id),
            Some(&api_id),
            Some(&rk),
            &body,
        )?;
        api_changed(ctx, tx, &api_id)?;
        Ok(json!({}))
    })
}
