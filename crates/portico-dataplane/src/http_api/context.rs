//! HOT PATH. `$context` variables of one request (parameter mapping and access logs), the
//! data-plane request id, and access-log rendering.

use std::time::SystemTime;

/// What `$context.*` can name for one request. Filled as the request progresses.
#[derive(Debug, Default, Clone)]
pub struct RequestContext {
    pub request_id: String,
    pub api_id: String,
    pub account_id: String,
    pub stage: String,
    pub route_key: String,
    pub http_method: String,
    /// The request path including the stage segment.
    pub path: String,
    pub protocol: String,
    pub domain_name: String,
    pub source_ip: String,
    pub user_agent: String,
    pub request_time_epoch: i64,
    pub status: u16,
    pub response_length: usize,
    pub response_latency_ms: u128,
    pub integration_latency_ms: Option<u128>,
    pub integration_status: Option<u16>,
    pub integration_error: Option<String>,
    pub error_message: Option<String>,
    pub authorizer_error: Option<String>,
    /// The claims of the verified JWT (`$context.authorizer.claims.<name>`).
    pub authorizer_claims: Option<std::sync::Arc<serde_json::Map<String, serde_json::Value>>>,
}

/// A data-plane request id as API Gateway shapes it: 16 base64 characters ending in `=`
/// (encoded into a stack buffer, no `String` from the engine).
pub(crate) fn request_id() -> String {
    use base64::Engine as _;
    let mut b = [0u8; 11];
    crate::rng::fill(&mut b);
    let mut out = [0u8; 16];
    let n = base64::engine::general_purpose::STANDARD
        .encode_slice(b, &mut out)
        .unwrap_or(0);
    // base64 is ASCII
    String::from(std::str::from_utf8(&out[..n]).unwrap_or_default())
}

pub(crate) fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `dd/MMM/yyyy:HH:mm:ss +0000`.
fn clf_time(ms: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000",
        t.day(),
        MONTHS[(t.month() as usize).saturating_sub(1) % 12],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

impl RequestContext {
    /// The value of `$context.<name>`; `None` when unknown or empty.
    pub fn var(&self, name: &str) -> Option<String> {
        let s = |v: &str| (!v.is_empty()).then(|| v.to_string());
        match name {
            "requestId" | "extendedRequestId" => s(&self.request_id),
            "apiId" => s(&self.api_id),
            "accountId" => s(&self.account_id),
            "stage" => s(&self.stage),
            "routeKey" => s(&self.route_key),
            "httpMethod" => s(&self.http_method),
            "path" => s(&self.path),
            "protocol" => s(&self.protocol),
            "domainName" => s(&self.domain_name),
            "domainPrefix" => s(self.domain_name.split('.').next().unwrap_or("")),
            "identity.sourceIp" => s(&self.source_ip),
            "identity.userAgent" => s(&self.user_agent),
            "requestTime" => Some(clf_time(self.request_time_epoch)),
            "requestTimeEpoch" => Some(self.request_time_epoch.to_string()),
            "status" => (self.status != 0).then(|| self.status.to_string()),
            "responseLength" => Some(self.response_length.to_string()),
            "responseLatency" => Some(self.response_latency_ms.to_string()),
            "integrationLatency" | "integration.latency" => {
                self.integration_latency_ms.map(|v| v.to_string())
            }
            "integrationStatus" | "integration.status" | "integration.integrationStatus" => {
                self.integration_status.map(|v| v.to_string())
            }
            "integrationErrorMessage" | "integration.error" => self.integration_error.clone(),
            "error.message" | "error.messageString" => self.error_message.clone(),
            "authorizer.error" => self.authorizer_error.clone(),
            _ => {
                let claim = name.strip_prefix("authorizer.claims.")?;
                match self.authorizer_claims.as_ref()?.get(claim)? {
                    serde_json::Value::String(v) => s(v),
                    serde_json::Value::Null => None,
                    v => Some(v.to_string()),
                }
            }
        }
    }

    /// Renders an access-log format: each `$context.<name>` replaced, unknown values as `-`.
    pub fn render(&self, format: &str) -> String {
        let mut out = String::with_capacity(format.len() + 64);
        let mut rest = format;
        while let Some(i) = rest.find("$context.") {
            out.push_str(&rest[..i]);
            let after = &rest[i + "$context.".len()..];
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_'))
                .unwrap_or(after.len());
            // a trailing `.` belongs to the text, not the name
            let name = after[..end].trim_end_matches('.');
            out.push_str(&self.var(name).unwrap_or_else(|| "-".into()));
            rest = &after[name.len()..];
        }
        out.push_str(rest);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_id_shape() {
        let id = request_id();
        assert_eq!(id.len(), 16);
        assert!(id.ends_with('='));
    }

    #[test]
    fn render_access_log() {
        let c = RequestContext {
            request_id: "abc=".into(),
            route_key: "GET /x".into(),
            status: 200,
            request_time_epoch: 1_738_318_530_123,
            ..Default::default()
        };
        assert_eq!(
            c.render("$context.requestId $context.routeKey $context.status $context.nope."),
            "abc= GET /x 200 -."
        );
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), "u-1".into());
        claims.insert("n".into(), 3.into());
        let c2 = RequestContext {
            authorizer_claims: Some(std::sync::Arc::new(claims)),
            ..c.clone()
        };
        assert_eq!(
            c2.render("$context.authorizer.claims.sub $context.authorizer.claims.n $context.authorizer.claims.x"),
            "u-1 3 -"
        );
        assert_eq!(
            c.render("$context.requestTime"),
            "31/Jan/2025:10:15:30 +0000"
        );
    }
}
