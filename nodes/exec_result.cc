#include "nodes/exec_result.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <string.h>

#include <cstring>

#include "engine/utf8.h"
#include "nodes/untrusted_json.h"

namespace keel {
namespace {

constexpr size_t kCommandShown = 200;
constexpr size_t kOutputQuoted = 200;

// Bytes in `text` from `start` up to where a UTF-8 sequence starting before
// `start + n` ends, so a cut never splits a character.
std::string_view Utf8Cut(std::string_view text, size_t start, size_t n) {
  size_t begin = std::min(start, text.size());
  while (begin < text.size() && (static_cast<unsigned char>(text[begin]) & 0xC0) == 0x80) ++begin;
  size_t end = std::min(text.size(), begin + n);
  while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) ++end;
  return text.substr(begin, end - begin);
}

std::string StderrTail(const ProcessResult& result) {
  const std::string& err = result.stderr_data;
  size_t start = err.size() > kStderrTailInMessage ? err.size() - kStderrTailInMessage : 0;
  std::string tail = ReplaceInvalidUtf8(Utf8Cut(err, start, kStderrTailInMessage));
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r')) tail.pop_back();
  if (tail.empty()) return "";
  bool cut = start > 0 || result.stderr_truncated;
  return std::string("; stderr") +
         (cut ? " (last " + std::to_string(kStderrTailInMessage) + " bytes): ..." : ": ") + tail;
}

std::string SignalName(int signal) {
  const char* abbrev = sigabbrev_np(signal);
  return abbrev != nullptr ? std::string("SIG") + abbrev : "signal " + std::to_string(signal);
}

void WriteString(rapidjson::Writer<rapidjson::StringBuffer>& w, std::string_view text) {
  std::string valid = ReplaceInvalidUtf8(text);
  w.String(valid.data(), static_cast<rapidjson::SizeType>(valid.size()));
}

}  // namespace

bool ParseExecOutput(std::string_view name, ExecOutput* mode) {
  if (name == "text") {
    *mode = ExecOutput::kText;
  } else if (name == "json") {
    *mode = ExecOutput::kJson;
  } else if (name == "lines") {
    *mode = ExecOutput::kLines;
  } else {
    return false;
  }
  return true;
}

Status ExecStatus(const ProcessResult& result, const std::map<int, ErrorKind>& exit_codes,
                  const std::string& what) {
  if (!result.status.ok()) {
    if (result.pid == 0) return result.status;  // never started: the message names the path
    std::string message = what + ": " + result.status.message();
    if (result.status.kind() == ErrorKind::kTimeout) message = what + ": timed out; killed";
    if (result.status.kind() == ErrorKind::kCancelled) message = what + ": cancelled; killed";
    return Status::Error(result.status.kind(), message + StderrTail(result));
  }
  if (result.signal != 0) {
    return Status::Error(ErrorKind::kTransient,
                         what + ": killed by " + SignalName(result.signal) + StderrTail(result));
  }
  if (result.exit_code == 0) return Status::Ok();
  ErrorKind kind = ErrorKind::kTransient;
  if (auto it = exit_codes.find(result.exit_code); it != exit_codes.end()) kind = it->second;
  return Status::Error(
      kind, what + ": exited with code " + std::to_string(result.exit_code) + StderrTail(result));
}

Result<std::string> ExecOutputJson(ExecOutput mode, const std::string& stdout_data,
                                   const std::string& what) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  switch (mode) {
    case ExecOutput::kText:
      WriteString(w, stdout_data);
      break;
    case ExecOutput::kLines: {
      w.StartArray();
      size_t start = 0;
      while (start < stdout_data.size()) {
        size_t end = stdout_data.find('\n', start);
        if (end == std::string::npos) end = stdout_data.size();
        size_t stop = end > start && stdout_data[end - 1] == '\r' ? end - 1 : end;
        WriteString(w, std::string_view(stdout_data).substr(start, stop - start));
        start = end + 1;
      }
      w.EndArray();
      break;
    }
    case ExecOutput::kJson: {
      rapidjson::Document doc;
      Status parsed = ParseUntrustedJson(stdout_data, &doc);
      if (!parsed.ok()) {
        std::string quoted = ReplaceInvalidUtf8(Utf8Cut(stdout_data, 0, kOutputQuoted));
        bool more = quoted.size() < stdout_data.size();
        return Status::Error(
            ErrorKind::kPermanent,
            what + ": stdout is not JSON (" + parsed.message() + "); it starts " +
                (stdout_data.empty() ? std::string("empty")
                                     : "with \"" + quoted + (more ? "...\"" : "\"")));
      }
      doc.Accept(w);
      break;
    }
  }
  return std::string(buf.GetString(), buf.GetSize());
}

std::string DescribeCommand(const std::vector<std::string>& argv) {
  std::string text;
  for (const std::string& arg : argv) {
    if (!text.empty()) text += ' ';
    bool quote = arg.empty() || arg.find_first_of(" \t\n'\"\\") != std::string::npos;
    text += quote ? "'" + arg + "'" : arg;
    if (text.size() > kCommandShown) {
      text = std::string(Utf8Cut(text, 0, kCommandShown)) + "...";
      break;
    }
  }
  return ReplaceInvalidUtf8(text);
}

}  // namespace keel
