#include "tools/mock_llm/h2_session.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <string_view>

#include "tools/mock_llm/h2_server.h"

namespace keel::mock {
namespace {

// Clients may open this many streams at once.
constexpr uint32_t kMaxStreams = 4096;
// Flow-control windows, so that no request waits for WINDOW_UPDATE.
constexpr uint32_t kStreamWindow = 1u << 24;
constexpr int32_t kConnectionWindow = 1 << 30;
// A flush stops taking frames from nghttp2 while this much is unwritten.
constexpr size_t kMaxBuffered = 1u << 20;
// The most headers a response has (Response::headers, Content-Length).
constexpr size_t kMaxHeaders = 8;

std::string_view View(const uint8_t* data, size_t len) {
  return {reinterpret_cast<const char*>(data), len};
}

nghttp2_nv Nv(const char* name, size_t name_len, const std::string& value) {
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(name)),
          reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name_len, value.size(),
          NGHTTP2_NV_FLAG_NONE};
}

bool IsRequestHeaders(const nghttp2_frame* frame) {
  return frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST;
}

bool EndsStream(const nghttp2_frame* frame) {
  return (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
         (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
}

}  // namespace

class H2Exchange;

// One HTTP/2 stream: its request as it arrives, then its response as it
// leaves. Owned by its H2Session until the stream closes; loop thread only.
struct H2Stream {
  int32_t id = 0;
  Request request;
  bool handled = false;            // the request is complete and was handled
  H2Exchange* exchange = nullptr;  // its chat request, until that ends
  std::string response;            // the body to send
  size_t sent = 0;                 // bytes of `response` sent
  bool truncated = false;          // cut the response after `response`
  bool cut = false;                // the stream was reset after a truncated body
  bool end_sent = false;           // END_STREAM went out: the response is complete
};

// H2Exchange: the ChatExchange of a chat request on an HTTP/2 stream. Loop
// thread only.
class H2Exchange : public ChatExchange {
 public:
  H2Exchange(H2Session* session, H2Stream* stream) : session_(session), stream_(stream) {
    stream_->exchange = this;
  }
  ~H2Exchange() override {
    if (stream_ != nullptr) stream_->exchange = nullptr;
  }

  // The stream closed or the connection went: logs `outcome`, destroys *this.
  void Finish(const char* outcome) {
    stream_->exchange = nullptr;
    stream_ = nullptr;
    Ended(outcome);
  }

 protected:
  // An HTTP/2 connection is always read, so a client's RST_STREAM or its
  // closing the connection is seen without a watch.
  void WatchClient() override {}
  void Respond(const Response& r) override {
    session_->Submit(stream_, r.status, r.headers, r.body, r.truncated);
  }
  void Abort(bool reset) override {
    session_->Reset(stream_, reset ? NGHTTP2_INTERNAL_ERROR : NGHTTP2_CANCEL);
    stream_->exchange = nullptr;
    stream_ = nullptr;
  }

 private:
  H2Session* const session_;
  H2Stream* stream_;  // null once detached from the stream
};

// H2Callbacks: what nghttp2 and the bufferevent call back, each with the
// H2Session as its argument. Loop thread only.
struct H2Callbacks {
  static H2Session* Of(void* self) { return static_cast<H2Session*>(self); }

  // Made once; nghttp2 copies them into each session.
  struct Shared {
    nghttp2_session_callbacks* callbacks = nullptr;
    nghttp2_option* option = nullptr;
    Shared() {
      nghttp2_session_callbacks_new(&callbacks);
      nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, &OnBeginHeaders);
      nghttp2_session_callbacks_set_on_header_callback(callbacks, &OnHeader);
      nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &OnDataChunk);
      nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, &OnFrameRecv);
      nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, &OnFrameSend);
      nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &OnStreamClose);
      nghttp2_option_new(&option);
      // Clients cancelling many requests (hedges, timeouts) are no attack here.
      nghttp2_option_set_stream_reset_rate_limit(option, UINT64_MAX / 2, UINT64_MAX / 2);
      nghttp2_option_set_no_closed_streams(option, 1);
    }
    ~Shared() {
      nghttp2_option_del(option);
      nghttp2_session_callbacks_del(callbacks);
    }
  };
  static const Shared& Get() {
    static const Shared shared;
    return shared;
  }

  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* self) {
    if (!IsRequestHeaders(frame)) return 0;
    auto stream = std::make_unique<H2Stream>();
    stream->id = frame->hd.stream_id;
    stream->request.protocol = "h2";
    Of(self)->streams_[stream->id] = std::move(stream);
    return 0;
  }

  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t name_len, const uint8_t* value, size_t value_len, uint8_t,
                      void* self) {
    H2Stream* stream = IsRequestHeaders(frame) ? Of(self)->Find(frame->hd.stream_id) : nullptr;
    if (stream == nullptr) return 0;
    Request& r = stream->request;
    const std::string_view n = View(name, name_len);
    const std::string_view v = View(value, value_len);
    if (n == ":method") {
      r.method = v == "GET" ? Method::kGet : v == "POST" ? Method::kPost : Method::kOther;
    } else if (n == ":path") {
      r.path = v.substr(0, v.find('?'));
    } else if (n == "authorization") {
      r.authorization = v;
      r.auth = true;
    } else if (n == "x-api-key") {
      r.api_key = v;
      r.auth = true;
    }
    return 0;
  }

  static int OnDataChunk(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data,
                         size_t len, void* self) {
    if (H2Stream* stream = Of(self)->Find(stream_id)) stream->request.body.append(View(data, len));
    return 0;
  }

  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* self) {
    if (!EndsStream(frame)) return 0;
    H2Stream* stream = Of(self)->Find(frame->hd.stream_id);
    if (stream != nullptr && !stream->handled) Of(self)->Handle(stream);
    return 0;
  }

  static int OnFrameSend(nghttp2_session*, const nghttp2_frame* frame, void* self) {
    if (!EndsStream(frame)) return 0;
    if (H2Stream* stream = Of(self)->Find(frame->hd.stream_id)) stream->end_sent = true;
    return 0;
  }

  static int OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t, void* self) {
    auto& streams = Of(self)->streams_;
    auto it = streams.find(stream_id);
    if (it == streams.end()) return 0;
    const std::unique_ptr<H2Stream> stream = std::move(it->second);
    streams.erase(it);
    if (stream->exchange != nullptr) {
      stream->exchange->Finish(stream->end_sent ? "answered"
                               : stream->cut    ? "truncated"
                                                : "client_closed");
    }
    return 0;
  }

  static ssize_t ReadBody(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                          uint32_t* data_flags, nghttp2_data_source* source, void*) {
    auto* stream = static_cast<H2Stream*>(source->ptr);
    const size_t n = std::min(length, stream->response.size() - stream->sent);
    std::memcpy(buf, stream->response.data() + stream->sent, n);
    stream->sent += n;
    if (stream->sent < stream->response.size()) return static_cast<ssize_t>(n);
    if (!stream->truncated) {
      *data_flags |= NGHTTP2_DATA_FLAG_EOF;
      return static_cast<ssize_t>(n);
    }
    if (n > 0) return static_cast<ssize_t>(n);
    // The partial body is out: nghttp2 now resets the stream (INTERNAL_ERROR).
    stream->cut = true;
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }

  static void OnRead(bufferevent* bev, void* self) {
    H2Session* h = Of(self);
    evbuffer* in = bufferevent_get_input(bev);
    while (h->session_ != nullptr && evbuffer_get_length(in) > 0) {
      evbuffer_iovec chunk;
      evbuffer_peek(in, -1, nullptr, &chunk, 1);
      const ssize_t n = nghttp2_session_mem_recv(
          h->session_, static_cast<const uint8_t*>(chunk.iov_base), chunk.iov_len);
      if (n < 0) return h->Close(BEV_EVENT_READING | BEV_EVENT_ERROR);
      evbuffer_drain(in, static_cast<size_t>(n));
    }
    h->ScheduleFlush();
  }

  static void OnWrite(bufferevent*, void* self) { Of(self)->Drained(); }

  static void OnEvent(bufferevent*, short what, void* self) {
    if ((what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) != 0) Of(self)->Close(what);
  }

  static void OnFlush(int, short, void* self) { Of(self)->Flush(); }
};

H2Session::H2Session(H2Server* server, bufferevent* bev) : server_(server), bev_(bev) {}

H2Session::~H2Session() { Close(0); }

bool H2Session::Start() {
  const H2Callbacks::Shared& shared = H2Callbacks::Get();
  if (nghttp2_session_server_new2(&session_, shared.callbacks, this, shared.option) != 0) {
    session_ = nullptr;
    return false;
  }
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, kMaxStreams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kStreamWindow},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
  flush_ = event_new(bufferevent_get_base(bev_), -1, 0, &H2Callbacks::OnFlush, this);
  bufferevent_getcb(bev_, nullptr, nullptr, &evhttp_event_, &evhttp_arg_);
  bufferevent_setcb(bev_, &H2Callbacks::OnRead, &H2Callbacks::OnWrite, &H2Callbacks::OnEvent, this);
  // evhttp writes nothing until a request is read; HTTP/2 writes at once.
  bufferevent_enable(bev_, EV_READ | EV_WRITE);
  ScheduleFlush();
  return true;
}

void H2Session::Stop() {
  if (session_ == nullptr) return;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                        nullptr, 0);
  ScheduleFlush();
}

bool H2Session::Flushed() const {
  return session_ == nullptr || (!flushing_ && !nghttp2_session_want_write(session_) &&
                                 evbuffer_get_length(bufferevent_get_output(bev_)) == 0);
}

void H2Session::Detach() {
  for (auto& [id, stream] : streams_) stream->exchange = nullptr;
  evhttp_event_ = nullptr;
  Close(0);
}

H2Stream* H2Session::Find(int32_t stream_id) {
  auto it = streams_.find(stream_id);
  return it == streams_.end() ? nullptr : it->second.get();
}

void H2Session::Handle(H2Stream* stream) {
  stream->handled = true;
  MockService* service = server_->service();
  MockDialect dialect = MockDialect::kOpenAI;
  if (auto answer = service->Route(stream->request, &dialect)) {
    return Submit(stream, answer->status, {{"Content-Type", "application/json"}}, answer->body,
                  false);
  }
  service->StartChat(std::make_unique<H2Exchange>(this, stream), stream->request, dialect);
}

void H2Session::Submit(H2Stream* stream, int status, const std::vector<Header>& headers,
                       const std::string& body, bool truncated) {
  stream->response = body;
  stream->truncated = truncated;
  const std::string status_text = std::to_string(status);
  const std::string length_text = std::to_string(body.size());
  // HTTP/2 header names are lower case.
  char names[kMaxHeaders][32];
  nghttp2_nv nv[kMaxHeaders + 2];
  size_t count = 0;
  nv[count++] = Nv(":status", 7, status_text);
  bool has_length = false;
  for (size_t i = 0; i < headers.size() && i < kMaxHeaders; ++i) {
    const size_t len = std::min(std::strlen(headers[i].name), sizeof names[i]);
    for (size_t c = 0; c < len; ++c) {
      names[i][c] = static_cast<char>(std::tolower(static_cast<unsigned char>(headers[i].name[c])));
    }
    has_length |= std::string_view(names[i], len) == "content-length";
    nv[count++] = Nv(names[i], len, headers[i].value);
  }
  if (!has_length) nv[count++] = Nv("content-length", 14, length_text);
  nghttp2_data_provider provider;
  provider.source.ptr = stream;
  provider.read_callback = &H2Callbacks::ReadBody;
  nghttp2_submit_response(session_, stream->id, nv, count, &provider);
  ScheduleFlush();
}

void H2Session::Reset(H2Stream* stream, uint32_t error_code) {
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream->id, error_code);
  ScheduleFlush();
}

void H2Session::ScheduleFlush() {
  // Does nothing when already scheduled: one flush per loop iteration.
  if (flush_ != nullptr) event_active(flush_, 0, 0);
}

void H2Session::Flush() {
  if (session_ == nullptr) return;
  evbuffer* output = bufferevent_get_output(bev_);
  out_.clear();
  flushing_ = true;
  ssize_t n = 0;
  while (evbuffer_get_length(output) + out_.size() < kMaxBuffered) {
    const uint8_t* data = nullptr;
    n = nghttp2_session_mem_send(session_, &data);
    if (n <= 0) break;
    out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
  flushing_ = false;
  if (!out_.empty()) bufferevent_write(bev_, out_.data(), out_.size());
  if (n < 0) return Close(BEV_EVENT_WRITING | BEV_EVENT_ERROR);
  CloseIfDone();
}

void H2Session::Drained() {
  if (session_ == nullptr) return;
  if (nghttp2_session_want_write(session_)) ScheduleFlush();
  CloseIfDone();
  server_->on_flushed_();
}

void H2Session::CloseIfDone() {
  if (session_ != nullptr && !nghttp2_session_want_read(session_) &&
      !nghttp2_session_want_write(session_) &&
      evbuffer_get_length(bufferevent_get_output(bev_)) == 0) {
    Close(BEV_EVENT_READING | BEV_EVENT_EOF);
  }
}

void H2Session::Close(short forward) {
  if (session_ != nullptr) {
    for (auto& [id, stream] : streams_) {
      if (stream->exchange != nullptr) stream->exchange->Finish("client_closed");
    }
    streams_.clear();
    nghttp2_session_del(session_);
    session_ = nullptr;
    event_free(flush_);
    flush_ = nullptr;
  }
  if (forward != 0 && evhttp_event_ != nullptr) {
    auto* tell_evhttp = evhttp_event_;
    evhttp_event_ = nullptr;
    // evhttp frees the connection, and so (later, in the loop) this session.
    tell_evhttp(bev_, forward, evhttp_arg_);
  }
}

}  // namespace keel::mock
