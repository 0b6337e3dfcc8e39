// Small DOM helpers every page shares: element building, status badges
// (a word and a symbol, never colour alone), the confirmation dialog, the
// toast, the token prompt and the number/time formats. Main thread only.

// h("a", {href: "/x", class: "c", onclick: f}, "text", child...) -> element.
// Attributes starting with "on" become listeners; `dataset` and `style`
// objects are merged; null/false children are skipped.
export function h(tag, attrs, ...children) {
  const svg = tag.startsWith("svg:");
  const el = svg
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "style" && typeof v === "object") Object.assign(el.style, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

const SYMBOLS = {
  succeeded: "✓", failed: "✗", degraded: "◐", running: "▶", waiting: "‖",
  interrupted: "⚠", cancelled: "⊘", queued: "…", pending: "○", skipped: "↷",
  fallback: "↺", retrying: "⟳", backing_off: "◷", breaker_open: "⊗",
  waiting_signal: "✉", waiting_timer: "◷", open: "⊗", half_open: "◑", closed: "✓",
  recovering: "◔", forced_open: "⊠", disabled: "⊖",
};

// The symbol shown with `status` (for drawings where badge() does not fit).
export function symbol(status) {
  return SYMBOLS[status] || "•";
}

// "backing_off" -> "backing off".
export function words(status) {
  return String(status || "").replace(/_/g, " ");
}

// A badge saying `status` in words with a symbol; coloured by class too.
export function badge(status, testid = null) {
  return h("span", { class: "badge s-" + status, "data-testid": testid },
    h("span", { "aria-hidden": "true" }, SYMBOLS[status] || "•"), " ", words(status));
}

// Asks to confirm `title` (with `body`, a string or element). Resolves true
// for OK. Every action goes through it.
export function confirmAction(title, body, okLabel = "OK") {
  const dialog = document.getElementById("confirm");
  dialog.querySelector("#confirm-title").textContent = title;
  const slot = dialog.querySelector(".confirm-body");
  slot.replaceChildren(typeof body === "string" ? h("p", {}, body) : body);
  dialog.querySelector("[data-testid=confirm-ok]").textContent = okLabel;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

let toastTimer = 0;
// Shows `message` for a few seconds; kind "ok" | "error".
export function toast(message, kind = "ok") {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.className = "show " + kind;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.className = ""; }, kind === "error" ? 10000 : 5000);
}

// Runs an action after confirmation: `run` returns a promise; its result
// (or error) shows in the toast. Resolves to the result, or null.
export async function act(title, body, run, okLabel) {
  if (!(await confirmAction(title, body, okLabel))) return null;
  try {
    const result = await run();
    toast(title + ": done");
    return result;
  } catch (e) {
    toast(title + " failed: " + e.message, "error");
    return null;
  }
}

// Shows the token dialog; resolves with the token typed.
export function askToken() {
  const dialog = document.getElementById("token-dialog");
  const input = dialog.querySelector("input[name=token]");
  input.value = "";
  if (!dialog.open) dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", function again() {
      if (input.value) resolve(input.value);
      else {
        dialog.showModal();
        dialog.addEventListener("close", again, { once: true });
      }
    }, { once: true });
  });
}

// "2026-12-05T03:13:21.814Z" -> "03:13:21" today, else "Dec 5 03:13".
export function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const now = new Date();
  const time = d.toLocaleTimeString([], { hour12: false });
  if (d.toDateString() === now.toDateString()) return time;
  return d.toLocaleDateString([], { month: "short", day: "numeric" }) + " " + time;
}

// 0.0123 -> "12ms", 75 -> "1m15s".
export function fmtDuration(s) {
  if (s === null || s === undefined) return "";
  if (s < 1) return Math.round(s * 1000) + "ms";
  if (s < 60) return s.toFixed(s < 10 ? 2 : 1) + "s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + "m" + Math.round(s % 60) + "s";
  return Math.floor(m / 60) + "h" + (m % 60) + "m";
}

export function fmtCost(c) {
  if (!c) return "";
  return c < 0.01 ? c.toFixed(4) : c.toFixed(2);
}

export function fmtTokens(n) {
  if (!n) return "0";
  return n >= 10000 ? (n / 1000).toFixed(1) + "k" : String(n);
}

// Adds <link rel=stylesheet href=/assets/NAME> once (a page's own CSS).
export function useCss(name) {
  const href = "/assets/" + name;
  if (document.querySelector(`link[rel=stylesheet][href="${href}"]`)) return;
  document.head.append(h("link", { rel: "stylesheet", href }));
}

// An error box naming what failed: errorBox("loading runs", "GET /api/v1/runs", err).
export function errorBox(what, request, err) {
  const status = err && err.status ? ` (HTTP ${err.status})` : "";
  return h("div", { class: "error-box", role: "alert" },
    h("strong", {}, "Failed: " + what), request ? [" — ", h("code", {}, request)] : null,
    status + ": " + ((err && err.message) || String(err)));
}

// 65 -> "1m05s" for countdowns; 0 or less -> "now".
export function fmtCountdown(s) {
  if (s === null || s === undefined) return "";
  if (s <= 0) return "now";
  s = Math.ceil(s);
  if (s < 60) return s + "s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + "m" + String(s % 60).padStart(2, "0") + "s";
  return Math.floor(m / 60) + "h" + String(m % 60).padStart(2, "0") + "m";
}
