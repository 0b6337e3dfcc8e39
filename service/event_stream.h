#pragma once
// EventStream: GET /api/v1/stream (and ?run=ID), the live stream of every new
// event of every process writing the database, as Server-Sent Events. Each
// event is one message: `id: CURSOR` (the global event cursor, see
// Store::ReadEventsAfter) and `data: JSON` (views/event_json.h's shape with
// the run id). A client resumes with the Last-Event-ID header (or
// ?after=CURSOR) and gets the events after that cursor: none missed, none
// repeated. Comments (`: keepalive`) keep idle connections open.
//
// One poller thread reads new events from the store and renders each once;
// it hands them to every connected client's bounded queue without waiting
// on any client's socket. Each stream is written by its own HTTP worker
// thread; a client that falls more than `max_queued` events behind is
// disconnected (it resumes from its last cursor), so a stalled client holds
// nobody back and costs bounded memory. A client whose cursor is older than
// the poller's catches up from the store on its own thread first.
//
// Thread-safety: Register, Start and Stop as service/component.h says;
// handlers run on any HTTP worker thread. One mutex guards the client list,
// every client queue and the poller's position.

#include <cstdint>
#include <deque>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "engine/mutex.h"
#include "engine/store.h"
#include "service/component.h"

namespace httplib {
class DataSink;
struct Request;
struct Response;
}  // namespace httplib

namespace keel::service {

struct EventStreamOptions {
  double heartbeat_s = 15;  // a `: keepalive` comment after this long without a write
  double poll_s = 0.005;    // how often the poller looks for new events
  size_t max_queued = 10000;  // events queued for one client before it is disconnected
  int batch = 1000;           // events read from the store at a time
};

class EventStream final : public Component {
 public:
  // `store` must outlive this component.
  explicit EventStream(Store* store, EventStreamOptions options = {});
  ~EventStream() override;

  void Register(httplib::Server& server) override;
  // Starts the poller at the store's newest cursor.
  void Start() override;
  // Stops the poller and ends every open stream; joins the poller.
  void Stop() override;

  // Connected streams (for tests and the service's own accounting).
  size_t ClientCount();

 private:
  // One event rendered as an SSE message, shared by every client's queue.
  struct Frame {
    int64_t cursor = 0;
    std::string run_id;
    std::string text;
  };
  using FramePtr = std::shared_ptr<const Frame>;
  struct Client {
    std::string run_id;  // "" for every run
    // The highest cursor this client was sent or is known to have no event
    // up to. Read and written only by the client's own HTTP thread.
    int64_t last = 0;
    bool live = false;  // in clients_, fed by the poller; guarded by mu_
    bool dropped = false;  // fell too far behind; guarded by mu_
    std::deque<FramePtr> queue;  // guarded by mu_
    CondVar cv;  // waited on with mu_
  };

  void Handle(const httplib::Request& request, httplib::Response& response);
  // One call of the stream's content provider: writes what is due (catch-up
  // events, queued events or a heartbeat), waiting up to the heartbeat
  // interval for them. False ends the connection.
  bool Pump(const std::shared_ptr<Client>& client, httplib::DataSink& sink);
  // Catch-up: while the client is behind the poller, reads its events from
  // the store; once level, adds it to clients_. False on a store error.
  bool CatchUp(const std::shared_ptr<Client>& client, httplib::DataSink& sink);
  void Detach(const std::shared_ptr<Client>& client);
  void PollLoop();
  static FramePtr Render(const Store::CursorEvent& event);
  static bool Send(httplib::DataSink& sink, const std::string& text);

  Store* const store_;
  const EventStreamOptions options_;
  Mutex mu_;
  CondVar poll_cv_;  // the poller sleeps here between looks
  bool started_ GUARDED_BY(mu_) = false;
  bool stopping_ GUARDED_BY(mu_) = false;
  // The cursor up to which the poller has handed events to clients_.
  int64_t published_ GUARDED_BY(mu_) = 0;
  std::set<std::shared_ptr<Client>> clients_ GUARDED_BY(mu_);
  std::set<std::shared_ptr<Client>> connected_ GUARDED_BY(mu_);  // live or catching up
  std::thread poller_;
};

}  // namespace keel::service
