//! Tag keys with AWS's reserved `aws:` prefix, the one rule every service's tag validation
//! shares: a client may never set one; CloudFormation sets its own `aws:cloudformation:*` tags on
//! the resources a stack creates ([`crate::Control::call_as_cloudformation`], which no wire
//! request can reach).

use portico_core::{AwsError, AwsResult};
use std::future::Future;

tokio::task_local! {
    /// Set for the duration of a call CloudFormation makes on a stack's behalf.
    static AS_CLOUDFORMATION: ();
}

/// The tags CloudFormation adds to the resources a stack creates.
pub const CLOUDFORMATION_KEYS: [&str; 3] = [
    "aws:cloudformation:stack-name",
    "aws:cloudformation:stack-id",
    "aws:cloudformation:logical-id",
];

/// Runs `f` (a service call) as CloudFormation: its `aws:cloudformation:*` tags are allowed.
pub(crate) async fn as_cloudformation<F: Future>(f: F) -> F::Output {
    AS_CLOUDFORMATION.scope((), f).await
}

/// Whether `key` has AWS's reserved prefix, in any case. Such tags do not count toward a
/// resource's tag limit, and a client may neither set nor remove them.
pub(crate) fn reserved(key: &str) -> bool {
    key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:"))
}

/// How many of `tags` (`[{key|Key, ...}]`) count toward a resource's limit: the reserved ones
/// do not.
pub(crate) fn counted(tags: &[serde_json::Value]) -> usize {
    tags.iter()
        .filter(|t| {
            let k = t.get("key").or_else(|| t.get("Key"));
            !k.and_then(serde_json::Value::as_str).is_some_and(reserved)
        })
        .count()
}

/// How many of `keys` count toward a resource's limit (for tag sets that are not JSON lists).
pub(crate) fn counted_keys<'a>(keys: impl IntoIterator<Item = &'a str>) -> usize {
    keys.into_iter().filter(|k| !reserved(k)).count()
}

/// Whether `key` uses the reserved `aws:` prefix (in any case, as AWS documents) and this call may
/// not set it: any caller but CloudFormation, and CloudFormation for keys other than its own.
pub(crate) fn refused(key: &str) -> bool {
    reserved(key)
        && !(AS_CLOUDFORMATION.try_with(|_| ()).is_ok() && CLOUDFORMATION_KEYS.contains(&key))
}

/// ELBv2's refusal, for AddTags (and the create operations' `Tags`) and RemoveTags alike: a
/// client can neither set nor remove a reserved key, so CloudFormation's tags stay on the
/// resources it created.
pub(crate) fn check_elbv2_key(key: &str) -> AwsResult<()> {
    if refused(key) {
        return Err(AwsError::bad(
            "ValidationError",
            format!("Tag key '{key}' cannot start with 'aws:'"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_cloudformation_sets_its_own_keys() {
        assert!(refused("aws:cloudformation:stack-name"));
        assert!(refused("AWS:x"));
        assert!(!refused("team"));
        assert!(!refused("aw"));
        as_cloudformation(async {
            assert!(!refused("aws:cloudformation:stack-name"));
            assert!(!refused("aws:cloudformation:logical-id"));
            assert!(refused("aws:cloudformation:other"));
            assert!(refused("aws:x"));
        })
        .await;
        assert!(refused("aws:cloudformation:stack-id"));
        let tags = [
            serde_json::json!({"key": "aws:cloudformation:stack-id", "value": "x"}),
            serde_json::json!({"Key": "team", "Value": "x"}),
        ];
        assert_eq!(counted(&tags), 1);
        assert_eq!(
            counted_keys(["aws:cloudformation:stack-id", "Aws:x", "team"]),
            1
        );
        let e = check_elbv2_key("aws:k").unwrap_err();
        assert_eq!(
            (e.code.as_ref(), e.message.as_str()),
            (
                "ValidationError",
                "Tag key 'aws:k' cannot start with 'aws:'"
            )
        );
    }
}
