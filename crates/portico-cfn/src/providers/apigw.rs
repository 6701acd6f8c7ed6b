//! API Gateway v2 providers: Api, Stage, Route, Integration, VpcLink (stabilises at
//! AVAILABLE), Authorizer and Deployment, through the restJson1 operations (lowerCamel body
//! members plus path labels).

use super::{camel, fstr, prop_str, required, text, unsupported, Done, Failure, PResult, Pcx};
use portico_core::Service;
use serde_json::{json, Map, Value};
use std::time::Duration;

/// Maps whose keys are data (header names, stage variables, route keys).
const KEEP: &[&str] = &[
    "Tags",
    "RequestParameters",
    "ResponseParameters",
    "StageVariables",
    "RouteSettings",
    "RequestModels",
    "RequestTemplates",
];

fn one(key: &str, v: String) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(key.into(), json!(v));
    m
}

/// Template tags (a map for this service) plus the stack's tags.
fn tags(cx: &Pcx<'_>, props: &Value) -> Map<String, Value> {
    let mut m = props
        .get("Tags")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (k, v) in cx.tags {
        m.entry(k.clone()).or_insert_with(|| json!(v));
    }
    m
}

fn body(cx: &Pcx<'_>, props: &Value, drop: &[&str]) -> Value {
    let mut b = camel(props, KEEP);
    if let Some(m) = b.as_object_mut() {
        for d in drop {
            m.remove(*d);
        }
        let t = tags(cx, props);
        if t.is_empty() {
            m.remove("tags");
        } else {
            m.insert("tags".into(), Value::Object(t));
        }
    }
    b
}

fn api_id(props: &Value) -> PResult<String> {
    Ok(text(&required(props, "ApiId")?))
}

pub(super) async fn create(cx: &Pcx<'_>, ty: &str, props: &Value) -> PResult<Done> {
    match ty {
        "AWS::ApiGatewayV2::Api" => {
            if props.get("Body").is_some() || props.get("BodyS3Location").is_some() {
                return Err(Failure::msg(
                    "Portico does not import OpenAPI definitions (Body/BodyS3Location) for AWS::ApiGatewayV2::Api yet",
                ));
            }
            let mut input = body(cx, props, &["failOnWarnings", "basePath"]);
            if input.get("name").is_none() {
                input["name"] = json!(cx.name(128));
            }
            let out = cx.call(Service::ApiGatewayV2, "CreateApi", input).await?;
            let id = fstr(&out, "apiId").unwrap_or_default();
            let mut m = one("ApiId", id.clone());
            m.insert(
                "ApiEndpoint".into(),
                json!(fstr(&out, "apiEndpoint").unwrap_or_default()),
            );
            Ok(Done {
                physical: id,
                attrs: m,
            })
        }
        "AWS::ApiGatewayV2::Stage" => {
            let input = body(cx, props, &[]);
            let out = cx.call(Service::ApiGatewayV2, "CreateStage", input).await?;
            let name = fstr(&out, "stageName")
                .unwrap_or_else(|| prop_str(props, "StageName").unwrap_or_default());
            Ok(Done {
                physical: name,
                attrs: Map::new(),
            })
        }
        "AWS::ApiGatewayV2::Route" => {
            let out = cx
                .call(
                    Service::ApiGatewayV2,
                    "CreateRoute",
                    body(cx, props, &["tags"]),
                )
                .await?;
            let id = fstr(&out, "routeId").unwrap_or_default();
            Ok(Done {
                physical: id.clone(),
                attrs: one("RouteId", id),
            })
        }
        "AWS::ApiGatewayV2::Integration" => {
            let out = cx
                .call(
                    Service::ApiGatewayV2,
                    "CreateIntegration",
                    body(cx, props, &["tags"]),
                )
                .await?;
            let id = fstr(&out, "integrationId").unwrap_or_default();
            Ok(Done {
                physical: id.clone(),
                attrs: one("IntegrationId", id),
            })
        }
        "AWS::ApiGatewayV2::VpcLink" => {
            let out = cx
                .call(Service::ApiGatewayV2, "CreateVpcLink", body(cx, props, &[]))
                .await?;
            let id = fstr(&out, "vpcLinkId").unwrap_or_default();
            Ok(Done {
                physical: id.clone(),
                attrs: one("VpcLinkId", id),
            })
        }
        "AWS::ApiGatewayV2::Authorizer" => {
            let out = cx
                .call(
                    Service::ApiGatewayV2,
                    "CreateAuthorizer",
                    body(cx, props, &["tags"]),
                )
                .await?;
            let id = fstr(&out, "authorizerId").unwrap_or_default();
            Ok(Done {
                physical: id.clone(),
                attrs: one("AuthorizerId", id),
            })
        }
        "AWS::ApiGatewayV2::Deployment" => {
            let out = cx
                .call(
                    Service::ApiGatewayV2,
                    "CreateDeployment",
                    body(cx, props, &["tags"]),
                )
                .await?;
            let id = fstr(&out, "deploymentId").unwrap_or_default();
            Ok(Done {
                physical: id.clone(),
                attrs: one("DeploymentId", id),
            })
        }
        other => Err(unsupported(other)),
    }
}

pub(super) async fn stabilize(cx: &Pcx<'_>, ty: &str, done: &mut Done) -> PResult<()> {
    if ty != "AWS::ApiGatewayV2::VpcLink" {
        return Ok(());
    }
    let id = done.physical.clone();
    cx.wait_for(
        "the VPC link to become AVAILABLE",
        Duration::from_secs(300),
        || async {
            let out = cx
                .call(
                    Service::ApiGatewayV2,
                    "GetVpcLink",
                    json!({"vpcLinkId": id}),
                )
                .await?;
            match fstr(&out, "vpcLinkStatus").as_deref() {
                Some("AVAILABLE") => Ok(Some(())),
                Some("FAILED") => Err(Failure::msg(format!(
                    "VPC link {id} failed: {}",
                    fstr(&out, "vpcLinkStatusMessage").unwrap_or_default()
                ))),
                _ => Ok(None),
            }
        },
    )
    .await
    .map_err(|e| e.with_physical(&done.physical))
}

pub(super) async fn update(
    cx: &Pcx<'_>,
    ty: &str,
    physical: &str,
    _old: &Value,
    new: &Value,
    attrs: &Map<String, Value>,
) -> PResult<Done> {
    let done = Done::existing(physical, attrs);
    let (op, id_key, drop): (&str, &str, &[&str]) = match ty {
        "AWS::ApiGatewayV2::Api" => (
            "UpdateApi",
            "apiId",
            &["tags", "protocolType", "failOnWarnings", "basePath"],
        ),
        "AWS::ApiGatewayV2::Stage" => ("UpdateStage", "stageName", &["tags"]),
        "AWS::ApiGatewayV2::Route" => ("UpdateRoute", "routeId", &["tags"]),
        "AWS::ApiGatewayV2::Integration" => ("UpdateIntegration", "integrationId", &["tags"]),
        "AWS::ApiGatewayV2::VpcLink" => (
            "UpdateVpcLink",
            "vpcLinkId",
            &["tags", "subnetIds", "securityGroupIds"],
        ),
        "AWS::ApiGatewayV2::Authorizer" => ("UpdateAuthorizer", "authorizerId", &["tags"]),
        "AWS::ApiGatewayV2::Deployment" => {
            ("UpdateDeployment", "deploymentId", &["tags", "stageName"])
        }
        other => return Err(unsupported(other)),
    };
    let mut input = body(cx, new, drop);
    input[id_key] = json!(physical);
    cx.call(Service::ApiGatewayV2, op, input).await?;
    Ok(done)
}

pub(super) async fn delete(
    cx: &Pcx<'_>,
    ty: &str,
    physical: &str,
    props: &Value,
    _attrs: &Map<String, Value>,
) -> PResult<()> {
    let api = || api_id(props).unwrap_or_default();
    let (op, input) = match ty {
        "AWS::ApiGatewayV2::Api" => ("DeleteApi", json!({"apiId": physical})),
        "AWS::ApiGatewayV2::Stage" => (
            "DeleteStage",
            json!({"apiId": api(), "stageName": physical}),
        ),
        "AWS::ApiGatewayV2::Route" => ("DeleteRoute", json!({"apiId": api(), "routeId": physical})),
        "AWS::ApiGatewayV2::Integration" => (
            "DeleteIntegration",
            json!({"apiId": api(), "integrationId": physical}),
        ),
        "AWS::ApiGatewayV2::VpcLink" => ("DeleteVpcLink", json!({"vpcLinkId": physical})),
        "AWS::ApiGatewayV2::Authorizer" => (
            "DeleteAuthorizer",
            json!({"apiId": api(), "authorizerId": physical}),
        ),
        "AWS::ApiGatewayV2::Deployment" => (
            "DeleteDeployment",
            json!({"apiId": api(), "deploymentId": physical}),
        ),
        other => return Err(unsupported(other)),
    };
    cx.delete_call(Service::ApiGatewayV2, op, input).await
}
