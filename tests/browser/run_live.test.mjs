// A run page's DAG has one shape per node of the run's graph, and a node's
// status changes live when it finishes (a wait taking a signal sent through
// the API), without a reload; the run's status follows.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, workflowFiles, text, waitFor } from "./harness.mjs";

let env;
before(async () => {
  env = await setup({ name: "run_live", workflows: await workflowFiles("approval.lua", "flaky.lua") });
}, { timeout: 180000 });
after(async () => {
  await env?.teardown();
}, { timeout: 60000 });

test("the DAG has one shape per node and updates live when a node finishes", { timeout: 90000 }, async () => {
  const { keel, browser, page } = env;
  const id = await keel.startRun("approval.lua");
  await keel.waitStatus(id, "waiting");
  const graph = await keel.get(`runs/${id}/graph`);
  const names = graph.nodes.map((n) => n.name ?? n.node ?? n.id);

  await browser.goto(`/runs/${id}`);
  const dag = page.locator('svg[data-testid=dag][data-ready="true"]');
  await dag.waitFor();
  assert.equal(await dag.locator("g.dag-node").count(), names.length, "one g.dag-node per node of GET runs/ID/graph");
  for (const name of names) {
    const node = dag.locator(`g.dag-node[data-node="${name}"]`);
    assert.equal(await node.count(), 1, `one shape for node ${name}`);
    assert.ok((await text(node)).length > 0, `node ${name} shows text, not colour alone`);
  }
  const approval = dag.locator('g.dag-node[data-node="approval"]');
  assert.notEqual(await approval.getAttribute("data-status"), "succeeded");
  assert.equal(await dag.locator('g.dag-node[data-node="draft"]').getAttribute("data-status"), "succeeded");
  assert.match(await text(page.locator("[data-testid=run-status]")), /waiting/);
  await browser.shot("run-waiting");

  await page.evaluate(() => { window.__keelMarker = "same-document"; });
  let loads = 0;
  page.on("load", () => loads++);
  await keel.request("POST", `runs/${id}/signals/approve`, { by: "api" }, { expect: 200 });

  await dag.locator('g.dag-node[data-node="approval"][data-status="succeeded"]').waitFor({ timeout: 30000 });
  await dag.locator('g.dag-node[data-node="publish"][data-status="succeeded"]').waitFor({ timeout: 30000 });
  await waitFor("the run's status to say succeeded", async () =>
    /succeeded/.test(await text(page.locator("[data-testid=run-status]"))), { timeout: 30000 });
  assert.equal(await page.evaluate(() => window.__keelMarker), "same-document", "the page was not reloaded");
  assert.equal(loads, 0, "no load event after the signal");
  assert.match(await text(approval), /succeeded|✓/, "the finished node says so in text");
  await browser.shot("run");
  browser.check();
});

test("a run page opened as its run finishes ends showing the final state", { timeout: 60000 }, async () => {
  const { keel, browser, page } = env;
  // flaky.lua takes about a third of a second (two retries with backoff):
  // the page's first reads and its stream straddle the end of the run.
  const id = await keel.startRun("flaky.lua");
  await browser.goto(`/runs/${id}`);
  await keel.waitStatus(id, "succeeded");
  const dag = page.locator('svg[data-testid=dag][data-ready="true"]');
  await dag.waitFor();
  for (const name of ["fetch", "summary"]) {
    await dag.locator(`g.dag-node[data-node="${name}"][data-status="succeeded"]`).waitFor({ timeout: 10000 })
      .catch(async () => {
        const shown = await dag.locator(`g.dag-node[data-node="${name}"]`).getAttribute("data-status");
        throw new Error(`node ${name} still shows ${shown} 10 s after the run succeeded (no reload)`);
      });
  }
  await waitFor("the run's status to say succeeded", async () =>
    /succeeded/.test(await text(page.locator("[data-testid=run-status]"))), { timeout: 10000 });
  browser.check();
});
