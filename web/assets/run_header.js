// The run page's header: id, workflow, status and derived live state,
// start and duration (ticking while the run is unfinished), nodes done,
// tokens and cost, the error, the run it was forked from, and the action
// buttons. Main thread only.
import { api } from "./api.js";
import { h, badge, fmtTime, fmtDuration, fmtCost, fmtTokens } from "./ui.js";

const FINISHED = new Set(["succeeded", "failed", "degraded", "cancelled"]);

export function runHeader({ id, onResume, onCancel, onFork }) {
  const status = h("span", { "data-testid": "run-status" }, badge("loading"));
  const state = h("span", { class: "run-state" });
  const workflow = h("span", {});
  const started = h("span", {});
  const duration = h("span", {});
  const nodes = h("span", {});
  const usage = h("span", {});
  const forked = h("span", {});
  const error = h("div", { class: "run-error", hidden: true });
  const live = h("span", { class: "muted run-live" });
  const resumeBtn = h("button", { type: "button", "data-action": "resume", onclick: onResume }, "Resume");
  const cancelBtn = h("button", { type: "button", "data-action": "cancel", class: "danger", onclick: onCancel }, "Cancel");
  const forkBtn = h("button", { type: "button", "data-action": "fork", onclick: onFork }, "Fork…");
  const item = (label, value) => h("div", { class: "run-fact" }, h("dt", {}, label), h("dd", {}, value));
  const el = h("header", { class: "run-head" },
    h("div", { class: "run-title" },
      h("h1", {}, h("span", { class: "muted" }, "Run "), h("span", { class: "mono run-id" }, id)),
      status, state, live),
    h("dl", { class: "run-facts" }, item("Workflow", workflow), item("Started", started), item("Duration", duration),
      item("Nodes", nodes), item("Tokens · cost", usage), forked),
    error,
    h("div", { class: "run-actions" }, resumeBtn, cancelBtn, forkBtn));

  let run = null, stateTimer = 0, stateGen = 0, loadingState = false, stateAgain = false;
  const tick = setInterval(() => { if (run && !run.finished_at && !FINISHED.has(run.status)) showDuration(); }, 1000);

  function showDuration() {
    if (run.duration_s !== null && run.duration_s !== undefined && FINISHED.has(run.status)) {
      duration.textContent = fmtDuration(run.duration_s) + (run.active_s !== run.duration_s && run.active_s !== null
        ? ` (${fmtDuration(run.active_s)} active)` : "");
    } else if (run.started_at && (run.status === "running" || run.status === "waiting")) {
      duration.textContent = fmtDuration((Date.now() - Date.parse(run.started_at)) / 1000) + " so far";
    } else {
      duration.textContent = run.status === "queued" ? "not started" : "—";
    }
  }

  return {
    el,
    update(r, dag) {
      if (!r) return;
      run = r;
      status.replaceChildren(badge(r.status));
      workflow.textContent = r.workflow;
      started.textContent = fmtTime(r.started_at);
      started.title = r.started_at || "";
      showDuration();
      const names = dag.names();
      if (names.length) nodes.textContent = `${dag.doneCount()} of ${names.length} done`;
      else {
        const top = r.nodes.filter((n) => !/\[\d+\]/.test(n.node));
        const done = top.filter((n) => FINISHED.has(n.status) || n.status === "skipped" || n.status === "fallback");
        nodes.textContent = `${done.length} of ${top.length} done`;
      }
      const u = r.usage || {};
      const tokens = (u.prompt_tokens || 0) + (u.completion_tokens || 0);
      usage.textContent = tokens ? `${fmtTokens(tokens)} (${u.prompt_tokens} + ${u.completion_tokens})` +
        (u.cost ? " · cost " + (u.cost < 0.0001 ? "<0.0001" : fmtCost(u.cost)) : "") : "none";
      if (r.forked_from) {
        forked.replaceChildren(h("dt", {}, "Forked from"), h("dd", {},
          h("a", { href: "/runs/" + encodeURIComponent(r.forked_from), "data-link": true, class: "mono" }, r.forked_from),
          r.forked_from_node ? " at node " + r.forked_from_node : ", every node run again"));
        forked.className = "run-fact";
      }
      error.hidden = !r.error;
      error.textContent = r.error ? "Error: " + r.error : "";
      const finished = FINISHED.has(r.status);
      cancelBtn.disabled = finished;
      resumeBtn.disabled = r.status === "succeeded" || r.status === "cancelled" || r.status === "running" || r.status === "queued";
    },
    // The derived live state (retrying, backing off, ...) from the runs list:
    // one request at a time; a call while one is out asks for one more after it.
    async loadState(r) {
      if (loadingState) { stateAgain = true; return; }
      clearTimeout(stateTimer);
      const gen = stateGen;
      if (FINISHED.has(r.status)) { state.replaceChildren(); return; }
      loadingState = true;
      try {
        // A second before the start: the time shown is rounded to the millisecond.
        const since = new Date(Date.parse(r.started_at) - 1000).toISOString();
        const q = new URLSearchParams({ workflow: r.workflow, since, limit: "500" });
        const list = await api("runs?" + q);
        if (gen !== stateGen) return;
        const me = (list || []).find((x) => x.run_id === r.run_id);
        state.replaceChildren();
        if (me && me.state && me.state !== r.status && run && !FINISHED.has(run.status)) {
          state.append(h("span", {}, badge(me.state, "run-state"),
            me.waiting_for ? h("span", { class: "muted" }, " for " + me.waiting_for) : null,
            me.state_until ? h("span", { class: "muted" }, " until " + fmtTime(me.state_until)) : null));
        }
        if (me && me.waiting_for) el.dispatchEvent(new CustomEvent("waiting-for", { detail: me.waiting_for }));
      } catch {
        state.replaceChildren();
      } finally {
        loadingState = false;
      }
      if (gen !== stateGen || !run) return;
      if (stateAgain) { stateAgain = false; this.loadState(run); return; }
      if (!FINISHED.has(run.status)) stateTimer = setTimeout(() => run && this.loadState(run), 5000);
    },
    setLive(s) {
      live.textContent = s === "live" ? "● live" : "reconnecting…";
    },
    error(message) {
      error.hidden = false;
      error.textContent = message;
      error.classList.add("error-box");
    },
    destroy() {
      clearInterval(tick);
      clearTimeout(stateTimer);
      stateGen++;
    },
  };
}

