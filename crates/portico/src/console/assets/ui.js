/* Portico console: DOM helpers, the hash router, live polling, and shared widgets. */
"use strict";

const UI = (() => {
  /* h("div.cls#id", {attrs}, ...children): a tiny element builder. Text is always text. */
  function h(spec, attrs, ...kids) {
    const m = spec.match(/^([a-z0-9]+)((?:[.#][\w-]+)*)$/i);
    const el = document.createElement(m ? m[1] : "div");
    if (m) for (const part of m[2].match(/[.#][\w-]+/g) || []) {
      if (part[0] === ".") el.classList.add(part.slice(1)); else el.id = part.slice(1);
    }
    if (attrs && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) { kids.unshift(attrs); attrs = null; }
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "class") el.className = v;
      else if (k === "value" && "value" in el) el.value = v;
      else if (k === "checked" || k === "selected" || k === "disabled" || k === "required" || k === "multiple") el[k] = !!v;
      else el.setAttribute(k, v === true ? "" : v);
    }
    append(el, kids);
    return el;
  }
  function append(el, kids) {
    for (const k of kids.flat(Infinity)) {
      if (k === undefined || k === null || k === false) continue;
      el.append(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return el;
  }
  const $ = (sel, root = document) => root.querySelector(sel);

  /* ---- live polling: every timer belongs to the current page and stops when it changes ---- */
  let timers = [];
  function every(ms, fn) {
    let stopped = false, handle;
    const tick = async () => {
      if (stopped) return;
      // A hidden tab does not poll; it catches up when shown again.
      if (!document.hidden) { try { await fn(); } catch (e) { console.warn(e); } }
      if (!stopped) handle = setTimeout(tick, ms);
    };
    const t = { stop() { stopped = true; clearTimeout(handle); } };
    timers.push(t);
    handle = setTimeout(tick, ms);
    return t;
  }
  function stopTimers() { timers.forEach((t) => t.stop()); timers = []; }

  /* ---- router ---- */
  const routes = [];
  function route(pattern, render, nav) {
    const keys = [];
    const re = new RegExp("^" + pattern.replace(/:(\w+)/g, (_, k) => { keys.push(k); return "([^/]+)"; }) + "/?$");
    routes.push({ re, keys, render, nav });
  }
  let generation = 0;
  async function dispatch() {
    stopTimers();
    closeDialogs();
    const gen = ++generation;
    const path = (location.hash.replace(/^#/, "") || "/").split("?")[0];
    const main = $("#main");
    main.setAttribute("aria-busy", "true");
    main.dataset.rendered = "";
    const finished = () => { if (gen === generation) { main.setAttribute("aria-busy", "false"); main.dataset.rendered = path; } };
    for (const r of routes) {
      const m = path.match(r.re);
      if (!m) continue;
      const params = {};
      r.keys.forEach((k, i) => { params[k] = decodeURIComponent(m[i + 1]); });
      document.querySelectorAll("[data-nav]").forEach((a) => {
        if (a.dataset.nav === r.nav) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
      });
      const page = h("div.page", { "data-page": r.nav });
      main.replaceChildren(page);
      try {
        await r.render(page, params, () => gen === generation);
      } catch (e) {
        if (gen === generation) page.prepend(errorBox(e));
      }
      if (gen === generation && !main.contains(document.activeElement)) main.focus({ preventScroll: true });
      finished();
      return;
    }
    main.replaceChildren(h("div.page", h("h1", "Not found"), h("p", "No console page at ", h("code", path), ". ", h("a", { href: "#/" }, "Go home"))));
    finished();
  }
  function go(hash) {
    if (location.hash === hash) dispatch(); else location.hash = hash;
  }

  /* ---- widgets ---- */
  function errorBox(e, what) {
    const code = e && e.code ? e.code : "Error";
    const msg = e && e.message !== undefined ? e.message : String(e);
    return h("div.alert.error", { role: "alert", "data-error-code": code },
      what ? h("strong", what, ": ") : null,
      h("span.code", code), h("span.msg", msg));
  }
  /* Shows a refusal in the form's error slot and moves focus there, so keyboard and screen
     reader users land on the API's message. */
  function showError(slot, e, what) {
    const box = errorBox(e, what);
    box.tabIndex = -1;
    slot.replaceChildren(box);
    box.scrollIntoView({ block: "nearest" });
    box.focus({ preventScroll: true });
  }
  function toast(text) {
    const t = h("div.toast", text);
    const box = $("#toasts");
    box.append(t);
    while (box.children.length > 3) box.firstChild.remove();
    setTimeout(() => t.remove(), 4500);
  }
  function pageHead(title, sub, crumbs, actions) {
    return h("div.page-head",
      h("div",
        crumbs ? h("div.crumbs", crumbs.map((c, i) => [i ? " / " : "", c[1] ? h("a", { href: c[1] }, c[0]) : c[0]])) : null,
        h("h1", title), sub ? h("p", sub) : null),
      h("div.actions", actions || []));
  }
  function panel(title, body, actions, attrs) {
    return h("section.panel", attrs || {},
      h("div.panel-head", h("h2", title), h("div.actions", actions || [])),
      body);
  }
  /* A table: columns are [header, (row) => cell]. */
  function table(columns, rows, empty, caption) {
    return h("table",
      caption ? h("caption.sr-only", caption) : null,
      h("thead", h("tr", columns.map((c) => h("th", { scope: "col" }, c[0])))),
      h("tbody", rows.length
        ? rows.map((r) => h("tr", columns.map((c) => h("td", c[1](r)))))
        : h("tr", h("td.empty", { colspan: columns.length }, empty || "Nothing here yet."))));
  }
  function kv(pairs) {
    return h("dl.kv", pairs.filter(Boolean).map(([k, v]) => h("div", h("dt", k), h("dd", v === undefined || v === null || v === "" ? "-" : v))));
  }
  const OK = /(^|_)(COMPLETED?|AVAILABLE|ACTIVE|RUNNING|HEALTHY|healthy|active|DEPLOYED|IN_SYNC|STEADY|available)$/;
  const BAD = /(FAILED|ROLLBACK|unhealthy|UNHEALTHY|INACTIVE|failed|STOPPED|DELETE_COMPLETE|impaired)/;
  const BUSY = /(IN_PROGRESS|PENDING|PROVISIONING|initial|draining|DEPROVISIONING|DELETING|provisioning|pending|ACTIVATING|DRAINING|STOPPING)/;
  function badge(status) {
    const s = String(status || "UNKNOWN");
    const cls = BAD.test(s) ? "bad" : BUSY.test(s) ? "busy" : OK.test(s) ? "ok" : "";
    return h(`span.badge${cls ? "." + cls : ""}`, { "data-status": s }, s);
  }
  function when(v) {
    if (v === undefined || v === null || v === "") return "-";
    const d = typeof v === "number" ? new Date(v * (v < 1e12 ? 1000 : 1)) : new Date(v);
    if (isNaN(d)) return String(v);
    return d.toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }
  function field(label, control, hint, id) {
    const cid = id || control.id || `f-${Math.random().toString(36).slice(2, 8)}`;
    control.id = cid;
    return h("div.field", h("label", { for: cid }, label), hint ? h("p.hint", { id: `${cid}-hint` }, hint) : null, control);
  }
  function select(id, options, value, attrs) {
    return h("select", { id, ...(attrs || {}) }, options.map((o) => {
      const [v, text] = Array.isArray(o) ? o : [o, o];
      return h("option", { value: v, selected: v === value }, text);
    }));
  }
  function button(text, onclick, cls, attrs) {
    return h(`button.btn${cls ? "." + cls.split(" ").join(".") : ""}`, { type: "button", onclick, ...(attrs || {}) }, text);
  }
  /* Disables a button while `fn` runs. */
  async function busy(btn, fn) {
    const was = btn.textContent;
    btn.disabled = true;
    btn.setAttribute("aria-busy", "true");
    try { return await fn(); } finally { btn.disabled = false; btn.removeAttribute("aria-busy"); btn.textContent = was; }
  }
  /* Tabs: [[id, label, render(container)]]; the selected tab is kept in the page. */
  function tabs(defs, initial) {
    const bar = h("div.tabs", { role: "tablist" });
    const body = h("div", { role: "tabpanel" });
    const buttons = defs.map(([id, label, render]) => h("button", {
      type: "button", role: "tab", id: `tab-${id}`, "aria-selected": "false",
      onclick: () => select(id),
    }, label));
    let current;
    function select(id) {
      const d = defs.find((x) => x[0] === id) || defs[0];
      current = d[0];
      buttons.forEach((b, i) => {
        const on = defs[i][0] === current;
        b.setAttribute("aria-selected", String(on));
        b.tabIndex = on ? 0 : -1; // roving tab stop: arrows move between tabs
      });
      body.setAttribute("aria-labelledby", `tab-${current}`);
      body.replaceChildren();
      Promise.resolve(d[2](body)).catch((e) => body.prepend(errorBox(e)));
    }
    bar.append(...buttons);
    bar.addEventListener("keydown", (ev) => {
      const i = defs.findIndex((d) => d[0] === current);
      const j = ev.key === "ArrowRight" ? (i + 1) % defs.length : ev.key === "ArrowLeft" ? (i + defs.length - 1) % defs.length
        : ev.key === "Home" ? 0 : ev.key === "End" ? defs.length - 1 : -1;
      if (j < 0) return;
      ev.preventDefault();
      select(defs[j][0]);
      buttons[j].focus();
    });
    const el = h("div", bar, body);
    select(initial || defs[0][0]);
    return el;
  }
  /* Confirmation dialog (a real <dialog>, focus trapped by the browser). Resolves true/false. */
  function confirmDialog(title, text, okText) {
    return new Promise((resolve) => {
      const ok = h("button.btn.danger.solid#confirm-ok", { type: "button" }, okText || "Delete");
      const cancel = h("button.btn#confirm-cancel", { type: "button" }, "Cancel");
      const dlg = h("dialog", { "aria-labelledby": "dlg-title" },
        h("div.dlg-body", h("h2#dlg-title", title), h("p", text)),
        h("div.dlg-foot", cancel, ok));
      const done = (v) => { dlg.close(); dlg.remove(); resolve(v); };
      ok.addEventListener("click", () => done(true));
      cancel.addEventListener("click", () => done(false));
      dlg.addEventListener("cancel", (e) => { e.preventDefault(); done(false); });
      document.body.append(dlg);
      dlg.showModal();
      cancel.focus();
    });
  }
  function closeDialogs() { document.querySelectorAll("dialog").forEach((d) => { d.close(); d.remove(); }); }
  function live(text) { return h("span.live", text || "Updating live"); }
  function nameTag(tags) {
    const t = AWS.arr(tags).find((x) => (x.key || x.Key) === "Name");
    return t ? (t.value || t.Value) : "";
  }

  return { h, append, $, every, route, dispatch, go, errorBox, showError, toast, pageHead, panel, table, kv, badge, when, field, select, button, busy, tabs, confirmDialog, live, nameTag };
})();
