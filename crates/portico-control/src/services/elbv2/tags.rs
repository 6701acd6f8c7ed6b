//! Tags on load balancers, listeners, rules and target groups: AddTags, RemoveTags,
//! DescribeTags, and the tag validation create operations share.

use super::model::{self, Tag, KIND_LB, KIND_LISTENER, KIND_RULE, KIND_TG};
use super::{req, validation};
use crate::Ctx;
use portico_core::{AwsError, AwsResult, Input};
use portico_store::{Scope, Tx};
use serde_json::{json, Value};

/// `Tags[{Key, Value}]`, validated: keys 1-128, values 0-256, no duplicate keys.
pub(crate) fn parse_tags(input: &Input) -> AwsResult<Vec<Tag>> {
    let mut out: Vec<Tag> = Vec::new();
    for t in input.list("Tags").unwrap_or_default() {
        let key = t
            .str("Key")
            .ok_or_else(|| validation("A tag key must be specified"))?
            .to_string();
        let value = t.string("Value").unwrap_or_default();
        if key.is_empty() || key.chars().count() > 128 {
            return Err(super::constraint(
                &key,
                "tags.member.key",
                "Member must have length less than or equal to 128",
            ));
        }
        if value.chars().count() > 256 {
            return Err(super::constraint(
                &value,
                "tags.member.value",
                "Member must have length less than or equal to 256",
            ));
        }
        crate::services::tags::check_elbv2_key(&key)?;
        if out.iter().any(|o| o.key == key) {
            return Err(AwsError::bad(
                "DuplicateTagKeys",
                format!("Tag key '{key}' is duplicated"),
            ));
        }
        out.push(Tag { key, value });
    }
    if over_limit(&out) {
        return Err(too_many());
    }
    Ok(out)
}

/// More than 50 tags that count: AWS's own `aws:*` tags (CloudFormation's) do not.
fn over_limit(tags: &[Tag]) -> bool {
    crate::services::tags::counted_keys(tags.iter().map(|t| t.key.as_str())) > 50
}

fn too_many() -> AwsError {
    AwsError::bad(
        "TooManyTags",
        "The quota for the number of tags that can be assigned to a load balancer has been reached",
    )
}

/// A kind and its not-found error.
type KindOf = (&'static str, fn() -> AwsError);

fn kind_of(arn: &str) -> AwsResult<KindOf> {
    let res = arn.splitn(6, ':').nth(5).unwrap_or("");
    if res.starts_with("loadbalancer/") {
        Ok((KIND_LB, model::lb_not_found))
    } else if res.starts_with("listener-rule/") {
        Ok((KIND_RULE, model::rule_not_found))
    } else if res.starts_with("listener/") {
        Ok((KIND_LISTENER, model::listener_not_found))
    } else if res.starts_with("targetgroup/") {
        Ok((KIND_TG, model::tg_not_found))
    } else {
        Err(validation(format!("'{arn}' is not a valid ARN")))
    }
}

fn with_tags<T>(
    tx: &Tx<'_>,
    scope: &Scope,
    arn: &str,
    f: impl FnOnce(&mut Vec<Tag>) -> AwsResult<T>,
) -> AwsResult<T> {
    let (kind, nf) = kind_of(arn)?;
    let rec = tx.get(scope, kind, arn)?.ok_or_else(nf)?;
    let mut body = rec.body;
    let mut tags: Vec<Tag> = serde_json::from_value(body["tags"].take()).unwrap_or_default();
    let out = f(&mut tags)?;
    body["tags"] = serde_json::to_value(&tags).map_err(AwsError::internal)?;
    tx.put(
        scope,
        kind,
        arn,
        rec.parent.as_deref(),
        rec.name.as_deref(),
        &body,
    )?;
    Ok(out)
}

pub(crate) fn add(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let arns = input.str_list("ResourceArns").unwrap_or_default();
    if arns.is_empty() {
        req(input, "ResourceArns")?;
    }
    let new = parse_tags(input)?;
    let scope = ctx.scope.clone();
    ctx.store().write(|tx| {
        for arn in &arns {
            with_tags(tx, &scope, arn, |tags| {
                for t in &new {
                    match tags.iter_mut().find(|o| o.key == t.key) {
                        Some(o) => o.value = t.value.clone(),
                        None => tags.push(t.clone()),
                    }
                }
                if over_limit(tags) {
                    return Err(too_many());
                }
                Ok(())
            })?;
        }
        Ok(model::empty())
    })
}

pub(crate) fn remove(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let arns = input.str_list("ResourceArns").unwrap_or_default();
    if arns.is_empty() {
        req(input, "ResourceArns")?;
    }
    let keys = input.str_list("TagKeys").unwrap_or_default();
    if keys.is_empty() {
        req(input, "TagKeys")?;
    }
    for k in &keys {
        crate::services::tags::check_elbv2_key(k)?;
    }
    let scope = ctx.scope.clone();
    ctx.store().write(|tx| {
        for arn in &arns {
            with_tags(tx, &scope, arn, |tags| {
                tags.retain(|t| !keys.contains(&t.key));
                Ok(())
            })?;
        }
        Ok(model::empty())
    })
}

pub(crate) fn describe(ctx: &Ctx<'_>, input: &Input) -> AwsResult<Value> {
    let arns = input.str_list("ResourceArns").unwrap_or_default();
    if arns.len() > 20 {
        return Err(super::constraint(
            &format!("{arns:?}"),
            "resourceArns",
            "Member must have length less than or equal to 20",
        ));
    }
    let scope = ctx.scope.clone();
    ctx.store().read(|tx| {
        let mut out = Vec::new();
        for arn in &arns {
            let (kind, nf) = kind_of(arn)?;
            let rec = tx.get(&scope, kind, arn)?.ok_or_else(nf)?;
            out.push(json!({"ResourceArn": arn, "Tags": rec.body.get("tags").cloned().unwrap_or(json!([]))}));
        }
        Ok(json!({"TagDescriptions": out}))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloudformations_tags_do_not_count_toward_the_limit() {
        let tag = |k: String| Tag {
            key: k,
            value: String::new(),
        };
        let mut tags: Vec<Tag> = (0..50).map(|i| tag(format!("k{i}"))).collect();
        tags.extend(
            crate::services::tags::CLOUDFORMATION_KEYS
                .iter()
                .map(|k| tag((*k).to_string())),
        );
        assert!(!over_limit(&tags));
        tags.push(tag("one-more".into()));
        assert!(over_limit(&tags));
        assert_eq!(too_many().code, "TooManyTags");
    }
}
