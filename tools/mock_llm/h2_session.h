#pragma once
// H2Session: one HTTP/2 connection of keel-mock-llm, served with nghttp2 on
// the TLS bufferevent evhttp accepted (see H2Server). Each stream is one
// request for the MockService; a chat stream's faults act on that stream
// only (RST_STREAM), never on the connection or its other streams.
//
// Frames are gathered and written once per loop iteration (a flush event),
// not per stream, so hundreds of answers due at once leave in a few TLS
// records. The session takes the bufferevent's callbacks over; evhttp, which
// owns the connection, only learns of its end and then frees it.
//
// Thread-safety: on the event loop thread only.

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "tools/mock_llm/mock_service.h"

struct bufferevent;
struct event;
struct nghttp2_session;

namespace keel::mock {

class H2Server;
struct H2Stream;

class H2Session {
 public:
  // `bev` is a TLS connection whose ALPN chose h2; `server` outlives it.
  H2Session(H2Server* server, bufferevent* bev);
  // Ends streams still waiting as client_closed (unless detached).
  ~H2Session();
  H2Session(const H2Session&) = delete;
  H2Session& operator=(const H2Session&) = delete;

  // Takes the bufferevent's callbacks over and sends SETTINGS. False (and
  // nothing changed) when nghttp2 cannot start.
  bool Start();
  // Sends GOAWAY: no new streams; those open go on, then the connection closes.
  void Stop();
  // True when nothing is left to write: no frame queued, no byte buffered.
  bool Flushed() const;
  // Forgets the connection without logging or writing anything more (the
  // server is going away); requests must have been dropped before.
  void Detach();

 private:
  friend class H2Exchange;
  friend struct H2Callbacks;  // nghttp2's and libevent's callbacks, in h2_session.cc

  H2Stream* Find(int32_t stream_id);
  // The request on `stream` is complete: answer it or hand it to the service.
  void Handle(H2Stream* stream);
  // Queues a response on `stream` (see Response::truncated).
  void Submit(H2Stream* stream, int status, const std::vector<Header>& headers,
              const std::string& body, bool truncated);
  // Queues RST_STREAM with `error_code` on `stream`.
  void Reset(H2Stream* stream, uint32_t error_code);
  // Writes what nghttp2 has to send within this loop iteration.
  void ScheduleFlush();
  void Flush();
  // The bufferevent wrote all it held: resumes flushing, closes when done.
  void Drained();
  // Closes the connection when the session is over and its bytes are out.
  void CloseIfDone();
  // Ends the requests still open as client_closed and frees nghttp2 and the
  // flush event; then, unless `forward` is 0, tells evhttp the connection
  // ended with `forward` (bufferevent event flags), so that evhttp frees it.
  void Close(short forward);

  H2Server* const server_;
  bufferevent* const bev_;
  nghttp2_session* session_ = nullptr;  // null once closed
  event* flush_ = nullptr;
  bool flushing_ = false;  // frames taken from nghttp2, not yet in bev_
  // evhttp's event callback, told when the connection ends.
  void (*evhttp_event_)(bufferevent*, short, void*) = nullptr;
  void* evhttp_arg_ = nullptr;
  std::string out_;  // frames of one flush, reused
  std::unordered_map<int32_t, std::unique_ptr<H2Stream>> streams_;
};

}  // namespace keel::mock
