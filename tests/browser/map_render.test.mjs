// The page of a run with a 10,000-item map renders in under 2 s: from
// navigation start to svg[data-testid=dag][data-ready=true], measured in
// the page. The map is one node with its progress and an expand control.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, workflowFiles, text, waitFor } from "./harness.mjs";

const LIMIT_MS = 2000;
let env;
before(async () => {
  env = await setup({ name: "map_render", workflows: await workflowFiles("bigmap.lua") });
}, { timeout: 180000 });
after(async () => {
  await env?.teardown();
}, { timeout: 60000 });

// Loads /runs/ID afresh; resolves to ms from navigation start to data-ready.
async function renderTime(browser, id) {
  await browser.goto(`/runs/${id}`);
  const page = browser.page;
  await page.locator('svg[data-testid=dag][data-ready="true"]').waitFor({ timeout: 20000 });
  await page.waitForFunction(() => window.__keelReadyAt !== null, null, { timeout: 5000 });
  return page.evaluate(() => window.__keelReadyAt);
}

test("a 10,000-item map run renders its page in under 2 s", { timeout: 180000 }, async () => {
  const { keel, browser, page } = env;
  const id = await keel.startRun("bigmap.lua", { items: 10000 });
  await keel.waitStatus(id, "succeeded", 150000);
  // The API may answer from a cache up to a second old: measure the page
  // once the graph says the map is done (a page opened earlier is the
  // business of run_live's "opened as it finishes" test).
  await waitFor("GET graph?layout=dot to show the map done", async () => {
    const graph = await keel.get(`runs/${id}/graph?layout=dot`);
    const work = graph.nodes.find((n) => n.name === "work");
    return work && work.status === "succeeded";
  }, { timeout: 10000 });

  // Best of two loads, so that a burst of load on a shared machine does not
  // decide; both are printed.
  const times = [await renderTime(browser, id), await renderTime(browser, id)];
  const best = Math.min(...times);
  console.log(`10,000-item map run page: first render ${times.map((t) => t.toFixed(0) + " ms").join(", ")} ` +
    `(navigation start to svg[data-ready=true]); limit ${LIMIT_MS} ms`);
  assert.ok(best < LIMIT_MS, `the page took ${best.toFixed(0)} ms (best of ${times.length}), over ${LIMIT_MS} ms`);

  const dag = page.locator('svg[data-testid=dag][data-ready="true"]');
  assert.ok((await dag.locator("g.dag-node").count()) <= 10, "the map is collapsed to one node, not 10,000 shapes");
  const map = dag.locator('g.dag-node[data-node="work"]');
  assert.match(await text(map), /10,?000\s*\/\s*10,?000/, "the map node shows its progress");
  assert.ok((await page.locator("[data-testid=expand-items]").count()) >= 1, "the map has an expand control");
  await browser.shot("map-run");
  browser.check();
});
