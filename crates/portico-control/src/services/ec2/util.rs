//! EC2 helpers every operation uses: input members under either their wire name or their model
//! name, `Filter.N` matching with `*`/`?` wildcards, tags and tag specifications, CIDR math,
//! pagination, and rendering records (internal `_` members stripped).

use portico_core::{AwsError, AwsResult, Input};
use serde_json::{json, Map, Value};

/// A list member given under any of `keys` (ec2Query wire names such as `Filter`, `VpcId`,
/// `TagSpecification`, or the model names CloudFormation passes: `Filters`, `VpcIds`).
pub(crate) fn list_any(input: &Input, keys: &[&str]) -> Vec<Input> {
    keys.iter().find_map(|k| input.list(k)).unwrap_or_default()
}

pub(crate) fn strs_any(input: &Input, keys: &[&str]) -> Vec<String> {
    keys.iter()
        .find_map(|k| input.str_list(k))
        .unwrap_or_default()
}

pub(crate) fn str_any<'a>(input: &'a Input, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| input.str(k))
}

/// EC2's error for a missing required parameter.
pub(crate) fn missing(name: &str) -> AwsError {
    AwsError::bad(
        "MissingParameter",
        format!("The request must contain the parameter {name}"),
    )
}

/// EC2's error when a Modify*Attribute call names no attribute (ModifyInstanceAttribute's text,
/// from public error reports; the other attribute calls are taken to share it).
pub(crate) fn no_attributes() -> AwsError {
    AwsError::bad("InvalidParameterCombination", "No attributes specified.")
}

/// EC2's error when a call that changes one attribute at a time names several, listed by their
/// attribute names (ModifyVpcAttribute's text, from public error reports: "Fields for multiple
/// attribute types specified: enableDnsSupport, enableDnsHostnames").
pub(crate) fn multiple_attributes<'a>(names: impl IntoIterator<Item = &'a str>) -> AwsError {
    let names: Vec<&str> = names.into_iter().collect();
    AwsError::bad(
        "InvalidParameterCombination",
        format!(
            "Fields for multiple attribute types specified: {}",
            names.join(", ")
        ),
    )
}

pub(crate) fn req<'a>(input: &'a Input, keys: &[&str]) -> AwsResult<&'a str> {
    str_any(input, keys).ok_or_else(|| missing(keys[0]))
}

pub(crate) fn invalid_value(value: &str, param: &str) -> AwsError {
    AwsError::bad(
        "InvalidParameterValue",
        format!("Value ({value}) for parameter {param} is invalid."),
    )
}

/// A boolean member (`true`/`false` text or JSON), or a `{"Value": bool}` AttributeBooleanValue.
pub(crate) fn bool_member(input: &Input, key: &str) -> AwsResult<Option<bool>> {
    let v = match input.get(key) {
        None => return Ok(None),
        Some(Value::Object(_)) => input.sub(key),
        Some(_) => return input.bool(key).map_err(|raw| invalid_value(&raw, key)),
    };
    v.bool("Value").map_err(|raw| invalid_value(&raw, key))
}

pub(crate) fn int_member(input: &Input, key: &str) -> AwsResult<Option<i64>> {
    input.i64(key).map_err(|raw| {
        AwsError::bad(
            "InvalidParameterValue",
            format!("Invalid value '{raw}' for {key}"),
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Filters

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

pub(crate) fn filters(input: &Input) -> Vec<Filter> {
    list_any(input, &["Filter", "Filters"])
        .into_iter()
        .map(|f| Filter {
            name: f.string("Name").unwrap_or_default(),
            values: strs_any(&f, &["Value", "Values"]),
        })
        .collect()
}

/// `*` matches any run of characters, `?` any one character; everything else literally.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Collects the scalar values at a dotted path (`ipPermissions.groups.groupId`), flattening
/// arrays along the way. Booleans and numbers become text.
pub(crate) fn path_values(v: &Value, path: &str, out: &mut Vec<String>) {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    match v {
        Value::Array(a) => {
            for x in a {
                path_values(x, path, out);
            }
        }
        Value::Object(m) => match (m.get(head), rest) {
            (Some(child), Some(r)) => path_values(child, r, out),
            (Some(child), None) => scalars(child, out),
            (None, _) => {}
        },
        _ => {}
    }
}

fn scalars(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Bool(b) => out.push(b.to_string()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(a) => a.iter().for_each(|x| scalars(x, out)),
        _ => {}
    }
}

/// Whether a rendered record passes every filter. `table` maps filter names to paths in the
/// rendered record; `tag:K`, `tag-key` and `tag-value` work on any record with a `tagSet`.
/// An unknown filter name is AWS's `InvalidParameterValue`.
pub(crate) fn matches(
    record: &Value,
    filters: &[Filter],
    table: &[(&str, &str)],
    tag_key: &str,
) -> AwsResult<bool> {
    for f in filters {
        let mut vals = Vec::new();
        if let Some(k) = f.name.strip_prefix("tag:") {
            for t in record
                .get(tag_key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if t.get("key").and_then(Value::as_str) == Some(k) {
                    scalars(t.get("value").unwrap_or(&Value::Null), &mut vals);
                }
            }
        } else if f.name == "tag-key" {
            path_values(record, &format!("{tag_key}.key"), &mut vals);
        } else if f.name == "tag-value" {
            path_values(record, &format!("{tag_key}.value"), &mut vals);
        } else if let Some((_, path)) = table.iter().find(|(n, _)| *n == f.name) {
            path_values(record, path, &mut vals);
        } else {
            return Err(AwsError::bad(
                "InvalidParameterValue",
                format!("The filter '{}' is invalid", f.name),
            ));
        }
        if !f.values.iter().any(|pat| vals.iter().any(|v| glob(pat, v))) {
            return Ok(false);
        }
    }
    Ok(true)
}

// ---------------------------------------------------------------------------------------------
// Tags

/// Tags from a `Tag.N` / `Tags` list as `{"key","value"}` objects (EC2's tagSet shape).
pub(crate) fn tag_list(items: &[Input]) -> Vec<Value> {
    items
        .iter()
        .filter_map(|t| {
            let k = t.string("Key")?;
            Some(json!({"key": k, "value": t.string("Value").unwrap_or_default()}))
        })
        .collect()
}

/// Tags a Create* call asks for through `TagSpecification.N` for `resource_type`.
/// A specification for another resource type is AWS's InvalidParameterValue; a reserved `aws:`
/// key (unless CloudFormation sets its own) is InvalidTagKey.Malformed.
pub(crate) fn spec_tags(input: &Input, resource_type: &str) -> AwsResult<Vec<Value>> {
    let mut out = Vec::new();
    for spec in list_any(input, &["TagSpecification", "TagSpecifications"]) {
        let rt = spec.str("ResourceType").unwrap_or(resource_type);
        if rt != resource_type {
            return Err(AwsError::bad(
                "InvalidParameterValue",
                format!("'{rt}' is not a valid taggable resource type for this operation."),
            ));
        }
        out.extend(tag_list(&list_any(&spec, &["Tag", "Tags"])));
    }
    if let Some(k) = out
        .iter()
        .filter_map(|t| t.get("key").and_then(Value::as_str))
        .find(|k| crate::services::tags::refused(k))
    {
        return Err(AwsError::bad(
            "InvalidTagKey.Malformed",
            format!("The tag key '{k}' is not valid. Tag keys starting with 'aws:' are reserved for internal use."),
        ));
    }
    Ok(out)
}

/// Merges `add` into a tagSet (same key replaces the value).
pub(crate) fn merge_tags(tag_set: &mut Vec<Value>, add: &[Value]) {
    for t in add {
        let k = t.get("key").cloned();
        if let Some(existing) = tag_set.iter_mut().find(|e| e.get("key") == k.as_ref()) {
            *existing = t.clone();
        } else {
            tag_set.push(t.clone());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CIDRs

/// Parses an IPv4 CIDR that is exactly a network address (`10.0.0.0/16`, not `10.0.0.1/16`).
pub(crate) fn parse_cidr(s: &str) -> Option<ipnet::Ipv4Net> {
    let net: ipnet::Ipv4Net = s.parse().ok()?;
    (net.network() == net.addr()).then_some(net)
}

pub(crate) fn overlaps(a: &ipnet::Ipv4Net, b: &ipnet::Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Addresses a subnet offers to ENIs (AWS reserves five).
pub(crate) fn usable_count(cidr: &str) -> u64 {
    super::shared::usable_range(cidr)
        .map(|(a, b)| u64::from(b - a + 1))
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Rendering and pagination

/// A record body without its internal (`_`-prefixed) members.
pub(crate) fn public(body: &Value) -> Value {
    match body {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('_'))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Map<String, Value>>(),
        ),
        other => other.clone(),
    }
}

/// One page of `items` from `NextToken` (an offset) and `MaxResults`; returns the page and the
/// next token.
pub(crate) fn page(input: &Input, items: Vec<Value>) -> AwsResult<(Vec<Value>, Option<String>)> {
    let start = match str_any(input, &["NextToken"]) {
        None => 0,
        Some(t) => t.parse::<usize>().map_err(|_| {
            AwsError::bad(
                "InvalidNextToken",
                "The token provided is invalid or has expired",
            )
        })?,
    };
    let max = int_member(input, "MaxResults")?;
    let max = match max {
        Some(m) if !(5..=1000).contains(&m) => {
            return Err(AwsError::bad(
                "InvalidParameterValue",
                format!("Value ( {m} ) for parameter maxResults is invalid. Expecting a value greater than 5."),
            ))
        }
        Some(m) => m as usize,
        None => usize::MAX,
    };
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(start).take(max).collect();
    let next = (start.saturating_add(page.len()) < total).then(|| (start + page.len()).to_string());
    Ok((page, next))
}

/// Region short code used in zone ids: `us-east-1` -> `use1`, `ap-southeast-2` -> `apse2`.
pub(crate) fn region_code(region: &str) -> String {
    let parts: Vec<&str> = region.split('-').collect();
    if parts.len() < 3 {
        return region.replace('-', "");
    }
    let dir = parts[1..parts.len() - 1]
        .iter()
        .map(|p| {
            p.replace("north", "n")
                .replace("south", "s")
                .replace("east", "e")
                .replace("west", "w")
                .replace("central", "c")
        })
        .collect::<String>();
    format!("{}{}{}", parts[0], dir, parts[parts.len() - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let cases = [
            ("vpc-*", "vpc-123", true),
            ("vpc-*", "subnet-1", false),
            ("*", "", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*web*", "my-web-sg", true),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("10.0.*.0/24", "10.0.1.0/24", true),
        ];
        for (p, t, want) in cases {
            assert_eq!(glob(p, t), want, "{p} vs {t}");
        }
    }

    #[test]
    fn filter_matching() {
        let rec = json!({
            "vpcId": "vpc-1", "isDefault": false,
            "ipPermissions": [{"groups": [{"groupId": "sg-a"}, {"groupId": "sg-b"}]}],
            "tagSet": [{"key": "Name", "value": "tutorial-public-a"}, {"key": "tier", "value": "public"}]
        });
        let table = [
            ("vpc-id", "vpcId"),
            ("is-default", "isDefault"),
            ("ip-permission.group-id", "ipPermissions.groups.groupId"),
        ];
        let f = |n: &str, v: &[&str]| Filter {
            name: n.into(),
            values: v.iter().map(|s| s.to_string()).collect(),
        };
        let check = |fs: Vec<Filter>| matches(&rec, &fs, &table, "tagSet").unwrap();
        assert!(check(vec![f("vpc-id", &["vpc-2", "vpc-1"])]));
        assert!(!check(vec![f("vpc-id", &["vpc-2"])]));
        assert!(check(vec![f("is-default", &["false"])]));
        assert!(check(vec![f("ip-permission.group-id", &["sg-b"])]));
        assert!(check(vec![f("tag:Name", &["tutorial-public-*"])]));
        assert!(!check(vec![f("tag:Name", &["*private*"])]));
        assert!(check(vec![
            f("tag-key", &["tier"]),
            f("tag-value", &["public"])
        ]));
        assert!(!check(vec![f("tag-key", &["tier"]), f("vpc-id", &["x"])]));
        assert!(check(vec![]));
        let e = matches(&rec, &[f("bogus", &["x"])], &table, "tagSet").unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
        assert_eq!(e.message, "The filter 'bogus' is invalid");
    }

    #[test]
    fn cidr_math() {
        assert!(parse_cidr("10.0.0.0/16").is_some());
        assert!(parse_cidr("10.0.0.1/16").is_none());
        assert!(parse_cidr("10.0.0.0/33").is_none());
        assert!(parse_cidr("nope").is_none());
        let a = parse_cidr("10.0.0.0/16").unwrap();
        let b = parse_cidr("10.0.1.0/24").unwrap();
        let c = parse_cidr("10.1.0.0/24").unwrap();
        assert!(overlaps(&a, &b) && overlaps(&b, &a));
        assert!(!overlaps(&a, &c));
        assert!(a.contains(&b) && !a.contains(&c));
        assert_eq!(usable_count("10.0.0.0/24"), 251);
        assert_eq!(usable_count("10.0.0.0/28"), 11);
        assert_eq!(usable_count("172.31.0.0/20"), 4091);
    }

    proptest::proptest! {
        #[test]
        fn glob_literal_and_star(text in "[a-z0-9./-]{0,20}", cut in 0usize..20) {
            // A text matches itself, `*`, and any prefix followed by `*`.
            proptest::prop_assert!(glob(&text, &text));
            proptest::prop_assert!(glob("*", &text));
            let cut = cut.min(text.len());
            let pattern = format!("{}*", &text[..cut]);
            proptest::prop_assert!(glob(&pattern, &text));
            let q = "?".repeat(text.len());
            proptest::prop_assert!(glob(&q, &text));
        }

        #[test]
        fn subnets_inside_vpc_never_overlap_siblings(a in 0u32..256, b in 0u32..256, len in 20u8..=28) {
            let vpc = parse_cidr("10.0.0.0/16").unwrap();
            let shift = 32 - u32::from(len);
            let base = u32::from(vpc.network());
            let mk = |i: u32| {
                let n = base + ((i << shift) & 0xffff);
                parse_cidr(&format!("{}/{len}", std::net::Ipv4Addr::from(n))).unwrap()
            };
            let (x, y) = (mk(a), mk(b));
            proptest::prop_assert!(vpc.contains(&x) && vpc.contains(&y));
            proptest::prop_assert_eq!(overlaps(&x, &y), x == y);
            proptest::prop_assert_eq!(usable_count(&x.to_string()), (1u64 << shift) - 5);
        }
    }

    #[test]
    fn region_codes() {
        assert_eq!(region_code("us-east-1"), "use1");
        assert_eq!(region_code("eu-west-1"), "euw1");
        assert_eq!(region_code("ap-southeast-2"), "apse2");
        assert_eq!(region_code("eu-central-1"), "euc1");
        assert_eq!(region_code("ap-northeast-1"), "apne1");
    }

    #[test]
    fn pages() {
        let items: Vec<Value> = (0..12).map(|i| json!(i)).collect();
        let i = Input(json!({"MaxResults": "5"}));
        let (p, n) = page(&i, items.clone()).unwrap();
        assert_eq!(p.len(), 5);
        assert_eq!(n.as_deref(), Some("5"));
        let i = Input(json!({"MaxResults": "5", "NextToken": "10"}));
        let (p, n) = page(&i, items.clone()).unwrap();
        assert_eq!(p, vec![json!(10), json!(11)]);
        assert_eq!(n, None);
        assert!(page(&Input(json!({"NextToken": "x"})), items).is_err());
    }
}
