"""JWT authorizers of HTTP APIs verify tokens as API Gateway does: the test runs an OpenID
Connect issuer on 127.0.0.1 (discovery document and JWKS, RSA keys it generates) and sends
tokens that are valid, expired, for another audience, badly signed, signed with an unknown
key, or missing a scope, through the AWS CLI- and boto3-configured API."""

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from apigw_backend import Backend
from conftest import wait_until

AUDIENCE_ERROR = 'Bearer scope="" error="invalid_token" error_description="the token does not have a valid audience"'


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def uint(n: int) -> str:
    return b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class Issuer:
    """An OpenID Connect issuer: discovery document, JWKS (counting fetches), token signing."""

    def __init__(self):
        self.keys = {}  # kid -> private key
        self.published = []  # kids in the JWKS
        self.jwks_fetches = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": issuer.url, "jwks_uri": issuer.url + "/jwks"}
                elif self.path == "/jwks":
                    issuer.jwks_fetches += 1
                    body = {"keys": [issuer.jwk(k) for k in issuer.published]}
                else:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                out = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add_key(self, kid, publish=True):
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if publish:
            self.published.append(kid)

    def jwk(self, kid):
        pub = self.keys[kid].public_key().public_numbers()
        jwk = {"kty": "RSA", "kid": kid, "use": "sig", "n": uint(pub.n), "e": uint(pub.e)}
        if kid != "k2":  # k2 leaves its algorithm open
            jwk["alg"] = "RS256"
        return jwk

    def token(self, kid="k1", sign_with=None, alg="RS256", **claims):
        now = int(time.time())
        body = {"iss": self.url, "aud": "app", "sub": "user-1", "iat": now - 10, "exp": now + 300}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        head = b64(json.dumps({"alg": alg, "typ": "JWT", "kid": kid}).encode())
        signing_input = f"{head}.{b64(json.dumps(body).encode())}".encode()
        digest = {"RS384": hashes.SHA384(), "RS512": hashes.SHA512()}.get(alg, hashes.SHA256())
        sig = self.keys[sign_with or kid].sign(signing_input, padding.PKCS1v15(), digest)
        return f"{signing_input.decode()}.{b64(sig)}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def backend():
    b = Backend().start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def issuer():
    i = Issuer()
    i.add_key("k1")
    i.add_key("k2")
    i.add_key("rogue", publish=False)
    yield i
    i.stop()


def call(p, api_id, path, token=None, headers=None):
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    return p.http("GET", path, host=f"{api_id}.execute-api.localhost:{p.port}", headers=h)


def make_jwt_api(p, backend, issuer, unique, identity_source="$request.header.Authorization", cli=True):
    """An API whose `GET /items` and `GET /admin` (scopes `admin`, `root`) need a JWT, with the
    token's `sub` claim mapped into a header the backend sees. The authorizer is made with the
    AWS CLI (`cli`) or boto3, the rest with boto3."""
    apigw = p.client("apigatewayv2")
    api_id = apigw.create_api(Name=f"jwt-{unique}", ProtocolType="HTTP")["ApiId"]
    config = {"Issuer": issuer.url, "Audience": ["app", "other-app"]}
    if cli:
        auth = p.aws("apigatewayv2", "create-authorizer", "--api-id", api_id, "--name", "idp",
                     "--authorizer-type", "JWT", "--identity-source", identity_source,
                     "--jwt-configuration", json.dumps(config))
    else:
        auth = apigw.create_authorizer(ApiId=api_id, Name="idp", AuthorizerType="JWT",
                                       IdentitySource=[identity_source], JwtConfiguration=config)
    integ = apigw.create_integration(ApiId=api_id, IntegrationType="HTTP_PROXY", IntegrationMethod="ANY",
                                     IntegrationUri=f"{backend.url}/echo", PayloadFormatVersion="1.0",
                                     RequestParameters={"overwrite:header.x-user": "$context.authorizer.claims.sub"})
    target = f"integrations/{integ['IntegrationId']}"
    for key, scopes in (("GET /items", []), ("GET /admin", ["admin", "root"])):
        apigw.create_route(ApiId=api_id, RouteKey=key, Target=target, AuthorizationType="JWT",
                           AuthorizerId=auth["AuthorizerId"], AuthorizationScopes=scopes)
    apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    return api_id


def test_jwt_tokens_are_verified_against_the_issuers_keys(portico, backend, issuer, unique):
    p = portico
    api_id = make_jwt_api(p, backend, issuer, unique)
    # no token: 401 before anything else
    r = wait_until(lambda: [x for x in [call(p, api_id, "/items")] if x.status_code != 404], what="route")[0]
    assert r.status_code == 401
    assert r.json() == {"message": "Unauthorized"}
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.headers["apigw-requestid"]

    # a valid token reaches the backend, with its claims available to parameter mapping
    before = len(backend.requests)
    r = call(p, api_id, "/items", issuer.token())
    assert r.status_code == 200, r.text
    assert r.json()["headers"]["x-user"] == "user-1"
    assert len(backend.requests) == before + 1
    # the other key of the set, an array audience, no "Bearer " prefix, RS512
    assert call(p, api_id, "/items", headers={"Authorization": issuer.token(kid="k2", aud=["x", "other-app"])}).status_code == 200
    assert call(p, api_id, "/items", issuer.token(kid="k2", alg="RS512")).status_code == 200
    # client_id counts only when aud is absent
    assert call(p, api_id, "/items", issuer.token(aud=None, client_id="app")).status_code == 200

    def refused(token, description=None):
        r = call(p, api_id, "/items", token)
        assert r.status_code == 401, r.text
        assert r.json() == {"message": "Unauthorized"}
        www = r.headers["www-authenticate"]
        assert www.startswith('Bearer scope="" error="invalid_token" error_description="'), www
        if description:
            assert f'error_description="{description}"' in www, www
        return www

    assert refused(issuer.token(aud="someone-else")) == AUDIENCE_ERROR
    assert refused(issuer.token(aud="someone-else", client_id="app")) == AUDIENCE_ERROR
    refused(issuer.token(exp=int(time.time()) - 5), "the token has expired")
    refused(issuer.token(nbf=int(time.time()) + 600), "the token is not valid yet")
    refused(issuer.token(iss="https://elsewhere.example"), "the token has an invalid issuer")
    # signed by a key that is not the one its kid names
    refused(issuer.token(kid="k1", sign_with="k2"), "the token signature is invalid")
    # a tampered payload
    good = issuer.token().split(".")
    forged = b64(json.dumps({"iss": issuer.url, "aud": "app", "sub": "admin", "exp": int(time.time()) + 300}).encode())
    refused(f"{good[0]}.{forged}.{good[2]}", "the token signature is invalid")
    refused("not-a-jwt", "the token is malformed")
    # k1's JWK says RS256
    refused(issuer.token(alg="RS512"), "the token's algorithm does not match its key")
    # HS256 with the public key as secret (algorithm confusion) is not an RSA algorithm
    head = b64(json.dumps({"alg": "HS256", "kid": "k1"}).encode())
    refused(f"{head}.{good[1]}.{good[2]}", "signing method HS256 is invalid")
    # the key set was fetched once (when the route was published) and served from the cache since
    assert issuer.jwks_fetches == 1

    # a kid the issuer never published: refetched, still unknown
    refused(issuer.token(kid="rogue"))
    # the issuer rotates in a new key: a token naming it is accepted once the set is refetched
    issuer.add_key("k3")
    r = wait_until(lambda: [x for x in [call(p, api_id, "/items", issuer.token(kid="k3"))] if x.status_code == 200],
                   what="rotated key accepted")[0]
    assert r.json()["headers"]["x-user"] == "user-1"

    # scopes: none of the route's -> 403; one of them (scope string or scp array) -> 200
    r = call(p, api_id, "/admin", issuer.token(scope="read write"))
    assert r.status_code == 403 and r.json() == {"message": "Forbidden"}
    assert call(p, api_id, "/admin", issuer.token()).status_code == 403
    assert call(p, api_id, "/admin", issuer.token(scope="read root")).status_code == 200
    assert call(p, api_id, "/admin", issuer.token(scp=["admin"])).status_code == 200
    # a bad token on a scoped route is still a 401, not a 403
    assert call(p, api_id, "/admin", issuer.token(aud="nope", scope="admin")).status_code == 401

    # claims and the refusal's cause in the access log
    logs = p.client("logs")
    logs.create_log_group(logGroupName=f"jwt-{unique}")
    p.client("apigatewayv2").update_stage(ApiId=api_id, StageName="$default", AccessLogSettings={
        "DestinationArn": f"arn:aws:logs:us-east-1:000000000000:log-group:jwt-{unique}",
        "Format": "$context.requestId $context.status $context.authorizer.claims.sub $context.authorizer.error"})

    def logged(token, expect):
        rid = call(p, api_id, "/items", token).headers["apigw-requestid"]
        return wait_until(lambda: [e["message"] for e in logs.filter_log_events(logGroupName=f"jwt-{unique}")["events"]
                                   if e["message"] == f"{rid} {expect}"], timeout=3, what="line")

    wait_until(lambda: logged(issuer.token(sub="alice"), "200 alice -"), timeout=15, what="access log with claims")
    logged(issuer.token(exp=1), "401 - the token has expired")
    p.client("apigatewayv2").delete_api(ApiId=api_id)


def test_jwt_from_query_string_and_unreachable_issuer(portico, backend, issuer, unique):
    p = portico
    apigw = p.client("apigatewayv2")
    api_id = make_jwt_api(p, backend, issuer, unique, identity_source="$request.querystring.token", cli=False)
    wait_until(lambda: call(p, api_id, "/items").status_code == 401, what="route")
    assert call(p, api_id, f"/items?token={issuer.token()}").status_code == 200
    assert call(p, api_id, "/items", issuer.token()).status_code == 401  # the header is not the source

    # an issuer nobody answers for: every token is refused with 401 (boto3 this time)
    dead = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    dead_url = f"http://127.0.0.1:{dead.server_address[1]}"
    dead.server_close()
    auth = apigw.create_authorizer(ApiId=api_id, Name="dead", AuthorizerType="JWT",
                                   IdentitySource=["$request.header.Authorization"],
                                   JwtConfiguration={"Issuer": dead_url, "Audience": ["app"]})
    integ = apigw.get_integrations(ApiId=api_id)["Items"][0]["IntegrationId"]
    apigw.create_route(ApiId=api_id, RouteKey="GET /dead", Target=f"integrations/{integ}",
                       AuthorizationType="JWT", AuthorizerId=auth["AuthorizerId"])
    r = wait_until(lambda: [x for x in [call(p, api_id, "/dead", issuer.token(iss=dead_url))] if x.status_code != 404],
                   what="route")[0]
    assert r.status_code == 401 and r.json() == {"message": "Unauthorized"}
    assert "error_description=" in r.headers["www-authenticate"]
    # a plain-http issuer off loopback is never fetched (AWS requires https)
    apigw.update_authorizer(ApiId=api_id, AuthorizerId=auth["AuthorizerId"],
                            JwtConfiguration={"Issuer": "http://idp.example.com", "Audience": ["app"]})
    r = wait_until(lambda: [x for x in [call(p, api_id, "/dead", issuer.token(iss="http://idp.example.com"))]
                            if x.status_code == 401], what="401")[0]
    assert r.json() == {"message": "Unauthorized"}
    # the working routes are unaffected
    assert call(p, api_id, f"/items?token={issuer.token()}").status_code == 200
    apigw.delete_api(ApiId=api_id)
