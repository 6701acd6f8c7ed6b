"""CloudFormation's own tags: the resources a stack creates carry aws:cloudformation:stack-name,
stack-id and logical-id where AWS puts them (EC2 networking, load balancers and target groups,
ECS clusters, log groups; not ECS task definitions), beside the template's and the stack's tags,
and Describe*/ListTags show them. A client still may not set an aws: tag: each service refuses it
with its own error, and a template that names one fails like on AWS."""

import pytest

from conftest import wait_until

TEMPLATE = """
Resources:
  Vpc:
    Type: AWS::EC2::VPC
    Properties:
      CidrBlock: 10.42.0.0/16
      Tags: [{Key: Name, Value: tagged}]
  SubnetA:
    Type: AWS::EC2::Subnet
    Properties: {VpcId: !Ref Vpc, CidrBlock: 10.42.1.0/24, AvailabilityZone: us-east-1a}
  SubnetB:
    Type: AWS::EC2::Subnet
    Properties: {VpcId: !Ref Vpc, CidrBlock: 10.42.2.0/24, AvailabilityZone: us-east-1b}
  Sg:
    Type: AWS::EC2::SecurityGroup
    Properties: {GroupDescription: lb, VpcId: !Ref Vpc}
  Igw:
    Type: AWS::EC2::InternetGateway
  Rtb:
    Type: AWS::EC2::RouteTable
    Properties: {VpcId: !Ref Vpc}
  Lb:
    Type: AWS::ElasticLoadBalancingV2::LoadBalancer
    Properties:
      Scheme: internal
      Subnets: [!Ref SubnetA, !Ref SubnetB]
      SecurityGroups: [!Ref Sg]
  Tg:
    Type: AWS::ElasticLoadBalancingV2::TargetGroup
    Properties: {VpcId: !Ref Vpc, Port: 80, Protocol: HTTP, TargetType: ip}
  Cluster:
    Type: AWS::ECS::Cluster
  TaskDef:
    Type: AWS::ECS::TaskDefinition
    Properties:
      Family: !Sub "${AWS::StackName}-td"
      ContainerDefinitions: [{Name: web, Image: amazon/amazon-ecs-sample, Memory: 128}]
      Tags: [{Key: tier, Value: web}]
  Logs:
    Type: AWS::Logs::LogGroup
"""

RESERVED_IN_TEMPLATE = """
Resources:
  Vpc:
    Type: AWS::EC2::VPC
    Properties:
      CidrBlock: 10.43.0.0/16
      Tags: [{Key: "aws:mine", Value: x}]
"""


def settled(cfn, name):
    return wait_until(lambda: (s := cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"])
                      and not s.endswith("_IN_PROGRESS") and s, timeout=90, interval=0.2,
                      what=f"stack {name} to settle")


def as_dict(tags, k="Key", v="Value"):
    return {t[k]: t[v] for t in tags}


@pytest.fixture(scope="module")
def stack(portico):
    name = "cfntags"
    cfn = portico.client("cloudformation")
    cfn.create_stack(StackName=name, TemplateBody=TEMPLATE, Tags=[{"Key": "team", "Value": "core"}])
    assert settled(cfn, name) == "CREATE_COMPLETE"
    stack_id = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackId"]
    res = {r["LogicalResourceId"]: r["PhysicalResourceId"]
           for r in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]}
    return name, stack_id, res


def expected(stack, logical):
    name, stack_id, _ = stack
    return {"aws:cloudformation:stack-name": name, "aws:cloudformation:stack-id": stack_id,
            "aws:cloudformation:logical-id": logical, "team": "core"}


def test_ec2_resources_carry_the_stack_tags(portico, stack):
    ec2 = portico.client("ec2")
    _, _, res = stack
    [vpc] = ec2.describe_vpcs(VpcIds=[res["Vpc"]])["Vpcs"]
    assert as_dict(vpc["Tags"]) == {**expected(stack, "Vpc"), "Name": "tagged"}
    for logical in ("SubnetA", "SubnetB"):
        [s] = ec2.describe_subnets(SubnetIds=[res[logical]])["Subnets"]
        assert as_dict(s["Tags"]) == expected(stack, logical)
    [sg] = ec2.describe_security_groups(GroupIds=[res["Sg"]])["SecurityGroups"]
    assert as_dict(sg["Tags"]) == expected(stack, "Sg")
    [igw] = ec2.describe_internet_gateways(InternetGatewayIds=[res["Igw"]])["InternetGateways"]
    assert as_dict(igw["Tags"]) == expected(stack, "Igw")
    [rtb] = ec2.describe_route_tables(RouteTableIds=[res["Rtb"]])["RouteTables"]
    assert as_dict(rtb["Tags"]) == expected(stack, "Rtb")
    # The tags filter like any other: the stack's subnets by stack name, one by logical id.
    by_stack = ec2.describe_subnets(Filters=[{"Name": "tag:aws:cloudformation:stack-name", "Values": ["cfntags"]}])
    assert {s["SubnetId"] for s in by_stack["Subnets"]} == {res["SubnetA"], res["SubnetB"]}
    one = ec2.describe_subnets(Filters=[{"Name": "tag:aws:cloudformation:logical-id", "Values": ["SubnetB"]},
                                        {"Name": "tag:aws:cloudformation:stack-name", "Values": ["cfntags"]}])
    assert [s["SubnetId"] for s in one["Subnets"]] == [res["SubnetB"]]
    tagged = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [res["Vpc"]]}])["Tags"]
    assert {t["Key"] for t in tagged} >= {"aws:cloudformation:stack-id", "Name"}


def test_load_balancer_and_target_group_carry_the_stack_tags(portico, stack):
    elb = portico.client("elbv2")
    _, _, res = stack
    descs = elb.describe_tags(ResourceArns=[res["Lb"], res["Tg"]])["TagDescriptions"]
    tags = {d["ResourceArn"]: as_dict(d["Tags"]) for d in descs}
    assert tags[res["Lb"]] == expected(stack, "Lb")
    assert tags[res["Tg"]] == expected(stack, "Tg")


def test_ecs_cluster_is_tagged_but_not_its_task_definition(portico, stack):
    ecs = portico.client("ecs")
    _, _, res = stack
    [c] = ecs.describe_clusters(clusters=[res["Cluster"]], include=["TAGS"])["clusters"]
    assert as_dict(c["tags"], "key", "value") == expected(stack, "Cluster")
    listed = ecs.list_tags_for_resource(resourceArn=c["clusterArn"])["tags"]
    assert as_dict(listed, "key", "value") == expected(stack, "Cluster")
    # AWS does not put its own tags on task definitions (stack tags do propagate).
    td = ecs.list_tags_for_resource(resourceArn=res["TaskDef"])["tags"]
    assert as_dict(td, "key", "value") == {"tier": "web", "team": "core"}


def test_log_group_carries_the_stack_tags(portico, stack):
    logs = portico.client("logs")
    _, _, res = stack
    assert logs.list_tags_log_group(logGroupName=res["Logs"])["tags"] == expected(stack, "Logs")


def test_clients_still_may_not_set_aws_tags(portico):
    ec2, elb, ecs = portico.client("ec2"), portico.client("elbv2"), portico.client("ecs")
    key = "aws:cloudformation:stack-name"
    vpcs_before = len(ec2.describe_vpcs()["Vpcs"])
    with pytest.raises(ec2.exceptions.ClientError) as e:
        ec2.create_vpc(CidrBlock="10.44.0.0/16",
                       TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": key, "Value": "x"}]}])
    assert e.value.response["Error"]["Code"] == "InvalidTagKey.Malformed"
    assert "Tag keys starting with 'aws:' are reserved for internal use" in e.value.response["Error"]["Message"]
    assert len(ec2.describe_vpcs()["Vpcs"]) == vpcs_before
    vpc = ec2.create_vpc(CidrBlock="10.44.0.0/16")["Vpc"]["VpcId"]
    with pytest.raises(ec2.exceptions.ClientError) as e:
        ec2.create_tags(Resources=[vpc], Tags=[{"Key": key, "Value": "x"}])
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0].get("Tags", []) == []
    with pytest.raises(elb.exceptions.ClientError) as e:
        elb.create_target_group(Name="reserved-tag", VpcId=vpc, Port=80, Protocol="HTTP",
                                Tags=[{"Key": key, "Value": "x"}])
    assert e.value.response["Error"]["Code"] == "ValidationError"
    assert e.value.response["Error"]["Message"] == f"Tag key '{key}' cannot start with 'aws:'"
    with pytest.raises(elb.exceptions.TargetGroupNotFoundException):
        elb.describe_target_groups(Names=["reserved-tag"])
    with pytest.raises(ecs.exceptions.ClientError) as e:
        ecs.create_cluster(clusterName="reserved-tag", tags=[{"key": "AWS:cloudformation:x", "value": "x"}])
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    assert ecs.describe_clusters(clusters=["reserved-tag"])["clusters"] == []


def test_a_template_naming_an_aws_tag_fails_like_on_aws(portico):
    cfn = portico.client("cloudformation")
    cfn.create_stack(StackName="cfntags-reserved", TemplateBody=RESERVED_IN_TEMPLATE)
    assert settled(cfn, "cfntags-reserved") == "ROLLBACK_COMPLETE"
    ev = cfn.describe_stack_events(StackName="cfntags-reserved")["StackEvents"]
    [failed] = [e for e in ev if e["LogicalResourceId"] == "Vpc" and e["ResourceStatus"] == "CREATE_FAILED"]
    assert "aws:mine" in failed["ResourceStatusReason"]
    assert "reserved for internal use" in failed["ResourceStatusReason"]


def test_clients_may_not_remove_cloudformations_tags(portico, stack):
    ec2, ecs = portico.client("ec2"), portico.client("ecs")
    _, _, res = stack
    key = "aws:cloudformation:stack-name"
    with pytest.raises(ec2.exceptions.ClientError) as e:
        ec2.delete_tags(Resources=[res["Sg"]], Tags=[{"Key": key}])
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"
    # DeleteTags without tags removes the user's tags only.
    ec2.create_tags(Resources=[res["Sg"]], Tags=[{"Key": "extra", "Value": "1"}])
    ec2.delete_tags(Resources=[res["Sg"]])
    [sg] = ec2.describe_security_groups(GroupIds=[res["Sg"]])["SecurityGroups"]
    assert as_dict(sg["Tags"]) == {k: v for k, v in expected(stack, "Sg").items() if k.startswith("aws:")}
    arn = ecs.describe_clusters(clusters=[res["Cluster"]])["clusters"][0]["clusterArn"]
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.untag_resource(resourceArn=arn, tagKeys=[key])
    assert key in as_dict(ecs.list_tags_for_resource(resourceArn=arn)["tags"], "key", "value")
