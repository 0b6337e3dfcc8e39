// Layout checks the browser tests make of a page at a viewport: whether
// Tab reaches every control, and whether the document scrolls sideways.
// Called from the test runner's one thread, on a playwright page.

// Presses Tab until every visible, enabled control of the page (links,
// buttons, inputs, selects, textareas, tabindex >= 0) has had the focus, at
// most controls + 20 times; resolves to the descriptions of those never
// reached (a radio group counts as reached through any of its members).
export async function controlsNotReachedByTab(page) {
  const total = await page.evaluate(() => {
    const all = document.querySelectorAll("a[href], button, input, select, textarea, [tabindex]");
    let n = 0;
    for (const el of all) {
      delete el.dataset.tabProbe;
      if (el.disabled || el.tabIndex < 0 || el.type === "hidden") continue;
      if (el.closest("dialog:not([open]), [hidden], [inert]")) continue;
      const style = getComputedStyle(el);
      if (el.getClientRects().length === 0 || style.visibility === "hidden") continue;
      el.dataset.tabProbe = String(n++);
    }
    document.activeElement?.blur();
    return n;
  });
  const reached = new Set();
  for (let i = 0; i < total + 20 && reached.size < total; i++) {
    await page.keyboard.press("Tab");
    const probe = await page.evaluate(() => {
      const el = document.activeElement;
      if (!el || !el.dataset || el.dataset.tabProbe === undefined) return [];
      if (el.type === "radio" && el.name) {
        return [...document.querySelectorAll(`input[type=radio][name="${el.name}"]`)]
          .map((r) => r.dataset.tabProbe).filter((p) => p !== undefined);
      }
      return [el.dataset.tabProbe];
    });
    for (const p of probe) reached.add(p);
  }
  return page.evaluate((seen) => {
    const missing = [];
    for (const el of document.querySelectorAll("[data-tab-probe]")) {
      if (seen.includes(el.dataset.tabProbe)) continue;
      const label = (el.getAttribute("aria-label") || el.textContent || el.name || "").trim().slice(0, 40);
      missing.push(`${el.tagName.toLowerCase()}${el.name ? "[name=" + el.name + "]" : ""} "${label}"`);
    }
    return missing;
  }, [...reached]);
}

// Whether the document scrolls sideways at the current viewport: the
// body's and the root's scroll widths against the viewport's width.
export async function horizontalOverflow(page) {
  return page.evaluate(() => {
    const vw = document.documentElement.clientWidth;
    const widths = { body: document.body.scrollWidth, root: document.documentElement.scrollWidth };
    return widths.body > vw || widths.root > vw ? `${JSON.stringify(widths)} > viewport ${vw}` : null;
  });
}
