// The browser tests' harness: a temporary directory with workflow files, the
// real `keel serve` on 127.0.0.1:0 (and the mock LLM when a test needs it),
// Debian's chromium driven by playwright-core, and the checks every test
// makes: no console error, no page error, no request leaving the server's
// origin. Everything it starts is stopped at the end, failed test or not.
//
// Environment:
//   KEEL_BIN       the keel binary (required; set by CMake)
//   KEEL_MOCK_LLM  keel-mock-llm (for tests that start it; set by CMake)
//   KEEL_WEB_DIR   serve the page from this directory (`keel serve
//                  --web-dir`) instead of the assets in the binary; for
//                  working on the page only, CI leaves it unset
//   BROWSER_OUT    where screenshots and logs go (default ./browser-out)
//   CHROMIUM       the browser (default /usr/bin/chromium)
//
// Node's test runner calls it from one thread; one Keel and one Browser per
// test file, stopped by the file's after() hooks (and, as a last resort, by
// the process's exit handler).
import { spawn } from "node:child_process";
import { mkdtemp, mkdir, writeFile, rm, readFile } from "node:fs/promises";
import { createWriteStream, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

export const OUT_ROOT = path.resolve(process.env.BROWSER_OUT || "browser-out");
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
export const CHROMIUM_FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

// Every child process started here, killed on exit if still alive.
const children = new Set();
process.on("exit", () => {
  for (const child of children) {
    try {
      process.kill(child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
});

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Polls `probe` (async; a truthy result ends the wait) every `every` ms;
// throws naming `what` after `timeout` ms, with the last value seen.
export async function waitFor(what, probe, { timeout = 15000, every = 100 } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await probe();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) {
      const seen = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${seen})`);
    }
    await sleep(every);
  }
}

// Reads lines of `stream` until one matches `re`; resolves to the match.
function waitForLine(stream, re, what, timeout, log) {
  return new Promise((resolve, reject) => {
    let buffer = "";
    const timer = setTimeout(() => {
      stream.off("data", onData);
      reject(new Error(`timed out after ${timeout} ms waiting for ${what}; output so far:\n${buffer}`));
    }, timeout);
    function onData(chunk) {
      buffer += chunk.toString();
      const m = buffer.match(re);
      if (m) {
        clearTimeout(timer);
        stream.off("data", onData);
        resolve(m);
      }
    }
    stream.on("data", onData);
    stream.once("end", () => {
      clearTimeout(timer);
      reject(new Error(`${what}: the process ended first; output:\n${buffer}` + (log ? ` (log: ${log})` : "")));
    });
  });
}

// SIGTERM, then SIGKILL after `timeout` ms; resolves once it exited (or
// never started), at most a second after the SIGKILL.
function stopChild(child, timeout = 5000) {
  if (!child || !child.pid || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // gone
      }
    }, timeout);
    const giveUp = setTimeout(resolve, timeout + 1000);
    child.once("exit", () => {
      clearTimeout(kill);
      clearTimeout(giveUp);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

// The pids of processes whose command line mentions `needle` (the runs
// `keel serve` started in their own sessions, which outlive it by design).
function pidsMentioning(needle) {
  const pids = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "latin1");
      if (cmdline.includes(needle)) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

// The output folder of one test (created).
export async function outDir(name) {
  const dir = path.join(OUT_ROOT, name);
  await mkdir(dir, { recursive: true });
  return dir;
}

// A running `keel serve` over a fresh database, with `workflows` ({"x.lua":
// source}) written under its --workflows directory.
export class Keel {
  static async start({ name, workflows = {}, token = null, args = [], env = {} }) {
    if (!process.env.KEEL_BIN) throw new Error("KEEL_BIN is not set: it names the keel binary to test (CMake sets it)");
    const bin = path.resolve(process.env.KEEL_BIN); // the server runs in its temp dir
    const k = new Keel();
    k.name = name;
    k.token = token;
    k.dir = await mkdtemp(path.join(tmpdir(), "keel-browser-"));
    k.workflowsDir = path.join(k.dir, "workflows");
    k.db = path.join(k.dir, "keel.db");
    k.out = await outDir(name);
    await mkdir(k.workflowsDir);
    for (const [file, source] of Object.entries(workflows)) {
      await mkdir(path.dirname(path.join(k.workflowsDir, file)), { recursive: true });
      await writeFile(path.join(k.workflowsDir, file), source);
    }
    const argv = ["serve", "--listen", "127.0.0.1:0", "--db", k.db, "--workflows", k.workflowsDir];
    if (process.env.KEEL_WEB_DIR) argv.push("--web-dir", path.resolve(process.env.KEEL_WEB_DIR));
    const childEnv = Object.assign({}, process.env, env);
    if (token) {
      childEnv.KEEL_BROWSER_TEST_TOKEN = token;
      argv.push("--token-env", "KEEL_BROWSER_TEST_TOKEN");
    }
    argv.push(...args);
    k.logPath = path.join(k.out, "serve.log");
    const log = createWriteStream(k.logPath);
    k.child = spawn(bin, argv, { stdio: ["ignore", "pipe", "pipe"], env: childEnv, cwd: k.dir });
    children.add(k.child);
    k.child.once("exit", () => children.delete(k.child));
    k.child.stdout.pipe(log);
    k.child.stderr.pipe(log);
    const failed = new Promise((resolve, reject) => {
      k.child.once("error", (e) => reject(new Error(`cannot start ${bin}: ${e.message}`)));
    });
    let m;
    try {
      m = await Promise.race([failed, waitForLine(k.child.stderr, /keel serve: listening on (http:\/\/[^\s]+)/,
        "keel serve's `listening on` line", 20000, k.logPath)]);
    } catch (e) {
      await k.stop();
      throw e;
    }
    k.url = m[1].replace(/\/$/, "");
    k.origin = new URL(k.url).origin;
    return k;
  }

  // A request to /api/v1/PATH; resolves to {status, body} (body parsed JSON
  // or null). Throws when `expect` is given and the status differs.
  async request(method, apiPath, body, { expect } = {}) {
    const headers = { Accept: "application/json" };
    if (this.token) headers.Authorization = "Bearer " + this.token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(this.url + "/api/v1/" + apiPath, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30000),
    });
    const text = await res.text();
    let parsed = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = text;
    }
    if (expect !== undefined && res.status !== expect) {
      throw new Error(`${method} /api/v1/${apiPath}: expected ${expect}, got ${res.status}: ${text.slice(0, 500)}`);
    }
    return { status: res.status, body: parsed };
  }

  async get(apiPath) {
    return (await this.request("GET", apiPath, undefined, { expect: 200 })).body;
  }

  // POST runs: starts `workflow` (a file under --workflows); resolves to its id.
  async startRun(workflow, params = {}) {
    const { body } = await this.request("POST", "runs", { workflow, params }, { expect: 201 });
    return body.run_id;
  }

  // Waits until GET runs/ID's status is one of `statuses`; resolves to the run.
  async waitStatus(runId, statuses, timeout = 30000) {
    const want = [].concat(statuses);
    let seen = null;
    return waitFor(`run ${runId} to be ${want.join(" or ")}`, async () => {
      const run = await this.get("runs/" + runId);
      seen = run.status;
      return want.includes(run.status) ? run : null;
    }, { timeout, every: 100 }).catch((e) => {
      throw new Error(`${e.message}; it was ${seen}`);
    });
  }

  // GET runs/ID/nodes/NODE once it says `status`: the API may answer from
  // a cache up to a second old, so a run seen finished may still show its
  // nodes as they were.
  async nodeWhen(runId, node, status = "succeeded", timeout = 5000) {
    let seen = null;
    return waitFor(`node ${node} of run ${runId} to show ${status}`, async () => {
      const n = await this.get(`runs/${runId}/nodes/${node}`);
      seen = n.status;
      return n.status === status ? n : null;
    }, { timeout }).catch((e) => {
      throw new Error(`${e.message}; it showed ${seen}`);
    });
  }

  // Stops the server, then any run it started that is still going.
  async stop() {
    if (!this.dir) return;
    await stopChild(this.child);
    for (const pid of pidsMentioning(this.db)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    this.child = null;
    if (!process.env.KEEL_BROWSER_KEEP) await rm(this.dir, { recursive: true, force: true });
    this.dir = null;
  }
}

// The mock LLM server (tools/mock_llm) with `args`; `url` is its base URL.
export class MockLlm {
  static async start(args = []) {
    if (!process.env.KEEL_MOCK_LLM) throw new Error("KEEL_MOCK_LLM is not set: it names keel-mock-llm (CMake sets it)");
    const bin = path.resolve(process.env.KEEL_MOCK_LLM);
    const m = new MockLlm();
    m.child = spawn(bin, ["--port", "0", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    children.add(m.child);
    m.child.once("exit", () => children.delete(m.child));
    const failed = new Promise((resolve, reject) => {
      m.child.once("error", (e) => reject(new Error(`cannot start ${bin}: ${e.message}`)));
    });
    const line = await Promise.race([failed, waitForLine(m.child.stdout, /^listening on (http:\/\/\S+)/m, "keel-mock-llm's `listening on` line", 10000)]);
    m.url = line[1];
    return m;
  }

  async stop() {
    if (this.child) await stopChild(this.child);
    this.child = null;
  }
}

// Debian's chromium (headless, fresh profile) on one keel serve. Records
// console errors, page errors and any request that leaves `origin` (those
// are aborted); check() fails on any of them.
export class Browser {
  // `intercept` false leaves requests alone (route interception turns the
  // HTTP cache off; the bench measures with and without it); off-origin
  // requests are still reported.
  static async launch({ name, origin, allowConsole = [], viewport = { width: 1280, height: 800 }, intercept = true }) {
    const b = new Browser();
    b.name = name;
    b.origin = origin;
    b.allowConsole = allowConsole;
    b.out = await outDir(name);
    b.problems = [];
    b.intercept = intercept;
    b.shots = [];
    b.profile = await mkdtemp(path.join(tmpdir(), "keel-chromium-"));
    // launchPersistentContext passes the fresh profile as --user-data-dir
    // (playwright refuses that flag among `args`).
    b.context = await chromium.launchPersistentContext(b.profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_FLAGS,
      viewport,
      timeout: 30000,
    });
    b.context.setDefaultTimeout(15000);
    b.context.setDefaultNavigationTimeout(20000);
    if (intercept) await b.context.route("**/*", (route) => {
      const url = route.request().url();
      if (new URL(url).origin === origin) return route.continue();
      b.offOrigin(url);
      return route.abort("blockedbyclient");
    });
    // Marks when svg[data-testid=dag] first carries data-ready="true", in
    // ms since navigation start (performance.now()), in window.__keelReadyAt.
    await b.context.addInitScript(() => {
      window.__keelReadyAt = null;
      const sel = 'svg[data-testid="dag"][data-ready="true"]';
      const check = () => {
        if (window.__keelReadyAt === null && document.querySelector(sel)) window.__keelReadyAt = performance.now();
        return window.__keelReadyAt !== null;
      };
      new MutationObserver(check).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-ready"] });
      const tick = () => {
        if (!check()) requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    });
    b.page = b.context.pages()[0] || (await b.context.newPage());
    b.watch(b.page);
    b.context.on("page", (p) => b.watch(p));
    return b;
  }

  watch(page) {
    page.on("console", (msg) => {
      if (msg.type() !== "error") return;
      const text = msg.text();
      if (this.allowConsole.some((re) => re.test(text))) return;
      this.problems.push(`console error on ${page.url()}: ${text}`);
    });
    page.on("pageerror", (err) => this.problems.push(`page error on ${page.url()}: ${err.stack || err.message}`));
    page.on("request", (req) => {
      const url = req.url();
      if (url.startsWith("data:") || url.startsWith("blob:")) return;
      if (new URL(url).origin !== this.origin) this.offOrigin(url);
    });
  }

  offOrigin(url) {
    const problem = `request off the server's origin: ${url}`;
    if (!this.problems.includes(problem)) this.problems.push(problem);
  }

  // Opens PATH on the server in the (first) page.
  async goto(p, opts = {}) {
    return this.page.goto(this.origin + p, Object.assign({ waitUntil: "domcontentloaded" }, opts));
  }

  // Writes OUT/<test>/<name>.png of the page.
  async shot(name, page = this.page) {
    const file = path.join(this.out, name + ".png");
    await page.screenshot({ path: file, fullPage: false, timeout: 15000 });
    this.shots.push(file);
    return file;
  }

  // Throws listing every console error, page error and off-origin request
  // since the last check (so each test answers for its own).
  check() {
    const problems = this.problems.splice(0);
    if (problems.length) throw new Error("the page misbehaved:\n  " + problems.join("\n  "));
  }

  async close() {
    if (this.context) {
      await this.context.close().catch(() => {});
      this.context = null;
    }
    await rm(this.profile, { recursive: true, force: true }).catch(() => {});
    if (this.shots.length) console.log(`screenshots of ${this.name}: ${this.out}`);
  }
}

// One test file's server and browser, both stopped by `after`. Use as
//   const env = await setup({ name, workflows }); ... env.browser.page ...
export async function setup({ name, workflows = {}, token = null, serveArgs = [], allowConsole = [], viewport }) {
  const keel = await Keel.start({ name, workflows, token, args: serveArgs });
  let browser;
  try {
    browser = await Browser.launch({ name, origin: keel.origin, allowConsole, viewport });
  } catch (e) {
    await keel.stop();
    throw e;
  }
  return {
    keel,
    browser,
    page: browser.page,
    async teardown() {
      // The page as it was at the end: what a failed test left on screen.
      await browser.shot("last").catch(() => {});
      if (browser.problems.length) console.log(`what the page of ${name} did wrong:\n  ` + browser.problems.join("\n  "));
      await browser.close();
      await keel.stop();
    },
  };
}

// The text of `locator`, trimmed ("" when absent).
export async function text(locator) {
  if ((await locator.count()) === 0) return "";
  return ((await locator.first().textContent()) || "").trim();
}

// {"NAME.lua": source} of files in tests/browser/workflows/.
export async function workflowFiles(...names) {
  const files = {};
  for (const name of names) {
    files[name] = await readFile(new URL("./workflows/" + name, import.meta.url), "utf8");
  }
  return files;
}

// Answers the confirmation dialog every action opens with OK; resolves to
// the toast's text once it shows.
export async function confirmAndReadToast(page) {
  const dialog = page.locator("dialog[data-testid=confirm]");
  await dialog.waitFor({ state: "visible" });
  await dialog.locator("button[data-testid=confirm-ok]").click();
  await dialog.waitFor({ state: "hidden" });
  const toast = page.locator("[data-testid=toast][role=status]");
  await waitFor("the toast to show a result", async () => (await text(toast)) || null, { timeout: 20000 });
  return text(toast);
}
