//! Resource providers: for each supported type, the GetAtt names, the create-only properties,
//! and create / update / delete / stabilise through `Control::call` with the same inputs the
//! wire would carry. Providers never touch the store.

mod apigw;
mod ec2;
mod ecs;
mod elbv2;
mod iam;
mod misc;

use portico_control::Control;
use portico_core::{AwsError, Input, RequestContext, Service};
use rand::Rng;
use serde_json::{Map, Value};
use std::time::Duration;

/// Facts about one resource type.
pub(crate) struct Spec {
    pub type_name: &'static str,
    /// Valid `Fn::GetAtt` attribute names.
    pub attrs: &'static [&'static str],
    /// Properties whose change requires replacement (`*` = every property).
    pub create_only: &'static [&'static str],
    /// Whether an in-place update is implemented; otherwise every change replaces.
    pub updatable: bool,
}

const SPECS: &[Spec] = &[
    Spec {
        type_name: "AWS::CDK::Metadata",
        attrs: &["Id"],
        create_only: &[],
        updatable: true,
    },
    Spec {
        type_name: "AWS::CloudFormation::WaitConditionHandle",
        attrs: &[],
        create_only: &[],
        updatable: true,
    },
    Spec {
        type_name: "AWS::SSM::Parameter",
        attrs: &["Type", "Value"],
        create_only: &["Name"],
        updatable: true,
    },
    Spec {
        type_name: "AWS::Logs::LogGroup",
        attrs: &["Arn"],
        create_only: &["LogGroupName", "KmsKeyId"],
        updatable: true,
    },
    Spec {
        type_name: "AWS::IAM::Role",
        attrs: &["Arn", "RoleId"],
        create_only: &["RoleName", "Path"],
        updatable: true,
    },
    Spec {
        type_name: "AWS::IAM::Policy",
        attrs: &["Id"],
        create_only: &[],
        updatable: true,
    },
    Spec {
        type_name: "AWS::IAM::ManagedPolicy",
        attrs: &["PolicyArn"],
        create_only: &["ManagedPolicyName", "Path", "Description"],
        updatable: true,
    },
    Spec {
        type_name: "AWS::IAM::InstanceProfile",
        attrs: &["Arn"],
        create_only: &["InstanceProfileName", "Path"],
        updatable: false,
    },
    Spec {
        type_name: "AWS::EC2::VPC",
        attrs: &[
            "CidrBlock",
            "CidrBlockAssociations",
            "DefaultNetworkAcl",
            "DefaultSecurityGroup",
            "Ipv6CidrBlocks",
            "VpcId",
        ],
        create_only: &[
            "CidrBlock",
            "InstanceTenancy",
            "Ipv4IpamPoolId",
            "Ipv4NetmaskLength",
        ],
        updatable: true,
    },
    Spec {
        type_name: "AWS::EC2::Subnet",
        attrs: &[
            "AvailabilityZone",
            "AvailabilityZoneId",
            "CidrBlock",
            "Ipv6CidrBlocks",
            "NetworkAclAssociationId",
            "OutpostArn",
            "SubnetId",
            "VpcId",
        ],
        create_only: &[
            "VpcId",
            "AvailabilityZone",
            "AvailabilityZoneId",
            "CidrBlock",
        ],
        updatable: true,
    },
    Spec {
        type_name: "AWS::EC2::RouteTable",
        attrs: &["RouteTableId"],
        create_only: &["VpcId"],
        updatable: true,
    },
    Spec {
        type_name: "AWS::EC2::Route",
        attrs: &["CidrBlock"],
        create_only: &[
            "RouteTableId",
            "DestinationCidrBlock",
            "DestinationIpv6CidrBlock",
            "DestinationPrefixListId",
        ],
        updatable: false,
    },
    Spec {
        type_name: "AWS::EC2::SubnetRouteTableAssociation",
        attrs: &["Id"],
        create_only: &["SubnetId", "RouteTableId"],
        updatable: false,
    },
    Spec {
        type_name: "AWS::EC2::InternetGateway",
        attrs: &["InternetGatewayId"],
        create_only: &[],
        updatable: true,
    },
    Spec {
        type_name: "AWS::EC2::VPCGatewayAttachment",
        attrs: &["AttachmentType"],
        create_only: &["VpcId"],
        updatable: false,
    },
    Spec {
        type_name: "AWS::EC2::EIP",
        attrs: &["AllocationId", "PublicIp"],
        create_only: &[
            "Domain",
            "NetworkBorderGroup",
            "TransferAddress",
            "PublicIpv4Pool",
        ],
        updatable: true,
    },
    Spec {
        type_name: "AWS::EC2::NatGateway",
        attrs: &["NatGatewayId", "EniId"],
        create_only: &[
            "SubnetId",
            "AllocationId",
            "ConnectivityType",
            "PrivateIpAddress",
        ],
        updatable: true,
    },
    Spec {
        type_name: "AWS::EC2::SecurityGroup",
        attrs: &["GroupId", "VpcId", "Id"],
        create_only: &["GroupDescription", "GroupName", "VpcId"],
        updatable: false,
    },
    Spec {
        type_name: "AWS::EC2::SecurityGroupIngress",
        attrs: &["Id"],
        create_only: &["*"],
        updatable: false,
    },
    Spec {
        type_name: "AWS::EC2::SecurityGroupEgress",
        attrs: &["Id"],
        create_only: &["*"],
        updatable: false,
    },
    Spec {
        type_name: "AWS::ElasticLoadBalancingV2::LoadBalancer",
        attrs: &[
            "CanonicalHostedZoneID",
            "DNSName",
            "LoadBalancerArn",
            "LoadBalancerFullName",
            "LoadBalancerName",
            "SecurityGroups",
        ],
        create_only: &["Name", "Type", "Scheme"],
        updatable: true,
    },
    Spec {
        type_name: "AWS::ElasticLoadBalancingV2::Listener",
        attrs: &["ListenerArn"],
        create_only: &["LoadBalancerArn"],
        updatable: true,
    },
    Spec {
        type_name: "AWS::ElasticLoadBalancingV2::ListenerRule",
        attrs: &["RuleArn", "IsDefault"],
        create_only: &["ListenerArn"],
        updatable: true,
    },
    Spec {
        type_name: "AWS::ElasticLoadBalancingV2::TargetGroup",
        attrs: &[
            "LoadBalancerArns",
            "TargetGroupArn",
            "TargetGroupFullName",
            "TargetGroupName",
        ],
        create_only: &[
            "Name",
            "Port",
            "Protocol",
            "ProtocolVersion",
            "TargetType",
            "VpcId",
            "IpAddressType",
        ],
        updatable: true,
    },
    Spec {
        type_name: "AWS::ECS::Cluster",
        attrs: &["Arn"],
        create_only: &["ClusterName"],
        updatable: true,
    },
    Spec {
        type_name: "AWS::ECS::TaskDefinition",
        attrs: &["TaskDefinitionArn"],
        create_only: &["*"],
        updatable: false,
    },
    Spec {
        type_name: "AWS::ECS::Service",
        attrs: &["Name", "ServiceArn"],
        create_only: &[
            "Cluster",
            "ServiceName",
            "SchedulingStrategy",
            "Role",
            "LaunchType",
            "DeploymentController",
        ],
        updatable: true,
    },
    Spec {
        type_name: "AWS::ApiGatewayV2::Api",
        attrs: &["ApiEndpoint", "ApiId"],
        create_only: &["ProtocolType"],
        updatable: true,
    },
    Spec {
        type_name: "AWS::ApiGatewayV2::Stage",
        attrs: &[],
        create_only: &["ApiId", "StageName"],
        updatable: true,
    },
    Spec {
        type_name: "AWS::ApiGatewayV2::Route",
        attrs: &["RouteId"],
        create_only: &["ApiId"],
        updatable: true,
    },
    Spec {
        type_name: "AWS::ApiGatewayV2::Integration",
        attrs: &["IntegrationId"],
        create_only: &["ApiId"],
        updatable: true,
    },
    Spec {
        type_name: "AWS::ApiGatewayV2::VpcLink",
        attrs: &["VpcLinkId"],
        create_only: &["SubnetIds", "SecurityGroupIds"],
        updatable: true,
    },
    Spec {
        type_name: "AWS::ApiGatewayV2::Authorizer",
        attrs: &["AuthorizerId"],
        create_only: &["ApiId"],
        updatable: true,
    },
    Spec {
        type_name: "AWS::ApiGatewayV2::Deployment",
        attrs: &["DeploymentId"],
        create_only: &["ApiId"],
        updatable: true,
    },
];

pub(crate) fn spec(type_name: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.type_name == type_name)
}

/// Whether changing `old` into `new` needs a new physical resource.
pub(crate) fn needs_replacement(type_name: &str, old: &Value, new: &Value) -> bool {
    let Some(s) = spec(type_name) else {
        return true;
    };
    if !s.updatable || s.create_only.contains(&"*") {
        return true;
    }
    s.create_only.iter().any(|k| old.get(*k) != new.get(*k))
}

/// A failed provider step: the physical id if one was created, and the reason shown as the
/// resource's status reason.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub physical: Option<String>,
    pub reason: String,
}

impl Failure {
    pub(crate) fn msg(reason: impl Into<String>) -> Failure {
        Failure {
            physical: None,
            reason: reason.into(),
        }
    }

    pub(crate) fn with_physical(mut self, p: &str) -> Failure {
        self.physical = Some(p.to_string());
        self
    }
}

/// A created resource: its physical id (= `Ref`) and its GetAtt values.
#[derive(Debug, Clone, Default)]
pub(crate) struct Done {
    pub physical: String,
    pub attrs: Map<String, Value>,
}

impl Done {
    /// A resource that already exists, as recorded (updates start from it).
    pub(crate) fn existing(physical: &str, attrs: &Map<String, Value>) -> Done {
        Done {
            physical: physical.to_string(),
            attrs: attrs.clone(),
        }
    }
}

pub(crate) type PResult<T> = Result<T, Failure>;

/// What a provider step gets.
pub(crate) struct Pcx<'a> {
    pub control: &'a Control,
    pub rc: &'a RequestContext,
    pub stack_name: &'a str,
    pub stack_id: &'a str,
    pub logical: &'a str,
    pub tags: &'a [(String, String)],
    pub cancel: tokio::sync::watch::Receiver<bool>,
}

fn handler_code(e: &AwsError) -> &'static str {
    let c = e.code.as_ref();
    if c.contains("NotFound") || c.contains("NoSuchEntity") {
        "NotFound"
    } else if c.contains("AlreadyExists") || c.contains("Duplicate") || c.contains("InUse") {
        "AlreadyExists"
    } else if e.status < 500 {
        "InvalidRequest"
    } else {
        "GeneralServiceException"
    }
}

fn service_label(s: Service) -> &'static str {
    match s {
        Service::Ec2 => "Ec2",
        Service::Elbv2 => "ElasticLoadBalancingV2",
        Service::Ecs => "AmazonECS",
        Service::Iam => "Iam",
        Service::Ssm => "Ssm",
        Service::Logs => "CloudWatchLogs",
        Service::ApiGatewayV2 => "AmazonApiGatewayV2",
        Service::Sts => "Sts",
        Service::CloudFormation => "CloudFormation",
    }
}

/// Whether a delete failed only because the resource is already gone.
pub(crate) fn is_gone(e: &AwsError) -> bool {
    let c = e.code.as_ref();
    c.contains("NotFound")
        || c.contains("NoSuchEntity")
        || c == "ResourceNotFoundException"
        || c == "ParameterNotFound"
        || e.message.contains("does not exist")
}

impl Pcx<'_> {
    /// Calls one operation (as CloudFormation: the service accepts the `aws:cloudformation:*`
    /// tags); a failure becomes the status reason CloudFormation shows.
    pub(crate) async fn call(&self, svc: Service, op: &str, input: Value) -> PResult<Value> {
        self.call_raw(svc, op, input)
            .await
            .map_err(|e| Failure::msg(self.reason(svc, &e)))
    }

    /// Like `call`, but returns the service error itself (for delete's not-found check).
    pub(crate) async fn call_raw(
        &self,
        svc: Service,
        op: &str,
        input: Value,
    ) -> Result<Value, AwsError> {
        self.control
            .call_as_cloudformation(self.rc, svc, op, Input(input))
            .await
    }

    /// A delete call where "already gone" counts as success.
    pub(crate) async fn delete_call(&self, svc: Service, op: &str, input: Value) -> PResult<()> {
        match self.call_raw(svc, op, input).await {
            Ok(_) => Ok(()),
            Err(e) if is_gone(&e) => Ok(()),
            Err(e) => Err(Failure::msg(self.reason(svc, &e))),
        }
    }

    pub(crate) fn reason(&self, svc: Service, e: &AwsError) -> String {
        format!(
            "Resource handler returned message: \"{} (Service: {}, Status Code: {}, Request ID: {})\" (RequestToken: {}, HandlerErrorCode: {})",
            e.message,
            service_label(svc),
            e.status,
            self.rc.request_id,
            portico_core::ids::uuid(),
            handler_code(e)
        )
    }

    /// A physical name as CloudFormation generates it: `<stack>-<logical>-<RANDOM>`, the first
    /// two parts shortened so the whole fits `max`.
    pub(crate) fn name(&self, max: usize) -> String {
        generated_name(self.stack_name, self.logical, max)
    }

    pub(crate) fn cancelled(&self) -> bool {
        *self.cancel.borrow()
    }

    /// Polls `check` until it yields `Some`, the operation is cancelled, or `limit` passes.
    pub(crate) async fn wait_for<T, F, Fut>(
        &self,
        what: &str,
        limit: Duration,
        mut check: F,
    ) -> PResult<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = PResult<Option<T>>>,
    {
        let start = std::time::Instant::now();
        let mut delay = Duration::from_millis(50);
        loop {
            if let Some(v) = check().await? {
                return Ok(v);
            }
            if self.cancelled() {
                return Err(Failure::msg("Resource creation cancelled"));
            }
            if start.elapsed() > limit {
                return Err(Failure::msg(format!(
                    "Resource handler returned message: \"Exceeded attempts to wait\" (RequestToken: {}, HandlerErrorCode: NotStabilized) while waiting for {what}",
                    portico_core::ids::uuid()
                )));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(1));
        }
    }

    /// Template tags plus the stack's tags, as `[{Key, Value}]`.
    pub(crate) fn tag_list(&self, props: &Value) -> Vec<Value> {
        let mut out: Vec<Value> = props
            .get("Tags")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (k, v) in self.tags {
            if !out
                .iter()
                .any(|t| t.get("Key").and_then(Value::as_str) == Some(k))
            {
                out.push(serde_json::json!({"Key": k, "Value": v}));
            }
        }
        out
    }

    /// For the resource types CloudFormation tags itself: [`Pcx::tag_list`] plus
    /// `aws:cloudformation:stack-name`, `stack-id` and `logical-id` (replacing any the template
    /// names).
    pub(crate) fn auto_tag_list(&self, props: &Value) -> Vec<Value> {
        let [name, id, logical] = portico_control::services::tags::CLOUDFORMATION_KEYS;
        let mut out = self.tag_list(props);
        for (k, v) in [
            (name, self.stack_name),
            (id, self.stack_id),
            (logical, self.logical),
        ] {
            out.retain(|t| t.get("Key").and_then(Value::as_str) != Some(k));
            out.push(serde_json::json!({"Key": k, "Value": v}));
        }
        out
    }
}

const RAND: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

pub(crate) fn generated_name(stack: &str, logical: &str, max: usize) -> String {
    let mut rng = rand::thread_rng();
    let rand_len = if max < 40 { 13 } else { 12 };
    let suffix: String = (0..rand_len)
        .map(|_| RAND[rng.gen_range(0..RAND.len())] as char)
        .collect();
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect()
    };
    let (mut a, mut b) = (clean(stack), clean(logical));
    a = a.trim_matches('-').to_string();
    let budget = max.saturating_sub(rand_len + 2);
    if a.len() + b.len() > budget {
        let half = budget / 2;
        if a.len() <= half {
            b.truncate(budget - a.len());
        } else if b.len() <= budget - half {
            a.truncate(budget - b.len());
        } else {
            a.truncate(half);
            b.truncate(budget - half);
        }
    }
    let a = a.trim_end_matches('-');
    let b = b.trim_matches('-');
    match (a.is_empty(), b.is_empty()) {
        (false, false) => format!("{a}-{b}-{suffix}"),
        (false, true) => format!("{a}-{suffix}"),
        (true, false) => format!("{b}-{suffix}"),
        (true, true) => suffix,
    }
}

/// Reads a member whatever its case on the wire (`vpcId`, `VpcId`).
pub(crate) fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    if let Some(x) = v.get(key) {
        return Some(x);
    }
    let mut c = key.chars();
    let first = c.next()?;
    let rest = c.as_str();
    let lower = format!("{}{rest}", first.to_ascii_lowercase());
    if let Some(x) = v.get(&lower) {
        return Some(x);
    }
    let upper = format!("{}{rest}", first.to_ascii_uppercase());
    v.get(&upper)
}

/// A string member, whatever its case.
pub(crate) fn fstr(v: &Value, key: &str) -> Option<String> {
    field(v, key).and_then(|x| match x {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    })
}

/// Follows a path of members, whatever their case.
pub(crate) fn path<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for k in keys {
        cur = field(cur, k)?;
    }
    Some(cur)
}

pub(crate) fn text(v: &Value) -> String {
    crate::template::scalar_text(v)
}

pub(crate) fn prop_str(props: &Value, key: &str) -> Option<String> {
    props.get(key).map(text)
}

pub(crate) fn required(props: &Value, key: &str) -> PResult<Value> {
    props.get(key).cloned().ok_or_else(|| {
        Failure::msg(format!(
            "Properties validation failed for resource with message: #: required key [{key}] not found"
        ))
    })
}

/// Creates a resource.
pub(crate) async fn create(cx: &Pcx<'_>, ty: &str, props: &Value) -> PResult<Done> {
    match service_of(ty) {
        "EC2" => ec2::create(cx, ty, props).await,
        "ElasticLoadBalancingV2" => elbv2::create(cx, ty, props).await,
        "ECS" => ecs::create(cx, ty, props).await,
        "ApiGatewayV2" => apigw::create(cx, ty, props).await,
        "IAM" => iam::create(cx, ty, props).await,
        _ => misc::create(cx, ty, props).await,
    }
}

/// Waits until a created or updated resource is stable; may refresh its attributes.
pub(crate) async fn stabilize(cx: &Pcx<'_>, ty: &str, done: &mut Done) -> PResult<()> {
    match service_of(ty) {
        "EC2" => ec2::stabilize(cx, ty, done).await,
        "ElasticLoadBalancingV2" => elbv2::stabilize(cx, ty, done).await,
        "ECS" => ecs::stabilize(cx, ty, done).await,
        "ApiGatewayV2" => apigw::stabilize(cx, ty, done).await,
        _ => Ok(()),
    }
}

/// Updates a resource in place (only called when `needs_replacement` is false).
pub(crate) async fn update(
    cx: &Pcx<'_>,
    ty: &str,
    physical: &str,
    old: &Value,
    new: &Value,
    attrs: &Map<String, Value>,
) -> PResult<Done> {
    match service_of(ty) {
        "EC2" => ec2::update(cx, ty, physical, old, new, attrs).await,
        "ElasticLoadBalancingV2" => elbv2::update(cx, ty, physical, old, new, attrs).await,
        "ECS" => ecs::update(cx, ty, physical, old, new, attrs).await,
        "ApiGatewayV2" => apigw::update(cx, ty, physical, old, new, attrs).await,
        "IAM" => iam::update(cx, ty, physical, old, new, attrs).await,
        _ => misc::update(cx, ty, physical, old, new, attrs).await,
    }
}

/// Deletes a resource; "already gone" is success.
pub(crate) async fn delete(
    cx: &Pcx<'_>,
    ty: &str,
    physical: &str,
    props: &Value,
    attrs: &Map<String, Value>,
) -> PResult<()> {
    match service_of(ty) {
        "EC2" => ec2::delete(cx, ty, physical, props, attrs).await,
        "ElasticLoadBalancingV2" => elbv2::delete(cx, ty, physical, props, attrs).await,
        "ECS" => ecs::delete(cx, ty, physical, props, attrs).await,
        "ApiGatewayV2" => apigw::delete(cx, ty, physical, props, attrs).await,
        "IAM" => iam::delete(cx, ty, physical, props, attrs).await,
        _ => misc::delete(cx, ty, physical, props, attrs).await,
    }
}

fn service_of(ty: &str) -> &str {
    ty.split("::").nth(1).unwrap_or_default()
}

pub(crate) fn unsupported(ty: &str) -> Failure {
    Failure::msg(format!("Portico has no provider for {ty}"))
}

/// CloudFormation's PascalCase property names as a JSON API's lowerCamel members, recursively;
/// the members named in `keep` are maps whose keys are data (tags, options) and stay as they are.
pub(crate) fn camel(v: &Value, keep: &[&str]) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    let mut c = k.chars();
                    let key = match c.next() {
                        Some(f) => format!("{}{}", f.to_ascii_lowercase(), c.as_str()),
                        None => String::new(),
                    };
                    let val = if keep.contains(&k.as_str()) {
                        x.clone()
                    } else {
                        camel(x, keep)
                    };
                    (key, val)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|x| camel(x, keep)).collect()),
        other => other.clone(),
    }
}

/// Copies the listed members of `props` (those present) into `input`.
pub(crate) fn copy(props: &Value, input: &mut Value, keys: &[&str]) {
    for k in keys {
        if let Some(v) = props.get(*k) {
            input[*k] = v.clone();
        }
    }
}

/// The first element of a list member (`LoadBalancers[0]`), or null.
pub(crate) fn first_of(v: &Value, key: &str) -> Value {
    field(v, key)
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_fit() {
        let n = generated_name("tutorial", "EcsCluster", 255);
        assert!(n.starts_with("tutorial-EcsCluster-"), "{n}");
        assert_eq!(n.len(), "tutorial-EcsCluster-".len() + 12);
        let n = generated_name(
            "PrivateIntegrationsStack",
            "PrivateIntegrationsTutorialServiceLB8E9ECEA5",
            32,
        );
        assert!(n.len() <= 32, "{n}");
        assert!(
            !n.contains("--") && !n.ends_with('-') && !n.starts_with('-'),
            "{n}"
        );
    }

    #[test]
    fn replacement_rules() {
        let a = serde_json::json!({"CidrBlock": "10.0.0.0/16", "Tags": []});
        let b = serde_json::json!({"CidrBlock": "10.0.0.0/16", "Tags": [1]});
        let c = serde_json::json!({"CidrBlock": "10.1.0.0/16"});
        assert!(!needs_replacement("AWS::EC2::VPC", &a, &b));
        assert!(needs_replacement("AWS::EC2::VPC", &a, &c));
        assert!(needs_replacement("AWS::ECS::TaskDefinition", &a, &b));
    }
}
