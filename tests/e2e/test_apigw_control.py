"""API Gateway v2 control plane through boto3 and the AWS CLI: bad input is rejected with
AWS's codes and messages and changes nothing; stages, deployments, VPC links, tags,
pagination, quick create, JWT routes and parameter mapping behave as on AWS."""

import re

import botocore.exceptions
import pytest
import requests

from apigw_backend import Backend
from conftest import wait_until


@pytest.fixture(scope="module")
def backend():
    b = Backend().start()
    yield b
    b.stop()


@pytest.fixture
def apigw(portico):
    return portico.client("apigatewayv2")


def call(p, api_id, method, path, **kw):
    return p.http(method, path, host=f"{api_id}.execute-api.localhost:{p.port}", **kw)


def served(p, api_id, method, path, ok=lambda r: r.status_code != 404, **kw):
    return wait_until(lambda: [r for r in [call(p, api_id, method, path, **kw)] if ok(r)], what=f"{method} {path}")[0]


def fails(fn, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fn(**kw)
    r = e.value.response
    return r["Error"]["Code"], r["Error"]["Message"], r["ResponseMetadata"]["HTTPStatusCode"]


def state(apigw, api_id):
    """Everything under an API, to prove a rejected request changed nothing."""
    strip = lambda items: [{k: v for k, v in i.items()} for i in items]  # noqa: E731
    return (
        apigw.get_api(ApiId=api_id)["Name"],
        strip(apigw.get_routes(ApiId=api_id)["Items"]),
        strip(apigw.get_integrations(ApiId=api_id)["Items"]),
        strip(apigw.get_stages(ApiId=api_id)["Items"]),
        len(apigw.get_deployments(ApiId=api_id)["Items"]),
    )


def test_bad_input_changes_nothing(portico, apigw, backend, unique):
    api_id = apigw.create_api(Name=f"bad-{unique}", ProtocolType="HTTP")["ApiId"]
    integ = apigw.create_integration(ApiId=api_id, IntegrationType="HTTP_PROXY", IntegrationMethod="ANY",
                                     IntegrationUri=f"{backend.url}/x")
    iid = integ["IntegrationId"]
    route = apigw.create_route(ApiId=api_id, RouteKey="GET /pets", Target=f"integrations/{iid}")
    apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    before = state(apigw, api_id)
    acct = "000000000000"

    assert fails(apigw.create_route, ApiId=api_id, RouteKey="GET /pets") == (
        "ConflictException", "Route with key GET /pets already exists for this API", 409)
    assert fails(apigw.create_route, ApiId=api_id, RouteKey="GET /pets/{id}.json") == (
        "BadRequestException", "One or more path parts appear to be invalid", 400)
    for key in ["GET /{proxy+}/x", "GET /a{b}", "FETCH /x", "get /x", "GET x", "GET /a//b"]:
        code, _, status = fails(apigw.create_route, ApiId=api_id, RouteKey=key)
        assert (code, status) == ("BadRequestException", 400), key
    assert fails(apigw.create_route, ApiId=api_id, RouteKey="GET /x", Target="integrations/nope")[0] == "BadRequestException"
    assert fails(apigw.create_route, ApiId=api_id, RouteKey="GET /x", AuthorizationType="JWT")[0] == "BadRequestException"
    # update to a key that exists is a conflict too
    other = apigw.create_route(ApiId=api_id, RouteKey="GET /other")
    assert fails(apigw.update_route, ApiId=api_id, RouteId=other["RouteId"], RouteKey="GET /pets")[0] == "ConflictException"
    apigw.delete_route(ApiId=api_id, RouteId=other["RouteId"])
    before = state(apigw, api_id)

    assert fails(apigw.create_integration, ApiId=api_id, IntegrationType="HTTP", IntegrationMethod="GET",
                 IntegrationUri="http://x") == (
        "BadRequestException",
        "Currently, an API with a protocol type of HTTP may only be associated with proxy integrations (AWS_PROXY, HTTP_PROXY)",
        400)
    assert fails(apigw.create_integration, ApiId=api_id, IntegrationType="HTTP_PROXY", IntegrationMethod="ANY",
                 IntegrationUri="not a url")[0] == "BadRequestException"
    assert fails(apigw.create_integration, ApiId=api_id, IntegrationType="HTTP_PROXY", IntegrationMethod="ANY",
                 ConnectionType="VPC_LINK", ConnectionId="abcdef", IntegrationUri="https://x")[2] in (400, 404)
    # out-of-range timeouts (botocore refuses to send them, so raw requests)
    for t in (49, 30001):
        r = requests.post(f"{portico.endpoint}/v2/apis/{api_id}/integrations", timeout=5, json={
            "integrationType": "HTTP_PROXY", "integrationMethod": "ANY", "integrationUri": "http://x", "timeoutInMillis": t})
        assert r.status_code == 400 and r.headers["x-amzn-ErrorType"] == "BadRequestException"
        assert "30 seconds" in r.json()["message"]
    assert fails(apigw.create_integration, ApiId=api_id, IntegrationType="HTTP_PROXY", IntegrationMethod="ANY",
                 IntegrationUri="http://x", RequestParameters={"overwrite:header.Authorization": "x"})[1].startswith(
        "Invalid mapping expression specified: Validation Result: warnings : [], errors : [")
    assert fails(apigw.delete_integration, ApiId=api_id, IntegrationId=iid) == (
        "ConflictException",
        f"Cannot delete Integration because it is referenced by the following Routes with Ids: [{route['RouteId']}]",
        409)
    assert fails(apigw.update_api, ApiId=api_id, CorsConfiguration={"AllowOrigins": ["*"], "AllowCredentials": True}) == (
        "BadRequestException", "allow-credentials is not supported if 'allow-origin' is *", 400)
    assert fails(apigw.create_stage, ApiId=api_id, StageName="dev", AutoDeploy=True, DeploymentId="abc123")[0] == "BadRequestException"
    assert fails(apigw.create_stage, ApiId=api_id, StageName="$default")[0] == "ConflictException"
    assert fails(apigw.create_stage, ApiId=api_id, StageName="bad name!")[0] == "BadRequestException"
    assert fails(apigw.update_stage, ApiId=api_id, StageName="$default",
                 RouteSettings={"GET /nope": {"ThrottlingBurstLimit": 1}}) == (
        "NotFoundException", "Unable to find Route by key GET /nope within the provided RouteSettings", 404)
    assert fails(apigw.create_api, Name="ws", ProtocolType="WEBSOCKET", RouteSelectionExpression="$request.body.action")[0] == "BadRequestException"

    # unknown ids
    assert fails(apigw.get_api, ApiId="zzzzzzzzzz") == (
        "NotFoundException", f"Invalid API identifier specified {acct}:zzzzzzzzzz", 404)
    assert fails(apigw.get_route, ApiId=api_id, RouteId="nope123")[:1] == ("NotFoundException",)
    assert fails(apigw.get_route, ApiId=api_id, RouteId="nope123")[1].startswith("Invalid Route identifier specified")
    assert fails(apigw.get_integration, ApiId=api_id, IntegrationId="nope123")[0] == "NotFoundException"
    assert fails(apigw.get_stage, ApiId=api_id, StageName="nope")[0] == "NotFoundException"
    assert fails(apigw.get_deployment, ApiId=api_id, DeploymentId="nope12")[0] == "NotFoundException"
    assert fails(apigw.get_authorizer, ApiId=api_id, AuthorizerId="nope12")[0] == "NotFoundException"
    assert fails(apigw.get_vpc_link, VpcLinkId="nope12")[0] == "NotFoundException"
    assert fails(apigw.delete_route, ApiId="zzzzzzzzzz", RouteId="x")[0] == "NotFoundException"

    assert state(apigw, api_id) == before
    # the data plane still serves what it served
    assert served(portico, api_id, "GET", "/pets").status_code == 200
    apigw.delete_api(ApiId=api_id)


def test_cli_errors_and_malformed_bodies(portico, unique):
    r = portico.aws("apigatewayv2", "get-api", "--api-id", "zzzzzzzzzz", check=False)
    assert r.returncode != 0 and "NotFoundException" in r.stderr
    # truncated JSON and a non-object body are AWS-shaped 400s
    for body in ('{"name": "x", "protocolType":', '[1, 2]'):
        resp = requests.post(portico.endpoint + "/v2/apis", data=body,
                             headers={"Content-Type": "application/json"}, timeout=5)
        assert resp.status_code == 400
        assert resp.headers["x-amzn-ErrorType"].startswith("BadRequestException")
    # unimplemented operations answer UnknownOperation, never a fake success
    resp = requests.get(portico.endpoint + "/v2/domainnames", timeout=5)
    assert resp.status_code == 404 and resp.headers["x-amzn-ErrorType"] == "UnknownOperationException"


def test_websocket_only_operations_on_http_api(apigw, unique):
    api_id = apigw.create_api(Name=f"ws-{unique}", ProtocolType="HTTP")["ApiId"]
    route = apigw.create_route(ApiId=api_id, RouteKey="GET /x")
    assert apigw.get_route_responses(ApiId=api_id, RouteId=route["RouteId"])["Items"] == []
    assert apigw.get_models(ApiId=api_id)["Items"] == []
    assert fails(apigw.create_route_response, ApiId=api_id, RouteId=route["RouteId"],
                 RouteResponseKey="$default")[0] == "BadRequestException"
    assert fails(apigw.get_models, ApiId="zzzzzzzzzz")[0] == "NotFoundException"
    apigw.delete_api(ApiId=api_id)


def test_deployments_and_named_stages(portico, apigw, backend, unique):
    api_id = apigw.create_api(Name=f"dep-{unique}", ProtocolType="HTTP")["ApiId"]
    assert fails(apigw.create_deployment, ApiId=api_id) == (
        "BadRequestException", "Unable to deploy API because no routes exist in this API", 400)
    integ = apigw.create_integration(ApiId=api_id, IntegrationType="HTTP_PROXY", IntegrationMethod="ANY",
                                     IntegrationUri=f"{backend.url}/svc")
    apigw.create_route(ApiId=api_id, RouteKey="GET /pets", Target=f"integrations/{integ['IntegrationId']}")
    stage = apigw.create_stage(ApiId=api_id, StageName="dev", StageVariables={"env": "d"})
    assert "AutoDeploy" not in stage and "DeploymentId" not in stage
    # a stage without a deployment serves nothing
    assert call(portico, api_id, "GET", "/dev/pets").status_code == 404
    dep = apigw.create_deployment(ApiId=api_id, StageName="dev", Description="first")
    assert re.fullmatch(r"[a-z0-9]{6}", dep["DeploymentId"])
    assert dep["DeploymentStatus"] == "DEPLOYED" and dep["AutoDeployed"] is False
    assert apigw.get_stage(ApiId=api_id, StageName="dev")["DeploymentId"] == dep["DeploymentId"]
    r = served(portico, api_id, "GET", "/dev/pets")
    assert r.status_code == 200 and r.json()["path"] == "/svc"
    # only named stages exist: no $default, so the unprefixed path is not found
    assert call(portico, api_id, "GET", "/pets").status_code == 404
    # a route added after the deployment is not served until the next deployment
    apigw.create_route(ApiId=api_id, RouteKey="GET /cats", Target=f"integrations/{integ['IntegrationId']}")
    assert call(portico, api_id, "GET", "/dev/cats").status_code == 404
    dep2 = apigw.create_deployment(ApiId=api_id, StageName="dev")
    assert call(portico, api_id, "GET", "/dev/cats").status_code == 200
    # a deployment a stage points at cannot be deleted; an old one can
    assert fails(apigw.delete_deployment, ApiId=api_id, DeploymentId=dep2["DeploymentId"])[0] == "BadRequestException"
    apigw.delete_deployment(ApiId=api_id, DeploymentId=dep["DeploymentId"])
    assert [d["DeploymentId"] for d in apigw.get_deployments(ApiId=api_id)["Items"]] == [dep2["DeploymentId"]]
    # stage variables merge; "" removes
    out = apigw.update_stage(ApiId=api_id, StageName="dev", StageVariables={"region": "x", "env": ""})
    assert out["StageVariables"] == {"region": "x"}
    apigw.delete_stage(ApiId=api_id, StageName="dev")
    wait_until(lambda: call(portico, api_id, "GET", "/dev/pets").status_code == 404, what="stage gone")
    apigw.delete_api(ApiId=api_id)


def test_quick_create_and_cli_stage_default(portico, apigw, backend, unique):
    api = portico.aws("apigatewayv2", "create-api", "--name", f"qc-{unique}", "--protocol-type", "HTTP",
                      "--target", backend.url)
    api_id = api["ApiId"]
    assert api["ApiGatewayManaged"] is True
    routes = apigw.get_routes(ApiId=api_id)["Items"]
    assert [r["RouteKey"] for r in routes] == ["$default"] and routes[0]["ApiGatewayManaged"] is True
    stages = portico.aws("apigatewayv2", "get-stages", "--api-id", api_id)["Items"]
    assert stages[0]["StageName"] == "$default" and stages[0]["AutoDeploy"] is True
    assert stages[0]["LastDeploymentStatusMessage"].startswith("Successfully deployed stage with deployment ID")
    # GET /v2/apis/{id}/stages/%24default
    assert portico.aws("apigatewayv2", "get-stage", "--api-id", api_id, "--stage-name", "$default")["StageName"] == "$default"
    r = served(portico, api_id, "GET", "/hello/world?a=b")
    assert r.status_code == 200 and r.json()["path"] == "/hello/world" and r.json()["rawQuery"] == "a=b"
    # managed pieces are changed through the API, not directly
    assert fails(apigw.delete_route, ApiId=api_id, RouteId=routes[0]["RouteId"])[0] == "BadRequestException"
    apigw.delete_api(ApiId=api_id)


def test_jwt_route_requires_token(portico, apigw, backend, unique):
    api_id = apigw.create_api(Name=f"jwt-{unique}", ProtocolType="HTTP")["ApiId"]
    auth = apigw.create_authorizer(ApiId=api_id, Name="jwt", AuthorizerType="JWT",
                                   IdentitySource=["$request.header.Authorization"],
                                   JwtConfiguration={"Issuer": "https://idp.example", "Audience": ["app"]})
    assert re.fullmatch(r"[a-z0-9]{6}", auth["AuthorizerId"])
    assert fails(apigw.create_authorizer, ApiId=api_id, Name="bad", AuthorizerType="JWT",
                 IdentitySource=["$request.header.A", "$request.header.B"],
                 JwtConfiguration={"Issuer": "https://idp.example", "Audience": ["app"]})[0] == "BadRequestException"
    integ = apigw.create_integration(ApiId=api_id, IntegrationType="HTTP_PROXY", IntegrationMethod="ANY",
                                     IntegrationUri=f"{backend.url}/secret")
    apigw.create_route(ApiId=api_id, RouteKey="GET /secret", Target=f"integrations/{integ['IntegrationId']}",
                       AuthorizationType="JWT", AuthorizerId=auth["AuthorizerId"], AuthorizationScopes=["read"])
    apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    r = served(portico, api_id, "GET", "/secret")
    assert r.status_code == 401
    assert r.json() == {"message": "Unauthorized"}
    assert "www-authenticate" in r.headers
    r = call(portico, api_id, "GET", "/secret", headers={"Authorization": "Bearer not.a-jwt"})
    assert r.status_code == 401
    # an authorizer used by a route cannot be deleted
    assert fails(apigw.delete_authorizer, ApiId=api_id, AuthorizerId=auth["AuthorizerId"])[0] == "ConflictException"
    apigw.delete_api(ApiId=api_id)


def test_parameter_mapping(portico, apigw, backend, unique):
    api_id = apigw.create_api(Name=f"map-{unique}", ProtocolType="HTTP")["ApiId"]
    integ = apigw.create_integration(
        ApiId=api_id, IntegrationType="HTTP_PROXY", IntegrationMethod="ANY", IntegrationUri=f"{backend.url}/ignored",
        RequestParameters={
            "overwrite:path": "/mapped/$request.path.id",
            "append:header.x-stage-env": "$stageVariables.env",
            "overwrite:header.x-req": "$context.requestId",
            "remove:querystring.secret": "''",
            "overwrite:querystring.added": "${request.path.id}-v",
        },
        ResponseParameters={"200": {"overwrite:header.x-mapped": "yes", "remove:header.x-backend": "''"}},
    )
    apigw.create_route(ApiId=api_id, RouteKey="GET /things/{id}", Target=f"integrations/{integ['IntegrationId']}")
    apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True, StageVariables={"env": "prod"})
    r = served(portico, api_id, "GET", "/things/42?secret=s&keep=1")
    seen = r.json()
    assert seen["path"] == "/mapped/42"
    assert seen["query"] == {"keep": ["1"], "added": ["42-v"]}
    assert seen["headers"]["x-stage-env"] == "prod"
    assert seen["headers"]["x-req"] == r.headers["apigw-requestid"]
    assert r.headers["x-mapped"] == "yes" and "x-backend" not in r.headers
    # "" removes a mapping on update
    out = apigw.update_integration(ApiId=api_id, IntegrationId=integ["IntegrationId"],
                                   RequestParameters={"overwrite:path": ""})
    assert "overwrite:path" not in out["RequestParameters"]
    apigw.delete_api(ApiId=api_id)


def test_vpc_link_lifecycle(portico, apigw, unique):
    link = portico.aws("apigatewayv2", "create-vpc-link", "--name", f"l-{unique}",
                       "--subnet-ids", "subnet-00000000000000001", "--security-group-ids", "sg-00000000000000001")
    lid = link["VpcLinkId"]
    assert re.fullmatch(r"[a-z0-9]{6}", lid)
    assert (link["VpcLinkStatus"], link["VpcLinkStatusMessage"], link["VpcLinkVersion"]) == (
        "PENDING", "VPC link is provisioning ENIs", "V2")
    # the subnet does not exist in EC2: provisioning fails with the reason
    got = wait_until(lambda: [g for g in [apigw.get_vpc_link(VpcLinkId=lid)] if g["VpcLinkStatus"] != "PENDING"],
                     what="link provisioned")[0]
    assert got["VpcLinkStatus"] == "FAILED"
    assert "subnet-00000000000000001" in got["VpcLinkStatusMessage"]

    api_id = apigw.create_api(Name=f"priv-{unique}", ProtocolType="HTTP")["ApiId"]
    listener = "arn:aws:elasticloadbalancing:us-east-1:000000000000:listener/app/my-alb/50dc6c495c0c9188/0467ef3c8400ae65"
    assert fails(apigw.create_integration, ApiId=api_id, IntegrationType="HTTP_PROXY", IntegrationMethod="ANY",
                 ConnectionType="VPC_LINK", ConnectionId=lid,
                 IntegrationUri="arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/my-alb/50dc6c495c0c9188") == (
        "BadRequestException",
        "For VpcLink VPC_LINK, integration uri should be a valid ELB listener ARN or a valid Cloud Map service ARN.", 400)
    integ = apigw.create_integration(ApiId=api_id, IntegrationType="HTTP_PROXY", IntegrationMethod="ANY",
                                     ConnectionType="VPC_LINK", ConnectionId=lid, IntegrationUri=listener)
    apigw.create_route(ApiId=api_id, RouteKey="ANY /{proxy+}", Target=f"integrations/{integ['IntegrationId']}")
    apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    # a link that is not AVAILABLE answers 500
    r = served(portico, api_id, "GET", "/x")
    assert r.status_code == 500 and r.json() == {"message": "Internal Server Error"}
    assert fails(apigw.delete_vpc_link, VpcLinkId=lid) == (
        "BadRequestException",
        f"Cannot delete vpc link. Vpc link '{lid}', is referenced in [ANY:{integ['IntegrationId']}] in format of [Method:Resource].",
        400)
    apigw.delete_api(ApiId=api_id)
    out = apigw.delete_vpc_link(VpcLinkId=lid)
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert apigw.get_vpc_link(VpcLinkId=lid)["VpcLinkStatus"] == "DELETING"
    def gone():
        try:
            apigw.get_vpc_link(VpcLinkId=lid)
            return False
        except apigw.exceptions.NotFoundException:
            return True

    wait_until(gone, what="link deleted")


def test_tags_and_pagination(portico, apigw, unique):
    a = apigw.create_api(Name=f"tag-{unique}", ProtocolType="HTTP", Tags={"team": "x"})
    b = apigw.create_api(Name=f"tag2-{unique}", ProtocolType="HTTP")
    arn = f"arn:aws:apigateway:us-east-1::/apis/{a['ApiId']}"
    assert apigw.get_tags(ResourceArn=arn)["Tags"] == {"team": "x"}
    out = apigw.tag_resource(ResourceArn=arn, Tags={"a": "1", "b": "2"})
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert apigw.get_tags(ResourceArn=arn)["Tags"] == {"team": "x", "a": "1", "b": "2"}
    out = apigw.untag_resource(ResourceArn=arn, TagKeys=["a", "b"])
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert apigw.get_api(ApiId=a["ApiId"])["Tags"] == {"team": "x"}
    assert fails(apigw.tag_resource, ResourceArn=arn, Tags={"aws:x": "1"})[0] == "BadRequestException"
    assert fails(apigw.get_tags, ResourceArn="arn:aws:apigateway:us-east-1::/apis/zzzzzzzzzz")[0] == "NotFoundException"
    # pagination: one item per page, token absent on the last page
    ids, token = [], None
    while True:
        kw = {"MaxResults": "1"} | ({"NextToken": token} if token else {})
        page = apigw.get_apis(**kw)
        assert len(page["Items"]) == 1
        ids.append(page["Items"][0]["ApiId"])
        token = page.get("NextToken")
        if not token:
            break
    assert a["ApiId"] in ids and b["ApiId"] in ids
    assert fails(apigw.get_apis, MaxResults="0")[0] == "BadRequestException"
    apigw.delete_api(ApiId=a["ApiId"])
    apigw.delete_api(ApiId=b["ApiId"])
