"""SSM Parameter Store through boto3 and the AWS CLI: types, versions, selectors, labels,
hierarchies, filters, errors, and the seeded CDK bootstrap version."""

import botocore.exceptions
import pytest


def err(fn, *a, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fn(*a, **kw)
    return e.value.response["Error"]


def test_cdk_bootstrap_version_is_seeded(portico):
    ssm = portico.client("ssm", region="eu-central-1")
    p = ssm.get_parameter(Name="/cdk-bootstrap/hnb659fds/version")["Parameter"]
    assert p["Type"] == "String" and int(p["Value"]) >= 6 and p["Version"] == 1
    assert p["ARN"] == "arn:aws:ssm:eu-central-1:000000000000:parameter/cdk-bootstrap/hnb659fds/version"


def test_parameters(portico, unique):
    ssm = portico.client("ssm")
    base = f"/app-{unique}"
    assert ssm.put_parameter(Name=f"{base}/db/host", Value="db.local", Type="String")["Version"] == 1
    ssm.put_parameter(Name=f"{base}/db/password", Value="s3cret", Type="SecureString")
    ssm.put_parameter(Name=f"{base}/hosts", Value="a,b,c", Type="StringList", Tags=[{"Key": "team", "Value": "web"}])
    e = err(ssm.put_parameter, Name=f"{base}/db/host", Value="x", Type="String")
    assert e["Code"] == "ParameterAlreadyExists"
    assert ssm.put_parameter(Name=f"{base}/db/host", Value="db2.local", Overwrite=True)["Version"] == 2

    p = ssm.get_parameter(Name=f"{base}/db/host")["Parameter"]
    assert (p["Value"], p["Version"], p["Type"]) == ("db2.local", 2, "String")
    assert ssm.get_parameter(Name=f"{base}/db/host:1")["Parameter"]["Value"] == "db.local"
    assert ssm.get_parameter(Name=f"{base}/db/password")["Parameter"]["Value"] != "s3cret"
    assert ssm.get_parameter(Name=f"{base}/db/password", WithDecryption=True)["Parameter"]["Value"] == "s3cret"
    assert err(ssm.get_parameter, Name=f"{base}/nope")["Code"] == "ParameterNotFound"
    assert err(ssm.get_parameter, Name=f"{base}/db/host:9")["Code"] == "ParameterVersionNotFound"

    got = ssm.get_parameters(Names=[f"{base}/db/host", f"{base}/missing"])
    assert [x["Name"] for x in got["Parameters"]] == [f"{base}/db/host"]
    assert got["InvalidParameters"] == [f"{base}/missing"]

    flat = ssm.get_parameters_by_path(Path=base)["Parameters"]
    assert [x["Name"] for x in flat] == [f"{base}/hosts"]
    deep = ssm.get_parameters_by_path(Path=base, Recursive=True, WithDecryption=True)["Parameters"]
    assert sorted(x["Name"] for x in deep) == sorted([f"{base}/db/host", f"{base}/db/password", f"{base}/hosts"])
    pages = list(ssm.get_paginator("get_parameters_by_path").paginate(
        Path=base, Recursive=True, PaginationConfig={"PageSize": 2}))
    assert [len(pg["Parameters"]) for pg in pages] == [2, 1]
    only_secure = ssm.get_parameters_by_path(Path=base, Recursive=True,
                                             ParameterFilters=[{"Key": "Type", "Values": ["SecureString"]}])["Parameters"]
    assert [x["Name"] for x in only_secure] == [f"{base}/db/password"]

    d = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Option": "BeginsWith", "Values": [f"{base}/db"]}])["Parameters"]
    assert sorted(x["Name"] for x in d) == [f"{base}/db/host", f"{base}/db/password"]
    assert [x for x in d if x["Type"] == "SecureString"][0]["KeyId"] == "alias/aws/ssm"
    d = ssm.describe_parameters(ParameterFilters=[{"Key": "tag:team", "Values": ["web"]}])["Parameters"]
    assert [x["Name"] for x in d] == [f"{base}/hosts"]
    d = ssm.describe_parameters(ParameterFilters=[{"Key": "Path", "Option": "OneLevel", "Values": [f"{base}/db"]}])["Parameters"]
    assert len(d) == 2

    ssm.label_parameter_version(Name=f"{base}/db/host", ParameterVersion=1, Labels=["stable"])
    assert ssm.get_parameter(Name=f"{base}/db/host:stable")["Parameter"]["Value"] == "db.local"
    hist = ssm.get_parameter_history(Name=f"{base}/db/host")["Parameters"]
    assert [(h["Version"], h["Labels"]) for h in hist] == [(1, ["stable"]), (2, [])]

    for bad in ({"Name": "no/leading", "Value": "x", "Type": "String"},
                {"Name": "/aws/reserved", "Value": "x", "Type": "String"},
                {"Name": f"{base}/t", "Value": "x", "Type": "Bogus"},
                {"Name": f"{base}/t", "Value": "x"}):
        assert err(ssm.put_parameter, **bad)["Code"] == "ValidationException", bad
    assert err(ssm.get_parameter, Name=f"{base}/t")["Code"] == "ParameterNotFound"

    out = portico.aws("ssm", "get-parameter", "--name", f"{base}/hosts")
    assert out["Parameter"]["Value"] == "a,b,c" and out["Parameter"]["Type"] == "StringList"
    portico.aws("ssm", "delete-parameter", "--name", f"{base}/hosts")
    r = ssm.delete_parameters(Names=[f"{base}/db/host", f"{base}/nope"])
    assert r["DeletedParameters"] == [f"{base}/db/host"] and r["InvalidParameters"] == [f"{base}/nope"]
    assert err(ssm.delete_parameter, Name=f"{base}/hosts")["Code"] == "ParameterNotFound"
