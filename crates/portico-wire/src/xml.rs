//! Rendering a JSON value as AWS query-protocol XML. Objects become elements in insertion
//! order, arrays become wrapped lists of `<member>` (awsQuery) or `<item>` (ec2Query), null is
//! omitted, and all text is escaped.

use serde_json::Value;
use std::fmt::Write;

pub fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

/// Writes the members of `value` (an object) as child elements.
pub fn write_members(value: &Value, item: &str, out: &mut String) {
    if let Value::Object(m) = value {
        for (k, v) in m {
            write_element(k, v, item, out);
        }
    }
}

pub fn write_element(name: &str, value: &Value, item: &str, out: &mut String) {
    match value {
        Value::Null => {}
        Value::Array(a) => {
            if a.is_empty() {
                let _ = write!(out, "<{name}/>");
            } else {
                let _ = write!(out, "<{name}>");
                for v in a {
                    write_element(item, v, item, out);
                }
                let _ = write!(out, "</{name}>");
            }
        }
        Value::Object(_) => {
            let _ = write!(out, "<{name}>");
            write_members(value, item, out);
            let _ = write!(out, "</{name}>");
        }
        Value::String(s) => {
            let _ = write!(out, "<{name}>");
            escape(s, out);
            let _ = write!(out, "</{name}>");
        }
        Value::Bool(b) => {
            let _ = write!(out, "<{name}>{b}</{name}>");
        }
        Value::Number(n) => {
            let _ = write!(out, "<{name}>{n}</{name}>");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_nested_lists_and_escapes() {
        let mut s = String::new();
        write_members(
            &json!({"A": [{"B": "x<y"}, {"B": "z"}], "E": [], "N": null, "T": true, "I": 3}),
            "member",
            &mut s,
        );
        assert_eq!(
            s,
            "<A><member><B>x&lt;y</B></member><member><B>z</B></member></A><E/><T>true</T><I>3</I>"
        );
    }
}
