//! Dispatch from (service, operation) to the operation's async fn, and the restJson1 route
//! tables. Each service lives in its own module and owns its store kinds (prefixed with the
//! service name: `ec2.vpc`, `apigw.api`, ...).

pub mod apigatewayv2;
pub mod ec2;
pub mod ecs;
pub mod elbv2;
pub mod iam;
pub mod logs;
pub mod ssm;
pub mod sts;
pub mod tags;

use crate::Ctx;
use portico_core::{AwsResult, Input, Service};
use serde_json::Value;

pub async fn dispatch(ctx: &Ctx<'_>, service: Service, op: &str, input: Input) -> AwsResult<Value> {
    match service {
        Service::ApiGatewayV2 => apigatewayv2::dispatch(ctx, op, input).await,
        Service::Ec2 => ec2::dispatch(ctx, op, input).await,
        Service::Elbv2 => elbv2::dispatch(ctx, op, input).await,
        Service::Ecs => ecs::dispatch(ctx, op, input).await,
        Service::Iam => iam::dispatch(ctx, op, input).await,
        Service::Sts => sts::dispatch(ctx, op, input).await,
        Service::Ssm => ssm::dispatch(ctx, op, input).await,
        Service::Logs => logs::dispatch(ctx, op, input).await,
        Service::CloudFormation => Err(service.unknown_operation(op)),
    }
}

/// A restJson1 operation matched from method and path.
#[derive(Debug, Clone, PartialEq)]
pub struct RestMatch {
    pub operation: &'static str,
    pub labels: Vec<(String, String)>,
    pub status: u16,
}

/// One restJson1 route: method, URI template (path part only), operation, success status.
pub type RestRoute = (&'static str, &'static str, &'static str, u16);

pub fn rest_route(service: Service, method: &str, raw_path: &str) -> Option<RestMatch> {
    let table: &[RestRoute] = match service {
        Service::ApiGatewayV2 => apigatewayv2::ROUTES,
        _ => return None,
    };
    table.iter().find_map(|(m, t, op, status)| {
        if *m != method {
            return None;
        }
        portico_wire::rest::match_template(t, raw_path).map(|labels| RestMatch {
            operation: op,
            labels,
            status: *status,
        })
    })
}

/// The input of a restJson1 call: body members, then query members, then path labels.
pub fn rest_input(body: Value, query: &[(String, String)], labels: &[(String, String)]) -> Input {
    let mut obj = match body {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    for (k, v) in query {
        match obj.get_mut(k) {
            Some(Value::Array(a)) => a.push(Value::String(v.clone())),
            Some(existing) if k == "tagKeys" => {
                let prev = existing.take();
                *existing = Value::Array(vec![prev, Value::String(v.clone())]);
            }
            _ => {
                let val = if k == "tagKeys" {
                    Value::Array(vec![Value::String(v.clone())])
                } else {
                    Value::String(v.clone())
                };
                obj.insert(k.clone(), val);
            }
        }
    }
    for (k, v) in labels {
        obj.insert(k.clone(), Value::String(v.clone()));
    }
    Input(Value::Object(obj))
}
