//! Ec2: operations. Unknown or not-yet-built operations answer the protocol's
//! unknown-operation error, never a fake success.

pub mod shared;

use crate::Ctx;
use portico_core::{AwsResult, Input, Service};
use serde_json::Value;

pub async fn dispatch(_ctx: &Ctx<'_>, op: &str, _input: Input) -> AwsResult<Value> {
    Err(Service::Ec2.unknown_operation(op))
}
