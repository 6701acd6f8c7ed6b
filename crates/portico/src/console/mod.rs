//! The web console at `/_portico/console`: a small single-page front end embedded in the binary.
//! It only serves static files; every action the page takes is a call to Portico's real AWS APIs
//! (`fetch()` on the same origin, as an SDK would), so there is no second code path that writes
//! state. See docs/console.md.

use crate::server::plain;
use portico_dataplane::body::Body;

/// Where the console lives.
pub const PREFIX: &str = "/_portico/console";

/// One embedded file: path under the prefix, content type, bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const INDEX: &[u8] = include_bytes!("assets/index.html");

const ASSETS: &[Asset] = &[
    Asset {
        path: "/assets/console.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("assets/console.css"),
    },
    Asset {
        path: "/assets/aws.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/aws.js"),
    },
    Asset {
        path: "/assets/ui.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/ui.js"),
    },
    Asset {
        path: "/assets/pages.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/pages.js"),
    },
    Asset {
        path: "/assets/favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("assets/favicon.svg"),
    },
];

/// The tutorial's templates, offered on the create-stack page (loaded only when asked for, so
/// they are not part of any page's weight). The AWS tutorial has you download these; offline,
/// the console hands them over.
const TEMPLATES: &[Asset] = &[
    Asset {
        path: "/templates/tutorial.yaml",
        content_type: "text/yaml; charset=utf-8",
        body: include_bytes!("../../../../templates/tutorial-cdk.yaml"),
    },
    Asset {
        path: "/templates/tutorial-full.yaml",
        content_type: "text/yaml; charset=utf-8",
        body: include_bytes!("../../../../templates/tutorial-cdk-full.yaml"),
    },
];

/// The page may talk to its own origin only; links (invoke URLs) are plain navigations.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// What the console answers for `method` and `path` (a path under [`PREFIX`]).
pub fn handle(method: &str, path: &str) -> http::Response<Body> {
    if method != "GET" && method != "HEAD" {
        let mut r = plain(
            405,
            "application/json",
            r#"{"message":"The console only serves GET and HEAD"}"#,
        );
        r.headers_mut().insert(
            http::header::ALLOW,
            http::HeaderValue::from_static("GET, HEAD"),
        );
        return r;
    }
    let rest = path.strip_prefix(PREFIX).unwrap_or(path);
    let (content_type, body): (&str, &'static [u8]) = match lookup(rest) {
        Found::Asset(a) => (a.content_type, a.body),
        Found::Index => ("text/html; charset=utf-8", INDEX),
        Found::Missing => {
            return plain(404, "application/json", r#"{"message":"Not Found"}"#);
        }
    };
    let body: &'static [u8] = if method == "HEAD" { &[] } else { body };
    let mut r = plain(200, content_type, body);
    let h = r.headers_mut();
    // Assets are part of the binary: they change only with it, so revalidate on each load.
    h.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache"),
    );
    h.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        http::HeaderValue::from_static("nosniff"),
    );
    h.insert(
        http::header::CONTENT_SECURITY_POLICY,
        http::HeaderValue::from_static(CSP),
    );
    h.insert(
        http::header::REFERRER_POLICY,
        http::HeaderValue::from_static("no-referrer"),
    );
    r
}

enum Found {
    Asset(&'static Asset),
    Index,
    Missing,
}

/// The console is one page: `""`, `"/"` and `"/index.html"` are it; files live under `/assets/`.
fn lookup(rest: &str) -> Found {
    match rest {
        "" | "/" | "/index.html" => Found::Index,
        p => ASSETS
            .iter()
            .chain(TEMPLATES)
            .find(|a| a.path == p)
            .map_or(Found::Missing, Found::Asset),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn get(method: &str, path: &str) -> (u16, String, String, Vec<u8>) {
        let r = handle(method, path);
        let status = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let csp = r
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        #[allow(
            clippy::disallowed_methods,
            reason = "a test reading an embedded asset"
        )]
        let body = r.into_body().collect().await.unwrap().to_bytes().to_vec();
        (status, ct, csp, body)
    }

    #[tokio::test]
    async fn index_at_prefix_with_and_without_slash() {
        for p in [
            "/_portico/console",
            "/_portico/console/",
            "/_portico/console/index.html",
        ] {
            let (s, ct, csp, body) = get("GET", p).await;
            assert_eq!(s, 200, "{p}");
            assert!(ct.starts_with("text/html"), "{p}: {ct}");
            assert!(csp.contains("connect-src 'self'"));
            assert!(String::from_utf8_lossy(&body).contains("<title>Portico console</title>"));
        }
    }

    #[tokio::test]
    async fn every_asset_is_served_with_its_type_and_head_has_no_body() {
        for a in ASSETS {
            let (s, ct, _, body) = get("GET", &format!("{PREFIX}{}", a.path)).await;
            assert_eq!((s, ct.as_str()), (200, a.content_type), "{}", a.path);
            assert_eq!(body, a.body);
            let (s, _, _, body) = get("HEAD", &format!("{PREFIX}{}", a.path)).await;
            assert_eq!((s, body.len()), (200, 0));
        }
    }

    #[tokio::test]
    async fn the_tutorial_templates_are_served_and_the_page_offers_them() {
        let pages = String::from_utf8_lossy(
            ASSETS
                .iter()
                .find(|a| a.path == "/assets/pages.js")
                .map(|a| a.body)
                .unwrap_or_default(),
        )
        .to_string();
        for t in TEMPLATES {
            let (s, ct, _, body) = get("GET", &format!("{PREFIX}{}", t.path)).await;
            assert_eq!((s, ct.as_str()), (200, "text/yaml; charset=utf-8"));
            assert!(String::from_utf8_lossy(&body).contains("AWS::ECS::Service"));
            assert!(pages.contains(&format!("{PREFIX}{}", t.path)), "{}", t.path);
        }
    }

    #[tokio::test]
    async fn unknown_files_and_other_methods_are_refused() {
        assert_eq!(get("GET", "/_portico/console/assets/nope.js").await.0, 404);
        assert_eq!(get("GET", "/_portico/console/../health").await.0, 404);
        assert_eq!(get("POST", "/_portico/console").await.0, 405);
    }

    #[test]
    fn the_page_and_everything_it_loads_stay_under_200_kb() {
        let total: usize = INDEX.len() + ASSETS.iter().map(|a| a.body.len()).sum::<usize>();
        assert!(total < 200 * 1024, "console is {total} bytes");
    }

    #[test]
    fn the_page_references_only_embedded_files_and_nothing_remote() {
        let index = String::from_utf8_lossy(INDEX);
        for a in ASSETS {
            assert!(
                index.contains(&format!("{PREFIX}{}", a.path)),
                "index.html does not load {}",
                a.path
            );
        }
        for a in ASSETS.iter().map(|a| a.body).chain([INDEX]) {
            let text = String::from_utf8_lossy(a);
            for remote in ["http://", "https://", "//cdn", "@import"] {
                let hits: Vec<_> = text
                    .match_indices(remote)
                    .map(|(i, _)| &text[i..(i + 40).min(text.len())])
                    .filter(|s| !s.starts_with("http://www.w3.org/2000/svg"))
                    .collect();
                assert!(hits.is_empty(), "remote reference in an asset: {hits:?}");
            }
        }
    }
}
