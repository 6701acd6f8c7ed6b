"""The tutorial's path (HTTP API -> VPC link -> internal ALB -> ECS service) when something is
wrong, as the client of the HTTP API sees it: a VPC link in another VPC, security groups that
drop the link's or the load balancer's packets (and start passing them as soon as a rule is
authorized, without a restart), a VPC link deleted while in use, a link whose security group
does not exist, and a service scaled to zero and back. docs/security-groups.md says what is
enforced where."""

import botocore.exceptions
import pytest

from conftest import Portico, wait_until

SAMPLE_TITLE = "<title>Amazon ECS Sample App</title>"
UNAVAILABLE = {"message": "Service Unavailable"}
TIMEOUT_MS = 1000
FAST = {"Delay": 0.2, "MaxAttempts": 300}


class Env:
    pass


def tcp80(**peer):
    return [{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, **peer}]


@pytest.fixture(scope="module")
def env():
    p = Portico(extra_args=["--time-scale", "0.1"]).start()
    try:
        e = Env()
        e.p = p
        ec2, elb, ecs, apigw = p.client("ec2"), p.client("elbv2"), p.client("ecs"), p.client("apigatewayv2")
        e.ec2, e.elb, e.ecs, e.apigw = ec2, elb, ecs, apigw
        e.vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
        e.subnets = [ec2.create_subnet(VpcId=e.vpc, CidrBlock=f"10.40.{i}.0/24", AvailabilityZone=f"us-east-1{z}")
                     ["Subnet"]["SubnetId"] for i, z in ((1, "a"), (2, "b"))]
        sg = lambda name: ec2.create_security_group(GroupName=name, Description=name, VpcId=e.vpc)["GroupId"]  # noqa: E731
        e.alb_sg, e.task_sg, e.link_sg = sg("alb"), sg("tasks"), sg("link")
        # the tasks admit the load balancer; the load balancer admits nobody yet
        ec2.authorize_security_group_ingress(GroupId=e.task_sg, IpPermissions=tcp80(UserIdGroupPairs=[{"GroupId": e.alb_sg}]))
        e.lb = elb.create_load_balancer(Name="neg-alb", Subnets=e.subnets, SecurityGroups=[e.alb_sg], Scheme="internal",
                                        Type="application")["LoadBalancers"][0]
        e.tg = elb.create_target_group(Name="neg-tg", Protocol="HTTP", Port=80, VpcId=e.vpc, TargetType="ip",
                                       HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                       HealthyThresholdCount=2, UnhealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
        elb.modify_target_group_attributes(TargetGroupArn=e.tg, Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": "0"}])
        e.listener = elb.create_listener(LoadBalancerArn=e.lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                                         DefaultActions=[{"Type": "forward", "TargetGroupArn": e.tg}])["Listeners"][0]["ListenerArn"]
        ecs.create_cluster(clusterName="neg")
        ecs.register_task_definition(
            family="neg-web", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
            containerDefinitions=[{"name": "web", "image": "amazon/amazon-ecs-sample", "essential": True,
                                   "portMappings": [{"containerPort": 80, "protocol": "tcp"}]}])
        # a long grace period: unhealthy targets stay, so their health can be watched
        ecs.create_service(cluster="neg", serviceName="web", taskDefinition="neg-web", desiredCount=1,
                           launchType="FARGATE", healthCheckGracePeriodSeconds=3000,
                           networkConfiguration={"awsvpcConfiguration": {"subnets": e.subnets, "securityGroups": [e.task_sg]}},
                           loadBalancers=[{"targetGroupArn": e.tg, "containerName": "web", "containerPort": 80}])
        # the tutorial's steps 2-6 with the AWS CLI
        e.link = p.aws("apigatewayv2", "create-vpc-link", "--name", "neg-link", "--subnet-ids", *e.subnets,
                       "--security-group-ids", e.link_sg)["VpcLinkId"]
        wait_until(lambda: apigw.get_vpc_link(VpcLinkId=e.link)["VpcLinkStatus"] == "AVAILABLE", what="link available")
        e.api = p.aws("apigatewayv2", "create-api", "--name", "neg", "--protocol-type", "HTTP")["ApiId"]
        e.integ = p.aws("apigatewayv2", "create-integration", "--api-id", e.api, "--integration-type", "HTTP_PROXY",
                        "--integration-method", "ANY", "--connection-type", "VPC_LINK", "--connection-id", e.link,
                        "--integration-uri", e.listener, "--payload-format-version", "1.0",
                        "--timeout-in-millis", str(TIMEOUT_MS))["IntegrationId"]
        p.aws("apigatewayv2", "create-route", "--api-id", e.api, "--route-key", "ANY /{proxy+}",
              "--target", f"integrations/{e.integ}")
        p.aws("apigatewayv2", "create-stage", "--api-id", e.api, "--stage-name", "$default", "--auto-deploy")
        wait_until(lambda: state_of(e) == "healthy", what="the task healthy in its target group")
        yield e
    finally:
        p.stop()


def get(e, path="/"):
    return e.p.http("GET", path, host=f"{e.api}.execute-api.localhost:{e.p.port}", timeout=15)


def serves_sample(r):
    return r.status_code == 200 and SAMPLE_TITLE in r.text


def times_out(r):
    """What the client sees when the link's packets are dropped: the integration times out."""
    return r.status_code == 503 and r.json() == UNAVAILABLE and r.headers.get("apigw-requestid")


def admit_link(e):
    """The ALB's group admits the link's group (tests may run alone, in any order)."""
    try:
        e.ec2.authorize_security_group_ingress(GroupId=e.alb_sg, IpPermissions=tcp80(UserIdGroupPairs=[{"GroupId": e.link_sg}]))
    except botocore.exceptions.ClientError as x:
        assert x.response["Error"]["Code"] == "InvalidPermission.Duplicate"


def health(e):
    return [h["TargetHealth"] for h in e.elb.describe_target_health(TargetGroupArn=e.tg)["TargetHealthDescriptions"]]


def state_of(e):
    states = {h["State"] for h in health(e)}
    return states.pop() if len(states) == 1 else states


def test_alb_security_group_must_admit_the_link_and_rules_apply_at_once(env):
    e = env
    # the ALB's group admits nothing: the link's connections are dropped and time out
    r = get(e, "/a")
    assert times_out(r), (r.status_code, r.text)
    # a rule naming the link's group: traffic flows without a restart
    e.p.aws("ec2", "authorize-security-group-ingress", "--group-id", e.alb_sg, "--protocol", "tcp", "--port", "80",
            "--source-group", e.link_sg)
    assert serves_sample(wait_until(lambda: [r for r in [get(e, "/a")] if r.status_code == 200], what="traffic")[0])
    # revoked: dropped again
    e.ec2.revoke_security_group_ingress(GroupId=e.alb_sg, IpPermissions=tcp80(UserIdGroupPairs=[{"GroupId": e.link_sg}]))
    assert times_out(wait_until(lambda: [r for r in [get(e, "/a")] if r.status_code != 200], what="blocked again")[0])
    # a range that holds the link's ENI addresses works too; a range that does not, does not
    e.ec2.authorize_security_group_ingress(GroupId=e.alb_sg, IpPermissions=tcp80(IpRanges=[{"CidrIp": "10.99.0.0/16"}]))
    assert times_out(get(e, "/a"))
    e.ec2.authorize_security_group_ingress(GroupId=e.alb_sg, IpPermissions=tcp80(IpRanges=[{"CidrIp": "10.40.0.0/16"}]))
    assert serves_sample(wait_until(lambda: [r for r in [get(e, "/a")] if r.status_code == 200], what="traffic")[0])
    # the link's own egress matters as well: without it nothing leaves the link
    e.ec2.revoke_security_group_egress(GroupId=e.link_sg, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    assert times_out(wait_until(lambda: [r for r in [get(e, "/a")] if r.status_code != 200], what="egress blocked")[0])
    e.ec2.authorize_security_group_egress(GroupId=e.link_sg, IpPermissions=tcp80(IpRanges=[{"CidrIp": "10.40.0.0/16"}]))
    assert serves_sample(wait_until(lambda: [r for r in [get(e, "/a")] if r.status_code == 200], what="traffic")[0])
    # SetSecurityGroups on the ALB applies at once too: a group admitting nobody, then back
    closed = e.ec2.create_security_group(GroupName="closed", Description="closed", VpcId=e.vpc)["GroupId"]
    e.elb.set_security_groups(LoadBalancerArn=e.lb["LoadBalancerArn"], SecurityGroups=[closed])
    assert times_out(wait_until(lambda: [r for r in [get(e, "/a")] if r.status_code != 200], what="closed ALB")[0])
    e.elb.set_security_groups(LoadBalancerArn=e.lb["LoadBalancerArn"], SecurityGroups=[e.alb_sg])
    assert serves_sample(wait_until(lambda: [r for r in [get(e, "/a")] if r.status_code == 200], what="traffic")[0])
    e.ec2.authorize_security_group_egress(GroupId=e.link_sg, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])


def test_task_security_group_not_admitting_the_alb_makes_targets_time_out(env):
    e = env
    admit_link(e)
    assert serves_sample(wait_until(lambda: [r for r in [get(e, "/b")] if r.status_code == 200], what="traffic")[0])
    e.ec2.revoke_security_group_ingress(GroupId=e.task_sg, IpPermissions=tcp80(UserIdGroupPairs=[{"GroupId": e.alb_sg}]))
    th = wait_until(lambda: [h for h in health(e) if h["State"] == "unhealthy"], what="target unhealthy")[0]
    assert (th["Reason"], th["Description"]) == ("Target.Timeout", "Request timed out")
    # every target unhealthy: the ALB fails open to it, its connection attempt hangs, and the
    # integration timeout (shorter than the ALB's 10 s connect timeout) answers first
    assert times_out(get(e, "/b"))
    # straight to the ALB: its connection attempt gives up at the connect timeout (10 s) or the
    # idle timeout when that is shorter, with the ALB's 504 page
    e.elb.modify_load_balancer_attributes(LoadBalancerArn=e.lb["LoadBalancerArn"], Attributes=[
        {"Key": "idle_timeout.timeout_seconds", "Value": "1"}])
    r = wait_until(lambda: [r for r in [e.p.http("GET", "/b", host=e.lb["DNSName"])] if r.status_code == 504],
                   what="ALB 504")[0]
    assert r.headers["server"] == "awselb/2.0" and "504 Gateway Time-out" in r.text
    e.elb.modify_load_balancer_attributes(LoadBalancerArn=e.lb["LoadBalancerArn"], Attributes=[
        {"Key": "idle_timeout.timeout_seconds", "Value": "60"}])
    e.p.aws("ec2", "authorize-security-group-ingress", "--group-id", e.task_sg, "--protocol", "tcp", "--port", "80",
            "--source-group", e.alb_sg)
    wait_until(lambda: state_of(e) == "healthy", what="target healthy again")
    assert serves_sample(wait_until(lambda: [r for r in [get(e, "/b")] if r.status_code == 200], what="traffic")[0])


def test_link_in_another_vpc_cannot_reach_the_alb(env):
    e = env
    other = e.ec2.create_vpc(CidrBlock="10.41.0.0/16")["Vpc"]["VpcId"]
    subnet = e.ec2.create_subnet(VpcId=other, CidrBlock="10.41.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    # the ALB admits everyone, so only the VPC stands in the way
    e.ec2.authorize_security_group_ingress(GroupId=e.alb_sg, IpPermissions=tcp80(IpRanges=[{"CidrIp": "0.0.0.0/0"}]))
    link = e.apigw.create_vpc_link(Name="elsewhere", SubnetIds=[subnet])["VpcLinkId"]
    wait_until(lambda: e.apigw.get_vpc_link(VpcLinkId=link)["VpcLinkStatus"] == "AVAILABLE", what="link available")
    integ = e.apigw.create_integration(ApiId=e.api, IntegrationType="HTTP_PROXY", IntegrationMethod="ANY",
                                       ConnectionType="VPC_LINK", ConnectionId=link, IntegrationUri=e.listener,
                                       PayloadFormatVersion="1.0", TimeoutInMillis=200)["IntegrationId"]
    e.apigw.create_route(ApiId=e.api, RouteKey="ANY /elsewhere/{proxy+}", Target=f"integrations/{integ}")
    r = wait_until(lambda: [r for r in [get(e, "/elsewhere/x")] if r.status_code != 404], what="route deployed")[0]
    assert times_out(r), (r.status_code, r.text)
    # the link in the load balancer's VPC still gets through
    assert serves_sample(get(e, "/x"))


def test_vpc_link_in_use_cannot_be_deleted(env):
    e = env
    r = e.p.aws("apigatewayv2", "delete-vpc-link", "--vpc-link-id", e.link, check=False)
    assert r.returncode != 0
    assert "BadRequestException" in r.stderr
    assert (f"Cannot delete vpc link. Vpc link '{e.link}', is referenced in [ANY:{e.integ}] "
            "in format of [Method:Resource].") in r.stderr
    assert e.apigw.get_vpc_link(VpcLinkId=e.link)["VpcLinkStatus"] == "AVAILABLE"
    admit_link(e)
    assert serves_sample(wait_until(lambda: [r for r in [get(e, "/still")] if r.status_code == 200], what="traffic")[0])


def test_vpc_link_fails_when_a_group_or_subnet_does_not_exist(env):
    e = env
    for subnets, groups, missing in (([e.subnets[0]], ["sg-0123456789abcdef0"], "sg-0123456789abcdef0"),
                                     (["subnet-0123456789abcdef0"], [], "subnet-0123456789abcdef0")):
        link = e.apigw.create_vpc_link(Name="broken", SubnetIds=subnets, SecurityGroupIds=groups)
        assert link["VpcLinkStatus"] == "PENDING"
        got = wait_until(lambda: [g for g in [e.apigw.get_vpc_link(VpcLinkId=link["VpcLinkId"])]
                                  if g["VpcLinkStatus"] != "PENDING"], what="link settled")[0]
        assert got["VpcLinkStatus"] == "FAILED" and missing in got["VpcLinkStatusMessage"], got
        e.apigw.delete_vpc_link(VpcLinkId=link["VpcLinkId"])


def test_nlb_with_security_groups_filters_like_an_alb(env):
    """NLBs may have security groups; then the link must be admitted on the listener's port."""
    e = env
    task = e.ecs.describe_tasks(cluster="neg", tasks=e.ecs.list_tasks(cluster="neg", serviceName="web")["taskArns"])["tasks"][0]
    task_ip = next(d["value"] for d in task["attachments"][0]["details"] if d["name"] == "privateIPv4Address")
    nlb_sg = e.ec2.create_security_group(GroupName="nlb", Description="nlb", VpcId=e.vpc)["GroupId"]
    e.ec2.authorize_security_group_ingress(GroupId=e.task_sg, IpPermissions=tcp80(UserIdGroupPairs=[{"GroupId": nlb_sg}]))
    tg = e.elb.create_target_group(Name="neg-tcp", Protocol="TCP", Port=80, VpcId=e.vpc, TargetType="ip",
                                   HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                   HealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
    e.elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": task_ip, "Port": 80}])
    nlb = e.elb.create_load_balancer(Name="neg-nlb", Subnets=e.subnets, SecurityGroups=[nlb_sg], Scheme="internal",
                                     Type="network")["LoadBalancers"][0]["LoadBalancerArn"]
    listener = e.elb.create_listener(LoadBalancerArn=nlb, Protocol="TCP", Port=7000,
                                     DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])["Listeners"][0]["ListenerArn"]
    integ = e.apigw.create_integration(ApiId=e.api, IntegrationType="HTTP_PROXY", IntegrationMethod="ANY",
                                       ConnectionType="VPC_LINK", ConnectionId=e.link, IntegrationUri=listener,
                                       PayloadFormatVersion="1.0", TimeoutInMillis=TIMEOUT_MS)["IntegrationId"]
    e.apigw.create_route(ApiId=e.api, RouteKey="ANY /nlb/{proxy+}", Target=f"integrations/{integ}")
    r = wait_until(lambda: [r for r in [get(e, "/nlb/x")] if r.status_code != 404], what="route deployed")[0]
    assert times_out(r), (r.status_code, r.text)
    e.p.aws("ec2", "authorize-security-group-ingress", "--group-id", nlb_sg, "--protocol", "tcp", "--port", "7000",
            "--source-group", e.link_sg)
    assert serves_sample(wait_until(lambda: [r for r in [get(e, "/nlb/x")] if r.status_code == 200], what="through the NLB")[0])


def test_nlb_without_security_groups_needs_targets_admitting_its_addresses(env):
    """Without groups on the NLB, a task's group must admit the NLB's node addresses (health
    checks and, for ip targets, the traffic come from them); a group rule cannot name it."""
    e = env
    task = e.ecs.describe_tasks(cluster="neg", tasks=e.ecs.list_tasks(cluster="neg", serviceName="web")["taskArns"])["tasks"][0]
    task_ip = next(d["value"] for d in task["attachments"][0]["details"] if d["name"] == "privateIPv4Address")
    tg = e.elb.create_target_group(Name="neg-open", Protocol="TCP", Port=80, VpcId=e.vpc, TargetType="ip",
                                   HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                   HealthyThresholdCount=2, UnhealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
    e.elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": task_ip, "Port": 80}])
    nlb = e.elb.create_load_balancer(Name="neg-open", Subnets=e.subnets, Scheme="internal",
                                     Type="network")["LoadBalancers"][0]["LoadBalancerArn"]
    listener = e.elb.create_listener(LoadBalancerArn=nlb, Protocol="TCP", Port=7100,
                                     DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])["Listeners"][0]["ListenerArn"]
    th = wait_until(lambda: [h["TargetHealth"] for h in e.elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
                             if h["TargetHealth"]["State"] == "unhealthy"], what="NLB target unhealthy")[0]
    assert th["Reason"] == "Target.FailedHealthChecks"  # how NLBs report every failed check
    integ = e.apigw.create_integration(ApiId=e.api, IntegrationType="HTTP_PROXY", IntegrationMethod="ANY",
                                       ConnectionType="VPC_LINK", ConnectionId=e.link, IntegrationUri=listener,
                                       PayloadFormatVersion="1.0", TimeoutInMillis=TIMEOUT_MS)["IntegrationId"]
    e.apigw.create_route(ApiId=e.api, RouteKey="ANY /open/{proxy+}", Target=f"integrations/{integ}")
    r = wait_until(lambda: [r for r in [get(e, "/open/x")] if r.status_code != 404], what="route deployed")[0]
    assert times_out(r), (r.status_code, r.text)
    e.ec2.authorize_security_group_ingress(GroupId=e.task_sg, IpPermissions=tcp80(IpRanges=[{"CidrIp": "10.40.0.0/16"}]))
    wait_until(lambda: [h for h in e.elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
                        if h["TargetHealth"]["State"] == "healthy"], what="NLB target healthy")
    assert serves_sample(wait_until(lambda: [r for r in [get(e, "/open/x")] if r.status_code == 200], what="through the NLB")[0])


def test_service_scaled_to_zero_then_back(env):
    e = env
    admit_link(e)
    assert serves_sample(wait_until(lambda: [r for r in [get(e, "/")] if r.status_code == 200], what="traffic")[0])
    e.ecs.update_service(cluster="neg", service="web", desiredCount=0)
    # no target left: the ALB's own 503 page reaches the client through the HTTP API
    r = wait_until(lambda: [r for r in [get(e, "/")] if r.status_code == 503], what="ALB 503")[0]
    assert r.headers["server"] == "awselb/2.0" and r.headers["apigw-requestid"]
    assert "503 Service Temporarily Unavailable" in r.text
    e.ecs.get_waiter("services_stable").wait(cluster="neg", services=["web"], WaiterConfig=FAST)
    e.ecs.update_service(cluster="neg", service="web", desiredCount=1)
    assert serves_sample(wait_until(lambda: [r for r in [get(e, "/")] if r.status_code == 200],
                                    what="served again")[0])


def test_deleting_the_integrations_frees_the_link(env):
    e = env
    with pytest.raises(botocore.exceptions.ClientError):
        e.apigw.delete_vpc_link(VpcLinkId=e.link)
    users = {i["IntegrationId"] for i in e.apigw.get_integrations(ApiId=e.api)["Items"] if i.get("ConnectionId") == e.link}
    for r in e.apigw.get_routes(ApiId=e.api)["Items"]:
        if r.get("Target", "").removeprefix("integrations/") in users:
            e.apigw.delete_route(ApiId=e.api, RouteId=r["RouteId"])
    for i in users:
        e.apigw.delete_integration(ApiId=e.api, IntegrationId=i)
    e.apigw.delete_vpc_link(VpcLinkId=e.link)
    assert e.apigw.get_vpc_link(VpcLinkId=e.link)["VpcLinkStatus"] == "DELETING"
    wait_until(lambda: e.link not in {x["VpcLinkId"] for x in e.apigw.get_vpc_links()["Items"]}, what="link gone")
