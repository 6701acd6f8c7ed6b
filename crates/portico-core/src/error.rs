//! The one client-visible error. Every failure a client can see is an `AwsError`: a wire code,
//! an HTTP status, a message worded as AWS words it, optional modeled extra members, and an
//! internal cause that is only ever logged, never sent.

use std::borrow::Cow;

/// A failure as the client sees it. Protocol crates render it (JSON `__type`, query
/// `ErrorResponse`, ...); services build it with AWS's code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    /// The code on the wire (`NotFoundException`, `InvalidVpcID.NotFound`, `ValidationError`).
    pub code: Cow<'static, str>,
    /// The message exactly as AWS words it.
    pub message: String,
    /// HTTP status.
    pub status: u16,
    /// `Sender` (client fault) or `Receiver` (server fault) in query protocols.
    pub sender_fault: bool,
    /// Extra modeled members (restJson1/awsJson only), e.g. `resourceType`.
    pub extra: Vec<(&'static str, String)>,
    /// What really happened, for the log only.
    pub cause: Option<String>,
}

pub type AwsResult<T> = Result<T, AwsError>;

impl AwsError {
    pub fn new(
        status: u16,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        AwsError {
            code: code.into(),
            message: message.into(),
            status,
            sender_fault: status < 500,
            extra: Vec::new(),
            cause: None,
        }
    }

    /// A 400 client error with the given code.
    pub fn bad(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    /// The backstop for bugs and IO failures: 500 InternalFailure; the cause is only logged.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let mut e = Self::new(
            500,
            "InternalFailure",
            "The request processing has failed because of an unknown error, exception or failure.",
        );
        e.cause = Some(cause.to_string());
        e
    }

    /// AWS's generic validation wording: `1 validation error detected: Value null at 'name'
    /// failed to satisfy constraint: Member must not be null`.
    pub fn validation(code: impl Into<Cow<'static, str>>, violations: &[String]) -> Self {
        let n = violations.len();
        let msg = format!(
            "{n} validation error{} detected: {}",
            if n == 1 { "" } else { "s" },
            violations.join("; ")
        );
        Self::bad(code, msg)
    }

    pub fn with_extra(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.extra.push((key, value.into()));
        self
    }

    pub fn with_cause(mut self, cause: impl std::fmt::Display) -> Self {
        self.cause = Some(cause.to_string());
        self
    }
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl std::error::Error for AwsError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_message_counts_violations() {
        let e = AwsError::validation("ValidationException", &["a".into(), "b".into()]);
        assert_eq!(e.message, "2 validation errors detected: a; b");
        let e = AwsError::validation("ValidationException", &["a".into()]);
        assert_eq!(e.message, "1 validation error detected: a");
        assert_eq!(e.status, 400);
        assert!(e.sender_fault);
    }

    #[test]
    fn internal_hides_cause_from_message() {
        let e = AwsError::internal("disk on fire");
        assert_eq!(e.status, 500);
        assert!(!e.message.contains("disk"));
        assert_eq!(e.cause.as_deref(), Some("disk on fire"));
    }
}
