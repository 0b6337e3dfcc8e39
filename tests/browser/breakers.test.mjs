// A breaker opened by a failing workflow shows open on the breakers page;
// resetting it there (after a confirmation) closes it. A breaker forced open
// through the API shows forced_open, with the aggregate line saying so, and
// its Close button closes it.
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

test("a forced-open breaker shows as such and Close closes it", { timeout: 90000 }, async () => {
  const { keel, browser, page } = env;
  const id = await keel.startRun("breaker.lua");
  await keel.waitStatus(id, ["succeeded", "degraded", "failed"], 60000);
  await waitFor("GET breakers to list pricing", async () =>
    breakerState(await keel.get("breakers"), "pricing") !== null, { timeout: 10000 });
  const forced = await keel.request("POST", "breakers/pricing/force-open", {}, { expect: 200 });
  assert.equal(forced.body.state, "forced_open");

  await browser.goto("/breakers");
  const row = page.locator('table[data-testid=breakers-table] tr[data-breaker="pricing"]');
  await row.waitFor();
  await waitFor("the page to show pricing forced open", async () =>
    /forced open/.test(await text(row.locator("[data-testid=breaker-state]"))), { timeout: 15000 });
  assert.equal(await row.getAttribute("data-state"), "forced_open");
  assert.match(await text(page.locator("[data-testid=breakers-summary]")), /1 breaker: 1 forced open; health \d/);
  assert.equal(await row.locator("button[data-action=force-open]").isVisible(), false,
    "no Force open button on a breaker forced open already");
  await browser.shot("breakers-forced-open");

  await row.locator("button[data-action=close]").click();
  const toast = await confirmAndReadToast(page);
  assert.match(toast, /pricing is closed/, `the toast says it worked: ${toast}`);
  await waitFor("the page to show pricing closed", async () =>
    /closed/.test(await text(row.locator("[data-testid=breaker-state]"))), { timeout: 15000 });
  assert.equal(breakerState(await keel.get("breakers"), "pricing"), "closed");
  await browser.shot("breakers-closed");
  browser.check();
});
