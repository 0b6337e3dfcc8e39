// The run's timeline (Gantt), built from its events: one row per node, one
// bar per attempt coloured and labelled by outcome, backoff gaps dashed with
// their delay, hedges as thin bars, timeouts and rejections marked, waits in
// their own style; a map's items are folded into the map's row (their span
// and counts) and its first items can be unfolded. State is bounded: at most
// MAX_ROWS rows, MAX_ATTEMPTS attempts per row, ITEM_ROWS item rows per map.
// Main thread only.
import { h, fmtDuration, words } from "./ui.js";

const MAX_ROWS = 1000;
const MAX_ATTEMPTS = 100;
const ITEM_ROWS = 200;
const ROW = 20, AXIS = 22;
let LABEL = 190; // the names' column; narrower on phones
const ITEM = /^(.*)\[(\d+)\]$/;
const END = { node_succeeded: "succeeded", node_failed: "failed", node_fallback: "failed",
  node_cancelled: "cancelled", node_skipped: "skipped" };

export function createTimeline({ onOpen }) {
  const rows = new Map(); // name -> row
  const order = []; // row names in first-seen order (top-level rows)
  const expanded = new Set();
  let hidden = 0, t0 = null, tMax = 0, open = 0, note = "", signal = null, finishedAt = null;
  let dirty = false, lastDraw = 0, timer = 0;

  const svg = h("svg:svg", { class: "tl-svg", role: "group", "aria-label": "Timeline of attempts" });
  const detail = h("div", { class: "tl-detail muted", "aria-live": "polite" }, "Hover or focus a bar for its details.");
  const noteEl = h("p", { class: "tl-note muted" });
  const scroller = h("div", { class: "tl-scroll" }, svg);
  const el = h("div", { "data-testid": "timeline", class: "timeline" }, noteEl, scroller, detail);

  function row(name, parent = null) {
    let r = rows.get(name);
    if (r) return r;
    if (!parent && order.length >= MAX_ROWS) { hidden++; return null; }
    r = { name, parent, attempts: [], gaps: [], hedges: [], wait: null, items: null, children: [] };
    rows.set(name, r);
    if (parent) parent.children.push(r);
    else order.push(name);
    return r;
  }

  function apply(e) {
    if (!e.node && e.kind !== "run_started" && e.kind !== "run_resumed") return;
    const t = Date.parse(e.ts);
    if (t0 === null || t < t0) t0 = t;
    tMax = Math.max(tMax, t);
    if (!e.node) return;
    const m = ITEM.exec(e.node.split("/")[0]);
    if (m && !e.node.includes("/")) {
      const map = row(m[1]);
      if (!map) return;
      const it = map.items || (map.items = { start: t, end: t, done: 0, failed: 0, running: 0 });
      it.start = Math.min(it.start, t);
      it.end = Math.max(it.end, t);
      if (e.kind === "node_started") it.running++;
      else if (END[e.kind]) {
        it.running = Math.max(0, it.running - 1);
        it.done++;
        if (e.kind !== "node_succeeded") it.failed++;
      }
      if (+m[2] <= ITEM_ROWS) record(row(e.node, map), e, t);
    } else if (!m) {
      const r = row(e.node);
      if (r) record(r, e, t);
    }
    dirty = true;
  }

  function record(r, e, t) {
    const d = e.data || {};
    const cur = r.attempts[r.attempts.length - 1];
    switch (e.kind) {
      case "node_started":
      case "attempt_started": {
        const gap = r.gaps[r.gaps.length - 1];
        if (gap && gap.end === null) gap.end = t;
        if (r.attempts.length >= MAX_ATTEMPTS) r.attempts.shift();
        r.attempts.push({ n: d.attempt || r.attempts.length + 1, start: t, end: null, outcome: "running", error: null });
        open++;
        break;
      }
      case "attempt_failed":
        if (cur && cur.end === null) {
          close(cur, t, d.kind === "timeout" || d.kind === "cancelled" ? d.kind : "failed");
          cur.error = (d.kind ? d.kind + ": " : "") + (d.message || "");
        }
        break;
      case "retry_scheduled":
        if (r.gaps.length >= MAX_ATTEMPTS) r.gaps.shift();
        r.gaps.push({ start: t, end: null, delay: d.delay });
        break;
      case "circuit_rejected":
        if (cur && cur.end === null) close(cur, t, "rejected");
        else r.attempts.push({ n: r.attempts.length + 1, start: t, end: t, outcome: "rejected", error: "breaker " + (d.key || "") + " open" });
        break;
      case "hedge_started":
        if (r.hedges.length < MAX_ATTEMPTS) r.hedges.push({ start: t, end: null, n: d.hedge });
        break;
      case "wait_started":
        r.wait = { start: t, end: null, what: d.signal ? "signal " + d.signal : "timer" };
        if (d.signal) signal = d.signal;
        break;
      case "node_waiting":
        if (cur && cur.end === null) { cur.outcome = "waiting"; }
        break;
      default:
        if (END[e.kind]) {
          if (cur && cur.end === null) {
            close(cur, t, END[e.kind]);
            if (d.message && !cur.error) cur.error = (d.kind ? d.kind + ": " : "") + d.message;
          }
          for (const x of r.hedges) if (x.end === null) x.end = t;
          if (r.wait && r.wait.end === null) r.wait.end = t;
        }
    }
  }

  function close(a, t, outcome) {
    a.end = t;
    a.outcome = outcome;
    open = Math.max(0, open - 1);
  }

  // Draws at most every 250 ms (1 s for big timelines) while events arrive.
  function schedule() {
    if (!dirty || timer) return;
    const wait = Math.max(0, lastDraw + (rows.size > 300 ? 1000 : 250) - performance.now());
    timer = setTimeout(() => requestAnimationFrame(() => { timer = 0; draw(); }), wait);
  }

  function visibleRows() {
    const out = [];
    for (const name of order) {
      const r = rows.get(name);
      out.push(r);
      if (expanded.has(name)) for (const c of r.children) out.push(c);
    }
    return out;
  }

  function draw() {
    dirty = false;
    lastDraw = performance.now();
    noteEl.textContent = note + (hidden ? ` Only the first ${MAX_ROWS} nodes are drawn.` : "");
    const list = visibleRows();
    if (t0 === null || list.length === 0) {
      svg.replaceChildren();
      svg.setAttribute("height", "0");
      noteEl.textContent = note || "No attempts yet.";
      return;
    }
    const width = Math.max(300, scroller.clientWidth || 900);
    LABEL = width < 600 ? 110 : 190;
    const now = Date.now();
    const tEnd = Math.max(tMax, finishedAt !== null ? finishedAt : open > 0 ? now : tMax, t0 + 1);
    const span = tEnd - t0;
    const plot = width - LABEL - 12;
    const X = (t) => LABEL + ((t - t0) / span) * plot;
    const height = AXIS + list.length * ROW + 4;
    svg.setAttribute("width", String(width));
    svg.setAttribute("height", String(height));
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const parts = [axis(X, span, height)];
    list.forEach((r, i) => parts.push(drawRow(r, AXIS + i * ROW, X, tEnd)));
    svg.replaceChildren(...parts);
  }

  function axis(X, span, height) {
    const g = h("svg:g", { class: "tl-axis", "aria-hidden": "true" });
    const step = niceStep(span / 6);
    for (let s = 0; s <= span; s += step) {
      const x = X(t0 + s);
      g.append(h("svg:line", { x1: x, x2: x, y1: AXIS - 4, y2: height }),
        h("svg:text", { x: x + 2, y: 12 }, fmtDuration(s / 1000) || "0"));
    }
    return g;
  }

  function drawRow(r, y, X, tEnd) {
    const g = h("svg:g", { class: "tl-row" + (r.parent ? " tl-item" : "") });
    const max = LABEL < 190 ? (r.items ? 6 : 14) : (r.items ? 11 : 26);
    const label = r.name.length > max ? r.name.slice(0, max - 1) + "…" : r.name;
    g.append(h("svg:text", { x: r.parent ? 14 : 4, y: y + 14, class: "tl-label" }, label, h("svg:title", {}, r.name)));
    if (r.items) {
      const it = r.items;
      const open = expanded.has(r.name);
      const txt = (open ? "▾ " : "▸ ") + it.done.toLocaleString("en-US") +
        (LABEL < 190 ? "" : " items" + (it.failed ? ", " + it.failed + " ✗" : ""));
      const toggle = h("svg:text", { x: LABEL - 6, y: y + 14, class: "tl-expand", tabindex: "0", role: "button", "text-anchor": "end",
        "aria-expanded": String(open), "aria-label": (open ? "Fold" : "Unfold") + ` the items of ${r.name}: ${it.done} done, ${it.failed} failed`,
        dataset: { map: r.name } }, txt);
      g.append(h("svg:rect", { x: X(it.start), y: y + 13, width: Math.max(2, X(it.end) - X(it.start)), height: 4, class: "tl-items" },
        h("svg:title", {}, `items of ${r.name}: ${it.done} done, ${it.failed} failed, ${it.running} running`)), toggle);
    }
    if (r.wait) {
      const end = r.wait.end === null ? tEnd : r.wait.end;
      g.append(h("svg:rect", { x: X(r.wait.start), y: y + 4, width: Math.max(2, X(end) - X(r.wait.start)), height: 12, class: "tl-wait" },
        h("svg:title", {}, "waiting for " + r.wait.what)));
    }
    for (const gap of r.gaps) {
      const end = gap.end === null ? Math.min(tEnd, gap.start + (gap.delay || 0) * 1000) : gap.end;
      const x1 = X(gap.start), x2 = X(end);
      g.append(h("svg:line", { x1, x2: Math.max(x1 + 1, x2), y1: y + 10, y2: y + 10, class: "tl-gap" }));
      if (x2 - x1 > 34) g.append(h("svg:text", { x: (x1 + x2) / 2, y: y + 8, class: "tl-gap-label", "text-anchor": "middle" }, "wait " + gap.delay + "s"));
    }
    for (const a of r.attempts) {
      const end = a.end === null ? tEnd : a.end;
      const x = X(a.start), w = Math.max(3, X(end) - x);
      const text = `${r.name} attempt ${a.n}: ${words(a.outcome)}, ${fmtDuration((end - a.start) / 1000)}` +
        (a.error ? " — " + a.error : "");
      const bar = h("svg:rect", { x, y: y + 3, width: w, height: 14, rx: 2, class: "tl-bar o-" + a.outcome,
        "data-testid": "bar", tabindex: "0", role: "button", "aria-label": text, dataset: { node: r.name } },
      h("svg:title", {}, text));
      g.append(bar);
      const mark = { failed: "✗", timeout: "◷", rejected: "⊗", cancelled: "⊘" }[a.outcome];
      if (mark) g.append(h("svg:text", { x: x + w + 2, y: y + 14, class: "tl-mark o-" + a.outcome, "aria-hidden": "true" }, mark));
      if (w > 70) g.append(h("svg:text", { x: x + 4, y: y + 14, class: "tl-bar-label", "aria-hidden": "true" }, words(a.outcome)));
    }
    for (const hd of r.hedges) {
      const end = hd.end === null ? tEnd : hd.end;
      g.append(h("svg:rect", { x: X(hd.start), y: y + 17, width: Math.max(2, X(end) - X(hd.start)), height: 2, class: "tl-hedge" },
        h("svg:title", {}, "hedged request " + (hd.n || ""))));
    }
    return g;
  }

  const show = (e) => {
    const bar = e.target.closest && e.target.closest("[data-testid=bar]");
    if (bar) detail.textContent = bar.getAttribute("aria-label");
  };
  svg.addEventListener("mouseover", show);
  svg.addEventListener("focusin", show);
  const activate = (target) => {
    const tog = target.closest("[data-map]");
    if (tog) {
      const name = tog.dataset.map;
      if (expanded.has(name)) expanded.delete(name);
      else expanded.add(name);
      draw();
      return;
    }
    const bar = target.closest("[data-testid=bar]");
    if (bar) onOpen(bar.dataset.node.replace(/\[\d+\]$/, (s) => s));
  };
  svg.addEventListener("click", (e) => activate(e.target));
  svg.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); activate(e.target); }
  });
  let lastWidth = 0;
  const resize = new ResizeObserver(() => {
    if (scroller.clientWidth !== lastWidth) { lastWidth = scroller.clientWidth; dirty = true; schedule(); }
  });
  resize.observe(scroller);
  const tick = setInterval(() => { if (open > 0) { dirty = true; schedule(); } }, 1000);

  return {
    el,
    apply(e) { apply(e); schedule(); },
    load(events) { for (const e of events) apply(e); dirty = true; schedule(); },
    setNote(text) { note = text; dirty = true; schedule(); },
    // The run's end (ISO time, or null while it runs): bars still open end there.
    setFinished(iso) { finishedAt = iso ? Date.parse(iso) : null; dirty = true; schedule(); },
    // After a partial read of the events: attempts left open take the final
    // status of their node (statusOf(name)) when it has one.
    closeOpen(statusOf) {
      for (const r of rows.values()) {
        const a = r.attempts[r.attempts.length - 1];
        const st = statusOf(r.name);
        if (a && a.end === null && st && END["node_" + st]) {
          close(a, finishedAt !== null ? finishedAt : tMax, st);
          a.error = "its end is not among the events read";
        }
      }
      dirty = true;
      schedule();
    },
    waitingSignal: () => signal,
    redraw: draw,
    destroy() { clearInterval(tick); clearTimeout(timer); resize.disconnect(); },
  };
}

function niceStep(raw) {
  const ms = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 15000, 30000, 60000, 120000,
    300000, 600000, 900000, 1800000, 3600000, 7200000, 21600000, 43200000, 86400000];
  return ms.find((s) => s >= raw) || 86400000 * Math.ceil(raw / 86400000);
}
