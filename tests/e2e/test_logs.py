"""CloudWatch Logs through boto3 and the AWS CLI: groups, streams, events, tokens, filter
patterns, pagination, retention, tags, bad input, and `aws logs tail --follow` (AWS CLI v2,
PORTICO_AWS_CLI2) following a group while boto3 writes to it."""

import os
import subprocess
import threading
import time
from pathlib import Path

import botocore.exceptions
import pytest

from conftest import wait_until


def err(fn, *a, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fn(*a, **kw)
    return e.value.response["Error"]


def now_ms():
    return int(time.time() * 1000)


def test_groups_streams_and_events(portico, unique):
    logs = portico.client("logs")
    g = f"/ecs/app-{unique}"
    logs.create_log_group(logGroupName=g, tags={"team": "web"})
    assert err(logs.create_log_group, logGroupName=g)["Code"] == "ResourceAlreadyExistsException"
    assert err(logs.create_log_group, logGroupName="bad name")["Code"] == "InvalidParameterException"
    logs.put_retention_policy(logGroupName=g, retentionInDays=7)
    assert err(logs.put_retention_policy, logGroupName=g, retentionInDays=8)["Code"] == "InvalidParameterException"
    for i in range(3):
        logs.create_log_group(logGroupName=f"{g}/extra{i}")
    got = logs.describe_log_groups(logGroupNamePrefix=g)["logGroups"]
    assert [x["logGroupName"] for x in got] == [g] + [f"{g}/extra{i}" for i in range(3)]
    assert got[0]["retentionInDays"] == 7 and got[0]["arn"].endswith(f"log-group:{g}:*")
    pages = list(logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=g, PaginationConfig={"PageSize": 3}))
    assert [len(p["logGroups"]) for p in pages] == [3, 1]
    assert logs.list_tags_log_group(logGroupName=g)["tags"] == {"team": "web"}
    arn = got[0]["logGroupArn"]
    logs.tag_resource(resourceArn=arn, tags={"env": "dev"})
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "web", "env": "dev"}
    logs.untag_resource(resourceArn=arn, tagKeys=["team"])
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"env": "dev"}

    logs.create_log_stream(logGroupName=g, logStreamName="web/a")
    logs.create_log_stream(logGroupName=g, logStreamName="web/b")
    assert err(logs.create_log_stream, logGroupName=g, logStreamName="web/a")["Code"] == "ResourceAlreadyExistsException"
    assert err(logs.create_log_stream, logGroupName=f"{g}-nope", logStreamName="x")["Code"] == "ResourceNotFoundException"
    t0 = now_ms() - 10_000
    msgs = ["GET /health 200", "ERROR connection reset by peer", '{"level":"ERROR","latency":250}', "WARN slow", "done"]
    logs.put_log_events(logGroupName=g, logStreamName="web/a",
                        logEvents=[{"timestamp": t0 + i, "message": m} for i, m in enumerate(msgs)])
    logs.put_log_events(logGroupName=g, logStreamName="web/b", logEvents=[{"timestamp": t0 + 2, "message": "b ERROR"}])
    # Out of order, empty, unknown stream: refused, nothing stored.
    e = err(logs.put_log_events, logGroupName=g, logStreamName="web/a",
            logEvents=[{"timestamp": t0 + 9, "message": "x"}, {"timestamp": t0 + 8, "message": "y"}])
    assert e == {"Code": "InvalidParameterException", "Message": "Log events in a single PutLogEvents request must be in chronological order."}
    assert err(logs.put_log_events, logGroupName=g, logStreamName="nope",
               logEvents=[{"timestamp": t0, "message": "x"}])["Code"] == "ResourceNotFoundException"
    r = logs.put_log_events(logGroupName=g, logStreamName="web/a",
                            logEvents=[{"timestamp": t0 - 30 * 86400_000, "message": "ancient"}])
    assert r["rejectedLogEventsInfo"] == {"expiredLogEventEndIndex": 0}

    streams = logs.describe_log_streams(logGroupName=g, orderBy="LastEventTime", descending=True)["logStreams"]
    assert [s["logStreamName"] for s in streams] == ["web/a", "web/b"]
    assert streams[0]["firstEventTimestamp"] == t0 and streams[0]["lastEventTimestamp"] == t0 + 4
    assert [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=g, logStreamNamePrefix="web/b")["logStreams"]] == ["web/b"]

    # GetLogEvents: from the head in pages of 2, then backwards from the tail.
    seen, token = [], None
    while True:
        kw = {"nextToken": token} if token else {"startFromHead": True}
        r = logs.get_log_events(logGroupName=g, logStreamName="web/a", limit=2, **kw)
        seen += [e["message"] for e in r["events"]]
        if r["nextForwardToken"] == token:
            break
        token = r["nextForwardToken"]
    assert seen == msgs
    tail = logs.get_log_events(logGroupName=g, logStreamName="web/a", limit=2)
    assert [e["message"] for e in tail["events"]] == msgs[-2:]
    back = logs.get_log_events(logGroupName=g, logStreamName="web/a", limit=2, nextToken=tail["nextBackwardToken"])
    assert [e["message"] for e in back["events"]] == msgs[1:3]
    assert err(logs.get_log_events, logGroupName=g, logStreamName="web/a", nextToken="junk")["Code"] == "InvalidParameterException"

    def filt(pattern, **kw):
        return [e["message"] for e in logs.filter_log_events(logGroupName=g, filterPattern=pattern, **kw)["events"]]
    # Same timestamp: ingestion order breaks the tie.
    assert filt("ERROR") == ["ERROR connection reset by peer", '{"level":"ERROR","latency":250}', "b ERROR"]
    assert filt('"connection reset"') == ["ERROR connection reset by peer"]
    assert filt("ERROR", logStreamNames=["web/b"]) == ["b ERROR"]
    assert filt("?WARN ?health") == ["GET /health 200", "WARN slow"]
    assert filt("{ $.latency > 200 }") == ['{"level":"ERROR","latency":250}']
    assert filt("", startTime=t0 + 3, endTime=t0 + 4) == ["WARN slow", "done"]
    assert err(logs.filter_log_events, logGroupName=g, filterPattern='"unclosed')["Code"] == "InvalidParameterException"
    pages = list(logs.get_paginator("filter_log_events").paginate(logGroupName=g, PaginationConfig={"PageSize": 4}))
    assert [len(p["events"]) for p in pages] == [4, 2]
    ids = [e["eventId"] for p in pages for e in p["events"]]
    assert len(set(ids)) == 6 and all(len(i) == 56 for i in ids)

    out = portico.aws("logs", "filter-log-events", "--log-group-name", g, "--filter-pattern", "WARN")
    assert [e["message"] for e in out["events"]] == ["WARN slow"]
    logs.delete_log_stream(logGroupName=g, logStreamName="web/b")
    assert filt("ERROR", logStreamNamePrefix="web/") == ["ERROR connection reset by peer", '{"level":"ERROR","latency":250}']
    portico.aws("logs", "delete-log-group", "--log-group-name", g)
    assert err(logs.get_log_events, logGroupName=g, logStreamName="web/a")["Code"] == "ResourceNotFoundException"


def cli2():
    p = os.environ.get("PORTICO_AWS_CLI2")
    return p if p and Path(p).exists() else None


@pytest.mark.skipif(cli2() is None, reason="set PORTICO_AWS_CLI2 to an AWS CLI v2 binary (logs tail is v2-only)")
def test_logs_tail_follow(portico, unique):
    logs = portico.client("logs")
    g = f"/tail/{unique}"
    logs.create_log_group(logGroupName=g)
    logs.create_log_stream(logGroupName=g, logStreamName="s1")
    logs.put_log_events(logGroupName=g, logStreamName="s1", logEvents=[{"timestamp": now_ms(), "message": "before-follow"}])
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_PAGER="",
               AWS_DEFAULT_REGION="us-east-1")
    proc = subprocess.Popen([cli2(), "--endpoint-url", portico.endpoint, "logs", "tail", g, "--follow",
                             "--format", "short", "--since", "5m"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines = []
    reader = threading.Thread(target=lambda: [lines.append(l.rstrip()) for l in proc.stdout], daemon=True)
    reader.start()
    try:
        wait_until(lambda: any(l.endswith("before-follow") for l in lines), timeout=30, what="first event")
        logs.create_log_stream(logGroupName=g, logStreamName="s2")
        for i in range(3):
            logs.put_log_events(logGroupName=g, logStreamName="s2", logEvents=[{"timestamp": now_ms(), "message": f"live-{i}"}])
        wait_until(lambda: sum(l.endswith(tuple(f"live-{i}" for i in range(3))) for l in lines) == 3,
                   timeout=30, what="followed events")
        assert proc.poll() is None, proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
    msgs = [l.split(" ", 1)[1] for l in lines if " " in l]
    assert msgs == ["before-follow", "live-0", "live-1", "live-2"]  # each exactly once, in order


def test_test_metric_filter(portico):
    logs = portico.client("logs")
    msgs = ["127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /a.gif HTTP/1.0\" 404 2326",
            "127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /b.gif HTTP/1.0\" 200 10"]
    r = logs.test_metric_filter(filterPattern="[ip, id, user, timestamp, request, status = 404, size]", logEventMessages=msgs)
    assert [m["eventNumber"] for m in r["matches"]] == [1]
    assert r["matches"][0]["extractedValues"]["$status"] == "404"
    assert r["matches"][0]["extractedValues"]["$request"] == "GET /a.gif HTTP/1.0"
    r = logs.test_metric_filter(filterPattern="frank", logEventMessages=msgs)
    assert [m["eventNumber"] for m in r["matches"]] == [1, 2]
    assert err(logs.test_metric_filter, filterPattern="{ bad", logEventMessages=msgs)["Code"] == "InvalidParameterException"
