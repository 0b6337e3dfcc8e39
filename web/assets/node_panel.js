// The node panel of the run page: one node's status, the plain-language why,
// its attempt ledger, input and output (JSON viewer, whole values fetched on
// demand), a map's items page by page, its events and its model calls, from
// GET runs/ID/nodes/NAME. A side panel on wide screens, full width on phones;
// Esc closes it and focus returns where it was. Main thread only.
import { api, enc } from "./api.js";
import { h, badge, words, fmtTime, fmtDuration, fmtCost, fmtTokens } from "./ui.js";
import { jsonView } from "./json_view.js";

const ITEMS_PAGE = 50;
// What a node's status says when the server gives no "why".
const PLAIN = {
  succeeded: "It succeeded.", failed: "It failed: its attempts below say why.",
  fallback: "It failed and its fallback stood in for it.", running: "It is running now.",
  skipped: "It was skipped.", cancelled: "It was cancelled.", pending: "It has not started.",
};

// createPanel({run, onRerunFrom(name), onForkFrom(name), onClose(),
// hasItems(name): whether the node is a map}).
export function createPanel({ run, onRerunFrom, onForkFrom, onClose, hasItems = () => false, innerOf = () => [] }) {
  const body = h("div", { class: "np-body" });
  const closeBtn = h("button", { type: "button", class: "np-close", "aria-label": "Close the node panel" }, "✕");
  const el = h("aside", { "data-testid": "node-panel", class: "node-panel", hidden: true, "aria-label": "Node details",
    tabindex: "-1" }, closeBtn, body);
  let current = null, back = null, loading = null;

  closeBtn.addEventListener("click", () => close());
  el.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { e.stopPropagation(); close(); }
  });

  async function open(name, { items = false, focus = true } = {}) {
    if (current !== name) back = document.activeElement;
    current = name;
    el.hidden = false;
    document.body.classList.add("np-open");
    if (loading) loading.abort();
    loading = new AbortController();
    const signal = loading.signal;
    if (!body.firstChild || body.dataset.node !== name) {
      body.replaceChildren(h("h2", { class: "np-title", tabindex: "-1" }, name), h("p", { class: "muted" }, "Loading…"));
    }
    body.dataset.node = name;
    if (focus) el.querySelector(".np-title").focus();
    try {
      const node = await api(`runs/${enc(run)}/nodes/${enc(name)}`, { signal });
      if (current !== name) return;
      const keep = el.contains(document.activeElement) ? document.activeElement.className : null;
      body.replaceChildren(...render(node, items));
      if (focus || keep) el.querySelector(".np-title").focus();
    } catch (e) {
      if (e.name === "AbortError" || current !== name) return;
      body.replaceChildren(h("h2", { class: "np-title", tabindex: "-1" }, name),
        h("p", { class: "error-box" }, `Could not load node ${name}: ${e.message}`),
        h("p", { class: "muted", "data-testid": "node-why" }, ""),
        actions(name));
      if (focus) el.querySelector(".np-title").focus();
    }
  }

  function close() {
    if (!current) return;
    current = null;
    if (loading) loading.abort();
    el.hidden = true;
    document.body.classList.remove("np-open");
    body.replaceChildren();
    delete body.dataset.node;
    onClose();
    if (back && document.contains(back)) back.focus();
  }

  function actions(name) {
    return h("div", { class: "np-actions" },
      h("button", { type: "button", "data-action": "rerun-from", onclick: () => onRerunFrom(name) }, "Re-run from here"),
      h("button", { type: "button", "data-action": "fork-from", onclick: () => onForkFrom(name) }, "Fork from here…"));
  }

  function render(n, showItems) {
    const out = [
      h("h2", { class: "np-title", tabindex: "-1" }, n.node),
      h("div", { class: "np-status" }, badge(n.status, "node-status"), " ", h("span", { class: "muted" }, n.kind || "")),
      h("p", { "data-testid": "node-why", class: "np-why" + (n.why ? "" : " muted") },
        n.why || PLAIN[n.status] || "Status: " + words(n.status) + "."),
      actions(n.node),
    ];
    const isMap = /^map\b/.test(n.kind || "") || showItems || hasItems(n.node);
    if (isMap) out.push(section("Items", itemsList(n.node), true));
    const inner = /^(call|loop)\b/.test(n.kind || "") ? innerOf(n.node) : [];
    if (inner.length) out.push(section(`Inner nodes (${inner.length})`, innerList(inner), true));
    out.push(section(`Attempts (${(n.attempts || []).length})`, attempts(n.attempts || []), true));
    const truncated = new Set(n.truncated || []);
    const input = n.input && typeof n.input === "object" ? n.input : {};
    const deps = Object.keys(input);
    if (deps.length) {
      out.push(section("Input", h("div", {}, deps.map((dep) => h("div", { class: "np-dep" }, h("h4", {}, dep),
        jsonView(input[dep], { loadFull: truncated.has("input." + dep) || isCut(input[dep])
          ? () => api(`runs/${enc(run)}/nodes/${enc(n.node)}/input/${enc(dep)}`) : null, open: 1 })))), false));
    }
    if (n.output !== undefined) {
      out.push(section("Output", jsonView(n.output, { loadFull: truncated.has("output") || isCut(n.output)
        ? () => api(`runs/${enc(run)}/nodes/${enc(n.node)}/output`) : null }), true));
    }
    const calls = n.llm_calls || [];
    if (calls.length) out.push(section(`Model calls (${calls.length})`, h("div", {}, calls.map(llmCall)), true));
    const events = n.events || [];
    if (events.length) {
      out.push(section(`Events (${events.length}${n.events_cut ? ", the newest" : ""})`, h("div", {},
        n.events_cut ? h("p", { class: "muted" }, "Older events are left out here; the run's event log has them all.") : null,
        eventList(events)), false));
    }
    return out;
  }

  // The nodes a call or loop ran, each opening its own panel.
  function innerList(nodes) {
    return h("table", { class: "np-items-table", "data-testid": "inner-nodes" },
      h("thead", {}, h("tr", {}, ["Node", "Status", "Duration", "Error"].map((t) => h("th", {}, t)))),
      h("tbody", {}, nodes.map((x) => h("tr", { dataset: { item: x.node } },
        h("td", {}, h("button", { type: "button", class: "link", onclick: () => open(x.node) }, x.node)),
        h("td", {}, badge(x.status)), h("td", { class: "num" }, fmtDuration(x.duration_s)),
        h("td", { class: "np-err" }, x.error || "")))));
  }

  function itemsList(name) {
    const box = h("div", { class: "np-items" });
    const status = h("select", { name: "item-status", "aria-label": "Show items with status" },
      ["", "failed", "running", "succeeded", "cancelled"].map((s) => h("option", { value: s }, s ? words(s) : "all")));
    const table = h("table", { class: "np-items-table" });
    const info = h("span", { class: "muted" });
    const prev = h("button", { type: "button" }, "‹ Previous");
    const next = h("button", { type: "button" }, "Next ›");
    let offset = 0;
    const load = async () => {
      const q = new URLSearchParams({ offset: String(offset), limit: String(ITEMS_PAGE) });
      if (status.value) q.set("status", status.value);
      info.textContent = "Loading…";
      try {
        const page = await api(`runs/${enc(run)}/nodes/${enc(name)}/items?${q}`);
        const items = page.items || [];
        table.replaceChildren(h("thead", {}, h("tr", {}, ["#", "Status", "Attempts", "Duration", "Error"].map((t) => h("th", {}, t)))),
          h("tbody", {}, items.map((it) => h("tr", { dataset: { item: it.node } },
            h("td", { class: "num" }, h("button", { type: "button", class: "link", onclick: () => open(it.node) }, String(it.index))),
            h("td", {}, badge(it.status)), h("td", { class: "num" }, String(it.attempts ?? "")),
            h("td", { class: "num" }, fmtDuration(it.duration_s)), h("td", { class: "np-err" }, it.error || "")))));
        const total = page.total ?? items.length;
        info.textContent = total ? `${(offset + 1).toLocaleString()}–${(offset + items.length).toLocaleString()} of ${total.toLocaleString()}` : "No items.";
        prev.disabled = offset === 0;
        next.disabled = offset + items.length >= total;
      } catch (e) {
        info.textContent = "";
        table.replaceChildren(h("caption", { class: "error-box" }, "Could not list the items: " + e.message));
      }
    };
    status.addEventListener("change", () => { offset = 0; load(); });
    prev.addEventListener("click", () => { offset = Math.max(0, offset - ITEMS_PAGE); load(); });
    next.addEventListener("click", () => { offset += ITEMS_PAGE; load(); });
    box.append(h("div", { class: "np-items-bar" }, status, prev, next, info), h("div", { class: "np-items-scroll" }, table));
    load();
    return box;
  }

  return {
    el,
    open,
    close,
    current: () => current,
    refresh() { if (current) open(current, { focus: false }); },
  };
}

function isCut(v) {
  return v && typeof v === "object" && !Array.isArray(v) && typeof v.$truncated === "number";
}

function section(title, content, open) {
  return h("details", { class: "np-section", open }, h("summary", {}, title), content);
}

function attempts(list) {
  if (!list.length) return h("p", { class: "muted" }, "No attempt has started.");
  return h("ol", { class: "np-attempts" }, list.map((a) => h("li", { "data-testid": "attempt", class: "np-attempt" },
    h("div", {}, h("strong", {}, "Attempt " + a.attempt), " ", badge(a.outcome || "running"),
      h("span", { class: "muted" }, " started " + fmtTime(a.started_at) +
        (a.duration_s !== null && a.duration_s !== undefined ? ", took " + fmtDuration(a.duration_s) : ""))),
    a.message || a.error_kind
      ? h("div", { class: "np-err" }, (a.error_kind ? a.error_kind + ": " : "") + (a.message || "")) : null,
    a.decided_by || a.next
      ? h("div", { class: "muted" }, (a.decided_by ? "decided by " + a.decided_by : "") +
        (a.decided_by && a.next ? ": " : "") + (a.next || "")) : null)));
}

function llmCall(c) {
  const tokens = (c.prompt_tokens || 0) + (c.completion_tokens || 0);
  const head = `${c.provider || "?"} / ${c.model || "?"} · ${fmtTokens(tokens)} tokens (${c.prompt_tokens || 0} + ${c.completion_tokens || 0})` +
    (c.cost ? " · cost " + (c.cost < 0.0001 ? "<0.0001" : fmtCost(c.cost)) : "") + (c.seconds !== undefined && c.seconds !== null ? " · " + fmtDuration(c.seconds) : "");
  const req = c.request, reply = c.reply;
  const cut = !!(c.truncated || (req && req.truncated) || (reply && reply.truncated));
  const body = h("div", { class: "np-llm-body" });
  if (c.message) body.append(h("p", { class: "np-err" }, c.message));
  if (req) {
    if (req.truncated) body.append(cutNote("The recorded request", req));
    if (req.omitted_messages) body.append(h("p", { class: "muted" }, `✂ ${req.omitted_messages} earlier messages were left out of the record.`));
    if (req.system) body.append(msg("system", req.system));
    for (const m of req.messages || []) body.append(msg(m.role + (m.tool_call_id ? " (" + m.tool_call_id + ")" : ""), m.content, m.tool_calls));
    if ((req.tools || []).length) body.append(h("p", { class: "muted" }, "Tools offered: " + req.tools.map((t) => (typeof t === "string" ? t : t.name)).join(", ")));
  } else {
    body.append(h("p", { class: "muted" }, "The request was not recorded (the provider says record = false, or the call was made by a keel that did not record it)."));
  }
  if (reply) {
    if (reply.truncated) body.append(cutNote("The recorded reply", reply));
    body.append(msg("reply", reply.content, reply.tool_calls));
  } else if (req) {
    body.append(h("p", { class: "muted" }, "No reply came back."));
  }
  return h("details", { "data-testid": "llm-call", class: "np-llm" },
    h("summary", {}, head, " ", badge(c.outcome === "ok" || !c.outcome ? "succeeded" : "failed"),
      cut ? h("span", { class: "muted" }, " ✂ truncated") : null), body);
}

function cutNote(what, obj) {
  return h("p", { class: "muted" }, `✂ ${what} was cut to its size cap` +
    (obj.original_bytes ? ` (${Math.round(obj.original_bytes / 1024).toLocaleString()} KB uncut)` : "") + ": long texts end in “…[N bytes cut]”.");
}

function msg(role, content, toolCalls) {
  const text = typeof content === "string" ? content : content === null || content === undefined ? "" : JSON.stringify(content, null, 1);
  return h("div", { class: "np-msg" }, h("div", { class: "np-role" }, role),
    text ? h("pre", { class: "np-text" }, text) : null,
    (toolCalls || []).length ? h("ul", { class: "np-tools" }, toolCalls.map(toolCall)) : null);
}

// {name, arguments} or OpenAI's {function: {name, arguments}} -> "name(args)".
function toolCall(tc) {
  const fn = tc && tc.function ? tc.function : tc || {};
  const args = typeof fn.arguments === "string" ? fn.arguments : JSON.stringify(fn.arguments ?? tc.input ?? {});
  return h("li", { class: "mono" }, "→ tool call ", h("strong", {}, String(fn.name || tc.name || "?")),
    "(" + (args.length > 500 ? args.slice(0, 500) + "…" : args) + ")");
}

function eventList(events) {
  const list = events.slice(-200);
  return h("table", { class: "np-events" }, h("tbody", {}, list.map((e) => {
    const data = e.data && Object.keys(e.data).length ? JSON.stringify(e.data) : "";
    // The severity (info, warning, error, critical) colours the kind.
    return h("tr", { class: "sev-" + (e.severity || "info") }, h("td", { class: "num muted" }, String(e.seq)), h("td", { class: "muted" }, fmtTime(e.ts)),
      h("td", { class: "np-ev-kind", title: e.severity || "info" }, words(e.kind)), h("td", { class: "mono np-ev-data" }, data.length > 200 ? data.slice(0, 200) + "…" : data));
  })));
}
