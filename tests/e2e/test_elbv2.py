"""ELBv2 end to end: an internal ALB with two target groups and rules in front of small HTTP
servers this test starts on 127.0.0.1, driven by boto3 and the AWS CLI. Proves rule matching,
weights over 1,000 requests, health transitions, AWS's 502/503/504 pages, draining, an NLB
passing TCP bytes through, and bad input that changes nothing.

Portico runs with --time-scale 0.1 here: health-check intervals and deregistration delays are a
tenth of the configured values (see docs/elbv2.md)."""

import json
import shutil
import socket
import subprocess
import threading
import time

import botocore.exceptions
import pytest
import requests

from conftest import Portico, wait_until
from lb_backend import Backend


def err(fn, *a, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fn(*a, **kw)
    return e.value.response["Error"]


@pytest.fixture(scope="module")
def p():
    p = Portico(extra_args=["--time-scale", "0.1"]).start()
    yield p
    p.stop()


@pytest.fixture(scope="module")
def net(p):
    ec2 = p.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    a = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    b = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.2.0/24", AvailabilityZone="us-east-1b")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="alb", Description="alb", VpcId=vpc)["GroupId"]
    return {"vpc": vpc, "subnets": [a, b], "sg": sg}


def make_tg(elb, name, vpc, protocol="HTTP", **kw):
    hc = dict(HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2,
              UnhealthyThresholdCount=2)
    if protocol == "HTTP":
        hc["HealthCheckPath"] = "/health"
    hc.update(kw)
    return elb.create_target_group(Name=name, Protocol=protocol, Port=80, VpcId=vpc, TargetType="ip",
                                   **hc)["TargetGroups"][0]["TargetGroupArn"]


def health(elb, tg):
    return [(d["Target"]["Port"], d["TargetHealth"]["State"], d["TargetHealth"].get("Reason"))
            for d in elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]]


def states(elb, tg):
    return [s for _, s, _ in health(elb, tg)]


def local_address(elb, listener):
    attrs = elb.describe_listener_attributes(ListenerArn=listener)["Attributes"]
    return {a["Key"]: a["Value"] for a in attrs}.get("portico.local_address")


@pytest.fixture(scope="module")
def alb(p, net):
    elb = p.client("elbv2")
    a, b = Backend("A"), Backend("B")
    tg_a = make_tg(elb, "tg-a", net["vpc"])
    tg_b = make_tg(elb, "tg-b", net["vpc"])
    elb.register_targets(TargetGroupArn=tg_a, Targets=[{"Id": "127.0.0.1", "Port": a.port}])
    elb.register_targets(TargetGroupArn=tg_b, Targets=[{"Id": "127.0.0.1", "Port": b.port}])
    assert states(elb, tg_a) == ["unused"]  # not behind a load balancer yet
    lb = elb.create_load_balancer(Name="web-alb", Subnets=net["subnets"], SecurityGroups=[net["sg"]],
                                  Scheme="internal", Type="application",
                                  Tags=[{"Key": "env", "Value": "test"}])["LoadBalancers"][0]
    assert lb["State"]["Code"] == "provisioning"
    assert lb["DNSName"].startswith("internal-web-alb-") and lb["DNSName"].endswith(".us-east-1.elb.localhost")
    arn = lb["LoadBalancerArn"]
    listener = elb.create_listener(LoadBalancerArn=arn, Protocol="HTTP", Port=80,
                                   DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_a}])["Listeners"][0]
    lst = listener["ListenerArn"]
    elb.create_rule(ListenerArn=lst, Priority=10,
                    Conditions=[{"Field": "path-pattern", "Values": ["/b/*"]}],
                    Actions=[{"Type": "forward", "TargetGroupArn": tg_b}])
    elb.create_rule(ListenerArn=lst, Priority=20,
                    Conditions=[{"Field": "host-header", "HostHeaderConfig": {"Values": ["*.example.com"]}}],
                    Actions=[{"Type": "fixed-response", "FixedResponseConfig": {
                        "StatusCode": "418", "ContentType": "text/plain", "MessageBody": "teapot"}}])
    elb.create_rule(ListenerArn=lst, Priority=30,
                    Conditions=[{"Field": "http-header", "HttpHeaderConfig": {
                        "HttpHeaderName": "X-Env", "Values": ["canary"]}}],
                    Actions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [
                        {"TargetGroupArn": tg_a, "Weight": 1}, {"TargetGroupArn": tg_b, "Weight": 3}]}}])
    elb.create_rule(ListenerArn=lst, Priority=40,
                    Conditions=[{"Field": "query-string", "QueryStringConfig": {"Values": [
                        {"Key": "go", "Value": "away"}]}}, {"Field": "http-request-method",
                                                            "HttpRequestMethodConfig": {"Values": ["GET"]}}],
                    Actions=[{"Type": "redirect", "RedirectConfig": {
                        "Host": "elsewhere.example.org", "StatusCode": "HTTP_302"}}])
    wait_until(lambda: elb.describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"][0]["State"]["Code"]
               == "active", what="ALB active")
    addr = local_address(elb, lst)
    assert addr and addr.startswith("127.")
    wait_until(lambda: states(elb, tg_a) == ["healthy"] and states(elb, tg_b) == ["healthy"],
               what="targets healthy")
    yield {"elb": elb, "arn": arn, "listener": lst, "tg_a": tg_a, "tg_b": tg_b, "a": a, "b": b,
           "url": f"http://{addr}", "dns": lb["DNSName"]}
    a.stop()
    b.stop()


def test_rules_route_requests(p, alb):
    url = alb["url"]
    s = requests.Session()
    r = s.get(url + "/x?y=1")
    body = r.json()
    assert r.status_code == 200 and body["name"] == "A" and body["path"] == "/x?y=1"
    h = body["headers"]
    assert h["x-forwarded-for"] == "127.0.0.1"
    assert h["x-forwarded-proto"] == "http" and h["x-forwarded-port"] == "80"
    assert h["x-amzn-trace-id"].startswith("Root=1-")
    r = s.get(url + "/b/deep/path", headers={"X-Forwarded-For": "203.0.113.9"})
    assert r.json()["name"] == "B"
    assert r.json()["headers"]["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    r = s.get(url + "/", headers={"Host": "api.example.com"})
    assert (r.status_code, r.text, r.headers["Server"]) == (418, "teapot", "awselb/2.0")
    r = s.get(url + "/", headers={"Host": "example.com"})  # *.example.com needs a subdomain
    assert r.json()["name"] == "A"
    r = s.get(url + "/p?go=AWAY", allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"] == "http://elsewhere.example.org/p?go=AWAY"
    # The same ALB through the main port, addressed by its DNS name.
    r = requests.get(p.endpoint + "/b/1", headers={"Host": alb["dns"]})
    assert r.status_code == 200 and r.json()["name"] == "B"
    # Garbage on the listener socket gets a 400 and leaves other connections alone.
    host, port = url[len("http://"):].split(":")
    with socket.create_connection((host, int(port))) as c:
        c.sendall(b"\x16\x03\x01 this is not http\r\n\r\n")
        assert c.recv(100).startswith(b"HTTP/1.1 400")
    assert s.get(url + "/still-fine").status_code == 200
    # HTTP/2 from the client (h2c with prior knowledge); the target still sees HTTP/1.1.
    if shutil.which("curl"):
        out = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-w", "\n%{http_version}", url + "/b/h2"],
                             capture_output=True, text=True, timeout=10).stdout
        body, version = out.rsplit("\n", 1)
        assert version == "2" and json.loads(body)["name"] == "B"


def test_weights_within_tolerance(alb):
    s = requests.Session()
    names = [s.get(alb["url"] + "/w", headers={"X-Env": "canary"}).json()["name"] for _ in range(1000)]
    share_b = names.count("B") / 1000
    assert 0.70 <= share_b <= 0.80, share_b


def test_describe_shapes_with_cli(p, alb):
    out = p.aws("elbv2", "describe-load-balancers", "--names", "web-alb")
    lb = out["LoadBalancers"][0]
    assert lb["Scheme"] == "internal" and lb["Type"] == "application" and len(lb["AvailabilityZones"]) == 2
    rules = p.aws("elbv2", "describe-rules", "--listener-arn", alb["listener"])["Rules"]
    assert [r["Priority"] for r in rules] == ["10", "20", "30", "40", "default"]
    assert rules[-1]["IsDefault"] is True
    assert rules[0]["Conditions"][0]["PathPatternConfig"]["Values"] == ["/b/*"]
    tgs = p.aws("elbv2", "describe-target-groups", "--load-balancer-arn", alb["arn"])["TargetGroups"]
    assert {t["TargetGroupName"] for t in tgs} == {"tg-a", "tg-b"}
    assert all(t["LoadBalancerArns"] == [alb["arn"]] for t in tgs)
    th = p.aws("elbv2", "describe-target-health", "--target-group-arn", alb["tg_a"])
    assert th["TargetHealthDescriptions"][0]["TargetHealth"]["State"] == "healthy"
    elb = alb["elb"]
    page1 = elb.describe_rules(ListenerArn=alb["listener"], PageSize=2)
    assert len(page1["Rules"]) == 2 and page1["NextMarker"]
    page2 = elb.describe_rules(ListenerArn=alb["listener"], PageSize=10, Marker=page1["NextMarker"])
    assert len(page2["Rules"]) == 3 and "NextMarker" not in page2
    tags = elb.describe_tags(ResourceArns=[alb["arn"]])["TagDescriptions"][0]["Tags"]
    assert tags == [{"Key": "env", "Value": "test"}]
    attrs = {a["Key"]: a["Value"] for a in
             elb.describe_load_balancer_attributes(LoadBalancerArn=alb["arn"])["Attributes"]}
    assert attrs["idle_timeout.timeout_seconds"] == "60"
    eni = p.client("ec2").describe_network_interfaces(
        Filters=[{"Name": "description", "Values": [f"ELB app/web-alb/{alb['arn'].rsplit('/', 1)[1]}"]}])
    assert len(eni["NetworkInterfaces"]) == 2


def test_error_pages(p, net, alb):
    elb, lst = alb["elb"], alb["listener"]
    empty = make_tg(elb, "tg-empty", net["vpc"])
    dead = make_tg(elb, "tg-dead", net["vpc"])
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    dead_port = free.getsockname()[1]
    free.close()
    elb.register_targets(TargetGroupArn=dead, Targets=[{"Id": "127.0.0.1", "Port": dead_port}])
    elb.create_rule(ListenerArn=lst, Priority=50, Conditions=[{"Field": "path-pattern", "Values": ["/empty"]}],
                    Actions=[{"Type": "forward", "TargetGroupArn": empty}])
    elb.create_rule(ListenerArn=lst, Priority=60, Conditions=[{"Field": "path-pattern", "Values": ["/dead"]}],
                    Actions=[{"Type": "forward", "TargetGroupArn": dead}])
    url = alb["url"]

    def status(path):
        return requests.get(url + path).status_code

    wait_until(lambda: status("/empty") == 503, what="rule published")
    r = requests.get(url + "/empty")
    assert r.headers["Server"] == "awselb/2.0" and "503 Service Temporarily Unavailable" in r.text
    # Nothing listens behind the dead target: it turns unhealthy, the ALB fails open, refused -> 502.
    wait_until(lambda: states(elb, dead) == ["unhealthy"], what="dead target unhealthy")
    assert health(elb, dead)[0][2] == "Target.FailedHealthChecks"
    r = requests.get(url + "/dead")
    assert r.status_code == 502 and "502 Bad Gateway" in r.text
    # A target slower than the idle timeout -> 504.
    elb.modify_load_balancer_attributes(LoadBalancerArn=alb["arn"], Attributes=[
        {"Key": "idle_timeout.timeout_seconds", "Value": "1"}])
    try:
        wait_until(lambda: status("/slow?s=2.5") == 504, what="504 on slow target")
    finally:
        elb.modify_load_balancer_attributes(LoadBalancerArn=alb["arn"], Attributes=[
            {"Key": "idle_timeout.timeout_seconds", "Value": "60"}])


def test_health_transitions(alb):
    elb, a = alb["elb"], alb["a"]
    a.health_status = 500
    wait_until(lambda: health(alb["elb"], alb["tg_a"])[0][1:] == ("unhealthy", "Target.ResponseCodeMismatch"),
               what="target A unhealthy")
    d = elb.describe_target_health(TargetGroupArn=alb["tg_a"])["TargetHealthDescriptions"][0]
    assert d["TargetHealth"]["Description"] == "Health checks failed with these codes: [500]"
    # All targets unhealthy: the ALB fails open and still routes to A.
    assert requests.get(alb["url"] + "/x").json()["name"] == "A"
    a.health_status = 200
    wait_until(lambda: states(elb, alb["tg_a"]) == ["healthy"], what="target A healthy again")
    # A stopped server fails its checks; started again on the same port it recovers.
    port = a.port
    a.stop()
    wait_until(lambda: health(elb, alb["tg_a"])[0][1:] == ("unhealthy", "Target.FailedHealthChecks"),
               what="stopped target unhealthy")
    alb["a"] = Backend("A", port=port)
    wait_until(lambda: states(elb, alb["tg_a"]) == ["healthy"], what="restarted target healthy")


def test_draining_lets_slow_request_finish(alb):
    elb, tg = alb["elb"], alb["tg_b"]
    extra = Backend("B2")
    try:
        # 30 s configured, 3 s at --time-scale 0.1.
        elb.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": "30"}])
        elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": extra.port}])
        wait_until(lambda: states(elb, tg) == ["healthy", "healthy"], what="both B targets healthy")
        result = {}
        b_port = alb["b"].port

        def slow():
            # Round robin over two targets: send until one slow request lands on the original B.
            for _ in range(4):
                r = requests.get(alb["url"] + "/b/slow?s=1.5")
                if r.json()["name"] == "B":
                    result["r"] = r
                    return

        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.5)
        elb.deregister_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": b_port}])
        assert dict((port, s) for port, s, _ in health(elb, tg))[b_port] == "draining"
        for _ in range(5):  # no new requests reach the draining target
            assert requests.get(alb["url"] + "/b/x").json()["name"] == "B2"
        t.join()
        assert result["r"].status_code == 200
        wait_until(lambda: [port for port, _, _ in health(elb, tg)] == [extra.port], timeout=15,
                   what="drained target removed")
        gone = elb.describe_target_health(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": b_port}])
        assert gone["TargetHealthDescriptions"][0]["TargetHealth"]["Reason"] == "Target.NotRegistered"
    finally:
        elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": alb["b"].port}])
        elb.deregister_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": extra.port}])
        extra.stop()


def test_nlb_passes_tcp_through(p, net):
    elb = p.client("elbv2")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]

    def echo():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            with c:
                data = b""
                while chunk := c.recv(4096):
                    data += chunk
                if data:  # health checks connect and close without data
                    c.sendall(b"echo:" + data)

    threading.Thread(target=echo, daemon=True).start()
    tg = make_tg(elb, "tcp-tg", net["vpc"], protocol="TCP", HealthCheckTimeoutSeconds=2)
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": port}])
    lb = elb.create_load_balancer(Name="tcp-nlb", Subnets=net["subnets"][:1], Scheme="internal",
                                  Type="network")["LoadBalancers"][0]
    assert "SecurityGroups" not in lb
    lst = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="TCP", Port=7000,
                              DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])["Listeners"][0]
    wait_until(lambda: states(elb, tg) == ["healthy"], what="TCP target healthy")
    host, lport = local_address(elb, lst["ListenerArn"]).split(":")
    with socket.create_connection((host, int(lport))) as c:
        c.sendall(b"hello ")
        c.sendall(b"world")
        c.shutdown(socket.SHUT_WR)  # half-close: the reply still comes back
        got = b""
        while chunk := c.recv(4096):
            got += chunk
    assert got == b"echo:hello world"
    srv.close()
    wait_until(lambda: health(elb, tg)[0][1:] == ("unhealthy", "Target.FailedHealthChecks"),
               what="TCP target unhealthy after stop")


def test_bad_input_changes_nothing(p, net, alb):
    elb, lst = alb["elb"], alb["listener"]
    before_rules = elb.describe_rules(ListenerArn=lst)["Rules"]
    before_listeners = elb.describe_listeners(LoadBalancerArn=alb["arn"])["Listeners"]
    before_tgs = elb.describe_target_groups()["TargetGroups"]
    fwd_a = [{"Type": "forward", "TargetGroupArn": alb["tg_a"]}]
    e = err(elb.create_rule, ListenerArn=lst, Priority=10,
            Conditions=[{"Field": "path-pattern", "Values": ["/other"]}], Actions=fwd_a)
    assert e["Code"] == "PriorityInUse"
    tcp = make_tg(elb, "tcp-for-alb", net["vpc"], protocol="TCP")
    e = err(elb.create_rule, ListenerArn=lst, Priority=99,
            Conditions=[{"Field": "path-pattern", "Values": ["/tcp"]}],
            Actions=[{"Type": "forward", "TargetGroupArn": tcp}])
    assert e["Code"] == "IncompatibleProtocols"
    e = err(elb.create_listener, LoadBalancerArn=alb["arn"], Protocol="HTTP", Port=80,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": alb["tg_b"]}])
    assert e["Code"] == "DuplicateListener"
    e = err(elb.create_listener, LoadBalancerArn=alb["arn"], Protocol="TCP", Port=81, DefaultActions=fwd_a)
    assert e["Code"] == "UnsupportedProtocol"
    for bad in ["-bad", "x" * 33, "has_underscore"]:
        assert err(elb.create_target_group, Name=bad, Protocol="HTTP", Port=80, VpcId=net["vpc"],
                   TargetType="ip")["Code"] == "ValidationError"
    e = err(elb.create_load_balancer, Name="internal-nope", Subnets=net["subnets"])
    assert e["Code"] == "ValidationError"
    e = err(elb.create_load_balancer, Name="one-az", Subnets=net["subnets"][:1])
    assert e["Code"] == "InvalidConfigurationRequest"
    e = err(elb.create_load_balancer, Name="no-subnet", Subnets=["subnet-0000000000000dead", net["subnets"][0]])
    assert e["Code"] == "SubnetNotFound"
    for conds in [
        [{"Field": "path-pattern", "Values": ["/a"], "PathPatternConfig": {"Values": ["/a"]}}],
        [{"Field": "no-such-field", "Values": ["/a"]}],
        [{"Field": "host-header", "Values": ["nodot"]}],
        [{"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/99"]}}],
        [{"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["get"]}}],
    ]:
        e = err(elb.create_rule, ListenerArn=lst, Priority=98, Conditions=conds, Actions=fwd_a)
        assert e["Code"] == "ValidationError", conds
    e = err(elb.register_targets, TargetGroupArn=alb["tg_a"], Targets=[{"Id": "8.8.8.8"}])
    assert e["Code"] == "InvalidTarget"
    e = err(elb.delete_target_group, TargetGroupArn=alb["tg_a"])
    assert e["Code"] == "ResourceInUse"
    e = err(elb.delete_rule, RuleArn=before_rules[-1]["RuleArn"])
    assert e["Code"] == "OperationNotPermitted"
    e = err(elb.describe_load_balancers, LoadBalancerArns=[alb["arn"] + "0"])
    assert e["Code"] == "LoadBalancerNotFound"
    e = err(elb.modify_target_group_attributes, TargetGroupArn=alb["tg_a"], Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "5000"}])
    assert e["Code"] == "InvalidConfigurationRequest"
    assert elb.describe_rules(ListenerArn=lst)["Rules"] == before_rules
    assert elb.describe_listeners(LoadBalancerArn=alb["arn"])["Listeners"] == before_listeners
    names = {t["TargetGroupName"] for t in elb.describe_target_groups()["TargetGroups"]}
    assert names == {t["TargetGroupName"] for t in before_tgs} | {"tcp-for-alb"}
    assert [t["Target"]["Id"] for t in
            elb.describe_target_health(TargetGroupArn=alb["tg_a"])["TargetHealthDescriptions"]] == ["127.0.0.1"]
    elb.delete_target_group(TargetGroupArn=tcp)


def test_lifecycle_and_mutators(p, net):
    elb = p.client("elbv2")
    one, two = Backend("one"), Backend("two")
    try:
        tg1 = make_tg(elb, "life-1", net["vpc"])
        tg2 = make_tg(elb, "life-2", net["vpc"])
        elb.register_targets(TargetGroupArn=tg1, Targets=[{"Id": "127.0.0.1", "Port": one.port}])
        elb.register_targets(TargetGroupArn=tg2, Targets=[{"Id": "127.0.0.1", "Port": two.port}])
        kw = dict(Name="life-alb", Subnets=net["subnets"], Scheme="internal")
        lb = elb.create_load_balancer(**kw)["LoadBalancers"][0]
        arn = lb["LoadBalancerArn"]
        assert elb.create_load_balancer(**kw)["LoadBalancers"][0]["LoadBalancerArn"] == arn
        assert err(elb.create_load_balancer, Name="life-alb", Subnets=net["subnets"],
                   Scheme="internet-facing")["Code"] == "DuplicateLoadBalancerName"
        lst = elb.create_listener(LoadBalancerArn=arn, Protocol="HTTP", Port=8080,
                                  DefaultActions=[{"Type": "forward", "TargetGroupArn": tg1}])["Listeners"][0]["ListenerArn"]
        r10 = elb.create_rule(ListenerArn=lst, Priority=10, Conditions=[{"Field": "path-pattern", "Values": ["/x"]}],
                              Actions=[{"Type": "forward", "TargetGroupArn": tg2}])["Rules"][0]["RuleArn"]
        r20 = elb.create_rule(ListenerArn=lst, Priority=20, Conditions=[{"Field": "path-pattern", "Values": ["/y"]}],
                              Actions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "204"}}])["Rules"][0]["RuleArn"]
        p.aws("elbv2", "wait", "load-balancer-available", "--load-balancer-arns", arn)
        p.aws("elbv2", "wait", "target-in-service", "--target-group-arn", tg1)
        url = "http://" + local_address(elb, lst)
        assert url.endswith(":8080")
        assert requests.get(url + "/x").json()["name"] == "two"
        # Host = DNSName:port on the main port picks the listener on that port.
        r = requests.get(p.endpoint + "/", headers={"Host": lb["DNSName"] + ":8080"})
        assert r.json()["name"] == "one" and r.json()["headers"]["host"] == lb["DNSName"] + ":8080"

        # Priorities swap atomically; a clash changes nothing.
        assert err(elb.set_rule_priorities, RulePriorities=[{"RuleArn": r10, "Priority": 20}])["Code"] == "PriorityInUse"
        elb.set_rule_priorities(RulePriorities=[{"RuleArn": r10, "Priority": 20}, {"RuleArn": r20, "Priority": 10}])
        got = {r["RuleArn"]: r["Priority"] for r in elb.describe_rules(ListenerArn=lst)["Rules"]}
        assert got[r10] == "20" and got[r20] == "10"
        elb.modify_rule(RuleArn=r10, Conditions=[{"Field": "path-pattern", "Values": ["/z"]}])
        wait_until(lambda: requests.get(url + "/z").json()["name"] == "two", what="modified rule")
        assert requests.get(url + "/x").json()["name"] == "one"
        elb.modify_listener(ListenerArn=lst, DefaultActions=[{"Type": "forward", "TargetGroupArn": tg2}])
        wait_until(lambda: requests.get(url + "/").json()["name"] == "two", what="new default action")
        default = [r for r in elb.describe_rules(ListenerArn=lst)["Rules"] if r["IsDefault"]][0]
        assert default["Actions"][0]["TargetGroupArn"] == tg2
        # The listener moves to a new port.
        elb.modify_listener(ListenerArn=lst, Port=8081)
        wait_until(lambda: (local_address(elb, lst) or "").endswith(":8081"), what="listener rebound")

        sg2 = p.client("ec2").create_security_group(GroupName="alb2", Description="x", VpcId=net["vpc"])["GroupId"]
        assert elb.set_security_groups(LoadBalancerArn=arn, SecurityGroups=[sg2])["SecurityGroupIds"] == [sg2]
        assert err(elb.set_security_groups, LoadBalancerArn=arn, SecurityGroups=["sg-0000000000000dead"])["Code"] == \
            "InvalidSecurityGroup"
        assert err(elb.set_subnets, LoadBalancerArn=arn, Subnets=net["subnets"][:1])["Code"] == \
            "InvalidConfigurationRequest"
        elb.add_tags(ResourceArns=[arn, tg1], Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
        elb.remove_tags(ResourceArns=[arn], TagKeys=["a"])
        tags = {d["ResourceArn"]: d["Tags"] for d in elb.describe_tags(ResourceArns=[arn, tg1])["TagDescriptions"]}
        assert tags[arn] == [{"Key": "b", "Value": "2"}] and len(tags[tg1]) == 2

        elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[
            {"Key": "deletion_protection.enabled", "Value": "true"}])
        assert err(elb.delete_load_balancer, LoadBalancerArn=arn)["Code"] == "OperationNotPermitted"
        elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[
            {"Key": "deletion_protection.enabled", "Value": "false"}])
        addr = local_address(elb, lst)
        elb.delete_load_balancer(LoadBalancerArn=arn)
        elb.delete_load_balancer(LoadBalancerArn=arn)  # deleting again succeeds
        p.aws("elbv2", "wait", "load-balancers-deleted", "--load-balancer-arns", arn)
        assert err(elb.describe_listeners, ListenerArns=[lst])["Code"] == "ListenerNotFound"
        assert health(elb, tg1)[0][1:] == ("unused", "Target.NotInUse")

        def refused():
            try:
                requests.get(f"http://{addr}/", timeout=2)
                return False
            except requests.ConnectionError:
                return True

        wait_until(refused, what="listener socket closed")
        elb.delete_target_group(TargetGroupArn=tg1)
        elb.delete_target_group(TargetGroupArn=tg2)
    finally:
        one.stop()
        two.stop()


def test_listener_address_survives_restart(fresh_portico):
    p = fresh_portico.start()
    ec2, elb = p.client("ec2"), p.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.30.{i}.0/24", AvailabilityZone=f"us-east-1{z}")
               ["Subnet"]["SubnetId"] for i, z in [(1, "a"), (2, "b")]]
    backend = Backend("R")
    try:
        tg = make_tg(elb, "restart-tg", vpc)
        elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": backend.port}])
        lb = elb.create_load_balancer(Name="restart-alb", Subnets=subnets, Scheme="internal")["LoadBalancers"][0]
        lst = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                                  DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])["Listeners"][0]["ListenerArn"]
        addr = wait_until(lambda: local_address(elb, lst), what="listener bound")
        assert requests.get(f"http://{addr}/").json()["name"] == "R"
        p.kill9()
        p.start()
        elb = p.client("elbv2")
        assert wait_until(lambda: local_address(elb, lst), what="listener bound again") == addr
        wait_until(lambda: requests.get(f"http://{addr}/", timeout=2).json()["name"] == "R", what="serving again")
        assert elb.describe_load_balancers(Names=["restart-alb"])["LoadBalancers"][0]["State"]["Code"] == "active"
    finally:
        backend.stop()
