//! Providers with one or two calls each: `AWS::CDK::Metadata` (a record, no side effects),
//! `AWS::CloudFormation::WaitConditionHandle`, `AWS::SSM::Parameter`, `AWS::Logs::LogGroup`.

use super::{prop_str, required, text, unsupported, Done, Failure, PResult, Pcx};
use portico_core::Service;
use serde_json::{json, Map, Value};

pub(super) async fn create(cx: &Pcx<'_>, ty: &str, props: &Value) -> PResult<Done> {
    match ty {
        "AWS::CDK::Metadata" | "AWS::CloudFormation::WaitConditionHandle" => {
            let id = portico_core::ids::uuid();
            let mut attrs = Map::new();
            attrs.insert("Id".into(), json!(id));
            Ok(Done {
                physical: id,
                attrs,
            })
        }
        "AWS::SSM::Parameter" => {
            let name = prop_str(props, "Name")
                .unwrap_or_else(|| format!("CFN-{}", super::generated_name("", cx.logical, 2048)));
            put_parameter(cx, &name, props, false).await?;
            Ok(ssm_done(name, props))
        }
        "AWS::Logs::LogGroup" => {
            let name = prop_str(props, "LogGroupName").unwrap_or_else(|| cx.name(512));
            let mut input = json!({ "logGroupName": name });
            input["tags"] = Value::Object(tag_map(&cx.auto_tag_list(props)));
            if let Some(k) = prop_str(props, "KmsKeyId") {
                input["kmsKeyId"] = json!(k);
            }
            if let Some(c) = prop_str(props, "LogGroupClass") {
                input["logGroupClass"] = json!(c);
            }
            cx.call(Service::Logs, "CreateLogGroup", input).await?;
            if let Some(r) = props.get("RetentionInDays") {
                retention(cx, &name, Some(r))
                    .await
                    .map_err(|f| f.with_physical(&name))?;
            }
            Ok(log_group_done(cx, name))
        }
        other => Err(unsupported(other)),
    }
}

fn ssm_done(name: String, props: &Value) -> Done {
    let mut attrs = Map::new();
    attrs.insert(
        "Type".into(),
        json!(prop_str(props, "Type").unwrap_or_default()),
    );
    attrs.insert(
        "Value".into(),
        json!(prop_str(props, "Value").unwrap_or_default()),
    );
    Done {
        physical: name,
        attrs,
    }
}

fn log_group_done(cx: &Pcx<'_>, name: String) -> Done {
    let mut attrs = Map::new();
    attrs.insert(
        "Arn".into(),
        json!(cx.rc.arn("logs", &format!("log-group:{name}:*"))),
    );
    Done {
        physical: name,
        attrs,
    }
}

/// `[{Key, Value}]` -> `{Key: Value}` (Logs, API Gateway and SSM-style tag maps).
pub(super) fn tag_map(list: &[Value]) -> Map<String, Value> {
    list.iter()
        .filter_map(|t| {
            Some((
                t.get("Key")?.as_str()?.to_string(),
                json!(text(t.get("Value")?)),
            ))
        })
        .collect()
}

async fn retention(cx: &Pcx<'_>, name: &str, days: Option<&Value>) -> PResult<()> {
    match days {
        Some(d) => {
            let n: i64 = text(d).parse().map_err(|_| {
                Failure::msg(format!(
                    "Properties validation failed for resource {} with message: #/RetentionInDays: expected type: Integer, found: String",
                    cx.logical
                ))
            })?;
            cx.call(
                Service::Logs,
                "PutRetentionPolicy",
                json!({"logGroupName": name, "retentionInDays": n}),
            )
            .await?;
        }
        None => {
            cx.call(
                Service::Logs,
                "DeleteRetentionPolicy",
                json!({"logGroupName": name}),
            )
            .await?;
        }
    }
    Ok(())
}

async fn put_parameter(cx: &Pcx<'_>, name: &str, props: &Value, overwrite: bool) -> PResult<()> {
    let mut input = json!({
        "Name": name,
        "Value": text(&required(props, "Value")?),
        "Type": text(&required(props, "Type")?),
    });
    for k in ["Description", "AllowedPattern", "Tier", "DataType"] {
        if let Some(v) = prop_str(props, k) {
            input[k] = json!(v);
        }
    }
    if overwrite {
        input["Overwrite"] = json!(true);
    } else if let Some(Value::Object(tags)) = props.get("Tags") {
        input["Tags"] = Value::Array(
            tags.iter()
                .map(|(k, v)| json!({"Key": k, "Value": text(v)}))
                .collect(),
        );
    }
    cx.call(Service::Ssm, "PutParameter", input).await?;
    Ok(())
}

pub(super) async fn update(
    cx: &Pcx<'_>,
    ty: &str,
    physical: &str,
    old: &Value,
    new: &Value,
    attrs: &Map<String, Value>,
) -> PResult<Done> {
    match ty {
        "AWS::CDK::Metadata" | "AWS::CloudFormation::WaitConditionHandle" => {
            Ok(Done::existing(physical, attrs))
        }
        "AWS::SSM::Parameter" => {
            put_parameter(cx, physical, new, true).await?;
            Ok(ssm_done(physical.to_string(), new))
        }
        "AWS::Logs::LogGroup" => {
            if old.get("RetentionInDays") != new.get("RetentionInDays") {
                retention(cx, physical, new.get("RetentionInDays")).await?;
            }
            Ok(log_group_done(cx, physical.to_string()))
        }
        other => Err(unsupported(other)),
    }
}

pub(super) async fn delete(
    cx: &Pcx<'_>,
    ty: &str,
    physical: &str,
    _props: &Value,
    _attrs: &Map<String, Value>,
) -> PResult<()> {
    match ty {
        "AWS::CDK::Metadata" | "AWS::CloudFormation::WaitConditionHandle" => Ok(()),
        "AWS::SSM::Parameter" => {
            cx.delete_call(Service::Ssm, "DeleteParameter", json!({"Name": physical}))
                .await
        }
        "AWS::Logs::LogGroup" => {
            cx.delete_call(
                Service::Logs,
                "DeleteLogGroup",
                json!({"logGroupName": physical}),
            )
            .await
        }
        other => Err(unsupported(other)),
    }
}
