//! Security groups and their rules. Each group keeps its rules as one flat list (`_rules`, in
//! EC2's SecurityGroupRule shape, one per peer, each with its `sgr-` id); `ipPermissions` and
//! `ipPermissionsEgress` are rendered from that list by grouping on (protocol, ports).

use super::shared::{self, SecurityGroup, Vpc, KIND_ENI, KIND_SG};
use super::util::{self, filters, list_any, matches, public, spec_tags, str_any, strs_any};
use super::vpc::{self, load_vpc};
use portico_core::context::partition_of;
use portico_core::{ids, AwsError, AwsResult, Input};
use portico_store::{Scope, Tx};
use serde_json::{json, Map, Value};

fn arn(scope: &Scope, id: &str) -> String {
    format!(
        "arn:{}:ec2:{}:{}:security-group/{id}",
        partition_of(&scope.region),
        scope.region,
        scope.account
    )
}

#[allow(
    clippy::too_many_arguments,
    reason = "mirrors the SecurityGroupRule members"
)]
fn rule(
    scope: &Scope,
    group: &str,
    egress: bool,
    proto: &str,
    from: i64,
    to: i64,
    peer: Peer,
    description: Option<String>,
) -> Value {
    let mut r = json!({
        "securityGroupRuleId": ids::ec2("sgr"),
        "groupId": group,
        "groupOwnerId": scope.account,
        "isEgress": egress,
        "ipProtocol": proto,
        "fromPort": from,
        "toPort": to,
        "tagSet": [],
    });
    match peer {
        Peer::Cidr(c) => r["cidrIpv4"] = json!(c),
        Peer::Cidr6(c) => r["cidrIpv6"] = json!(c),
        Peer::Group(g) => {
            r["referencedGroupInfo"] = json!({"groupId": g, "userId": scope.account});
        }
        Peer::PrefixList(p) => r["prefixListId"] = json!(p),
    }
    if let Some(d) = description {
        r["description"] = json!(d);
    }
    r
}

#[derive(Debug, Clone, PartialEq)]
enum Peer {
    Cidr(String),
    Cidr6(String),
    Group(String),
    PrefixList(String),
}

/// Creates a group record with AWS's default egress rule (and, for a VPC's default group, the
/// rule that lets members reach each other). Returns the group id.
pub(crate) fn create_group_record(
    tx: &Tx<'_>,
    scope: &Scope,
    vpc_id: &str,
    name: &str,
    description: &str,
    tags: Vec<Value>,
    is_default: bool,
) -> AwsResult<String> {
    let id = ids::ec2("sg");
    let mut rules = vec![rule(
        scope,
        &id,
        true,
        "-1",
        -1,
        -1,
        Peer::Cidr("0.0.0.0/0".into()),
        None,
    )];
    if is_default {
        rules.insert(
            0,
            rule(
                scope,
                &id,
                false,
                "-1",
                -1,
                -1,
                Peer::Group(id.clone()),
                None,
            ),
        );
    }
    let mut rest = Map::new();
    rest.insert("groupDescription".into(), json!(description));
    rest.insert("ownerId".into(), json!(scope.account));
    rest.insert("securityGroupArn".into(), json!(arn(scope, &id)));
    rest.insert("tagSet".into(), Value::Array(tags));
    rest.insert("_rules".into(), Value::Array(rules));
    let g = SecurityGroup {
        group_id: id.clone(),
        group_name: name.to_string(),
        vpc_id: vpc_id.to_string(),
        rest,
    };
    tx.put_as(scope, KIND_SG, &id, Some(vpc_id), Some(name), &g)?;
    Ok(id)
}

fn default_vpc_id(tx: &Tx<'_>, scope: &Scope) -> AwsResult<String> {
    vpc::ensure_default_vpc(tx, scope)?
        .map(|v| v.vpc_id)
        .ok_or_else(|| {
            AwsError::bad(
                "VPCIdNotSpecified",
                "No default VPC for this user. GroupName is only supported for EC2-Classic and default VPC.",
            )
        })
}

pub(crate) fn create_security_group(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let name = util::req(input, &["GroupName"])?;
    let description = str_any(input, &["GroupDescription", "Description"])
        .ok_or_else(|| util::missing("GroupDescription"))?;
    if name.len() > 255 || description.len() > 255 {
        return Err(AwsError::bad(
            "InvalidParameterValue",
            "Value for parameter groupName or groupDescription is too long. Maximum length is 255.",
        ));
    }
    if name.starts_with("sg-") {
        return Err(AwsError::bad(
            "InvalidParameterValue",
            "Group names may not be in the format sg-*.",
        ));
    }
    let vpc_id = match input.str("VpcId") {
        Some(v) => load_vpc(tx, scope, v)?.vpc_id,
        None => default_vpc_id(tx, scope)?,
    };
    let exists = tx
        .find_by_name(scope, KIND_SG, name)?
        .iter()
        .any(|r| r.parent.as_deref() == Some(vpc_id.as_str()));
    if exists {
        return Err(AwsError::bad(
            "InvalidGroup.Duplicate",
            format!("The security group '{name}' already exists for VPC '{vpc_id}'"),
        ));
    }
    let tags = spec_tags(input, "security-group")?;
    let id = create_group_record(tx, scope, &vpc_id, name, description, tags.clone(), false)?;
    // The wire carries <return>true</return> too, as AWS documents, though the model omits it.
    let mut out = json!({"return": true, "groupId": id, "securityGroupArn": arn(scope, &id)});
    if !tags.is_empty() {
        out["tagSet"] = Value::Array(tags);
    }
    Ok(out)
}

fn rules_of(g: &SecurityGroup) -> Vec<Value> {
    g.rest
        .get("_rules")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn rendered_permissions(rules: &[Value], egress: bool) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut keys: Vec<(String, i64, i64)> = Vec::new();
    for r in rules {
        if r.get("isEgress").and_then(Value::as_bool) != Some(egress) {
            continue;
        }
        let proto = r
            .get("ipProtocol")
            .and_then(Value::as_str)
            .unwrap_or("-1")
            .to_string();
        let from = r.get("fromPort").and_then(Value::as_i64).unwrap_or(-1);
        let to = r.get("toPort").and_then(Value::as_i64).unwrap_or(-1);
        let key = (proto.clone(), from, to);
        let idx = match keys.iter().position(|k| *k == key) {
            Some(i) => i,
            None => {
                keys.push(key);
                let mut p = json!({"ipProtocol": proto, "groups": [], "ipRanges": [], "ipv6Ranges": [], "prefixListIds": []});
                if proto != "-1" {
                    p["fromPort"] = json!(from);
                    p["toPort"] = json!(to);
                }
                out.push(p);
                out.len() - 1
            }
        };
        let desc = r.get("description").cloned();
        let with_desc = |mut v: Value| {
            if let Some(d) = &desc {
                v["description"] = d.clone();
            }
            v
        };
        let p = &mut out[idx];
        if let Some(c) = r.get("cidrIpv4") {
            push(p, "ipRanges", with_desc(json!({"cidrIp": c})));
        } else if let Some(c) = r.get("cidrIpv6") {
            push(p, "ipv6Ranges", with_desc(json!({"cidrIpv6": c})));
        } else if let Some(g) = r.get("referencedGroupInfo") {
            push(
                p,
                "groups",
                with_desc(json!({"groupId": g.get("groupId"), "userId": g.get("userId")})),
            );
        } else if let Some(pl) = r.get("prefixListId") {
            push(p, "prefixListIds", with_desc(json!({"prefixListId": pl})));
        }
    }
    out
}

fn push(p: &mut Value, key: &str, v: Value) {
    if let Some(a) = p.get_mut(key).and_then(Value::as_array_mut) {
        a.push(v);
    }
}

pub(crate) fn render_group(body: &Value) -> AwsResult<Value> {
    let g: SecurityGroup = serde_json::from_value(body.clone()).map_err(AwsError::internal)?;
    let rules = rules_of(&g);
    let mut v = public(body);
    v["ipPermissions"] = Value::Array(rendered_permissions(&rules, false));
    v["ipPermissionsEgress"] = Value::Array(rendered_permissions(&rules, true));
    Ok(v)
}

const SG_FILTERS: &[(&str, &str)] = &[
    ("group-id", "groupId"),
    ("group-name", "groupName"),
    ("vpc-id", "vpcId"),
    ("description", "groupDescription"),
    ("owner-id", "ownerId"),
    ("ip-permission.group-id", "ipPermissions.groups.groupId"),
    ("ip-permission.cidr", "ipPermissions.ipRanges.cidrIp"),
    (
        "ip-permission.ipv6-cidr",
        "ipPermissions.ipv6Ranges.cidrIpv6",
    ),
    ("ip-permission.from-port", "ipPermissions.fromPort"),
    ("ip-permission.to-port", "ipPermissions.toPort"),
    ("ip-permission.protocol", "ipPermissions.ipProtocol"),
    ("ip-permission.user-id", "ipPermissions.groups.userId"),
    (
        "egress.ip-permission.group-id",
        "ipPermissionsEgress.groups.groupId",
    ),
    (
        "egress.ip-permission.cidr",
        "ipPermissionsEgress.ipRanges.cidrIp",
    ),
    (
        "egress.ip-permission.from-port",
        "ipPermissionsEgress.fromPort",
    ),
    ("egress.ip-permission.to-port", "ipPermissionsEgress.toPort"),
    (
        "egress.ip-permission.protocol",
        "ipPermissionsEgress.ipProtocol",
    ),
];

pub(crate) fn describe_security_groups(
    tx: &Tx<'_>,
    scope: &Scope,
    input: &Input,
) -> AwsResult<Value> {
    let mut ids = strs_any(input, &["GroupId", "GroupIds"]);
    let names = strs_any(input, &["GroupName", "GroupNames"]);
    if !names.is_empty() {
        let default_vpc = tx
            .list_as::<Vpc>(scope, super::shared::KIND_VPC, None)?
            .into_iter()
            .find(|v| v.is_default)
            .map(|v| v.vpc_id);
        for n in &names {
            let found = tx
                .find_by_name(scope, KIND_SG, n)?
                .into_iter()
                .find(|r| r.parent.is_some() && r.parent == default_vpc);
            match found {
                Some(r) => ids.push(r.id),
                None => {
                    return Err(AwsError::bad(
                        "InvalidGroup.NotFound",
                        format!(
                            "The security group '{n}' does not exist in default VPC '{}'",
                            default_vpc.unwrap_or_default()
                        ),
                    ))
                }
            }
        }
    }
    let (items, next) = vpc::describe(
        tx,
        scope,
        input,
        KIND_SG,
        &ids,
        SG_FILTERS,
        shared::group_not_found,
        &render_group,
        true,
    )?;
    let mut out = json!({"securityGroupInfo": items});
    if let Some(n) = next {
        out["nextToken"] = json!(n);
    }
    Ok(out)
}

fn find_group(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<SecurityGroup> {
    if let Some(id) = input.str("GroupId") {
        return shared::get_security_group(tx, scope, id)?
            .ok_or_else(|| shared::group_not_found(id));
    }
    let name = input.str("GroupName").ok_or_else(|| {
        AwsError::bad(
            "MissingParameter",
            "Either groupId or groupName must be specified",
        )
    })?;
    let vpc = default_vpc_id(tx, scope)?;
    tx.find_by_name(scope, KIND_SG, name)?
        .into_iter()
        .find(|r| r.parent.as_deref() == Some(vpc.as_str()))
        .map(|r| serde_json::from_value(r.body).map_err(AwsError::internal))
        .transpose()?
        .ok_or_else(|| {
            AwsError::bad(
                "InvalidGroup.NotFound",
                format!("The security group '{name}' does not exist in default VPC '{vpc}'"),
            )
        })
}

pub(crate) fn delete_security_group(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let g = find_group(tx, scope, input)?;
    let id = g.group_id.clone();
    if g.group_name == "default" {
        return Err(AwsError::bad(
            "CannotDelete",
            format!("the specified group: \"{id}\" name: \"default\" cannot be deleted by a user"),
        ));
    }
    let dependent = || {
        AwsError::bad(
            "DependencyViolation",
            format!("resource {id} has a dependent object"),
        )
    };
    for other in tx.list_as::<SecurityGroup>(scope, KIND_SG, None)? {
        if other.group_id == id {
            continue;
        }
        let refs = rules_of(&other).iter().any(|r| {
            r.pointer("/referencedGroupInfo/groupId")
                .and_then(Value::as_str)
                == Some(id.as_str())
        });
        if refs {
            return Err(dependent());
        }
    }
    let in_use = tx
        .list_as::<shared::NetworkInterface>(scope, KIND_ENI, None)?
        .iter()
        .any(|e| e.group_ids.contains(&id));
    if in_use {
        return Err(dependent());
    }
    tx.delete(scope, KIND_SG, &id)?;
    Ok(json!({"return": true, "groupId": id}))
}

/// One requested rule: protocol, ports and peer, normalised as EC2 stores them.
#[derive(Debug, Clone, PartialEq)]
struct Wanted {
    proto: String,
    from: i64,
    to: i64,
    peer: Peer,
    description: Option<String>,
}

fn normalise_protocol(p: &str) -> AwsResult<String> {
    let lower = p.to_ascii_lowercase();
    Ok(match lower.as_str() {
        "tcp" | "6" => "tcp".into(),
        "udp" | "17" => "udp".into(),
        "icmp" | "1" => "icmp".into(),
        "icmpv6" | "58" => "icmpv6".into(),
        "-1" | "all" => "-1".into(),
        n => match n.parse::<u16>() {
            Ok(v) if v <= 255 => n.to_string(),
            _ => {
                return Err(AwsError::bad(
                    "InvalidParameterValue",
                    format!("Invalid value '{p}' for IP protocol. Unknown protocol."),
                ))
            }
        },
    })
}

fn ports(proto: &str, from: Option<i64>, to: Option<i64>) -> AwsResult<(i64, i64)> {
    match proto {
        "tcp" | "udp" => {
            let (Some(f), Some(t)) = (from, to) else {
                return Err(AwsError::bad(
                    "InvalidParameterValue",
                    "Invalid value 'Must specify both from and to ports with TCP/UDP.' for portRange.",
                ));
            };
            if !(0..=65535).contains(&f) || !(0..=65535).contains(&t) {
                let bad = if (0..=65535).contains(&f) { t } else { f };
                return Err(AwsError::bad(
                    "InvalidParameterValue",
                    format!("Invalid value '{bad}' for portRange. Must be between 0 and 65535."),
                ));
            }
            if f > t {
                return Err(AwsError::bad(
                    "InvalidParameterValue",
                    format!("Invalid TCP/UDP port range {f}-{t}: the from port must not be greater than the to port."),
                ));
            }
            Ok((f, t))
        }
        "icmp" | "icmpv6" => Ok((from.unwrap_or(-1), to.unwrap_or(-1))),
        _ => Ok((-1, -1)),
    }
}

fn wanted_rules(
    tx: &Tx<'_>,
    scope: &Scope,
    input: &Input,
    group: &SecurityGroup,
) -> AwsResult<Vec<Wanted>> {
    let mut perms = list_any(input, &["IpPermissions"]);
    if perms.is_empty() && input.has("IpProtocol") {
        // The flat form: IpProtocol/FromPort/ToPort/CidrIp or SourceSecurityGroupName.
        let mut p = json!({"IpProtocol": input.get("IpProtocol"), "FromPort": input.get("FromPort"), "ToPort": input.get("ToPort")});
        if let Some(c) = input.str("CidrIp") {
            p["IpRanges"] = json!([{"CidrIp": c}]);
        }
        if let Some(n) = input.str("SourceSecurityGroupName") {
            p["Groups"] = json!([{"GroupName": n}]);
        }
        perms.push(Input(p));
    } else if perms.is_empty() {
        if let Some(c) = input.str("CidrIp") {
            perms.push(Input(
                json!({"IpProtocol": "-1", "IpRanges": [{"CidrIp": c}]}),
            ));
        }
    }
    if perms.is_empty() {
        return Err(AwsError::bad(
            "MissingParameter",
            "No IpPermissions specified",
        ));
    }
    let mut out = Vec::new();
    for p in perms {
        let raw = p
            .string("IpProtocol")
            .ok_or_else(|| util::missing("IpProtocol"))?;
        let proto = normalise_protocol(&raw)?;
        let (from, to) = ports(
            &proto,
            util::int_member(&p, "FromPort")?,
            util::int_member(&p, "ToPort")?,
        )?;
        let mut peers = Vec::new();
        for r in list_any(&p, &["IpRanges"]) {
            let c = r.str("CidrIp").ok_or_else(|| util::missing("CidrIp"))?;
            let net: ipnet::Ipv4Net = c.parse().map_err(|_| {
                AwsError::bad(
                    "InvalidParameterValue",
                    format!("CIDR block {c} is malformed"),
                )
            })?;
            peers.push((Peer::Cidr(net.trunc().to_string()), r.string("Description")));
        }
        for r in list_any(&p, &["Ipv6Ranges"]) {
            let c = r.str("CidrIpv6").ok_or_else(|| util::missing("CidrIpv6"))?;
            let net: ipnet::Ipv6Net = c.parse().map_err(|_| {
                AwsError::bad(
                    "InvalidParameterValue",
                    format!("CIDR block {c} is malformed"),
                )
            })?;
            peers.push((
                Peer::Cidr6(net.trunc().to_string()),
                r.string("Description"),
            ));
        }
        for r in list_any(&p, &["Groups", "UserIdGroupPairs"]) {
            let gid = match (r.str("GroupId"), r.str("GroupName")) {
                (Some(g), _) => {
                    let peer = shared::get_security_group(tx, scope, g)?
                        .ok_or_else(|| shared::group_not_found(g))?;
                    if peer.vpc_id != group.vpc_id {
                        return Err(AwsError::bad(
                            "InvalidGroup.NotFound",
                            "You have specified two resources that belong to different networks.",
                        ));
                    }
                    g.to_string()
                }
                (None, Some(n)) => tx
                    .find_by_name(scope, KIND_SG, n)?
                    .into_iter()
                    .find(|x| x.parent.as_deref() == Some(group.vpc_id.as_str()))
                    .map(|x| x.id)
                    .ok_or_else(|| shared::group_not_found(n))?,
                (None, None) => return Err(util::missing("GroupId")),
            };
            peers.push((Peer::Group(gid), r.string("Description")));
        }
        for r in list_any(&p, &["PrefixListIds"]) {
            let pl = r
                .str("PrefixListId")
                .ok_or_else(|| util::missing("PrefixListId"))?;
            peers.push((Peer::PrefixList(pl.to_string()), r.string("Description")));
        }
        if peers.is_empty() {
            return Err(AwsError::bad(
                "InvalidParameterValue",
                "Invalid value for IpPermissions: at least one of IpRanges, Ipv6Ranges, UserIdGroupPairs or PrefixListIds must be given",
            ));
        }
        for (peer, description) in peers {
            out.push(Wanted {
                proto: proto.clone(),
                from,
                to,
                peer,
                description,
            });
        }
    }
    Ok(out)
}

fn same_rule(r: &Value, egress: bool, w: &Wanted) -> bool {
    let peer_matches = match &w.peer {
        Peer::Cidr(c) => r.get("cidrIpv4").and_then(Value::as_str) == Some(c),
        Peer::Cidr6(c) => r.get("cidrIpv6").and_then(Value::as_str) == Some(c),
        Peer::Group(g) => {
            r.pointer("/referencedGroupInfo/groupId")
                .and_then(Value::as_str)
                == Some(g)
        }
        Peer::PrefixList(p) => r.get("prefixListId").and_then(Value::as_str) == Some(p),
    };
    peer_matches
        && r.get("isEgress").and_then(Value::as_bool) == Some(egress)
        && r.get("ipProtocol").and_then(Value::as_str) == Some(w.proto.as_str())
        && r.get("fromPort").and_then(Value::as_i64) == Some(w.from)
        && r.get("toPort").and_then(Value::as_i64) == Some(w.to)
}

fn describe_wanted(w: &Wanted) -> String {
    let peer = match &w.peer {
        Peer::Cidr(c) | Peer::Cidr6(c) | Peer::Group(c) | Peer::PrefixList(c) => c,
    };
    if w.proto == "-1" {
        format!("peer: {peer}, ALL, ALLOW")
    } else {
        format!(
            "peer: {peer}, {}, from port: {}, to port: {}, ALLOW",
            w.proto.to_uppercase(),
            w.from,
            w.to
        )
    }
}

fn save(tx: &Tx<'_>, scope: &Scope, g: &SecurityGroup) -> AwsResult<()> {
    tx.put_as(
        scope,
        KIND_SG,
        &g.group_id,
        Some(&g.vpc_id),
        Some(&g.group_name),
        g,
    )?;
    Ok(())
}

pub(crate) fn authorize(
    tx: &Tx<'_>,
    scope: &Scope,
    input: &Input,
    egress: bool,
) -> AwsResult<Value> {
    let mut g = find_group(tx, scope, input)?;
    let wanted = wanted_rules(tx, scope, input, &g)?;
    let mut rules = rules_of(&g);
    let tags = spec_tags(input, "security-group-rule")?;
    let mut added = Vec::new();
    for w in &wanted {
        if rules.iter().any(|r| same_rule(r, egress, w)) {
            return Err(AwsError::bad(
                "InvalidPermission.Duplicate",
                format!(
                    "the specified rule \"{}\" already exists",
                    describe_wanted(w)
                ),
            ));
        }
        let mut r = rule(
            scope,
            &g.group_id,
            egress,
            &w.proto,
            w.from,
            w.to,
            w.peer.clone(),
            w.description.clone(),
        );
        r["tagSet"] = Value::Array(tags.clone());
        rules.push(r.clone());
        added.push(r);
    }
    g.rest.insert("_rules".into(), Value::Array(rules));
    save(tx, scope, &g)?;
    Ok(json!({"return": true, "securityGroupRuleSet": added}))
}

pub(crate) fn revoke(tx: &Tx<'_>, scope: &Scope, input: &Input, egress: bool) -> AwsResult<Value> {
    let mut g = find_group(tx, scope, input)?;
    let mut rules = rules_of(&g);
    let rule_ids = strs_any(input, &["SecurityGroupRuleId", "SecurityGroupRuleIds"]);
    let mut revoked = Vec::new();
    if !rule_ids.is_empty() {
        for id in &rule_ids {
            let pos = rule_position(&rules, id, egress)?;
            revoked.push(rules.remove(pos));
        }
    } else {
        for w in wanted_rules(tx, scope, input, &g)? {
            let pos = rules
                .iter()
                .position(|r| same_rule(r, egress, &w))
                .ok_or_else(|| {
                    AwsError::bad(
                        "InvalidPermission.NotFound",
                        "The specified rule does not exist in this security group.",
                    )
                })?;
            revoked.push(rules.remove(pos));
        }
    }
    g.rest.insert("_rules".into(), Value::Array(rules));
    save(tx, scope, &g)?;
    let revoked: Vec<Value> = revoked
        .into_iter()
        .map(|r| {
            let mut v = json!({
                "securityGroupRuleId": r.get("securityGroupRuleId"),
                "groupId": r.get("groupId"),
                "isEgress": r.get("isEgress"),
                "ipProtocol": r.get("ipProtocol"),
                "fromPort": r.get("fromPort"),
                "toPort": r.get("toPort"),
            });
            if let Some(c) = r.get("cidrIpv4") {
                v["cidrIpv4"] = c.clone();
            }
            if let Some(c) = r.pointer("/referencedGroupInfo/groupId") {
                v["referencedGroupId"] = c.clone();
            }
            v
        })
        .collect();
    Ok(json!({"return": true, "revokedSecurityGroupRuleSet": revoked}))
}

/// ModifySecurityGroupRules: replaces rules in place, keeping their ids.
pub(crate) fn modify_security_group_rules(
    tx: &Tx<'_>,
    scope: &Scope,
    input: &Input,
) -> AwsResult<Value> {
    let mut g = find_group(tx, scope, input)?;
    let mut rules = rules_of(&g);
    let updates = list_any(input, &["SecurityGroupRule", "SecurityGroupRules"]);
    if updates.is_empty() {
        return Err(util::missing("SecurityGroupRule"));
    }
    for u in updates {
        let id = util::req(&u, &["SecurityGroupRuleId"])?;
        let pos = rules
            .iter()
            .position(|r| r.get("securityGroupRuleId").and_then(Value::as_str) == Some(id))
            .ok_or_else(|| {
                AwsError::bad(
                    "InvalidSecurityGroupRuleId.NotFound",
                    format!("The security group rule ID '{id}' does not exist"),
                )
            })?;
        let req = u.sub("SecurityGroupRule");
        let proto = normalise_protocol(
            &req.string("IpProtocol")
                .ok_or_else(|| util::missing("IpProtocol"))?,
        )?;
        let (from, to) = ports(
            &proto,
            util::int_member(&req, "FromPort")?,
            util::int_member(&req, "ToPort")?,
        )?;
        let peer = match (
            req.str("CidrIpv4"),
            req.str("CidrIpv6"),
            req.str("ReferencedGroupId"),
            req.str("PrefixListId"),
        ) {
            (Some(c), None, None, None) => Peer::Cidr(
                c.parse::<ipnet::Ipv4Net>()
                    .map_err(|_| {
                        AwsError::bad(
                            "InvalidParameterValue",
                            format!("CIDR block {c} is malformed"),
                        )
                    })?
                    .trunc()
                    .to_string(),
            ),
            (None, Some(c), None, None) => Peer::Cidr6(c.to_string()),
            (None, None, Some(gid), None) => {
                let peer = shared::get_security_group(tx, scope, gid)?
                    .ok_or_else(|| shared::group_not_found(gid))?;
                if peer.vpc_id != g.vpc_id {
                    return Err(AwsError::bad(
                        "InvalidGroup.NotFound",
                        "You have specified two resources that belong to different networks.",
                    ));
                }
                Peer::Group(gid.to_string())
            }
            (None, None, None, Some(pl)) => Peer::PrefixList(pl.to_string()),
            _ => {
                return Err(AwsError::bad(
                    "InvalidParameterCombination",
                    "Exactly one of CidrIpv4, CidrIpv6, ReferencedGroupId or PrefixListId must be given",
                ))
            }
        };
        let egress = rules[pos].get("isEgress").and_then(Value::as_bool) == Some(true);
        let w = Wanted {
            proto: proto.clone(),
            from,
            to,
            peer: peer.clone(),
            description: req.string("Description"),
        };
        let dup = rules
            .iter()
            .enumerate()
            .any(|(i, r)| i != pos && same_rule(r, egress, &w));
        if dup {
            return Err(AwsError::bad(
                "InvalidPermission.Duplicate",
                format!(
                    "the specified rule \"{}\" already exists",
                    describe_wanted(&w)
                ),
            ));
        }
        let mut r = rule(
            scope,
            &g.group_id,
            egress,
            &proto,
            from,
            to,
            peer,
            w.description,
        );
        r["securityGroupRuleId"] = json!(id);
        r["tagSet"] = rules[pos].get("tagSet").cloned().unwrap_or(json!([]));
        rules[pos] = r;
    }
    g.rest.insert("_rules".into(), Value::Array(rules));
    save(tx, scope, &g)?;
    Ok(json!({"return": true}))
}

/// UpdateSecurityGroupRuleDescriptionsIngress/Egress: by rule id or by matching permissions.
pub(crate) fn update_descriptions(
    tx: &Tx<'_>,
    scope: &Scope,
    input: &Input,
    egress: bool,
) -> AwsResult<Value> {
    let mut g = find_group(tx, scope, input)?;
    let mut rules = rules_of(&g);
    let by_id = list_any(
        input,
        &[
            "SecurityGroupRuleDescription",
            "SecurityGroupRuleDescriptions",
        ],
    );
    if !by_id.is_empty() {
        for d in by_id {
            let id = util::req(&d, &["SecurityGroupRuleId"])?;
            let pos = rule_position(&rules, id, egress)?;
            set_description(&mut rules[pos], d.string("Description"));
        }
    } else {
        for w in wanted_rules(tx, scope, input, &g)? {
            let r = rules
                .iter_mut()
                .find(|r| same_rule(r, egress, &w))
                .ok_or_else(|| {
                    AwsError::bad(
                        "InvalidPermission.NotFound",
                        "The specified rule does not exist in this security group.",
                    )
                })?;
            set_description(r, w.description.clone());
        }
    }
    g.rest.insert("_rules".into(), Value::Array(rules));
    save(tx, scope, &g)?;
    Ok(json!({"return": true}))
}

fn set_description(r: &mut Value, d: Option<String>) {
    match (d, r.as_object_mut()) {
        (Some(d), Some(o)) if !d.is_empty() => {
            o.insert("description".into(), json!(d));
        }
        (_, Some(o)) => {
            o.remove("description");
        }
        _ => {}
    }
}

pub(crate) fn describe_security_group_rules(
    tx: &Tx<'_>,
    scope: &Scope,
    input: &Input,
) -> AwsResult<Value> {
    let ids = strs_any(input, &["SecurityGroupRuleId", "SecurityGroupRuleIds"]);
    let fs = filters(input);
    let table = [
        ("group-id", "groupId"),
        ("security-group-rule-id", "securityGroupRuleId"),
        ("is-egress", "isEgress"),
    ];
    let mut out = Vec::new();
    for g in tx.list_as::<SecurityGroup>(scope, KIND_SG, None)? {
        for r in rules_of(&g) {
            let rid = r
                .get("securityGroupRuleId")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !ids.is_empty() && !ids.iter().any(|i| i == rid) {
                continue;
            }
            if matches(&r, &fs, &table, "tagSet")? {
                out.push(r);
            }
        }
    }
    if let Some(missing) = ids.iter().find(|i| {
        !out.iter()
            .any(|r| r.get("securityGroupRuleId").and_then(Value::as_str) == Some(i.as_str()))
    }) {
        return Err(AwsError::bad(
            "InvalidSecurityGroupRuleId.NotFound",
            format!("The security group rule ID '{missing}' does not exist"),
        ));
    }
    let (items, next) = util::page(input, out)?;
    let mut v = json!({"securityGroupRuleSet": items});
    if let Some(n) = next {
        v["nextToken"] = json!(n);
    }
    Ok(v)
}

/// Where the rule `id` of direction `egress` sits in a group's rules, or AWS's NotFound error.
fn rule_position(rules: &[Value], id: &str, egress: bool) -> AwsResult<usize> {
    rules
        .iter()
        .position(|r| {
            r.get("securityGroupRuleId").and_then(Value::as_str) == Some(id)
                && r.get("isEgress").and_then(Value::as_bool) == Some(egress)
        })
        .ok_or_else(|| {
            AwsError::bad(
                "InvalidSecurityGroupRuleId.NotFound",
                format!("The security group rule ID '{id}' does not exist"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_and_ports() {
        assert_eq!(normalise_protocol("TCP").unwrap(), "tcp");
        assert_eq!(normalise_protocol("6").unwrap(), "tcp");
        assert_eq!(normalise_protocol("all").unwrap(), "-1");
        assert_eq!(normalise_protocol("50").unwrap(), "50");
        assert!(normalise_protocol("bogus").is_err());
        assert!(normalise_protocol("256").is_err());
        assert_eq!(ports("tcp", Some(80), Some(80)).unwrap(), (80, 80));
        assert!(ports("tcp", Some(90), Some(80)).is_err());
        assert!(ports("tcp", None, Some(80)).is_err());
        assert!(ports("udp", Some(0), Some(70000)).is_err());
        assert_eq!(ports("-1", Some(5), Some(6)).unwrap(), (-1, -1));
    }

    #[test]
    fn permissions_group_by_protocol_and_ports() {
        let scope = Scope::new("000000000000", "us-east-1");
        let rules = vec![
            rule(
                &scope,
                "sg-1",
                false,
                "tcp",
                80,
                80,
                Peer::Cidr("0.0.0.0/0".into()),
                None,
            ),
            rule(
                &scope,
                "sg-1",
                false,
                "tcp",
                80,
                80,
                Peer::Group("sg-2".into()),
                Some("lb".into()),
            ),
            rule(
                &scope,
                "sg-1",
                true,
                "-1",
                -1,
                -1,
                Peer::Cidr("0.0.0.0/0".into()),
                None,
            ),
        ];
        let ingress = rendered_permissions(&rules, false);
        assert_eq!(ingress.len(), 1);
        assert_eq!(ingress[0]["ipRanges"], json!([{"cidrIp": "0.0.0.0/0"}]));
        assert_eq!(
            ingress[0]["groups"],
            json!([{"groupId": "sg-2", "userId": "000000000000", "description": "lb"}])
        );
        let egress = rendered_permissions(&rules, true);
        assert_eq!(egress[0].get("fromPort"), None);
        assert_eq!(egress[0]["ipProtocol"], "-1");
    }
}
