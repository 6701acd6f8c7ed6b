//! Portico's control plane. Every AWS operation is one plain async fn in
//! `services/<service>/` that validates, writes in one store transaction, and returns. The
//! reconcilers in `reconcile/` run beside them and make the world match the store: tasks
//! running, targets registered, listeners bound, data-plane snapshots published.
//!
//! Architecture Invariant: nothing here parses HTTP or renders a protocol; operations take and
//! return JSON values (see `portico_core::Input`) and fail with `AwsError`. CloudFormation and
//! the console reach services only through [`Control::call`].

pub mod reconcile;
pub mod services;

use parking_lot::RwLock;
use portico_core::{AwsError, AwsResult, Input, RequestContext, Service};
use portico_dataplane::Dataplane;
use portico_runtime::Runtime;
use portico_store::{Scope, Store};
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

/// Settings the binary reads from flags and environment and hands down.
#[derive(Debug, Clone)]
pub struct Config {
    pub default_account: String,
    pub default_region: String,
    /// Host name used in URLs we hand out (`apiEndpoint`, console links).
    pub public_host: String,
    /// The main port, as bound.
    pub port: u16,
    /// Multiplies AWS's waits (deregistration delay, health-check intervals) when below 1.0.
    pub time_scale: f64,
    pub state_dir: Option<PathBuf>,
    /// Shape `apiEndpoint` exactly as AWS does (`https://{id}.execute-api.{region}.amazonaws.com`).
    pub aws_endpoints: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            default_account: "000000000000".into(),
            default_region: "us-east-1".into(),
            public_host: "localhost".into(),
            port: 4566,
            time_scale: 1.0,
            state_dir: None,
            aws_endpoints: false,
        }
    }
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A service implemented outside this crate (CloudFormation lives in portico-cfn because it
/// calls every other service through [`Control::call`]).
pub trait ExternalService: Send + Sync {
    fn call<'a>(
        &'a self,
        rc: &'a RequestContext,
        op: &'a str,
        input: Input,
    ) -> BoxFuture<'a, AwsResult<Value>>;
}

/// The control plane handle; cheap to clone.
#[derive(Clone)]
pub struct Control {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: Config,
    dataplane: Dataplane,
    runtime: Runtime,
    externals: RwLock<HashMap<Service, Arc<dyn ExternalService>>>,
    /// The HTTP API snapshot publisher (created with the store's change feed, before any
    /// operation runs, so it misses no change).
    apigw: reconcile::apigw::Publisher,
}

/// What an operation handler gets: the control plane, who is calling, and where.
pub struct Ctx<'a> {
    pub control: &'a Control,
    pub rc: &'a RequestContext,
    pub scope: Scope,
}

impl Ctx<'_> {
    pub fn store(&self) -> &Store {
        self.control.store()
    }
}

impl Control {
    pub fn new(store: Store, config: Config, dataplane: Dataplane, runtime: Runtime) -> Control {
        Control {
            inner: Arc::new(Inner {
                apigw: reconcile::apigw::Publisher::new(&store),
                store,
                config,
                dataplane,
                runtime,
                externals: RwLock::new(HashMap::new()),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn dataplane(&self) -> &Dataplane {
        &self.inner.dataplane
    }

    pub(crate) fn apigw_publisher(&self) -> &reconcile::apigw::Publisher {
        &self.inner.apigw
    }

    pub fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }

    pub fn register_external(&self, service: Service, handler: Arc<dyn ExternalService>) {
        self.inner.externals.write().insert(service, handler);
    }

    /// A request context for calls Portico makes on its own behalf (reconcilers, the tutorial).
    pub fn internal_context(&self, account: &str, region: &str) -> RequestContext {
        RequestContext::new(account, region)
    }

    /// Calls one operation of one service. The only way in: the wire layer, CloudFormation, the
    /// console and the tutorial all come through here.
    pub async fn call(
        &self,
        rc: &RequestContext,
        service: Service,
        op: &str,
        input: Input,
    ) -> AwsResult<Value> {
        let external = self.inner.externals.read().get(&service).cloned();
        if let Some(h) = external {
            return h.call(rc, op, input).await;
        }
        let ctx = Ctx {
            control: self,
            rc,
            scope: Scope::of(rc),
        };
        services::dispatch(&ctx, service, op, input).await
    }

    /// Calls like [`Control::call`], as CloudFormation acting for a stack: the service accepts the
    /// `aws:cloudformation:*` tags (stack name and id, logical id) that clients may not set. Only
    /// portico-cfn calls this; no wire request reaches it.
    pub async fn call_as_cloudformation(
        &self,
        rc: &RequestContext,
        service: Service,
        op: &str,
        input: Input,
    ) -> AwsResult<Value> {
        services::tags::as_cloudformation(self.call(rc, service, op, input)).await
    }

    /// restJson1: the operation a method and raw path name, its path labels, and its success
    /// status. `None` when no operation matches.
    pub fn rest_route(
        &self,
        service: Service,
        method: &str,
        raw_path: &str,
    ) -> Option<services::RestMatch> {
        services::rest_route(service, method, raw_path)
    }
}

/// A not-found helper used across services: `AwsError` with the given code and message.
pub fn not_found(code: &'static str, message: impl Into<String>) -> AwsError {
    AwsError::bad(code, message)
}
