"""Fixtures for the end-to-end suite: start the real portico binary on a free port with a
temporary state directory, and drive it with boto3 and the AWS CLI (pinned in requirements.txt).

PORTICO_BIN selects the binary (default: target/release/portico)."""

import json
import os
import re
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import boto3
import botocore.config
import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("PORTICO_BIN", ROOT / "target" / "release" / "portico"))
REGION = "us-east-1"


class Portico:
    """A running portico process."""

    def __init__(self, state_dir=None, extra_args=(), env=None):
        self.state_dir = state_dir or tempfile.mkdtemp(prefix="portico-e2e-")
        self.extra_args = list(extra_args)
        self.env = env or {}
        self.proc = None
        self.endpoint = None
        self.port = None

    def start(self, port=0):
        args = [str(BIN), "serve", "--port", str(port), "--state-dir", self.state_dir, *self.extra_args]
        env = dict(os.environ, **self.env)
        env.setdefault("PORTICO_LOG_LEVEL", "info")
        self.log = open(Path(self.state_dir) / "portico.log", "ab")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, env=env, start_new_session=True)
        line = self.proc.stdout.readline().decode()
        m = re.search(r"listening on (http://\S+)", line)
        if not m:
            raise RuntimeError(f"portico did not start: {line!r}; log: {self.log_text()[-2000:]}")
        self.endpoint = m.group(1)
        self.port = int(self.endpoint.rsplit(":", 1)[1])
        return self

    def log_text(self):
        try:
            return (Path(self.state_dir) / "portico.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None

    def kill9(self):
        self.stop(sig=signal.SIGKILL)

    def client(self, service, region=REGION, access_key="test", secret_key="test", **kw):
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=botocore.config.Config(retries={"max_attempts": 1}, **kw),
        )

    def aws(self, *args, check=True, region=REGION, env=None):
        """Runs the AWS CLI against this portico; returns parsed JSON output (or text)."""
        venv_aws = Path(os.environ.get("PORTICO_AWS_CLI", Path(os.sys.executable).parent / "aws"))
        cmd = [str(venv_aws), "--endpoint-url", self.endpoint, "--region", region, "--output", "json", *args]
        e = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_PAGER="", **(env or {}))
        r = subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=120)
        if check and r.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed ({r.returncode}): {r.stderr}")
        if not check:
            return r
        out = r.stdout.strip()
        return json.loads(out) if out.startswith(("{", "[")) else out

    def http(self, method, path, host=None, **kw):
        headers = kw.pop("headers", {})
        if host:
            headers["Host"] = host
        return requests.request(method, self.endpoint + path, headers=headers, timeout=kw.pop("timeout", 30), **kw)


@pytest.fixture(scope="session")
def portico():
    """One portico for the whole session; tests use unique names."""
    p = Portico().start()
    yield p
    p.stop()


@pytest.fixture
def fresh_portico():
    """A portico of the test's own (restarts, kill -9, state checks)."""
    p = Portico()
    yield p
    p.stop()


@pytest.fixture
def unique():
    return uuid.uuid4().hex[:8]


def wait_until(fn, timeout=30.0, interval=0.1, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - keep polling, report the last error
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")
