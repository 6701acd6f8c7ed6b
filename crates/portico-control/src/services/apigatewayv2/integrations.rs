//! Integration operations: CreateIntegration, GetIntegration(s), UpdateIntegration,
//! DeleteIntegration. HTTP APIs take proxy integrations only (HTTP_PROXY, AWS_PROXY); VPC_LINK
//! integrations name a load-balancer listener or Cloud Map service.

use super::*;
use serde_json::json;

const METHODS: &[&str] = &[
    "ANY", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS",
];

/// Headers no parameter mapping may touch (exact names, then prefixes).
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "connection",
    "content-encoding",
    "content-length",
    "content-location",
    "forwarded",
    "keep-alive",
    "origin",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "via",
];
const RESERVED_PREFIXES: &[&str] = &["access-control-", "apigw-", "x-amz-", "x-amzn-"];

fn mapping_error(detail: &str) -> AwsError {
    bad(format!(
        "Invalid mapping expression specified: Validation Result: warnings : [], errors : [{detail}]"
    ))
}

fn check_header_name(name: &str) -> AwsResult<()> {
    let lower = name.to_ascii_lowercase();
    if name.is_empty() || http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(mapping_error(&format!("Invalid header name {name}")));
    }
    if RESERVED_HEADERS.contains(&lower.as_str())
        || RESERVED_PREFIXES.iter().any(|p| lower.starts_with(p))
    {
        return Err(mapping_error(&format!(
            "Operations on header {name} are restricted"
        )));
    }
    Ok(())
}

fn check_value(key: &str, v: &Value) -> AwsResult<()> {
    let s = v.as_str().unwrap_or("");
    if s.chars().count() > 512 {
        return Err(mapping_error(&format!(
            "Value for {key} is longer than 512 characters"
        )));
    }
    Ok(())
}

/// `requestParameters`: `append|overwrite|remove:header.<n>`, `...:querystring.<n>`,
/// `overwrite:path`.
fn check_request_parameters(m: &Map<String, Value>) -> AwsResult<()> {
    for (k, v) in m {
        let (op, target) = k
            .split_once(':')
            .ok_or_else(|| mapping_error(&format!("Invalid mapping expression specified: {k}")))?;
        if !matches!(op, "append" | "overwrite" | "remove") {
            return Err(mapping_error(&format!(
                "Invalid mapping expression specified: {k}"
            )));
        }
        if target == "path" {
            if op != "overwrite" {
                return Err(mapping_error(&format!(
                    "Only overwrite is supported for path: {k}"
                )));
            }
        } else if let Some(h) = target.strip_prefix("header.") {
            check_header_name(h)?;
        } else if let Some(q) = target.strip_prefix("querystring.") {
            if q.is_empty() {
                return Err(mapping_error(&format!(
                    "Invalid mapping expression specified: {k}"
                )));
            }
        } else {
            return Err(mapping_error(&format!(
                "Invalid mapping expression specified: {k}"
            )));
        }
        check_value(k, v)?;
    }
    Ok(())
}

/// `responseParameters`: status code -> `{append|overwrite|remove:header.<n>, overwrite:statuscode}`.
fn check_response_parameters(m: &Map<String, Value>) -> AwsResult<()> {
    for (code, inner) in m {
        match code.parse::<u16>() {
            Ok(c) if (200..=599).contains(&c) => {}
            _ => {
                return Err(mapping_error(&format!(
                    "Invalid status code {code}: must be between 200 and 599"
                )))
            }
        }
        let inner = inner
            .as_object()
            .ok_or_else(|| bad(format!("responseParameters[{code}] must be an object")))?;
        for (k, v) in inner {
            let (op, target) = k.split_once(':').ok_or_else(|| {
                mapping_error(&format!("Invalid mapping expression specified: {k}"))
            })?;
            if target == "statuscode" && op == "overwrite" {
            } else if let (true, Some(h)) = (
                matches!(op, "append" | "overwrite" | "remove"),
                target.strip_prefix("header."),
            ) {
                check_header_name(h)?;
            } else {
                return Err(mapping_error(&format!(
                    "Invalid mapping expression specified: {k}"
                )));
            }
            if !v.is_string() {
                return Err(bad(format!(
                    "responseParameters[{code}][{k}] must be a string"
                )));
            }
            check_value(k, v)?;
        }
    }
    Ok(())
}

fn is_listener_arn(uri: &str) -> bool {
    let parts: Vec<&str> = uri.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "elasticloadbalancing" {
        return false;
    }
    let res: Vec<&str> = parts[5].split('/').collect();
    res.len() == 5
        && res[0] == "listener"
        && matches!(res[1], "app" | "net")
        && res.iter().all(|s| !s.is_empty())
}

fn is_cloud_map_arn(uri: &str) -> bool {
    let base = uri.split('?').next().unwrap_or(uri);
    let parts: Vec<&str> = base.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[2] == "servicediscovery"
        && parts[5]
            .strip_prefix("service/srv-")
            .is_some_and(|s| !s.is_empty())
}

fn is_lambda_uri(uri: &str) -> bool {
    (uri.starts_with("arn:") && uri.contains(":lambda:") && uri.contains(":function:"))
        || (uri.starts_with("arn:")
            && uri.contains(":apigateway:")
            && uri.contains(":lambda:path/"))
}

/// Checks `integrationUri` for the integration type and connection type.
pub(crate) fn check_uri(itype: &str, conn: &str, uri: &str) -> AwsResult<()> {
    let ok = match (itype, conn) {
        ("HTTP_PROXY", "VPC_LINK") => is_listener_arn(uri) || is_cloud_map_arn(uri),
        ("HTTP_PROXY", _) => uri
            .parse::<http::Uri>()
            .ok()
            .filter(|u| matches!(u.scheme_str(), Some("http" | "https")))
            .and_then(|u| u.host().map(|h| !h.is_empty()))
            .unwrap_or(false),
        ("AWS_PROXY", _) => is_lambda_uri(uri),
        _ => true,
    };
    if ok {
        return Ok(());
    }
    Err(bad(match (itype, conn) {
        ("HTTP_PROXY", "VPC_LINK") => "For VpcLink VPC_LINK, integration uri should be a valid ELB listener ARN or a valid Cloud Map service ARN.".to_string(),
        ("HTTP_PROXY", _) => format!("Invalid integration URI specified: {uri}. An HTTP_PROXY integration needs an absolute http or https URL"),
        _ => format!("Invalid integration URI specified: {uri}. An AWS_PROXY integration needs a Lambda function ARN"),
    }))
}

const MEMBERS: &[&str] = &[
    "connectionId",
    "connectionType",
    "credentialsArn",
    "description",
    "integrationMethod",
    "integrationType",
    "integrationUri",
    "payloadFormatVersion",
    "requestParameters",
    "responseParameters",
    "timeoutInMillis",
    "tlsConfig",
    "integrationSubtype",
    "contentHandlingStrategy",
    "passthroughBehavior",
    "requestTemplates",
    "templateSelectionExpression",
];

/// Validates a whole integration body (after defaults and merge).
fn validate(ctx: &Ctx<'_>, tx: &Tx<'_>, m: &Map<String, Value>) -> AwsResult<()> {
    let input = Input(Value::Object(m.clone()));
    let itype = req_str(&input, "integrationType")?;
    match itype.as_str() {
        "HTTP_PROXY" | "AWS_PROXY" => {}
        "HTTP" | "AWS" | "MOCK" => {
            return Err(bad(
                "Currently, an API with a protocol type of HTTP may only be associated with proxy integrations (AWS_PROXY, HTTP_PROXY)",
            ))
        }
        other => {
            return Err(bad(format!(
                "Invalid integration type {other}: must be one of AWS, AWS_PROXY, HTTP, HTTP_PROXY, MOCK"
            )))
        }
    }
    for k in [
        "contentHandlingStrategy",
        "passthroughBehavior",
        "requestTemplates",
        "templateSelectionExpression",
    ] {
        if input.has(k) {
            return Err(bad(format!("{k} is supported only for WebSocket APIs")));
        }
    }
    if input.has("integrationSubtype") {
        return Err(bad(
            "AWS service integrations (integrationSubtype) are not supported by Portico",
        ));
    }
    let conn = opt_str(&input, "connectionType")?.unwrap_or_else(|| "INTERNET".into());
    match conn.as_str() {
        "INTERNET" => {
            if input.has("connectionId") {
                return Err(bad(
                    "connectionId can only be used with connectionType VPC_LINK",
                ));
            }
            if input.has("tlsConfig") {
                return Err(bad("tlsConfig is supported only for private integrations (connectionType VPC_LINK)"));
            }
        }
        "VPC_LINK" => {
            if itype != "HTTP_PROXY" {
                return Err(bad(
                    "connectionType VPC_LINK is supported only for HTTP_PROXY integrations",
                ));
            }
            let cid = opt_str(&input, "connectionId")?
                .ok_or_else(|| bad("connectionId is required when connectionType is VPC_LINK"))?;
            if tx.get(&ctx.scope, KIND_VPCLINK, &cid)?.is_none() {
                return Err(not_found(
                    "VpcLink",
                    format!(
                        "Invalid VpcLink identifier specified {}:{cid}",
                        ctx.rc.account_id
                    ),
                ));
            }
        }
        other => {
            return Err(bad(format!(
                "Invalid connection type {other}: must be INTERNET or VPC_LINK"
            )))
        }
    }
    let uri = opt_str(&input, "integrationUri")?.ok_or_else(|| {
        bad(format!(
            "integrationUri is required for {itype} integrations"
        ))
    })?;
    check_len("integrationUri", &uri, 1, 2048)?;
    check_uri(&itype, &conn, &uri)?;
    match opt_str(&input, "integrationMethod")? {
        Some(m) if METHODS.contains(&m.as_str()) => {}
        Some(m) => {
            return Err(bad(format!(
                "Invalid integration method {m}: must be ANY or an HTTP method"
            )))
        }
        None if itype == "HTTP_PROXY" => {
            return Err(bad(
                "integrationMethod is required for HTTP_PROXY integrations",
            ))
        }
        None => {}
    }
    let pfv = opt_str(&input, "payloadFormatVersion")?;
    match (itype.as_str(), pfv.as_deref()) {
        ("HTTP_PROXY", Some("1.0")) => {}
        ("HTTP_PROXY", Some(v)) => {
            return Err(bad(format!(
                "Invalid payload format version {v}: HTTP_PROXY integrations support only 1.0"
            )))
        }
        ("AWS_PROXY", Some("1.0" | "2.0")) => {}
        ("AWS_PROXY", Some(v)) => {
            return Err(bad(format!(
                "Invalid payload format version {v}: must be 1.0 or 2.0"
            )))
        }
        ("AWS_PROXY", None) => {
            return Err(bad(
                "payloadFormatVersion is required for AWS_PROXY integrations",
            ))
        }
        _ => {}
    }
    match opt_int(&input, "timeoutInMillis")? {
        Some(t) if !(50..=30000).contains(&t) => {
            return Err(bad(
                "Timeout must be between 50 milliseconds and 30 seconds for HTTP APIs",
            ))
        }
        _ => {}
    }
    if let Some(p) = opt_str_map(&input, "requestParameters")? {
        check_request_parameters(&p)?;
    }
    if let Some(p) = opt_obj(&input, "responseParameters")? {
        check_response_parameters(&p)?;
    }
    if let Some(t) = opt_obj(&input, "tlsConfig")? {
        let t = Input(Value::Object(t));
        if let Some(s) = opt_str(&t, "serverNameToVerify")? {
            check_len("serverNameToVerify", &s, 1, 512)?;
        }
    }
    if let Some(d) = opt_str(&input, "description")? {
        check_len("description", &d, 0, 1024)?;
    }
    opt_str(&input, "credentialsArn")?;
    Ok(())
}

/// Creates an integration in the caller's transaction (CreateIntegration and quick create).
pub(crate) fn insert(
    ctx: &Ctx<'_>,
    tx: &Tx<'_>,
    api_id: &str,
    input: &Input,
    managed: bool,
) -> AwsResult<Value> {
    load_api(ctx, tx, api_id)?;
    if tx.count(&ctx.scope, KIND_INTEGRATION, Some(api_id))? >= 300 {
        return Err(bad(
            "Maximum number of integrations (300) reached for this API",
        ));
    }
    let id = fresh_id(tx, &ctx.scope, KIND_INTEGRATION, Some(api_id), 7)?;
    let mut m = Map::new();
    if managed {
        m.insert("apiGatewayManaged".into(), json!(true));
    }
    m.insert("connectionType".into(), json!("INTERNET"));
    m.insert("integrationId".into(), json!(id));
    for k in MEMBERS {
        if let Some(v) = input.get(k) {
            m.insert((*k).into(), v.clone());
        }
    }
    if m.get("integrationType").and_then(Value::as_str) == Some("HTTP_PROXY") {
        m.entry("payloadFormatVersion").or_insert(json!("1.0"));
    }
    m.entry("timeoutInMillis").or_insert(json!(30000));
    validate(ctx, tx, &m)?;
    let body = Value::Object(m);
    tx.put(
        &ctx.scope,
        KIND_INTEGRATION,
        &child_id(api_id, &id),
        Some(api_id),
        None,
        &body,
    )?;
    Ok(body)
}

pub(crate) fn create(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let api_id = req_label(input, "apiId")?;
    req_str(input, "integrationType")?;
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
        children(tx, &ctx.scope, KIND_INTEGRATION, &api_id)
    })?;
    paginate(input, items)
}

pub(crate) fn get(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let api_id = req_label(input, "apiId")?;
    let id = req_label(input, "integrationId")?;
    ctx.store().read(|tx| {
        load_api(ctx, tx, &api_id)?;
        load_child(ctx, tx, KIND_INTEGRATION, "Integration", &api_id, &id).map(public)
    })
}

/// Merges a string map member: `""` removes a key (`{}` for response parameters).
fn merge_map(m: &mut Map<String, Value>, key: &str, update: &Map<String, Value>) {
    let mut cur = m
        .get(key)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (k, v) in update {
        let remove = v.as_str() == Some("") || v.as_object().is_some_and(Map::is_empty);
        if remove {
            cur.remove(k);
        } else {
            cur.insert(k.clone(), v.clone());
        }
    }
    if cur.is_empty() {
        m.remove(key);
    } else {
        m.insert(key.into(), Value::Object(cur));
    }
}

pub(crate) fn update(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let api_id = req_label(input, "apiId")?;
    let id = req_label(input, "integrationId")?;
    ctx.store().write(|tx| {
        load_api(ctx, tx, &api_id)?;
        let mut body = load_child(ctx, tx, KIND_INTEGRATION, "Integration", &api_id, &id)?;
        if body.get("apiGatewayManaged") == Some(&Value::Bool(true)) {
            return Err(super::routes::managed_error());
        }
        let m = body
            .as_object_mut()
            .ok_or_else(|| AwsError::internal("integration body is not an object"))?;
        for k in MEMBERS {
            match (*k, input.get(k)) {
                (_, None) => {}
                ("requestParameters" | "responseParameters", Some(Value::Object(u))) => {
                    merge_map(m, k, u)
                }
                (_, Some(v)) => {
                    m.insert((*k).into(), v.clone());
                }
            }
        }
        if m.get("connectionType").and_then(Value::as_str) == Some("INTERNET") {
            m.remove("tlsConfig");
            if input.str("connectionType") == Some("INTERNET") {
                m.remove("connectionId");
            }
        }
        validate(ctx, tx, m)?;
        tx.put(
            &ctx.scope,
            KIND_INTEGRATION,
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
    let id = req_label(input, "integrationId")?;
    ctx.store().write(|tx| {
        load_api(ctx, tx, &api_id)?;
        let body = load_child(ctx, tx, KIND_INTEGRATION, "Integration", &api_id, &id)?;
        if body.get("apiGatewayManaged") == Some(&Value::Bool(true)) {
            return Err(super::routes::managed_error());
        }
        let target = format!("integrations/{id}");
        let users: Vec<String> = children(tx, &ctx.scope, KIND_ROUTE, &api_id)?
            .into_iter()
            .filter(|r| r.get("target").and_then(Value::as_str) == Some(target.as_str()))
            .filter_map(|r| r.get("routeId").and_then(Value::as_str).map(String::from))
            .collect();
        if !users.is_empty() {
            return Err(conflict(format!(
                "Cannot delete Integration because it is referenced by the following Routes with Ids: [{}]",
                users.join(", ")
            )));
        }
        tx.delete(&ctx.scope, KIND_INTEGRATION, &child_id(&api_id, &id))?;
        api_changed(ctx, tx, &api_id)?;
        Ok(json!({}))
    })
}
