#pragma once
// AlertNotifier: the alerts of `keel serve --notify URL` (docs/reference.md,
// "Alerts"). A component with one background thread that, every scan
// interval, (1) has the store copy what happened since its cursor (runs
// that finished failed or degraded, breakers that opened) into the outbox
// table, in one transaction with the cursor's advance, and (2) claims the
// due outbox rows under a lease, posts each as JSON to the webhook and
// records it delivered, or failed and due again after an exponential
// backoff with jitter. Every non-2xx answer, timeout and transport error is
// retried: a 4xx is usually a receiver misconfigured for a while, and
// dropping the alert would break at-least-once delivery.
//
// Thread-safety: Scan and SendDue are called by the component's thread
// once started, or by one test thread instead; Start and Stop from the
// service's main thread. Times come from the injected clock's WallNow, the
// time every process writing the database shares.

#include <memory>
#include <random>
#include <string>
#include <thread>

#include "engine/clock.h"
#include "engine/mutex.h"
#include "engine/status.h"
#include "engine/store.h"
#include "service/component.h"

namespace httplib {
class Client;
}

namespace keel::service {

struct AlertOptions {
  std::string url;              // the webhook: http:// or https://
  double scan_interval_s = 1;   // how often the thread scans and sends
  double overlap_s = 120;       // each scan looks this far behind its cursor
  double lease_s = 60;          // a claimed row is another sender's after this
  double timeout_s = 10;        // connect, and then each read or write, of one post
  double backoff_base_s = 1;    // the first retry's delay, doubled per attempt
  double backoff_max_s = 300;   // the longest delay
  int max_per_round = 100;      // posts per SendDue at most
};

// Splits `url` into scheme://host[:port] and the path (default "/").
// kPermanent naming --notify when it is not an http or https URL with a host.
Status ParseWebhookUrl(const std::string& url, std::string* base, std::string* path);

struct ServiceOptions;

// The notifier `keel serve --notify URL` runs (default options, the system
// clock), or null without --notify.
std::unique_ptr<Component> MakeAlertNotifier(const ServiceOptions& options, Store& store);

class AlertNotifier : public Component {
 public:
  // `store` and `clock` must outlive the notifier. `options.url` must parse
  // (ParseWebhookUrl).
  AlertNotifier(Store* store, Clock* clock, AlertOptions options);
  ~AlertNotifier() override;

  void Start() override;
  void Stop() override;

  // One scan: the outbox rows it added, or the store's error.
  Result<int64_t> Scan();
  // Claims the due rows one at a time (so a lease covers one post only)
  // and posts each once, up to max_per_round; returns how many were
  // delivered, or the store's error.
  Result<int> SendDue();

  // The delay before retry number `attempts` (1, 2, ...): base * 2^(n-1),
  // capped at the maximum, times a random factor in [0.5, 1].
  double Backoff(int attempts);

  // Who holds this notifier's leases: pid@host and a random tag.
  const std::string& owner() const { return owner_; }

 private:
  // Posts `body`; an empty string when the receiver answered 2xx, else why not.
  std::string Post(const std::string& body, const std::string& dedupe_id);
  void Loop();

  Store* const store_;
  Clock* const clock_;
  const AlertOptions options_;
  std::string base_;
  std::string path_;
  std::string owner_;
  std::mt19937_64 random_;  // used by the sending thread only

  Mutex mu_;
  CondVar wake_;
  bool stop_ GUARDED_BY(mu_) = false;
  // The post in flight, which Stop() interrupts.
  httplib::Client* posting_ GUARDED_BY(mu_) = nullptr;
  std::thread thread_;
};

}  // namespace keel::service
