// telemetry/: the OpenTelemetry environment, the OTLP JSON body, the run
// tracer's spans from observer callbacks, and the exporter's bounds.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <string>

#include "engine/workflow.h"
#include "telemetry/otel_config.h"
#include "telemetry/otlp_json.h"
#include "telemetry/run_tracer.h"
#include "telemetry/span_exporter.h"
#include "tests/support/json.h"

namespace keel::telemetry {
namespace {

std::map<std::string, std::string>* g_env = nullptr;

const char* FakeGetenv(const char* name) {
  auto it = g_env->find(name);
  return it == g_env->end() ? nullptr : it->second.c_str();
}

std::optional<OtelConfig> Config(std::map<std::string, std::string> env,
                                 std::string* warning = nullptr) {
  g_env = &env;
  auto config = OtelConfigFromEnv(warning, &FakeGetenv);
  g_env = nullptr;
  return config;
}

}  // namespace

TEST_CASE("the OpenTelemetry environment") {
  CHECK_FALSE(Config({}).has_value());
  auto base = Config({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"}});
  REQUIRE(base.has_value());
  CHECK(base->traces_url == "http://collector:4318/v1/traces");
  CHECK(base->service_name == "keel");
  CHECK(base->timeout == doctest::Approx(2));

  auto full = Config({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"},
                      {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://b/custom/path"},
                      {"OTEL_SERVICE_NAME", "pipelines"},
                      {"OTEL_EXPORTER_OTLP_HEADERS", "api-key=s%3Dcret, x-team = data"},
                      {"OTEL_EXPORTER_OTLP_TIMEOUT", "500"}});
  REQUIRE(full.has_value());
  CHECK(full->traces_url == "https://b/custom/path");
  CHECK(full->service_name == "pipelines");
  REQUIRE(full->headers.size() == 2);
  CHECK(full->headers[0] == std::pair<std::string, std::string>("api-key", "s=cret"));
  CHECK(full->headers[1] == std::pair<std::string, std::string>("x-team", "data"));
  CHECK(full->timeout == doctest::Approx(0.5));

  CHECK_FALSE(Config({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"},
                      {"OTEL_SDK_DISABLED", "TRUE"}})
                  .has_value());

  std::string warning;
  CHECK_FALSE(Config({{"OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"}}, &warning).has_value());
  CHECK(warning.find("OTEL_EXPORTER_OTLP_ENDPOINT") != std::string::npos);

  warning.clear();
  auto bad_header = Config({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://a"},
                            {"OTEL_EXPORTER_OTLP_HEADERS", "novalue,k=%zz,ok=1"}},
                           &warning);
  REQUIRE(bad_header.has_value());
  CHECK(bad_header->headers.size() == 1);
  CHECK(warning.find("OTEL_EXPORTER_OTLP_HEADERS") != std::string::npos);
  CHECK(warning.find("%zz") == std::string::npos);  // never the value
}

TEST_CASE("the OTLP JSON body") {
  Span span;
  span.trace_id = std::string(32, 'a');
  span.span_id = std::string(16, 'b');
  span.name = "chat m\xff";  // invalid UTF-8 still makes valid JSON
  span.start_ns = 1700000000000000001;
  span.end_ns = 1700000000000000002;
  span.attributes = {{"s", std::string("x")}, {"i", int64_t{42}}, {"d", 0.5}, {"b", true}};
  span.events = {{"retry_scheduled", 1700000000000000001, {{"attempt", int64_t{2}}}}};
  span.status = SpanStatus::kError;
  span.status_message = "boom";
  std::string body = OtlpTracesJson({span}, "svc", "0.1.0");
  testing::Json doc = testing::Json::Parse(body);
  testing::Json s = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
  CHECK(s["traceId"].Str() == std::string(32, 'a'));
  CHECK(s["parentSpanId"].IsNull());
  CHECK(s["startTimeUnixNano"].Str() == "1700000000000000001");
  CHECK(s["attributes"][1]["value"]["intValue"].Str() == "42");
  CHECK(s["attributes"][2]["value"]["doubleValue"].Num() == 0.5);
  CHECK(s["attributes"][3]["value"]["boolValue"].Bool());
  CHECK(s["events"][0]["name"].Str() == "retry_scheduled");
  CHECK(s["status"]["code"].Int() == 2);
  CHECK(s["status"]["message"].Str() == "boom");
  CHECK(doc["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"].Str() ==
        "svc");
}

TEST_CASE("the run tracer: spans from observer callbacks") {
  WorkflowSpec wf;
  wf.name = "w";
  NodeSpec fn;
  fn.name = "a";
  wf.nodes.push_back(fn);
  NodeSpec agent;
  agent.name = "b";
  agent.kind = "agent";
  wf.nodes.push_back(agent);
  std::vector<Span> spans;
  RunTracer tracer(wf, /*resuming=*/false, [&spans](Span s) { spans.push_back(std::move(s)); });
  tracer.OnRunStarted({"run-1", "w", 2, 0});
  tracer.OnNodeStarted("a", 1);
  tracer.OnEvent("a", "attempt_failed", R"({"attempt":1,"kind":"timeout","message":"slow"})", 10);
  tracer.OnEvent("a", "retry_scheduled", R"({"attempt":2,"delay":0.1})", 10.1);
  tracer.OnNodeStarted("a", 2);
  tracer.OnNodeFinished("a", NodeResult::Success(MakeJson("1")), 1);
  tracer.OnNodeStarted("b", 1);
  tracer.OnEvent("b", "llm_call",
                 R"({"provider":"p","model":"m-2","request_model":"m","provider_kind":"openai",)"
                 R"("server":"[::1]:8080","prompt_tokens":3,"completion_tokens":4,"seconds":0.5,)"
                 R"("outcome":"ok"})",
                 20);
  tracer.OnNodeFinished("b", NodeResult::Success(MakeJson("2")), 1);
  tracer.OnRunFinished(RunStatus::kSucceeded);

  REQUIRE(spans.size() == 5);
  const Span& first = spans[0];
  CHECK(first.name == "execute_tool a");
  CHECK(first.status == SpanStatus::kError);
  REQUIRE(first.events.size() == 2);
  CHECK(first.events[0].name == "timeout");
  CHECK(first.events[1].name == "retry_scheduled");
  CHECK(first.end_ns == 10'000'000'000);
  CHECK(spans[1].status == SpanStatus::kOk);
  const Span& chat = spans[2];
  CHECK(chat.name == "chat m");
  CHECK(chat.kind == SpanKind::kClient);
  CHECK(chat.parent_span_id == spans[3].span_id);
  CHECK(chat.start_ns == 19'500'000'000);
  CHECK(spans[3].name == "invoke_agent b");
  const Span& run = spans[4];
  CHECK(run.name == "invoke_workflow w");
  CHECK(run.parent_span_id.empty());
  CHECK(run.span_id == RootSpanIdOfRun("run-1"));
  for (const Span& s : spans) CHECK(s.trace_id == TraceIdOfRun("run-1"));
  for (int i : {0, 1, 3}) CHECK(spans[i].parent_span_id == run.span_id);
  std::map<std::string, Attribute> attrs;
  for (const Attribute& a : chat.attributes) attrs.emplace(a.key, a);
  CHECK(std::get<std::string>(attrs.at("server.address").value) == "::1");
  CHECK(std::get<int64_t>(attrs.at("server.port").value) == 8080);
  CHECK(std::get<std::string>(attrs.at("gen_ai.response.model").value) == "m-2");
  CHECK(std::get<int64_t>(attrs.at("gen_ai.usage.output_tokens").value) == 4);

  // A resume: the same trace, a new run span under the first.
  std::vector<Span> again;
  RunTracer resumed(wf, /*resuming=*/true, [&again](Span s) { again.push_back(std::move(s)); });
  resumed.OnRunStarted({"run-1", "w", 2, 1});
  resumed.OnRunFinished(RunStatus::kFailed);
  REQUIRE(again.size() == 1);
  CHECK(again[0].trace_id == TraceIdOfRun("run-1"));
  CHECK(again[0].parent_span_id == RootSpanIdOfRun("run-1"));
  CHECK(again[0].status == SpanStatus::kError);
  CHECK(TraceIdOfRun("run-1") != TraceIdOfRun("run-2"));
}

TEST_CASE("the exporter drops what does not fit and shuts down in bounded time" *
          doctest::timeout(30)) {
  // A listening socket that never answers: the export hangs until aborted.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(listen(fd, 4) == 0);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  OtelConfig config;
  config.traces_url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/v1/traces";
  config.service_name = "keel";
  config.timeout = 10;
  SpanExporter exporter(config, "test", {.max_queue = 4, .batch_size = 2, .interval = 60});
  for (int i = 0; i < 20; ++i) {
    Span s;
    s.trace_id = std::string(32, '1');
    s.span_id = std::string(16, '2');
    exporter.Add(std::move(s));
  }
  auto start = std::chrono::steady_clock::now();
  exporter.Shutdown(0.2);
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(took < 2);
  ExporterCounts counts = exporter.counts();
  CHECK(counts.exported == 0);
  CHECK(counts.dropped == 20);  // the queue's overflow, the hung batch and what was left
  close(fd);
}

}  // namespace keel::telemetry
