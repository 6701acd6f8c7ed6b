"""CloudFormation end to end through the real AWS CLI and boto3: `aws cloudformation deploy`
creates and updates a small stack through change sets, a failing resource rolls the stack back
with events that say why, the missing capability is AWS's exact error, and the tutorial's CDK
stack reaches CREATE_COMPLETE, serves the sample page through its ALB and deletes cleanly."""

from pathlib import Path

import pytest
import requests

from conftest import ROOT, Portico, wait_until

TEMPLATES = ROOT / "templates"  # vendored copies of shared/templates

# Deleting an ECS service behind an ALB waits for target draining (300 s deregistration delay,
# as on AWS); the tutorial tests run their own Portico with AWS's waits scaled down.
FAST = ["--time-scale", "0.02"]


@pytest.fixture
def fast_portico():
    p = Portico(extra_args=FAST).start()
    yield p
    p.stop()

SMALL = """
Description: small stack for the e2e suite
Parameters:
  Greeting:
    Type: String
    Default: hello
    AllowedValues: [hello, bonjour]
  Retention:
    Type: Number
    Default: 7
Conditions:
  IsFrench: !Equals [!Ref Greeting, bonjour]
Resources:
  Param:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub "/${AWS::StackName}/greeting"
      Type: String
      Value: !If [IsFrench, !Sub "${Greeting} le monde", !Sub "${Greeting} world"]
  Logs:
    Type: AWS::Logs::LogGroup
    Properties:
      RetentionInDays: !Ref Retention
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {Service: ecs-tasks.amazonaws.com}
            Action: sts:AssumeRole
      Policies:
        - PolicyName: read-greeting
          PolicyDocument:
            Version: "2012-10-17"
            Statement:
              - Effect: Allow
                Action: ssm:GetParameter
                Resource: !Sub "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${Param}"
Outputs:
  RoleArn:
    Value: !GetAtt Role.Arn
  LogGroupArn:
    Value: !GetAtt Logs.Arn
    Export:
      Name: !Sub "${AWS::StackName}-logs"
"""


def status(cfn, name):
    return cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]


def settled(cfn, name, timeout=60):
    return wait_until(lambda: (s := status(cfn, name)) and not s.endswith("_IN_PROGRESS") and s,
                      timeout=timeout, interval=0.2, what=f"stack {name} to settle")


def events(cfn, name):
    """(logical id, status, reason) oldest first."""
    ev = [e for page in cfn.get_paginator("describe_stack_events").paginate(StackName=name)
          for e in page["StackEvents"]]
    return [(e["LogicalResourceId"], e["ResourceStatus"], e.get("ResourceStatusReason", "")) for e in reversed(ev)]


def test_missing_capability_is_awss_exact_error(portico, unique):
    r = portico.aws("cloudformation", "create-stack", "--stack-name", f"cap-{unique}",
                    "--template-body", f"file://{TEMPLATES / 'tutorial-cdk.yaml'}", check=False)
    assert r.returncode != 0
    assert ("An error occurred (InsufficientCapabilitiesException) when calling the CreateStack "
            "operation: Requires capabilities : [CAPABILITY_IAM]") in r.stderr
    cfn = portico.client("cloudformation")
    with pytest.raises(cfn.exceptions.ClientError) as e:
        cfn.describe_stacks(StackName=f"cap-{unique}")
    assert e.value.response["Error"]["Message"] == f"Stack with id cap-{unique} does not exist"


def test_deploy_creates_then_updates_in_place(portico, unique, tmp_path):
    name = f"small-{unique}"
    tpl = tmp_path / "small.yaml"
    tpl.write_text(SMALL)
    portico.aws("cloudformation", "deploy", "--stack-name", name, "--template-file", str(tpl),
                "--capabilities", "CAPABILITY_IAM")
    cfn = portico.client("cloudformation")
    ssm = portico.client("ssm")
    logs = portico.client("logs")
    iam = portico.client("iam")
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert stack["Description"] == "small stack for the e2e suite"
    assert stack["ChangeSetId"].startswith("arn:aws:cloudformation:us-east-1:")
    outputs = {o["OutputKey"]: o for o in stack["Outputs"]}
    assert ssm.get_parameter(Name=f"/{name}/greeting")["Parameter"]["Value"] == "hello world"
    res = {r["LogicalResourceId"]: r for r in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]}
    assert set(res) == {"Param", "Logs", "Role"}
    group = res["Logs"]["PhysicalResourceId"]
    assert group.startswith(f"{name}-Logs-")
    assert outputs["LogGroupArn"]["OutputValue"] == f"arn:aws:logs:us-east-1:000000000000:log-group:{group}:*"
    assert outputs["LogGroupArn"]["ExportName"] == f"{name}-logs"
    [g] = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert g["retentionInDays"] == 7
    role = iam.get_role(RoleName=res["Role"]["PhysicalResourceId"])["Role"]
    assert outputs["RoleArn"]["OutputValue"] == role["Arn"]
    assert iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"] == ["read-greeting"]

    # Deploying again with new parameters updates the parameter and the log group in place.
    portico.aws("cloudformation", "deploy", "--stack-name", name, "--template-file", str(tpl),
                "--capabilities", "CAPABILITY_IAM", "--parameter-overrides", "Greeting=bonjour", "Retention=14")
    assert status(cfn, name) == "UPDATE_COMPLETE"
    assert ssm.get_parameter(Name=f"/{name}/greeting")["Parameter"]["Value"] == "bonjour le monde"
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["retentionInDays"] == 14
    res2 = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]}
    assert res2["Logs"] == group and res2["Role"] == role["RoleName"], "updated in place, not replaced"
    ev = events(cfn, name)
    assert ("Param", "UPDATE_COMPLETE", "") in ev and ("Logs", "UPDATE_COMPLETE", "") in ev
    assert not any(e[0] == "Role" and e[1].startswith("UPDATE") for e in ev), "unchanged resource untouched"
    assert ev[-1] == (name, "UPDATE_COMPLETE", "")

    # Nothing changed: deploy says so and leaves the stack alone.
    r = portico.aws("cloudformation", "deploy", "--stack-name", name, "--template-file", str(tpl),
                    "--capabilities", "CAPABILITY_IAM", "--parameter-overrides", "Greeting=bonjour", "Retention=14",
                    check=False)
    assert "No changes to deploy" in r.stdout + r.stderr

    portico.aws("cloudformation", "delete-stack", "--stack-name", name)
    portico.aws("cloudformation", "wait", "stack-delete-complete", "--stack-name", name)
    with pytest.raises(ssm.exceptions.ParameterNotFound):
        ssm.get_parameter(Name=f"/{name}/greeting")
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"] == []
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName=role["RoleName"])
    deleted = [s for s in cfn.list_stacks(StackStatusFilter=["DELETE_COMPLETE"])["StackSummaries"] if s["StackName"] == name]
    assert deleted and deleted[0]["StackId"] == stack["StackId"]


def test_failing_resource_rolls_back_with_reason(portico, unique):
    name = f"fail-{unique}"
    body = SMALL.replace("RetentionInDays: !Ref Retention", "RetentionInDays: 2")
    cfn = portico.client("cloudformation")
    cfn.create_stack(StackName=name, TemplateBody=body, Capabilities=["CAPABILITY_IAM"])
    assert settled(cfn, name) == "ROLLBACK_COMPLETE"
    ev = events(cfn, name)
    failed = [e for e in ev if e[1] == "CREATE_FAILED"]
    assert [e[0] for e in failed if e[2] != "Resource creation cancelled"] == ["Logs"]
    reason = failed[0][2] if failed[0][0] == "Logs" else [e for e in failed if e[0] == "Logs"][0][2]
    assert reason.startswith('Resource handler returned message: "')
    assert "retentionInDays" in reason and "HandlerErrorCode: InvalidRequest" in reason
    assert (name, "ROLLBACK_IN_PROGRESS",
            "The following resource(s) failed to create: [Logs]. Rollback requested by user.") in ev
    assert ev[-1] == (name, "ROLLBACK_COMPLETE", "")
    # Whatever was created (the log group itself, the parameter, the role) is gone again.
    created = {e[0] for e in ev if e[1] == "CREATE_COMPLETE"} | {"Logs"}
    deleted = {e[0] for e in ev if e[1] == "DELETE_COMPLETE"}
    assert created <= deleted, (created, deleted)
    stack_res = {r["LogicalResourceId"]: r for r in cfn.describe_stack_resources(StackName=name)["StackResources"]}
    assert all(r["ResourceStatus"] == "DELETE_COMPLETE" for r in stack_res.values())
    logs = portico.client("logs")
    assert logs.describe_log_groups(logGroupNamePrefix=f"{name}-")["logGroups"] == []
    with pytest.raises(portico.client("ssm").exceptions.ParameterNotFound):
        portico.client("ssm").get_parameter(Name=f"/{name}/greeting")
    with pytest.raises(cfn.exceptions.ClientError) as e:
        cfn.update_stack(StackName=name, TemplateBody=SMALL, Capabilities=["CAPABILITY_IAM"])
    assert e.value.response["Error"]["Message"].endswith("is in ROLLBACK_COMPLETE state and can not be updated.")
    cfn.delete_stack(StackName=name)
    settled(cfn, stack_res["Logs"]["StackId"])


def test_tutorial_full_stack_serves_the_sample_page_and_deletes_clean(fast_portico, unique):
    """tutorial-cdk-full.yaml (tutorial-cdk.yaml plus the HTTP API, VPC link, integration and
    route): every resource is created through the services' own operations, and the Output
    InvokeUrl serves the sample page through API -> VPC link -> ALB -> task."""
    name = f"tut-{unique}"
    fast_portico.aws("cloudformation", "create-stack", "--stack-name", name,
                "--template-body", f"file://{TEMPLATES / 'tutorial-cdk-full.yaml'}", "--capabilities", "CAPABILITY_IAM")
    cfn = fast_portico.client("cloudformation")
    assert settled(cfn, name, timeout=120) == "CREATE_COMPLETE", events(cfn, name)
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    assert stack["Parameters"] == [{"ParameterKey": "BootstrapVersion",
                                    "ParameterValue": "/cdk-bootstrap/hnb659fds/version",
                                    "ResolvedValue": stack["Parameters"][0]["ResolvedValue"]}]
    dns = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}["PrivateIntegrationsTutorialServiceLoadBalancerDNSCBE42D83"]
    r = wait_until(lambda: (x := fast_portico.http("GET", "/", host=dns)).status_code == 200 and x,
                   timeout=30, what="sample page through the ALB")
    assert "Amazon ECS Sample App" in r.text
    res = {r["LogicalResourceId"]: r["PhysicalResourceId"]
           for r in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]}
    assert res["PrivateIntegrationsTutorialVPCVPCGW514A8E2A"] == f"IGW|{res['PrivateIntegrationsTutorialVPCD20D58E8']}"
    ecs = fast_portico.client("ecs")
    svc = ecs.describe_services(cluster=res["EcsDefaultClusterMnL3mNNYNPrivateIntegrationsTutorialVPCA5BD92E9"],
                                services=[res["PrivateIntegrationsTutorialService73010F72"]])["services"][0]
    assert svc["runningCount"] == 1
    apigw = fast_portico.client("apigatewayv2")
    api_id = res["PrivateIntegrationsTutorialHttpApi57DF36F1"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["InvokeUrl"] == apigw.get_api(ApiId=api_id)["ApiEndpoint"]
    link = apigw.get_vpc_link(VpcLinkId=res["PrivateIntegrationsTutorialVpcLinkCA17831A"])
    assert (link["Name"], link["VpcLinkStatus"]) == ("private-integrations-tutorial", "AVAILABLE")
    [route] = apigw.get_routes(ApiId=api_id)["Items"]
    integration = apigw.get_integration(ApiId=api_id, IntegrationId=route["Target"].split("/")[1])
    assert (route["RouteKey"], integration["ConnectionType"], integration["IntegrationUri"]) == (
        "ANY /{proxy+}", "VPC_LINK", res["PrivateIntegrationsTutorialServiceLBPublicListener2554FECD"])
    assert apigw.get_stage(ApiId=api_id, StageName="$default")["AutoDeploy"] is True
    # The tutorial's point: HTTP API -> VPC link -> internal ALB -> ECS task.
    invoke_host = outputs["InvokeUrl"].split("://", 1)[1]
    r = wait_until(lambda: (x := fast_portico.http("GET", "/index.html", host=invoke_host)).status_code == 200 and x,
                   timeout=30, what="sample page through the HTTP API and the VPC link")
    assert "Amazon ECS Sample App" in r.text

    # Update through a change set (as `cdk deploy` and `aws cloudformation deploy` do): two
    # tasks instead of one and a narrower route, both in place.
    body = (TEMPLATES / "tutorial-cdk-full.yaml").read_text()
    body2 = body.replace("      DesiredCount: 1\n", "      DesiredCount: 2\n").replace(
        "RouteKey: ANY /{proxy+}", "RouteKey: GET /{proxy+}")
    assert body2.count("DesiredCount: 2") == 1 and "GET /{proxy+}" in body2
    cs = cfn.create_change_set(StackName=name, ChangeSetName="more-tasks", TemplateBody=body2,
                               Capabilities=["CAPABILITY_IAM"])
    described = cfn.describe_change_set(ChangeSetName=cs["Id"])
    assert described["Status"] == "CREATE_COMPLETE"
    changes = sorted((c["ResourceChange"]["Action"], c["ResourceChange"]["LogicalResourceId"],
                      c["ResourceChange"]["Replacement"]) for c in described["Changes"])
    assert changes == [("Modify", "PrivateIntegrationsTutorialHttpApiANYproxy3B196228", "False"),
                       ("Modify", "PrivateIntegrationsTutorialService73010F72", "False")]
    cfn.execute_change_set(ChangeSetName=cs["Id"])
    assert settled(cfn, name, timeout=120) == "UPDATE_COMPLETE", events(cfn, name)
    svc = ecs.describe_services(cluster=res["EcsDefaultClusterMnL3mNNYNPrivateIntegrationsTutorialVPCA5BD92E9"],
                                services=[res["PrivateIntegrationsTutorialService73010F72"]])["services"][0]
    assert (svc["desiredCount"], svc["runningCount"]) == (2, 2)
    [route] = apigw.get_routes(ApiId=api_id)["Items"]
    assert (route["RouteId"], route["RouteKey"]) == (res["PrivateIntegrationsTutorialHttpApiANYproxy3B196228"],
                                                    "GET /{proxy+}")
    after = {r["LogicalResourceId"]: r["PhysicalResourceId"]
             for r in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]}
    assert after == res, "an in-place update keeps every physical id"
    assert "Amazon ECS Sample App" in fast_portico.http("GET", "/", host=dns).text

    stack_id = stack["StackId"]
    fast_portico.aws("cloudformation", "delete-stack", "--stack-name", name)
    assert settled(cfn, stack_id, timeout=120) == "DELETE_COMPLETE", events(cfn, stack_id)
    ev = events(cfn, stack_id)
    assert ("PrivateIntegrationsTutorialServiceTaskDefwebLogGroupBA8BE497", "DELETE_SKIPPED", "") in ev
    ec2 = fast_portico.client("ec2")
    vpcs = [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]]
    assert res["PrivateIntegrationsTutorialVPCD20D58E8"] not in vpcs
    assert not [n for n in ec2.describe_nat_gateways()["NatGateways"]
                if n["NatGatewayId"] in res.values() and n["State"] != "deleted"]
    cluster = res["EcsDefaultClusterMnL3mNNYNPrivateIntegrationsTutorialVPCA5BD92E9"]
    assert not [c for c in ecs.list_clusters()["clusterArns"] if c.endswith("/" + cluster)]
    elb = fast_portico.client("elbv2")
    assert all(lb["LoadBalancerArn"] != res["PrivateIntegrationsTutorialServiceLB8E9ECEA5"]
               for lb in elb.describe_load_balancers()["LoadBalancers"])
    with pytest.raises(requests.RequestException):
        r = fast_portico.http("GET", "/", host=dns, timeout=5)
        if r.status_code != 200:
            raise requests.RequestException(f"{r.status_code}")
    assert all(a["ApiId"] != api_id for a in apigw.get_apis()["Items"])
    assert apigw.get_vpc_links()["Items"] == [] or all(
        v["VpcLinkId"] != res["PrivateIntegrationsTutorialVpcLinkCA17831A"] or v["VpcLinkStatus"] == "DELETING"
        for v in apigw.get_vpc_links()["Items"])
    # The retained log group stays, as on AWS.
    logs = fast_portico.client("logs")
    assert logs.describe_log_groups(
        logGroupNamePrefix=res["PrivateIntegrationsTutorialServiceTaskDefwebLogGroupBA8BE497"])["logGroups"]


def test_killed_mid_create_rolls_back_after_restart(unique):
    """kill -9 while the tutorial stack is being created: the restarted Portico rolls it back
    (ROLLBACK_COMPLETE, everything it had created deleted), never leaving it in progress."""
    p = Portico(extra_args=FAST).start()
    try:
        crash_and_recover(p, unique)
    finally:
        p.stop()


def crash_and_recover(p, unique):
    name = f"crash-{unique}"
    cfn = p.client("cloudformation")
    cfn.create_stack(StackName=name, TemplateBody=(TEMPLATES / "tutorial-cdk.yaml").read_text(),
                     Capabilities=["CAPABILITY_IAM"])
    wait_until(lambda: any(r["ResourceStatus"] == "CREATE_COMPLETE"
                           for r in cfn.describe_stack_resources(StackName=name)["StackResources"]),
               timeout=30, interval=0.05, what="some resources created")
    assert status(cfn, name) == "CREATE_IN_PROGRESS"
    p.kill9()
    p.start()
    cfn = p.client("cloudformation")
    try:
        final = settled(cfn, name, timeout=120)
    except AssertionError:
        busy = [(r["LogicalResourceId"], r["ResourceStatus"], r.get("ResourceStatusReason"))
                for r in cfn.describe_stack_resources(StackName=name)["StackResources"]
                if r["ResourceStatus"] not in ("DELETE_COMPLETE", "DELETE_SKIPPED")]
        raise AssertionError(f"rollback did not settle; still there: {busy}") from None
    assert final == "ROLLBACK_COMPLETE", events(cfn, name)
    ev = events(cfn, name)
    assert (name, "ROLLBACK_IN_PROGRESS",
            "Portico restarted while the operation was in progress. Rollback requested by user.") in ev
    res = cfn.describe_stack_resources(StackName=name)["StackResources"]
    left = [(r["LogicalResourceId"], r["ResourceStatus"]) for r in res
            if r["ResourceStatus"] not in ("DELETE_COMPLETE", "DELETE_SKIPPED")]
    assert left == [], left
    vpcs = p.client("ec2").describe_vpcs()["Vpcs"]
    assert all(v["IsDefault"] for v in vpcs), vpcs


def test_executed_change_set_name_can_be_reused(portico, unique):
    """Executing a change set removes the stack's change sets on AWS; `aws cloudformation
    deploy` names change sets by the second, so two quick deploys reuse a name."""
    cfn = portico.client("cloudformation")
    stack = f"reuse-{unique}"

    def template(value):
        return (
            "Resources:\n  P:\n    Type: AWS::SSM::Parameter\n    Properties:\n"
            f"      Type: String\n      Name: /{stack}/p\n      Value: {value}\n"
        )

    for kind, value in (("CREATE", "one"), ("UPDATE", "two")):
        cs = cfn.create_change_set(StackName=stack, ChangeSetName="same-name", ChangeSetType=kind, TemplateBody=template(value))
        cfn.get_waiter("change_set_create_complete").wait(ChangeSetName=cs["Id"], WaiterConfig={"Delay": 1})
        cfn.execute_change_set(ChangeSetName="same-name", StackName=stack)
        waiter = "stack_create_complete" if kind == "CREATE" else "stack_update_complete"
        cfn.get_waiter(waiter).wait(StackName=stack, WaiterConfig={"Delay": 1})
        assert portico.client("ssm").get_parameter(Name=f"/{stack}/p")["Parameter"]["Value"] == value
        # The executed change set stays, EXECUTE_COMPLETE (the earlier one of the same name is gone).
        listed = cfn.list_change_sets(StackName=stack)["Summaries"]
        assert [(c["ChangeSetId"], c["ExecutionStatus"]) for c in listed] == [(cs["Id"], "EXECUTE_COMPLETE")]
    cfn.delete_stack(StackName=stack)
    cfn.get_waiter("stack_delete_complete").wait(StackName=stack, WaiterConfig={"Delay": 1})
    with pytest.raises(cfn.exceptions.ClientError):
        portico.client("ssm").get_parameter(Name=f"/{stack}/p")


def test_vendored_templates_match_shared():
    """templates/ carries copies of shared/templates (the binary embeds them); when shared/ is
    beside the repository, they must be identical."""
    shared = ROOT.parent / "shared" / "templates"
    if not shared.is_dir():
        pytest.skip("shared/templates is not beside this checkout")
    for name in ("tutorial-cdk.yaml", "tutorial-cdk-full.yaml"):
        assert (TEMPLATES / name).read_bytes() == (shared / name).read_bytes(), name


def test_event_and_list_tokens_of_any_size_answer_an_empty_page(portico, unique):
    """A NextToken is an offset a client can forge: a huge one is an empty last page, not a 500."""
    cfn, ecs = portico.client("cloudformation"), portico.client("ecs")
    name = f"tokens-{unique}"
    cfn.create_stack(StackName=name, TemplateBody="Resources:\n  H:\n    Type: AWS::CloudFormation::WaitConditionHandle\n")
    assert settled(cfn, name) == "CREATE_COMPLETE"
    huge = str(2**64 - 1)
    page = cfn.describe_stack_events(StackName=name, NextToken=huge)
    assert page["StackEvents"] == [] and "NextToken" not in page
    assert len(cfn.describe_stack_events(StackName=name)["StackEvents"]) >= 4
    page = ecs.list_clusters(nextToken=huge, maxResults=1)
    assert page["clusterArns"] == [] and "nextToken" not in page
