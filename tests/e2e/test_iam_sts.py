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
