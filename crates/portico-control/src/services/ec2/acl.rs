//! Network ACLs: every VPC's default ACL (allow all, then the catch-all deny), custom ACLs with
//! numbered entries, and subnet associations (every subnet is associated with exactly one ACL,
//! the VPC's default one until replaced). Stored and described; the data plane does not filter
//! traffic by them.

use super::shared::Vpc;
use super::util::{self, public, req, spec_tags, strs_any};
use super::vpc::{self, load_vpc};
use super::KIND_ACL;
use portico_core::{ids, AwsError, AwsResult, Input};
use portico_store::{Scope, Tx};
use serde_json::{json, Value};

fn acl_not_found(id: &str) -> AwsError {
    AwsError::bad(
        "InvalidNetworkAclID.NotFound",
        format!("The networkAcl ID '{id}' does not exist"),
    )
}

fn entry(rule: i64, egress: bool, action: &str) -> Value {
    json!({"ruleNumber": rule, "protocol": "-1", "ruleAction": action, "egress": egress, "cidrBlock": "0.0.0.0/0"})
}

/// Creates an ACL record; a default ACL allows everything before the catch-all deny.
pub(crate) fn create_acl_record(
    tx: &Tx<'_>,
    scope: &Scope,
    vpc_id: &str,
    is_default: bool,
    tags: Vec<Value>,
) -> AwsResult<String> {
    let id = ids::ec2("acl");
    let mut entries = Vec::new();
    for egress in [true, false] {
        if is_default {
            entries.push(entry(100, egress, "allow"));
        }
        entries.push(entry(32767, egress, "deny"));
    }
    let body = json!({
        "networkAclId": id, "vpcId": vpc_id, "default": is_default, "ownerId": scope.account,
        "entrySet": entries, "associationSet": [], "tagSet": tags,
    });
    tx.put(scope, KIND_ACL, &id, Some(vpc_id), None, &body)?;
    Ok(id)
}

fn load(tx: &Tx<'_>, scope: &Scope, id: &str) -> AwsResult<Value> {
    Ok(tx
        .get(scope, KIND_ACL, id)?
        .ok_or_else(|| acl_not_found(id))?
        .body)
}

fn save(tx: &Tx<'_>, scope: &Scope, body: &Value) -> AwsResult<()> {
    let id = body["networkAclId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let vpc = body["vpcId"].as_str().unwrap_or_default().to_string();
    tx.put(scope, KIND_ACL, &id, Some(&vpc), None, body)?;
    Ok(())
}

/// Associates a new subnet with its VPC's default ACL (when the VPC has one).
pub(crate) fn associate_default(
    tx: &Tx<'_>,
    scope: &Scope,
    vpc: &Vpc,
    subnet_id: &str,
) -> AwsResult<()> {
    let Some(acl_id) = vpc.rest.get("_defaultNetworkAclId").and_then(Value::as_str) else {
        return Ok(());
    };
    let Some(rec) = tx.get(scope, KIND_ACL, acl_id)? else {
        return Ok(());
    };
    let mut body = rec.body;
    if let Some(a) = body["associationSet"].as_array_mut() {
        a.push(json!({"networkAclAssociationId": ids::ec2("aclassoc"), "networkAclId": acl_id, "subnetId": subnet_id}));
    }
    save(tx, scope, &body)
}

/// Drops a deleted subnet's association.
pub(crate) fn drop_subnet(
    tx: &Tx<'_>,
    scope: &Scope,
    vpc_id: &str,
    subnet_id: &str,
) -> AwsResult<()> {
    for r in tx.list(scope, KIND_ACL, Some(vpc_id))? {
        let mut body = r.body;
        let Some(a) = body["associationSet"].as_array_mut() else {
            continue;
        };
        let before = a.len();
        a.retain(|x| x["subnetId"].as_str() != Some(subnet_id));
        if a.len() != before {
            save(tx, scope, &body)?;
        }
    }
    Ok(())
}

/// Whether a VPC has ACLs other than its default one.
pub(crate) fn has_custom(tx: &Tx<'_>, scope: &Scope, vpc_id: &str) -> AwsResult<bool> {
    Ok(tx
        .list(scope, KIND_ACL, Some(vpc_id))?
        .iter()
        .any(|r| r.body["default"] != json!(true)))
}

/// Deletes a VPC's default ACL (the VPC is going).
pub(crate) fn drop_default(tx: &Tx<'_>, scope: &Scope, vpc_id: &str) -> AwsResult<()> {
    for r in tx.list(scope, KIND_ACL, Some(vpc_id))? {
        tx.delete(scope, KIND_ACL, &r.id)?;
    }
    Ok(())
}

pub(crate) fn create_network_acl(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let vpc_id = req(input, &["VpcId"])?;
    load_vpc(tx, scope, vpc_id)?;
    let id = create_acl_record(tx, scope, vpc_id, false, spec_tags(input, "network-acl")?)?;
    Ok(json!({"networkAcl": public(&load(tx, scope, &id)?)}))
}

pub(crate) fn delete_network_acl(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let id = req(input, &["NetworkAclId"])?;
    let body = load(tx, scope, id)?;
    if body["default"] == json!(true) {
        return Err(AwsError::bad(
            "InvalidParameterValue",
            format!("cannot delete default network ACL {id}"),
        ));
    }
    if body["associationSet"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
    {
        return Err(vpc::dependency("networkAcl", id));
    }
    tx.delete(scope, KIND_ACL, id)?;
    Ok(json!({"return": true}))
}

/// The entry a Create/Replace/DeleteNetworkAclEntry names, checked.
fn entry_from(input: &Input, full: bool) -> AwsResult<(i64, bool, Value)> {
    let rule = util::int_member(input, "RuleNumber")?.ok_or_else(|| util::missing("RuleNumber"))?;
    if !(1..=32766).contains(&rule) {
        return Err(AwsError::bad(
            "InvalidParameterValue",
            format!("Invalid value '{rule}' for ruleNumber. Must be between 1 and 32766."),
        ));
    }
    let egress = util::bool_member(input, "Egress")?.ok_or_else(|| util::missing("Egress"))?;
    if !full {
        return Ok((rule, egress, Value::Null));
    }
    let proto = req(input, &["Protocol"])?;
    let proto = match proto.to_ascii_lowercase().as_str() {
        "tcp" | "6" => "6".to_string(),
        "udp" | "17" => "17".to_string(),
        "icmp" | "1" => "1".to_string(),
        "-1" | "all" => "-1".to_string(),
        n if n.parse::<u16>().is_ok_and(|v| v <= 255) => n.to_string(),
        other => {
            return Err(AwsError::bad(
                "InvalidParameterValue",
                format!("Invalid value '{other}' for protocol."),
            ))
        }
    };
    let action = req(input, &["RuleAction"])?;
    if action != "allow" && action != "deny" {
        return Err(util::invalid_value(action, "ruleAction"));
    }
    let cidr = req(input, &["CidrBlock"])?;
    let net: ipnet::Ipv4Net = cidr.parse().map_err(|_| {
        AwsError::bad(
            "InvalidParameterValue",
            format!("Value ({cidr}) for parameter cidrBlock is invalid. This is not a valid CIDR block."),
        )
    })?;
    let mut e = json!({"ruleNumber": rule, "protocol": proto, "ruleAction": action, "egress": egress, "cidrBlock": net.trunc().to_string()});
    if proto == "6" || proto == "17" {
        let pr = input.sub("PortRange");
        let (from, to) = (util::int_member(&pr, "From")?, util::int_member(&pr, "To")?);
        let (Some(from), Some(to)) = (from, to) else {
            return Err(AwsError::bad(
                "InvalidParameterValue",
                "TCP/UDP entries require a port range (PortRange.From and PortRange.To).",
            ));
        };
        if !(0..=65535).contains(&from) || !(0..=65535).contains(&to) || from > to {
            return Err(AwsError::bad(
                "InvalidParameterValue",
                format!("Invalid port range {from}-{to}."),
            ));
        }
        e["portRange"] = json!({"from": from, "to": to});
    }
    if proto == "1" {
        let icmp = if input.has("Icmp") {
            input.sub("Icmp")
        } else {
            input.sub("IcmpTypeCode")
        };
        e["icmpTypeCode"] = json!({
            "type": util::int_member(&icmp, "Type")?.unwrap_or(-1),
            "code": util::int_member(&icmp, "Code")?.unwrap_or(-1),
        });
    }
    Ok((rule, egress, e))
}

fn entry_pos(body: &Value, rule: i64, egress: bool) -> Option<usize> {
    body["entrySet"].as_array()?.iter().position(|e| {
        e["ruleNumber"].as_i64() == Some(rule) && e["egress"].as_bool() == Some(egress)
    })
}

pub(crate) fn create_network_acl_entry(
    tx: &Tx<'_>,
    scope: &Scope,
    input: &Input,
) -> AwsResult<Value> {
    let id = req(input, &["NetworkAclId"])?;
    let mut body = load(tx, scope, id)?;
    let (rule, egress, e) = entry_from(input, true)?;
    if entry_pos(&body, rule, egress).is_some() {
        return Err(AwsError::bad(
            "NetworkAclEntryAlreadyExists",
            format!("The network acl entry identified by {rule} already exists."),
        ));
    }
    if let Some(a) = body["entrySet"].as_array_mut() {
        a.push(e);
        a.sort_by_key(|x| {
            (
                x["egress"].as_bool() != Some(true),
                x["ruleNumber"].as_i64().unwrap_or(0),
            )
        });
    }
    save(tx, scope, &body)?;
    Ok(json!({"return": true}))
}

pub(crate) fn replace_network_acl_entry(
    tx: &Tx<'_>,
    scope: &Scope,
    input: &Input,
) -> AwsResult<Value> {
    let id = req(input, &["NetworkAclId"])?;
    let mut body = load(tx, scope, id)?;
    let (rule, egress, e) = entry_from(input, true)?;
    let pos = entry_pos(&body, rule, egress).ok_or_else(|| no_entry(rule, egress))?;
    body["entrySet"][pos] = e;
    save(tx, scope, &body)?;
    Ok(json!({"return": true}))
}

fn no_entry(rule: i64, egress: bool) -> AwsError {
    AwsError::bad(
        "InvalidNetworkAclEntry.NotFound",
        format!(
            "The network acl entry identified by {rule} ({}) does not exist",
            if egress { "egress" } else { "ingress" }
        ),
    )
}

pub(crate) fn delete_network_acl_entry(
    tx: &Tx<'_>,
    scope: &Scope,
    input: &Input,
) -> AwsResult<Value> {
    let id = req(input, &["NetworkAclId"])?;
    let mut body = load(tx, scope, id)?;
    let (rule, egress, _) = entry_from(input, false)?;
    let pos = entry_pos(&body, rule, egress).ok_or_else(|| no_entry(rule, egress))?;
    if let Some(a) = body["entrySet"].as_array_mut() {
        a.remove(pos);
    }
    save(tx, scope, &body)?;
    Ok(json!({"return": true}))
}

pub(crate) fn replace_network_acl_association(
    tx: &Tx<'_>,
    scope: &Scope,
    input: &Input,
) -> AwsResult<Value> {
    let assoc = req(input, &["AssociationId"])?;
    let target_id = req(input, &["NetworkAclId"])?;
    let mut target = load(tx, scope, target_id)?;
    for r in tx.list(scope, KIND_ACL, None)? {
        let mut body = r.body;
        let same_vpc = target["vpcId"] == body["vpcId"];
        let Some(a) = body["associationSet"].as_array_mut() else {
            continue;
        };
        let Some(pos) = a
            .iter()
            .position(|x| x["networkAclAssociationId"].as_str() == Some(assoc))
        else {
            continue;
        };
        let subnet = a[pos]["subnetId"].as_str().unwrap_or_default().to_string();
        if !same_vpc {
            return Err(AwsError::bad(
                "InvalidParameterValue",
                format!("Network ACL {target_id} and subnet {subnet} belong to different networks"),
            ));
        }
        a.remove(pos);
        save(tx, scope, &body)?;
        let new_id = ids::ec2("aclassoc");
        // Reload: the target may be the ACL just saved.
        target = load(tx, scope, target_id)?;
        if let Some(a) = target["associationSet"].as_array_mut() {
            a.push(json!({"networkAclAssociationId": new_id, "networkAclId": target_id, "subnetId": subnet}));
        }
        save(tx, scope, &target)?;
        return Ok(json!({"newAssociationId": new_id}));
    }
    Err(AwsError::bad(
        "InvalidAssociationID.NotFound",
        format!("The association ID '{assoc}' does not exist"),
    ))
}

const ACL_FILTERS: &[(&str, &str)] = &[
    ("network-acl-id", "networkAclId"),
    ("vpc-id", "vpcId"),
    ("default", "default"),
    ("owner-id", "ownerId"),
    (
        "association.association-id",
        "associationSet.networkAclAssociationId",
    ),
    ("association.network-acl-id", "associationSet.networkAclId"),
    ("association.subnet-id", "associationSet.subnetId"),
    ("entry.cidr", "entrySet.cidrBlock"),
    ("entry.egress", "entrySet.egress"),
    ("entry.protocol", "entrySet.protocol"),
    ("entry.rule-action", "entrySet.ruleAction"),
    ("entry.rule-number", "entrySet.ruleNumber"),
    ("entry.port-range.from", "entrySet.portRange.from"),
    ("entry.port-range.to", "entrySet.portRange.to"),
];

pub(crate) fn describe_network_acls(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let ids = strs_any(input, &["NetworkAclId", "NetworkAclIds"]);
    let (items, next) = vpc::describe(
        tx,
        scope,
        input,
        KIND_ACL,
        &ids,
        ACL_FILTERS,
        acl_not_found,
        &|b| Ok(public(b)),
        true,
    )?;
    Ok(vpc::with_token(json!({"networkAclSet": items}), next))
}
