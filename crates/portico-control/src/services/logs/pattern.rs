//! CloudWatch Logs filter patterns: the parsed form and matching a message against it.
//!
//! Supported: the empty pattern (everything); terms (`ERROR`, all must appear, case-sensitive);
//! quoted phrases (`"connection reset"`); `?a ?b` (any of); `-term` (must not appear, with at
//! least one positive term); JSON patterns `{ $.field OP value }` with `=`, `!=`, `<`, `<=`, `>`,
//! `>=`, `*` wildcards in string values, `EXISTS`/`NOT EXISTS`, and `&&` / `||` joins (no
//! parentheses); space-delimited patterns `[a, b=x, ...]` with `=`/`!=`/numeric comparisons.
//! Anything else is AWS's `InvalidParameterException: Invalid filter pattern`.

use portico_core::AwsError;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Pattern {
    All,
    Terms {
        all: Vec<String>,
        any: Vec<String>,
        none: Vec<String>,
    },
    Json(Vec<Vec<JsonCond>>),
    Fields(Vec<FieldCond>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JsonCond {
    path: Vec<String>,
    op: Op,
    value: Literal,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FieldCond {
    Any(String),
    Ellipsis,
    Cond(String, Op, Literal),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Exists,
    NotExists,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
    None,
}

fn invalid() -> AwsError {
    AwsError::bad("InvalidParameterException", "Invalid filter pattern")
}

/// Splits on whitespace, keeping double-quoted phrases whole (quotes removed).
fn tokens(s: &str) -> Result<Vec<(String, bool)>, AwsError> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut prefix = String::new();
        if c == '?' || c == '-' {
            prefix.push(c);
            chars.next();
        }
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut phrase = String::new();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            phrase.push(n);
                        }
                    }
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => phrase.push(c),
                }
            }
            if !closed {
                return Err(invalid());
            }
            out.push((format!("{prefix}{phrase}"), true));
        } else {
            let mut word = prefix;
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
            out.push((word, false));
        }
    }
    Ok(out)
}

pub(crate) fn parse(pattern: &str) -> Result<Pattern, AwsError> {
    let p = pattern.trim();
    if p.is_empty() || p == "\"\"" {
        return Ok(Pattern::All);
    }
    if let Some(inner) = p.strip_prefix('{') {
        let inner = inner.strip_suffix('}').ok_or_else(invalid)?;
        return parse_json(inner).map(Pattern::Json);
    }
    if let Some(inner) = p.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or_else(invalid)?;
        return parse_fields(inner).map(Pattern::Fields);
    }
    let (mut all, mut any, mut none) = (Vec::new(), Vec::new(), Vec::new());
    for (t, _quoted) in tokens(p)? {
        if let Some(rest) = t.strip_prefix('?') {
            any.push(rest.to_string());
        } else if let Some(rest) = t.strip_prefix('-') {
            none.push(rest.to_string());
        } else {
            all.push(t);
        }
    }
    if !any.is_empty() && (!all.is_empty() || !none.is_empty()) {
        return Err(invalid());
    }
    if all.is_empty() && any.is_empty() {
        return Err(invalid());
    }
    Ok(Pattern::Terms { all, any, none })
}

fn parse_literal(s: &str) -> Result<Literal, AwsError> {
    let s = s.trim();
    if let Some(q) = s.strip_prefix('"') {
        return Ok(Literal::Str(
            q.strip_suffix('"').ok_or_else(invalid)?.to_string(),
        ));
    }
    match s {
        "true" => return Ok(Literal::Bool(true)),
        "false" => return Ok(Literal::Bool(false)),
        "NULL" | "null" => return Ok(Literal::Null),
        "" => return Err(invalid()),
        _ => {}
    }
    Ok(match s.parse::<f64>() {
        Ok(n) => Literal::Num(n),
        Err(_) => Literal::Str(s.to_string()),
    })
}

fn split_op(s: &str) -> Result<(String, Op, Literal), AwsError> {
    let s = s.trim();
    if let Some(lhs) = s.strip_suffix("NOT EXISTS") {
        return Ok((lhs.trim().to_string(), Op::NotExists, Literal::None));
    }
    if let Some(lhs) = s.strip_suffix("IS NULL") {
        return Ok((lhs.trim().to_string(), Op::Eq, Literal::Null));
    }
    if let Some(lhs) = s.strip_suffix("EXISTS") {
        return Ok((lhs.trim().to_string(), Op::Exists, Literal::None));
    }
    for (tok, op) in [
        ("!=", Op::Ne),
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("=", Op::Eq),
        ("<", Op::Lt),
        (">", Op::Gt),
    ] {
        if let Some((l, r)) = s.split_once(tok) {
            return Ok((l.trim().to_string(), op, parse_literal(r)?));
        }
    }
    Err(invalid())
}

fn parse_json(inner: &str) -> Result<Vec<Vec<JsonCond>>, AwsError> {
    let mut groups = Vec::new();
    for alt in inner.split("||") {
        let mut conds = Vec::new();
        for part in alt.split("&&") {
            let part = part.trim().trim_start_matches('(').trim_end_matches(')');
            let (lhs, op, value) = split_op(part)?;
            let path = lhs.strip_prefix('$').ok_or_else(invalid)?;
            let path: Vec<String> = path
                .split('.')
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect();
            if path.is_empty() {
                return Err(invalid());
            }
            conds.push(JsonCond { path, op, value });
        }
        groups.push(conds);
    }
    Ok(groups)
}

fn parse_fields(inner: &str) -> Result<Vec<FieldCond>, AwsError> {
    let mut out = Vec::new();
    for f in inner.split(',') {
        let f = f.trim();
        if f == "..." {
            out.push(FieldCond::Ellipsis);
        } else if f.contains(['=', '<', '>']) {
            let (name, op, value) = split_op(f)?;
            out.push(FieldCond::Cond(name, op, value));
        } else if !f.is_empty() && f.chars().all(|c| c.is_alphanumeric() || c == '_') {
            out.push(FieldCond::Any(f.to_string()));
        } else {
            return Err(invalid());
        }
    }
    Ok(out)
}

/// `*` matches any run of characters; everything else literally.
fn wildcard(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(pos) => rest = &rest[pos + part.len()..],
                None => return false,
            }
        }
    }
    true
}

fn compare_text(text: &str, op: Op, lit: &Literal) -> bool {
    match lit {
        Literal::Num(n) => match text.parse::<f64>() {
            Ok(v) => compare_num(v, op, *n),
            Err(_) => op == Op::Ne,
        },
        Literal::Str(s) => match op {
            Op::Eq => wildcard(s, text),
            Op::Ne => !wildcard(s, text),
            _ => false,
        },
        Literal::Bool(b) => match op {
            Op::Eq => text == b.to_string(),
            Op::Ne => text != b.to_string(),
            _ => false,
        },
        Literal::Null | Literal::None => false,
    }
}

fn compare_num(v: f64, op: Op, n: f64) -> bool {
    match op {
        Op::Eq => v == n,
        Op::Ne => v != n,
        Op::Lt => v < n,
        Op::Le => v <= n,
        Op::Gt => v > n,
        Op::Ge => v >= n,
        Op::Exists | Op::NotExists => false,
    }
}

fn json_cond(doc: &Value, c: &JsonCond) -> bool {
    let mut cur = Some(doc);
    for seg in &c.path {
        let (name, index) = match seg.split_once('[') {
            Some((n, i)) => (n, i.trim_end_matches(']').parse::<usize>().ok()),
            None => (seg.as_str(), None),
        };
        cur = cur.and_then(|v| {
            if name.is_empty() {
                Some(v)
            } else {
                v.get(name)
            }
        });
        if let Some(i) = index {
            cur = cur.and_then(|v| v.get(i));
        }
    }
    match (c.op, cur) {
        (Op::Exists, v) => v.is_some(),
        (Op::NotExists, v) => v.is_none(),
        (_, None) => false,
        (op, Some(v)) => match (&c.value, v) {
            (Literal::Null, Value::Null) => op == Op::Eq,
            (Literal::Null, _) => op == Op::Ne,
            (Literal::Num(n), Value::Number(x)) => {
                x.as_f64().is_some_and(|x| compare_num(x, op, *n))
            }
            (Literal::Bool(b), Value::Bool(x)) => match op {
                Op::Eq => b == x,
                Op::Ne => b != x,
                _ => false,
            },
            (Literal::Str(_), Value::String(x)) => compare_text(x, op, &c.value),
            (_, Value::String(x)) => compare_text(x, op, &c.value),
            _ => op == Op::Ne,
        },
    }
}

/// Splits a space-delimited message into fields; `"..."` and `[...]` are single fields.
fn fields(msg: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = msg.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let close = match c {
            '"' => Some('"'),
            '[' => Some(']'),
            _ => None,
        };
        let mut f = String::new();
        if let Some(close) = close {
            chars.next();
            for c in chars.by_ref() {
                if c == close {
                    break;
                }
                f.push(c);
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                f.push(c);
                chars.next();
            }
        }
        out.push(f);
    }
    out
}

/// Matches fields against conditions; on success, the named fields' values in order.
fn field_match(conds: &[FieldCond], fs: &[String]) -> Option<Vec<(String, String)>> {
    match conds.split_first() {
        None => fs.is_empty().then(Vec::new),
        Some((FieldCond::Ellipsis, rest)) => {
            (0..=fs.len()).find_map(|skip| field_match(rest, &fs[skip..]))
        }
        Some((c, rest)) => {
            let (f, frest) = fs.split_first()?;
            let name = match c {
                FieldCond::Cond(name, op, lit) => {
                    if !compare_text(f, *op, lit) {
                        return None;
                    }
                    name
                }
                FieldCond::Any(name) => name,
                FieldCond::Ellipsis => return None,
            };
            let mut out = vec![(format!("${name}"), f.clone())];
            out.extend(field_match(rest, frest)?);
            Some(out)
        }
    }
}

impl Pattern {
    pub(crate) fn matches(&self, msg: &str) -> bool {
        match self {
            Pattern::All => true,
            Pattern::Terms { all, any, none } => {
                (all.is_empty() || all.iter().all(|t| msg.contains(t.as_str())))
                    && (any.is_empty() || any.iter().any(|t| msg.contains(t.as_str())))
                    && !none.iter().any(|t| msg.contains(t.as_str()))
            }
            Pattern::Json(groups) => match serde_json::from_str::<Value>(msg) {
                Ok(doc) => groups.iter().any(|g| g.iter().all(|c| json_cond(&doc, c))),
                Err(_) => false,
            },
            Pattern::Fields(conds) => field_match(conds, &fields(msg)).is_some(),
        }
    }

    /// The values a matching space-delimited pattern extracts (`$name` -> field), as
    /// TestMetricFilter reports them; empty for other kinds of pattern.
    pub(crate) fn extract(&self, msg: &str) -> Vec<(String, String)> {
        match self {
            Pattern::Fields(conds) => field_match(conds, &fields(msg)).unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pattern: &str, msg: &str, want: bool) {
        let p = parse(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
        assert_eq!(p.matches(msg), want, "{pattern:?} on {msg:?}");
    }

    #[test]
    fn terms_and_phrases() {
        check("", "anything", true);
        check("ERROR", "2025 ERROR boom", true);
        check("ERROR", "2025 error boom", false);
        check("ERROR boom", "boom ... ERROR", true);
        check("ERROR boom", "ERROR only", false);
        check("\"connection reset\"", "tcp connection reset by peer", true);
        check("\"connection reset\"", "reset connection", false);
        check("?WARN ?ERROR", "a WARN b", true);
        check("?WARN ?ERROR", "INFO", false);
        check("ERROR -timeout", "ERROR disk", true);
        check("ERROR -timeout", "ERROR timeout", false);
        check("GET \"/health check\"", "GET /health check 200", true);
    }

    #[test]
    fn json_patterns() {
        let msg = r#"{"level":"ERROR","latency":250,"user":{"id":"u-1"},"ok":false}"#;
        check(r#"{ $.level = "ERROR" }"#, msg, true);
        check(r#"{ $.level = "ERR*" }"#, msg, true);
        check(r#"{ $.level != "ERROR" }"#, msg, false);
        check("{ $.latency > 200 }", msg, true);
        check("{ $.latency > 300 }", msg, false);
        check(r#"{ $.user.id = "u-1" && $.latency >= 250 }"#, msg, true);
        check(r#"{ $.user.id = "u-2" || $.ok = false }"#, msg, true);
        check("{ $.missing EXISTS }", msg, false);
        check("{ $.missing NOT EXISTS }", msg, true);
        check(r#"{ $.level = "ERROR" }"#, "not json ERROR", false);
    }

    #[test]
    fn field_patterns() {
        let msg = r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 404 2326"#;
        check(
            "[ip, id, user, timestamp, request, status_code = 404, size]",
            msg,
            true,
        );
        check(
            "[ip, id, user, timestamp, request, status_code = 200, size]",
            msg,
            false,
        );
        check("[..., status_code >= 400, size]", msg, true);
        check("[ip = 127.0.0.*, ...]", msg, true);
    }

    #[test]
    fn extracted_fields() {
        let p = parse("[ip, user, ..., status = 404, size]").unwrap();
        assert_eq!(
            p.extract("1.2.3.4 bob x y 404 10"),
            vec![
                ("$ip".to_string(), "1.2.3.4".to_string()),
                ("$user".to_string(), "bob".to_string()),
                ("$status".to_string(), "404".to_string()),
                ("$size".to_string(), "10".to_string()),
            ]
        );
        assert!(p.extract("1.2.3.4 bob 200 10").is_empty());
    }

    #[test]
    fn invalid_patterns() {
        for bad in ["\"unclosed", "{ level = 1 }", "{ $.a = 1", "[a b]", "?a b"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
