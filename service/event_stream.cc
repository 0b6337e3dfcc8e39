#include "service/event_stream.h"

#include <httplib.h>

#include <chrono>
#include <charconv>
#include <vector>

#include "service/json_response.h"
#include "views/event_json.h"
#include "views/json_out.h"

namespace keel::service {
namespace {

using std::chrono::steady_clock;

steady_clock::duration Seconds(double seconds) {
  return std::chrono::duration_cast<steady_clock::duration>(std::chrono::duration<double>(seconds));
}

// A cursor from a Last-Event-ID header or ?after=: a whole number >= 0.
bool ParseCursor(const std::string& text, int64_t* cursor) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *cursor);
  return ec == std::errc() && ptr == end && *cursor >= 0;
}

// How a bad value is named in an error: never all of it (it could be huge).
std::string Quoted(const std::string& text) {
  constexpr size_t kMax = 40;
  return "'" + (text.size() > kMax ? text.substr(0, kMax) + "..." : text) + "'";
}

}  // namespace

EventStream::EventStream(Store* store, EventStreamOptions options)
    : store_(store), options_(options) {}

EventStream::~EventStream() { Stop(); }

void EventStream::Register(httplib::Server& server) {
  server.Get("/api/v1/stream", [this](const httplib::Request& request,
                                      httplib::Response& response) { Handle(request, response); });
}

void EventStream::Start() {
  auto last = store_->LastEventCursor();
  MutexLock lock(&mu_);
  if (started_ || stopping_) return;
  // Without a cursor the poller starts at the end: it streams what is new.
  // On an error it starts at 0, and clients catch up from what exists.
  published_ = last.ok() ? *last : 0;
  started_ = true;
  poller_ = std::thread([this] { PollLoop(); });
}

void EventStream::Stop() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    poll_cv_.SignalAll();
    for (const auto& client : connected_) client->cv.SignalAll();
  }
  if (poller_.joinable()) poller_.join();
  // Each stream's thread sees stopping_ at once and ends its response,
  // unless it is blocked writing to a stalled client (until the server's
  // write timeout). Wait for them, so none touches this object after it is
  // destroyed.
  MutexLock lock(&mu_);
  const auto deadline = steady_clock::now() + std::chrono::seconds(10);
  while (!connected_.empty() && steady_clock::now() < deadline) {
    poll_cv_.WaitFor(&mu_, std::chrono::milliseconds(10));
  }
}

size_t EventStream::ClientCount() {
  MutexLock lock(&mu_);
  return connected_.size();
}

void EventStream::Handle(const httplib::Request& request, httplib::Response& response) {
  auto client = std::make_shared<Client>();
  std::string after = request.get_header_value("Last-Event-ID");
  if (after.empty()) after = request.get_param_value("after");
  if (!after.empty() && !ParseCursor(after, &client->last)) {
    JsonError(response, 400,
              "Last-Event-ID (or ?after=) must be an event cursor, a whole number; got " +
                  Quoted(after));
    return;
  }
  if (request.has_param("run")) {
    std::string id = request.get_param_value("run");
    auto run = id.empty() ? Result<RunRecord>(Status::Error(ErrorKind::kPermanent, "empty run id"))
                          : store_->GetRun(id);
    if (!run.ok()) {
      JsonError(response, 404, "run=" + Quoted(id) + ": no such run");
      return;
    }
    client->run_id = run->id;
  }
  auto last = store_->LastEventCursor();
  if (!last.ok()) {
    JsonError(response, 503, "reading the database: " + last.status().message());
    return;
  }
  {
    MutexLock lock(&mu_);
    if (!started_ || stopping_) {
      JsonError(response, 503, "the event stream is not running");
      return;
    }
    if (after.empty()) {
      client->last = published_;  // only what is new
    } else if (client->last > *last) {
      // A cursor this database never gave (it was replaced, or the client
      // made it up): continue from its end rather than wait for it.
      client->last = *last;
    }
    connected_.insert(client);
  }
  response.set_header("Cache-Control", "no-cache");
  response.set_header("X-Accel-Buffering", "no");  // proxies: do not buffer the stream
  response.set_chunked_content_provider(
      "text/event-stream",
      [this, client, greeted = false](size_t, httplib::DataSink& sink) mutable {
        if (!greeted) {
          greeted = true;
          // Browsers reconnect after a second; the comment flushes the headers.
          return Send(sink, "retry: 1000\n: connected\n\n");
        }
        return Pump(client, sink);
      },
      [this, client](bool) { Detach(client); });
}

bool EventStream::Pump(const std::shared_ptr<Client>& client, httplib::DataSink& sink) {
  std::vector<FramePtr> frames;
  {
    MutexLock lock(&mu_);
    if (!client->live && !stopping_) {
      lock.Unlock();
      return CatchUp(client, sink);
    }
    const auto deadline = steady_clock::now() + Seconds(options_.heartbeat_s);
    while (!stopping_ && !client->dropped && client->queue.empty()) {
      if (!client->cv.WaitUntil(&mu_, deadline)) break;
    }
    if (stopping_) {
      lock.Unlock();
      sink.done();
      return true;
    }
    // Too far behind: the connection ends and the client resumes from the
    // last cursor it got.
    if (client->dropped) return false;
    frames.assign(client->queue.begin(), client->queue.end());
    client->queue.clear();
  }
  if (frames.empty()) return Send(sink, ": keepalive\n\n");
  std::string text;
  for (const FramePtr& frame : frames) {
    // The poller may hand over what catch-up already sent.
    if (frame->cursor <= client->last) continue;
    text += frame->text;
    client->last = frame->cursor;
  }
  return text.empty() || Send(sink, text);
}

bool EventStream::CatchUp(const std::shared_ptr<Client>& client, httplib::DataSink& sink) {
  int64_t target;
  {
    MutexLock lock(&mu_);
    if (client->last >= published_) {
      // Level with the poller: from now on it feeds this client. Every
      // event it hands over from here has a cursor above published_.
      client->live = true;
      clients_.insert(client);
      return true;
    }
    target = published_;
  }
  auto events = store_->ReadEventsAfter(client->last, client->run_id, options_.batch);
  if (!events.ok()) return false;
  std::string text;
  for (const Store::CursorEvent& event : *events) {
    text += Render(event)->text;
    client->last = event.cursor;
  }
  // A short read saw every event of the snapshot, which holds everything
  // up to `target` (the poller read it before).
  if (events->size() < static_cast<size_t>(options_.batch) && client->last < target) {
    client->last = target;
  }
  return text.empty() || Send(sink, text);
}

void EventStream::Detach(const std::shared_ptr<Client>& client) {
  MutexLock lock(&mu_);
  clients_.erase(client);
  connected_.erase(client);
  client->queue.clear();
  if (stopping_) poll_cv_.SignalAll();  // Stop waits for the last stream
}

void EventStream::PollLoop() {
  MutexLock lock(&mu_);
  while (!stopping_) {
    const int64_t from = published_;
    lock.Unlock();
    auto events = store_->ReadEventsAfter(from, "", options_.batch);
    std::vector<FramePtr> frames;
    if (events.ok()) {
      frames.reserve(events->size());
      for (const Store::CursorEvent& event : *events) frames.push_back(Render(event));
    }
    lock.Lock();
    if (!frames.empty()) {
      for (const auto& client : clients_) {
        if (client->dropped) continue;
        bool added = false;
        for (const FramePtr& frame : frames) {
          if (!client->run_id.empty() && client->run_id != frame->run_id) continue;
          client->queue.push_back(frame);
          added = true;
        }
        if (client->queue.size() > options_.max_queued) {
          client->dropped = true;
          client->queue.clear();
        }
        if (added) client->cv.Signal();
      }
      published_ = frames.back()->cursor;
      // A full batch: there may be more already.
      if (frames.size() == static_cast<size_t>(options_.batch)) continue;
    }
    poll_cv_.WaitFor(&mu_, Seconds(options_.poll_s));
  }
}

EventStream::FramePtr EventStream::Render(const Store::CursorEvent& event) {
  JsonOut out;
  WriteEventJson(&out, event.event, {.with_run = true, .bodies = false});
  const std::string json = out.Text();
  auto frame = std::make_shared<Frame>();
  frame->cursor = event.cursor;
  frame->run_id = event.event.run_id;
  frame->text.reserve(json.size() + 32);
  frame->text += "id: " + std::to_string(event.cursor) + "\n";
  // Raw JSON data may hold line breaks (whitespace): each line is its own
  // `data:` field, which the client joins back with "\n".
  size_t start = 0;
  for (;;) {
    size_t end = json.find_first_of("\r\n", start);
    frame->text += "data: ";
    frame->text.append(json, start, end == std::string::npos ? std::string::npos : end - start);
    frame->text += "\n";
    if (end == std::string::npos) break;
    start = end + 1;
    if (json[end] == '\r' && start < json.size() && json[start] == '\n') ++start;
  }
  frame->text += "\n";
  return frame;
}

bool EventStream::Send(httplib::DataSink& sink, const std::string& text) {
  return sink.write(text.data(), text.size());
}

}  // namespace keel::service
