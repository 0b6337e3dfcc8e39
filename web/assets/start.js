// The start page (/start): the workflow files under keel serve's
// --workflows directory (GET /api/v1/workflows), a form with one input per
// param prefilled with its default, and POST runs after confirmation; then
// the new run's page. ?workflow=FILE preselects a file. Main thread only.
import { api, enc } from "./api.js";
import { go } from "./app.js";
import { h, confirmAction, toast, useCss, errorBox } from "./ui.js";

// The kind of input a default value gets.
export function paramKind(value) {
  if (typeof value === "boolean") return "boolean";
  if (typeof value === "number") return "number";
  if (typeof value === "string") return "string";
  return "json"; // objects, arrays and null
}

// Reads each param's input back into a value; throws an Error naming the
// param when one does not parse.
export function readParams(inputs) {
  const params = {};
  for (const { name, kind, el } of inputs) {
    el.setCustomValidity("");
    el.removeAttribute("aria-invalid");
    try {
      if (kind === "boolean") params[name] = el.checked;
      else if (kind === "string") params[name] = el.value;
      else if (kind === "number") {
        const t = el.value.trim();
        if (t === "" || !Number.isFinite(Number(t))) throw new Error(`"${el.value}" is not a number`);
        params[name] = Number(t);
      } else {
        const t = el.value.trim();
        if (t === "") throw new Error("empty: write JSON, such as null, [] or {}");
        try {
          params[name] = JSON.parse(t);
        } catch (e) {
          throw new Error("not valid JSON: " + e.message);
        }
      }
    } catch (e) {
      el.setAttribute("aria-invalid", "true");
      el.setCustomValidity(e.message);
      const err = new Error(`param ${name}: ${e.message}`);
      err.input = el;
      throw err;
    }
  }
  return params;
}

export function mount(root, route) {
  useCss("start.css");
  document.title = "Start a workflow · keel";
  let stopped = false;
  let files = [];
  let inputs = []; // {name, kind, el} of the chosen workflow's params
  let manual = null; // {file, params} inputs when the list is not available

  const select = h("select", { name: "workflow", id: "start-workflow", required: true, onchange: choose },
    h("option", { value: "" }, "loading…"));
  const paramsBox = h("div", { class: "params" });
  const formError = h("div", { class: "form-error", "aria-live": "polite" });
  const submit = h("button", { type: "submit", class: "primary", disabled: true }, "Start run…");
  const form = h("form", { class: "start-form", "data-testid": "start-form", novalidate: true, onsubmit: onSubmit },
    h("label", { class: "field wide", for: "start-workflow" }, h("span", {}, "Workflow file"), select),
    h("p", { class: "muted about" }),
    paramsBox, formError,
    h("div", { class: "buttons start-buttons" }, submit));
  const message = h("div", { class: "start-message" });
  const broken = h("section", { class: "broken", hidden: true, "aria-labelledby": "broken-title" },
    h("h2", { id: "broken-title" }, "Files that do not load"), h("ul"));
  root.append(h("div", { class: "page-head" }, h("h1", {}, "Start a workflow")),
    message, form, broken);

  async function load() {
    let list;
    try {
      list = await api("workflows");
    } catch (e) {
      if (stopped) return;
      select.replaceChildren(h("option", { value: "" }, "no list"));
      manualForm();
      message.replaceChildren(errorBox("listing the workflows", "GET /api/v1/workflows", e));
      return;
    }
    if (stopped) return;
    if (!Array.isArray(list)) {
      message.replaceChildren(errorBox("listing the workflows", "GET /api/v1/workflows", new Error("the answer is not a list")));
      return;
    }
    files = list.filter((f) => f && !f.error && f.file);
    const bad = list.filter((f) => f && f.error);
    files.sort((a, b) => a.file.localeCompare(b.file));
    select.replaceChildren(h("option", { value: "" }, files.length ? "— choose a workflow —" : "no workflow loads"),
      ...files.map((f) => h("option", { value: f.file },
        `${f.file} — ${f.workflow || "?"}${typeof f.nodes === "number" ? ` (${f.nodes} node${f.nodes === 1 ? "" : "s"})` : ""}`)));
    broken.hidden = bad.length === 0;
    broken.querySelector("ul").replaceChildren(...bad.map((f) =>
      h("li", {}, h("code", {}, f.file || "?"), h("pre", { class: "load-error" }, String(f.error)))));
    if (!list.length) {
      message.replaceChildren(h("div", { class: "empty" },
        "No workflow files (*.lua) under keel serve's --workflows directory. Put one there, or start keel serve with ",
        h("code", {}, "--workflows DIR"), "."));
    }
    const want = route.query.get("workflow");
    if (want) {
      if (files.some((f) => f.file === want)) select.value = want;
      else if (!bad.some((f) => f.file === want)) {
        message.replaceChildren(errorBox("preselecting the workflow", null, new Error(`no workflow file "${want}" under --workflows`)));
      } else {
        message.replaceChildren(errorBox("preselecting the workflow", null, new Error(`"${want}" does not load; see below`)));
      }
    }
    choose();
  }

  // Without the list, the file's path and the params as JSON are typed.
  function manualForm() {
    const file = h("input", { type: "text", name: "file", id: "start-file", required: true, placeholder: "dir/flow.lua", autocomplete: "off", class: "mono" });
    const params = h("textarea", { name: "params", id: "start-params", rows: "4", spellcheck: "false", class: "mono" });
    file.value = route.query.get("workflow") || "";
    params.value = "{}";
    manual = { file, params };
    select.closest("label").hidden = true;
    submit.disabled = false;
    paramsBox.replaceChildren(
      h("p", { class: "muted" }, "Without the list, type the file's path under keel serve's --workflows directory and its params."),
      h("div", { class: "param-grid" },
        h("div", { class: "param" }, h("label", { for: "start-file" }, "Workflow file"), file),
        h("div", { class: "param json" }, h("label", { for: "start-params" }, "Params (a JSON object)"), params)));
  }

  function choose() {
    const file = files.find((f) => f.file === select.value);
    formError.replaceChildren();
    inputs = [];
    submit.disabled = !file;
    const about = form.querySelector(".about");
    if (!file) {
      paramsBox.replaceChildren();
      about.textContent = "";
      return;
    }
    const q = new URLSearchParams(location.search);
    if (q.get("workflow") !== file.file) {
      q.set("workflow", file.file);
      history.replaceState(history.state, "", "/start?" + q);
    }
    about.textContent = `Workflow "${file.workflow}" in ${file.file}` +
      (typeof file.nodes === "number" ? `, ${file.nodes} node${file.nodes === 1 ? "" : "s"}` : "") + ".";
    const params = file.params && typeof file.params === "object" ? file.params : {};
    const names = Object.keys(params);
    const fields = names.map((name) => paramField(name, params[name]));
    paramsBox.replaceChildren(
      h("h2", {}, "Params"),
      names.length ? h("div", { class: "param-grid" }, fields)
        : h("p", { class: "muted" }, "This workflow declares no params."));
  }

  function paramField(name, value) {
    const kind = paramKind(value);
    const id = "param-" + name.replace(/[^A-Za-z0-9_-]/g, "_");
    let el;
    let hint;
    if (kind === "boolean") {
      el = h("input", { type: "checkbox", id, name, "data-param": name });
      el.checked = value;
      hint = "true when ticked";
    } else if (kind === "number") {
      el = h("input", { type: "number", step: "any", id, name, "data-param": name, inputmode: "decimal" });
      el.value = String(value);
      hint = "a number";
    } else if (kind === "string") {
      el = h("input", { type: "text", id, name, "data-param": name, autocomplete: "off" });
      el.value = value;
      hint = "text";
    } else {
      el = h("textarea", { id, name, "data-param": name, rows: String(Math.min(10, Math.max(2, JSON.stringify(value, null, 2).split("\n").length))), spellcheck: "false", class: "mono" });
      el.value = JSON.stringify(value, null, 2);
      hint = "JSON";
    }
    el.addEventListener("input", () => { el.setCustomValidity(""); el.removeAttribute("aria-invalid"); });
    inputs.push({ name, kind, el });
    const hintId = id + "-hint";
    el.setAttribute("aria-describedby", hintId);
    return h("div", { class: "param " + kind },
      kind === "boolean"
        ? h("label", { for: id, class: "check" }, el, " ", h("span", { class: "mono" }, name))
        : h("label", { for: id, class: "mono" }, name),
      kind === "boolean" ? null : el,
      h("span", { id: hintId, class: "muted small" }, hint + (kind === "json" ? "" : ` (default ${JSON.stringify(value)})`)));
  }

  async function onSubmit(e) {
    e.preventDefault();
    const file = manual ? manual.file.value.trim() : select.value;
    if (!file) {
      if (manual) manual.file.focus();
      return;
    }
    let params;
    try {
      if (manual) {
        inputs = [{ name: "params", kind: "json", el: manual.params }];
        params = readParams(inputs).params;
        if (!params || typeof params !== "object" || Array.isArray(params)) {
          throw Object.assign(new Error("params: must be a JSON object, such as {} or {\"topic\": \"x\"}"), { input: manual.params });
        }
      } else {
        params = readParams(inputs);
      }
    } catch (err) {
      formError.replaceChildren(h("div", { class: "error-box", role: "alert" }, err.message));
      if (err.input) err.input.focus();
      return;
    }
    formError.replaceChildren();
    const body = h("div", {}, h("p", {}, "Start ", h("code", {}, file), " with these params?"),
      h("pre", { class: "params-preview" }, JSON.stringify(params, null, 2)));
    if (!(await confirmAction("Start " + file, body, "Start"))) return;
    submit.disabled = true;
    try {
      const result = await api("runs", { method: "POST", body: { workflow: file, params } });
      if (stopped) return;
      toast(`Started run ${result && result.run_id} (${(result && result.status) || "queued"})`);
      if (result && result.run_id) go("/runs/" + enc(result.run_id));
    } catch (err) {
      if (stopped) return;
      formError.replaceChildren(errorBox("starting the run", "POST /api/v1/runs", err));
      toast("Start " + file + " failed: " + err.message, "error");
    } finally {
      submit.disabled = false;
    }
  }

  load();
  return () => { stopped = true; };
}
