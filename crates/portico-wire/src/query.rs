//! Decoding awsQuery / ec2Query form parameters into one JSON value.
//!
//! `Subnets.member.1=a` -> `{"Subnets":["a"]}`; `Filter.1.Name=x&Filter.1.Value.1=y` ->
//! `{"Filter":[{"Name":"x","Value":["y"]}]}`; `Attributes.entry.1.key=k&...value=v` ->
//! `{"Attributes":{"k":"v"}}`. A numeric path segment means a list index (1-based, sorted, gaps
//! allowed). Scalars stay strings; `portico_core::Input` reads them leniently.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug)]
enum Node {
    Leaf(String),
    Map(BTreeMap<String, Node>, Vec<String>),
    List(BTreeMap<u64, Node>),
}

impl Node {
    fn map() -> Node {
        Node::Map(BTreeMap::new(), Vec::new())
    }

    fn insert(&mut self, path: &[String], value: String) {
        let Some((head, rest)) = path.split_first() else {
            return;
        };
        // `member.N` and `entry.N` are list/map item markers: skip the marker word.
        let (key, rest) = if (head == "member" || head == "entry" || head == "item")
            && rest.first().is_some_and(|n| n.parse::<u64>().is_ok())
        {
            (rest[0].clone(), &rest[1..])
        } else {
            (head.clone(), rest)
        };
        if let Ok(idx) = key.parse::<u64>() {
            if !matches!(self, Node::List(_)) {
                *self = Node::List(BTreeMap::new());
            }
            if let Node::List(items) = self {
                let child = items.entry(idx).or_insert_with(Node::map);
                if rest.is_empty() {
                    *child = Node::Leaf(value);
                } else {
                    child.insert(rest, value);
                }
            }
            return;
        }
        if !matches!(self, Node::Map(..)) {
            *self = Node::map();
        }
        if let Node::Map(m, order) = self {
            if !m.contains_key(&key) {
                order.push(key.clone());
            }
            let child = m.entry(key).or_insert_with(Node::map);
            if rest.is_empty() {
                if matches!(child, Node::Map(c, _) if c.is_empty()) {
                    *child = Node::Leaf(value);
                }
            } else {
                child.insert(rest, value);
            }
        }
    }

    fn into_value(self) -> Value {
        match self {
            Node::Leaf(s) => Value::String(s),
            Node::List(items) => {
                let vals: Vec<Value> = items.into_values().map(Node::into_value).collect();
                // A map encoded as entry.N.key / entry.N.value becomes an object.
                let is_entries = !vals.is_empty()
                    && vals.iter().all(|v| {
                        v.as_object().is_some_and(|o| {
                            o.len() <= 2
                                && o.contains_key("key")
                                && o.keys().all(|k| k == "key" || k == "value")
                        })
                    });
                if is_entries {
                    let mut m = Map::new();
                    for v in vals {
                        let k = v
                            .get("key")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string();
                        m.insert(
                            k,
                            v.get("value")
                                .cloned()
                                .unwrap_or(Value::String(String::new())),
                        );
                    }
                    Value::Object(m)
                } else {
                    Value::Array(vals)
                }
            }
            Node::Map(mut m, order) => {
                let mut out = Map::new();
                for k in order {
                    if let Some(n) = m.remove(&k) {
                        out.insert(k, n.into_value());
                    }
                }
                Value::Object(out)
            }
        }
    }
}

/// Decodes `application/x-www-form-urlencoded` pairs (body or query string). Returns the
/// `Action`, the `Version` and the remaining parameters as a JSON object.
pub fn decode(form: &[u8]) -> (Option<String>, Option<String>, Value) {
    let mut action = None;
    let mut version = None;
    let mut root = Node::map();
    for (k, v) in form_urlencoded::parse(form) {
        match k.as_ref() {
            "Action" => action = Some(v.into_owned()),
            "Version" => version = Some(v.into_owned()),
            _ => {
                let path: Vec<String> = k.split('.').map(str::to_string).collect();
                root.insert(&path, v.into_owned());
            }
        }
    }
    (action, version, root.into_value())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(s: &str) -> Value {
        decode(s.as_bytes()).2
    }

    #[test]
    fn scalars_and_structures() {
        assert_eq!(
            decode(b"Action=CreateTargetGroup&Version=2015-12-01&Name=web&Matcher.HttpCode=200"),
            (
                Some("CreateTargetGroup".into()),
                Some("2015-12-01".into()),
                json!({"Name":"web","Matcher":{"HttpCode":"200"}})
            )
        );
    }

    #[test]
    fn member_lists_sorted_with_gaps() {
        assert_eq!(
            d("Subnets.member.2=b&Subnets.member.1=a&Subnets.member.5=c"),
            json!({"Subnets":["a","b","c"]})
        );
        assert_eq!(
            d("Tags.member.1.Key=env&Tags.member.1.Value=dev"),
            json!({"Tags":[{"Key":"env","Value":"dev"}]})
        );
        assert_eq!(
            d("DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn=arn"),
            json!({"DefaultActions":[{"ForwardConfig":{"TargetGroups":[{"TargetGroupArn":"arn"}]}}]})
        );
    }

    #[test]
    fn ec2_lists() {
        assert_eq!(
            d("Filter.1.Name=vpc-id&Filter.1.Value.1=vpc-1&Filter.1.Value.2=vpc-2&SubnetId.1=s"),
            json!({"Filter":[{"Name":"vpc-id","Value":["vpc-1","vpc-2"]}],"SubnetId":["s"]})
        );
    }

    #[test]
    fn entry_maps_and_empty_lists() {
        assert_eq!(
            d("Attributes.entry.1.key=k&Attributes.entry.1.value=v&SecurityGroups="),
            json!({"Attributes":{"k":"v"},"SecurityGroups":""})
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(d("Name=a%20b+c"), json!({"Name":"a b c"}));
    }
}
