//! Portico's own endpoints under `/_portico/`: health, reset (wipe all state), and the
//! path-style address of HTTP APIs (`/_portico/execute-api/{apiId}/...`).

use crate::server::{plain, App};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use portico_dataplane::body::BoxError;
use std::net::SocketAddr;

pub async fn handle(
    app: &App,
    req: http::Request<Incoming>,
    remote: SocketAddr,
) -> http::Response<portico_dataplane::body::Body> {
    let path = req.uri().path().to_string();
    match (req.method().as_str(), path.as_str()) {
        ("GET", "/_portico/health") => {
            let runtime = app.control.runtime();
            let tasks_running = runtime
                .task_ids()
                .iter()
                .filter(|id| runtime.status(id).is_some_and(|s| !s.all_exited()))
                .count();
            let body = serde_json::json!({
                "status": "running",
                "tasks_running": tasks_running,
                "version": env!("CARGO_PKG_VERSION"),
                "services": portico_core::Service::ALL.iter().map(|s| s.model_name()).collect::<Vec<_>>(),
            });
            plain(200, "application/json", body.to_string())
        }
        ("POST", "/_portico/reset") => {
            app.control.runtime().shutdown().await;
            match app.control.store().reset() {
                Ok(()) => plain(200, "application/json", r#"{"reset":true}"#),
                Err(e) => {
                    tracing::error!(error = %e, "reset failed");
                    plain(500, "application/json", r#"{"reset":false}"#)
                }
            }
        }
        (m, p) if p == crate::console::PREFIX || p.starts_with("/_portico/console/") => {
            crate::console::handle(m, p)
        }
        (_, p) if p.starts_with("/_portico/execute-api/") => {
            let rest = &p["/_portico/execute-api/".len()..];
            let (api_id, tail) = rest.split_once('/').unwrap_or((rest, ""));
            let api_id = api_id.to_ascii_lowercase();
            let (mut parts, body) = req.into_parts();
            let pq = match parts.uri.query() {
                Some(q) => format!("/{tail}?{q}"),
                None => format!("/{tail}"),
            };
            if let Ok(uri) = pq.parse() {
                parts.uri = uri;
            }
            let req =
                http::Request::from_parts(parts, body.map_err(|e| Box::new(e) as BoxError).boxed());
            app.dataplane.http_api.handle(&api_id, req, remote).await
        }
        _ => plain(404, "application/json", r#"{"message":"Not Found"}"#),
    }
}
