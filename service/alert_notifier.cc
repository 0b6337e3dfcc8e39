#include "service/alert_notifier.h"

#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "engine/process_owner.h"
#include "service/alert_payload.h"
#include "service/service_options.h"

namespace keel::service {

Status ParseWebhookUrl(const std::string& url, std::string* base, std::string* path) {
  auto bad = [&](const std::string& why) {
    return Status::Error(ErrorKind::kPermanent, "--notify '" + url + "': " + why);
  };
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return bad("expected an http:// or https:// URL");
  std::string scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") {
    return bad("the scheme must be http or https, not '" + scheme + "'");
  }
  size_t host_start = scheme_end + 3;
  size_t path_start = url.find('/', host_start);
  std::string authority = url.substr(host_start, path_start == std::string::npos
                                                     ? std::string::npos
                                                     : path_start - host_start);
  if (authority.empty() || authority.front() == ':') return bad("the URL names no host");
  if (authority.find('@') != std::string::npos) {
    return bad("credentials in the URL are not supported; put a token in the path instead");
  }
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return bad("the URL has a space or control character");
  }
  *base = scheme + "://" + authority;
  *path = path_start == std::string::npos ? "/" : url.substr(path_start);
  return Status::Ok();
}

std::unique_ptr<Component> MakeAlertNotifier(const ServiceOptions& options, Store& store) {
  if (options.notify.empty()) return nullptr;
  AlertOptions alerts;
  alerts.url = options.notify;
  return std::make_unique<AlertNotifier>(&store, SystemClock(), alerts);
}

AlertNotifier::AlertNotifier(Store* store, Clock* clock, AlertOptions options)
    : store_(store), clock_(clock), options_(std::move(options)), random_(std::random_device{}()) {
  Status parsed = ParseWebhookUrl(options_.url, &base_, &path_);
  (void)parsed;  // checked by the caller; a bad URL fails every post
  Owner self = CurrentOwner();
  char tag[32];
  std::snprintf(tag, sizeof tag, "%016llx", static_cast<unsigned long long>(random_()));
  owner_ = std::to_string(self.pid) + "@" + self.host + "#" + tag;
}

AlertNotifier::~AlertNotifier() { Stop(); }

void AlertNotifier::Start() {
  if (base_.empty()) {
    std::fprintf(stderr, "keel serve: alerts: %s\n",
                 ParseWebhookUrl(options_.url, &base_, &path_).message().c_str());
  }
  {
    MutexLock lock(&mu_);
    stop_ = false;
  }
  if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
}

void AlertNotifier::Stop() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
    wake_.SignalAll();
    if (posting_ != nullptr) posting_->stop();
  }
  if (thread_.joinable()) thread_.join();
}

void AlertNotifier::Loop() {
  for (;;) {
    {
      MutexLock lock(&mu_);
      if (stop_) return;
    }
    auto scanned = Scan();
    if (!scanned.ok()) {
      std::fprintf(stderr, "keel serve: alerts: %s\n", scanned.status().message().c_str());
    }
    auto sent = SendDue();
    if (!sent.ok()) {
      std::fprintf(stderr, "keel serve: alerts: %s\n", sent.status().message().c_str());
    }
    MutexLock lock(&mu_);
    if (stop_) return;
    wake_.WaitFor(&mu_, std::chrono::duration<double>(options_.scan_interval_s));
  }
}

Result<int64_t> AlertNotifier::Scan() {
  return store_->ScanAlerts(clock_->WallNow(), options_.overlap_s);
}

double AlertNotifier::Backoff(int attempts) {
  double delay = options_.backoff_base_s * std::ldexp(1.0, std::min(attempts - 1, 40));
  delay = std::min(delay, options_.backoff_max_s);
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  return delay * jitter(random_);
}

std::string AlertNotifier::Post(const std::string& body, const std::string& dedupe_id) {
  if (base_.empty()) return "bad webhook URL";
  httplib::Client client(base_);
  auto timeout = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::duration<double>(options_.timeout_s));
  client.set_connection_timeout(timeout);
  client.set_read_timeout(timeout);
  client.set_write_timeout(timeout);
  client.set_follow_location(false);
  httplib::Headers headers = {{"X-Keel-Dedupe-Id", dedupe_id}};
  {
    MutexLock lock(&mu_);
    if (stop_) return "the server is stopping";
    posting_ = &client;
  }
  auto res = client.Post(path_, headers, body, "application/json");
  {
    MutexLock lock(&mu_);
    posting_ = nullptr;
  }
  if (!res) return "no answer: " + httplib::to_string(res.error());
  if (res->status >= 200 && res->status < 300) return "";
  return "HTTP " + std::to_string(res->status);
}

Result<int> AlertNotifier::SendDue() {
  // The lease outlasts one post (its connect, write and read timeouts).
  const double lease = std::max(options_.lease_s, 3 * options_.timeout_s + 1);
  int delivered = 0;
  for (int round = 0; round < options_.max_per_round; ++round) {
    auto claimed = store_->ClaimAlerts(owner_, clock_->WallNow(), lease, 1);
    if (!claimed.ok()) return claimed.status();
    if (claimed->empty()) break;
    const Store::AlertRow& row = claimed->front();
    std::string failure = Post(AlertPayloadJson(row), row.dedupe_key);
    const double now = clock_->WallNow();
    auto held = store_->CompleteAlert(row.id, owner_, failure.empty(), now,
                                      now + Backoff(row.attempts + 1), failure);
    if (!held.ok()) return held.status();
    if (failure.empty()) ++delivered;
    MutexLock lock(&mu_);
    if (stop_) break;
  }
  return delivered;
}

}  // namespace keel::service
