//! Wire snapshots of representative EC2, IAM, STS, SSM and Logs responses and errors, encoded
//! exactly as the wire layer sends them, with ids, keys and times redacted. A missing snapshot
//! file is written and the test fails once, so every new snapshot is reviewed like code.

use crate::{Config, Control};
use portico_core::{AwsResult, Input, RequestContext, Service};
use portico_store::Store;
use serde_json::{json, Value};
use std::path::PathBuf;

fn control() -> Control {
    Control::new(
        Store::in_memory().expect("store"),
        Config::default(),
        Default::default(),
        Default::default(),
    )
}

/// Replaces what differs run to run: EC2 ids (`vpc-<17 hex>`), IAM ids (`AROA…`), event ids,
/// secrets, and ISO or epoch timestamps.
pub(crate) fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        out.push_str(&redact_token(token));
        token.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '-' || c == ':' || c == '.' || c == '+' || c == '/' {
            token.push(c);
        } else {
            flush(&mut token, &mut out);
            out.push(c);
        }
    }
    flush(&mut token, &mut out);
    out
}

fn redact_token(t: &str) -> String {
    if let Some(rest) = t.strip_prefix(':') {
        return format!(":{}", redact_token(rest));
    }
    // ISO timestamps: 2026-01-01T00:00:00.000Z
    if t.len() >= 20 && t.as_bytes().get(4) == Some(&b'-') && t.as_bytes().get(10) == Some(&b'T') {
        return "<time>".into();
    }
    // EC2 ids: prefix-<17 hex>, possibly inside an ARN.
    if let Some(pos) = t.rfind('-') {
        let tail = &t[pos + 1..];
        if tail.len() == 17 && tail.bytes().all(|b| b.is_ascii_hexdigit()) {
            return format!("{}<id>", &t[..=pos]);
        }
    }
    for p in ["AROA", "ANPA", "AIPA", "ASIA"] {
        let head = t.split(':').next().unwrap_or(t);
        if let Some(rest) = head.strip_prefix(p) {
            if rest.len() >= 16
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            {
                return format!("{p}<id>{}", &t[head.len()..]);
            }
        }
    }
    if t.parse::<f64>().is_ok_and(|n| n > 1e9) && t != "000000000000" {
        return "<num>".into();
    }
    if t.len() >= 40 && t.chars().any(|c| c.is_ascii_lowercase()) && !t.contains(':') {
        return "<secret>".into();
    }
    t.to_string()
}

fn check(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/services/ec2/snapshots")
        .join(format!("{name}.txt"));
    let actual = redact(actual);
    match std::fs::read_to_string(&path) {
        Ok(expected) => assert_eq!(expected.trim_end(), actual.trim_end(), "snapshot {name}"),
        Err(_) => {
            std::fs::write(&path, format!("{actual}\n")).expect("write snapshot");
            panic!(
                "new snapshot {name} written to {}: review it and run again",
                path.display()
            );
        }
    }
}

async fn wire(c: &Control, service: Service, op: &str, input: Value) -> (AwsResult<Value>, String) {
    let rc = RequestContext::new("000000000000", "us-east-1");
    let out = c.call(&rc, service, op, Input(input)).await;
    let resp = match &out {
        Ok(v) => portico_wire::encode::encode_success(service, op, "rid", v, 200),
        Err(e) => portico_wire::encode::encode_error(Some(service), "rid", e),
    };
    let body = String::from_utf8_lossy(resp.body()).to_string();
    (out, format!("{} {}", resp.status().as_u16(), body))
}

#[tokio::test]
async fn ec2_wire() {
    let c = control();
    let (vpc, text) = wire(&c, Service::Ec2, "CreateVpc", json!({"CidrBlock": "10.0.0.0/16", "TagSpecification": [{"ResourceType": "vpc", "Tag": [{"Key": "Name", "Value": "tutorial"}]}]})).await;
    check("ec2_create_vpc", &text);
    let vpc_id = vpc.expect("vpc")["vpc"]["vpcId"]
        .as_str()
        .expect("id")
        .to_string();
    let (_, text) = wire(
        &c,
        Service::Ec2,
        "CreateSubnet",
        json!({"VpcId": vpc_id, "CidrBlock": "10.0.1.0/24", "AvailabilityZone": "us-east-1a"}),
    )
    .await;
    check("ec2_create_subnet", &text);
    let (sg, _) = wire(
        &c,
        Service::Ec2,
        "CreateSecurityGroup",
        json!({"GroupName": "web", "GroupDescription": "web", "VpcId": vpc_id}),
    )
    .await;
    let sg = sg.expect("sg")["groupId"].as_str().expect("id").to_string();
    let (_, text) = wire(&c, Service::Ec2, "AuthorizeSecurityGroupIngress", json!({"GroupId": sg, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": "80", "ToPort": "80", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]})).await;
    check("ec2_authorize_ingress", &text);
    let (_, text) = wire(
        &c,
        Service::Ec2,
        "DescribeSecurityGroups",
        json!({"GroupId": [sg]}),
    )
    .await;
    check("ec2_describe_security_groups", &text);
    let (_, text) = wire(&c, Service::Ec2, "DeleteVpc", json!({"VpcId": vpc_id})).await;
    check("ec2_delete_vpc_dependency", &text);
    let (_, text) = wire(
        &c,
        Service::Ec2,
        "DescribeSubnets",
        json!({"SubnetId": ["subnet-0123456789abcdef0"]}),
    )
    .await;
    check("ec2_subnet_not_found", &text);
}

#[tokio::test]
async fn iam_sts_ssm_logs_wire() {
    let c = control();
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let (_, text) = wire(
        &c,
        Service::Iam,
        "CreateRole",
        json!({"RoleName": "task", "AssumeRolePolicyDocument": trust}),
    )
    .await;
    check("iam_create_role", &text);
    let (_, text) = wire(
        &c,
        Service::Iam,
        "PutRolePolicy",
        json!({"RoleName": "task", "PolicyName": "p", "PolicyDocument": "{nope"}),
    )
    .await;
    check("iam_malformed_policy", &text);
    let (_, text) = wire(
        &c,
        Service::Sts,
        "AssumeRole",
        json!({"RoleArn": "arn:aws:iam::000000000000:role/task", "RoleSessionName": "web-session"}),
    )
    .await;
    check("sts_assume_role", &text);
    let (_, text) = wire(
        &c,
        Service::Ssm,
        "GetParameter",
        json!({"Name": "/cdk-bootstrap/hnb659fds/version"}),
    )
    .await;
    check("ssm_get_parameter", &text);
    let (_, text) = wire(
        &c,
        Service::Ssm,
        "GetParameter",
        json!({"Name": "/missing"}),
    )
    .await;
    check("ssm_parameter_not_found", &text);
    wire(
        &c,
        Service::Logs,
        "CreateLogGroup",
        json!({"logGroupName": "/ecs/web"}),
    )
    .await
    .0
    .expect("group");
    wire(
        &c,
        Service::Logs,
        "CreateLogStream",
        json!({"logGroupName": "/ecs/web", "logStreamName": "s"}),
    )
    .await
    .0
    .expect("stream");
    wire(&c, Service::Logs, "PutLogEvents", json!({"logGroupName": "/ecs/web", "logStreamName": "s", "logEvents": [{"timestamp": portico_core::time::now_millis(), "message": "hello ERROR"}]})).await.0.expect("put");
    let (_, text) = wire(
        &c,
        Service::Logs,
        "FilterLogEvents",
        json!({"logGroupName": "/ecs/web", "filterPattern": "ERROR"}),
    )
    .await;
    check("logs_filter_log_events", &text);
    let (_, text) = wire(
        &c,
        Service::Logs,
        "CreateLogGroup",
        json!({"logGroupName": "/ecs/web"}),
    )
    .await;
    check("logs_group_exists", &text);
}
