#include "cli/provider_doctor.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>

#include "engine/clock.h"
#include "nodes/endpoint_probe.h"
#include "nodes/provider.h"

namespace keel::cli {
namespace {

double Since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The key from `env` without surrounding blanks, or why it cannot be used.
// Messages name the variable only.
bool ReadKey(const std::string& env, std::string* key, std::string* why) {
  const char* value = std::getenv(env.c_str());
  std::string text = value == nullptr ? "" : value;
  size_t begin = text.find_first_not_of(" \t\r\n");
  size_t end = text.find_last_not_of(" \t\r\n");
  text = begin == std::string::npos ? "" : text.substr(begin, end - begin + 1);
  if (value == nullptr) {
    *why = "environment variable " + env + " is not set";
    return false;
  }
  if (text.empty()) {
    *why = "environment variable " + env + " is empty";
    return false;
  }
  for (char c : text) {
    unsigned char byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7F) {
      *why = "environment variable " + env +
             " holds a key with a control character (such as a line break) inside it";
      return false;
    }
  }
  *key = std::move(text);
  return true;
}

// Why an HTTP answer with a non-2xx `status` failed, in an operator's words.
std::string StatusMeaning(int status, const ProviderConfig& config) {
  if (status == 401) {
    return config.api_key_env.empty()
               ? "HTTP 401: the server wants a key and the provider declares no api_key_env"
               : "HTTP 401: the key in " + config.api_key_env + " was refused (wrong or revoked)";
  }
  if (status == 403) return "HTTP 403: the key is not allowed to use this model or endpoint";
  if (status == 404) return "HTTP 404: no such endpoint or model (check base_url and model)";
  if (status == 429) return "HTTP 429: rate limited or out of quota";
  return "";
}

}  // namespace

ProviderCheck CheckProvider(const ProviderConfig& config, const std::string& file, double timeout,
                            HttpLoop* loop) {
  ProviderCheck check;
  check.provider = config.name;
  check.kind = config.kind;
  check.file = file;
  check.model = config.model;
  check.health_interval = config.health_interval;
  check.endpoint = EndpointOf(config.base_url);
  check.checked_at = SystemClock()->WallNow();
  const auto start = std::chrono::steady_clock::now();
  auto fail = [&](ProviderCheckStep step) {
    check.result = "failed";
    check.failed_step = step.name;
    check.error = step.detail;
    check.steps.push_back(std::move(step));
    check.seconds = Since(start);
    return check;
  };
  auto pass = [&](ProviderCheckStep step) {
    step.ok = true;
    check.steps.push_back(std::move(step));
  };

  const Provider* wire = ProviderFor(config.kind);
  if (wire == nullptr) {
    // A mock without a URL answers in process: nothing to reach.
    pass({"request", true, std::nullopt, "mock provider: answers in process, nothing to check"});
    check.result = "ok";
    check.seconds = Since(start);
    return check;
  }

  std::string key;
  if (config.api_key_env.empty()) {
    pass({"key", true, std::nullopt, "none needed (no api_key_env)"});
  } else {
    std::string why;
    if (!ReadKey(config.api_key_env, &key, &why)) return fail({"key", false, std::nullopt, why});
    pass({"key", true, std::nullopt, config.api_key_env + " is set"});
  }

  EndpointProbe probe = ProbeEndpoint(config.base_url, config.ca_file, timeout);
  if (probe.failed_step == "url") return fail({"connect", false, std::nullopt, probe.error});
  if (probe.failed_step == "dns") return fail({"dns", false, probe.dns_s, probe.error});
  pass({"dns", true, probe.dns_s, "resolved"});
  if (probe.failed_step == "connect") return fail({"connect", false, probe.connect_s, probe.error});
  pass({"connect", true, probe.connect_s, "connected to " + check.endpoint});
  if (probe.tls) {
    if (probe.failed_step == "tls") return fail({"tls", false, probe.tls_s, probe.error});
    pass({"tls", true, probe.tls_s, "certificate verified"});
  }

  ChatRequest chat;
  chat.messages_json = R"([{"role":"user","content":"Reply with the single word: ok"}])";
  chat.max_tokens = 1;
  HttpRequest request = wire->Build(config, chat, key);
  Clock* clock = loop->clock();
  request.deadline = clock->Now() + timeout;
  request.connect_timeout = timeout;
  request.http2 = config.http2;
  request.ca_file = config.ca_file;
  auto answer = std::make_shared<std::promise<HttpResponse>>();
  std::future<HttpResponse> answered = answer->get_future();
  const auto sent = std::chrono::steady_clock::now();
  loop->Send(std::move(request), [answer](HttpResponse response) {
    answer->set_value(std::move(response));
  });
  HttpResponse response = answered.get();
  const double took = Since(sent);
  if (!response.transport.ok()) {
    std::string why = Redact(response.transport.message(), key);
    if (response.transport.kind() == ErrorKind::kTimeout) {
      char limit[32];
      std::snprintf(limit, sizeof limit, "%g", timeout);
      why = "no answer within " + std::string(limit) + " s (" + why + ")";
    }
    return fail({"request", false, took, why});
  }
  if (response.status < 200 || response.status >= 300) {
    std::string meaning = StatusMeaning(response.status, config);
    auto parsed = wire->Parse(response, clock->WallNow());
    std::string server = parsed.ok() ? "" : Redact(parsed.status().message(), key);
    if (meaning.empty()) meaning = server;
    return fail({"request", false, took, meaning});
  }
  auto parsed = wire->Parse(response, clock->WallNow());
  if (!parsed.ok()) {
    return fail({"request", false, took,
                 "the answer is not a chat completion: " + Redact(parsed.status().message(), key)});
  }
  std::string model = parsed->model.empty() ? config.model : parsed->model;
  pass({"request", true, took,
        "chat completion answered" + (model.empty() ? "" : " by " + model)});
  check.result = "ok";
  check.seconds = Since(start);
  return check;
}

}  // namespace keel::cli
