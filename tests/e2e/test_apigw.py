"""API Gateway v2 HTTP APIs through real clients: the control plane with the AWS CLI and
boto3, and the data plane with real HTTP requests to a backend the test starts."""

import re

import botocore.exceptions
import pytest
import requests

from apigw_backend import Backend
from conftest import wait_until

NOT_FOUND = {"message": "Not Found"}


@pytest.fixture(scope="module")
def backend():
    b = Backend().start()
    yield b
    b.stop()


@pytest.fixture
def apigw(portico):
    return portico.client("apigatewayv2")


def host(p, api_id):
    return f"{api_id}.execute-api.localhost:{p.port}"


def call(p, api_id, method, path, **kw):
    return p.http(method, path, host=host(p, api_id), **kw)


def served(p, api_id, method, path, ok=lambda r: r.status_code != 404, **kw):
    """Polls until the data plane serves the change just made (auto-deploy publishes within
    milliseconds, but asynchronously), then returns that response."""
    return wait_until(lambda: [r for r in [call(p, api_id, method, path, **kw)] if ok(r)], what=f"{method} {path}")[0]


def error_of(excinfo):
    e = excinfo.value.response
    return e["Error"]["Code"], e["Error"]["Message"], e["ResponseMetadata"]["HTTPStatusCode"]


def test_http_api_routes_and_backend(portico, apigw, backend, unique):
    p = portico
    api = p.aws("apigatewayv2", "create-api", "--name", f"e2e-{unique}", "--protocol-type", "HTTP")
    api_id = api["ApiId"]
    assert re.fullmatch(r"[a-z0-9]{10}", api_id)
    assert api["ApiEndpoint"] == f"http://{api_id}.execute-api.localhost:{p.port}"
    assert api["RouteSelectionExpression"] == "$request.method $request.path"
    assert api["Tags"] == {}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", api["CreatedDate"])

    # no stage yet: the data plane answers Not Found, with a request id
    r = call(p, api_id, "GET", "/items/1")
    assert r.status_code == 404 and r.json() == NOT_FOUND
    assert re.fullmatch(r"[A-Za-z0-9+/]{15}=", r.headers["apigw-requestid"])

    items = apigw.create_integration(
        ApiId=api_id, IntegrationType="HTTP_PROXY", IntegrationMethod="ANY",
        IntegrationUri=f"{backend.url}/backend/items/{{id}}",
    )
    assert items["TimeoutInMillis"] == 30000
    assert items["PayloadFormatVersion"] == "1.0"
    assert items["ConnectionType"] == "INTERNET"
    proxy = p.aws(
        "apigatewayv2", "create-integration", "--api-id", api_id, "--integration-type", "HTTP_PROXY",
        "--integration-method", "ANY", "--integration-uri", f"{backend.url}/proxy/{{proxy}}",
        "--payload-format-version", "1.0",
    )
    default = apigw.create_integration(
        ApiId=api_id, IntegrationType="HTTP_PROXY", IntegrationMethod="ANY", IntegrationUri=f"{backend.url}/base",
    )
    r_items = apigw.create_route(ApiId=api_id, RouteKey="GET /items/{id}", Target=f"integrations/{items['IntegrationId']}")
    assert re.fullmatch(r"[a-z0-9]{7}", r_items["RouteId"])
    assert r_items["ApiKeyRequired"] is False and r_items["AuthorizationType"] == "NONE"
    r_proxy = p.aws("apigatewayv2", "create-route", "--api-id", api_id, "--route-key", "ANY /{proxy+}",
                    "--target", f"integrations/{proxy['IntegrationId']}")
    r_default = apigw.create_route(ApiId=api_id, RouteKey="$default", Target=f"integrations/{default['IntegrationId']}")
    stage = apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    assert stage["AutoDeploy"] is True and stage["DeploymentId"]
    assert stage["LastDeploymentStatusMessage"] == f"Successfully deployed stage with deployment ID '{stage['DeploymentId']}'"
    got = apigw.get_stage(ApiId=api_id, StageName="$default")
    assert got["DefaultRouteSettings"] == {"DetailedMetricsEnabled": False}
    assert got["StageVariables"] == {} and got["RouteSettings"] == {} and got["Tags"] == {}

    # GET /items/{id}: the URI's {id} is substituted, nothing appended, query forwarded
    r = served(p, api_id, "GET", "/items/42?x=1&y=two", headers={"X-Client": "c1"})
    assert r.status_code == 200
    seen = r.json()
    assert seen["method"] == "GET"
    assert seen["path"] == "/backend/items/42"
    assert seen["rawQuery"] == "x=1&y=two"
    h = seen["headers"]
    assert h["host"] == f"127.0.0.1:{backend.port}"
    assert h["x-client"] == "c1"
    assert "for=127.0.0.1" in h["forwarded"] and f"host={host(p, api_id)}" in h["forwarded"]
    assert h["via"] == "HTTP/1.1 AmazonAPIGateway"
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24}", h["x-amzn-trace-id"])
    assert "x-forwarded-for" not in h
    assert r.headers["x-backend"] == "yes"
    assert r.headers["apigw-requestid"]

    # ANY /{proxy+}: method kept, {proxy} substituted, body forwarded
    seen = call(p, api_id, "POST", "/a/b?q=1", data=b"hello").json()
    assert (seen["method"], seen["path"], seen["rawQuery"], seen["bodyLength"]) == ("POST", "/proxy/a/b", "q=1", 5)
    # more segments than GET /items/{id} has: the greedy route
    assert call(p, api_id, "GET", "/items/42/more").json()["path"] == "/proxy/items/42/more"
    # the root: {proxy+} captures nothing
    assert call(p, api_id, "GET", "/").json()["path"] == "/proxy/"
    # the path-style address reaches the same API
    r = p.http("GET", f"/_portico/execute-api/{api_id}/items/7?z=1")
    assert r.status_code == 200 and r.json()["path"] == "/backend/items/7" and r.json()["rawQuery"] == "z=1"

    # without the greedy route, $default answers and appends the request path
    # (the change is served before the call returns: no polling needed)
    apigw.delete_route(ApiId=api_id, RouteId=r_proxy["RouteId"])
    assert call(p, api_id, "GET", "/a/b").json()["path"] == "/base/a/b"
    seen = call(p, api_id, "DELETE", "/items/9?k=v").json()
    assert (seen["method"], seen["path"], seen["rawQuery"]) == ("DELETE", "/base/items/9", "k=v")

    # without $default: unknown route and wrong method are 404 Not Found, never 405
    apigw.delete_route(ApiId=api_id, RouteId=r_default["RouteId"])
    assert call(p, api_id, "GET", "/nope").status_code == 404
    r = call(p, api_id, "POST", "/items/1")
    assert r.status_code == 404 and r.json() == NOT_FOUND and r.headers["apigw-requestid"]
    assert call(p, api_id, "GET", "/items/1").status_code == 200

    # delete everything: the data plane no longer answers for the API
    apigw.delete_api(ApiId=api_id)
    r = call(p, api_id, "GET", "/items/1")
    assert r.status_code == 404 and r.json() == NOT_FOUND
    with pytest.raises(botocore.exceptions.ClientError) as e:
        apigw.get_api(ApiId=api_id)
    assert error_of(e) == ("NotFoundException", f"Invalid API identifier specified 000000000000:{api_id}", 404)
    assert r_items["RouteId"]


def make_api(apigw, backend, unique, uri=None, route_key="ANY /{proxy+}", **integration):
    api_id = apigw.create_api(Name=f"e2e-{unique}", ProtocolType="HTTP")["ApiId"]
    integ = apigw.create_integration(
        ApiId=api_id, IntegrationType="HTTP_PROXY", IntegrationMethod="ANY",
        IntegrationUri=uri or f"{backend.url}/{{proxy}}", **integration,
    )
    route = apigw.create_route(ApiId=api_id, RouteKey=route_key, Target=f"integrations/{integ['IntegrationId']}")
    return api_id, integ, route


def test_throttling_429(portico, apigw, backend, unique):
    api_id, _, route = make_api(apigw, backend, unique)
    apigw.create_stage(
        ApiId=api_id, StageName="$default", AutoDeploy=True,
        DefaultRouteSettings={"ThrottlingBurstLimit": 1, "ThrottlingRateLimit": 0.001},
    )
    first = served(portico, api_id, "GET", "/t")
    assert first.status_code == 200
    r = call(portico, api_id, "GET", "/t")
    assert r.status_code == 429
    assert r.json() == {"message": "Too Many Requests"}
    assert r.headers["apigw-requestid"]
    # a route setting overrides the default: burst 0 blocks everything
    apigw.update_stage(ApiId=api_id, StageName="$default",
                       RouteSettings={"ANY /{proxy+}": {"ThrottlingBurstLimit": 0, "ThrottlingRateLimit": 0}})
    assert apigw.get_stage(ApiId=api_id, StageName="$default")["RouteSettings"]["ANY /{proxy+}"]["ThrottlingBurstLimit"] == 0
    apigw.delete_api(ApiId=api_id)


def test_cors_preflight_and_headers(portico, apigw, backend, unique):
    api_id, _, _ = make_api(apigw, backend, unique)
    apigw.update_api(ApiId=api_id, CorsConfiguration={"AllowOrigins": ["https://a.example", "https://b.example"],
                                                     "AllowMethods": ["GET", "PUT"], "MaxAge": 300})
    # merge member-wise: only origins sent, methods kept
    out = apigw.update_api(ApiId=api_id, CorsConfiguration={"AllowHeaders": ["x-custom"]})
    assert out["CorsConfiguration"]["AllowMethods"] == ["GET", "PUT"]
    assert out["CorsConfiguration"]["AllowHeaders"] == ["x-custom"]
    apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    before = len(backend.requests)
    pre = {"Origin": "https://b.example", "Access-Control-Request-Method": "PUT"}
    r = served(portico, api_id, "OPTIONS", "/x", ok=lambda r: r.status_code == 204, headers=pre)
    assert r.headers["access-control-allow-origin"] == "https://b.example"
    assert r.headers["access-control-allow-methods"] == "GET,PUT"
    assert r.headers["access-control-allow-headers"] == "x-custom"
    assert r.headers["access-control-max-age"] == "300"
    assert r.headers["apigw-requestid"]
    assert len(backend.requests) == before, "a preflight must not reach the integration"
    # an origin that is not allowed gets no CORS headers
    r = call(portico, api_id, "OPTIONS", "/x", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "PUT"})
    assert r.status_code == 204 and "access-control-allow-origin" not in r.headers
    # ordinary requests: the backend's CORS headers are dropped, ours added for allowed origins
    r = call(portico, api_id, "GET", "/x", headers={"Origin": "https://a.example"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://a.example"
    r = call(portico, api_id, "GET", "/x")
    assert "access-control-allow-origin" not in r.headers
    apigw.delete_api(ApiId=api_id)


def test_timeout_unreachable_and_too_large(portico, apigw, backend, unique):
    api_id, _, _ = make_api(apigw, backend, unique, uri=f"{backend.url}/slow", route_key="GET /slow", TimeoutInMillis=200)
    dead = apigw.create_integration(ApiId=api_id, IntegrationType="HTTP_PROXY", IntegrationMethod="ANY",
                                    IntegrationUri="http://127.0.0.1:9/nothing")
    apigw.create_route(ApiId=api_id, RouteKey="ANY /dead", Target=f"integrations/{dead['IntegrationId']}")
    ok = apigw.create_integration(ApiId=api_id, IntegrationType="HTTP_PROXY", IntegrationMethod="ANY",
                                  IntegrationUri=f"{backend.url}/upload")
    apigw.create_route(ApiId=api_id, RouteKey="POST /upload", Target=f"integrations/{ok['IntegrationId']}")
    apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    served(portico, api_id, "POST", "/upload")
    r = call(portico, api_id, "GET", "/slow?ms=1500")
    assert r.status_code == 503
    assert r.text == '{"message":"Service Unavailable"}'
    assert r.headers["apigw-requestid"]
    r = call(portico, api_id, "GET", "/dead")
    assert r.status_code == 503 and r.json() == {"message": "Service Unavailable"}
    assert call(portico, api_id, "POST", "/upload", data=b"x" * 1000).json()["bodyLength"] == 1000
    r = call(portico, api_id, "POST", "/upload", data=b"x" * (10 * 1024 * 1024 + 1))
    assert r.status_code == 413
    assert r.json() == {"message": "Request Entity Too Large"}
    apigw.delete_api(ApiId=api_id)


def test_access_log_and_oversized_headers(portico, apigw, backend, unique):
    api_id, _, _ = make_api(apigw, backend, unique)
    fmt = "$context.requestId $context.routeKey $context.status $context.identity.sourceIp $context.integrationStatus"
    assert fails_code(apigw.create_stage, ApiId=api_id, StageName="$default",
                      AccessLogSettings={"DestinationArn": "arn:aws:logs:us-east-1:000000000000:log-group:g",
                                         "Format": "$context.status"}) == "BadRequestException"
    logs = portico.client("logs")
    logs.create_log_group(logGroupName=f"g-{unique}")
    apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True,
                       AccessLogSettings={"DestinationArn": f"arn:aws:logs:us-east-1:000000000000:log-group:g-{unique}", "Format": fmt})
    r = served(portico, api_id, "GET", "/logged")
    rid = r.headers["apigw-requestid"]
    line = f"{rid} ANY /{{proxy+}} 200 127.0.0.1 200"
    wait_until(lambda: line in [e["message"] for e in logs.filter_log_events(logGroupName=f"g-{unique}")["events"]],
               what="access log line in CloudWatch Logs")
    r = call(portico, api_id, "GET", "/logged", headers={"X-Big": "a" * 11000})
    assert r.status_code == 413
    apigw.delete_api(ApiId=api_id)


def fails_code(fn, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fn(**kw)
    return e.value.response["Error"]["Code"]


def test_http_api_survives_kill_9(fresh_portico, backend, unique):
    p = fresh_portico.start()
    apigw = p.client("apigatewayv2")
    api_id, _, _ = make_api(apigw, backend, unique)
    apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    assert served(p, api_id, "GET", "/before").json()["path"] == "/before"
    p.kill9()
    p.start()
    apigw = p.client("apigatewayv2")
    # the endpoint follows the new port; the data plane serves the stored deployment again
    assert apigw.get_api(ApiId=api_id)["ApiEndpoint"] == f"http://{api_id}.execute-api.localhost:{p.port}"
    assert served(p, api_id, "GET", "/after").json()["path"] == "/after"


def test_private_integration_through_vpc_link_to_alb(backend):
    """The tutorial's path: HTTP API -> VPC link -> internal ALB listener -> target."""
    from conftest import Portico

    p = Portico(extra_args=["--time-scale", "0.1"]).start()
    try:
        ec2, elb, apigw = p.client("ec2"), p.client("elbv2"), p.client("apigatewayv2")
        vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.30.{i}.0/24", AvailabilityZone=f"us-east-1{z}")
                   ["Subnet"]["SubnetId"] for i, z in ((1, "a"), (2, "b"))]
        sg = ec2.create_security_group(GroupName="link", Description="link", VpcId=vpc)["GroupId"]
        # the ALB and the link share the group: it must admit its own members (groups are enforced)
        ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": sg}]}])
        tg = elb.create_target_group(Name="svc", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip",
                                     HealthCheckPath="/health", HealthCheckIntervalSeconds=5,
                                     HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
        elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": backend.port}])
        lb = elb.create_load_balancer(Name="svc-alb", Subnets=subnets, SecurityGroups=[sg], Scheme="internal",
                                      Type="application")["LoadBalancers"][0]
        listener = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                                       DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])["Listeners"][0]["ListenerArn"]

        link = apigw.create_vpc_link(Name="link", SubnetIds=subnets, SecurityGroupIds=[sg])
        assert link["VpcLinkStatus"] == "PENDING"
        got = wait_until(lambda: [g for g in [apigw.get_vpc_link(VpcLinkId=link["VpcLinkId"])]
                                  if g["VpcLinkStatus"] != "PENDING"], what="link available")[0]
        assert (got["VpcLinkStatus"], got["VpcLinkStatusMessage"]) == ("AVAILABLE", "VPC link is ready to route traffic")
        enis = ec2.describe_network_interfaces(Filters=[{"Name": "subnet-id", "Values": subnets}])["NetworkInterfaces"]
        link_ips = {e["PrivateIpAddress"] for e in enis if link["VpcLinkId"] in e.get("Description", "")}
        assert len(link_ips) == 2

        api_id = apigw.create_api(Name="private", ProtocolType="HTTP")["ApiId"]
        integ = apigw.create_integration(ApiId=api_id, IntegrationType="HTTP_PROXY", IntegrationMethod="ANY",
                                         ConnectionType="VPC_LINK", ConnectionId=link["VpcLinkId"],
                                         IntegrationUri=listener, PayloadFormatVersion="1.0")
        apigw.create_route(ApiId=api_id, RouteKey="ANY /{proxy+}", Target=f"integrations/{integ['IntegrationId']}")
        apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
        apigw.create_stage(ApiId=api_id, StageName="dev")
        apigw.create_deployment(ApiId=api_id, StageName="dev")

        # the root URL reaches the target through the ALB
        r = served(p, api_id, "GET", "/?a=1", ok=lambda r: r.status_code == 200)
        seen = r.json()
        assert (seen["path"], seen["rawQuery"]) == ("/", "a=1")
        # the client-facing host (the ALB may normalise the port away)
        assert seen["headers"]["host"].startswith(f"{api_id}.execute-api.localhost")
        assert seen["headers"]["x-forwarded-for"] in link_ips
        assert seen["headers"]["via"] == "HTTP/1.1 AmazonAPIGateway"
        assert r.headers["apigw-requestid"]
        # a named stage's segment stays in the path sent to a private integration
        r = served(p, api_id, "POST", "/dev/items", ok=lambda r: r.status_code == 200, data=b"abc")
        assert (r.json()["method"], r.json()["path"], r.json()["bodyLength"]) == ("POST", "/dev/items", 3)
        # through the same link to an NLB listener: the bytes pass through to the target
        ntg = elb.create_target_group(Name="svc-tcp", Protocol="TCP", Port=80, VpcId=vpc, TargetType="ip",
                                      HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                      HealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
        elb.register_targets(TargetGroupArn=ntg, Targets=[{"Id": "127.0.0.1", "Port": backend.port}])
        nlb = elb.create_load_balancer(Name="svc-nlb", Subnets=subnets, Scheme="internal",
                                       Type="network")["LoadBalancers"][0]
        nl = elb.create_listener(LoadBalancerArn=nlb["LoadBalancerArn"], Protocol="TCP", Port=7001,
                                 DefaultActions=[{"Type": "forward", "TargetGroupArn": ntg}])["Listeners"][0]["ListenerArn"]
        ninteg = apigw.create_integration(ApiId=api_id, IntegrationType="HTTP_PROXY", IntegrationMethod="ANY",
                                          ConnectionType="VPC_LINK", ConnectionId=link["VpcLinkId"], IntegrationUri=nl)
        apigw.create_route(ApiId=api_id, RouteKey="GET /nlb/{proxy+}", Target=f"integrations/{ninteg['IntegrationId']}")
        r = served(p, api_id, "GET", "/nlb/a?b=c", ok=lambda r: r.status_code == 200)
        assert (r.json()["path"], r.json()["rawQuery"]) == ("/nlb/a", "b=c")
        assert r.json()["headers"]["host"].startswith(f"{api_id}.execute-api.localhost")
        # no healthy target: the ALB's own 503 reaches the client
        elb.deregister_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": backend.port}])
        r = served(p, api_id, "GET", "/x", ok=lambda r: r.status_code == 503)
        assert r.headers.get("server") == "awselb/2.0" and r.headers["apigw-requestid"]
    finally:
        p.stop()
