// The runs list (/): newest first, 50 a page, filters kept in the URL's
// query (status, state, workflow, since, and `before` for the page), rows
// updated in place from the live stream. Main thread only.
import { api, follow, enc } from "./api.js";
import { h, badge, words, fmtTime, fmtDuration, fmtCountdown, fmtCost, fmtTokens, useCss, errorBox } from "./ui.js";

const PAGE = 50;
const STATUSES = ["running", "queued", "waiting", "interrupted", "succeeded", "failed", "degraded", "cancelled"];
const STATES = ["retrying", "backing_off", "breaker_open", "waiting_signal", "waiting_timer", "interrupted", "queued", "running"];
const SINCE = { "1h": 3600, "24h": 86400, "1d": 86400, "7d": 7 * 86400, "1w": 7 * 86400, "30d": 30 * 86400 };
// Events that change a run's status or derived state: the page asks again.
const RUN_EVENTS = new Set([
  "run_started", "run_resumed", "run_finished", "run_interrupted", "rerun", "budget_exceeded",
  "retry_scheduled", "attempt_started", "attempt_failed", "circuit_rejected", "node_started",
  "node_succeeded", "node_fallback", "node_failed", "node_cancelled", "node_skipped",
]);
const NODE_ENDS = new Set(["node_succeeded", "node_fallback", "node_failed", "node_cancelled", "node_skipped"]);
const MAX_QUEUE = 5000;

// "1h" / "7d" / "2026-12-05" / "2026-12-05T10:00" -> ISO 8601 UTC; throws
// an Error naming the value when it is none of these.
export function sinceToIso(text, now = Date.now()) {
  const t = String(text || "").trim();
  if (!t) return null;
  const rel = t.match(/^(\d+(?:\.\d+)?)\s*(m|min|h|d|w)$/i);
  if (rel) {
    const unit = { m: 60, min: 60, h: 3600, d: 86400, w: 7 * 86400 }[rel[2].toLowerCase()];
    return new Date(now - Number(rel[1]) * unit * 1000).toISOString();
  }
  if (SINCE[t]) return new Date(now - SINCE[t] * 1000).toISOString();
  // A date alone is local midnight; a date and time is local time.
  const d = /^\d{4}-\d{2}-\d{2}$/.test(t) ? new Date(t + "T00:00") : new Date(t);
  if (!/^\d{4}-\d{2}-\d{2}/.test(t) || isNaN(d.getTime())) {
    throw new Error(`since "${t}" is not a time: use 1h, 24h, 7d, a date (2026-12-05) or a date and time (2026-12-05T10:00)`);
  }
  return d.toISOString();
}

// What a run is doing, in words: "backing off", "waiting for signal approve".
export function stateWords(run) {
  const s = run.state;
  if (!s || s === run.status) return "";
  if (run.status === "waiting" && s === "waiting_signal") return run.waiting_for ? "for signal " + run.waiting_for : "for a signal";
  if (run.status === "waiting" && s === "waiting_timer") return "for a timer";
  if (s === "waiting_signal") return run.waiting_for ? "waiting for signal " + run.waiting_for : "waiting for a signal";
  if (s === "waiting_timer") return "waiting for timer";
  return words(s);
}

// A finished run's duration as measured; a running one's in whole seconds
// (it ticks).
function durationText(run, dur) {
  if (dur === null) return "—";
  if (run.status !== "running") return fmtDuration(dur);
  return dur < 1 ? "0s" : fmtCountdown(Math.floor(dur));
}

function elapsed(run, fetchedAt) {
  if (run.status === "running" && run.started_at) {
    return Math.max(0, (Date.now() - Date.parse(run.started_at)) / 1000);
  }
  if (run.duration_s === null || run.duration_s === undefined) return null;
  return run.duration_s + (run.status === "running" ? (Date.now() - fetchedAt) / 1000 : 0);
}

export function mount(root, route) {
  useCss("runs.css");
  document.title = "Runs · keel";
  const query = route.query;
  const filters = {
    status: query.get("status") || "",
    state: query.get("state") || "",
    workflow: query.get("workflow") || "",
    since: query.get("since") || "",
  };
  let before = query.get("before") || "";
  // Cursors of the newer pages, so "Newer" goes back one page.
  let newer = (history.state && Array.isArray(history.state.newer)) ? history.state.newer.slice(0, 1000) : [];
  const rows = new Map(); // run_id -> {run, tr, fetchedAt}; only the rows shown
  let pending = []; // live events not applied yet (bounded)
  let frame = 0;
  let refetchTimer = 0;
  let lastFetch = 0;
  let loading = null;
  let stopped = false;

  const form = h("form", { class: "filters", "data-testid": "runs-filter", role: "search", onsubmit: (e) => { e.preventDefault(); applyFilters(); } },
    field("Status", h("select", { name: "status", onchange: applyFilters },
      h("option", { value: "" }, "any status"), STATUSES.map((s) => h("option", { value: s }, words(s))))),
    field("State", h("select", { name: "state", onchange: applyFilters },
      h("option", { value: "" }, "any state"), STATES.map((s) => h("option", { value: s }, stateLabel(s))))),
    field("Workflow", h("input", { name: "workflow", type: "search", placeholder: "name", autocomplete: "off", size: 14 })),
    field("Since", h("input", { name: "since", type: "text", list: "since-options", placeholder: "1h, 7d or a date", autocomplete: "off", size: 16 }),
      h("datalist", { id: "since-options" },
        h("option", { value: "1h" }, "last hour"), h("option", { value: "24h" }, "last day"),
        h("option", { value: "7d" }, "last week"))),
    h("div", { class: "filter-buttons" },
      h("button", { type: "submit", class: "primary" }, "Filter"),
      h("button", { type: "button", onclick: clearFilters }, "Clear")));
  form.status.value = filters.status;
  form.state.value = filters.state;
  form.workflow.value = filters.workflow;
  form.since.value = filters.since;

  const message = h("div", { class: "runs-message" });
  const tbody = h("tbody");
  const table = h("table", { class: "runs", "data-testid": "runs-table", "aria-busy": "true" },
    h("caption", { class: "visually-hidden" }, "Runs, newest first"),
    h("thead", {}, h("tr", {},
      ["Run", "Workflow", "Status", "Started", "Duration", "Nodes", "Tokens", "Cost", "Error"].map((c, i) =>
        h("th", { scope: "col", class: i >= 6 && i <= 7 ? "num" : null }, c)))),
    tbody);
  const newestBtn = h("button", { type: "button", onclick: () => page("", []) }, "⇤ Newest");
  const newerBtn = h("button", { type: "button", onclick: goNewer }, "← Newer");
  const olderBtn = h("button", { type: "button", onclick: goOlder }, "Older →");
  const pageInfo = h("span", { class: "muted page-info" });
  const pager = h("nav", { class: "pager", "aria-label": "Pages", hidden: true }, newestBtn, newerBtn, pageInfo, olderBtn);

  root.append(
    h("div", { class: "page-head" }, h("h1", {}, "Runs"),
      h("a", { href: "/start", "data-link": true, class: "button-link" }, "+ Start a run")),
    form, message, h("div", { class: "table-wrap" }, table), pager);

  function field(label, control, ...extra) {
    return h("label", { class: "field" }, h("span", {}, label), control, ...extra);
  }

  function stateLabel(s) {
    if (s === "waiting_signal") return "waiting for signal";
    if (s === "waiting_timer") return "waiting for timer";
    return words(s);
  }

  function urlFor(beforeCursor) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(filters)) if (v) q.set(k, v);
    if (beforeCursor) q.set("before", beforeCursor);
    const s = q.toString();
    return "/" + (s ? "?" + s : "");
  }

  function applyFilters() {
    filters.status = form.status.value;
    filters.state = form.state.value;
    filters.workflow = form.workflow.value.trim();
    filters.since = form.since.value.trim();
    before = "";
    newer = [];
    history.replaceState({ newer }, "", urlFor(""));
    load();
  }

  function clearFilters() {
    form.reset();
    applyFilters();
  }

  function page(cursor, stack) {
    before = cursor;
    newer = stack;
    history.pushState({ newer }, "", urlFor(before));
    load();
  }

  function goOlder() {
    const last = tbody.lastElementChild && tbody.lastElementChild.dataset.runId;
    if (last) page(last, newer.concat([before]));
  }

  function goNewer() {
    if (newer.length) page(newer[newer.length - 1], newer.slice(0, -1));
    else page("", []);
  }

  function apiQuery() {
    const q = new URLSearchParams();
    q.set("limit", String(PAGE));
    if (filters.status) q.set("status", filters.status);
    if (filters.state) q.set("state", filters.state);
    if (filters.workflow) q.set("workflow", filters.workflow);
    if (filters.since) q.set("since", sinceToIso(filters.since));
    if (before) q.set("before", before);
    return "runs?" + q;
  }

  async function load() {
    let path;
    try {
      path = apiQuery();
    } catch (e) {
      message.replaceChildren(errorBox("reading the filter", null, e));
      form.since.setAttribute("aria-invalid", "true");
      return;
    }
    form.since.removeAttribute("aria-invalid");
    const mine = (loading = {});
    lastFetch = Date.now();
    let list;
    try {
      list = await api(path);
    } catch (e) {
      if (stopped || mine !== loading) return;
      message.replaceChildren(errorBox("loading the runs", "GET /api/v1/" + decodeURIComponent(path), e));
      return;
    }
    if (stopped || mine !== loading) return;
    if (!Array.isArray(list)) {
      message.replaceChildren(errorBox("loading the runs", "GET /api/v1/" + path, new Error("the answer is not a list of runs")));
      return;
    }
    message.replaceChildren();
    render(list);
    const ignored = ignoredFilters(list, path);
    if (ignored.length) {
      message.replaceChildren(errorBox("filtering the runs", "GET /api/v1/" + decodeURIComponent(path),
        new Error(`this keel serve does not filter by ${ignored.join(" or ")} (the list is not filtered by it)`)));
    }
  }

  // Filters the server answered without applying (an older keel serve
  // ignores query parameters it does not know).
  function ignoredFilters(list, path) {
    const out = [];
    if (filters.state && list.some((r) => !("state" in r) || (r.state !== filters.state))) out.push("state");
    const since = new URLSearchParams(path.split("?")[1]).get("since");
    if (since && list.some((r) => r.started_at && r.started_at < since)) out.push("since");
    return out;
  }

  function render(list) {
    const fetchedAt = Date.now();
    table.removeAttribute("aria-busy");
    const keep = new Set(list.map((r) => r.run_id));
    for (const [id, row] of rows) {
      if (!keep.has(id)) {
        row.tr.remove();
        rows.delete(id);
      }
    }
    let prev = null;
    for (const run of list) {
      let row = rows.get(run.run_id);
      if (!row) {
        row = { tr: h("tr", { dataset: { runId: run.run_id } }) };
        rows.set(run.run_id, row);
      }
      row.run = run;
      row.fetchedAt = fetchedAt;
      fillRow(row);
      // Keep rows in the answer's order, moving as few as possible.
      const want = prev ? prev.nextSibling : tbody.firstChild;
      if (want !== row.tr) tbody.insertBefore(row.tr, want);
      prev = row.tr;
    }
    if (list.length === 0) {
      const filtered = Object.values(filters).some(Boolean) || before;
      message.replaceChildren(h("div", { class: "empty" }, filtered
        ? ["No runs match these filters. ", h("button", { type: "button", onclick: clearFilters }, "Clear the filters")]
        : ["No runs yet. Start one from ", h("a", { href: "/start", "data-link": true }, "the Start page"),
          " (workflows under keel serve's --workflows directory), or from a terminal: ",
          h("code", {}, "keel run flow.lua --db THIS_DATABASE"), "."]));
    }
    table.hidden = list.length === 0;
    pager.hidden = list.length === 0 && !before;
    newestBtn.disabled = !before;
    newerBtn.disabled = !before;
    olderBtn.disabled = list.length < PAGE;
    pageInfo.textContent = list.length
      ? (before ? "older runs" : "newest runs") + ` · ${list.length} shown`
      : "";
  }

  function fillRow(row) {
    const run = row.run;
    const done = run.nodes_done || 0;
    const total = run.nodes_total || 0;
    const usage = run.usage || {};
    const tokens = (usage.prompt_tokens || 0) + (usage.completion_tokens || 0);
    const state = stateWords(run);
    const dur = elapsed(run, row.fetchedAt);
    row.tr.dataset.status = run.status;
    row.durationCell = h("td", { class: "num", "data-label": "Duration" }, durationText(run, dur));
    row.tr.replaceChildren(
      h("td", { "data-label": "Run" }, h("a", { href: "/runs/" + enc(run.run_id), "data-link": true, class: "mono" }, run.run_id)),
      h("td", { "data-label": "Workflow" }, run.workflow || ""),
      h("td", { "data-label": "Status" },
        h("span", { "data-testid": "run-status", class: "run-status" }, badge(run.status),
          state ? h("span", { class: "state s-" + run.state }, (run.status === "waiting" ? " " : " · ") + state) : null)),
      h("td", { "data-label": "Started", title: run.started_at || "" }, fmtTime(run.started_at)),
      row.durationCell,
      h("td", { "data-label": "Nodes", class: "nodes" },
        h("span", { class: "count" }, `${done}/${total}`),
        h("progress", { max: String(Math.max(total, 1)), value: String(Math.min(done, Math.max(total, 1))), "aria-label": `${done} of ${total} nodes done` })),
      h("td", { "data-label": "Tokens", class: "num" }, tokens ? fmtTokens(tokens) : "—"),
      h("td", { "data-label": "Cost", class: "num" }, usage.cost ? fmtCost(usage.cost) : "—"),
      h("td", { "data-label": "Error", class: "error-cell", title: run.error || "" }, shortError(run.error)));
  }

  function shortError(e) {
    if (!e) return "";
    return e.length > 90 ? e.slice(0, 88) + "…" : e;
  }

  // Live: apply each event's effect to its row once per animation frame;
  // run-level changes ask the server again (at most once a second).
  function onEvent(ev) {
    if (pending.length >= MAX_QUEUE) {
      pending = [];
      scheduleRefetch();
    }
    pending.push(ev);
    if (!frame) frame = requestAnimationFrame(flush);
  }

  function flush() {
    frame = 0;
    const batch = pending;
    pending = [];
    const dirty = new Set();
    let refetch = false;
    for (const ev of batch) {
      const row = rows.get(ev.run_id);
      if (RUN_EVENTS.has(ev.kind)) {
        if (row || (!before && (ev.kind === "run_started" || ev.kind === "run_resumed"))) refetch = true;
      }
      if (!row) continue;
      const d = ev.data || {};
      const run = row.run;
      if (ev.kind === "llm_call") {
        const u = run.usage || (run.usage = {});
        u.prompt_tokens = (u.prompt_tokens || 0) + (d.prompt_tokens || 0);
        u.completion_tokens = (u.completion_tokens || 0) + (d.completion_tokens || 0);
        u.cost = (u.cost || 0) + (d.cost || 0);
        dirty.add(row);
      } else if (NODE_ENDS.has(ev.kind) && ev.node && !/[[/]/.test(ev.node)) {
        run.nodes_done = Math.min((run.nodes_done || 0) + 1, run.nodes_total || Infinity);
        dirty.add(row);
      } else if (ev.kind === "run_finished" && d.status) {
        run.status = d.status;
        run.state = null;
        if (ev.ts && run.started_at) run.duration_s = Math.max(0, (Date.parse(ev.ts) - Date.parse(run.started_at)) / 1000);
        if (d.error) run.error = d.error;
        dirty.add(row);
      } else if (ev.kind === "run_interrupted") {
        run.status = "interrupted";
        run.state = "interrupted";
        dirty.add(row);
      } else if (ev.kind === "retry_scheduled" && run.status === "running") {
        run.state = "backing_off";
        dirty.add(row);
      } else if (ev.kind === "attempt_started" && run.status === "running") {
        run.state = "retrying";
        dirty.add(row);
      } else if (ev.kind === "circuit_rejected" && run.status === "running") {
        run.state = "breaker_open";
        dirty.add(row);
      }
    }
    for (const row of dirty) fillRow(row);
    if (refetch) scheduleRefetch();
  }

  function scheduleRefetch() {
    if (refetchTimer || stopped) return;
    const wait = Math.max(0, 1000 - (Date.now() - lastFetch));
    refetchTimer = setTimeout(() => {
      refetchTimer = 0;
      load();
    }, wait);
  }

  // Durations of running runs tick.
  const ticker = setInterval(() => {
    for (const row of rows.values()) {
      if (row.run.status !== "running") continue;
      const dur = elapsed(row.run, row.fetchedAt);
      row.durationCell.textContent = durationText(row.run, dur);
    }
  }, 1000);

  const stopStream = follow({ onEvent });
  load();

  return () => {
    stopped = true;
    stopStream();
    clearInterval(ticker);
    clearTimeout(refetchTimer);
    if (frame) cancelAnimationFrame(frame);
  };
}
