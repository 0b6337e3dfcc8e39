// A breaker opened by a failing workflow shows open on the breakers page;
// resetting it there (after a confirmation) closes it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, workflowFiles, text, waitFor, confirmAndReadToast } from "./harness.mjs";

let env;
before(async () => {
  env = await setup({ name: "breakers", workflows: await workflowFiles("breaker.lua") });
}, { timeout: 180000 });
after(async () => {
  await env?.teardown();
}, { timeout: 60000 });

function breakerState(list, key) {
  const b = list.find((x) => (x.key ?? x.name) === key);
  return b ? b.state : null;
}

test("breaker reset from the page closes the breaker", { timeout: 90000 }, async () => {
  const { keel, browser, page } = env;
  const id = await keel.startRun("breaker.lua");
  await keel.waitStatus(id, ["succeeded", "degraded", "failed"], 60000);
  // The API may answer from a cache up to a second old.
  await waitFor("GET breakers to say pricing is open", async () =>
    breakerState(await keel.get("breakers"), "pricing") === "open", { timeout: 10000 });

  await browser.goto("/breakers");
  const row = page.locator('table[data-testid=breakers-table] tr[data-breaker="pricing"]');
  await row.waitFor();
  assert.match(await text(row.locator("[data-testid=breaker-state]")), /open/);
  await browser.shot("breakers");

  await row.locator("button[data-action=reset]").click();
  const toast = await confirmAndReadToast(page);
  assert.doesNotMatch(toast, /fail|error/i, `the toast says it worked: ${toast}`);
  // `keel breakers --reset` forgets the breaker, so GET breakers no longer
  // lists it: the page may show the row closed or drop it, never open.
  await waitFor("the page to show the breaker closed (or no longer list it)", async () =>
    (await row.count()) === 0 || /closed/.test(await text(row.locator("[data-testid=breaker-state]"))),
    { timeout: 15000 });
  await waitFor("GET breakers to no longer say pricing is open", async () =>
    breakerState(await keel.get("breakers"), "pricing") !== "open", { timeout: 10000 });
  await browser.shot("breakers-reset");
  browser.check();
});
