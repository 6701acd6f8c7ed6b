//! API Gateway v2 reconcilers. `vpc_links`: moves VPC links through their lifecycle (PENDING ->
//! AVAILABLE or FAILED after checking subnets and security groups against EC2 and creating one
//! ENI per subnet; DELETING -> gone, ENIs removed). `snapshot`: after every commit, builds the
//! HTTP API data-plane snapshot from the stored APIs, stages and the deployments they serve,
//! and publishes it when anything it depends on changed.

use crate::services::apigatewayv2::{
    vpclinks, KIND_API, KIND_DEPLOYMENT, KIND_STAGE, KIND_VPCLINK,
};
use crate::services::ec2::shared;
use crate::Control;
use portico_core::AwsResult;
use portico_dataplane::http_api::{
    self as dp, routing::RouteKey, routing::Table, Auth, IdentitySource, Jwt, Target, Throttle,
};
use portico_store::{Record, Scope};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How long a new VPC link stays PENDING (scaled by `time_scale`).
const PENDING_MS: f64 = 2000.0;
/// How long a deleted VPC link stays DELETING.
const DELETING_MS: f64 = 1000.0;

pub fn spawn(control: &Control) {
    // VPC-link integrations hand requests to the ALB engine in-process
    control
        .dataplane()
        .http_api
        .attach_lb(control.dataplane().lb.clone());
    let mut last: Option<String> = None;
    super::spawn_loop(
        control,
        "apigw-snapshot",
        Duration::from_secs(30),
        move |c| {
            let r = publish_if_changed(&c, &mut last);
            async move {
                if let Err(e) = r {
                    tracing::error!(error = %e, cause = ?e.cause, "apigw snapshot failed");
                }
            }
        },
    );
    super::spawn_loop(control, "apigw-vpclinks", Duration::from_millis(250), |c| {
        let r = step_vpc_links(&c);
        async move {
            if let Err(e) = r {
                tracing::error!(error = %e, cause = ?e.cause, "apigw vpc link step failed");
            }
        }
    });
}

// ---------- VPC links ----------

fn str_list(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Why a link cannot be provisioned, checked against the EC2 records.
fn provision_problem(
    tx: &portico_store::Tx<'_>,
    scope: &Scope,
    link: &Value,
) -> AwsResult<Option<String>> {
    let mut vpc: Option<String> = None;
    for s in str_list(link, "subnetIds") {
        match shared::get_subnet(tx, scope, &s)? {
            None => return Ok(Some(format!("VPC link failed: subnet {s} does not exist"))),
            Some(sub) => match &vpc {
                Some(v) if *v != sub.vpc_id => {
                    return Ok(Some(format!(
                        "VPC link failed: subnets must belong to the same VPC; {s} is in {} and not {v}",
                        sub.vpc_id
                    )))
                }
                _ => vpc = Some(sub.vpc_id.clone()),
            },
        }
    }
    for g in str_list(link, "securityGroupIds") {
        match shared::get_security_group(tx, scope, &g)? {
            None => {
                return Ok(Some(format!(
                    "VPC link failed: security group {g} does not exist"
                )))
            }
            Some(sg) if vpc.as_deref().is_some_and(|v| v != sg.vpc_id) => {
                return Ok(Some(format!(
                    "VPC link failed: security group {g} belongs to {} and not to the subnets' VPC",
                    sg.vpc_id
                )))
            }
            Some(_) => {}
        }
    }
    Ok(None)
}

/// Moves every due VPC link one step. Each link is one transaction.
pub(crate) fn step_vpc_links(control: &Control) -> AwsResult<()> {
    let scale = control.config().time_scale.max(0.0);
    let now = portico_core::time::now_millis();
    let due: Vec<Record> = control.store().read(|tx| {
        Ok(tx
            .list_all(KIND_VPCLINK)?
            .into_iter()
            .filter(|r| {
                let since = r.body.get("_since").and_then(Value::as_i64).unwrap_or(0);
                let waited = (now - since) as f64;
                match r.body.get("vpcLinkStatus").and_then(Value::as_str) {
                    Some("PENDING") => waited >= PENDING_MS * scale,
                    Some("DELETING") => waited >= DELETING_MS * scale,
                    _ => false,
                }
            })
            .collect())
    })?;
    for r in due {
        control.store().write(|tx| {
            // re-read: the link may have changed since the scan
            let Some(cur) = tx.get(&r.scope, KIND_VPCLINK, &r.id)? else {
                return Ok(());
            };
            let mut body = cur.body;
            match body.get("vpcLinkStatus").and_then(Value::as_str) {
                Some("PENDING") => {
                    match provision_problem(tx, &r.scope, &body)? {
                        Some(reason) => {
                            body["vpcLinkStatus"] = json!("FAILED");
                            body["vpcLinkStatusMessage"] = json!(reason);
                        }
                        None => {
                            let groups = str_list(&body, "securityGroupIds");
                            let mut enis = Vec::new();
                            let mut failure = None;
                            for s in str_list(&body, "subnetIds") {
                                match shared::create_eni(
                                    tx,
                                    &r.scope,
                                    &s,
                                    &groups,
                                    &format!("VPC Link ENI {}", r.id),
                                    "interface",
                                    "amazon-aws",
                                    None,
                                ) {
                                    Ok(eni) => enis.push(eni.network_interface_id),
                                    // e.g. a full subnet: the link fails, the ENIs made so far go
                                    Err(e) if e.status < 500 => {
                                        failure = Some(format!("VPC link failed: {}", e.message));
                                        break;
                                    }
                                    Err(e) => return Err(e),
                                }
                            }
                            if let Some(reason) = failure {
                                for e in &enis {
                                    shared::delete_eni(tx, &r.scope, e)?;
                                }
                                body["vpcLinkStatus"] = json!("FAILED");
                                body["vpcLinkStatusMessage"] = json!(reason);
                            } else {
                                body["_eniIds"] = json!(enis);
                                body["vpcLinkStatus"] = json!("AVAILABLE");
                                body["vpcLinkStatusMessage"] = json!(vpclinks::AVAILABLE_MESSAGE);
                            }
                        }
                    }
                    tx.put(
                        &r.scope,
                        KIND_VPCLINK,
                        &r.id,
                        None,
                        cur.name.as_deref(),
                        &body,
                    )?;
                }
                Some("DELETING") => {
                    for e in str_list(&body, "_eniIds") {
                        shared::delete_eni(tx, &r.scope, &e)?;
                    }
                    tx.delete(&r.scope, KIND_VPCLINK, &r.id)?;
                }
                _ => {}
            }
            Ok(())
        })?;
    }
    Ok(())
}

// ---------- data-plane snapshot ----------

/// A VPC link as the snapshot needs it.
#[derive(Debug, Clone)]
struct Link {
    status: String,
    addresses: Vec<std::net::IpAddr>,
    /// Listeners the link cannot reach, with the reason (reconcile/vpc_reach.rs).
    unreachable: std::collections::BTreeMap<String, String>,
}

/// What the snapshot is built from, read in one transaction.
struct Source {
    /// (api record, its stages, deployments by id)
    apis: Vec<(Record, Vec<Record>, HashMap<String, Value>)>,
    /// (account, region, link id) -> status and ENI addresses
    links: HashMap<(String, String, String), Link>,
    fingerprint: String,
}

fn read_source(control: &Control) -> AwsResult<Source> {
    control.store().read(|tx| {
        let mut fp = String::new();
        let mut links = HashMap::new();
        let link_records = tx.list_all(KIND_VPCLINK)?;
        let net = match link_records.is_empty() {
            true => super::vpc_reach::Network::default(),
            false => super::vpc_reach::Network::load(tx)?,
        };
        for l in link_records {
            let status = l
                .body
                .get("vpcLinkStatus")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let mut addresses = Vec::new();
            for e in str_list(&l.body, "_eniIds") {
                if let Some(eni) = shared::get_eni(tx, &l.scope, &e)? {
                    if let Ok(ip) = eni.private_ip_address.parse() {
                        addresses.push(ip);
                    }
                }
            }
            let unreachable =
                net.unreachable_listeners(&l.scope, &l.id, &str_list(&l.body, "_eniIds"));
            fp.push_str(&format!(
                "L{}:{}:{}={status}{addresses:?}{unreachable:?};",
                l.scope.account, l.scope.region, l.id
            ));
            links.insert(
                (
                    l.scope.account.clone(),
                    l.scope.region.clone(),
                    l.id.clone(),
                ),
                Link {
                    status,
                    addresses,
                    unreachable,
                },
            );
        }
        let mut apis = Vec::new();
        for api in tx.list_all(KIND_API)? {
            let stages = tx.list(&api.scope, KIND_STAGE, Some(&api.id))?;
            let mut deployments = HashMap::new();
            fp.push_str(&format!(
                "A{}:{}:{};",
                api.scope.account, api.scope.region, api.id
            ));
            for s in &stages {
                fp.push_str(&format!("S{}={};", s.id, s.body));
                if let Some(d) = s.body.get("deploymentId").and_then(Value::as_str) {
                    if let Some(rec) =
                        tx.get(&api.scope, KIND_DEPLOYMENT, &format!("{}/{d}", api.id))?
                    {
                        deployments.insert(d.to_string(), rec.body);
                    }
                }
            }
            apis.push((api, stages, deployments));
        }
        Ok(Source {
            apis,
            links,
            fingerprint: fp,
        })
    })
}

/// Serializes read-build-publish, so the last snapshot published is always built from the
/// newest state (an operation's own publish and the reconciler's may race otherwise).
static PUBLISH: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// Builds and publishes the snapshot now. API Gateway operations call this after their write
/// commits, so a request sent right after `CreateRoute` returns already sees the route.
pub(crate) fn publish_now(control: &Control) -> AwsResult<()> {
    let _guard = PUBLISH.lock();
    let src = read_source(control)?;
    control.dataplane().http_api.publish(build(&src));
    Ok(())
}

fn publish_if_changed(control: &Control, last: &mut Option<String>) -> AwsResult<()> {
    let _guard = PUBLISH.lock();
    let src = read_source(control)?;
    if last.as_deref() == Some(src.fingerprint.as_str()) {
        return Ok(());
    }
    let snapshot = build(&src);
    control.dataplane().http_api.publish(snapshot);
    *last = Some(src.fingerprint);
    Ok(())
}

fn throttle(v: Option<&Value>) -> Throttle {
    Throttle {
        burst: v
            .and_then(|s| s.get("throttlingBurstLimit"))
            .and_then(Value::as_i64)
            .map(|b| b.clamp(0, i64::from(u32::MAX)) as u32),
        rate: v
            .and_then(|s| s.get("throttlingRateLimit"))
            .and_then(Value::as_f64),
    }
}

fn string_pairs(v: Option<&Value>) -> Vec<(String, String)> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn build(src: &Source) -> dp::Snapshot {
    let mut apis = HashMap::new();
    for (api, stages, deployments) in &src.apis {
        let scope = &api.scope;
        let mut built: HashMap<String, Arc<dp::Deployment>> = HashMap::new();
        for (id, d) in deployments {
            let snap = d.get("_snapshot").cloned().unwrap_or(Value::Null);
            built.insert(
                id.clone(),
                Arc::new(build_deployment(id, &snap, scope, &src.links)),
            );
        }
        let mut st = HashMap::new();
        for s in stages {
            let name = s
                .body
                .get("stageName")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let deployment = s
                .body
                .get("deploymentId")
                .and_then(Value::as_str)
                .and_then(|d| built.get(d).cloned());
            let variables: HashMap<String, String> = string_pairs(s.body.get("stageVariables"))
                .into_iter()
                .collect();
            let route_throttle: HashMap<String, Throttle> = s
                .body
                .get("routeSettings")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), throttle(Some(v))))
                        .collect()
                })
                .unwrap_or_default();
            let access_log = s
                .body
                .get("accessLogSettings")
                .and_then(|a| a.get("format"))
                .and_then(Value::as_str)
                .map(String::from);
            st.insert(
                name.clone(),
                Arc::new(dp::Stage::new(
                    name,
                    deployment,
                    variables,
                    throttle(s.body.get("defaultRouteSettings")),
                    route_throttle,
                    access_log,
                )),
            );
        }
        apis.insert(
            api.id.clone(),
            Arc::new(dp::Api {
                api_id: api.id.clone(),
                account_id: scope.account.clone(),
                region: scope.region.clone(),
                stages: st,
            }),
        );
    }
    dp::Snapshot { apis }
}

fn build_integration(
    i: &Value,
    scope: &Scope,
    links: &HashMap<(String, String, String), Link>,
) -> dp::Integration {
    let s = |k: &str| i.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let target = match (s("integrationType").as_str(), s("connectionType").as_str()) {
        ("HTTP_PROXY", "VPC_LINK") => {
            let id = s("connectionId");
            let link = links
                .get(&(scope.account.clone(), scope.region.clone(), id.clone()))
                .cloned()
                .unwrap_or(Link {
                    status: "DELETED".into(),
                    addresses: Vec::new(),
                    unreachable: Default::default(),
                });
            Target::VpcLink {
                blocked: link.unreachable.get(&s("integrationUri")).cloned(),
                listener_arn: s("integrationUri"),
                vpc_link_id: id,
                status: link.status,
                eni_addresses: link.addresses,
            }
        }
        ("HTTP_PROXY", _) => Target::Http {
            uri: s("integrationUri"),
        },
        _ => Target::Unsupported {
            reason: "Lambda is not available in Portico".into(),
        },
    };
    let method = match s("integrationMethod").as_str() {
        "" | "ANY" => None,
        m => Some(m.to_string()),
    };
    let response_parameters = i
        .get("responseParameters")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(code, v)| {
                    code.parse::<u16>().ok().map(|c| (c, string_pairs(Some(v))))
                })
                .collect()
        })
        .unwrap_or_default();
    dp::Integration {
        id: s("integrationId"),
        target,
        method,
        timeout: Duration::from_millis(
            i.get("timeoutInMillis")
                .and_then(Value::as_u64)
                .unwrap_or(30000),
        ),
        request_parameters: string_pairs(i.get("requestParameters")),
        response_parameters,
    }
}

fn build_auth(route: &Value, authorizers: &[Value]) -> Auth {
    match route.get("authorizationType").and_then(Value::as_str) {
        Some("JWT") => {
            let id = route.get("authorizerId").and_then(Value::as_str);
            let Some(a) = authorizers
                .iter()
                .find(|a| a.get("authorizerId").and_then(Value::as_str) == id)
            else {
                return Auth::Custom;
            };
            let source = str_list(a, "identitySource")
                .first()
                .map(|s| match s.strip_prefix("$request.querystring.") {
                    Some(q) => IdentitySource::Query(q.to_string()),
                    None => IdentitySource::Header(
                        s.strip_prefix("$request.header.")
                            .unwrap_or(s)
                            .to_ascii_lowercase(),
                    ),
                })
                .unwrap_or(IdentitySource::Header("authorization".into()));
            let jc = a.get("jwtConfiguration").cloned().unwrap_or(Value::Null);
            Auth::Jwt(Jwt {
                source,
                issuer: jc
                    .get("issuer")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                audience: str_list(&jc, "audience"),
                scopes: str_list(route, "authorizationScopes"),
            })
        }
        Some("AWS_IAM") => Auth::Iam,
        Some("CUSTOM") => Auth::Custom,
        _ => Auth::None,
    }
}

fn build_deployment(
    id: &str,
    snap: &Value,
    scope: &Scope,
    links: &HashMap<(String, String, String), Link>,
) -> dp::Deployment {
    let list = |k: &str| {
        snap.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let integrations: HashMap<String, Arc<dp::Integration>> = list("integrations")
        .iter()
        .map(|i| {
            let b = build_integration(i, scope, links);
            (b.id.clone(), Arc::new(b))
        })
        .collect();
    let authorizers = list("authorizers");
    let mut routes = Vec::new();
    for r in list("routes") {
        let key = r.get("routeKey").and_then(Value::as_str).unwrap_or("");
        let Ok(parsed) = RouteKey::parse(key) else {
            continue;
        };
        let integration = r
            .get("target")
            .and_then(Value::as_str)
            .and_then(|t| t.strip_prefix("integrations/"))
            .and_then(|i| integrations.get(i).cloned());
        routes.push((
            parsed,
            dp::Route {
                key: key.to_string(),
                integration,
                auth: build_auth(&r, &authorizers),
            },
        ));
    }
    let cors = snap
        .get("corsConfiguration")
        .filter(|c| c.is_object())
        .map(|c| dp::Cors {
            allow_origins: str_list(c, "allowOrigins"),
            allow_methods: str_list(c, "allowMethods"),
            allow_headers: str_list(c, "allowHeaders"),
            expose_headers: str_list(c, "exposeHeaders"),
            allow_credentials: c
                .get("allowCredentials")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            max_age: c.get("maxAge").and_then(Value::as_i64),
        });
    dp::Deployment {
        id: id.to_string(),
        routes: Table::new(routes),
        cors,
        disable_execute_api_endpoint: snap
            .get("disableExecuteApiEndpoint")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::ec2::shared::{
        SecurityGroup, Subnet, Vpc, KIND_ENI, KIND_SG, KIND_SUBNET, KIND_VPC,
    };
    use crate::Config;
    use portico_core::{Input, RequestContext, Service};
    use portico_store::Store;

    fn control() -> Control {
        let config = Config {
            time_scale: 0.0,
            ..Config::default()
        };
        Control::new(
            Store::in_memory().unwrap(),
            config,
            portico_dataplane::Dataplane::default(),
            portico_runtime::Runtime::default(),
        )
    }

    fn rc() -> RequestContext {
        RequestContext::new("000000000000", "us-east-1")
    }

    async fn call(c: &Control, op: &str, input: Value) -> AwsResult<Value> {
        c.call(&rc(), Service::ApiGatewayV2, op, Input(input)).await
    }

    fn seed_network(c: &Control) {
        let scope = Scope::new("000000000000", "us-east-1");
        c.store()
            .write(|tx| {
                let vpc = Vpc {
                    vpc_id: "vpc-1".into(),
                    cidr_block: "10.0.0.0/16".into(),
                    is_default: false,
                    rest: Default::default(),
                };
                tx.put_as(&scope, KIND_VPC, "vpc-1", None, None, &vpc)?;
                for (id, cidr, az) in [
                    ("subnet-a", "10.0.1.0/24", "us-east-1a"),
                    ("subnet-b", "10.0.2.0/24", "us-east-1b"),
                ] {
                    let s = Subnet {
                        subnet_id: id.into(),
                        vpc_id: "vpc-1".into(),
                        cidr_block: cidr.into(),
                        availability_zone: az.into(),
                        rest: Default::default(),
                    };
                    tx.put_as(&scope, KIND_SUBNET, id, Some("vpc-1"), None, &s)?;
                }
                let sg = SecurityGroup {
                    group_id: "sg-1".into(),
                    group_name: "link".into(),
                    vpc_id: "vpc-1".into(),
                    rest: Default::default(),
                };
                tx.put_as(&scope, KIND_SG, "sg-1", Some("vpc-1"), None, &sg)?;
                Ok(())
            })
            .unwrap();
    }

    #[tokio::test]
    async fn vpc_link_becomes_available_with_one_eni_per_subnet_then_goes_away() {
        let c = control();
        seed_network(&c);
        let link = call(&c, "CreateVpcLink", json!({"name": "l", "subnetIds": ["subnet-a", "subnet-b"], "securityGroupIds": ["sg-1"]}))
            .await
            .unwrap();
        assert_eq!(link["vpcLinkStatus"], "PENDING");
        let id = link["vpcLinkId"].as_str().unwrap().to_string();
        step_vpc_links(&c).unwrap();
        let got = call(&c, "GetVpcLink", json!({"vpcLinkId": id}))
            .await
            .unwrap();
        assert_eq!(got["vpcLinkStatus"], "AVAILABLE");
        assert_eq!(
            got["vpcLinkStatusMessage"],
            "VPC link is ready to route traffic"
        );
        assert!(
            got.get("_eniIds").is_none(),
            "internal members are never sent"
        );
        let scope = Scope::new("000000000000", "us-east-1");
        let enis: Vec<shared::NetworkInterface> = c
            .store()
            .read(|tx| Ok(tx.list_as(&scope, KIND_ENI, None)?))
            .unwrap();
        let mut ips: Vec<String> = enis.iter().map(|e| e.private_ip_address.clone()).collect();
        ips.sort();
        assert_eq!(ips, vec!["10.0.1.4", "10.0.2.4"]);
        assert!(enis.iter().all(|e| e.group_ids == vec!["sg-1".to_string()]));

        call(&c, "DeleteVpcLink", json!({"vpcLinkId": id}))
            .await
            .unwrap();
        step_vpc_links(&c).unwrap();
        let e = call(&c, "GetVpcLink", json!({"vpcLinkId": id}))
            .await
            .unwrap_err();
        assert_eq!(e.status, 404);
        let left = c
            .store()
            .read(|tx| Ok(tx.list(&scope, KIND_ENI, None)?.len()))
            .unwrap();
        assert_eq!(left, 0);
    }

    #[tokio::test]
    async fn vpc_link_fails_when_subnets_span_vpcs_or_group_is_missing() {
        let c = control();
        seed_network(&c);
        let link = call(
            &c,
            "CreateVpcLink",
            json!({"name": "l", "subnetIds": ["subnet-a"], "securityGroupIds": ["sg-nope"]}),
        )
        .await
        .unwrap();
        step_vpc_links(&c).unwrap();
        let got = call(&c, "GetVpcLink", json!({"vpcLinkId": link["vpcLinkId"]}))
            .await
            .unwrap();
        assert_eq!(got["vpcLinkStatus"], "FAILED");
        assert!(got["vpcLinkStatusMessage"]
            .as_str()
            .unwrap()
            .contains("sg-nope"));
    }

    #[tokio::test]
    async fn vpc_link_fails_on_a_full_subnet_and_keeps_no_enis() {
        let c = control();
        seed_network(&c);
        let scope = Scope::new("000000000000", "us-east-1");
        c.store()
            .write(|tx| {
                let s = Subnet {
                    subnet_id: "subnet-full".into(),
                    vpc_id: "vpc-1".into(),
                    cidr_block: "10.0.9.0/28".into(),
                    availability_zone: "us-east-1c".into(),
                    rest: Default::default(),
                };
                tx.put_as(&scope, KIND_SUBNET, "subnet-full", Some("vpc-1"), None, &s)?;
                for _ in 0..11 {
                    shared::create_eni(
                        tx,
                        &scope,
                        "subnet-full",
                        &[],
                        "x",
                        "interface",
                        "me",
                        None,
                    )?;
                }
                Ok(())
            })
            .unwrap();
        let link = call(
            &c,
            "CreateVpcLink",
            json!({"name": "l", "subnetIds": ["subnet-a", "subnet-full"]}),
        )
        .await
        .unwrap();
        step_vpc_links(&c).unwrap();
        let got = call(&c, "GetVpcLink", json!({"vpcLinkId": link["vpcLinkId"]}))
            .await
            .unwrap();
        assert_eq!(got["vpcLinkStatus"], "FAILED");
        assert!(got["vpcLinkStatusMessage"]
            .as_str()
            .unwrap()
            .contains("subnet-full"));
        let in_a = c
            .store()
            .read(|tx| Ok(tx.list(&scope, KIND_ENI, Some("subnet-a"))?.len()))
            .unwrap();
        assert_eq!(in_a, 0);
    }

    #[tokio::test]
    async fn auto_deploy_snapshot_follows_changes_and_frozen_stage_does_not() {
        let c = control();
        let api = call(
            &c,
            "CreateApi",
            json!({"name": "a", "protocolType": "HTTP"}),
        )
        .await
        .unwrap();
        let api_id = api["apiId"].as_str().unwrap().to_string();
        let integ = call(&c, "CreateIntegration", json!({"apiId": api_id, "integrationType": "HTTP_PROXY", "integrationMethod": "ANY", "integrationUri": "http://127.0.0.1:9/x"}))
            .await
            .unwrap();
        let target = format!("integrations/{}", integ["integrationId"].as_str().unwrap());
        call(
            &c,
            "CreateRoute",
            json!({"apiId": api_id, "routeKey": "GET /a", "target": target}),
        )
        .await
        .unwrap();
        call(
            &c,
            "CreateStage",
            json!({"apiId": api_id, "stageName": "$default", "autoDeploy": true}),
        )
        .await
        .unwrap();
        call(
            &c,
            "CreateStage",
            json!({"apiId": api_id, "stageName": "dev"}),
        )
        .await
        .unwrap();
        call(
            &c,
            "CreateDeployment",
            json!({"apiId": api_id, "stageName": "dev"}),
        )
        .await
        .unwrap();
        call(
            &c,
            "CreateRoute",
            json!({"apiId": api_id, "routeKey": "GET /b", "target": target}),
        )
        .await
        .unwrap();
        let mut last = None;
        publish_if_changed(&c, &mut last).unwrap();
        let snap = c.dataplane().http_api.current();
        let api = &snap.apis[&api_id];
        let keys = |stage: &str| -> Vec<String> {
            let mut k: Vec<String> = api.stages[stage]
                .deployment
                .as_ref()
                .unwrap()
                .routes
                .values()
                .map(|r| r.key.clone())
                .collect();
            k.sort();
            k
        };
        assert_eq!(keys("$default"), vec!["GET /a", "GET /b"]);
        assert_eq!(keys("dev"), vec!["GET /a"]);
        // nothing changed: no republish
        let before = c.dataplane().http_api.current();
        publish_if_changed(&c, &mut last).unwrap();
        assert!(Arc::ptr_eq(&before, &c.dataplane().http_api.current()));
    }
}
