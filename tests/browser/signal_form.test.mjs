// A run waiting for a signal shows the signal form; sending it from the
// page (with JSON data, after a confirmation) resumes the run.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, workflowFiles, text, waitFor, confirmAndReadToast } from "./harness.mjs";

let env;
before(async () => {
  env = await setup({ name: "signal_form", workflows: await workflowFiles("approval.lua", "greet.lua") });
}, { timeout: 180000 });
after(async () => {
  await env?.teardown();
}, { timeout: 60000 });

test("the signal form resumes a waiting run", { timeout: 90000 }, async () => {
  const { keel, browser, page } = env;
  const id = await keel.startRun("approval.lua");
  await keel.waitStatus(id, "waiting");
  await browser.goto(`/runs/${id}`);
  const form = page.locator("form[data-testid=signal-form]");
  await form.waitFor({ state: "visible" });
  await form.locator("input[name=signal]").fill("approve");
  await form.locator("textarea[name=data]").fill('{"by": "browser"}');
  await browser.shot("signal-form");
  await form.locator('button[type=submit], button:not([type]), input[type=submit]').first().click();
  const toast = await confirmAndReadToast(page);
  assert.doesNotMatch(toast, /fail|error/i, `the toast says it worked: ${toast}`);

  await keel.waitStatus(id, "succeeded", 30000);
  const publish = await keel.nodeWhen(id, "publish");
  assert.deepEqual(publish.output, { published: true, by: "browser" }, "the signal's data reached the run");
  await waitFor("the run's status to say succeeded", async () =>
    /succeeded/.test(await text(page.locator("[data-testid=run-status]"))), { timeout: 30000 });
  await form.waitFor({ state: "hidden", timeout: 10000 }).catch(() => {
    throw new Error("the signal form still shows on a run that no longer waits");
  });
  browser.check();
});

test("a run that waits for nothing has no signal form", { timeout: 60000 }, async () => {
  const { keel, browser, page } = env;
  const id = await keel.startRun("greet.lua");
  await keel.waitStatus(id, "succeeded");
  await browser.goto(`/runs/${id}`);
  await page.locator('svg[data-testid=dag][data-ready="true"]').waitFor();
  assert.equal(await page.locator("form[data-testid=signal-form]").isVisible(), false);
  browser.check();
});
