#include "service/service.h"

#include <fcntl.h>
#include <httplib.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <thread>

#include "engine/clock.h"
#include "service/alert_notifier.h"
#include "service/dashboard.h"
#include "service/event_stream.h"
#include "service/health.h"
#include "service/listen_address.h"
#include "service/metrics.h"
#include "service/provider_health.h"
#include "service/run_start_api.h"
#include "service/nodes_api.h"
#include "service/runs_api.h"
#include "service/scheduler.h"

namespace keel::service {
namespace {

// Every component of the service, in the order they register and start
// (they stop in reverse). One line each.
std::vector<std::unique_ptr<Component>> MakeComponents(const ServiceOptions& options,
                                                       Store& store) {
  std::vector<std::unique_ptr<Component>> components;
  components.push_back(std::make_unique<Health>(options, store));
  components.push_back(std::make_unique<RunsApi>(options, store));
  components.push_back(std::make_unique<NodesApi>(options, store));
  components.push_back(std::make_unique<RunStartApi>(options, &store));
  components.push_back(std::make_unique<Scheduler>(options, store));
  if (auto alerts = MakeAlertNotifier(options, store)) components.push_back(std::move(alerts));
  components.push_back(MakeProviderHealth(options));
  components.push_back(std::make_unique<EventStream>(&store));
  components.push_back(std::make_unique<Metrics>(&store, SystemClock()));
  components.push_back(std::make_unique<Dashboard>(options.web_dir));
  return components;
}

// cpp-httplib listens with a backlog of 5, so a burst of connections (a
// dashboard's page load, a load generator's 100) overflows it and the
// extra clients wait a second for their SYN to be sent again. Listening
// again on the bound socket raises the backlog (Linux updates it in place).
class Server final : public httplib::Server {
 public:
  void RaiseBacklog(int backlog) {
    socket_t sock = svr_sock_;
    if (sock != INVALID_SOCKET) ::listen(sock, backlog);
  }
};

// SIGTERM and SIGINT are turned into a byte on this pipe (the self-pipe
// trick), so that the main thread can wait for them with poll and no signal
// mask is inherited by the child processes components start.
int g_signal_pipe[2] = {-1, -1};

void OnStopSignal(int) {
  int saved = errno;
  char byte = 1;
  [[maybe_unused]] ssize_t n = write(g_signal_pipe[1], &byte, 1);
  errno = saved;
}

bool InstallStopSignals() {
  if (g_signal_pipe[0] < 0 && pipe2(g_signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return false;
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  return sigaction(SIGTERM, &action, nullptr) == 0 && sigaction(SIGINT, &action, nullptr) == 0;
}

// Waits for a stop signal, or for `server_done` to become true.
void WaitForStop(const std::atomic<bool>& server_done) {
  while (!server_done.load()) {
    pollfd fd{g_signal_pipe[0], POLLIN, 0};
    int n = poll(&fd, 1, 200);
    if (n > 0) {
      char buffer[16];
      [[maybe_unused]] ssize_t got = read(g_signal_pipe[0], buffer, sizeof buffer);
      return;
    }
  }
}

}  // namespace

Service::Service(ServiceOptions options, std::unique_ptr<Store> store, std::string token)
    : options_(std::move(options)),
      store_(std::move(store)),
      server_(std::make_unique<Server>()),
      guard_(std::move(token)),
      components_(MakeComponents(options_, *store_)) {}

Service::~Service() = default;

int Service::Run() {
  auto address = ParseListenAddress(options_.listen);
  if (!address.ok()) {
    std::fprintf(stderr, "keel serve: %s\n", address.status().message().c_str());
    return 2;
  }
  if (!InstallStopSignals()) {
    std::fprintf(stderr, "keel serve: cannot install the SIGTERM/SIGINT handlers\n");
    return 2;
  }
  for (auto& component : components_) component->Register(*server_);
  guard_.Install(*server_);

  int port = address->port;
  if (port == 0) {
    port = server_->bind_to_any_port(address->host);
  } else if (!server_->bind_to_port(address->host, port)) {
    port = -1;
  }
  if (port <= 0) {
    std::fprintf(stderr, "keel serve: --listen %s: cannot bind that address (in use, or not "
                 "an address of this machine)\n",
                 options_.listen.c_str());
    return 2;
  }

  static_cast<Server*>(server_.get())->RaiseBacklog(SOMAXCONN);

  std::atomic<bool> server_done{false};
  std::thread listener([&] {
    server_->listen_after_bind();
    server_done = true;
  });
  // stop() only takes effect once the server runs.
  while (!server_->is_running() && !server_done.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (auto& component : components_) component->Start();
  std::string url = HttpUrl(address->host, port);
  url.pop_back();  // no trailing slash
  std::fprintf(stderr, "keel serve: listening on %s\n", url.c_str());
  std::fflush(stderr);

  WaitForStop(server_done);
  // The server ends on its own only when its listening socket failed.
  const bool failed = server_done.load();
  std::fprintf(stderr, failed ? "keel serve: the listening socket failed; stopping\n"
                              : "keel serve: stopping\n");
  server_->stop();
  for (auto it = components_.rbegin(); it != components_.rend(); ++it) (*it)->Stop();
  listener.join();
  Status flushed = store_->Flush();
  if (!flushed.ok()) {
    std::fprintf(stderr, "keel serve: %s\n", flushed.message().c_str());
  }
  std::fprintf(stderr, "keel serve: stopped\n");
  return failed ? 1 : 0;
}

}  // namespace keel::service
