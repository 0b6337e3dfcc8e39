#pragma once
// RequestLog: what keel-mock-llm did with each chat request, written when the
// request ends: one JSON line per request to the --log file (flushed at once,
// so a test can read it while the server runs) and kept in memory for
// GET /log. The log never holds an API key, only whether one was sent.
//
// Thread-safe: any thread may Add or read; mu_ guards the file and the entries.

#include <cstdint>
#include <cstdio>
#include <deque>
#include <string>

#include "engine/mutex.h"

namespace keel::mock {

struct LogEntry {
  int64_t id = 0;  // 1 for the first chat request
  double ts = 0;   // wall-clock seconds when it arrived
  std::string path;
  std::string protocol;  // "http/1.1" or "h2"
  std::string model;
  std::string user;        // last user message, cut to 200 characters
  std::string fault;       // "" for a 200 answer, else the status ("500") or transport fault
  int status = 0;          // 0 when no status line was meant to be sent
  double latency_ms = 0;   // the wait the request was given (latency, jitter, directive)
  std::string outcome;     // answered | client_closed | truncated | reset | hang_closed
  double duration_ms = 0;  // from arrival to the end
  bool auth = false;       // whether an Authorization or x-api-key header came
};

class RequestLog {
 public:
  static constexpr size_t kMaxKept = 100000;  // entries kept for GET /log

  RequestLog() = default;
  ~RequestLog();
  RequestLog(const RequestLog&) = delete;
  RequestLog& operator=(const RequestLog&) = delete;

  // Starts writing to `path` (replacing it). False with *error on failure.
  bool Open(const std::string& path, std::string* error);

  void Add(const LogEntry& entry);

  // The kept entries, oldest first, as one JSON array.
  std::string JsonArray() const;

  // Flushes and closes the file; later entries are only kept in memory.
  void Close();

 private:
  mutable Mutex mu_;
  std::FILE* file_ GUARDED_BY(mu_) = nullptr;
  std::deque<std::string> entries_ GUARDED_BY(mu_);  // JSON text of each entry
};

// `text` cut to at most `max_chars` UTF-8 characters.
std::string CutUtf8(const std::string& text, size_t max_chars);

}  // namespace keel::mock
