// The dashboard's figures, measured in Debian's chromium (headless) against
// the real `keel serve`:
//   1. time to first render of the run page (navigation start to
//      svg[data-testid=dag][data-ready=true], measured in the page) for a
//      1,000-node run and a 100,000-item map, against a 10-node run's page
//      and against fetching the same API JSON with fetch() in the page;
//   2. bytes transferred for the first load of the runs list and of a run
//      page (CDP Network events, encoded sizes), with a cold and a warm cache;
//   3. the page's JS heap (after a GC, CDP Runtime.getHeapUsage) while a run
//      streams hundreds of thousands of live events to it (an hour at 100
//      events/s, compressed in time): the series must flatten.
//
// Usage: KEEL_BIN=build/cli/keel node bench/dashboard_bench.mjs [--quick] [--only=PART]
// (`make bench` runs it when chromium and node are there). --quick uses
// smaller runs. Prints a readable report on stdout; exits 1 when a figure
// could not be measured (a page that never became ready, say).
import { readFileSync } from "node:fs";
import { Keel, Browser, waitFor } from "../tests/browser/harness.mjs";

const QUICK = process.argv.includes("--quick");
// --only=render|bytes|heap runs one part.
const ONLY = (process.argv.find((a) => a.startsWith("--only=")) || "").slice(7) || null;
const part = (name) => ONLY === null || ONLY === name;
const DAG_NODES = 1000;
const MAP_ITEMS = QUICK ? 10000 : 100000;
const STREAM_ITEMS = QUICK ? 20000 : 180000; // two events an item: 360,000 events
const LOADS = 3;

// A layered DAG of `n` fn nodes, `width` to a layer, each after two nodes of
// the layer before.
function dagWorkflow(name, n, width) {
  const lines = ['local keel = require "keel"', "local nodes = {}"];
  lines.push(`for i = 0, ${n - 1} do`);
  lines.push(`  local after = {}`);
  lines.push(`  if i >= ${width} then`);
  lines.push(`    local layer = (i // ${width} - 1) * ${width}`);
  lines.push(`    after[1] = "n" .. (i - ${width})`);
  lines.push(`    local other = layer + (i + 1) % ${width}`);
  lines.push(`    if other ~= i - ${width} then after[2] = "n" .. other end`);
  lines.push(`  end`);
  lines.push(`  nodes[#nodes + 1] = keel.fn("n" .. i) { after = after, run = function() return i end }`);
  lines.push(`end`);
  lines.push(`return keel.workflow "${name}" (nodes)`);
  return lines.join("\n") + "\n";
}

// The browser tests' map workflow (items passed as a param on each start).
const MAP = readFileSync(new URL("../tests/browser/workflows/bigmap.lua", import.meta.url), "utf8");

// The map behind a wait, so the page is open before the events flow.
const STREAM = MAP.replace('return keel.workflow "bigmap" {', 'return keel.workflow "stream" {\n  keel.wait "go" { signal = "go" },')
  .replace('keel.fn "list" {', 'keel.fn "list" {\n    after = { "go" },');

const fmtMs = (ms) => (ms === null ? "-" : ms.toFixed(0) + " ms");
const fmtKiB = (b) => (b / 1024).toFixed(1) + " KiB";
const fmtMiB = (b) => (b / 1048576).toFixed(1) + " MiB";
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows.map((r) => r.map((c, i) => String(c).padEnd(widths[i])).join("  ")).join("\n");
}

// Loads /runs/ID afresh; resolves to ms from navigation start to data-ready.
async function renderTime(browser, id) {
  await browser.goto(`/runs/${id}`);
  await browser.page.locator('svg[data-testid=dag][data-ready="true"]').waitFor({ timeout: 60000 });
  await browser.page.waitForFunction(() => window.__keelReadyAt !== null, null, { timeout: 5000 });
  return browser.page.evaluate(() => window.__keelReadyAt);
}

// ms to fetch and parse the JSON a run page needs first (the run without
// its map items, and its laid-out graph), from inside the page.
async function apiTime(browser, id) {
  return browser.page.evaluate(async (run) => {
    const t0 = performance.now();
    const token = sessionStorage.getItem("keel.token");
    const headers = token ? { Authorization: "Bearer " + token } : {};
    await Promise.all([
      fetch(`/api/v1/runs/${run}?items=false`, { headers }).then((r) => r.json()),
      fetch(`/api/v1/runs/${run}/graph?layout=dot`, { headers }).then((r) => r.json()),
    ]);
    return performance.now() - t0;
  }, id);
}

async function renderFigures(keel, ids) {
  const browser = await Browser.launch({ name: "dashboard_bench-render", origin: keel.origin });
  try {
    const rows = [["run page", "first render (median of " + LOADS + ")", "all loads", "API JSON fetch", "vs 10-node page", "vs its API fetch"]];
    const results = {};
    for (const [label, id] of ids) {
      const times = [];
      for (let i = 0; i < LOADS; i++) times.push(await renderTime(browser, id));
      const api = median([await apiTime(browser, id), await apiTime(browser, id), await apiTime(browser, id)]);
      results[label] = { render: median(times), times, api };
    }
    const base = results[ids[0][0]].render;
    for (const [label] of ids) {
      const r = results[label];
      rows.push([label, fmtMs(r.render), r.times.map((t) => t.toFixed(0)).join(", "), fmtMs(r.api),
        (r.render / base).toFixed(1) + "x", (r.render / r.api).toFixed(1) + "x"]);
    }
    await browser.shot("map-run");
    browser.check();
    return table(rows);
  } finally {
    await browser.close();
  }
}

// Bytes of one navigation to `path`, by CDP Network events: each request's
// encodedDataLength at loadingFinished, or what it received so far when it
// is still open (the live stream).
async function loadBytes(browser, cdp, path, ready) {
  const seen = new Map();
  const onResponse = (e) => {
    seen.set(e.requestId, { url: e.response.url, bytes: 0, done: false, cached: e.response.fromDiskCache || e.response.fromMemoryCache, status: e.response.status });
  };
  const onData = (e) => {
    const r = seen.get(e.requestId);
    if (r && !r.done) r.bytes += e.encodedDataLength;
  };
  const onFinished = (e) => {
    const r = seen.get(e.requestId);
    if (r) {
      r.bytes = e.encodedDataLength;
      r.done = true;
    }
  };
  cdp.on("Network.responseReceived", onResponse);
  cdp.on("Network.dataReceived", onData);
  cdp.on("Network.loadingFinished", onFinished);
  await browser.goto(path);
  await browser.page.locator(ready).first().waitFor({ timeout: 60000 });
  await new Promise((r) => setTimeout(r, 1000)); // late requests (the stream's first bytes)
  cdp.off("Network.responseReceived", onResponse);
  cdp.off("Network.dataReceived", onData);
  cdp.off("Network.loadingFinished", onFinished);
  const all = [...seen.values()];
  return {
    bytes: all.reduce((s, r) => s + r.bytes, 0),
    requests: all.length,
    fromCache: all.filter((r) => r.cached || r.status === 304).length,
    api: all.filter((r) => r.url.includes("/api/")).reduce((s, r) => s + r.bytes, 0),
  };
}

async function byteFigures(keel, runId) {
  // No route interception here: it would turn the HTTP cache off.
  const browser = await Browser.launch({ name: "dashboard_bench-bytes", origin: keel.origin, intercept: false });
  try {
    const cdp = await browser.context.newCDPSession(browser.page);
    await cdp.send("Network.enable");
    const rows = [["initial load", "cache", "bytes (encoded)", "of which API", "requests", "from cache/304"]];
    for (const [label, path, ready] of [
      ["runs list /", "/", "table[data-testid=runs-table] tr[data-run-id]"],
      [`run page (${DAG_NODES} nodes)`, `/runs/${runId}`, 'svg[data-testid=dag][data-ready="true"]'],
    ]) {
      await cdp.send("Network.clearBrowserCache");
      const cold = await loadBytes(browser, cdp, path, ready);
      const warm = await loadBytes(browser, cdp, path, ready);
      rows.push([label, "cold", fmtKiB(cold.bytes), fmtKiB(cold.api), cold.requests, cold.fromCache]);
      rows.push([label, "warm", fmtKiB(warm.bytes), fmtKiB(warm.api), warm.requests, warm.fromCache]);
    }
    browser.check();
    return table(rows);
  } finally {
    await browser.close();
  }
}

async function eventsCommitted(keel) {
  const res = await fetch(keel.url + "/metrics", { signal: AbortSignal.timeout(10000) });
  const m = (await res.text()).match(/^keel_events_total (\d+)/m);
  return m ? Number(m[1]) : null;
}

// The run page of a run emitting `items` * 2 events as fast as keel writes
// them; the heap after a GC every second until the run is over and 5 s
// more.
async function heapFigures(keel) {
  const browser = await Browser.launch({ name: "dashboard_bench-heap", origin: keel.origin });
  try {
    const cdp = await browser.context.newCDPSession(browser.page);
    // What the page's stream connections received, to show it kept up.
    await cdp.send("Network.enable");
    const streams = new Set();
    let streamBytes = 0;
    cdp.on("Network.requestWillBeSent", (e) => {
      if (e.request.url.includes("/api/v1/stream")) streams.add(e.requestId);
    });
    cdp.on("Network.dataReceived", (e) => {
      if (streams.has(e.requestId)) streamBytes += e.dataLength;
    });
    const id = await keel.startRun("stream.lua", { items: STREAM_ITEMS });
    await keel.waitStatus(id, "waiting", 30000);
    await browser.goto(`/runs/${id}`);
    await browser.page.locator('svg[data-testid=dag][data-ready="true"]').waitFor({ timeout: 60000 });
    const startEvents = await eventsCommitted(keel);
    await keel.request("POST", `runs/${id}/signals/go`, null, { expect: 200 });
    const t0 = Date.now();
    const samples = [];
    let doneAt = null;
    while (doneAt === null || Date.now() - doneAt < 5000) {
      await cdp.send("HeapProfiler.collectGarbage");
      const heap = await cdp.send("Runtime.getHeapUsage");
      const dom = await browser.page.evaluate(() => document.getElementsByTagName("*").length);
      const events = (await eventsCommitted(keel)) - startEvents;
      samples.push({ s: (Date.now() - t0) / 1000, used: heap.usedSize, total: heap.totalSize, dom, events });
      if (doneAt === null) {
        const run = await keel.get(`runs/${id}`);
        if (["succeeded", "failed", "degraded", "cancelled"].includes(run.status)) doneAt = Date.now();
      }
      if (Date.now() - t0 > 600000) throw new Error("the streaming run did not finish within 10 minutes");
      await new Promise((r) => setTimeout(r, 1000));
    }
    const text = await browser.page.locator('svg[data-testid=dag] g.dag-node[data-node="work"]').textContent().catch(() => "");
    await browser.shot("streamed-run");
    browser.check();
    const rows = [["t", "events committed", "JS heap used (after GC)", "heap total", "DOM elements"]];
    const step = Math.max(1, Math.floor(samples.length / 20));
    samples.forEach((x, i) => {
      if (i % step === 0 || i === samples.length - 1) {
        rows.push([x.s.toFixed(0) + " s", x.events, fmtMiB(x.used), fmtMiB(x.total), x.dom]);
      }
    });
    const half = samples[Math.floor(samples.length / 2)];
    const last = samples[samples.length - 1];
    const peak = Math.max(...samples.map((x) => x.used));
    const verdict = `heap after GC: ${fmtMiB(samples[0].used)} at the start, ${fmtMiB(half.used)} half-way ` +
      `(${half.events} events), ${fmtMiB(last.used)} at the end (${last.events} events), peak ${fmtMiB(peak)}; ` +
      `second half grew ${(((last.used - half.used) / half.used) * 100).toFixed(1)}% ` +
      `for ${last.events - half.events} more events. The page's stream received ${fmtMiB(streamBytes)} ` +
      `over ${streams.size} connection(s). The map node said: ${(text || "").trim().replace(/\s+/g, " ")}`;
    return table(rows) + "\n" + verdict;
  } finally {
    await browser.close();
  }
}

const failed = [];

async function main() {
  const keel = await Keel.start({
    name: "dashboard_bench",
    workflows: {
      "dag10.lua": dagWorkflow("dag10", 10, 3),
      "dag1000.lua": dagWorkflow("dag1000", DAG_NODES, 25),
      "bigmap.lua": MAP,
      "stream.lua": STREAM,
    },
    args: ["--max-runs", "2"],
  });
  try {
    const dag10 = await keel.startRun("dag10.lua");
    const dag1000 = await keel.startRun("dag1000.lua");
    const map = part("render") ? await keel.startRun("bigmap.lua", { items: MAP_ITEMS }) : null;
    for (const id of [dag10, dag1000, map]) if (id) await keel.waitStatus(id, "succeeded", 300000);

    console.log(`dashboard_bench${QUICK ? " --quick" : ""}: keel serve ${keel.url}, chromium headless at 1280x800\n`);
    // A part that cannot be measured says why; the others still run.
    const report = async (title, measure) => {
      console.log(title);
      try {
        console.log(await measure());
      } catch (e) {
        failed.push(title);
        console.log("  could not be measured: " + e.message.split("\n")[0]);
      }
    };
    if (part("render")) {
      await report("Time to first render of the run page (navigation start to svg[data-ready=true]):", () =>
        renderFigures(keel, [
          ["10 nodes (baseline)", dag10],
          [`${DAG_NODES} nodes`, dag1000],
          [`map of ${MAP_ITEMS} items (collapsed)`, map],
        ]));
    }
    if (part("bytes")) {
      await report("\nBytes transferred for the initial load (CDP Network, encoded sizes):", () => byteFigures(keel, dag1000));
    }
    if (part("heap")) {
      await report(`\nJS heap of the run page while a ${STREAM_ITEMS}-item map streams about ${STREAM_ITEMS * 2} events to it:`,
        () => heapFigures(keel));
    }
    console.log(`\nscreenshots: ${keel.out.replace(/dashboard_bench$/, "")}dashboard_bench-*`);
  } finally {
    await keel.stop();
  }
  if (failed.length) {
    console.error(`dashboard_bench: ${failed.length} part(s) could not be measured`);
    process.exitCode = 1;
  }
}

main().catch((e) => {
  console.error("dashboard_bench failed: " + (e.stack || e.message));
  process.exit(1);
});
