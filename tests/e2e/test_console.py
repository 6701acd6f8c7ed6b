"""The web console in a real browser: headless Chromium driven through WebDriver (selenium) does
the tutorial's console steps 2-6 (VPC link, HTTP API, route ANY /{proxy+}, private integration
to the ALB listener through the VPC link, open the invoke URL and see the sample page), deletes
the API, and shows AWS's own error text for bad input without changing anything. Each page is
screenshotted into target/console-screenshots/ (not checked in).

Needs Debian's chromium and chromium-driver (scripts/install-browser.sh); skips only when
/usr/bin/chromium is absent."""

import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import botocore.config
import botocore.exceptions
import pytest
import requests

from conftest import ROOT, Portico, wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SHOTS = ROOT / "target" / "console-screenshots"
SAMPLE = "amazon/amazon-ecs-sample"
EXEC_ROLE = "arn:aws:iam::000000000000:role/ecsTaskExecutionRole"
TEMPLATE = ROOT / "templates" / "tutorial-cdk.yaml"
WAIT = 30

ASSETS = ROOT / "crates" / "portico" / "src" / "console" / "assets"


# ---------------------------------------------------------------- browser

@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is absent: run scripts/install-browser.sh (Debian's chromium and chromium-driver)")
    os.environ["SE_OFFLINE"] = "true"  # selenium-manager must never try to download a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="portico-console-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--no-first-run", f"--user-data-dir={profile}", "--window-size=1440,1000"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(WAIT)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


class Console:
    """The console page, driven the way a person would: by labels, buttons and links."""

    def __init__(self, driver, p):
        from selenium.webdriver.common.by import By
        from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
        from selenium.webdriver.support.ui import Select, WebDriverWait

        self.d, self.p, self.By, self.Select = driver, p, By, Select
        # Live pages re-render while we look at them: an element that went stale is looked up again.
        flaky = (NoSuchElementException, StaleElementReferenceException)
        self.WebDriverWait = lambda d, t, poll_frequency: WebDriverWait(d, t, poll_frequency=poll_frequency, ignored_exceptions=flaky)
        self.wait = lambda: self.WebDriverWait(driver, WAIT, poll_frequency=0.1)
        self.base = f"{p.endpoint}/_portico/console"

    def open(self, hash_path="/"):
        if self.d.current_url.startswith(self.base):
            self.d.execute_script("location.hash = arguments[0]", hash_path)
        else:
            self.d.get(f"{self.base}#{hash_path}")
        return self.settled()

    def settled(self):
        """Waits until the page for the current hash has rendered (the console marks it)."""
        self.wait().until(lambda d: d.execute_script(
            "const m = document.querySelector('#main'); const want = (location.hash.slice(1) || '/').split('?')[0];"
            "return m.dataset.rendered === want && m.getAttribute('aria-busy') === 'false'"))
        return self

    def el(self, css, timeout=WAIT):
        return self.WebDriverWait(self.d, timeout, poll_frequency=0.1).until(lambda d: next((e for e in d.find_elements(self.By.CSS_SELECTOR, css) if e.is_displayed()), None))

    def text(self, css):
        """The visible text of the first visible match (looked up afresh)."""
        return self.wait().until(lambda d: (self.el(css).text,))[0]

    def gone(self, css):
        self.wait().until(lambda d: not d.find_elements(self.By.CSS_SELECTOR, css))

    def type(self, css, text):
        e = self.el(css)
        e.clear()
        e.send_keys(text)

    def choose(self, css, value):
        """Selects an option by value once the option has been loaded."""
        self.wait().until(lambda d: d.find_elements(self.By.CSS_SELECTOR, f"{css} option[value='{value}']"))
        self.Select(self.el(css)).select_by_value(value)

    def choose_text(self, css, text):
        self.wait().until(lambda d: any(o.text == text for o in d.find_elements(self.By.CSS_SELECTOR, f"{css} option")))
        self.Select(self.el(css)).select_by_visible_text(text)

    def click(self, css):
        self.wait().until(lambda d: self.el(css).click() or True)

    def hash(self):
        return self.d.execute_script("return location.hash")

    def wait_hash(self, prefix):
        self.wait().until(lambda d: d.execute_script("return location.hash").startswith(prefix))
        return self.settled()

    def wait_hash_re(self, pattern):
        """Waits until the hash matches `pattern` (anchored); returns the match."""
        self.wait().until(lambda d: re.fullmatch(pattern, d.execute_script("return location.hash")))
        self.settled()
        return re.fullmatch(pattern, self.hash())

    def error(self, slot):
        """The error a form shows: (code, message)."""
        e = self.el(f"#{slot} .alert.error")
        return e.get_attribute("data-error-code"), e.find_element(self.By.CSS_SELECTOR, ".msg").text

    def shot(self, name):
        time.sleep(0.15)  # let a just-finished render paint
        self.d.save_screenshot(str(SHOTS / f"{name}.png"))
        assert self.a11y_problems() == [], name

    def a11y_problems(self):
        """Every control has a label; every clickable thing is a button or a link."""
        return self.d.execute_script("""
            const out = [];
            if (!document.querySelector('#main')) return out;  // not a console page
            for (const e of document.querySelectorAll('input, select, textarea')) {
              if (e.type === 'hidden') continue;
              if (!(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby')
                  && !e.closest('label')) out.push('unlabelled ' + e.tagName + '#' + e.id);
            }
            for (const e of document.querySelectorAll('[onclick], div[tabindex]:not([tabindex="-1"]), span[tabindex]:not([tabindex="-1"])')) out.push('clickable ' + e.tagName);
            for (const b of document.querySelectorAll('button, a[href]')) {
              if (!b.textContent.trim() && !b.getAttribute('aria-label')) out.push('nameless ' + b.tagName);
            }
            const walker = document.createTreeWalker(document.querySelector('#main'), NodeFilter.SHOW_TEXT);
            while (walker.nextNode()) {
              const t = walker.currentNode.textContent.trim();
              if (t === 'null' || t === 'undefined' || t === '[object Object]' || t === 'NaN') out.push('stray text ' + t);
            }
            return out;""")

    def js_errors(self):
        return [e["message"] for e in self.d.get_log("browser")
                if e["level"] == "SEVERE" and "Failed to load resource" not in e["message"]]


# ---------------------------------------------------------------- the stack (steps 1's result)

def sample_taskdef(ecs):
    return ecs.register_task_definition(
        family="PrivateIntegrationsStackTaskDef", requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
        cpu="256", memory="512", executionRoleArn=EXEC_ROLE,
        containerDefinitions=[{"name": "web", "image": SAMPLE, "essential": True,
                               "portMappings": [{"containerPort": 80, "protocol": "tcp"}],
                               "logConfiguration": {"logDriver": "awslogs", "options": {
                                   "awslogs-group": "/ecs/private-integrations-tutorial", "awslogs-region": "us-east-1",
                                   "awslogs-stream-prefix": "web", "awslogs-create-group": "true"}}}],
    )["taskDefinition"]


def stack_by_console(browser, p):
    """Step 1 as the tutorial does it, in the console: upload the tutorial's template, name the
    stack, acknowledge IAM, submit, and watch the events until CREATE_COMPLETE. None if
    CloudFormation is not in this build."""
    cfn = p.client("cloudformation")
    name = "http-api-private-integrations-tutorial"
    try:
        cfn.validate_template(TemplateBody=TEMPLATE.read_text())
    except botocore.exceptions.ClientError as e:
        if e.response["Error"]["Code"] in ("InvalidAction", "UnknownOperationException"):
            return None
        raise
    c = Console(browser, p)
    c.open("/cloudformation")
    c.click("#create-stack")
    c.wait_hash("#/cloudformation/create")
    c.el("#template-file").send_keys(str(TEMPLATE))
    c.wait().until(lambda d: "PrivateIntegrationsTutorial" in c.el("#template-body").get_attribute("value"))
    c.click("#template-next")
    c.type("#stack-name", name)
    c.click("#cap-CAPABILITY_IAM")
    c.shot("00-step1-create-stack")
    c.click("#stack-submit")
    c.wait_hash(f"#/cloudformation/stacks/{name}")
    c.el(".page-head .badge[data-status='CREATE_COMPLETE']", timeout=240)
    c.el(".timeline li")
    c.shot("00-step1-stack-events")
    res = cfn.describe_stack_resources(StackName=name)["StackResources"]
    by_type = {}
    for r in res:
        by_type.setdefault(r["ResourceType"], []).append(r)
    ec2, elb = p.client("ec2"), p.client("elbv2")
    vpc = by_type["AWS::EC2::VPC"][0]["PhysicalResourceId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
    private = [s["SubnetId"] for s in subnets
               if any(t["Key"] == "Name" and t["Value"].endswith(("PrivateSubnet1", "PrivateSubnet2"))
                      for t in s.get("Tags", []))]
    sgs = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]
    sg = next(g["GroupId"] for g in sgs if g.get("Description", "").endswith("Service/SecurityGroup"))
    lb = elb.describe_load_balancers()["LoadBalancers"][0]
    listener = elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"][0]
    svc = next(r for r in by_type["AWS::ECS::Service"])["PhysicalResourceId"]
    cluster = by_type["AWS::ECS::Cluster"][0]["PhysicalResourceId"]
    return {"how": "console", "vpc": vpc, "subnets": private, "sg": sg, "lb": lb, "listener": listener["ListenerArn"],
            "cluster": cluster, "service": svc.rsplit("/", 1)[-1]}


def stack_by_boto3(p):
    """The same resources the tutorial's stack makes, created with boto3 (while CloudFormation
    is not in this build): a VPC, two private subnets, the service security group, an internal
    ALB with an HTTP:80 listener, and a Fargate service of the sample app behind it."""
    ec2, elb, ecs = p.client("ec2"), p.client("elbv2"), p.client("ecs")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "PrivateIntegrationsStack/PrivateIntegrationsTutorialVPC"}]}])["Vpc"]["VpcId"]
    subnets = []
    for i, z in enumerate("ab"):
        subnets.append(ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i + 1}.0/24", AvailabilityZone=f"us-east-1{z}", TagSpecifications=[
            {"ResourceType": "subnet", "Tags": [{"Key": "Name", "Value": f"PrivateIntegrationsStack/PrivateIntegrationsTutorialVPC/PrivateSubnet{i + 1}"}]}])["Subnet"]["SubnetId"])
    sg = ec2.create_security_group(GroupName="private-integrations-tutorial-svc", VpcId=vpc,
                                   Description="PrivateIntegrationsStack/PrivateIntegrationsTutorialService/Service/SecurityGroup")["GroupId"]
    lb = elb.create_load_balancer(Name="http-Priva-tutorial", Subnets=subnets, SecurityGroups=[sg], Scheme="internal", Type="application")["LoadBalancers"][0]
    tg = elb.create_target_group(Name="http-Priva-tg", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    listener = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                                   DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])["Listeners"][0]["ListenerArn"]
    ecs.create_cluster(clusterName="PrivateIntegrationsStack-Cluster")
    td = sample_taskdef(ecs)
    ecs.create_service(cluster="PrivateIntegrationsStack-Cluster", serviceName="PrivateIntegrationsTutorialService",
                       taskDefinition=td["family"], desiredCount=1, launchType="FARGATE", healthCheckGracePeriodSeconds=60,
                       networkConfiguration={"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg]}},
                       loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 80}])
    return {"how": "boto3", "vpc": vpc, "subnets": subnets, "sg": sg, "lb": lb, "listener": listener,
            "cluster": "PrivateIntegrationsStack-Cluster", "service": "PrivateIntegrationsTutorialService"}


@pytest.fixture(scope="module")
def tutorial(browser):
    p = Portico(extra_args=["--time-scale", "0.02"]).start()
    try:
        stack = stack_by_console(browser, p) or stack_by_boto3(p)
        # The sample app answers behind the ALB before the browser goes looking for it.
        lb_host = stack["lb"]["DNSName"]
        wait_until(lambda: requests.get(p.endpoint + "/", headers={"Host": lb_host}, timeout=5).status_code == 200,
                   timeout=60, what="the sample app behind the load balancer")
        yield p, stack
    finally:
        p.stop()


def unvalidated(p, service):
    """A boto3 client that sends what it is given, so the API itself judges the input."""
    return p.client(service, parameter_validation=False)


def api_error(fn, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fn(**kw)
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


# ---------------------------------------------------------------- tests

def test_console_calls_only_operations_the_aws_models_have():
    """The console is written against the botocore models: every operation it calls exists, and
    every API Gateway call uses the model's method and URI."""
    import botocore.session

    js = (ASSETS / "aws.js").read_text() + (ASSETS / "pages.js").read_text()
    session = botocore.session.get_session()
    patterns = {"cloudformation": r'AWS\.cfn\("(\w+)"', "elbv2": r'AWS\.elb\("(\w+)"', "ec2": r'AWS\.ec2\("(\w+)"',
                "ecs": r'AWS\.ecs\("(\w+)"', "logs": r'AWS\.logs\("(\w+)"'}
    for service, pattern in patterns.items():
        used = set(re.findall(pattern, js))
        assert used, service
        assert used <= set(session.get_service_model(service).operation_names), (service, used)
    model = session.get_service_model("apigatewayv2")
    calls = re.findall(r'rest\("apigateway", "(\w+)", (?:`([^`]*)`|"([^"]*)").*?"(\w+)"\)', js)
    assert len(calls) == js.count('rest("apigateway", "') and len(calls) >= 15
    for method, tpath, qpath, op in calls:
        path = tpath or qpath
        http = model.operation_model(op).http
        path = re.sub(r"\$\{seg\(\w+\)\}", "{}", path.split("${t")[0])
        assert (method, path) == (http["method"], re.sub(r"\{\w+\}", "{}", http["requestUri"].split("?")[0])), op


def test_console_is_served_embedded_and_small(tutorial):
    p, _ = tutorial
    r = requests.get(f"{p.endpoint}/_portico/console", timeout=5)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "connect-src 'self'" in r.headers["content-security-policy"]
    total = len(r.content)
    for asset in ("console.css", "aws.js", "ui.js", "pages.js", "favicon.svg"):
        a = requests.get(f"{p.endpoint}/_portico/console/assets/{asset}", timeout=5)
        assert a.status_code == 200, asset
        total += len(a.content)
    assert total < 200 * 1024
    assert requests.get(f"{p.endpoint}/_portico/console/assets/nope.js", timeout=5).status_code == 404


def test_tutorial_steps_2_to_6_in_the_browser_then_delete_the_api(browser, tutorial):
    p, stack = tutorial
    c = Console(browser, p)
    apigw = p.client("apigatewayv2")

    c.open("/")
    c.el("a.card")
    c.shot("01-home")

    # Step 2: create a VPC link into the stack's VPC, private subnets and service security group.
    c.open("/apigateway/vpclinks")
    c.click("#create-vpclink")
    c.wait_hash("#/apigateway/vpclinks/create")
    c.type("#vpclink-name", "private-integrations-tutorial")
    c.choose("#vpclink-vpc", stack["vpc"])
    for s in stack["subnets"]:
        c.click(f"input[name=subnet][value='{s}']")
    c.click(f"input[name=sg][value='{stack['sg']}']")
    c.shot("02-vpclink-create")
    c.click("#vpclink-create-submit")
    link_id = c.wait_hash_re(r"#/apigateway/vpclinks/(?!create)([a-z0-9]{6,})").group(1)
    link = apigw.get_vpc_link(VpcLinkId=link_id)
    assert link["Name"] == "private-integrations-tutorial"
    assert sorted(link["SubnetIds"]) == sorted(stack["subnets"]) and link["SecurityGroupIds"] == [stack["sg"]]
    # The status on the page updates live until the link is available.
    c.el("#vpclink-status .badge[data-status='AVAILABLE']")
    c.shot("03-vpclink-available")

    # Step 3: create the HTTP API with a $default stage that deploys automatically.
    c.open("/apigateway")
    c.click("#create-api")
    c.wait_hash("#/apigateway/create")
    c.type("#api-name", "http-private-integrations-tutorial")
    c.choose("#api-ip", "ipv4")
    assert c.el("#api-stage-autodeploy").is_selected()
    c.shot("04-api-create")
    c.click("#api-create-submit")
    api_id = c.wait_hash_re(r"#/apigateway/apis/([a-z0-9]{10})").group(1)
    api = apigw.get_api(ApiId=api_id)
    assert api["Name"] == "http-private-integrations-tutorial" and api["ProtocolType"] == "HTTP"
    stages = apigw.get_stages(ApiId=api_id)["Items"]
    assert [(s["StageName"], s.get("AutoDeploy")) for s in stages] == [("$default", True)]

    # Step 4: the route ANY /{proxy+}.
    c.choose("#route-method", "ANY")
    c.type("#route-path", "/{proxy+}")
    c.click("#route-create-submit")
    c.el("[data-route-key='ANY /{proxy+}']")
    c.shot("05-routes")
    routes = apigw.get_routes(ApiId=api_id)["Items"]
    assert [r["RouteKey"] for r in routes] == ["ANY /{proxy+}"]

    # Step 5: a private integration to the ALB's HTTP 80 listener through the VPC link, attached
    # to the route.
    c.open(f"/apigateway/apis/{api_id}/integrations")
    c.choose_text("#int-route", "ANY /{proxy+}")
    c.choose("#int-type", "private")
    c.choose("#int-lb", stack["lb"]["LoadBalancerArn"])
    c.choose("#int-listener", stack["listener"])
    assert c.Select(c.el("#int-listener")).first_selected_option.text == "HTTP 80"
    c.choose("#int-vpclink", link_id)
    c.shot("06-integration-create")
    c.click("#int-create-submit")
    c.el("td .mono")  # the integrations table has a row
    ints = apigw.get_integrations(ApiId=api_id)["Items"]
    assert len(ints) == 1
    i = ints[0]
    assert (i["IntegrationType"], i["ConnectionType"], i["ConnectionId"], i["IntegrationUri"]) == \
        ("HTTP_PROXY", "VPC_LINK", link_id, stack["listener"])
    route = apigw.get_routes(ApiId=api_id)["Items"][0]
    assert route["Target"] == f"integrations/{i['IntegrationId']}"
    c.shot("07-integrations")

    # Step 6: open the invoke URL from the console's link and see the sample page.
    c.open(f"/apigateway/apis/{api_id}")
    link_el = c.el("#invoke-url")
    invoke = link_el.get_attribute("href")
    assert invoke == f"http://{api_id}.execute-api.localhost:{p.port}/"
    c.shot("08-api-details")
    console_tab = browser.current_window_handle
    link_el.click()
    c.wait().until(lambda d: len(d.window_handles) == 2)
    browser.switch_to.window([w for w in browser.window_handles if w != console_tab][0])

    def sample_page():
        if "Amazon ECS Sample App" not in browser.title:
            browser.refresh()  # the auto-deployed stage may take a moment to publish
            return False
        return True

    try:
        wait_until(sample_page, timeout=15, interval=0.5, what="the sample page at the invoke URL")
    except AssertionError as e:
        raise AssertionError(f"{e}; the browser shows {browser.current_url}: {browser.page_source[:400]!r}") from None
    assert browser.current_url == invoke
    assert "Congratulations" in browser.page_source
    c.shot("09-invoke-url-sample-page")
    browser.close()
    browser.switch_to.window(console_tab)

    # Step 7 (the API part): delete it from the console.
    c.open(f"/apigateway/apis/{api_id}")
    c.click("#delete-api")
    c.el("dialog #confirm-ok")
    c.shot("10-delete-api-confirm")
    c.click("dialog #confirm-ok")
    c.wait_hash("#/apigateway")
    c.wait().until(lambda d: c.hash() == "#/apigateway")
    assert api_id not in [a["ApiId"] for a in apigw.get_apis()["Items"]]
    c.settled()
    assert not browser.find_elements(c.By.CSS_SELECTOR, f"[data-api-id='{api_id}']")
    c.shot("11-apis-after-delete")
    assert c.js_errors() == []


def test_bad_input_shows_the_apis_own_error_and_changes_nothing(browser, tutorial):
    p, stack = tutorial
    c = Console(browser, p)
    apigw = p.client("apigatewayv2")
    raw = unvalidated(p, "apigatewayv2")

    # Empty API name.
    before = apigw.get_apis()["Items"]
    expected = api_error(raw.create_api, Name="", ProtocolType="HTTP", IpAddressType="ipv4")
    c.open("/apigateway/create")
    c.click("#api-create-submit")
    assert c.error("api-error") == expected
    # Focus lands on the message, for keyboard and screen reader users.
    assert "alert" in browser.switch_to.active_element.get_attribute("class")
    c.shot("12-error-empty-api-name")
    assert apigw.get_apis()["Items"] == before

    # A bad route key (a path segment mixing text and a variable).
    api_id = apigw.create_api(Name="console-bad-input", ProtocolType="HTTP")["ApiId"]
    expected = api_error(raw.create_route, ApiId=api_id, RouteKey="GET /pets/{id}.json")
    c.open(f"/apigateway/apis/{api_id}")
    c.choose("#route-method", "GET")
    c.type("#route-path", "/pets/{id}.json")
    c.click("#route-create-submit")
    assert c.error("route-error") == expected
    c.shot("13-error-bad-route-key")
    assert apigw.get_routes(ApiId=api_id)["Items"] == []

    # A private integration without a VPC link.
    expected = api_error(raw.create_integration, ApiId=api_id, IntegrationType="HTTP_PROXY", ConnectionType="VPC_LINK",
                         IntegrationMethod="ANY", IntegrationUri=stack["listener"], PayloadFormatVersion="1.0")
    c.open(f"/apigateway/apis/{api_id}/integrations")
    c.choose("#int-route", "")
    c.choose("#int-lb", stack["lb"]["LoadBalancerArn"])
    c.choose("#int-listener", stack["listener"])
    c.click("#int-create-submit")
    assert c.error("integration-error") == expected
    c.shot("14-error-missing-vpc-link")
    assert apigw.get_integrations(ApiId=api_id)["Items"] == []

    # A VPC link with no name and no subnets.
    links = apigw.get_vpc_links()["Items"]
    expected = api_error(raw.create_vpc_link, Name="", SubnetIds=[], SecurityGroupIds=[])
    c.open("/apigateway/vpclinks/create")
    c.click("#vpclink-create-submit")
    assert c.error("vpclink-error") == expected
    assert apigw.get_vpc_links()["Items"] == links
    apigw.delete_api(ApiId=api_id)


def test_invoke_url_link_through_an_http_integration(browser, tutorial):
    """The invoke-URL link path of Step 6 with an HTTP URI integration straight to the task (the
    same sample app, no VPC link): $default route, integration attached from the console."""
    p, stack = tutorial
    c = Console(browser, p)
    apigw, ecs = p.client("apigatewayv2"), p.client("ecs")
    arns = ecs.list_tasks(cluster=stack["cluster"], serviceName=stack["service"])["taskArns"]
    task = ecs.describe_tasks(cluster=stack["cluster"], tasks=arns)["tasks"][0]
    b = task["containers"][0]["networkBindings"][0]
    backend = f"http://{b['bindIP']}:{b['hostPort']}"
    api_id = apigw.create_api(Name="console-http-integration", ProtocolType="HTTP")["ApiId"]
    apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    try:
        c.open(f"/apigateway/apis/{api_id}")
        c.type("#route-path", "$default")
        c.click("#route-create-submit")
        c.el("[data-route-key='$default']")
        c.open(f"/apigateway/apis/{api_id}/integrations")
        c.choose_text("#int-route", "$default")
        c.choose("#int-type", "http")
        c.type("#int-uri", backend)
        c.click("#int-create-submit")
        c.wait().until(lambda d: apigw.get_routes(ApiId=api_id)["Items"][0].get("Target"))
        c.open(f"/apigateway/apis/{api_id}")
        console_tab = browser.current_window_handle
        c.click("#invoke-url")
        c.wait().until(lambda d: len(d.window_handles) == 2)
        browser.switch_to.window([w for w in browser.window_handles if w != console_tab][0])

        def sample_page():
            if "Amazon ECS Sample App" in browser.title:
                return True
            browser.refresh()
            return False

        wait_until(sample_page, timeout=15, interval=0.5, what="the sample page through the HTTP integration")
        assert browser.current_url == f"http://{api_id}.execute-api.localhost:{p.port}/"
        c.shot("15-invoke-url-http-integration")
        browser.close()
        browser.switch_to.window(console_tab)
    finally:
        apigw.delete_api(ApiId=api_id)


def test_load_balancer_ecs_and_network_pages_show_the_running_stack(browser, tutorial):
    p, stack = tutorial
    c = Console(browser, p)
    elb = p.client("elbv2")

    c.open("/elb")
    c.el(f"a[href='#/elb/lb/{requests.utils.quote(stack['lb']['LoadBalancerArn'], safe='')}']")
    c.shot("20-load-balancers")
    c.click("main table a")
    c.wait_hash("#/elb/lb/")
    assert "Listener HTTP:80" in c.text("main")
    c.shot("21-load-balancer-listeners")

    # Target health updates live on the target group page.
    c.click("main table a[href^='#/elb/tg/']")
    c.wait_hash("#/elb/tg/")
    c.el(".badge[data-status='healthy']")
    tg = elb.describe_target_groups()["TargetGroups"][0]["TargetGroupArn"]
    healthy = [t["Target"]["Id"] for t in elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]]
    for ip in healthy:
        assert ip in c.text("main")
    c.shot("22-target-group-health")

    c.open("/ecs")
    c.click(f"a[href='#/ecs/clusters/{stack['cluster']}']")
    c.wait_hash("#/ecs/clusters/")
    c.click(f"a[href='#/ecs/clusters/{stack['cluster']}/services/{stack['service']}']")
    c.wait_hash(f"#/ecs/clusters/{stack['cluster']}/services/")
    c.el(".badge[data-status='RUNNING']")
    assert "has reached a steady state" in c.text("main") or "has started" in c.text("main")
    c.shot("23-ecs-service")
    c.click("main a[href*='/tasks/']")
    c.wait_hash(f"#/ecs/clusters/{stack['cluster']}/tasks/")
    # The container's output streams in from CloudWatch Logs (the ALB's health checks hit it).
    c.wait().until(lambda d: "GET / HTTP/1.1" in c.text("pre.logs"))
    c.shot("24-ecs-task-logs")

    c.open("/vpc")
    for s in stack["subnets"]:
        c.el("main")
        assert s in c.text("main")
    c.shot("25-vpcs")

    c.open("/")
    c.wait().until(lambda d: "…" not in c.text(".cards"))
    assert "1\nLoad balancers" in c.text(".cards")
    assert stack["service"] in c.text("main")  # under "Running now"
    c.shot("26-home-running")

    # Regions are separate: in us-west-2 none of it exists.
    try:
        c.Select(c.el("#region-select")).select_by_value("us-west-2")
        c.wait().until(lambda d: "in us-west-2" in c.text("main") and "…" not in c.text(".cards"))
        assert "0\nLoad balancers" in c.text(".cards")
        assert stack["service"] not in c.text("main")
        c.shot("27-home-other-region")
    finally:
        c.Select(c.el("#region-select")).select_by_value("us-east-1")
    c.wait().until(lambda d: "in us-east-1" in c.text("main"))
    assert c.js_errors() == []


MINI_TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Description: Console test stack
Parameters:
  Greeting:
    Type: String
    Default: hello
    Description: Stored in a parameter
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {Service: ecs-tasks.amazonaws.com}
            Action: sts:AssumeRole
  Param:
    Type: AWS::SSM::Parameter
    Properties:
      Type: String
      Value: !Ref Greeting
Outputs:
  ParamName:
    Value: !Ref Param
"""


def test_cloudformation_create_watch_and_delete_from_the_console(browser, tutorial, tmp_path):
    p, _ = tutorial
    cfn = p.client("cloudformation")
    try:
        cfn.validate_template(TemplateBody=MINI_TEMPLATE)
    except botocore.exceptions.ClientError as e:
        if e.response["Error"]["Code"] == "InvalidAction":
            pytest.skip(f"CloudFormation is not in this build yet: {e.response['Error']['Message']}")
        raise
    c = Console(browser, p)
    path = tmp_path / "stack.yaml"
    path.write_text(MINI_TEMPLATE)
    c.open("/cloudformation")
    c.click("#create-stack")
    c.wait_hash("#/cloudformation/create")
    # The tutorial's template is one click away (offline there is nothing to download)...
    c.click("#use-tutorial-template")
    c.wait().until(lambda d: "AWS::ECS::Service" in c.el("#template-body").get_attribute("value"))
    assert c.el("#stack-name").get_attribute("value") == "http-api-private-integrations-tutorial"
    # ...but this test uploads a small template of its own.
    c.el("#template-file").send_keys(str(path))
    c.wait().until(lambda d: "Console test stack" in c.el("#template-body").get_attribute("value"))
    c.click("#template-next")
    c.type("#param-Greeting", "hi from the console")
    # Without the IAM acknowledgement CloudFormation refuses, and the page says why.
    c.type("#stack-name", "console-stack")
    c.click("#stack-submit")
    code, _ = c.error("stack-error")
    assert code == "InsufficientCapabilitiesException"
    assert [s["StackName"] for s in cfn.describe_stacks()["Stacks"]].count("console-stack") == 0
    c.click("#cap-CAPABILITY_IAM")
    c.shot("30-cfn-create")
    c.click("#stack-submit")
    c.wait_hash("#/cloudformation/stacks/console-stack")
    c.el(".page-head .badge[data-status='CREATE_COMPLETE']")  # updates live
    c.el(".timeline li")
    c.shot("31-cfn-events")
    # Tabs follow the ARIA pattern: arrow keys move between them.
    from selenium.webdriver.common.keys import Keys
    c.el("#tab-events").send_keys(Keys.ARROW_RIGHT)
    assert c.el("#tab-resources").get_attribute("aria-selected") == "true"
    assert browser.switch_to.active_element.get_attribute("id") == "tab-resources"
    c.click("#tab-outputs")
    c.el("main table td")
    c.shot("32-cfn-outputs")
    c.click("#tab-template")
    c.wait().until(lambda d: "Console test stack" in c.text("pre.template"))
    c.click("#delete-stack")
    c.click("dialog #confirm-ok")
    c.el(".page-head .badge[data-status='DELETE_COMPLETE']")
    assert c.js_errors() == []


def test_step_7_cleanup_from_the_console(browser, tutorial):
    """The tutorial's clean-up in the console: the VPC link, then the stack."""
    p, stack = tutorial
    c = Console(browser, p)
    apigw = p.client("apigatewayv2")
    links = [l for l in apigw.get_vpc_links()["Items"] if l["Name"] == "private-integrations-tutorial"]
    assert len(links) == 1
    link_id = links[0]["VpcLinkId"]
    c.open("/apigateway/vpclinks")
    c.click(f"a[href='#/apigateway/vpclinks/{link_id}']")
    c.wait_hash(f"#/apigateway/vpclinks/{link_id}")
    # The keyboard alone: the Delete button takes focus, Enter opens the dialog, which starts on
    # Cancel; Tab moves to Delete and Enter confirms.
    from selenium.webdriver.common.keys import Keys
    c.el("#delete-vpclink").send_keys(Keys.ENTER)
    dialog_focus = c.wait().until(lambda d: d.switch_to.active_element.get_attribute("id") == "confirm-cancel")
    assert dialog_focus
    browser.switch_to.active_element.send_keys(Keys.TAB)
    assert browser.switch_to.active_element.get_attribute("id") == "confirm-ok"
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    c.el("#vpclink-status .badge[data-status='DELETED']")
    c.shot("40-vpclink-deleted")
    assert link_id not in [l["VpcLinkId"] for l in apigw.get_vpc_links()["Items"]]

    if stack["how"] != "console":
        return
    name = "http-api-private-integrations-tutorial"
    c.open(f"/cloudformation/stacks/{name}")
    c.click("#delete-stack")
    c.click("dialog #confirm-ok")
    c.el(".page-head .badge[data-status='DELETE_IN_PROGRESS'], .page-head .badge[data-status='DELETE_COMPLETE']")
    c.shot("41-stack-deleting")
    c.el(".page-head .badge[data-status='DELETE_COMPLETE']", timeout=240)
    c.shot("42-stack-deleted")
    cfn = p.client("cloudformation")
    assert name not in [s["StackName"] for s in cfn.describe_stacks()["Stacks"]]
    assert p.client("elbv2").describe_load_balancers()["LoadBalancers"] == []
    assert c.js_errors() == []
