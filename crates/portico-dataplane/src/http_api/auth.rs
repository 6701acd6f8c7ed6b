//! HOT PATH. Route authorization. JWT: the token is read from the identity source (a `Bearer `
//! prefix is allowed); missing -> 401. Then, as API Gateway does: decode; the algorithm must
//! be RSA-based (RS256/384/512, PS256/384/512); the header's `kid` must name a key of the
//! issuer's key set (`jwks.rs`), which must verify the signature; then the claims (`iss`,
//! `aud` or, only when `aud` is absent, `client_id`, `exp`, `nbf`, `iat`) -> 401 with a
//! `www-authenticate` description; the route's scopes (`scope`/`scp`) -> 403 when none match.
//! The verified claims are returned for `$context.authorizer.claims.*`.

use super::jwks::{Jwks, KeyError};
use super::{IdentitySource, Jwt};
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};
use std::sync::Arc;

#[derive(Debug, PartialEq)]
pub(crate) enum Denied {
    /// 401 with this `www-authenticate` value.
    Unauthorized(String),
    /// 403.
    Forbidden,
}

fn invalid(desc: &str) -> Denied {
    Denied::Unauthorized(format!(
        "Bearer scope=\"\" error=\"invalid_token\" error_description=\"{desc}\""
    ))
}

/// The raw token from the identity source, if present and non-empty.
pub(crate) fn token<'a>(
    src: &IdentitySource,
    headers: &'a http::HeaderMap,
    query: Option<&'a str>,
) -> Option<String> {
    let raw = match src {
        IdentitySource::Header(name) => headers.get(name.as_str())?.to_str().ok()?.to_string(),
        IdentitySource::Query(name) => query?.split('&').find_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k == name).then(|| {
                percent_encoding::percent_decode_str(v)
                    .decode_utf8_lossy()
                    .into_owned()
            })
        })?,
    };
    let t = raw.trim();
    let t = if t.len() > 7 && t[..7].eq_ignore_ascii_case("bearer ") {
        t[7..].trim()
    } else {
        t
    };
    (!t.is_empty()).then(|| t.to_string())
}

/// The claims of a verified token.
pub(crate) type Claims = Arc<Map<String, Value>>;

/// Algorithms API Gateway accepts: RSA-based only.
const RSA_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// Why a token was refused, for `www-authenticate` and `$context.authorizer.error`.
pub(crate) struct Refusal {
    pub(crate) denied: Denied,
    /// The cause for the access log (more than the client is told).
    pub(crate) cause: String,
}

fn refuse(desc: &str) -> Refusal {
    Refusal {
        denied: invalid(desc),
        cause: desc.to_string(),
    }
}

/// Checks a JWT-protected route; `now` is epoch seconds.
pub(crate) async fn check_jwt(
    jwks: &Arc<Jwks>,
    jwt: &Jwt,
    headers: &http::HeaderMap,
    query: Option<&str>,
    now: i64,
) -> Result<Claims, Refusal> {
    let Some(tok) = token(&jwt.source, headers, query) else {
        return Err(Refusal {
            denied: Denied::Unauthorized("Bearer".into()),
            cause: "the identity source is missing".into(),
        });
    };
    let header = jsonwebtoken::decode_header(&tok).map_err(|_| refuse("the token is malformed"))?;
    if !RSA_ALGORITHMS.contains(&header.alg) {
        return Err(refuse(&format!(
            "signing method {:?} is invalid",
            header.alg
        )));
    }
    let Some(kid) = header.kid.as_deref() else {
        return Err(refuse("the token has no kid header"));
    };
    let key = match jwks.key(&jwt.issuer, kid).await {
        Ok(k) => k,
        Err(KeyError::UnknownKid) => {
            return Err(refuse(
                "the token was not signed by a key of the issuer's jwks_uri",
            ))
        }
        Err(KeyError::Fetch(e)) => {
            return Err(Refusal {
                denied: invalid("the issuer's signing keys could not be fetched"),
                cause: format!("the issuer's signing keys could not be fetched: {e}"),
            })
        }
    };
    if key.alg.is_some_and(|a| a != header.alg) {
        return Err(refuse("the token's algorithm does not match its key"));
    }
    let mut v = Validation::new(header.alg);
    // the claims are checked below, each with its own description
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let data =
        jsonwebtoken::decode::<Map<String, Value>>(&tok, &key.key, &v).map_err(|e| {
            match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    refuse("the token signature is invalid")
                }
                _ => refuse("the token is malformed"),
            }
        })?;
    let claims = data.claims;
    check_claims(jwt, &claims, now)?;
    Ok(Arc::new(claims))
}

/// The claim and scope checks of a token whose signature verified.
fn check_claims(jwt: &Jwt, claims: &Map<String, Value>, now: i64) -> Result<(), Refusal> {
    if claims.get("iss").and_then(Value::as_str) != Some(jwt.issuer.as_str()) {
        return Err(refuse("the token has an invalid issuer"));
    }
    let in_audience = |v: &Value| match v {
        Value::String(s) => jwt.audience.iter().any(|a| a == s),
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .any(|s| jwt.audience.iter().any(|x| x == s)),
        _ => false,
    };
    let aud_ok = match claims.get("aud") {
        Some(aud) => in_audience(aud),
        None => claims.get("client_id").is_some_and(in_audience),
    };
    if !aud_ok {
        return Err(refuse("the token does not have a valid audience"));
    }
    match claims.get("exp").and_then(Value::as_f64) {
        Some(exp) if exp as i64 > now => {}
        _ => return Err(refuse("the token has expired")),
    }
    if let Some(nbf) = claims.get("nbf").and_then(Value::as_f64) {
        if nbf as i64 > now {
            return Err(refuse("the token is not valid yet"));
        }
    }
    if let Some(iat) = claims.get("iat").and_then(Value::as_f64) {
        if iat as i64 > now {
            return Err(refuse("the token was issued in the future"));
        }
    }
    if !jwt.scopes.is_empty() {
        let mut granted: Vec<&str> = Vec::new();
        for k in ["scope", "scp"] {
            match claims.get(k) {
                Some(Value::String(s)) => granted.extend(s.split(' ')),
                Some(Value::Array(a)) => granted.extend(a.iter().filter_map(Value::as_str)),
                _ => {}
            }
        }
        if !jwt.scopes.iter().any(|s| granted.contains(&s.as_str())) {
            return Err(Refusal {
                denied: Denied::Forbidden,
                cause: "the token has none of the route's authorization scopes".into(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(scopes: &[&str]) -> Jwt {
        Jwt {
            source: IdentitySource::Header("authorization".into()),
            issuer: "https://idp".into(),
            audience: vec!["app".into()],
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn check(j: &Jwt, claims: Value, now: i64) -> Result<(), Denied> {
        let Value::Object(m) = claims else {
            panic!("claims must be an object")
        };
        check_claims(j, &m, now).map_err(|r| r.denied)
    }

    fn headers(tok: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert("authorization", format!("Bearer {tok}").parse().unwrap());
        h
    }

    fn jwks() -> Arc<Jwks> {
        Arc::new(Jwks::new(super::super::tls::Lazy::default()))
    }

    #[tokio::test]
    async fn missing_token_is_401_bearer() {
        let r = check_jwt(&jwks(), &jwt(&[]), &http::HeaderMap::new(), None, 0).await;
        assert_eq!(
            r.err().map(|r| r.denied),
            Some(Denied::Unauthorized("Bearer".into()))
        );
    }

    #[tokio::test]
    async fn malformed_and_non_rsa_tokens_are_refused_before_any_key_fetch() {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine as _;
        let desc = |r: Result<Claims, Refusal>| r.err().map(|r| r.cause).unwrap_or_default();
        let j = jwt(&[]);
        assert_eq!(
            desc(check_jwt(&jwks(), &j, &headers("garbage"), None, 0).await),
            "the token is malformed"
        );
        let hs = format!(
            "{}.{}.sig",
            e.encode(br#"{"alg":"HS256","kid":"k"}"#),
            e.encode(br#"{"iss":"https://idp"}"#)
        );
        assert_eq!(
            desc(check_jwt(&jwks(), &j, &headers(&hs), None, 0).await),
            "signing method HS256 is invalid"
        );
        let es = hs.replace(
            &e.encode(br#"{"alg":"HS256","kid":"k"}"#),
            &e.encode(br#"{"alg":"ES256","kid":"k"}"#),
        );
        assert_eq!(
            desc(check_jwt(&jwks(), &j, &headers(&es), None, 0).await),
            "signing method ES256 is invalid"
        );
        let nokid = format!(
            "{}.{}.sig",
            e.encode(br#"{"alg":"RS256"}"#),
            e.encode(b"{}")
        );
        assert_eq!(
            desc(check_jwt(&jwks(), &j, &headers(&nokid), None, 0).await),
            "the token has no kid header"
        );
    }

    #[test]
    fn token_from_header_or_query() {
        let h = headers("abc");
        assert_eq!(
            token(&IdentitySource::Header("authorization".into()), &h, None).as_deref(),
            Some("abc")
        );
        let q = IdentitySource::Query("t".into());
        assert_eq!(token(&q, &h, Some("a=1&t=x%2Ey")).as_deref(), Some("x.y"));
        assert_eq!(token(&q, &h, Some("t=")), None);
    }

    #[test]
    fn claims_and_scopes() {
        let good = serde_json::json!({"iss": "https://idp", "aud": "app", "exp": 100, "iat": 10, "scope": "read write"});
        assert_eq!(check(&jwt(&[]), good.clone(), 50), Ok(()));
        assert_eq!(check(&jwt(&["write"]), good.clone(), 50), Ok(()));
        assert_eq!(
            check(&jwt(&["admin"]), good.clone(), 50),
            Err(Denied::Forbidden)
        );
        assert!(check(&jwt(&[]), good.clone(), 150).is_err());
        // issued in the future
        assert!(check(&jwt(&[]), good, 5).is_err());
        let scp = serde_json::json!({"iss": "https://idp", "aud": ["x", "app"], "exp": 100, "scp": ["admin"]});
        assert_eq!(check(&jwt(&["admin"]), scp, 50), Ok(()));
        let client = serde_json::json!({"iss": "https://idp", "client_id": "app", "exp": 100});
        assert_eq!(check(&jwt(&[]), client, 50), Ok(()));
        // client_id only counts when aud is absent
        let wrong_aud =
            serde_json::json!({"iss": "https://idp", "aud": "x", "client_id": "app", "exp": 100});
        assert_eq!(
            check(&jwt(&[]), wrong_aud, 50),
            Err(invalid("the token does not have a valid audience"))
        );
        let not_yet =
            serde_json::json!({"iss": "https://idp", "aud": "app", "exp": 100, "nbf": 60});
        assert!(check(&jwt(&[]), not_yet, 50).is_err());
        let other_iss = serde_json::json!({"iss": "https://other", "aud": "app", "exp": 100});
        assert!(check(&jwt(&[]), other_iss, 50).is_err());
    }
}
