//! Intrinsic functions: resolving `Ref`, `Fn::GetAtt`, `Fn::Sub` (both forms), `Fn::Join`,
//! `Fn::Select`, `Fn::Split`, `Fn::GetAZs`, `Fn::FindInMap`, `Fn::If`, the condition functions,
//! `Fn::Base64`, `Fn::Cidr`, `Fn::ImportValue`, `Fn::Length` and `Fn::ToJsonString` against the
//! values known at that moment, with CloudFormation's error texts.

use crate::template::scalar_text;
use base64::Engine as _;
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap, HashSet};

/// What the evaluator knows about one live resource.
#[derive(Debug, Clone, Default)]
pub(crate) struct Live {
    pub type_name: String,
    pub physical: Option<String>,
    pub attrs: Map<String, Value>,
}

/// Everything intrinsic functions can read.
pub(crate) struct Eval<'a> {
    /// Parameter values and pseudo parameters (strings, or lists for list types).
    pub params: &'a Map<String, Value>,
    pub mappings: &'a Map<String, Value>,
    pub conditions: &'a HashMap<String, bool>,
    /// Resources that exist in the template after conditions (referencable names).
    pub declared: &'a HashSet<String>,
    /// Resources created so far.
    pub live: &'a HashMap<String, Live>,
    pub azs: &'a [String],
    pub region: &'a str,
    pub exports: &'a HashMap<String, String>,
}

pub(crate) fn unresolved(names: &[String], block: &str) -> String {
    format!(
        "Template format error: Unresolved resource dependencies [{}] in the {block} block of the template",
        names.join(", ")
    )
}

fn terr(msg: impl std::fmt::Display) -> String {
    format!("Template error: {msg}")
}

/// The single function name of a one-key object, if it names an intrinsic.
fn function(v: &Value) -> Option<(&str, &Value)> {
    let m = v.as_object()?;
    if m.len() != 1 {
        return None;
    }
    let (k, arg) = m.iter().next()?;
    if k == "Ref" || k.starts_with("Fn::") {
        Some((k.as_str(), arg))
    } else {
        None
    }
}

type R<T> = Result<T, String>;

impl Eval<'_> {
    /// Resolves a value; `None` means `AWS::NoValue` (the enclosing member is dropped).
    pub(crate) fn resolve(&self, v: &Value) -> R<Option<Value>> {
        if let Some((name, arg)) = function(v) {
            return self.call(name, arg);
        }
        Ok(Some(match v {
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, x) in m {
                    if let Some(r) = self.resolve(x)? {
                        out.insert(k.clone(), r);
                    }
                }
                Value::Object(out)
            }
            Value::Array(a) => {
                let mut out = Vec::with_capacity(a.len());
                for x in a {
                    if let Some(r) = self.resolve(x)? {
                        out.push(r);
                    }
                }
                Value::Array(out)
            }
            other => other.clone(),
        }))
    }

    /// Resolves a value that must not vanish.
    pub(crate) fn value(&self, v: &Value) -> R<Value> {
        Ok(self.resolve(v)?.unwrap_or(Value::Null))
    }

    fn string(&self, v: &Value, what: &str) -> R<String> {
        match self.value(v)? {
            Value::String(s) => Ok(s),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            _ => Err(terr(format!("{what} must resolve to a string"))),
        }
    }

    fn list(&self, v: &Value) -> R<Option<Vec<Value>>> {
        match self.value(v)? {
            Value::Array(a) => Ok(Some(a)),
            _ => Ok(None),
        }
    }

    fn call(&self, name: &str, arg: &Value) -> R<Option<Value>> {
        match name {
            "Ref" => self.reference(arg),
            "Fn::GetAtt" => self.get_att(arg).map(Some),
            "Fn::Sub" => self.sub(arg).map(|s| Some(Value::String(s))),
            "Fn::Join" => self.join(arg).map(|s| Some(Value::String(s))),
            "Fn::Select" => self.select(arg).map(Some),
            "Fn::Split" => self.split(arg).map(Some),
            "Fn::GetAZs" => self.get_azs(arg).map(Some),
            "Fn::FindInMap" => self.find_in_map(arg).map(Some),
            "Fn::If" => self.if_(arg),
            "Fn::Equals" | "Fn::And" | "Fn::Or" | "Fn::Not" => {
                let mut m = Map::new();
                m.insert(name.to_string(), arg.clone());
                self.condition(&Value::Object(m))
                    .map(|b| Some(Value::Bool(b)))
            }
            "Fn::Base64" => {
                let s = self.string(arg, "Fn::Base64")?;
                Ok(Some(Value::String(
                    base64::engine::general_purpose::STANDARD.encode(s.as_bytes()),
                )))
            }
            "Fn::Cidr" => self.cidr(arg).map(Some),
            "Fn::ImportValue" => {
                let n = self.string(arg, "Fn::ImportValue")?;
                match self.exports.get(&n) {
                    Some(v) => Ok(Some(Value::String(v.clone()))),
                    None => Err(format!("No export named {n} found.")),
                }
            }
            "Fn::Length" => match self.list(arg)? {
                Some(a) => Ok(Some(Value::from(a.len()))),
                None => Err(terr("Fn::Length requires a list")),
            },
            "Fn::ToJsonString" => {
                let v = self.value(arg)?;
                Ok(Some(Value::String(v.to_string())))
            }
            "Fn::Transform" => Err(terr("Fn::Transform (macros) is not supported by Portico")),
            other => Err(terr(format!("Unrecognized function {other}"))),
        }
    }

    fn reference(&self, arg: &Value) -> R<Option<Value>> {
        let Some(name) = arg.as_str() else {
            return Err(terr("Ref requires a string argument"));
        };
        if name == "AWS::NoValue" {
            return Ok(None);
        }
        if let Some(v) = self.params.get(name) {
            return Ok(Some(v.clone()));
        }
        if self.declared.contains(name) {
            return match self.live.get(name).and_then(|l| l.physical.clone()) {
                Some(p) => Ok(Some(Value::String(p))),
                None => Err(terr(format!("resource {name} has no physical id yet"))),
            };
        }
        Err(unresolved(&[name.to_string()], "Resources"))
    }

    fn get_att(&self, arg: &Value) -> R<Value> {
        let malformed = || {
            terr("every Fn::GetAtt object requires two non-empty parameters, the resource name and the resource attribute")
        };
        let (res, attr) = match arg {
            Value::String(s) => match s.split_once('.') {
                Some((a, b)) => (a.to_string(), b.to_string()),
                None => return Err(malformed()),
            },
            Value::Array(a) if a.len() == 2 => {
                let res = a[0].as_str().ok_or_else(malformed)?.to_string();
                let attr = self.string(&a[1], "Fn::GetAtt attribute")?;
                (res, attr)
            }
            _ => return Err(malformed()),
        };
        if res.is_empty() || attr.is_empty() {
            return Err(malformed());
        }
        self.attribute(&res, &attr)
    }

    fn attribute(&self, res: &str, attr: &str) -> R<Value> {
        if !self.declared.contains(res) {
            return Err(terr(format!(
                "instance of Fn::GetAtt references undefined resource {res}"
            )));
        }
        let Some(live) = self.live.get(res) else {
            return Err(terr(format!("resource {res} is not created yet")));
        };
        if let Some(v) = live.attrs.get(attr) {
            return Ok(v.clone());
        }
        let known = crate::providers::spec(&live.type_name)
            .map(|s| s.attrs.contains(&attr))
            .unwrap_or(false);
        if known {
            Err(format!(
                "Attribute '{attr}' does not exist for resource {res} ({})",
                live.type_name
            ))
        } else {
            Err(format!(
                "Resource type {} does not support attribute {{{attr}}}",
                live.type_name
            ))
        }
    }

    fn sub(&self, arg: &Value) -> R<String> {
        let malformed = || {
            terr("One or more Fn::Sub intrinsic functions don't specify expected arguments. Specify a string as first argument, and an optional second argument to specify a mapping of values to replace in the string")
        };
        let (tmpl, vars) = match arg {
            Value::String(s) => (s.as_str(), None),
            Value::Array(a) if a.len() == 2 => (
                a[0].as_str().ok_or_else(malformed)?,
                Some(a[1].as_object().ok_or_else(malformed)?),
            ),
            _ => return Err(malformed()),
        };
        let mut out = String::with_capacity(tmpl.len());
        for piece in sub_pieces(tmpl) {
            match piece {
                SubPiece::Text(t) => out.push_str(t),
                SubPiece::Literal(t) => {
                    out.push_str("${");
                    out.push_str(t);
                    out.push('}');
                }
                SubPiece::Var(name) => {
                    if let Some(v) = vars.and_then(|m| m.get(name)) {
                        out.push_str(&self.string(v, "Fn::Sub variable")?);
                        continue;
                    }
                    let v = if let Some(v) = self.params.get(name) {
                        v.clone()
                    } else if self.declared.contains(name) {
                        self.reference(&Value::String(name.into()))?
                            .unwrap_or(Value::Null)
                    } else if let Some((r, a)) = name.split_once('.') {
                        self.attribute(r, a)?
                    } else {
                        return Err(unresolved(&[name.to_string()], "Resources"));
                    };
                    match v {
                        Value::Array(_) | Value::Object(_) | Value::Null => {
                            return Err(terr(format!(
                                "variable {name} in Fn::Sub expression does not resolve to a string"
                            )))
                        }
                        other => out.push_str(&scalar_text(&other)),
                    }
                }
            }
        }
        Ok(out)
    }

    fn join(&self, arg: &Value) -> R<String> {
        let malformed = || {
            terr("every Fn::Join object requires two parameters, (1) a string delimiter and (2) a list of strings to be joined or a function that returns a list of strings (such as Fn::GetAZs) to be joined.")
        };
        let Value::Array(a) = arg else {
            return Err(malformed());
        };
        if a.len() != 2 {
            return Err(malformed());
        }
        let delim = a[0].as_str().ok_or_else(malformed)?;
        let items = self.list(&a[1])?.ok_or_else(malformed)?;
        let mut parts = Vec::with_capacity(items.len());
        for it in items {
            match it {
                Value::Array(_) | Value::Object(_) | Value::Null => return Err(malformed()),
                other => parts.push(scalar_text(&other)),
            }
        }
        Ok(parts.join(delim))
    }

    fn select(&self, arg: &Value) -> R<Value> {
        let malformed = || {
            terr("Fn::Select requires a list argument with two elements: an integer index and a list")
        };
        let Value::Array(a) = arg else {
            return Err(malformed());
        };
        if a.len() != 2 {
            return Err(malformed());
        }
        let idx: usize = scalar_text(&self.value(&a[0])?)
            .trim()
            .parse()
            .map_err(|_| malformed())?;
        let items = self.list(&a[1])?.ok_or_else(malformed)?;
        items.get(idx).cloned().ok_or_else(|| {
            terr(format!(
                "Fn::Select cannot select nonexistent value at index {idx}"
            ))
        })
    }

    fn split(&self, arg: &Value) -> R<Value> {
        let malformed = || {
            terr("every Fn::Split object requires two parameters, (1) a string delimiter and (2) a string to be split or a function that returns a string to be split.")
        };
        let Value::Array(a) = arg else {
            return Err(malformed());
        };
        if a.len() != 2 {
            return Err(malformed());
        }
        let delim = a[0].as_str().ok_or_else(malformed)?;
        if delim.is_empty() {
            return Err(malformed());
        }
        let s = self.string(&a[1], "Fn::Split source")?;
        Ok(Value::Array(
            s.split(delim).map(|x| Value::String(x.into())).collect(),
        ))
    }

    fn get_azs(&self, arg: &Value) -> R<Value> {
        let region = match self.value(arg)? {
            Value::String(s) if !s.is_empty() => s,
            _ => self.region.to_string(),
        };
        Ok(Value::Array(
            self.azs
                .iter()
                .map(|az| {
                    let suffix = az.strip_prefix(self.region).unwrap_or(az);
                    Value::String(format!("{region}{suffix}"))
                })
                .collect(),
        ))
    }

    fn find_in_map(&self, arg: &Value) -> R<Value> {
        let malformed = || {
            terr("Fn::FindInMap requires a list of three parameters: the map name, the top-level key and the second-level key")
        };
        let Value::Array(a) = arg else {
            return Err(malformed());
        };
        if a.len() != 3 && a.len() != 4 {
            return Err(malformed());
        }
        let map = self.string(&a[0], "Fn::FindInMap map name")?;
        let top = self.string(&a[1], "Fn::FindInMap key")?;
        let second = self.string(&a[2], "Fn::FindInMap key")?;
        let found = self
            .mappings
            .get(&map)
            .and_then(|m| m.get(&top))
            .and_then(|m| m.get(&second));
        match found {
            Some(v) => Ok(match v {
                Value::Number(n) => Value::String(n.to_string()),
                Value::Bool(b) => Value::String(b.to_string()),
                other => other.clone(),
            }),
            None => match a.get(3).and_then(|d| d.get("DefaultValue")) {
                Some(d) => self.value(d),
                None => Err(terr(format!(
                    "Unable to get mapping for {map}::{top}::{second}"
                ))),
            },
        }
    }

    fn if_(&self, arg: &Value) -> R<Option<Value>> {
        let malformed = || {
            terr("Fn::If requires a list argument with three elements: a condition name, a value if true and a value if false")
        };
        let Value::Array(a) = arg else {
            return Err(malformed());
        };
        if a.len() != 3 {
            return Err(malformed());
        }
        let name = a[0].as_str().ok_or_else(malformed)?;
        match self.conditions.get(name) {
            Some(true) => self.resolve(&a[1]),
            Some(false) => self.resolve(&a[2]),
            None => Err(terr(format!(
                "unresolved condition dependency {name} in Fn::If"
            ))),
        }
    }

    /// Evaluates a condition expression (`Fn::Equals`, `Fn::And`, `Fn::Or`, `Fn::Not`,
    /// `{"Condition": name}`) and the rule functions (`Fn::Contains`, `Fn::EachMemberEquals`,
    /// `Fn::EachMemberIn`).
    pub(crate) fn condition(&self, v: &Value) -> R<bool> {
        if let Some(m) = v.as_object() {
            if m.len() == 1 {
                if let Some(Value::String(name)) = m.get("Condition") {
                    return self
                        .conditions
                        .get(name)
                        .copied()
                        .ok_or_else(|| terr(format!("unresolved condition dependency {name}")));
                }
            }
        }
        let Some((name, arg)) = function(v) else {
            return match v {
                Value::Bool(b) => Ok(*b),
                Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
                Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
                _ => Err(terr("condition must be a condition function")),
            };
        };
        let args = || arg.as_array().map(Vec::as_slice).unwrap_or(&[]);
        match name {
            "Fn::Equals" => {
                let a = args();
                if a.len() != 2 {
                    return Err(terr(
                        "every Fn::Equals object requires a list of 2 string parameters.",
                    ));
                }
                Ok(loose_eq(&self.value(&a[0])?, &self.value(&a[1])?))
            }
            "Fn::And" | "Fn::Or" => {
                let a = args();
                if a.len() < 2 || a.len() > 10 {
                    return Err(terr(format!(
                        "every {name} object requires a list of at least 2 and at most 10 boolean parameters."
                    )));
                }
                let mut vals = Vec::with_capacity(a.len());
                for x in a {
                    vals.push(self.condition(x)?);
                }
                Ok(if name == "Fn::And" {
                    vals.iter().all(|b| *b)
                } else {
                    vals.iter().any(|b| *b)
                })
            }
            "Fn::Not" => {
                let a = args();
                if a.len() != 1 {
                    return Err(terr(
                        "Fn::Not requires a list argument with one function token",
                    ));
                }
                Ok(!self.condition(&a[0])?)
            }
            "Fn::If" => {
                let v = self.if_(arg)?.unwrap_or(Value::Null);
                self.condition(&v)
            }
            "Fn::Contains" => {
                let a = args();
                if a.len() != 2 {
                    return Err(terr("Fn::Contains requires a list and a value"));
                }
                let list = self.list(&a[0])?.unwrap_or_default();
                let x = self.value(&a[1])?;
                Ok(list.iter().any(|i| loose_eq(i, &x)))
            }
            "Fn::EachMemberEquals" => {
                let a = args();
                if a.len() != 2 {
                    return Err(terr("Fn::EachMemberEquals requires a list and a value"));
                }
                let list = self.list(&a[0])?.unwrap_or_default();
                let x = self.value(&a[1])?;
                Ok(list.iter().all(|i| loose_eq(i, &x)))
            }
            "Fn::EachMemberIn" => {
                let a = args();
                if a.len() != 2 {
                    return Err(terr("Fn::EachMemberIn requires two lists"));
                }
                let list = self.list(&a[0])?.unwrap_or_default();
                let allowed = self.list(&a[1])?.unwrap_or_default();
                Ok(list.iter().all(|i| allowed.iter().any(|x| loose_eq(i, x))))
            }
            _ => {
                let v = self.value(v)?;
                self.condition(&v)
            }
        }
    }

    fn cidr(&self, arg: &Value) -> R<Value> {
        let malformed = || {
            terr("Fn::Cidr requires a list of three parameters: an IP block, a count and the CIDR bits")
        };
        let Value::Array(a) = arg else {
            return Err(malformed());
        };
        if a.len() != 3 {
            return Err(malformed());
        }
        let block = self.string(&a[0], "Fn::Cidr ipBlock")?;
        let count: u32 = scalar_text(&self.value(&a[1])?)
            .parse()
            .map_err(|_| malformed())?;
        let bits: u32 = scalar_text(&self.value(&a[2])?)
            .parse()
            .map_err(|_| malformed())?;
        cidr(&block, count, bits).map(|v| Value::Array(v.into_iter().map(Value::String).collect()))
    }
}

/// `Fn::Cidr`: `count` consecutive subnets with `bits` host bits from the start of `block`.
pub(crate) fn cidr(block: &str, count: u32, bits: u32) -> R<Vec<String>> {
    let bad = || {
        terr(format!(
            "Fn::Cidr cannot split {block} into {count} subnets of {bits} host bits"
        ))
    };
    let (addr, plen) = block.split_once('/').ok_or_else(bad)?;
    let plen: u32 = plen.parse().map_err(|_| bad())?;
    if !(1..=256).contains(&count) {
        return Err(bad());
    }
    if let Ok(ip) = addr.parse::<std::net::Ipv4Addr>() {
        if plen > 32 || bits > 32 - plen || bits == 0 && plen == 32 && count > 1 {
            return Err(bad());
        }
        let size: u64 = 1u64 << bits;
        let base = u64::from(u32::from(ip)) & !((1u64 << (32 - plen)) - 1);
        let room = 1u64 << (32 - plen);
        if size * u64::from(count) > room {
            return Err(bad());
        }
        return Ok((0..u64::from(count))
            .map(|i| {
                let a = std::net::Ipv4Addr::from((base + i * size) as u32);
                format!("{a}/{}", 32 - bits)
            })
            .collect());
    }
    if let Ok(ip) = addr.parse::<std::net::Ipv6Addr>() {
        if plen > 128 || bits > 128 - plen || bits >= 128 {
            return Err(bad());
        }
        let size: u128 = 1u128 << bits;
        let host = 128 - plen;
        let base = if host >= 128 {
            0
        } else {
            u128::from(ip) & !((1u128 << host) - 1)
        };
        if host < 128 && size.saturating_mul(u128::from(count)) > (1u128 << host) {
            return Err(bad());
        }
        return Ok((0..u128::from(count))
            .map(|i| {
                let a = std::net::Ipv6Addr::from(base + i * size);
                format!("{a}/{}", 128 - bits)
            })
            .collect());
    }
    Err(bad())
}

/// Equality as `Fn::Equals` compares: scalars as text, lists element-wise.
pub(crate) fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| loose_eq(p, q))
        }
        (Value::Object(_), _) | (_, Value::Object(_)) => a == b,
        (Value::Array(_), _) | (_, Value::Array(_)) => false,
        _ => scalar_text(a) == scalar_text(b),
    }
}

pub(crate) enum SubPiece<'a> {
    Text(&'a str),
    /// `${!X}` -> the literal `${X}`.
    Literal(&'a str),
    Var(&'a str),
}

/// Splits an `Fn::Sub` template into text, literals and variables.
pub(crate) fn sub_pieces(t: &str) -> Vec<SubPiece<'_>> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(i) = rest.find("${") {
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            break;
        };
        if i > 0 {
            out.push(SubPiece::Text(&rest[..i]));
        }
        let inner = &after[..end];
        if let Some(lit) = inner.strip_prefix('!') {
            out.push(SubPiece::Literal(lit));
        } else {
            out.push(SubPiece::Var(inner.trim()));
        }
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        out.push(SubPiece::Text(rest));
    }
    out
}

/// The names a value refers to (`Ref`, `Fn::GetAtt`, `${X}`/`${X.y}` in `Fn::Sub`), following
/// only the taken branch of `Fn::If` when the condition is known. Pseudo parameters included;
/// callers filter.
pub(crate) fn references(
    v: &Value,
    conditions: &HashMap<String, bool>,
    out: &mut BTreeSet<String>,
) {
    if let Some((name, arg)) = function(v) {
        match name {
            "Ref" => {
                if let Some(s) = arg.as_str() {
                    out.insert(s.to_string());
                } else {
                    references(arg, conditions, out);
                }
                return;
            }
            "Fn::GetAtt" => {
                match arg {
                    Value::String(s) => {
                        out.insert(s.split_once('.').map(|x| x.0).unwrap_or(s).to_string());
                    }
                    Value::Array(a) => {
                        if let Some(s) = a.first().and_then(Value::as_str) {
                            out.insert(s.to_string());
                        }
                        for x in a.iter().skip(1) {
                            references(x, conditions, out);
                        }
                    }
                    _ => {}
                }
                return;
            }
            "Fn::Sub" => {
                let (tmpl, vars) = match arg {
                    Value::String(s) => (Some(s.as_str()), None),
                    Value::Array(a) => (a.first().and_then(Value::as_str), a.get(1)),
                    _ => (None, None),
                };
                let var_names: HashSet<&str> = vars
                    .and_then(Value::as_object)
                    .map(|m| m.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                if let Some(t) = tmpl {
                    for p in sub_pieces(t) {
                        if let SubPiece::Var(n) = p {
                            if var_names.contains(n) {
                                continue;
                            }
                            let base = if n.starts_with("AWS::") {
                                n
                            } else {
                                n.split_once('.').map(|x| x.0).unwrap_or(n)
                            };
                            out.insert(base.to_string());
                        }
                    }
                }
                if let Some(vs) = vars {
                    references(vs, conditions, out);
                }
                return;
            }
            "Fn::If" => {
                if let Some(a) = arg.as_array() {
                    if a.len() == 3 {
                        match a[0].as_str().and_then(|c| conditions.get(c)) {
                            Some(true) => references(&a[1], conditions, out),
                            Some(false) => references(&a[2], conditions, out),
                            None => {
                                references(&a[1], conditions, out);
                                references(&a[2], conditions, out);
                            }
                        }
                        return;
                    }
                }
            }
            _ => {}
        }
        references(arg, conditions, out);
        return;
    }
    match v {
        Value::Object(m) => m.values().for_each(|x| references(x, conditions, out)),
        Value::Array(a) => a.iter().for_each(|x| references(x, conditions, out)),
        _ => {}
    }
}

/// The condition names a condition expression uses through `{"Condition": name}`.
pub(crate) fn condition_refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            if m.len() == 1 {
                if let Some(Value::String(n)) = m.get("Condition") {
                    out.insert(n.clone());
                    return;
                }
            }
            m.values().for_each(|x| condition_refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| condition_refs(x, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Fixture {
        params: Map<String, Value>,
        mappings: Map<String, Value>,
        conditions: HashMap<String, bool>,
        declared: HashSet<String>,
        live: HashMap<String, Live>,
        azs: Vec<String>,
        exports: HashMap<String, String>,
    }

    fn fixture() -> Fixture {
        let mut live = HashMap::new();
        live.insert(
            "Vpc".to_string(),
            Live {
                type_name: "AWS::EC2::VPC".into(),
                physical: Some("vpc-1".into()),
                attrs: json!({"CidrBlock": "10.0.0.0/16", "VpcId": "vpc-1"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            },
        );
        Fixture {
            params: json!({
                "Env": "prod", "Port": "80", "Subnets": ["s-1", "s-2"],
                "AWS::Region": "us-east-1", "AWS::AccountId": "000000000000",
                "AWS::StackName": "st", "AWS::Partition": "aws"
            })
            .as_object()
            .cloned()
            .unwrap_or_default(),
            mappings: json!({"M": {"us-east-1": {"Ami": "ami-1", "L": ["a", "b"]}}})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            conditions: [("IsProd".to_string(), true), ("IsDev".to_string(), false)]
                .into_iter()
                .collect(),
            declared: ["Vpc".to_string(), "Later".to_string()]
                .into_iter()
                .collect(),
            live,
            azs: vec![
                "us-east-1a".into(),
                "us-east-1b".into(),
                "us-east-1c".into(),
            ],
            exports: [("Shared".to_string(), "v".to_string())]
                .into_iter()
                .collect(),
        }
    }

    fn check(input: Value, expect: Value) {
        let f = fixture();
        let e = Eval {
            params: &f.params,
            mappings: &f.mappings,
            conditions: &f.conditions,
            declared: &f.declared,
            live: &f.live,
            azs: &f.azs,
            region: "us-east-1",
            exports: &f.exports,
        };
        let got = e
            .resolve(&input)
            .map(|v| v.unwrap_or(json!("<novalue>")))
            .unwrap_or_else(|m| json!({ "error": m }));
        assert_eq!(got, expect, "for {input}");
    }

    #[test]
    fn refs_and_getatt() {
        check(json!({"Ref": "Env"}), json!("prod"));
        check(json!({"Ref": "Vpc"}), json!("vpc-1"));
        check(json!({"Ref": "AWS::NoValue"}), json!("<novalue>"));
        check(
            json!({"Fn::GetAtt": ["Vpc", "CidrBlock"]}),
            json!("10.0.0.0/16"),
        );
        check(json!({"Fn::GetAtt": "Vpc.VpcId"}), json!("vpc-1"));
        check(
            json!({"Ref": "Nope"}),
            json!({"error": "Template format error: Unresolved resource dependencies [Nope] in the Resources block of the template"}),
        );
        check(
            json!({"Fn::GetAtt": ["Gone", "X"]}),
            json!({"error": "Template error: instance of Fn::GetAtt references undefined resource Gone"}),
        );
        check(
            json!({"Fn::GetAtt": ["Vpc"]}),
            json!({"error": "Template error: every Fn::GetAtt object requires two non-empty parameters, the resource name and the resource attribute"}),
        );
        check(
            json!({"Fn::GetAtt": ["Vpc", "Bogus"]}),
            json!({"error": "Resource type AWS::EC2::VPC does not support attribute {Bogus}"}),
        );
    }

    #[test]
    fn sub_both_forms() {
        check(
            json!({"Fn::Sub": "arn:${AWS::Partition}:x:${AWS::Region}:${Vpc}:${Vpc.CidrBlock}"}),
            json!("arn:aws:x:us-east-1:vpc-1:10.0.0.0/16"),
        );
        check(
            json!({"Fn::Sub": ["${A}-${Env}-${!Literal}-$x", {"A": {"Ref": "Port"}}]}),
            json!("80-prod-${Literal}-$x"),
        );
        check(
            json!({"Fn::Sub": "${Missing}"}),
            json!({"error": "Template format error: Unresolved resource dependencies [Missing] in the Resources block of the template"}),
        );
        check(
            json!({"Fn::Sub": ["a", "b", "c"]}),
            json!({"error": "Template error: One or more Fn::Sub intrinsic functions don't specify expected arguments. Specify a string as first argument, and an optional second argument to specify a mapping of values to replace in the string"}),
        );
    }

    #[test]
    fn lists_and_strings() {
        check(
            json!({"Fn::Join": [",", ["a", {"Ref": "Env"}, 3]]}),
            json!("a,prod,3"),
        );
        check(
            json!({"Fn::Join": ["-", {"Ref": "Subnets"}]}),
            json!("s-1-s-2"),
        );
        check(json!({"Fn::Join": ["", []]}), json!(""));
        check(
            json!({"Fn::Select": ["1", {"Ref": "Subnets"}]}),
            json!("s-2"),
        );
        check(
            json!({"Fn::Select": [0, {"Fn::GetAZs": ""}]}),
            json!("us-east-1a"),
        );
        check(
            json!({"Fn::GetAZs": "eu-west-1"}),
            json!(["eu-west-1a", "eu-west-1b", "eu-west-1c"]),
        );
        check(
            json!({"Fn::Select": [5, ["a"]]}),
            json!({"error": "Template error: Fn::Select cannot select nonexistent value at index 5"}),
        );
        check(json!({"Fn::Split": [",", "a,,b"]}), json!(["a", "", "b"]));
        check(json!({"Fn::Base64": "hello"}), json!("aGVsbG8="));
        check(json!({"Fn::ImportValue": "Shared"}), json!("v"));
        check(
            json!({"Fn::ImportValue": "Nope"}),
            json!({"error": "No export named Nope found."}),
        );
        check(json!({"Fn::Length": [1, 2, 3]}), json!(3));
        check(
            json!({"Fn::ToJsonString": {"a": [1, "b"]}}),
            json!("{\"a\":[1,\"b\"]}"),
        );
    }

    #[test]
    fn mappings_and_conditions() {
        check(
            json!({"Fn::FindInMap": ["M", {"Ref": "AWS::Region"}, "Ami"]}),
            json!("ami-1"),
        );
        check(
            json!({"Fn::FindInMap": ["M", "us-east-1", "L"]}),
            json!(["a", "b"]),
        );
        check(
            json!({"Fn::FindInMap": ["M", "eu", "Ami"]}),
            json!({"error": "Template error: Unable to get mapping for M::eu::Ami"}),
        );
        check(
            json!({"Fn::FindInMap": ["M", "eu", "Ami", {"DefaultValue": "d"}]}),
            json!("d"),
        );
        check(json!({"Fn::If": ["IsProd", "big", "small"]}), json!("big"));
        check(
            json!({"Fn::If": ["IsDev", "big", {"Ref": "AWS::NoValue"}]}),
            json!("<novalue>"),
        );
        check(
            json!({"Fn::If": ["Nope", 1, 2]}),
            json!({"error": "Template error: unresolved condition dependency Nope in Fn::If"}),
        );
        check(
            json!({"A": {"Fn::If": ["IsDev", 1, {"Ref": "AWS::NoValue"}]}, "B": [1, {"Ref": "AWS::NoValue"}]}),
            json!({"B": [1]}),
        );
        check(json!({"Fn::Equals": [{"Ref": "Port"}, 80]}), json!(true));
        check(
            json!({"Fn::And": [{"Condition": "IsProd"}, {"Fn::Not": [{"Condition": "IsDev"}]}]}),
            json!(true),
        );
        check(
            json!({"Fn::Or": [{"Condition": "IsDev"}, {"Fn::Equals": ["a", "b"]}]}),
            json!(false),
        );
        check(
            json!({"Fn::Equals": ["a"]}),
            json!({"error": "Template error: every Fn::Equals object requires a list of 2 string parameters."}),
        );
    }

    #[test]
    fn cidr_blocks() {
        check(
            json!({"Fn::Cidr": ["10.0.0.0/16", 3, 8]}),
            json!(["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"]),
        );
        check(
            json!({"Fn::Cidr": ["10.0.0.0/16", "2", "14"]}),
            json!(["10.0.0.0/18", "10.0.64.0/18"]),
        );
        assert!(cidr("10.0.0.0/24", 3, 8).is_err());
        assert_eq!(
            cidr("2001:db8::/56", 2, 64).unwrap(),
            vec!["2001:db8::/64".to_string(), "2001:db8:0:1::/64".to_string()]
        );
    }

    #[test]
    fn references_follow_taken_branch() {
        let conds: HashMap<String, bool> = [("C".to_string(), false)].into_iter().collect();
        let mut out = BTreeSet::new();
        references(
            &json!({"a": {"Fn::If": ["C", {"Ref": "X"}, {"Fn::GetAtt": ["Y", "Arn"]}]},
                    "b": {"Fn::Sub": ["${Z}-${v}-${W.Arn}-${!Q}-${AWS::Region}", {"v": {"Ref": "V"}}]}}),
            &conds,
            &mut out,
        );
        let got: Vec<&str> = out.iter().map(String::as_str).collect();
        assert_eq!(got, vec!["AWS::Region", "V", "W", "Y", "Z"]);
    }
}
