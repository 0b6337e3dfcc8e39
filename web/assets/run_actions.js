// The run page's actions: resume, cancel, fork (with changed params),
// re-run or fork from a node, and the signal form. Each asks for
// confirmation and reports in the toast (ui.js act()). Main thread only.
import { api, enc } from "./api.js";
import { h, act } from "./ui.js";
import { go } from "./app.js";

// A textarea holding `value` as JSON, for dialogs.
function paramsField(value) {
  const area = h("textarea", { name: "params", rows: "8", class: "mono", spellcheck: "false" },
    JSON.stringify(value ?? {}, null, 2));
  return { area, label: h("label", { class: "stack" }, "Params (JSON object)", area) };
}

function parseParams(text) {
  let v;
  try {
    v = JSON.parse(text || "{}");
  } catch (e) {
    throw new Error("the params are not valid JSON: " + e.message);
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) throw new Error("the params must be a JSON object");
  return v;
}

export function resume(run) {
  return act("Resume run", `Resume run ${run}? Its unfinished nodes run again in a new child process.`,
    () => api(`runs/${enc(run)}/resume`, { method: "POST", body: {} }), "Resume");
}

export function cancel(run) {
  return act("Cancel run", `Cancel run ${run}? Running nodes are stopped and the run is recorded cancelled.`,
    () => api(`runs/${enc(run)}/cancel`, { method: "POST", body: {} }), "Cancel run");
}

export function rerunFrom(run, node) {
  return act(`Re-run from ${node}`,
    `Resume run ${run} from node ${node}? ${node} and every node after it run again; the nodes before it keep their results.`,
    () => api(`runs/${enc(run)}/resume`, { method: "POST", body: { from: node } }), "Re-run");
}

// Forks `run` (from `node` when given) with params edited in the dialog,
// then opens the new run.
export async function fork(run, params, node = null) {
  const { area, label } = paramsField(params);
  const body = h("div", {},
    h("p", {}, node
      ? `A new run that keeps the results of the nodes before ${node} and runs ${node} and what follows again.`
      : "A new run of the same script; every node runs again."),
    label);
  const result = await act(node ? `Fork from ${node}` : "Fork run", body, () => {
    const req = { params: parseParams(area.value) };
    if (node) req.from = node;
    return api(`runs/${enc(run)}/fork`, { method: "POST", body: req });
  }, "Fork");
  if (result && result.run_id) go("/runs/" + encodeURIComponent(result.run_id));
  return result;
}

// The signal form for a run waiting for a signal: name prefilled, JSON
// data checked before it is sent.
export function signalForm(run, signalName, onSent) {
  const name = h("input", { name: "signal", required: true, value: signalName || "", autocomplete: "off" });
  const data = h("textarea", { name: "data", rows: "3", class: "mono", spellcheck: "false", placeholder: "{\"by\": \"ann\"}" });
  const problem = h("p", { class: "form-problem", role: "alert" });
  const form = h("form", { "data-testid": "signal-form", class: "signal-form" },
    h("h2", {}, "Send a signal"),
    h("p", { class: "muted" }, signalName ? `The run waits for signal ${signalName}.` : "The run waits for a signal."),
    h("div", { class: "signal-fields" },
      h("label", { class: "stack" }, "Signal", name),
      h("label", { class: "stack grow" }, "Data (JSON; empty sends null)", data)),
    problem,
    h("div", {}, h("button", { type: "submit", class: "primary" }, "Send signal")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    problem.textContent = "";
    const signal = name.value.trim();
    if (!signal) { problem.textContent = "Give the signal's name."; name.focus(); return; }
    let value = null;
    if (data.value.trim()) {
      try {
        value = JSON.parse(data.value);
      } catch (err) {
        problem.textContent = "The data is not valid JSON: " + err.message;
        data.focus();
        return;
      }
    }
    const sent = await act(`Send signal ${signal}`, `Send signal ${signal} to run ${run} with data ${JSON.stringify(value)}?`,
      () => api(`runs/${enc(run)}/signals/${enc(signal)}`, { method: "POST", body: value }), "Send");
    if (sent) onSent(sent);
  });
  return {
    el: form,
    setName(n) { if (n && !name.value) name.value = n; },
  };
}
