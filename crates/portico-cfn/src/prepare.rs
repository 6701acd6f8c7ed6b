//! The synchronous half of every stack operation: parameters (types, constraints, SSM
//! resolution), Rules, Conditions, the dependency graph and the capability check. Nothing here
//! creates anything; every failure is the `ValidationError` CloudFormation returns.

use crate::graph::{self, Graph};
use crate::intrinsics::{condition_refs, Eval};
use crate::model::StoredParam;
use crate::template::{format_error, scalar_text, section, transforms};
use portico_control::Control;
use portico_core::{AwsError, AwsResult, Input, RequestContext, Service};
use serde_json::{json, Map, Value};
use std::collections::{BTreeSet, HashMap, HashSet};

/// The bootstrap version Portico reports for `/cdk-bootstrap/<qualifier>/version` when Parameter
/// Store has no such parameter (every CDK template reads it; its rule rejects 1-5).
pub(crate) const CDK_BOOTSTRAP_VERSION: &str = "30";

pub(crate) fn validation(msg: impl Into<String>) -> AwsError {
    AwsError::bad("ValidationError", msg)
}

/// One parameter as the request gave it.
#[derive(Debug, Clone)]
pub(crate) struct Given {
    pub key: String,
    pub value: Option<String>,
    pub use_previous: bool,
}

pub(crate) fn given_params(input: &Input) -> Vec<Given> {
    input
        .list("Parameters")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| {
            Some(Given {
                key: p.string("ParameterKey")?,
                value: p.string("ParameterValue"),
                use_previous: p.bool("UsePreviousValue").ok().flatten().unwrap_or(false),
            })
        })
        .collect()
}

/// Pseudo-parameter facts of the stack an operation runs for.
#[derive(Debug, Clone)]
pub(crate) struct Pseudo {
    pub account: String,
    pub region: String,
    pub stack_name: String,
    pub stack_id: String,
    pub notification_arns: Vec<String>,
}

/// A template evaluated against its parameters: what an operation deploys.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub template: Value,
    pub values: Map<String, Value>,
    pub conditions: HashMap<String, bool>,
    /// Resources whose condition holds.
    pub resources: Map<String, Value>,
    pub graph: Graph,
}

const AWS_ID_TYPES: &[&str] = &[
    "AWS::EC2::AvailabilityZone::Name",
    "AWS::EC2::Image::Id",
    "AWS::EC2::Instance::Id",
    "AWS::EC2::KeyPair::KeyName",
    "AWS::EC2::SecurityGroup::GroupName",
    "AWS::EC2::SecurityGroup::Id",
    "AWS::EC2::Subnet::Id",
    "AWS::EC2::Volume::Id",
    "AWS::EC2::VPC::Id",
    "AWS::Route53::HostedZone::Id",
];

fn is_list_type(t: &str) -> bool {
    t == "CommaDelimitedList" || t.starts_with("List<")
}

fn known_type(t: &str) -> bool {
    if matches!(
        t,
        "String" | "Number" | "CommaDelimitedList" | "List<Number>"
    ) || AWS_ID_TYPES.contains(&t)
        || t == "AWS::SSM::Parameter::Name"
    {
        return true;
    }
    if let Some(inner) = t.strip_prefix("List<").and_then(|x| x.strip_suffix('>')) {
        return AWS_ID_TYPES.contains(&inner);
    }
    if let Some(inner) = t
        .strip_prefix("AWS::SSM::Parameter::Value<")
        .and_then(|x| x.strip_suffix('>'))
    {
        return matches!(inner, "String" | "CommaDelimitedList" | "List<String>")
            || known_type(inner);
    }
    false
}

fn split_list(v: &str) -> Vec<String> {
    if v.is_empty() {
        return Vec::new();
    }
    v.split(',').map(|s| s.trim().to_string()).collect()
}

/// Checks one value against the declaration's type and constraints.
fn check_value(key: &str, decl: &Value, ty: &str, value: &str) -> AwsResult<()> {
    let desc = decl.get("ConstraintDescription").and_then(Value::as_str);
    let fail = |generic: String| {
        validation(match desc {
            Some(d) => format!("Parameter '{key}' failed to satisfy constraint: {d}"),
            None => generic,
        })
    };
    let items: Vec<String> = if is_list_type(ty) {
        split_list(value)
    } else {
        vec![value.to_string()]
    };
    let numeric = ty == "Number" || ty == "List<Number>";
    for item in &items {
        if numeric && item.trim().parse::<f64>().is_err() {
            return Err(validation(format!("Parameter '{key}' must be a number.")));
        }
        if let Some(Value::Array(allowed)) = decl.get("AllowedValues") {
            if !allowed.iter().any(|a| scalar_text(a) == *item) {
                return Err(fail(format!(
                    "Parameter '{key}' must be one of AllowedValues"
                )));
            }
        }
        if let Some(p) = decl.get("AllowedPattern").and_then(Value::as_str) {
            let re = regex::Regex::new(&format!("^(?:{p})$"))
                .map_err(|_| format_error(format!("Invalid AllowedPattern for parameter {key}")))?;
            if !re.is_match(item) {
                return Err(fail(format!("Parameter '{key}' must match pattern {p}")));
            }
        }
        if let Some(n) = decl.get("MinLength").map(scalar_text) {
            if n.parse::<usize>().is_ok_and(|n| item.chars().count() < n) {
                return Err(fail(format!(
                    "Parameter '{key}' must contain at least {n} characters"
                )));
            }
        }
        if let Some(n) = decl.get("MaxLength").map(scalar_text) {
            if n.parse::<usize>().is_ok_and(|n| item.chars().count() > n) {
                return Err(fail(format!(
                    "Parameter '{key}' must contain at most {n} characters"
                )));
            }
        }
        if numeric {
            let x: f64 = item.trim().parse().unwrap_or_default();
            if let Some(n) = decl.get("MinValue").map(scalar_text) {
                if n.parse::<f64>().is_ok_and(|n| x < n) {
                    return Err(fail(format!(
                        "Parameter '{key}' must be a number not less than {n}"
                    )));
                }
            }
            if let Some(n) = decl.get("MaxValue").map(scalar_text) {
                if n.parse::<f64>().is_ok_and(|n| x > n) {
                    return Err(fail(format!(
                        "Parameter '{key}' must be a number not greater than {n}"
                    )));
                }
            }
        }
    }
    if AWS_ID_TYPES.contains(&ty) && value.is_empty() {
        return Err(validation(format!(
            "Parameter validation failed: parameter value  for parameter name {key} does not exist. Rollback requested by user."
        )));
    }
    Ok(())
}

/// Resolves the request's parameters against the template's declarations: defaults,
/// `UsePreviousValue`, constraints, and SSM-typed values fetched from Parameter Store.
pub(crate) async fn resolve_params(
    control: &Control,
    rc: &RequestContext,
    template: &Value,
    given: &[Given],
    previous: Option<&[StoredParam]>,
) -> AwsResult<Vec<StoredParam>> {
    let decls = section(template, "Parameters");
    let unknown: Vec<&str> = given
        .iter()
        .filter(|g| !decls.contains_key(&g.key))
        .map(|g| g.key.as_str())
        .collect();
    if !unknown.is_empty() {
        return Err(validation(format!(
            "Parameters: [{}] do not exist in the template",
            unknown.join(", ")
        )));
    }
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for (key, decl) in decls {
        let ty = decl.get("Type").and_then(Value::as_str).unwrap_or("String");
        if !known_type(ty) {
            return Err(format_error(format!("Unrecognized parameter type: {ty}")));
        }
        let g = given.iter().find(|g| &g.key == key);
        let value = match g {
            Some(g) if g.use_previous => match previous.and_then(|p| p.iter().find(|p| &p.key == key)) {
                Some(p) => Some(p.value.clone()),
                None => {
                    return Err(validation(format!(
                        "Invalid input for parameter key {key}. Cannot specify usePreviousValue as true for a parameter key not in the previous template"
                    )))
                }
            },
            Some(g) => g.value.clone(),
            None => decl.get("Default").map(|d| match d {
                Value::Array(a) => a.iter().map(scalar_text).collect::<Vec<_>>().join(","),
                other => scalar_text(other),
            }),
        };
        let Some(value) = value else {
            missing.push(key.clone());
            continue;
        };
        let no_echo = decl
            .get("NoEcho")
            .map(|v| scalar_text(v).eq_ignore_ascii_case("true"))
            .unwrap_or(false);
        let ssm = ty.starts_with("AWS::SSM::Parameter::Value<");
        if !ssm {
            check_value(key, decl, ty, &value)?;
        }
        out.push(StoredParam {
            key: key.clone(),
            value,
            resolved: None,
            no_echo,
            type_name: ty.to_string(),
        });
    }
    if !missing.is_empty() {
        return Err(validation(format!(
            "Parameters: [{}] must have values",
            missing.join(", ")
        )));
    }
    let mut unfetched = Vec::new();
    for p in out.iter_mut() {
        if p.type_name.starts_with("AWS::SSM::Parameter::Value<") {
            match fetch_ssm(control, rc, &p.value).await {
                Some(v) => p.resolved = Some(v),
                None => unfetched.push(p.value.clone()),
            }
        } else if p.type_name == "AWS::SSM::Parameter::Name"
            && fetch_ssm(control, rc, &p.value).await.is_none()
        {
            unfetched.push(p.value.clone());
        }
    }
    if !unfetched.is_empty() {
        return Err(validation(format!(
            "Unable to fetch parameters [{}] from parameter store for this account.",
            unfetched.join(",")
        )));
    }
    Ok(out)
}

async fn fetch_ssm(control: &Control, rc: &RequestContext, name: &str) -> Option<String> {
    let out = control
        .call(
            rc,
            Service::Ssm,
            "GetParameter",
            Input(json!({ "Name": name })),
        )
        .await;
    match out {
        Ok(v) => v["Parameter"]["Value"].as_str().map(str::to_string),
        Err(_) if is_cdk_bootstrap_version(name) => Some(CDK_BOOTSTRAP_VERSION.to_string()),
        Err(_) => None,
    }
}

fn is_cdk_bootstrap_version(name: &str) -> bool {
    name.strip_prefix("/cdk-bootstrap/")
        .and_then(|r| r.strip_suffix("/version"))
        .is_some_and(|q| !q.is_empty() && !q.contains('/'))
}

/// Parameter values as `Ref` yields them, plus the pseudo parameters.
pub(crate) fn values(params: &[StoredParam], pseudo: &Pseudo) -> Map<String, Value> {
    let mut m = Map::new();
    for p in params {
        let raw = p.resolved.as_deref().unwrap_or(&p.value);
        let inner = p
            .type_name
            .strip_prefix("AWS::SSM::Parameter::Value<")
            .and_then(|x| x.strip_suffix('>'))
            .unwrap_or(&p.type_name);
        let v = if is_list_type(inner) {
            Value::Array(split_list(raw).into_iter().map(Value::String).collect())
        } else {
            Value::String(raw.to_string())
        };
        m.insert(p.key.clone(), v);
    }
    let partition = portico_core::context::partition_of(&pseudo.region);
    m.insert("AWS::AccountId".into(), json!(pseudo.account));
    m.insert("AWS::Region".into(), json!(pseudo.region));
    m.insert("AWS::StackName".into(), json!(pseudo.stack_name));
    m.insert("AWS::StackId".into(), json!(pseudo.stack_id));
    m.insert("AWS::Partition".into(), json!(partition));
    m.insert(
        "AWS::URLSuffix".into(),
        json!(if partition == "aws-cn" {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        }),
    );
    m.insert(
        "AWS::NotificationARNs".into(),
        json!(pseudo.notification_arns),
    );
    m
}

fn empty_eval<'a>(
    values: &'a Map<String, Value>,
    mappings: &'a Map<String, Value>,
    conditions: &'a HashMap<String, bool>,
    declared: &'a HashSet<String>,
    live: &'a HashMap<String, crate::intrinsics::Live>,
    region: &'a str,
    exports: &'a HashMap<String, String>,
) -> Eval<'a> {
    Eval {
        params: values,
        mappings,
        conditions,
        declared,
        live,
        azs: &[],
        region,
        exports,
    }
}

/// Evaluates the Conditions section in dependency order.
pub(crate) fn conditions(
    template: &Value,
    values: &Map<String, Value>,
    region: &str,
) -> AwsResult<HashMap<String, bool>> {
    let conds = section(template, "Conditions");
    let mappings = section(template, "Mappings");
    let mut done: HashMap<String, bool> = HashMap::new();
    let (declared, live, exports) = (HashSet::new(), HashMap::new(), HashMap::new());
    loop {
        let before = done.len();
        for (name, expr) in conds {
            if done.contains_key(name) {
                continue;
            }
            let mut refs = BTreeSet::new();
            condition_refs(expr, &mut refs);
            if let Some(u) = refs.iter().find(|r| !conds.contains_key(*r)) {
                return Err(crate::template::template_error(format!(
                    "unresolved condition dependency {u} in Fn::Not"
                )));
            }
            if refs.iter().all(|r| done.contains_key(r)) {
                let ev = empty_eval(values, mappings, &done, &declared, &live, region, &exports);
                let b = ev.condition(expr).map_err(validation)?;
                done.insert(name.clone(), b);
            }
        }
        if done.len() == conds.len() {
            return Ok(done);
        }
        if done.len() == before {
            let stuck: Vec<&str> = conds
                .keys()
                .filter(|k| !done.contains_key(*k))
                .map(String::as_str)
                .collect();
            return Err(format_error(format!(
                "Circular dependency between conditions: [{}]",
                stuck.join(", ")
            )));
        }
    }
}

/// Evaluates the Rules section; a failed assertion is a ValidationError with its description.
pub(crate) fn rules(template: &Value, values: &Map<String, Value>, region: &str) -> AwsResult<()> {
    let mappings = section(template, "Mappings");
    let (declared, live, exports, conds) = (
        HashSet::new(),
        HashMap::new(),
        HashMap::new(),
        HashMap::new(),
    );
    let ev = empty_eval(values, mappings, &conds, &declared, &live, region, &exports);
    for (name, rule) in section(template, "Rules") {
        if let Some(c) = rule.get("RuleCondition") {
            if !ev.condition(c).map_err(validation)? {
                continue;
            }
        }
        for a in rule
            .get("Assertions")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            let Some(expr) = a.get("Assert") else {
                continue;
            };
            if !ev.condition(expr).map_err(validation)? {
                return Err(validation(
                    a.get("AssertDescription")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .unwrap_or_else(|| {
                            format!("Template error: Assertion failed for rule {name}")
                        }),
                ));
            }
        }
    }
    Ok(())
}

/// Conditions, condition-filtered resources and the dependency graph.
pub(crate) fn prepare(
    template: &Value,
    params: &[StoredParam],
    pseudo: &Pseudo,
) -> AwsResult<Prepared> {
    let values = values(params, pseudo);
    rules(template, &values, &pseudo.region)?;
    let conditions = conditions(template, &values, &pseudo.region)?;
    let mut resources = Map::new();
    for (id, r) in section(template, "Resources") {
        if let Some(c) = r.get("Condition").and_then(Value::as_str) {
            match conditions.get(c) {
                Some(true) => {}
                Some(false) => continue,
                None => {
                    return Err(crate::template::template_error(format!(
                        "unresolved condition dependency {c} in Resources/{id}"
                    )))
                }
            }
        }
        resources.insert(id.clone(), r.clone());
    }
    let outputs: Map<String, Value> = section(template, "Outputs")
        .iter()
        .filter(|(_, o)| {
            o.get("Condition")
                .and_then(Value::as_str)
                .map(|c| conditions.get(c).copied().unwrap_or(false))
                .unwrap_or(true)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let names: HashSet<String> = params.iter().map(|p| p.key.clone()).collect();
    let graph = graph::build(&resources, &names, &conditions, &outputs)?;
    Ok(Prepared {
        template: template.clone(),
        values,
        conditions,
        resources,
        graph,
    })
}

const IAM_TYPES: &[(&str, Option<&str>)] = &[
    ("AWS::IAM::AccessKey", None),
    ("AWS::IAM::Group", Some("GroupName")),
    ("AWS::IAM::InstanceProfile", Some("InstanceProfileName")),
    ("AWS::IAM::ManagedPolicy", Some("ManagedPolicyName")),
    ("AWS::IAM::Policy", None),
    ("AWS::IAM::Role", Some("RoleName")),
    ("AWS::IAM::User", Some("UserName")),
    ("AWS::IAM::UserToGroupAddition", None),
];

/// The capabilities a template needs and the resource types that need them.
pub(crate) fn needed_capabilities(
    template: &Value,
    with_transforms: bool,
) -> (Vec<&'static str>, Vec<String>) {
    let mut caps = Vec::new();
    let mut types: Vec<String> = Vec::new();
    let mut named = false;
    for r in section(template, "Resources").values() {
        let ty = r.get("Type").and_then(Value::as_str).unwrap_or_default();
        if let Some((_, name_prop)) = IAM_TYPES.iter().find(|(t, _)| *t == ty) {
            if !types.iter().any(|t| t == ty) {
                types.push(ty.to_string());
            }
            if let Some(np) = name_prop {
                if r.get("Properties").and_then(|p| p.get(*np)).is_some() {
                    named = true;
                }
            }
        }
    }
    if named {
        caps.push("CAPABILITY_NAMED_IAM");
    } else if !types.is_empty() {
        caps.push("CAPABILITY_IAM");
    }
    if with_transforms && !transforms(template).is_empty() {
        caps.push("CAPABILITY_AUTO_EXPAND");
    }
    (caps, types)
}

/// `InsufficientCapabilitiesException` when the template needs a capability not given.
pub(crate) fn check_capabilities(
    template: &Value,
    given: &[String],
    with_transforms: bool,
) -> AwsResult<()> {
    let (needed, _) = needed_capabilities(template, with_transforms);
    for cap in needed {
        let ok = given.iter().any(|g| g == cap)
            || (cap == "CAPABILITY_IAM" && given.iter().any(|g| g == "CAPABILITY_NAMED_IAM"));
        if !ok {
            return Err(AwsError::bad(
                "InsufficientCapabilitiesException",
                format!("Requires capabilities : [{cap}]"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo() -> Pseudo {
        Pseudo {
            account: "000000000000".into(),
            region: "us-east-1".into(),
            stack_name: "s".into(),
            stack_id: "arn:aws:cloudformation:us-east-1:000000000000:stack/s/x".into(),
            notification_arns: vec![],
        }
    }

    #[test]
    fn parameter_constraints() {
        let decl = json!({"Type": "String", "AllowedValues": ["a", "b"]});
        assert_eq!(
            check_value("P", &decl, "String", "c").unwrap_err().message,
            "Parameter 'P' must be one of AllowedValues"
        );
        let decl = json!({"Type": "String", "AllowedPattern": "[a-z]+", "ConstraintDescription": "lower only"});
        assert_eq!(
            check_value("P", &decl, "String", "aB").unwrap_err().message,
            "Parameter 'P' failed to satisfy constraint: lower only"
        );
        let decl = json!({"Type": "Number", "MinValue": 2, "MaxValue": 5});
        assert!(check_value("N", &decl, "Number", "3").is_ok());
        assert_eq!(
            check_value("N", &decl, "Number", "9").unwrap_err().message,
            "Parameter 'N' must be a number not greater than 5"
        );
        assert_eq!(
            check_value("N", &decl, "Number", "x").unwrap_err().message,
            "Parameter 'N' must be a number."
        );
        let decl = json!({"Type": "List<Number>"});
        assert!(check_value("L", &decl, "List<Number>", "1, 2").is_ok());
        assert!(known_type("List<AWS::EC2::Subnet::Id>"));
        assert!(known_type("AWS::SSM::Parameter::Value<String>"));
        assert!(!known_type("Strin"));
    }

    #[test]
    fn cdk_conditions_rules_and_capabilities() {
        let t = crate::template::parse(include_str!("testdata/cdk-like.yaml")).unwrap();
        let params = vec![StoredParam {
            key: "BootstrapVersion".into(),
            value: "/cdk-bootstrap/hnb659fds/version".into(),
            resolved: Some("30".into()),
            no_echo: false,
            type_name: "AWS::SSM::Parameter::Value<String>".into(),
        }];
        let p = prepare(&t, &params, &pseudo()).unwrap();
        assert!(p.conditions["CDKMetadataAvailable"]);
        assert!(p.resources.contains_key("CDKMetadata"));
        let mut old = params.clone();
        old[0].resolved = Some("4".into());
        assert_eq!(
            prepare(&t, &old, &pseudo()).unwrap_err().message,
            "CDK bootstrap stack version 6 required. Please run 'cdk bootstrap' with a recent version of the CDK CLI."
        );
        let e = check_capabilities(&t, &[], false).unwrap_err();
        assert_eq!(e.code, "InsufficientCapabilitiesException");
        assert_eq!(e.message, "Requires capabilities : [CAPABILITY_IAM]");
        assert!(check_capabilities(&t, &["CAPABILITY_NAMED_IAM".into()], false).is_ok());
        let mut p2 = StoredParam {
            ..params[0].clone()
        };
        p2.resolved = Some("30".into());
        let p = prepare(
            &t,
            &[p2],
            &Pseudo {
                region: "xx-nowhere-1".into(),
                ..pseudo()
            },
        )
        .unwrap();
        assert!(!p.resources.contains_key("CDKMetadata"));
    }
}
