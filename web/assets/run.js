// The run page's entry (/runs/RUN_ID): starts what the first render needs
// (the graph and the live stream) at once, while the page's modules
// (run_page.js and what it uses) load, so the network and the module
// loading overlap. Main thread only.
import { api, enc, follow } from "./api.js";
import { h } from "./ui.js";

const BUFFER = 20000; // stream events kept until the page takes them

function linkCss() {
  if (document.querySelector("link[data-page=run]")) return;
  document.head.append(h("link", { rel: "stylesheet", href: "/assets/run.css", dataset: { page: "run" } }));
}

export function mount(root, route) {
  linkCss();
  const id = route.params[0];
  const graph = api(`runs/${enc(id)}/graph?layout=dot`).then((g) => ({ g }), (err) => ({ err }))
    .then((x) => { x.at = performance.now(); return x; });
  const early = { graph };
  // The stream opens first, so no event between the reads above and it is
  // missed; each event carries when it arrived (`at`), which tells whether
  // a map's counts read earlier already hold it.
  const held = [];
  let onEvent = null, onState = null, lastState = null;
  const stop = follow({
    run: id,
    onEvent: (e) => {
      e.at = performance.now();
      if (onEvent) onEvent(e);
      else if (held.length < BUFFER) held.push(e);
    },
    onState: (s) => { lastState = s; if (onState) onState(s); },
  });
  early.stream = {
    // Hands the held events, then every new one, to `event`.
    take(event, state) {
      onEvent = event;
      onState = state;
      for (const e of held.splice(0)) event(e);
      if (lastState) state(lastState);
    },
  };
  let gone = false, unmount = null;
  import("./run_page.js").then((page) => {
    if (!gone) unmount = page.mountRun(root, route, early);
  }, (e) => {
    if (!gone) root.append(h("p", { class: "error-box" }, "The run page could not load: " + e.message));
  });
  return () => {
    gone = true;
    stop();
    if (unmount) unmount();
  };
}
