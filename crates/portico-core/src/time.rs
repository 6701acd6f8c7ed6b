//! Wall-clock time in the encodings AWS protocols use.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// ISO-8601 UTC with milliseconds: `2025-01-31T10:15:30.123Z` (query protocols).
pub fn iso_millis(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// ISO-8601 UTC in whole seconds: `2020-04-08T00:08:44Z` (restJson1 services such as API Gateway).
pub fn iso_seconds(ms: i64) -> String {
    let s = iso_millis(ms);
    format!("{}Z", &s[..19])
}

/// Epoch seconds with a fractional part, for awsJson timestamps (`1735689600.123`).
pub fn epoch_seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// Parses an RFC 3339 / ISO-8601 timestamp into epoch milliseconds.
pub fn parse_iso(s: &str) -> Option<i64> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        assert_eq!(iso_millis(1_738_318_530_123), "2025-01-31T10:15:30.123Z");
        assert_eq!(iso_seconds(1_738_318_530_123), "2025-01-31T10:15:30Z");
        assert_eq!(
            parse_iso("2025-01-31T10:15:30.123Z"),
            Some(1_738_318_530_123)
        );
        assert_eq!(epoch_seconds(1500), 1.5);
    }
}
