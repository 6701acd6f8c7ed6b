//! Template parsing (JSON and YAML with every short-form tag) and the structural checks
//! CloudFormation makes before anything else, with AWS's exact `Template format error` texts.

use crate::providers;
use portico_core::AwsError;
use serde_json::{Map, Value};

/// Largest `TemplateBody` accepted in a request.
pub(crate) const MAX_BODY: usize = 51_200;

pub(crate) fn format_error(msg: impl std::fmt::Display) -> AwsError {
    AwsError::bad("ValidationError", format!("Template format error: {msg}"))
}

pub(crate) fn template_error(msg: impl std::fmt::Display) -> AwsError {
    AwsError::bad("ValidationError", format!("Template error: {msg}"))
}

/// Parses a template body: JSON when the first non-blank character is `{`, YAML otherwise.
/// YAML short forms become their long forms (`!Ref x` -> `{"Ref": x}`, `!GetAtt a.b` ->
/// `{"Fn::GetAtt": ["a", "b"]}`, `!Sub s` -> `{"Fn::Sub": s}`).
pub(crate) fn parse(body: &str) -> Result<Value, AwsError> {
    let trimmed = body.trim_start();
    let v = if trimmed.starts_with('{') {
        serde_json::from_str::<Value>(trimmed).map_err(|e| {
            format_error(format!(
                "JSON not well-formed. (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?
    } else {
        if has_yaml_alias(body) {
            return Err(template_error(
                "YAML aliases are not allowed in CloudFormation templates",
            ));
        }
        let y: serde_yaml::Value = serde_yaml::from_str(body).map_err(|e| match e.location() {
            Some(l) => format_error(format!(
                "YAML not well-formed. (line {}, column {})",
                l.line(),
                l.column()
            )),
            None => format_error("YAML not well-formed."),
        })?;
        yaml_to_json(y)?
    };
    if !v.is_object() {
        return Err(format_error("unsupported structure."));
    }
    Ok(v)
}

/// A YAML alias (`*name`) or anchor (`&name`) outside quotes and comments: CloudFormation
/// rejects templates that use them.
fn has_yaml_alias(body: &str) -> bool {
    let token = |marker: char| {
        body.lines().any(|line| {
            let mut in_single = false;
            let mut in_double = false;
            let mut prev = ' ';
            let mut chars = line.chars().peekable();
            while let Some(c) = chars.next() {
                let next = chars.peek().copied().unwrap_or(' ');
                match c {
                    '#' if !in_single && !in_double && matches!(prev, ' ' | '\t') => return false,
                    '\'' if !in_double => in_single = !in_single,
                    '"' if !in_single => in_double = !in_double,
                    c if c == marker
                        && !in_single
                        && !in_double
                        && matches!(prev, ' ' | '\t' | '[' | ',' | '{')
                        && (next.is_ascii_alphanumeric() || next == '_') =>
                    {
                        return true
                    }
                    _ => {}
                }
                prev = c;
            }
            false
        })
    };
    token('*') && token('&')
}

fn yaml_key(k: serde_yaml::Value) -> Result<String, AwsError> {
    Ok(match k {
        serde_yaml::Value::String(s) => s,
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Null => "null".into(),
        _ => return Err(format_error("unsupported structure.")),
    })
}

fn yaml_to_json(y: serde_yaml::Value) -> Result<Value, AwsError> {
    Ok(match y {
        serde_yaml::Value::Null => Value::Null,
        serde_yaml::Value::Bool(b) => Value::Bool(b),
        serde_yaml::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .unwrap_or_else(|| Value::String(n.to_string()))
            }
        }
        serde_yaml::Value::String(s) => Value::String(s),
        serde_yaml::Value::Sequence(seq) => Value::Array(
            seq.into_iter()
                .map(yaml_to_json)
                .collect::<Result<_, _>>()?,
        ),
        serde_yaml::Value::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                out.insert(yaml_key(k)?, yaml_to_json(v)?);
            }
            Value::Object(out)
        }
        serde_yaml::Value::Tagged(t) => {
            let tag = t.tag.to_string();
            let name = tag.trim_start_matches('!').to_string();
            let inner = yaml_to_json(t.value)?;
            short_form(&name, inner)?
        }
    })
}

/// The long form of one short-form tag.
fn short_form(name: &str, inner: Value) -> Result<Value, AwsError> {
    const FNS: &[&str] = &[
        "GetAtt",
        "Sub",
        "Join",
        "Select",
        "Split",
        "GetAZs",
        "FindInMap",
        "If",
        "Equals",
        "And",
        "Or",
        "Not",
        "ImportValue",
        "Base64",
        "Cidr",
        "Transform",
        "Length",
        "ToJsonString",
        "Contains",
        "EachMemberEquals",
        "EachMemberIn",
        "RefAll",
        "ValueOf",
        "ValueOfAll",
    ];
    let mut m = Map::new();
    match name {
        "Ref" | "Condition" => {
            m.insert(name.to_string(), inner);
        }
        "GetAtt" => {
            let v = match inner {
                Value::String(s) => match s.split_once('.') {
                    Some((a, b)) => Value::Array(vec![Value::from(a), Value::from(b)]),
                    None => Value::Array(vec![Value::from(s)]),
                },
                other => other,
            };
            m.insert("Fn::GetAtt".into(), v);
        }
        n if FNS.contains(&n) => {
            m.insert(format!("Fn::{n}"), inner);
        }
        other => {
            return Err(format_error(format!("Unsupported YAML tag !{other}")));
        }
    }
    Ok(Value::Object(m))
}

const TOP_LEVEL: &[&str] = &[
    "AWSTemplateFormatVersion",
    "Description",
    "Metadata",
    "Parameters",
    "Rules",
    "Mappings",
    "Conditions",
    "Transform",
    "Resources",
    "Outputs",
    "Hooks",
];

const RESOURCE_KEYS: &[&str] = &[
    "Type",
    "Properties",
    "DependsOn",
    "Condition",
    "DeletionPolicy",
    "UpdateReplacePolicy",
    "Metadata",
    "CreationPolicy",
    "UpdatePolicy",
    "Version",
];

pub(crate) fn is_alnum(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The declared transforms (`Transform: X` or a list).
pub(crate) fn transforms(t: &Value) -> Vec<String> {
    match t.get("Transform") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// Structural checks, in the order CloudFormation reports them. Also applies transforms
/// (SAM pass-through, LanguageExtensions) and rejects resource types Portico cannot create.
pub(crate) fn validate(t: &Value) -> Result<(), AwsError> {
    let Some(obj) = t.as_object() else {
        return Err(format_error("unsupported structure."));
    };
    let bad: Vec<&str> = obj
        .keys()
        .filter(|k| !TOP_LEVEL.contains(&k.as_str()))
        .map(String::as_str)
        .collect();
    if !bad.is_empty() {
        return Err(format_error(format!(
            "Invalid template property or properties [{}]",
            bad.join(", ")
        )));
    }
    if let Some(v) = obj.get("AWSTemplateFormatVersion") {
        if v.as_str() != Some("2010-09-09") {
            return Err(format_error(format!(
                "{} is not a supported value for AWSTemplateFormatVersion.",
                scalar_text(v)
            )));
        }
    }
    for tr in transforms(t) {
        match tr.as_str() {
            "AWS::Serverless-2016-10-31" | "AWS::LanguageExtensions" => {}
            other => {
                return Err(AwsError::bad(
                    "ValidationError",
                    format!("Template format error: Unsupported transform {other}: Portico processes only AWS::Serverless-2016-10-31 (templates without serverless resources) and AWS::LanguageExtensions"),
                ))
            }
        }
    }
    if let Some(p) = obj.get("Parameters") {
        let Some(p) = p.as_object() else {
            return Err(format_error("Parameters must be an object."));
        };
        for (name, decl) in p {
            if !is_alnum(name) {
                return Err(format_error(format!(
                    "Parameter name {name} is non alphanumeric."
                )));
            }
            if decl.get("Type").and_then(Value::as_str).is_none() {
                return Err(format_error(format!(
                    "[/Parameters/{name}] Every Parameters object must contain a Type member."
                )));
            }
        }
    }
    if let Some(m) = obj.get("Mappings") {
        let Some(m) = m.as_object() else {
            return Err(format_error("Mappings must be an object."));
        };
        for (name, map) in m {
            let Some(map) = map.as_object() else {
                return Err(format_error(format!(
                    "Every Mappings member {name} must be a map"
                )));
            };
            for top in map.values() {
                let Some(top) = top.as_object() else {
                    return Err(format_error(format!(
                        "Every Mappings member {name} must be a map"
                    )));
                };
                for leaf in top.values() {
                    let ok = match leaf {
                        Value::String(_) | Value::Number(_) | Value::Bool(_) => true,
                        Value::Array(a) => a.iter().all(|x| !x.is_null() && !x.is_object()),
                        _ => false,
                    };
                    if !ok {
                        return Err(format_error(
                            "Every Mappings attribute must be a String or a List.",
                        ));
                    }
                }
            }
        }
    }
    let resources = match obj.get("Resources") {
        Some(Value::Object(r)) if !r.is_empty() => r,
        _ => {
            return Err(format_error(
                "At least one Resources member must be defined.",
            ))
        }
    };
    let mut unknown: Vec<String> = Vec::new();
    let mut serverless: Vec<String> = Vec::new();
    for (id, r) in resources {
        if !is_alnum(id) {
            return Err(format_error(format!(
                "Resource name {id} is non alphanumeric."
            )));
        }
        let Some(r) = r.as_object() else {
            return Err(format_error("Any Resources member must be an object."));
        };
        let Some(ty) = r.get("Type").and_then(Value::as_str) else {
            return Err(format_error(format!(
                "[/Resources/{id}] Every Resources object must contain a Type member."
            )));
        };
        for k in r.keys() {
            if !RESOURCE_KEYS.contains(&k.as_str()) {
                return Err(AwsError::bad(
                    "ValidationError",
                    format!("Invalid template resource property '{k}'"),
                ));
            }
        }
        if let Some(p) = r.get("Properties") {
            if !p.is_object() {
                return Err(format_error(format!(
                    "[/Resources/{id}/Properties] Every Properties member must be an object."
                )));
            }
        }
        if ty.starts_with("AWS::Serverless::") {
            if !serverless.iter().any(|t| t == ty) {
                serverless.push(ty.to_string());
            }
        } else if providers::spec(ty).is_none() && !unknown.iter().any(|t| t == ty) {
            unknown.push(ty.to_string());
        }
    }
    if !serverless.is_empty() {
        if transforms(t)
            .iter()
            .any(|x| x == "AWS::Serverless-2016-10-31")
        {
            return Err(AwsError::bad(
                "ValidationError",
                format!(
                    "Transform AWS::Serverless-2016-10-31 failed with: Portico does not expand serverless resources yet: [{}]",
                    serverless.join(", ")
                ),
            ));
        }
        unknown.extend(serverless);
    }
    if !unknown.is_empty() {
        return Err(format_error(format!(
            "Unrecognized resource types: [{}]",
            unknown.join(", ")
        )));
    }
    if let Some(o) = obj.get("Outputs") {
        let Some(o) = o.as_object() else {
            return Err(format_error("Outputs must be an object."));
        };
        for (name, out) in o {
            if !is_alnum(name) {
                return Err(format_error(format!(
                    "Output name {name} is non alphanumeric."
                )));
            }
            match out.get("Value") {
                None => {
                    return Err(format_error(
                        "Every Outputs member must contain a Value object",
                    ))
                }
                Some(Value::Null) => {
                    return Err(AwsError::bad(
                        "ValidationError",
                        format!(
                            "[/Outputs/{name}/Value] 'null' values are not allowed in templates"
                        ),
                    ))
                }
                _ => {}
            }
        }
    }
    if let Some(c) = obj.get("Conditions") {
        if !c.is_object() {
            return Err(format_error("Conditions must be an object."));
        }
    }
    check_nulls(t, "")?;
    Ok(())
}

fn check_nulls(v: &Value, path: &str) -> Result<(), AwsError> {
    match v {
        Value::Null => Err(AwsError::bad(
            "ValidationError",
            format!("[{path}] 'null' values are not allowed in templates"),
        )),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                check_nulls(x, &format!("{path}/{i}"))?;
            }
            Ok(())
        }
        Value::Object(m) => {
            for (k, x) in m {
                // Free-form metadata may hold nulls (CDK never emits them, but be lenient).
                if path.is_empty() && k == "Metadata" {
                    continue;
                }
                check_nulls(x, &format!("{path}/{k}"))?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Text of a scalar as CloudFormation sees it (numbers and booleans as written).
pub(crate) fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The section of a template as an object (empty when absent).
pub(crate) fn section<'a>(t: &'a Value, name: &str) -> &'a Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    t.get(name)
        .and_then(Value::as_object)
        .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn short_forms_become_long_forms() {
        let y = r#"
Resources:
  A:
    Type: AWS::CDK::Metadata
    Properties:
      R: !Ref X
      G: !GetAtt Db.Endpoint.Address
      GL: !GetAtt [A, B]
      S: !Sub "a-${AWS::Region}"
      S2: !Sub ["${x}", {x: !Ref Y}]
      J: !Join ["", [a, b]]
      Sel: !Select [0, !GetAZs ""]
      Sp: !Split [",", "a,b"]
      F: !FindInMap [M, a, b]
      I: !If [C, 1, !Ref AWS::NoValue]
      E: !Equals [a, b]
      An: !And [!Condition C, !Not [!Condition D]]
      O: !Or [!Condition C, !Condition D]
      B: !Base64 x
      Ci: !Cidr [10.0.0.0/16, 2, 8]
      Im: !ImportValue exp
"#;
        let v = parse(y).unwrap();
        let p = &v["Resources"]["A"]["Properties"];
        assert_eq!(p["R"], json!({"Ref": "X"}));
        assert_eq!(p["G"], json!({"Fn::GetAtt": ["Db", "Endpoint.Address"]}));
        assert_eq!(p["GL"], json!({"Fn::GetAtt": ["A", "B"]}));
        assert_eq!(p["S"], json!({"Fn::Sub": "a-${AWS::Region}"}));
        assert_eq!(p["S2"], json!({"Fn::Sub": ["${x}", {"x": {"Ref": "Y"}}]}));
        assert_eq!(p["Sel"], json!({"Fn::Select": [0, {"Fn::GetAZs": ""}]}));
        assert_eq!(p["I"], json!({"Fn::If": ["C", 1, {"Ref": "AWS::NoValue"}]}));
        assert_eq!(
            p["An"],
            json!({"Fn::And": [{"Condition": "C"}, {"Fn::Not": [{"Condition": "D"}]}]})
        );
        assert_eq!(p["Ci"], json!({"Fn::Cidr": ["10.0.0.0/16", 2, 8]}));
        assert_eq!(p["Im"], json!({"Fn::ImportValue": "exp"}));
        assert_eq!(p["B"], json!({"Fn::Base64": "x"}));
    }

    fn err(body: &str) -> String {
        match parse(body).and_then(|t| validate(&t)) {
            Ok(()) => "ok".into(),
            Err(e) => e.message,
        }
    }

    #[test]
    fn structural_errors_use_aws_text() {
        assert_eq!(
            err("{\"Resources\": "),
            "Template format error: JSON not well-formed. (line 1, column 14)"
        );
        assert_eq!(
            err("- a\n- b\n"),
            "Template format error: unsupported structure."
        );
        assert_eq!(
            err("Description: x\n"),
            "Template format error: At least one Resources member must be defined."
        );
        assert_eq!(
            err("Resources:\n  A: 1\n"),
            "Template format error: Any Resources member must be an object."
        );
        assert_eq!(
            err("Resources:\n  A:\n    Properties: {}\n"),
            "Template format error: [/Resources/A] Every Resources object must contain a Type member."
        );
        assert_eq!(
            err("Resources:\n  A:\n    Type: AWS::CDK::Metadata\n    Bogus: 1\n"),
            "Invalid template resource property 'Bogus'"
        );
        assert_eq!(
            err("Resources:\n  A-b:\n    Type: AWS::CDK::Metadata\n"),
            "Template format error: Resource name A-b is non alphanumeric."
        );
        assert_eq!(
            err("Resources:\n  A:\n    Type: AWS::Foo::Bar\n  B:\n    Type: AWS::Foo::Bar\n"),
            "Template format error: Unrecognized resource types: [AWS::Foo::Bar]"
        );
        assert_eq!(
            err("Resources:\n  A:\n    Type: AWS::CDK::Metadata\nOutputs:\n  O:\n    Description: x\n"),
            "Template format error: Every Outputs member must contain a Value object"
        );
        assert_eq!(
            err("Resources:\n  A:\n    Type: AWS::CDK::Metadata\nMappings:\n  M: 1\n"),
            "Template format error: Every Mappings member M must be a map"
        );
        assert_eq!(
            err("x: &a 1\nResources:\n  A:\n    Type: AWS::CDK::Metadata\n    Properties:\n      P: *a\n"),
            "Template error: YAML aliases are not allowed in CloudFormation templates"
        );
        assert_eq!(
            err("Transform: AWS::Serverless-2016-10-31\nResources:\n  A:\n    Type: AWS::CDK::Metadata\n"),
            "ok"
        );
    }
}
