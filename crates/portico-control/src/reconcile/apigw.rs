//! API Gateway v2 reconcilers. `vpc_links`: moves VPC links through their lifecycle (PENDING ->
//! AVAILABLE or FAILED after checking subnets and security groups against EC2 and creating one
//! ENI per subnet; DELETING -> gone, ENIs removed). The snapshot [`Publisher`]: after every
//! commit that touches what an API serves, rebuilds that API (not the others) from its stored
//! stages and the deployments they serve, and publishes a snapshot sharing every other API.

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
use std::collections::{HashMap, HashSet};
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
    spawn_snapshot_loop(control, Duration::from_secs(30));
    let links = [KIND_VPCLINK];
    super::spawn_loop_on(
        control,
        "apigw-vpclinks",
        Duration::from_millis(250),
        &links,
        |c| {
            let r = step_vpc_links(&c);
            async move {
                if let Err(e) = r {
                    tracing::error!(error = %e, cause = ?e.cause, "apigw vpc link step failed");
                }
            }
        },
    );
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

/// Kinds whose writes can change what an API serves: its own records (API, stages, the
/// deployments they name), VPC links, and for APIs with VPC-link integrations the EC2 and ELB
/// records a link's target depends on (ENIs, security groups, listeners, load balancers).
const FOLLOWED: &[&str] = &["apigw.", "ec2.", "elbv2."];

/// Builds and publishes the HTTP API data-plane snapshot incrementally: each sync rebuilds only
/// the APIs whose records a commit touched since the last sync (from the store's change feed)
/// and publishes a snapshot that shares every other API's `Arc`. One per [`Control`].
pub struct Publisher {
    feed: portico_store::ChangeFeed,
    state: parking_lot::Mutex<State>,
}

/// What the last sync published, and who depends on what.
#[derive(Default)]
struct State {
    /// Everything was built at least once (the first sync, or after a failure, builds all).
    built: bool,
    /// The scope of every API in the published snapshot (the snapshot is keyed by API id).
    apis: HashMap<String, Scope>,
    /// VPC link -> the APIs whose deployments use it.
    link_users: HashMap<(Scope, String), HashSet<String>>,
    /// API -> the VPC links its deployments use (to unindex on rebuild).
    links_of: HashMap<String, Vec<(Scope, String)>>,
}

/// Which APIs a sync rebuilds.
enum Dirty {
    All,
    Some(HashSet<(Scope, String)>),
}

impl State {
    fn dirty(&self, changes: portico_store::Changes) -> Dirty {
        if changes.everything || !self.built {
            return Dirty::All;
        }
        let mut dirty = HashSet::new();
        let mut vpc_users = false;
        for c in changes.changes {
            match c.kind.as_str() {
                KIND_API => {
                    dirty.insert((c.scope, c.id));
                }
                KIND_STAGE | KIND_DEPLOYMENT => {
                    if let Some(api) = c.parent {
                        dirty.insert((c.scope, api));
                    }
                }
                KIND_VPCLINK => {
                    let key = (c.scope, c.id);
                    for api in self.link_users.get(&key).into_iter().flatten() {
                        dirty.insert((key.0.clone(), api.clone()));
                    }
                }
                // routes, integrations, authorizers reach the data plane only through a
                // deployment (a stage's own or an auto-deploy), which is written with them
                k if k.starts_with("apigw.") => {}
                // EC2 and ELB records: what a VPC link's target depends on
                _ => vpc_users = true,
            }
        }
        if vpc_users {
            for (api, links) in &self.links_of {
                if let Some((scope, _)) = links.first() {
                    dirty.insert((scope.clone(), api.clone()));
                }
            }
        }
        Dirty::Some(dirty)
    }

    fn unindex(&mut self, api_id: &str) {
        for key in self.links_of.remove(api_id).unwrap_or_default() {
            if let Some(users) = self.link_users.get_mut(&key) {
                users.remove(api_id);
                if users.is_empty() {
                    self.link_users.remove(&key);
                }
            }
        }
    }

    fn index(&mut self, api_id: &str, scope: &Scope, links: Vec<String>) {
        self.apis.insert(api_id.to_string(), scope.clone());
        let keys: Vec<(Scope, String)> = links.into_iter().map(|l| (scope.clone(), l)).collect();
        for k in &keys {
            self.link_users
                .entry(k.clone())
                .or_default()
                .insert(api_id.to_string());
        }
        if !keys.is_empty() {
            self.links_of.insert(api_id.to_string(), keys);
        }
    }
}

impl Publisher {
    pub(crate) fn new(store: &portico_store::Store) -> Publisher {
        Publisher {
            feed: store.feed(FOLLOWED),
            state: parking_lot::Mutex::new(State::default()),
        }
    }

    /// Rebuilds and publishes what changed since the last sync; `Ok(true)` when it published.
    ///
    /// Serialized (the state lock is held from taking the changes to publishing), so the last
    /// snapshot published is always built from the newest state: an operation's own sync and
    /// the reconciler's would race otherwise. Every commit is followed by a sync that takes its
    /// changes after the commit (the feed gets them before the store is unlocked).
    pub(crate) fn sync(&self, control: &Control) -> AwsResult<bool> {
        let mut st = self.state.lock();
        let dirty = st.dirty(self.feed.take());
        if matches!(&dirty, Dirty::Some(d) if d.is_empty()) {
            return Ok(false);
        }
        let r = Self::rebuild(&mut st, control, dirty);
        if r.is_err() {
            // changes taken but not applied: build everything next time
            st.built = false;
        }
        r.map(|()| true)
    }

    fn rebuild(st: &mut State, control: &Control, dirty: Dirty) -> AwsResult<()> {
        let engine = &control.dataplane().http_api;
        match dirty {
            Dirty::All => {
                let built = control.store().read(|tx| {
                    let mut links = LinkCache::default();
                    let mut out = Vec::new();
                    for api in tx.list_all(KIND_API)? {
                        out.push(build_api(tx, &api, &mut links)?);
                    }
                    Ok(out)
                })?;
                *st = State {
                    built: true,
                    ..State::default()
                };
                let mut apis = portico_dataplane::FastMap::default();
                for (api, scope, links) in built {
                    st.index(&api.api_id, &scope, links);
                    apis.insert(api.api_id.clone(), Arc::new(api));
                }
                engine.publish(dp::Snapshot { apis });
            }
            Dirty::Some(ids) => {
                let built = control.store().read(|tx| {
                    let mut links = LinkCache::default();
                    let mut out = Vec::new();
                    for (scope, id) in &ids {
                        let api = tx.get(scope, KIND_API, id)?;
                        out.push((
                            scope,
                            id,
                            api.map(|a| build_api(tx, &a, &mut links)).transpose()?,
                        ));
                    }
                    Ok(out)
                })?;
                let mut changed = Vec::new();
                let mut removed = Vec::new();
                for (scope, id, api) in built {
                    // an id lives in one scope; a rebuild for another scope's same id (which
                    // does not exist there) must not remove it
                    let ours = st.apis.get(id).is_none_or(|s| s == scope);
                    match api {
                        Some((api, scope, links)) => {
                            st.unindex(id);
                            st.index(id, &scope, links);
                            changed.push(api);
                        }
                        None if ours && st.apis.contains_key(id) => {
                            st.unindex(id);
                            st.apis.remove(id);
                            removed.push(id.clone());
                        }
                        None => {}
                    }
                }
                if !changed.is_empty() || !removed.is_empty() {
                    engine.update(changed, &removed);
                }
            }
        }
        Ok(())
    }

    /// Resolves when a followed kind was written since the last wake.
    async fn changed(&self) {
        self.feed.changed().await
    }
}

/// Rebuilds and publishes what changed now. API Gateway operations call this after their
/// write commits, so a request sent right after `CreateRoute` returns already sees the route.
pub(crate) fn publish_now(control: &Control) -> AwsResult<()> {
    control.apigw_publisher().sync(control).map(|_| ())
}

/// The snapshot reconciler: syncs after every commit to a followed kind (and every `period`).
fn spawn_snapshot_loop(control: &Control, period: Duration) {
    let control = control.clone();
    tokio::spawn(async move {
        loop {
            if let Err(e) = control.apigw_publisher().sync(&control) {
                tracing::error!(error = %e, cause = ?e.cause, "apigw snapshot failed");
            }
            tokio::select! {
                _ = control.apigw_publisher().changed() => {},
                _ = tokio::time::sleep(period) => {}
            }
        }
    });
}

/// A VPC link as the snapshot needs it.
#[derive(Debug, Clone)]
struct Link {
    status: String,
    addresses: Vec<std::net::IpAddr>,
    eni_ids: Vec<String>,
}

/// VPC links read during one sync, by (scope, id); `None` when the link does not exist.
#[derive(Default)]
struct LinkCache(HashMap<(Scope, String), Option<Link>>);

impl LinkCache {
    fn get(
        &mut self,
        tx: &portico_store::Tx<'_>,
        scope: &Scope,
        id: &str,
    ) -> AwsResult<Option<Link>> {
        let key = (scope.clone(), id.to_string());
        if let Some(l) = self.0.get(&key) {
            return Ok(l.clone());
        }
        let link = match tx.get(scope, KIND_VPCLINK, id)? {
            None => None,
            Some(l) => {
                let status = l
                    .body
                    .get("vpcLinkStatus")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let mut addresses = Vec::new();
                let eni_ids = str_list(&l.body, "_eniIds");
                for e in &eni_ids {
                    if let Some(eni) = shared::get_eni(tx, scope, e)? {
                        if let Ok(ip) = eni.private_ip_address.parse() {
                            addresses.push(ip);
                        }
                    }
                }
                Some(Link {
                    status,
                    addresses,
                    eni_ids,
                })
            }
        };
        self.0.insert(key, link.clone());
        Ok(link)
    }
}

/// One API as the data plane serves it, from its stages and the deployments they name; with
/// its scope and the VPC links it uses (its dependencies outside its own records).
fn build_api(
    tx: &portico_store::Tx<'_>,
    api: &Record,
    links: &mut LinkCache,
) -> AwsResult<(dp::Api, Scope, Vec<String>)> {
    let scope = &api.scope;
    let stages = tx.list(scope, KIND_STAGE, Some(&api.id))?;
    let mut used = Vec::new();
    let mut built: HashMap<String, Arc<dp::Deployment>> = HashMap::new();
    for s in &stages {
        let Some(d) = s.body.get("deploymentId").and_then(Value::as_str) else {
            continue;
        };
        if built.contains_key(d) {
            continue;
        }
        if let Some(rec) = tx.get(scope, KIND_DEPLOYMENT, &format!("{}/{d}", api.id))? {
            let snap = rec.body.get("_snapshot").unwrap_or(&Value::Null);
            let dep = build_deployment(tx, d, snap, scope, links, &mut used)?;
            built.insert(d.to_string(), Arc::new(dep));
        }
    }
    let mut st = portico_dataplane::FastMap::default();
    for s in &stages {
        let stage = build_stage(&s.body, &api.id, &built);
        st.insert(stage.name.clone(), Arc::new(stage));
    }
    used.sort();
    used.dedup();
    Ok((
        dp::Api {
            api_id: api.id.clone(),
            account_id: scope.account.clone(),
            region: scope.region.clone(),
            stages: st,
        },
        scope.clone(),
        used,
    ))
}

fn build_stage(
    body: &Value,
    api_id: &str,
    deployments: &HashMap<String, Arc<dp::Deployment>>,
) -> dp::Stage {
    let name = body
        .get("stageName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let deployment = body
        .get("deploymentId")
        .and_then(Value::as_str)
        .and_then(|d| deployments.get(d).cloned());
    let variables: HashMap<String, String> = string_pairs(body.get("stageVariables"))
        .into_iter()
        .collect();
    let route_throttle: HashMap<String, Throttle> = body
        .get("routeSettings")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), throttle(Some(v))))
                .collect()
        })
        .unwrap_or_default();
    let access_log = access_log(body, api_id, &name);
    let mut stage = dp::Stage::new(
        name,
        deployment,
        variables,
        throttle(body.get("defaultRouteSettings")),
        route_throttle,
        access_log,
    );
    stage.authorizers_cache_epoch = body
        .get(crate::services::apigatewayv2::AUTHORIZERS_CACHE_EPOCH)
        .and_then(Value::as_u64)
        .unwrap_or(0);
    stage
}

/// A stage's `accessLogSettings` as the data plane serves them: the format and the log group
/// (with the stage's stream) of `destinationArn`.
fn access_log(stage: &Value, api_id: &str, stage_name: &str) -> Option<dp::accesslog::AccessLog> {
    let a = stage.get("accessLogSettings")?;
    let format = a.get("format").and_then(Value::as_str)?.to_string();
    let destination = a
        .get("destinationArn")
        .and_then(Value::as_str)
        .and_then(|arn| dp::accesslog::Destination::from_arn(arn, api_id, stage_name))
        .map(Arc::new);
    Some(dp::accesslog::AccessLog {
        format,
        destination,
    })
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

/// The one place a VPC-link integration's target is built: the link's status and ENI
/// addresses as stored now. Whatever else decides how a request through the link fares (e.g.
/// reachability from the link's security groups to the load balancer) belongs here too; its
/// inputs must be kinds in [`FOLLOWED`], so their changes rebuild the APIs using VPC links.
fn vpc_link_target(
    tx: &portico_store::Tx<'_>,
    scope: &Scope,
    integration: &Value,
    links: &mut LinkCache,
) -> AwsResult<Target> {
    let s = |k: &str| {
        integration
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let id = s("connectionId");
    let link = links.get(tx, scope, &id)?.unwrap_or(Link {
        status: "DELETED".into(),
        addresses: Vec::new(),
        eni_ids: Vec::new(),
    });
    // another VPC, or security groups dropping the link's packets (reconcile/vpc_reach.rs)
    let listener = s("integrationUri");
    let blocked = match link.status.as_str() {
        "AVAILABLE" => {
            super::vpc_reach::Network::load_for_link(tx, scope, &link.eni_ids, &listener)?
                .unreachable_listeners(scope, &id, &link.eni_ids)
                .remove(&listener)
        }
        _ => None,
    };
    // `tlsConfig` (even empty) means HTTPS to the listener; its name is sent and checked
    let tls = integration
        .get("tlsConfig")
        .and_then(Value::as_object)
        .map(|t| portico_dataplane::lb::LinkTls {
            server_name: t
                .get("serverNameToVerify")
                .and_then(Value::as_str)
                .map(str::to_string),
        });
    Ok(Target::VpcLink {
        tls,
        blocked,
        listener_arn: s("integrationUri"),
        vpc_link_id: id,
        status: link.status,
        eni_addresses: link.addresses,
    })
}

fn build_integration(
    tx: &portico_store::Tx<'_>,
    i: &Value,
    scope: &Scope,
    links: &mut LinkCache,
    used: &mut Vec<String>,
) -> AwsResult<dp::Integration> {
    let s = |k: &str| i.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let target = match (s("integrationType").as_str(), s("connectionType").as_str()) {
        ("HTTP_PROXY", "VPC_LINK") => {
            used.push(s("connectionId"));
            vpc_link_target(tx, scope, i, links)?
        }
        ("HTTP_PROXY", _) => Target::http(s("integrationUri")),
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
    Ok(dp::Integration {
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
    })
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
    tx: &portico_store::Tx<'_>,
    id: &str,
    snap: &Value,
    scope: &Scope,
    links: &mut LinkCache,
    used: &mut Vec<String>,
) -> AwsResult<dp::Deployment> {
    let list = |k: &str| {
        snap.get(k)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
    };
    let mut integrations: HashMap<String, Arc<dp::Integration>> = HashMap::new();
    for i in list("integrations") {
        let b = build_integration(tx, i, scope, links, used)?;
        integrations.insert(b.id.clone(), Arc::new(b));
    }
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
                auth: build_auth(r, authorizers),
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
    Ok(dp::Deployment {
        id: id.to_string(),
        routes: Table::new(routes),
        cors,
        disable_execute_api_endpoint: snap
            .get("disableExecuteApiEndpoint")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
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
        publish_now(&c).unwrap();
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
        assert!(!c.apigw_publisher().sync(&c).unwrap());
        assert!(Arc::ptr_eq(&before, &c.dataplane().http_api.current()));
    }

    async fn http_api(c: &Control, name: &str, uri: &str, conn: Option<&str>) -> String {
        let api = call(
            c,
            "CreateApi",
            json!({"name": name, "protocolType": "HTTP"}),
        )
        .await
        .unwrap();
        let api_id = api["apiId"].as_str().unwrap().to_string();
        let mut integ = json!({"apiId": api_id, "integrationType": "HTTP_PROXY", "integrationMethod": "ANY", "integrationUri": uri});
        if let Some(link) = conn {
            integ["connectionType"] = json!("VPC_LINK");
            integ["connectionId"] = json!(link);
        }
        let integ = call(c, "CreateIntegration", integ).await.unwrap();
        let target = format!("integrations/{}", integ["integrationId"].as_str().unwrap());
        call(
            c,
            "CreateRoute",
            json!({"apiId": api_id, "routeKey": "GET /a", "target": target}),
        )
        .await
        .unwrap();
        call(
            c,
            "CreateStage",
            json!({"apiId": api_id, "stageName": "$default", "autoDeploy": true}),
        )
        .await
        .unwrap();
        api_id
    }

    fn route_count(c: &Control, api_id: &str) -> usize {
        let snap = c.dataplane().http_api.current();
        snap.apis[api_id].stages["$default"]
            .deployment
            .as_ref()
            .unwrap()
            .routes
            .values()
            .count()
    }

    #[tokio::test]
    async fn a_change_to_one_api_republishes_that_api_and_shares_the_others() {
        let c = control();
        let mut ids = Vec::new();
        for n in 0..5 {
            ids.push(http_api(&c, &format!("a{n}"), "http://127.0.0.1:9/x", None).await);
        }
        let before = c.dataplane().http_api.current();
        assert_eq!(before.apis.len(), 5);
        let integ = call(&c, "GetIntegrations", json!({"apiId": ids[2]}))
            .await
            .unwrap();
        let target = format!(
            "integrations/{}",
            integ["items"][0]["integrationId"].as_str().unwrap()
        );
        call(
            &c,
            "CreateRoute",
            json!({"apiId": ids[2], "routeKey": "GET /b", "target": target}),
        )
        .await
        .unwrap();
        // the operation published before returning
        let after = c.dataplane().http_api.current();
        assert!(!Arc::ptr_eq(&before, &after));
        assert_eq!(route_count(&c, &ids[2]), 2);
        for (n, id) in ids.iter().enumerate() {
            let same = Arc::ptr_eq(&before.apis[id], &after.apis[id]);
            assert_eq!(same, n != 2, "api {n}");
        }
        // a route change without a deployment (no auto-deploy stage) publishes nothing
        let plain = call(
            &c,
            "CreateApi",
            json!({"name": "p", "protocolType": "HTTP"}),
        )
        .await
        .unwrap();
        let plain = plain["apiId"].as_str().unwrap().to_string();
        let cur = c.dataplane().http_api.current();
        assert!(cur.apis.contains_key(&plain));
        call(
            &c,
            "CreateRoute",
            json!({"apiId": plain, "routeKey": "GET /x"}),
        )
        .await
        .unwrap();
        assert!(Arc::ptr_eq(&cur, &c.dataplane().http_api.current()));
        // deleting an API removes only it
        call(&c, "DeleteApi", json!({"apiId": ids[0]}))
            .await
            .unwrap();
        let last = c.dataplane().http_api.current();
        assert!(!last.apis.contains_key(&ids[0]));
        assert!(Arc::ptr_eq(&after.apis[&ids[1]], &last.apis[&ids[1]]));
        // a full rebuild (store reset) empties it
        c.store().reset().unwrap();
        publish_now(&c).unwrap();
        assert!(c.dataplane().http_api.current().apis.is_empty());
    }

    #[tokio::test]
    async fn vpc_link_and_network_changes_rebuild_the_apis_using_links_only() {
        let c = control();
        seed_network(&c);
        let link = call(
            &c,
            "CreateVpcLink",
            json!({"name": "l", "subnetIds": ["subnet-a"], "securityGroupIds": ["sg-1"]}),
        )
        .await
        .unwrap();
        let link_id = link["vpcLinkId"].as_str().unwrap().to_string();
        let linked = http_api(&c, "linked", "arn:aws:elasticloadbalancing:us-east-1:000000000000:listener/app/lb/1234567890abcdef/1234567890abcdef", Some(&link_id)).await;
        let plain = http_api(&c, "plain", "http://127.0.0.1:9/x", None).await;
        let status = |c: &Control| match &c.dataplane().http_api.current().apis[&linked].stages
            ["$default"]
            .deployment
            .as_ref()
            .unwrap()
            .routes
            .values()
            .next()
            .unwrap()
            .integration
            .as_ref()
            .unwrap()
            .target
        {
            Target::VpcLink {
                status,
                eni_addresses,
                ..
            } => (status.clone(), eni_addresses.len()),
            t => panic!("{t:?}"),
        };
        assert_eq!(status(&c), ("PENDING".to_string(), 0));
        let before = c.dataplane().http_api.current();
        step_vpc_links(&c).unwrap(); // a reconciler write, no API Gateway operation
        publish_now(&c).unwrap();
        assert_eq!(status(&c), ("AVAILABLE".to_string(), 1));
        let after = c.dataplane().http_api.current();
        assert!(Arc::ptr_eq(&before.apis[&plain], &after.apis[&plain]));
        // a security-group change rebuilds the API behind a VPC link, not the other
        let scope = Scope::new("000000000000", "us-east-1");
        c.store()
            .write(|tx| {
                let sg = SecurityGroup {
                    group_id: "sg-2".into(),
                    group_name: "lb".into(),
                    vpc_id: "vpc-1".into(),
                    rest: Default::default(),
                };
                Ok(tx.put_as(&scope, KIND_SG, "sg-2", Some("vpc-1"), None, &sg)?)
            })
            .unwrap();
        assert!(c.apigw_publisher().sync(&c).unwrap());
        let last = c.dataplane().http_api.current();
        assert!(!Arc::ptr_eq(&after.apis[&linked], &last.apis[&linked]));
        assert!(Arc::ptr_eq(&after.apis[&plain], &last.apis[&plain]));
    }
}
