"""The foundation through real clients: dispatch by protocol, accounts from access keys, errors
in each protocol's shape, admin endpoints, signature checks, and state across kill -9."""

import botocore.exceptions
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import Portico


def test_health(portico):
    r = requests.get(portico.endpoint + "/_portico/health", timeout=5)
    assert r.status_code == 200
    assert r.json()["status"] == "running"
    assert "apigatewayv2" in r.json()["services"]


def test_caller_identity_account_from_key(portico):
    sts = portico.client("sts")
    assert sts.get_caller_identity()["Account"] == "000000000000"
    sts = portico.client("sts", access_key="111122223333")
    ident = sts.get_caller_identity()
    assert ident["Account"] == "111122223333"
    assert ident["Arn"] == "arn:aws:iam::111122223333:root"
    out = portico.aws("sts", "get-caller-identity")
    assert out["Account"] == "000000000000"


def test_unknown_operation_errors_per_protocol(portico):
    # awsJson: a target the service does not have
    r = requests.post(
        portico.endpoint + "/",
        headers={"X-Amz-Target": "AmazonEC2ContainerServiceV20141113.NoSuchThing", "Content-Type": "application/x-amz-json-1.1"},
        data="{}",
        timeout=5,
    )
    assert r.status_code == 400
    assert r.json()["__type"] == "UnknownOperationException"
    # query: an action the service does not have
    r = requests.post(
        portico.endpoint + "/",
        data={"Action": "NoSuchAction", "Version": "2011-06-15"},
        timeout=5,
    )
    assert r.status_code == 400
    assert "<Code>InvalidAction</Code>" in r.text
    assert "<ErrorResponse" in r.text


def test_malformed_json_body(portico):
    r = requests.post(
        portico.endpoint + "/",
        headers={"X-Amz-Target": "Logs_20140328.DescribeLogGroups", "Content-Type": "application/x-amz-json-1.1"},
        data="{not json",
        timeout=5,
    )
    assert r.status_code == 400
    assert r.json()["__type"] == "SerializationException"


def test_malformed_authorization_header(portico):
    r = requests.post(
        portico.endpoint + "/",
        headers={"Authorization": "AWS4-HMAC-SHA256 Credential=onlythis", "X-Amz-Date": "20260101T000000Z"},
        data={"Action": "GetCallerIdentity", "Version": "2011-06-15"},
        timeout=5,
    )
    assert r.status_code == 403
    assert "<Code>IncompleteSignature</Code>" in r.text


def test_signature_verification_with_sdk_signer():
    p = Portico(extra_args=["--verify-signatures", "--credentials", "AKIDGOOD:goodsecret"]).start()
    try:
        good = p.client("sts", access_key="AKIDGOOD", secret_key="goodsecret")
        assert good.get_caller_identity()["Account"] == "000000000000"
        bad = p.client("sts", access_key="AKIDGOOD", secret_key="wrong")
        with pytest.raises(botocore.exceptions.ClientError) as e:
            bad.get_caller_identity()
        assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
        unknown = p.client("sts", access_key="AKIDNOPE", secret_key="goodsecret")
        with pytest.raises(botocore.exceptions.ClientError) as e:
            unknown.get_caller_identity()
        assert e.value.response["Error"]["Code"] == "InvalidClientTokenId"
        # a JSON-protocol service names the errors its own way
        ecs = p.client("ecs", access_key="AKIDGOOD", secret_key="wrong")
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ecs.list_clusters()
        assert e.value.response["Error"]["Code"] == "InvalidSignatureException"
        # presigned query form, signed by botocore's signer
        creds = Credentials("AKIDGOOD", "goodsecret")
        from botocore.auth import SigV4QueryAuth

        req = AWSRequest(method="GET", url=p.endpoint + "/?Action=GetCallerIdentity&Version=2011-06-15")
        SigV4QueryAuth(creds, "sts", "us-east-1", expires=60).add_auth(req)
        r = requests.get(req.url, timeout=5)
        assert r.status_code == 200, r.text
        assert "<Account>000000000000</Account>" in r.text
        # tampered presigned URL
        r = requests.get(req.url.replace("Version=2011-06-15", "Version=2011-06-15&Extra=1"), timeout=5)
        assert r.status_code == 403
        # unsigned requests are refused when verifying
        r = requests.post(p.endpoint + "/", data={"Action": "GetCallerIdentity", "Version": "2011-06-15"}, timeout=5)
        assert r.status_code == 403
        # header form with a body whose hash does not match what was signed
        req = AWSRequest(method="POST", url=p.endpoint + "/", data="Action=GetCallerIdentity&Version=2011-06-15",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        SigV4Auth(creds, "sts", "us-east-1").add_auth(req)
        prepared = req.prepare()
        r = requests.post(prepared.url, headers=dict(prepared.headers), data="Action=GetCallerIdentity&Version=2011-06-15", timeout=5)
        assert r.status_code == 200, r.text
        r = requests.post(prepared.url, headers=dict(prepared.headers), data="Action=GetCallerIdentity&Version=2011-06-16", timeout=5)
        assert r.status_code == 403
    finally:
        p.stop()


def test_non_loopback_bind_requires_credentials(tmp_path):
    import subprocess
    from conftest import BIN

    r = subprocess.run([str(BIN), "serve", "--host", "0.0.0.0", "--port", "0", "--state-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode != 0
    assert "credentials" in r.stderr


def test_port_in_use_says_what_to_do(portico, tmp_path):
    import subprocess
    from conftest import BIN

    r = subprocess.run([str(BIN), "serve", "--port", str(portico.port), "--state-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode != 0
    assert "--port" in r.stderr
