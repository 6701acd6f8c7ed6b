//! Route tables (main and custom), routes, subnet associations, internet gateways, NAT gateways
//! and Elastic IPs. A NAT gateway's state is derived from its timestamps when it is read
//! (`pending` for [`NAT_PENDING_MS`] after creation, then `available`; `deleting` then `deleted`),
//! so no background loop is needed and every read agrees.

use super::shared::{self, Subnet, Vpc, KIND_ENI};
use super::util::{self, public, req, spec_tags, str_any, strs_any};
use super::vpc::{self, load_vpc, with_token};
use super::{KIND_EIP, KIND_IGW, KIND_NAT, KIND_RTB};
use portico_core::{ids, time, AwsError, AwsResult, Input};
use portico_store::{Scope, Tx};
use serde_json::{json, Value};
use std::net::Ipv4Addr;

/// How long a NAT gateway stays `pending` (and `deleting`). AWS takes minutes; Portico makes it
/// visible but short.
pub(crate) const NAT_PENDING_MS: i64 = 1000;

fn rtb_not_found(id: &str) -> AwsError {
    AwsError::bad(
        "InvalidRouteTableID.NotFound",
        format!("The routeTable ID '{id}' does not exist"),
    )
}

fn igw_not_found(id: &str) -> AwsError {
    AwsError::bad(
        "InvalidInternetGatewayID.NotFound",
        format!("The internetGateway ID '{id}' does not exist"),
    )
}

fn nat_not_found(id: &str) -> AwsError {
    AwsError::bad(
        "NatGatewayNotFound",
        format!("The Nat Gateway {id} was not found"),
    )
}

fn eip_not_found(id: &str) -> AwsError {
    AwsError::bad(
        "InvalidAllocationID.NotFound",
        format!("The allocation ID '{id}' does not exist"),
    )
}

fn load(
    tx: &Tx<'_>,
    scope: &Scope,
    kind: &str,
    id: &str,
    nf: fn(&str) -> AwsError,
) -> AwsResult<Value> {
    Ok(tx.get(scope, kind, id)?.ok_or_else(|| nf(id))?.body)
}

fn s(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// Route tables

pub(crate) fn create_route_table_record(
    tx: &Tx<'_>,
    scope: &Scope,
    vpc: &Vpc,
    main: bool,
    tags: Vec<Value>,
) -> AwsResult<String> {
    let id = ids::ec2("rtb");
    let assocs = if main {
        json!([{"main": true, "routeTableAssociationId": ids::ec2("rtbassoc"), "routeTableId": id, "associationState": {"state": "associated"}}])
    } else {
        json!([])
    };
    let body = json!({
        "routeTableId": id,
        "vpcId": vpc.vpc_id,
        "ownerId": scope.account,
        "routeSet": [{"destinationCidrBlock": vpc.cidr_block, "gatewayId": "local", "origin": "CreateRouteTable", "state": "active"}],
        "associationSet": assocs,
        "propagatingVgwSet": [],
        "tagSet": tags,
    });
    tx.put(scope, KIND_RTB, &id, Some(&vpc.vpc_id), None, &body)?;
    Ok(id)
}

fn save_rtb(tx: &Tx<'_>, scope: &Scope, body: &Value) -> AwsResult<()> {
    let id = s(body, "routeTableId");
    let vpc = s(body, "vpcId");
    tx.put(scope, KIND_RTB, &id, Some(&vpc), None, body)?;
    Ok(())
}

pub(crate) fn add_route(tx: &Tx<'_>, scope: &Scope, rtb: &str, route: Value) -> AwsResult<()> {
    let mut body = load(tx, scope, KIND_RTB, rtb, rtb_not_found)?;
    if let Some(a) = body.get_mut("routeSet").and_then(Value::as_array_mut) {
        a.push(route);
    }
    save_rtb(tx, scope, &body)
}

pub(crate) fn create_route_table(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let vpc_id = req(input, &["VpcId"])?;
    let vpc = load_vpc(tx, scope, vpc_id)?;
    let id = create_route_table_record(tx, scope, &vpc, false, spec_tags(input, "route-table")?)?;
    let body = load(tx, scope, KIND_RTB, &id, rtb_not_found)?;
    Ok(json!({"routeTable": render_rtb(tx, scope, &body)?}))
}

/// A route's state as EC2 reports it: `blackhole` when its target is gone or detached.
fn route_state(tx: &Tx<'_>, scope: &Scope, vpc_id: &str, r: &Value) -> AwsResult<&'static str> {
    if let Some(n) = r.get("natGatewayId").and_then(Value::as_str) {
        let live = match tx.get(scope, KIND_NAT, n)? {
            Some(rec) => !matches!(nat_state(&rec.body), "deleting" | "deleted" | "failed"),
            None => false,
        };
        return Ok(if live { "active" } else { "blackhole" });
    }
    match r.get("gatewayId").and_then(Value::as_str) {
        Some(g) if g.starts_with("igw-") => {
            let attached = igw_of_vpc(tx, scope, vpc_id)?.as_deref() == Some(g);
            Ok(if attached { "active" } else { "blackhole" })
        }
        _ => Ok("active"),
    }
}

fn render_rtb(tx: &Tx<'_>, scope: &Scope, body: &Value) -> AwsResult<Value> {
    let mut v = public(body);
    let vpc_id = s(body, "vpcId");
    if let Some(routes) = v.get_mut("routeSet").and_then(Value::as_array_mut) {
        for r in routes.iter_mut() {
            let st = route_state(tx, scope, &vpc_id, r)?;
            r["state"] = json!(st);
        }
    }
    Ok(v)
}

const RTB_FILTERS: &[(&str, &str)] = &[
    ("route-table-id", "routeTableId"),
    ("vpc-id", "vpcId"),
    ("owner-id", "ownerId"),
    (
        "association.route-table-association-id",
        "associationSet.routeTableAssociationId",
    ),
    ("association.route-table-id", "associationSet.routeTableId"),
    ("association.subnet-id", "associationSet.subnetId"),
    ("association.gateway-id", "associationSet.gatewayId"),
    ("association.main", "associationSet.main"),
    (
        "route.destination-cidr-block",
        "routeSet.destinationCidrBlock",
    ),
    ("route.gateway-id", "routeSet.gatewayId"),
    ("route.nat-gateway-id", "routeSet.natGatewayId"),
    ("route.network-interface-id", "routeSet.networkInterfaceId"),
    ("route.origin", "routeSet.origin"),
    ("route.state", "routeSet.state"),
];

pub(crate) fn describe_route_tables(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let ids = strs_any(input, &["RouteTableId", "RouteTableIds"]);
    let (items, next) = vpc::describe(
        tx,
        scope,
        input,
        KIND_RTB,
        &ids,
        RTB_FILTERS,
        rtb_not_found,
        &|b| render_rtb(tx, scope, b),
        true,
    )?;
    Ok(with_token(json!({"routeTableSet": items}), next))
}

pub(crate) fn delete_route_table(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let id = req(input, &["RouteTableId"])?;
    let body = load(tx, scope, KIND_RTB, id, rtb_not_found)?;
    let has_assocs = body
        .get("associationSet")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if has_assocs {
        return Err(vpc::dependency("routeTable", id));
    }
    tx.delete(scope, KIND_RTB, id)?;
    Ok(json!({"return": true}))
}

/// The target of a CreateRoute/ReplaceRoute, checked against the route table's VPC.
fn route_target(tx: &Tx<'_>, scope: &Scope, input: &Input, rtb: &Value) -> AwsResult<Value> {
    let vpc_id = s(rtb, "vpcId");
    let rtb_id = s(rtb, "routeTableId");
    if let Some(g) = input.str("GatewayId") {
        if g == "local" {
            return Ok(json!({"gatewayId": "local"}));
        }
        if g.starts_with("igw-") {
            load(tx, scope, KIND_IGW, g, igw_not_found)?;
            if igw_of_vpc(tx, scope, &vpc_id)?.as_deref() != Some(g) {
                return Err(AwsError::bad(
                    "InvalidParameterValue",
                    format!(
                        "route table {rtb_id} and network gateway {g} belong to different networks"
                    ),
                ));
            }
            return Ok(json!({"gatewayId": g}));
        }
        return Err(AwsError::bad(
            "InvalidGatewayID.NotFound",
            format!("The gateway ID '{g}' does not exist"),
        ));
    }
    if let Some(n) = input.str("NatGatewayId") {
        let nat = load(tx, scope, KIND_NAT, n, |id| {
            AwsError::bad(
                "InvalidNatGatewayID.NotFound",
                format!("The natGateway ID '{id}' does not exist"),
            )
        })?;
        if s(&nat, "vpcId") != vpc_id {
            return Err(AwsError::bad(
                "InvalidParameterValue",
                format!("route table {rtb_id} and NAT gateway {n} belong to different networks"),
            ));
        }
        return Ok(json!({"natGatewayId": n}));
    }
    if let Some(e) = input.str("NetworkInterfaceId") {
        shared::get_eni(tx, scope, e)?.ok_or_else(|| vpc::eni_not_found(e))?;
        return Ok(json!({"networkInterfaceId": e}));
    }
    if let Some(i) = input.str("InstanceId") {
        return Err(AwsError::bad(
            "InvalidInstanceID.NotFound",
            format!("The instance ID '{i}' does not exist"),
        ));
    }
    Err(AwsError::bad(
        "InvalidParameterCombination",
        "The request must contain exactly one of gatewayId, natGatewayId, networkInterfaceId, vpcPeeringConnectionId, transitGatewayId, localGatewayId, carrierGatewayId or instanceId",
    ))
}

fn destination(input: &Input) -> AwsResult<String> {
    let d = req(input, &["DestinationCidrBlock"])?;
    let net: ipnet::Ipv4Net = d.parse().map_err(|_| {
        AwsError::bad(
            "InvalidParameterValue",
            format!("Value ({d}) for parameter destinationCidrBlock is invalid. This is not a valid CIDR block."),
        )
    })?;
    Ok(net.trunc().to_string())
}

fn route_pos(body: &Value, dest: &str) -> Option<usize> {
    body.get("routeSet")
        .and_then(Value::as_array)?
        .iter()
        .position(|r| r.get("destinationCidrBlock").and_then(Value::as_str) == Some(dest))
}

pub(crate) fn create_route(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let id = req(input, &["RouteTableId"])?;
    let body = load(tx, scope, KIND_RTB, id, rtb_not_found)?;
    let dest = destination(input)?;
    let mut route = route_target(tx, scope, input, &body)?;
    if route_pos(&body, &dest).is_some() {
        return Err(AwsError::bad(
            "RouteAlreadyExists",
            format!("The route identified by {dest} already exists."),
        ));
    }
    route["destinationCidrBlock"] = json!(dest);
    route["origin"] = json!("CreateRoute");
    route["state"] = json!("active");
    add_route(tx, scope, id, route)?;
    Ok(json!({"return": true}))
}

pub(crate) fn replace_route(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let id = req(input, &["RouteTableId"])?;
    let mut body = load(tx, scope, KIND_RTB, id, rtb_not_found)?;
    let dest = destination(input)?;
    let mut route = route_target(tx, scope, input, &body)?;
    let pos = route_pos(&body, &dest).ok_or_else(|| no_route(&dest, id))?;
    route["destinationCidrBlock"] = json!(dest);
    route["origin"] = json!("CreateRoute");
    route["state"] = json!("active");
    body["routeSet"][pos] = route;
    save_rtb(tx, scope, &body)?;
    Ok(json!({"return": true}))
}

fn no_route(dest: &str, id: &str) -> AwsError {
    AwsError::bad(
        "InvalidRoute.NotFound",
        format!("no route with destination-cidr-block {dest} in route table {id}"),
    )
}

pub(crate) fn delete_route(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let id = req(input, &["RouteTableId"])?;
    let mut body = load(tx, scope, KIND_RTB, id, rtb_not_found)?;
    let dest = destination(input)?;
    let pos = route_pos(&body, &dest).ok_or_else(|| no_route(&dest, id))?;
    if body["routeSet"][pos]
        .get("gatewayId")
        .and_then(Value::as_str)
        == Some("local")
    {
        return Err(AwsError::bad(
            "InvalidParameterValue",
            format!("cannot remove local route {dest} in route table {id}"),
        ));
    }
    if let Some(a) = body["routeSet"].as_array_mut() {
        a.remove(pos);
    }
    save_rtb(tx, scope, &body)?;
    Ok(json!({"return": true}))
}

pub(crate) fn associate_route_table(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let id = req(input, &["RouteTableId"])?;
    let subnet_id = req(input, &["SubnetId"])?;
    let mut body = load(tx, scope, KIND_RTB, id, rtb_not_found)?;
    let subnet: Subnet = shared::get_subnet(tx, scope, subnet_id)?
        .ok_or_else(|| shared::subnet_not_found(subnet_id))?;
    if subnet.vpc_id != s(&body, "vpcId") {
        return Err(AwsError::bad(
            "InvalidParameterValue",
            format!("Route table {id} and subnet {subnet_id} belong to different networks"),
        ));
    }
    for r in tx.list(scope, KIND_RTB, Some(&subnet.vpc_id))? {
        let taken = r
            .body
            .get("associationSet")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|a| a.get("subnetId").and_then(Value::as_str) == Some(subnet_id));
        if taken {
            return Err(AwsError::bad(
                "Resource.AlreadyAssociated",
                format!("the specified association for route table {} conflicts with an existing association", r.id),
            ));
        }
    }
    let assoc_id = ids::ec2("rtbassoc");
    let assoc = json!({"main": false, "routeTableAssociationId": assoc_id, "routeTableId": id, "subnetId": subnet_id, "associationState": {"state": "associated"}});
    if let Some(a) = body.get_mut("associationSet").and_then(Value::as_array_mut) {
        a.push(assoc);
    }
    save_rtb(tx, scope, &body)?;
    Ok(json!({"associationId": assoc_id, "associationState": {"state": "associated"}}))
}

pub(crate) fn disassociate_route_table(
    tx: &Tx<'_>,
    scope: &Scope,
    input: &Input,
) -> AwsResult<Value> {
    let assoc_id = req(input, &["AssociationId"])?;
    for r in tx.list(scope, KIND_RTB, None)? {
        let mut body = r.body;
        let Some(a) = body.get_mut("associationSet").and_then(Value::as_array_mut) else {
            continue;
        };
        let Some(pos) = a.iter().position(|x| {
            x.get("routeTableAssociationId").and_then(Value::as_str) == Some(assoc_id)
        }) else {
            continue;
        };
        if a[pos].get("main").and_then(Value::as_bool) == Some(true) {
            return Err(AwsError::bad(
                "InvalidParameterValue",
                format!("cannot disassociate the main route table association {assoc_id}"),
            ));
        }
        a.remove(pos);
        save_rtb(tx, scope, &body)?;
        return Ok(json!({"return": true}));
    }
    Err(AwsError::bad(
        "InvalidAssociationID.NotFound",
        format!("The association ID '{assoc_id}' does not exist"),
    ))
}

/// Removes every route-table association of a subnet that is being deleted.
pub(crate) fn drop_subnet_associations(
    tx: &Tx<'_>,
    scope: &Scope,
    subnet_id: &str,
) -> AwsResult<()> {
    for r in tx.list(scope, KIND_RTB, None)? {
        let mut body = r.body;
        let Some(a) = body.get_mut("associationSet").and_then(Value::as_array_mut) else {
            continue;
        };
        let before = a.len();
        a.retain(|x| x.get("subnetId").and_then(Value::as_str) != Some(subnet_id));
        if a.len() != before {
            save_rtb(tx, scope, &body)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Internet gateways

pub(crate) fn create_igw_record(tx: &Tx<'_>, scope: &Scope, tags: Vec<Value>) -> AwsResult<String> {
    let id = ids::ec2("igw");
    let body = json!({"internetGatewayId": id, "ownerId": scope.account, "attachmentSet": [], "tagSet": tags});
    tx.put(scope, KIND_IGW, &id, None, None, &body)?;
    Ok(id)
}

pub(crate) fn attach_igw(tx: &Tx<'_>, scope: &Scope, igw: &str, vpc_id: &str) -> AwsResult<()> {
    let mut body = load(tx, scope, KIND_IGW, igw, igw_not_found)?;
    body["attachmentSet"] = json!([{"vpcId": vpc_id, "state": "available"}]);
    tx.put(scope, KIND_IGW, igw, Some(vpc_id), None, &body)?;
    Ok(())
}

/// The internet gateway attached to a VPC, if any.
pub(crate) fn igw_of_vpc(tx: &Tx<'_>, scope: &Scope, vpc_id: &str) -> AwsResult<Option<String>> {
    Ok(tx
        .list(scope, KIND_IGW, Some(vpc_id))?
        .into_iter()
        .next()
        .map(|r| r.id))
}

pub(crate) fn create_internet_gateway(
    tx: &Tx<'_>,
    scope: &Scope,
    input: &Input,
) -> AwsResult<Value> {
    let id = create_igw_record(tx, scope, spec_tags(input, "internet-gateway")?)?;
    let body = load(tx, scope, KIND_IGW, &id, igw_not_found)?;
    Ok(json!({"internetGateway": public(&body)}))
}

pub(crate) fn attach_internet_gateway(
    tx: &Tx<'_>,
    scope: &Scope,
    input: &Input,
) -> AwsResult<Value> {
    let igw = req(input, &["InternetGatewayId"])?;
    let vpc_id = req(input, &["VpcId"])?;
    let rec = tx
        .get(scope, KIND_IGW, igw)?
        .ok_or_else(|| igw_not_found(igw))?;
    load_vpc(tx, scope, vpc_id)?;
    if let Some(current) = rec.parent {
        return Err(AwsError::bad(
            "Resource.AlreadyAssociated",
            format!("resource {igw} is already attached to network {current}"),
        ));
    }
    if let Some(other) = igw_of_vpc(tx, scope, vpc_id)? {
        return Err(AwsError::bad(
            "Resource.AlreadyAssociated",
            format!("Network {vpc_id} already has an internet gateway attached ({other})"),
        ));
    }
    attach_igw(tx, scope, igw, vpc_id)?;
    Ok(json!({"return": true}))
}

pub(crate) fn detach_internet_gateway(
    tx: &Tx<'_>,
    scope: &Scope,
    input: &Input,
) -> AwsResult<Value> {
    let igw = req(input, &["InternetGatewayId"])?;
    let vpc_id = req(input, &["VpcId"])?;
    let rec = tx
        .get(scope, KIND_IGW, igw)?
        .ok_or_else(|| igw_not_found(igw))?;
    load_vpc(tx, scope, vpc_id)?;
    if rec.parent.as_deref() != Some(vpc_id) {
        return Err(AwsError::bad(
            "Gateway.NotAttached",
            format!("resource {igw} is not attached to network {vpc_id}"),
        ));
    }
    // Public addresses mapped in the VPC (NAT gateways, associated Elastic IPs) keep the gateway.
    let mapped = tx.list(scope, KIND_EIP, None)?.iter().any(|r| {
        let eni = s(&r.body, "networkInterfaceId");
        !eni.is_empty()
            && shared::get_eni(tx, scope, &eni)
                .ok()
                .flatten()
                .is_some_and(|e| e.vpc_id == vpc_id)
    });
    if mapped {
        return Err(AwsError::bad(
            "DependencyViolation",
            format!("Network {vpc_id} has some mapped public address(es). Please unmap those public address(es) before detaching the gateway."),
        ));
    }
    let mut body = rec.body;
    body["attachmentSet"] = json!([]);
    tx.put(scope, KIND_IGW, igw, None, None, &body)?;
    Ok(json!({"return": true}))
}

pub(crate) fn delete_internet_gateway(
    tx: &Tx<'_>,
    scope: &Scope,
    input: &Input,
) -> AwsResult<Value> {
    let igw = req(input, &["InternetGatewayId"])?;
    let rec = tx
        .get(scope, KIND_IGW, igw)?
        .ok_or_else(|| igw_not_found(igw))?;
    if rec.parent.is_some() {
        return Err(vpc::dependency("internetGateway", igw));
    }
    tx.delete(scope, KIND_IGW, igw)?;
    Ok(json!({"return": true}))
}

const IGW_FILTERS: &[(&str, &str)] = &[
    ("internet-gateway-id", "internetGatewayId"),
    ("attachment.vpc-id", "attachmentSet.vpcId"),
    ("attachment.state", "attachmentSet.state"),
    ("owner-id", "ownerId"),
];

pub(crate) fn describe_internet_gateways(
    tx: &Tx<'_>,
    scope: &Scope,
    input: &Input,
) -> AwsResult<Value> {
    let ids = strs_any(input, &["InternetGatewayId", "InternetGatewayIds"]);
    let (items, next) = vpc::describe(
        tx,
        scope,
        input,
        KIND_IGW,
        &ids,
        IGW_FILTERS,
        igw_not_found,
        &|b| Ok(public(b)),
        true,
    )?;
    Ok(with_token(json!({"internetGatewaySet": items}), next))
}

// ---------------------------------------------------------------------------------------------
// Elastic IPs

fn next_public_ip(tx: &Tx<'_>, scope: &Scope) -> AwsResult<String> {
    // 198.18.0.0/15 is reserved for benchmarking: never a real host, plenty of room.
    let used: std::collections::HashSet<String> = tx
        .list(scope, KIND_EIP, None)?
        .iter()
        .map(|r| s(&r.body, "publicIp"))
        .collect();
    let base = u32::from(Ipv4Addr::new(198, 18, 0, 1));
    (0..131_000u32)
        .map(|i| Ipv4Addr::from(base + i).to_string())
        .find(|ip| !used.contains(ip))
        .ok_or_else(|| {
            AwsError::bad(
                "AddressLimitExceeded",
                "The maximum number of addresses has been reached.",
            )
        })
}

pub(crate) fn allocate_address(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    if let Some(d) = input.str("Domain") {
        if d != "vpc" && d != "standard" {
            return Err(util::invalid_value(d, "domain"));
        }
    }
    let id = ids::ec2("eipalloc");
    let ip = next_public_ip(tx, scope)?;
    let body = json!({
        "allocationId": id, "publicIp": ip, "domain": "vpc", "publicIpv4Pool": "amazon",
        "networkBorderGroup": scope.region, "tagSet": spec_tags(input, "elastic-ip")?,
    });
    tx.put(scope, KIND_EIP, &id, None, Some(&ip), &body)?;
    Ok(
        json!({"allocationId": id, "publicIp": ip, "domain": "vpc", "publicIpv4Pool": "amazon", "networkBorderGroup": scope.region}),
    )
}

fn find_eip(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    if let Some(a) = input.str("AllocationId") {
        return load(tx, scope, KIND_EIP, a, eip_not_found);
    }
    let ip = req(input, &["PublicIp"])?;
    tx.find_by_name(scope, KIND_EIP, ip)?
        .into_iter()
        .next()
        .map(|r| r.body)
        .ok_or_else(|| {
            AwsError::bad(
                "InvalidAddress.NotFound",
                format!("Address '{ip}' not found."),
            )
        })
}

pub(crate) fn release_address(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let eip = find_eip(tx, scope, input)?;
    let id = s(&eip, "allocationId");
    if eip.get("associationId").is_some() {
        return Err(AwsError::bad(
            "InvalidIPAddress.InUse",
            format!("Address {id} is in use."),
        ));
    }
    tx.delete(scope, KIND_EIP, &id)?;
    Ok(json!({"return": true}))
}

fn associate_eip(tx: &Tx<'_>, scope: &Scope, eip: &mut Value, eni_id: &str) -> AwsResult<String> {
    let mut eni = shared::get_eni(tx, scope, eni_id)?.ok_or_else(|| vpc::eni_not_found(eni_id))?;
    let assoc = ids::ec2("eipassoc");
    eip["associationId"] = json!(assoc);
    eip["networkInterfaceId"] = json!(eni_id);
    eip["networkInterfaceOwnerId"] = json!(scope.account);
    eip["privateIpAddress"] = json!(eni.private_ip_address);
    eip["subnetId"] = json!(eni.subnet_id);
    let ip = s(eip, "publicIp");
    tx.put(
        scope,
        KIND_EIP,
        &s(eip, "allocationId"),
        None,
        Some(&ip),
        eip,
    )?;
    eni.rest.insert(
        "association".into(),
        json!({"publicIp": ip, "ipOwnerId": scope.account, "allocationId": eip.get("allocationId"), "associationId": assoc, "publicDnsName": ""}),
    );
    let subnet = eni.subnet_id.clone();
    tx.put_as(scope, KIND_ENI, eni_id, Some(&subnet), None, &eni)?;
    Ok(assoc)
}

fn disassociate_eip(tx: &Tx<'_>, scope: &Scope, eip: &mut Value) -> AwsResult<()> {
    let eni_id = s(eip, "networkInterfaceId");
    if let Some(mut eni) = shared::get_eni(tx, scope, &eni_id)? {
        eni.rest.remove("association");
        let subnet = eni.subnet_id.clone();
        tx.put_as(scope, KIND_ENI, &eni_id, Some(&subnet), None, &eni)?;
    }
    if let Some(o) = eip.as_object_mut() {
        for k in [
            "associationId",
            "networkInterfaceId",
            "networkInterfaceOwnerId",
            "privateIpAddress",
            "subnetId",
        ] {
            o.remove(k);
        }
    }
    let ip = s(eip, "publicIp");
    tx.put(
        scope,
        KIND_EIP,
        &s(eip, "allocationId"),
        None,
        Some(&ip),
        eip,
    )?;
    Ok(())
}

pub(crate) fn associate_address(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let mut eip = find_eip(tx, scope, input)?;
    if let Some(i) = input.str("InstanceId") {
        return Err(AwsError::bad(
            "InvalidInstanceID.NotFound",
            format!("The instance ID '{i}' does not exist"),
        ));
    }
    let eni = req(input, &["NetworkInterfaceId"])?;
    let vpc_id = shared::get_eni(tx, scope, eni)?
        .ok_or_else(|| vpc::eni_not_found(eni))?
        .vpc_id;
    if igw_of_vpc(tx, scope, &vpc_id)?.is_none() {
        return Err(AwsError::bad(
            "Gateway.NotAttached",
            format!("Network {vpc_id} is not attached to any internet gateway"),
        ));
    }
    if eip.get("associationId").is_some() {
        if util::bool_member(input, "AllowReassociation")? != Some(true) {
            return Err(AwsError::bad(
                "Resource.AlreadyAssociated",
                format!(
                    "resource {} is already associated with associate-id {}",
                    s(&eip, "allocationId"),
                    s(&eip, "associationId")
                ),
            ));
        }
        disassociate_eip(tx, scope, &mut eip)?;
    }
    let assoc = associate_eip(tx, scope, &mut eip, eni)?;
    Ok(json!({"return": true, "associationId": assoc}))
}

pub(crate) fn disassociate_address(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let assoc = req(input, &["AssociationId"])?;
    let mut eip = tx
        .list(scope, KIND_EIP, None)?
        .into_iter()
        .map(|r| r.body)
        .find(|b| s(b, "associationId") == assoc)
        .ok_or_else(|| {
            AwsError::bad(
                "InvalidAssociationID.NotFound",
                format!("The association ID '{assoc}' does not exist"),
            )
        })?;
    let managed = shared::get_eni(tx, scope, &s(&eip, "networkInterfaceId"))?
        .is_some_and(|e| e.interface_type == "nat_gateway");
    if managed {
        return Err(AwsError::bad(
            "AuthFailure",
            "You do not have permission to access the specified resource.",
        ));
    }
    disassociate_eip(tx, scope, &mut eip)?;
    Ok(json!({"return": true}))
}

const EIP_FILTERS: &[(&str, &str)] = &[
    ("allocation-id", "allocationId"),
    ("association-id", "associationId"),
    ("domain", "domain"),
    ("network-interface-id", "networkInterfaceId"),
    ("network-interface-owner-id", "networkInterfaceOwnerId"),
    ("private-ip-address", "privateIpAddress"),
    ("public-ip", "publicIp"),
    ("network-border-group", "networkBorderGroup"),
];

pub(crate) fn describe_addresses(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let mut ids = strs_any(input, &["AllocationId", "AllocationIds"]);
    for ip in strs_any(input, &["PublicIp", "PublicIps"]) {
        let rec = tx
            .find_by_name(scope, KIND_EIP, &ip)?
            .into_iter()
            .next()
            .ok_or_else(|| {
                AwsError::bad(
                    "InvalidAddress.NotFound",
                    format!("Address '{ip}' not found."),
                )
            })?;
        ids.push(rec.id);
    }
    let (items, _) = vpc::describe(
        tx,
        scope,
        input,
        KIND_EIP,
        &ids,
        EIP_FILTERS,
        eip_not_found,
        &|b| Ok(public(b)),
        false,
    )?;
    Ok(json!({"addressesSet": items}))
}

// ---------------------------------------------------------------------------------------------
// NAT gateways

/// The state a NAT gateway is in now, from its timestamps.
pub(crate) fn nat_state(body: &Value) -> &'static str {
    let now = time::now_millis();
    if body.get("_failed").is_some() {
        return "failed";
    }
    if let Some(d) = body.get("_deletedAt").and_then(Value::as_i64) {
        return if now >= d + NAT_PENDING_MS {
            "deleted"
        } else {
            "deleting"
        };
    }
    let created = body.get("_createdAt").and_then(Value::as_i64).unwrap_or(0);
    if now >= created + NAT_PENDING_MS {
        "available"
    } else {
        "pending"
    }
}

fn render_nat(body: &Value) -> Value {
    let mut v = public(body);
    let st = nat_state(body);
    v["state"] = json!(st);
    if st == "deleted" {
        if let Some(a) = v
            .get_mut("natGatewayAddressSet")
            .and_then(Value::as_array_mut)
        {
            for x in a {
                x["status"] = json!("succeeded");
            }
        }
    }
    v
}

/// Whether a subnet holds a NAT gateway that is not yet deleted.
pub(crate) fn live_nats_in_subnet(tx: &Tx<'_>, scope: &Scope, subnet_id: &str) -> AwsResult<bool> {
    Ok(tx
        .list(scope, KIND_NAT, Some(subnet_id))?
        .iter()
        .any(|r| !matches!(nat_state(&r.body), "deleted" | "failed")))
}

pub(crate) fn create_nat_gateway(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let subnet_id = req(input, &["SubnetId"])?;
    let subnet: Subnet = shared::get_subnet(tx, scope, subnet_id)?
        .ok_or_else(|| shared::subnet_not_found(subnet_id))?;
    let connectivity = input.str("ConnectivityType").unwrap_or("public");
    if connectivity != "public" && connectivity != "private" {
        return Err(util::invalid_value(connectivity, "ConnectivityType"));
    }
    let mut eip = match (connectivity, input.str("AllocationId")) {
        ("public", None) => return Err(util::missing("AllocationId")),
        ("public", Some(a)) => {
            let e = load(tx, scope, KIND_EIP, a, eip_not_found)?;
            if e.get("associationId").is_some() {
                return Err(AwsError::bad(
                    "Resource.AlreadyAssociated",
                    format!("Elastic IP address [{a}] is already associated"),
                ));
            }
            Some(e)
        }
        _ => None,
    };
    let id = ids::ec2("nat");
    let eni = shared::create_eni(
        tx,
        scope,
        subnet_id,
        &[],
        &format!("Interface for NAT Gateway {id}"),
        "nat_gateway",
        "amazon-nat-gateway",
        None,
    )?;
    let mut address = json!({
        "networkInterfaceId": eni.network_interface_id, "privateIp": eni.private_ip_address,
        "isPrimary": true, "status": "succeeded",
    });
    if let Some(e) = eip.as_mut() {
        let assoc = associate_eip(tx, scope, e, &eni.network_interface_id)?;
        address["allocationId"] = json!(s(e, "allocationId"));
        address["publicIp"] = json!(s(e, "publicIp"));
        address["associationId"] = json!(assoc);
    }
    let now = time::now_millis();
    let mut body = json!({
        "natGatewayId": id, "subnetId": subnet_id, "vpcId": subnet.vpc_id,
        "createTime": time::iso_millis(now), "connectivityType": connectivity,
        "natGatewayAddressSet": [address], "tagSet": spec_tags(input, "natgateway")?,
        "_createdAt": now, "_eni": eni.network_interface_id,
    });
    if connectivity == "public" && igw_of_vpc(tx, scope, &subnet.vpc_id)?.is_none() {
        body["_failed"] = json!(true);
        body["failureCode"] = json!("Gateway.NotAttached");
        body["failureMessage"] = json!(format!(
            "Network {} has no Internet gateway attached",
            subnet.vpc_id
        ));
    }
    tx.put(scope, KIND_NAT, &id, Some(subnet_id), None, &body)?;
    let mut out = render_nat(&body);
    out["state"] = json!("pending");
    let client_token = str_any(input, &["ClientToken"]);
    Ok(json!({"natGateway": out, "clientToken": client_token}))
}

pub(crate) fn delete_nat_gateway(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let id = req(input, &["NatGatewayId"])?;
    let mut body = load(tx, scope, KIND_NAT, id, nat_not_found)?;
    if body.get("_deletedAt").is_none() {
        body["_deletedAt"] = json!(time::now_millis());
        body["deleteTime"] = json!(time::iso_millis(time::now_millis()));
        // The gateway's address and interface go with it.
        for eip in tx.list(scope, KIND_EIP, None)? {
            if s(&eip.body, "networkInterfaceId") == s(&body, "_eni") {
                let mut e = eip.body;
                disassociate_eip(tx, scope, &mut e)?;
            }
        }
        shared::delete_eni(tx, scope, &s(&body, "_eni"))?;
        let subnet = s(&body, "subnetId");
        tx.put(scope, KIND_NAT, id, Some(&subnet), None, &body)?;
    }
    Ok(json!({"natGatewayId": id}))
}

const NAT_FILTERS: &[(&str, &str)] = &[
    ("nat-gateway-id", "natGatewayId"),
    ("state", "state"),
    ("subnet-id", "subnetId"),
    ("vpc-id", "vpcId"),
];

pub(crate) fn describe_nat_gateways(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let ids = strs_any(input, &["NatGatewayId", "NatGatewayIds"]);
    let (items, next) = vpc::describe(
        tx,
        scope,
        input,
        KIND_NAT,
        &ids,
        NAT_FILTERS,
        nat_not_found,
        &|b| Ok(render_nat(b)),
        true,
    )?;
    Ok(with_token(json!({"natGatewaySet": items}), next))
}

pub(crate) fn replace_route_table_association(
    tx: &Tx<'_>,
    scope: &Scope,
    input: &Input,
) -> AwsResult<Value> {
    let assoc_id = req(input, &["AssociationId"])?;
    let target_id = req(input, &["RouteTableId"])?;
    let target = load(tx, scope, KIND_RTB, target_id, rtb_not_found)?;
    for r in tx.list(scope, KIND_RTB, None)? {
        let mut body = r.body;
        let same_vpc = s(&target, "vpcId") == s(&body, "vpcId");
        let Some(a) = body.get_mut("associationSet").and_then(Value::as_array_mut) else {
            continue;
        };
        let Some(pos) = a.iter().position(|x| {
            x.get("routeTableAssociationId").and_then(Value::as_str) == Some(assoc_id)
        }) else {
            continue;
        };
        if !same_vpc {
            return Err(AwsError::bad(
                "InvalidParameterValue",
                format!("Route table {target_id} and association {assoc_id} belong to different networks"),
            ));
        }
        let mut moved = a.remove(pos);
        save_rtb(tx, scope, &body)?;
        let new_id = ids::ec2("rtbassoc");
        moved["routeTableAssociationId"] = json!(new_id);
        moved["routeTableId"] = json!(target_id);
        let main = moved.get("main").and_then(Value::as_bool) == Some(true);
        let mut target = load(tx, scope, KIND_RTB, target_id, rtb_not_found)?;
        if let Some(a) = target
            .get_mut("associationSet")
            .and_then(Value::as_array_mut)
        {
            a.push(moved);
        }
        save_rtb(tx, scope, &target)?;
        if main {
            let vpc_id = s(&target, "vpcId");
            let mut v = load_vpc(tx, scope, &vpc_id)?;
            v.rest.insert("_mainRouteTableId".into(), json!(target_id));
            tx.put_as(scope, shared::KIND_VPC, &vpc_id, None, None, &v)?;
        }
        return Ok(
            json!({"newAssociationId": new_id, "associationState": {"state": "associated"}}),
        );
    }
    Err(AwsError::bad(
        "InvalidAssociationID.NotFound",
        format!("The association ID '{assoc_id}' does not exist"),
    ))
}

/// Whether the route table a subnet uses routes `0.0.0.0/0` to its VPC's attached gateway.
pub(crate) fn subnet_is_public(tx: &Tx<'_>, scope: &Scope, subnet: &Subnet) -> AwsResult<bool> {
    let Some(igw) = igw_of_vpc(tx, scope, &subnet.vpc_id)? else {
        return Ok(false);
    };
    let tables = tx.list(scope, KIND_RTB, Some(&subnet.vpc_id))?;
    let uses = |assoc: &Value| {
        assoc.get("subnetId").and_then(Value::as_str) == Some(subnet.subnet_id.as_str())
    };
    let main = |assoc: &Value| assoc.get("main").and_then(Value::as_bool) == Some(true);
    let assocs = |r: &portico_store::Record| {
        r.body
            .get("associationSet")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let table = tables
        .iter()
        .find(|r| assocs(r).iter().any(uses))
        .or_else(|| tables.iter().find(|r| assocs(r).iter().any(main)));
    Ok(table.is_some_and(|t| {
        t.body
            .get("routeSet")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|r| {
                r.get("destinationCidrBlock").and_then(Value::as_str) == Some("0.0.0.0/0")
                    && r.get("gatewayId").and_then(Value::as_str) == Some(igw.as_str())
            })
    }))
}

#[cfg(test)]
mod tests {
    use super::super::vpc;
    use super::*;

    #[test]
    fn public_subnets_follow_their_route_table() {
        let store = portico_store::Store::in_memory().unwrap();
        let scope = Scope::new("000000000000", "us-east-1");
        store
            .write(|tx| {
                let i = |v: Value| Input(v);
                let out = vpc::create_vpc(tx, &scope, &i(json!({"CidrBlock": "10.0.0.0/16"})))?;
                let vpc_id = out["vpc"]["vpcId"].as_str().unwrap().to_string();
                let mk = |cidr: &str| -> AwsResult<Subnet> {
                    let o = vpc::create_subnet(tx, &scope, &i(json!({"VpcId": vpc_id, "CidrBlock": cidr})))?;
                    let id = o["subnet"]["subnetId"].as_str().unwrap().to_string();
                    Ok(shared::get_subnet(tx, &scope, &id)?.unwrap())
                };
                let (a, b) = (mk("10.0.0.0/24")?, mk("10.0.1.0/24")?);
                assert!(!subnet_is_public(tx, &scope, &a)?);
                let igw = create_igw_record(tx, &scope, vec![])?;
                attach_igw(tx, &scope, &igw, &vpc_id)?;
                let rtb = create_route_table(tx, &scope, &i(json!({"VpcId": vpc_id})))?;
                let rtb = rtb["routeTable"]["routeTableId"].as_str().unwrap().to_string();
                create_route(tx, &scope, &i(json!({"RouteTableId": rtb, "DestinationCidrBlock": "0.0.0.0/0", "GatewayId": igw})))?;
                associate_route_table(tx, &scope, &i(json!({"RouteTableId": rtb, "SubnetId": a.subnet_id})))?;
                assert!(subnet_is_public(tx, &scope, &a)?);
                assert!(!subnet_is_public(tx, &scope, &b)?, "main table has no internet route");
                let main = load_vpc(tx, &scope, &vpc_id)?;
                let main = shared::main_route_table_id(&main).unwrap().to_string();
                create_route(tx, &scope, &i(json!({"RouteTableId": main, "DestinationCidrBlock": "0.0.0.0/0", "GatewayId": igw})))?;
                assert!(subnet_is_public(tx, &scope, &b)?);
                Ok(())
            })
            .unwrap();
    }
}
