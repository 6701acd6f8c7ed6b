//! HOT PATH. Route authorization. JWT: the token is read from the identity source (a `Bearer `
//! prefix is allowed); missing -> 401; then the claims are checked (`iss`, `aud` or
//! `client_id`, `exp`, `nbf`) and the route's scopes (`scope`/`scp`) -> 403 when none match.
//! The signature is NOT verified yet (no JWKS fetching): documented in docs/apigatewayv2.md.

use super::{IdentitySource, Jwt};
use base64::Engine as _;
use serde_json::Value;

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

/// Checks a JWT-protected route; `now` is epoch seconds.
pub(crate) fn check_jwt(
    jwt: &Jwt,
    headers: &http::HeaderMap,
    query: Option<&str>,
    now: i64,
) -> Result<(), Denied> {
    let Some(tok) = token(&jwt.source, headers, query) else {
        return Err(Denied::Unauthorized("Bearer".into()));
    };
    let mut parts = tok.split('.');
    let (Some(_h), Some(p), Some(_s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("the token is malformed"));
    };
    let claims: Value = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(p.trim_end_matches('='))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(Value::is_object)
        .ok_or_else(|| invalid("the token is malformed"))?;
    if claims.get("iss").and_then(Value::as_str) != Some(jwt.issuer.as_str()) {
        return Err(invalid("the token has an invalid issuer"));
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
        return Err(invalid("the token does not have a valid audience"));
    }
    match claims.get("exp").and_then(Value::as_f64) {
        Some(exp) if exp as i64 > now => {}
        _ => return Err(invalid("the token has expired")),
    }
    if let Some(nbf) = claims.get("nbf").and_then(Value::as_f64) {
        if nbf as i64 > now {
            return Err(invalid("the token is not valid yet"));
        }
    }
    if !jwt.scopes.is_empty() {
        let mut granted: Vec<String> = Vec::new();
        for k in ["scope", "scp"] {
            match claims.get(k) {
                Some(Value::String(s)) => granted.extend(s.split(' ').map(String::from)),
                Some(Value::Array(a)) => {
                    granted.extend(a.iter().filter_map(Value::as_str).map(String::from))
                }
                _ => {}
            }
        }
        if !jwt.scopes.iter().any(|s| granted.contains(s)) {
            return Err(Denied::Forbidden);
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

    fn token_for(claims: Value) -> String {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            e.encode(br#"{"alg":"RS256"}"#),
            e.encode(claims.to_string())
        )
    }

    fn headers(tok: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert("authorization", format!("Bearer {tok}").parse().unwrap());
        h
    }

    #[test]
    fn missing_token_is_401() {
        assert_eq!(
            check_jwt(&jwt(&[]), &http::HeaderMap::new(), None, 0),
            Err(Denied::Unauthorized("Bearer".into()))
        );
    }

    #[test]
    fn claims_and_scopes() {
        let good = serde_json::json!({"iss": "https://idp", "aud": "app", "exp": 100, "scope": "read write"});
        assert_eq!(
            check_jwt(&jwt(&[]), &headers(&token_for(good.clone())), None, 50),
            Ok(())
        );
        assert_eq!(
            check_jwt(
                &jwt(&["write"]),
                &headers(&token_for(good.clone())),
                None,
                50
            ),
            Ok(())
        );
        assert_eq!(
            check_jwt(
                &jwt(&["admin"]),
                &headers(&token_for(good.clone())),
                None,
                50
            ),
            Err(Denied::Forbidden)
        );
        assert!(check_jwt(&jwt(&[]), &headers(&token_for(good)), None, 150).is_err());
        let client = serde_json::json!({"iss": "https://idp", "client_id": "app", "exp": 100});
        assert_eq!(
            check_jwt(&jwt(&[]), &headers(&token_for(client)), None, 50),
            Ok(())
        );
        let wrong_aud =
            serde_json::json!({"iss": "https://idp", "aud": "x", "client_id": "app", "exp": 100});
        assert!(check_jwt(&jwt(&[]), &headers(&token_for(wrong_aud)), None, 50).is_err());
        assert!(check_jwt(&jwt(&[]), &headers("garbage"), None, 50).is_err());
    }
}
