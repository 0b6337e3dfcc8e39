// The API client: JSON requests to /api/v1 with the bearer token, and the
// live event stream read through fetch (EventSource cannot send the
// Authorization header). The token is asked for once, on the first 401,
// and kept in sessionStorage for this tab.
import { askToken } from "./ui.js";

const TOKEN_KEY = "keel.token";
let tokenWait = null; // one prompt at a time, shared by concurrent requests

function headers(extra) {
  const h = Object.assign({ Accept: "application/json" }, extra || {});
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) h.Authorization = "Bearer " + token;
  return h;
}

async function newToken() {
  if (!tokenWait) {
    tokenWait = askToken().then((token) => {
      sessionStorage.setItem(TOKEN_KEY, token);
      tokenWait = null;
    });
  }
  return tokenWait;
}

// An API error: `status` is the HTTP status (0 when the server was not
// reached), `message` the server's {"error"} text.
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// GET/POST `path` (relative to /api/v1/, may hold a query string); resolves
// to the parsed JSON body, rejects with an ApiError.
export async function api(path, { method = "GET", body, signal } = {}) {
  for (;;) {
    let res;
    try {
      res = await fetch("/api/v1/" + path, {
        method,
        signal,
        headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }),
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      if (e.name === "AbortError") throw e;
      throw new ApiError(0, "keel serve is not reachable: " + e.message);
    }
    if (res.status === 401) {
      await newToken();
      continue;
    }
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!res.ok) {
      throw new ApiError(res.status, (data && data.error) || res.status + " " + res.statusText);
    }
    return data;
  }
}

export const enc = encodeURIComponent;

// Follows GET /api/v1/stream (?run=ID for one run) from `after` (a cursor,
// or null for new events only) and calls onEvent(event, cursor) for each;
// reconnects after a drop from the last cursor, with a growing pause.
// onState("live" | "reconnecting") reports the connection. Returns a
// function that stops it.
export function follow({ run = null, after = null, onEvent, onState = () => {} }) {
  const stop = new AbortController();
  const id = ++streamCount;
  const report = onState;
  onState = (state) => {
    if (stop.signal.aborted) return;
    streamStates.set(id, state);
    showLive();
    report(state);
  };
  streamStates.set(id, "connecting");
  showLive();
  let cursor = after;
  let pause = 500;
  (async () => {
    while (!stop.signal.aborted) {
      const q = new URLSearchParams();
      if (run) q.set("run", run);
      if (cursor !== null) q.set("after", String(cursor));
      try {
        const res = await fetch("/api/v1/stream?" + q, {
          headers: headers({ Accept: "text/event-stream" }),
          signal: stop.signal,
        });
        if (res.status === 401) {
          await newToken();
          continue;
        }
        if (!res.ok || !res.body) throw new Error(String(res.status));
        onState("live");
        pause = 500;
        await readEvents(res.body, (id, data) => {
          if (id !== null) cursor = id;
          onEvent(data, id);
        });
      } catch (e) {
        if (stop.signal.aborted) return;
      }
      onState("reconnecting");
      await new Promise((r) => setTimeout(r, pause));
      pause = Math.min(pause * 2, 10000);
    }
  })();
  return () => {
    stop.abort();
    streamStates.delete(id);
    showLive();
  };
}

// The header's words for the live streams open now: "live" when every one
// is connected, "reconnecting…" when one is not, nothing without streams.
const streamStates = new Map();
let streamCount = 0;
function showLive() {
  const el = document.getElementById("live");
  if (!el) return;
  const states = [...streamStates.values()];
  const state = states.includes("reconnecting") ? "reconnecting"
    : states.includes("connecting") ? "connecting" : states.length ? "live" : "";
  el.textContent = { reconnecting: "⚠ reconnecting…", connecting: "… connecting", live: "● live", "": "" }[state];
  el.dataset.state = state;
}

// Parses a text/event-stream body: calls emit(id, parsedData) per message.
async function readEvents(body, emit) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let id = null;
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("id:")) id = Number(line.slice(3).trim());
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length === 0) continue;
      try {
        emit(id, JSON.parse(data.join("\n")));
      } catch {
        // a message that is not JSON is not ours: skip it
      }
    }
  }
}
