"""HTTP API access logs land in CloudWatch Logs: a stage's accessLogSettings name a log group;
each request's line, rendered from the format's $context variables, appears there as an event
in the stage's stream (read back with the AWS CLI and boto3)."""

import json

import pytest

from apigw_backend import Backend
from conftest import wait_until

FORMAT = json.dumps({
    "requestId": "$context.requestId", "routeKey": "$context.routeKey", "status": "$context.status",
    "path": "$context.path", "method": "$context.httpMethod", "stage": "$context.stage",
    "ip": "$context.identity.sourceIp", "integrationStatus": "$context.integrationStatus",
}, separators=(",", ":"))


@pytest.fixture(scope="module")
def backend():
    b = Backend().start()
    yield b
    b.stop()


def events(logs, group, **kw):
    return logs.filter_log_events(logGroupName=group, **kw)["events"]


def test_access_log_lines_reach_the_log_group(portico, backend, unique):
    p = portico
    apigw, logs = p.client("apigatewayv2"), p.client("logs")
    group = f"/aws/apigateway/access-{unique}"
    p.aws("logs", "create-log-group", "--log-group-name", group)
    arn = f"arn:aws:logs:us-east-1:000000000000:log-group:{group}"
    api_id = apigw.create_api(Name=f"log-{unique}", ProtocolType="HTTP")["ApiId"]
    i = apigw.create_integration(ApiId=api_id, IntegrationType="HTTP_PROXY", IntegrationMethod="ANY",
                                 IntegrationUri=f"{backend.url}/{{proxy}}", PayloadFormatVersion="1.0")
    apigw.create_route(ApiId=api_id, RouteKey="ANY /{proxy+}", Target=f"integrations/{i['IntegrationId']}")
    p.aws("apigatewayv2", "create-stage", "--api-id", api_id, "--stage-name", "$default", "--auto-deploy",
          "--access-log-settings", json.dumps({"DestinationArn": arn, "Format": FORMAT}))
    deployment = apigw.create_deployment(ApiId=api_id)["DeploymentId"]
    apigw.create_stage(ApiId=api_id, StageName="dev", DeploymentId=deployment,
                       AccessLogSettings={"DestinationArn": arn + ":*", "Format": "$context.requestId $context.stage $context.status"})
    host = f"{api_id}.execute-api.localhost:{p.port}"
    first = wait_until(lambda: [r for r in [p.http("GET", "/a", host=host)] if r.status_code == 200], what="route")[0]
    ids = [first.headers["apigw-requestid"]]
    ids += [p.http("POST", f"/b/{n}", host=host).headers["apigw-requestid"] for n in range(3)]
    dev = p.http("GET", "/dev/c", host=host)
    assert dev.status_code == 200

    # every request of $default is one JSON event, in its own stream
    stream = f"{api_id}_$default"
    got = wait_until(lambda: [e for e in [events(logs, group, logStreamNames=[stream])] if len(e) >= len(ids)],
                     timeout=10, what="access log events")[0]
    lines = [json.loads(e["message"]) for e in got]
    assert [x["requestId"] for x in lines] == ids
    assert lines[0] == {"requestId": ids[0], "routeKey": "ANY /{proxy+}", "status": "200", "path": "/a",
                        "method": "GET", "stage": "$default", "ip": "127.0.0.1", "integrationStatus": "200"}
    assert lines[1]["method"] == "POST" and lines[1]["path"] == "/b/0"
    assert all(e["logStreamName"] == stream for e in got)
    # the named stage writes its own stream, with its own format
    dev_line = f"{dev.headers['apigw-requestid']} dev 200"
    wait_until(lambda: [e["message"] for e in events(logs, group, logStreamNames=[f"{api_id}_dev"])] == [dev_line],
               timeout=10, what="dev stage line")
    # the AWS CLI sees them too: describe-log-streams and get-log-events
    streams = p.aws("logs", "describe-log-streams", "--log-group-name", group)["logStreams"]
    assert sorted(s["logStreamName"] for s in streams) == sorted([stream, f"{api_id}_dev"])
    out = p.aws("logs", "get-log-events", "--log-group-name", group, "--log-stream-name", stream, "--start-from-head")
    assert [json.loads(e["message"])["requestId"] for e in out["events"]] == ids

    # a format change applies to the next request without a deployment
    apigw.update_stage(ApiId=api_id, StageName="dev",
                       AccessLogSettings={"DestinationArn": arn, "Format": "v2 $context.requestId $context.routeKey"})

    def new_format_line():
        rid = p.http("GET", "/dev/d", host=host).headers["apigw-requestid"]
        return wait_until(lambda: f"v2 {rid} ANY /{{proxy+}}" in [e["message"] for e in events(
            logs, group, logStreamNames=[f"{api_id}_dev"])], timeout=3, what="line")

    wait_until(new_format_line, timeout=15, what="a line in the new format")
    apigw.delete_api(ApiId=api_id)


def test_access_logs_to_a_missing_group_are_dropped(portico, backend, unique):
    p = portico
    apigw, logs = p.client("apigatewayv2"), p.client("logs")
    missing = f"missing-{unique}"
    kept = f"kept-{unique}"
    logs.create_log_group(logGroupName=kept)
    api_id = apigw.create_api(Name=f"drop-{unique}", ProtocolType="HTTP", Target=f"{backend.url}/x")["ApiId"]
    apigw.update_stage(ApiId=api_id, StageName="$default", AccessLogSettings={
        "DestinationArn": f"arn:aws:logs:us-east-1:000000000000:log-group:{missing}", "Format": "$context.requestId"})
    host = f"{api_id}.execute-api.localhost:{p.port}"
    # requests are served as usual; the group is not created by API Gateway
    r = wait_until(lambda: [x for x in [p.http("GET", "/", host=host)] if x.status_code == 200], what="route")[0]
    # then point the stage at a group that exists: later lines arrive there, earlier ones were dropped
    apigw.update_stage(ApiId=api_id, StageName="$default", AccessLogSettings={
        "DestinationArn": f"arn:aws:logs:us-east-1:000000000000:log-group:{kept}", "Format": "$context.requestId"})
    rid = wait_until(lambda: [x.headers["apigw-requestid"] for x in [p.http("GET", "/", host=host)]
                              if [e for e in events(logs, kept)]], timeout=10, what="lines in the kept group")[0]
    assert rid
    assert r.headers["apigw-requestid"] not in [e["message"] for e in events(logs, kept)]
    assert not logs.describe_log_groups(logGroupNamePrefix=missing)["logGroups"]
    apigw.delete_api(ApiId=api_id)
