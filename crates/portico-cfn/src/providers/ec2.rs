//! EC2 providers (VPC basics): VPC, Subnet, RouteTable, Route, SubnetRouteTableAssociation,
//! InternetGateway, VPCGatewayAttachment, EIP, NatGateway, SecurityGroup and its rule
//! resources, through the ec2Query operations with the wire's member names.

use super::{
    field, fstr, path, prop_str, required, text, unsupported, Done, Failure, PResult, Pcx,
};
use portico_core::Service;
use serde_json::{json, Map, Value};
use std::time::Duration;

/// How long a NAT gateway or a dependent deletion may take before the resource fails.
const STABILISE: Duration = Duration::from_secs(300);

/// Every EC2 type these providers create carries CloudFormation's own tags, as in AWS.
fn tag_spec(cx: &Pcx<'_>, props: &Value, resource_type: &str) -> Value {
    let tags = cx.auto_tag_list(props);
    let tags: Vec<Value> = tags
        .iter()
        .map(|t| json!({"Key": t.get("Key").map(text).unwrap_or_default(), "Value": t.get("Value").map(text).unwrap_or_default()}))
        .collect();
    json!([{ "ResourceType": resource_type, "Tag": tags }])
}

fn with_tags(mut input: Value, cx: &Pcx<'_>, props: &Value, rt: &str) -> Value {
    let spec = tag_spec(cx, props, rt);
    if spec.as_array().is_some_and(|a| !a.is_empty()) {
        input["TagSpecification"] = spec;
    }
    input
}

fn attrs(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect()
}

fn bool_prop(props: &Value, key: &str) -> Option<bool> {
    props.get(key).map(|v| text(v).eq_ignore_ascii_case("true"))
}

/// One template rule (`SecurityGroupIngress` item or rule resource) as an `IpPermission`.
fn permission(rule: &Value, egress: bool) -> Value {
    let proto = rule
        .get("IpProtocol")
        .map(text)
        .unwrap_or_else(|| "-1".into());
    let mut p = json!({ "IpProtocol": proto });
    let all = proto == "-1" || proto == "all";
    if let Some(f) = rule.get("FromPort") {
        p["FromPort"] = json!(text(f));
    } else if !all {
        p["FromPort"] = json!("-1");
    }
    if let Some(t) = rule.get("ToPort") {
        p["ToPort"] = json!(text(t));
    } else if !all {
        p["ToPort"] = json!("-1");
    }
    let desc = rule.get("Description").map(text);
    let with_desc = |mut v: Value| {
        if let Some(d) = &desc {
            v["Description"] = json!(d);
        }
        v
    };
    if let Some(c) = rule.get("CidrIp") {
        p["IpRanges"] = json!([with_desc(json!({"CidrIp": text(c)}))]);
    }
    if let Some(c) = rule.get("CidrIpv6") {
        p["Ipv6Ranges"] = json!([with_desc(json!({"CidrIpv6": text(c)}))]);
    }
    let group_key = if egress {
        "DestinationSecurityGroupId"
    } else {
        "SourceSecurityGroupId"
    };
    if let Some(g) = rule.get(group_key) {
        let pair = with_desc(json!({"GroupId": text(g)}));
        p["Groups"] = json!([pair.clone()]);
        p["UserIdGroupPairs"] = json!([pair]);
    }
    let pl_key = if egress {
        "DestinationPrefixListId"
    } else {
        "SourcePrefixListId"
    };
    if let Some(pl) = rule.get(pl_key) {
        p["PrefixListIds"] = json!([with_desc(json!({"PrefixListId": text(pl)}))]);
    }
    p
}

fn list(props: &Value, key: &str) -> Vec<Value> {
    props
        .get(key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

pub(super) async fn create(cx: &Pcx<'_>, ty: &str, props: &Value) -> PResult<Done> {
    match ty {
        "AWS::EC2::VPC" => {
            let mut input = json!({
                "CidrBlock": text(&required(props, "CidrBlock")?),
            });
            if let Some(t) = prop_str(props, "InstanceTenancy") {
                input["InstanceTenancy"] = json!(t);
            }
            let out = cx
                .call(
                    Service::Ec2,
                    "CreateVpc",
                    with_tags(input, cx, props, "vpc"),
                )
                .await?;
            let vpc = field(&out, "Vpc").cloned().unwrap_or(Value::Null);
            let id = fstr(&vpc, "VpcId").unwrap_or_default();
            let f = |e: Failure| e.with_physical(&id);
            for key in ["EnableDnsSupport", "EnableDnsHostnames"] {
                if let Some(b) = bool_prop(props, key) {
                    cx.call(
                        Service::Ec2,
                        "ModifyVpcAttribute",
                        json!({"VpcId": id, key: {"Value": b}}),
                    )
                    .await
                    .map_err(f)?;
                }
            }
            let default_sg = cx
                .call(
                    Service::Ec2,
                    "DescribeSecurityGroups",
                    json!({"Filter": [{"Name": "vpc-id", "Value": [id]}, {"Name": "group-name", "Value": ["default"]}]}),
                )
                .await
                .ok()
                .and_then(|o| {
                    field(&o, "SecurityGroupInfo")
                        .and_then(Value::as_array)
                        .and_then(|a| a.first())
                        .and_then(|g| fstr(g, "GroupId"))
                })
                .unwrap_or_default();
            let acl = cx
                .call(
                    Service::Ec2,
                    "DescribeNetworkAcls",
                    json!({"Filter": [{"Name": "vpc-id", "Value": [id]}, {"Name": "default", "Value": ["true"]}]}),
                )
                .await
                .ok()
                .and_then(|o| {
                    field(&o, "NetworkAclSet")
                        .and_then(Value::as_array)
                        .and_then(|a| a.first())
                        .and_then(|g| fstr(g, "NetworkAclId"))
                })
                .unwrap_or_default();
            let assoc: Vec<Value> = field(&vpc, "CidrBlockAssociationSet")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| fstr(x, "AssociationId"))
                        .map(Value::String)
                        .collect()
                })
                .unwrap_or_default();
            Ok(Done {
                physical: id.clone(),
                attrs: attrs(&[
                    ("VpcId", json!(id)),
                    (
                        "CidrBlock",
                        json!(fstr(&vpc, "CidrBlock").unwrap_or_else(|| prop_str(
                            props,
                            "CidrBlock"
                        )
                        .unwrap_or_default())),
                    ),
                    ("CidrBlockAssociations", json!(assoc)),
                    ("DefaultSecurityGroup", json!(default_sg)),
                    ("DefaultNetworkAcl", json!(acl)),
                    ("Ipv6CidrBlocks", json!([])),
                ]),
            })
        }
        "AWS::EC2::Subnet" => {
            let mut input = json!({"VpcId": text(&required(props, "VpcId")?)});
            for k in [
                "CidrBlock",
                "AvailabilityZone",
                "AvailabilityZoneId",
                "Ipv6CidrBlock",
            ] {
                if let Some(v) = prop_str(props, k) {
                    input[k] = json!(v);
                }
            }
            let out = cx
                .call(
                    Service::Ec2,
                    "CreateSubnet",
                    with_tags(input, cx, props, "subnet"),
                )
                .await?;
            let sn = field(&out, "Subnet").cloned().unwrap_or(Value::Null);
            let id = fstr(&sn, "SubnetId").unwrap_or_default();
            if let Some(b) = bool_prop(props, "MapPublicIpOnLaunch") {
                cx.call(
                    Service::Ec2,
                    "ModifySubnetAttribute",
                    json!({"SubnetId": id, "MapPublicIpOnLaunch": {"Value": b}}),
                )
                .await
                .map_err(|e| e.with_physical(&id))?;
            }
            Ok(Done {
                physical: id.clone(),
                attrs: attrs(&[
                    ("SubnetId", json!(id)),
                    ("VpcId", json!(fstr(&sn, "VpcId").unwrap_or_default())),
                    (
                        "CidrBlock",
                        json!(fstr(&sn, "CidrBlock").unwrap_or_default()),
                    ),
                    (
                        "AvailabilityZone",
                        json!(fstr(&sn, "AvailabilityZone").unwrap_or_default()),
                    ),
                    (
                        "AvailabilityZoneId",
                        json!(fstr(&sn, "AvailabilityZoneId").unwrap_or_default()),
                    ),
                    ("Ipv6CidrBlocks", json!([])),
                    ("NetworkAclAssociationId", json!("")),
                    ("OutpostArn", json!("")),
                ]),
            })
        }
        "AWS::EC2::RouteTable" => {
            let input = json!({"VpcId": text(&required(props, "VpcId")?)});
            let out = cx
                .call(
                    Service::Ec2,
                    "CreateRouteTable",
                    with_tags(input, cx, props, "route-table"),
                )
                .await?;
            let id = path(&out, &["RouteTable", "RouteTableId"])
                .map(text)
                .unwrap_or_default();
            Ok(Done {
                physical: id.clone(),
                attrs: attrs(&[("RouteTableId", json!(id))]),
            })
        }
        "AWS::EC2::Route" => {
            let rtb = text(&required(props, "RouteTableId")?);
            let mut input = json!({"RouteTableId": rtb});
            let mut dest = String::new();
            for k in [
                "DestinationCidrBlock",
                "DestinationIpv6CidrBlock",
                "DestinationPrefixListId",
                "GatewayId",
                "NatGatewayId",
                "NetworkInterfaceId",
                "VpcPeeringConnectionId",
                "TransitGatewayId",
                "EgressOnlyInternetGatewayId",
                "InstanceId",
                "VpcEndpointId",
                "CarrierGatewayId",
                "LocalGatewayId",
            ] {
                if let Some(v) = prop_str(props, k) {
                    if k.starts_with("Destination") && dest.is_empty() {
                        dest = v.clone();
                    }
                    input[k] = json!(v);
                }
            }
            cx.call(Service::Ec2, "CreateRoute", input).await?;
            Ok(Done {
                physical: format!("{rtb}|{dest}"),
                attrs: attrs(&[("CidrBlock", json!(dest))]),
            })
        }
        "AWS::EC2::SubnetRouteTableAssociation" => {
            let out = cx
                .call(
                    Service::Ec2,
                    "AssociateRouteTable",
                    json!({"SubnetId": text(&required(props, "SubnetId")?), "RouteTableId": text(&required(props, "RouteTableId")?)}),
                )
                .await?;
            let id = fstr(&out, "AssociationId").unwrap_or_default();
            Ok(Done {
                physical: id.clone(),
                attrs: attrs(&[("Id", json!(id))]),
            })
        }
        "AWS::EC2::InternetGateway" => {
            let out = cx
                .call(
                    Service::Ec2,
                    "CreateInternetGateway",
                    with_tags(json!({}), cx, props, "internet-gateway"),
                )
                .await?;
            let id = path(&out, &["InternetGateway", "InternetGatewayId"])
                .map(text)
                .unwrap_or_default();
            Ok(Done {
                physical: id.clone(),
                attrs: attrs(&[("InternetGatewayId", json!(id))]),
            })
        }
        "AWS::EC2::VPCGatewayAttachment" => {
            let vpc = text(&required(props, "VpcId")?);
            if let Some(igw) = prop_str(props, "InternetGatewayId") {
                cx.call(
                    Service::Ec2,
                    "AttachInternetGateway",
                    json!({"InternetGatewayId": igw, "VpcId": vpc}),
                )
                .await?;
                Ok(Done {
                    physical: format!("IGW|{vpc}"),
                    attrs: attrs(&[("AttachmentType", json!("InternetGateway"))]),
                })
            } else if let Some(vgw) = prop_str(props, "VpnGatewayId") {
                cx.call(
                    Service::Ec2,
                    "AttachVpnGateway",
                    json!({"VpnGatewayId": vgw, "VpcId": vpc}),
                )
                .await?;
                Ok(Done {
                    physical: format!("VGW|{vpc}"),
                    attrs: attrs(&[("AttachmentType", json!("VpnGateway"))]),
                })
            } else {
                Err(Failure::msg(
                    "Properties validation failed for resource with message: #: only 1 subschema matches out of 2",
                ))
            }
        }
        "AWS::EC2::EIP" => {
            let mut input =
                json!({"Domain": prop_str(props, "Domain").unwrap_or_else(|| "vpc".into())});
            for k in ["NetworkBorderGroup", "PublicIpv4Pool"] {
                if let Some(v) = prop_str(props, k) {
                    input[k] = json!(v);
                }
            }
            let out = cx
                .call(
                    Service::Ec2,
                    "AllocateAddress",
                    with_tags(input, cx, props, "elastic-ip"),
                )
                .await?;
            let ip = fstr(&out, "PublicIp").unwrap_or_default();
            let alloc = fstr(&out, "AllocationId").unwrap_or_default();
            Ok(Done {
                physical: ip.clone(),
                attrs: attrs(&[("AllocationId", json!(alloc)), ("PublicIp", json!(ip))]),
            })
        }
        "AWS::EC2::NatGateway" => {
            let mut input = json!({"SubnetId": text(&required(props, "SubnetId")?)});
            for k in ["AllocationId", "ConnectivityType", "PrivateIpAddress"] {
                if let Some(v) = prop_str(props, k) {
                    input[k] = json!(v);
                }
            }
            let out = cx
                .call(
                    Service::Ec2,
                    "CreateNatGateway",
                    with_tags(input, cx, props, "natgateway"),
                )
                .await?;
            let id = path(&out, &["NatGateway", "NatGatewayId"])
                .map(text)
                .unwrap_or_default();
            Ok(Done {
                physical: id.clone(),
                attrs: attrs(&[("NatGatewayId", json!(id)), ("EniId", json!(""))]),
            })
        }
        "AWS::EC2::SecurityGroup" => {
            let desc = text(&required(props, "GroupDescription")?);
            let name = prop_str(props, "GroupName").unwrap_or_else(|| cx.name(255));
            let mut input =
                json!({"GroupName": name, "GroupDescription": desc, "Description": desc});
            let vpc = prop_str(props, "VpcId");
            if let Some(v) = &vpc {
                input["VpcId"] = json!(v);
            }
            let out = cx
                .call(
                    Service::Ec2,
                    "CreateSecurityGroup",
                    with_tags(input, cx, props, "security-group"),
                )
                .await?;
            let id = fstr(&out, "GroupId").unwrap_or_default();
            let f = |e: Failure| e.with_physical(&id);
            let ingress: Vec<Value> = list(props, "SecurityGroupIngress")
                .iter()
                .map(|r| permission(r, false))
                .collect();
            if !ingress.is_empty() {
                cx.call(
                    Service::Ec2,
                    "AuthorizeSecurityGroupIngress",
                    json!({"GroupId": id, "IpPermissions": ingress}),
                )
                .await
                .map_err(f)?;
            }
            if props.get("SecurityGroupEgress").is_some() && vpc.is_some() {
                let egress: Vec<Value> = list(props, "SecurityGroupEgress")
                    .iter()
                    .map(|r| permission(r, true))
                    .collect();
                let default_rule =
                    json!({"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]});
                let keeps_default = egress
                    .iter()
                    .any(|p| p["IpProtocol"] == "-1" && p["IpRanges"][0]["CidrIp"] == "0.0.0.0/0");
                if !keeps_default {
                    cx.call(
                        Service::Ec2,
                        "RevokeSecurityGroupEgress",
                        json!({"GroupId": id, "IpPermissions": [default_rule]}),
                    )
                    .await
                    .map_err(f)?;
                    cx.call(
                        Service::Ec2,
                        "AuthorizeSecurityGroupEgress",
                        json!({"GroupId": id, "IpPermissions": egress}),
                    )
                    .await
                    .map_err(f)?;
                }
            }
            let physical = if vpc.is_some() { id.clone() } else { name };
            Ok(Done {
                physical,
                attrs: attrs(&[
                    ("GroupId", json!(id)),
                    ("Id", json!(id)),
                    ("VpcId", json!(vpc.unwrap_or_default())),
                ]),
            })
        }
        "AWS::EC2::SecurityGroupIngress" | "AWS::EC2::SecurityGroupEgress" => {
            let egress = ty.ends_with("Egress");
            let mut input = json!({"IpPermissions": [permission(props, egress)]});
            match (prop_str(props, "GroupId"), prop_str(props, "GroupName")) {
                (Some(g), _) => input["GroupId"] = json!(g),
                (None, Some(n)) if !egress => input["GroupName"] = json!(n),
                _ => {
                    return Err(required(props, "GroupId")
                        .err()
                        .unwrap_or_else(|| Failure::msg("GroupId is required")))
                }
            }
            let op = if egress {
                "AuthorizeSecurityGroupEgress"
            } else {
                "AuthorizeSecurityGroupIngress"
            };
            let out = cx.call(Service::Ec2, op, input).await?;
            let id = field(&out, "SecurityGroupRuleSet")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(|r| fstr(r, "SecurityGroupRuleId"))
                .unwrap_or_else(|| format!("sgr-{}", portico_core::ids::hex(17)));
            Ok(Done {
                physical: id.clone(),
                attrs: attrs(&[("Id", json!(id))]),
            })
        }
        other => Err(unsupported(other)),
    }
}

pub(super) async fn stabilize(cx: &Pcx<'_>, ty: &str, done: &mut Done) -> PResult<()> {
    if ty != "AWS::EC2::NatGateway" {
        return Ok(());
    }
    let id = done.physical.clone();
    let eni = cx
        .wait_for("the NAT gateway to become available", STABILISE, || async {
            let out = cx
                .call(
                    Service::Ec2,
                    "DescribeNatGateways",
                    json!({"NatGatewayId": [id]}),
                )
                .await
                .map_err(|e| e.with_physical(&id))?;
            let ng = field(&out, "NatGatewaySet")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .cloned()
                .unwrap_or(Value::Null);
            match fstr(&ng, "State").as_deref() {
                Some("available") => Ok(Some(
                    field(&ng, "NatGatewayAddressSet")
                        .and_then(Value::as_array)
                        .and_then(|a| a.first())
                        .and_then(|x| fstr(x, "NetworkInterfaceId"))
                        .unwrap_or_default(),
                )),
                Some("failed") => Err(Failure::msg(format!(
                    "NAT gateway {id} failed: {}",
                    fstr(&ng, "FailureMessage").unwrap_or_default()
                ))
                .with_physical(&id)),
                _ => Ok(None),
            }
        })
        .await
        .map_err(|e| e.with_physical(&done.physical))?;
    done.attrs.insert("EniId".into(), json!(eni));
    Ok(())
}

pub(super) async fn update(
    cx: &Pcx<'_>,
    ty: &str,
    physical: &str,
    old: &Value,
    new: &Value,
    attrs: &Map<String, Value>,
) -> PResult<Done> {
    let done = Done::existing(physical, attrs);
    match ty {
        "AWS::EC2::VPC" => {
            for key in ["EnableDnsSupport", "EnableDnsHostnames"] {
                if old.get(key) != new.get(key) {
                    let b = bool_prop(new, key).unwrap_or(key == "EnableDnsSupport");
                    cx.call(
                        Service::Ec2,
                        "ModifyVpcAttribute",
                        json!({"VpcId": physical, key: {"Value": b}}),
                    )
                    .await?;
                }
            }
            Ok(done)
        }
        "AWS::EC2::Subnet" => {
            if old.get("MapPublicIpOnLaunch") != new.get("MapPublicIpOnLaunch") {
                let b = bool_prop(new, "MapPublicIpOnLaunch").unwrap_or(false);
                cx.call(
                    Service::Ec2,
                    "ModifySubnetAttribute",
                    json!({"SubnetId": physical, "MapPublicIpOnLaunch": {"Value": b}}),
                )
                .await?;
            }
            Ok(done)
        }
        // Only tags can change in place for these; Portico keeps tags from creation.
        "AWS::EC2::RouteTable"
        | "AWS::EC2::InternetGateway"
        | "AWS::EC2::EIP"
        | "AWS::EC2::NatGateway" => Ok(done),
        other => Err(unsupported(other)),
    }
}

/// Retries a delete while the service reports a dependency that is still going away.
async fn delete_retrying(cx: &Pcx<'_>, op: &str, input: Value) -> PResult<()> {
    let start = std::time::Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        match cx.call_raw(Service::Ec2, op, input.clone()).await {
            Ok(_) => return Ok(()),
            Err(e) if super::is_gone(&e) => return Ok(()),
            Err(e)
                if (e.code.contains("DependencyViolation") || e.code.contains("InUse"))
                    && start.elapsed() < STABILISE =>
            {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(Failure::msg(cx.reason(Service::Ec2, &e))),
        }
    }
}

pub(super) async fn delete(
    cx: &Pcx<'_>,
    ty: &str,
    physical: &str,
    props: &Value,
    attrs: &Map<String, Value>,
) -> PResult<()> {
    match ty {
        "AWS::EC2::VPC" => delete_retrying(cx, "DeleteVpc", json!({"VpcId": physical})).await,
        "AWS::EC2::Subnet" => {
            delete_retrying(cx, "DeleteSubnet", json!({"SubnetId": physical})).await
        }
        "AWS::EC2::RouteTable" => {
            delete_retrying(cx, "DeleteRouteTable", json!({"RouteTableId": physical})).await
        }
        "AWS::EC2::Route" => {
            let (rtb, dest) = physical.split_once('|').unwrap_or((physical, ""));
            let key = if dest.contains(':') {
                "DestinationIpv6CidrBlock"
            } else if dest.starts_with("pl-") {
                "DestinationPrefixListId"
            } else {
                "DestinationCidrBlock"
            };
            cx.delete_call(
                Service::Ec2,
                "DeleteRoute",
                json!({"RouteTableId": rtb, key: dest}),
            )
            .await
        }
        "AWS::EC2::SubnetRouteTableAssociation" => {
            cx.delete_call(
                Service::Ec2,
                "DisassociateRouteTable",
                json!({"AssociationId": physical}),
            )
            .await
        }
        "AWS::EC2::InternetGateway" => {
            delete_retrying(
                cx,
                "DeleteInternetGateway",
                json!({"InternetGatewayId": physical}),
            )
            .await
        }
        "AWS::EC2::VPCGatewayAttachment" => {
            let vpc = prop_str(props, "VpcId").unwrap_or_default();
            if let Some(igw) = prop_str(props, "InternetGatewayId") {
                delete_retrying(
                    cx,
                    "DetachInternetGateway",
                    json!({"InternetGatewayId": igw, "VpcId": vpc}),
                )
                .await
            } else {
                let vgw = prop_str(props, "VpnGatewayId").unwrap_or_default();
                cx.delete_call(
                    Service::Ec2,
                    "DetachVpnGateway",
                    json!({"VpnGatewayId": vgw, "VpcId": vpc}),
                )
                .await
            }
        }
        "AWS::EC2::EIP" => {
            let alloc = attrs.get("AllocationId").map(text).unwrap_or_default();
            delete_retrying(cx, "ReleaseAddress", json!({"AllocationId": alloc})).await
        }
        "AWS::EC2::NatGateway" => {
            cx.delete_call(
                Service::Ec2,
                "DeleteNatGateway",
                json!({"NatGatewayId": physical}),
            )
            .await?;
            let id = physical.to_string();
            cx.wait_for("the NAT gateway to be deleted", STABILISE, || async {
                match cx
                    .call_raw(
                        Service::Ec2,
                        "DescribeNatGateways",
                        json!({"NatGatewayId": [id]}),
                    )
                    .await
                {
                    Err(_) => Ok(Some(())),
                    Ok(out) => {
                        let st = field(&out, "NatGatewaySet")
                            .and_then(Value::as_array)
                            .and_then(|a| a.first())
                            .and_then(|n| fstr(n, "State"));
                        Ok(match st.as_deref() {
                            None | Some("deleted") | Some("failed") => Some(()),
                            _ => None,
                        })
                    }
                }
            })
            .await
        }
        "AWS::EC2::SecurityGroup" => {
            let id = attrs
                .get("GroupId")
                .map(text)
                .unwrap_or_else(|| physical.to_string());
            delete_retrying(cx, "DeleteSecurityGroup", json!({"GroupId": id})).await
        }
        "AWS::EC2::SecurityGroupIngress" | "AWS::EC2::SecurityGroupEgress" => {
            let egress = ty.ends_with("Egress");
            let mut input = json!({"IpPermissions": [permission(props, egress)]});
            match prop_str(props, "GroupId") {
                Some(g) => input["GroupId"] = json!(g),
                None => {
                    input["GroupName"] = json!(prop_str(props, "GroupName").unwrap_or_default())
                }
            }
            let op = if egress {
                "RevokeSecurityGroupEgress"
            } else {
                "RevokeSecurityGroupIngress"
            };
            cx.delete_call(Service::Ec2, op, input).await
        }
        other => Err(unsupported(other)),
    }
}
