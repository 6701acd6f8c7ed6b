/* Portico console: the pages. Each page renders from AWS API answers and acts only through
   AWS API calls (see aws.js); the API's own error text is what a refused action shows. */
"use strict";

(() => {
  const { h, $, route, every, go, errorBox, showError, toast, pageHead, panel, table, kv, badge, when, field, select, button, busy, confirmDialog, live, nameTag } = UI;
  const arr = AWS.arr;
  const enc = encodeURIComponent;
  const TERMINAL_STACK = /(_COMPLETE|_FAILED)$/;
  const chunks = (xs, n) => { const out = []; for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n)); return out; };
  const lastPart = (arn) => String(arn || "").split("/").pop();

  /* Runs `fn`, showing the API's error in `slot` instead of throwing. Returns undefined on error. */
  async function attempt(slot, fn, what) {
    try {
      slot.replaceChildren();
      return await fn();
    } catch (e) {
      showError(slot, e, what);
      return undefined;
    }
  }
  const errSlot = (id) => h("div", { id: id || null, "aria-live": "assertive" });
  const copyable = (text) => h("code", text);
  function invokeUrl(api, stage) {
    const base = String(api.apiEndpoint || "").replace(/\/$/, "");
    return stage === "$default" ? `${base}/` : `${base}/${stage}`;
  }
  function invokeLink(url, id) {
    return h("a.invoke", { href: url, target: "_blank", rel: "noopener", id: id || null, "data-invoke-url": url }, url);
  }

  /* ================= Home ================= */

  route("/", async (page, _p, alive) => {
    page.append(pageHead("Portico", "What is running on this Portico, in " + AWS.region + ". Each number is a live AWS API answer."));
    const cards = h("div.cards");
    const invoke = h("div.panel-body.flush", h("p.muted.pad", "Loading…"));
    const running = h("div.panel-body.flush", h("p.muted.pad", "Loading…"));
    page.append(cards, panel("Invoke URLs", invoke), panel("Running now", running), panel("Walk through the tutorial", h("div.panel-body",
      h("ol.steps",
        h("li", h("a", { href: "#/cloudformation/create" }, "Create the stack"), " from the tutorial's template (CloudFormation)."),
        h("li", h("a", { href: "#/apigateway/vpclinks/create" }, "Create a VPC link"), " into the stack's VPC, private subnets and service security group."),
        h("li", h("a", { href: "#/apigateway/create" }, "Create an HTTP API"), " with a $default stage that deploys automatically."),
        h("li", "Open the API, ", h("strong", "create a route"), " ANY /{proxy+} and ", h("strong", "a private integration"), " to the load balancer's listener through the VPC link."),
        h("li", "Open the API's invoke URL.")))));
    const card = (label, href, fn) => {
      const num = h("div.num", "…");
      const c = h("a.card", { href }, num, h("div.label", label));
      cards.append(c);
      Promise.resolve().then(fn).then((v) => { num.textContent = String(v); })
        .catch((e) => { num.textContent = "–"; c.title = `${e.code}: ${e.message}`; c.append(h("div.small.muted", "unavailable: " + e.code)); });
    };
    card("CloudFormation stacks", "#/cloudformation", async () => arr((await AWS.cfn("DescribeStacks", {})).Stacks).length);
    card("HTTP APIs", "#/apigateway", async () => (await AWS.apigw.getApis()).length);
    card("VPC links", "#/apigateway/vpclinks", async () => (await AWS.apigw.getVpcLinks()).length);
    card("Load balancers", "#/elb", async () => arr((await AWS.elb("DescribeLoadBalancers", {})).LoadBalancers).length);
    card("ECS running tasks", "#/ecs", async () => {
      const arns = arr((await AWS.ecs("ListClusters", {})).clusterArns);
      if (!arns.length) return 0;
      const cl = arr((await AWS.ecs("DescribeClusters", { clusters: arns })).clusters);
      return cl.reduce((n, c) => n + (c.runningTasksCount || 0), 0);
    });
    const runningNow = (async () => {
      const rows = [];
      const notes = [];
      try {
        for (const st of arr((await AWS.cfn("DescribeStacks", {})).Stacks)) {
          rows.push({ kind: "Stack", name: h("a", { href: `#/cloudformation/stacks/${enc(st.StackName)}` }, st.StackName), state: badge(st.StackStatus), detail: st.Description || "" });
        }
      } catch (e) { notes.push(`CloudFormation: ${e.code}`); }
      try {
        const carns = arr((await AWS.ecs("ListClusters", {})).clusterArns);
        for (const carn of carns) {
          const cluster = lastPart(carn);
          const sarns = arr((await AWS.ecs("ListServices", { cluster })).serviceArns);
          for (const c of chunks(sarns, 10)) {
            for (const sv of arr((await AWS.ecs("DescribeServices", { cluster, services: c })).services)) {
              rows.push({ kind: "ECS service", name: h("a", { href: `#/ecs/clusters/${enc(cluster)}/services/${enc(sv.serviceName)}` }, sv.serviceName),
                state: badge(sv.status), detail: `${sv.runningCount || 0} of ${sv.desiredCount || 0} tasks running` });
            }
          }
        }
      } catch (e) { notes.push(`ECS: ${e.code}`); }
      try {
        for (const l of await AWS.apigw.getVpcLinks()) {
          rows.push({ kind: "VPC link", name: h("a", { href: `#/apigateway/vpclinks/${enc(l.vpcLinkId)}` }, l.name), state: badge(l.vpcLinkStatus), detail: `${arr(l.subnetIds).length} subnets` });
        }
      } catch (e) { notes.push(`API Gateway: ${e.code}`); }
      if (!alive()) return;
      running.replaceChildren(table([
        ["What", (r) => h("span.nowrap", r.kind)], ["Name", (r) => r.name], ["State", (r) => r.state], ["", (r) => h("span.small.muted", r.detail)],
      ], rows, "Nothing is running yet: start with the tutorial below."));
      if (notes.length) running.append(h("p.small.muted.pad", "Unavailable: ", notes.join(", ")));
    })();
    try {
      const apis = await AWS.apigw.getApis();
      const rows = [];
      for (const api of apis) {
        let stages = [];
        try { stages = await AWS.apigw.getStages(api.apiId); } catch (_) { /* shown as none */ }
        if (!stages.length) rows.push({ api, stage: null });
        for (const s of stages) rows.push({ api, stage: s.stageName });
      }
      if (!alive()) return;
      invoke.replaceChildren(table([
        ["API", (r) => h("a", { href: `#/apigateway/apis/${enc(r.api.apiId)}` }, r.api.name)],
        ["Stage", (r) => r.stage || h("span.muted", "no stage")],
        ["Invoke URL", (r) => r.stage ? invokeLink(invokeUrl(r.api, r.stage)) : h("span.muted", "create a stage to invoke")],
      ], rows, "No HTTP APIs yet."));
    } catch (e) {
      invoke.replaceChildren(h("div.panel-body", errorBox(e, "API Gateway")));
    }
    await runningNow;
  }, "home");

  /* ================= CloudFormation ================= */

  route("/cloudformation", async (page) => {
    page.append(pageHead("Stacks", "CloudFormation stacks in " + AWS.region + ".", [["CloudFormation"]],
      [h("a.btn.primary#create-stack", { href: "#/cloudformation/create" }, "Create stack")]));
    const body = h("div.panel-body.flush");
    page.append(panel("Stacks", body, [live()]));
    const render = async () => {
      const stacks = await AWS.all(async (t) => { const r = await AWS.cfn("DescribeStacks", { NextToken: t }); return [arr(r.Stacks), r.NextToken]; });
      body.replaceChildren(table([
        ["Stack name", (s) => h("a", { href: `#/cloudformation/stacks/${enc(s.StackName)}` }, s.StackName)],
        ["Status", (s) => badge(s.StackStatus)],
        ["Created", (s) => when(s.CreationTime)],
        ["Description", (s) => h("span.small", s.Description || "")],
      ], stacks, "No stacks. Create one from a template."));
    };
    await render();
    every(3000, render);
  }, "cloudformation");

  route("/cloudformation/create", async (page) => {
    page.append(pageHead("Create stack", "With new resources: specify a template, its parameters and capabilities.", [["CloudFormation", "#/cloudformation"], ["Create stack"]]));
    const err = errSlot("stack-error");
    const file = h("input", { type: "file", id: "template-file", accept: ".yaml,.yml,.json,.template,.txt" });
    const body = h("textarea", { id: "template-body", spellcheck: "false", "aria-describedby": "template-body-hint" });
    const name = h("input", { type: "text", id: "stack-name", autocomplete: "off", "aria-required": "true", "aria-describedby": "stack-name-hint" });
    const params = h("div#stack-params");
    const caps = h("div#stack-caps");
    let summary = null;
    file.addEventListener("change", () => {
      const f = file.files[0];
      if (!f) return;
      const rd = new FileReader();
      rd.onload = () => { body.value = String(rd.result); summary = null; params.replaceChildren(); caps.replaceChildren(); };
      rd.readAsText(f);
    });
    const useTemplate = (path, stackName) => async () => {
      const r = await attempt(err, async () => {
        const resp = await fetch(path);
        if (!resp.ok) throw new AWS.ApiError(`HTTP ${resp.status}`, "The console could not read its copy of the template.");
        return resp.text();
      }, "Template");
      if (r === undefined) return;
      body.value = r;
      if (!name.value) name.value = stackName;
      summary = null; params.replaceChildren(); caps.replaceChildren(); submit.hidden = true;
      toast("Template loaded: choose Next");
    };
    const samples = h("div.actions.samples",
      h("span.small.muted", "Or use the tutorial's template:"),
      button("Step 1: VPC, load balancer and ECS service", useTemplate("/_portico/console/templates/tutorial.yaml", "http-api-private-integrations-tutorial"), "small", { id: "use-tutorial-template" }),
      button("Next steps: everything, API included", useTemplate("/_portico/console/templates/tutorial-full.yaml", "http-api-private-integrations-tutorial-full"), "small", { id: "use-tutorial-full-template" }));
    const next = button("Next: parameters", null, "", { id: "template-next" });
    const submit = h("button.btn.primary#stack-submit", { type: "submit", hidden: true }, "Submit");
    next.addEventListener("click", () => busy(next, async () => {
      const s = await attempt(err, () => AWS.cfn("ValidateTemplate", { TemplateBody: body.value }), "ValidateTemplate");
      if (!s) return;
      summary = s;
      params.replaceChildren(h("h3", "Parameters"), ...(arr(s.Parameters).length ? arr(s.Parameters).map((p) => field(p.ParameterKey,
        h("input", { type: "text", "data-param": p.ParameterKey, value: p.DefaultValue || "" }), p.Description || null, `param-${p.ParameterKey}`))
        : [h("p.muted", "This template has no parameters.")]));
      const needed = arr(s.Capabilities);
      caps.replaceChildren(h("h3", "Capabilities"),
        needed.length
          ? h("div.alert.info", h("p.tight", s.CapabilitiesReason || "The template contains IAM resources."),
            needed.map((c) => h("label.check", h("input", { type: "checkbox", "data-cap": c, id: `cap-${c}` }),
              c === "CAPABILITY_AUTO_EXPAND" ? "I acknowledge that AWS CloudFormation might require the capability: CAPABILITY_AUTO_EXPAND"
                : `I acknowledge that AWS CloudFormation might create IAM resources${c === "CAPABILITY_NAMED_IAM" ? " with custom names" : ""}.`)))
          : h("p.muted", "No capabilities are needed."));
      submit.hidden = false;
      submit.scrollIntoView({ block: "nearest" });
    }));
    const form = h("form.form#create-stack-form", { novalidate: true },
      h("section.panel", h("div.panel-head", h("h2", "Specify template")), h("div.panel-body",
        field("Upload a template file", file, "YAML or JSON, up to 51,200 bytes."),
        samples,
        field("Or paste the template", body, null),
        next)),
      h("section.panel", h("div.panel-head", h("h2", "Stack details")), h("div.panel-body",
        field("Stack name", name, "Letters, numbers and hyphens; starts with a letter; up to 128 characters."),
        params, caps)),
      err,
      h("div.form-foot", h("a.btn", { href: "#/cloudformation" }, "Cancel"), submit));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      busy(submit, async () => {
        const input = { StackName: name.value, TemplateBody: body.value };
        const ps = Array.from(form.querySelectorAll("[data-param]")).map((i) => ({ ParameterKey: i.dataset.param, ParameterValue: i.value }));
        if (ps.length) input.Parameters = ps;
        const cs = Array.from(form.querySelectorAll("[data-cap]:checked")).map((i) => i.dataset.cap);
        if (cs.length) input.Capabilities = cs;
        const r = await attempt(err, () => AWS.cfn("CreateStack", input), "CreateStack");
        if (r) { toast(`Creating stack ${name.value}`); go(`#/cloudformation/stacks/${enc(name.value)}`); }
      });
    });
    page.append(form);
    void summary;
  }, "cloudformation");

  route("/cloudformation/stacks/:name", async (page, { name }, alive) => {
    const err = errSlot("stack-error");
    const head = h("div");
    const info = h("div");
    page.append(head, err, info);
    let stack;
    const load = async () => {
      const r = await AWS.cfn("DescribeStacks", { StackName: name });
      stack = arr(r.Stacks)[0];
      return stack;
    };
    await load();
    const del = button("Delete", () => busy(del, async () => {
      if (!(await confirmDialog("Delete stack?", `Deleting ${name} deletes every resource it created.`))) return;
      const ok = await attempt(err, () => AWS.cfn("DeleteStack", { StackName: stack.StackId || name }), "DeleteStack");
      if (ok !== undefined) toast(`Deleting stack ${name}`);
    }), "danger", { id: "delete-stack" });
    const statusEl = h("span");
    head.append(pageHead(name, null, [["CloudFormation", "#/cloudformation"], ["Stacks", "#/cloudformation"], [name]], [statusEl, del]));
    const renderInfo = () => {
      statusEl.replaceChildren(badge(stack.StackStatus));
      del.disabled = /^DELETE_/.test(stack.StackStatus);
      info.replaceChildren(panel("Stack info", h("div.panel-body", kv([
        ["Stack ID", h("span.mono.small", stack.StackId)],
        ["Status", badge(stack.StackStatus)],
        ["Status reason", stack.StackStatusReason],
        ["Created", when(stack.CreationTime)],
        ["Description", stack.Description],
        ["Capabilities", arr(stack.Capabilities).join(", ")],
      ]))));
    };
    renderInfo();
    const eventsBody = h("div.panel-body.flush");
    const resBody = h("div.panel-body.flush");
    const outBody = h("div.panel-body.flush");
    const paramBody = h("div.panel-body.flush");
    const renderEvents = async () => {
      const evs = arr((await AWS.cfn("DescribeStackEvents", { StackName: stack.StackId || name })).StackEvents);
      eventsBody.replaceChildren(evs.length ? h("ol.timeline", { "aria-label": "Stack events, newest first" }, evs.map((e) => h("li",
        h("span.small.muted", when(e.Timestamp)),
        h("span", h("strong", e.LogicalResourceId), h("div.small.muted", e.ResourceType)),
        h("span", badge(e.ResourceStatus), e.ResourceStatusReason ? h("div.small", e.ResourceStatusReason) : null))))
        : h("p.muted.pad", "No events."));
    };
    const renderResources = async () => {
      const rs = arr((await AWS.cfn("DescribeStackResources", { StackName: stack.StackId || name })).StackResources);
      resBody.replaceChildren(table([
        ["Logical ID", (r) => r.LogicalResourceId],
        ["Physical ID", (r) => h("span.mono.small", r.PhysicalResourceId || "-")],
        ["Type", (r) => r.ResourceType],
        ["Status", (r) => badge(r.ResourceStatus)],
      ], rs, "No resources."));
    };
    const renderOutputs = () => {
      outBody.replaceChildren(table([
        ["Key", (o) => o.OutputKey],
        ["Value", (o) => /^https?:\/\//.test(o.OutputValue || "") ? h("a", { href: o.OutputValue, target: "_blank", rel: "noopener" }, o.OutputValue) : h("span.mono.small", o.OutputValue)],
        ["Description", (o) => o.Description || ""],
        ["Export name", (o) => o.ExportName || ""],
      ], arr(stack.Outputs), "No outputs."));
      paramBody.replaceChildren(table([["Key", (p) => p.ParameterKey], ["Value", (p) => p.ResolvedValue || p.ParameterValue]], arr(stack.Parameters), "No parameters."));
    };
    renderOutputs();
    page.append(UI.tabs([
      ["events", "Events", (c) => { c.append(panel("Events", eventsBody, [live()])); return renderEvents(); }],
      ["resources", "Resources", (c) => { c.append(panel("Resources", resBody)); return renderResources(); }],
      ["outputs", "Outputs", (c) => { c.append(panel("Outputs", outBody)); }],
      ["parameters", "Parameters", (c) => { c.append(panel("Parameters", paramBody)); }],
      ["template", "Template", async (c) => {
        const t = await AWS.cfn("GetTemplate", { StackName: stack.StackId || name });
        c.append(panel("Template", h("pre.logs.template", { tabindex: "0", "aria-label": "Template body" }, t.TemplateBody || "")));
      }],
    ]));
    every(2000, async () => {
      if (!alive()) return;
      const before = stack.StackStatus;
      try { await load(); } catch (e) { if (/does not exist/.test(e.message)) { stack.StackStatus = "DELETE_COMPLETE"; } else throw e; }
      if (!stack) return;
      renderInfo();
      if (!TERMINAL_STACK.test(before) || !TERMINAL_STACK.test(stack.StackStatus) || before !== stack.StackStatus) {
        await Promise.allSettled([renderEvents(), renderResources()]);
        renderOutputs();
      }
    });
  }, "cloudformation");

  /* ================= API Gateway: APIs ================= */

  route("/apigateway", async (page) => {
    page.append(pageHead("APIs", "HTTP APIs in " + AWS.region + ".", [["API Gateway"]],
      [h("a.btn.primary#create-api", { href: "#/apigateway/create" }, "Create API")]));
    const apis = await AWS.apigw.getApis();
    page.append(panel(h("span", "APIs ", h("span.count", `(${apis.length})`)), h("div.panel-body.flush", table([
      ["Name", (a) => h("a", { href: `#/apigateway/apis/${enc(a.apiId)}`, "data-api-id": a.apiId }, a.name)],
      ["ID", (a) => h("span.mono", a.apiId)],
      ["Protocol", (a) => a.protocolType],
      ["Endpoint", (a) => h("span.mono.small", a.apiEndpoint || "-")],
      ["Created", (a) => when(a.createdDate)],
    ], apis, "No APIs yet. Create an HTTP API to get started."))));
  }, "apigateway");

  route("/apigateway/create", async (page) => {
    page.append(pageHead("Create an HTTP API", "HTTP APIs route requests to integrations: here, a private load balancer through a VPC link.",
      [["API Gateway", "#/apigateway"], ["Create API"]]));
    const err = errSlot("api-error");
    const name = h("input", { type: "text", id: "api-name", autocomplete: "off", "aria-required": "true", "aria-describedby": "api-name-hint" });
    const desc = h("input", { type: "text", id: "api-description", autocomplete: "off" });
    const ip = select("api-ip", [["ipv4", "IPv4"], ["dualstack", "Dualstack (IPv4 and IPv6)"]], "ipv4");
    const stageName = h("input", { type: "text", id: "api-stage-name", value: "$default" });
    const auto = h("input", { type: "checkbox", id: "api-stage-autodeploy", checked: true });
    const submit = h("button.btn.primary#api-create-submit", { type: "submit" }, "Create");
    const form = h("form.form#create-api-form", { novalidate: true },
      h("section.panel", h("div.panel-head", h("h2", "API details")), h("div.panel-body",
        field("API name", name, "Up to 128 characters."),
        field("Description - optional", desc),
        field("IP address type", ip))),
      h("section.panel", h("div.panel-head", h("h2", "Configure routes")), h("div.panel-body",
        h("p.muted.tight", "Skip for now: create routes on the API's Routes page after it exists."))),
      h("section.panel", h("div.panel-head", h("h2", "Define stages")), h("div.panel-body",
        field("Stage name", stageName, "$default is served at the API's base URL."),
        h("label.check", { for: "api-stage-autodeploy" }, auto, "Auto-deploy: deploy every change to this stage")),
      ),
      err,
      h("div.form-foot", h("a.btn", { href: "#/apigateway" }, "Cancel"), submit));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      busy(submit, async () => {
        const body = { name: name.value, protocolType: "HTTP", ipAddressType: ip.value };
        if (desc.value) body.description = desc.value;
        const api = await attempt(err, () => AWS.apigw.createApi(body), "CreateApi");
        if (!api) return;
        if (stageName.value) {
          const st = await attempt(err, () => AWS.apigw.createStage(api.apiId, { stageName: stageName.value, autoDeploy: auto.checked }), "CreateStage");
          if (!st) { err.append(h("p", "The API was created: ", h("a", { href: `#/apigateway/apis/${enc(api.apiId)}` }, "open it"), " to add a stage.")); return; }
        }
        toast(`Created API ${api.name}`);
        go(`#/apigateway/apis/${enc(api.apiId)}`);
      });
    });
    page.append(form);
    name.focus();
  }, "apigateway");

  const API_SECTIONS = [["routes", "Routes"], ["integrations", "Integrations"], ["stages", "Stages"]];

  async function apiPage(page, id, section, alive) {
    const err = errSlot("api-error");
    const api = await AWS.apigw.getApi(id);
    const del = button("Delete", () => busy(del, async () => {
      if (!(await confirmDialog("Delete API?", `Delete ${api.name} (${api.apiId}) with its routes, integrations and stages? This cannot be undone.`))) return;
      const ok = await attempt(err, () => AWS.apigw.deleteApi(api.apiId), "DeleteApi");
      if (ok !== undefined) { toast(`Deleted API ${api.name}`); go("#/apigateway"); }
    }), "danger", { id: "delete-api" });
    page.append(pageHead(api.name, null, [["API Gateway", "#/apigateway"], ["APIs", "#/apigateway"], [api.apiId]], [del]), err);
    const stages = await AWS.apigw.getStages(id).catch(() => []);
    page.append(panel("API details", h("div.panel-body", kv([
      ["API ID", h("span.mono", api.apiId)],
      ["Protocol", api.protocolType],
      ["IP address type", api.ipAddressType],
      ["Created", when(api.createdDate)],
      ["Description", api.description],
      ["Default endpoint", h("span.mono.small", api.apiEndpoint)],
    ]), h("h3", "Invoke URL"), stages.length
      ? h("ul#invoke-urls.plain", stages.map((s) => h("li", invokeLink(invokeUrl(api, s.stageName), s.stageName === "$default" ? "invoke-url" : null),
        h("span.small.muted", " stage ", s.stageName, s.autoDeploy ? " (auto-deploy)" : ""))))
      : h("p.muted", "No stage yet: create one on the Stages tab to get an invoke URL."))));
    page.append(h("nav.tabs", { "aria-label": "API sections" }, API_SECTIONS.map(([s, label]) => h("a.tablink", {
      href: `#/apigateway/apis/${enc(id)}/${s}`, id: `section-${s}`, "aria-current": s === section ? "page" : null,
    }, label))));
    const body = h("div");
    page.append(body);
    if (section === "integrations") await integrationsSection(body, api);
    else if (section === "stages") await stagesSection(body, api, stages);
    else await routesSection(body, api);
    void alive;
  }
  route("/apigateway/apis/:id", (page, p, alive) => apiPage(page, p.id, "routes", alive), "apigateway");
  route("/apigateway/apis/:id/:section", (page, p, alive) => apiPage(page, p.id, p.section, alive), "apigateway");

  const METHODS = ["ANY", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

  async function routesSection(body, api) {
    const [routes, integrations] = await Promise.all([AWS.apigw.getRoutes(api.apiId), AWS.apigw.getIntegrations(api.apiId).catch(() => [])]);
    const byId = Object.fromEntries(integrations.map((i) => [i.integrationId, i]));
    const err = errSlot("route-error");
    const method = select("route-method", METHODS, "ANY", { "aria-label": "Method" });
    const path = h("input", { type: "text", id: "route-path", placeholder: "/pets/{id}", autocomplete: "off", "aria-label": "Path", "aria-describedby": "route-path-hint" });
    const submit = h("button.btn.primary#route-create-submit", { type: "submit" }, "Create");
    const form = h("form.form#create-route-form", { novalidate: true },
      h("div.field", h("span.label", "Route and method"),
        h("p.hint#route-path-hint", "A path starting with /, with {variables} as whole segments and an optional greedy {proxy+} at the end, or $default."),
        h("div.row", method, path, submit)),
      err);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      busy(submit, async () => {
        const p = path.value.trim();
        const routeKey = p === "$default" ? "$default" : `${method.value} ${p}`;
        const r = await attempt(err, () => AWS.apigw.createRoute(api.apiId, { routeKey }), "CreateRoute");
        if (r) { toast(`Created route ${r.routeKey}`); UI.dispatch(); }
      });
    });
    // A tree: paths in order, each with its methods.
    const groups = new Map();
    for (const r of routes) {
      const [m, p] = r.routeKey === "$default" ? ["", "$default"] : r.routeKey.split(" ");
      if (!groups.has(p)) groups.set(p, []);
      groups.get(p).push({ ...r, method: m });
    }
    const paths = Array.from(groups.keys()).sort();
    const target = (r) => {
      if (!r.target) return h("span.muted", "no integration");
      const iid = r.target.replace(/^integrations\//, "");
      const i = byId[iid];
      return h("span", h("span.mono", iid), i ? h("span.small.muted", " ", i.connectionType === "VPC_LINK" ? "VPC link → load balancer" : i.integrationType) : null);
    };
    const tree = h("ul.route-tree", paths.map((p) => h("li.route-path",
      h("div.mono.strong", p),
      h("ul.route-methods", groups.get(p).map((r) => h("li", { "data-route-key": r.routeKey },
        r.method ? h("span.method", r.method) : null,
        h("span.small", "→ "), target(r),
        button("Delete", async (ev) => {
          if (!(await confirmDialog("Delete route?", `Delete route ${r.routeKey}?`))) return;
          const ok = await attempt(err, () => AWS.apigw.deleteRoute(api.apiId, r.routeId), "DeleteRoute");
          if (ok !== undefined) UI.dispatch();
          void ev;
        }, "small danger", { "aria-label": `Delete route ${r.routeKey}` })))))));
    body.append(panel(h("span", "Routes ", h("span.count", `(${routes.length})`)), h("div.panel-body.flush", routes.length ? tree : h("p.muted.pad", "No routes yet."))),
      panel("Create a route", h("div.panel-body", form)));
  }

  async function integrationsSection(body, api) {
    const [routes, integrations] = await Promise.all([AWS.apigw.getRoutes(api.apiId), AWS.apigw.getIntegrations(api.apiId)]);
    const err = errSlot("integration-error");
    const listErr = errSlot();
    const attachTo = select("int-route", [["", "Do not attach (create only)"], ...routes.map((r) => [r.routeId, r.routeKey])], routes.length ? routes[0].routeId : "");
    const type = select("int-type", [["private", "Private resource (ALB/NLB through a VPC link)"], ["http", "HTTP URI"]], "private");
    const lb = select("int-lb", [["", "Loading…"]]);
    const listener = select("int-listener", [["", "Choose a load balancer first"]]);
    const vpcLink = select("int-vpclink", [["", "Loading…"]]);
    const uri = h("input", { type: "text", id: "int-uri", placeholder: "the backend URL, with an https or http scheme" });
    const method = select("int-method", METHODS, "ANY");
    const privateFields = h("div", field("Load balancer", lb), field("Listener", listener), field("VPC link", vpcLink, "API Gateway reaches the private load balancer through this VPC link."));
    const httpFields = h("div", { hidden: true }, field("URL", uri));
    type.addEventListener("change", () => { privateFields.hidden = type.value !== "private"; httpFields.hidden = type.value === "private"; });
    const listenersOf = async () => {
      listener.replaceChildren(h("option", { value: "" }, lb.value ? "Loading…" : "Choose a load balancer first"));
      if (!lb.value) return;
      try {
        const ls = arr((await AWS.elb("DescribeListeners", { LoadBalancerArn: lb.value })).Listeners);
        listener.replaceChildren(h("option", { value: "" }, ls.length ? "Choose a listener" : "This load balancer has no listener"),
          ...ls.map((l) => h("option", { value: l.ListenerArn }, `${l.Protocol} ${l.Port}`)));
        if (ls.length === 1) listener.value = ls[0].ListenerArn;
      } catch (e) { listener.replaceChildren(h("option", { value: "" }, `unavailable: ${e.code}`)); }
    };
    lb.addEventListener("change", listenersOf);
    AWS.elb("DescribeLoadBalancers", {}).then((r) => {
      const lbs = arr(r.LoadBalancers);
      lb.replaceChildren(h("option", { value: "" }, lbs.length ? "Choose a load balancer" : "No load balancers"),
        ...lbs.map((l) => h("option", { value: l.LoadBalancerArn }, `${l.LoadBalancerName} (${l.Type}, ${l.Scheme})`)));
    }).catch((e) => lb.replaceChildren(h("option", { value: "" }, `unavailable: ${e.code}`)));
    AWS.apigw.getVpcLinks().then((links) => {
      vpcLink.replaceChildren(h("option", { value: "" }, links.length ? "Choose a VPC link" : "No VPC links"),
        ...links.map((l) => h("option", { value: l.vpcLinkId }, `${l.name} (${l.vpcLinkId}, ${l.vpcLinkStatus})`)));
    }).catch((e) => vpcLink.replaceChildren(h("option", { value: "" }, `unavailable: ${e.code}`)));
    const submit = h("button.btn.primary#int-create-submit", { type: "submit" }, "Create");
    const form = h("form.form#create-integration-form", { novalidate: true },
      field("Attach this integration to a route", attachTo),
      field("Integration type", type),
      privateFields, httpFields,
      field("Method", method, "The HTTP method sent to the target; ANY passes the client's method through."),
      err,
      h("div.form-foot", submit));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      busy(submit, async () => {
        const input = { integrationType: "HTTP_PROXY", integrationMethod: method.value, payloadFormatVersion: "1.0" };
        if (type.value === "private") {
          input.connectionType = "VPC_LINK";
          if (vpcLink.value) input.connectionId = vpcLink.value;
          if (listener.value) input.integrationUri = listener.value;
        } else {
          input.connectionType = "INTERNET";
          input.integrationUri = uri.value;
        }
        const integ = await attempt(err, () => AWS.apigw.createIntegration(api.apiId, input), "CreateIntegration");
        if (!integ) return;
        if (attachTo.value) {
          const ok = await attempt(err, () => AWS.apigw.updateRoute(api.apiId, attachTo.value, { target: `integrations/${integ.integrationId}` }), "UpdateRoute");
          if (!ok) return;
        }
        toast(`Created integration ${integ.integrationId}`);
        UI.dispatch();
      });
    });
    const attachedTo = (i) => routes.filter((r) => r.target === `integrations/${i.integrationId}`).map((r) => r.routeKey);
    body.append(
      panel(h("span", "Integrations ", h("span.count", `(${integrations.length})`)), h("div.panel-body.flush", listErr, table([
        ["ID", (i) => h("span.mono", i.integrationId)],
        ["Type", (i) => i.connectionType === "VPC_LINK" ? "Private resource" : i.integrationType],
        ["Target", (i) => h("span.mono.small", i.integrationUri || "-")],
        ["VPC link", (i) => i.connectionId ? h("a.mono", { href: `#/apigateway/vpclinks/${enc(i.connectionId)}` }, i.connectionId) : "-"],
        ["Routes", (i) => attachedTo(i).join(", ") || h("span.muted", "none")],
        ["", (i) => button("Delete", async () => {
          if (!(await confirmDialog("Delete integration?", `Delete integration ${i.integrationId}?`))) return;
          const ok = await attempt(listErr, () => AWS.apigw.deleteIntegration(api.apiId, i.integrationId), "DeleteIntegration");
          if (ok !== undefined) UI.dispatch();
        }, "small danger", { "aria-label": `Delete integration ${i.integrationId}` })],
      ], integrations, "No integrations yet."))),
      panel("Create an integration", h("div.panel-body", form)));
  }

  async function stagesSection(body, api, stages) {
    const err = errSlot("stage-error");
    const name = h("input", { type: "text", id: "stage-name", autocomplete: "off" });
    const auto = h("input", { type: "checkbox", id: "stage-autodeploy", checked: true });
    const submit = h("button.btn.primary#stage-create-submit", { type: "submit" }, "Create");
    const form = h("form.form", { novalidate: true }, field("Stage name", name, "$default or a name like prod."),
      h("label.check", { for: "stage-autodeploy" }, auto, "Auto-deploy"), err, h("div.form-foot", submit));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      busy(submit, async () => {
        const s = await attempt(err, () => AWS.apigw.createStage(api.apiId, { stageName: name.value, autoDeploy: auto.checked }), "CreateStage");
        if (s) UI.dispatch();
      });
    });
    const listErr = errSlot();
    body.append(panel("Create a stage", h("div.panel-body", form)), panel("Stages", h("div.panel-body.flush", listErr, table([
      ["Name", (s) => h("span.mono", s.stageName)],
      ["Invoke URL", (s) => invokeLink(invokeUrl(api, s.stageName))],
      ["Auto-deploy", (s) => (s.autoDeploy ? "Enabled" : "Disabled")],
      ["Deployment", (s) => h("span", h("span.mono", s.deploymentId || "-"), s.lastDeploymentStatusMessage ? h("div.small.muted", s.lastDeploymentStatusMessage) : null)],
      ["Updated", (s) => when(s.lastUpdatedDate || s.createdDate)],
      ["", (s) => h("div.actions",
        s.autoDeploy ? null : button("Deploy", async () => {
          const ok = await attempt(listErr, () => AWS.apigw.createDeployment(api.apiId, { stageName: s.stageName }), "CreateDeployment");
          if (ok) UI.dispatch();
        }, "small"),
        button("Delete", async () => {
          if (!(await confirmDialog("Delete stage?", `Delete stage ${s.stageName}?`))) return;
          const ok = await attempt(listErr, () => AWS.apigw.deleteStage(api.apiId, s.stageName), "DeleteStage");
          if (ok !== undefined) UI.dispatch();
        }, "small danger"))],
    ], stages, "No stages."))));
  }

  /* ================= API Gateway: VPC links ================= */

  route("/apigateway/vpclinks", async (page) => {
    page.append(pageHead("VPC links", "VPC links for HTTP APIs: API Gateway's way into private subnets.", [["API Gateway", "#/apigateway"], ["VPC links"]],
      [h("a.btn.primary#create-vpclink", { href: "#/apigateway/vpclinks/create" }, "Create")]));
    const body = h("div.panel-body.flush");
    page.append(panel("VPC links", body, [live()]));
    const render = async () => {
      const links = await AWS.apigw.getVpcLinks();
      body.replaceChildren(table([
        ["Name", (l) => h("a", { href: `#/apigateway/vpclinks/${enc(l.vpcLinkId)}` }, l.name)],
        ["ID", (l) => h("span.mono", l.vpcLinkId)],
        ["Status", (l) => badge(l.vpcLinkStatus)],
        ["Subnets", (l) => arr(l.subnetIds).length],
        ["Created", (l) => when(l.createdDate)],
      ], links, "No VPC links yet."));
    };
    await render();
    every(2000, render);
  }, "vpclinks");

  route("/apigateway/vpclinks/create", async (page) => {
    page.append(pageHead("Create VPC link", null, [["API Gateway", "#/apigateway"], ["VPC links", "#/apigateway/vpclinks"], ["Create"]]));
    const err = errSlot("vpclink-error");
    const name = h("input", { type: "text", id: "vpclink-name", autocomplete: "off", "aria-required": "true" });
    const vpc = select("vpclink-vpc", [["", "Loading…"]]);
    const subnets = h("div.checks#vpclink-subnets", { role: "group", "aria-labelledby": "subnets-legend" }, h("span.muted", "Choose a VPC first."));
    const sgs = h("div.checks#vpclink-sgs", { role: "group", "aria-labelledby": "sgs-legend" }, h("span.muted", "Choose a VPC first."));
    const vpcs = arr((await AWS.ec2("DescribeVpcs", {})).vpcSet);
    vpc.replaceChildren(h("option", { value: "" }, vpcs.length ? "Choose a VPC" : "No VPCs"),
      ...vpcs.map((v) => h("option", { value: v.vpcId }, `${v.vpcId}${nameTag(v.tagSet) ? ` (${nameTag(v.tagSet)})` : ""} ${v.cidrBlock || ""}`)));
    const pick = async () => {
      const id = vpc.value;
      if (!id) { subnets.replaceChildren(h("span.muted", "Choose a VPC first.")); sgs.replaceChildren(h("span.muted", "Choose a VPC first.")); return; }
      const f = { Filter: [{ Name: "vpc-id", Value: [id] }] };
      const [sn, sg] = await Promise.all([AWS.ec2("DescribeSubnets", f), AWS.ec2("DescribeSecurityGroups", f)]);
      const sns = arr(sn.subnetSet), sgl = arr(sg.securityGroupInfo);
      subnets.replaceChildren(...(sns.length ? sns.map((s) => h("label", h("input", { type: "checkbox", name: "subnet", value: s.subnetId }),
        h("span", h("span.mono", s.subnetId), " ", nameTag(s.tagSet) || "", h("span.small.muted", ` ${s.availabilityZone || ""} ${s.cidrBlock || ""}`)))) : [h("span.muted", "This VPC has no subnets.")]));
      sgs.replaceChildren(...(sgl.length ? sgl.map((g) => h("label", h("input", { type: "checkbox", name: "sg", value: g.groupId }),
        h("span", h("span.mono", g.groupId), " ", g.groupName, h("span.small.muted", ` ${g.groupDescription || ""}`)))) : [h("span.muted", "This VPC has no security groups.")]));
    };
    vpc.addEventListener("change", () => pick().catch((e) => showError(err, e)));
    const submit = h("button.btn.primary#vpclink-create-submit", { type: "submit" }, "Create");
    const form = h("form.form#create-vpclink-form", { novalidate: true },
      h("section.panel", h("div.panel-head", h("h2", "VPC link details")), h("div.panel-body",
        h("fieldset", h("legend", "VPC link version"), h("div.radio-cards",
          h("label", h("input", { type: "radio", name: "version", value: "V2", checked: true }), h("span", h("strong", "VPC link for HTTP APIs"), h("div.small.muted", "Reach ALBs, NLBs and Cloud Map services."))))),
        field("Name", name, "Up to 128 characters."),
        field("VPC", vpc, "The VPC whose private subnets the load balancer lives in."),
        h("fieldset", h("legend#subnets-legend", "Subnets"), h("p.hint", "Choose the subnets where API Gateway creates its network interfaces."), subnets),
        h("fieldset", h("legend#sgs-legend", "Security groups"), sgs))),
      err,
      h("div.form-foot", h("a.btn", { href: "#/apigateway/vpclinks" }, "Cancel"), submit));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      busy(submit, async () => {
        const body = {
          name: name.value,
          subnetIds: Array.from(form.querySelectorAll("input[name=subnet]:checked")).map((i) => i.value),
          securityGroupIds: Array.from(form.querySelectorAll("input[name=sg]:checked")).map((i) => i.value),
        };
        const l = await attempt(err, () => AWS.apigw.createVpcLink(body), "CreateVpcLink");
        if (l) { toast(`Creating VPC link ${l.name}`); go(`#/apigateway/vpclinks/${enc(l.vpcLinkId)}`); }
      });
    });
    page.append(form);
  }, "vpclinks");

  route("/apigateway/vpclinks/:id", async (page, { id }) => {
    const err = errSlot("vpclink-error");
    let l = await AWS.apigw.getVpcLink(id);
    const statusEl = h("span#vpclink-status");
    const del = button("Delete", () => busy(del, async () => {
      if (!(await confirmDialog("Delete VPC link?", `Delete ${l.name} (${l.vpcLinkId})?`))) return;
      const ok = await attempt(err, () => AWS.apigw.deleteVpcLink(l.vpcLinkId), "DeleteVpcLink");
      if (ok !== undefined) toast(`Deleting VPC link ${l.name}`);
    }), "danger", { id: "delete-vpclink" });
    page.append(pageHead(l.name, null, [["API Gateway", "#/apigateway"], ["VPC links", "#/apigateway/vpclinks"], [l.vpcLinkId]], [statusEl, del]), err);
    const details = h("div.panel-body");
    page.append(panel("VPC link details", details, [live()]));
    const render = () => {
      statusEl.replaceChildren(badge(l.vpcLinkStatus));
      details.replaceChildren(kv([
        ["VPC link ID", h("span.mono", l.vpcLinkId)],
        ["Status", badge(l.vpcLinkStatus)],
        ["Status message", l.vpcLinkStatusMessage],
        ["Version", l.vpcLinkVersion],
        ["Subnets", h("span.mono.small", arr(l.subnetIds).join(", "))],
        ["Security groups", h("span.mono.small", arr(l.securityGroupIds).join(", "))],
        ["Created", when(l.createdDate)],
      ]));
    };
    render();
    every(1500, async () => {
      try { l = await AWS.apigw.getVpcLink(id); } catch (e) { if (e.status === 404) { l = { ...l, vpcLinkStatus: "DELETED", vpcLinkStatusMessage: e.message }; } else throw e; }
      render();
    });
  }, "vpclinks");

  /* ================= Load balancers ================= */

  route("/elb", async (page) => {
    page.append(pageHead("Load balancers", "Application and Network Load Balancers in " + AWS.region + ".", [["EC2"], ["Load balancers"]]));
    const lbs = await AWS.all(async (m) => { const r = await AWS.elb("DescribeLoadBalancers", { Marker: m }); return [arr(r.LoadBalancers), r.NextMarker]; });
    page.append(panel("Load balancers", h("div.panel-body.flush", table([
      ["Name", (l) => h("a", { href: `#/elb/lb/${enc(l.LoadBalancerArn)}` }, l.LoadBalancerName)],
      ["State", (l) => badge(l.State && l.State.Code)],
      ["Type", (l) => l.Type],
      ["Scheme", (l) => l.Scheme],
      ["DNS name", (l) => h("span.mono.small", l.DNSName)],
      ["VPC", (l) => h("span.mono", l.VpcId)],
    ], lbs, "No load balancers."))));
  }, "elb");

  function describeAction(a) {
    if (a.Type === "forward") {
      const tgs = a.TargetGroupArn ? [a.TargetGroupArn] : arr(a.ForwardConfig && a.ForwardConfig.TargetGroups).map((t) => t.TargetGroupArn);
      return h("span", "forward to ", tgs.map((t, i) => [i ? ", " : "", h("a", { href: `#/elb/tg/${enc(t)}` }, t.split("/").slice(-2, -1)[0] || t)]));
    }
    if (a.Type === "fixed-response" && a.FixedResponseConfig) return `fixed response ${a.FixedResponseConfig.StatusCode}`;
    if (a.Type === "redirect" && a.RedirectConfig) return `redirect (${a.RedirectConfig.StatusCode})`;
    return a.Type;
  }
  function describeCondition(c) {
    const vals = arr(c.Values).concat(arr((c.PathPatternConfig || c.HostHeaderConfig || c.HttpRequestMethodConfig || c.SourceIpConfig || {}).Values));
    return `${c.Field} is ${vals.join(" or ")}`;
  }

  route("/elb/lb/:arn", async (page, { arn }) => {
    const lb = arr((await AWS.elb("DescribeLoadBalancers", { LoadBalancerArns: [arn] })).LoadBalancers)[0];
    page.append(pageHead(lb.LoadBalancerName, null, [["EC2"], ["Load balancers", "#/elb"], [lb.LoadBalancerName]], [badge(lb.State && lb.State.Code)]));
    page.append(panel("Details", h("div.panel-body", kv([
      ["ARN", h("span.mono.small", lb.LoadBalancerArn)],
      ["DNS name", h("span.mono.small", lb.DNSName)],
      ["Type", lb.Type], ["Scheme", lb.Scheme], ["VPC", h("span.mono", lb.VpcId)],
      ["Availability zones", arr(lb.AvailabilityZones).map((z) => `${z.ZoneName} (${z.SubnetId})`).join(", ")],
      ["Security groups", arr(lb.SecurityGroups).join(", ")],
      ["Created", when(lb.CreatedTime)],
    ]))));
    const listeners = arr((await AWS.elb("DescribeListeners", { LoadBalancerArn: arn })).Listeners);
    for (const l of listeners) {
      const rules = await AWS.elb("DescribeRules", { ListenerArn: l.ListenerArn }).then((r) => arr(r.Rules)).catch(() => []);
      page.append(panel(`Listener ${l.Protocol}:${l.Port}`, h("div.panel-body.flush",
        h("p.small.pad-top", h("span.muted", "ARN "), h("span.mono", l.ListenerArn)),
        table([
          ["Priority", (r) => (r.IsDefault === "true" || r.IsDefault === true ? "Default" : r.Priority)],
          ["Conditions", (r) => arr(r.Conditions).map(describeCondition).join("; ") || (r.IsDefault ? "any request" : "-")],
          ["Actions", (r) => h("span", arr(r.Actions).map(describeAction))],
        ], rules.length ? rules : [{ IsDefault: true, Priority: "default", Actions: arr(l.DefaultActions) }]))));
    }
    if (!listeners.length) page.append(panel("Listeners", h("div.panel-body", h("p.muted", "No listeners."))));
  }, "elb");

  route("/elb/targetgroups", async (page) => {
    page.append(pageHead("Target groups", null, [["EC2"], ["Target groups"]]));
    const tgs = await AWS.all(async (m) => { const r = await AWS.elb("DescribeTargetGroups", { Marker: m }); return [arr(r.TargetGroups), r.NextMarker]; });
    page.append(panel("Target groups", h("div.panel-body.flush", table([
      ["Name", (t) => h("a", { href: `#/elb/tg/${enc(t.TargetGroupArn)}` }, t.TargetGroupName)],
      ["Protocol:port", (t) => `${t.Protocol || "-"}:${t.Port || "-"}`],
      ["Target type", (t) => t.TargetType],
      ["VPC", (t) => h("span.mono", t.VpcId || "-")],
      ["Health check", (t) => `${t.HealthCheckProtocol || ""} ${t.HealthCheckPath || ""}`],
    ], tgs, "No target groups."))));
  }, "targetgroups");

  route("/elb/tg/:arn", async (page, { arn }) => {
    const tg = arr((await AWS.elb("DescribeTargetGroups", { TargetGroupArns: [arn] })).TargetGroups)[0];
    page.append(pageHead(tg.TargetGroupName, null, [["EC2"], ["Target groups", "#/elb/targetgroups"], [tg.TargetGroupName]]));
    page.append(panel("Details", h("div.panel-body", kv([
      ["ARN", h("span.mono.small", tg.TargetGroupArn)],
      ["Protocol:port", `${tg.Protocol}:${tg.Port}`], ["Target type", tg.TargetType], ["VPC", h("span.mono", tg.VpcId)],
      ["Health check", `${tg.HealthCheckProtocol || ""} ${tg.HealthCheckPath || ""} every ${tg.HealthCheckIntervalSeconds || "?"}s`],
      ["Load balancers", arr(tg.LoadBalancerArns).map((a) => h("div", h("a", { href: `#/elb/lb/${enc(a)}` }, a.split("/").slice(-2, -1)[0])))],
    ]))));
    const body = h("div.panel-body.flush");
    page.append(panel("Registered targets", body, [live()]));
    const render = async () => {
      const ths = arr((await AWS.elb("DescribeTargetHealth", { TargetGroupArn: arn })).TargetHealthDescriptions);
      body.replaceChildren(table([
        ["Target", (t) => h("span.mono", t.Target.Id)],
        ["Port", (t) => t.Target.Port],
        ["Zone", (t) => t.Target.AvailabilityZone || "-"],
        ["Health", (t) => badge(t.TargetHealth && t.TargetHealth.State)],
        ["Details", (t) => (t.TargetHealth && (t.TargetHealth.Description || t.TargetHealth.Reason)) || ""],
      ], ths, "No targets registered."));
    };
    await render();
    every(2000, render);
  }, "targetgroups");

  /* ================= VPCs ================= */

  route("/vpc", async (page) => {
    page.append(pageHead("VPCs", null, [["EC2"], ["VPCs"]]));
    const [vpcs, subnets] = await Promise.all([AWS.ec2("DescribeVpcs", {}), AWS.ec2("DescribeSubnets", {})]);
    const sns = arr(subnets.subnetSet);
    page.append(panel("VPCs", h("div.panel-body.flush", table([
      ["VPC", (v) => h("span.mono", v.vpcId)], ["Name", (v) => nameTag(v.tagSet)], ["CIDR", (v) => v.cidrBlock],
      ["State", (v) => badge(v.state)], ["Subnets", (v) => sns.filter((s) => s.vpcId === v.vpcId).length],
    ], arr(vpcs.vpcSet), "No VPCs."))));
    page.append(panel("Subnets", h("div.panel-body.flush", table([
      ["Subnet", (s) => h("span.mono", s.subnetId)], ["Name", (s) => nameTag(s.tagSet)], ["VPC", (s) => h("span.mono", s.vpcId)],
      ["Zone", (s) => s.availabilityZone], ["CIDR", (s) => s.cidrBlock],
    ], sns, "No subnets."))));
  }, "vpc");

  /* ================= ECS ================= */

  route("/ecs", async (page) => {
    page.append(pageHead("Clusters", "ECS clusters in " + AWS.region + ".", [["ECS"], ["Clusters"]]));
    const body = h("div.panel-body.flush");
    page.append(panel("Clusters", body, [live()]));
    const render = async () => {
      const arns = await AWS.all(async (t) => { const r = await AWS.ecs("ListClusters", { nextToken: t }); return [arr(r.clusterArns), r.nextToken]; });
      let clusters = [];
      for (const c of chunks(arns, 100)) clusters = clusters.concat(arr((await AWS.ecs("DescribeClusters", { clusters: c })).clusters));
      body.replaceChildren(table([
        ["Cluster", (c) => h("a", { href: `#/ecs/clusters/${enc(c.clusterName)}` }, c.clusterName)],
        ["Status", (c) => badge(c.status)],
        ["Services", (c) => c.activeServicesCount || 0],
        ["Running tasks", (c) => c.runningTasksCount || 0],
        ["Pending tasks", (c) => c.pendingTasksCount || 0],
      ], clusters, "No clusters."));
    };
    await render();
    every(3000, render);
  }, "ecs");

  route("/ecs/clusters/:cluster", async (page, { cluster }) => {
    page.append(pageHead(cluster, null, [["ECS"], ["Clusters", "#/ecs"], [cluster]]));
    const body = h("div.panel-body.flush");
    page.append(panel("Services", body, [live()]));
    const render = async () => {
      const arns = await AWS.all(async (t) => { const r = await AWS.ecs("ListServices", { cluster, nextToken: t }); return [arr(r.serviceArns), r.nextToken]; });
      let services = [];
      for (const c of chunks(arns, 10)) services = services.concat(arr((await AWS.ecs("DescribeServices", { cluster, services: c })).services));
      body.replaceChildren(table([
        ["Service", (s) => h("a", { href: `#/ecs/clusters/${enc(cluster)}/services/${enc(s.serviceName)}` }, s.serviceName)],
        ["Status", (s) => badge(s.status)],
        ["Tasks", (s) => `${s.runningCount || 0} running / ${s.desiredCount || 0} desired${s.pendingCount ? `, ${s.pendingCount} pending` : ""}`],
        ["Launch type", (s) => s.launchType || "-"],
        ["Task definition", (s) => h("span.mono.small", lastPart(s.taskDefinition))],
      ], services, "No services."));
    };
    await render();
    every(3000, render);
  }, "ecs");

  route("/ecs/clusters/:cluster/services/:service", async (page, { cluster, service }) => {
    page.append(pageHead(service, null, [["ECS"], ["Clusters", "#/ecs"], [cluster, `#/ecs/clusters/${enc(cluster)}`], [service]]));
    const info = h("div.panel-body"), tasksBody = h("div.panel-body.flush"), eventsBody = h("div.panel-body.flush");
    page.append(panel("Service", info, [live()]), panel("Tasks", tasksBody), panel("Events", eventsBody));
    const render = async () => {
      const s = arr((await AWS.ecs("DescribeServices", { cluster, services: [service] })).services)[0];
      if (!s) { info.replaceChildren(h("p.muted", "This service does not exist.")); return; }
      info.replaceChildren(kv([
        ["Status", badge(s.status)],
        ["Desired / running / pending", `${s.desiredCount || 0} / ${s.runningCount || 0} / ${s.pendingCount || 0}`],
        ["Task definition", h("span.mono.small", lastPart(s.taskDefinition))],
        ["Launch type", s.launchType],
        ["Load balancers", arr(s.loadBalancers).map((l) => h("div", l.targetGroupArn ? h("a", { href: `#/elb/tg/${enc(l.targetGroupArn)}` }, lastPart(l.targetGroupArn.replace(/\/[^/]+$/, ""))) : "", ` → ${l.containerName}:${l.containerPort}`))],
        ["Deployments", arr(s.deployments).map((d) => h("div", badge(d.rolloutState || d.status), ` ${d.runningCount || 0}/${d.desiredCount || 0}`))],
      ]));
      const tarns = await AWS.all(async (t) => { const r = await AWS.ecs("ListTasks", { cluster, serviceName: service, nextToken: t }); return [arr(r.taskArns), r.nextToken]; });
      let tasks = [];
      for (const c of chunks(tarns, 100)) tasks = tasks.concat(arr((await AWS.ecs("DescribeTasks", { cluster, tasks: c })).tasks));
      tasksBody.replaceChildren(table([
        ["Task", (t) => h("a.mono", { href: `#/ecs/clusters/${enc(cluster)}/tasks/${enc(lastPart(t.taskArn))}` }, lastPart(t.taskArn))],
        ["Last status", (t) => badge(t.lastStatus)],
        ["Desired", (t) => t.desiredStatus],
        ["Private IP", (t) => arr(t.containers).flatMap((c) => arr(c.networkInterfaces).map((n) => n.privateIpv4Address)).join(", ") || "-"],
        ["Health", (t) => t.healthStatus || "-"],
        ["Started", (t) => when(t.startedAt)],
      ], tasks, "No tasks."));
      eventsBody.replaceChildren(arr(s.events).length ? h("ol.timeline", arr(s.events).slice(0, 50).map((e) => h("li", h("span.small.muted", when(e.createdAt)), h("span.span2", e.message))))
        : h("p.muted.pad", "No events."));
    };
    await render();
    every(3000, render);
  }, "ecs");

  route("/ecs/clusters/:cluster/tasks/:task", async (page, { cluster, task }) => {
    const t = arr((await AWS.ecs("DescribeTasks", { cluster, tasks: [task] })).tasks)[0];
    if (!t) { page.append(pageHead(task, null, [["ECS"], ["Clusters", "#/ecs"], [cluster, `#/ecs/clusters/${enc(cluster)}`], [task]]), h("p.muted", "No such task.")); return; }
    const statusEl = h("span");
    page.append(pageHead(`Task ${task}`, null, [["ECS"], ["Clusters", "#/ecs"], [cluster, `#/ecs/clusters/${enc(cluster)}`], [task]], [statusEl]));
    statusEl.append(badge(t.lastStatus));
    page.append(panel("Task", h("div.panel-body", kv([
      ["Task definition", h("span.mono.small", lastPart(t.taskDefinitionArn))],
      ["Last / desired status", `${t.lastStatus} / ${t.desiredStatus}`],
      ["Started", when(t.startedAt)], ["Stopped reason", t.stoppedReason],
      ["Containers", arr(t.containers).map((c) => h("div", `${c.name}: ${c.lastStatus}${c.exitCode !== undefined ? ` (exit ${c.exitCode})` : ""}`))],
    ]))));
    const td = (await AWS.ecs("DescribeTaskDefinition", { taskDefinition: t.taskDefinitionArn })).taskDefinition;
    for (const c of arr(td.containerDefinitions)) {
      const lc = c.logConfiguration;
      if (!lc || lc.logDriver !== "awslogs" || !lc.options) {
        page.append(panel(`Logs: ${c.name}`, h("div.panel-body", h("p.muted", "This container does not send its logs to CloudWatch Logs (no awslogs log driver)."))));
        continue;
      }
      const group = lc.options["awslogs-group"], prefix = lc.options["awslogs-stream-prefix"];
      const stream = prefix ? `${prefix}/${c.name}/${task}` : task;
      const out = h("pre.logs", { tabindex: "0", "aria-label": `Logs of container ${c.name}` });
      const err = errSlot();
      page.append(panel(h("span", `Logs: ${c.name} `, h("span.count.small", `${group} › ${stream}`)), h("div", err, out), [live("Streaming")]));
      let token;
      const pull = async () => {
        try {
          const r = await AWS.logs("GetLogEvents", { logGroupName: group, logStreamName: stream, startFromHead: true, nextToken: token });
          const stick = out.scrollTop + out.clientHeight >= out.scrollHeight - 8;
          for (const e of arr(r.events)) out.append(h("span.ts", new Date(e.timestamp).toISOString().slice(11, 23)), e.message.replace(/\n$/, ""), "\n");
          if (r.nextForwardToken) token = r.nextForwardToken;
          if (stick) out.scrollTop = out.scrollHeight;
          err.replaceChildren();
          if (!out.childNodes.length) out.textContent = "";
        } catch (e) { showError(err, e, "GetLogEvents"); }
      };
      await pull();
      every(2000, pull);
    }
  }, "ecs");

  /* ================= boot ================= */

  const REGIONS = ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "eu-west-1", "eu-west-2", "eu-central-1", "eu-north-1", "ap-south-1", "ap-southeast-1", "ap-southeast-2", "ap-northeast-1", "sa-east-1"];
  const regionSel = $("#region-select");
  const regions = REGIONS.includes(AWS.region) ? REGIONS : [AWS.region, ...REGIONS];
  regionSel.replaceChildren(...regions.map((r) => h("option", { value: r, selected: r === AWS.region }, r)));
  regionSel.addEventListener("change", () => { AWS.setRegion(regionSel.value); UI.dispatch(); });
  window.addEventListener("hashchange", UI.dispatch);
  UI.dispatch();
})();
