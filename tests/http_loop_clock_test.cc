// HttpLoop::clock(): timers that run on the loop's I/O thread, in due order,
// beside the transfers.

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/fake_clock.h"
#include "nodes/http_loop.h"

namespace keel {
namespace {

using std::chrono::seconds;

// A future's value, or `fallback` when it is not ready within 10 s.
template <typename T>
T Within10s(std::future<T>& future, T fallback) {
  return future.wait_for(seconds(10)) == std::future_status::ready ? future.get() : fallback;
}

TEST_CASE("the loop clock tells the time of the clock it was given") {
  FakeClock fake(50, 1.7e9);
  HttpLoop loop(&fake);
  CHECK(loop.clock()->Now() == 50);
  CHECK(loop.clock()->WallNow() == 1.7e9);
}

TEST_CASE("loop clock timers run on the I/O thread, in due order") {
  HttpLoop loop(SystemClock());
  std::mutex mu;
  std::vector<int> order;
  std::vector<std::thread::id> threads;
  std::promise<void> last;
  auto note = [&](int i) {
    std::lock_guard<std::mutex> lock(mu);
    order.push_back(i);
    threads.push_back(std::this_thread::get_id());
  };
  // Hold the loop in a first timer while the others are added, so that they
  // are added within microseconds of each other, the thread already running.
  std::promise<void> added;
  std::shared_future<void> all_added = added.get_future().share();
  loop.clock()->After(0, [all_added] { all_added.wait(); });
  loop.clock()->After(0.03, [&] {
    note(3);
    last.set_value();
  });
  loop.clock()->After(0.01, [&] { note(1); });
  loop.clock()->After(0.02, [&] { note(2); });
  loop.clock()->After(0, [&] { note(0); });
  added.set_value();
  auto done = last.get_future();
  REQUIRE(done.wait_for(seconds(10)) == std::future_status::ready);

  // A transfer's `done` runs on the same thread as the timers.
  std::promise<std::thread::id> io_thread;
  HttpRequest request;
  request.url = "http://127.0.0.1:1/";  // nothing listens: a quick failure
  loop.Send(request, [&](HttpResponse) { io_thread.set_value(std::this_thread::get_id()); });
  auto io = io_thread.get_future();
  std::thread::id none;
  std::thread::id done_on = Within10s(io, none);

  std::lock_guard<std::mutex> lock(mu);
  CHECK(order == std::vector<int>{0, 1, 2, 3});
  for (std::thread::id id : threads) {
    CHECK(id != std::this_thread::get_id());
    CHECK(id == done_on);
  }
}

TEST_CASE("a timer added while the loop sleeps towards a later one wakes it") {
  HttpLoop loop(SystemClock());
  std::promise<void> late_ran;
  loop.clock()->After(600, [&] { late_ran.set_value(); });
  // Once this timer has run, the loop's next step is to sleep towards 600 s.
  std::promise<void> idle;
  loop.clock()->After(0, [&] { idle.set_value(); });
  REQUIRE(idle.get_future().wait_for(seconds(10)) == std::future_status::ready);
  std::promise<bool> soon;
  loop.clock()->After(0.01, [&] { soon.set_value(true); });
  auto ran = soon.get_future();
  CHECK(Within10s(ran, false));
}

TEST_CASE("a cancelled loop clock timer does not run") {
  HttpLoop loop(SystemClock());
  std::atomic<bool> cancelled_ran{false};
  TimerId id = loop.clock()->After(0.02, [&] { cancelled_ran = true; });
  CHECK(loop.clock()->Cancel(id));
  CHECK_FALSE(loop.clock()->Cancel(id));
  std::promise<bool> after;
  loop.clock()->After(0.05, [&] { after.set_value(true); });
  auto later = after.get_future();
  REQUIRE(Within10s(later, false));
  CHECK_FALSE(cancelled_ran);
}

TEST_CASE("a timer may add and cancel timers") {
  HttpLoop loop(SystemClock());
  std::promise<int> chain;
  Clock* clock = loop.clock();
  clock->After(0, [&] {
    TimerId doomed = clock->After(0, [&] { chain.set_value(-1); });
    clock->Cancel(doomed);
    clock->After(0.001, [&] { chain.set_value(2); });
  });
  auto value = chain.get_future();
  CHECK(Within10s(value, 0) == 2);
}

TEST_CASE("timers still pending when the loop goes are dropped, not run") {
  auto alive = std::make_shared<int>(1);
  std::weak_ptr<int> watch = alive;
  std::atomic<bool> ran{false};
  {
    HttpLoop loop(SystemClock());
    loop.clock()->After(600, [&ran, held = std::move(alive)] { ran = true; });
  }
  CHECK_FALSE(ran);
  CHECK(watch.expired());  // the timer's function was destroyed with the loop
}

TEST_CASE("a timer holding the last reference to the loop shuts it down on its own thread") {
  // A listening socket that never accepts: a request to it waits forever.
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  REQUIRE(bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  REQUIRE(listen(listener, 16) == 0);
  REQUIRE(getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) == 0);

  auto loop = std::make_shared<HttpLoop>(SystemClock());
  std::promise<HttpResponse> waiting;
  HttpRequest request;
  request.url = "http://127.0.0.1:" + std::to_string(ntohs(address.sin_port)) + "/";
  loop->Send(request, [&](HttpResponse response) { waiting.set_value(std::move(response)); });
  std::promise<void> ran;
  loop->clock()->After(0.02, [&ran, held = loop] { ran.set_value(); });
  loop.reset();  // the timer's copy is the last one

  auto fired = ran.get_future();
  REQUIRE(fired.wait_for(seconds(10)) == std::future_status::ready);
  // Once the timer is gone, so is the loop: the waiting request ends cancelled.
  auto ended = waiting.get_future();
  REQUIRE(ended.wait_for(seconds(10)) == std::future_status::ready);
  CHECK(ended.get().transport.kind() == ErrorKind::kCancelled);
  close(listener);
}

}  // namespace
}  // namespace keel
