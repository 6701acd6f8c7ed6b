//! EC2 (ec2Query): VPCs, subnets, security groups, route tables, internet and NAT gateways,
//! Elastic IPs, network interfaces, tags, zones and regions. Unknown or not-yet-built operations
//! answer the protocol's unknown-operation error, never a fake success.
//!
//! Records are stored in EC2's own response shape (camelCase element names, as the ec2Query
//! encoder renders them); members whose names start with `_` are Portico's and never rendered.
//! Every write is one transaction, so a rejected call changes nothing.

mod acl;
mod eni;
mod gateways;
mod sg;
pub mod shared;
#[cfg(test)]
mod snapshots;
mod util;
mod vpc;

use crate::Ctx;
use portico_core::{AwsResult, Input, Service};
use portico_store::{Scope, Tx};
use serde_json::Value;

/// Store kinds owned by this module beyond the shared ones (all scoped to account and region).
pub(crate) const KIND_RTB: &str = "ec2.rtb";
pub(crate) const KIND_IGW: &str = "ec2.igw";
pub(crate) const KIND_NAT: &str = "ec2.nat";
pub(crate) const KIND_EIP: &str = "ec2.eip";
pub(crate) const KIND_ACL: &str = "ec2.acl";

type Op = fn(&Tx<'_>, &Scope, &Input) -> AwsResult<Value>;

/// (operation, handler, writes?)
fn lookup(op: &str) -> Option<(Op, bool)> {
    Some(match op {
        "CreateVpc" => (vpc::create_vpc, true),
        "CreateDefaultVpc" => (vpc::create_default_vpc, true),
        "DescribeVpcs" => (vpc::describe_vpcs, false),
        "DeleteVpc" => (vpc::delete_vpc, true),
        "ModifyVpcAttribute" => (vpc::modify_vpc_attribute, true),
        "DescribeVpcAttribute" => (vpc::describe_vpc_attribute, false),
        "AssociateVpcCidrBlock" => (vpc::associate_vpc_cidr_block, true),
        "DisassociateVpcCidrBlock" => (vpc::disassociate_vpc_cidr_block, true),
        "CreateSubnet" => (vpc::create_subnet, true),
        "DescribeSubnets" => (vpc::describe_subnets, false),
        "DeleteSubnet" => (vpc::delete_subnet, true),
        "ModifySubnetAttribute" => (vpc::modify_subnet_attribute, true),
        "DescribeAvailabilityZones" => (|_, s, i| vpc::describe_availability_zones(s, i), false),
        "DescribeRegions" => (|_, _, i| vpc::describe_regions(i), false),
        "DescribeAccountAttributes" => (vpc::describe_account_attributes, false),
        "CreateTags" => (vpc::create_tags, true),
        "DeleteTags" => (vpc::delete_tags, true),
        "DescribeTags" => (vpc::describe_tags, false),
        "DescribeNetworkInterfaces" => (vpc::describe_network_interfaces, false),
        "CreateNetworkInterface" => (vpc::create_network_interface, true),
        "DeleteNetworkInterface" => (vpc::delete_network_interface, true),
        "ModifyNetworkInterfaceAttribute" => (eni::modify_attribute, true),
        "DescribeNetworkInterfaceAttribute" => (eni::describe_attribute, false),
        "CreateSecurityGroup" => (sg::create_security_group, true),
        "DescribeSecurityGroups" => (sg::describe_security_groups, false),
        "DeleteSecurityGroup" => (sg::delete_security_group, true),
        "AuthorizeSecurityGroupIngress" => (|t, s, i| sg::authorize(t, s, i, false), true),
        "AuthorizeSecurityGroupEgress" => (|t, s, i| sg::authorize(t, s, i, true), true),
        "RevokeSecurityGroupIngress" => (|t, s, i| sg::revoke(t, s, i, false), true),
        "RevokeSecurityGroupEgress" => (|t, s, i| sg::revoke(t, s, i, true), true),
        "DescribeSecurityGroupRules" => (sg::describe_security_group_rules, false),
        "ModifySecurityGroupRules" => (sg::modify_security_group_rules, true),
        "UpdateSecurityGroupRuleDescriptionsIngress" => {
            (|t, s, i| sg::update_descriptions(t, s, i, false), true)
        }
        "UpdateSecurityGroupRuleDescriptionsEgress" => {
            (|t, s, i| sg::update_descriptions(t, s, i, true), true)
        }
        "CreateRouteTable" => (gateways::create_route_table, true),
        "DescribeRouteTables" => (gateways::describe_route_tables, false),
        "DeleteRouteTable" => (gateways::delete_route_table, true),
        "CreateRoute" => (gateways::create_route, true),
        "ReplaceRoute" => (gateways::replace_route, true),
        "DeleteRoute" => (gateways::delete_route, true),
        "AssociateRouteTable" => (gateways::associate_route_table, true),
        "DisassociateRouteTable" => (gateways::disassociate_route_table, true),
        "CreateInternetGateway" => (gateways::create_internet_gateway, true),
        "AttachInternetGateway" => (gateways::attach_internet_gateway, true),
        "DetachInternetGateway" => (gateways::detach_internet_gateway, true),
        "DeleteInternetGateway" => (gateways::delete_internet_gateway, true),
        "DescribeInternetGateways" => (gateways::describe_internet_gateways, false),
        "AllocateAddress" => (gateways::allocate_address, true),
        "ReleaseAddress" => (gateways::release_address, true),
        "AssociateAddress" => (gateways::associate_address, true),
        "DisassociateAddress" => (gateways::disassociate_address, true),
        "DescribeAddresses" => (gateways::describe_addresses, false),
        "CreateNatGateway" => (gateways::create_nat_gateway, true),
        "DeleteNatGateway" => (gateways::delete_nat_gateway, true),
        "DescribeNatGateways" => (gateways::describe_nat_gateways, false),
        "ReplaceRouteTableAssociation" => (gateways::replace_route_table_association, true),
        "CreateNetworkAcl" => (acl::create_network_acl, true),
        "DeleteNetworkAcl" => (acl::delete_network_acl, true),
        "CreateNetworkAclEntry" => (acl::create_network_acl_entry, true),
        "ReplaceNetworkAclEntry" => (acl::replace_network_acl_entry, true),
        "DeleteNetworkAclEntry" => (acl::delete_network_acl_entry, true),
        "ReplaceNetworkAclAssociation" => (acl::replace_network_acl_association, true),
        "DescribeNetworkAcls" => (acl::describe_network_acls, false),
        _ => return None,
    })
}

pub async fn dispatch(ctx: &Ctx<'_>, op: &str, input: Input) -> AwsResult<Value> {
    let Some((f, writes)) = lookup(op) else {
        return Err(Service::Ec2.unknown_operation(op));
    };
    if input.bool("DryRun").ok().flatten() == Some(true) {
        return Err(portico_core::AwsError::new(
            412,
            "DryRunOperation",
            "Request would have succeeded, but DryRun flag is set.",
        ));
    }
    let scope = &ctx.scope;
    // The default VPC appears the first time an account touches EC2 in a region.
    if !ctx.store().read(|tx| vpc::has_default_marker(tx, scope))? {
        ctx.store()
            .write(|tx| shared::ensure_default_vpc(tx, scope))?;
    }
    if writes {
        ctx.store().write(|tx| f(tx, scope, &input))
    } else {
        ctx.store().read(|tx| f(tx, scope, &input))
    }
}
