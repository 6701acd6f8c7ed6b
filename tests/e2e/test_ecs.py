"""ECS end to end: a Fargate service of amazon/amazon-ecs-sample really runs as local processes
in private subnets, serves the sample page, is replaced when a process dies, scales, and leaves
no process behind; bad input gets AWS's exact errors and changes nothing."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import botocore.exceptions
import pytest

from conftest import Portico, wait_until

SAMPLE = "amazon/amazon-ecs-sample"
EXEC_ROLE = "arn:aws:iam::000000000000:role/ecsTaskExecutionRole"
FAST = {"Delay": 0.2, "MaxAttempts": 300}

WHOAMI = """
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        b = os.environ['PORTICO_TASK_ID'].encode()
        sick = os.path.exists(os.path.join(os.environ.get('FLAG_DIR', '/nonexistent'), 'sick-' + b.decode()))
        self.send_response(500 if sick else 200)
        self.send_header('Content-Length', str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()
"""


def err(fn, *a, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fn(*a, **kw)
    return e.value.response["Error"]


def network(p, unique):
    """A VPC with two private subnets and a security group."""
    ec2 = p.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i + 1}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
        for i, z in enumerate("ab")
    ]
    sg = ec2.create_security_group(GroupName=f"svc-{unique}", Description="tasks", VpcId=vpc)["GroupId"]
    return vpc, subnets, sg


def sample_taskdef(ecs, family, image=SAMPLE, logs=False):
    c = {"name": "web", "image": image, "essential": True,
         "portMappings": [{"containerPort": 80, "protocol": "tcp"}]}
    if logs:
        c["logConfiguration"] = {"logDriver": "awslogs", "options": {
            "awslogs-group": f"/ecs/{family}", "awslogs-region": "us-east-1",
            "awslogs-stream-prefix": "ecs", "awslogs-create-group": "true"}}
    return ecs.register_task_definition(
        family=family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
        cpu="256", memory="512", executionRoleArn=EXEC_ROLE, containerDefinitions=[c],
    )["taskDefinition"]


def running_tasks(ecs, cluster, service):
    arns = ecs.list_tasks(cluster=cluster, serviceName=service)["taskArns"]
    if not arns:
        return []
    return [t for t in ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if t["lastStatus"] == "RUNNING"]


def local_url(task):
    b = task["containers"][0]["networkBindings"][0]
    return f"http://{b['bindIP']}:{b['hostPort']}/"


def pid_of(task):
    return int(task["containers"][0]["runtimeId"])


def alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        return state != "Z"
    except OSError:
        return False


def processes_of(task_ids):
    """Pids of live processes whose environment names one of these tasks."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            env = (d / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for e in env:
            if e.startswith(b"PORTICO_TASK_ID=") and e.split(b"=", 1)[1].decode() in task_ids and alive(int(d.name)):
                found.append(int(d.name))
    return found


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_service_runs_replaces_scales_and_cleans_up(portico, unique):
    import requests

    ecs = portico.client("ecs")
    ec2 = portico.client("ec2")
    vpc, subnets, sg = network(portico, unique)
    cluster = f"tut-{unique}"
    ecs.create_cluster(clusterName=cluster)
    td = sample_taskdef(ecs, f"sample-{unique}", logs=True)
    assert td["compatibilities"] == ["EC2", "FARGATE"]
    assert td["containerDefinitions"][0]["portMappings"][0] == {"containerPort": 80, "hostPort": 80, "protocol": "tcp"}

    t0 = time.time()
    svc = ecs.create_service(
        cluster=cluster, serviceName="web", taskDefinition=td["family"], desiredCount=2, launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg], "assignPublicIp": "DISABLED"}},
    )["service"]
    assert svc["status"] == "ACTIVE" and svc["desiredCount"] == 2 and svc["runningCount"] == 0
    assert svc["deployments"][0]["status"] == "PRIMARY" and svc["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    assert isinstance(svc["createdAt"].timestamp(), float)
    wait_until(lambda: running_tasks(ecs, cluster, "web"), timeout=30, interval=0.02, what="first task RUNNING")
    first_running = time.time() - t0
    ecs.get_waiter("services_stable").wait(cluster=cluster, services=["web"], WaiterConfig=FAST)
    # The CLI waiter agrees (and returns at once: the service is stable).
    portico.aws("ecs", "wait", "services-stable", "--cluster", cluster, "--services", "web")

    tasks = running_tasks(ecs, cluster, "web")
    assert len(tasks) == 2
    ips = set()
    for t in tasks:
        assert t["group"] == "service:web" and t["startedBy"].startswith("ecs-svc/")
        assert t["launchType"] == "FARGATE" and t["platformVersion"] == "1.4.0" and t["connectivity"] == "CONNECTED"
        att = t["attachments"][0]
        assert att["type"] == "ElasticNetworkInterface" and att["status"] == "ATTACHED"
        details = {d["name"]: d["value"] for d in att["details"]}
        ip = details["privateIPv4Address"]
        assert ip.startswith(("10.0.1.", "10.0.2.")) and details["subnetId"] in subnets
        ips.add(ip)
        eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[details["networkInterfaceId"]])["NetworkInterfaces"][0]
        assert eni["PrivateIpAddress"] == ip
        assert t["containers"][0]["networkInterfaces"][0]["privateIpv4Address"] == ip
        page = requests.get(local_url(t), timeout=5)
        assert page.status_code == 200
        assert "<title>Amazon ECS Sample App</title>" in page.text and "Congratulations" in page.text
    assert len(ips) == 2
    # Spread over both subnets (round robin).
    assert {ip.split(".")[2] for ip in ips} == {"1", "2"}
    # Each task's stdout (the sample's access log) is in CloudWatch Logs, one stream per task.
    group = f"/ecs/{td['family']}"
    want = {f"ecs/web/{t['taskArn'].rsplit('/', 1)[1]}" for t in tasks}

    def shipped(events):
        return {e["logStreamName"] for e in events if '"GET / HTTP/1.1" 200' in e["message"]} == want

    logs = portico.client("logs")
    wait_until(lambda: shipped(logs.filter_log_events(logGroupName=group)["events"]), timeout=20,
               what="access lines in CloudWatch Logs")
    assert shipped(portico.aws("logs", "filter-log-events", "--log-group-name", group)["events"])
    cli2 = os.environ.get("PORTICO_AWS_CLI2")
    if cli2 and Path(cli2).exists():
        env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_PAGER="")
        tail = subprocess.run([cli2, "--endpoint-url", portico.endpoint, "--region", "us-east-1", "logs", "tail",
                               group, "--since", "10m"], capture_output=True, text=True, env=env, timeout=60)
        assert '"GET / HTTP/1.1" 200' in tail.stdout, tail.stderr
    rss = [rss_kib(pid_of(t)) for t in tasks]
    print(f"\nECS: CreateService -> first task RUNNING {first_running:.3f}s; sample task RSS {rss} KiB")

    # Kill one task's process: the task stops (exit 137) and the scheduler replaces it.
    victim = tasks[0]
    os.kill(pid_of(victim), signal.SIGKILL)
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[victim["taskArn"]], WaiterConfig=FAST)
    dead = ecs.describe_tasks(cluster=cluster, tasks=[victim["taskArn"]])["tasks"][0]
    assert dead["stopCode"] == "EssentialContainerExited"
    assert dead["stoppedReason"] == "Essential container in task exited"
    assert dead["containers"][0]["exitCode"] == 137
    assert dead["attachments"][0]["status"] == "DELETED"

    def replaced():
        ts = running_tasks(ecs, cluster, "web")
        return len(ts) == 2 and victim["taskArn"] not in [t["taskArn"] for t in ts] and ts

    now = wait_until(replaced, timeout=30, what="replacement task")
    new = [t for t in now if t["taskArn"] not in [x["taskArn"] for x in tasks]][0]
    new_id = new["taskArn"].rsplit("/", 1)[1]
    events = [e["message"] for e in ecs.describe_services(cluster=cluster, services=["web"])["services"][0]["events"]]
    assert f"(service web) has started 1 tasks: (task {new_id})." in events
    assert "(service web) has reached a steady state." in events
    # The dead task's ENI is gone.
    eni_id = {d["name"]: d["value"] for d in dead["attachments"][0]["details"]}["networkInterfaceId"]
    e = err(ec2.describe_network_interfaces, NetworkInterfaceIds=[eni_id])
    assert e["Code"] == "InvalidNetworkInterfaceID.NotFound"
    assert ecs.list_tasks(cluster=cluster, desiredStatus="STOPPED")["taskArns"].count(victim["taskArn"]) == 1

    # Scale to 3, then to 0 (through the CLI).
    portico.aws("ecs", "update-service", "--cluster", cluster, "--service", "web", "--desired-count", "3")
    ecs.get_waiter("services_stable").wait(cluster=cluster, services=["web"], WaiterConfig=FAST)
    three = running_tasks(ecs, cluster, "web")
    assert len(three) == 3
    all_ids = {t["taskArn"].rsplit("/", 1)[1] for t in three + tasks}
    portico.aws("ecs", "update-service", "--cluster", cluster, "--service", "web", "--desired-count", "0")
    ecs.get_waiter("services_stable").wait(cluster=cluster, services=["web"], WaiterConfig=FAST)
    s = ecs.describe_services(cluster=cluster, services=["web"])["services"][0]
    assert s["runningCount"] == 0 and s["desiredCount"] == 0
    wait_until(lambda: not any(alive(pid_of(t)) for t in three), timeout=10, what="scaled-in processes gone")
    # exit codes are recorded once each task reaches STOPPED, a moment after its process exits
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[t["taskArn"] for t in three], WaiterConfig=FAST)
    stopped = ecs.describe_tasks(cluster=cluster, tasks=[t["taskArn"] for t in three])["tasks"]
    assert {t["stopCode"] for t in stopped} == {"ServiceSchedulerInitiated"}
    assert all(t["stoppedReason"].startswith("Scaling activity initiated by (deployment ecs-svc/") for t in stopped)
    assert {t["containers"][0]["exitCode"] for t in stopped} == {143}

    # Delete the service and the cluster: nothing of them runs any more.
    ecs.delete_service(cluster=cluster, service="web")
    ecs.get_waiter("services_inactive").wait(cluster=cluster, services=["web"], WaiterConfig=FAST)
    c = ecs.delete_cluster(cluster=cluster)["cluster"]
    assert c["status"] == "INACTIVE"
    assert processes_of(all_ids) == []
    assert cluster not in " ".join(ecs.list_clusters()["clusterArns"])


def test_run_task_lifecycle_catalog_and_unknown_image(portico, unique):
    ecs = portico.client("ecs")
    _, subnets, sg = network(portico, unique)
    cluster = f"run-{unique}"
    ecs.create_cluster(clusterName=cluster)
    net = {"awsvpcConfiguration": {"subnets": subnets[:1], "securityGroups": [sg]}}
    # An image from the catalog: prints its environment, exits 3.
    catalog = Path(portico.state_dir) / "images.json"
    images = json.loads(catalog.read_text()) if catalog.exists() else {"images": {}}
    images["images"][f"example/exit-{unique}"] = {
        "entryPoint": ["sh", "-c"], "command": ["echo greeting=$GREETING port=$PORT; echo to-stderr >&2; exit 3"]}
    images["images"][f"example/broken-{unique}"] = {"entryPoint": ["/nonexistent/portico-no-such-binary"]}
    catalog.write_text(json.dumps(images))
    family = f"exit-{unique}"
    ecs.register_task_definition(
        family=family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="0.25 vCPU", memory="0.5GB",
        executionRoleArn=EXEC_ROLE,
        containerDefinitions=[{"name": "app", "image": f"example/exit-{unique}",
                               "environment": [{"name": "GREETING", "value": "hi"}],
                               "portMappings": [{"containerPort": 8080}],
                               "logConfiguration": {"logDriver": "awslogs", "options": {
                                   "awslogs-group": f"/run/{unique}", "awslogs-region": "us-east-1",
                                   "awslogs-stream-prefix": "run", "awslogs-create-group": "true"}}}])
    run = ecs.run_task(cluster=cluster, taskDefinition=family, launchType="FARGATE", networkConfiguration=net,
                       overrides={"containerOverrides": [{"name": "app", "environment": [{"name": "GREETING", "value": "override"}]}]})
    assert run["failures"] == [] and run["tasks"][0]["lastStatus"] == "PROVISIONING"
    assert run["tasks"][0]["group"] == f"family:{family}" and run["tasks"][0]["cpu"] == "256"
    arn = run["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    t = ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]
    assert t["stopCode"] == "EssentialContainerExited" and t["containers"][0]["exitCode"] == 3
    for k in ("startedAt", "stoppingAt", "stoppedAt", "executionStoppedAt", "pullStartedAt", "pullStoppedAt"):
        assert k in t, k
    assert t["version"] > 1
    # Both output streams reached the task's log stream; the override won over the definition.
    stream = f"run/app/{arn.rsplit('/', 1)[1]}"

    def lines():
        ev = portico.client("logs").get_log_events(logGroupName=f"/run/{unique}", logStreamName=stream)["events"]
        return [e["message"] for e in ev]

    got = wait_until(lambda: len(lines()) == 2 and lines(), timeout=10, what="task output in CloudWatch Logs")
    # stdout and stderr are two pipes: which line the log driver reads first is not ordered (nor on AWS)
    assert "to-stderr" in got, got
    assert [l for l in got if l != "to-stderr"][0].startswith("greeting=override port="), got

    # A command that cannot start.
    ecs.register_task_definition(
        family=f"broken-{unique}", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        containerDefinitions=[{"name": "app", "image": f"example/broken-{unique}"}])
    arn = ecs.run_task(cluster=cluster, taskDefinition=f"broken-{unique}", launchType="FARGATE",
                       networkConfiguration=net)["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    t = ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]
    assert t["stopCode"] == "TaskFailedToStart" and t["stoppedReason"].startswith("CannotStartContainerError: ")
    assert "portico-no-such-binary" in t["stoppedReason"]

    # An image that is neither built in nor in the catalog cannot be pulled.
    ecs.register_task_definition(
        family=f"nope-{unique}", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        containerDefinitions=[{"name": "app", "image": "nobody/nothing:1"}])
    arn = ecs.run_task(cluster=cluster, taskDefinition=f"nope-{unique}", launchType="FARGATE",
                       networkConfiguration=net)["tasks"][0]["taskArn"]
    r = portico.aws("ecs", "wait", "tasks-running", "--cluster", cluster, "--tasks", arn, check=False)
    assert r.returncode != 0  # the waiter fails: the task STOPPED instead
    t = ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]
    assert t["lastStatus"] == "STOPPED" and t["stopCode"] == "TaskFailedToStart"
    assert t["stoppedReason"].startswith("CannotPullContainerError: ")
    assert "startedAt" not in t

    # awslogs into a group that does not exist (and may not be created): the task cannot start.
    ecs.register_task_definition(
        family=f"nolog-{unique}", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        executionRoleArn=EXEC_ROLE,
        containerDefinitions=[{"name": "app", "image": SAMPLE, "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": f"/missing/{unique}", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "x"}}}])
    arn = ecs.run_task(cluster=cluster, taskDefinition=f"nolog-{unique}", launchType="FARGATE",
                       networkConfiguration=net)["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    t = ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]
    assert t["stopCode"] == "TaskFailedToStart" and t["stoppedReason"].startswith("ResourceInitializationError: ")

    # StopTask of a running sample task: SIGTERM, exit 143, reason kept.
    td = sample_taskdef(ecs, f"stop-{unique}")
    arn = ecs.run_task(cluster=cluster, taskDefinition=td["taskDefinitionArn"], launchType="FARGATE",
                       networkConfiguration=net, tags=[{"key": "k", "value": "v"}])["tasks"][0]["taskArn"]
    portico.aws("ecs", "wait", "tasks-running", "--cluster", cluster, "--tasks", arn)
    running = ecs.describe_tasks(cluster=cluster, tasks=[arn], include=["TAGS"])["tasks"][0]
    assert running["tags"] == [{"key": "k", "value": "v"}]
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "k", "value": "v"}]
    out = ecs.stop_task(cluster=cluster, task=arn, reason="enough")["task"]
    assert out["desiredStatus"] == "STOPPED"
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    t = ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]
    assert (t["stopCode"], t["stoppedReason"], t["containers"][0]["exitCode"]) == ("UserInitiated", "enough", 143)
    assert not alive(pid_of(running))
    # Unknown tasks are failures, not errors.
    d = ecs.describe_tasks(cluster=cluster, tasks=["0123456789abcdef0123456789abcdef"])
    assert d["tasks"] == [] and d["failures"][0]["reason"] == "MISSING"
    assert d["failures"][0]["arn"] == f"arn:aws:ecs:us-east-1:000000000000:task/{cluster}/0123456789abcdef0123456789abcdef"


def test_bad_input_exact_errors_change_nothing(portico, unique):
    ecs = portico.client("ecs")
    _, subnets, sg = network(portico, unique)
    cluster = f"bad-{unique}"
    ecs.create_cluster(clusterName=cluster)
    td = sample_taskdef(ecs, f"ok-{unique}")
    net = {"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg]}}

    e = err(ecs.describe_services, cluster=f"nope-{unique}", services=["x"])
    assert (e["Code"], e["Message"]) == ("ClusterNotFoundException", "Cluster not found.")
    e = err(ecs.run_task, cluster=f"nope-{unique}", taskDefinition=td["family"])
    assert e["Code"] == "ClusterNotFoundException"
    e = err(ecs.update_service, cluster=cluster, service="ghost", desiredCount=1)
    assert (e["Code"], e["Message"]) == ("ServiceNotFoundException", "Service not found.")
    e = err(ecs.describe_task_definition, taskDefinition=f"ghost-{unique}")
    assert (e["Code"], e["Message"]) == ("ClientException", "Unable to describe task definition.")
    e = err(ecs.create_service, cluster=cluster, serviceName="s", taskDefinition=f"ghost-{unique}", desiredCount=1)
    assert (e["Code"], e["Message"]) == ("InvalidParameterException", "TaskDefinition not found.")

    base = dict(requiresCompatibilities=["FARGATE"], networkMode="awsvpc", executionRoleArn=EXEC_ROLE)
    c = {"name": "web", "image": SAMPLE, "portMappings": [{"containerPort": 80}]}
    e = err(ecs.register_task_definition, family=f"bad-{unique}", cpu="256", memory="4096", containerDefinitions=[c], **base)
    assert (e["Code"], e["Message"]) == ("ClientException", "No Fargate configuration exists for given values: 256 CPU, 4096 memory. See the Amazon ECS documentation for the valid values.")
    e = err(ecs.register_task_definition, family=f"bad-{unique}", cpu="256", memory="512",
            containerDefinitions=[c, {"name": "side", "image": SAMPLE, "portMappings": [{"containerPort": 80}]}], **base)
    assert (e["Code"], e["Message"]) == ("ClientException", "TCP host port '80' is mapped multiple times in task.")
    e = err(ecs.register_task_definition, family=f"bad-{unique}", cpu="256", memory="512",
            containerDefinitions=[{"name": "web", "image": SAMPLE, "portMappings": [{"containerPort": 80, "hostPort": 8080}]}], **base)
    assert (e["Code"], e["Message"]) == ("ClientException", "When networkMode=awsvpc, the host ports and container ports in port mappings must match.")
    e = err(ecs.register_task_definition, family=f"bad-{unique}", cpu="256", memory="512",
            containerDefinitions=[dict(c, logConfiguration={"logDriver": "awslogs", "options": {"awslogs-group": "g", "awslogs-region": "us-east-1"}})],
            requiresCompatibilities=["FARGATE"], networkMode="awsvpc")
    assert e["Message"] == "Fargate requires task definition to have execution role ARN to support log driver awslogs."
    e = err(ecs.register_task_definition, family=f"bad-{unique}", containerDefinitions=[{"name": "web", "image": SAMPLE}])
    assert e["Message"] == "Invalid setting for container 'web'. At least one of 'memory' or 'memoryReservation' must be specified."
    # Nothing was registered under the bad family.
    assert ecs.list_task_definitions(familyPrefix=f"bad-{unique}")["taskDefinitionArns"] == []

    e = err(ecs.create_service, cluster=cluster, serviceName="s", taskDefinition=td["family"], desiredCount=1, launchType="FARGATE")
    assert (e["Code"], e["Message"]) == ("InvalidParameterException", "Network Configuration must be provided when networkMode 'awsvpc' is specified.")
    e = err(ecs.create_service, cluster=cluster, serviceName="s", taskDefinition=td["family"], desiredCount=1, launchType="FARGATE",
            networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-0000000000000dead"]}})
    assert e["Code"] == "InvalidParameterException" and "subnet-0000000000000dead" in e["Message"]
    # A target group that no load balancer uses.
    elb = portico.client("elbv2")
    vpc = portico.client("ec2").describe_subnets(SubnetIds=subnets[:1])["Subnets"][0]["VpcId"]
    tg = elb.create_target_group(Name=f"tg-{unique}", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    e = err(ecs.create_service, cluster=cluster, serviceName="s", taskDefinition=td["family"], desiredCount=1, launchType="FARGATE",
            networkConfiguration=net, loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 80}])
    assert (e["Code"], e["Message"]) == ("InvalidParameterException", f"The target group with targetGroupArn {tg} does not have an associated load balancer.")
    assert ecs.list_services(cluster=cluster)["serviceArns"] == []

    # Services: not idempotent, cannot delete while scaled above 0, unknown ones are MISSING.
    ecs.create_service(cluster=cluster, serviceName="s", taskDefinition=td["family"], desiredCount=0, launchType="FARGATE", networkConfiguration=net)
    e = err(ecs.create_service, cluster=cluster, serviceName="s", taskDefinition=td["family"], desiredCount=0, launchType="FARGATE", networkConfiguration=net)
    assert (e["Code"], e["Message"]) == ("InvalidParameterException", "Creation of service was not idempotent.")
    ecs.update_service(cluster=cluster, service="s", desiredCount=1)
    e = err(ecs.delete_service, cluster=cluster, service="s")
    assert (e["Code"], e["Message"]) == ("InvalidParameterException", "The service cannot be stopped while it is scaled above 0.")
    d = ecs.describe_services(cluster=cluster, services=["s", "ghost"])
    assert [s["serviceName"] for s in d["services"]] == ["s"]
    assert d["failures"] == [{"arn": f"arn:aws:ecs:us-east-1:000000000000:service/{cluster}/ghost", "reason": "MISSING"}]
    e = err(ecs.delete_cluster, cluster=cluster)
    assert e["Code"] == "ClusterContainsServicesException"
    out = ecs.delete_service(cluster=cluster, service="s", force=True)["service"]
    assert out["status"] == "DRAINING"
    ecs.get_waiter("services_inactive").wait(cluster=cluster, services=["s"], WaiterConfig=FAST)
    ecs.delete_cluster(cluster=cluster)


def test_kill9_restart_replaces_tasks_without_orphans(fresh_portico, unique):
    p = fresh_portico.start()
    seen_ids = set()
    try:
        # A task whose process has a child of its own: the child outlives a `kill -9` of Portico
        # (the parent-death signal reaches only the direct child) until the restart reaps it.
        Path(p.state_dir, "images.json").write_text(json.dumps({"images": {"example/forks": {
            "entryPoint": ["sh", "-c", "sleep 120 & exec python3 -m http.server $PORT --bind 127.0.0.1"]}}}))
        ecs = p.client("ecs")
        _, subnets, sg = network(p, unique)
        ecs.create_cluster(clusterName="c")
        td = sample_taskdef(ecs, "s", image="example/forks")
        ecs.create_service(cluster="c", serviceName="web", taskDefinition=td["family"], desiredCount=1, launchType="FARGATE",
                           networkConfiguration={"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg]}})
        ecs.get_waiter("services_stable").wait(cluster="c", services=["web"], WaiterConfig=FAST)
        old = running_tasks(ecs, "c", "web")[0]
        old_id = old["taskArn"].rsplit("/", 1)[1]
        seen_ids.add(old_id)
        assert len(processes_of({old_id})) == 2
        p.kill9()
        # The task process dies with Portico (parent-death signal); its child is left over.
        wait_until(lambda: not alive(pid_of(old)), timeout=10, what="task process to die with portico")
        assert len(processes_of({old_id})) == 1
        p.start()
        ecs = p.client("ecs")

        def replaced():
            ts = running_tasks(ecs, "c", "web")
            return len(ts) == 1 and ts[0]["taskArn"] != old["taskArn"] and ts[0]

        new = wait_until(replaced, timeout=30, what="replacement after restart")
        gone = ecs.describe_tasks(cluster="c", tasks=[old["taskArn"]])["tasks"][0]
        assert gone["lastStatus"] == "STOPPED" and gone["stopCode"] == "EssentialContainerExited"
        wait_until(lambda: processes_of({old_id}) == [], timeout=10, what="leftover child reaped")
        ecs.get_waiter("services_stable").wait(cluster="c", services=["web"], WaiterConfig=FAST)
        new_id = new["taskArn"].rsplit("/", 1)[1]
        seen_ids.add(new_id)
        assert len(processes_of({new_id})) == 2
        # Graceful stop takes the task's whole process group down.
        p.stop()
        wait_until(lambda: processes_of({new_id}) == [], timeout=10, what="task processes to stop with portico")
    finally:
        # Never leave a test's processes behind, even when an assertion above failed.
        for pid in processes_of(seen_ids):
            os.kill(pid, signal.SIGKILL)


def test_alb_reaches_both_tasks(unique, tmp_path):
    """With ELBv2: service tasks are registered in the target group, become healthy, and the
    ALB spreads traffic over both."""
    import requests

    p = Portico(extra_args=["--time-scale", "0.02"]).start()
    try:
        Path(p.state_dir, "images.json").write_text(json.dumps(
            {"images": {"example/whoami": {"entryPoint": ["python3", "-c", WHOAMI],
                                           "environment": {"FLAG_DIR": str(tmp_path)}}}}))
        ecs, elb, ec2 = p.client("ecs"), p.client("elbv2"), p.client("ec2")
        vpc, subnets, sg = network(p, unique)
        # the ALB and the tasks share the group: it must admit its own members (groups are enforced)
        ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": sg}]}])
        lb = elb.create_load_balancer(Name="alb", Subnets=subnets, SecurityGroups=[sg], Scheme="internal", Type="application")["LoadBalancers"][0]
        tg = elb.create_target_group(Name="tg", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
        elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
        ecs.create_cluster(clusterName="c")
        td = sample_taskdef(ecs, "who", image="example/whoami")
        t0 = time.time()
        ecs.create_service(cluster="c", serviceName="web", taskDefinition=td["family"], desiredCount=2, launchType="FARGATE",
                           healthCheckGracePeriodSeconds=60,
                           networkConfiguration={"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg]}},
                           loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 80}])
        wait_until(lambda: any(h["TargetHealth"]["State"] == "healthy" for h in
                               elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]),
                   timeout=30, interval=0.02, what="first healthy target")
        print(f"\nECS+ALB (--time-scale 0.02): CreateService -> first task healthy in its target group {time.time() - t0:.3f}s")
        ecs.get_waiter("services_stable").wait(cluster="c", services=["web"], WaiterConfig=FAST)
        tasks = running_tasks(ecs, "c", "web")
        ips = sorted({d["value"] for t in tasks for d in t["attachments"][0]["details"] if d["name"] == "privateIPv4Address"})

        def healthy():
            th = elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
            return sorted(h["Target"]["Id"] for h in th if h["TargetHealth"]["State"] == "healthy") == ips and th

        wait_until(healthy, timeout=30, what="targets healthy")
        events = [e["message"] for e in ecs.describe_services(cluster="c", services=["web"])["services"][0]["events"]]
        assert f"(service web) registered 1 targets in (target-group {tg})" in events
        seen = set()
        for _ in range(10):
            r = requests.get(p.endpoint + "/", headers={"Host": lb["DNSName"]}, timeout=5)
            assert r.status_code == 200
            seen.add(r.text)
        assert seen == {t["taskArn"].rsplit("/", 1)[1] for t in tasks}
        # A task that fails its ELB health checks is replaced once the grace period is over.
        sick = tasks[0]
        sick_id = sick["taskArn"].rsplit("/", 1)[1]
        (tmp_path / f"sick-{sick_id}").touch()
        ecs.get_waiter("tasks_stopped").wait(cluster="c", tasks=[sick["taskArn"]], WaiterConfig=FAST)
        dead = ecs.describe_tasks(cluster="c", tasks=[sick["taskArn"]])["tasks"][0]
        assert dead["stopCode"] == "ServiceSchedulerInitiated"
        assert dead["stoppedReason"] == f"Task failed ELB health checks in (target-group {tg})"
        events = [e["message"] for e in ecs.describe_services(cluster="c", services=["web"])["services"][0]["events"]]
        assert f"(service web) (port 80) is unhealthy in (target-group {tg}) due to (reason Health checks failed)." in events
        assert "(service web) has begun draining connections on 1 tasks." in events
        tasks = wait_until(lambda: len(running_tasks(ecs, "c", "web")) == 2 and running_tasks(ecs, "c", "web"),
                           timeout=30, what="replacement of the unhealthy task")
        ips = sorted({d["value"] for t in tasks for d in t["attachments"][0]["details"] if d["name"] == "privateIPv4Address"})
        wait_until(healthy, timeout=30, what="replacement healthy")
        # Scaling in deregisters before stopping.
        ecs.update_service(cluster="c", service="web", desiredCount=1)
        ecs.get_waiter("services_stable").wait(cluster="c", services=["web"], WaiterConfig=FAST)
        wait_until(lambda: len([h for h in elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
                                if h["TargetHealth"]["State"] != "draining"]) == 1, timeout=15, what="one target left")
    finally:
        p.stop()


def test_container_health_checks_replace_unhealthy_tasks(unique, tmp_path):
    p = Portico(extra_args=["--time-scale", "0.02"]).start()
    try:
        flag = tmp_path / "unhealthy"
        Path(p.state_dir, "images.json").write_text(json.dumps({"images": {"example/checked": {
            "entryPoint": ["sh", "-c", "exec python3 -m http.server $PORT --bind 127.0.0.1"]}}}))
        ecs = p.client("ecs")
        _, subnets, sg = network(p, unique)
        ecs.create_cluster(clusterName="c")
        ecs.register_task_definition(
            family="checked", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
            containerDefinitions=[{"name": "web", "image": "example/checked", "portMappings": [{"containerPort": 80}],
                                   "healthCheck": {"command": ["CMD-SHELL", f"test ! -e {flag}-$PORTICO_TASK_ID"],
                                                   "interval": 5, "timeout": 5, "retries": 2}}])
        ecs.create_service(cluster="c", serviceName="web", taskDefinition="checked", desiredCount=2, launchType="FARGATE",
                           networkConfiguration={"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg]}})

        def all_healthy():
            ts = running_tasks(ecs, "c", "web")
            return len(ts) == 2 and all(t["healthStatus"] == "HEALTHY" and t["containers"][0]["healthStatus"] == "HEALTHY"
                                        for t in ts) and ts

        tasks = wait_until(all_healthy, timeout=30, what="two HEALTHY tasks")
        victim = tasks[0]
        vid = victim["taskArn"].rsplit("/", 1)[1]
        Path(f"{flag}-{vid}").touch()
        ecs.get_waiter("tasks_stopped").wait(cluster="c", tasks=[victim["taskArn"]], WaiterConfig=FAST)
        dead = ecs.describe_tasks(cluster="c", tasks=[victim["taskArn"]])["tasks"][0]
        assert dead["stopCode"] == "ServiceSchedulerInitiated"
        assert dead["stoppedReason"] == "Task failed container health checks"
        assert dead["healthStatus"] == "UNHEALTHY"
        now = wait_until(all_healthy, timeout=30, what="replacement HEALTHY")
        assert victim["taskArn"] not in [t["taskArn"] for t in now]
        events = [e["message"] for e in ecs.describe_services(cluster="c", services=["web"])["services"][0]["events"]]
        assert f"(service web) (task {vid}) failed container health checks." in events

        # A service whose tasks never start backs off and says so, as AWS does.
        ecs.register_task_definition(
            family="broken", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
            containerDefinitions=[{"name": "web", "image": "nobody/nothing"}])
        ecs.create_service(cluster="c", serviceName="broken", taskDefinition="broken", desiredCount=1, launchType="FARGATE",
                           networkConfiguration={"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg]}})

        def throttled():
            s = ecs.describe_services(cluster="c", services=["broken"])["services"][0]
            msgs = [e["message"] for e in s["events"]]
            return "(service broken) is unable to consistently start tasks successfully." in msgs and s

        s = wait_until(throttled, timeout=30, what="start throttling event")
        assert s["deployments"][0]["failedTasks"] >= 3 and s["runningCount"] == 0
        stopped = ecs.list_tasks(cluster="c", serviceName="broken", desiredStatus="STOPPED")["taskArns"]
        t = ecs.describe_tasks(cluster="c", tasks=stopped[:1])["tasks"][0]
        assert t["stopCode"] == "TaskFailedToStart" and t["stoppedReason"].startswith("CannotPullContainerError: ")
        ecs.delete_service(cluster="c", service="broken", force=True)
    finally:
        p.stop()


def test_rolling_deployment_to_a_new_revision(portico, unique):
    ecs = portico.client("ecs")
    _, subnets, sg = network(portico, unique)
    cluster = f"roll-{unique}"
    ecs.create_cluster(clusterName=cluster)
    family = f"roll-{unique}"
    v1 = sample_taskdef(ecs, family)
    ecs.create_service(cluster=cluster, serviceName="web", taskDefinition=v1["taskDefinitionArn"], desiredCount=2,
                       launchType="FARGATE", enableECSManagedTags=True, propagateTags="SERVICE",
                       tags=[{"key": "team", "value": "a"}],
                       deploymentConfiguration={"maximumPercent": 100, "minimumHealthyPercent": 50},
                       networkConfiguration={"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg]}})
    ecs.get_waiter("services_stable").wait(cluster=cluster, services=["web"], WaiterConfig=FAST)
    old = running_tasks(ecs, cluster, "web")
    tags = ecs.describe_tasks(cluster=cluster, tasks=[old[0]["taskArn"]], include=["TAGS"])["tasks"][0]["tags"]
    assert {t["key"]: t["value"] for t in tags} == {"team": "a", "aws:ecs:clusterName": cluster, "aws:ecs:serviceName": "web"}
    v2 = sample_taskdef(ecs, family)
    assert v2["revision"] == v1["revision"] + 1
    out = ecs.update_service(cluster=cluster, service="web", taskDefinition=family)["service"]
    assert [d["status"] for d in out["deployments"]] == ["PRIMARY", "ACTIVE"]
    assert out["deployments"][0]["taskDefinition"] == v2["taskDefinitionArn"]
    ecs.get_waiter("services_stable").wait(cluster=cluster, services=["web"], WaiterConfig=FAST)
    s = ecs.describe_services(cluster=cluster, services=["web"])["services"][0]
    assert len(s["deployments"]) == 1 and s["deployments"][0]["rolloutState"] == "COMPLETED"
    assert s["deployments"][0]["rolloutStateReason"] == f"ECS deployment {s['deployments'][0]['id']} completed."
    now = running_tasks(ecs, cluster, "web")
    assert len(now) == 2 and {t["taskDefinitionArn"] for t in now} == {v2["taskDefinitionArn"]}
    stopped = ecs.describe_tasks(cluster=cluster, tasks=[t["taskArn"] for t in old])["tasks"]
    assert {t["stopCode"] for t in stopped} == {"ServiceSchedulerInitiated"}
    messages = [e["message"] for e in s["events"]]
    assert f"(service web) (deployment {s['deployments'][0]['id']}) deployment completed." in messages
    # At no time did more than 100% run: every "has started" event names one task.
    started = [m for m in messages if m.startswith("(service web) has started")]
    assert all(m.startswith("(service web) has started 1 tasks") for m in started[:-1])
    ecs.delete_service(cluster=cluster, service="web", force=True)
    ecs.get_waiter("services_inactive").wait(cluster=cluster, services=["web"], WaiterConfig=FAST)


def test_reset_stops_every_task(fresh_portico, unique):
    p = fresh_portico.start()
    ecs = p.client("ecs")
    _, subnets, sg = network(p, unique)
    ecs.create_cluster(clusterName="c")
    sample_taskdef(ecs, "s")
    arns = [t["taskArn"] for t in ecs.run_task(
        cluster="c", taskDefinition="s", count=2, launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg]}})["tasks"]]
    ecs.get_waiter("tasks_running").wait(cluster="c", tasks=arns, WaiterConfig=FAST)
    ids = {a.rsplit("/", 1)[1] for a in arns}
    assert len(processes_of(ids)) == 2
    assert p.http("POST", "/_portico/reset").status_code == 200
    assert processes_of(ids) == []
    assert err(ecs.describe_tasks, cluster="c", tasks=arns)["Code"] == "ClusterNotFoundException"


def test_task_definition_families_and_revisions(portico, unique):
    ecs = portico.client("ecs")
    fam = f"fam-{unique}"
    arns = [sample_taskdef(ecs, fam)["taskDefinitionArn"] for _ in range(3)]
    assert [a.rsplit(":", 1)[1] for a in arns] == ["1", "2", "3"]
    assert ecs.describe_task_definition(taskDefinition=fam)["taskDefinition"]["revision"] == 3
    d = ecs.deregister_task_definition(taskDefinition=f"{fam}:3")["taskDefinition"]
    assert d["status"] == "INACTIVE" and "deregisteredAt" in d
    # The family now means revision 2; revision 3 stays describable.
    assert ecs.describe_task_definition(taskDefinition=fam)["taskDefinition"]["revision"] == 2
    assert ecs.describe_task_definition(taskDefinition=arns[2])["taskDefinition"]["status"] == "INACTIVE"
    assert ecs.list_task_definitions(familyPrefix=fam)["taskDefinitionArns"] == arns[:2]
    assert ecs.list_task_definitions(familyPrefix=fam, status="INACTIVE")["taskDefinitionArns"] == arns[2:]
    assert ecs.list_task_definitions(familyPrefix=fam, sort="DESC")["taskDefinitionArns"] == arns[:2][::-1]
    assert ecs.list_task_definition_families(familyPrefix=fam)["families"] == [fam]
    page = ecs.list_task_definitions(familyPrefix=fam, maxResults=1)
    assert page["taskDefinitionArns"] == arns[:1] and "nextToken" in page
    out = ecs.delete_task_definitions(taskDefinitions=[arns[2], arns[0]])
    assert [t["status"] for t in out["taskDefinitions"]] == ["DELETE_IN_PROGRESS"]
    assert out["failures"][0]["arn"] == arns[0]
    # Revisions are never reused.
    assert sample_taskdef(ecs, fam)["revision"] == 4
    # Through the CLI, with the network mode default and tags.
    out = portico.aws("ecs", "register-task-definition", "--family", f"cli-{unique}", "--container-definitions",
                      json.dumps([{"name": "c", "image": SAMPLE, "memory": 128}]), "--tags", "key=a,value=b")
    assert out["taskDefinition"]["compatibilities"] == ["EC2"] and out["tags"] == [{"key": "a", "value": "b"}]
    got = portico.aws("ecs", "describe-task-definition", "--task-definition", f"cli-{unique}", "--include", "TAGS")
    assert got["tags"] == [{"key": "a", "value": "b"}]
    assert got["taskDefinition"]["containerDefinitions"][0]["essential"] is True


def test_depends_on_runs_an_init_container_first(portico, unique):
    import requests

    ecs = portico.client("ecs")
    _, subnets, sg = network(portico, unique)
    catalog = Path(portico.state_dir) / "images.json"
    images = json.loads(catalog.read_text()) if catalog.exists() else {"images": {}}
    images["images"][f"example/init-{unique}"] = {"entryPoint": ["sh", "-c", "sleep 0.3; echo init done"]}
    catalog.write_text(json.dumps(images))
    cluster = f"deps-{unique}"
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(
        family=f"deps-{unique}", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        containerDefinitions=[
            {"name": "web", "image": SAMPLE, "portMappings": [{"containerPort": 80}],
             "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}]},
            {"name": "init", "image": f"example/init-{unique}", "essential": False}])
    e = err(ecs.register_task_definition, family=f"deps-{unique}", requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
            cpu="256", memory="512", containerDefinitions=[
                {"name": "web", "image": SAMPLE, "dependsOn": [{"containerName": "ghost", "condition": "START"}]}])
    assert e["Code"] == "ClientException" and "ghost" in e["Message"]
    arn = ecs.run_task(cluster=cluster, taskDefinition=f"deps-{unique}", launchType="FARGATE", networkConfiguration={
        "awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg]}})["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_running").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    t = ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]
    by = {c["name"]: c for c in t["containers"]}
    assert by["web"]["lastStatus"] == "RUNNING"
    assert by["init"]["lastStatus"] == "STOPPED" and by["init"]["exitCode"] == 0
    assert "Congratulations" in requests.get(local_url({"containers": [by["web"]]}), timeout=5).text
    ecs.stop_task(cluster=cluster, task=arn)
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)


def test_memory_limit_kills_with_out_of_memory(portico, unique):
    ecs = portico.client("ecs")
    _, subnets, sg = network(portico, unique)
    catalog = Path(portico.state_dir) / "images.json"
    images = json.loads(catalog.read_text()) if catalog.exists() else {"images": {}}
    images["images"][f"example/hog-{unique}"] = {
        "entryPoint": ["python3", "-c", "import time\nx = bytearray(96 * 1024 * 1024)\ntime.sleep(30)"]}
    catalog.write_text(json.dumps(images))
    cluster = f"oom-{unique}"
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(
        family=f"hog-{unique}", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        containerDefinitions=[{"name": "hog", "image": f"example/hog-{unique}", "memory": 64}])
    arn = ecs.run_task(cluster=cluster, taskDefinition=f"hog-{unique}", launchType="FARGATE", networkConfiguration={
        "awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg]}})["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    t = ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]
    c = t["containers"][0]
    assert t["stopCode"] == "EssentialContainerExited" and c["exitCode"] == 137
    assert c["reason"] == "OutOfMemoryError: Container killed due to memory usage"


def test_secrets_from_parameter_store_reach_the_container(portico, unique):
    """`secrets` with an SSM parameter (by name or ARN) become environment variables, as on AWS;
    a secret that cannot be fetched stops the task with ResourceInitializationError."""
    ecs = portico.client("ecs")
    ssm = portico.client("ssm")
    _, subnets, sg = network(portico, unique)
    cluster = f"sec-{unique}"
    ecs.create_cluster(clusterName=cluster)
    net = {"awsvpcConfiguration": {"subnets": subnets[:1], "securityGroups": [sg]}}
    ssm.put_parameter(Name=f"/sec/{unique}/db", Value="s3cr3t", Type="SecureString")
    ssm.put_parameter(Name=f"plain-{unique}", Value="p1ain", Type="String")
    catalog = Path(portico.state_dir) / "images.json"
    images = json.loads(catalog.read_text()) if catalog.exists() else {"images": {}}
    images["images"][f"example/env-{unique}"] = {"entryPoint": ["sh", "-c"], "command": ["echo db=$DB plain=$PLAIN"]}
    catalog.write_text(json.dumps(images))

    def run(family, secrets):
        ecs.register_task_definition(
            family=family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
            executionRoleArn=EXEC_ROLE,
            containerDefinitions=[{"name": "app", "image": f"example/env-{unique}", "secrets": secrets,
                                   "logConfiguration": {"logDriver": "awslogs", "options": {
                                       "awslogs-group": f"/sec/{unique}", "awslogs-region": "us-east-1",
                                       "awslogs-stream-prefix": "s", "awslogs-create-group": "true"}}}])
        arn = ecs.run_task(cluster=cluster, taskDefinition=family, launchType="FARGATE",
                           networkConfiguration=net)["tasks"][0]["taskArn"]
        ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
        return arn, ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]

    arn, t = run(f"sec-ok-{unique}", [
        {"name": "DB", "valueFrom": f"arn:aws:ssm:us-east-1:000000000000:parameter/sec/{unique}/db"},
        {"name": "PLAIN", "valueFrom": f"plain-{unique}"},
    ])
    assert t["stopCode"] == "EssentialContainerExited", t
    stream = f"s/app/{arn.rsplit('/', 1)[1]}"
    logs = portico.client("logs")
    messages = wait_until(lambda: [e["message"] for e in logs.get_log_events(
        logGroupName=f"/sec/{unique}", logStreamName=stream)["events"]], what="the container's output")
    assert messages == ["db=s3cr3t plain=p1ain"]

    _, t = run(f"sec-missing-{unique}", [{"name": "DB", "valueFrom": f"/sec/{unique}/nope"}])
    assert t["stopCode"] == "TaskFailedToStart"
    assert t["stoppedReason"].startswith("ResourceInitializationError: unable to pull secrets")
    assert "ParameterNotFound" in t["stoppedReason"]
