//! STS: who the caller is (GetCallerIdentity, GetAccessKeyInfo) and temporary credentials for
//! an IAM role (AssumeRole) or for the caller itself (GetSessionToken). Sessions are remembered by access key id so that a client using the issued
//! keys is told it is the assumed role. Credentials are not checked on later calls unless
//! signature verification is on (the keys are not registered with the SigV4 verifier).

use crate::services::iam;
use crate::Ctx;
use portico_core::{time, AwsError, AwsResult, Input, Service};
use portico_store::Scope;
use rand::Rng;
use serde_json::{json, Value};

/// Issued sessions, keyed by access key id (account "" and region "": keys are global).
const KIND_SESSION: &str = "sts.session";

pub async fn dispatch(ctx: &Ctx<'_>, op: &str, input: Input) -> AwsResult<Value> {
    match op {
        "GetCallerIdentity" => get_caller_identity(ctx),
        "AssumeRole" => assume_role(ctx, &input),
        "GetSessionToken" => get_session_token(ctx, &input),
        "GetAccessKeyInfo" => get_access_key_info(ctx, &input),
        _ => Err(Service::Sts.unknown_operation(op)),
    }
}

fn sessions() -> Scope {
    Scope::new("", "")
}

fn get_caller_identity(ctx: &Ctx<'_>) -> AwsResult<Value> {
    if let Some(key) = &ctx.rc.access_key_id {
        let session = ctx
            .store()
            .read(|tx| Ok(tx.get(&sessions(), KIND_SESSION, key)?))?;
        if let Some(s) = session {
            return Ok(json!({
                "UserId": s.body.get("AssumedRoleId"),
                "Account": s.body.get("Account"),
                "Arn": s.body.get("Arn"),
            }));
        }
    }
    let account = &ctx.rc.account_id;
    Ok(json!({
        "UserId": ctx.rc.access_key_id.clone().unwrap_or_else(|| "AKIAIOSFODNN7EXAMPLE".into()),
        "Account": account,
        "Arn": format!("arn:{}:iam::{account}:root", ctx.rc.partition()),
    }))
}

fn random(chars: &[u8], n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| chars[rng.gen_range(0..chars.len())] as char)
        .collect()
}

fn assume_role(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let arn = input.req_str("RoleArn", "ValidationError")?;
    let session = input.req_str("RoleSessionName", "ValidationError")?;
    let ok_session = (2..=64).contains(&session.len())
        && session
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if !ok_session {
        return Err(AwsError::validation(
            "ValidationError",
            &[format!("Value '{session}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*")],
        ));
    }
    let duration = input
        .i64("DurationSeconds")
        .map_err(|raw| AwsError::bad("ValidationError", format!("Invalid DurationSeconds {raw}")))?
        .unwrap_or(3600);
    if let Some(p) = input.str("Policy") {
        iam::check_policy(p)?;
    }
    let caller = format!("arn:{}:iam::{}:root", ctx.rc.partition(), ctx.rc.account_id);
    ctx.store().write(|tx| {
        let role = iam::role_by_arn(tx, arn)?.ok_or_else(|| {
            AwsError::new(
                403,
                "AccessDenied",
                format!("User: {caller} is not authorized to perform: sts:AssumeRole on resource: {arn}"),
            )
        })?;
        let max = role
            .get("MaxSessionDuration")
            .and_then(Value::as_i64)
            .unwrap_or(3600);
        if duration < 900 {
            return Err(AwsError::validation(
                "ValidationError",
                &[format!("Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900")],
            ));
        }
        if duration > max {
            return Err(AwsError::bad(
                "ValidationError",
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
            ));
        }
        let role_name = role.get("RoleName").and_then(Value::as_str).unwrap_or_default();
        let role_id = role.get("RoleId").and_then(Value::as_str).unwrap_or_default();
        let account = arn.split(':').nth(4).unwrap_or_default();
        let (key, secret, token) = new_keys();
        let assumed_id = format!("{role_id}:{session}");
        let assumed_arn = format!(
            "arn:{}:sts::{account}:assumed-role/{role_name}/{session}",
            ctx.rc.partition()
        );
        let expiration = time::iso_seconds(time::now_millis() + duration * 1000);
        tx.put(
            &sessions(),
            KIND_SESSION,
            &key,
            None,
            None,
            &json!({"AssumedRoleId": assumed_id, "Arn": assumed_arn, "Account": account, "Expiration": expiration}),
        )?;
        let mut out = json!({
            "Credentials": {"AccessKeyId": key, "SecretAccessKey": secret, "SessionToken": token, "Expiration": expiration},
            "AssumedRoleUser": {"AssumedRoleId": assumed_id, "Arn": assumed_arn},
        });
        if input.has("Policy") {
            out["PackedPolicySize"] = json!(6);
        }
        Ok(out)
    })
}

fn new_keys() -> (String, String, String) {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    (iam::iam_id("ASIA", 16), random(B64, 40), random(B64, 356))
}

fn get_session_token(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let duration = input
        .i64("DurationSeconds")
        .map_err(|raw| AwsError::bad("ValidationError", format!("Invalid DurationSeconds {raw}")))?
        .unwrap_or(43_200);
    if !(900..=129_600).contains(&duration) {
        return Err(AwsError::validation(
            "ValidationError",
            &[format!("Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 129600")],
        ));
    }
    let (key, secret, token) = new_keys();
    let account = ctx.rc.account_id.clone();
    let arn = format!("arn:{}:iam::{account}:root", ctx.rc.partition());
    let expiration = time::iso_seconds(time::now_millis() + duration * 1000);
    ctx.store().write(|tx| {
        tx.put(
            &sessions(),
            KIND_SESSION,
            &key,
            None,
            None,
            &json!({"AssumedRoleId": account, "Arn": arn, "Account": account, "Expiration": expiration}),
        )?;
        Ok(())
    })?;
    Ok(
        json!({"Credentials": {"AccessKeyId": key, "SecretAccessKey": secret, "SessionToken": token, "Expiration": expiration}}),
    )
}

/// The account an access key belongs to: an issued temporary key's account, a 12-digit key's
/// own number, or the default account.
fn get_access_key_info(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let key = input.req_str("AccessKeyId", "ValidationError")?;
    if key.len() < 16 {
        return Err(AwsError::validation(
            "ValidationError",
            &[format!("Value '{key}' at 'accessKeyId' failed to satisfy constraint: Member must have length greater than or equal to 16")],
        ));
    }
    let session = ctx
        .store()
        .read(|tx| Ok(tx.get(&sessions(), KIND_SESSION, key)?))?;
    let account = match session {
        Some(s) => s.body.get("Account").cloned().unwrap_or(json!("")),
        None => json!(portico_core::context::account_for_key(
            Some(key),
            &ctx.control.config().default_account
        )),
    };
    Ok(json!({"Account": account}))
}
