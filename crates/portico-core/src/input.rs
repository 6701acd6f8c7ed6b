//! Typed, lenient access to an operation's input. Every protocol decodes into one JSON value:
//! awsJson and restJson1 bodies as they are, query parameters as nested objects and arrays
//! (`Subnets.member.1` -> `{"Subnets": ["..."]}`), where scalars arrive as strings. The getters
//! accept both encodings so services need not care which protocol carried the call.

use crate::AwsError;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Input(pub Value);

impl From<Value> for Input {
    fn from(v: Value) -> Self {
        Input(v)
    }
}

impl Input {
    pub fn empty() -> Self {
        Input(Value::Object(Map::new()))
    }

    pub fn value(&self) -> &Value {
        &self.0
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        match self.0.get(key) {
            Some(Value::Null) | None => None,
            Some(v) => Some(v),
        }
    }

    pub fn sub(&self, key: &str) -> Input {
        Input(self.get(key).cloned().unwrap_or(Value::Null))
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    pub fn string(&self, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// A required string; `code` is the service's validation error code.
    pub fn req_str(&self, key: &str, code: &'static str) -> Result<&str, AwsError> {
        self.str(key).ok_or_else(|| {
            AwsError::validation(
                code,
                &[format!(
                    "Value null at '{}' failed to satisfy constraint: Member must not be null",
                    lower_first(key)
                )],
            )
        })
    }

    /// An integer given as a JSON number or as decimal text. `Err` carries the raw text when it
    /// is present but not an integer.
    pub fn i64(&self, key: &str) -> Result<Option<i64>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| n.to_string()),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| s.clone()),
            Some(other) => Err(other.to_string()),
        }
    }

    pub fn f64(&self, key: &str) -> Result<Option<f64>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_f64().map(Some).ok_or_else(|| n.to_string()),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| s.clone()),
            Some(other) => Err(other.to_string()),
        }
    }

    /// A boolean given as JSON or as `true`/`false` text.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(other) => Err(other.to_string()),
        }
    }

    /// A list member. Query protocols send an empty list as the bare key with an empty value:
    /// that is `Some(vec![])`, distinct from an absent member (`None`).
    pub fn list(&self, key: &str) -> Option<Vec<Input>> {
        match self.get(key)? {
            Value::Array(a) => Some(a.iter().cloned().map(Input).collect()),
            Value::String(s) if s.is_empty() => Some(Vec::new()),
            Value::Object(m) if m.is_empty() => Some(Vec::new()),
            other => Some(vec![Input(other.clone())]),
        }
    }

    /// A list of strings (scalars rendered as text).
    pub fn str_list(&self, key: &str) -> Option<Vec<String>> {
        self.list(key).map(|l| {
            l.into_iter()
                .filter_map(|i| match i.0 {
                    Value::String(s) => Some(s),
                    Value::Number(n) => Some(n.to_string()),
                    Value::Bool(b) => Some(b.to_string()),
                    _ => None,
                })
                .collect()
        })
    }

    pub fn as_str(&self) -> Option<&str> {
        self.0.as_str()
    }

    pub fn is_null(&self) -> bool {
        self.0.is_null()
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lenient_scalars() {
        let i = Input(json!({"a": "5", "b": 6, "c": "true", "d": false, "e": "x", "n": null}));
        assert_eq!(i.i64("a"), Ok(Some(5)));
        assert_eq!(i.i64("b"), Ok(Some(6)));
        assert_eq!(i.i64("e"), Err("x".to_string()));
        assert_eq!(i.bool("c"), Ok(Some(true)));
        assert_eq!(i.bool("d"), Ok(Some(false)));
        assert_eq!(i.str("n"), None);
        assert!(!i.has("n"));
    }

    #[test]
    fn empty_query_list_is_empty_not_absent() {
        let i = Input(json!({"SecurityGroups": "", "Subnets": ["a", "b"]}));
        assert_eq!(i.str_list("SecurityGroups"), Some(vec![]));
        assert_eq!(
            i.str_list("Subnets"),
            Some(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(i.str_list("Missing"), None);
    }

    #[test]
    fn required_string_message() {
        let e = Input::empty()
            .req_str("Name", "ValidationError")
            .unwrap_err();
        assert_eq!(e.message, "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null");
    }
}
