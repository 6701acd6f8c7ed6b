//! Network-interface attributes: ModifyNetworkInterfaceAttribute (description, source/dest
//! check, security groups, the attachment's delete-on-termination) and
//! DescribeNetworkInterfaceAttribute. A group change is an `ec2.eni` write, so the load balancer
//! reconciler re-decides reachability (vpc_reach) from it like from any security-group change.
//! Interfaces another service manages (requester-managed: a load balancer's, an ECS task's, a
//! VPC link's, a NAT gateway's) are refused, as on AWS: their groups change through that
//! service (SetSecurityGroups, a new service deployment, ...).

use super::shared::{self, NetworkInterface, KIND_ENI};
use super::util::{self, req, strs_any};
use super::vpc::{eni_not_found, render_eni};
use portico_core::{AwsError, AwsResult, Input};
use portico_store::{Scope, Tx};
use serde_json::{json, Value};

/// AWS's limit of security groups per network interface (default quota).
const MAX_GROUPS: usize = 5;

/// One attribute change, as ModifyNetworkInterfaceAttribute names it.
#[derive(Debug, PartialEq)]
enum Change {
    Description(String),
    SourceDestCheck(bool),
    Groups(Vec<String>),
    DeleteOnTermination { attachment_id: String, value: bool },
}

/// The one attribute the call changes ("You can specify only one attribute at a time"), with
/// EC2's errors for none and for several (as ModifyInstanceAttribute and ModifyVpcAttribute
/// give them; the attribute names are DescribeNetworkInterfaceAttribute's).
fn change_of(input: &Input) -> AwsResult<Change> {
    let mut out = Vec::new();
    if input.get("Description").is_some() {
        let d = input.sub("Description");
        out.push((
            "description",
            Change::Description(d.str("Value").unwrap_or_default().to_string()),
        ));
    }
    if let Some(b) = util::bool_member(input, "SourceDestCheck")? {
        out.push(("sourceDestCheck", Change::SourceDestCheck(b)));
    }
    let groups = strs_any(input, &["SecurityGroupId", "Groups"]);
    if !groups.is_empty() {
        let mut uniq: Vec<String> = Vec::new();
        for g in groups {
            if !uniq.contains(&g) {
                uniq.push(g);
            }
        }
        out.push(("groupSet", Change::Groups(uniq)));
    }
    if input.get("Attachment").is_some() {
        let a = input.sub("Attachment");
        let attachment_id = a
            .str("AttachmentId")
            .ok_or_else(|| util::missing("AttachmentId"))?
            .to_string();
        let value = a
            .bool("DeleteOnTermination")
            .map_err(|raw| util::invalid_value(&raw, "attachment.deleteOnTermination"))?
            .ok_or_else(|| util::missing("DeleteOnTermination"))?;
        out.push((
            "attachment",
            Change::DeleteOnTermination {
                attachment_id,
                value,
            },
        ));
    }
    match out.len() {
        1 => Ok(out.remove(0).1),
        0 => Err(util::no_attributes()),
        _ => Err(util::multiple_attributes(out.iter().map(|(n, _)| *n))),
    }
}

/// Whether another service (not the account) manages the interface: EC2's `requesterManaged`.
pub(crate) fn requester_managed(eni: &NetworkInterface, scope: &Scope) -> bool {
    !eni.requester_id.is_empty() && eni.requester_id != scope.account
}

/// The security groups for `eni`: each must exist and be in the interface's VPC.
fn check_groups(
    tx: &Tx<'_>,
    scope: &Scope,
    eni: &NetworkInterface,
    groups: &[String],
) -> AwsResult<()> {
    if groups.len() > MAX_GROUPS {
        return Err(AwsError::bad(
            "SecurityGroupsPerInterfaceLimitExceeded",
            "The maximum number of security groups per interface has been reached.",
        ));
    }
    for g in groups {
        let sg =
            shared::get_security_group(tx, scope, g)?.ok_or_else(|| shared::group_not_found(g))?;
        if sg.vpc_id != eni.vpc_id {
            return Err(AwsError::bad(
                "InvalidGroup.NotFound",
                "You have specified two resources that belong to different networks.",
            ));
        }
    }
    Ok(())
}

pub(crate) fn modify_attribute(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let id = req(input, &["NetworkInterfaceId"])?;
    let mut eni = shared::get_eni(tx, scope, id)?.ok_or_else(|| eni_not_found(id))?;
    let change = change_of(input)?;
    if requester_managed(&eni, scope) {
        return Err(AwsError::bad(
            "AuthFailure",
            "You do not have permission to access the specified resource.",
        ));
    }
    match change {
        Change::Description(d) => eni.description = d,
        Change::SourceDestCheck(b) => {
            eni.rest.insert("sourceDestCheck".into(), json!(b));
        }
        Change::Groups(groups) => {
            check_groups(tx, scope, &eni, &groups)?;
            eni.group_ids = groups;
        }
        Change::DeleteOnTermination {
            attachment_id,
            value,
        } => {
            let att = eni
                .rest
                .get_mut("attachment")
                .filter(|a| a.get("attachmentId").and_then(Value::as_str) == Some(&attachment_id))
                .ok_or_else(|| {
                    AwsError::bad(
                        "InvalidAttachmentID.NotFound",
                        format!("The attachment ID '{attachment_id}' does not exist"),
                    )
                })?;
            att["deleteOnTermination"] = json!(value);
        }
    }
    let subnet = eni.subnet_id.clone();
    tx.put_as(scope, KIND_ENI, id, Some(&subnet), None, &eni)?;
    Ok(json!({"return": true}))
}

pub(crate) fn describe_attribute(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let id = req(input, &["NetworkInterfaceId"])?;
    let eni = shared::get_eni(tx, scope, id)?.ok_or_else(|| eni_not_found(id))?;
    let body = serde_json::to_value(&eni).map_err(AwsError::internal)?;
    let view = render_eni(tx, scope, &body)?;
    let mut out = json!({"networkInterfaceId": id});
    match input.str("Attribute") {
        Some("description") => out["description"] = json!({"value": view["description"]}),
        Some("sourceDestCheck") => {
            out["sourceDestCheck"] = json!({"value": view["sourceDestCheck"]});
        }
        Some("groupSet") => out["groupSet"] = view["groupSet"].clone(),
        Some("attachment") => {
            if let Some(a) = view.get("attachment") {
                out["attachment"] = a.clone();
            }
        }
        Some("associatePublicIpAddress") => {
            out["associatePublicIpAddress"] = json!(view.get("association").is_some());
        }
        Some(other) => return Err(util::invalid_value(other, "attribute")),
        None => return Err(util::missing("Attribute")),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(v: Value) -> AwsResult<Change> {
        change_of(&Input(v))
    }

    #[test]
    fn exactly_one_attribute_per_call() {
        assert_eq!(
            change(json!({"Description": {"Value": "web"}})).unwrap(),
            Change::Description("web".into())
        );
        assert_eq!(
            change(json!({"SourceDestCheck": {"Value": "false"}})).unwrap(),
            Change::SourceDestCheck(false)
        );
        assert_eq!(
            change(json!({"SecurityGroupId": ["sg-1", "sg-2", "sg-1"]})).unwrap(),
            Change::Groups(vec!["sg-1".into(), "sg-2".into()])
        );
        assert_eq!(
            change(json!({"Attachment": {"AttachmentId": "eni-attach-1", "DeleteOnTermination": "true"}}))
                .unwrap(),
            Change::DeleteOnTermination {
                attachment_id: "eni-attach-1".into(),
                value: true
            }
        );
        let e = change(json!({})).unwrap_err();
        assert_eq!(
            (e.code.as_ref(), e.message.as_str()),
            ("InvalidParameterCombination", "No attributes specified.")
        );
        let e = change(json!({"Description": {"Value": "x"}, "SecurityGroupId": ["sg-1"]}))
            .unwrap_err();
        assert_eq!(
            (e.code.as_ref(), e.message.as_str()),
            (
                "InvalidParameterCombination",
                "Fields for multiple attribute types specified: description, groupSet"
            )
        );
        let e = change(json!({"SourceDestCheck": {"Value": "maybe"}})).unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
        let e = change(json!({"Attachment": {"DeleteOnTermination": "true"}})).unwrap_err();
        assert_eq!(e.code, "MissingParameter");
    }

    #[test]
    fn requester_managed_means_another_service_made_it() {
        let scope = Scope::new("000000000000", "us-east-1");
        let eni = |requester: &str| NetworkInterface {
            network_interface_id: "eni-1".into(),
            subnet_id: "subnet-1".into(),
            vpc_id: "vpc-1".into(),
            availability_zone: "us-east-1a".into(),
            private_ip_address: "10.0.0.4".into(),
            description: String::new(),
            interface_type: "interface".into(),
            requester_id: requester.into(),
            group_ids: vec![],
            status: String::new(),
            rest: Default::default(),
        };
        assert!(!requester_managed(&eni("000000000000"), &scope));
        assert!(!requester_managed(&eni(""), &scope));
        assert!(requester_managed(&eni("amazon-ecs"), &scope));
        assert!(requester_managed(&eni("amazon-elb"), &scope));
    }
}
