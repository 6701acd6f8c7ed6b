//! The HTTP API engine: serves requests addressed to an API (`{apiId}.execute-api.localhost`).

use crate::body::{response, Body};
use arc_swap::ArcSwap;
use std::sync::Arc;

/// Everything the engine needs to route, built by the control plane.
#[derive(Debug, Default)]
pub struct Snapshot {}

#[derive(Clone, Default)]
pub struct Engine {
    snapshot: Arc<ArcSwap<Snapshot>>,
}

impl Engine {
    pub fn publish(&self, s: Snapshot) {
        self.snapshot.store(Arc::new(s));
    }

    /// Serves one request for `api_id`.
    pub async fn handle(&self, api_id: &str, req: http::Request<Body>) -> http::Response<Body> {
        let _ = (api_id, req, self.snapshot.load());
        response(404, "application/json", r#"{"message":"Not Found"}"#)
    }
}
