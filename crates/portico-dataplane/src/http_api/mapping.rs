//! HOT PATH. Parameter mapping: `requestParameters` (`append|overwrite|remove:header.<name>`,
//! `...:querystring.<name>`, `overwrite:path`) and `responseParameters`
//! (`...:header.<name>`, `overwrite:statuscode`), with values built from static text and
//! `$request.*`, `$response.*`, `$context.*`, `$stageVariables.*` (also `${...}`).

use super::RequestContext;
use http::{HeaderMap, HeaderName, HeaderValue};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;
use std::collections::HashMap;

/// Characters left as they are in a query component.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Where mapping values come from.
pub(crate) struct Sources<'a> {
    pub headers: &'a HeaderMap,
    pub query: Option<&'a str>,
    /// The request path without the stage segment.
    pub path: &'a str,
    pub path_params: &'a [(String, String)],
    pub body: &'a [u8],
    pub ctx: &'a RequestContext,
    pub stage_vars: &'a HashMap<String, String>,
    /// Response side only.
    pub response: Option<(&'a HeaderMap, &'a [u8])>,
}

/// The request that will be sent to the integration, as mapping sees it.
pub(crate) struct Outgoing {
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
}

fn decode(s: &str) -> String {
    percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

pub(crate) fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn render_query(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, QUERY),
                utf8_percent_encode(v, QUERY)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Comma-joined values of a header (case-insensitive name).
fn header_values(h: &HeaderMap, name: &str) -> Option<String> {
    let vals: Vec<&str> = h
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!vals.is_empty()).then(|| vals.join(","))
}

fn json_path(body: &[u8], path: &str) -> Option<String> {
    // bodies are truncated at 100 KB before evaluation, as API Gateway does
    let body = &body[..body.len().min(100 * 1024)];
    let mut v: Value = serde_json::from_slice(body).ok()?;
    let path = path.trim_start_matches('$').trim_start_matches('.');
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, idx) = match part.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        if !name.is_empty() {
            v = v.get(name)?.clone();
        }
        if let Some(i) = idx {
            v = v.get(i)?.clone();
        }
    }
    Some(match v {
        Value::String(s) => s,
        other => other.to_string(),
    })
}

/// The value of one expression such as `request.header.x` (without `$`).
fn lookup(expr: &str, s: &Sources<'_>) -> Option<String> {
    if let Some(n) = expr.strip_prefix("request.header.") {
        return header_values(s.headers, n);
    }
    if let Some(n) = expr.strip_prefix("request.querystring.") {
        let vals: Vec<String> = parse_query(s.query.unwrap_or(""))
            .into_iter()
            .filter(|(k, _)| k == n)
            .map(|(_, v)| v)
            .collect();
        return (!vals.is_empty()).then(|| vals.join(","));
    }
    if expr == "request.path" {
        return Some(s.path.to_string());
    }
    if let Some(n) = expr.strip_prefix("request.path.") {
        return s
            .path_params
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone());
    }
    if let Some(p) = expr.strip_prefix("request.body") {
        return json_path(s.body, p);
    }
    if let Some(n) = expr.strip_prefix("context.") {
        return s.ctx.var(n);
    }
    if let Some(n) = expr.strip_prefix("stageVariables.") {
        return s.stage_vars.get(n).cloned();
    }
    if let Some((h, b)) = s.response {
        if let Some(n) = expr.strip_prefix("response.header.") {
            return header_values(h, n);
        }
        if let Some(p) = expr.strip_prefix("response.body") {
            return json_path(b, p);
        }
    }
    None
}

/// Evaluates a mapping value: static text with `$expr` / `${expr}` substituted.
pub(crate) fn eval(value: &str, s: &Sources<'_>) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(inner) = after.strip_prefix('{') {
            if let Some(end) = inner.find('}') {
                out.push_str(&lookup(&inner[..end], s).unwrap_or_default());
                rest = &inner[end + 1..];
                continue;
            }
        }
        let end = after
            .find(|c: char| {
                !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '[' | ']'))
            })
            .unwrap_or(after.len());
        let known = ["request.", "response.", "context.", "stageVariables."]
            .iter()
            .any(|p| after.starts_with(p));
        if end == 0 || !known {
            out.push('$');
            rest = after;
            continue;
        }
        out.push_str(&lookup(&after[..end], s).unwrap_or_default());
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

fn set_header(h: &mut HeaderMap, name: &str, value: &str, append: bool) {
    let (Ok(n), Ok(v)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) else {
        return;
    };
    if append {
        h.append(n, v);
    } else {
        h.insert(n, v);
    }
}

/// Applies `requestParameters` to the outgoing request.
pub(crate) fn apply_request(params: &[(String, String)], s: &Sources<'_>, out: &mut Outgoing) {
    for (key, value) in params {
        let Some((op, target)) = key.split_once(':') else {
            continue;
        };
        if target == "path" && op == "overwrite" {
            let p = eval(value, s);
            out.path = if p.starts_with('/') {
                p
            } else {
                format!("/{p}")
            };
        } else if let Some(name) = target.strip_prefix("header.") {
            match op {
                "remove" => {
                    out.headers.remove(name);
                }
                "overwrite" => set_header(&mut out.headers, name, &eval(value, s), false),
                "append" => set_header(&mut out.headers, name, &eval(value, s), true),
                _ => {}
            }
        } else if let Some(name) = target.strip_prefix("querystring.") {
            let mut q = parse_query(&out.query);
            match op {
                "remove" => q.retain(|(k, _)| k != name),
                "overwrite" => {
                    q.retain(|(k, _)| k != name);
                    q.push((name.to_string(), eval(value, s)));
                }
                "append" => q.push((name.to_string(), eval(value, s))),
                _ => {}
            }
            out.query = render_query(&q);
        }
    }
}

/// Applies `responseParameters` for the backend's status to the response.
pub(crate) fn apply_response(
    params: &[(String, String)],
    s: &Sources<'_>,
    status: &mut u16,
    headers: &mut HeaderMap,
) {
    for (key, value) in params {
        let Some((op, target)) = key.split_once(':') else {
            continue;
        };
        if target == "statuscode" && op == "overwrite" {
            if let Ok(code) = eval(value, s).trim().parse::<u16>() {
                if (100..=599).contains(&code) {
                    *status = code;
                }
            }
        } else if let Some(name) = target.strip_prefix("header.") {
            match op {
                "remove" => {
                    headers.remove(name);
                }
                "overwrite" => set_header(headers, name, &eval(value, s), false),
                "append" => set_header(headers, name, &eval(value, s), true),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_and_apply() {
        let mut h = HeaderMap::new();
        h.insert("x-a", "1".parse().unwrap());
        h.append("x-a", "2".parse().unwrap());
        let ctx = RequestContext {
            request_id: "rid=".into(),
            ..Default::default()
        };
        let vars = HashMap::from([("env".to_string(), "prod".to_string())]);
        let params = vec![("id".to_string(), "7".to_string())];
        let s = Sources {
            headers: &h,
            query: Some("q=a%20b&q=c"),
            path: "/items/7",
            path_params: &params,
            body: br#"{"user":{"name":"ann"},"list":[5,6]}"#,
            ctx: &ctx,
            stage_vars: &vars,
            response: None,
        };
        assert_eq!(eval("$request.header.X-A", &s), "1,2");
        assert_eq!(eval("$request.querystring.q", &s), "a b,c");
        assert_eq!(eval("${request.path.id}-$stageVariables.env", &s), "7-prod");
        assert_eq!(
            eval("$request.body.user.name/$request.body.list[1]", &s),
            "ann/6"
        );
        assert_eq!(eval("id=$context.requestId", &s), "id=rid=");
        assert_eq!(eval("$5 $", &s), "$5 $");
        let mut out = Outgoing {
            path: "/items/7".into(),
            query: "q=a%20b&keep=1".into(),
            headers: h.clone(),
        };
        apply_request(
            &[
                ("overwrite:path".into(), "/v2$request.path".into()),
                ("remove:header.x-a".into(), "''".into()),
                ("append:header.x-b".into(), "$request.path.id".into()),
                ("overwrite:querystring.q".into(), "z".into()),
                ("remove:querystring.keep".into(), "".into()),
            ],
            &s,
            &mut out,
        );
        assert_eq!(out.path, "/v2/items/7");
        assert_eq!(out.query, "q=z");
        assert!(out.headers.get("x-a").is_none());
        assert_eq!(out.headers["x-b"], "7");
    }
}
