//! AWS Signature Version 4: parsing the credential scope (which names region and service) from
//! the `Authorization` header or a presigned query, and full verification (canonical request,
//! signing key, clock skew, payload hash) for servers bound beyond loopback.

use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// RFC 3986 unreserved characters stay; everything else is percent-encoded.
const STRICT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// Same, but `/` stays (canonical URI).
const PATH: &AsciiSet = &STRICT.remove(b'/');

pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// A parsed signature: who signed, for which scope, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
    /// `X-Amz-Date` (header or query), `YYYYMMDDTHHMMSSZ`.
    pub amz_date: Option<String>,
    pub presigned: bool,
    pub expires: Option<i64>,
}

/// Why a signature is unusable. Protocol layers turn this into the service's error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigError {
    /// The header is not a SigV4 header or lacks parts (`IncompleteSignature`).
    Incomplete(String),
    /// The signature does not match, or the request is too old or too new.
    Mismatch(String),
    /// The access key is not known.
    UnknownKey,
}

/// Parses `AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/ec2/aws4_request,
/// SignedHeaders=host;x-amz-date, Signature=...`. `Ok(None)` when the request is unsigned.
pub fn parse(
    authorization: Option<&str>,
    query: Option<&str>,
    amz_date_header: Option<&str>,
) -> Result<Option<Signature>, SigError> {
    if let Some(auth) = authorization {
        let auth = auth.trim();
        let Some(rest) = auth.strip_prefix("AWS4-HMAC-SHA256") else {
            return Err(SigError::Incomplete(format!(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization={auth}"
            )));
        };
        let mut credential = None;
        let mut signed = None;
        let mut sig = None;
        for part in rest.split(',') {
            let part = part.trim();
            if let Some(v) = part.strip_prefix("Credential=") {
                credential = Some(v);
            } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
                signed = Some(v);
            } else if let Some(v) = part.strip_prefix("Signature=") {
                sig = Some(v);
            }
        }
        let mut missing = Vec::new();
        if credential.is_none() {
            missing.push("Authorization header requires 'Credential' parameter.");
        }
        if signed.is_none() {
            missing.push("Authorization header requires 'SignedHeaders' parameter.");
        }
        if sig.is_none() {
            missing.push("Authorization header requires 'Signature' parameter.");
        }
        if amz_date_header.is_none() {
            missing.push("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.");
        }
        if !missing.is_empty() {
            return Err(SigError::Incomplete(format!(
                "{} Authorization={auth}",
                missing.join(" ")
            )));
        }
        let (akid, date, region, service) = parse_credential(credential.unwrap_or_default())?;
        return Ok(Some(Signature {
            access_key_id: akid,
            date,
            region,
            service,
            signed_headers: signed
                .unwrap_or_default()
                .split(';')
                .map(str::to_string)
                .collect(),
            signature: sig.unwrap_or_default().to_string(),
            amz_date: amz_date_header.map(str::to_string),
            presigned: false,
            expires: None,
        }));
    }
    let Some(q) = query else { return Ok(None) };
    let mut cred = None;
    let mut signed = None;
    let mut sig = None;
    let mut date = None;
    let mut expires = None;
    let mut algo = None;
    for (k, v) in form_urlencoded::parse(q.as_bytes()) {
        match k.as_ref() {
            "X-Amz-Algorithm" => algo = Some(v.into_owned()),
            "X-Amz-Credential" => cred = Some(v.into_owned()),
            "X-Amz-SignedHeaders" => signed = Some(v.into_owned()),
            "X-Amz-Signature" => sig = Some(v.into_owned()),
            "X-Amz-Date" => date = Some(v.into_owned()),
            "X-Amz-Expires" => expires = v.parse().ok(),
            _ => {}
        }
    }
    if algo.is_none() && cred.is_none() && sig.is_none() {
        return Ok(None);
    }
    let (Some(cred), Some(signed), Some(sig), Some(date)) = (cred, signed, sig, date) else {
        return Err(SigError::Incomplete("AWS query-string parameters must include 'X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Signature', 'X-Amz-Date', 'X-Amz-SignedHeaders'. Re-examine the query-string parameters.".into()));
    };
    let (akid, d, region, service) = parse_credential(&cred)?;
    Ok(Some(Signature {
        access_key_id: akid,
        date: d,
        region,
        service,
        signed_headers: signed.split(';').map(str::to_string).collect(),
        signature: sig,
        amz_date: Some(date),
        presigned: true,
        expires,
    }))
}

fn parse_credential(c: &str) -> Result<(String, String, String, String), SigError> {
    let parts: Vec<&str> = c.split('/').collect();
    if parts.len() != 5 || parts[4] != "aws4_request" || parts.iter().any(|p| p.is_empty()) {
        return Err(SigError::Incomplete(format!(
            "Credential should be scoped to a valid region. Credential={c}"
        )));
    }
    Ok((
        parts[0].into(),
        parts[1].into(),
        parts[2].into(),
        parts[3].into(),
    ))
}

/// The request facts verification needs.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    pub raw_path: &'a str,
    pub raw_query: Option<&'a str>,
    pub headers: &'a http::HeaderMap,
    pub body: &'a [u8],
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for HMAC.
    let Ok(mut m) = HmacSha256::new_from_slice(key) else {
        return Vec::new();
    };
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, service.as_bytes());
    hmac(&k, b"aws4_request")
}

/// Normalizes the raw path (dot segments) and encodes it once more, as botocore and the other
/// SDKs do for every service but S3.
fn canonical_uri(raw_path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in raw_path.split('/') {
        match seg {
            "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut p = out.join("/");
    if !p.starts_with('/') {
        p.insert(0, '/');
    }
    utf8_percent_encode(&p, PATH).to_string()
}

fn canonical_query(raw_query: Option<&str>, presigned: bool) -> String {
    let Some(q) = raw_query else {
        return String::new();
    };
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(q.as_bytes())
        .filter(|(k, _)| !(presigned && k == "X-Amz-Signature"))
        .map(|(k, v)| {
            (
                utf8_percent_encode(&k, STRICT).to_string(),
                utf8_percent_encode(&v, STRICT).to_string(),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn canonical_headers(headers: &http::HeaderMap, signed: &[String]) -> String {
    let mut s = String::new();
    for name in signed {
        let vals: Vec<String> = headers
            .get_all(name.as_str())
            .iter()
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        s.push_str(name);
        s.push(':');
        s.push_str(&vals.join(","));
        s.push('\n');
    }
    s
}

fn parse_amz_date(d: &str) -> Option<i64> {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(d, &fmt)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

/// Verifies `sig` against `req` with `secret`. `now` is epoch seconds. Requests more than 15
/// minutes away from `now`, expired presigned URLs, a body that does not match its declared
/// `x-amz-content-sha256`, or a wrong signature are `Mismatch`.
pub fn verify(
    sig: &Signature,
    req: &SignedRequest<'_>,
    secret: &str,
    now: i64,
) -> Result<(), SigError> {
    let amz_date = sig.amz_date.as_deref().unwrap_or_default();
    let Some(t) = parse_amz_date(amz_date) else {
        return Err(SigError::Incomplete(format!(
            "Date must be in ISO-8601 'basic format'. Got '{amz_date}'."
        )));
    };
    if !amz_date.starts_with(&sig.date) {
        return Err(SigError::Mismatch("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP".into()));
    }
    if sig.presigned {
        let exp = sig.expires.unwrap_or(900);
        if now > t + exp {
            return Err(SigError::Mismatch("Signature expired".into()));
        }
    } else if (now - t).abs() > 900 {
        return Err(SigError::Mismatch(format!(
            "Signature expired: {amz_date} is now earlier than the allowed window (15 min.) around the server time."
        )));
    }
    let body_hash = sha256_hex(req.body);
    let declared = req
        .headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok());
    if let Some(d) = declared {
        if d != "UNSIGNED-PAYLOAD" && !d.eq_ignore_ascii_case(&body_hash) {
            return Err(SigError::Mismatch(
                "The provided 'x-amz-content-sha256' header does not match what was computed."
                    .into(),
            ));
        }
    }
    let mut candidates = vec![declared.map(str::to_string).unwrap_or(body_hash)];
    if sig.presigned {
        candidates.push("UNSIGNED-PAYLOAD".into());
    }
    let key = signing_key(secret, &sig.date, &sig.region, &sig.service);
    let scope = format!("{}/{}/{}/aws4_request", sig.date, sig.region, sig.service);
    for payload in candidates {
        let creq = format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            req.method,
            canonical_uri(req.raw_path),
            canonical_query(req.raw_query, sig.presigned),
            canonical_headers(req.headers, &sig.signed_headers),
            sig.signed_headers.join(";"),
            payload
        );
        let sts = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            sha256_hex(creq.as_bytes())
        );
        let expected = hex::encode(hmac(&key, sts.as_bytes()));
        if constant_time_eq(expected.as_bytes(), sig.signature.as_bytes()) {
            return Ok(());
        }
    }
    Err(SigError::Mismatch("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".into()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header() {
        let s = parse(
            Some("AWS4-HMAC-SHA256 Credential=AKID/20260101/eu-west-1/ecs/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc"),
            None,
            Some("20260101T000000Z"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (
                s.access_key_id.as_str(),
                s.region.as_str(),
                s.service.as_str()
            ),
            ("AKID", "eu-west-1", "ecs")
        );
        assert_eq!(s.signed_headers, vec!["host", "x-amz-date"]);
        assert!(parse(None, None, None).unwrap().is_none());
        assert!(matches!(
            parse(Some("Bearer x"), None, None),
            Err(SigError::Incomplete(_))
        ));
        assert!(matches!(
            parse(Some("AWS4-HMAC-SHA256 Credential=AKID/x"), None, Some("d")),
            Err(SigError::Incomplete(_))
        ));
    }

    /// The AWS SigV4 test suite's `get-vanilla` case (documented signing example).
    #[test]
    fn aws_test_suite_get_vanilla() {
        let mut h = http::HeaderMap::new();
        h.insert("host", "example.amazonaws.com".parse().unwrap());
        h.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
        let sig = Signature {
            access_key_id: "AKIDEXAMPLE".into(),
            date: "20150830".into(),
            region: "us-east-1".into(),
            service: "service".into(),
            signed_headers: vec!["host".into(), "x-amz-date".into()],
            signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31".into(),
            amz_date: Some("20150830T123600Z".into()),
            presigned: false,
            expires: None,
        };
        let req = SignedRequest {
            method: "GET",
            raw_path: "/",
            raw_query: None,
            headers: &h,
            body: b"",
        };
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        assert_eq!(verify(&sig, &req, secret, 1_440_938_160), Ok(()));
        assert!(matches!(
            verify(&sig, &req, "wrong", 1_440_938_160),
            Err(SigError::Mismatch(_))
        ));
        // 20 minutes later: clock skew.
        assert!(matches!(
            verify(&sig, &req, secret, 1_440_938_160 + 1200),
            Err(SigError::Mismatch(_))
        ));
    }

    #[test]
    fn canonical_uri_double_encodes() {
        assert_eq!(
            canonical_uri("/v2/apis/a/stages/%24default"),
            "/v2/apis/a/stages/%2524default"
        );
        assert_eq!(canonical_uri("/a/./b/../c"), "/a/c");
    }
}
