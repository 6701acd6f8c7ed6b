"""HTTP_PROXY integrations to https:// URLs: the test makes a CA and server certificates,
starts https backends on 127.0.0.1 (recording the SNI name of each handshake), and starts a
Portico that trusts the CA through PORTICO_EXTRA_CA_FILE."""

import datetime
import ipaddress
import json
import ssl
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import Portico, wait_until


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn)).issuer_name(_name(cn)).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_leaf(ca_key, ca_cert, names):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    sans = [x509.DNSName(n) for n in names]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0])).issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(sans + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


class HttpsBackend:
    """Echoes the request as JSON, with the SNI name of the connection's handshake."""

    def __init__(self, key, cert, directory):
        self.handshakes = []  # SNI name of every TLS handshake
        d = Path(directory)
        cert_file, key_file = d / f"{id(self)}.crt", d / f"{id(self)}.key"
        cert_file.write_bytes(pem(cert))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_file, key_file)
        backend = self

        def sni(sock, name, _ctx):
            backend.handshakes.append(name)
            sock.context_sni = name

        ctx.sni_callback = sni

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                out = json.dumps({
                    "path": self.path,
                    "host": self.headers.get("Host"),
                    "sni": getattr(self.connection, "context_sni", None),
                    "via": self.headers.get("Via"),
                }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_POST = do_GET

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self):
                sock, addr = self.socket.accept()
                return ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

            def finish_request(self, request, client_address):
                try:
                    request.do_handshake()
                except (ssl.SSLError, OSError):
                    return  # the client refused our certificate
                super().finish_request(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def tls_world():
    d = tempfile.mkdtemp(prefix="portico-tls-")
    ca_key, ca = make_ca("Portico e2e CA")
    (Path(d) / "ca.pem").write_bytes(pem(ca))
    good = HttpsBackend(*make_leaf(ca_key, ca, ["localhost", "backend.localhost"]), d)
    wrong_name = HttpsBackend(*make_leaf(ca_key, ca, ["other.example"]), d)
    rogue_key, rogue_ca = make_ca("Untrusted CA")
    untrusted = HttpsBackend(*make_leaf(rogue_key, rogue_ca, ["localhost"]), d)
    p = Portico(env={"PORTICO_EXTRA_CA_FILE": str(Path(d) / "ca.pem")}).start()
    yield p, good, wrong_name, untrusted
    p.stop()
    for b in (good, wrong_name, untrusted):
        b.stop()


def test_https_integration_with_sni_and_keep_alive(tls_world, unique):
    p, good, wrong_name, untrusted = tls_world
    apigw = p.client("apigatewayv2")
    api_id = apigw.create_api(Name=f"tls-{unique}", ProtocolType="HTTP")["ApiId"]

    def route(key, uri):
        i = apigw.create_integration(ApiId=api_id, IntegrationType="HTTP_PROXY", IntegrationMethod="ANY",
                                     IntegrationUri=uri, PayloadFormatVersion="1.0")
        apigw.create_route(ApiId=api_id, RouteKey=key, Target=f"integrations/{i['IntegrationId']}")

    route("ANY /api/{proxy+}", f"https://localhost:{good.port}/base/{{proxy}}")
    route("GET /wrong-name", f"https://localhost:{wrong_name.port}/")
    route("GET /untrusted", f"https://localhost:{untrusted.port}/")
    route("GET /refused", "https://127.0.0.1:9/")
    logs = p.client("logs")
    logs.create_log_group(logGroupName=f"tls-{unique}")
    apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True, AccessLogSettings={
        "DestinationArn": f"arn:aws:logs:us-east-1:000000000000:log-group:tls-{unique}",
        "Format": "$context.requestId $context.status $context.integrationErrorMessage"})
    host = f"{api_id}.execute-api.localhost:{p.port}"

    def get(path):
        return p.http("GET", path, host=host)

    r = wait_until(lambda: [x for x in [get("/api/a/b?x=1")] if x.status_code != 404], what="route")[0]
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["path"] == "/base/a/b?x=1"
    assert seen["sni"] == "localhost"
    assert seen["host"] == f"localhost:{good.port}"
    assert seen["via"] == "HTTP/1.1 AmazonAPIGateway"
    assert r.headers["apigw-requestid"]
    # keep-alive: sequential requests reuse the pooled connection
    for i in range(6):
        assert get(f"/api/n{i}").json()["path"] == f"/base/n{i}"
    assert len(good.handshakes) < 4, good.handshakes
    # certificate for another name, or from a CA nobody trusts: 500, the backend never answers;
    # the access log names the cause
    for path in ("/wrong-name", "/untrusted"):
        r = get(path)
        assert r.status_code == 500, (path, r.text)
        assert r.json() == {"message": "Internal Server Error"}
        rid = r.headers["apigw-requestid"]
        line = wait_until(lambda: [e["message"] for e in logs.filter_log_events(logGroupName=f"tls-{unique}")["events"]
                                   if e["message"].startswith(f"{rid} 500 ")], timeout=10, what="access log line")[0]
        assert "TLS handshake with the integration failed" in line, line
    # nothing listens: 503 as on the http path
    r = get("/refused")
    assert r.status_code == 503 and r.json() == {"message": "Service Unavailable"}
    apigw.delete_api(ApiId=api_id)
