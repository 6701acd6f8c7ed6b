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
    # both members are required (the SDKs check it first; a raw request gets AWS's error)
    raw = portico.client("elbv2", parameter_validation=False)
    for kw in ({"ResourceArns": [arn]}, {"TagKeys": ["k2"]}):
        with pytest.raises(raw.exceptions.ClientError) as e:
            raw.remove_tags(**kw)
        assert e.value.response["Error"]["Code"] == "ValidationError"
    assert "k2" in tags()
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


def tcp80(**peer):
    return [{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, **peer}]


@pytest.fixture(scope="module")
def scaled():
    """A Portico of this module's own with AWS's waits scaled down tenfold."""
    from conftest import Portico
    p = Portico(extra_args=["--time-scale", "0.1"]).start()
    yield p
    p.stop()


def test_eni_attributes_and_errors(portico):
    ec2 = portico.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.62.0.0/16")["Vpc"]["VpcId"]
    other = ec2.create_vpc(CidrBlock="10.63.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.62.1.0/24")["Subnet"]["SubnetId"]
    sg = lambda name, v=vpc: ec2.create_security_group(GroupName=name, Description=name, VpcId=v)["GroupId"]  # noqa: E731
    a, b, foreign = sg("fid-a"), sg("fid-b"), sg("fid-x", other)
    eni = ec2.create_network_interface(SubnetId=subnet, Groups=[a], Description="before")["NetworkInterface"]
    eid = eni["NetworkInterfaceId"]
    assert eni["SourceDestCheck"] is True

    def attr(name):
        return ec2.describe_network_interface_attribute(NetworkInterfaceId=eid, Attribute=name)

    ec2.modify_network_interface_attribute(NetworkInterfaceId=eid, Description={"Value": "after"})
    assert attr("description")["Description"] == {"Value": "after"}
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eid, SourceDestCheck={"Value": False})
    assert attr("sourceDestCheck")["SourceDestCheck"] == {"Value": False}
    portico.aws("ec2", "modify-network-interface-attribute", "--network-interface-id", eid, "--groups", a, b)
    assert {g["GroupId"] for g in attr("groupSet")["Groups"]} == {a, b}
    [desc] = ec2.describe_network_interfaces(NetworkInterfaceIds=[eid])["NetworkInterfaces"]
    assert (desc["Description"], desc["SourceDestCheck"]) == ("after", False)
    assert [g["GroupName"] for g in desc["Groups"]] == ["fid-a", "fid-b"]
    assert ec2.describe_network_interfaces(Filters=[{"Name": "group-id", "Values": [b]}])["NetworkInterfaces"][0][
        "NetworkInterfaceId"] == eid

    def code(**kw):
        with pytest.raises(ec2.exceptions.ClientError) as e:
            ec2.modify_network_interface_attribute(**kw)
        return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]

    assert code(NetworkInterfaceId=eid, Groups=["sg-0123456789abcdef0"]) == \
        ("InvalidGroup.NotFound", "The security group 'sg-0123456789abcdef0' does not exist")
    assert code(NetworkInterfaceId=eid, Groups=[a, foreign]) == \
        ("InvalidGroup.NotFound", "You have specified two resources that belong to different networks.")
    assert code(NetworkInterfaceId="eni-0123456789abcdef0", Groups=[a])[0] == "InvalidNetworkInterfaceID.NotFound"
    assert code(NetworkInterfaceId=eid, Attachment={"AttachmentId": "eni-attach-0123456789abcdef0",
                                                     "DeleteOnTermination": True})[0] == "InvalidAttachmentID.NotFound"
    # a rejected call changes nothing
    assert {g["GroupId"] for g in attr("groupSet")["Groups"]} == {a, b}
    with pytest.raises(ec2.exceptions.ClientError) as e:
        attr("bogus")
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert "Attachment" not in attr("attachment")


def test_eni_group_changes_reach_the_load_balancer_and_managed_enis_are_refused(scaled):
    p = scaled
    ec2, elb, ecs = p.client("ec2"), p.client("elbv2"), p.client("ecs")
    vpc = ec2.create_vpc(CidrBlock="10.64.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.64.{i}.0/24", AvailabilityZone=f"us-east-1{z}")
               ["Subnet"]["SubnetId"] for i, z in ((1, "a"), (2, "b"))]
    sg = lambda name: ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]  # noqa: E731
    alb_sg, task_sg, closed_sg = sg("alb"), sg("tasks"), sg("closed")
    ec2.authorize_security_group_ingress(GroupId=task_sg, IpPermissions=tcp80(UserIdGroupPairs=[{"GroupId": alb_sg}]))
    lb = elb.create_load_balancer(Name="fid-alb", Subnets=subnets, SecurityGroups=[alb_sg], Scheme="internal",
                                  Type="application")["LoadBalancers"][0]
    tg = elb.create_target_group(Name="fid-tg", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip",
                                 HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                 HealthyThresholdCount=2, UnhealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])

    def reasons():
        return {h["Target"]["Id"]: h["TargetHealth"].get("Reason", h["TargetHealth"]["State"])
                for h in elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]}

    # An interface of the account's own, registered as a target: the groups admit the load
    # balancer but nothing listens there (the checks fail); with a group that does not admit the
    # load balancer, the checks' packets are dropped (they time out).
    own = ec2.create_network_interface(SubnetId=subnets[0], Groups=[task_sg])["NetworkInterface"]
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": own["PrivateIpAddress"], "Port": 80}])
    ip = own["PrivateIpAddress"]
    wait_until(lambda: reasons().get(ip) == "Target.FailedHealthChecks", timeout=60, what="checks fail")
    ec2.modify_network_interface_attribute(NetworkInterfaceId=own["NetworkInterfaceId"], Groups=[closed_sg])
    wait_until(lambda: reasons().get(ip) == "Target.Timeout", timeout=60, what="checks dropped after the group change")
    ec2.modify_network_interface_attribute(NetworkInterfaceId=own["NetworkInterfaceId"], Groups=[closed_sg, task_sg])
    wait_until(lambda: reasons().get(ip) == "Target.FailedHealthChecks", timeout=60, what="checks reach it again")

    # An ECS task's interface is managed by ECS: EC2 refuses to change it.
    ecs.create_cluster(clusterName="fid")
    ecs.register_task_definition(
        family="fid-web", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        containerDefinitions=[{"name": "web", "image": "amazon/amazon-ecs-sample", "essential": True,
                               "portMappings": [{"containerPort": 80, "protocol": "tcp"}]}])
    ecs.run_task(cluster="fid", taskDefinition="fid-web", launchType="FARGATE",
                 networkConfiguration={"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [task_sg]}})
    [task] = ecs.describe_tasks(cluster="fid", tasks=ecs.list_tasks(cluster="fid")["taskArns"])["tasks"]
    eni = next(d["value"] for a in task["attachments"] for d in a["details"] if d["name"] == "networkInterfaceId")
    [managed] = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"]
    assert managed["RequesterManaged"] is True
    with pytest.raises(ec2.exceptions.ClientError) as e:
        ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[closed_sg])
    assert (e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]) == \
        ("AuthFailure", "You do not have permission to access the specified resource.")
    assert [g["GroupId"] for g in ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]
            ["Groups"]] == [task_sg]


class TcpEcho:
    """A loopback TCP echo server (one thread per connection)."""

    def __init__(self):
        import socket
        import threading
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import threading
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(c,), daemon=True).start()

    @staticmethod
    def _echo(c):
        with c:
            while True:
                try:
                    data = c.recv(4096)
                except OSError:
                    return
                if not data:
                    return
                c.sendall(data)


@pytest.fixture(scope="module")
def hundredfold():
    """A Portico with AWS's waits scaled down a hundredfold (350 s -> 3.5 s)."""
    from conftest import Portico
    p = Portico(extra_args=["--time-scale", "0.01"]).start()
    yield p
    p.stop()


def test_nlb_resets_a_tcp_flow_after_the_idle_timeout(hundredfold):
    import socket
    import time
    p = hundredfold
    ec2, elb = p.client("ec2"), p.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.65.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.65.1.0/24")["Subnet"]["SubnetId"]
    echo = TcpEcho()
    tg = elb.create_target_group(Name="fid-tcp", Protocol="TCP", Port=echo.port, VpcId=vpc, TargetType="ip",
                                 HealthCheckIntervalSeconds=5)["TargetGroups"][0]["TargetGroupArn"]
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": echo.port}])
    lb = elb.create_load_balancer(Name="fid-nlb", Subnets=[subnet], Scheme="internal",
                                  Type="network")["LoadBalancers"][0]["LoadBalancerArn"]
    listener = elb.create_listener(LoadBalancerArn=lb, Protocol="TCP", Port=80,
                                   DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])["Listeners"][0]["ListenerArn"]

    def attrs():
        return {a["Key"]: a["Value"] for a in elb.describe_listener_attributes(ListenerArn=listener)["Attributes"]}

    assert attrs()["tcp.idle_timeout.seconds"] == "350"
    with pytest.raises(elb.exceptions.ClientError) as e:
        elb.modify_listener_attributes(ListenerArn=listener, Attributes=[{"Key": "tcp.idle_timeout.seconds", "Value": "59"}])
    assert attrs()["tcp.idle_timeout.seconds"] == "350"
    # 60 s, the shortest AWS allows: 0.6 s at this time scale.
    elb.modify_listener_attributes(ListenerArn=listener, Attributes=[{"Key": "tcp.idle_timeout.seconds", "Value": "60"}])
    assert attrs()["tcp.idle_timeout.seconds"] == "60"
    host, port = attrs()["portico.local_address"].split(":")
    wait_until(lambda: elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"][0]
               ["TargetHealth"]["State"] == "healthy", what="echo target healthy")

    def connect():
        s = socket.create_connection((host, int(port)), timeout=5)
        s.sendall(b"hi")
        assert s.recv(16) == b"hi"
        return s

    def reply_to(s, data):
        try:
            s.sendall(data)
            return s.recv(16)
        except (ConnectionResetError, BrokenPipeError) as x:
            return type(x).__name__

    # the new timeout applies to new flows
    idle = wait_until(lambda: [s for s in [connect()] if not time.sleep(1.5) and reply_to(s, b"x") != b"x"],
                      timeout=20, what="an idle flow reset")[0]
    idle.close()
    # an idle flow: the packet after the timeout is answered with a reset
    s = connect()
    time.sleep(1.5)
    assert reply_to(s, b"late") == "ConnectionResetError"
    s.close()
    # a flow that keeps talking stays up past the timeout
    s = connect()
    for _ in range(8):
        time.sleep(0.15)
        assert reply_to(s, b"x") == b"x"
    s.close()


def test_reset_authorizers_cache_refetches_jwt_signing_keys(portico, unique):
    from cryptography.hazmat.primitives.asymmetric import rsa

    from apigw_backend import Backend
    from test_apigw_jwt import Issuer, call, make_jwt_api

    backend, issuer = Backend().start(), Issuer()
    try:
        issuer.add_key("k1")
        p, apigw = portico, portico.client("apigatewayv2")
        api_id = make_jwt_api(p, backend, issuer, unique)
        old = issuer.token()
        wait_until(lambda: call(p, api_id, "/items", old).status_code == 200, what="JWT route served")
        fetches = issuer.jwks_fetches
        # the issuer replaces k1: the cached key still accepts tokens signed with the old one
        issuer.keys["old"], issuer.keys["k1"] = issuer.keys["k1"], rsa.generate_private_key(public_exponent=65537, key_size=2048)
        old = issuer.token(sign_with="old")
        assert call(p, api_id, "/items", old).status_code == 200
        assert issuer.jwks_fetches == fetches

        with pytest.raises(apigw.exceptions.NotFoundException):
            apigw.reset_authorizers_cache(ApiId=api_id, StageName="nope")
        p.aws("apigatewayv2", "reset-authorizers-cache", "--api-id", api_id, "--stage-name", "$default")
        wait_until(lambda: issuer.jwks_fetches == fetches + 1, what="the key set fetched again")
        r = call(p, api_id, "/items", old)
        assert r.status_code == 401 and 'error_description="the token signature is invalid"' in r.headers["www-authenticate"]
        assert call(p, api_id, "/items", issuer.token()).status_code == 200
        assert issuer.jwks_fetches == fetches + 1
        # the reset is not part of the stage as GetStage shows it
        assert not any(k.startswith("_") for k in apigw.get_stage(ApiId=api_id, StageName="$default"))
    finally:
        backend.stop()
        issuer.stop()
