//! `portico tutorial`: the AWS tutorial "Create an HTTP API with a private integration to an
//! Amazon ECS service", performed step by step through Portico's own AWS APIs, with the
//! tutorial's names and values, printing what each step does and the AWS CLI command that would
//! do the same. `--cleanup` (or `portico tutorial cleanup`) is Step 7.

use crate::client::{xml_records, xml_texts, ApiError, AwsClient};
use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub const STACK: &str = "http-api-private-integrations-tutorial";
pub const STACK_ALL_IN_ONE: &str = "http-api-private-integrations-tutorial-full";
pub const VPC_LINK: &str = "private-integrations-tutorial";
pub const API: &str = "http-private-integrations-tutorial";
pub const ROUTE_KEY: &str = "ANY /{proxy+}";
const TEMPLATE: &str = include_str!("../../../templates/tutorial-cdk.yaml");
const TEMPLATE_FULL: &str = include_str!("../../../templates/tutorial-cdk-full.yaml");
const CFN_VERSION: &str = "2010-05-15";
const ELB_VERSION: &str = "2015-12-01";
const ECS: &str = "AmazonEC2ContainerServiceV20141113";
/// How long any one wait may take before the tutorial gives up and says what it waited for.
const WAIT_LIMIT: Duration = Duration::from_secs(300);

pub struct Tutorial {
    pub aws: AwsClient,
    pub port: u16,
    started: Instant,
    tty: bool,
    pub timings: Vec<(String, Duration)>,
}

/// What Step 6 saw.
pub struct Answer {
    pub invoke_url: String,
    pub status: u16,
    pub title: String,
    pub answered_by: Option<String>,
}

fn title_of(html: &str) -> String {
    let lower = html.to_ascii_lowercase();
    match (lower.find("<title>"), lower.find("</title>")) {
        (Some(a), Some(b)) if b > a + 7 => html[a + 7..b].trim().to_string(),
        _ => String::new(),
    }
}

impl Tutorial {
    pub fn new(endpoint: &str, region: &str, port: u16) -> Tutorial {
        Tutorial {
            aws: AwsClient::new(endpoint, region),
            port,
            started: Instant::now(),
            tty: std::io::stdout().is_terminal(),
            timings: Vec::new(),
        }
    }

    fn step(&self, n: &str, title: &str, cli: &str) {
        println!("\n== Step {n}: {title}");
        println!("   same as: {cli}");
    }

    fn progress(&self, what: &str, since: Instant) {
        if self.tty {
            print!(
                "\r   waiting for {what} ({:.1}s)   ",
                since.elapsed().as_secs_f64()
            );
            let _ = std::io::stdout().flush();
        }
    }

    fn done(&mut self, label: &str, since: Instant, detail: &str) {
        let d = since.elapsed();
        if self.tty {
            print!("\r\x1b[2K");
        }
        println!("   done in {:.2}s: {detail}", d.as_secs_f64());
        self.timings.push((label.to_string(), d));
    }

    async fn wait<T, F, Fut>(&self, what: &str, mut probe: F) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
    {
        let since = Instant::now();
        loop {
            if let Some(v) = probe().await? {
                return Ok(v);
            }
            if since.elapsed() > WAIT_LIMIT {
                bail!("gave up after {}s waiting for {what}", WAIT_LIMIT.as_secs());
            }
            self.progress(what, since);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn stack_status(&self, name: &str) -> anyhow::Result<Option<(String, String)>> {
        match self
            .aws
            .query(
                "cloudformation",
                CFN_VERSION,
                "DescribeStacks",
                &[("StackName".into(), name.into())],
            )
            .await
        {
            Ok(xml) => {
                let status = xml_texts(&xml, "StackStatus")
                    .into_iter()
                    .next()
                    .unwrap_or_default();
                let reason = xml_texts(&xml, "StackStatusReason")
                    .into_iter()
                    .next()
                    .unwrap_or_default();
                Ok(Some((status, reason)))
            }
            Err(e) if e.code == "ValidationError" => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Step 1: the stack, created (or reused) and waited on until CREATE_COMPLETE.
    pub async fn create_stack(
        &mut self,
        name: &str,
        template: &str,
        file: &str,
    ) -> anyhow::Result<()> {
        self.step(
            "1",
            "create the Amazon ECS service (CloudFormation stack)",
            &format!("aws cloudformation create-stack --stack-name {name} --template-body file://{file} --capabilities CAPABILITY_IAM"),
        );
        let since = Instant::now();
        match self.stack_status(name).await? {
            Some((s, _)) if s == "CREATE_COMPLETE" || s == "UPDATE_COMPLETE" => {
                self.done(
                    "stack",
                    since,
                    &format!("stack {name} already exists ({s}), reusing it"),
                );
                return Ok(());
            }
            Some((s, _)) if s.ends_with("_IN_PROGRESS") => {}
            Some((s, _)) => {
                println!("   stack {name} is {s}: deleting it first");
                self.delete_stack_and_wait(name).await?;
                self.create_stack_call(name, template).await?;
            }
            None => self.create_stack_call(name, template).await?,
        }
        let status = self
            .wait("stack CREATE_COMPLETE", || async {
                match self.stack_status(name).await? {
                    Some((s, _)) if s.ends_with("_IN_PROGRESS") => Ok(None),
                    Some((s, reason)) => Ok(Some((s, reason))),
                    None => Err(anyhow!("stack {name} disappeared")),
                }
            })
            .await?;
        if status.0 != "CREATE_COMPLETE" && status.0 != "UPDATE_COMPLETE" {
            let events = self
                .aws
                .query(
                    "cloudformation",
                    CFN_VERSION,
                    "DescribeStackEvents",
                    &[("StackName".into(), name.into())],
                )
                .await
                .map(|x| xml_records(&x, "member"))
                .unwrap_or_default();
            for e in events
                .iter()
                .filter(|e| {
                    e.get("ResourceStatus")
                        .is_some_and(|s| s.ends_with("FAILED"))
                })
                .take(5)
            {
                eprintln!(
                    "   {} {}: {}",
                    e.get("LogicalResourceId").map(String::as_str).unwrap_or(""),
                    e.get("ResourceStatus").map(String::as_str).unwrap_or(""),
                    e.get("ResourceStatusReason")
                        .map(String::as_str)
                        .unwrap_or("")
                );
            }
            bail!("stack {name} ended {} ({})", status.0, status.1);
        }
        let n = self.stack_resources(name).await?.len();
        self.done(
            "stack",
            since,
            &format!("stack {name} CREATE_COMPLETE with {n} resources"),
        );
        Ok(())
    }

    async fn create_stack_call(&self, name: &str, template: &str) -> anyhow::Result<()> {
        self.aws
            .query(
                "cloudformation",
                CFN_VERSION,
                "CreateStack",
                &[
                    ("StackName".into(), name.into()),
                    ("TemplateBody".into(), template.into()),
                    ("Capabilities.member.1".into(), "CAPABILITY_IAM".into()),
                ],
            )
            .await
            .context("CreateStack")?;
        Ok(())
    }

    /// (logical id, physical id, type) of each resource in a stack.
    pub async fn stack_resources(
        &self,
        name: &str,
    ) -> anyhow::Result<Vec<(String, String, String)>> {
        let xml = self
            .aws
            .query(
                "cloudformation",
                CFN_VERSION,
                "ListStackResources",
                &[("StackName".into(), name.into())],
            )
            .await?;
        Ok(xml_records(&xml, "member")
            .into_iter()
            .filter_map(|m| {
                Some((
                    m.get("LogicalResourceId")?.clone(),
                    m.get("PhysicalResourceId").cloned().unwrap_or_default(),
                    m.get("ResourceType")?.clone(),
                ))
            })
            .collect())
    }

    /// The private subnets, the service's security group and the ALB listener the stack made.
    async fn stack_network(&self) -> anyhow::Result<(Vec<String>, String, String)> {
        let res = self.stack_resources(STACK).await?;
        let subnets: Vec<String> = res
            .iter()
            .filter(|(l, _, t)| t == "AWS::EC2::Subnet" && l.contains("PrivateSubnet"))
            .map(|(_, p, _)| p.clone())
            .collect();
        let sg = res
            .iter()
            .find(|(l, _, t)| {
                t == "AWS::EC2::SecurityGroup"
                    && l.contains("ServiceSecurityGroup")
                    && !l.contains("LB")
            })
            .map(|(_, p, _)| p.clone())
            .ok_or_else(|| anyhow!("the stack has no service security group"))?;
        let listener = res
            .iter()
            .find(|(_, _, t)| t == "AWS::ElasticLoadBalancingV2::Listener")
            .map(|(_, p, _)| p.clone())
            .ok_or_else(|| anyhow!("the stack has no load balancer listener"))?;
        if subnets.len() != 2 {
            bail!(
                "expected two private subnets in the stack, found {}",
                subnets.len()
            );
        }
        Ok((subnets, sg, listener))
    }

    async fn find_item(&self, path: &str, key: &str, value: &str) -> anyhow::Result<Option<Value>> {
        let out = self.aws.rest("apigateway", "GET", path, None).await?;
        Ok(out.get("items").and_then(Value::as_array).and_then(|a| {
            a.iter()
                .find(|i| i.get(key).and_then(Value::as_str) == Some(value))
                .cloned()
        }))
    }

    /// Steps 2-5; returns the API id.
    pub async fn build_api(&mut self) -> anyhow::Result<String> {
        let (subnets, sg, listener) = self.stack_network().await?;

        self.step(
            "2",
            "create a VPC link",
            &format!("aws apigatewayv2 create-vpc-link --name {VPC_LINK} --subnet-ids {} --security-group-ids {sg}", subnets.join(" ")),
        );
        let since = Instant::now();
        let link = match self.find_item("/v2/vpclinks", "name", VPC_LINK).await? {
            Some(l) => l,
            None => self
                .aws
                .rest(
                    "apigateway",
                    "POST",
                    "/v2/vpclinks",
                    Some(
                        &json!({"name": VPC_LINK, "subnetIds": subnets, "securityGroupIds": [sg]}),
                    ),
                )
                .await?,
        };
        let link_id = link
            .get("vpcLinkId")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("CreateVpcLink returned no id"))?
            .to_string();
        self.wait("VPC link AVAILABLE", || async {
            let l = self
                .aws
                .rest(
                    "apigateway",
                    "GET",
                    &format!("/v2/vpclinks/{link_id}"),
                    None,
                )
                .await?;
            match l.get("vpcLinkStatus").and_then(Value::as_str) {
                Some("AVAILABLE") => Ok(Some(())),
                Some("FAILED") => Err(anyhow!(
                    "VPC link failed: {}",
                    l.get("vpcLinkStatusMessage")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                )),
                _ => Ok(None),
            }
        })
        .await?;
        self.done("vpc link", since, &format!("VPC link {link_id} AVAILABLE"));

        self.step(
            "3",
            "create an HTTP API",
            &format!("aws apigatewayv2 create-api --name {API} --protocol-type HTTP"),
        );
        let since = Instant::now();
        let api = match self.find_item("/v2/apis", "name", API).await? {
            Some(a) => a,
            None => {
                self.aws
                    .rest(
                        "apigateway",
                        "POST",
                        "/v2/apis",
                        Some(&json!({"name": API, "protocolType": "HTTP"})),
                    )
                    .await?
            }
        };
        let api_id = api
            .get("apiId")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("CreateApi returned no id"))?
            .to_string();
        self.done("api", since, &format!("API {api_id}"));

        self.step(
            "4",
            "create a route",
            &format!(
                "aws apigatewayv2 create-route --api-id {api_id} --route-key 'ANY /{{proxy+}}'"
            ),
        );
        let since = Instant::now();
        let routes = format!("/v2/apis/{api_id}/routes");
        let route = match self.find_item(&routes, "routeKey", ROUTE_KEY).await? {
            Some(r) => r,
            None => {
                self.aws
                    .rest(
                        "apigateway",
                        "POST",
                        &routes,
                        Some(&json!({"routeKey": ROUTE_KEY})),
                    )
                    .await?
            }
        };
        let route_id = route
            .get("routeId")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("CreateRoute returned no id"))?
            .to_string();
        self.done("route", since, &format!("route {route_id} {ROUTE_KEY}"));

        self.step(
            "5",
            "create a private integration to the load balancer listener, attach it, deploy",
            &format!(
                "aws apigatewayv2 create-integration --api-id {api_id} --integration-type HTTP_PROXY --connection-type VPC_LINK --connection-id {link_id} --integration-method ANY --integration-uri {listener} --payload-format-version 1.0"
            ),
        );
        let since = Instant::now();
        let integrations = format!("/v2/apis/{api_id}/integrations");
        let integ = match self
            .find_item(&integrations, "integrationUri", &listener)
            .await?
        {
            Some(i) => i,
            None => {
                self.aws
                    .rest(
                        "apigateway",
                        "POST",
                        &integrations,
                        Some(&json!({
                            "integrationType": "HTTP_PROXY",
                            "connectionType": "VPC_LINK",
                            "connectionId": link_id,
                            "integrationMethod": "ANY",
                            "integrationUri": listener,
                            "payloadFormatVersion": "1.0",
                        })),
                    )
                    .await?
            }
        };
        let integ_id = integ
            .get("integrationId")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("CreateIntegration returned no id"))?
            .to_string();
        self.aws
            .rest(
                "apigateway",
                "PATCH",
                &format!("{routes}/{route_id}"),
                Some(&json!({"target": format!("integrations/{integ_id}")})),
            )
            .await?;
        let stages = format!("/v2/apis/{api_id}/stages");
        if self
            .find_item(&stages, "stageName", "$default")
            .await?
            .is_none()
        {
            self.aws
                .rest(
                    "apigateway",
                    "POST",
                    &stages,
                    Some(&json!({"stageName": "$default", "autoDeploy": true})),
                )
                .await?;
        }
        println!("   also: aws apigatewayv2 update-route --api-id {api_id} --route-id {route_id} --target integrations/{integ_id}");
        println!("   also: aws apigatewayv2 create-stage --api-id {api_id} --stage-name '$default' --auto-deploy");
        self.done(
            "integration",
            since,
            &format!("integration {integ_id} on route {route_id}, $default stage auto-deploys"),
        );
        Ok(api_id)
    }

    /// The invoke URL users open, and the Host header that reaches it on our port.
    pub fn invoke_url(&self, api_id: &str) -> (String, String) {
        let host = format!("{api_id}.execute-api.localhost:{}", self.port);
        (format!("http://{host}/"), host)
    }

    /// Step 6: GET the invoke URL until the sample page answers.
    pub async fn test_api(&mut self, api_id: &str) -> anyhow::Result<Answer> {
        let (url, host) = self.invoke_url(api_id);
        self.step("6", "test your API", &format!("curl {url}"));
        let since = Instant::now();
        let raw = self
            .wait("the ECS sample page through the invoke URL", || async {
                match self
                    .aws
                    .send("GET", "/", Some(&host), &[], Default::default())
                    .await
                {
                    Ok(r) if r.status == 200 => Ok(Some(r)),
                    Ok(_) | Err(ApiError { status: 0, .. }) => Ok(None),
                    Err(e) => Err(e.into()),
                }
            })
            .await?;
        let html = String::from_utf8_lossy(&raw.body);
        let answered_by = raw
            .headers
            .get("x-portico-task")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let answer = Answer {
            invoke_url: url,
            status: raw.status,
            title: title_of(&html),
            answered_by,
        };
        self.done(
            "test",
            since,
            &format!(
                "HTTP {} \"{}\"{}",
                answer.status,
                answer.title,
                answer
                    .answered_by
                    .as_ref()
                    .map(|t| format!(", answered by task {t}"))
                    .unwrap_or_default()
            ),
        );
        Ok(answer)
    }

    pub async fn delete_stack_and_wait(&self, name: &str) -> anyhow::Result<()> {
        if self.stack_status(name).await?.is_none() {
            return Ok(());
        }
        self.aws
            .query(
                "cloudformation",
                CFN_VERSION,
                "DeleteStack",
                &[("StackName".into(), name.into())],
            )
            .await?;
        self.wait("stack DELETE_COMPLETE", || async {
            match self.stack_status(name).await? {
                None => Ok(Some(())),
                Some((s, _)) if s == "DELETE_COMPLETE" => Ok(Some(())),
                Some((s, r)) if s == "DELETE_FAILED" => {
                    Err(anyhow!("stack {name} DELETE_FAILED: {r}"))
                }
                Some(_) => Ok(None),
            }
        })
        .await
    }

    /// Step 7: delete the API, the VPC link, then the stacks; then count what is left.
    pub async fn cleanup(&mut self) -> anyhow::Result<Remaining> {
        self.step("7", "clean up", "aws apigatewayv2 delete-api ...; aws apigatewayv2 delete-vpc-link ...; aws cloudformation delete-stack ...");
        let since = Instant::now();
        let apis = self.aws.rest("apigateway", "GET", "/v2/apis", None).await?;
        for a in apis
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            if a.get("name").and_then(Value::as_str) == Some(API) {
                let id = a.get("apiId").and_then(Value::as_str).unwrap_or_default();
                self.aws
                    .rest("apigateway", "DELETE", &format!("/v2/apis/{id}"), None)
                    .await?;
                println!("   deleted API {id}   (aws apigatewayv2 delete-api --api-id {id})");
            }
        }
        let links = self
            .aws
            .rest("apigateway", "GET", "/v2/vpclinks", None)
            .await?;
        for l in links
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            if l.get("name").and_then(Value::as_str) == Some(VPC_LINK) {
                let id = l
                    .get("vpcLinkId")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                self.aws
                    .rest("apigateway", "DELETE", &format!("/v2/vpclinks/{id}"), None)
                    .await?;
                self.wait("VPC link deleted", || async {
                    match self
                        .aws
                        .rest("apigateway", "GET", &format!("/v2/vpclinks/{id}"), None)
                        .await
                    {
                        Err(e) if e.status == 404 => Ok(Some(())),
                        Err(e) => Err(e.into()),
                        Ok(_) => Ok(None),
                    }
                })
                .await?;
                println!("   deleted VPC link {id}   (aws apigatewayv2 delete-vpc-link --vpc-link-id {id})");
            }
        }
        for name in [STACK_ALL_IN_ONE, STACK] {
            if self.stack_status(name).await?.is_some() {
                self.delete_stack_and_wait(name).await?;
                println!("   deleted stack {name}   (aws cloudformation delete-stack --stack-name {name})");
            }
        }
        // Task processes exit a moment after their tasks stop: give them a few seconds.
        let mut remaining = self.remaining().await?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while remaining.processes > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            remaining = self.remaining().await?;
        }
        self.done("cleanup", since, &remaining.to_string());
        Ok(remaining)
    }

    /// What is still there after cleanup: tasks, load balancers, stacks, APIs, VPC links.
    pub async fn remaining(&self) -> anyhow::Result<Remaining> {
        let mut r = Remaining::default();
        let clusters = self
            .aws
            .json("ecs", &format!("{ECS}.ListClusters"), &json!({}))
            .await?;
        for c in clusters
            .get("clusterArns")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let tasks = self
                .aws
                .json("ecs", &format!("{ECS}.ListTasks"), &json!({"cluster": c}))
                .await?;
            r.tasks += tasks
                .get("taskArns")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
        }
        let lbs = self
            .aws
            .query(
                "elasticloadbalancing",
                ELB_VERSION,
                "DescribeLoadBalancers",
                &[],
            )
            .await?;
        r.load_balancers = xml_texts(&lbs, "LoadBalancerArn").len();
        for name in [STACK, STACK_ALL_IN_ONE] {
            if self
                .stack_status(name)
                .await?
                .is_some_and(|(s, _)| s != "DELETE_COMPLETE")
            {
                r.stacks += 1;
            }
        }
        let apis = self.aws.rest("apigateway", "GET", "/v2/apis", None).await?;
        r.apis = apis
            .get("items")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let links = self
            .aws
            .rest("apigateway", "GET", "/v2/vpclinks", None)
            .await?;
        r.vpc_links = links
            .get("items")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        Ok(r)
    }

    /// The whole tutorial, Steps 1-6.
    pub async fn run(&mut self, all_in_one: bool) -> anyhow::Result<Answer> {
        let answer = if all_in_one {
            self.create_stack(
                STACK_ALL_IN_ONE,
                TEMPLATE_FULL,
                "templates/tutorial-cdk-full.yaml",
            )
            .await?;
            let res = self.stack_resources(STACK_ALL_IN_ONE).await?;
            let api_id = res
                .iter()
                .find(|(_, _, t)| t == "AWS::ApiGatewayV2::Api")
                .map(|(_, p, _)| p.clone())
                .ok_or_else(|| anyhow!("the all-in-one stack has no HTTP API"))?;
            self.test_api(&api_id).await?
        } else {
            self.create_stack(STACK, TEMPLATE, "templates/tutorial-cdk.yaml")
                .await?;
            let api_id = self.build_api().await?;
            self.test_api(&api_id).await?
        };
        println!("\nInvoke URL:  {}", answer.invoke_url);
        println!(
            "Console:     http://localhost:{}/_portico/console",
            self.port
        );
        println!("Clean up:    portico tutorial cleanup   (or: cargo run --release -- tutorial --cleanup)");
        println!("\nTime per step:");
        for (label, d) in &self.timings {
            println!("   {label:<12} {:>8.2}s", d.as_secs_f64());
        }
        println!(
            "   {:<12} {:>8.2}s to the first successful response",
            "total",
            self.started.elapsed().as_secs_f64()
        );
        Ok(answer)
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Remaining {
    pub tasks: usize,
    pub load_balancers: usize,
    pub stacks: usize,
    pub apis: usize,
    pub vpc_links: usize,
    /// Task processes Portico still runs (from `/_portico/health`).
    pub processes: usize,
}

impl Remaining {
    pub fn is_empty(&self) -> bool {
        *self == Remaining::default()
    }
}

impl std::fmt::Display for Remaining {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "remaining: {} tasks, {} load balancers, {} stacks, {} APIs, {} VPC links, {} task processes",
            self.tasks, self.load_balancers, self.stacks, self.apis, self.vpc_links, self.processes
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_extraction() {
        assert_eq!(
            title_of("<html><head><TITLE> Amazon ECS Sample App </TITLE>"),
            "Amazon ECS Sample App"
        );
        assert_eq!(title_of("no title"), "");
    }

    #[test]
    fn remaining_display() {
        let r = Remaining::default();
        assert!(r.is_empty());
        assert_eq!(
            r.to_string(),
            "remaining: 0 tasks, 0 load balancers, 0 stacks, 0 APIs, 0 VPC links, 0 task processes"
        );
    }
}
