#include "service/workflows_api.h"

#include <httplib.h>
#include <rapidjson/document.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <thread>
#include <vector>

#include "service/command_output.h"
#include "service/json_response.h"
#include "service/workflow_path.h"
#include "views/json_out.h"
#include "views/workflow_summary.h"

namespace keel::service {
namespace {

// Directory entries looked at, at most, in one listing (a tree holding
// node_modules or a dataset should not stall the start page).
constexpr size_t kMaxWalkEntries = 20000;
// The longest error text kept for a file that does not load.
constexpr size_t kMaxErrorBytes = 4096;

struct Found {
  std::string file;  // relative to --workflows
  int64_t mtime_ns = 0;
  int64_t size = 0;
};

// The .lua files under `root`, sorted, at most kMaxWorkflowFiles.
std::vector<Found> FindWorkflowFiles(const std::string& root) {
  namespace fs = std::filesystem;
  std::vector<Found> found;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
  size_t seen = 0;
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (++seen > kMaxWalkEntries) break;
    const fs::path& path = it->path();
    std::string name = path.filename().string();
    if (name.starts_with(".")) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (path.extension() != ".lua") continue;
    std::string rel = path.lexically_relative(root).string();
    WorkflowPath resolved = ResolveWorkflowPath(root, rel);
    if (resolved.http_status != 0) continue;  // outside --workflows, or not a file
    struct stat st {};
    if (stat(resolved.path.c_str(), &st) != 0) continue;
    found.push_back({rel, static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 +
                              st.st_mtim.tv_nsec,
                     static_cast<int64_t>(st.st_size)});
  }
  std::sort(found.begin(), found.end(),
            [](const Found& a, const Found& b) { return a.file < b.file; });
  if (found.size() > kMaxWorkflowFiles) found.resize(kMaxWorkflowFiles);
  return found;
}

std::string ErrorJson(const std::string& file, std::string error) {
  while (!error.empty() && (error.back() == '\n' || error.back() == ' ')) error.pop_back();
  if (error.size() > kMaxErrorBytes) error = error.substr(0, kMaxErrorBytes) + "...";
  JsonOut out;
  WriteWorkflowErrorJson(&out, file, error);
  return out.Text();
}

// Seconds a timed-out load is remembered before it is tried again (the
// machine may have been busy; a file that loops would cost every listing).
constexpr double kTimeoutKeptS = 60;

double SteadyNow() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// One file's listing entry, from a child `keel validate --json`; sets
// `*keep_until` to when it stops being worth keeping (infinity: until the
// file changes; 0: not at all).
std::string LoadEntry(const ServiceOptions& options, const std::string& file,
                      const std::atomic<bool>* abort, double* keep_until) {
  *keep_until = HUGE_VAL;
  auto child = RunForOutput({options.keel_path, "validate", "--json", "--", file},
                            kLoadTimeoutS, abort, options.workflows, 1 << 20);
  if (!child.ok()) {
    *keep_until = 0;
    if (child.status().kind() == ErrorKind::kTimeout) {
      *keep_until = SteadyNow() + kTimeoutKeptS;
      return ErrorJson(file, "loading did not finish within " +
                                 std::to_string(static_cast<int>(kLoadTimeoutS)) +
                                 " s (stopped): does the file loop or wait at load?");
    }
    return ErrorJson(file, "cannot load: " + child.status().message());
  }
  if (child->exit_code != 0) {
    std::string error = child->err.empty()
                            ? "keel validate exited with " + std::to_string(child->exit_code)
                            : child->err;
    return ErrorJson(file, error);
  }
  std::string out = child->out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  rapidjson::Document doc;
  doc.Parse(out.c_str(), out.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return ErrorJson(file, "keel validate --json printed no JSON object");
  }
  return out;
}

}  // namespace

std::string WorkflowsApi::List() {
  MutexLock lock(&mu_);
  std::vector<Found> files = FindWorkflowFiles(options_.workflows);
  const double now = SteadyNow();
  std::map<std::string, Entry> next;
  std::vector<size_t> to_load;
  for (size_t i = 0; i < files.size(); ++i) {
    auto cached = cache_.find(files[i].file);
    if (cached != cache_.end() && cached->second.mtime_ns == files[i].mtime_ns &&
        cached->second.size == files[i].size && cached->second.keep_until > now) {
      next[files[i].file] = cached->second;
    } else {
      to_load.push_back(i);
    }
  }
  std::vector<std::string> loaded(to_load.size());
  std::vector<double> keep_until(to_load.size());
  std::atomic<size_t> cursor{0};
  auto work = [&] {
    for (size_t k = cursor++; k < to_load.size(); k = cursor++) {
      loaded[k] = LoadEntry(options_, files[to_load[k]].file, &stopping_, &keep_until[k]);
    }
  };
  std::vector<std::thread> workers;
  size_t threads = std::min<size_t>(kParallelLoads, to_load.size());
  for (size_t t = 1; t < threads; ++t) workers.emplace_back(work);
  if (threads > 0) work();
  for (std::thread& worker : workers) worker.join();
  for (size_t k = 0; k < to_load.size(); ++k) {
    const Found& f = files[to_load[k]];
    next[f.file] = Entry{f.mtime_ns, f.size, keep_until[k], std::move(loaded[k])};
  }
  // Files gone from the tree leave the cache with the listing.
  cache_ = next;
  std::string body = "[";
  for (const Found& f : files) {
    if (body.size() > 1) body += ",";
    body += cache_[f.file].json;
  }
  body += "]";
  return body;
}

void WorkflowsApi::Register(httplib::Server& server) {
  server.Get("/api/v1/workflows", [this](const httplib::Request&, httplib::Response& r) {
    JsonBody(r, 200, List());
  });
}

}  // namespace keel::service
