// With `keel serve --token-env`, the page asks for the token once (on the
// first 401), then lists the runs; moving between pages or reloading the
// tab does not ask again.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, workflowFiles } from "./harness.mjs";

const TOKEN = "browser-test-token-8c1f";
let env;
before(async () => {
  // Chromium logs each answered 401 as a console error: that one is expected.
  env = await setup({
    name: "token",
    token: TOKEN,
    workflows: await workflowFiles("greet.lua"),
    allowConsole: [/status of 401/],
  });
}, { timeout: 180000 });
after(async () => {
  await env?.teardown();
}, { timeout: 60000 });

test("the page asks for the token once, then lists runs", { timeout: 60000 }, async () => {
  const { keel, browser, page } = env;
  const id = await keel.startRun("greet.lua");
  await keel.waitStatus(id, "succeeded");
  const page401 = (await fetch(keel.url + "/api/v1/runs")).status;
  assert.equal(page401, 401, "the API needs the token");

  await browser.goto("/");
  const form = page.locator("form[data-testid=token-form]");
  await form.waitFor({ state: "visible" });
  await browser.shot("token-prompt");
  await form.locator("input[name=token]").fill(TOKEN);
  await form.locator('button[type=submit], button:not([type])').first().click();
  await page.locator(`table[data-testid=runs-table] tr[data-run-id="${id}"]`).waitFor();
  assert.equal(await form.isVisible(), false, "the prompt is gone");

  let asked = 0;
  const countPrompt = async () => {
    if (await form.isVisible()) asked++;
  };
  await page.locator('a[href="/breakers"]').first().click();
  await page.locator("table[data-testid=breakers-table]").waitFor();
  await countPrompt();
  await page.reload();
  await page.locator("table[data-testid=breakers-table]").waitFor();
  await countPrompt();
  await browser.goto("/");
  await page.locator(`tr[data-run-id="${id}"]`).waitFor();
  await countPrompt();
  assert.equal(asked, 0, "the token was not asked for again");
  browser.check();
});
