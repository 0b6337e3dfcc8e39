#include "bench/agent_bench_baselines.h"

#include <curl/curl.h>
#include <oneapi/tbb/flow_graph.h>
#include <oneapi/tbb/task_arena.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "engine/mutex.h"

namespace keel::bench {
namespace {

using Clock = std::chrono::steady_clock;
using CallNode = tbb::flow::async_node<tbb::flow::continue_msg, long>;
using Gateway = CallNode::gateway_type;
// Starts call `i`; it later puts its HTTP status (0: failed) through the
// gateway and releases the gateway's wait.
using Submit = std::function<void(int i, Gateway& gateway)>;

double Since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Runs `n` async_nodes behind one broadcast_node on a `workers`-thread arena.
// Seconds from building the graph to the last answer, or -1 when an answer
// was not 200.
double FanOut(int n, int workers, const Submit& submit) {
  tbb::task_arena arena(workers);
  double seconds = 0;
  std::atomic<int> failed{0};
  arena.execute([&] {
    const auto start = Clock::now();
    tbb::flow::graph g;
    tbb::flow::broadcast_node<tbb::flow::continue_msg> go(g);
    tbb::flow::function_node<long> sink(g, tbb::flow::serial, [&](long status) {
      if (status != 200) ++failed;
    });
    std::vector<std::unique_ptr<CallNode>> calls;
    for (int i = 0; i < n; ++i) {
      calls.push_back(std::make_unique<CallNode>(
          g, tbb::flow::unlimited, [&submit, i](const tbb::flow::continue_msg&, Gateway& gateway) {
            gateway.reserve_wait();
            submit(i, gateway);
          }));
      tbb::flow::make_edge(go, *calls.back());
      tbb::flow::make_edge(*calls.back(), sink);
    }
    go.try_put(tbb::flow::continue_msg());
    g.wait_for_all();
    seconds = Since(start);
  });
  return failed == 0 ? seconds : -1;
}

void Answer(Gateway& gateway, long status) {
  gateway.try_put(status);
  gateway.release_wait();
}

// One thread that runs each callback at its time.
class TimerThread {
 public:
  TimerThread() : thread_([this] { Loop(); }) {}
  ~TimerThread() {
    {
      MutexLock lock(&mu_);
      stop_ = true;
    }
    cv_.Signal();
    thread_.join();
  }

  void At(Clock::time_point when, std::function<void()> fire) {
    {
      MutexLock lock(&mu_);
      due_.emplace(when, std::move(fire));
    }
    cv_.Signal();
  }

 private:
  void Loop() {
    MutexLock lock(&mu_);
    while (!stop_) {
      if (due_.empty()) {
        cv_.Wait(&mu_);
      } else if (due_.begin()->first > Clock::now()) {
        cv_.WaitUntil(&mu_, due_.begin()->first);
      } else {
        auto fire = std::move(due_.begin()->second);
        due_.erase(due_.begin());
        lock.Unlock();
        fire();
        lock.Lock();
      }
    }
  }

  Mutex mu_;
  CondVar cv_;
  std::multimap<Clock::time_point, std::function<void()>> due_ GUARDED_BY(mu_);
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

size_t Collect(char* data, size_t size, size_t count, void* into) {
  static_cast<std::string*>(into)->append(data, size * count);
  return size * count;
}

// Sets up `easy` to POST `body` (kept alive by the caller) to `url`, with
// the options keel's HTTP loop uses.
void PreparePost(CURL* easy, const std::string& url, const std::string& body, curl_slist* headers,
                 std::string* reply) {
  curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, reply);
}

long StatusOf(CURL* easy) {
  long status = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  return status;
}

// One thread driving a libcurl multi handle; `done` runs on that thread with
// the HTTP status, 0 when the transfer failed.
class CurlMulti {
 public:
  // With a `ca_file`, requests go over HTTP/2 (TLS, trusting that file),
  // all on one connection.
  explicit CurlMulti(std::string ca_file)
      : multi_(curl_multi_init()), ca_file_(std::move(ca_file)) {
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, 1024L);
    curl_multi_setopt(multi_, CURLMOPT_MAX_CONCURRENT_STREAMS, 1000L);
    headers_ = curl_slist_append(nullptr, "Content-Type: application/json");
    thread_ = std::thread([this] { Loop(); });
  }
  ~CurlMulti() {
    stop_ = true;
    curl_multi_wakeup(multi_);
    thread_.join();
    curl_multi_cleanup(multi_);
    curl_slist_free_all(headers_);
  }

  void Post(const std::string& url, std::string body, std::function<void(long)> done) {
    auto t = std::make_unique<Transfer>();
    t->easy = curl_easy_init();
    t->body = std::move(body);
    t->done = std::move(done);
    PreparePost(t->easy, url, t->body, headers_, &t->reply);
    if (!ca_file_.empty()) {
      curl_easy_setopt(t->easy, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
      curl_easy_setopt(t->easy, CURLOPT_PIPEWAIT, 1L);
      curl_easy_setopt(t->easy, CURLOPT_CAINFO, ca_file_.c_str());
    }
    curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t.get());
    {
      MutexLock lock(&mu_);
      queued_.push_back(std::move(t));
    }
    curl_multi_wakeup(multi_);
  }

 private:
  struct Transfer {
    CURL* easy = nullptr;
    std::string body;
    std::string reply;
    std::function<void(long)> done;
  };

  void Loop() {
    int running = 0;
    while (!stop_ || running > 0) {
      AddQueued();
      curl_multi_perform(multi_, &running);
      Finish();
      curl_multi_poll(multi_, nullptr, 0, 1000, nullptr);
    }
  }

  void AddQueued() {
    MutexLock lock(&mu_);
    for (auto& t : queued_) {
      curl_multi_add_handle(multi_, t->easy);
      t.release();
    }
    queued_.clear();
  }

  void Finish() {
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      Transfer* raw = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &raw);
      std::unique_ptr<Transfer> t(raw);
      const long status = msg->data.result == CURLE_OK ? StatusOf(t->easy) : 0;
      curl_multi_remove_handle(multi_, t->easy);
      curl_easy_cleanup(t->easy);
      t->done(status);
    }
  }

  CURLM* multi_;
  const std::string ca_file_;
  curl_slist* headers_ = nullptr;
  Mutex mu_;
  std::vector<std::unique_ptr<Transfer>> queued_ GUARDED_BY(mu_);
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

std::string ChatBody(int i) {
  return R"({"model":"mock","messages":[{"role":"user","content":"question )" +
         std::to_string(i + 1) + R"("}]})";
}

double AsyncTimerRun(int n, double latency_s, int workers) {
  TimerThread timer;
  const auto latency =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(latency_s));
  return FanOut(n, workers, [&](int, Gateway& gateway) {
    timer.At(Clock::now() + latency, [&gateway] { Answer(gateway, 200); });
  });
}

double AsyncCurlRun(int n, const std::string& url, int workers, const std::string& ca_file) {
  CurlMulti multi(ca_file);
  return FanOut(n, workers, [&](int i, Gateway& gateway) {
    multi.Post(url, ChatBody(i), [&gateway](long status) { Answer(gateway, status); });
  });
}

double SequentialRun(int calls, const std::string& url) {
  CURL* easy = curl_easy_init();
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  const auto start = Clock::now();
  bool ok = true;
  for (int i = 0; i < calls && ok; ++i) {
    const std::string body = ChatBody(i);
    std::string reply;
    PreparePost(easy, url, body, headers, &reply);
    ok = curl_easy_perform(easy) == CURLE_OK && StatusOf(easy) == 200;
  }
  const double seconds = Since(start);
  curl_easy_cleanup(easy);
  curl_slist_free_all(headers);
  return ok ? seconds : -1;
}

}  // namespace keel::bench
