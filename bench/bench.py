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


def rss_kb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Proc:
    def __init__(self, args, **kw):
        self.p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, **kw)

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
    def __init__(self, extra=()):
        self.state = tempfile.mkdtemp(prefix="bench-portico-")
        self.p = subprocess.Popen(
            [str(BIN), "serve", "--port", "0", "--state-dir", self.state, "--log-level", "warn", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True,
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
        shutil.rmtree(self.state, ignore_errors=True)


def wrk(port, duration, host=None, path="/bench", connections=32):
    args = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", f"http://127.0.0.1:{port}{path}"]
    if host:
        args[1:1] = ["-H", f"Host: {host}"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=duration + 30).stdout
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


def setup_tutorial_path(portico, alb):
    api = portico.client("apigatewayv2")
    link = api.create_vpc_link(Name="bench", SubnetIds=alb["subnets"])["VpcLinkId"]
    deadline = time.time() + 30
    while api.get_vpc_link(VpcLinkId=link)["VpcLinkStatus"] != "AVAILABLE":
        if time.time() > deadline:
            raise RuntimeError("VPC link never became AVAILABLE")
        time.sleep(0.1)
    a = api.create_api(Name="bench-tutorial", ProtocolType="HTTP")
    i = api.create_integration(ApiId=a["ApiId"], IntegrationType="HTTP_PROXY", IntegrationMethod="ANY",
                               ConnectionType="VPC_LINK", ConnectionId=link,
                               IntegrationUri=alb["listener"], PayloadFormatVersion="1.0")
    api.create_route(ApiId=a["ApiId"], RouteKey="ANY /{proxy+}", Target=f"integrations/{i['IntegrationId']}")
    api.create_stage(ApiId=a["ApiId"], StageName="$default", AutoDeploy=True)
    return f"{a['ApiId']}.execute-api.localhost:{portico.port}"


def wait_ok(port, host, timeout=20):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/bench", headers={"Host": host} if host else {})
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
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
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


def summarize(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true", help="each case ~1 s, one round: proves the harness runs")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    if args.smoke:
        args.rounds, args.duration = 1, 1
    duration = max(1, int(args.duration))
    only = set(filter(None, args.only.split(",")))

    procs = []
    results = {}
    notes = {}
    try:
        backend_port = free_port()
        backend = start_nginx(NGINX_BACKEND.format(port=backend_port))
        procs.append(backend)
        wait_port(backend_port)
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
        alb = None
        try:
            alb = setup_alb(portico, backend_port)
            wait_ok(portico.port, alb["dns"])
            cases["alb"] = (portico.pids, portico.port, alb["dns"])
        except Exception as e:  # noqa: BLE001
            notes["alb"] = f"not available: {e}"
        try:
            if alb is None:
                raise RuntimeError("needs the ALB")
            host = setup_tutorial_path(portico, alb)
            wait_ok(portico.port, host)
            cases["tutorial"] = (portico.pids, portico.port, host)
        except Exception as e:  # noqa: BLE001
            notes["tutorial"] = f"not available: {e}"
        if only:
            cases = {k: v for k, v in cases.items() if k in only}

        raw = {k: [] for k in cases}
        for rnd in range(args.rounds):
            for name, (pids, port, host) in cases.items():
                r = measure(pids, port, duration, host)
                raw[name].append(r)
                if r.get("error"):
                    notes[name] = r["error"]
            print(f"round {rnd + 1}/{args.rounds} done", file=sys.stderr)
        for name, rs in raw.items():
            results[name] = {
                "rps": summarize([r["rps"] for r in rs]),
                "cpu_us_per_req": summarize([r["cpu_us_per_req"] for r in rs]),
                "p50_us": summarize([r["p50_us"] for r in rs]),
            }

        if not only or "startup" in only:
            starts = [startup_once() for _ in range(args.rounds)]
            results["startup"] = {"ms": summarize([s[0] for s in starts]), "rss_idle_mb": summarize([s[1] for s in starts])}
    finally:
        for p in reversed(procs):
            p.stop()

    def med(case, metric):
        v = results.get(case, {}).get(metric)
        return v["median"] if v else None

    def ratio(a, b):
        return f"{a / b:.2f}x" if a and b else "n/a"

    baseline_of = {"nginx": "nginx", "haproxy": "nginx", "httpapi": "nginx", "alb": "nginx", "nginx2": "nginx", "tutorial": "nginx",
                   "direct": "nginx"}
    print()
    print(f"{'case':<10} {'req/s (median [min-max])':<30} {'CPU us/req':>11} {'vs nginx':>9} {'p50 us':>9}")
    for name in ["direct", "nginx", "haproxy", "httpapi", "alb", "nginx2", "tutorial"]:
        if name not in results:
            if name in notes:
                print(f"{name:<10} {notes[name]}")
            continue
        rps = results[name]["rps"]
        cpu = med(name, "cpu_us_per_req")
        base = med(baseline_of[name], "cpu_us_per_req")
        p50 = med(name, "p50_us")
        rps_txt = f"{rps['median']:.0f} [{rps['min']:.0f}-{rps['max']:.0f}]" if rps else "n/a"
        cpu_txt = f"{cpu:.1f}" if cpu is not None and name != "direct" else "-"
        r = ratio(cpu, base) if name != "direct" else "-"
        print(f"{name:<10} {rps_txt:<30} {cpu_txt:>11} {r:>9} {p50 if p50 is None else round(p50):>9}")
    if "tutorial" in results:
        print(f"tutorial path CPU vs one nginx hop: {ratio(med('tutorial', 'cpu_us_per_req'), med('nginx', 'cpu_us_per_req'))}"
              f"; vs nginx->nginx: {ratio(med('tutorial', 'cpu_us_per_req'), med('nginx2', 'cpu_us_per_req'))}")
    if "startup" in results:
        s = results["startup"]
        print(f"startup to first control-plane answer: {s['ms']['median']:.1f} ms [{s['ms']['min']:.1f}-{s['ms']['max']:.1f}]; "
              f"idle RSS {s['rss_idle_mb']['median']:.1f} MB")
    for k, v in notes.items():
        if k in results:
            print(f"note {k}: {v}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps({"results": results, "notes": notes, "rounds": args.rounds,
                                                  "duration_s": duration}, indent=2))
    print(f"\nwrote {OUT / 'results.json'}")
    if not any(k in results for k in ("nginx", "startup")):
        sys.exit("no case ran")


if __name__ == "__main__":
    main()
