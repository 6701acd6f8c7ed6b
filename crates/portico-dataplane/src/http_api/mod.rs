//! HOT PATH. The HTTP API engine: serves requests addressed to an API
//! (`{apiId}.execute-api.localhost` or the path-style `/_portico/execute-api/{apiId}/...`) from
//! the immutable [`Snapshot`] the control plane last published.
//!
//! Life of a request (see docs/apigatewayv2.md): resolve API -> select stage -> CORS preflight
//! -> select route -> throttle -> authorize -> build the integration request (parameter
//! mapping) -> forward with the integration timeout -> shape the response (CORS,
//! `apigw-requestid`) -> access log. Nothing here touches the store or holds a lock across an
//! await.

pub mod accesslog;
mod auth;
mod context;
mod cors;
mod forward;
mod jwks;
mod mapping;
pub mod routing;
mod throttle;
mod tls;

use crate::body::{response, Body};
use crate::FastMap;
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use context::RequestContext;
pub use throttle::Bucket;
pub use tls::{set_extra_ca_pem, CaError};

/// Everything the engine needs to route, built by the control plane. One `Arc` per API, so a
/// change to one API publishes a new snapshot that shares every other API ([`Engine::update`]).
#[derive(Debug, Default)]
pub struct Snapshot {
    pub apis: FastMap<String, Arc<Api>>,
}

#[derive(Debug)]
pub struct Api {
    pub api_id: String,
    pub account_id: String,
    pub region: String,
    /// By stage name (`$default` included).
    pub stages: FastMap<String, Arc<Stage>>,
}

impl Api {
    /// Takes the token buckets of `old`'s stages whose limits are unchanged (a rebuilt API
    /// must not refill its buckets). Stages shared with another snapshot are left alone.
    fn inherit_buckets(&mut self, old: &Api) {
        for (name, stage) in self.stages.iter_mut() {
            let (Some(old_stage), Some(stage)) = (old.stages.get(name), Arc::get_mut(stage)) else {
                continue;
            };
            for (key, bucket) in stage.buckets.iter_mut() {
                if let Some(ob) = old_stage.buckets.get(key) {
                    if ob.same_limits(bucket) {
                        *bucket = ob.clone();
                    }
                }
            }
        }
    }
}

/// Throttling limits; `None` members fall back to the account default.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Throttle {
    pub burst: Option<u32>,
    pub rate: Option<f64>,
}

#[derive(Debug)]
pub struct Stage {
    pub name: String,
    /// The deployment this stage serves; `None` answers 404.
    pub deployment: Option<Arc<Deployment>>,
    pub variables: HashMap<String, String>,
    pub default_throttle: Throttle,
    /// By route key.
    pub route_throttle: HashMap<String, Throttle>,
    /// Access logging (`$context.*` line format and log group) when it is on.
    pub access_log: Option<accesslog::AccessLog>,
    /// Token buckets by route key, made by [`Stage::new`] and carried over across publishes.
    buckets: FastMap<String, Arc<Bucket>>,
    /// Counts ResetAuthorizersCache calls: when it changes from one publish to the next, the
    /// signing keys of this stage's JWT issuers are forgotten and fetched again.
    pub authorizers_cache_epoch: u64,
}

impl Stage {
    pub fn new(
        name: String,
        deployment: Option<Arc<Deployment>>,
        variables: HashMap<String, String>,
        default_throttle: Throttle,
        route_throttle: HashMap<String, Throttle>,
        access_log: Option<accesslog::AccessLog>,
    ) -> Stage {
        let mut buckets = FastMap::default();
        if let Some(d) = &deployment {
            for key in d.route_keys() {
                let t = route_throttle
                    .get(&key)
                    .map(|r| Throttle {
                        burst: r.burst.or(default_throttle.burst),
                        rate: r.rate.or(default_throttle.rate),
                    })
                    .unwrap_or(default_throttle);
                if let Some(b) = Bucket::for_limits(t) {
                    buckets.insert(key, Arc::new(b));
                }
            }
        }
        Stage {
            name,
            deployment,
            variables,
            default_throttle,
            route_throttle,
            access_log,
            buckets,
            authorizers_cache_epoch: 0,
        }
    }
}

/// An immutable deployment: what a stage serves.
#[derive(Debug)]
pub struct Deployment {
    pub id: String,
    pub routes: routing::Table<Route>,
    pub cors: Option<Cors>,
    pub disable_execute_api_endpoint: bool,
}

impl Deployment {
    fn route_keys(&self) -> Vec<String> {
        self.routes.values().map(|r| r.key.clone()).collect()
    }
}

#[derive(Debug)]
pub struct Route {
    pub key: String,
    pub integration: Option<Arc<Integration>>,
    pub auth: Auth,
}

#[derive(Debug, Clone)]
pub enum Auth {
    None,
    Jwt(Jwt),
    /// SigV4-signed requests only.
    Iam,
    /// Lambda authorizers: not runnable yet (500).
    Custom,
}

#[derive(Debug, Clone)]
pub struct Jwt {
    pub source: IdentitySource,
    pub issuer: String,
    pub audience: Vec<String>,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum IdentitySource {
    Header(String),
    Query(String),
}

#[derive(Debug)]
pub struct Integration {
    pub id: String,
    pub target: Target,
    /// `None` for `ANY`: the client's method is used.
    pub method: Option<String>,
    pub timeout: Duration,
    /// `requestParameters` as (key, value) pairs.
    pub request_parameters: Vec<(String, String)>,
    /// `responseParameters`: status code -> (key, value) pairs.
    pub response_parameters: Vec<(u16, Vec<(String, String)>)>,
}

#[derive(Debug, Clone)]
pub enum Target {
    /// `HTTP_PROXY` over the internet to this URI template ([`Target::http`]).
    Http(HttpTarget),
    /// `HTTP_PROXY` through a VPC link to a load-balancer listener (or Cloud Map service).
    VpcLink {
        listener_arn: String,
        vpc_link_id: String,
        /// The link's status when the snapshot was built (`AVAILABLE`, `PENDING`, ...).
        status: String,
        /// The link's ENI addresses: the client address the load balancer sees (round-robin).
        eni_addresses: Vec<std::net::IpAddr>,
        /// Why the link's packets never reach the listener (another VPC, or security groups
        /// that drop them): requests then time out, as a connection that never completes does.
        blocked: Option<String>,
        /// `tlsConfig`: speak TLS to the listener and check `serverNameToVerify`.
        tls: Option<crate::lb::LinkTls>,
    },
    /// An integration Portico cannot run yet (Lambda); the reason goes to the access log.
    Unsupported { reason: String },
}

impl Target {
    /// An `HTTP_PROXY` integration to `uri`, a template that may name path parameters and
    /// stage variables.
    pub fn http(uri: String) -> Target {
        Target::Http(HttpTarget::new(uri))
    }
}

/// An internet `HTTP_PROXY` target. A URI without `{...}` placeholders is the same for every
/// request, so it is parsed once here instead of per request.
#[derive(Debug, Clone)]
pub struct HttpTarget {
    pub uri: String,
    pub(crate) fixed: Option<FixedUri>,
}

/// A parsed constant integration URI (`http`/`https` with an authority).
#[derive(Debug, Clone)]
pub(crate) struct FixedUri {
    pub(crate) uri: http::Uri,
    /// The socket address when the host is an IP address (the pooled client's case).
    pub(crate) addr: Option<SocketAddr>,
}

impl HttpTarget {
    pub fn new(uri: String) -> HttpTarget {
        let fixed = if uri.contains('{') {
            None
        } else {
            uri.parse::<http::Uri>()
                .ok()
                .filter(|u| {
                    matches!(u.scheme_str(), Some("http" | "https")) && u.authority().is_some()
                })
                .map(|u| FixedUri {
                    addr: forward::authority_addr(u.authority().map_or("", |a| a.as_str())),
                    uri: u,
                })
        };
        HttpTarget { uri, fixed }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Cors {
    pub allow_origins: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub allow_credentials: bool,
    pub max_age: Option<i64>,
}

/// The issuers of the JWT authorizers a stage's routes use.
fn jwt_issuers(stage: &Stage) -> impl Iterator<Item = &str> {
    stage
        .deployment
        .iter()
        .flat_map(|d| d.routes.values())
        .filter_map(|r| match &r.auth {
            Auth::Jwt(j) => Some(j.issuer.as_str()),
            _ => None,
        })
}

#[derive(Clone)]
pub struct Engine {
    snapshot: Arc<ArcSwap<Snapshot>>,
    client: forward::Client,
    /// The load-balancer engine VPC-link integrations hand requests to (set once at start).
    lb: Arc<std::sync::OnceLock<crate::lb::Engine>>,
    /// Round-robin over VPC-link ENI addresses.
    rr: Arc<std::sync::atomic::AtomicUsize>,
}

impl Default for Engine {
    fn default() -> Self {
        Engine {
            snapshot: Arc::default(),
            client: forward::client(),
            lb: Arc::default(),
            rr: Arc::default(),
        }
    }
}

impl Engine {
    /// Connects VPC-link integrations to the load-balancer engine (called once at start).
    pub fn attach_lb(&self, lb: crate::lb::Engine) {
        let _ = self.lb.set(lb);
    }

    /// Replaces the served snapshot. Throttle buckets of routes whose limits did not change
    /// carry over, so a republish does not refill them.
    pub fn publish(&self, mut s: Snapshot) {
        let old = self.snapshot.load();
        for (api_id, api) in s.apis.iter_mut() {
            if let (Some(old_api), Some(api)) = (old.apis.get(api_id), Arc::get_mut(api)) {
                api.inherit_buckets(old_api);
            }
        }
        self.flush_reset_jwks(&old, s.apis.values().map(|a| &**a));
        self.prefetch_jwks(s.apis.values().map(|a| &**a));
        self.snapshot.store(Arc::new(s));
    }

    /// Publishes a snapshot that differs from the served one only in `changed` (new or rebuilt
    /// APIs) and `removed` (API ids): every other API is the same `Arc`, so the cost is the
    /// changed APIs plus one map of `Arc`s, whatever the number of APIs. Throttle buckets carry
    /// over as in [`Engine::publish`]. Callers serialize their updates (a concurrent update
    /// could otherwise be lost).
    pub fn update(&self, changed: Vec<Api>, removed: &[String]) {
        let old = self.snapshot.load_full();
        let mut apis = old.apis.clone();
        for id in removed {
            apis.remove(id);
        }
        self.flush_reset_jwks(&old, changed.iter());
        self.prefetch_jwks(changed.iter());
        for mut api in changed {
            if let Some(old_api) = old.apis.get(&api.api_id) {
                api.inherit_buckets(old_api);
            }
            apis.insert(api.api_id.clone(), Arc::new(api));
        }
        self.snapshot.store(Arc::new(Snapshot { apis }));
    }

    /// Forgets the signing keys of the JWT issuers of every stage in `apis` whose
    /// ResetAuthorizersCache count differs from the served snapshot's (the prefetch that follows
    /// fetches them again). Every way of publishing APIs calls it before [`Self::prefetch_jwks`].
    fn flush_reset_jwks<'a>(&self, old: &Snapshot, apis: impl Iterator<Item = &'a Api>) {
        let mut issuers = Vec::new();
        for api in apis {
            let Some(old_api) = old.apis.get(&api.api_id) else {
                continue;
            };
            for (name, stage) in &api.stages {
                let reset = old_api
                    .stages
                    .get(name)
                    .is_some_and(|o| o.authorizers_cache_epoch != stage.authorizers_cache_epoch);
                if reset {
                    issuers.extend(jwt_issuers(stage));
                }
            }
        }
        if !issuers.is_empty() {
            self.client.jwks.flush(issuers);
        }
    }

    /// Starts fetching the signing keys of JWT authorizers in `apis` whose issuer was never
    /// fetched, so the first request to such a route does not wait for them. Every way of
    /// publishing APIs calls it with the APIs it publishes.
    fn prefetch_jwks<'a>(&self, apis: impl Iterator<Item = &'a Api>) {
        let issuers = apis
            .flat_map(|a| a.stages.values())
            .flat_map(|st| jwt_issuers(st));
        self.client.jwks.prefetch(issuers);
    }

    /// Access-log lines bound for CloudWatch Logs (the control plane drains them).
    pub fn access_logs(&self) -> &accesslog::Sink {
        &self.client.access_log
    }

    /// The snapshot being served (tests, diagnostics).
    pub fn current(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Serves one request for `api_id`.
    /// Serves one request for `api_id` from a client at `client` (`Forwarded: for=`,
    /// `$context.identity.sourceIp`).
    pub async fn handle(
        &self,
        api_id: &str,
        req: http::Request<Body>,
        client: SocketAddr,
    ) -> http::Response<Body> {
        let snapshot = self.snapshot.load_full();
        forward::serve(
            &self.client,
            self.lb.get(),
            &self.rr,
            &snapshot,
            api_id,
            req,
            client,
        )
        .await
    }
}

/// A gateway-generated response: compact JSON `{"message":"..."}` plus `apigw-requestid`.
pub(crate) fn gateway_response(
    status: u16,
    message: &str,
    request_id: &str,
) -> http::Response<Body> {
    let mut r = response(
        status,
        "application/json",
        format!("{{\"message\":\"{message}\"}}"),
    );
    if let Ok(v) = http::HeaderValue::from_str(request_id) {
        r.headers_mut().insert("apigw-requestid", v);
    }
    r
}
