// The node panel of an agent node lists its model calls: the prompt sent
// and the reply (keel-mock-llm echoes the prompt), with no key in sight.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Keel, Browser, MockLlm, workflowFiles, text } from "./harness.mjs";

let mock;
let keel;
let browser;
before(async () => {
  mock = await MockLlm.start();
  keel = await Keel.start({
    name: "llm_calls",
    workflows: await workflowFiles("agent.lua"),
    env: { KEEL_PROVIDER_FAST: mock.url + "/v1" },
  });
  browser = await Browser.launch({ name: "llm_calls", origin: keel.origin });
}, { timeout: 120000 });
after(async () => {
  await browser?.shot("last").catch(() => {});
  await browser?.close();
  await keel?.stop();
  await mock?.stop();
}, { timeout: 60000 });

test("the node panel shows an agent node's model calls with prompt and reply", { timeout: 60000 }, async () => {
  const id = await keel.startRun("agent.lua", { topic: "bulkheads" });
  await keel.waitStatus(id, "succeeded");
  const page = browser.page;
  await browser.goto(`/runs/${id}`);
  await page.locator('svg[data-testid=dag][data-ready="true"]').waitFor();
  await page.locator('svg[data-testid=dag] g.dag-node[data-node="writer"]').click();
  const panel = page.locator("[data-testid=node-panel]");
  await panel.waitFor({ state: "visible" });
  const calls = panel.locator("[data-testid=llm-call]");
  await calls.first().waitFor();
  assert.equal(await calls.count(), 1, "one model call");
  const call = calls.first();
  // The call's details may be folded: open every <details> in it.
  await call.evaluate((el) => {
    for (const d of [el, ...el.querySelectorAll("details")]) if (d.tagName === "DETAILS") d.open = true;
  });
  const t = await text(call);
  assert.match(t, /gpt-4o-mini/, "the model");
  assert.match(t, /Explain bulkheads in one line\./, "the prompt sent");
  assert.match(t, /You are a terse technical writer\./, "the system prompt");
  assert.match(t, /echo: Explain bulkheads in one line\./, "the reply");
  assert.doesNotMatch(await text(panel), /Bearer|Authorization/i, "no credentials");
  await browser.shot("llm-call");
  browser.check();
});
