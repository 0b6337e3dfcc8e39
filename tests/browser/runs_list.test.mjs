// The runs list shows the runs started through the API, each with its
// status in words and a link to its page, and the filters of the contract.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, workflowFiles, text, waitFor } from "./harness.mjs";

let env;
before(async () => {
  env = await setup({ name: "runs_list", workflows: await workflowFiles("greet.lua", "flaky.lua") });
}, { timeout: 180000 });
after(async () => {
  await env?.teardown();
}, { timeout: 60000 });

test("the runs list shows runs started through the API", { timeout: 90000 }, async () => {
  const { keel, browser, page } = env;
  const ids = [await keel.startRun("greet.lua"), await keel.startRun("flaky.lua"), await keel.startRun("greet.lua", { name: "list" })];
  for (const id of ids) await keel.waitStatus(id, "succeeded");

  await browser.goto("/");
  const table = page.locator("table[data-testid=runs-table]");
  await table.waitFor();
  for (const id of ids) {
    const row = table.locator(`tr[data-run-id="${id}"]`);
    await row.waitFor();
    assert.match(await text(row.locator("[data-testid=run-status]")), /succeeded/, `run ${id}'s status in words`);
    assert.ok((await row.locator(`a[href="/runs/${id}"]`).count()) >= 1, `run ${id} links to /runs/${id}`);
  }
  const filters = page.locator("form[data-testid=runs-filter]");
  for (const control of ["select[name=status]", "select[name=state]", "input[name=workflow]", "input[name=since]"]) {
    assert.equal(await filters.locator(control).count(), 1, `the filters hold ${control}`);
  }
  await browser.shot("list");
  browser.check();
});

test("a run started while the list is open appears without a reload", { timeout: 60000 }, async () => {
  const { keel, browser, page } = env;
  await page.evaluate(() => { window.__keelMarker = "same-document"; });
  const id = await keel.startRun("greet.lua", { name: "live" });
  await page.locator(`table[data-testid=runs-table] tr[data-run-id="${id}"]`).waitFor({ timeout: 20000 });
  await waitFor(`run ${id} to show succeeded`, async () =>
    /succeeded/.test(await text(page.locator(`tr[data-run-id="${id}"] [data-testid=run-status]`))), { timeout: 20000 });
  assert.equal(await page.evaluate(() => window.__keelMarker), "same-document", "the page was not reloaded");
  browser.check();
});

test("clicking a run opens its page without a reload", { timeout: 60000 }, async () => {
  const { browser, page } = env;
  const id = await page.locator("table[data-testid=runs-table] tr[data-run-id]").first().getAttribute("data-run-id");
  await page.evaluate(() => { window.__keelMarker = "same-document"; });
  await page.locator(`tr[data-run-id="${id}"] a[href="/runs/${id}"]`).first().click();
  await page.waitForURL(`**/runs/${id}`);
  await page.locator("svg[data-testid=dag]").waitFor();
  assert.equal(await page.evaluate(() => window.__keelMarker), "same-document", "the router kept the document");
  browser.check();
});
