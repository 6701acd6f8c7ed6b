//! STS: who the caller is (GetCallerIdentity). AssumeRole arrives with the IAM work.

use crate::Ctx;
use portico_core::{AwsResult, Input, Service};
use serde_json::{json, Value};

pub async fn dispatch(ctx: &Ctx<'_>, op: &str, _input: Input) -> AwsResult<Value> {
    match op {
        "GetCallerIdentity" => Ok(get_caller_identity(ctx)),
        _ => Err(Service::Sts.unknown_operation(op)),
    }
}

fn get_caller_identity(ctx: &Ctx<'_>) -> Value {
    let account = &ctx.rc.account_id;
    json!({
        "UserId": ctx.rc.access_key_id.clone().unwrap_or_else(|| "AKIAIOSFODNN7EXAMPLE".into()),
        "Account": account,
        "Arn": format!("arn:{}:iam::{account}:root", ctx.rc.partition()),
    })
}
