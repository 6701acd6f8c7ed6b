//! Authorizer operations: CreateAuthorizer, GetAuthorizer(s), UpdateAuthorizer,
//! DeleteAuthorizer. JWT authorizers are enforced by the data plane; REQUEST (Lambda)
//! authorizers are stored and validated, and routes using them answer 500 until Lambda exists.

use super::*;
use serde_json::json;

const MEMBERS: &[&str] = &[
    "authorizerCredentialsArn",
    "authorizerPayloadFormatVersion",
    "authorizerResultTtlInSeconds",
    "authorizerType",
    "authorizerUri",
    "enableSimpleResponses",
    "identitySource",
    "identityValidationExpression",
    "jwtConfiguration",
    "name",
];

fn validate(m: &Map<String, Value>) -> AwsResult<()> {
    let input = Input(Value::Object(m.clone()));
    let name = req_str(&input, "name")?;
    check_len("name", &name, 1, 128)?;
    let atype = req_str(&input, "authorizerType")?;
    let sources = opt_str_list(&input, "identitySource")?.unwrap_or_default();
    let ttl = opt_int(&input, "authorizerResultTtlInSeconds")?;
    if let Some(t) = ttl {
        if !(0..=3600).contains(&t) {
            return Err(bad(
                "authorizerResultTtlInSeconds must be between 0 and 3600",
            ));
        }
    }
    match atype.as_str() {
        "JWT" => {
            if sources.len() != 1 {
                return Err(bad("A JWT authorizer requires exactly one identity source"));
            }
            let s = &sources[0];
            let ok = ["$request.header.", "$request.querystring."]
                .iter()
                .any(|p| s.strip_prefix(p).is_some_and(|n| !n.is_empty()));
            if !ok {
                return Err(bad(format!(
                    "Invalid identity source {s}: a JWT authorizer reads $request.header.<name> or $request.querystring.<name>"
                )));
            }
            let jc = opt_obj(&input, "jwtConfiguration")?
                .ok_or_else(|| bad("jwtConfiguration is required for JWT authorizers"))?;
            let jc = Input(Value::Object(jc));
            let issuer = opt_str(&jc, "issuer")?
                .ok_or_else(|| bad("jwtConfiguration.issuer is required for JWT authorizers"))?;
            check_len("issuer", &issuer, 1, 2048)?;
            let aud = opt_str_list(&jc, "audience")?.unwrap_or_default();
            if aud.is_empty() || aud.len() > 50 {
                return Err(bad(
                    "jwtConfiguration.audience must have between 1 and 50 entries",
                ));
            }
            for k in [
                "authorizerUri",
                "authorizerPayloadFormatVersion",
                "enableSimpleResponses",
                "authorizerCredentialsArn",
            ] {
                if input.has(k) {
                    return Err(bad(format!("{k} is not supported for JWT authorizers")));
                }
            }
        }
        "REQUEST" => {
            let uri = opt_str(&input, "authorizerUri")?
                .ok_or_else(|| bad("authorizerUri is required for REQUEST authorizers"))?;
            check_len("authorizerUri", &uri, 1, 2048)?;
            let pfv = opt_str(&input, "authorizerPayloadFormatVersion")?.ok_or_else(|| {
                bad("authorizerPayloadFormatVersion is required for REQUEST authorizers")
            })?;
            if pfv != "1.0" && pfv != "2.0" {
                return Err(bad(format!(
                    "Invalid authorizerPayloadFormatVersion {pfv}: must be 1.0 or 2.0"
                )));
            }
            if opt_bool(&input, "enableSimpleResponses")? == Some(true) && pfv != "2.0" {
                return Err(bad("enableSimpleResponses is supported only with authorizerPayloadFormatVersion 2.0"));
            }
            if ttl.unwrap_or(0) > 0 && sources.is_empty() {
                return Err(bad("identitySource is required when authorizerResultTtlInSeconds is greater than 0"));
            }
            if input.has("jwtConfiguration") {
                return Err(bad(
                    "jwtConfiguration is supported only for JWT authorizers",
                ));
            }
        }
        other => {
            return Err(bad(format!(
                "Invalid authorizer type {other}: HTTP APIs support JWT and REQUEST"
            )))
        }
    }
    Ok(())
}

pub(crate) fn create(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let api_id = req_label(input, "apiId")?;
    ctx.store().write(|tx| {
        load_api(ctx, tx, &api_id)?;
        if tx.count(&ctx.scope, KIND_AUTHORIZER, Some(&api_id))? >= 10 {
            return Err(bad(
                "Maximum number of authorizers (10) reached for this API",
            ));
        }
        let id = fresh_id(tx, &ctx.scope, KIND_AUTHORIZER, Some(&api_id), 6)?;
        let mut m = Map::new();
        m.insert("authorizerId".into(), json!(id));
        for k in MEMBERS {
            if let Some(v) = input.get(k) {
                m.insert((*k).into(), v.clone());
            }
        }
        validate(&m)?;
        let body = Value::Object(m);
        tx.put(
            &ctx.scope,
            KIND_AUTHORIZER,
            &child_id(&api_id, &id),
            Some(&api_id),
            None,
            &body,
        )?;
        api_changed(ctx, tx, &api_id)?;
        Ok(public(body))
    })
}

pub(crate) fn list(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let api_id = req_label(input, "apiId")?;
    let items = ctx.store().read(|tx| {
        load_api(ctx, tx, &api_id)?;
        children(tx, &ctx.scope, KIND_AUTHORIZER, &api_id)
    })?;
    paginate(input, items)
}

pub(crate) fn get(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let api_id = req_label(input, "apiId")?;
    let id = req_label(input, "authorizerId")?;
    ctx.store().read(|tx| {
        load_api(ctx, tx, &api_id)?;
        load_child(ctx, tx, KIND_AUTHORIZER, "Authorizer", &api_id, &id).map(public)
    })
}

pub(crate) fn update(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let api_id = req_label(input, "apiId")?;
    let id = req_label(input, "authorizerId")?;
    ctx.store().write(|tx| {
        load_api(ctx, tx, &api_id)?;
        let mut body = load_child(ctx, tx, KIND_AUTHORIZER, "Authorizer", &api_id, &id)?;
        let m = body
            .as_object_mut()
            .ok_or_else(|| AwsError::internal("authorizer body is not an object"))?;
        let old_type = m.get("authorizerType").cloned();
        for k in MEMBERS {
            if let Some(v) = input.get(k) {
                m.insert((*k).into(), v.clone());
            }
        }
        if m.get("authorizerType") != old_type.as_ref() {
            return Err(bad("The type of an authorizer cannot be changed"));
        }
        validate(m)?;
        tx.put(
            &ctx.scope,
            KIND_AUTHORIZER,
            &child_id(&api_id, &id),
            Some(&api_id),
            None,
            &body,
        )?;
        api_changed(ctx, tx, &api_id)?;
        Ok(public(body))
    })
}

pub(crate) fn delete(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let api_id = req_label(input, "apiId")?;
    let id = req_label(input, "authorizerId")?;
    ctx.store().write(|tx| {
        load_api(ctx, tx, &api_id)?;
        load_child(ctx, tx, KIND_AUTHORIZER, "Authorizer", &api_id, &id)?;
        let users: Vec<String> = children(tx, &ctx.scope, KIND_ROUTE, &api_id)?
            .into_iter()
            .filter(|r| r.get("authorizerId").and_then(Value::as_str) == Some(id.as_str()))
            .filter_map(|r| r.get("routeId").and_then(Value::as_str).map(String::from))
            .collect();
        if !users.is_empty() {
            return Err(conflict(format!(
                "Cannot delete Authorizer because it is referenced by the following Routes with Ids: [{}]",
                users.join(", ")
            )));
        }
        tx.delete(&ctx.scope, KIND_AUTHORIZER, &child_id(&api_id, &id))?;
        api_changed(ctx, tx, &api_id)?;
        Ok(json!({}))
    })
}
