// The start page lists the workflows under --workflows with a field per
// param; starting one with a changed param runs it with that value.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, workflowFiles, waitFor, confirmAndReadToast } from "./harness.mjs";

let env;
before(async () => {
  env = await setup({ name: "start_page", workflows: await workflowFiles("greet.lua", "approval.lua") });
}, { timeout: 180000 });
after(async () => {
  await env?.teardown();
}, { timeout: 60000 });

test("the start page starts a run with a changed param", { timeout: 90000 }, async () => {
  const { keel, browser, page } = env;
  await browser.goto("/start");
  const form = page.locator("form[data-testid=start-form]");
  await form.waitFor();
  const select = form.locator("select[name=workflow]");
  const options = await waitFor("the workflows in the select", async () => {
    const o = await select.locator("option").evaluateAll((os) => os.map((x) => ({ value: x.value, label: x.textContent })));
    return o.some((x) => /greet/.test(x.value + x.label)) ? o : null;
  });
  const greet = options.find((x) => /greet/.test(x.value + x.label));
  await select.selectOption(greet.value);
  const name = form.locator("[data-param=name]");
  await name.waitFor();
  assert.equal(await name.inputValue(), "world", "the field holds the param's default");
  assert.equal(await form.locator("[data-param=times]").count(), 1, "one field per param");
  await name.fill("browser");
  await browser.shot("start");

  const before = new Set((await keel.get("runs?limit=100")).map((r) => r.run_id));
  await form.locator('button[type=submit], button:not([type]), input[type=submit]').first().click();
  const toast = await confirmAndReadToast(page);
  assert.doesNotMatch(toast, /fail|error/i, `the toast says it worked: ${toast}`);
  const run = await waitFor("the new run", async () =>
    (await keel.get("runs?limit=100")).find((r) => !before.has(r.run_id)) || null, { timeout: 20000 });
  assert.equal(run.workflow, "greet");
  await keel.waitStatus(run.run_id, "succeeded");
  const hello = await keel.nodeWhen(run.run_id, "hello");
  assert.equal(hello.output.greeting, "hello browser hello browser ", "the run got the changed param and the other default");
  browser.check();
});
