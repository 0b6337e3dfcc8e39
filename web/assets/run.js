// The run page (/runs/RUN_ID): the header with the run's status and
// actions, the DAG (dag.js), the timeline (timeline.js) and the node panel
// (node_panel.js), kept live from GET /api/v1/stream?run=ID with the events
// applied once per animation frame. Main thread only.
import { api, enc, follow } from "./api.js";
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
const NODE_STATUS = {
  node_started: "running", attempt_started: "running", attempt_failed: "retrying",
  retry_scheduled: "backing_off", circuit_rejected: "breaker_open", node_waiting: "waiting",
  node_succeeded: "succeeded", node_failed: "failed", node_fallback: "fallback",
  node_cancelled: "cancelled", node_skipped: "skipped",
};

function linkCss() {
  if (document.querySelector("link[data-page=run]")) return;
  document.head.append(h("link", { rel: "stylesheet", href: "/assets/run.css", dataset: { page: "run" } }));
}

export function mount(root, route) {
  linkCss();
  const id = route.params[0];
  let run = null; // the run detail, kept current
  let stopped = false, loaded = false, timelineSeq = 0, timelineCapped = false, timelineReady = false;
  const timelineWaiting = []; // live events that arrive while the timeline's events are read
  let queue = [], frame = 0, refetching = false, panelTimer = 0;
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
  const stopFollow = follow({
    run: id,
    onEvent: (e) => {
      if (!loaded) {
        if (buffer.length < BUFFER) buffer.push(e);
        return;
      }
      queue.push(e);
      if (!frame) frame = requestAnimationFrame(flush);
    },
    onState: (s) => header.setLive(s),
  });

  function flush() {
    frame = 0;
    const batch = queue;
    queue = [];
    let touchedPanel = false, finished = false;
    for (const e of batch) {
      applyEvent(e);
      if (e.node && panel.current() && (e.node === panel.current() || e.node.startsWith(panel.current() + "["))) touchedPanel = true;
      if (e.kind === "run_finished" || e.kind === "run_interrupted") finished = true;
    }
    header.update(run, dag);
    if (touchedPanel && !panelTimer) panelTimer = setTimeout(() => { panelTimer = 0; panel.refresh(); }, 1000);
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
      if (!items) return;
      const it = Object.assign({}, items);
      if (e.kind === "node_started") it.running++;
      else if (NODE_STATUS[e.kind] && /^node_(succeeded|failed|fallback|cancelled|skipped)$/.test(e.kind)) {
        it.running = Math.max(0, it.running - 1);
        if (e.kind === "node_succeeded") it.succeeded++;
        else if (e.kind === "node_cancelled" || e.kind === "node_skipped") it.cancelled++;
        else it.failed++;
      } else return;
      dag.setItems(m[1], it);
      return;
    }
    if (e.kind === "map_started" && dag.itemsOf(e.node)) {
      dag.setItems(e.node, Object.assign({}, dag.itemsOf(e.node), { total: d.items || 0 }));
    }
    const status = NODE_STATUS[e.kind];
    if (status) {
      dag.setStatus(e.node, status);
      listStatus(e.node, status);
    }
  }

  // Reads the run detail again (after an action or when the run finished).
  async function refetch() {
    if (refetching || stopped) return;
    refetching = true;
    try {
      run = await api(`runs/${enc(id)}`);
      for (const n of run.nodes) {
        if (ITEM.test(n.node.split("/")[0])) continue;
        dag.setStatus(n.node, n.status);
        listStatus(n.node, n.status);
      }
      const g = await api(`runs/${enc(id)}/graph?layout=dot`).catch(() => null);
      if (g) for (const n of g.nodes) { dag.setStatus(n.name, n.status); if (n.items) dag.setItems(n.name, n.items); }
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

  // The first load: the graph (for the first render) and the detail at once,
  // then the timeline's events page by page.
  (async () => {
    const graphP = api(`runs/${enc(id)}/graph?layout=dot`).then((g) => ({ g }), (err) => ({ err }));
    try {
      run = await api(`runs/${enc(id)}`);
    } catch (e) {
      header.error(e.status === 404 ? `No run ${id}.` : "Could not load the run: " + e.message);
      dagMsg.textContent = "";
      dag.el.dataset.ready = "true";
      return;
    }
    if (stopped) return;
    afterRun();
    const { g, err } = await graphP;
    if (stopped) return;
    if (g && g.layout) {
      dag.render(g);
      dagMsg.remove();
    } else {
      dagMsg.textContent = "The graph cannot be drawn" +
        (err ? ": " + err.message : ": the server gave no layout (graph?layout=dot)") + ". The nodes are listed below.";
      dagMsg.classList.add("error-box");
      dag.el.classList.add("empty");
      showNodeList(run.nodes);
    }
    requestAnimationFrame(() => { dag.el.dataset.ready = "true"; });
    header.update(run, dag);
    const deep = route.query.get("node");
    if (deep) panel.open(deep);
    loaded = true;
    for (const e of buffer.splice(0)) queue.push(e);
    await loadTimeline();
    timelineReady = true;
    if (!timelineCapped) {
      for (const e of timelineWaiting.splice(0)) {
        if (e.seq > timelineSeq) { timeline.apply(e); timelineSeq = e.seq; }
      }
    }
    timelineWaiting.length = 0;
    if (queue.length && !frame) frame = requestAnimationFrame(flush);
  })();

  async function loadTimeline() {
    let after = 0, count = 0;
    try {
      for (;;) {
        const page = await api(`runs/${enc(id)}/events?after=${after}&limit=${PAGE}`);
        if (stopped) return;
        const events = page.events || [];
        timeline.load(events);
        for (const e of events) if (e.kind === "wait_started" && e.data && e.data.signal) signal.setName(e.data.signal);
        count += events.length;
        if (events.length) timelineSeq = events[events.length - 1].seq;
        if (page.next_after === null || page.next_after === undefined) break;
        after = page.next_after;
        if (count >= TIMELINE_EVENTS) {
          timelineCapped = true;
          timeline.closeOpen((n) => dag.statusOf(n) || (run.nodes.find((x) => x.node === n) || {}).status);
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
    stopFollow();
    cancelAnimationFrame(frame);
    clearTimeout(panelTimer);
    timeline.destroy();
    dag.destroy();
    header.destroy();
    document.removeEventListener("keydown", onKey);
    panel.el.remove();
    document.body.classList.remove("np-open");
  };
}

