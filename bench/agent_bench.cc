// LLM-agent fan-out: N independent keel.agent nodes against keel-mock-llm
// (fixed latency, real HTTP over loopback: HTTP/1.1 with a connection per
// call, and HTTP/2 over TLS on one connection) on `keel run --workers 2`, as
// ratios to one call's latency, next to in-process oneTBB baselines and the
// LangGraph-style sequential loop. For where the time goes, the same agents
// on keel's in-process mock provider (a timer, no HTTP) and N keel.fn nodes
// that return at once (process start-up and checkpoints only); and a run of
// one agent, the latency of one call through keel over the same transport.
//
//   agent_bench                 N = 256, best and median of 5
//   agent_bench --quick         N = 64, one repetition (a smoke test for ctest)
//   agent_bench --n N --reps R  other sizes
//
// Fails (exit 1) only when something does not work: the server does not
// start, a run or a call fails. It asserts no timings.

#include <curl/curl.h>
#include <rapidjson/document.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/agent_bench_baselines.h"
#include "bench/agent_bench_process.h"

namespace keel::bench {
namespace {

namespace fs = std::filesystem;

constexpr int kLatencyMs = 200;
constexpr double kLatency = kLatencyMs / 1000.0;
constexpr int kWorkers = 2;

struct Options {
  int n = 256;
  int reps = 5;
  int sequential_calls = 256;  // extrapolated to n when fewer
  bool warm_up = true;
};

// Best and median of repeated measurements.
struct Series {
  std::vector<double> values;

  void Add(double v) { values.push_back(v); }
  double Best() const { return *std::min_element(values.begin(), values.end()); }
  double Max() const { return *std::max_element(values.begin(), values.end()); }
  double Median() const {
    std::vector<double> sorted = values;
    std::sort(sorted.begin(), sorted.end());
    return sorted[sorted.size() / 2];
  }
};

// A workflow file for `keel run` and the database its runs go to.
struct Workflow {
  fs::path file, db;
  bool node_times = false;  // read them back with `keel show` after each run
};

// What the `keel run` repetitions of one workflow measured.
struct KeelSeries {
  Series wall;        // process: fork to exit
  Series startup;     // process: fork to its output, less the run's duration_s
  Series exit;        // process: its output (the run is over) to exit
  Series engine;      // the run's own duration_s
  Series cpu;         // user + system of the process
  Series rss_mb;      // peak RSS of the process
  Series server_cpu;  // keel-mock-llm's CPU while the process ran
  Series first_node;  // run start to its first node's start
  Series spread;      // first node's start to the last node's start
  Series node;        // each node's own duration
};

// Everything measured, over the repetitions.
struct Results {
  KeelSeries http, https, inproc, fn;
  KeelSeries http_one, https_one;  // one agent: one call's latency through keel
  Series timer, multi, multi_cpu, multi_server_cpu, multi_h2;
};

fs::path TempDir() {
  fs::path dir = fs::temp_directory_path() / ("keel-agent-bench-" + std::to_string(getpid()));
  fs::create_directories(dir);
  return dir;
}

// N keel.agent nodes, all independent, asking provider "llm" declared by
// `provider` (its options).
std::string AgentScript(int n, const std::string& provider) {
  std::ostringstream s;
  s << "local keel = require \"keel\"\n"
    << "keel.provider \"llm\" { " << provider << " }\n"
    << "return keel.workflow \"fanout\" {\n";
  for (int i = 1; i <= n; ++i) {
    s << "  keel.agent \"a" << i << "\" { provider = \"llm\", prompt = \"question " << i
      << "\" },\n";
  }
  s << "}\n";
  return s.str();
}

// N keel.fn nodes that return at once: the same run without the LLM part.
std::string FnScript(int n) {
  std::ostringstream s;
  s << "local keel = require \"keel\"\nreturn keel.workflow \"fanout\" {\n";
  for (int i = 1; i <= n; ++i) {
    s << "  keel.fn \"f" << i << "\" { run = function(ctx) return " << i << " end },\n";
  }
  s << "}\n";
  return s.str();
}

// Writes `text` as workflow `name` in `dir`.
Workflow Write(const fs::path& dir, const std::string& name, const std::string& text,
               bool node_times) {
  Workflow w{dir / (name + ".lua"), dir / (name + ".db"), node_times};
  std::ofstream(w.file) << text;
  return w;
}

std::optional<rapidjson::Document> ParseJson(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.c_str(), text.size());
  if (doc.HasParseError() || !doc.IsObject()) return std::nullopt;
  return doc;
}

// Seconds since the epoch of an ISO 8601 UTC time "2026-11-23T19:02:12.367Z".
double IsoSeconds(const char* iso) {
  std::tm tm{};
  int ms = 0;
  std::sscanf(iso, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
              &tm.tm_min, &tm.tm_sec, &ms);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<double>(timegm(&tm)) + ms / 1000.0;
}

void ShowFailure(const char* what, const std::string& err_path) {
  std::ifstream in(err_path);
  std::string line, last;
  while (std::getline(in, line)) last = line;
  std::fprintf(stderr, "%s failed; last stderr line: %s\n", what, last.c_str());
}

// Node timings of run `run_id` from `keel show --events --json`: when its
// nodes started relative to the run, and how long each took.
bool AddNodeTimes(const std::string& run_id, const Workflow& w, const fs::path& dir,
                  KeelSeries* into) {
  const std::string err = (dir / "show.err").string();
  ChildRun show =
      RunChild({KEEL_BIN, "show", run_id, "--events", "--json", "--db", w.db.string()}, err);
  auto doc = show.ok ? ParseJson(show.out) : std::nullopt;
  if (!doc || !doc->HasMember("events") || !doc->HasMember("nodes") ||
      !(*doc)["events"].IsArray() || !(*doc)["nodes"].IsArray()) {
    ShowFailure("keel show", err);
    return false;
  }
  double run_start = 0, first = 1e300, last = 0;
  for (const auto& e : (*doc)["events"].GetArray()) {
    const std::string kind = e["kind"].GetString();
    const double ts = IsoSeconds(e["ts"].GetString());
    if (kind == "run_started") run_start = ts;
    if (kind == "node_started") {
      first = std::min(first, ts);
      last = std::max(last, ts);
    }
  }
  into->first_node.Add(first - run_start);
  into->spread.Add(last - first);
  for (const auto& node : (*doc)["nodes"].GetArray()) {
    if (node["duration_s"].IsNumber()) into->node.Add(node["duration_s"].GetDouble());
  }
  return true;
}

// Whether `keel run --json` printed a succeeded run with its id and duration.
bool Succeeded(const std::optional<rapidjson::Document>& doc) {
  return doc && doc->HasMember("status") && doc->HasMember("duration_s") &&
         doc->HasMember("run_id") && (*doc)["status"] == "succeeded" &&
         (*doc)["duration_s"].IsNumber() && (*doc)["run_id"].IsString();
}

// One `keel run FILE --workers 2 --json`: the process from fork to exit,
// the run's own duration, and the mock server's CPU meanwhile.
bool KeelRun(const Workflow& w, const fs::path& dir, const MockLlm& server, KeelSeries* into) {
  const std::string err = (dir / "run.err").string();
  const double server_cpu = server.cpu_seconds();
  ChildRun run = RunChild({KEEL_BIN, "run", w.file.string(), "--db", w.db.string(), "--workers",
                           std::to_string(kWorkers), "--json"},
                          err);
  into->server_cpu.Add(server.cpu_seconds() - server_cpu);
  auto doc = run.ok ? ParseJson(run.out) : std::nullopt;
  if (!Succeeded(doc)) {
    ShowFailure("keel run", err);
    return false;
  }
  const double duration = (*doc)["duration_s"].GetDouble();
  into->wall.Add(run.wall_s);
  into->startup.Add(run.output_s - duration);
  into->engine.Add(duration);
  into->exit.Add(run.wall_s - run.output_s);
  into->cpu.Add(run.cpu_s);
  into->rss_mb.Add(run.peak_rss_kb / 1024.0);
  return !w.node_times || AddNodeTimes((*doc)["run_id"].GetString(), w, dir, into);
}

// CPU seconds (user + system) this process has used so far.
double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// Where the measurements run.
struct Setup {
  fs::path dir;
  Workflow http, https, inproc, fn, http_one, https_one;
  std::string chat_url, tls_chat_url, ca_file;
};

// One repetition of each measurement, interleaved so that load drifting on
// the machine hits them alike. The forked keel runs' ru_maxrss is theirs:
// this process's anonymous memory (a few MB) stays below their peak.
bool Repetition(const Options& opt, const Setup& s, const MockLlm& server, const MockLlm& tls,
                Results* r) {
  const double timer = AsyncTimerRun(opt.n, kLatency, kWorkers);
  const double server_cpu = server.cpu_seconds();
  const double own_cpu = CpuSeconds();
  const double multi = AsyncCurlRun(opt.n, s.chat_url, kWorkers);
  r->multi_cpu.Add(CpuSeconds() - own_cpu);
  r->multi_server_cpu.Add(server.cpu_seconds() - server_cpu);
  const double multi_h2 = AsyncCurlRun(opt.n, s.tls_chat_url, kWorkers, s.ca_file);
  if (timer < 0 || multi < 0 || multi_h2 < 0) {
    std::fprintf(stderr, "a baseline call failed\n");
    return false;
  }
  r->timer.Add(timer);
  r->multi.Add(multi);
  r->multi_h2.Add(multi_h2);
  return KeelRun(s.http, s.dir, server, &r->http) && KeelRun(s.https, s.dir, tls, &r->https) &&
         KeelRun(s.inproc, s.dir, server, &r->inproc) && KeelRun(s.fn, s.dir, server, &r->fn) &&
         KeelRun(s.http_one, s.dir, server, &r->http_one) &&
         KeelRun(s.https_one, s.dir, tls, &r->https_one);
}

void PrintLine(const char* what, const Series& s) {
  std::printf("  %-40s %7.1f ms %6.3fx   (median %6.1f ms, %.3fx)\n", what, s.Best() * 1e3,
              s.Best() / kLatency, s.Median() * 1e3, s.Median() / kLatency);
}

void PrintSequential(const Options& opt, double seconds) {
  const double all = seconds * opt.n / opt.sequential_calls;
  std::printf("  %-40s %7.1f s  %6.0fx", "sequential (LangGraph-style)", all, all / kLatency);
  if (opt.sequential_calls < opt.n) {
    std::printf("   (%d calls run, extrapolated to N)", opt.sequential_calls);
  }
  std::printf("\n");
}

// When a keel run's nodes started and how long they took (medians over the
// repetitions; the max over all nodes of all of them).
void PrintTimeline(const char* what, const KeelSeries& k) {
  std::printf(
      "keel %s run: first node %.0f ms after the run started, the last %.0f ms after "
      "the first; node durations median %.0f ms, max %.0f ms\n",
      what, k.first_node.Median() * 1e3, k.spread.Median() * 1e3, k.node.Median() * 1e3,
      k.node.Max() * 1e3);
}

// A keel process's wall time split at the run's start and end (medians).
std::string Split(const KeelSeries& k) {
  char text[96];
  std::snprintf(text, sizeof text, "%.0f + %.0f + %.0f ms", k.startup.Median() * 1e3,
                k.engine.Median() * 1e3, k.exit.Median() * 1e3);
  return text;
}

// Per-call figures of the keel runs, and where their time went.
void PrintKeelDetail(const Options& opt, const Results& r) {
  const double n = opt.n;
  const KeelSeries& http = r.http;
  std::printf(
      "keel per call (N=%d): wall overhead %.3f ms (run's own %.3f ms); CPU %.3f ms "
      "(fn-only run %.3f ms, difference %.3f ms; async_node + curl multi %.3f ms)\n",
      opt.n, (http.wall.Best() - kLatency) / n * 1e3, (http.engine.Best() - kLatency) / n * 1e3,
      http.cpu.Median() / n * 1e3, r.fn.cpu.Median() / n * 1e3,
      (http.cpu.Median() - r.fn.cpu.Median()) / n * 1e3, r.multi_cpu.Median() / n * 1e3);
  std::printf("keel peak RSS: %.1f MB (in-process provider %.1f MB, fn-only run %.1f MB)\n",
              http.rss_mb.Median(), r.inproc.rss_mb.Median(), r.fn.rss_mb.Median());
  std::printf("keel process = start-up + run + exit: HTTP %s; in-process mock %s; fn-only %s\n",
              Split(http).c_str(), Split(r.inproc).c_str(), Split(r.fn).c_str());
  PrintTimeline("HTTP", http);
  PrintTimeline("in-process mock", r.inproc);
  std::printf("keel-mock-llm CPU per %d calls: %.0f ms under keel, %.0f ms under curl multi\n",
              opt.n, http.server_cpu.Median() * 1e3, r.multi_server_cpu.Median() * 1e3);
  std::printf(
      "keel's run against the same-server floor (async_node + curl multi): HTTP/1.1 "
      "%.3fx best, %.3fx median; HTTP/2 + TLS %.3fx best, %.3fx median\n",
      http.engine.Best() / r.multi.Best(), http.engine.Median() / r.multi.Median(),
      r.https.engine.Best() / r.multi_h2.Best(), r.https.engine.Median() / r.multi_h2.Median());
  std::printf(
      "keel per call over HTTP/2 + TLS: wall overhead %.3f ms (run's own %.3f ms); CPU "
      "%.3f ms; peak RSS %.1f MB\n",
      (r.https.wall.Best() - kLatency) / n * 1e3, (r.https.engine.Best() - kLatency) / n * 1e3,
      r.https.cpu.Median() / n * 1e3, r.https.rss_mb.Median());
  PrintTimeline("HTTP/2 + TLS", r.https);
  std::printf(
      "one call through keel (a run of 1 agent): HTTP/1.1 %.1f ms, HTTP/2 + TLS %.1f ms "
      "(medians); N agents against it: HTTP/1.1 %.3fx best, %.3fx median; HTTP/2 + TLS "
      "%.3fx best, %.3fx median\n",
      r.http_one.engine.Median() * 1e3, r.https_one.engine.Median() * 1e3,
      http.engine.Best() / r.http_one.engine.Median(),
      http.engine.Median() / r.http_one.engine.Median(),
      r.https.engine.Best() / r.https_one.engine.Median(),
      r.https.engine.Median() / r.https_one.engine.Median());
}

// The 1-minute load average: other processes sharing the cores skew every figure.
double LoadAverage() {
  double load = 0;
  std::ifstream("/proc/loadavg") >> load;
  return load;
}

void PrintReport(const Options& opt, const Results& r, double sequential_s, double load_before) {
  std::printf(
      "agent fan-out, N=%d, latency %d ms, --workers %d; best of %d, x = / latency "
      "(%u cores, load average %.1f before, %.1f after)\n",
      opt.n, kLatencyMs, kWorkers, opt.reps, std::thread::hardware_concurrency(), load_before,
      LoadAverage());
  PrintLine("keel run, HTTP/1.1 (process wall)", r.http.wall);
  PrintLine("keel run, HTTP/1.1 (run's duration_s)", r.http.engine);
  PrintLine("keel run, HTTP/2 + TLS (process wall)", r.https.wall);
  PrintLine("keel run, HTTP/2 + TLS (run's duration_s)", r.https.engine);
  PrintLine("keel run, in-process mock (duration_s)", r.inproc.engine);
  PrintLine("async_node + timer thread", r.timer);
  PrintLine("async_node + curl multi, HTTP/1.1", r.multi);
  PrintLine("async_node + curl multi, HTTP/2 + TLS", r.multi_h2);
  PrintSequential(opt, sequential_s);
  std::printf("  %-40s %7.1f ms          (duration_s %.1f ms)\n", "keel fn-only run (process wall)",
              r.fn.wall.Best() * 1e3, r.fn.engine.Best() * 1e3);
  PrintKeelDetail(opt, r);
}

int Run(const Options& opt) {
  Setup s;
  s.dir = TempDir();
  s.ca_file = (s.dir / "mock-ca.pem").string();
  MockLlm server(MOCK_LLM_BIN, kLatencyMs);
  MockLlm tls(MOCK_LLM_BIN, kLatencyMs, s.ca_file);
  if (server.port() == 0 || tls.port() == 0) return 1;
  const double load_before = LoadAverage();
  const std::string http =
      "kind = \"openai\", base_url = \"" + server.base_url() + "/v1\", model = \"mock\"";
  s.http = Write(s.dir, "http", AgentScript(opt.n, http), true);
  const std::string https = "kind = \"openai\", base_url = \"" + tls.base_url() +
                            "/v1\", model = \"mock\", ca_file = \"" + s.ca_file + "\"";
  s.https = Write(s.dir, "https", AgentScript(opt.n, https), true);
  s.http_one = Write(s.dir, "http_one", AgentScript(1, http), false);
  s.https_one = Write(s.dir, "https_one", AgentScript(1, https), false);
  s.tls_chat_url = tls.base_url() + "/v1/chat/completions";
  s.inproc =
      Write(s.dir, "inproc",
            AgentScript(opt.n, "kind = \"mock\", latency = " + std::to_string(kLatency)), true);
  s.fn = Write(s.dir, "fn", FnScript(opt.n), false);
  s.chat_url = server.base_url() + "/v1/chat/completions";
  Results warm_up, r;
  bool ok = !opt.warm_up || Repetition(opt, s, server, tls, &warm_up);
  for (int i = 0; ok && i < opt.reps; ++i) ok = Repetition(opt, s, server, tls, &r);
  const double sequential = ok ? SequentialRun(opt.sequential_calls, s.chat_url) : -1;
  if (ok && sequential < 0) std::fprintf(stderr, "a sequential call failed\n");
  if (sequential >= 0) PrintReport(opt, r, sequential, load_before);
  fs::remove_all(s.dir);
  return sequential >= 0 ? 0 : 1;
}

bool ParseOptions(int argc, char** argv, Options* opt) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--quick") {
      opt->n = 64;
      opt->reps = 1;
      opt->sequential_calls = 16;
      opt->warm_up = false;
    } else if ((arg == "--n" || arg == "--reps") && i + 1 < argc) {
      (arg == "--n" ? opt->n : opt->reps) = std::atoi(argv[++i]);
    } else {
      return false;
    }
  }
  opt->sequential_calls = std::min(opt->sequential_calls, opt->n);
  return opt->n > 0 && opt->reps > 0;
}

}  // namespace
}  // namespace keel::bench

int main(int argc, char** argv) {
  keel::bench::Options opt;
  if (!keel::bench::ParseOptions(argc, argv, &opt)) {
    std::fprintf(stderr, "usage: agent_bench [--quick] [--n N] [--reps R]\n");
    return 2;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const int rc = keel::bench::Run(opt);
  curl_global_cleanup();
  return rc;
}
