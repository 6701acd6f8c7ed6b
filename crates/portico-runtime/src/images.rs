//! Images: what command an image name stands for. Built in: `amazon/amazon-ecs-sample` (this
//! binary's `__sample-app`). Others come from the image catalog, a JSON file (docs/images.md):
//!
//! ```json
//! {"images": {"example/web:1": {"entryPoint": ["python3", "-m", "http.server"],
//!                                "command": [], "environment": {"A": "b"},
//!                                "workingDirectory": "/srv"}}}
//! ```
//!
//! An image that is neither built in nor in the catalog cannot be "pulled".

use crate::StartError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The built-in sample image, under the names people use for it.
pub const SAMPLE_IMAGES: &[&str] = &[
    "amazon/amazon-ecs-sample",
    "public.ecr.aws/ecs-sample-image/amazon-ecs-sample",
];

/// The hidden subcommand of the `portico` binary that serves the sample page.
pub const SAMPLE_SUBCOMMAND: &str = "__sample-app";

/// One catalog entry: what the image's ENTRYPOINT, CMD, ENV and WORKDIR would be.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageEntry {
    #[serde(default)]
    pub entry_point: Vec<String>,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub working_directory: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    #[serde(default)]
    pub images: BTreeMap<String, ImageEntry>,
}

impl Catalog {
    pub fn parse(text: &str) -> Result<Catalog, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Reads the catalog; a missing file is an empty catalog.
    pub fn load(path: &Path) -> Result<Catalog, StartError> {
        match std::fs::read_to_string(path) {
            Ok(t) => Catalog::parse(&t).map_err(|e| StartError::BadCatalog {
                path: path.display().to_string(),
                detail: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Catalog::default()),
            Err(e) => Err(StartError::BadCatalog {
                path: path.display().to_string(),
                detail: e.to_string(),
            }),
        }
    }

    fn find(&self, image: &str) -> Option<&ImageEntry> {
        self.images.get(image).or_else(|| {
            let want = normalize(image);
            self.images
                .iter()
                .find(|(k, _)| normalize(k) == want)
                .map(|(_, v)| v)
        })
    }
}

/// `docker.io/library/nginx:latest` and `nginx` name the same image.
pub fn normalize(image: &str) -> String {
    let mut s = image.trim();
    for p in ["docker.io/", "index.docker.io/", "registry-1.docker.io/"] {
        if let Some(rest) = s.strip_prefix(p) {
            s = rest;
        }
    }
    if let Some(rest) = s.strip_prefix("library/") {
        s = rest;
    }
    let s = s.split('@').next().unwrap_or(s);
    let last_slash = s.rfind('/').map(|i| i + 1).unwrap_or(0);
    let s = match s[last_slash..].rfind(':') {
        Some(i) if &s[last_slash + i + 1..] == "latest" => &s[..last_slash + i],
        _ => s,
    };
    s.to_ascii_lowercase()
}

/// Whether `image` is the built-in sample (any tag).
pub fn is_sample(image: &str) -> bool {
    let n = normalize(image);
    let repo = {
        let last_slash = n.rfind('/').map(|i| i + 1).unwrap_or(0);
        match n[last_slash..].rfind(':') {
            Some(i) => n[..last_slash + i].to_string(),
            None => n.clone(),
        }
    };
    SAMPLE_IMAGES.contains(&repo.as_str())
}

/// The command line and environment a container runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub argv: Vec<String>,
    pub environment: Vec<(String, String)>,
    pub working_directory: Option<String>,
}

/// Resolves a container's image into a command line, applying the task definition's
/// `entryPoint`/`command` as Docker does: an `entryPoint` replaces the image's and drops its
/// CMD; a `command` replaces the CMD. The built-in sample ignores both (it is not a shell).
pub fn resolve(
    image: &str,
    entry_point: Option<&[String]>,
    command: Option<&[String]>,
    catalog: Option<&Catalog>,
    program: Option<&Path>,
) -> Result<Resolved, StartError> {
    if let Some(entry) = catalog.and_then(|c| c.find(image)) {
        let (ep, cmd) = match (entry_point, command) {
            (Some(ep), Some(c)) => (ep.to_vec(), c.to_vec()),
            (Some(ep), None) => (ep.to_vec(), Vec::new()),
            (None, Some(c)) => (entry.entry_point.clone(), c.to_vec()),
            (None, None) => (entry.entry_point.clone(), entry.command.clone()),
        };
        let argv: Vec<String> = ep.into_iter().chain(cmd).collect();
        if argv.is_empty() {
            return Err(StartError::Spawn {
                container: image.to_string(),
                detail: "no command specified".into(),
            });
        }
        return Ok(Resolved {
            argv,
            environment: entry
                .environment
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            working_directory: entry.working_directory.clone(),
        });
    }
    if is_sample(image) {
        if let Some(p) = program {
            return Ok(Resolved {
                argv: vec![p.display().to_string(), SAMPLE_SUBCOMMAND.to_string()],
                environment: Vec::new(),
                working_directory: None,
            });
        }
    }
    Err(StartError::UnknownImage {
        image: image.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_names() {
        assert_eq!(normalize("docker.io/library/nginx:latest"), "nginx");
        assert_eq!(normalize("nginx:1.25"), "nginx:1.25");
        assert_eq!(normalize("localhost:5000/app"), "localhost:5000/app");
        assert_eq!(normalize("a/b@sha256:00"), "a/b");
        assert!(is_sample("amazon/amazon-ecs-sample"));
        assert!(is_sample("amazon/amazon-ecs-sample:latest"));
        assert!(is_sample("docker.io/amazon/amazon-ecs-sample:v2"));
        assert!(is_sample(
            "public.ecr.aws/ecs-sample-image/amazon-ecs-sample:latest"
        ));
        assert!(!is_sample("amazon/other"));
    }

    #[test]
    fn resolves_catalog_like_docker() {
        let c = Catalog::parse(
            r#"{"images": {"example/web": {"entryPoint": ["sh", "-c"], "command": ["echo hi"], "environment": {"A": "1"}}}}"#,
        )
        .unwrap();
        let r = resolve("example/web:latest", None, None, Some(&c), None).unwrap();
        assert_eq!(r.argv, ["sh", "-c", "echo hi"]);
        assert_eq!(r.environment, [("A".to_string(), "1".to_string())]);
        let cmd = vec!["echo bye".to_string()];
        let r = resolve("example/web", None, Some(&cmd), Some(&c), None).unwrap();
        assert_eq!(r.argv, ["sh", "-c", "echo bye"]);
        let ep = vec!["true".to_string()];
        let r = resolve("example/web", Some(&ep), None, Some(&c), None).unwrap();
        assert_eq!(r.argv, ["true"]);
        let e = resolve("nope/nope", None, None, Some(&c), None).unwrap_err();
        assert!(e.to_string().starts_with("CannotPullContainerError: "));
        assert!(Catalog::parse(r#"{"images": {"x": {"bogus": 1}}}"#).is_err());
    }

    #[test]
    fn sample_needs_the_program() {
        let p = Path::new("/usr/bin/portico");
        let r = resolve("amazon/amazon-ecs-sample", None, None, None, Some(p)).unwrap();
        assert_eq!(r.argv, ["/usr/bin/portico", "__sample-app"]);
        assert!(resolve("amazon/amazon-ecs-sample", None, None, None, None).is_err());
    }
}
