//! The EC2 records other services stand on, and the functions they use: look up VPCs, subnets
//! and security groups, and create or delete the network interfaces (ENIs) that load balancers,
//! tasks and VPC links get. Every function runs inside the caller's transaction.
//!
//! Store kinds (all scoped to account and region):
//! - `ec2.vpc`    id = vpc-…,    body [`Vpc`]
//! - `ec2.subnet` id = subnet-…, parent = vpc id, body [`Subnet`]
//! - `ec2.sg`     id = sg-…,     parent = vpc id, body [`SecurityGroup`]
//! - `ec2.eni`    id = eni-…,    parent = subnet id, body [`NetworkInterface`]

use portico_core::{ids, AwsError, AwsResult};
use portico_store::{Scope, Tx};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::net::Ipv4Addr;

pub const KIND_VPC: &str = "ec2.vpc";
pub const KIND_SUBNET: &str = "ec2.subnet";
pub const KIND_SG: &str = "ec2.sg";
pub const KIND_ENI: &str = "ec2.eni";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Vpc {
    pub vpc_id: String,
    pub cidr_block: String,
    #[serde(default)]
    pub is_default: bool,
    /// Everything else EC2 returns (state, dhcpOptionsId, tagSet, ...), owned by the EC2 module.
    #[serde(default, flatten)]
    pub rest: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Subnet {
    pub subnet_id: String,
    pub vpc_id: String,
    pub cidr_block: String,
    pub availability_zone: String,
    #[serde(default, flatten)]
    pub rest: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroup {
    pub group_id: String,
    pub group_name: String,
    pub vpc_id: String,
    #[serde(default, flatten)]
    pub rest: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkInterface {
    pub network_interface_id: String,
    pub subnet_id: String,
    pub vpc_id: String,
    pub availability_zone: String,
    pub private_ip_address: String,
    pub description: String,
    /// `interface`, `network_load_balancer`, `vpc_endpoint`, ... as EC2 reports it.
    pub interface_type: String,
    /// Who manages it (`amazon-elb`, `amazon-aws`, the ECS task ARN, ...), EC2's `requesterId`.
    pub requester_id: String,
    #[serde(default)]
    pub group_ids: Vec<String>,
    #[serde(default)]
    pub status: String,
    #[serde(default, flatten)]
    pub rest: serde_json::Map<String, Value>,
}

pub fn get_vpc(tx: &Tx<'_>, scope: &Scope, id: &str) -> AwsResult<Option<Vpc>> {
    Ok(tx.get_as(scope, KIND_VPC, id)?)
}

pub fn get_subnet(tx: &Tx<'_>, scope: &Scope, id: &str) -> AwsResult<Option<Subnet>> {
    Ok(tx.get_as(scope, KIND_SUBNET, id)?)
}

pub fn get_security_group(
    tx: &Tx<'_>,
    scope: &Scope,
    id: &str,
) -> AwsResult<Option<SecurityGroup>> {
    Ok(tx.get_as(scope, KIND_SG, id)?)
}

pub fn get_eni(tx: &Tx<'_>, scope: &Scope, id: &str) -> AwsResult<Option<NetworkInterface>> {
    Ok(tx.get_as(scope, KIND_ENI, id)?)
}

/// EC2's not-found error for a subnet id.
pub fn subnet_not_found(id: &str) -> AwsError {
    AwsError::bad(
        "InvalidSubnetID.NotFound",
        format!("The subnet ID '{id}' does not exist"),
    )
}

pub fn group_not_found(id: &str) -> AwsError {
    AwsError::bad(
        "InvalidGroup.NotFound",
        format!("The security group '{id}' does not exist"),
    )
}

/// The usable host range of a subnet: AWS reserves the first four addresses and the last one.
pub fn usable_range(cidr: &str) -> Option<(u32, u32)> {
    let net: ipnet::Ipv4Net = cidr.parse().ok()?;
    let first = u32::from(net.network()).checked_add(4)?;
    let last = u32::from(net.broadcast()).checked_sub(1)?;
    (first <= last).then_some((first, last))
}

/// Creates an ENI in `subnet_id` with the lowest free private address.
#[allow(
    clippy::too_many_arguments,
    reason = "mirrors CreateNetworkInterface's members"
)]
pub fn create_eni(
    tx: &Tx<'_>,
    scope: &Scope,
    subnet_id: &str,
    group_ids: &[String],
    description: &str,
    interface_type: &str,
    requester_id: &str,
    fixed_ip: Option<Ipv4Addr>,
) -> AwsResult<NetworkInterface> {
    let subnet = get_subnet(tx, scope, subnet_id)?.ok_or_else(|| subnet_not_found(subnet_id))?;
    for g in group_ids {
        if get_security_group(tx, scope, g)?.is_none() {
            return Err(group_not_found(g));
        }
    }
    let used: std::collections::HashSet<u32> = tx
        .list_as::<NetworkInterface>(scope, KIND_ENI, Some(subnet_id))?
        .iter()
        .filter_map(|e| e.private_ip_address.parse::<Ipv4Addr>().ok().map(u32::from))
        .collect();
    let (first, last) = usable_range(&subnet.cidr_block)
        .ok_or_else(|| AwsError::internal(format!("subnet {subnet_id} has no usable range")))?;
    let ip = match fixed_ip {
        Some(ip) => {
            let n = u32::from(ip);
            if n < first || n > last {
                return Err(AwsError::bad(
                    "InvalidParameterValue",
                    format!("Address {ip} does not fall within the subnet's address range"),
                ));
            }
            if used.contains(&n) {
                return Err(AwsError::bad(
                    "InvalidIPAddress.InUse",
                    format!("The specified address {ip} is already in use."),
                ));
            }
            n
        }
        None => (first..=last).find(|n| !used.contains(n)).ok_or_else(|| {
            AwsError::bad(
                "InsufficientFreeAddressesInSubnet",
                format!("The specified subnet {subnet_id} does not have enough free addresses to satisfy the request."),
            )
        })?,
    };
    let eni = NetworkInterface {
        network_interface_id: ids::ec2("eni"),
        subnet_id: subnet.subnet_id.clone(),
        vpc_id: subnet.vpc_id.clone(),
        availability_zone: subnet.availability_zone.clone(),
        private_ip_address: Ipv4Addr::from(ip).to_string(),
        description: description.to_string(),
        interface_type: interface_type.to_string(),
        requester_id: requester_id.to_string(),
        group_ids: group_ids.to_vec(),
        status: "in-use".into(),
        rest: Default::default(),
    };
    tx.put_as(
        scope,
        KIND_ENI,
        &eni.network_interface_id,
        Some(subnet_id),
        None,
        &eni,
    )?;
    Ok(eni)
}

/// Deletes an ENI; returns whether it existed.
pub fn delete_eni(tx: &Tx<'_>, scope: &Scope, eni_id: &str) -> AwsResult<bool> {
    Ok(tx.delete(scope, KIND_ENI, eni_id)?)
}

/// The default VPC of the scope, made the first time anyone needs it (with a default subnet in
/// each zone, the default security group, an attached internet gateway and a main route table
/// routing 0.0.0.0/0 to it), as AWS gives every account. `None` once the user deleted it (AWS
/// does not bring it back).
pub fn ensure_default_vpc(tx: &Tx<'_>, scope: &Scope) -> AwsResult<Option<Vpc>> {
    super::vpc::ensure_default_vpc(tx, scope)
}

/// The default subnets (one per zone) of the scope's default VPC, making it if needed.
pub fn default_subnets(tx: &Tx<'_>, scope: &Scope) -> AwsResult<Vec<Subnet>> {
    let Some(vpc) = ensure_default_vpc(tx, scope)? else {
        return Ok(Vec::new());
    };
    Ok(tx
        .list_as::<Subnet>(scope, KIND_SUBNET, Some(&vpc.vpc_id))?
        .into_iter()
        .filter(|s| s.rest.get("defaultForAz").and_then(Value::as_bool) == Some(true))
        .collect())
}

/// The id of a VPC's `default` security group.
pub fn default_security_group_id(vpc: &Vpc) -> Option<&str> {
    vpc.rest.get("_defaultGroupId").and_then(Value::as_str)
}

/// The id of a VPC's default network ACL.
pub fn default_network_acl_id(vpc: &Vpc) -> Option<&str> {
    vpc.rest.get("_defaultNetworkAclId").and_then(Value::as_str)
}

/// The id of a VPC's main route table.
pub fn main_route_table_id(vpc: &Vpc) -> Option<&str> {
    vpc.rest.get("_mainRouteTableId").and_then(Value::as_str)
}

/// The internet gateway attached to a VPC, if any (an internet-facing load balancer needs one).
pub fn internet_gateway_of_vpc(
    tx: &Tx<'_>,
    scope: &Scope,
    vpc_id: &str,
) -> AwsResult<Option<String>> {
    super::gateways::igw_of_vpc(tx, scope, vpc_id)
}

/// Whether a subnet is public: the route table it uses (its explicit association, else its
/// VPC's main table) sends `0.0.0.0/0` to an attached internet gateway.
pub fn subnet_is_public(tx: &Tx<'_>, scope: &Scope, subnet_id: &str) -> AwsResult<bool> {
    let subnet = get_subnet(tx, scope, subnet_id)?.ok_or_else(|| subnet_not_found(subnet_id))?;
    super::gateways::subnet_is_public(tx, scope, &subnet)
}

/// EC2's not-found error for a VPC id.
pub fn vpc_not_found(id: &str) -> AwsError {
    super::vpc::vpc_not_found(id)
}

/// EC2's not-found error for a network interface id.
pub fn eni_not_found(id: &str) -> AwsError {
    super::vpc::eni_not_found(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usable_range_reserves_five() {
        let (a, b) = usable_range("10.0.0.0/24").unwrap();
        assert_eq!(Ipv4Addr::from(a), Ipv4Addr::new(10, 0, 0, 4));
        assert_eq!(Ipv4Addr::from(b), Ipv4Addr::new(10, 0, 0, 254));
        assert_eq!(b - a + 1, 251);
        assert!(usable_range("10.0.0.0/30").is_none());
    }

    #[test]
    fn eni_allocation_lowest_free() {
        let store = portico_store::Store::in_memory().unwrap();
        let scope = Scope::new("000000000000", "us-east-1");
        store
            .write(|tx| {
                let s = Subnet {
                    subnet_id: "subnet-1".into(),
                    vpc_id: "vpc-1".into(),
                    cidr_block: "10.0.1.0/28".into(),
                    availability_zone: "us-east-1a".into(),
                    rest: Default::default(),
                };
                tx.put_as(&scope, KIND_SUBNET, "subnet-1", Some("vpc-1"), None, &s)?;
                let a = create_eni(tx, &scope, "subnet-1", &[], "a", "interface", "me", None)?;
                let b = create_eni(tx, &scope, "subnet-1", &[], "b", "interface", "me", None)?;
                assert_eq!(a.private_ip_address, "10.0.1.4");
                assert_eq!(b.private_ip_address, "10.0.1.5");
                delete_eni(tx, &scope, &a.network_interface_id)?;
                let c = create_eni(tx, &scope, "subnet-1", &[], "c", "interface", "me", None)?;
                assert_eq!(c.private_ip_address, "10.0.1.4");
                let e = create_eni(tx, &scope, "subnet-nope", &[], "c", "interface", "me", None)
                    .unwrap_err();
                assert_eq!(e.code, "InvalidSubnetID.NotFound");
                Ok(())
            })
            .unwrap();
    }
}
