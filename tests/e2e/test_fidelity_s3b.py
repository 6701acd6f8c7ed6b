"""Fidelity follow-ups (session 3b): an ALB HTTPS listener's own socket answers a plain-HTTP
request with the ALB's 400 page "The plain HTTP request was sent to HTTPS port" and closes,
while TLS clients on the same listener are still served; SSM tags refuse AWS's reserved aws:
prefix. Each test drives Portico through boto3 (and raw sockets for the data plane)."""

import http.client
import json
import shutil
import socket

import pytest

from conftest import wait_until
from lb_backend import Backend
from test_elbv2_tls import https_get, local_address, make_cert, tls_connect

PAGE = ("<html>\r\n<head><title>400 The plain HTTP request was sent to HTTPS port</title></head>\r\n"
        "<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n"
        "<center>The plain HTTP request was sent to HTTPS port</center>\r\n</body>\r\n</html>\r\n")


def raw_exchange(addr, data):
    """Sends `data` on a fresh connection and reads until the server closes."""
    with socket.create_connection(addr, timeout=10) as s:
        s.sendall(data)
        got = b""
        while chunk := s.recv(4096):
            got += chunk
    return got


@pytest.fixture(scope="module")
def https_alb(portico, tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl CLI")
    p = portico
    crt, key = make_cert(tmp_path_factory.mktemp("certs"), "plain.example.com")
    cert = p.client("iam").upload_server_certificate(
        ServerCertificateName="fid-s3b-plain", CertificateBody=crt.read_text(),
        PrivateKey=key.read_text())["ServerCertificateMetadata"]["Arn"]
    ec2, elb = p.client("ec2"), p.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.62.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.62.{i}.0/24", AvailabilityZone=f"us-east-1{z}")
               ["Subnet"]["SubnetId"] for i, z in ((1, "a"), (2, "b"))]
    backend = Backend()
    tg = elb.create_target_group(Name="fid-s3b-tg", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip")
    tg = tg["TargetGroups"][0]["TargetGroupArn"]
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": backend.port}])
    lb = elb.create_load_balancer(Name="fid-s3b-alb", Subnets=subnets, Scheme="internal")["LoadBalancers"][0]
    listener = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTPS", Port=443,
                                   Certificates=[{"CertificateArn": cert}],
                                   DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    arn = listener["Listeners"][0]["ListenerArn"]
    addr = wait_until(lambda: local_address(elb, arn), what="HTTPS listener bound")
    wait_until(lambda: https_get(addr, "plain.example.com", "/", crt)[0] == 200, what="HTTPS served")
    yield {"addr": addr, "crt": crt}
    backend.stop()


def test_plain_http_on_https_listener_gets_the_400_page_then_close(https_alb):
    addr = https_alb["addr"]
    got = raw_exchange(addr, b"GET /x HTTP/1.1\r\nHost: plain.example.com\r\n\r\n")
    head, _, body = got.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 400 Bad Request"
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
    assert headers["server"] == "awselb/2.0"
    assert headers["content-type"] == "text/html"
    assert headers["connection"] == "close"
    assert int(headers["content-length"]) == len(body)
    assert body.decode() == PAGE
    # A request with a body, through an ordinary HTTP client: the same page.
    c = http.client.HTTPConnection(*addr, timeout=10)
    c.request("POST", "/submit", body=b"x" * 1000, headers={"Host": "plain.example.com"})
    r = c.getresponse()
    assert (r.status, r.getheader("Server")) == (400, "awselb/2.0")
    assert b"The plain HTTP request was sent to HTTPS port" in r.read()
    c.close()


def test_tls_clients_still_served_beside_plain_and_silent_connections(https_alb):
    addr, crt = https_alb["addr"], https_alb["crt"]
    # A client that connects and leaves without a byte, and one plain request, change nothing.
    socket.create_connection(addr, timeout=10).close()
    got = raw_exchange(addr, b"HEAD / HTTP/1.0\r\n\r\n")
    assert got.split(b"\r\n")[0] == b"HTTP/1.0 400 Bad Request" and got.endswith(b"\r\n\r\n")  # no body
    status, _, body = https_get(addr, "plain.example.com", "/after?plain=1", crt)
    assert status == 200 and json.loads(body)["path"] == "/after?plain=1"
    with tls_connect(addr, "plain.example.com", crt, ["h2", "http/1.1"]) as s:
        assert s.selected_alpn_protocol() == "h2"


def test_ssm_tags_refuse_aws_prefixed_keys(portico, unique):
    ssm = portico.client("ssm")
    name = f"/fid-s3b/{unique}"
    ssm.put_parameter(Name=name, Type="String", Value="v", Tags=[{"Key": "team", "Value": "a"}])

    def tags():
        return {t["Key"]: t["Value"] for t in
                ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"]}

    for key in ("aws:x", "AWS:cloudformation:stack-name"):
        with pytest.raises(ssm.exceptions.ClientError) as e:
            ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId=name,
                                     Tags=[{"Key": "ok", "Value": "1"}, {"Key": key, "Value": "1"}])
        err = e.value.response["Error"]
        assert err["Code"] == "ValidationException" and key in err["Message"]
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert tags() == {"team": "a"}  # nothing added, not even the valid tag
    with pytest.raises(ssm.exceptions.ClientError) as e:
        ssm.remove_tags_from_resource(ResourceType="Parameter", ResourceId=name, TagKeys=["team", "aws:x"])
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert tags() == {"team": "a"}
    r = portico.aws("ssm", "add-tags-to-resource", "--resource-type", "Parameter", "--resource-id", name,
                    "--tags", "Key=aws:y,Value=1", check=False)
    assert r.returncode != 0 and "ValidationException" in r.stderr
    with pytest.raises(ssm.exceptions.ClientError) as e:
        ssm.put_parameter(Name=f"{name}-2", Type="String", Value="v", Tags=[{"Key": "aws:z", "Value": "1"}])
    assert e.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ssm.exceptions.ParameterNotFound):
        ssm.get_parameter(Name=f"{name}-2")
    # Ordinary keys still come and go; the members are required (a raw request gets AWS's error).
    ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId=name, Tags=[{"Key": "awsome", "Value": "1"}])
    ssm.remove_tags_from_resource(ResourceType="Parameter", ResourceId=name, TagKeys=["team"])
    assert tags() == {"awsome": "1"}
    raw = portico.client("ssm", parameter_validation=False)
    with pytest.raises(raw.exceptions.ClientError) as e:
        raw.remove_tags_from_resource(ResourceType="Parameter", ResourceId=name)
    assert e.value.response["Error"]["Message"] == (
        "1 validation error detected: Value null at 'tagKeys' failed to satisfy constraint: "
        "Member must not be null")


def test_ec2_attribute_calls_name_one_attribute_at_a_time(portico):
    ec2 = portico.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.63.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.63.1.0/24")["Subnet"]["SubnetId"]
    eni = ec2.create_network_interface(SubnetId=subnet, Description="d0")["NetworkInterface"]["NetworkInterfaceId"]

    def error(fn, **kw):
        with pytest.raises(ec2.exceptions.ClientError) as e:
            fn(**kw)
        return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]

    multiple = "InvalidParameterCombination", "Fields for multiple attribute types specified: "
    code, msg = error(ec2.modify_vpc_attribute, VpcId=vpc, EnableDnsSupport={"Value": True},
                      EnableDnsHostnames={"Value": True})
    assert (code, msg) == (multiple[0], multiple[1] + "enableDnsSupport, enableDnsHostnames")
    assert error(ec2.modify_vpc_attribute, VpcId=vpc) == ("InvalidParameterCombination", "No attributes specified.")
    code, msg = error(ec2.modify_network_interface_attribute, NetworkInterfaceId=eni,
                      Description={"Value": "d1"}, SourceDestCheck={"Value": False})
    assert (code, msg) == (multiple[0], multiple[1] + "description, sourceDestCheck")
    assert error(ec2.modify_network_interface_attribute, NetworkInterfaceId=eni) == (
        "InvalidParameterCombination", "No attributes specified.")
    # Nothing changed; one attribute at a time works.
    got = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]
    assert got["Description"] == "d0" and got["SourceDestCheck"] is True
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Description={"Value": "d1"})
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    assert ec2.describe_vpc_attribute(VpcId=vpc, Attribute="enableDnsHostnames")["EnableDnsHostnames"]["Value"]
    assert ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]["Description"] == "d1"


def test_apigw_reserved_tag_key_message(portico, unique):
    apigw = portico.client("apigatewayv2")
    msg = "Invalid tag key. Tag keys cannot start with 'aws:' (case insensitive)"
    with pytest.raises(apigw.exceptions.BadRequestException) as e:
        apigw.create_api(Name=f"fid-s3b-{unique}", ProtocolType="HTTP", Tags={"AWS:x": "1"})
    assert e.value.response["Error"]["Message"] == msg
    api = apigw.create_api(Name=f"fid-s3b-{unique}", ProtocolType="HTTP", Tags={"team": "a"})
    arn = f"arn:aws:apigateway:us-east-1::/apis/{api['ApiId']}"
    for call in (lambda: apigw.tag_resource(ResourceArn=arn, Tags={"aws:y": "1"}),
                 lambda: apigw.untag_resource(ResourceArn=arn, TagKeys=["team", "aws:y"])):
        with pytest.raises(apigw.exceptions.BadRequestException) as e:
            call()
        assert e.value.response["Error"]["Message"] == msg
    assert apigw.get_tags(ResourceArn=arn)["Tags"] == {"team": "a"}


def test_ssm_tag_members_are_validated_as_the_model_says(portico, unique):
    ssm = portico.client("ssm")
    name = f"/fid-s3b/v-{unique}"
    with pytest.raises(ssm.exceptions.ClientError) as e:
        ssm.put_parameter(Name=name, Type="String", Value="v", Tags=[{"Key": "a!b", "Value": "v"}])
    err = e.value.response["Error"]
    assert err["Code"] == "ValidationException"
    assert err["Message"].startswith("1 validation error detected: Value 'a!b' at 'tags.1.member.key' "
                                     "failed to satisfy constraint: Member must satisfy regular expression pattern")
    with pytest.raises(ssm.exceptions.ParameterNotFound):
        ssm.get_parameter(Name=name)
    ssm.put_parameter(Name=name, Type="String", Value="v", Tags=[{"Key": "Équipe 1", "Value": "a/b@c"}])
    with pytest.raises(ssm.exceptions.ClientError) as e:
        ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId=name,
                                 Tags=[{"Key": "x", "Value": "semi;colon"}, {"Key": "k" * 129, "Value": ""}])
    assert e.value.response["Error"]["Message"].startswith("2 validation errors detected: ")
    raw = portico.client("ssm", parameter_validation=False)
    with pytest.raises(raw.exceptions.ClientError) as e:
        raw.remove_tags_from_resource(ResourceType="Bucket", ResourceId=name, TagKeys=["Équipe 1"])
    assert "at 'resourceType' failed to satisfy constraint: Member must satisfy enum value set" in \
        e.value.response["Error"]["Message"]
    assert ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"] == [
        {"Key": "Équipe 1", "Value": "a/b@c"}]
