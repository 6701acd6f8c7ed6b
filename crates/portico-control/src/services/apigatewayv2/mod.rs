//! API Gateway v2 (HTTP APIs): the restJson1 route table, dispatch, and what every operation
//! shares (input checks, errors worded as AWS words them, pagination, auto-deploy).
//!
//! Store kinds (scoped to account and region); child ids are `{apiId}/{childId}` so they are
//! unique per API and looked up in one step:
//! - `apigw.api`         id = apiId, body = the `Api` output (camelCase, with `tags`)
//! - `apigw.route`       id = apiId/routeId, parent = apiId, name = routeKey
//! - `apigw.integration` id = apiId/integrationId, parent = apiId
//! - `apigw.authorizer`  id = apiId/authorizerId, parent = apiId
//! - `apigw.stage`       id = apiId/stageName, parent = apiId, name = stageName
//! - `apigw.deployment`  id = apiId/deploymentId, parent = apiId; `_snapshot` holds the frozen
//!   routes, integrations, authorizers and API settings the deployment serves
//! - `apigw.vpclink`     id = vpcLinkId; `_eniIds`, `_since` are internal
//!
//! Members whose name starts with `_` are internal and never sent.

mod apis;
mod authorizers;
mod deployments;
mod integrations;
mod routes;
mod stages;
mod tags;
pub(crate) mod vpclinks;

use super::RestRoute;
use crate::Ctx;
use portico_core::{AwsError, AwsResult, Input, Service};
use portico_store::{Scope, Tx};
use serde_json::{Map, Value};

pub const KIND_API: &str = "apigw.api";
pub const KIND_ROUTE: &str = "apigw.route";
pub const KIND_INTEGRATION: &str = "apigw.integration";
pub const KIND_AUTHORIZER: &str = "apigw.authorizer";
pub const KIND_STAGE: &str = "apigw.stage";
pub const KIND_DEPLOYMENT: &str = "apigw.deployment";
pub const KIND_VPCLINK: &str = "apigw.vpclink";

/// Method, URI template, operation, success status: every operation of the botocore model
/// (more literal segments first). Operations not handled in [`dispatch`] answer
/// `UnknownOperationException`.
pub const ROUTES: &[RestRoute] = &[
    ("DELETE", "/v2/apis/{apiId}/stages/{stageName}/cache/authorizers", "ResetAuthorizersCache", 204),
    ("GET", "/v2/apis/{apiId}/integrations/{integrationId}/integrationresponses", "GetIntegrationResponses", 200),
    ("POST", "/v2/apis/{apiId}/integrations/{integrationId}/integrationresponses", "CreateIntegrationResponse", 201),
    ("DELETE", "/v2/apis/{apiId}/integrations/{integrationId}/integrationresponses/{integrationResponseId}", "DeleteIntegrationResponse", 204),
    ("GET", "/v2/apis/{apiId}/integrations/{integrationId}/integrationresponses/{integrationResponseId}", "GetIntegrationResponse", 200),
    ("PATCH", "/v2/apis/{apiId}/integrations/{integrationId}/integrationresponses/{integrationResponseId}", "UpdateIntegrationResponse", 200),
    ("GET", "/v2/apis/{apiId}/models/{modelId}/template", "GetModelTemplate", 200),
    ("DELETE", "/v2/apis/{apiId}/routes/{routeId}/requestparameters/{requestParameterKey}", "DeleteRouteRequestParameter", 204),
    ("GET", "/v2/apis/{apiId}/routes/{routeId}/routeresponses", "GetRouteResponses", 200),
    ("POST", "/v2/apis/{apiId}/routes/{routeId}/routeresponses", "CreateRouteResponse", 201),
    ("DELETE", "/v2/apis/{apiId}/routes/{routeId}/routeresponses/{routeResponseId}", "DeleteRouteResponse", 204),
    ("GET", "/v2/apis/{apiId}/routes/{routeId}/routeresponses/{routeResponseId}", "GetRouteResponse", 200),
    ("PATCH", "/v2/apis/{apiId}/routes/{routeId}/routeresponses/{routeResponseId}", "UpdateRouteResponse", 200),
    ("DELETE", "/v2/apis/{apiId}/stages/{stageName}/accesslogsettings", "DeleteAccessLogSettings", 204),
    ("DELETE", "/v2/apis/{apiId}/stages/{stageName}/routesettings/{routeKey}", "DeleteRouteSettings", 204),
    ("GET", "/v2/apis/{apiId}/authorizers", "GetAuthorizers", 200),
    ("POST", "/v2/apis/{apiId}/authorizers", "CreateAuthorizer", 201),
    ("DELETE", "/v2/apis/{apiId}/authorizers/{authorizerId}", "DeleteAuthorizer", 204),
    ("GET", "/v2/apis/{apiId}/authorizers/{authorizerId}", "GetAuthorizer", 200),
    ("PATCH", "/v2/apis/{apiId}/authorizers/{authorizerId}", "UpdateAuthorizer", 200),
    ("DELETE", "/v2/apis/{apiId}/cors", "DeleteCorsConfiguration", 204),
    ("GET", "/v2/apis/{apiId}/deployments", "GetDeployments", 200),
    ("POST", "/v2/apis/{apiId}/deployments", "CreateDeployment", 201),
    ("DELETE", "/v2/apis/{apiId}/deployments/{deploymentId}", "DeleteDeployment", 204),
    ("GET", "/v2/apis/{apiId}/deployments/{deploymentId}", "GetDeployment", 200),
    ("PATCH", "/v2/apis/{apiId}/deployments/{deploymentId}", "UpdateDeployment", 200),
    ("GET", "/v2/apis/{apiId}/exports/{specification}", "ExportApi", 200),
    ("GET", "/v2/apis/{apiId}/integrations", "GetIntegrations", 200),
    ("POST", "/v2/apis/{apiId}/integrations", "CreateIntegration", 201),
    ("DELETE", "/v2/apis/{apiId}/integrations/{integrationId}", "DeleteIntegration", 204),
    ("GET", "/v2/apis/{apiId}/integrations/{integrationId}", "GetIntegration", 200),
    ("PATCH", "/v2/apis/{apiId}/integrations/{integrationId}", "UpdateIntegration", 200),
    ("GET", "/v2/apis/{apiId}/models", "GetModels", 200),
    ("POST", "/v2/apis/{apiId}/models", "CreateModel", 201),
    ("DELETE", "/v2/apis/{apiId}/models/{modelId}", "DeleteModel", 204),
    ("GET", "/v2/apis/{apiId}/models/{modelId}", "GetModel", 200),
    ("PATCH", "/v2/apis/{apiId}/models/{modelId}", "UpdateModel", 200),
    ("GET", "/v2/apis/{apiId}/routes", "GetRoutes", 200),
    ("POST", "/v2/apis/{apiId}/routes", "CreateRoute", 201),
    ("DELETE", "/v2/apis/{apiId}/routes/{routeId}", "DeleteRoute", 204),
    ("GET", "/v2/apis/{apiId}/routes/{routeId}", "GetRoute", 200),
    ("PATCH", "/v2/apis/{apiId}/routes/{routeId}", "UpdateRoute", 200),
    ("GET", "/v2/apis/{apiId}/stages", "GetStages", 200),
    ("POST", "/v2/apis/{apiId}/stages", "CreateStage", 201),
    ("DELETE", "/v2/apis/{apiId}/stages/{stageName}", "DeleteStage", 204),
    ("GET", "/v2/apis/{apiId}/stages/{stageName}", "GetStage", 200),
    ("PATCH", "/v2/apis/{apiId}/stages/{stageName}", "UpdateStage", 200),
    ("GET", "/v2/domainnames/{domainName}/apimappings", "GetApiMappings", 200),
    ("POST", "/v2/domainnames/{domainName}/apimappings", "CreateApiMapping", 201),
    ("DELETE", "/v2/domainnames/{domainName}/apimappings/{apiMappingId}", "DeleteApiMapping", 204),
    ("GET", "/v2/domainnames/{domainName}/apimappings/{apiMappingId}", "GetApiMapping", 200),
    ("PATCH", "/v2/domainnames/{domainName}/apimappings/{apiMappingId}", "UpdateApiMapping", 200),
    ("GET", "/v2/domainnames/{domainName}/routingrules", "ListRoutingRules", 200),
    ("POST", "/v2/domainnames/{domainName}/routingrules", "CreateRoutingRule", 201),
    ("DELETE", "/v2/domainnames/{domainName}/routingrules/{routingRuleId}", "DeleteRoutingRule", 204),
    ("GET", "/v2/domainnames/{domainName}/routingrules/{routingRuleId}", "GetRoutingRule", 200),
    ("PUT", "/v2/domainnames/{domainName}/routingrules/{routingRuleId}", "PutRoutingRule", 200),
    ("GET", "/v2/portalproducts/{portalProductId}/productpages", "ListProductPages", 200),
    ("POST", "/v2/portalproducts/{portalProductId}/productpages", "CreateProductPage", 201),
    ("DELETE", "/v2/portalproducts/{portalProductId}/productpages/{productPageId}", "DeleteProductPage", 204),
    ("GET", "/v2/portalproducts/{portalProductId}/productpages/{productPageId}", "GetProductPage", 200),
    ("PATCH", "/v2/portalproducts/{portalProductId}/productpages/{productPageId}", "UpdateProductPage", 200),
    ("GET", "/v2/portalproducts/{portalProductId}/productrestendpointpages", "ListProductRestEndpointPages", 200),
    ("POST", "/v2/portalproducts/{portalProductId}/productrestendpointpages", "CreateProductRestEndpointPage", 201),
    ("DELETE", "/v2/portalproducts/{portalProductId}/productrestendpointpages/{productRestEndpointPageId}", "DeleteProductRestEndpointPage", 204),
    ("GET", "/v2/portalproducts/{portalProductId}/productrestendpointpages/{productRestEndpointPageId}", "GetProductRestEndpointPage", 200),
    ("PATCH", "/v2/portalproducts/{portalProductId}/productrestendpointpages/{productRestEndpointPageId}", "UpdateProductRestEndpointPage", 200),
    ("DELETE", "/v2/portalproducts/{portalProductId}/sharingpolicy", "DeletePortalProductSharingPolicy", 204),
    ("GET", "/v2/portalproducts/{portalProductId}/sharingpolicy", "GetPortalProductSharingPolicy", 200),
    ("PUT", "/v2/portalproducts/{portalProductId}/sharingpolicy", "PutPortalProductSharingPolicy", 200),
    ("POST", "/v2/portals/{portalId}/preview", "PreviewPortal", 202),
    ("DELETE", "/v2/portals/{portalId}/publish", "DisablePortal", 204),
    ("POST", "/v2/portals/{portalId}/publish", "PublishPortal", 202),
    ("GET", "/v2/apis", "GetApis", 200),
    ("POST", "/v2/apis", "CreateApi", 201),
    ("PUT", "/v2/apis", "ImportApi", 201),
    ("DELETE", "/v2/apis/{apiId}", "DeleteApi", 204),
    ("GET", "/v2/apis/{apiId}", "GetApi", 200),
    ("PATCH", "/v2/apis/{apiId}", "UpdateApi", 200),
    ("PUT", "/v2/apis/{apiId}", "ReimportApi", 201),
    ("GET", "/v2/domainnames", "GetDomainNames", 200),
    ("POST", "/v2/domainnames", "CreateDomainName", 201),
    ("DELETE", "/v2/domainnames/{domainName}", "DeleteDomainName", 204),
    ("GET", "/v2/domainnames/{domainName}", "GetDomainName", 200),
    ("PATCH", "/v2/domainnames/{domainName}", "UpdateDomainName", 200),
    ("GET", "/v2/portalproducts", "ListPortalProducts", 200),
    ("POST", "/v2/portalproducts", "CreatePortalProduct", 201),
    ("DELETE", "/v2/portalproducts/{portalProductId}", "DeletePortalProduct", 204),
    ("GET", "/v2/portalproducts/{portalProductId}", "GetPortalProduct", 200),
    ("PATCH", "/v2/portalproducts/{portalProductId}", "UpdatePortalProduct", 200),
    ("GET", "/v2/portals", "ListPortals", 200),
    ("POST", "/v2/portals", "CreatePortal", 201),
    ("DELETE", "/v2/portals/{portalId}", "DeletePortal", 204),
    ("GET", "/v2/portals/{portalId}", "GetPortal", 200),
    ("PATCH", "/v2/portals/{portalId}", "UpdatePortal", 200),
    ("DELETE", "/v2/tags/{resource-arn}", "UntagResource", 204),
    ("GET", "/v2/tags/{resource-arn}", "GetTags", 200),
    ("POST", "/v2/tags/{resource-arn}", "TagResource", 201),
    ("GET", "/v2/vpclinks", "GetVpcLinks", 200),
    ("POST", "/v2/vpclinks", "CreateVpcLink", 201),
    ("DELETE", "/v2/vpclinks/{vpcLinkId}", "DeleteVpcLink", 202),
    ("GET", "/v2/vpclinks/{vpcLinkId}", "GetVpcLink", 200),
    ("PATCH", "/v2/vpclinks/{vpcLinkId}", "UpdateVpcLink", 200),
];

pub async fn dispatch(ctx: &Ctx<'_>, op: &str, input: Input) -> AwsResult<Value> {
    let out = run(ctx, op, input)?;
    if !op.starts_with("Get") {
        // read-your-writes for the data plane: the change is served before the call returns
        if let Err(e) = crate::reconcile::apigw::publish_now(ctx.control) {
            tracing::error!(operation = op, error = %e, cause = ?e.cause, "apigw snapshot publish failed");
        }
    }
    Ok(out)
}

fn run(ctx: &Ctx<'_>, op: &str, input: Input) -> AwsResult<Value> {
    match op {
        "CreateApi" => apis::create(ctx, &input),
        "GetApis" => apis::list(ctx, &input),
        "GetApi" => apis::get(ctx, &input),
        "UpdateApi" => apis::update(ctx, &input),
        "DeleteApi" => apis::delete(ctx, &input),
        "DeleteCorsConfiguration" => apis::delete_cors(ctx, &input),
        "CreateRoute" => routes::create(ctx, &input),
        "GetRoutes" => routes::list(ctx, &input),
        "GetRoute" => routes::get(ctx, &input),
        "UpdateRoute" => routes::update(ctx, &input),
        "DeleteRoute" => routes::delete(ctx, &input),
        "DeleteRouteRequestParameter" => routes::delete_request_parameter(ctx, &input),
        "CreateIntegration" => integrations::create(ctx, &input),
        "GetIntegrations" => integrations::list(ctx, &input),
        "GetIntegration" => integrations::get(ctx, &input),
        "UpdateIntegration" => integrations::update(ctx, &input),
        "DeleteIntegration" => integrations::delete(ctx, &input),
        "CreateAuthorizer" => authorizers::create(ctx, &input),
        "GetAuthorizers" => authorizers::list(ctx, &input),
        "GetAuthorizer" => authorizers::get(ctx, &input),
        "UpdateAuthorizer" => authorizers::update(ctx, &input),
        "DeleteAuthorizer" => authorizers::delete(ctx, &input),
        "CreateStage" => stages::create(ctx, &input),
        "GetStages" => stages::list(ctx, &input),
        "GetStage" => stages::get(ctx, &input),
        "UpdateStage" => stages::update(ctx, &input),
        "DeleteStage" => stages::delete(ctx, &input),
        "DeleteAccessLogSettings" => stages::delete_access_log_settings(ctx, &input),
        "DeleteRouteSettings" => stages::delete_route_settings(ctx, &input),
        "ResetAuthorizersCache" => stages::reset_authorizers_cache(ctx, &input),
        "CreateDeployment" => deployments::create(ctx, &input),
        "GetDeployments" => deployments::list(ctx, &input),
        "GetDeployment" => deployments::get(ctx, &input),
        "UpdateDeployment" => deployments::update(ctx, &input),
        "DeleteDeployment" => deployments::delete(ctx, &input),
        "CreateVpcLink" => vpclinks::create(ctx, &input),
        "GetVpcLinks" => vpclinks::list(ctx, &input),
        "GetVpcLink" => vpclinks::get(ctx, &input),
        "UpdateVpcLink" => vpclinks::update(ctx, &input),
        "DeleteVpcLink" => vpclinks::delete(ctx, &input),
        "TagResource" => tags::tag(ctx, &input),
        "GetTags" => tags::get(ctx, &input),
        "UntagResource" => tags::untag(ctx, &input),
        "CreateRouteResponse"
        | "UpdateRouteResponse"
        | "DeleteRouteResponse"
        | "GetRouteResponse"
        | "CreateIntegrationResponse"
        | "UpdateIntegrationResponse"
        | "DeleteIntegrationResponse"
        | "GetIntegrationResponse"
        | "CreateModel"
        | "UpdateModel"
        | "DeleteModel"
        | "GetModel"
        | "GetModelTemplate" => websocket_only(ctx, &input, op, false),
        "GetRouteResponses" | "GetIntegrationResponses" | "GetModels" => {
            websocket_only(ctx, &input, op, true)
        }
        _ => Err(Service::ApiGatewayV2.unknown_operation(op)),
    }
}

/// Route responses, integration responses and models exist only for WebSocket APIs, which
/// Portico does not serve: an HTTP API answers lists with no items and everything else with
/// AWS's BadRequest.
fn websocket_only(ctx: &Ctx<'_>, input: &Input, op: &str, list: bool) -> AwsResult<Value> {
    let api_id = req_label(input, "apiId")?;
    ctx.store().read(|tx| {
        load_api(ctx, tx, &api_id)?;
        if list {
            Ok(serde_json::json!({"items": []}))
        } else {
            Err(bad(format!(
                "{op} is supported only for WebSocket APIs; this is an HTTP API"
            )))
        }
    })
}

// ---------- errors ----------

pub(crate) fn bad(msg: impl Into<String>) -> AwsError {
    AwsError::bad("BadRequestException", msg)
}

pub(crate) fn not_found(resource_type: &str, msg: impl Into<String>) -> AwsError {
    AwsError::new(404, "NotFoundException", msg).with_extra("resourceType", resource_type)
}

pub(crate) fn conflict(msg: impl Into<String>) -> AwsError {
    AwsError::new(409, "ConflictException", msg)
}

/// `Invalid {Kind} identifier specified {account}:{apiId}/{id}`.
pub(crate) fn child_not_found(ctx: &Ctx<'_>, kind: &str, api_id: &str, id: &str) -> AwsError {
    not_found(
        kind,
        format!(
            "Invalid {kind} identifier specified {}:{api_id}/{id}",
            ctx.rc.account_id
        ),
    )
}

// ---------- input ----------

/// A path label (always present when the route matched; empty means the client sent none).
pub(crate) fn req_label(input: &Input, key: &str) -> AwsResult<String> {
    match input.str(key) {
        Some(s) if !s.is_empty() => Ok(s.to_string()),
        _ => Err(bad(format!("{key} must not be empty"))),
    }
}

pub(crate) fn opt_str(input: &Input, key: &str) -> AwsResult<Option<String>> {
    match input.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(format!(
            "Invalid request body: '{key}' must be a string"
        ))),
    }
}

pub(crate) fn req_str(input: &Input, key: &str) -> AwsResult<String> {
    opt_str(input, key)?.ok_or_else(|| bad(format!("{key} is required")))
}

pub(crate) fn opt_bool(input: &Input, key: &str) -> AwsResult<Option<bool>> {
    match input.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(bad(format!(
            "Invalid request body: '{key}' must be a boolean"
        ))),
    }
}

pub(crate) fn opt_int(input: &Input, key: &str) -> AwsResult<Option<i64>> {
    match input.get(key) {
        None => Ok(None),
        Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64()),
        Some(_) => Err(bad(format!(
            "Invalid request body: '{key}' must be an integer"
        ))),
    }
}

pub(crate) fn opt_f64(input: &Input, key: &str) -> AwsResult<Option<f64>> {
    match input.get(key) {
        None => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(_) => Err(bad(format!(
            "Invalid request body: '{key}' must be a number"
        ))),
    }
}

pub(crate) fn opt_str_list(input: &Input, key: &str) -> AwsResult<Option<Vec<String>>> {
    match input.get(key) {
        None => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str().map(String::from).ok_or_else(|| {
                    bad(format!(
                        "Invalid request body: '{key}' must be a list of strings"
                    ))
                })
            })
            .collect::<AwsResult<Vec<_>>>()
            .map(Some),
        Some(_) => Err(bad(format!(
            "Invalid request body: '{key}' must be a list of strings"
        ))),
    }
}

/// A map of string to string (tags, stage variables, parameter mappings).
pub(crate) fn opt_str_map(input: &Input, key: &str) -> AwsResult<Option<Map<String, Value>>> {
    match input.get(key) {
        None => Ok(None),
        Some(Value::Object(m)) => {
            if m.values().all(Value::is_string) {
                Ok(Some(m.clone()))
            } else {
                Err(bad(format!(
                    "Invalid request body: '{key}' must map strings to strings"
                )))
            }
        }
        Some(_) => Err(bad(format!(
            "Invalid request body: '{key}' must be an object"
        ))),
    }
}

pub(crate) fn opt_obj(input: &Input, key: &str) -> AwsResult<Option<Map<String, Value>>> {
    match input.get(key) {
        None => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        Some(_) => Err(bad(format!(
            "Invalid request body: '{key}' must be an object"
        ))),
    }
}

pub(crate) fn check_len(key: &str, v: &str, min: usize, max: usize) -> AwsResult<()> {
    let n = v.chars().count();
    if n < min || n > max {
        return Err(bad(format!(
            "{key} must be between {min} and {max} characters long"
        )));
    }
    Ok(())
}

/// Validates `tags` (keys 1-128, values up to 1600, at most 50, no `aws:` prefix).
pub(crate) fn check_tags(tags: &Map<String, Value>) -> AwsResult<()> {
    if crate::services::tags::counted_keys(tags.keys().map(String::as_str)) > 50 {
        return Err(bad("Too many tags: a resource can have at most 50 tags"));
    }
    for (k, v) in tags {
        check_len("Tag key", k, 1, 128)?;
        check_tag_key(k)?;
        check_len("Tag value", v.as_str().unwrap_or(""), 0, 1600)?;
    }
    Ok(())
}

/// A tag key a client may set or remove: not one with AWS's reserved `aws:` prefix
/// (services/tags.rs). API Gateway's text, as public error reports show it
/// (serverless/serverless#9223, aws/aws-cdk#23738).
pub(crate) fn check_tag_key(k: &str) -> AwsResult<()> {
    if crate::services::tags::refused(k) {
        return Err(bad(
            "Invalid tag key. Tag keys cannot start with 'aws:' (case insensitive)",
        ));
    }
    Ok(())
}

// ---------- store helpers ----------

pub(crate) fn child_id(api_id: &str, id: &str) -> String {
    format!("{api_id}/{id}")
}

/// The stored API or AWS's not-found error.
pub(crate) fn load_api(ctx: &Ctx<'_>, tx: &Tx<'_>, api_id: &str) -> AwsResult<Value> {
    tx.get(&ctx.scope, KIND_API, api_id)?
        .map(|r| r.body)
        .ok_or_else(|| {
            not_found(
                "Api",
                format!(
                    "Invalid API identifier specified {}:{api_id}",
                    ctx.rc.account_id
                ),
            )
        })
}

pub(crate) fn load_child(
    ctx: &Ctx<'_>,
    tx: &Tx<'_>,
    kind_store: &str,
    kind_name: &str,
    api_id: &str,
    id: &str,
) -> AwsResult<Value> {
    tx.get(&ctx.scope, kind_store, &child_id(api_id, id))?
        .map(|r| r.body)
        .ok_or_else(|| child_not_found(ctx, kind_name, api_id, id))
}

/// Bodies of every child of one kind under an API, in creation order.
pub(crate) fn children(
    tx: &Tx<'_>,
    scope: &Scope,
    kind: &str,
    api_id: &str,
) -> AwsResult<Vec<Value>> {
    Ok(tx
        .list(scope, kind, Some(api_id))?
        .into_iter()
        .map(|r| r.body)
        .collect())
}

/// The stage member counting ResetAuthorizersCache calls (Portico's, never rendered); the HTTP
/// API reconciler hands it to the data plane, which re-fetches JWT signing keys when it changes.
pub(crate) const AUTHORIZERS_CACHE_EPOCH: &str = "_authorizersCacheEpoch";

/// The output form of a stored body: internal `_` members removed.
pub(crate) fn public(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.retain(|k, _| !k.starts_with('_'));
    }
    v
}

pub(crate) fn now() -> String {
    portico_core::time::iso_seconds(portico_core::time::now_millis())
}

/// A fresh id of `n` lowercase alphanumerics not yet used for `kind` under `api_id`.
pub(crate) fn fresh_id(
    tx: &Tx<'_>,
    scope: &Scope,
    kind: &str,
    api_id: Option<&str>,
    n: usize,
) -> AwsResult<String> {
    loop {
        let id = portico_core::ids::alnum(n);
        let key = match api_id {
            Some(a) => child_id(a, &id),
            None => id.clone(),
        };
        if tx.get(scope, kind, &key)?.is_none() {
            return Ok(id);
        }
    }
}

/// `{"items": [...], "nextToken": "..."}` for one page. `maxResults` is a decimal string.
pub(crate) fn paginate(input: &Input, mut items: Vec<Value>) -> AwsResult<Value> {
    let max = match input.get("maxResults") {
        None => 500,
        Some(v) => {
            let n = match v {
                Value::String(s) => s.trim().parse::<i64>().ok(),
                Value::Number(n) => n.as_i64(),
                _ => None,
            };
            match n {
                Some(n) if n >= 1 => n.min(500) as usize,
                _ => return Err(bad("maxResults must be a positive integer")),
            }
        }
    };
    let start = match input.str("nextToken") {
        None | Some("") => 0,
        Some(t) => t
            .strip_prefix("p")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= items.len())
            .ok_or_else(|| bad("Invalid nextToken"))?,
    };
    let (end, total) = ((start + max).min(items.len()), items.len());
    // moved out, not cloned: GetApis and friends list every item they hold
    let page: Vec<Value> = items.drain(start..end).map(public).collect();
    let mut out = Map::new();
    out.insert("items".into(), Value::Array(page));
    if end < total {
        out.insert("nextToken".into(), Value::String(format!("p{end}")));
    }
    Ok(Value::Object(out))
}

/// Everything an auto-deploy stage follows changed: redeploy every auto-deploy stage of the
/// API in the caller's transaction, so the next request sees the change.
pub(crate) fn api_changed(ctx: &Ctx<'_>, tx: &Tx<'_>, api_id: &str) -> AwsResult<()> {
    deployments::auto_deploy(ctx, tx, api_id)
}
