"""An ALB in front of an HTTPS target group: the load balancer speaks TLS to its targets (and
does not validate their certificates, as on AWS), HTTPS health checks make them healthy, and a
target that speaks plain HTTP in an HTTPS target group fails the handshake: the client gets the
ALB's 502 page. The targets are Python HTTPS servers on loopback with self-signed certificates
made by the `cryptography` package. docs/tls-upstreams.md says what is built."""

import datetime
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import Portico, wait_until


def self_signed(tmp_path, name):
    """A self-signed ECDSA certificate for `name`: (cert path, key path)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    crt, k = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    return crt, k


class Target:
    """Answers every request with JSON: whether it came over TLS, the path, the headers, the
    body's length. With `cert`, it serves HTTPS only."""

    def __init__(self, cert=None):
        seen = self.seen = []

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def answer(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                tls = isinstance(self.connection, ssl.SSLSocket)
                seen.append((self.path, tls, self.client_address[1]))
                out = json.dumps({"tls": tls, "path": self.path, "length": len(body),
                                  "headers": {k.lower(): v for k, v in self.headers.items()}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        if cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(cert[0]), str(cert[1]))
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    p = Portico(extra_args=["--time-scale", "0.1"]).start()
    tls_target = Target(self_signed(tmp_path_factory.mktemp("certs"), "target.internal"))
    plain_target = Target()
    try:
        ec2, elb = p.client("ec2"), p.client("elbv2")
        vpc = ec2.create_vpc(CidrBlock="10.41.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.41.{i}.0/24", AvailabilityZone=f"us-east-1{z}")
                   ["Subnet"]["SubnetId"] for i, z in ((1, "a"), (2, "b"))]

        def https_group(name, port):
            tg = elb.create_target_group(Name=name, Protocol="HTTPS", Port=443, VpcId=vpc, TargetType="ip",
                                         HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                         HealthyThresholdCount=2)["TargetGroups"][0]
            assert tg["HealthCheckProtocol"] == "HTTPS"
            elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "127.0.0.1", "Port": port}])
            return tg["TargetGroupArn"]

        tg = https_group("tls-targets", tls_target.port)
        plain_tg = https_group("plain-in-https", plain_target.port)
        lb = elb.create_load_balancer(Name="https-targets", Subnets=subnets, Scheme="internal")["LoadBalancers"][0]
        listener = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                                       DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
        listener = listener["Listeners"][0]["ListenerArn"]
        elb.create_rule(ListenerArn=listener, Priority=1,
                        Conditions=[{"Field": "path-pattern", "Values": ["/plain/*"]}],
                        Actions=[{"Type": "forward", "TargetGroupArn": plain_tg}])
        attrs = elb.describe_listener_attributes(ListenerArn=listener)["Attributes"]
        addr = {a["Key"]: a["Value"] for a in attrs}["portico.local_address"]
        yield {"p": p, "elb": elb, "tg": tg, "plain_tg": plain_tg, "url": f"http://{addr}",
               "tls_target": tls_target, "plain_target": plain_target}
    finally:
        p.stop()
        tls_target.stop()
        plain_target.stop()


def states(elb, tg):
    return [d["TargetHealth"] for d in elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]]


def test_requests_reach_an_https_target_over_tls(env):
    # HTTPS health checks make the TLS target healthy (its certificate is self-signed: not checked)
    wait_until(lambda: states(env["elb"], env["tg"])[0]["State"] == "healthy", what="TLS target healthy")
    r = requests.get(env["url"] + "/hello?x=1", headers={"Host": "app.internal"}, timeout=10)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["tls"] is True and got["path"] == "/hello?x=1"
    assert got["headers"]["x-forwarded-proto"] == "http" and got["headers"]["host"] == "app.internal"
    # a body both ways, then more requests over the kept-alive TLS connections
    big = b"z" * (1 << 20)
    r = requests.post(env["url"] + "/upload", data=big, timeout=10)
    assert r.status_code == 200 and r.json()["length"] == len(big)
    # one client connection (so one worker thread): its requests share one kept-alive TLS
    # connection to the target
    with requests.Session() as s:
        for i in range(5):
            assert s.get(env["url"] + f"/again/{i}", timeout=10).json()["tls"] is True
    ports = {port for path, _, port in env["tls_target"].seen if path.startswith("/again/")}
    assert len(ports) == 1, ports
    # every request the target saw came over TLS (health checks included)
    assert env["tls_target"].seen and all(tls for _, tls, _ in env["tls_target"].seen)


def test_a_plain_http_target_in_an_https_group_is_a_502(env):
    # its HTTPS health checks fail the handshake...
    wait_until(lambda: states(env["elb"], env["plain_tg"])[0]["State"] == "unhealthy", what="plain target unhealthy")
    # ...and the ALB, failing open to it, cannot complete the TLS handshake either
    r = requests.get(env["url"] + "/plain/x", timeout=10)
    assert r.status_code == 502
    assert r.headers["Server"] == "awselb/2.0" and "502 Bad Gateway" in r.text
    # the target never saw an HTTP request: only ClientHellos it could not parse
    assert not [path for path, _, _ in env["plain_target"].seen if path == "/plain/x"]
