//! Who is calling, where: the (account, region) partition every piece of state lives in.

/// Per-request facts every operation needs. Built by the wire layer from the SigV4 credential
/// scope (region, access key -> account) before the service sees the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    pub account_id: String,
    pub region: String,
    pub request_id: String,
    pub access_key_id: Option<String>,
}

impl RequestContext {
    pub fn new(account_id: impl Into<String>, region: impl Into<String>) -> Self {
        RequestContext {
            account_id: account_id.into(),
            region: region.into(),
            request_id: crate::ids::uuid(),
            access_key_id: None,
        }
    }

    /// The ARN partition for this region (`aws`, `aws-cn`, `aws-us-gov`).
    pub fn partition(&self) -> &'static str {
        partition_of(&self.region)
    }

    /// `arn:{partition}:{service}:{region}:{account}:{resource}`.
    pub fn arn(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:{}:{service}:{}:{}:{resource}",
            self.partition(),
            self.region,
            self.account_id
        )
    }

    /// An ARN of a global service (IAM): empty region.
    pub fn global_arn(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:{}:{service}::{}:{resource}",
            self.partition(),
            self.account_id
        )
    }
}

pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The account an access key id selects: a key that is itself 12 digits names that account;
/// anything else gets the configured default.
pub fn account_for_key(access_key_id: Option<&str>, default_account: &str) -> String {
    match access_key_id {
        Some(k) if k.len() == 12 && k.bytes().all(|b| b.is_ascii_digit()) => k.to_string(),
        _ => default_account.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twelve_digit_key_selects_account() {
        assert_eq!(
            account_for_key(Some("111122223333"), "000000000000"),
            "111122223333"
        );
        assert_eq!(
            account_for_key(Some("AKIAEXAMPLE"), "000000000000"),
            "000000000000"
        );
        assert_eq!(
            account_for_key(Some("1111222233334"), "000000000000"),
            "000000000000"
        );
        assert_eq!(account_for_key(None, "000000000000"), "000000000000");
    }

    #[test]
    fn arns() {
        let c = RequestContext::new("123456789012", "eu-west-1");
        assert_eq!(
            c.arn("ecs", "cluster/x"),
            "arn:aws:ecs:eu-west-1:123456789012:cluster/x"
        );
        assert_eq!(
            c.global_arn("iam", "role/r"),
            "arn:aws:iam::123456789012:role/r"
        );
        assert_eq!(partition_of("cn-north-1"), "aws-cn");
    }
}
