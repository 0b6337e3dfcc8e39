// The run's DAG drawn as SVG from the server's Graphviz layout
// (GET runs/ID/graph?layout=dot): one g.dag-node per node with its status in
// words and a symbol, map progress bars, pan (drag), zoom (wheel, buttons,
// fit) and keyboard access (Tab to a node, Enter opens it). Live updates
// change one node's status or counts in place. Main thread only.
import { h, symbol, words } from "./ui.js";

const TERMINAL = new Set(["succeeded", "failed", "fallback", "cancelled", "skipped", "degraded"]);

// "map, 1000 items: 997 succeeded, 3 failed" -> {total, succeeded, ...}.
export function itemsFromKind(kind) {
  if (!/^map\b/.test(kind || "")) return null;
  const items = { total: 0, succeeded: 0, failed: 0, running: 0, cancelled: 0 };
  const m = /^map, (\d+) items?(?:: (.*))?/.exec(kind);
  if (!m) return items; // not started: counts come with map_started
  items.total = +m[1];
  for (const part of (m[2] || "").split(", ")) {
    const [count, what] = part.split(" ");
    if (what in items) items[what] = +count;
  }
  return items;
}

// Squeezes an SVG text of about `chars` characters into `width` when it
// would not fit (an estimate: no layout is read, so 1,000 nodes stay fast).
function fitText(el, chars, width) {
  if (chars * 6.3 > width) {
    el.setAttribute("textLength", String(width));
    el.setAttribute("lengthAdjust", "spacingAndGlyphs");
  } else {
    el.removeAttribute("textLength");
  }
}

// "map, 1000 items: ..." -> "map"; "call workflow x" -> "call".
function shortKind(kind) {
  return String(kind || "").split(/[ ,]/)[0];
}

// createDag({onOpen(name), onExpand(name)}) -> {el, render(graph), setStatus,
// setItems, itemsOf, statusOf, names, fit, zoom}.
export function createDag({ onOpen, onExpand }) {
  const svg = h("svg:svg", { "data-testid": "dag", class: "dag", role: "group", "aria-label": "Workflow graph" });
  const view = h("svg:g", { class: "dag-view" });
  svg.append(view);
  const nodes = new Map(); // name -> {g, rect, label, state, bar, items, status}
  let size = { width: 1, height: 1 };
  let tx = 0, ty = 0, scale = 1, moved = false, drawn = false;

  const apply = () => view.setAttribute("transform", `translate(${tx},${ty}) scale(${scale})`);

  // Fits the whole graph; when that would make the nodes unreadable (a big
  // graph) and `readable` is set, shows its start at a readable scale instead.
  function fit(readable = false) {
    const box = svg.getBoundingClientRect();
    if (!box.width || !box.height) return;
    const pad = 16;
    scale = Math.min((box.width - 2 * pad) / size.width, (box.height - 2 * pad) / size.height, 1.5);
    if (readable && scale < 0.45) {
      scale = 0.6;
      tx = pad;
      ty = pad;

    } else {
      scale = Math.max(scale, 0.02);
      tx = (box.width - size.width * scale) / 2;
      ty = pad + Math.max(0, (box.height - 2 * pad - size.height * scale) / 2);
    }
    // A wide, short graph (or a narrow screen): no tall empty frame around it.
    const need = size.height * scale + 2 * pad;
    if (readable && !svg.style.height && need < box.height * 0.8) {
      svg.style.height = svg.style.minHeight = Math.max(160, need) + "px";
      ty = pad;
    }
    apply();
  }

  function zoom(factor, cx, cy) {
    moved = true;
    const box = svg.getBoundingClientRect();
    if (cx === undefined) { cx = box.width / 2; cy = box.height / 2; }
    const next = Math.min(4, Math.max(0.02, scale * factor));
    tx = cx - (cx - tx) * (next / scale);
    ty = cy - (cy - ty) * (next / scale);
    scale = next;
    apply();
  }

  // Pan by dragging the background or a node; a click without movement opens.
  let drag = null;
  svg.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    drag = { x: e.clientX, y: e.clientY, tx, ty, moved: false };
  });
  svg.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 4) return;
    if (!drag.moved) svg.setPointerCapture(e.pointerId);
    drag.moved = true;
    moved = true;
    tx = drag.tx + dx;
    ty = drag.ty + dy;
    apply();
  });
  const endDrag = (e) => {
    if (drag && drag.moved) {
      svg.releasePointerCapture?.(e.pointerId);
      svg.dataset.dragged = "1";
      setTimeout(() => delete svg.dataset.dragged, 0);
    }
    drag = null;
  };
  svg.addEventListener("pointerup", endDrag);
  svg.addEventListener("pointercancel", endDrag);
  svg.addEventListener("wheel", (e) => {
    e.preventDefault();
    const box = svg.getBoundingClientRect();
    zoom(Math.exp(-e.deltaY * 0.0015), e.clientX - box.left, e.clientY - box.top);
  }, { passive: false });
  svg.addEventListener("click", (e) => {
    if (svg.dataset.dragged) return;
    const expand = e.target.closest("[data-testid=expand-items]");
    const g = e.target.closest("g.dag-node");
    if (expand && g) onExpand(g.dataset.node);
    else if (g) onOpen(g.dataset.node);
  });
  svg.addEventListener("keydown", (e) => {
    const g = e.target.closest && e.target.closest("g.dag-node");
    if (!g || (e.key !== "Enter" && e.key !== " ")) return;
    e.preventDefault();
    if (e.target.closest("[data-testid=expand-items]")) onExpand(g.dataset.node);
    else onOpen(g.dataset.node);
  });

  // Until the user pans or zooms, the graph follows the frame's size.
  const resize = new ResizeObserver(() => { if (drawn && !moved) fit(true); });
  resize.observe(svg);

  function render(graph) {
    size = { width: Math.max(1, graph.layout.width), height: Math.max(1, graph.layout.height) };
    const edges = h("svg:g", { class: "dag-edges", "aria-hidden": "true" });
    const marker = h("svg:defs", {}, h("svg:marker", { id: "dag-arrow", viewBox: "0 0 10 10", refX: "9", refY: "5",
      markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" }, h("svg:path", { d: "M0,0 L10,5 L0,10 z" })));
    for (const e of graph.edges) {
      if (e.path) edges.append(h("svg:path", { d: e.path, "marker-end": "url(#dag-arrow)" }));
    }
    const layer = h("svg:g", { class: "dag-nodes" });
    nodes.clear();
    for (const n of graph.nodes) layer.append(drawNode(n));
    view.replaceChildren(marker, edges, layer);
    drawn = true;
    requestAnimationFrame(() => fit(true));
  }

  function drawNode(n) {
    const w = n.w || 120, hgt = n.h || 50;
    const x = n.x - w / 2, y = n.y - hgt / 2;
    // Maps show their items; calls and loops what ran inside them ("inner").
    const items = n.items || n.inner || itemsFromKind(n.kind);
    const innerOnly = !n.items && !!n.inner;
    // A running node whose attempts are retrying, backing off or refused by
    // an open breaker shows that (the server's "state"), as live events do.
    const status = (n.status === "running" && n.state) || n.status || "pending";
    const g = h("svg:g", { class: "dag-node", tabindex: "0", role: "button",
      dataset: { node: n.name, status }, transform: `translate(${x},${y})` });
    const title = h("svg:title", {});
    const rect = h("svg:rect", { width: w, height: hgt, rx: "6" });
    const clip = Math.max(4, Math.floor((w - (items ? 36 : 12)) / 7));
    const name = n.name.length > clip ? n.name.slice(0, clip - 1) + "…" : n.name;
    const f = Math.max(1, hgt / 50); // map boxes hold three lines and a bar
    const label = h("svg:text", { x: "8", y: items ? String(13 * f) : String(hgt / 2 - 6), class: "dag-name" }, name);
    const state = h("svg:text", { x: "8", y: items ? String(36 * f) : String(hgt / 2 + 12), class: items ? "dag-state small" : "dag-state" });
    g.append(title, rect, label, state);
    const rec = { g, rect, state, title, name: n.name, kind: n.kind, status, items, innerOnly, w, hgt };
    if (items) {
      const bw = w - 16, by = String(hgt - 8);
      rec.barBg = h("svg:rect", { x: "8", y: by, width: bw, height: "4", class: "dag-bar-bg" });
      rec.barOk = h("svg:rect", { x: "8", y: by, width: "0", height: "4", class: "dag-bar-ok" });
      rec.barBad = h("svg:rect", { x: "8", y: by, width: "0", height: "4", class: "dag-bar-bad" });
      rec.progress = h("svg:text", { x: "8", y: String(25 * f), class: "dag-progress" });
      const expand = h("svg:g", { "data-testid": "expand-items", class: "dag-expand", tabindex: "0", role: "button",
        "aria-label": "List the items of " + n.name }, h("svg:title", {}, "List the items"),
        h("svg:rect", { x: String(w - 26), y: "3", width: "22", height: "15", rx: "3" }),
        h("svg:text", { x: String(w - 15), y: "14", "text-anchor": "middle" }, "☰"));
      g.append(rec.barBg, rec.barOk, rec.barBad, rec.progress, expand);
    }
    nodes.set(n.name, rec);
    paint(rec);
    return g;
  }

  function paint(rec) {
    rec.g.dataset.status = rec.status;
    rec.g.setAttribute("class", "dag-node st-" + rec.status);
    // The status in words always; the kind only when the box has room.
    const room = (rec.w - 14) / 6.3; // characters of 11px text that fit
    let line = symbol(rec.status) + " " + words(rec.status);
    const kind = shortKind(rec.kind);
    if (!rec.items && kind && line.length + 3 + kind.length <= room) line += " · " + kind;
    rec.state.textContent = line;
    fitText(rec.state, line.length, rec.w - 14);
    let text = rec.name + ": " + words(rec.status) + " (" + (rec.kind || "node") + ")";
    if (rec.items) {
      const it = rec.items;
      const done = it.succeeded + it.failed + it.cancelled;
      // Plain digits, as in "412/1000, 3 failed".
      const progress = rec.innerOnly
        ? done + " ran" + (it.failed ? ", " + it.failed + " failed" : "") + (it.running ? ", " + it.running + " running" : "")
        : done + "/" + it.total + (it.failed ? ", " + it.failed + " failed" : "");
      rec.progress.textContent = progress;
      fitText(rec.progress, progress.length * 0.9, rec.w - 14);
      const bw = rec.w - 16, total = Math.max(1, it.total);
      rec.barOk.setAttribute("width", String(bw * it.succeeded / total));
      rec.barBad.setAttribute("x", String(8 + bw * it.succeeded / total));
      rec.barBad.setAttribute("width", String(bw * (it.failed + it.cancelled) / total));
      text += (rec.innerOnly ? "; inner nodes " + progress : "; items " + progress + (it.running ? ", " + it.running + " running" : ""));
    }
    rec.title.textContent = text;
    rec.g.setAttribute("aria-label", text);
  }

  return {
    el: svg,
    render,
    fit() { moved = false; fit(); },
    zoom,
    destroy() { resize.disconnect(); },
    names: () => [...nodes.keys()],
    has: (name) => nodes.has(name),
    statusOf: (name) => (nodes.get(name) || {}).status,
    // A map's item counts (null for calls, loops and plain nodes).
    itemsOf: (name) => { const r = nodes.get(name); return r && !r.innerOnly ? r.items || null : null; },
    doneCount: () => [...nodes.values()].filter((r) => TERMINAL.has(r.status)).length,
    setStatus(name, status) {
      const rec = nodes.get(name);
      if (!rec || rec.status === status) return;
      rec.status = status;
      paint(rec);
    },
    // Sets a map's item counts, or a call's or loop's inner counts.
    setItems(name, items) {
      const rec = nodes.get(name);
      if (!rec || !rec.items) return;
      rec.items = items;
      paint(rec);
    },
    focus(name) {
      const rec = nodes.get(name);
      if (rec) rec.g.focus();
    },
  };
}
