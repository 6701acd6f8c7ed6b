/* Portico console: AWS API clients. Every action the console takes goes through these, to the
   real AWS APIs on this origin, exactly as an SDK would send them (unsigned: Portico accepts
   unsigned requests on loopback; the Authorization header only names the region and service). */
"use strict";

const AWS = (() => {
  let region = localStorage.getItem("portico.region") || "us-east-1";

  class ApiError extends Error {
    constructor(code, message, status, op) {
      super(message || code || "Request failed");
      this.code = code || "Error";
      this.status = status;
      this.op = op;
    }
  }

  function scopeHeaders(signingName) {
    const amzDate = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d+/, "");
    return {
      "Authorization": `AWS4-HMAC-SHA256 Credential=console/${amzDate.slice(0, 8)}/${region}/${signingName}/aws4_request, SignedHeaders=host, Signature=0`,
      "X-Amz-Date": amzDate,
    };
  }

  async function send(url, init, op) {
    let resp;
    try {
      resp = await fetch(url, init);
    } catch (e) {
      throw new ApiError("NetworkError", `Portico did not answer: ${e.message}`, 0, op);
    }
    return resp;
  }

  /* ---- awsQuery / ec2Query: form POST, XML answer ---- */

  function formPairs(prefix, value, ec2, out) {
    if (value === undefined || value === null) return out;
    if (Array.isArray(value)) {
      value.forEach((v, i) => formPairs(ec2 ? `${prefix}.${i + 1}` : `${prefix}.member.${i + 1}`, v, ec2, out));
    } else if (typeof value === "object") {
      for (const [k, v] of Object.entries(value)) formPairs(prefix ? `${prefix}.${k}` : k, v, ec2, out);
    } else {
      out.push([prefix, String(value)]);
    }
    return out;
  }

  /* XML element -> plain value: `member`/`item` lists become arrays, leaves become strings. */
  function xmlValue(el) {
    const kids = Array.from(el.children);
    if (kids.length === 0) return el.textContent;
    if (kids.every((k) => k.localName === "member" || k.localName === "item")) return kids.map(xmlValue);
    const o = {};
    const repeated = new Set();
    for (const k of kids) {
      const name = k.localName, v = xmlValue(k);
      if (!(name in o)) o[name] = v;
      else if (repeated.has(name)) o[name].push(v);
      else { o[name] = [o[name], v]; repeated.add(name); }
    }
    return o;
  }

  function firstText(doc, name) {
    const el = doc.getElementsByTagName(name)[0];
    return el ? el.textContent : "";
  }

  async function query(signingName, version, action, params, ec2) {
    const pairs = [["Action", action], ["Version", version], ...formPairs("", params || {}, ec2, [])];
    const body = new URLSearchParams(pairs).toString();
    const resp = await send("/", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded; charset=utf-8", ...scopeHeaders(signingName) },
      body,
    }, action);
    const text = await resp.text();
    const doc = new DOMParser().parseFromString(text, "application/xml");
    if (!resp.ok) {
      const code = firstText(doc, "Code");
      const msg = firstText(doc, "Message");
      throw new ApiError(code || `HTTP ${resp.status}`, msg || text.slice(0, 300), resp.status, action);
    }
    if (doc.getElementsByTagName("parsererror").length) {
      throw new ApiError("InvalidResponse", `${action} answered something that is not XML`, resp.status, action);
    }
    const root = doc.documentElement;
    const result = Array.from(root.children).find((c) => c.localName === `${action}Result`);
    // ec2Query has no <ActionResult> wrapper: the members sit under the root.
    return xmlValue(result || root);
  }

  /* ---- awsJson 1.1 ---- */

  async function json(signingName, prefix, op, body) {
    const resp = await send("/", {
      method: "POST",
      headers: { "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": `${prefix}.${op}`, ...scopeHeaders(signingName) },
      body: JSON.stringify(body || {}),
    }, op);
    const text = await resp.text();
    let data = {};
    try { data = text ? JSON.parse(text) : {}; } catch (_) { data = { message: text }; }
    if (!resp.ok) {
      const type = String(data.__type || resp.headers.get("x-amzn-ErrorType") || `HTTP ${resp.status}`);
      const code = type.split("#").pop().split(":")[0];
      throw new ApiError(code, data.message || data.Message || "", resp.status, op);
    }
    return data;
  }

  /* ---- restJson1 (API Gateway v2) ---- */

  async function rest(signingName, method, path, body, op) {
    const init = { method, headers: { ...scopeHeaders(signingName) } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const resp = await send(path, init, op || `${method} ${path}`);
    const text = await resp.text();
    let data = {};
    try { data = text ? JSON.parse(text) : {}; } catch (_) { data = { message: text }; }
    if (!resp.ok) {
      const code = String(resp.headers.get("x-amzn-ErrorType") || data.code || data.__type || `HTTP ${resp.status}`).split(":")[0];
      throw new ApiError(code, data.message || data.Message || "", resp.status, op);
    }
    return data;
  }

  /* Pages through a list operation: `call(token)` returns [items, nextToken]. */
  async function all(call, limit = 20) {
    let out = [], token;
    for (let i = 0; i < limit; i++) {
      const [items, next] = await call(token);
      out = out.concat(items || []);
      if (!next) break;
      token = next;
    }
    return out;
  }

  const seg = (s) => encodeURIComponent(s);
  const arr = (v) => (Array.isArray(v) ? v : v === undefined || v === null || v === "" ? [] : [v]);

  return {
    ApiError, arr, all,
    get region() { return region; },
    setRegion(r) { region = r; localStorage.setItem("portico.region", r); },
    cfn: (action, params) => query("cloudformation", "2010-05-15", action, params, false),
    elb: (action, params) => query("elasticloadbalancing", "2015-12-01", action, params, false),
    ec2: (action, params) => query("ec2", "2016-11-15", action, params, true),
    ecs: (op, body) => json("ecs", "AmazonEC2ContainerServiceV20141113", op, body),
    logs: (op, body) => json("logs", "Logs_20140328", op, body),
    apigw: {
      getApis: () => all(async (t) => { const r = await rest("apigateway", "GET", `/v2/apis${t ? `?nextToken=${seg(t)}` : ""}`, undefined, "GetApis"); return [r.items, r.nextToken]; }),
      getApi: (id) => rest("apigateway", "GET", `/v2/apis/${seg(id)}`, undefined, "GetApi"),
      createApi: (body) => rest("apigateway", "POST", "/v2/apis", body, "CreateApi"),
      deleteApi: (id) => rest("apigateway", "DELETE", `/v2/apis/${seg(id)}`, undefined, "DeleteApi"),
      getRoutes: (id) => all(async (t) => { const r = await rest("apigateway", "GET", `/v2/apis/${seg(id)}/routes${t ? `?nextToken=${seg(t)}` : ""}`, undefined, "GetRoutes"); return [r.items, r.nextToken]; }),
      createRoute: (id, body) => rest("apigateway", "POST", `/v2/apis/${seg(id)}/routes`, body, "CreateRoute"),
      updateRoute: (id, routeId, body) => rest("apigateway", "PATCH", `/v2/apis/${seg(id)}/routes/${seg(routeId)}`, body, "UpdateRoute"),
      deleteRoute: (id, routeId) => rest("apigateway", "DELETE", `/v2/apis/${seg(id)}/routes/${seg(routeId)}`, undefined, "DeleteRoute"),
      getIntegrations: (id) => all(async (t) => { const r = await rest("apigateway", "GET", `/v2/apis/${seg(id)}/integrations${t ? `?nextToken=${seg(t)}` : ""}`, undefined, "GetIntegrations"); return [r.items, r.nextToken]; }),
      createIntegration: (id, body) => rest("apigateway", "POST", `/v2/apis/${seg(id)}/integrations`, body, "CreateIntegration"),
      deleteIntegration: (id, iid) => rest("apigateway", "DELETE", `/v2/apis/${seg(id)}/integrations/${seg(iid)}`, undefined, "DeleteIntegration"),
      getStages: (id) => all(async (t) => { const r = await rest("apigateway", "GET", `/v2/apis/${seg(id)}/stages${t ? `?nextToken=${seg(t)}` : ""}`, undefined, "GetStages"); return [r.items, r.nextToken]; }),
      createStage: (id, body) => rest("apigateway", "POST", `/v2/apis/${seg(id)}/stages`, body, "CreateStage"),
      deleteStage: (id, name) => rest("apigateway", "DELETE", `/v2/apis/${seg(id)}/stages/${seg(name)}`, undefined, "DeleteStage"),
      createDeployment: (id, body) => rest("apigateway", "POST", `/v2/apis/${seg(id)}/deployments`, body, "CreateDeployment"),
      getVpcLinks: () => all(async (t) => { const r = await rest("apigateway", "GET", `/v2/vpclinks${t ? `?nextToken=${seg(t)}` : ""}`, undefined, "GetVpcLinks"); return [r.items, r.nextToken]; }),
      getVpcLink: (id) => rest("apigateway", "GET", `/v2/vpclinks/${seg(id)}`, undefined, "GetVpcLink"),
      createVpcLink: (body) => rest("apigateway", "POST", "/v2/vpclinks", body, "CreateVpcLink"),
      deleteVpcLink: (id) => rest("apigateway", "DELETE", `/v2/vpclinks/${seg(id)}`, undefined, "DeleteVpcLink"),
    },
  };
})();
