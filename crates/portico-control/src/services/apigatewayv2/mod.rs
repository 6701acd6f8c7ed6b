//! API Gateway v2 (HTTP APIs): operations and the restJson1 route table.

use super::RestRoute;
use crate::Ctx;
use portico_core::{AwsResult, Input, Service};
use serde_json::Value;

/// Method, URI template, operation, success status.
pub const ROUTES: &[RestRoute] = &[];

pub async fn dispatch(_ctx: &Ctx<'_>, op: &str, _input: Input) -> AwsResult<Value> {
    Err(Service::ApiGatewayV2.unknown_operation(op))
}
