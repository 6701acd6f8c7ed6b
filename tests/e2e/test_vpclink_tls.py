"""A private integration's tlsConfig end to end: HTTP API -> VPC link -> an internal ALB's HTTPS
listener serving an IAM server certificate. With serverNameToVerify naming the certificate,
API Gateway speaks TLS to the listener and the request goes through (the target sees
X-Forwarded-Proto https, port 443); a name the certificate does not cover fails the handshake
(500, status unconfirmed); without tlsConfig the HTTPS listener gets plain HTTP and answers with
the ALB's 400 page; tlsConfig towards a plain HTTP listener fails the handshake (500); an NLB TLS
listener is reached over TLS to its socket, its certificate checked the same way.
docs/tls-upstreams.md says what is built and what is unconfirmed."""

import datetime
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import Portico, wait_until
from lb_backend import Backend

INTERNAL_ERROR = {"message": "Internal Server Error"}
NAME = "app.internal.example"


def self_signed_pem(*names):
    """A self-signed ECDSA certificate for `names`: (certificate PEM, key PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


class Env:
    pass


@pytest.fixture(scope="module")
def env():
    p = Portico(extra_args=["--time-scale", "0.1"]).start()
    backend = Backend()
    try:
        e = Env()
        e.p = p
        ec2, elb, apigw = p.client("ec2"), p.client("elbv2"), p.client("apigatewayv2")
        e.apigw = apigw
        vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.42.{i}.0/24", AvailabilityZone=f"us-east-1{z}")
                   ["Subnet"]["SubnetId"] for i, z in ((1, "a"), (2, "b"))]
        sg = lambda n: ec2.create_security_group(GroupName=n, Description=n, VpcId=vpc)["GroupId"]  # noqa: E731
        alb_sg, link_sg = sg("alb"), sg("link")
        ec2.authorize_security_group_ingress(GroupId=alb_sg, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "UserIdGroupPairs": [{"GroupId": link_sg}]}
            for port in (80, 443, 8443)])
        crt, key = self_signed_pem(NAME)
        cert = p.client("iam").upload_server_certificate(ServerCertificateName="app-internal", CertificateBody=crt,
                                                         PrivateKey=key)["ServerCertificateMetadata"]["Arn"]
        tg = elb.create_target_group(Name="link-tls", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip",
                                     HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2)["TargetGroups"][0]["TargetGroupArn"]
        elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": backend.port}])
        lb = elb.create_load_balancer(Name="link-tls", Subnets=subnets, SecurityGroups=[alb_sg],
                                      Scheme="internal")["LoadBalancers"][0]["LoadBalancerArn"]
        forward = [{"Type": "forward", "TargetGroupArn": tg}]
        https = elb.create_listener(LoadBalancerArn=lb, Protocol="HTTPS", Port=443, DefaultActions=forward,
                                    Certificates=[{"CertificateArn": cert}])["Listeners"][0]["ListenerArn"]
        # an ACM certificate: Portico serves a stand-in for the load balancer's DNS name and,
        # not knowing the ACM certificate's names, lets any serverNameToVerify pass on it
        acm = "arn:aws:acm:us-east-1:000000000000:certificate/bbbbbbbb-2222-3333-4444-555555555555"
        acm_l = elb.create_listener(LoadBalancerArn=lb, Protocol="HTTPS", Port=8443, DefaultActions=forward,
                                    Certificates=[{"CertificateArn": acm}])["Listeners"][0]["ListenerArn"]
        plain = elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80,
                                    DefaultActions=forward)["Listeners"][0]["ListenerArn"]
        # an NLB whose TLS listener serves the same certificate, in front of the same target
        tcp_tg = elb.create_target_group(Name="link-tls-tcp", Protocol="TCP", Port=80, VpcId=vpc, TargetType="ip",
                                         HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2)
        tcp_tg = tcp_tg["TargetGroups"][0]["TargetGroupArn"]
        elb.register_targets(TargetGroupArn=tcp_tg, Targets=[{"Id": "127.0.0.1", "Port": backend.port}])
        nlb = elb.create_load_balancer(Name="link-tls-nlb", Subnets=subnets, Scheme="internal",
                                       Type="network")["LoadBalancers"][0]["LoadBalancerArn"]
        nlb_tls = elb.create_listener(LoadBalancerArn=nlb, Protocol="TLS", Port=443, Certificates=[{"CertificateArn": cert}],
                                      DefaultActions=[{"Type": "forward", "TargetGroupArn": tcp_tg}])
        nlb_tls = nlb_tls["Listeners"][0]["ListenerArn"]
        link = apigw.create_vpc_link(Name="tls-link", SubnetIds=subnets, SecurityGroupIds=[link_sg])["VpcLinkId"]
        wait_until(lambda: apigw.get_vpc_link(VpcLinkId=link)["VpcLinkStatus"] == "AVAILABLE", what="link available")
        e.api = apigw.create_api(Name="tls", ProtocolType="HTTP")["ApiId"]
        e.integrations = {}

        def route(prefix, listener, **tls):
            i = apigw.create_integration(ApiId=e.api, IntegrationType="HTTP_PROXY", IntegrationMethod="ANY",
                                         ConnectionType="VPC_LINK", ConnectionId=link, IntegrationUri=listener,
                                         PayloadFormatVersion="1.0", **tls)
            e.integrations[prefix] = i["IntegrationId"]
            apigw.create_route(ApiId=e.api, RouteKey=f"ANY /{prefix}/{{proxy+}}",
                               Target=f"integrations/{i['IntegrationId']}")

        route("match", https, TlsConfig={"ServerNameToVerify": NAME})
        route("mismatch", https, TlsConfig={"ServerNameToVerify": "other.internal.example"})
        route("notls", https)
        route("tlsplain", plain, TlsConfig={"ServerNameToVerify": NAME})
        route("plain", plain)
        route("acm", acm_l, TlsConfig={"ServerNameToVerify": "api.example.com"})
        route("nlbmatch", nlb_tls, TlsConfig={"ServerNameToVerify": NAME})
        route("nlbmismatch", nlb_tls, TlsConfig={"ServerNameToVerify": "other.internal.example"})
        apigw.create_stage(ApiId=e.api, StageName="$default", AutoDeploy=True)
        yield e
    finally:
        p.stop()
        backend.stop()


def get(e, path):
    return e.p.http("GET", path, host=f"{e.api}.execute-api.localhost:{e.p.port}", timeout=15)


def test_server_name_the_certificate_covers_goes_through_as_https(env):
    r = wait_until(lambda: [r for r in [get(env, "/match/a?x=1")] if r.status_code != 404], what="deployed")[0]
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["path"] == "/match/a?x=1"
    assert got["headers"]["x-forwarded-proto"] == "https"
    assert got["headers"]["x-forwarded-port"] == "443"
    # the plain route to the HTTP listener, for contrast
    got = get(env, "/plain/b").json()
    assert got["headers"]["x-forwarded-proto"] == "http" and got["headers"]["x-forwarded-port"] == "80"


def test_a_name_the_certificate_does_not_cover_fails(env):
    r = get(env, "/mismatch/a")
    assert r.status_code == 500 and r.json() == INTERNAL_ERROR
    assert r.headers.get("apigw-requestid")
    # naming the certificate's name instead: the same route goes through
    env.apigw.update_integration(ApiId=env.api, IntegrationId=env.integrations["mismatch"],
                                 TlsConfig={"ServerNameToVerify": NAME})
    r = wait_until(lambda: [r for r in [get(env, "/mismatch/a")] if r.status_code == 200], what="redeployed")[0]
    assert r.json()["headers"]["x-forwarded-proto"] == "https"
    env.apigw.update_integration(ApiId=env.api, IntegrationId=env.integrations["mismatch"],
                                 TlsConfig={"ServerNameToVerify": "other.internal.example"})
    wait_until(lambda: get(env, "/mismatch/a").status_code == 500, what="mismatch again")


def test_plain_http_to_an_https_listener_gets_the_albs_400(env):
    r = get(env, "/notls/a")
    assert r.status_code == 400
    assert "The plain HTTP request was sent to HTTPS port" in r.text


def test_tls_to_a_plain_http_listener_fails(env):
    r = get(env, "/tlsplain/a")
    assert r.status_code == 500 and r.json() == INTERNAL_ERROR


def test_an_nlb_tls_listener_is_reached_over_tls_and_its_certificate_checked(env):
    r = get(env, "/nlbmatch/a?y=2")
    assert r.status_code == 200, r.text
    got = r.json()
    # the NLB adds no headers: the target sees API Gateway's request as sent
    assert got["path"] == "/nlbmatch/a?y=2" and "x-forwarded-proto" not in got["headers"]
    r = get(env, "/nlbmismatch/a")
    assert r.status_code == 500 and r.json() == INTERNAL_ERROR


def test_an_acm_certificate_stand_in_passes_any_server_name(env):
    r = get(env, "/acm/a")
    assert r.status_code == 200, r.text
    assert r.json()["headers"]["x-forwarded-port"] == "8443"
