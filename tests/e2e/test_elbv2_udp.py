"""NLB UDP and TCP_UDP listeners end to end: UDP echo servers this test starts on 127.0.0.1
(each with a TCP listener on the same port for the TCP health check, as on AWS), an NLB with a
UDP listener and one with a TCP_UDP listener, real datagrams through the listener address,
replies coming back from that address, flows pinned to one target (5-tuple hash), health from
the TCP checks, and AWS's protocol-combination errors.

Portico runs with --time-scale 0.1 (health checks ten times faster; see docs/elbv2.md)."""

import socket
import threading

import botocore.exceptions
import pytest

from conftest import Portico, wait_until


def err(fn, *a, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fn(*a, **kw)
    return e.value.response["Error"]


class UdpEcho:
    """Answers each datagram with `<name>:<data>`; also accepts TCP on the same port (health
    checks, and TCP_UDP's TCP half, which gets `tcp-<name>:<data>`)."""

    def __init__(self, name):
        self.name = name
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.port = self.udp.getsockname()[1]
        self.tcp = socket.socket()
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen(16)
        self.peers = set()
        threading.Thread(target=self._udp, daemon=True).start()
        threading.Thread(target=self._tcp, daemon=True).start()

    def _udp(self):
        while True:
            try:
                data, peer = self.udp.recvfrom(65535)
            except OSError:
                return
            self.peers.add(peer)
            self.udp.sendto(self.name.encode() + b":" + data, peer)

    def _tcp(self):
        while True:
            try:
                c, _ = self.tcp.accept()
            except OSError:
                return
            with c:
                data = c.recv(4096)
                if data:
                    c.sendall(b"tcp-" + self.name.encode() + b":" + data)

    def stop_tcp(self):
        self.tcp.close()

    def stop(self):
        self.udp.close()
        self.tcp.close()


@pytest.fixture(scope="module")
def p():
    p = Portico(extra_args=["--time-scale", "0.1"]).start()
    yield p
    p.stop()


@pytest.fixture(scope="module")
def net(p):
    ec2 = p.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    a = ec2.create_subnet(VpcId=vpc, CidrBlock="10.30.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    return {"vpc": vpc, "subnet": a}


def make_tg(elb, name, vpc, protocol, **kw):
    return elb.create_target_group(Name=name, Protocol=protocol, Port=53, VpcId=vpc, TargetType="ip",
                                   HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                   HealthyThresholdCount=2, UnhealthyThresholdCount=2,
                                   **kw)["TargetGroups"][0]


def health(elb, tg):
    return sorted((d["Target"]["Port"], d["TargetHealth"]["State"], d["TargetHealth"].get("Reason"))
                  for d in elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"])


def local_address(elb, listener):
    attrs = elb.describe_listener_attributes(ListenerArn=listener)["Attributes"]
    host, port = {a["Key"]: a["Value"] for a in attrs}["portico.local_address"].split(":")
    return host, int(port)


def ask(addr, data, sock=None):
    s = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    s.sendto(data, addr)
    reply, src = s.recvfrom(65535)
    if sock is None:
        s.close()
    return reply, src


def test_udp_listener_forwards_by_flow(p, net):
    elb = p.client("elbv2")
    a, b = UdpEcho("a"), UdpEcho("b")
    tg = make_tg(elb, "udp-tg", net["vpc"], "UDP")
    assert tg["HealthCheckProtocol"] == "TCP" and tg["Protocol"] == "UDP"
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"],
                         Targets=[{"Id": "127.0.0.1", "Port": a.port}, {"Id": "127.0.0.1", "Port": b.port}])
    lb = elb.create_load_balancer(Name="udp-nlb", Subnets=[net["subnet"]], Scheme="internal",
                                  Type="network")["LoadBalancers"][0]
    lst = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="UDP", Port=5300,
                              DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])
    lst = lst["Listeners"][0]
    assert lst["Protocol"] == "UDP"
    wait_until(lambda: elb.describe_load_balancers(LoadBalancerArns=[lb["LoadBalancerArn"]])
               ["LoadBalancers"][0]["State"]["Code"] == "active", what="NLB active")
    wait_until(lambda: [s for _, s, _ in health(elb, tg["TargetGroupArn"])] == ["healthy", "healthy"],
               what="UDP targets healthy through TCP checks")
    addr = local_address(elb, lst["ListenerArn"])
    assert addr[0].startswith("127.") and addr[0] != "127.0.0.1"

    # One client socket is one flow: every datagram goes to the same target, and replies come
    # from the listener's address.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    replies = [ask(addr, f"ping{i}".encode(), s) for i in range(5)]
    names = {r.split(b":")[0] for r, _ in replies}
    assert len(names) == 1
    assert all(src == addr for _, src in replies)
    assert [r.split(b":", 1)[1] for r, _ in replies] == [f"ping{i}".encode() for i in range(5)]
    s.close()

    # Many flows (different source ports) spread over both targets.
    seen = set()
    for i in range(24):
        reply, _ = ask(addr, b"x")
        seen.add(reply.split(b":")[0])
    assert seen == {b"a", b"b"}

    # A target whose TCP health check fails turns unhealthy, and new flows avoid it.
    b.stop_tcp()
    wait_until(lambda: dict((port, st) for port, st, _ in health(elb, tg["TargetGroupArn"]))[b.port]
               == "unhealthy", what="b unhealthy")
    assert (b.port, "unhealthy", "Target.FailedHealthChecks") in health(elb, tg["TargetGroupArn"])
    for i in range(10):
        reply, _ = ask(addr, b"y")
        assert reply == b"a:y"
    a.stop()
    b.stop()


def test_tcp_udp_listener_serves_both_on_one_port(p, net):
    elb = p.client("elbv2")
    e = UdpEcho("e")
    tg = make_tg(elb, "tcpudp-tg", net["vpc"], "TCP_UDP")
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "127.0.0.1", "Port": e.port}])
    lb = elb.create_load_balancer(Name="tcpudp-nlb", Subnets=[net["subnet"]], Scheme="internal",
                                  Type="network")["LoadBalancers"][0]
    lst = p.aws("elbv2", "create-listener", "--load-balancer-arn", lb["LoadBalancerArn"],
                "--protocol", "TCP_UDP", "--port", "5353",
                "--default-actions", f"Type=forward,TargetGroupArn={tg['TargetGroupArn']}")["Listeners"][0]
    wait_until(lambda: [s for _, s, _ in health(elb, tg["TargetGroupArn"])] == ["healthy"], what="healthy")
    addr = local_address(elb, lst["ListenerArn"])
    reply, src = ask(addr, b"dgram")
    assert reply == b"e:dgram" and src == addr
    with socket.create_connection(addr, timeout=5) as c:
        c.sendall(b"stream")
        assert c.recv(100) == b"tcp-e:stream"
    # Turned into a UDP listener, it keeps its address and stops accepting TCP.
    elb.modify_listener(ListenerArn=lst["ListenerArn"], Protocol="UDP")

    def tcp_closed():
        try:
            socket.create_connection(addr, timeout=1).close()
            return False
        except OSError:
            return True

    wait_until(tcp_closed, what="TCP half closed")
    wait_until(lambda: local_address(elb, lst["ListenerArn"]) == addr, what="same address")
    wait_until(lambda: ask(addr, b"again")[0] == b"e:again", what="UDP served again")
    e.stop()


def test_protocol_combinations_and_health_rules(p, net):
    elb = p.client("elbv2")
    udp = make_tg(elb, "combo-udp", net["vpc"], "UDP")["TargetGroupArn"]
    tcp = make_tg(elb, "combo-tcp", net["vpc"], "TCP")["TargetGroupArn"]
    lb = elb.create_load_balancer(Name="combo-nlb", Subnets=[net["subnet"]], Scheme="internal",
                                  Type="network")["LoadBalancers"][0]["LoadBalancerArn"]
    fwd = lambda tg: [{"Type": "forward", "TargetGroupArn": tg}]  # noqa: E731
    e = err(elb.create_listener, LoadBalancerArn=lb, Protocol="UDP", Port=1000, DefaultActions=fwd(tcp))
    assert e["Code"] == "IncompatibleProtocols"
    e = err(elb.create_listener, LoadBalancerArn=lb, Protocol="TCP_UDP", Port=1000, DefaultActions=fwd(udp))
    assert e["Code"] == "IncompatibleProtocols"
    e = err(elb.create_listener, LoadBalancerArn=lb, Protocol="TCP", Port=1000, DefaultActions=fwd(udp))
    assert e["Code"] == "IncompatibleProtocols"
    assert elb.describe_listeners(LoadBalancerArn=lb)["Listeners"] == []
    # UDP health checks do not exist: a UDP target group checks with TCP, HTTP or HTTPS.
    e = err(elb.create_target_group, Name="bad-hc", Protocol="UDP", Port=53, VpcId=net["vpc"],
            TargetType="ip", HealthCheckProtocol="UDP")
    assert e["Code"] == "ValidationError" and "healthCheckProtocol" in e["Message"]
    http_checked = make_tg(elb, "udp-http-hc", net["vpc"], "UDP", HealthCheckProtocol="HTTP",
                           HealthCheckPath="/ready")
    assert http_checked["HealthCheckProtocol"] == "HTTP" and http_checked["Matcher"]["HttpCode"] == "200-399"
    # An ALB cannot have a UDP listener.
    ec2 = p.client("ec2")
    b = ec2.create_subnet(VpcId=net["vpc"], CidrBlock="10.30.2.0/24", AvailabilityZone="us-east-1b")
    alb = elb.create_load_balancer(Name="combo-alb", Subnets=[net["subnet"], b["Subnet"]["SubnetId"]],
                                   Scheme="internal")["LoadBalancers"][0]["LoadBalancerArn"]
    e = err(elb.create_listener, LoadBalancerArn=alb, Protocol="UDP", Port=53, DefaultActions=fwd(udp))
    assert e["Code"] == "UnsupportedProtocol"
