"""IAM roles, inline and managed policies, instance profiles and service-linked roles, and STS
AssumeRole, through boto3 and the AWS CLI."""

import json
import re
import urllib.parse

import botocore.exceptions
import pytest
import requests

TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": "*"}]}


def err(fn, *a, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fn(*a, **kw)
    return e.value.response


def test_roles_and_policies(portico, unique):
    iam = portico.client("iam")
    name = f"task-{unique}"
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST),
                           Description="task role", Tags=[{"Key": "app", "Value": "web"}])["Role"]
    assert re.fullmatch(r"AROA[A-Z0-9]{17}", role["RoleId"])
    assert role["Arn"] == f"arn:aws:iam::000000000000:role/{name}"
    assert role["AssumeRolePolicyDocument"] == TRUST  # boto3 URL-decodes and parses
    r = err(iam.create_role, RoleName=name.upper(), AssumeRolePolicyDocument=json.dumps(TRUST))
    assert r["Error"]["Code"] == "EntityAlreadyExists"
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 409
    r = err(iam.create_role, RoleName=f"bad-{unique}", AssumeRolePolicyDocument="{not json")
    assert r["Error"]["Code"] == "MalformedPolicyDocument"
    assert err(iam.get_role, RoleName=f"bad-{unique}")["Error"]["Code"] == "NoSuchEntity"

    got = iam.get_role(RoleName=name)["Role"]
    assert got["Description"] == "task role" and got["Tags"] == [{"Key": "app", "Value": "web"}]
    assert name in [x["RoleName"] for x in iam.list_roles()["Roles"]]

    # The wire really carries the document URL-encoded, as IAM does.
    raw = requests.post(portico.endpoint + "/", data={"Action": "GetRole", "Version": "2010-05-08", "RoleName": name},
                        headers={"X-Amz-Date": "20250101T000000Z", "Authorization": "AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=x"})
    doc = re.search(r"<AssumeRolePolicyDocument>(.*?)</AssumeRolePolicyDocument>", raw.text).group(1)
    assert doc.startswith("%7B%22Version%22") and json.loads(urllib.parse.unquote(doc)) == TRUST

    iam.put_role_policy(RoleName=name, PolicyName="logs", PolicyDocument=json.dumps(POLICY))
    assert iam.get_role_policy(RoleName=name, PolicyName="logs")["PolicyDocument"] == POLICY
    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == ["logs"]
    r = err(iam.put_role_policy, RoleName=name, PolicyName="x", PolicyDocument='{"Statement": [{"Effect": "Perhaps"}]}')
    assert r["Error"]["Code"] == "MalformedPolicyDocument"
    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == ["logs"]

    pol = iam.create_policy(PolicyName=f"p-{unique}", PolicyDocument=json.dumps(POLICY))["Policy"]
    assert pol["DefaultVersionId"] == "v1" and pol["AttachmentCount"] == 0
    assert re.fullmatch(r"ANPA[A-Z0-9]{17}", pol["PolicyId"])
    exec_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
    iam.attach_role_policy(RoleName=name, PolicyArn=pol["Arn"])
    portico.aws("iam", "attach-role-policy", "--role-name", name, "--policy-arn", exec_arn)
    attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    assert attached == [{"PolicyName": f"p-{unique}", "PolicyArn": pol["Arn"]},
                        {"PolicyName": "AmazonECSTaskExecutionRolePolicy", "PolicyArn": exec_arn}]
    assert iam.get_policy(PolicyArn=pol["Arn"])["Policy"]["AttachmentCount"] == 1
    r = err(iam.attach_role_policy, RoleName=name, PolicyArn="arn:aws:iam::000000000000:policy/nope")
    assert r["Error"]["Code"] == "NoSuchEntity"
    assert err(iam.delete_policy, PolicyArn=pol["Arn"])["Error"]["Code"] == "DeleteConflict"

    v2 = iam.create_policy_version(PolicyArn=pol["Arn"], PolicyDocument=json.dumps(TRUST | {"Statement": POLICY["Statement"]}), SetAsDefault=True)
    assert v2["PolicyVersion"]["VersionId"] == "v2"
    assert iam.get_policy_version(PolicyArn=pol["Arn"], VersionId="v1")["PolicyVersion"]["Document"] == POLICY

    # Deleting in the wrong order is refused.
    r = err(iam.delete_role, RoleName=name)
    assert r["Error"]["Code"] == "DeleteConflict" and r["ResponseMetadata"]["HTTPStatusCode"] == 409
    iam.delete_role_policy(RoleName=name, PolicyName="logs")
    assert err(iam.delete_role, RoleName=name)["Error"]["Message"] == "Cannot delete entity, must detach all policies first."
    iam.detach_role_policy(RoleName=name, PolicyArn=pol["Arn"])
    iam.detach_role_policy(RoleName=name, PolicyArn=exec_arn)

    prof = iam.create_instance_profile(InstanceProfileName=f"ip-{unique}")["InstanceProfile"]
    assert re.fullmatch(r"AIPA[A-Z0-9]{17}", prof["InstanceProfileId"])
    iam.add_role_to_instance_profile(InstanceProfileName=f"ip-{unique}", RoleName=name)
    got = iam.get_instance_profile(InstanceProfileName=f"ip-{unique}")["InstanceProfile"]
    assert [x["RoleName"] for x in got["Roles"]] == [name]
    assert iam.list_instance_profiles_for_role(RoleName=name)["InstanceProfiles"][0]["InstanceProfileName"] == f"ip-{unique}"
    assert err(iam.delete_role, RoleName=name)["Error"]["Code"] == "DeleteConflict"
    assert err(iam.delete_instance_profile, InstanceProfileName=f"ip-{unique}")["Error"]["Code"] == "DeleteConflict"
    iam.remove_role_from_instance_profile(InstanceProfileName=f"ip-{unique}", RoleName=name)
    iam.delete_instance_profile(InstanceProfileName=f"ip-{unique}")
    iam.delete_role(RoleName=name)
    assert err(iam.delete_policy, PolicyArn=pol["Arn"])["Error"]["Code"] == "DeleteConflict"  # v1 still there
    iam.delete_policy_version(PolicyArn=pol["Arn"], VersionId="v1")
    iam.delete_policy(PolicyArn=pol["Arn"])


def test_service_linked_role_and_paging(portico, unique):
    iam = portico.client("iam")
    r = iam.create_service_linked_role(AWSServiceName="ecs.amazonaws.com")["Role"]
    assert r["RoleName"] == "AWSServiceRoleForECS" and r["Path"] == "/aws-service-role/ecs.amazonaws.com/"
    e = err(iam.create_service_linked_role, AWSServiceName="ecs.amazonaws.com")
    assert e["Error"]["Code"] == "InvalidInput"
    for i in range(3):
        iam.create_role(RoleName=f"pg-{unique}-{i}", Path=f"/pg{unique}/", AssumeRolePolicyDocument=json.dumps(TRUST))
    pages = list(iam.get_paginator("list_roles").paginate(PathPrefix=f"/pg{unique}/", PaginationConfig={"PageSize": 2}))
    assert [len(p["Roles"]) for p in pages] == [2, 1]
    out = portico.aws("iam", "list-roles", "--path-prefix", f"/pg{unique}/")
    assert sorted(x["RoleName"] for x in out["Roles"]) == [f"pg-{unique}-{i}" for i in range(3)]


def test_assume_role(portico, unique):
    iam = portico.client("iam")
    sts = portico.client("sts")
    name = f"assume-{unique}"
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    out = sts.assume_role(RoleArn=arn, RoleSessionName="s1", DurationSeconds=900)
    c = out["Credentials"]
    assert re.fullmatch(r"ASIA[A-Z0-9]{16}", c["AccessKeyId"]) and c["SessionToken"]
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::000000000000:assumed-role/{name}/s1"
    import boto3
    who = boto3.client("sts", endpoint_url=portico.endpoint, region_name="us-east-1",
                       aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                       aws_session_token=c["SessionToken"]).get_caller_identity()
    assert who["Arn"] == out["AssumedRoleUser"]["Arn"]
    e = err(sts.assume_role, RoleArn="arn:aws:iam::000000000000:role/nope", RoleSessionName="s1")
    assert e["Error"]["Code"] == "AccessDenied"
    e = err(sts.assume_role, RoleArn=arn, RoleSessionName="s1", DurationSeconds=7200)
    assert e["Error"]["Code"] == "ValidationError"


def test_permissions_boundary(portico, unique):
    iam = portico.client("iam")
    pol = iam.create_policy(PolicyName=f"b-{unique}", PolicyDocument=json.dumps(POLICY))["Policy"]["Arn"]
    r = iam.create_role(RoleName=f"b-{unique}", AssumeRolePolicyDocument=json.dumps(TRUST), PermissionsBoundary=pol)["Role"]
    assert r["PermissionsBoundary"] == {"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": pol}
    assert iam.get_policy(PolicyArn=pol)["Policy"]["PermissionsBoundaryUsageCount"] == 1
    assert err(iam.delete_policy, PolicyArn=pol)["Error"]["Code"] == "DeleteConflict"
    e = err(iam.create_role, RoleName=f"c-{unique}", AssumeRolePolicyDocument=json.dumps(TRUST),
            PermissionsBoundary="arn:aws:iam::000000000000:policy/none")
    assert e["Error"]["Code"] == "NoSuchEntity"
    assert err(iam.get_role, RoleName=f"c-{unique}")["Error"]["Code"] == "NoSuchEntity"
    iam.delete_role_permissions_boundary(RoleName=f"b-{unique}")
    assert "PermissionsBoundary" not in iam.get_role(RoleName=f"b-{unique}")["Role"]
    iam.delete_policy(PolicyArn=pol)


def test_users_and_groups(portico, unique):
    iam = portico.client("iam")
    u, g = f"u-{unique}", f"g-{unique}"
    user = iam.create_user(UserName=u, Tags=[{"Key": "a", "Value": "b"}])["User"]
    assert re.fullmatch(r"AIDA[A-Z0-9]{17}", user["UserId"]) and user["Arn"].endswith(f":user/{u}")
    grp = iam.create_group(GroupName=g)["Group"]
    assert re.fullmatch(r"AGPA[A-Z0-9]{17}", grp["GroupId"])
    assert err(iam.create_user, UserName=u.upper())["Error"]["Code"] == "EntityAlreadyExists"
    iam.add_user_to_group(GroupName=g, UserName=u)
    assert [x["UserName"] for x in iam.get_group(GroupName=g)["Users"]] == [u]
    assert [x["GroupName"] for x in iam.list_groups_for_user(UserName=u)["Groups"]] == [g]
    iam.put_user_policy(UserName=u, PolicyName="p", PolicyDocument=json.dumps(POLICY))
    iam.put_group_policy(GroupName=g, PolicyName="p", PolicyDocument=json.dumps(POLICY))
    assert iam.get_group_policy(GroupName=g, PolicyName="p")["PolicyDocument"] == POLICY
    assert iam.list_user_policies(UserName=u)["PolicyNames"] == ["p"]
    arn = "arn:aws:iam::aws:policy/ReadOnlyAccess"
    iam.attach_user_policy(UserName=u, PolicyArn=arn)
    assert iam.list_attached_user_policies(UserName=u)["AttachedPolicies"] == [{"PolicyName": "ReadOnlyAccess", "PolicyArn": arn}]
    assert err(iam.delete_group, GroupName=g)["Error"]["Code"] == "DeleteConflict"
    assert err(iam.delete_user, UserName=u)["Error"]["Code"] == "DeleteConflict"
    iam.remove_user_from_group(GroupName=g, UserName=u)
    iam.delete_group_policy(GroupName=g, PolicyName="p")
    iam.delete_group(GroupName=g)
    iam.delete_user_policy(UserName=u, PolicyName="p")
    assert err(iam.delete_user, UserName=u)["Error"]["Message"] == "Cannot delete entity, must detach all policies first."
    iam.detach_user_policy(UserName=u, PolicyArn=arn)
    iam.delete_user(UserName=u)
    assert err(iam.get_user, UserName=u)["Error"]["Code"] == "NoSuchEntity"
    assert iam.get_user()["User"]["Arn"] == "arn:aws:iam::000000000000:root"


def test_session_token_and_key_info(portico):
    sts = portico.client("sts")
    c = sts.get_session_token(DurationSeconds=900)["Credentials"]
    assert re.fullmatch(r"ASIA[A-Z0-9]{16}", c["AccessKeyId"])
    assert sts.get_access_key_info(AccessKeyId=c["AccessKeyId"])["Account"] == "000000000000"
    assert sts.get_access_key_info(AccessKeyId="111122223333XXXX")["Account"] == "000000000000"
    assert err(sts.get_session_token, DurationSeconds=200000)["Error"]["Code"] == "ValidationError"
