//! HOT PATH. CORS for HTTP APIs: preflights answered by the gateway (204, before routing and
//! authorization) and the headers added to ordinary responses when the origin is allowed.

use super::Cors;
use http::{HeaderMap, HeaderValue};

/// Is `origin` allowed by the configured list (exact, `*`, or `https://*`-style wildcards)?
pub(crate) fn origin_allowed(cors: &Cors, origin: &str) -> bool {
    cors.allow_origins.iter().any(|o| {
        if o == "*" {
            return true;
        }
        match o.split_once('*') {
            // `https://*` or `https://*.example.com`
            Some((pre, post)) => {
                origin.len() > pre.len() + post.len()
                    && origin.starts_with(pre)
                    && origin.ends_with(post)
            }
            None => o.eq_ignore_ascii_case(origin),
        }
    })
}

/// The value of `access-control-allow-origin` for an allowed origin.
fn allow_origin_value<'a>(cors: &Cors, origin: &'a str) -> &'a str {
    if cors.allow_origins.iter().any(|o| o == "*") && !cors.allow_credentials {
        "*"
    } else {
        origin
    }
}

fn put(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

/// The headers of a preflight answer for an allowed origin.
pub(crate) fn preflight_headers(cors: &Cors, origin: &str, h: &mut HeaderMap) {
    if !origin_allowed(cors, origin) {
        return;
    }
    put(
        h,
        "access-control-allow-origin",
        allow_origin_value(cors, origin),
    );
    if !cors.allow_methods.is_empty() {
        put(
            h,
            "access-control-allow-methods",
            &cors.allow_methods.join(","),
        );
    }
    if !cors.allow_headers.is_empty() {
        put(
            h,
            "access-control-allow-headers",
            &cors.allow_headers.join(","),
        );
    }
    if let Some(age) = cors.max_age {
        put(h, "access-control-max-age", &age.to_string());
    }
    if cors.allow_credentials {
        put(h, "access-control-allow-credentials", "true");
    }
}

/// Applies CORS to an ordinary response: drops the backend's CORS headers and, for an allowed
/// origin, adds the configured ones.
pub(crate) fn response_headers(cors: &Cors, origin: Option<&str>, h: &mut HeaderMap) {
    let backend: Vec<http::HeaderName> = h
        .keys()
        .filter(|k| k.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for k in backend {
        h.remove(k);
    }
    let Some(origin) = origin else { return };
    if !origin_allowed(cors, origin) {
        return;
    }
    put(
        h,
        "access-control-allow-origin",
        allow_origin_value(cors, origin),
    );
    if !cors.expose_headers.is_empty() {
        put(
            h,
            "access-control-expose-headers",
            &cors.expose_headers.join(","),
        );
    }
    if cors.allow_credentials {
        put(h, "access-control-allow-credentials", "true");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(origins: &[&str]) -> Cors {
        Cors {
            allow_origins: origins.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn origins() {
        assert!(origin_allowed(&cors(&["https://a.com"]), "https://a.com"));
        assert!(!origin_allowed(&cors(&["https://a.com"]), "https://b.com"));
        assert!(origin_allowed(&cors(&["*"]), "http://x"));
        assert!(origin_allowed(&cors(&["https://*"]), "https://x.org"));
        assert!(!origin_allowed(&cors(&["https://*"]), "http://x.org"));
        assert!(origin_allowed(
            &cors(&["https://*.example.com"]),
            "https://a.example.com"
        ));
        assert!(!origin_allowed(
            &cors(&["https://*.example.com"]),
            "https://example.org"
        ));
    }

    #[test]
    fn echo_origin_not_first_configured() {
        let c = cors(&["https://a", "https://b"]);
        let mut h = HeaderMap::new();
        preflight_headers(&c, "https://b", &mut h);
        assert_eq!(h["access-control-allow-origin"], "https://b");
        let mut h = HeaderMap::new();
        h.insert(
            "access-control-allow-origin",
            HeaderValue::from_static("evil"),
        );
        response_headers(&c, None, &mut h);
        assert!(h.is_empty());
    }
}
