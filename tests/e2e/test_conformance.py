"""Conformance driven by the AWS service models (botocore's JSON models, read at test time).

Every operation of every emulated service is called through boto3 with inputs generated from
its input shape (required members only, minimal valid values). Then:
- no call may fail with a 5xx (no panic or internal error reaches a client);
- an operation Portico does not implement must answer the protocol's unknown-operation error
  (InvalidAction / UnknownOperationException), never a fake success;
- a successful response is validated against the model's output shape: every member in the raw
  body is a modeled member of the right type (JSON protocols), every element names a modeled
  member (XML protocols), and required output members are present.
The implemented operations are written to docs/coverage.md; the test fails when that file is
stale (regenerate with PORTICO_UPDATE_COVERAGE=1)."""

import datetime
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import botocore.session
import pytest
from botocore.exceptions import ClientError, ParamValidationError

from conftest import Portico, ROOT

SERVICES = ["apigatewayv2", "ec2", "elbv2", "ecs", "iam", "sts", "ssm", "logs", "cloudformation"]
UNKNOWN = {"InvalidAction", "UnknownOperationException"}


def gen(shape, depth=0):
    """A minimal valid value for a shape."""
    t = shape.type_name
    if t == "structure":
        if shape.metadata.get("union"):
            name, member = next(iter(shape.members.items()))
            return {name: gen(member, depth + 1)}
        return {name: gen(shape.members[name], depth + 1) for name in shape.required_members if depth < 8}
    if t == "list":
        n = shape.metadata.get("min", 0)
        return [gen(shape.member, depth + 1) for _ in range(max(n, 1 if depth < 8 else 0))][: max(n, 1)]
    if t == "map":
        return {}
    if t == "string":
        if shape.enum:
            return shape.enum[0]
        n = max(shape.metadata.get("min", 1), 1)
        return ("x" * n)[: max(n, 1)]
    if t in ("integer", "long"):
        return int(shape.metadata.get("min", 1))
    if t in ("float", "double"):
        return float(shape.metadata.get("min", 1))
    if t == "boolean":
        return False
    if t == "timestamp":
        return datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    if t == "blob":
        return b"x"
    return None


def check_json(value, shape, path, problems):
    t = shape.type_name
    if t == "structure":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected object, got {type(value).__name__}")
            return
        wire = {m.serialization.get("name", n): (n, m) for n, m in shape.members.items()}
        for k, v in value.items():
            if k not in wire:
                problems.append(f"{path}.{k}: not a member of {shape.name}")
                continue
            if v is None:
                continue
            check_json(v, wire[k][1], f"{path}.{k}", problems)
    elif t == "list":
        if not isinstance(value, list):
            problems.append(f"{path}: expected list")
            return
        for i, v in enumerate(value):
            check_json(v, shape.member, f"{path}[{i}]", problems)
    elif t == "map":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected map")
            return
        for k, v in value.items():
            check_json(v, shape.value, f"{path}[{k}]", problems)
    elif t == "string":
        if not isinstance(value, str):
            problems.append(f"{path}: expected string, got {value!r}")
    elif t in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{path}: expected integer, got {value!r}")
    elif t in ("float", "double"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            problems.append(f"{path}: expected number, got {value!r}")
    elif t == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{path}: expected boolean, got {value!r}")
    elif t == "timestamp":
        fmt = shape.serialization.get("timestampFormat")
        if isinstance(value, str) and fmt == "unixTimestamp":
            problems.append(f"{path}: expected epoch number")
        if not isinstance(value, (str, int, float)):
            problems.append(f"{path}: bad timestamp {value!r}")


def strip(tag):
    return tag.split("}", 1)[-1]


def check_xml(elem, shape, path, problems, item_names):
    t = shape.type_name
    if t == "structure":
        wire = {}
        for n, m in shape.members.items():
            wire[m.serialization.get("name", n)] = m
            wire[n] = m
            if m.type_name == "list" and m.serialization.get("flattened"):
                wire[m.member.serialization.get("name", n)] = m
        for child in elem:
            name = strip(child.tag)
            if name not in wire:
                problems.append(f"{path}.{name}: not a member of {shape.name}")
                continue
            m = wire[name]
            if m.type_name == "list" and m.serialization.get("flattened"):
                check_xml(child, m.member, f"{path}.{name}", problems, item_names)
            else:
                check_xml(child, m, f"{path}.{name}", problems, item_names)
    elif t == "list":
        member_name = shape.member.serialization.get("name", None)
        for child in elem:
            name = strip(child.tag)
            if name not in item_names and name != member_name:
                problems.append(f"{path}.{name}: list items must be <{member_name or '/'.join(item_names)}>")
                continue
            check_xml(child, shape.member, f"{path}[]", problems, item_names)
    elif t == "map":
        pass
    elif t in ("integer", "long"):
        try:
            int((elem.text or "").strip())
        except ValueError:
            problems.append(f"{path}: expected integer, got {elem.text!r}")
    elif t == "boolean":
        if (elem.text or "").strip() not in ("true", "false"):
            problems.append(f"{path}: expected boolean, got {elem.text!r}")


@pytest.fixture(scope="module")
def sweep():
    p = Portico(extra_args=["--ephemeral"]).start()
    session = botocore.session.get_session()
    results = {}
    try:
        for svc in SERVICES:
            model = session.get_service_model(svc)
            client = p.client(svc, inject_host_prefix=False)
            raw = {}

            def capture(http_response, **kw):
                raw["body"] = http_response.content
                raw["status"] = http_response.status_code

            client.meta.events.register("after-call", capture)
            client.meta.events.register("after-call-error", lambda **kw: None)
            for op in model.operation_names:
                om = model.operation_model(op)
                method = getattr(client, _xform(client, op))
                params = gen(om.input_shape) if om.input_shape else {}
                raw.clear()
                entry = {"op": op, "implemented": True, "problems": []}
                try:
                    out = method(**params)
                    entry["status"] = 200
                    if om.output_shape is not None and not om.has_event_stream_output:
                        body = raw.get("body", b"")
                        if model.protocol in ("json", "rest-json"):
                            if body.strip():
                                check_json(json.loads(body), om.output_shape, op, entry["problems"])
                        else:
                            root = ET.fromstring(body)
                            result = root
                            for child in root:
                                if strip(child.tag) == f"{op}Result":
                                    result = child
                            items = ("item",) if model.protocol == "ec2" else ("member",)
                            # EC2 sends <return>true</return> on many operations whose model
                            # omits it (CreateSecurityGroup is documented with it): allowed.
                            skip = {"requestId", "ResponseMetadata", f"{op}Result", "return"}
                            filtered = ET.Element("x")
                            for child in result:
                                if strip(child.tag) not in skip:
                                    filtered.append(child)
                            check_xml(filtered, om.output_shape, op, entry["problems"], items)
                        for req in om.output_shape.required_members:
                            if req not in out:
                                entry["problems"].append(f"{op}: required output member {req} missing")
                except ParamValidationError as e:
                    entry["status"] = "client-validation"
                    entry["problems"].append(f"generated input rejected by botocore: {e}")
                except ClientError as e:
                    code = e.response["Error"]["Code"]
                    status = e.response["ResponseMetadata"]["HTTPStatusCode"]
                    entry["status"] = status
                    entry["code"] = code
                    if code in UNKNOWN:
                        entry["implemented"] = False
                    if status >= 500:
                        entry["problems"].append(f"{op}: {status} {code}: {e.response['Error'].get('Message')}")
                results.setdefault(svc, []).append(entry)
    finally:
        p.stop()
    return results


def _xform(client, op):
    for py, api in client.meta.method_to_api_mapping.items():
        if api == op:
            return py
    raise KeyError(op)


def render_coverage(results):
    lines = [
        "# Coverage",
        "",
        "Operations of each AWS service model (botocore) that Portico implements. Generated by",
        "`tests/e2e/test_conformance.py` (`PORTICO_UPDATE_COVERAGE=1 scripts/test.sh -k conformance`);",
        "a test keeps it fresh. Every operation not listed answers the protocol's unknown-operation",
        "error (`InvalidAction` / `UnknownOperationException`).",
        "",
        "| service | implemented | in model |",
        "|---|---|---|",
    ]
    for svc in SERVICES:
        entries = results.get(svc, [])
        impl = [e["op"] for e in entries if e["implemented"]]
        lines.append(f"| {svc} | {len(impl)} | {len(entries)} |")
    for svc in SERVICES:
        impl = sorted(e["op"] for e in results.get(svc, []) if e["implemented"])
        lines += ["", f"## {svc}", ""]
        lines += [f"- {op}" for op in impl] or ["(none)"]
    return "\n".join(lines) + "\n"


def test_no_server_errors_and_outputs_match_models(sweep):
    problems = [p for entries in sweep.values() for e in entries for p in e["problems"]]
    assert not problems, "\n".join(problems[:60])


def test_unimplemented_operations_say_so(sweep):
    # Each service's unknown operations answer with the protocol's error and a 4xx status.
    for svc, entries in sweep.items():
        for e in entries:
            if not e["implemented"]:
                assert e["status"] in (400, 404), (svc, e)


def test_coverage_doc_is_fresh(sweep):
    text = render_coverage(sweep)
    path = ROOT / "docs" / "coverage.md"
    if os.environ.get("PORTICO_UPDATE_COVERAGE") == "1":
        path.write_text(text)
    assert path.exists() and path.read_text() == text, "docs/coverage.md is stale: rerun with PORTICO_UPDATE_COVERAGE=1"
