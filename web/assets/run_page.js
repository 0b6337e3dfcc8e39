// The run page (/runs/RUN_ID, loaded by run.js): the header with the run's
// status and actions, the DAG (dag.js), the timeline (timeline.js) and the
// node panel (node_panel.js), kept live from GET /api/v1/stream?run=ID with
// the events applied once per animation frame. Main thread only.
import { api, enc } from "./api.js";
import { h, badge, fmtDuration } from "./ui.js";
import { createDag } from "./dag.js";
import { createTimeline } from "./timeline.js";
import { createPanel } from "./node_panel.js";
import { runHeader } from "./run_header.js";
import * as actions from "./run_actions.js";

const TIMELINE_EVENTS = 5000; // events read for the timeline at most
const PAGE = 1000;
const BUFFER = 20000; // stream events kept while the page loads
const ITEM = /^(.*)\[(\d+)\]$/;
// Events after which the run's live state (retrying, backing off, ...) is read again.
const STATE_EVENTS = new Set(["attempt_failed", "retry_scheduled", "attempt_started", "circuit_rejected",
  "node_waiting", "wait_started", "node_succeeded", "node_failed", "node_fallback", "run_resumed"]);
const NODE_STATUS = {
  node_started: "running", attempt_started: "running", attempt_failed: "retrying",
  retry_scheduled: "backing_off", circuit_rejected: "breaker_open", node_waiting: "waiting",
  node_succeeded: "succeeded", node_failed: "failed", node_fallback: "fallback",
  node_cancelled: "cancelled", node_skipped: "skipped",
};

// mountRun(root, route, early): `early` holds the graph request and the
// stream run.js started ({graph, stream.take(onEvent, onState)}).
// Returns the unmount function.
export function mountRun(root, route, early) {
  const id = route.params[0];
  let run = null; // the run detail, kept current
  let stopped = false, loaded = false, timelineSeq = 0, timelineCapped = false, timelineReady = false;
  const timelineWaiting = []; // live events that arrive while the timeline's events are read
  let queue = [], frame = 0, refetching = false, panelTimer = 0, stateTimer = 0;
  const countsAt = new Map(); // map node -> when its counts were read (performance.now())
  const buffer = [];

  const header = runHeader({
    id,
    onResume: () => actions.resume(run ? run.run_id : id).then((r) => r && refetch()),
    onCancel: () => actions.cancel(run ? run.run_id : id).then((r) => r && refetch()),
    onFork: () => actions.fork(run ? run.run_id : id, run && run.params),
  });
  const signal = actions.signalForm(id, null, () => refetch());
  signal.el.hidden = true;
  header.el.addEventListener("waiting-for", (e) => signal.setName(e.detail));

  const panel = createPanel({
    run: id,
    onRerunFrom: (node) => actions.rerunFrom(run ? run.run_id : id, node).then((r) => r && refetch()),
    onForkFrom: (node) => actions.fork(run ? run.run_id : id, run && run.params, node),
    onClose: () => setNodeQuery(null),
    hasItems: (name) => !!dag.itemsOf(name),
    // The recorded inner nodes of a call or loop ("c/fetch", "r#2/x").
    innerOf: (name) => (run ? run.nodes : []).filter((x) => x.node.startsWith(name + "/") || x.node.startsWith(name + "#")),
  });
  const openNode = (name, opts) => { setNodeQuery(name); panel.open(name, opts); };

  const dag = createDag({ onOpen: (n) => openNode(n), onExpand: (n) => openNode(n, { items: true }) });
  const dagMsg = h("div", { class: "dag-msg", role: "status" }, "Loading the graph…");
  const nodeList = h("div", { class: "node-list" });
  const dagBox = h("section", { class: "dag-box", "aria-label": "Graph" },
    h("div", { class: "dag-tools" },
      h("h2", {}, "Graph"),
      h("span", { class: "muted dag-hint" }, "Drag to pan, wheel to zoom, Tab to a node and Enter to open it."),
      h("button", { type: "button", "aria-label": "Zoom in", onclick: () => dag.zoom(1.25) }, "+"),
      h("button", { type: "button", "aria-label": "Zoom out", onclick: () => dag.zoom(0.8) }, "−"),
      h("button", { type: "button", onclick: () => dag.fit() }, "Fit")),
    h("div", { class: "dag-frame" }, dag.el, dagMsg), nodeList);
  const timeline = createTimeline({ onOpen: (n) => openNode(n) });
  const tlBox = h("section", { class: "tl-box", "aria-label": "Timeline" }, h("h2", {}, "Timeline"), timeline.el);

  root.append(h("div", { class: "run-page" }, header.el, signal.el, dagBox, tlBox), panel.el);

  const onKey = (e) => { if (e.key === "Escape" && panel.current()) panel.close(); };
  document.addEventListener("keydown", onKey);

  // Live events: buffered until the first load is done, then applied per frame.
  early.stream.take(
    (e) => {
      if (!loaded) {
        if (buffer.length < BUFFER) buffer.push(e);
        return;
      }
      queue.push(e);
      if (queue.length >= 2000) { // no frame came (a tab hidden meanwhile): apply now
        cancelAnimationFrame(frame);
        clearTimeout(frame);
        flush();
      } else {
        scheduleFlush();
      }
    },
    (s) => header.setLive(s));

  // Once per animation frame; a hidden tab gets no frames, so there the
  // events are applied every half second instead and the queue stays short.
  function scheduleFlush() {
    if (frame) return;
    if (document.hidden) frame = setTimeout(() => { frame = 0; if (!stopped) flush(); }, 500);
    else frame = requestAnimationFrame(flush);
  }

  function flush() {
    frame = 0;
    const batch = queue;
    queue = [];
    let touchedPanel = false, finished = false, stateMoved = false;
    for (const e of batch) {
      applyEvent(e);
      if (STATE_EVENTS.has(e.kind)) stateMoved = true;
      if (e.node && e.node === panel.current()) touchedPanel = true;
      if (e.kind === "run_finished" || e.kind === "run_interrupted") finished = true;
    }
    header.update(run, dag);
    if (touchedPanel && !panelTimer) panelTimer = setTimeout(() => { panelTimer = 0; panel.refresh(); }, 500);
    if (stateMoved && !stateTimer && run) stateTimer = setTimeout(() => { stateTimer = 0; if (run) header.loadState(run); }, 700);
    if (finished) refetch();
  }

  function applyEvent(e) {
    if (!timelineReady) {
      if (timelineWaiting.length < BUFFER) timelineWaiting.push(e);
    } else if (e.seq > timelineSeq && !timelineCapped) {
      timeline.apply(e);
      timelineSeq = e.seq;
    }
    if (!run) return;
    const d = e.data || {};
    switch (e.kind) {
      case "run_started": case "run_resumed": case "auto_resumed": run.status = "running"; break;
      case "run_finished": run.status = d.status || run.status; if (d.error) run.error = d.error; break;
      case "run_interrupted": run.status = "interrupted"; break;
      case "llm_call":
        run.usage.prompt_tokens += d.prompt_tokens || 0;
        run.usage.completion_tokens += d.completion_tokens || 0;
        run.usage.cost += d.cost || 0;
        break;
      case "wait_started": if (d.signal) signal.setName(d.signal); break;
      default:
    }
    if (!e.node) return;
    const m = ITEM.exec(e.node);
    if (m) {
      const items = dag.itemsOf(m[1]);
      // Only events that arrived after the counts were read are added.
      if (!items || !(e.at > (countsAt.get(m[1]) ?? Infinity))) return;
      const it = Object.assign({}, items);
      if (e.kind === "node_started") it.running++;
      else if (NODE_STATUS[e.kind] && /^node_(succeeded|failed|fallback|cancelled|skipped)$/.test(e.kind)) {
        it.running = Math.max(0, it.running - 1);
        if (e.kind === "node_succeeded") it.succeeded++;
        else if (e.kind === "node_cancelled" || e.kind === "node_skipped") it.cancelled++;
        else it.failed++;
      } else return;
      it.succeeded = Math.min(it.succeeded, it.total);
      it.failed = Math.min(it.failed, it.total - it.succeeded);
      it.cancelled = Math.min(it.cancelled, it.total - it.succeeded - it.failed);
      dag.setItems(m[1], it);
      return;
    }
    if (e.kind === "map_started" && dag.itemsOf(e.node)) {
      dag.setItems(e.node, Object.assign({}, dag.itemsOf(e.node), { total: d.items || 0 }));
    }
    if (e.kind === "map_finished" && dag.itemsOf(e.node)) { // the exact counts
      dag.setItems(e.node, { total: d.items || 0, succeeded: d.succeeded || 0, failed: d.failed || 0,
        cancelled: d.cancelled || 0, running: 0 });
    }
    const status = NODE_STATUS[e.kind];
    if (status) {
      dag.setStatus(e.node, status);
      listStatus(e.node, status);
    }
  }

  // The graph's map counts were read some time before it arrived; for a map
  // still running, the counts are read again by status (each a one-row page
  // of GET .../items), and item events are added from then on.
  function recount() {
    for (const name of dag.names()) {
      const it = dag.itemsOf(name);
      if (!it || (dag.statusOf(name) !== "running" && it.succeeded + it.failed + it.cancelled >= it.total)) continue;
      const count = (status) => api(`runs/${enc(id)}/nodes/${enc(name)}/items?limit=1&status=${status}`).then((p) => p.total);
      Promise.all(["succeeded", "failed", "cancelled", "running"].map(count)).then(([succeeded, failed, cancelled, running]) => {
        if (stopped) return;
        countsAt.set(name, performance.now());
        dag.setItems(name, Object.assign({}, dag.itemsOf(name), { succeeded, failed, cancelled, running }));
      }, () => {}); // the graph's counts stay
    }
  }

  // Reads the run detail again (after an action or when the run finished).
  async function refetch() {
    if (refetching || stopped) return;
    refetching = true;
    try {
      run = await api(`runs/${enc(id)}?items=false`);
      for (const n of run.nodes) {
        if (ITEM.test(n.node.split("/")[0])) continue;
        dag.setStatus(n.node, n.status);
        listStatus(n.node, n.status);
      }
      const g = await api(`runs/${enc(id)}/graph?layout=dot`).catch(() => null);
      if (g) for (const n of g.nodes) { dag.setStatus(n.name, n.status); if (n.items || n.inner) dag.setItems(n.name, n.items || n.inner); }
      afterRun();
    } catch (e) {
      header.error("Could not read the run again: " + e.message);
    } finally {
      refetching = false;
    }
  }

  function afterRun() {
    header.update(run, dag);
    timeline.setFinished(run.finished_at || (["running", "queued", "waiting"].includes(run.status) ? null : lastTs(run)));
    signal.el.hidden = run.status !== "waiting";
    header.loadState(run);
  }

  // When a stopped run (interrupted, waiting) has no finished_at, its bars
  // end at its last recorded moment, not at the clock.
  function lastTs(r) {
    if (r.started_at && r.active_s !== null && r.active_s !== undefined) return new Date(Date.parse(r.started_at) + r.active_s * 1000).toISOString();
    return null;
  }

  const listRows = new Map();
  function showNodeList(nodes) {
    const rows = nodes.filter((n) => !ITEM.test(n.node.split("/")[0])).slice(0, 2000).map((n) => {
      const cell = h("td", {}, badge(n.status));
      listRows.set(n.node, cell);
      return h("tr", { dataset: { node: n.node } },
        h("td", {}, h("button", { type: "button", class: "link", onclick: () => openNode(n.node) }, n.node)), cell,
        h("td", { class: "num" }, String(n.attempts)), h("td", { class: "num" }, fmtDuration(n.duration_s)),
        h("td", { class: "np-err" }, n.error || ""));
    });
    nodeList.replaceChildren(h("h3", {}, "Nodes"), h("table", {}, h("thead", {}, h("tr", {},
      ["Node", "Status", "Attempts", "Duration", "Error"].map((t) => h("th", {}, t)))), h("tbody", {}, rows)));
  }
  function listStatus(name, status) {
    const cell = listRows.get(name);
    if (cell) cell.replaceChildren(badge(status));
  }

  // The first load: the graph and the detail at once; the graph is drawn as
  // soon as it comes (the first render needs nothing else), then the header,
  // then the timeline's events page by page.
  (async () => {
    // The timeline's events are read once the graph is in (or failed): the
    // first render does not wait for their parsing.
    const timelineP = early.graph.then(() => new Promise((r) => setTimeout(r, 0))).then(loadTimeline);
    const { g, err: graphErr, at } = await early.graph;
    early.graphAt = at;
    if (stopped) return;
    const drawn = !!(g && g.layout);
    if (drawn) {
      performance.mark("keel:graph-received");
      dag.render(g);
      for (const n of g.nodes) if (dag.itemsOf(n.name)) countsAt.set(n.name, early.graphAt);
      recount();
      dagMsg.remove();
      await new Promise((resolve) => requestAnimationFrame(() => {
        dag.el.dataset.ready = "true";
        performance.measure("keel:graph-drawn", "keel:graph-received");
        resolve();
      }));
    }
    // The detail is read after the first drawing, with maps collapsed into
    // their counts (items=false): the graph needs nothing from it.
    const { r, err } = await api(`runs/${enc(id)}?items=false`).then((r) => ({ r }), (err) => ({ err }));
    if (stopped) return;
    if (err) {
      header.error(err.status === 404 ? `No run ${id}.` : "Could not load the run: " + err.message);
      if (!drawn) dagMsg.textContent = "";
      dag.el.dataset.ready = "true";
      return;
    }
    run = r;
    afterRun();
    if (!drawn) {
      dagMsg.textContent = "The graph cannot be drawn" +
        (graphErr ? ": " + graphErr.message : ": the server gave no layout (graph?layout=dot)") + ". The nodes are listed below.";
      dagMsg.classList.add("error-box");
      dag.el.classList.add("empty");
      showNodeList(run.nodes);
      requestAnimationFrame(() => { dag.el.dataset.ready = "true"; });
    }
    header.update(run, dag);
    const deep = route.query.get("node");
    if (deep) panel.open(deep);
    loaded = true;
    for (const e of buffer.splice(0)) queue.push(e);
    if (queue.length) scheduleFlush();
    await timelineP;
    timelineReady = true;
    // A partial read leaves attempts open: they end as their nodes did.
    if (timelineCapped) timeline.closeOpen((n) => dag.statusOf(n) || (run.nodes.find((x) => x.node === n) || {}).status);
    if (!timelineCapped) {
      for (const e of timelineWaiting.splice(0)) {
        if (e.seq > timelineSeq) { timeline.apply(e); timelineSeq = e.seq; }
      }
    }
    timelineWaiting.length = 0;
    if (queue.length) scheduleFlush();
  })();

  async function loadTimeline() {
    let after = 0, count = 0;
    timeline.setNote("Reading the run's events…");
    try {
      for (;;) {
        const page = await api(`runs/${enc(id)}/events?after=${after}&limit=${PAGE}`);
        if (stopped) return;
        const events = page.events || [];
        timeline.load(events);
        for (const e of events) if (e.kind === "wait_started" && e.data && e.data.signal) signal.setName(e.data.signal);
        count += events.length;
        if (events.length) timelineSeq = events[events.length - 1].seq;
        if (page.next_after === null || page.next_after === undefined) { timeline.setNote(""); break; }
        after = page.next_after;
        if (count >= TIMELINE_EVENTS) {
          timelineCapped = true;
          timeline.setNote(`This run has more than ${TIMELINE_EVENTS.toLocaleString("en-US")} events: the timeline shows the first ${count.toLocaleString("en-US")}.`);
          break;
        }
        await new Promise((r) => setTimeout(r, 0)); // let the page breathe between pages
      }
    } catch (e) {
      timeline.setNote("Could not read the run's events: " + e.message);
    }
  }

  function setNodeQuery(name) {
    const url = new URL(location.href);
    if (name) url.searchParams.set("node", name);
    else url.searchParams.delete("node");
    history.replaceState(history.state, "", url.pathname + url.search);
  }

  return () => {
    stopped = true;
    cancelAnimationFrame(frame);
    clearTimeout(frame);
    clearTimeout(panelTimer);
    clearTimeout(stateTimer);
    timeline.destroy();
    dag.destroy();
    header.destroy();
    document.removeEventListener("keydown", onKey);
    panel.el.remove();
    document.body.classList.remove("np-open");
  };
}

