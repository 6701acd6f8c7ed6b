"""TLS termination end to end: IAM server certificates (upload with the AWS CLI, IAM's errors,
DeleteConflict while a listener uses one), an ALB HTTPS listener that really terminates TLS
(real requests with an SSL context trusting the uploaded certificate, SNI among several
certificates, HTTP/1.1 and h2 by ALPN, X-Forwarded-Proto/Port), an HTTP->HTTPS redirect that
works end to end, an NLB TLS listener passing decrypted bytes to a TCP target, and an ACM ARN
served with a self-signed certificate for the load balancer's DNS name.

Certificates are made with the openssl CLI. Portico runs with --time-scale 0.1."""

import http.client
import json
import shutil
import socket
import ssl
import subprocess
import threading

import botocore.exceptions
import pytest

from conftest import Portico, wait_until
from lb_backend import Backend

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


def err(fn, *a, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fn(*a, **kw)
    return e.value.response["Error"]


def make_cert(tmp_path, name, *names, key_type="rsa:2048"):
    key, crt = tmp_path / f"{name}.key", tmp_path / f"{name}.crt"
    san = ",".join(f"DNS:{n}" for n in (name, *names))
    kt = ["-newkey", key_type] if key_type.startswith("rsa") else \
        ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    subprocess.run(["openssl", "req", "-x509", *kt, "-nodes", "-keyout", str(key),
                    "-out", str(crt), "-days", "2", "-subj", f"/CN={name}", "-addext",
                    f"subjectAltName={san}"], check=True, capture_output=True)
    return crt, key


@pytest.fixture(scope="module")
def p():
    p = Portico(extra_args=["--time-scale", "0.1"]).start()
    yield p
    p.stop()


@pytest.fixture(scope="module")
def net(p):
    ec2 = p.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    a = ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    b = ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.2.0/24", AvailabilityZone="us-east-1b")["Subnet"]["SubnetId"]
    return {"vpc": vpc, "subnets": [a, b]}


def local_address(elb, listener):
    attrs = elb.describe_listener_attributes(ListenerArn=listener)["Attributes"]
    host, port = {a["Key"]: a["Value"] for a in attrs}["portico.local_address"].split(":")
    return host, int(port)


def tls_connect(addr, server_name, cafile=None, alpn=None):
    ctx = ssl.create_default_context(cafile=str(cafile)) if cafile else ssl._create_unverified_context()
    if alpn:
        ctx.set_alpn_protocols(alpn)
    raw = socket.create_connection(addr, timeout=10)
    return ctx.wrap_socket(raw, server_hostname=server_name)


def https_get(addr, host, path, cafile):
    """GET over TLS to `addr` with SNI and Host `host`, trusting only `cafile`."""
    s = tls_connect(addr, host, cafile, ["http/1.1"])
    assert s.selected_alpn_protocol() == "http/1.1"
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    r = http.client.HTTPResponse(s)
    r.begin()
    body = r.read()
    s.close()
    return r.status, dict(r.getheaders()), body


@pytest.fixture(scope="module")
def certs(p, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("certs")
    app = make_cert(tmp, "app.example.com", "*.app.example.com")
    other = make_cert(tmp, "other.example.org", key_type="ec")
    arns = {}
    # An RSA certificate through the AWS CLI, an ECDSA one through boto3.
    out = p.aws("iam", "upload-server-certificate", "--server-certificate-name", "app",
                "--certificate-body", f"file://{app[0]}", "--private-key", f"file://{app[1]}")
    out2 = p.client("iam").upload_server_certificate(
        ServerCertificateName="other", CertificateBody=other[0].read_text(), PrivateKey=other[1].read_text(),
        Tags=[{"Key": "team", "Value": "edge"}])
    assert out2["Tags"] == [{"Key": "team", "Value": "edge"}]
    for name, o in (("app", out), ("other", out2)):
        meta = o["ServerCertificateMetadata"]
        assert meta["Arn"].endswith(f":server-certificate/{name}")
        assert meta["ServerCertificateId"].startswith("ASCA") and meta["Expiration"]
        arns[name] = meta["Arn"]
    return {"app": app, "other": other, "arns": arns, "tmp": tmp}


def test_server_certificate_api_and_errors(p, certs):
    iam = p.client("iam")
    (crt, key), (ocrt, okey) = certs["app"], certs["other"]
    got = iam.get_server_certificate(ServerCertificateName="app")["ServerCertificate"]
    assert got["CertificateBody"].strip() == crt.read_text().strip()
    assert "PrivateKey" not in got
    names = [m["ServerCertificateName"] for m in iam.list_server_certificates()["ServerCertificateMetadataList"]]
    assert names == ["app", "other"]
    e = err(iam.upload_server_certificate, ServerCertificateName="app", CertificateBody=crt.read_text(),
            PrivateKey=key.read_text())
    assert e["Code"] == "EntityAlreadyExists"
    e = err(iam.upload_server_certificate, ServerCertificateName="mixed", CertificateBody=crt.read_text(),
            PrivateKey=okey.read_text())
    assert e["Code"] == "KeyPairMismatch"
    e = err(iam.upload_server_certificate, ServerCertificateName="junk",
            CertificateBody="-----BEGIN CERTIFICATE-----\nbm9wZQ==\n-----END CERTIFICATE-----\n",
            PrivateKey=key.read_text())
    assert e["Code"] == "MalformedCertificate"
    e = err(iam.get_server_certificate, ServerCertificateName="mixed")
    assert e["Code"] == "NoSuchEntity"
    assert len(iam.list_server_certificates()["ServerCertificateMetadataList"]) == 2
    # A chain is checked and kept; tags come and go.
    e = err(iam.upload_server_certificate, ServerCertificateName="chained", CertificateBody=crt.read_text(),
            PrivateKey=key.read_text(), CertificateChain="not pem")
    assert e["Code"] == "MalformedCertificate"
    iam.upload_server_certificate(ServerCertificateName="chained", CertificateBody=crt.read_text(),
                                  PrivateKey=key.read_text(), CertificateChain=ocrt.read_text(), Path="/c/")
    got = iam.get_server_certificate(ServerCertificateName="chained")["ServerCertificate"]
    assert got["CertificateChain"].strip() == ocrt.read_text().strip()
    iam.tag_server_certificate(ServerCertificateName="chained", Tags=[{"Key": "a", "Value": "1"},
                                                                      {"Key": "b", "Value": "2"}])
    iam.untag_server_certificate(ServerCertificateName="chained", TagKeys=["a"])
    assert iam.list_server_certificate_tags(ServerCertificateName="chained")["Tags"] == [{"Key": "b", "Value": "2"}]
    iam.delete_server_certificate(ServerCertificateName="chained")
    assert err(iam.delete_server_certificate, ServerCertificateName="chained")["Code"] == "NoSuchEntity"
    # Rename and move, then back.
    iam.update_server_certificate(ServerCertificateName="other", NewServerCertificateName="other2",
                                  NewPath="/lb/")
    m = iam.get_server_certificate(ServerCertificateName="other2")["ServerCertificate"]["ServerCertificateMetadata"]
    assert m["Arn"].endswith(":server-certificate/lb/other2") and m["Path"] == "/lb/"
    assert [x["ServerCertificateName"] for x in
            iam.list_server_certificates(PathPrefix="/lb/")["ServerCertificateMetadataList"]] == ["other2"]
    iam.update_server_certificate(ServerCertificateName="other2", NewServerCertificateName="other", NewPath="/")


@pytest.fixture(scope="module")
def alb(p, net, certs):
    elb = p.client("elbv2")
    backend = Backend()
    tg = elb.create_target_group(Name="tls-tg", Protocol="HTTP", Port=80, VpcId=net["vpc"], TargetType="ip",
                                 HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2)
    tg = tg["TargetGroups"][0]["TargetGroupArn"]
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": backend.port}])
    lb = elb.create_load_balancer(Name="tls-alb", Subnets=net["subnets"], Scheme="internal")["LoadBalancers"][0]
    arn = lb["LoadBalancerArn"]
    e = err(elb.create_listener, LoadBalancerArn=arn, Protocol="HTTPS", Port=443,
            Certificates=[{"CertificateArn": certs["arns"]["app"].replace("/app", "/nope")}],
            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    assert e["Code"] == "CertificateNotFound"
    e = err(elb.create_listener, LoadBalancerArn=arn, Protocol="HTTPS", Port=443, SslPolicy="NoSuchPolicy",
            Certificates=[{"CertificateArn": certs["arns"]["app"]}],
            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    assert e["Code"] == "SSLPolicyNotFound"
    assert elb.describe_listeners(LoadBalancerArn=arn)["Listeners"] == []
    https = p.aws("elbv2", "create-listener", "--load-balancer-arn", arn, "--protocol", "HTTPS", "--port", "443",
                  "--ssl-policy", "ELBSecurityPolicy-TLS13-1-2-2021-06",
                  "--certificates", f"CertificateArn={certs['arns']['app']}",
                  "--default-actions", f"Type=forward,TargetGroupArn={tg}")["Listeners"][0]
    assert https["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    http_l = elb.create_listener(LoadBalancerArn=arn, Protocol="HTTP", Port=80, DefaultActions=[
        {"Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}}])
    http_l = http_l["Listeners"][0]
    wait_until(lambda: elb.describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"][0]["State"]["Code"]
               == "active", what="ALB active")
    yield {"elb": elb, "arn": arn, "https": https["ListenerArn"], "http": http_l["ListenerArn"], "tg": tg,
           "dns": lb["DNSName"]}
    backend.stop()


def test_https_listener_terminates_tls(alb, certs):
    addr = local_address(alb["elb"], alb["https"])
    status, _, body = https_get(addr, "app.example.com", "/hello?x=1", certs["app"][0])
    assert status == 200
    got = json.loads(body)
    assert got["path"] == "/hello?x=1"
    assert got["headers"]["x-forwarded-proto"] == "https"
    assert got["headers"]["x-forwarded-port"] == "443"
    # The wildcard name is covered by the same certificate.
    assert https_get(addr, "api.app.example.com", "/", certs["app"][0])[0] == 200
    # A client that trusts another certificate refuses the handshake.
    with pytest.raises(ssl.SSLError):
        https_get(addr, "app.example.com", "/", certs["other"][0])


def test_h2_is_negotiated_and_served(alb, certs):
    addr = local_address(alb["elb"], alb["https"])
    s = tls_connect(addr, "app.example.com", certs["app"][0], ["h2", "http/1.1"])
    assert s.selected_alpn_protocol() == "h2"
    # The client preface and an empty SETTINGS frame: an HTTP/2 server answers with SETTINGS.
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
    head = b""
    while len(head) < 9:
        chunk = s.recv(9 - len(head))
        assert chunk
        head += chunk
    assert head[3] == 0x4  # frame type SETTINGS
    s.close()
    # With HTTP/2 turned off on the load balancer, ALPN settles on HTTP/1.1.
    elb = alb["elb"]
    elb.modify_load_balancer_attributes(LoadBalancerArn=alb["arn"], Attributes=[
        {"Key": "routing.http2.enabled", "Value": "false"}])

    def negotiated():
        with tls_connect(addr, "app.example.com", certs["app"][0], ["h2", "http/1.1"]) as s:
            return s.selected_alpn_protocol()

    wait_until(lambda: negotiated() == "http/1.1", what="h2 off")
    elb.modify_load_balancer_attributes(LoadBalancerArn=alb["arn"], Attributes=[
        {"Key": "routing.http2.enabled", "Value": "true"}])
    wait_until(lambda: negotiated() == "h2", what="h2 back on")


def test_redirect_http_to_https_end_to_end(alb, certs):
    elb = alb["elb"]
    http_addr = local_address(elb, alb["http"])
    c = http.client.HTTPConnection(*http_addr, timeout=10)
    c.request("GET", "/path/x?q=1", headers={"Host": "app.example.com"})
    r = c.getresponse()
    assert r.status == 301
    loc = r.getheader("Location")
    assert loc == "https://app.example.com/path/x?q=1"
    c.close()
    # Follow it: app.example.com "resolves" to the load balancer's address, port 443 by default.
    https_addr = local_address(elb, alb["https"])
    path = loc.split("app.example.com", 1)[1]
    status, _, body = https_get(https_addr, "app.example.com", path, certs["app"][0])
    assert status == 200 and json.loads(body)["path"] == "/path/x?q=1"


def test_sni_selects_among_listener_certificates(p, alb, certs):
    elb = alb["elb"]
    lst = alb["https"]
    other = certs["arns"]["other"]
    elb.add_listener_certificates(ListenerArn=lst, Certificates=[{"CertificateArn": other}])
    got = elb.describe_listener_certificates(ListenerArn=lst)["Certificates"]
    assert sorted((c["CertificateArn"], c["IsDefault"]) for c in got) == sorted(
        [(certs["arns"]["app"], True), (other, False)])
    described = elb.describe_listeners(ListenerArns=[lst])["Listeners"][0]["Certificates"]
    assert described == [{"CertificateArn": certs["arns"]["app"]}]
    addr = local_address(elb, lst)

    def served_with_other():
        try:
            return https_get(addr, "other.example.org", "/", certs["other"][0])[0] == 200
        except ssl.SSLError:
            return False

    wait_until(served_with_other, what="SNI certificate served")
    # Without a matching name the default certificate is served.
    assert https_get(addr, "app.example.com", "/", certs["app"][0])[0] == 200
    e = err(elb.remove_listener_certificates, ListenerArn=lst,
            Certificates=[{"CertificateArn": certs["arns"]["app"]}])
    assert e["Code"] == "OperationNotPermitted"
    # IAM refuses to delete a certificate a listener uses.
    r = p.aws("iam", "delete-server-certificate", "--server-certificate-name", "other", check=False)
    assert r.returncode != 0 and "DeleteConflict" in r.stderr
    elb.remove_listener_certificates(ListenerArn=lst, Certificates=[{"CertificateArn": other}])
    assert [c["CertificateArn"] for c in elb.describe_listener_certificates(ListenerArn=lst)["Certificates"]] \
        == [certs["arns"]["app"]]
    # ModifyListener replaces the default certificate only.
    elb.add_listener_certificates(ListenerArn=lst, Certificates=[{"CertificateArn": other}])
    elb.modify_listener(ListenerArn=lst, Certificates=[{"CertificateArn": other}])
    got = elb.describe_listener_certificates(ListenerArn=lst)["Certificates"]
    assert [(c["CertificateArn"], c["IsDefault"]) for c in got] == [(other, True)]
    elb.modify_listener(ListenerArn=lst, Certificates=[{"CertificateArn": certs["arns"]["app"]}])
    # A listener turned into HTTP drops its certificates and policies.
    spare = elb.create_listener(LoadBalancerArn=alb["arn"], Protocol="HTTPS", Port=8443,
                                Certificates=[{"CertificateArn": other}],
                                DefaultActions=[{"Type": "forward", "TargetGroupArn": alb["tg"]}])
    spare = spare["Listeners"][0]["ListenerArn"]
    got = elb.modify_listener(ListenerArn=spare, Protocol="HTTP")["Listeners"][0]
    assert "Certificates" not in got and "SslPolicy" not in got
    elb.delete_listener(ListenerArn=spare)
    p.client("iam").delete_server_certificate(ServerCertificateName="other")
    assert [m["ServerCertificateName"] for m in p.client("iam").list_server_certificates()
            ["ServerCertificateMetadataList"]] == ["app"]


def test_nlb_tls_passes_decrypted_bytes(p, net, certs):
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
                while chunk := c.recv(4096):  # the target sees plain bytes
                    c.sendall(b"plain:" + chunk)

    threading.Thread(target=echo, daemon=True).start()
    tg = elb.create_target_group(Name="tls-nlb-tg", Protocol="TCP", Port=7000, VpcId=net["vpc"],
                                 TargetType="ip", HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2)
    tg = tg["TargetGroups"][0]["TargetGroupArn"]
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": port}])
    lb = elb.create_load_balancer(Name="tls-nlb", Subnets=net["subnets"][:1], Scheme="internal",
                                  Type="network")["LoadBalancers"][0]
    e = err(elb.create_listener, LoadBalancerArn=lb["LoadBalancerArn"], Protocol="TLS", Port=8443,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    assert e["Code"] == "ValidationError"
    lst = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="TLS", Port=8443,
                              Certificates=[{"CertificateArn": certs["arns"]["app"]}], AlpnPolicy=["None"],
                              DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])["Listeners"][0]
    assert lst["SslPolicy"] == "ELBSecurityPolicy-2016-08" and lst["AlpnPolicy"] == ["None"]
    # An ACM certificate (Portico has no ACM) is served self-signed for the LB's DNS name.
    acm = "arn:aws:acm:us-east-1:000000000000:certificate/11111111-2222-3333-4444-555555555555"
    lst2 = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="TLS", Port=9443,
                               Certificates=[{"CertificateArn": acm}],
                               DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])["Listeners"][0]
    wait_until(lambda: elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"][0]
               ["TargetHealth"]["State"] == "healthy", what="TCP target healthy")
    wait_until(lambda: all(local_address(elb, x["ListenerArn"]) for x in (lst, lst2)), what="bound")
    with tls_connect(local_address(elb, lst["ListenerArn"]), "app.example.com", certs["app"][0]) as s:
        s.sendall(b"secret bytes")
        assert s.recv(4096) == b"plain:secret bytes"
        s.sendall(b"more")
        assert s.recv(4096) == b"plain:more"

    s = tls_connect(local_address(elb, lst2["ListenerArn"]), lb["DNSName"], None, ["http/1.1", "h2"])
    der = s.getpeercert(binary_form=True)
    assert s.selected_alpn_protocol() is None  # no AlpnPolicy: no ALPN
    s.close()
    assert lb["DNSName"].lower().encode() in der
    # AlpnPolicy decides what an NLB TLS listener negotiates.
    elb.modify_listener(ListenerArn=lst2["ListenerArn"], AlpnPolicy=["HTTP2Preferred"])

    def alpn():
        with tls_connect(local_address(elb, lst2["ListenerArn"]), lb["DNSName"], None, ["http/1.1", "h2"]) as s:
            return s.selected_alpn_protocol()

    wait_until(lambda: alpn() == "h2", what="HTTP2Preferred")
    e = err(elb.modify_listener, ListenerArn=lst2["ListenerArn"], AlpnPolicy=["HTTP3"])
    assert e["Code"] == "ALPNPolicyNotFound"
    srv.close()


def test_nlb_tls_reencrypts_to_tls_targets(p, net, certs):
    elb = p.client("elbv2")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(certs["other"][0]), str(certs["other"][1]))
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]

    def handle(c):
        try:
            with ctx.wrap_socket(c, server_side=True) as s:
                while chunk := s.recv(4096):
                    if chunk.startswith(b"GET /ready "):  # the HTTPS health check
                        checks.append(chunk)
                        s.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                        return
                    s.sendall(b"tls-target:" + chunk)
        except (ssl.SSLError, OSError):
            pass

    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(c,), daemon=True).start()

    checks = []
    threading.Thread(target=serve, daemon=True).start()
    # Health-checked with HTTPS: the probe speaks TLS to the target.
    tg = elb.create_target_group(Name="tls-target-tg", Protocol="TLS", Port=443, VpcId=net["vpc"],
                                 TargetType="ip", HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                 HealthCheckProtocol="HTTPS", HealthCheckPath="/ready")
    tg = tg["TargetGroups"][0]["TargetGroupArn"]
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": port}])
    lb = elb.create_load_balancer(Name="tls-nlb2", Subnets=net["subnets"][:1], Scheme="internal",
                                  Type="network")["LoadBalancers"][0]
    # A TLS target group needs a TLS listener, not a TCP one.
    e = err(elb.create_listener, LoadBalancerArn=lb["LoadBalancerArn"], Protocol="TCP", Port=443,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    assert e["Code"] == "IncompatibleProtocols"
    lst = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="TLS", Port=443,
                              Certificates=[{"CertificateArn": certs["arns"]["app"]}],
                              DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])["Listeners"][0]
    wait_until(lambda: elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"][0]
               ["TargetHealth"]["State"] == "healthy", what="TLS target healthy")
    assert checks and b"User-Agent: ELB-HealthChecker/2.0" in checks[0]
    with tls_connect(local_address(elb, lst["ListenerArn"]), "app.example.com", certs["app"][0]) as s:
        s.sendall(b"hello")
        assert s.recv(4096) == b"tls-target:hello"
    srv.close()


def test_self_signed_certificate_survives_restart(fresh_portico):
    p = fresh_portico.start()
    ec2, elb = p.client("ec2"), p.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.41.0.0/16")["Vpc"]["VpcId"]
    sn = ec2.create_subnet(VpcId=vpc, CidrBlock="10.41.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    tg = elb.create_target_group(Name="ss-tg", Protocol="TCP", Port=80, VpcId=vpc,
                                 TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    lb = elb.create_load_balancer(Name="ss-nlb", Subnets=[sn], Scheme="internal", Type="network")["LoadBalancers"][0]
    acm = "arn:aws:acm:us-east-1:000000000000:certificate/aaaaaaaa-2222-3333-4444-555555555555"
    lst = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="TLS", Port=8443,
                              Certificates=[{"CertificateArn": acm}],
                              DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])["Listeners"][0]

    def peer_cert():
        with tls_connect(local_address(elb, lst["ListenerArn"]), lb["DNSName"], None) as s:
            return s.getpeercert(binary_form=True)

    before = wait_until(peer_cert, what="TLS listener up")
    p.kill9()
    p.start()
    elb = p.client("elbv2")
    assert wait_until(peer_cert, what="TLS listener up again") == before
