"""The user story: `portico tutorial` performs the AWS tutorial end to end and shows the ECS
sample page through the invoke URL; `portico tutorial cleanup` leaves nothing behind; and the
README's by-hand walkthrough (extracted from README.md, so it cannot drift) works with the AWS CLI."""

import os
import re
import subprocess
import uuid
from pathlib import Path

import requests

from conftest import BIN, ROOT, Portico, wait_until


# Task processes inherit Portico's environment: a per-test mark tells this test's task processes
# from those of other Porticos running on the same machine (other tests, other checkouts).
MARK = "PORTICO_E2E_MARK"


def new_mark():
    return {MARK: uuid.uuid4().hex}


def sample_app_processes(mark):
    """Pids of running built-in sample-app task processes started under `mark`."""
    needle = f"{MARK}={mark[MARK]}".encode()
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().split(b"\0")
            if b"__sample-app" not in cmd:
                continue
            environ = (d / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if needle in environ:
            pids.append(int(d.name))
    return pids


def run_tutorial(*args, timeout=300, env=None):
    r = subprocess.run([str(BIN), "tutorial", *args], capture_output=True, text=True, timeout=timeout,
                       env=dict(os.environ, **(env or {})))
    return r


# AWS's waits (the ALB's 300 s deregistration delay on stack delete) shortened 50x.
FAST = ["--time-scale", "0.02"]


def test_tutorial_then_cleanup_leaves_nothing():
    p = Portico(extra_args=FAST, env=new_mark()).start()
    try:
        tutorial_then_cleanup(p)
    finally:
        p.stop()


def tutorial_then_cleanup(p):
    before = set(sample_app_processes(p.env))
    r = run_tutorial("--endpoint", p.endpoint)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    for n in range(1, 7):
        assert f"== Step {n}:" in out
    assert "aws cloudformation create-stack --stack-name http-api-private-integrations-tutorial" in out
    assert 'HTTP 200 "Amazon ECS Sample App"' in out
    m = re.search(r"Invoke URL:\s+http://([a-z0-9]{10})\.execute-api\.localhost:(\d+)/", out)
    assert m, out
    api_id = m.group(1)
    assert int(m.group(2)) == p.port
    assert "to the first successful response" in out

    # the invoke URL really serves the sample page from an ECS task, through VPC link and ALB
    page = p.http("GET", "/", host=f"{api_id}.execute-api.localhost:{p.port}")
    assert page.status_code == 200
    assert "<title>Amazon ECS Sample App</title>" in page.text
    assert set(sample_app_processes(p.env)) - before, "no task process runs the sample app"
    assert p.http("GET", "/_portico/health").json()["tasks_running"] >= 1

    # the resources the tutorial names exist, as the AWS CLI sees them
    apis = p.aws("apigatewayv2", "get-apis")["Items"]
    assert [a["Name"] for a in apis if a["ApiId"] == api_id] == ["http-private-integrations-tutorial"]
    routes = p.aws("apigatewayv2", "get-routes", "--api-id", api_id)["Items"]
    assert [r["RouteKey"] for r in routes] == ["ANY /{proxy+}"]
    integ = p.aws("apigatewayv2", "get-integrations", "--api-id", api_id)["Items"][0]
    assert integ["ConnectionType"] == "VPC_LINK"
    assert ":listener/app/" in integ["IntegrationUri"]
    links = p.aws("apigatewayv2", "get-vpc-links")["Items"]
    assert [l["VpcLinkStatus"] for l in links if l["Name"] == "private-integrations-tutorial"] == ["AVAILABLE"]

    # re-running is idempotent: same API, nothing duplicated
    r2 = run_tutorial("--endpoint", p.endpoint)
    assert r2.returncode == 0, r2.stdout + r2.stderr
    assert f"Invoke URL:  http://{api_id}." in r2.stdout
    assert "already exists" in r2.stdout
    assert len(p.aws("apigatewayv2", "get-apis")["Items"]) == 1

    # Step 7
    c = run_tutorial("cleanup", "--endpoint", p.endpoint)
    assert c.returncode == 0, c.stdout + c.stderr
    assert "remaining: 0 tasks, 0 load balancers, 0 stacks, 0 APIs, 0 VPC links, 0 task processes" in c.stdout
    gone = p.http("GET", "/", host=f"{api_id}.execute-api.localhost:{p.port}")
    assert gone.status_code == 404
    wait_until(lambda: not (set(sample_app_processes(p.env)) - before), timeout=20, what="task processes to exit")
    for cluster in p.aws("ecs", "list-clusters")["clusterArns"]:
        assert p.aws("ecs", "list-tasks", "--cluster", cluster)["taskArns"] == []


def test_tutorial_starts_its_own_portico_and_stops_it(tmp_path):
    mark = new_mark()
    before = set(sample_app_processes(mark))
    r = run_tutorial("--port", "0", "--state-dir", str(tmp_path), "--exit", env=mark)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Started Portico on http://127.0.0.1:" in r.stdout
    assert 'HTTP 200 "Amazon ECS Sample App"' in r.stdout
    # the Portico it started is gone, and so are its tasks
    wait_until(lambda: not (set(sample_app_processes(mark)) - before), timeout=20, what="task processes to exit")


def test_cleanup_against_nothing_running_says_what_to_do():
    r = run_tutorial("cleanup", "--endpoint", "http://127.0.0.1:9")
    assert r.returncode != 0
    assert "portico serve" in r.stderr


def walkthrough():
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- walkthrough:start -->", 1)[1].split("<!-- walkthrough:end -->", 1)[0]
    return block.split("```sh", 1)[1].rsplit("```", 1)[0]


def test_readme_walkthrough_runs():
    p = Portico(extra_args=FAST).start()
    try:
        walkthrough_runs(p)
    finally:
        p.stop()


def walkthrough_runs(p):
    script = walkthrough().replace("http://localhost:4566", p.endpoint)
    assert p.endpoint in script, "the walkthrough must set AWS_ENDPOINT_URL"
    cli_dir = str(Path(os.environ.get("PORTICO_AWS_CLI", Path(os.sys.executable).parent / "aws")).parent)
    env = dict(os.environ, PATH=cli_dir + os.pathsep + os.environ["PATH"], AWS_PAGER="")
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "<title>Amazon ECS Sample App</title>" in r.stdout
    # and it cleaned up after itself
    assert p.aws("apigatewayv2", "get-apis")["Items"] == []
    assert p.aws("apigatewayv2", "get-vpc-links")["Items"] == []
    stacks = p.aws("cloudformation", "list-stacks")["StackSummaries"]
    assert all(s["StackStatus"] == "DELETE_COMPLETE" for s in stacks)
