// The page's router: maps location.pathname to a page module and mounts it
// into <main id="app">; same-origin links marked data-link navigate without
// a reload (History API). Each page module exports
//   mount(root, route) -> unmount function (stops its streams and timers).
import { h } from "./ui.js";

const ROUTES = [
  { pattern: /^\/$/, page: "runs", module: () => import("./runs.js") },
  { pattern: /^\/runs\/([^/]+)$/, page: "runs", module: () => import("./run.js") },
  { pattern: /^\/breakers$/, page: "breakers", module: () => import("./breakers.js") },
  { pattern: /^\/start$/, page: "start", module: () => import("./start.js") },
];

let unmount = null;
let generation = 0;

async function render() {
  const root = document.getElementById("app");
  const mine = ++generation;
  if (unmount) {
    unmount();
    unmount = null;
  }
  const path = location.pathname;
  const route = ROUTES.find((r) => r.pattern.test(path));
  for (const a of document.querySelectorAll("nav a[data-nav]")) {
    if (route && a.dataset.nav === route.page) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (!route) {
    document.title = "Not found · keel";
    root.replaceChildren(
      h("h1", {}, "Page not found"),
      h("p", {}, "There is no page at ", h("code", {}, path), "."),
      h("p", {}, "Go to ", h("a", { href: "/", "data-link": true }, "the runs list"), ", ",
        h("a", { href: "/start", "data-link": true }, "start a workflow"), " or see ",
        h("a", { href: "/breakers", "data-link": true }, "the breakers"), "."));
    return;
  }
  const match = path.match(route.pattern);
  const mod = await route.module();
  if (mine !== generation) return;
  root.replaceChildren();
  document.title = "keel";
  unmount = mod.mount(root, {
    params: match.slice(1).map(decodeURIComponent),
    query: new URLSearchParams(location.search),
  }) || null;
}

// Navigates to `url` (same origin) without reloading.
export function go(url, replace = false) {
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  render();
}

document.addEventListener("click", (e) => {
  const a = e.target.closest("a[data-link]");
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
  e.preventDefault();
  go(a.getAttribute("href"));
});
window.addEventListener("popstate", render);
render();
