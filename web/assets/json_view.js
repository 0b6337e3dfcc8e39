// A JSON viewer: a collapsible tree (<details>, so it works with the
// keyboard), long strings cut with "show all", big containers shown a page
// at a time, and values the server truncated ({"$truncated": BYTES,
// "preview": ...}) with a button that loads the whole value. Main thread only.
import { h } from "./ui.js";

const LONG = 300; // characters of a string shown before "show all"
const PAGE = 100; // members of an object or array shown at a time

// jsonView(value, {loadFull}) -> element. loadFull(), when given, returns a
// promise of the whole value for a truncated top-level value.
export function jsonView(value, { loadFull = null, open = 2 } = {}) {
  return h("div", { class: "json" }, node(value, open, loadFull));
}

function isTruncated(v) {
  return v && typeof v === "object" && !Array.isArray(v) && typeof v.$truncated === "number";
}

function node(v, open, loadFull) {
  if (isTruncated(v)) return truncated(v, loadFull);
  if (v === null) return h("span", { class: "j-null" }, "null");
  if (typeof v === "string") return str(v);
  if (typeof v === "number") return h("span", { class: "j-num" }, String(v));
  if (typeof v === "boolean") return h("span", { class: "j-bool" }, String(v));
  const array = Array.isArray(v);
  const keys = array ? null : Object.keys(v);
  const n = array ? v.length : keys.length;
  if (n === 0) return h("span", { class: "j-punct" }, array ? "[]" : "{}");
  const summary = h("summary", {}, h("span", { class: "j-punct" }, array ? "[" : "{"),
    h("span", { class: "muted" }, " " + n + (array ? (n === 1 ? " item" : " items") : (n === 1 ? " key" : " keys")) + " "),
    h("span", { class: "j-punct" }, array ? "]" : "}"));
  const list = h("ul", { class: "j-list" });
  const details = h("details", { open: open > 0 }, summary, list);
  let shown = 0;
  const more = h("button", { type: "button", class: "link" });
  const page = () => {
    const end = Math.min(n, shown + PAGE);
    for (let i = shown; i < end; i++) {
      const key = array ? i : keys[i];
      list.insertBefore(h("li", {}, h("span", { class: "j-key" }, array ? String(i) : JSON.stringify(key)),
        h("span", { class: "j-punct" }, ": "), node(v[key], open - 1, null)), more.parentNode ? more.parentNode : null);
    }
    shown = end;
    if (shown < n) {
      more.textContent = "show " + Math.min(PAGE, n - shown) + " more of " + (n - shown);
      if (!more.parentNode) list.append(h("li", {}, more));
    } else if (more.parentNode) {
      more.parentNode.remove();
    }
  };
  more.addEventListener("click", page);
  // Render children only when opened: a large value costs nothing closed.
  if (open > 0) page();
  else details.addEventListener("toggle", () => { if (details.open && shown === 0) page(); });
  return details;
}

function str(s) {
  if (s.length <= LONG) return h("span", { class: "j-str" }, JSON.stringify(s));
  const span = h("span", { class: "j-str" }, JSON.stringify(s.slice(0, LONG)).slice(0, -1) + "…");
  const btn = h("button", { type: "button", class: "link" }, "show all (" + s.length.toLocaleString() + " characters)");
  btn.addEventListener("click", () => {
    span.textContent = JSON.stringify(s);
    btn.remove();
  });
  return h("span", {}, span, " ", btn);
}

function truncated(v, loadFull) {
  const kb = Math.max(1, Math.round(v.$truncated / 1024));
  const box = h("div", { class: "j-truncated" },
    h("div", { class: "muted" }, "Value of " + kb.toLocaleString() + " KB, cut by the server; the start of it:"),
    h("pre", { class: "mono j-preview" }, String(v.preview || "")));
  if (loadFull) {
    const btn = h("button", { type: "button" }, "load full value (" + kb.toLocaleString() + " KB)");
    btn.addEventListener("click", async () => {
      btn.disabled = true;
      btn.textContent = "loading…";
      try {
        const full = await loadFull();
        box.replaceWith(node(full, 1, null));
      } catch (e) {
        btn.disabled = false;
        btn.textContent = "load full value (" + kb.toLocaleString() + " KB)";
        box.append(h("div", { class: "error-box" }, "Could not load the value: " + e.message));
      }
    });
    box.append(btn);
  }
  return box;
}
