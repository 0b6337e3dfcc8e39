// At 390x844 (a phone) no page scrolls sideways and every control is
// reached by Tab.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, workflowFiles } from "./harness.mjs";
import { controlsNotReachedByTab, horizontalOverflow } from "./layout_checks.mjs";

let env;
let runId;
before(async () => {
  env = await setup({
    name: "phone",
    workflows: await workflowFiles("approval.lua", "breaker.lua", "greet.lua"),
    viewport: { width: 390, height: 844 },
  });
  const breakerRun = await env.keel.startRun("breaker.lua");
  runId = await env.keel.startRun("approval.lua");
  await env.keel.waitStatus(breakerRun, ["succeeded", "degraded", "failed"], 60000);
  await env.keel.waitStatus(runId, "waiting");
}, { timeout: 180000 });
after(async () => {
  await env?.teardown();
}, { timeout: 60000 });

const PAGES = [
  { name: "list", path: () => "/", ready: "table[data-testid=runs-table] tr[data-run-id]" },
  { name: "run", path: () => `/runs/${runId}`, ready: 'svg[data-testid=dag][data-ready="true"]' },
  { name: "breakers", path: () => "/breakers", ready: "table[data-testid=breakers-table] tr[data-breaker]" },
  { name: "start", path: () => "/start", ready: "form[data-testid=start-form] select[name=workflow]" },
];

for (const p of PAGES) {
  test(`the ${p.name} page fits a phone and its controls are reached by Tab`, { timeout: 60000 }, async () => {
    const { browser, page } = env;
    await browser.goto(p.path());
    await page.locator(p.ready).first().waitFor();
    if (p.name === "run") await page.locator("form[data-testid=signal-form]").waitFor();
    assert.equal(await horizontalOverflow(page), null, "the body does not scroll sideways");
    await browser.shot(`phone-${p.name}`);
    const missing = await controlsNotReachedByTab(page);
    assert.deepEqual(missing, [], "controls Tab never reached");
    browser.check();
  });
}
