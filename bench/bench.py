"""Portico's benchmark harness: each case against its baseline, interleaved rounds, medians and
ranges, ratios computed within the run (the machine is shared and noisy: absolute numbers move,
ratios within a run hold). Prints one table and writes target/bench/results.json.

Cases (see docs/benchmarks.md):
  direct          wrk -> backend (the floor)
  nginx           wrk -> nginx -> backend            (baseline for one proxy hop)
  haproxy         wrk -> HAProxy -> backend
  httpapi         wrk -> Portico HTTP API (HTTP_PROXY) -> backend
  alb             wrk -> Portico ALB listener -> backend
  nginx2          wrk -> nginx -> nginx -> backend   (baseline for the tutorial path)
  tutorial        wrk -> Portico HTTP API -> VPC link -> ALB -> backend
  startup         exec -> first successful control-plane answer
  rss-idle        resident memory of an idle Portico
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import boto3
import botocore.config

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(os.environ.get("PORTICO_BIN", ROOT / "target" / "release" / "portico"))
OUT = ROOT / "target" / "bench"
TICK = os.sysconf("SC_CLK_TCK")


# Every child dies with the harness, even when the harness is SIGKILLed (children run in their
# own sessions so that stop() can kill a whole group, which also puts them out of reach of a
# terminal's Ctrl-C). SIGTERM rather than SIGKILL so that a master process (nginx) takes its
# workers down with it and Portico stops its tasks.
_HARNESS_PID = os.getpid()
_PR_SET_PDEATHSIG = 1


def die_with_harness():
    """preexec_fn for every child: ask the kernel for SIGTERM when the harness dies."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != _HARNESS_PID:  # the harness died before prctl took effect
        os._exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {port}")


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except (OSError, IndexError, ValueError):
            pass
    return total


def children(pid):
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
        return [int(x) for x in out.split()]
    except OSError:
        return []


def rss_kb(pid, field="VmRSS:"):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


class Proc:
    def __init__(self, args, **kw):
        kw.setdefault("stderr", subprocess.DEVNULL)
        self.p = subprocess.Popen(args, stdout=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_harness, **kw)

    def pids(self):
        return [self.p.pid] + children(self.p.pid)

    def stop(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()


NGINX_BACKEND = """
worker_processes 1; daemon off; pid @DIR@/nginx.pid; error_log @DIR@/error.log crit;
events {{ worker_connections 4096; }}
http {{ access_log off; keepalive_requests 1000000;
  server {{ listen 127.0.0.1:{port}; location / {{ return 200 "hello from the backend\\n"; }} }} }}
"""

NGINX_PROXY = """
worker_processes 1; daemon off; pid @DIR@/nginx.pid; error_log @DIR@/error.log crit;
events {{ worker_connections 4096; }}
http {{ access_log off; keepalive_requests 1000000;
  upstream b {{ server 127.0.0.1:{upstream}; keepalive 64; }}
  server {{ listen 127.0.0.1:{port};
    location / {{ proxy_pass http://b; proxy_http_version 1.1; proxy_set_header Connection ""; }} }} }}
"""

HAPROXY = """
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend f
  bind 127.0.0.1:{port}
  default_backend b
backend b
  http-reuse always
  server s1 127.0.0.1:{upstream}
"""


def start_nginx(conf_text):
    d = tempfile.mkdtemp(prefix="bench-nginx-")
    conf = Path(d) / "nginx.conf"
    conf.write_text(conf_text.replace("@DIR@", d))
    return Proc([shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(conf), "-p", d])


def start_haproxy(port, upstream):
    d = tempfile.mkdtemp(prefix="bench-haproxy-")
    conf = Path(d) / "haproxy.cfg"
    conf.write_text(HAPROXY.format(port=port, upstream=upstream))
    return Proc([shutil.which("haproxy") or "/usr/sbin/haproxy", "-f", str(conf)])


class Portico:
    def __init__(self, extra=(), state=None, port=0):
        self.own_state = state is None
        self.state = state or tempfile.mkdtemp(prefix="bench-portico-")
        self.t0 = time.perf_counter()
        self.p = subprocess.Popen(
            [str(BIN), "serve", "--port", str(port), "--state-dir", self.state, "--log-level", "warn", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_harness,
        )
        line = self.p.stdout.readline().decode()
        m = re.search(r"listening on http://127.0.0.1:(\d+)", line)
        if not m:
            raise RuntimeError(f"portico did not start: {line!r}")
        self.port = int(m.group(1))
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def client(self, svc):
        return boto3.client(svc, endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id="test",
                            aws_secret_access_key="test", config=botocore.config.Config(retries={"max_attempts": 1}))

    def pids(self):
        return [self.p.pid]

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        if self.own_state:
            shutil.rmtree(self.state, ignore_errors=True)


def wrk(port, duration, host=None, path="/bench", connections=32):
    args = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", f"http://127.0.0.1:{port}{path}"]
    if host:
        args[1:1] = ["-H", f"Host: {host}"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=duration + 30, preexec_fn=die_with_harness).stdout
    reqs = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    scale = {"us": 1, "ms": 1000, "s": 1_000_000}
    return {
        "requests": int(reqs.group(1)) if reqs else 0,
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50_us": float(p50.group(1)) * scale[p50.group(2)] if p50 else None,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(1) if errors else "",
    }


def measure(target_pids_fn, port, duration, host=None):
    pids = target_pids_fn()
    before = cpu_ticks(pids)
    r = wrk(port, duration, host)
    after = cpu_ticks(pids)
    cpu_us = (after - before) * 1_000_000 / TICK
    r["cpu_us_per_req"] = cpu_us / r["requests"] if r["requests"] else None
    if r["requests"] and r["non2xx"] > r["requests"] * 0.01:
        r["error"] = f"{r['non2xx']} non-2xx answers"
    return r


def setup_httpapi(portico, backend_port):
    api = portico.client("apigatewayv2")
    a = api.create_api(Name="bench", ProtocolType="HTTP")
    i = api.create_integration(ApiId=a["ApiId"], IntegrationType="HTTP_PROXY", IntegrationMethod="ANY",
                               IntegrationUri=f"http://127.0.0.1:{backend_port}/bench", PayloadFormatVersion="1.0")
    api.create_route(ApiId=a["ApiId"], RouteKey="GET /bench", Target=f"integrations/{i['IntegrationId']}")
    api.create_stage(ApiId=a["ApiId"], StageName="$default", AutoDeploy=True)
    host = f"{a['ApiId']}.execute-api.localhost:{portico.port}"
    return host


def setup_alb(portico, backend_port):
    ec2 = portico.client("ec2")
    elb = portico.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    s1 = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    s2 = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.2.0/24", AvailabilityZone="us-east-1b")["Subnet"]["SubnetId"]
    lb = elb.create_load_balancer(Name="bench", Subnets=[s1, s2], Scheme="internal", Type="application")["LoadBalancers"][0]
    tg = elb.create_target_group(Name="bench", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip",
                                 HealthCheckIntervalSeconds=5)["TargetGroups"][0]
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "127.0.0.1", "Port": backend_port}])
    listener = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                                   DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])["Listeners"][0]
    return {"vpc": vpc, "subnets": [s1, s2], "dns": lb["DNSName"], "listener": listener["ListenerArn"], "tg": tg["TargetGroupArn"]}


def setup_tutorial_path(portico, alb, link):
    api = portico.client("apigatewayv2")
    a = api.create_api(Name="bench-tutorial", ProtocolType="HTTP")
    i = api.create_integration(ApiId=a["ApiId"], IntegrationType="HTTP_PROXY", IntegrationMethod="ANY",
                               ConnectionType="VPC_LINK", ConnectionId=link,
                               IntegrationUri=alb["listener"], PayloadFormatVersion="1.0")
    api.create_route(ApiId=a["ApiId"], RouteKey="ANY /{proxy+}", Target=f"integrations/{i['IntegrationId']}")
    api.create_stage(ApiId=a["ApiId"], StageName="$default", AutoDeploy=True)
    return f"{a['ApiId']}.execute-api.localhost:{portico.port}"


def wait_ok(port, host, timeout=20, path="/bench"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": host} if host else {})
            with urllib.request.urlopen(req, timeout=2) as r:
                if r.status == 200:
                    return
        except Exception as e:  # noqa: BLE001
            last = e
        time.sleep(0.05)
    raise RuntimeError(f"no 200 through {host or port}: {last}")


def startup_once():
    state = tempfile.mkdtemp(prefix="bench-start-")
    port = free_port()
    body = b"Action=GetCallerIdentity&Version=2011-06-15"
    t0 = time.perf_counter()
    p = subprocess.Popen([str(BIN), "serve", "--port", str(port), "--state-dir", state, "--log-level", "warn"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                         preexec_fn=die_with_harness)
    try:
        while True:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/", data=body,
                                             headers={"Content-Type": "application/x-www-form-urlencoded"})
                with urllib.request.urlopen(req, timeout=1) as r:
                    if r.status == 200:
                        elapsed = time.perf_counter() - t0
                        break
            except OSError:
                time.sleep(0.001)
            if time.perf_counter() - t0 > 10:
                raise RuntimeError("portico did not answer within 10 s")
        time.sleep(0.3)
        rss = rss_kb(p.pid)
        return elapsed * 1000, rss / 1024
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=10)
        shutil.rmtree(state, ignore_errors=True)



SAMPLE_IMAGE = "amazon/amazon-ecs-sample"
OPENLOOP = OUT / "openloop"


def openloop(port, host, rate, duration, path="/bench", connections=32):
    """Fixed-rate (open-loop) run with bench/openloop.c: latency counted from when each request was due."""
    if not OPENLOOP.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cc", "-O2", "-o", str(OPENLOOP), str(ROOT / "bench" / "openloop.c")], check=True)
    out = subprocess.run([str(OPENLOOP), host or "localhost", str(port), path, f"{rate:.0f}", str(duration), str(connections)],
                         capture_output=True, text=True, timeout=duration + 30, preexec_fn=die_with_harness)
    if out.returncode != 0:
        raise RuntimeError(f"openloop failed: {out.stderr.strip()}")
    return json.loads(out.stdout)


def setup_ecs_tutorial(portico, alb, link):
    """The tutorial path with a real ECS task: HTTP API -> VPC link -> ALB -> ECS service task
    (the built-in amazon/amazon-ecs-sample image). Returns (invoke host, task host port)."""
    ec2, elb, ecs, api = (portico.client(s) for s in ("ec2", "elbv2", "ecs", "apigatewayv2"))
    sg = ec2.create_security_group(GroupName="bench-tasks", Description="tasks", VpcId=alb["vpc"])["GroupId"]
    ecs.create_cluster(clusterName="bench")
    ecs.register_task_definition(
        family="bench-sample", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        containerDefinitions=[{"name": "web", "image": SAMPLE_IMAGE, "essential": True,
                               "portMappings": [{"containerPort": 80, "protocol": "tcp"}]}])
    lb = elb.create_load_balancer(Name="bench-ecs", Subnets=alb["subnets"], Scheme="internal", Type="application")["LoadBalancers"][0]
    tg = elb.create_target_group(Name="bench-ecs", Protocol="HTTP", Port=80, VpcId=alb["vpc"], TargetType="ip",
                                 HealthCheckIntervalSeconds=5)["TargetGroups"][0]["TargetGroupArn"]
    listener = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                                   DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])["Listeners"][0]["ListenerArn"]
    ecs.create_service(cluster="bench", serviceName="web", taskDefinition="bench-sample", desiredCount=1, launchType="FARGATE",
                       networkConfiguration={"awsvpcConfiguration": {"subnets": alb["subnets"], "securityGroups": [sg]}},
                       loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 80}])
    a = api.create_api(Name="bench-ecs", ProtocolType="HTTP")
    i = api.create_integration(ApiId=a["ApiId"], IntegrationType="HTTP_PROXY", IntegrationMethod="ANY", ConnectionType="VPC_LINK",
                               ConnectionId=link, IntegrationUri=listener, PayloadFormatVersion="1.0")
    api.create_route(ApiId=a["ApiId"], RouteKey="ANY /{proxy+}", Target=f"integrations/{i['IntegrationId']}")
    api.create_stage(ApiId=a["ApiId"], StageName="$default", AutoDeploy=True)
    host = f"{a['ApiId']}.execute-api.localhost:{portico.port}"
    wait_ok(portico.port, host, timeout=60)
    arns = ecs.list_tasks(cluster="bench", serviceName="web")["taskArns"]
    task = ecs.describe_tasks(cluster="bench", tasks=arns)["tasks"][0]
    b = task["containers"][0]["networkBindings"][0]
    return host, b["hostPort"]


def create_vpc_link(portico, subnets):
    api = portico.client("apigatewayv2")
    link = api.create_vpc_link(Name="bench", SubnetIds=subnets)["VpcLinkId"]
    deadline = time.time() + 30
    while api.get_vpc_link(VpcLinkId=link)["VpcLinkStatus"] != "AVAILABLE":
        if time.time() > deadline:
            raise RuntimeError("VPC link never became AVAILABLE")
        time.sleep(0.05)
    return link


def deploy_tutorial(portico):
    """The tutorial's resources (VPC, ALB, ECS service with the sample image, VPC link, HTTP API):
    returns the invoke host."""
    ec2, elb = portico.client("ec2"), portico.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{k + 1}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
               for k, z in enumerate("ab")]
    alb = {"vpc": vpc, "subnets": subnets}
    link = create_vpc_link(portico, subnets)
    host, _ = setup_ecs_tutorial(portico, alb, link)
    del elb
    return host


def restart_once(state, port, host):
    """Exec a Portico over a state dir with the tutorial deployed; ms until the invoke URL answers 200."""
    t0 = time.perf_counter()
    p = subprocess.Popen([str(BIN), "serve", "--port", str(port), "--state-dir", state, "--log-level", "warn"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                         preexec_fn=die_with_harness)
    try:
        while True:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Host": host})
                with urllib.request.urlopen(req, timeout=2) as r:
                    if r.status == 200:
                        return (time.perf_counter() - t0) * 1000
            except OSError:
                time.sleep(0.002)
            if time.perf_counter() - t0 > 60:
                raise RuntimeError("the invoke URL did not answer 200 within 60 s of the restart")
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


# ---------------------------------------------------------------- control plane vs moto

MOTO_VENV = ROOT / "target" / "bench-venv"


class Moto:
    def __init__(self, log=None):
        exe = MOTO_VENV / "bin" / "moto_server"
        if not exe.exists():
            raise RuntimeError(f"{exe} missing (bench/run installs moto[server] into target/bench-venv)")
        self.port = free_port()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = Proc([str(exe), "-p", str(self.port)], env=env, **({"stderr": log} if log else {}))
        wait_port(self.port, timeout=30)
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def client(self, svc):
        return boto3.client(svc, endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id="test",
                            aws_secret_access_key="test", config=botocore.config.Config(retries={"max_attempts": 1}))

    def pids(self):
        return self.proc.pids()

    def stop(self):
        self.proc.stop()


class Endpoint:
    """boto3 clients for an endpoint URL (what a client process needs of a server)."""

    def __init__(self, url):
        self.endpoint = url

    def client(self, svc):
        return boto3.client(svc, endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id="test",
                            aws_secret_access_key="test", config=botocore.config.Config(retries={"max_attempts": 1}))


class ControlMix:
    """The same create/describe/list calls, with the same boto3 clients, against any endpoint."""

    def __init__(self, server, tag):
        self.ec2, self.elb, self.api, self.ecs = (server.client(s) for s in ("ec2", "elbv2", "apigatewayv2", "ecs"))
        self.vpc = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.tag = tag
        self.n = 0

    def iteration(self, lat):
        k = f"{self.tag}{self.n}"
        self.n += 1

        def timed(fn, **kw):
            t = time.perf_counter()
            r = fn(**kw)
            lat.append((time.perf_counter() - t) * 1e6)
            return r

        g = timed(self.ec2.create_security_group, GroupName=f"g{k}", Description="bench", VpcId=self.vpc)["GroupId"]
        timed(self.ec2.describe_security_groups, GroupIds=[g])
        tg = timed(self.elb.create_target_group, Name=f"tg{k}", Protocol="HTTP", Port=80, VpcId=self.vpc,
                   TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
        timed(self.elb.describe_target_groups, TargetGroupArns=[tg])
        a = timed(self.api.create_api, Name=f"api{k}", ProtocolType="HTTP")["ApiId"]
        timed(self.api.get_api, ApiId=a)
        timed(self.api.get_apis)
        timed(self.ecs.create_cluster, clusterName=f"c{k}")
        timed(self.ecs.describe_clusters, clusters=[f"c{k}"])
        timed(self.ecs.list_clusters)
        return 10


def _control_worker(url, tag, duration, barrier, out):
    """One client process: its own boto3 clients, the same mix, for `duration` seconds after
    every process is ready."""
    mix = ControlMix(Endpoint(url), tag)
    mix.iteration([])  # warm up (first-call paths)
    barrier.wait()
    t0 = time.perf_counter()
    lat, ops = [], 0
    while time.perf_counter() - t0 < duration:
        ops += mix.iteration(lat)
    out.put((ops, lat, time.perf_counter() - t0))


def control_parallel(server, clients, duration, tag):
    """`clients` processes run the mix at once: total ops/s, p50, server CPU/op."""
    import multiprocessing as mp
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(clients + 1)
    out = ctx.Queue()
    procs = [ctx.Process(target=_control_worker, args=(server.endpoint, f"{tag}w{i}x", duration, barrier, out))
             for i in range(clients)]
    for p in procs:
        p.start()
    pids = server.pids()
    barrier.wait(timeout=120)
    c0 = cpu_ticks(pids)
    res = [out.get(timeout=duration + 120) for _ in procs]
    cpu = (cpu_ticks(pids) - c0) * 1e6 / TICK
    for p in procs:
        p.join()
    ops = sum(r[0] for r in res)
    wall = max(r[2] for r in res)
    lat = [x for r in res for x in r[1]]
    return ops / wall, statistics.median(lat), cpu / ops


def control_plane(rounds, iters, clients, duration):
    """Operations/s, p50 latency and server CPU per operation: Portico vs moto's server,
    interleaved; one sequential client, then `clients` client processes at once."""
    servers = {}
    try:
        servers["portico"] = Portico()
        servers["moto"] = Moto()
        mixes = {name: ControlMix(s, "r") for name, s in servers.items()}
        for m in mixes.values():  # warm up both (imports, first-call paths)
            m.iteration([])
        resets = {"portico": "/_portico/reset", "moto": "/moto-api/reset"}

        def reset(name):
            """Empty state before each run, so the list calls return the same sizes on both
            servers and in every round (they list everything they hold)."""
            import urllib.request
            urllib.request.urlopen(urllib.request.Request(servers[name].endpoint + resets[name], method="POST"),
                                   timeout=30).read()

        keys = ("ops_s", "p50_us", "cpu_us_per_op", "par_ops_s", "par_p50_us", "par_cpu_us_per_op")
        raw = {name: {k: [] for k in keys} for name in servers}
        for rnd in range(rounds):
            order = list(servers) if rnd % 2 == 0 else list(reversed(servers))
            for name in order:
                reset(name)
                mixes[name] = ControlMix(servers[name], f"r{rnd}")
                lat = []
                pids = servers[name].pids()
                c0 = cpu_ticks(pids)
                t0 = time.perf_counter()
                ops = sum(mixes[name].iteration(lat) for _ in range(iters))
                wall = time.perf_counter() - t0
                cpu = (cpu_ticks(pids) - c0) * 1e6 / TICK
                raw[name]["ops_s"].append(ops / wall)
                raw[name]["p50_us"].append(statistics.median(lat))
                raw[name]["cpu_us_per_op"].append(cpu / ops)
                if clients > 1:
                    reset(name)
                    o, p50, c = control_parallel(servers[name], clients, duration, f"r{rnd}")
                    raw[name]["par_ops_s"].append(o)
                    raw[name]["par_p50_us"].append(p50)
                    raw[name]["par_cpu_us_per_op"].append(c)
        return {f"control-{name}": {**{k: summarize(v) for k, v in m.items()}, "clients": clients}
                for name, m in raw.items()}
    finally:
        for s in servers.values():
            s.stop()


# ---------------------------------------------------------------- scale

class Raw:
    """A keep-alive HTTP/1.1 client for bulk setup (thousands of calls): the same restJson wire
    calls boto3 makes, without its per-call cost. Only for building the scale fixture."""

    AUTH = "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/apigateway/aws4_request, SignedHeaders=host, Signature=0"

    def __init__(self, port):
        import http.client
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(self, path, body):
        self.c.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json", "Authorization": self.AUTH,
                                                                     "X-Amz-Date": "20260101T000000Z"})
        r = self.c.getresponse()
        data = r.read()
        if r.status >= 300:
            raise RuntimeError(f"POST {path}: {r.status} {data[:200]!r}")
        return json.loads(data)


def _build_api(args):
    """One API with `routes` routes (the last `GET /zz/{id}`) and an auto-deploy `$default` stage,
    created after the routes, through the restJson API (CreateApi, CreateIntegration,
    CreateRoute x routes, CreateStage)."""
    port, backend_port, n, routes = args
    raw = Raw(port)
    a = raw.post("/v2/apis", {"name": f"scale{n}", "protocolType": "HTTP"})["apiId"]
    i = raw.post(f"/v2/apis/{a}/integrations", {"integrationType": "HTTP_PROXY", "integrationMethod": "ANY",
                                                 "integrationUri": f"http://127.0.0.1:{backend_port}/bench",
                                                 "payloadFormatVersion": "1.0"})["integrationId"]
    shapes = ["GET /r{j}", "GET /r{j}/{{id}}", "POST /r{j}/items", "ANY /p{j}/{{proxy+}}"]
    for j in range(routes - 1):
        raw.post(f"/v2/apis/{a}/routes", {"routeKey": shapes[j % 4].format(j=j), "target": f"integrations/{i}"})
    raw.post(f"/v2/apis/{a}/routes", {"routeKey": "GET /zz/{id}", "target": f"integrations/{i}"})
    raw.post(f"/v2/apis/{a}/stages", {"stageName": "$default", "autoDeploy": True})
    raw.c.close()
    return a, i


FIXTURE_PROCS = 4


def build_apis(port, backend_port, start, count, routes, pool=None):
    """APIs [start, start+count) with `routes` routes each (plus `GET /zz/{id}`), a $default stage
    each, built by `pool` (client processes) when given."""
    if isinstance(routes, list):  # one API per route count
        return [_build_api((port, backend_port, start + k, r)) for k, r in enumerate(routes)]
    jobs = [(port, backend_port, n, routes) for n in range(start, start + count)]
    if pool is None:
        return [_build_api(j) for j in jobs]
    return pool.map(_build_api, jobs, chunksize=1)


def poll_route(port, host, path, timeout=10):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        c.request("GET", path, headers={"Host": host})
        r = c.getresponse()
        r.read()
        if r.status == 200:
            return time.perf_counter()
    raise RuntimeError(f"{path} never answered 200")


def route_count_scale(portico, backend_port, counts, rounds, duration):
    """Route selection against the number of routes IN the API: one API per count, wrk on its
    last route (`GET /zz/{id}`). Built first, while the store is small."""
    apis = build_apis(portico.port, backend_port, 100000, len(counts), counts)
    out = {}
    for n, (a, _) in zip(counts, apis):
        host = f"{a}.execute-api.localhost:{portico.port}"
        wait_ok(portico.port, host, path="/zz/42")
        out[n] = host
    raw = {n: {"rps": [], "cpu_us_per_req": []} for n in counts}
    for _ in range(rounds):
        for n in counts:
            pids = portico.pids()
            c0 = cpu_ticks(pids)
            w = wrk(portico.port, duration, out[n], path="/zz/42")
            cpu = (cpu_ticks(pids) - c0) * 1e6 / TICK
            raw[n]["rps"].append(w["rps"])
            raw[n]["cpu_us_per_req"].append(cpu / w["requests"] if w["requests"] else None)
    return {f"routes-{n}": {"routes": n, **{k: summarize(v) for k, v in r.items()}} for n, r in raw.items()}


def scale(levels, routes, tgs, rounds, duration, backend_port, budget_s, route_counts=()):
    """Route selection (CPU per request, req/s through an API with `routes` routes) and snapshot
    rebuild time (CreateRoute -> new route answers) at each API count."""
    import multiprocessing as mp
    out = {}
    notes = {}
    portico = Portico()
    pool = mp.get_context("fork").Pool(FIXTURE_PROCS)
    try:
        ec2, elb, api = portico.client("ec2"), portico.client("elbv2"), portico.client("apigatewayv2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        for k in range(tgs):
            elb.create_target_group(Name=f"scale{k}", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip")
        if route_counts:
            out.update(route_count_scale(portico, backend_port, list(route_counts), rounds, duration))
        built = []
        deadline = time.time() + budget_s
        for level in levels:
            t = time.time()
            # chunks of a few APIs per process, so the budget holds
            while len(built) < level and time.time() < deadline:
                built += build_apis(portico.port, backend_port, len(built),
                                    min(FIXTURE_PROCS * 25, level - len(built)), routes, pool)
            setup_s = time.time() - t
            if len(built) < level:
                notes["scale"] = f"stopped at {len(built)} APIs (of {level}): fixture setup over the {budget_s} s budget"
                level = len(built)
            a0, i0 = built[0]
            host = f"{a0}.execute-api.localhost:{portico.port}"
            wait_ok(portico.port, host, path="/zz/42")
            r = {"rps": [], "cpu_us_per_req": [], "rebuild_ms": [], "change_ms": []}
            for rnd in range(rounds):
                pids = portico.pids()
                c0 = cpu_ticks(pids)
                w = wrk(portico.port, duration, host, path="/zz/42")
                cpu = (cpu_ticks(pids) - c0) * 1e6 / TICK
                r["rps"].append(w["rps"])
                r["cpu_us_per_req"].append(cpu / w["requests"] if w["requests"] else None)
                key = f"GET /new{level}x{rnd}"
                t_call = time.perf_counter()
                api.create_route(ApiId=a0, RouteKey=key, Target=f"integrations/{i0}")
                t_ret = time.perf_counter()
                t_ok = poll_route(portico.port, host, f"/new{level}x{rnd}")
                r["rebuild_ms"].append((t_ok - t_ret) * 1000)
                r["change_ms"].append((t_ok - t_call) * 1000)
            out[f"scale-{level}"] = {k: summarize(v) for k, v in r.items()}
            out[f"scale-{level}"]["apis"] = level
            out[f"scale-{level}"]["routes"] = level * routes
            out[f"scale-{level}"]["setup_s"] = round(setup_s, 1)
            out[f"scale-{level}"]["rss_mb"] = round(rss_kb(portico.p.pid) / 1024, 1)
            # RSS counts the pages of the memory-mapped database file read so far; RssAnon
            # is Portico's own heap (snapshot, caches)
            out[f"scale-{level}"]["rss_anon_mb"] = round(rss_kb(portico.p.pid, "RssAnon:") / 1024, 1)
            if "scale" in notes:
                break
    finally:
        pool.terminate()
        portico.stop()
    return out, notes


# ---------------------------------------------------------------- deploy (CloudFormation)

TEMPLATE = ROOT / "templates" / "tutorial-cdk-full.yaml"


def deploy_once(server, name):
    """Wall time of create-stack -> CREATE_COMPLETE and delete-stack -> DELETE_COMPLETE."""
    cfn = server.client("cloudformation")
    body = TEMPLATE.read_text()
    t0 = time.perf_counter()
    sid = cfn.create_stack(StackName=name, TemplateBody=body, Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"])["StackId"]
    status = wait_stack(cfn, sid, "CREATE_COMPLETE", {"CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "ROLLBACK_IN_PROGRESS"})
    create_ms = (time.perf_counter() - t0) * 1000
    if status != "CREATE_COMPLETE":
        ev = cfn.describe_stack_events(StackName=sid)["StackEvents"]
        why = next((f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}" for e in reversed(ev)
                    if e["ResourceStatus"].endswith("FAILED")), status)
        raise RuntimeError(f"{status}: {why}")
    t1 = time.perf_counter()
    cfn.delete_stack(StackName=sid)
    status = wait_stack(cfn, sid, "DELETE_COMPLETE", {"DELETE_FAILED"}, timeout=120)
    if status != "DELETE_COMPLETE":
        return create_ms, None, f"delete: {status}"
    return create_ms, (time.perf_counter() - t1) * 1000, None


def wait_stack(cfn, sid, want, bad, timeout=180):
    t0 = time.time()
    while time.time() - t0 < timeout:
        s = cfn.describe_stacks(StackName=sid)["Stacks"][0]["StackStatus"]
        if s == want or s in bad:
            return s
        time.sleep(0.05)
    return f"still {s} after {timeout} s"


def summarize(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true", help="each case ~1 s, one round: proves the harness runs")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=float, default=4)
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--control-clients", type=int, default=4,
                    help="client processes driving each server at once in the control case")
    ap.add_argument("--only", default="", help="cases or groups: dataplane, startup, restart, control, scale, deploy")
    args = ap.parse_args()
    smoke = args.smoke
    if smoke:
        args.rounds, args.duration = 1, 1
    duration = max(1, int(args.duration))
    fixed_duration = 1 if smoke else 2
    only = set(filter(None, args.only.split(",")))
    dp_cases = ["direct", "nginx", "haproxy", "httpapi", "alb", "nginx2", "tutorial", "ecs-direct", "tutorial-ecs"]

    def want(group, members=()):
        return not only or group in only or any(m in only for m in members)

    results = {}
    notes = {}
    t_suite = time.time()

    def phase(name):
        print(f"[{time.time() - t_suite:6.1f}s] {name}", file=sys.stderr, flush=True)

    # ------------------------------------------------------------ data plane, memory
    procs = []
    backend_port = None
    try:
        backend_port = free_port()
        backend = start_nginx(NGINX_BACKEND.format(port=backend_port))
        procs.append(backend)
        wait_port(backend_port)
        if want("dataplane", dp_cases + ["memory"]):
            phase("data plane: setting up")
            nginx_port = free_port()
            nginx = start_nginx(NGINX_PROXY.format(port=nginx_port, upstream=backend_port))
            procs.append(nginx)
            nginx2_port = free_port()
            nginx2 = start_nginx(NGINX_PROXY.format(port=nginx2_port, upstream=nginx_port))
            procs.append(nginx2)
            haproxy_port = free_port()
            haproxy = start_haproxy(haproxy_port, backend_port)
            procs.append(haproxy)
            for p in (nginx_port, nginx2_port, haproxy_port):
                wait_port(p)

            portico = Portico()
            procs.append(portico)
            time.sleep(0.3)
            rss_idle = rss_kb(portico.p.pid) / 1024
            cases = {
                "direct": (lambda: [], backend_port, None),
                "nginx": (nginx.pids, nginx_port, None),
                "haproxy": (haproxy.pids, haproxy_port, None),
                "nginx2": (lambda: nginx.pids() + nginx2.pids(), nginx2_port, None),
            }
            try:
                host = setup_httpapi(portico, backend_port)
                wait_ok(portico.port, host)
                cases["httpapi"] = (portico.pids, portico.port, host)
            except Exception as e:  # noqa: BLE001 - a case that cannot be set up is reported, not fatal
                notes["httpapi"] = f"not available: {e}"
            alb = link = None
            try:
                alb = setup_alb(portico, backend_port)
                wait_ok(portico.port, alb["dns"])
                cases["alb"] = (portico.pids, portico.port, alb["dns"])
            except Exception as e:  # noqa: BLE001
                notes["alb"] = f"not available: {e}"
            try:
                if alb is None:
                    raise RuntimeError("needs the ALB")
                link = create_vpc_link(portico, alb["subnets"])
                host = setup_tutorial_path(portico, alb, link)
                wait_ok(portico.port, host)
                cases["tutorial"] = (portico.pids, portico.port, host)
            except Exception as e:  # noqa: BLE001
                notes["tutorial"] = f"not available: {e}"
            try:
                if link is None:
                    raise RuntimeError("needs the ALB and the VPC link")
                host, task_port = setup_ecs_tutorial(portico, alb, link)
                cases["ecs-direct"] = (lambda: [], task_port, None)
                cases["tutorial-ecs"] = (portico.pids, portico.port, host)
            except Exception as e:  # noqa: BLE001
                notes["tutorial-ecs"] = f"not available: {e}"
            time.sleep(0.3)
            rss_deployed = rss_kb(portico.p.pid) / 1024
            sel = {k: v for k, v in cases.items() if not only or "dataplane" in only or "memory" in only or k in only}
            cases = {k: cases[k] for k in dp_cases if k in sel}

            raw = {k: [] for k in cases}
            through_portico = 0
            rss_warm = None
            for rnd in range(args.rounds):
                phase(f"data plane: throughput round {rnd + 1}/{args.rounds}")
                for name, (pids, port, host) in cases.items():
                    r = measure(pids, port, duration, host)
                    raw[name].append(r)
                    if pids == portico.pids:
                        through_portico += r["requests"]
                    if r.get("error"):
                        notes[name] = r["error"]
                if rnd == 0:
                    rss_warm = rss_kb(portico.p.pid) / 1024
            for name, rs in raw.items():
                results[name] = {
                    "rps": summarize([r["rps"] for r in rs]),
                    "cpu_us_per_req": summarize([r["cpu_us_per_req"] for r in rs]),
                    "p50_us": summarize([r["p50_us"] for r in rs]),
                }
            # Latency added at a fixed rate: a quarter of nginx's maximum (median req/s above).
            nginx_max = results.get("nginx", {}).get("rps")
            if nginx_max and "direct" in cases:
                rate = nginx_max["median"] / 4
                # The sample app is far slower than nginx: its path runs at a quarter of ITS maximum
                # when that is lower, so the floor itself does not queue.
                ecs_max = results.get("ecs-direct", {}).get("rps")
                ecs_rate = min(rate, ecs_max["median"] / 4) if ecs_max else rate
                rate_of = {"ecs-direct": ecs_rate, "tutorial-ecs": ecs_rate}
                fixed = {k: [] for k in cases}
                for rnd in range(args.rounds):
                    phase(f"data plane: fixed rate {rate:.0f} req/s round {rnd + 1}/{args.rounds}")
                    for name, (pids, port, host) in cases.items():
                        try:
                            r = openloop(port, host, rate_of.get(name, rate), fixed_duration)
                        except Exception as e:  # noqa: BLE001
                            notes[f"{name}-fixed"] = str(e)
                            continue
                        if pids == portico.pids:
                            through_portico += r["ok"]
                        if r["errors"]:
                            notes[f"{name}-fixed"] = f"{r['errors']} errors at {rate_of.get(name, rate):.0f} req/s"
                        fixed[name].append(r)
                base_of = {"ecs-direct": None, "tutorial-ecs": "ecs-direct"}
                for name, rs in fixed.items():
                    if not rs:
                        continue
                    b = base_of.get(name, "direct")
                    res = results[name]
                    res["fixed_rate"] = rate_of.get(name, rate)
                    res["fixed_p50_us"] = summarize([r["p50_us"] for r in rs])
                    res["fixed_p99_us"] = summarize([r["p99_us"] for r in rs])
                    res["fixed_achieved_rps"] = summarize([r["achieved_rps"] for r in rs])
                    if b and fixed.get(b) and name != b:
                        # per round: this case's p50 minus its floor's p50 in the same round
                        res["added_p50_us"] = summarize([r["p50_us"] - d["p50_us"] for r, d in zip(rs, fixed[b])])
            # Memory: top up to the target number of proxied requests, then compare with after round 1.
            target = 20_000 if smoke else 1_000_000
            ours = [k for k in ("tutorial-ecs", "tutorial", "httpapi", "alb") if k in cases]
            busiest = max(ours, key=lambda k: results[k]["rps"]["median"] if results[k]["rps"] else 0, default=None)
            if busiest and through_portico < target:
                rps = results[busiest]["rps"]["median"] or 1000
                secs = int(min(240, max(1, (target - through_portico) / rps + 1)))
                phase(f"memory: {target - through_portico} more requests through {busiest} ({secs} s)")
                _, port, host = cases[busiest]
                while through_portico < target:
                    w = wrk(port, secs, host)
                    through_portico += w["requests"]
                    if not w["requests"]:
                        break
                    secs = int(min(60, max(1, (target - through_portico) / max(w["rps"], 1) + 1)))
            if "httpapi" in cases or "tutorial-ecs" in cases:
                time.sleep(0.5)
                rss_after = rss_kb(portico.p.pid) / 1024
                results["memory"] = {"rss_idle_mb": round(rss_idle, 1), "rss_deployed_mb": round(rss_deployed, 1),
                                     "rss_after_round1_mb": round(rss_warm, 1) if rss_warm else None,
                                     "rss_after_mb": round(rss_after, 1), "proxied_requests": through_portico,
                                     "delta_mb": round(rss_after - (rss_warm or rss_deployed), 1)}
            portico.stop()
            procs.remove(portico)

        # ------------------------------------------------------------ startup
        if want("startup"):
            phase("startup: exec -> first control-plane answer")
            starts = [startup_once() for _ in range(args.rounds)]
            results["startup"] = {"ms": summarize([s[0] for s in starts]), "rss_idle_mb": summarize([s[1] for s in starts])}

        if want("restart"):
            phase("startup: restart with the tutorial deployed -> first routed request")
            state = tempfile.mkdtemp(prefix="bench-restart-")
            port = free_port()
            try:
                p = Portico(state=state, port=port)
                try:
                    host = deploy_tutorial(p)
                finally:
                    p.stop()
                times = [restart_once(state, port, host) for _ in range(args.rounds)]
                results["restart"] = {"ms": summarize(times)}
            except Exception as e:  # noqa: BLE001
                notes["restart"] = f"not available: {e}"
            finally:
                shutil.rmtree(state, ignore_errors=True)

        # ------------------------------------------------------------ control plane
        if want("control"):
            phase("control plane: Portico vs moto_server")
            try:
                results.update(control_plane(args.rounds, 2 if smoke else 40, args.control_clients,
                                             1 if smoke else duration))
            except Exception as e:  # noqa: BLE001
                notes["control"] = f"not available: {e}"

        # ------------------------------------------------------------ scale
        if want("scale"):
            phase("scale: APIs x routes")
            try:
                levels = [1, 10] if smoke else [10, 100, 1000]
                out, n = scale(levels, 10 if smoke else 100, 20 if smoke else 200, args.rounds if not smoke else 1,
                               1 if smoke else 2, backend_port, 30 if smoke else 270,
                               route_counts=[10, 30] if smoke else [10, 100, 300])
                results.update(out)
                notes.update(n)
            except Exception as e:  # noqa: BLE001
                notes["scale"] = f"not available: {e}"

        # ------------------------------------------------------------ deploy
        if want("deploy"):
            phase("deploy: tutorial-cdk-full.yaml create-stack / delete-stack")
            runs = {"deploy-portico": [], "deploy-moto": []}
            servers = {}
            try:
                # AWS's own waits (a target group's 300 s deregistration delay while the ECS service
                # drains) scaled down 100x, as --time-scale is meant for; documented.
                servers["deploy-portico"] = Portico(extra=("--time-scale", "0.01"))
                try:
                    OUT.mkdir(parents=True, exist_ok=True)
                    servers["deploy-moto"] = Moto(log=open(OUT / "moto-deploy.log", "w"))
                    servers["deploy-moto"].client("ssm").put_parameter(Name="/cdk-bootstrap/hnb659fds/version", Value="21",
                                                                       Type="String")
                except Exception as e:  # noqa: BLE001
                    notes["deploy-moto"] = f"not available: {e}"
                for rnd in range(args.rounds):
                    for name, srv in servers.items():
                        if name in notes:
                            continue
                        try:
                            c, d, err = deploy_once(srv, f"bench{rnd}")
                            runs[name].append((c, d))
                            if err:
                                notes[name] = err
                        except Exception as e:  # noqa: BLE001
                            why = str(e).splitlines()[0][:300]
                            log = OUT / "moto-deploy.log"
                            time.sleep(0.5)  # moto logs the traceback after it answers
                            if name == "deploy-moto" and log.exists():
                                errs = [ln for ln in log.read_text().splitlines() if re.match(r"^\w+(Error|Exception):", ln)]
                                if errs:
                                    why = f"server error: {errs[-1][:200]} (see {log})"
                            notes[name] = f"not available: {why}"
                for name, rs in runs.items():
                    if rs:
                        results[name] = {"create_ms": summarize([r[0] for r in rs]), "delete_ms": summarize([r[1] for r in rs])}
            finally:
                for s in servers.values():
                    s.stop()
    finally:
        for p in reversed(procs):
            p.stop()

    report(results, notes, args, duration, time.time() - t_suite)


def report(results, notes, args, duration, elapsed):
    def med(case, metric):
        v = results.get(case, {}).get(metric)
        return v["median"] if isinstance(v, dict) else None

    def fmt(s, digits=0):
        if not isinstance(s, dict):
            return "n/a"
        d = f"{{:.{digits}f}}"
        if s["n"] == 1:
            return d.format(s["median"])
        return f"{d.format(s['median'])} [{d.format(s['min'])}-{d.format(s['max'])}]"

    def ratio(a, b):
        return f"{a / b:.2f}x" if a and b else "n/a"

    rows = []  # (case, metric, value, baseline, ratio)

    def row(case, metric, value, base="", r=""):
        rows.append((case, metric, value, base, r))

    cpu_base = {"haproxy": "nginx", "httpapi": "nginx", "alb": "nginx", "nginx2": "nginx", "tutorial": "nginx",
                "tutorial-ecs": "nginx", "nginx": "nginx"}
    for name in ["direct", "nginx", "haproxy", "httpapi", "alb", "nginx2", "tutorial", "ecs-direct", "tutorial-ecs"]:
        if name not in results:
            if name in notes:
                row(name, "-", notes[name])
            continue
        res = results[name]
        floor = "ecs-direct" if name == "tutorial-ecs" else "direct"
        row(name, "req/s (32 conns)", fmt(res["rps"]), floor if name != floor else "",
            ratio(med(name, "rps"), med(floor, "rps")) if name != floor else "")
        if name in cpu_base:
            row(name, "proxy CPU us/req", fmt(res["cpu_us_per_req"], 1), "nginx", ratio(med(name, "cpu_us_per_req"), med("nginx", "cpu_us_per_req")))
        if name == "tutorial" or name == "tutorial-ecs":
            row(name, "proxy CPU us/req", "", "nginx2", ratio(med(name, "cpu_us_per_req"), med("nginx2", "cpu_us_per_req")))
        if "added_p50_us" in res:
            base = "nginx2" if name.startswith("tutorial") else "nginx"
            row(name, f"p50 added @{res['fixed_rate']:.0f}/s us", fmt(res["added_p50_us"]), base,
                ratio(med(name, "added_p50_us"), med(base, "added_p50_us")) if name != base else "")
            if base == "nginx2":
                row(name, f"p50 added @{res['fixed_rate']:.0f}/s us", "", "nginx", ratio(med(name, "added_p50_us"), med("nginx", "added_p50_us")))
        elif "fixed_p50_us" in res:
            row(name, f"p50 @{res['fixed_rate']:.0f}/s us", fmt(res["fixed_p50_us"]))
    if "memory" in results:
        m = results["memory"]
        row("memory", "RSS idle MB", f"{m['rss_idle_mb']}", "target 30", ratio(m["rss_idle_mb"], 30))
        row("memory", "RSS deployed MB", f"{m['rss_deployed_mb']}")
        row("memory", f"RSS after {m['proxied_requests']} req MB", f"{m['rss_after_mb']} (delta {m['delta_mb']:+})",
            "after round 1", ratio(m["rss_after_mb"], m["rss_after_round1_mb"]))
    if "startup" in results:
        row("startup", "exec -> control plane ms", fmt(results["startup"]["ms"], 1), "target 50",
            ratio(med("startup", "ms"), 50))
        row("startup", "idle RSS MB", fmt(results["startup"]["rss_idle_mb"], 1), "target 30", ratio(med("startup", "rss_idle_mb"), 30))
    if "restart" in results:
        row("restart", "exec -> invoke URL 200 ms", fmt(results["restart"]["ms"], 1), "exec -> control plane",
            ratio(med("restart", "ms"), med("startup", "ms")))
    elif "restart" in notes:
        row("restart", "-", notes["restart"])
    for name in ["control-portico", "control-moto"]:
        if name in results:
            rr = results[name]
            vs = name != "control-moto"
            row(name, "ops/s (boto3, 1 client)", fmt(rr["ops_s"]), "moto" if vs else "",
                ratio(med(name, "ops_s"), med("control-moto", "ops_s")) if vs else "")
            row(name, "p50 us/op", fmt(rr["p50_us"]), "moto" if vs else "",
                ratio(med(name, "p50_us"), med("control-moto", "p50_us")) if vs else "")
            row(name, "server CPU us/op", fmt(rr["cpu_us_per_op"], 1), "moto" if vs else "",
                ratio(med(name, "cpu_us_per_op"), med("control-moto", "cpu_us_per_op")) if vs else "")
            n = rr.get("clients", 1)
            if rr.get("par_ops_s"):
                row(name, f"ops/s (boto3, {n} processes)", fmt(rr["par_ops_s"]), "moto" if vs else "",
                    ratio(med(name, "par_ops_s"), med("control-moto", "par_ops_s")) if vs else "")
                row(name, f"p50 us/op ({n} processes)", fmt(rr["par_p50_us"]), "moto" if vs else "",
                    ratio(med(name, "par_p50_us"), med("control-moto", "par_p50_us")) if vs else "")
                row(name, f"server CPU us/op ({n} processes)", fmt(rr["par_cpu_us_per_op"], 1), "moto" if vs else "",
                    ratio(med(name, "par_cpu_us_per_op"), med("control-moto", "par_cpu_us_per_op")) if vs else "")
                cap = med(name, "par_cpu_us_per_op")
                base_cap = med("control-moto", "par_cpu_us_per_op")
                row(name, "server ops/s per CPU core", f"{1e6 / cap:.0f}" if cap else "n/a", "moto" if vs else "",
                    ratio(base_cap, cap) if vs else "")
    if "control" in notes:
        row("control", "-", notes["control"])
    levels = sorted((v["apis"], k) for k, v in results.items() if k.startswith("scale-"))
    if levels:
        first = levels[0][1]
        first_label = f"{levels[0][0]}x{results[first]['routes'] // levels[0][0]}"
        for apis, k in levels:
            v = results[k]
            label = f"scale-{apis}x{v['routes'] // apis}"
            row(label, "route selection CPU us/req", fmt(v["cpu_us_per_req"], 1), first_label, ratio(med(k, "cpu_us_per_req"), med(first, "cpu_us_per_req")))
            row(label, "req/s", fmt(v["rps"]), first_label, ratio(med(k, "rps"), med(first, "rps")))
            row(label, "rebuild after CreateRoute ms", fmt(v["rebuild_ms"], 1), first_label, ratio(med(k, "rebuild_ms"), med(first, "rebuild_ms")))
            if v.get("change_ms"):
                row(label, "CreateRoute call -> served ms", fmt(v["change_ms"], 1), first_label,
                    ratio(med(k, "change_ms"), med(first, "change_ms")))
            anon = f" (anon {v['rss_anon_mb']})" if "rss_anon_mb" in v else ""
            row(label, "setup s / RSS MB", f"{v['setup_s']} / {v['rss_mb']}{anon}")
    rcs = sorted((v["routes"], k) for k, v in results.items() if k.startswith("routes-"))
    for n, k in rcs:
        first = rcs[0][1]
        row(f"1api-{n}routes", "route selection CPU us/req", fmt(results[k]["cpu_us_per_req"], 1), f"{rcs[0][0]} routes",
            ratio(med(k, "cpu_us_per_req"), med(first, "cpu_us_per_req")))
        row(f"1api-{n}routes", "req/s", fmt(results[k]["rps"]), f"{rcs[0][0]} routes", ratio(med(k, "rps"), med(first, "rps")))
    if "scale" in notes:
        row("scale", "-", notes["scale"])
    for name in ["deploy-portico", "deploy-moto"]:
        if name in results and name in notes:
            row(name, "-", notes[name])
        if name in results:
            vs = name != "deploy-moto"
            row(name, "create-stack -> COMPLETE ms", fmt(results[name]["create_ms"]), "moto" if vs else "",
                ratio(med(name, "create_ms"), med("deploy-moto", "create_ms")) if vs else "")
            row(name, "delete-stack -> COMPLETE ms", fmt(results[name]["delete_ms"]), "moto" if vs else "",
                ratio(med(name, "delete_ms"), med("deploy-moto", "delete_ms")) if vs else "")
        elif name in notes:
            row(name, "-", notes[name])

    print()
    print(f"{'case':<16} {'metric':<32} {'median [min-max]':<30} {'baseline':<22} {'ratio':>7}")
    for case, metric, value, base, r in rows:
        if metric == "-":
            print(f"{case:<16} {value}")
        else:
            print(f"{case:<16} {metric:<32} {value:<30} {base:<22} {r:>7}")
    shown = {r[0] for r in rows}
    for k, v in notes.items():
        if k in results or k not in shown:
            print(f"note {k}: {v}")
    print(f"\n{args.rounds} interleaved round(s), {duration} s per throughput run; suite took {elapsed:.0f} s")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps({"results": results, "notes": notes, "rounds": args.rounds,
                                                  "duration_s": duration, "elapsed_s": round(elapsed, 1)}, indent=2))
    print(f"wrote {OUT / 'results.json'}")
    if not results:
        sys.exit("no case ran")


if __name__ == "__main__":
    main()
