// The breakers page (/breakers): the aggregate of every circuit breaker in
// the database (count by state, overall health), then each breaker with its
// state, health, statistics, failures against its thresholds, the values it
// works with now (effective threshold, next cooldown, ramp share, reopens),
// the next probe as a countdown, and the operator's actions: Force open,
// Disable, Close and Reset (one or all). Polled every 2 s and asked again at
// once on breaker events from the live stream. Main thread only.
import { api, follow, enc } from "./api.js";
import { h, badge, confirmAction, toast, fmtTime, fmtCountdown, useCss, errorBox } from "./ui.js";

const POLL_MS = 2000;
const BREAKER_EVENTS = new Set(["breaker_opened", "breaker_half_open", "breaker_recovering", "breaker_closed",
  "breaker_reopened", "breaker_forced_open", "breaker_disabled", "circuit_rejected"]);
// The operator's orders: POST breakers/KEY/<path>, shown unless the breaker
// is in `state` already.
const ORDERS = [
  { action: "force-open", label: "Force open", state: "forced_open", danger: true,
    says: "rejects every call through it (they fail with circuit_open) until it is closed." },
  { action: "disable", label: "Disable", state: "disabled",
    says: "lets every call through, whatever fails; the calls are still counted. It stays so until it is closed." },
  { action: "close", label: "Close", state: "closed",
    says: "closes: calls go through again, and it opens again only by its own thresholds." },
];

// The first of `names` (dotted paths allowed) that `obj` holds, else undefined.
function pick(obj, ...names) {
  for (const name of names) {
    let v = obj;
    for (const part of name.split(".")) v = v === null || v === undefined ? undefined : v[part];
    if (v !== undefined && v !== null) return v;
  }
  return undefined;
}

// Replaces el's children, skipping null/false ones.
function set(el, ...kids) {
  el.replaceChildren(...kids.filter((k) => k !== null && k !== undefined && k !== false));
}

// 60 -> "60 s", 600 -> "10 min", 5400 -> "1.5 h".
function span(s) {
  if (s < 120) return Math.round(s * 10) / 10 + " s";
  if (s < 7200) return Math.round((s / 60) * 10) / 10 + " min";
  return Math.round((s / 3600) * 10) / 10 + " h";
}

function pct(x) {
  return (Math.round(x * 10) / 10) + "%";
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

// The aggregate in words: "3 breakers: 1 closed, 1 open, 1 forced open;
// health 87.5%", as `keel breakers` prints it.
export function summaryWords(summary) {
  const states = Object.entries(summary.states || {}).filter(([, n]) => n > 0)
    .map(([state, n]) => `${n} ${state.replace(/_/g, " ")}`);
  return plural(summary.count, "breaker") + (states.length ? ": " + states.join(", ") : "") +
    `; health ${pct(summary.health_percent)}`;
}

// The statistics since the breaker was created: "12 calls, 3 failed", then
// "1 slow, 0 timeouts, 4 rejected" and the last outcomes in a row.
export function statsWords(b) {
  const lines = [`${plural(b.calls || 0, "call")}, ${b.failed || 0} failed`];
  lines.push(`${b.slow || 0} slow, ${plural(b.timeouts || 0, "timeout")}, ${b.rejected || 0} rejected`);
  if (b.consecutive_failures) lines.push(`${b.consecutive_failures} failed in a row`);
  else if (b.consecutive_successes) lines.push(`${b.consecutive_successes} ok in a row`);
  return lines;
}

// The values the breaker works with now, from `effective`: "opens at 35%
// failed (learned 5%)", "ramp: 40% of calls", "cooldown if it opens: 60 s",
// "2 reopens".
export function effectiveWords(b) {
  const e = b.effective || {};
  const parts = [];
  if (typeof e.failure_threshold_rate === "number") {
    let s = `opens at ${pct(e.failure_threshold_rate * 100)} failed`;
    if (typeof e.learned_failure_rate === "number") s += ` (learned ${pct(e.learned_failure_rate * 100)})`;
    parts.push(s);
  }
  if (typeof e.ramp_share === "number") parts.push(`ramp: ${pct(e.ramp_share * 100)} of calls`);
  // The cooldown it would take on opening from closed now.
  if (typeof e.next_cooldown_s === "number" && b.state === "closed") parts.push(`cooldown if it opens: ${span(e.next_cooldown_s)}`);
  if (e.reopens) parts.push(plural(e.reopens, "reopen"));
  return parts;
}

// The failures against the thresholds, in words: "7 of 20 calls failed in
// the last 60s (35%), opens at 50%" and "3 failures in a row, opens at 5".
export function failureWords(b) {
  const parts = [];
  const winCalls = pick(b, "window_calls", "calls_in_window", "window.calls", "recent_calls");
  const winFailed = pick(b, "window_failed", "failed_in_window", "window_failures", "window.failed", "recent_failed");
  const windowS = pick(b, "window_s", "window", "config.window", "window.seconds");
  let rate = pick(b, "failure_rate", "config.failure_rate", "thresholds.failure_rate");
  const minCalls = pick(b, "min_calls", "config.min_calls", "thresholds.min_calls");
  const threshold = pick(b, "failures_threshold", "failure_threshold", "threshold", "config.failures", "thresholds.failures", "max_failures");
  if (typeof winCalls === "number" && typeof winFailed === "number") {
    const share = winCalls ? (100 * winFailed) / winCalls : 0;
    let s = winCalls ? `${winFailed} of ${winCalls} call${winCalls === 1 ? "" : "s"} failed` : "no calls";
    if (typeof windowS === "number") s += ` in the last ${span(windowS)}`;
    s += winCalls ? ` (${pct(share)})` : "";
    if (typeof rate === "number") {
      if (rate <= 1) rate *= 100;
      const calls = typeof minCalls === "number" ? minCalls : null;
      s += b.state === "closed"
        ? `; opens at ${pct(rate)}` + (calls ? ` once ${calls} calls are in the window` : "")
        : `; threshold ${pct(rate)}` + (calls ? ` of at least ${calls} calls` : "");
    }
    parts.push(s);
  }
  const inRow = b.failures || 0;
  if (typeof threshold === "number") {
    parts.push(`${inRow} failure${inRow === 1 ? "" : "s"} in a row` +
      (b.state === "closed" ? `, opens at ${threshold}` : ` (threshold ${threshold})`));
  } else if (inRow) {
    parts.push(`${inRow} failure${inRow === 1 ? "" : "s"} in a row`);
  }
  if (typeof b.calls === "number") {
    parts.push(`${b.failed || 0} of ${b.calls} call${b.calls === 1 ? "" : "s"} failed in all`);
  }
  return parts;
}

export function mount(root) {
  useCss("breakers.css");
  document.title = "Breakers · keel";
  const rows = new Map(); // key -> {tr, cells, b, fetchedAt}
  let pollTimer = 0;
  let soonTimer = 0;
  let stopped = false;
  let inFlight = false;
  let again = false; // asked while a request was out: ask once more after it

  const resetAll = h("button", { type: "button", class: "danger", "data-action": "reset-all", onclick: onResetAll }, "Reset all");
  const message = h("div", { class: "breakers-message" });
  const summary = h("p", { class: "muted summary" });
  const tbody = h("tbody");
  let tfoot = null;
  const table = h("table", { class: "breakers", "data-testid": "breakers-table" },
    h("caption", { class: "visually-hidden" }, "Circuit breakers"),
    h("thead", {}, h("tr", {}, ["Breaker", "State", "Health", "Calls", "Failures", "Effective", "Opened", "Next probe", ""].map((c) =>
      h("th", { scope: "col" }, c || h("span", { class: "visually-hidden" }, "Actions"))))),
    tbody,
    // The table stays (with its header) when empty; this row says why.
    tfoot = h("tfoot", { hidden: true }, h("tr", {}, h("td", { colspan: "9", class: "list-empty" },
      "No circuit breakers yet. A breaker appears once a node with ",
      h("code", {}, "circuit = { ... }"), " (or an agent, keyed by its provider) has made a call."))));
  root.append(h("div", { class: "page-breakers" },
    h("div", { class: "page-head" }, h("h1", {}, "Circuit breakers"), resetAll),
    summary, message, h("div", { class: "table-wrap" }, table)));

  async function load() {
    if (stopped) return;
    if (inFlight) {
      again = true;
      return;
    }
    inFlight = true;
    again = false;
    clearTimeout(pollTimer);
    try {
      const answer = await api("breakers?summary=true");
      if (stopped) return;
      if (!answer || !Array.isArray(answer.breakers) || !answer.summary) {
        throw new Error("the answer is not a list of breakers with their summary");
      }
      message.replaceChildren();
      render(answer.breakers, answer.summary);
    } catch (e) {
      if (!stopped) message.replaceChildren(errorBox("loading the breakers", "GET /api/v1/breakers?summary=true", e));
    } finally {
      inFlight = false;
      if (!stopped) pollTimer = setTimeout(load, again ? 0 : POLL_MS);
    }
  }

  function soon() {
    if (soonTimer || stopped) return;
    soonTimer = setTimeout(() => { soonTimer = 0; load(); }, 250);
  }

  function render(list, total) {
    const fetchedAt = Date.now();
    const keep = new Set(list.map((b) => b.key));
    for (const [key, row] of rows) {
      if (!keep.has(key)) {
        row.tr.remove();
        rows.delete(key);
      }
    }
    let prev = null;
    for (const b of list) {
      let row = rows.get(b.key);
      if (!row) row = newRow(b.key);
      row.b = b;
      row.fetchedAt = fetchedAt;
      fillRow(row);
      const want = prev ? prev.nextSibling : tbody.firstChild;
      if (want !== row.tr) tbody.insertBefore(row.tr, want);
      prev = row.tr;
    }
    set(summary, ...(list.length
      ? [h("span", { "data-testid": "breakers-summary" }, summaryWords(total) + "."),
        " Shared by every run and process using this database; refreshed every 2 s."]
      : []));
    tfoot.hidden = list.length > 0;
    resetAll.disabled = list.length === 0;
  }

  function newRow(key) {
    const cells = {};
    for (const name of ["key", "state", "health", "stats", "failures", "effective", "opened", "probe"]) {
      cells[name] = h("td", { "data-label": name === "key" ? "Breaker" : null });
    }
    cells.key.append(h("span", { class: "mono key" }, key));
    const orders = {};
    for (const o of ORDERS) {
      orders[o.state] = h("button", { type: "button", class: o.danger ? "danger" : null, "data-action": o.action,
        onclick: () => onOrder(key, o) }, o.label, h("span", { class: "visually-hidden" }, " " + key));
    }
    const reset = h("button", { type: "button", "data-action": "reset", onclick: () => onReset(key) },
      "Reset", h("span", { class: "visually-hidden" }, " " + key));
    const tr = h("tr", { dataset: { breaker: key } }, Object.values(cells),
      h("td", { class: "actions" }, ...Object.values(orders), reset));
    for (const [name, label] of Object.entries({ state: "State", health: "Health", stats: "Calls", failures: "Failures",
      effective: "Effective", opened: "Opened", probe: "Next probe" })) {
      cells[name].dataset.label = label;
    }
    const row = { tr, cells, orders };
    rows.set(key, row);
    return row;
  }

  function fillRow(row) {
    const b = row.b;
    const c = row.cells;
    row.tr.dataset.state = b.state;
    set(c.state, h("span", { "data-testid": "breaker-state" }, badge(b.state)),
      probesText(b) ? h("div", { class: "muted small" }, probesText(b)) : null);
    const health = typeof b.health_percent === "number" ? b.health_percent : null;
    set(c.health, health === null ? "—" : h("div", { class: "health" },
      h("span", { class: "health-num" }, pct(health)),
      h("meter", { min: "0", max: "100", low: "50", high: "90", optimum: "100", value: String(health), "aria-label": `health ${pct(health)}` })));
    set(c.stats, ...statsWords(b).map((t, i) => h("div", { class: i ? "muted small" : null }, t)), lastOutcomes(b));
    set(c.failures, ...failureWords(b).map((t, i) => h("div", { class: i ? "muted small" : null }, t)), lastError(b));
    const effective = effectiveWords(b);
    set(c.effective, ...(effective.length ? effective.map((t, i) => h("div", { class: i ? "muted small" : null }, t)) : ["—"]));
    for (const [state, button] of Object.entries(row.orders)) button.hidden = b.state === state;
    const cooldown = pick(b, "cooldown_s", "cooldown");
    set(c.opened, b.opened_at ? h("span", { title: b.opened_at }, fmtTime(b.opened_at)) : "never",
      typeof cooldown === "number" && (b.state === "open" || b.state === "half_open") ? h("div", { class: "muted small" }, "cooldown " + span(cooldown)) : null);
    tickRow(row);
  }

  function probesText(b) {
    const n = Array.isArray(b.probes) ? b.probes.length : 0;
    const allowed = pick(b, "probes_allowed", "config.probes");
    const needed = pick(b, "successes_needed", "config.successes");
    if (b.state !== "half_open" && !n) return "";
    let s = typeof allowed === "number" ? `${n} of ${allowed} probe${allowed === 1 ? "" : "s"} running` : `${n} probe${n === 1 ? "" : "s"} running`;
    if (b.state === "half_open" && typeof needed === "number") s += `; closes after ${needed} success${needed === 1 ? "" : "es"}`;
    return s;
  }

  function lastOutcomes(b) {
    const parts = [];
    if (b.last_success_at) parts.push(h("span", { title: b.last_success_at }, "last ok " + fmtTime(b.last_success_at)));
    if (b.last_failure_at) parts.push(h("span", { title: b.last_failure_at }, "last failure " + fmtTime(b.last_failure_at)));
    if (!parts.length) return null;
    return h("div", { class: "muted small" }, ...parts.flatMap((p, i) => (i ? [", ", p] : [p])));
  }

  function lastError(b) {
    const e = pick(b, "last_error", "last_failure", "error");
    if (!e) return null;
    const text = typeof e === "string" ? e : [e.kind, e.message].filter(Boolean).join(": ");
    const at = typeof e === "object" ? pick(e, "at", "ts", "time") : pick(b, "last_error_at", "last_failure_at");
    return h("div", { class: "error-text small", title: text }, "Last error: ", text.length > 120 ? text.slice(0, 118) + "…" : text,
      at ? h("span", { class: "muted small" }, " (" + fmtTime(at) + ")") : null);
  }

  // The next-probe countdown: from next_probe_at when given, else from
  // half_open_in_s as of the answer.
  function tickRow(row) {
    const b = row.b;
    let left = null;
    const at = pick(b, "next_probe_at", "half_open_at");
    if (at) left = (Date.parse(at) - Date.now()) / 1000;
    else if (typeof b.half_open_in_s === "number") left = b.half_open_in_s - (Date.now() - row.fetchedAt) / 1000;
    let text;
    if (b.state === "half_open") text = "probing now";
    else if (b.state === "forced_open") text = "none until closed";
    else if (b.state !== "open" || left === null) text = "—";
    else text = left <= 0 ? "now (next call is a probe)" : "in " + fmtCountdown(left);
    if (row.cells.probe.textContent !== text) {
      set(row.cells.probe, text, at && left > 0 ? h("div", { class: "muted small" }, "at " + fmtTime(at)) : null);
    }
  }

  // Confirms, posts the order, says the result in the toast, and reads the
  // list again.
  async function onOrder(key, o) {
    const title = `${o.label} breaker ${key}`;
    if (!(await confirmAction(title, h("p", {}, "Breaker ", h("code", {}, key), " " + o.says), o.label))) return;
    try {
      const res = await api("breakers/" + enc(key) + "/" + o.action, { method: "POST" });
      const state = res && res.state ? res.state.replace(/_/g, " ") : o.state.replace(/_/g, " ");
      toast(res && res.changed === false ? `Breaker ${key} was already ${state}` : `Breaker ${key} is ${state}`);
    } catch (e) {
      toast(title + " failed: " + e.message, "error");
    }
    load();
  }

  // Confirms, posts, says the result in the toast, and reads the list again.
  async function reset(title, body, path, okLabel) {
    if (!(await confirmAction(title, body, okLabel))) return;
    try {
      const res = await api(path, { method: "POST" });
      const n = res && typeof res.reset === "number" ? res.reset : null;
      toast(n === null ? title + ": done" : `Reset ${n} breaker${n === 1 ? "" : "s"}`);
    } catch (e) {
      toast(title + " failed: " + e.message, "error");
    }
    load();
  }

  function onReset(key) {
    reset(`Reset breaker ${key}`, h("p", {}, "Breaker ", h("code", {}, key),
      " is deleted: the next call through it starts closed, with no history."),
    "breakers/" + enc(key) + "/reset", "Reset");
  }

  function onResetAll() {
    const n = rows.size;
    reset("Reset all breakers", `All ${n} breaker${n === 1 ? " is" : "s are"} deleted: every next call starts closed, with no history.`,
      "breakers/reset", "Reset all");
  }

  const ticker = setInterval(() => { for (const row of rows.values()) tickRow(row); }, 1000);
  const stopStream = follow({ onEvent: (ev) => { if (BREAKER_EVENTS.has(ev.kind)) soon(); } });
  load();

  return () => {
    stopped = true;
    stopStream();
    clearInterval(ticker);
    clearTimeout(pollTimer);
    clearTimeout(soonTimer);
  };
}
