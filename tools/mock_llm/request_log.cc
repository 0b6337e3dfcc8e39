#include "tools/mock_llm/request_log.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cerrno>
#include <cstring>

namespace keel::mock {
namespace {

std::string ToJson(const LogEntry& e) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  auto str = [&](const char* key, const std::string& value) {
    w.Key(key);
    w.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
  };
  w.StartObject();
  w.Key("id");
  w.Int64(e.id);
  w.Key("ts");
  w.Double(e.ts);
  str("path", e.path);
  str("protocol", e.protocol);
  str("model", e.model);
  str("user", e.user);
  str("fault", e.fault);
  w.Key("status");
  w.Int(e.status);
  w.Key("latency_ms");
  w.Double(e.latency_ms);
  str("outcome", e.outcome);
  w.Key("duration_ms");
  w.Double(e.duration_ms);
  w.Key("auth");
  w.Bool(e.auth);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace

std::string CutUtf8(const std::string& text, size_t max_chars) {
  size_t chars = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80 && chars++ == max_chars) {
      return text.substr(0, i);
    }
  }
  return text;
}

RequestLog::~RequestLog() { Close(); }

bool RequestLog::Open(const std::string& path, std::string* error) {
  std::FILE* file = std::fopen(path.c_str(), "w");
  if (file == nullptr) {
    *error = "cannot write " + path + ": " + std::strerror(errno);
    return false;
  }
  MutexLock lock(&mu_);
  if (file_ != nullptr) std::fclose(file_);
  file_ = file;
  return true;
}

void RequestLog::Add(const LogEntry& entry) {
  std::string line = ToJson(entry);
  MutexLock lock(&mu_);
  if (file_ != nullptr) {
    std::fputs(line.c_str(), file_);
    std::fputc('\n', file_);
    std::fflush(file_);
  }
  entries_.push_back(std::move(line));
  if (entries_.size() > kMaxKept) entries_.pop_front();
}

std::string RequestLog::JsonArray() const {
  MutexLock lock(&mu_);
  std::string out = "[";
  for (const std::string& e : entries_) {
    if (out.size() > 1) out += ",";
    out += e;
  }
  return out + "]";
}

void RequestLog::Close() {
  MutexLock lock(&mu_);
  if (file_ != nullptr) std::fclose(file_);
  file_ = nullptr;
}

}  // namespace keel::mock
