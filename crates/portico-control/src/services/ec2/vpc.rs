//! VPCs, subnets, the default VPC, zones and regions, account attributes, tags and network
//! interfaces. Records are stored in EC2's response shape (camelCase); members starting with `_`
//! are Portico's own and never rendered.

use super::shared::{
    self, NetworkInterface, SecurityGroup, Subnet, Vpc, KIND_ENI, KIND_SG, KIND_SUBNET, KIND_VPC,
};
use super::util::{self, filters, list_any, matches, public, req, spec_tags, str_any, strs_any};
use super::{acl, gateways, sg, KIND_ACL, KIND_EIP, KIND_IGW, KIND_NAT, KIND_RTB};
use portico_core::context::partition_of;
use portico_core::{ids, AwsError, AwsResult, Input};
use portico_store::{Scope, Tx};
use serde_json::{json, Map, Value};

/// Marks that the default VPC of a scope was made once (deleting it does not bring it back).
const KIND_ACCOUNT: &str = "ec2.account";

pub(crate) fn vpc_not_found(id: &str) -> AwsError {
    AwsError::bad(
        "InvalidVpcID.NotFound",
        format!("The vpc ID '{id}' does not exist"),
    )
}

pub(crate) fn dependency(kind: &str, id: &str) -> AwsError {
    AwsError::bad(
        "DependencyViolation",
        format!("The {kind} '{id}' has dependencies and cannot be deleted."),
    )
}

pub(crate) fn zones(region: &str) -> Vec<(String, String)> {
    let code = util::region_code(region);
    ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, l)| (format!("{region}{l}"), format!("{code}-az{}", i + 1)))
        .collect()
}

fn zone_id(region: &str, zone: &str) -> Option<String> {
    zones(region)
        .into_iter()
        .find(|(n, _)| n == zone)
        .map(|(_, id)| id)
}

pub(crate) fn load_vpc(tx: &Tx<'_>, scope: &Scope, id: &str) -> AwsResult<Vpc> {
    shared::get_vpc(tx, scope, id)?.ok_or_else(|| vpc_not_found(id))
}

/// The default VPC of the scope, made (with default subnets, security group, internet gateway
/// and main route table) the first time anyone asks.
pub(crate) fn ensure_default_vpc(tx: &Tx<'_>, scope: &Scope) -> AwsResult<Option<Vpc>> {
    if tx.get(scope, KIND_ACCOUNT, "default-vpc")?.is_some() {
        return Ok(tx
            .list_as::<Vpc>(scope, KIND_VPC, None)?
            .into_iter()
            .find(|v| v.is_default));
    }
    build_default_vpc(tx, scope).map(Some)
}

/// Makes the default VPC with its subnets, internet gateway and route (no checks).
fn build_default_vpc(tx: &Tx<'_>, scope: &Scope) -> AwsResult<Vpc> {
    let vpc = create_vpc_record(tx, scope, "172.31.0.0/16", true, Vec::new())?;
    tx.put(
        scope,
        KIND_ACCOUNT,
        "default-vpc",
        None,
        None,
        &json!({"vpcId": vpc.vpc_id}),
    )?;
    for (i, (zone, _)) in zones(&scope.region).into_iter().enumerate() {
        let cidr = format!("172.31.{}.0/20", i * 16);
        create_subnet_record(tx, scope, &vpc, &cidr, &zone, true, Vec::new())?;
    }
    let igw = gateways::create_igw_record(tx, scope, Vec::new())?;
    gateways::attach_igw(tx, scope, &igw, &vpc.vpc_id)?;
    if let Some(rtb) = vpc.rest.get("_mainRouteTableId").and_then(Value::as_str) {
        gateways::add_route(
            tx,
            scope,
            rtb,
            json!({"destinationCidrBlock": "0.0.0.0/0", "gatewayId": igw, "origin": "CreateRoute", "state": "active"}),
        )?;
    }
    Ok(vpc)
}

/// CreateDefaultVpc: brings back a deleted default VPC (AWS refuses while one exists).
pub(crate) fn create_default_vpc(tx: &Tx<'_>, scope: &Scope, _input: &Input) -> AwsResult<Value> {
    if let Some(v) = tx
        .list_as::<Vpc>(scope, KIND_VPC, None)?
        .into_iter()
        .find(|v| v.is_default)
    {
        return Err(AwsError::bad(
            "DefaultVpcAlreadyExists",
            format!(
                "A Default VPC already exists for this account in this region. ({})",
                v.vpc_id
            ),
        ));
    }
    let vpc = build_default_vpc(tx, scope)?;
    Ok(json!({"vpc": render_vpc(&vpc)?}))
}

pub(crate) fn has_default_marker(tx: &Tx<'_>, scope: &Scope) -> AwsResult<bool> {
    Ok(tx.get(scope, KIND_ACCOUNT, "default-vpc")?.is_some())
}

fn create_vpc_record(
    tx: &Tx<'_>,
    scope: &Scope,
    cidr: &str,
    is_default: bool,
    tags: Vec<Value>,
) -> AwsResult<Vpc> {
    let vpc_id = ids::ec2("vpc");
    let mut rest = Map::new();
    rest.insert("ownerId".into(), json!(scope.account));
    rest.insert("instanceTenancy".into(), json!("default"));
    rest.insert("state".into(), json!("available"));
    rest.insert("dhcpOptionsId".into(), json!(ids::ec2("dopt")));
    rest.insert(
        "cidrBlockAssociationSet".into(),
        json!([{"associationId": ids::ec2("vpc-cidr-assoc"), "cidrBlock": cidr, "cidrBlockState": {"state": "associated"}}]),
    );
    rest.insert("ipv6CidrBlockAssociationSet".into(), json!([]));
    rest.insert("tagSet".into(), Value::Array(tags));
    rest.insert("_enableDnsSupport".into(), json!(true));
    rest.insert("_enableDnsHostnames".into(), json!(is_default));
    rest.insert("_enableNetworkAddressUsageMetrics".into(), json!(false));
    let mut vpc = Vpc {
        vpc_id: vpc_id.clone(),
        cidr_block: cidr.to_string(),
        is_default,
        rest,
    };
    let rtb = gateways::create_route_table_record(tx, scope, &vpc, true, Vec::new())?;
    let sg = sg::create_group_record(
        tx,
        scope,
        &vpc_id,
        "default",
        "default VPC security group",
        Vec::new(),
        true,
    )?;
    let acl = acl::create_acl_record(tx, scope, &vpc_id, true, Vec::new())?;
    vpc.rest.insert("_mainRouteTableId".into(), json!(rtb));
    vpc.rest.insert("_defaultNetworkAclId".into(), json!(acl));
    vpc.rest.insert("_defaultGroupId".into(), json!(sg));
    tx.put_as(scope, KIND_VPC, &vpc_id, None, None, &vpc)?;
    Ok(vpc)
}

fn vpc_cidrs(vpc: &Vpc) -> Vec<ipnet::Ipv4Net> {
    let mut out = Vec::new();
    if let Some(Value::Array(a)) = vpc.rest.get("cidrBlockAssociationSet") {
        for assoc in a {
            if assoc
                .pointer("/cidrBlockState/state")
                .and_then(Value::as_str)
                == Some("associated")
            {
                if let Some(n) = assoc
                    .get("cidrBlock")
                    .and_then(Value::as_str)
                    .and_then(|c| c.parse().ok())
                {
                    out.push(n);
                }
            }
        }
    }
    if out.is_empty() {
        if let Ok(n) = vpc.cidr_block.parse() {
            out.push(n);
        }
    }
    out
}

fn check_vpc_cidr(cidr: &str) -> AwsResult<ipnet::Ipv4Net> {
    let net = util::parse_cidr(cidr).ok_or_else(|| {
        AwsError::bad(
            "InvalidParameterValue",
            format!("Value ({cidr}) for parameter cidrBlock is invalid. This is not a valid CIDR block."),
        )
    })?;
    if !(16..=28).contains(&net.prefix_len()) {
        return Err(AwsError::bad(
            "InvalidVpc.Range",
            format!("The CIDR '{cidr}' is invalid."),
        ));
    }
    Ok(net)
}

pub(crate) fn create_vpc(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    unsupported_ipv6(
        input,
        &["AmazonProvidedIpv6CidrBlock"],
        &[
            "Ipv6CidrBlock",
            "Ipv6Pool",
            "Ipv6IpamPoolId",
            "Ipv4IpamPoolId",
        ],
    )?;
    let cidr = req(input, &["CidrBlock"])?;
    check_vpc_cidr(cidr)?;
    let tenancy = input.str("InstanceTenancy").unwrap_or("default");
    if !matches!(tenancy, "default" | "dedicated") {
        return Err(util::invalid_value(tenancy, "instanceTenancy"));
    }
    let tags = spec_tags(input, "vpc")?;
    let mut vpc = create_vpc_record(tx, scope, cidr, false, tags)?;
    if tenancy != "default" {
        vpc.rest.insert("instanceTenancy".into(), json!(tenancy));
        tx.put_as(scope, KIND_VPC, &vpc.vpc_id.clone(), None, None, &vpc)?;
    }
    Ok(json!({"vpc": render_vpc(&vpc)?}))
}

fn render_vpc(vpc: &Vpc) -> AwsResult<Value> {
    Ok(public(
        &serde_json::to_value(vpc).map_err(AwsError::internal)?,
    ))
}

const VPC_FILTERS: &[(&str, &str)] = &[
    ("vpc-id", "vpcId"),
    ("cidr", "cidrBlock"),
    ("cidr-block", "cidrBlock"),
    (
        "cidr-block-association.cidr-block",
        "cidrBlockAssociationSet.cidrBlock",
    ),
    (
        "cidr-block-association.association-id",
        "cidrBlockAssociationSet.associationId",
    ),
    (
        "cidr-block-association.state",
        "cidrBlockAssociationSet.cidrBlockState.state",
    ),
    ("state", "state"),
    ("is-default", "isDefault"),
    ("isDefault", "isDefault"),
    ("owner-id", "ownerId"),
    ("dhcp-options-id", "dhcpOptionsId"),
];

/// Describes records of one kind: by ids (each must exist), then by filters, then one page.
#[allow(
    clippy::too_many_arguments,
    reason = "one generic describe for every kind"
)]
pub(crate) fn describe(
    tx: &Tx<'_>,
    scope: &Scope,
    input: &Input,
    kind: &str,
    ids: &[String],
    table: &[(&str, &str)],
    not_found: fn(&str) -> AwsError,
    render: &dyn Fn(&Value) -> AwsResult<Value>,
    paginate: bool,
) -> AwsResult<(Vec<Value>, Option<String>)> {
    let fs = filters(input);
    // Given ids, only those records are read (in the order given, each once); else every one
    // in the region.
    let records = if ids.is_empty() {
        tx.list(scope, kind, None)?
    } else {
        let mut seen = std::collections::HashSet::new();
        let mut records = Vec::new();
        for id in ids {
            check_id(kind, id)?;
            let r = tx.get(scope, kind, id)?.ok_or_else(|| not_found(id))?;
            if seen.insert(id.as_str()) {
                records.push(r);
            }
        }
        records
    };
    let mut out = Vec::new();
    for r in records {
        let v = render(&r.body)?;
        if matches(&v, &fs, table, "tagSet")? {
            out.push(v);
        }
    }
    if paginate {
        util::page(input, out)
    } else {
        Ok((out, None))
    }
}

/// EC2's `*.Malformed` error for an id that cannot be of the kind (`Invalid id: "x"
/// (expecting "vpc-...")`). Ids are `prefix-` and 8 or 17 lowercase hex digits.
pub(crate) fn check_id(kind: &str, id: &str) -> AwsResult<()> {
    let (prefix, code) = match kind {
        KIND_VPC => ("vpc", "InvalidVpcID.Malformed"),
        KIND_SUBNET => ("subnet", "InvalidSubnetID.Malformed"),
        KIND_SG => ("sg", "InvalidGroupId.Malformed"),
        KIND_ENI => ("eni", "InvalidNetworkInterfaceId.Malformed"),
        KIND_RTB => ("rtb", "InvalidRouteTableId.Malformed"),
        KIND_IGW => ("igw", "InvalidInternetGatewayId.Malformed"),
        KIND_EIP => ("eipalloc", "InvalidAllocationID.Malformed"),
        KIND_ACL => ("acl", "InvalidNetworkAclId.Malformed"),
        _ => return Ok(()),
    };
    let ok = id
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('-'))
        .is_some_and(|h| {
            (h.len() == 8 || h.len() == 17)
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
    if ok {
        Ok(())
    } else {
        Err(AwsError::bad(
            code,
            format!("Invalid id: \"{id}\" (expecting \"{prefix}-...\")"),
        ))
    }
}

/// A Describe* response with `nextToken` when there are more items.
pub(crate) fn with_token(mut v: Value, next: Option<String>) -> Value {
    if let (Some(n), Some(o)) = (next, v.as_object_mut()) {
        o.insert("nextToken".into(), json!(n));
    }
    v
}

pub(crate) fn describe_vpcs(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let ids = strs_any(input, &["VpcId", "VpcIds"]);
    let (items, next) = describe(
        tx,
        scope,
        input,
        KIND_VPC,
        &ids,
        VPC_FILTERS,
        vpc_not_found,
        &|b| Ok(public(b)),
        true,
    )?;
    Ok(with_token(json!({"vpcSet": items}), next))
}

pub(crate) fn delete_vpc(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let id = req(input, &["VpcId"])?;
    let vpc = load_vpc(tx, scope, id)?;
    let main_rtb = vpc
        .rest
        .get("_mainRouteTableId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let default_sg = vpc
        .rest
        .get("_defaultGroupId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let has_subnets = tx.count(scope, KIND_SUBNET, Some(id))? > 0;
    let other_sgs = tx
        .list(scope, KIND_SG, Some(id))?
        .iter()
        .any(|r| r.id != default_sg);
    let other_rtbs = tx
        .list(scope, KIND_RTB, Some(id))?
        .iter()
        .any(|r| r.id != main_rtb);
    let igw_attached = gateways::igw_of_vpc(tx, scope, id)?.is_some();
    if has_subnets || other_sgs || other_rtbs || igw_attached || acl::has_custom(tx, scope, id)? {
        return Err(dependency("vpc", id));
    }
    acl::drop_default(tx, scope, id)?;
    tx.delete(scope, KIND_RTB, &main_rtb)?;
    tx.delete(scope, KIND_SG, &default_sg)?;
    tx.delete(scope, KIND_VPC, id)?;
    Ok(json!({"return": true}))
}

fn dns_attr(vpc: &Vpc, name: &str) -> bool {
    vpc.rest
        .get(&format!("_{name}"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

pub(crate) fn describe_vpc_attribute(
    tx: &Tx<'_>,
    scope: &Scope,
    input: &Input,
) -> AwsResult<Value> {
    let id = req(input, &["VpcId"])?;
    let attr = req(input, &["Attribute"])?;
    let vpc = load_vpc(tx, scope, id)?;
    match attr {
        "enableDnsSupport" | "enableDnsHostnames" | "enableNetworkAddressUsageMetrics" => {
            Ok(json!({"vpcId": id, attr: {"value": dns_attr(&vpc, attr)}}))
        }
        other => Err(AwsError::bad(
            "InvalidParameterValue",
            format!("Value ({other}) for parameter attribute is invalid. Unknown attribute."),
        )),
    }
}

pub(crate) fn modify_vpc_attribute(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let id = req(input, &["VpcId"])?;
    let mut vpc = load_vpc(tx, scope, id)?;
    let mut changed = Vec::new();
    for (attr, name) in [
        ("EnableDnsSupport", "enableDnsSupport"),
        ("EnableDnsHostnames", "enableDnsHostnames"),
        (
            "EnableNetworkAddressUsageMetrics",
            "enableNetworkAddressUsageMetrics",
        ),
    ] {
        if let Some(b) = util::bool_member(input, attr)? {
            vpc.rest.insert(format!("_{name}"), json!(b));
            changed.push(name);
        }
    }
    match changed.len() {
        1 => {}
        0 => return Err(util::no_attributes()),
        _ => return Err(util::multiple_attributes(changed)),
    }
    if dns_attr(&vpc, "enableDnsHostnames") && !dns_attr(&vpc, "enableDnsSupport") {
        return Err(AwsError::bad(
            "InvalidParameterCombination",
            "enableDnsHostnames requires enableDnsSupport to be true",
        ));
    }
    tx.put_as(scope, KIND_VPC, id, None, None, &vpc)?;
    Ok(json!({"return": true}))
}

pub(crate) fn associate_vpc_cidr_block(
    tx: &Tx<'_>,
    scope: &Scope,
    input: &Input,
) -> AwsResult<Value> {
    let id = req(input, &["VpcId"])?;
    let cidr = req(input, &["CidrBlock"])?;
    let net = check_vpc_cidr(cidr)?;
    let mut vpc = load_vpc(tx, scope, id)?;
    let existing = vpc_cidrs(&vpc);
    if existing.iter().any(|n| util::overlaps(n, &net)) {
        return Err(AwsError::bad(
            "InvalidVpc.Range",
            format!("The CIDR '{cidr}' is invalid."),
        ));
    }
    if existing.len() >= 5 {
        return Err(AwsError::bad(
            "CidrLimitExceeded",
            format!("This network '{id}' has met its maximum number of allowed CIDRs: 5"),
        ));
    }
    let assoc = json!({"associationId": ids::ec2("vpc-cidr-assoc"), "cidrBlock": cidr, "cidrBlockState": {"state": "associated"}});
    if let Some(Value::Array(a)) = vpc.rest.get_mut("cidrBlockAssociationSet") {
        a.push(assoc.clone());
    }
    tx.put_as(scope, KIND_VPC, id, None, None, &vpc)?;
    Ok(json!({"vpcId": id, "cidrBlockAssociation": assoc}))
}

pub(crate) fn disassociate_vpc_cidr_block(
    tx: &Tx<'_>,
    scope: &Scope,
    input: &Input,
) -> AwsResult<Value> {
    let assoc_id = req(input, &["AssociationId"])?;
    for mut vpc in tx.list_as::<Vpc>(scope, KIND_VPC, None)? {
        let Some(Value::Array(a)) = vpc.rest.get("cidrBlockAssociationSet").cloned() else {
            continue;
        };
        let Some(pos) = a
            .iter()
            .position(|x| x.get("associationId").and_then(Value::as_str) == Some(assoc_id))
        else {
            continue;
        };
        let cidr = a[pos]
            .get("cidrBlock")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if cidr == vpc.cidr_block {
            return Err(AwsError::bad(
                "OperationNotPermitted",
                format!("The vpc CIDR block with association ID {assoc_id} may not be disassociated. It is the primary IPv4 CIDR block of the VPC"),
            ));
        }
        let in_use = tx
            .list_as::<Subnet>(scope, KIND_SUBNET, Some(&vpc.vpc_id))?
            .iter()
            .any(|s| {
                s.cidr_block
                    .parse::<ipnet::Ipv4Net>()
                    .ok()
                    .zip(cidr.parse::<ipnet::Ipv4Net>().ok())
                    .is_some_and(|(s, c)| c.contains(&s))
            });
        if in_use {
            return Err(AwsError::bad(
                "InvalidCidrBlock.InUse",
                format!(
                    "The vpc {} currently has a subnet within CIDR block {cidr}",
                    vpc.vpc_id
                ),
            ));
        }
        let mut a = a;
        let mut removed = a.remove(pos);
        removed["cidrBlockState"] = json!({"state": "disassociating"});
        vpc.rest
            .insert("cidrBlockAssociationSet".into(), Value::Array(a));
        tx.put_as(scope, KIND_VPC, &vpc.vpc_id.clone(), None, None, &vpc)?;
        return Ok(json!({"vpcId": vpc.vpc_id, "cidrBlockAssociation": removed}));
    }
    Err(AwsError::bad(
        "InvalidVpcCidrBlockAssociationID.NotFound",
        format!("The vpc CIDR block association ID '{assoc_id}' does not exist"),
    ))
}

// ---------------------------------------------------------------------------------------------
// Subnets

pub(crate) fn create_subnet_record(
    tx: &Tx<'_>,
    scope: &Scope,
    vpc: &Vpc,
    cidr: &str,
    zone: &str,
    default_for_az: bool,
    tags: Vec<Value>,
) -> AwsResult<Subnet> {
    let subnet_id = ids::ec2("subnet");
    let mut rest = Map::new();
    rest.insert(
        "availabilityZoneId".into(),
        json!(zone_id(&scope.region, zone).unwrap_or_default()),
    );
    rest.insert("state".into(), json!("available"));
    rest.insert("defaultForAz".into(), json!(default_for_az));
    rest.insert("mapPublicIpOnLaunch".into(), json!(default_for_az));
    rest.insert("mapCustomerOwnedIpOnLaunch".into(), json!(false));
    rest.insert("assignIpv6AddressOnCreation".into(), json!(false));
    rest.insert("ipv6CidrBlockAssociationSet".into(), json!([]));
    rest.insert("ownerId".into(), json!(scope.account));
    rest.insert(
        "subnetArn".into(),
        json!(format!(
            "arn:{}:ec2:{}:{}:subnet/{subnet_id}",
            partition_of(&scope.region),
            scope.region,
            scope.account
        )),
    );
    rest.insert("enableDns64".into(), json!(false));
    rest.insert("ipv6Native".into(), json!(false));
    rest.insert(
        "privateDnsNameOptionsOnLaunch".into(),
        json!({"hostnameType": "ip-name", "enableResourceNameDnsARecord": false, "enableResourceNameDnsAAAARecord": false}),
    );
    rest.insert("tagSet".into(), Value::Array(tags));
    let s = Subnet {
        subnet_id: subnet_id.clone(),
        vpc_id: vpc.vpc_id.clone(),
        cidr_block: cidr.to_string(),
        availability_zone: zone.to_string(),
        rest,
    };
    tx.put_as(scope, KIND_SUBNET, &subnet_id, Some(&vpc.vpc_id), None, &s)?;
    acl::associate_default(tx, scope, vpc, &subnet_id)?;
    Ok(s)
}

/// IPv6 and IPAM pools are not modelled: asking for them is refused rather than ignored.
fn unsupported_ipv6(input: &Input, flags: &[&str], members: &[&str]) -> AwsResult<()> {
    let asked = flags
        .iter()
        .any(|f| input.bool(f).ok().flatten() == Some(true))
        || members.iter().any(|m| input.has(m));
    if asked {
        return Err(AwsError::bad(
            "UnsupportedOperation",
            "Portico does not model IPv6 CIDR blocks or IPAM pools; use IPv4 CIDR blocks.",
        ));
    }
    Ok(())
}

pub(crate) fn create_subnet(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    unsupported_ipv6(
        input,
        &["Ipv6Native"],
        &["Ipv6CidrBlock", "Ipv4IpamPoolId", "Ipv6IpamPoolId"],
    )?;
    let vpc_id = req(input, &["VpcId"])?;
    let cidr = req(input, &["CidrBlock"])?;
    let vpc = load_vpc(tx, scope, vpc_id)?;
    let net = util::parse_cidr(cidr).ok_or_else(|| {
        AwsError::bad(
            "InvalidParameterValue",
            format!("Value ({cidr}) for parameter cidrBlock is invalid. This is not a valid CIDR block."),
        )
    })?;
    let in_vpc = vpc_cidrs(&vpc).iter().any(|v| v.contains(&net));
    if !in_vpc || !(16..=28).contains(&net.prefix_len()) {
        return Err(AwsError::bad(
            "InvalidSubnet.Range",
            format!("The CIDR '{cidr}' is invalid."),
        ));
    }
    for other in tx.list_as::<Subnet>(scope, KIND_SUBNET, Some(vpc_id))? {
        if let Ok(o) = other.cidr_block.parse::<ipnet::Ipv4Net>() {
            if util::overlaps(&o, &net) {
                return Err(AwsError::bad(
                    "InvalidSubnet.Conflict",
                    format!("The CIDR '{cidr}' conflicts with another subnet"),
                ));
            }
        }
    }
    let zones = zones(&scope.region);
    let zone = match (
        input.str("AvailabilityZone"),
        input.str("AvailabilityZoneId"),
    ) {
        (Some(z), _) => {
            if !zones.iter().any(|(n, _)| n == z) {
                return Err(AwsError::bad(
                    "InvalidParameterValue",
                    format!("Value ({z}) for parameter availabilityZone is invalid. Subnets can currently only be created in the following availability zones: {}.", zones.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")),
                ));
            }
            z.to_string()
        }
        (None, Some(zid)) => zones
            .iter()
            .find(|(_, id)| id == zid)
            .map(|(n, _)| n.clone())
            .ok_or_else(|| {
                AwsError::bad(
                    "InvalidParameterValue",
                    format!("Value ({zid}) for parameter availabilityZoneId is invalid."),
                )
            })?,
        // AWS picks a zone; spread subnets across zones in order.
        (None, None) => {
            let n = tx.count(scope, KIND_SUBNET, Some(vpc_id))?;
            zones[n % zones.len()].0.clone()
        }
    };
    let s = create_subnet_record(
        tx,
        scope,
        &vpc,
        cidr,
        &zone,
        false,
        spec_tags(input, "subnet")?,
    )?;
    Ok(
        json!({"subnet": render_subnet(tx, scope, &serde_json::to_value(&s).map_err(AwsError::internal)?)?}),
    )
}

fn render_subnet(tx: &Tx<'_>, scope: &Scope, body: &Value) -> AwsResult<Value> {
    let mut v = public(body);
    let id = body
        .get("subnetId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let cidr = body
        .get("cidrBlock")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let used = tx.count(scope, KIND_ENI, Some(id))? as u64;
    v["availableIpAddressCount"] = json!(util::usable_count(cidr).saturating_sub(used));
    Ok(v)
}

const SUBNET_FILTERS: &[(&str, &str)] = &[
    ("subnet-id", "subnetId"),
    ("vpc-id", "vpcId"),
    ("cidr", "cidrBlock"),
    ("cidr-block", "cidrBlock"),
    ("cidrBlock", "cidrBlock"),
    ("availability-zone", "availabilityZone"),
    ("availabilityZone", "availabilityZone"),
    ("availability-zone-id", "availabilityZoneId"),
    ("availabilityZoneId", "availabilityZoneId"),
    ("available-ip-address-count", "availableIpAddressCount"),
    ("default-for-az", "defaultForAz"),
    ("defaultForAz", "defaultForAz"),
    ("map-public-ip-on-launch", "mapPublicIpOnLaunch"),
    ("state", "state"),
    ("owner-id", "ownerId"),
    ("subnet-arn", "subnetArn"),
];

pub(crate) fn describe_subnets(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let ids = strs_any(input, &["SubnetId", "SubnetIds"]);
    let (items, next) = describe(
        tx,
        scope,
        input,
        KIND_SUBNET,
        &ids,
        SUBNET_FILTERS,
        shared::subnet_not_found,
        &|b| render_subnet(tx, scope, b),
        true,
    )?;
    Ok(with_token(json!({"subnetSet": items}), next))
}

pub(crate) fn delete_subnet(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let id = req(input, &["SubnetId"])?;
    let subnet = shared::get_subnet(tx, scope, id)?.ok_or_else(|| shared::subnet_not_found(id))?;
    let live_nat = gateways::live_nats_in_subnet(tx, scope, id)?;
    if tx.count(scope, KIND_ENI, Some(id))? > 0 || live_nat {
        return Err(dependency("subnet", id));
    }
    gateways::drop_subnet_associations(tx, scope, id)?;
    acl::drop_subnet(tx, scope, &subnet.vpc_id, id)?;
    tx.delete(scope, KIND_SUBNET, id)?;
    Ok(json!({"return": true}))
}

pub(crate) fn modify_subnet_attribute(
    tx: &Tx<'_>,
    scope: &Scope,
    input: &Input,
) -> AwsResult<Value> {
    let id = req(input, &["SubnetId"])?;
    let mut s = shared::get_subnet(tx, scope, id)?.ok_or_else(|| shared::subnet_not_found(id))?;
    let mut changed = false;
    for (member, key) in [
        ("MapPublicIpOnLaunch", "mapPublicIpOnLaunch"),
        ("AssignIpv6AddressOnCreation", "assignIpv6AddressOnCreation"),
        ("MapCustomerOwnedIpOnLaunch", "mapCustomerOwnedIpOnLaunch"),
        ("EnableDns64", "enableDns64"),
    ] {
        if let Some(b) = util::bool_member(input, member)? {
            s.rest.insert(key.into(), json!(b));
            changed = true;
        }
    }
    if !changed {
        return Err(util::no_attributes());
    }
    let vpc = s.vpc_id.clone();
    tx.put_as(scope, KIND_SUBNET, id, Some(&vpc), None, &s)?;
    Ok(json!({}))
}

// ---------------------------------------------------------------------------------------------
// Zones, regions, account attributes

const REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ca-central-1",
    "eu-central-1",
    "eu-north-1",
    "eu-south-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "me-south-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
];

pub(crate) fn describe_availability_zones(scope: &Scope, input: &Input) -> AwsResult<Value> {
    let names = strs_any(input, &["ZoneName", "ZoneNames"]);
    let zone_ids = strs_any(input, &["ZoneId", "ZoneIds"]);
    let fs = filters(input);
    let table = [
        ("zone-name", "zoneName"),
        ("zone-id", "zoneId"),
        ("region-name", "regionName"),
        ("state", "zoneState"),
        ("zone-type", "zoneType"),
        ("group-name", "groupName"),
        ("opt-in-status", "optInStatus"),
    ];
    let all = zones(&scope.region);
    for n in &names {
        if !all.iter().any(|(z, _)| z == n) {
            return Err(AwsError::bad(
                "InvalidParameterValue",
                format!("The zone '{n}' does not exist."),
            ));
        }
    }
    let mut out = Vec::new();
    for (name, id) in all {
        if (!names.is_empty() && !names.contains(&name))
            || (!zone_ids.is_empty() && !zone_ids.contains(&id))
        {
            continue;
        }
        let v = json!({
            "zoneState": "available", "optInStatus": "opt-in-not-required", "messageSet": [],
            "regionName": scope.region, "zoneName": name, "zoneId": id,
            "groupName": scope.region, "networkBorderGroup": scope.region, "zoneType": "availability-zone",
        });
        if matches(&v, &fs, &table, "tagSet")? {
            out.push(v);
        }
    }
    Ok(json!({"availabilityZoneInfo": out}))
}

pub(crate) fn describe_regions(input: &Input) -> AwsResult<Value> {
    let names = strs_any(input, &["RegionName", "RegionNames"]);
    let fs = filters(input);
    let table = [
        ("region-name", "regionName"),
        ("endpoint", "regionEndpoint"),
        ("opt-in-status", "optInStatus"),
    ];
    let mut out = Vec::new();
    for r in REGIONS {
        if !names.is_empty() && !names.iter().any(|n| n == r) {
            continue;
        }
        let v = json!({"regionName": r, "regionEndpoint": format!("ec2.{r}.amazonaws.com"), "optInStatus": "opt-in-not-required"});
        if matches(&v, &fs, &table, "tagSet")? {
            out.push(v);
        }
    }
    if let Some(n) = names.iter().find(|n| !REGIONS.contains(&n.as_str())) {
        return Err(AwsError::bad(
            "InvalidParameterValue",
            format!("Invalid region names: {n}"),
        ));
    }
    Ok(json!({"regionInfo": out}))
}

pub(crate) fn describe_account_attributes(
    tx: &Tx<'_>,
    scope: &Scope,
    input: &Input,
) -> AwsResult<Value> {
    let names = strs_any(input, &["AttributeName", "AttributeNames"]);
    let default_vpc = tx
        .list_as::<Vpc>(scope, KIND_VPC, None)?
        .into_iter()
        .find(|v| v.is_default)
        .map(|v| v.vpc_id)
        .unwrap_or_else(|| "none".into());
    let all = [
        ("supported-platforms", vec!["VPC".to_string()]),
        ("default-vpc", vec![default_vpc]),
        ("max-instances", vec!["20".into()]),
        ("vpc-max-security-groups-per-interface", vec!["5".into()]),
        ("max-elastic-ips", vec!["5".into()]),
        ("vpc-max-elastic-ips", vec!["5".into()]),
    ];
    let out: Vec<Value> = all
        .iter()
        .filter(|(n, _)| names.is_empty() || names.iter().any(|x| x == n))
        .map(|(n, vals)| json!({"attributeName": n, "attributeValueSet": vals.iter().map(|v| json!({"attributeValue": v})).collect::<Vec<_>>()}))
        .collect();
    Ok(json!({"accountAttributeSet": out}))
}

// ---------------------------------------------------------------------------------------------
// Tags

/// The store kind and EC2 resource type of a resource id, from its prefix.
fn kind_of(id: &str) -> Option<(&'static str, &'static str)> {
    let prefix = id.rsplit_once('-').map(|(p, _)| p)?;
    Some(match prefix {
        "vpc" => (KIND_VPC, "vpc"),
        "subnet" => (KIND_SUBNET, "subnet"),
        "sg" => (KIND_SG, "security-group"),
        "eni" => (KIND_ENI, "network-interface"),
        "rtb" => (KIND_RTB, "route-table"),
        "igw" => (KIND_IGW, "internet-gateway"),
        "nat" => (KIND_NAT, "natgateway"),
        "eipalloc" => (KIND_EIP, "elastic-ip"),
        "acl" => (KIND_ACL, "network-acl"),
        _ => return None,
    })
}

const TAGGABLE: &[&str] = &[
    KIND_VPC,
    KIND_SUBNET,
    KIND_SG,
    KIND_ENI,
    KIND_RTB,
    KIND_IGW,
    KIND_NAT,
    KIND_EIP,
    KIND_ACL,
];

fn resource_for_tags(
    tx: &Tx<'_>,
    scope: &Scope,
    id: &str,
) -> AwsResult<(&'static str, portico_store::Record)> {
    let not_found = || AwsError::bad("InvalidID", format!("The ID '{id}' is not valid"));
    let (kind, _) = kind_of(id).ok_or_else(not_found)?;
    let rec = tx.get(scope, kind, id)?.ok_or_else(|| {
        let (code, what) = match kind {
            KIND_VPC => ("InvalidVpcID.NotFound", "vpc ID"),
            KIND_SUBNET => ("InvalidSubnetID.NotFound", "subnet ID"),
            KIND_SG => ("InvalidGroup.NotFound", "security group"),
            KIND_ENI => ("InvalidNetworkInterfaceID.NotFound", "networkInterface ID"),
            KIND_RTB => ("InvalidRouteTableID.NotFound", "routeTable ID"),
            KIND_IGW => ("InvalidInternetGatewayID.NotFound", "internetGateway ID"),
            KIND_NAT => ("InvalidNatGatewayID.NotFound", "natGateway ID"),
            KIND_ACL => ("InvalidNetworkAclID.NotFound", "networkAcl ID"),
            _ => ("InvalidAllocationID.NotFound", "allocation ID"),
        };
        AwsError::bad(code, format!("The {what} '{id}' does not exist"))
    })?;
    Ok((kind, rec))
}

/// Replaces the tagSet of the resource `id` names with what `f` makes of it.
fn update_tag_set(
    tx: &Tx<'_>,
    scope: &Scope,
    id: &str,
    f: impl FnOnce(Vec<Value>) -> AwsResult<Vec<Value>>,
) -> AwsResult<()> {
    let (kind, mut rec) = resource_for_tags(tx, scope, id)?;
    let set = rec
        .body
        .get("tagSet")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    rec.body["tagSet"] = Value::Array(f(set)?);
    tx.put(
        scope,
        kind,
        id,
        rec.parent.as_deref(),
        rec.name.as_deref(),
        &rec.body,
    )?;
    Ok(())
}

pub(crate) fn create_tags(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let resources = strs_any(input, &["ResourceId", "Resources"]);
    if resources.is_empty() {
        return Err(util::missing("ResourceId"));
    }
    let tags = util::tag_list(&list_any(input, &["Tag", "Tags"]));
    for t in &tags {
        let k = t.get("key").and_then(Value::as_str).unwrap_or_default();
        let v = t.get("value").and_then(Value::as_str).unwrap_or_default();
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(AwsError::bad(
                "InvalidParameterValue",
                format!("Tag keys must be 1-128 characters and values at most 256 characters (key '{k}')"),
            ));
        }
        if crate::services::tags::refused(k) {
            return Err(AwsError::bad(
                "InvalidParameterValue",
                format!("Value ({k}) for parameter key is invalid. Tag keys starting with 'aws:' are reserved for internal use"),
            ));
        }
    }
    for id in &resources {
        update_tag_set(tx, scope, id, |mut set| {
            util::merge_tags(&mut set, &tags);
            if crate::services::tags::counted(&set) > 50 {
                return Err(AwsError::bad(
                    "TagLimitExceeded",
                    "The maximum number of Tags for a resource has been reached.",
                ));
            }
            Ok(set)
        })?;
    }
    Ok(json!({"return": true}))
}

pub(crate) fn delete_tags(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let resources = strs_any(input, &["ResourceId", "Resources"]);
    if resources.is_empty() {
        return Err(util::missing("ResourceId"));
    }
    let given = list_any(input, &["Tag", "Tags"]);
    if let Some(k) = given
        .iter()
        .filter_map(|g| g.str("Key"))
        .find(|k| crate::services::tags::refused(k))
    {
        return Err(AwsError::bad(
            "InvalidParameterValue",
            format!("Value ({k}) for parameter key is invalid. Tag keys starting with 'aws:' are reserved for internal use"),
        ));
    }
    for id in &resources {
        update_tag_set(tx, scope, id, |set| {
            if given.is_empty() {
                // Every tag but AWS's own.
                return Ok(set
                    .into_iter()
                    .filter(|t| {
                        t.get("key")
                            .and_then(Value::as_str)
                            .is_some_and(crate::services::tags::refused)
                    })
                    .collect());
            }
            Ok(set
                .into_iter()
                .filter(|t| {
                    !given.iter().any(|g| {
                        g.str("Key") == t.get("key").and_then(Value::as_str)
                            && g.str("Value")
                                .is_none_or(|v| Some(v) == t.get("value").and_then(Value::as_str))
                    })
                })
                .collect())
        })?;
    }
    Ok(json!({"return": true}))
}

pub(crate) fn describe_tags(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let fs = filters(input);
    let table = [
        ("key", "key"),
        ("value", "value"),
        ("resource-id", "resourceId"),
        ("resource-type", "resourceType"),
    ];
    let mut out = Vec::new();
    for kind in TAGGABLE {
        for r in tx.list(scope, kind, None)? {
            let rt = kind_of(&r.id).map(|(_, t)| t).unwrap_or_default();
            for t in r
                .body
                .get("tagSet")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let v = json!({"resourceId": r.id, "resourceType": rt, "key": t.get("key"), "value": t.get("value")});
                if matches(&v, &fs, &table, "tagSet")? {
                    out.push(v);
                }
            }
        }
    }
    let (items, next) = util::page(input, out)?;
    Ok(with_token(json!({"tagSet": items}), next))
}

// ---------------------------------------------------------------------------------------------
// Network interfaces

pub(crate) fn eni_not_found(id: &str) -> AwsError {
    AwsError::bad(
        "InvalidNetworkInterfaceID.NotFound",
        format!("The networkInterface ID '{id}' does not exist"),
    )
}

pub(crate) fn render_eni(tx: &Tx<'_>, scope: &Scope, body: &Value) -> AwsResult<Value> {
    let eni: NetworkInterface = serde_json::from_value(body.clone()).map_err(AwsError::internal)?;
    let mut groups = Vec::new();
    for g in &eni.group_ids {
        let name = tx
            .get_as::<SecurityGroup>(scope, KIND_SG, g)?
            .map(|s| s.group_name)
            .unwrap_or_default();
        groups.push(json!({"groupId": g, "groupName": name}));
    }
    let managed = super::eni::requester_managed(&eni, scope);
    let ip = &eni.private_ip_address;
    let dns = format!(
        "ip-{}.{}",
        ip.replace('.', "-"),
        if scope.region == "us-east-1" {
            "ec2.internal".to_string()
        } else {
            format!("{}.compute.internal", scope.region)
        }
    );
    let mut v = json!({
        "networkInterfaceId": eni.network_interface_id,
        "subnetId": eni.subnet_id,
        "vpcId": eni.vpc_id,
        "availabilityZone": eni.availability_zone,
        "description": eni.description,
        "ownerId": scope.account,
        "requesterId": eni.requester_id,
        "requesterManaged": managed,
        "status": if eni.status.is_empty() { "in-use".to_string() } else { eni.status.clone() },
        "macAddress": mac_of(&eni.network_interface_id),
        "privateIpAddress": ip,
        "privateDnsName": dns,
        "sourceDestCheck": eni.rest.get("sourceDestCheck").and_then(Value::as_bool).unwrap_or(true),
        "groupSet": groups,
        "ipv6AddressesSet": [],
        "interfaceType": eni.interface_type,
        "privateIpAddressesSet": [{"privateIpAddress": ip, "privateDnsName": dns, "primary": true}],
        "tagSet": eni.rest.get("tagSet").cloned().unwrap_or(json!([])),
    });
    if let Some(a) = eni.rest.get("attachment") {
        v["attachment"] = a.clone();
    }
    if let Some(a) = eni.rest.get("association") {
        v["association"] = a.clone();
    }
    Ok(v)
}

fn mac_of(id: &str) -> String {
    let hex: Vec<char> = id.chars().rev().take(10).collect();
    let mut parts = vec!["02".to_string()];
    for pair in hex.chunks(2) {
        parts.push(pair.iter().collect());
    }
    parts.join(":")
}

const ENI_FILTERS: &[(&str, &str)] = &[
    ("network-interface-id", "networkInterfaceId"),
    ("subnet-id", "subnetId"),
    ("vpc-id", "vpcId"),
    ("availability-zone", "availabilityZone"),
    ("description", "description"),
    ("status", "status"),
    ("interface-type", "interfaceType"),
    ("requester-id", "requesterId"),
    ("requester-managed", "requesterManaged"),
    ("owner-id", "ownerId"),
    ("group-id", "groupSet.groupId"),
    ("group-name", "groupSet.groupName"),
    ("private-ip-address", "privateIpAddress"),
    (
        "addresses.private-ip-address",
        "privateIpAddressesSet.privateIpAddress",
    ),
    ("private-dns-name", "privateDnsName"),
    ("mac-address", "macAddress"),
    ("attachment.instance-id", "attachment.instanceId"),
    ("attachment.status", "attachment.status"),
    ("association.public-ip", "association.publicIp"),
];

pub(crate) fn describe_network_interfaces(
    tx: &Tx<'_>,
    scope: &Scope,
    input: &Input,
) -> AwsResult<Value> {
    let ids = strs_any(input, &["NetworkInterfaceId", "NetworkInterfaceIds"]);
    let (items, next) = describe(
        tx,
        scope,
        input,
        KIND_ENI,
        &ids,
        ENI_FILTERS,
        eni_not_found,
        &|b| render_eni(tx, scope, b),
        true,
    )?;
    Ok(with_token(json!({"networkInterfaceSet": items}), next))
}

pub(crate) fn create_network_interface(
    tx: &Tx<'_>,
    scope: &Scope,
    input: &Input,
) -> AwsResult<Value> {
    let subnet = req(input, &["SubnetId"])?;
    let groups = strs_any(input, &["SecurityGroupId", "Groups"]);
    let groups = if groups.is_empty() {
        let s = shared::get_subnet(tx, scope, subnet)?
            .ok_or_else(|| shared::subnet_not_found(subnet))?;
        let vpc = load_vpc(tx, scope, &s.vpc_id)?;
        vpc.rest
            .get("_defaultGroupId")
            .and_then(Value::as_str)
            .map(|g| vec![g.to_string()])
            .unwrap_or_default()
    } else {
        groups
    };
    let fixed = match str_any(input, &["PrivateIpAddress"]) {
        Some(ip) => Some(
            ip.parse()
                .map_err(|_| util::invalid_value(ip, "privateIpAddress"))?,
        ),
        None => None,
    };
    let mut eni = shared::create_eni(
        tx,
        scope,
        subnet,
        &groups,
        input.str("Description").unwrap_or_default(),
        input.str("InterfaceType").unwrap_or("interface"),
        &scope.account,
        fixed,
    )?;
    let tags = spec_tags(input, "network-interface")?;
    eni.status = "available".into();
    eni.rest.insert("tagSet".into(), Value::Array(tags));
    tx.put_as(
        scope,
        KIND_ENI,
        &eni.network_interface_id,
        Some(subnet),
        None,
        &eni,
    )?;
    let body = serde_json::to_value(&eni).map_err(AwsError::internal)?;
    Ok(json!({"networkInterface": render_eni(tx, scope, &body)?}))
}

pub(crate) fn delete_network_interface(
    tx: &Tx<'_>,
    scope: &Scope,
    input: &Input,
) -> AwsResult<Value> {
    let id = req(input, &["NetworkInterfaceId"])?;
    let eni = shared::get_eni(tx, scope, id)?.ok_or_else(|| eni_not_found(id))?;
    if eni.status == "in-use" {
        return Err(AwsError::bad(
            "InvalidNetworkInterface.InUse",
            format!("The network interface '{id}' is currently in use."),
        ));
    }
    shared::delete_eni(tx, scope, id)?;
    Ok(json!({"return": true}))
}
