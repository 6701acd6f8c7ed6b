//! CloudFormation: parses templates, resolves intrinsics, orders resources by dependency, and
//! creates, updates and deletes them through the same operations the AWS APIs call
//! (`Control::call`), never by writing the store behind them.
//!
//! Modules: `template` (parse + structure), `intrinsics`, `graph`, `prepare` (parameters,
//! rules, conditions, capabilities), `model` (stored stacks, events, change sets), `api` (the
//! awsQuery operations), `executor` (background create/update/delete/rollback), `providers`
//! (one module per service).

mod api;
mod executor;
mod graph;
mod intrinsics;
mod model;
mod prepare;
mod providers;
mod template;

#[cfg(test)]
mod tests;

use executor::Engine;
use portico_control::{BoxFuture, Control, ExternalService};
use portico_core::{AwsResult, Input, RequestContext, Service};
use serde_json::Value;
use std::sync::Arc;

pub struct CloudFormation {
    engine: Arc<Engine>,
}

impl CloudFormation {
    /// Creates the engine, registers it as the CloudFormation service, and resumes (or rolls
    /// back) any stack operation a previous run left in progress.
    pub fn install(control: &Control) -> Arc<CloudFormation> {
        let cfn = Arc::new(CloudFormation {
            engine: Engine::new(control.clone()),
        });
        control.register_external(Service::CloudFormation, cfn.clone());
        if tokio::runtime::Handle::try_current().is_ok() {
            cfn.engine.recover();
        }
        cfn
    }
}

impl ExternalService for CloudFormation {
    fn call<'a>(
        &'a self,
        rc: &'a RequestContext,
        op: &'a str,
        input: Input,
    ) -> BoxFuture<'a, AwsResult<Value>> {
        Box::pin(async move { api::dispatch(&self.engine, rc, op, input).await })
    }
}
