//! SSM Parameter Store (awsJson 1.1): String, StringList and SecureString parameters with
//! versions, labels, tags, hierarchies (GetParametersByPath) and DescribeParameters filters.
//!
//! A fresh account-region has `/cdk-bootstrap/hnb659fds/version` (see [`CDK_BOOTSTRAP_VERSION`])
//! so CDK-synthesised templates, which read it through an `AWS::SSM::Parameter::Value<String>`
//! parameter, deploy without `cdk bootstrap`. It is seeded once, on the first SSM call in that
//! account and region; deleting it is honoured.
//!
//! SecureString values are stored as given (no KMS); without `WithDecryption` they come back as
//! an opaque base64 blob, as AWS returns ciphertext. `AllowedPattern` is stored, not enforced.
//!
//! Store kind: `ssm.param` (account, region), id = parameter name, body = the parameter with its
//! version history in `_history`.

use crate::Ctx;
use base64::Engine;
use portico_core::context::partition_of;
use portico_core::{time, AwsError, AwsResult, Input, Service};
use portico_store::{Scope, Tx};
use serde_json::{json, Value};

const KIND_PARAM: &str = "ssm.param";
const KIND_SEED: &str = "ssm.seed";

/// The bootstrap version CDK's `CheckBootstrapVersion` rule and asset roles read.
pub const CDK_BOOTSTRAP_VERSION: &str = "21";
const CDK_BOOTSTRAP_PARAM: &str = "/cdk-bootstrap/hnb659fds/version";

pub async fn dispatch(ctx: &Ctx<'_>, op: &str, input: Input) -> AwsResult<Value> {
    let scope = &ctx.scope;
    let store = ctx.store();
    let known = matches!(
        op,
        "PutParameter"
            | "GetParameter"
            | "GetParameters"
            | "GetParametersByPath"
            | "DeleteParameter"
            | "DeleteParameters"
            | "DescribeParameters"
            | "GetParameterHistory"
            | "LabelParameterVersion"
            | "AddTagsToResource"
            | "RemoveTagsFromResource"
            | "ListTagsForResource"
    );
    if !known {
        return Err(Service::Ssm.unknown_operation(op));
    }
    if store.read(|tx| Ok(tx.get(scope, KIND_SEED, "cdk")?.is_none()))? {
        store.write(|tx| seed(tx, scope))?;
    }
    let i = &input;
    match op {
        "PutParameter" => store.write(|tx| put_parameter(tx, scope, i)),
        "GetParameter" => store.read(|tx| get_parameter(tx, scope, i)),
        "GetParameters" => store.read(|tx| get_parameters(tx, scope, i)),
        "GetParametersByPath" => store.read(|tx| get_parameters_by_path(tx, scope, i)),
        "DeleteParameter" => store.write(|tx| delete_parameter(tx, scope, i)),
        "DeleteParameters" => store.write(|tx| delete_parameters(tx, scope, i)),
        "DescribeParameters" => store.read(|tx| describe_parameters(tx, scope, i)),
        "GetParameterHistory" => store.read(|tx| get_parameter_history(tx, scope, i)),
        "LabelParameterVersion" => store.write(|tx| label_parameter_version(tx, scope, i)),
        "AddTagsToResource" => store.write(|tx| tags(tx, scope, i, TagOp::Add)),
        "RemoveTagsFromResource" => store.write(|tx| tags(tx, scope, i, TagOp::Remove)),
        _ => store.read(|tx| tags(tx, scope, i, TagOp::List)),
    }
}

fn seed(tx: &Tx<'_>, scope: &Scope) -> AwsResult<()> {
    tx.put(scope, KIND_SEED, "cdk", None, None, &json!({}))?;
    if tx.get(scope, KIND_PARAM, CDK_BOOTSTRAP_PARAM)?.is_none() {
        let input = Input(json!({
            "Name": CDK_BOOTSTRAP_PARAM, "Type": "String", "Value": CDK_BOOTSTRAP_VERSION,
            "Description": "The version of the bootstrap resources that are currently mastered in this stack (seeded by Portico)",
        }));
        put_parameter(tx, scope, &input)?;
    }
    Ok(())
}

fn validation(msg: impl Into<String>) -> AwsError {
    AwsError::bad("ValidationException", msg)
}

fn not_found(_name: &str) -> AwsError {
    AwsError::bad("ParameterNotFound", "")
}

fn s(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn arn(scope: &Scope, name: &str) -> String {
    format!(
        "arn:{}:ssm:{}:{}:parameter/{}",
        partition_of(&scope.region),
        scope.region,
        scope.account,
        name.trim_start_matches('/')
    )
}

/// Checks a parameter name as SSM does.
fn check_name(name: &str) -> AwsResult<()> {
    if name.is_empty() || name.len() > 2048 {
        return Err(validation(format!("1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: Member must have length less than or equal to 2048")));
    }
    let first = name.trim_start_matches('/').split('/').next().unwrap_or("");
    let lower = first.to_ascii_lowercase();
    if lower.starts_with("aws") || lower.starts_with("ssm") {
        return Err(validation(
            "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_",
        ));
    }
    if name.contains('/') && !name.starts_with('/') {
        return Err(validation("Parameter name must be a fully qualified name."));
    }
    if name.ends_with('/') || name.contains("//") {
        return Err(validation(
            "Parameter name must not end with a slash or contain empty path segments.",
        ));
    }
    let ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c));
    if !ok {
        return Err(validation(format!("Parameter name: {name} is invalid. It can contain only letters, numbers, and the following symbols .-_/")));
    }
    if name.matches('/').count() > 15 {
        return Err(AwsError::bad(
            "HierarchyLevelLimitExceededException",
            "Parameter path exceeds the maximum number of 15 levels.",
        ));
    }
    Ok(())
}

fn history(p: &Value) -> Vec<Value> {
    p.get("_history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn put_parameter(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let name = input.req_str("Name", "ValidationException")?;
    check_name(name)?;
    let value = input.req_str("Value", "ValidationException")?;
    let tier = input.str("Tier").unwrap_or("Standard");
    let max_len = if tier == "Advanced" { 8192 } else { 4096 };
    if value.is_empty() || value.len() > max_len {
        return Err(validation(format!(
            "1 validation error detected: Value at 'value' failed to satisfy constraint: Member must have length {}",
            if value.is_empty() { "greater than or equal to 1".to_string() } else { format!("less than or equal to {max_len}") }
        )));
    }
    if let Some(t) = input.str("Type") {
        if !matches!(t, "String" | "StringList" | "SecureString") {
            return Err(validation(format!("1 validation error detected: Value '{t}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [SecureString, StringList, String]")));
        }
    }
    if !matches!(tier, "Standard" | "Advanced" | "Intelligent-Tiering") {
        return Err(validation(format!("1 validation error detected: Value '{tier}' at 'tier' failed to satisfy constraint: Member must satisfy enum value set: [Advanced, Intelligent-Tiering, Standard]")));
    }
    let data_type = input.str("DataType").unwrap_or("text");
    if !matches!(data_type, "text" | "aws:ec2:image" | "aws:ssm:integration") {
        return Err(validation(format!("The following data type is not supported: {data_type} (Data type names are all lowercase.)")));
    }
    let overwrite = input.bool("Overwrite").ok().flatten() == Some(true);
    let existing = tx.get(scope, KIND_PARAM, name)?.map(|r| r.body);
    let now = time::now_millis();
    let mut p = match existing {
        Some(p) => {
            if !overwrite {
                return Err(AwsError::bad(
                    "ParameterAlreadyExists",
                    "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.",
                ));
            }
            if input.has("Tags") {
                return Err(validation(
                    "Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove overwrite flag. To update tags for an existing parameter, please use AddTagsToResource or RemoveTagsFromResource.",
                ));
            }
            p
        }
        None => {
            if input.str("Type").is_none() {
                return Err(validation(
                    "A parameter type is required when you create a parameter.",
                ));
            }
            let given = input.list("Tags").unwrap_or_default();
            let mut bad = Vec::new();
            tag_list_violations(&given, &mut bad);
            violations(bad)?;
            for t in &given {
                if let Some(k) = t.str("Key") {
                    check_tag_key(k)?;
                }
            }
            let tags: Vec<Value> = given
                .iter()
                .filter_map(|t| Some(json!({"Key": t.string("Key")?, "Value": t.string("Value").unwrap_or_default()})))
                .collect();
            json!({"Name": name, "Tags": tags, "_history": []})
        }
    };
    let typ = input
        .str("Type")
        .map(str::to_string)
        .unwrap_or_else(|| s(&p, "Type"));
    let mut hist = history(&p);
    let version = hist
        .last()
        .and_then(|h| h.get("Version"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
        + 1;
    p["Type"] = json!(typ);
    p["Tier"] = json!(if tier == "Intelligent-Tiering" {
        "Standard"
    } else {
        tier
    });
    p["DataType"] = json!(data_type);
    p["Version"] = json!(version);
    p["LastModified"] = json!(now);
    if let Some(d) = input.string("Description") {
        p["Description"] = json!(d);
    }
    if let Some(a) = input.string("AllowedPattern") {
        p["AllowedPattern"] = json!(a);
    }
    if typ == "SecureString" {
        p["KeyId"] = json!(input.str("KeyId").unwrap_or("alias/aws/ssm"));
    } else if let Some(o) = p.as_object_mut() {
        o.remove("KeyId");
    }
    let mut entry = json!({
        "Version": version, "Value": value, "Type": typ, "LastModified": now,
        "Labels": [], "Tier": p["Tier"], "DataType": data_type,
    });
    for k in ["Description", "AllowedPattern", "KeyId"] {
        if let Some(v) = p.get(k) {
            entry[k] = v.clone();
        }
    }
    hist.push(entry);
    if hist.len() > 100 {
        hist.remove(0);
    }
    p["_history"] = json!(hist);
    tx.put(scope, KIND_PARAM, name, None, None, &p)?;
    Ok(json!({"Version": version, "Tier": p["Tier"]}))
}

/// `name`, `name:3` (a version) or `name:label`.
fn split_selector(raw: &str) -> (&str, Option<&str>) {
    match raw.rsplit_once(':') {
        Some((n, sel)) if !n.is_empty() => (n, Some(sel)),
        _ => (raw, None),
    }
}

fn shown_value(entry: &Value, decrypt: bool) -> String {
    let v = s(entry, "Value");
    if s(entry, "Type") == "SecureString" && !decrypt {
        base64::engine::general_purpose::STANDARD.encode(format!("portico-secure:{v}"))
    } else {
        v
    }
}

fn render(scope: &Scope, p: &Value, entry: &Value, selector: Option<&str>, decrypt: bool) -> Value {
    let name = s(p, "Name");
    let mut v = json!({
        "Name": name, "Type": entry.get("Type"), "Value": shown_value(entry, decrypt),
        "Version": entry.get("Version"),
        "LastModifiedDate": time::epoch_seconds(entry.get("LastModified").and_then(Value::as_i64).unwrap_or(0)),
        "ARN": arn(scope, &name), "DataType": entry.get("DataType").cloned().unwrap_or(json!("text")),
    });
    if let Some(sel) = selector {
        v["Selector"] = json!(format!(":{sel}"));
    }
    v
}

/// Resolves a name with an optional selector to (parameter, history entry).
fn resolve(tx: &Tx<'_>, scope: &Scope, raw: &str) -> AwsResult<(Value, Value, Option<String>)> {
    let (name, sel) = split_selector(raw);
    let p = tx
        .get(scope, KIND_PARAM, name)?
        .ok_or_else(|| not_found(name))?
        .body;
    let hist = history(&p);
    let entry = match sel {
        None => hist.last().cloned(),
        Some(sel) => match sel.parse::<i64>() {
            Ok(n) => hist
                .iter()
                .find(|h| h.get("Version").and_then(Value::as_i64) == Some(n))
                .cloned()
                .ok_or_else(|| {
                    AwsError::bad(
                        "ParameterVersionNotFound",
                        format!("Systems Manager could not find version {n} of {name}. Verify the version and try again."),
                    )
                })
                .map(Some)?,
            Err(_) => hist
                .iter()
                .find(|h| {
                    h.get("Labels")
                        .and_then(Value::as_array)
                        .is_some_and(|l| l.iter().any(|x| x.as_str() == Some(sel)))
                })
                .cloned()
                .ok_or_else(|| {
                    AwsError::bad(
                        "ParameterVersionLabelNotFound",
                        format!("Systems Manager could not find label {sel} of {name}. Verify the label and try again."),
                    )
                })
                .map(Some)?,
        },
    }
    .ok_or_else(|| not_found(name))?;
    Ok((p, entry, sel.map(str::to_string)))
}

fn decrypt(input: &Input) -> bool {
    input.bool("WithDecryption").ok().flatten() == Some(true)
}

fn get_parameter(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let raw = input.req_str("Name", "ValidationException")?;
    let (p, entry, sel) = resolve(tx, scope, raw)?;
    Ok(json!({"Parameter": render(scope, &p, &entry, sel.as_deref(), decrypt(input))}))
}

fn get_parameters(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let names = input.str_list("Names").unwrap_or_default();
    if names.is_empty() || names.len() > 10 {
        return Err(validation(format!("1 validation error detected: Value '{names:?}' at 'names' failed to satisfy constraint: Member must have length less than or equal to 10")));
    }
    let mut found = Vec::new();
    let mut invalid = Vec::new();
    for n in names {
        match resolve(tx, scope, &n) {
            Ok((p, entry, sel)) => {
                found.push(render(scope, &p, &entry, sel.as_deref(), decrypt(input)))
            }
            Err(e) if e.status == 400 && e.code != "InternalFailure" => invalid.push(json!(n)),
            Err(e) => return Err(e),
        }
    }
    Ok(json!({"Parameters": found, "InvalidParameters": invalid}))
}

fn page(
    input: &Input,
    items: Vec<Value>,
    default_max: i64,
    limit: i64,
) -> AwsResult<(Vec<Value>, Option<String>)> {
    let max = input
        .i64("MaxResults")
        .map_err(|raw| validation(format!("Invalid MaxResults {raw}")))?
        .unwrap_or(default_max);
    if !(1..=limit).contains(&max) {
        return Err(validation(format!("1 validation error detected: Value '{max}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to {limit}")));
    }
    let start = match input.str("NextToken") {
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| AwsError::bad("InvalidNextToken", "The specified token isn't valid."))?,
        None => 0,
    };
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(start).take(max as usize).collect();
    let end = start + page.len();
    Ok((page, (end < total).then(|| end.to_string())))
}

/// ParameterFilters (`Key`, `Option`, `Values`) on a parameter.
fn filter_matches(p: &Value, filters: &[Input]) -> AwsResult<bool> {
    for f in filters {
        let key = f.str("Key").unwrap_or_default();
        let option = f.str("Option").unwrap_or("Equals");
        let values = f.str_list("Values").unwrap_or_default();
        let name = s(p, "Name");
        let ok = match key {
            "Name" => values.iter().any(|v| match option {
                "BeginsWith" => name.starts_with(v.as_str()),
                "Contains" => name.contains(v.as_str()),
                _ => name == *v,
            }),
            "Type" => values.contains(&s(p, "Type")),
            "KeyId" => values.contains(&s(p, "KeyId")),
            "Tier" => values.contains(&s(p, "Tier")),
            "DataType" => values.contains(&s(p, "DataType")),
            "Label" => history(p).iter().any(|h| {
                h.get("Labels")
                    .and_then(Value::as_array)
                    .is_some_and(|l| l.iter().any(|x| values.iter().any(|v| x.as_str() == Some(v))))
            }),
            "Path" => values.iter().any(|v| {
                let prefix = if v.ends_with('/') { v.clone() } else { format!("{v}/") };
                match name.strip_prefix(prefix.as_str()) {
                    Some(rest) => option == "Recursive" || !rest.contains('/'),
                    None => false,
                }
            }),
            k if k.starts_with("tag:") => {
                let tk = &k[4..];
                p.get("Tags").and_then(Value::as_array).is_some_and(|t| {
                    t.iter().any(|x| {
                        x.get("Key").and_then(Value::as_str) == Some(tk)
                            && (values.is_empty()
                                || values
                                    .iter()
                                    .any(|v| x.get("Value").and_then(Value::as_str) == Some(v)))
                    })
                })
            }
            other => {
                return Err(AwsError::bad(
                    "InvalidFilterKey",
                    format!("The following filter key is not valid: {other}. Valid filter keys include: [Path, Name, Type, KeyId, Tier, Label, DataType, tag:]."),
                ))
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn get_parameters_by_path(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let path = input.req_str("Path", "ValidationException")?;
    if !path.starts_with('/') {
        return Err(validation(
            "The parameter doesn't meet the parameter name requirements. The parameter name must begin with a forward slash \"/\".",
        ));
    }
    let recursive = input.bool("Recursive").ok().flatten() == Some(true);
    let filters = input.list("ParameterFilters").unwrap_or_default();
    let prefix = if path.ends_with('/') {
        path.to_string()
    } else {
        format!("{path}/")
    };
    let mut out = Vec::new();
    for r in tx.list(scope, KIND_PARAM, None)? {
        let Some(rest) = r.id.strip_prefix(prefix.as_str()) else {
            continue;
        };
        if !recursive && rest.contains('/') {
            continue;
        }
        if !filter_matches(&r.body, &filters)? {
            continue;
        }
        if let Some(last) = history(&r.body).last() {
            out.push(render(scope, &r.body, last, None, decrypt(input)));
        }
    }
    let (items, next) = page(input, out, 10, 10)?;
    let mut v = json!({"Parameters": items});
    if let Some(n) = next {
        v["NextToken"] = json!(n);
    }
    Ok(v)
}

fn delete_parameter(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let name = input.req_str("Name", "ValidationException")?;
    if !tx.delete(scope, KIND_PARAM, name)? {
        return Err(not_found(name));
    }
    Ok(json!({}))
}

fn delete_parameters(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let names = input.str_list("Names").unwrap_or_default();
    if names.is_empty() || names.len() > 10 {
        return Err(validation("1 validation error detected: Value at 'names' failed to satisfy constraint: Member must have length between 1 and 10"));
    }
    let mut deleted = Vec::new();
    let mut invalid = Vec::new();
    for n in names {
        if tx.delete(scope, KIND_PARAM, &n)? {
            deleted.push(json!(n));
        } else {
            invalid.push(json!(n));
        }
    }
    Ok(json!({"DeletedParameters": deleted, "InvalidParameters": invalid}))
}

fn metadata(scope: &Scope, p: &Value) -> Value {
    let mut v = json!({
        "Name": p.get("Name"), "ARN": arn(scope, &s(p, "Name")), "Type": p.get("Type"),
        "LastModifiedDate": time::epoch_seconds(p.get("LastModified").and_then(Value::as_i64).unwrap_or(0)),
        "LastModifiedUser": format!("arn:{}:iam::{}:root", partition_of(&scope.region), scope.account),
        "Version": p.get("Version"), "Tier": p.get("Tier"), "Policies": [], "DataType": p.get("DataType"),
    });
    for k in ["Description", "AllowedPattern", "KeyId"] {
        if let Some(x) = p.get(k) {
            v[k] = x.clone();
        }
    }
    v
}

fn describe_parameters(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let mut filters = input.list("ParameterFilters").unwrap_or_default();
    // The older `Filters` (Name/Type/KeyId with Values) mean Equals, except Name is BeginsWith.
    for f in input.list("Filters").unwrap_or_default() {
        let key = f.str("Key").unwrap_or_default().to_string();
        let option = if key == "Name" {
            "BeginsWith"
        } else {
            "Equals"
        };
        filters.push(Input(
            json!({"Key": key, "Option": option, "Values": f.get("Values")}),
        ));
    }
    let mut out = Vec::new();
    for r in tx.list(scope, KIND_PARAM, None)? {
        if filter_matches(&r.body, &filters)? {
            out.push(metadata(scope, &r.body));
        }
    }
    let (items, next) = page(input, out, 50, 50)?;
    let mut v = json!({"Parameters": items});
    if let Some(n) = next {
        v["NextToken"] = json!(n);
    }
    Ok(v)
}

fn get_parameter_history(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let name = input.req_str("Name", "ValidationException")?;
    let p = tx
        .get(scope, KIND_PARAM, name)?
        .ok_or_else(|| not_found(name))?
        .body;
    let out: Vec<Value> = history(&p)
        .iter()
        .map(|h| {
            let mut v = json!({
                "Name": name, "Type": h.get("Type"), "Value": shown_value(h, decrypt(input)),
                "Version": h.get("Version"), "Labels": h.get("Labels"), "Tier": h.get("Tier"),
                "LastModifiedDate": time::epoch_seconds(h.get("LastModified").and_then(Value::as_i64).unwrap_or(0)),
                "LastModifiedUser": format!("arn:{}:iam::{}:root", partition_of(&scope.region), scope.account),
                "Policies": [], "DataType": h.get("DataType"),
            });
            for k in ["Description", "AllowedPattern", "KeyId"] {
                if let Some(x) = h.get(k) {
                    v[k] = x.clone();
                }
            }
            v
        })
        .collect();
    let (items, next) = page(input, out, 50, 50)?;
    let mut v = json!({"Parameters": items});
    if let Some(n) = next {
        v["NextToken"] = json!(n);
    }
    Ok(v)
}

fn label_parameter_version(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let name = input.req_str("Name", "ValidationException")?;
    let mut p = tx
        .get(scope, KIND_PARAM, name)?
        .ok_or_else(|| not_found(name))?
        .body;
    let labels = input.str_list("Labels").unwrap_or_default();
    let mut hist = history(&p);
    let version = match input
        .i64("ParameterVersion")
        .map_err(|raw| validation(format!("Invalid ParameterVersion {raw}")))?
    {
        Some(v) => v,
        None => hist
            .last()
            .and_then(|h| h.get("Version"))
            .and_then(Value::as_i64)
            .unwrap_or(1),
    };
    let Some(idx) = hist
        .iter()
        .position(|h| h.get("Version").and_then(Value::as_i64) == Some(version))
    else {
        return Err(AwsError::bad(
            "ParameterVersionNotFound",
            format!("Systems Manager could not find version {version} of {name}. Verify the version and try again."),
        ));
    };
    let mut invalid = Vec::new();
    let mut good = Vec::new();
    for l in labels {
        let bad = l.is_empty()
            || l.len() > 100
            || l.parse::<i64>().is_ok()
            || l.to_ascii_lowercase().starts_with("aws")
            || l.to_ascii_lowercase().starts_with("ssm")
            || !l
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if bad {
            invalid.push(json!(l));
        } else {
            good.push(l);
        }
    }
    for (i, h) in hist.iter_mut().enumerate() {
        let mut ls: Vec<Value> = h
            .get("Labels")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        ls.retain(|x| !good.iter().any(|g| x.as_str() == Some(g)));
        if i == idx {
            ls.extend(good.iter().map(|g| json!(g)));
            if ls.len() > 10 {
                return Err(AwsError::bad(
                    "ParameterVersionLabelLimitExceeded",
                    "A parameter version can have maximum 10 labels.",
                ));
            }
        }
        h["Labels"] = json!(ls);
    }
    p["_history"] = json!(hist);
    tx.put(scope, KIND_PARAM, name, None, None, &p)?;
    Ok(json!({"InvalidLabels": invalid, "ParameterVersion": version}))
}

/// A tag key a client may neither set nor remove: AWS's reserved `aws:` prefix, in any case
/// (the shared rule in `services::tags`; CloudFormation may set its own keys). The code and
/// message are unconfirmed (docs/fidelity-s3.md): SSM's model lists no tag error for
/// AddTagsToResource, and ValidationException is its code for invalid input.
fn check_tag_key(key: &str) -> AwsResult<()> {
    if crate::services::tags::refused(key) {
        return Err(validation(format!(
            "Invalid tag key '{key}': tag keys starting with 'aws:' are reserved for AWS use."
        )));
    }
    Ok(())
}

/// The pattern SSM's model gives tag keys and values.
const TAG_PATTERN: &str = r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$";

/// Whether `s` matches [`TAG_PATTERN`]: letters, separators (`\p{Z}`: whitespace that is not a
/// control character), numbers and `_.:/=+-@`. (`char::is_alphabetic` also admits a few
/// combining marks that `\p{L}` does not.)
fn tag_pattern_ok(s: &str) -> bool {
    s.chars().all(|c| {
        c.is_alphabetic()
            || c.is_numeric()
            || (c.is_whitespace() && !c.is_control())
            || "_.:/=+-@".contains(c)
    })
}

/// The model's constraints on one tag key or value at `path` (awsJson validation messages).
fn tag_string(v: Option<&str>, path: &str, min: usize, max: usize, out: &mut Vec<String>) {
    let Some(v) = v else {
        out.push(format!(
            "Value null at '{path}' failed to satisfy constraint: Member must not be null"
        ));
        return;
    };
    let n = v.chars().count();
    let mut fail = |c: String| {
        out.push(format!(
            "Value '{v}' at '{path}' failed to satisfy constraint: Member {c}"
        ))
    };
    if n < min {
        fail(format!("must have length greater than or equal to {min}"));
    }
    if n > max {
        fail(format!("must have length less than or equal to {max}"));
    }
    if !tag_pattern_ok(v) {
        fail(format!(
            "must satisfy regular expression pattern: {TAG_PATTERN}"
        ));
    }
}

/// The model's constraints on a `Tags` list (`tags.N.member.key`/`.value`, both required).
fn tag_list_violations(tags: &[Input], out: &mut Vec<String>) {
    for (i, t) in tags.iter().enumerate() {
        let at = format!("tags.{}.member", i + 1);
        tag_string(t.str("Key"), &format!("{at}.key"), 1, 128, out);
        tag_string(t.str("Value"), &format!("{at}.value"), 0, 256, out);
    }
}

/// `Err` with all `violations` in one awsJson validation message, if there are any.
fn violations(violations: Vec<String>) -> AwsResult<()> {
    if violations.is_empty() {
        return Ok(());
    }
    Err(AwsError::validation("ValidationException", &violations))
}

const RESOURCE_TYPES_FOR_TAGGING: [&str; 9] = [
    "Document",
    "ManagedInstance",
    "MaintenanceWindow",
    "Parameter",
    "PatchBaseline",
    "OpsItem",
    "OpsMetadata",
    "Automation",
    "Association",
];

enum TagOp {
    Add,
    Remove,
    List,
}

fn tags(tx: &Tx<'_>, scope: &Scope, input: &Input, op: TagOp) -> AwsResult<Value> {
    // The model's constraints first, all in one message, as awsJson services answer.
    let mut bad = Vec::new();
    let null = |m: &str| {
        format!("Value null at '{m}' failed to satisfy constraint: Member must not be null")
    };
    let rt = input.str("ResourceType").unwrap_or_default();
    match input.str("ResourceType") {
        None => bad.push(null("resourceType")),
        Some(t) if !RESOURCE_TYPES_FOR_TAGGING.contains(&t) => bad.push(format!(
            "Value '{t}' at 'resourceType' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
            RESOURCE_TYPES_FOR_TAGGING.join(", ")
        )),
        Some(_) => {}
    }
    let id = input.str("ResourceId").unwrap_or_default();
    if input.str("ResourceId").is_none() {
        bad.push(null("resourceId"));
    }
    let given = match op {
        TagOp::Add => input.list("Tags").unwrap_or_else(|| {
            bad.push(null("tags"));
            Vec::new()
        }),
        _ => Vec::new(),
    };
    tag_list_violations(&given, &mut bad);
    let remove = match op {
        TagOp::Remove => input.str_list("TagKeys").unwrap_or_else(|| {
            bad.push(null("tagKeys"));
            Vec::new()
        }),
        _ => Vec::new(),
    };
    for (i, k) in remove.iter().enumerate() {
        tag_string(
            Some(k),
            &format!("tagKeys.{}.member", i + 1),
            1,
            128,
            &mut bad,
        );
    }
    violations(bad)?;
    if rt != "Parameter" {
        return Err(AwsError::bad(
            "InvalidResourceType",
            "The resource type is not valid.",
        ));
    }
    let mut p = tx
        .get(scope, KIND_PARAM, id)?
        .ok_or_else(|| AwsError::bad("InvalidResourceId", "The resource ID is not valid. Verify that you entered the correct ID and try again."))?
        .body;
    let mut list = p
        .get("Tags")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    match op {
        TagOp::List => return Ok(json!({"TagList": list})),
        TagOp::Add => {
            for t in &given {
                if let Some(k) = t.str("Key") {
                    check_tag_key(k)?;
                }
            }
            for t in given {
                let Some(k) = t.string("Key") else { continue };
                list.retain(|x| x.get("Key").and_then(Value::as_str) != Some(k.as_str()));
                list.push(json!({"Key": k, "Value": t.string("Value").unwrap_or_default()}));
            }
            // AWS's own `aws:` tags (CloudFormation's) do not count toward the 50.
            if crate::services::tags::counted(&list) > 50 {
                return Err(AwsError::bad(
                    "TooManyTagsError",
                    "The Targets parameter includes too many tags. Remove one or more tags and try the command again.",
                ));
            }
        }
        TagOp::Remove => {
            for k in &remove {
                check_tag_key(k)?;
            }
            list.retain(|x| {
                !remove
                    .iter()
                    .any(|k| x.get("Key").and_then(Value::as_str) == Some(k.as_str()))
            });
        }
    }
    p["Tags"] = json!(list);
    tx.put(scope, KIND_PARAM, id, None, None, &p)?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "a",
            "/a/b-c_d.e",
            "/cdk-bootstrap/hnb659fds/version",
            "plain",
        ] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["a/b", "/aws/x", "ssm-thing", "/a//b", "/a/", "/a b", ""] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(split_selector("/a/b:3"), ("/a/b", Some("3")));
        assert_eq!(split_selector("/a/b"), ("/a/b", None));
    }

    fn tag_call(store: &portico_store::Store, op: TagOp, input: Value) -> AwsResult<Value> {
        let scope = Scope::new("000000000000", "us-east-1");
        store.write(|tx| tags(tx, &scope, &Input(input), op))
    }

    fn tag_keys(store: &portico_store::Store) -> Vec<String> {
        let out = tag_call(
            store,
            TagOp::List,
            json!({"ResourceType": "Parameter", "ResourceId": "p"}),
        )
        .unwrap();
        out["TagList"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["Key"].as_str().unwrap().to_string())
            .collect()
    }

    #[tokio::test]
    async fn tags_refuse_reserved_keys_and_do_not_count_them() {
        let store = portico_store::Store::in_memory().unwrap();
        let scope = Scope::new("000000000000", "us-east-1");
        // A parameter CloudFormation created: its three aws:cloudformation:* tags.
        let cfn = Input(json!({
            "Name": "p", "Type": "String", "Value": "v",
            "Tags": crate::services::tags::CLOUDFORMATION_KEYS
                .iter()
                .map(|k| json!({"Key": k, "Value": "x"}))
                .collect::<Vec<_>>(),
        }));
        crate::services::tags::as_cloudformation(async {
            store.write(|tx| put_parameter(tx, &scope, &cfn))
        })
        .await
        .unwrap();
        assert_eq!(tag_keys(&store).len(), 3);
        let add = |keys: Vec<String>| {
            json!({"ResourceType": "Parameter", "ResourceId": "p",
                   "Tags": keys.iter().map(|k| json!({"Key": k, "Value": "v"})).collect::<Vec<_>>()})
        };
        // 50 of the client's own beside CloudFormation's 3.
        let fifty: Vec<String> = (0..50).map(|i| format!("k{i}")).collect();
        tag_call(&store, TagOp::Add, add(fifty)).unwrap();
        assert_eq!(tag_keys(&store).len(), 53);
        let e = tag_call(&store, TagOp::Add, add(vec!["k50".into()])).unwrap_err();
        assert_eq!(e.code.as_ref(), "TooManyTagsError");
        // Reserved keys: refused on add and remove, in any case, and nothing changes.
        for key in ["aws:x", "AWS:cloudformation:stack-name"] {
            let e = tag_call(&store, TagOp::Add, add(vec!["k0".into(), key.into()])).unwrap_err();
            assert_eq!(e.code.as_ref(), "ValidationException");
            assert!(e.message.contains(key), "{}", e.message);
        }
        let key = "aws:cloudformation:stack-name";
        let e = tag_call(
            &store,
            TagOp::Remove,
            json!({"ResourceType": "Parameter", "ResourceId": "p", "TagKeys": ["k1", key]}),
        )
        .unwrap_err();
        assert_eq!(e.code.as_ref(), "ValidationException");
        let keys = tag_keys(&store);
        assert!(keys.iter().any(|k| k == key) && keys.iter().any(|k| k == "k1"));
        assert_eq!(keys.len(), 53);
        // A client's PutParameter cannot set one either.
        let e = store
            .write(|tx| {
                put_parameter(
                    tx,
                    &scope,
                    &Input(json!({
                        "Name": "q", "Type": "String", "Value": "v",
                        "Tags": [{"Key": "aws:cloudformation:stack-id", "Value": "x"}],
                    })),
                )
            })
            .unwrap_err();
        assert_eq!(e.code.as_ref(), "ValidationException");
        // Required members.
        for (op, input, member) in [
            (
                TagOp::Add,
                json!({"ResourceType": "Parameter", "ResourceId": "p"}),
                "tags",
            ),
            (
                TagOp::Remove,
                json!({"ResourceType": "Parameter", "ResourceId": "p"}),
                "tagKeys",
            ),
        ] {
            let e = tag_call(&store, op, input).unwrap_err();
            assert!(e.message.contains(&format!("'{member}'")), "{}", e.message);
        }
    }

    #[test]
    fn tag_members_follow_the_model() {
        let store = portico_store::Store::in_memory().unwrap();
        let check = |op: TagOp, input: Value| -> String {
            let e = tag_call(&store, op, input).unwrap_err();
            assert_eq!(e.code.as_ref(), "ValidationException");
            e.message
        };
        let long = "k".repeat(129);
        assert_eq!(
            check(
                TagOp::Add,
                json!({"ResourceType": "Parameter", "ResourceId": "p",
                       "Tags": [{"Key": "ok", "Value": "v"}, {"Key": "a!b", "Value": "v"}, {"Key": long}]})
            ),
            format!(
                "3 validation errors detected: \
                 Value 'a!b' at 'tags.2.member.key' failed to satisfy constraint: Member must satisfy regular expression pattern: {TAG_PATTERN}; \
                 Value '{long}' at 'tags.3.member.key' failed to satisfy constraint: Member must have length less than or equal to 128; \
                 Value null at 'tags.3.member.value' failed to satisfy constraint: Member must not be null"
            )
        );
        assert_eq!(
            check(
                TagOp::Remove,
                json!({"ResourceType": "Bucket", "ResourceId": "p", "TagKeys": [""]})
            ),
            "2 validation errors detected: \
             Value 'Bucket' at 'resourceType' failed to satisfy constraint: Member must satisfy enum value set: \
             [Document, ManagedInstance, MaintenanceWindow, Parameter, PatchBaseline, OpsItem, OpsMetadata, Automation, Association]; \
             Value '' at 'tagKeys.1.member' failed to satisfy constraint: Member must have length greater than or equal to 1"
        );
        for ok in [
            "Team Name",
            "a_b.c:d/e=f+g-h@i",
            "Équipe",
            "チーム",
            "v1\u{2003}x",
            "",
        ] {
            assert!(tag_pattern_ok(ok), "{ok}");
        }
        for bad in [
            "a!b",
            "tab\there",
            "new\nline",
            "a*b",
            "quote\"",
            "semi;colon",
        ] {
            assert!(!tag_pattern_ok(bad), "{bad}");
        }
    }
}
