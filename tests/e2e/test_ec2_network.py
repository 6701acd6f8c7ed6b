"""EC2 networking end to end: the tutorial's network built by hand with boto3 and the AWS CLI,
described back with filters, torn down in the right order, and the wrong order refused with
DependencyViolation without changing anything."""

import botocore.exceptions
import pytest

from conftest import wait_until


def err(fn, *a, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fn(*a, **kw)
    return e.value.response["Error"]


def tags(name):
    return [{"Key": "Name", "Value": name}]


def spec(rt, name, extra=()):
    return [{"ResourceType": rt, "Tags": tags(name) + list(extra)}]


def test_default_vpc_zones_regions(portico):
    ec2 = portico.client("ec2")
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    assert len(vpcs) == 1
    dv = vpcs[0]
    assert dv["CidrBlock"] == "172.31.0.0/16" and dv["IsDefault"] and dv["State"] == "available"
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [dv["VpcId"]]},
                                            {"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    assert sorted(s["AvailabilityZone"] for s in subnets) == ["us-east-1a", "us-east-1b", "us-east-1c"]
    # 4096 addresses less AWS's five reserved, less any interface other tests put there.
    assert all(s["MapPublicIpOnLaunch"] and 4000 < s["AvailableIpAddressCount"] <= 4091 for s in subnets)
    sgs = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [dv["VpcId"]]},
                                                {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]
    assert len(sgs) == 1
    assert sgs[0]["IpPermissionsEgress"][0]["IpProtocol"] == "-1"
    assert sgs[0]["IpPermissions"][0]["UserIdGroupPairs"][0]["GroupId"] == sgs[0]["GroupId"]
    igws = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [dv["VpcId"]]}])
    assert len(igws["InternetGateways"]) == 1
    attrs = ec2.describe_account_attributes(AttributeNames=["default-vpc"])["AccountAttributes"]
    assert attrs[0]["AttributeValues"][0]["AttributeValue"] == dv["VpcId"]

    azs = portico.aws("ec2", "describe-availability-zones")["AvailabilityZones"]
    assert [(z["ZoneName"], z["ZoneId"], z["State"]) for z in azs] == [
        ("us-east-1a", "use1-az1", "available"), ("us-east-1b", "use1-az2", "available"),
        ("us-east-1c", "use1-az3", "available")]
    azs = portico.client("ec2", region="eu-west-1").describe_availability_zones()["AvailabilityZones"]
    assert azs[0]["ZoneName"] == "eu-west-1a" and azs[0]["ZoneId"] == "euw1-az1"
    regions = ec2.describe_regions(RegionNames=["us-east-1", "eu-west-1"])["Regions"]
    assert {r["RegionName"] for r in regions} == {"us-east-1", "eu-west-1"}
    assert regions[0]["Endpoint"].startswith("ec2.")


def test_bad_input_changes_nothing(portico, unique):
    ec2 = portico.client("ec2")
    before = len(ec2.describe_vpcs()["Vpcs"])
    e = err(ec2.create_vpc, CidrBlock="10.0.0.0/8")
    assert e["Code"] == "InvalidVpc.Range" and e["Message"] == "The CIDR '10.0.0.0/8' is invalid."
    e = err(ec2.create_vpc, CidrBlock="10.0.0.1/33")
    assert e["Code"] == "InvalidParameterValue"
    assert len(ec2.describe_vpcs()["Vpcs"]) == before
    e = err(ec2.describe_vpcs, VpcIds=["vpc-0123456789abcdef0"])
    assert e == {"Code": "InvalidVpcID.NotFound", "Message": "The vpc ID 'vpc-0123456789abcdef0' does not exist"}
    e = err(ec2.describe_vpcs, VpcIds=["my-vpc"])
    assert e == {"Code": "InvalidVpcID.Malformed", "Message": 'Invalid id: "my-vpc" (expecting "vpc-...")'}
    e = err(ec2.describe_subnets, SubnetIds=["subnet-0123456789abcdef0"])
    assert e["Code"] == "InvalidSubnetID.NotFound"
    e = err(ec2.describe_security_groups, GroupIds=["sg-0123456789abcdef0"])
    assert e["Code"] == "InvalidGroup.NotFound"
    e = err(ec2.describe_vpcs, Filters=[{"Name": "no-such-filter", "Values": ["x"]}])
    assert e["Code"] == "InvalidParameterValue"

    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24", AvailabilityZone="us-east-1a")
    e = err(ec2.create_subnet, VpcId=vpc, CidrBlock="10.9.1.128/25")
    assert e == {"Code": "InvalidSubnet.Conflict", "Message": "The CIDR '10.9.1.128/25' conflicts with another subnet"}
    e = err(ec2.create_subnet, VpcId=vpc, CidrBlock="10.10.0.0/24")
    assert e["Code"] == "InvalidSubnet.Range"
    e = err(ec2.create_subnet, VpcId=vpc, CidrBlock="10.9.2.0/24", AvailabilityZone="us-east-1z")
    assert e["Code"] == "InvalidParameterValue"
    assert len(ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]) == 1

    g = ec2.create_security_group(GroupName=f"g-{unique}", Description="d", VpcId=vpc)["GroupId"]
    e = err(ec2.create_security_group, GroupName=f"g-{unique}", Description="d", VpcId=vpc)
    assert e["Code"] == "InvalidGroup.Duplicate"
    perm = {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    ec2.authorize_security_group_ingress(GroupId=g, IpPermissions=[perm])
    # A batch with one duplicate adds nothing.
    e = err(ec2.authorize_security_group_ingress, GroupId=g, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}, perm])
    assert e["Code"] == "InvalidPermission.Duplicate"
    assert "already exists" in e["Message"]
    for bad, code, text in (
            ({"IpProtocol": "tcp", "FromPort": 90, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
             "InvalidParameterValue", "90-80"),
            ({"IpProtocol": "bogus", "FromPort": 1, "ToPort": 2, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
             "InvalidParameterValue", "Invalid value 'bogus' for IP protocol"),
            ({"IpProtocol": "tcp", "FromPort": 1, "ToPort": 70000, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
             "InvalidParameterValue", "70000"),
            ({"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2, "IpRanges": [{"CidrIp": "10.0.0.0/99"}]},
             "InvalidParameterValue", "10.0.0.0/99"),
            ({"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2, "UserIdGroupPairs": [{"GroupId": "sg-0123456789abcdef0"}]},
             "InvalidGroup.NotFound", "The security group 'sg-0123456789abcdef0' does not exist")):
        e = err(ec2.authorize_security_group_ingress, GroupId=g, IpPermissions=[bad])
        assert e["Code"] == code and text in e["Message"], (bad, e)
    got = ec2.describe_security_groups(GroupIds=[g])["SecurityGroups"][0]["IpPermissions"]
    assert [(p["IpProtocol"], p["FromPort"]) for p in got] == [("tcp", 80)]
    e = err(ec2.revoke_security_group_ingress, GroupId=g, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    assert e["Code"] == "InvalidPermission.NotFound"
    ec2.revoke_security_group_ingress(GroupId=g, IpPermissions=[perm])
    assert ec2.describe_security_groups(GroupIds=[g])["SecurityGroups"][0]["IpPermissions"] == []
    other = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    foreign = ec2.create_security_group(GroupName=f"f-{unique}", Description="d", VpcId=other)["GroupId"]
    e = err(ec2.authorize_security_group_ingress, GroupId=g, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2, "UserIdGroupPairs": [{"GroupId": foreign}]}])
    assert e == {"Code": "InvalidGroup.NotFound", "Message": "You have specified two resources that belong to different networks."}
    e = err(ec2.create_vpc, CidrBlock="10.0.0.0/16", DryRun=True)
    assert e["Code"] == "DryRunOperation"


def build_network(portico, ec2, unique):
    """The tutorial's network: VPC, 2 public + 2 private subnets in 2 AZs, IGW, 2 NATs with EIPs,
    route tables, two security groups that reference each other."""
    n = {}
    n["vpc"] = ec2.create_vpc(CidrBlock="10.0.0.0/16",
                              TagSpecifications=spec("vpc", f"tut-{unique}", [{"Key": "run", "Value": unique}]))["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=n["vpc"], EnableDnsHostnames={"Value": True})
    assert ec2.describe_vpc_attribute(VpcId=n["vpc"], Attribute="enableDnsHostnames")["EnableDnsHostnames"]["Value"]
    # Some resources through the AWS CLI, the rest through boto3.
    n["pub"], n["priv"] = [], []
    for i, az in enumerate(["us-east-1a", "us-east-1b"]):
        if i == 0:
            out = portico.aws("ec2", "create-subnet", "--vpc-id", n["vpc"], "--cidr-block", f"10.0.{i}.0/24",
                              "--availability-zone", az, "--tag-specifications",
                              f"ResourceType=subnet,Tags=[{{Key=Name,Value=public-{i}}},{{Key=tier,Value=public}},{{Key=run,Value={unique}}}]")
        else:
            out = ec2.create_subnet(VpcId=n["vpc"], CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=az,
                                    TagSpecifications=spec("subnet", f"public-{i}", [{"Key": "tier", "Value": "public"}]))
        n["pub"].append(out["Subnet"]["SubnetId"])
        ec2.modify_subnet_attribute(SubnetId=n["pub"][-1], MapPublicIpOnLaunch={"Value": True})
        s = ec2.create_subnet(VpcId=n["vpc"], CidrBlock=f"10.0.{i + 2}.0/24", AvailabilityZone=az,
                              TagSpecifications=spec("subnet", f"private-{i}", [{"Key": "tier", "Value": "private"}]))
        n["priv"].append(s["Subnet"]["SubnetId"])
    n["igw"] = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=n["igw"], VpcId=n["vpc"])
    n["pub_rtb"] = ec2.create_route_table(VpcId=n["vpc"])["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=n["pub_rtb"], DestinationCidrBlock="0.0.0.0/0", GatewayId=n["igw"])
    n["assocs"] = [ec2.associate_route_table(RouteTableId=n["pub_rtb"], SubnetId=s)["AssociationId"] for s in n["pub"]]
    n["eips"], n["nats"], n["priv_rtbs"] = [], [], []
    for i in range(2):
        eip = ec2.allocate_address(Domain="vpc")
        n["eips"].append(eip["AllocationId"])
        nat = ec2.create_nat_gateway(SubnetId=n["pub"][i], AllocationId=eip["AllocationId"],
                                     TagSpecifications=spec("natgateway", f"nat-{i}"))["NatGateway"]
        assert nat["State"] == "pending"
        n["nats"].append(nat["NatGatewayId"])
        rtb = ec2.create_route_table(VpcId=n["vpc"])["RouteTable"]["RouteTableId"]
        n["priv_rtbs"].append(rtb)
        ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat["NatGatewayId"])
        n["assocs"].append(ec2.associate_route_table(RouteTableId=rtb, SubnetId=n["priv"][i])["AssociationId"])
    n["lb_sg"] = ec2.create_security_group(GroupName=f"lb-{unique}", Description="load balancer", VpcId=n["vpc"])["GroupId"]
    n["svc_sg"] = ec2.create_security_group(GroupName=f"svc-{unique}", Description="service", VpcId=n["vpc"])["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=n["lb_sg"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.0.0.0/16", "Description": "vpc"}]}])
    ec2.authorize_security_group_ingress(GroupId=n["svc_sg"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "UserIdGroupPairs": [{"GroupId": n["lb_sg"]}]}])
    ec2.authorize_security_group_egress(GroupId=n["lb_sg"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "UserIdGroupPairs": [{"GroupId": n["svc_sg"]}]}])
    return n


def test_tutorial_network(portico, unique):
    ec2 = portico.client("ec2")
    n = build_network(portico, ec2, unique)
    vpc = n["vpc"]

    # Describe back with filters, through both clients.
    got = ec2.describe_vpcs(Filters=[{"Name": "tag:run", "Values": [unique]}])["Vpcs"]
    assert [v["VpcId"] for v in got] == [vpc]
    assert got[0]["Tags"] and got[0]["CidrBlockAssociationSet"][0]["CidrBlock"] == "10.0.0.0/16"
    pub = portico.aws("ec2", "describe-subnets", "--filters", f"Name=vpc-id,Values={vpc}",
                      "Name=tag:tier,Values=public")["Subnets"]
    assert sorted(s["SubnetId"] for s in pub) == sorted(n["pub"])
    assert all(s["MapPublicIpOnLaunch"] and s["AvailableIpAddressCount"] == 250 for s in pub)  # one NAT ENI each
    priv = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "tag:Name", "Values": ["private-*"]}])["Subnets"]
    assert sorted(s["CidrBlock"] for s in priv) == ["10.0.2.0/24", "10.0.3.0/24"]
    assert {s["AvailabilityZone"] for s in priv} == {"us-east-1a", "us-east-1b"}

    wait_until(lambda: all(x["State"] == "available" for x in
                           ec2.describe_nat_gateways(NatGatewayIds=n["nats"])["NatGateways"]), what="NATs available")
    nats = ec2.describe_nat_gateways(Filter=[{"Name": "vpc-id", "Values": [vpc]}])["NatGateways"]
    assert sorted(x["NatGatewayId"] for x in nats) == sorted(n["nats"])
    for x in nats:
        a = x["NatGatewayAddresses"][0]
        assert a["AllocationId"] in n["eips"] and a["PrivateIp"].startswith("10.0.")
    addrs = ec2.describe_addresses(AllocationIds=n["eips"])["Addresses"]
    assert all(a.get("AssociationId") and a["NetworkInterfaceId"].startswith("eni-") for a in addrs)
    enis = ec2.describe_network_interfaces(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["NetworkInterfaces"]
    assert sorted(e["InterfaceType"] for e in enis) == ["nat_gateway", "nat_gateway"]
    assert {e["PrivateIpAddress"] for e in enis} == {"10.0.0.4", "10.0.1.4"}

    rtbs = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"]
    assert len(rtbs) == 4  # main + public + 2 private
    main = [r for r in rtbs if any(a.get("Main") for a in r["Associations"])]
    assert len(main) == 1 and main[0]["Routes"] == [
        {"DestinationCidrBlock": "10.0.0.0/16", "GatewayId": "local", "Origin": "CreateRouteTable", "State": "active"}]
    by_subnet = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [n["priv"][0]]}])["RouteTables"]
    assert [r["RouteTableId"] for r in by_subnet] == [n["priv_rtbs"][0]]
    assert by_subnet[0]["Routes"][1]["NatGatewayId"] == n["nats"][0]
    by_igw = ec2.describe_route_tables(Filters=[{"Name": "route.gateway-id", "Values": [n["igw"]]}])["RouteTables"]
    assert [r["RouteTableId"] for r in by_igw] == [n["pub_rtb"]]

    sgs = ec2.describe_security_groups(Filters=[{"Name": "ip-permission.group-id", "Values": [n["lb_sg"]]}])["SecurityGroups"]
    assert [g["GroupId"] for g in sgs] == [n["svc_sg"]]
    svc = sgs[0]["IpPermissions"][0]
    assert (svc["IpProtocol"], svc["FromPort"], svc["ToPort"]) == ("tcp", 8080, 8080)
    lb = ec2.describe_security_groups(GroupIds=[n["lb_sg"]])["SecurityGroups"][0]
    assert lb["IpPermissions"][0]["IpRanges"] == [{"CidrIp": "10.0.0.0/16", "Description": "vpc"}]
    assert {p["IpProtocol"] for p in lb["IpPermissionsEgress"]} == {"-1", "tcp"}
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [n["svc_sg"]]}])["SecurityGroupRules"]
    assert len(rules) == 2 and all(r["SecurityGroupRuleId"].startswith("sgr-") for r in rules)
    t = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [vpc]}])["Tags"]
    assert {x["Key"] for x in t} == {"Name", "run"} and t[0]["ResourceType"] == "vpc"

    # Wrong order: every step refused with DependencyViolation, nothing changes.
    def snapshot():
        return (ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"],
                ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"],
                ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"],
                ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"],
                ec2.describe_internet_gateways(InternetGatewayIds=[n["igw"]])["InternetGateways"])
    before = snapshot()
    e = err(ec2.delete_vpc, VpcId=vpc)
    assert e == {"Code": "DependencyViolation", "Message": f"The vpc '{vpc}' has dependencies and cannot be deleted."}
    e = err(ec2.delete_subnet, SubnetId=n["pub"][0])
    assert e == {"Code": "DependencyViolation", "Message": f"The subnet '{n['pub'][0]}' has dependencies and cannot be deleted."}
    e = err(ec2.delete_security_group, GroupId=n["lb_sg"])
    assert e == {"Code": "DependencyViolation", "Message": f"resource {n['lb_sg']} has a dependent object"}
    e = err(ec2.delete_internet_gateway, InternetGatewayId=n["igw"])
    assert e["Code"] == "DependencyViolation"
    e = err(ec2.detach_internet_gateway, InternetGatewayId=n["igw"], VpcId=vpc)
    assert e["Code"] == "DependencyViolation" and "mapped public address" in e["Message"]
    e = err(ec2.delete_route_table, RouteTableId=n["pub_rtb"])
    assert e["Code"] == "DependencyViolation"
    e = err(ec2.release_address, AllocationId=n["eips"][0])
    assert e["Code"] == "InvalidIPAddress.InUse"
    assert snapshot() == before

    # Right order.
    for nat in n["nats"]:
        ec2.delete_nat_gateway(NatGatewayId=nat)
    wait_until(lambda: all(x["State"] == "deleted" for x in
                           ec2.describe_nat_gateways(NatGatewayIds=n["nats"])["NatGateways"]), what="NATs deleted")
    blackholes = ec2.describe_route_tables(Filters=[{"Name": "route.state", "Values": ["blackhole"]},
                                                    {"Name": "vpc-id", "Values": [vpc]}])["RouteTables"]
    assert sorted(r["RouteTableId"] for r in blackholes) == sorted(n["priv_rtbs"])
    for a in n["eips"]:
        ec2.release_address(AllocationId=a)
    for a in n["assocs"]:
        ec2.disassociate_route_table(AssociationId=a)
    for r in [n["pub_rtb"], *n["priv_rtbs"]]:
        ec2.delete_route_table(RouteTableId=r)
    ec2.revoke_security_group_egress(GroupId=n["lb_sg"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "UserIdGroupPairs": [{"GroupId": n["svc_sg"]}]}])
    ec2.delete_security_group(GroupId=n["svc_sg"])
    ec2.delete_security_group(GroupId=n["lb_sg"])
    for s in n["pub"] + n["priv"]:
        ec2.delete_subnet(SubnetId=s)
    ec2.detach_internet_gateway(InternetGatewayId=n["igw"], VpcId=vpc)
    ec2.delete_internet_gateway(InternetGatewayId=n["igw"])
    portico.aws("ec2", "delete-vpc", "--vpc-id", vpc)
    assert err(ec2.describe_vpcs, VpcIds=[vpc])["Code"] == "InvalidVpcID.NotFound"
    assert ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"] == []
    assert ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"] == []


def test_tags_and_pagination(portico, unique):
    ec2 = portico.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    for i in range(7):
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24")
    pages = list(ec2.get_paginator("describe_subnets").paginate(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}], PaginationConfig={"PageSize": 5}))
    assert [len(p["Subnets"]) for p in pages] == [5, 2]
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "a", "Value": "3"}])
    got = ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["Tags"]
    assert sorted((t["Key"], t["Value"]) for t in got) == [("a", "3"), ("b", "2")]
    ec2.delete_tags(Resources=[vpc], Tags=[{"Key": "a"}])
    assert ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["Tags"] == [{"Key": "b", "Value": "2"}]
    e = err(ec2.create_vpc, CidrBlock="10.21.0.0/16", TagSpecifications=spec("subnet", "x"))
    assert e["Code"] == "InvalidParameterValue" and "taggable resource type" in e["Message"]
    e = err(ec2.create_tags, Resources=[vpc], Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    assert e["Code"] == "TagLimitExceeded"
    assert len(ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["Tags"]) == 1
    e = err(ec2.create_tags, Resources=["vpc-0123456789abcdef0"], Tags=[{"Key": "a", "Value": "1"}])
    assert e["Code"] == "InvalidVpcID.NotFound"
    out = portico.aws("ec2", "describe-tags", "--filters", f"Name=resource-id,Values={vpc}")
    assert out["Tags"] == [{"Key": "b", "ResourceId": vpc, "ResourceType": "vpc", "Value": "2"}]
    # ENIs made by other services (here CreateNetworkInterface) show up and hold their subnet.
    subnet = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"][0]["SubnetId"]
    eni = ec2.create_network_interface(SubnetId=subnet, Description="mine")["NetworkInterface"]
    assert eni["PrivateIpAddress"].endswith(".4") and eni["Status"] == "available"
    assert err(ec2.delete_subnet, SubnetId=subnet)["Code"] == "DependencyViolation"
    got = ec2.describe_network_interfaces(Filters=[{"Name": "subnet-id", "Values": [subnet]}])["NetworkInterfaces"]
    assert [g["NetworkInterfaceId"] for g in got] == [eni["NetworkInterfaceId"]]
    assert got[0]["Groups"][0]["GroupName"] == "default"
    ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"])
    ec2.delete_subnet(SubnetId=subnet)


def test_network_acls_and_main_route_table(portico):
    ec2 = portico.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.30.1.0/24")["Subnet"]["SubnetId"]
    default = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                                 {"Name": "default", "Values": ["true"]}])["NetworkAcls"]
    assert len(default) == 1 and default[0]["IsDefault"]
    assert [(e["RuleNumber"], e["RuleAction"], e["Egress"]) for e in default[0]["Entries"]] == [
        (100, "allow", True), (32767, "deny", True), (100, "allow", False), (32767, "deny", False)]
    assoc = default[0]["Associations"][0]
    assert assoc["SubnetId"] == subnet

    acl = ec2.create_network_acl(VpcId=vpc)["NetworkAcl"]["NetworkAclId"]
    ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=110, Protocol="tcp", RuleAction="allow",
                                 Egress=False, CidrBlock="0.0.0.0/0", PortRange={"From": 443, "To": 443})
    e = pytest.raises(botocore.exceptions.ClientError, ec2.create_network_acl_entry, NetworkAclId=acl, RuleNumber=110,
                      Protocol="tcp", RuleAction="deny", Egress=False, CidrBlock="0.0.0.0/0", PortRange={"From": 1, "To": 2})
    assert e.value.response["Error"]["Code"] == "NetworkAclEntryAlreadyExists"
    new = ec2.replace_network_acl_association(AssociationId=assoc["NetworkAclAssociationId"], NetworkAclId=acl)["NewAssociationId"]
    got = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])["NetworkAcls"]
    assert [a["NetworkAclId"] for a in got] == [acl]
    e110 = [x for x in got[0]["Entries"] if x["RuleNumber"] == 110]
    assert e110[0]["PortRange"] == {"From": 443, "To": 443} and e110[0]["Protocol"] == "6"
    assert err(ec2.delete_network_acl, NetworkAclId=acl)["Code"] == "DependencyViolation"
    assert err(ec2.delete_network_acl, NetworkAclId=default[0]["NetworkAclId"])["Code"] == "InvalidParameterValue"

    # Make a custom route table the main one; the old main table is then an ordinary table.
    old_main = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                                  {"Name": "association.main", "Values": ["true"]}])["RouteTables"][0]
    rtb = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.replace_route_table_association(AssociationId=old_main["Associations"][0]["RouteTableAssociationId"], RouteTableId=rtb)
    mains = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                               {"Name": "association.main", "Values": ["true"]}])["RouteTables"]
    assert [r["RouteTableId"] for r in mains] == [rtb]
    ec2.delete_route_table(RouteTableId=old_main["RouteTableId"])

    ec2.replace_network_acl_association(AssociationId=new, NetworkAclId=default[0]["NetworkAclId"])
    ec2.delete_network_acl(NetworkAclId=acl)
    ec2.delete_subnet(SubnetId=subnet)
    ec2.delete_vpc(VpcId=vpc)
    assert ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["NetworkAcls"] == []


def test_unsupported_ipv6_is_refused(portico):
    ec2 = portico.client("ec2")
    before = len(ec2.describe_vpcs()["Vpcs"])
    e = err(ec2.create_vpc, CidrBlock="10.40.0.0/16", AmazonProvidedIpv6CidrBlock=True)
    assert e["Code"] == "UnsupportedOperation"
    assert len(ec2.describe_vpcs()["Vpcs"]) == before
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16", InstanceTenancy="dedicated")["Vpc"]
    assert vpc["InstanceTenancy"] == "dedicated"
    ec2.delete_vpc(VpcId=vpc["VpcId"])


def test_network_survives_kill_9(fresh_portico):
    p = fresh_portico.start()
    ec2 = p.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.50.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.50.1.0/24")["Subnet"]["SubnetId"]
    eni = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]
    default_vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    p.kill9()
    p.start()
    ec2 = p.client("ec2")
    assert ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["CidrBlock"] == "10.50.0.0/16"
    got = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni["NetworkInterfaceId"]])["NetworkInterfaces"]
    assert got[0]["PrivateIpAddress"] == eni["PrivateIpAddress"]
    assert ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"] == default_vpcs
    # The next address after a restart is the next free one, not a reused one.
    nxt = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["PrivateIpAddress"]
    assert nxt != eni["PrivateIpAddress"]


def test_default_vpc_can_be_deleted_and_recreated(portico):
    ec2 = portico.client("ec2", region="ap-south-1")  # a region of its own: others use us-east-1's
    dv = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    assert err(ec2.create_default_vpc)["Code"] == "DefaultVpcAlreadyExists"
    for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [dv]}])["Subnets"]:
        ec2.delete_subnet(SubnetId=s["SubnetId"])
    for g in ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [dv]}])["InternetGateways"]:
        ec2.detach_internet_gateway(InternetGatewayId=g["InternetGatewayId"], VpcId=dv)
        ec2.delete_internet_gateway(InternetGatewayId=g["InternetGatewayId"])
    ec2.delete_vpc(VpcId=dv)
    assert ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"] == []  # not brought back
    attrs = ec2.describe_account_attributes(AttributeNames=["default-vpc"])["AccountAttributes"]
    assert attrs[0]["AttributeValues"][0]["AttributeValue"] == "none"
    new = ec2.create_default_vpc()["Vpc"]
    assert new["IsDefault"] and new["CidrBlock"] == "172.31.0.0/16" and new["VpcId"] != dv
    assert len(ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]) == 3


def test_elastic_ip_association(portico):
    ec2 = portico.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.60.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.60.0.0/24")["Subnet"]["SubnetId"]
    eni = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    eip = ec2.allocate_address(Domain="vpc")
    assert err(ec2.associate_address, AllocationId=eip["AllocationId"], NetworkInterfaceId=eni)["Code"] == "Gateway.NotAttached"
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    assoc = ec2.associate_address(AllocationId=eip["AllocationId"], NetworkInterfaceId=eni)["AssociationId"]
    got = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]
    assert got["Association"]["PublicIp"] == eip["PublicIp"]
    assert ec2.describe_addresses(PublicIps=[eip["PublicIp"]])["Addresses"][0]["NetworkInterfaceId"] == eni
    assert err(ec2.detach_internet_gateway, InternetGatewayId=igw, VpcId=vpc)["Code"] == "DependencyViolation"
    assert err(ec2.release_address, AllocationId=eip["AllocationId"])["Code"] == "InvalidIPAddress.InUse"
    ec2.disassociate_address(AssociationId=assoc)
    assert "Association" not in ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]
    ec2.release_address(AllocationId=eip["AllocationId"])
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    ec2.delete_internet_gateway(InternetGatewayId=igw)
    ec2.delete_network_interface(NetworkInterfaceId=eni)
    ec2.delete_subnet(SubnetId=subnet)
    ec2.delete_vpc(VpcId=vpc)


def test_modify_rules_and_descriptions(portico, unique):
    ec2 = portico.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.70.0.0/16")["Vpc"]["VpcId"]
    g = ec2.create_security_group(GroupName=f"m-{unique}", Description="d", VpcId=vpc)["GroupId"]
    rule = ec2.authorize_security_group_ingress(GroupId=g, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])["SecurityGroupRules"][0]
    ec2.update_security_group_rule_descriptions_ingress(GroupId=g, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "intranet"}]}])
    got = ec2.describe_security_group_rules(SecurityGroupRuleIds=[rule["SecurityGroupRuleId"]])["SecurityGroupRules"][0]
    assert got["Description"] == "intranet"
    ec2.modify_security_group_rules(GroupId=g, SecurityGroupRules=[{"SecurityGroupRuleId": rule["SecurityGroupRuleId"],
        "SecurityGroupRule": {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIpv4": "10.1.0.0/16"}}])
    perms = ec2.describe_security_groups(GroupIds=[g])["SecurityGroups"][0]["IpPermissions"]
    assert [(p["FromPort"], p["IpRanges"]) for p in perms] == [(443, [{"CidrIp": "10.1.0.0/16"}])]
    got = ec2.describe_security_group_rules(SecurityGroupRuleIds=[rule["SecurityGroupRuleId"]])["SecurityGroupRules"][0]
    assert got["FromPort"] == 443  # same rule id, new contents
    e = err(ec2.modify_security_group_rules, GroupId=g, SecurityGroupRules=[{"SecurityGroupRuleId": "sgr-0123456789abcdef0",
            "SecurityGroupRule": {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1, "CidrIpv4": "10.0.0.0/8"}}])
    assert e["Code"] == "InvalidSecurityGroupRuleId.NotFound"
    ec2.delete_security_group(GroupId=g)
    ec2.delete_vpc(VpcId=vpc)
