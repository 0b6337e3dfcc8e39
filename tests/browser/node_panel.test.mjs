// The node panel of a node that failed twice then succeeded lists its three
// attempts: the two failures with their error text, then the success; the
// timeline has one bar per attempt and a bar opens the panel too.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, workflowFiles, text } from "./harness.mjs";

let env;
let runId;
before(async () => {
  env = await setup({ name: "node_panel", workflows: await workflowFiles("flaky.lua") });
  runId = await env.keel.startRun("flaky.lua");
  await env.keel.waitStatus(runId, "succeeded");
}, { timeout: 180000 });
after(async () => {
  await env?.teardown();
}, { timeout: 60000 });

test("the node panel shows the failed attempts of a retried node with their errors", { timeout: 60000 }, async () => {
  const { browser, page } = env;
  await browser.goto(`/runs/${runId}`);
  await page.locator('svg[data-testid=dag][data-ready="true"]').waitFor();
  await page.locator('svg[data-testid=dag] g.dag-node[data-node="fetch"]').click();
  const panel = page.locator("[data-testid=node-panel]");
  await panel.waitFor({ state: "visible" });
  const attempts = panel.locator("[data-testid=attempt]");
  await attempts.nth(2).waitFor();
  assert.equal(await attempts.count(), 3, "three attempts");
  for (const i of [0, 1]) {
    const t = await text(attempts.nth(i));
    assert.match(t, new RegExp(`upstream reset the connection \\(attempt ${i + 1}\\)`), `attempt ${i + 1}'s error text`);
    assert.match(t, /fail|transient/i, `attempt ${i + 1} says it failed`);
  }
  assert.match(await text(attempts.nth(2)), /succeeded/i, "the third attempt succeeded");
  assert.doesNotMatch(await text(attempts.nth(2)), /upstream reset/, "the success carries no error");
  assert.equal(await panel.locator("[data-testid=node-why]").count(), 1, "the panel has its why");
  assert.equal(await panel.locator("button[data-action=rerun-from]").count(), 1);
  assert.equal(await panel.locator("button[data-action=fork-from]").count(), 1);
  await browser.shot("node-panel");
  browser.check();
});

test("the timeline has one bar per attempt, and a bar opens the node panel", { timeout: 60000 }, async () => {
  const { browser, page } = env;
  await browser.goto(`/runs/${runId}`);
  await page.locator('svg[data-testid=dag][data-ready="true"]').waitFor();
  const bars = page.locator("[data-testid=timeline] [data-testid=bar]");
  await bars.first().waitFor();
  assert.equal(await bars.count(), 4, "fetch's three attempts and summary's one");
  assert.equal(await page.locator("[data-testid=node-panel]").isVisible(), false, "no panel before the click");
  await bars.first().click();
  await page.locator("[data-testid=node-panel]").waitFor({ state: "visible" });
  await page.locator("[data-testid=node-panel] [data-testid=attempt]").first().waitFor();
  browser.check();
});
