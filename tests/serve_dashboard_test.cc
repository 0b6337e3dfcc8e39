// The dashboard's files as `keel serve` serves them, over real HTTP: the
// page routes and assets with their content types, the strong ETag and 304,
// gzip that inflates back to the file, path traversal refused in every
// spelling, the page open without the token while /api still needs it,
// the security headers, unknown assets 404, and `--web-dir` serving edits
// without a restart while refusing symlinks that lead out of it.

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/files.h"
#include "tests/support/json.h"
#include "tests/support/keel_cli.h"
#include "tests/support/sandbox.h"
#include "tests/support/serve_process.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 120;

std::string Source(const std::string& relative) {
  auto text = ReadFile(std::string(KEEL_SOURCE_DIR) + "/web/" + relative);
  REQUIRE(text.has_value());
  return *text;
}

// `data` inflated from gzip; "" when it is not gzip.
std::string Gunzip(const std::string& data) {
  z_stream stream{};
  if (inflateInit2(&stream, 15 + 16) != Z_OK) return "";
  std::string out;
  char buffer[16384];
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  int result = Z_OK;
  while (result == Z_OK) {
    stream.next_out = reinterpret_cast<Bytef*>(buffer);
    stream.avail_out = sizeof buffer;
    result = inflate(&stream, Z_NO_FLUSH);
    out.append(buffer, sizeof buffer - stream.avail_out);
  }
  inflateEnd(&stream);
  return result == Z_STREAM_END ? out : "";
}

// The status code of a raw request for `target`.
int RawStatus(int port, const std::string& target, std::string* reply_out = nullptr) {
  std::string reply =
      RawExchange(port, "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  if (reply_out) *reply_out = reply;
  if (reply.size() < 12 || !reply.starts_with("HTTP/1.1 ")) return -1;
  return std::stoi(reply.substr(9, 3));
}

// Every file under web/assets (relative to web/), sorted.
std::vector<std::string> AssetFiles() {
  std::vector<std::string> files;
  const std::filesystem::path web = std::string(KEEL_SOURCE_DIR) + "/web";
  for (const auto& entry : std::filesystem::recursive_directory_iterator(web / "assets")) {
    std::string rel = entry.path().lexically_relative(web).string();
    if (entry.is_regular_file() && rel.find("/.") == std::string::npos) files.push_back(rel);
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The Content-Type the server must send for `file`.
std::string ExpectedType(const std::string& file) {
  auto ends = [&](const char* ext) { return file.ends_with(ext); };
  if (ends(".js") || ends(".mjs")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".json") || ends(".map")) return "application/json";
  if (ends(".png")) return "image/png";
  if (ends(".txt")) return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

std::unique_ptr<httplib::Client> RawClient(ServeProcess& serve) {
  auto client = serve.Client();
  client->set_decompress(false);
  return client;
}

}  // namespace

TEST_CASE("the page routes serve index.html with the security headers" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  ServeProcess serve(KEEL_BIN, box.dir(), box.db());
  auto client = RawClient(serve);
  const std::string index = Source("index.html");
  for (const char* path : {"/", "/runs/20240101-abc", "/breakers", "/start"}) {
    CAPTURE(path);
    auto reply = client->Get(path);
    REQUIRE(reply);
    CHECK(reply->status == 200);
    CHECK(reply->body == index);
    CHECK(reply->get_header_value("Content-Type") == "text/html; charset=utf-8");
    CHECK(reply->get_header_value("Content-Security-Policy") ==
          "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'");
    CHECK(reply->get_header_value("Referrer-Policy") == "no-referrer");
    CHECK(reply->get_header_value("X-Content-Type-Options") == "nosniff");
    CHECK(reply->get_header_value("Cache-Control") == "no-cache");
    CHECK(reply->get_header_value("Content-Encoding").empty());
  }
  // Not pages: a run path with more segments, and /api.
  CHECK(client->Get("/runs/a/b")->status == 404);
  CHECK(client->Get("/runs/")->status == 404);
}

TEST_CASE("assets carry their content type, a strong ETag and 304 on If-None-Match" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  ServeProcess serve(KEEL_BIN, box.dir(), box.db());
  auto client = RawClient(serve);
  std::vector<std::string> files = AssetFiles();
  // The page needs at least its scripts and styles.
  CHECK(std::count_if(files.begin(), files.end(), [](auto& f) { return f.ends_with(".js"); }) > 0);
  CHECK(std::count_if(files.begin(), files.end(), [](auto& f) { return f.ends_with(".css"); }) > 0);
  for (const std::string& file : files) {
    CAPTURE(file);
    auto reply = client->Get("/" + file);
    REQUIRE(reply);
    CHECK(reply->status == 200);
    CHECK(reply->body == Source(file));
    CHECK(reply->get_header_value("Content-Type") == ExpectedType(file));
    CHECK(reply->get_header_value("X-Content-Type-Options") == "nosniff");
    CHECK(reply->get_header_value("Cache-Control") == "no-cache");
    std::string etag = reply->get_header_value("ETag");
    REQUIRE(etag.size() > 2);
    CHECK(etag.front() == '"');  // strong: no W/
    auto again = client->Get("/" + file, {{"If-None-Match", etag}});
    REQUIRE(again);
    CHECK(again->status == 304);
    CHECK(again->body.empty());
    CHECK(again->get_header_value("ETag") == etag);
    auto other = client->Get("/" + file, {{"If-None-Match", "\"0123\""}});
    REQUIRE(other);
    CHECK(other->status == 200);
    CHECK(other->body == Source(file));
  }
  auto missing = client->Get("/assets/no-such-file.js");
  REQUIRE(missing);
  CHECK(missing->status == 404);
  CHECK(Json::Parse(missing->body)["error"].Str().find("no-such-file.js") !=
        std::string::npos);
}

TEST_CASE("gzip is sent when accepted and inflates back to the file" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  ServeProcess serve(KEEL_BIN, box.dir(), box.db());
  auto client = RawClient(serve);
  // index.html and the largest script and style sheet (small files may not
  // shrink, and are then always sent as they are).
  std::vector<std::string> picked = {"index.html"};
  for (const char* ext : {".js", ".css"}) {
    std::string largest;
    for (const std::string& f : AssetFiles()) {
      if (f.ends_with(ext) && (largest.empty() || Source(f).size() > Source(largest).size())) {
        largest = f;
      }
    }
    if (!largest.empty()) picked.push_back(largest);
  }
  for (const std::string& file : picked) {
    CAPTURE(file);
    std::string path = "/" + (file == "index.html" ? std::string() : file);
    auto plain = client->Get(path, {{"Accept-Encoding", "identity"}});
    auto zipped = client->Get(path, {{"Accept-Encoding", "br, gzip;q=0.8, deflate"}});
    auto refused = client->Get(path, {{"Accept-Encoding", "gzip;q=0, br"}});
    REQUIRE(plain);
    REQUIRE(zipped);
    REQUIRE(refused);
    CHECK(plain->get_header_value("Content-Encoding").empty());
    CHECK(refused->get_header_value("Content-Encoding").empty());
    CHECK(refused->body == Source(file));
    CHECK(zipped->get_header_value("Content-Encoding") == "gzip");
    CHECK(zipped->get_header_value("Vary") == "Accept-Encoding");
    CHECK(zipped->body.size() < plain->body.size());
    CHECK(Gunzip(zipped->body) == Source(file));
    // Each encoding has its own tag; either one answers 304.
    std::string gz_etag = zipped->get_header_value("ETag");
    CHECK(gz_etag != plain->get_header_value("ETag"));
    auto cached = client->Get(path, {{"Accept-Encoding", "gzip"}, {"If-None-Match", gz_etag}});
    REQUIRE(cached);
    CHECK(cached->status == 304);
  }
}

TEST_CASE("path traversal is refused in every spelling" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::filesystem::create_directories(box.Path("web"));
  WriteFile(box.Path("web/index.html"), "<!doctype html><title>dev</title>\n");
  ServeProcess embedded(KEEL_BIN, box.dir(), box.db());
  ServeProcess from_disk(KEEL_BIN, box.dir(), box.db(), {"--web-dir", box.Path("web")});
  for (ServeProcess* serve : {&embedded, &from_disk}) {
    for (const char* target :
         {"/assets/../x", "/assets/../../../../etc/passwd", "/assets/%2e%2e/%2e%2e/etc/passwd",
          "/assets/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", "/assets/..%2f..%2fetc%2fpasswd",
          "//etc/passwd", "/assets//etc/passwd", "/assets/./index.html",
          "/assets/%00index.html", "/runs/..", "/runs/%2e%2e"}) {
      CAPTURE(target);
      std::string reply;
      int status = RawStatus(serve->port(), target, &reply);
      CHECK((status == 400 || status == 404));
      CHECK(reply.find("root:") == std::string::npos);
      CHECK(reply.find("<title>dev</title>") == std::string::npos);
    }
  }
}

TEST_CASE("the page and assets are open without the token; /api is not" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  ServeProcess serve(KEEL_BIN, box.dir(), box.db(), {"--token-env", "KEEL_TEST_TOKEN"},
                     {{"KEEL_TEST_TOKEN", "t0ken"}});
  auto client = RawClient(serve);
  std::vector<std::string> open_paths = {"/", "/runs/x", "/breakers", "/start"};
  for (const std::string& file : AssetFiles()) open_paths.push_back("/" + file);
  for (const std::string& open : open_paths) {
    CAPTURE(open);
    auto reply = client->Get(open);
    REQUIRE(reply);
    CHECK(reply->status == 200);
  }
  for (const char* closed : {"/api/v1/runs", "/api/v1/workflows", "/assets", "/runs/x/y",
                             "/api/v1/runs/x/graph", "/breakers/x", "/startx", "/index.html"}) {
    CAPTURE(closed);
    auto reply = client->Get(closed);
    REQUIRE(reply);
    CHECK(reply->status == 401);
  }
  CHECK(client->Get("/assets/nothing.js")->status == 404);
  auto api = client->Get("/api/v1/runs", {{"Authorization", "Bearer t0ken"}});
  REQUIRE(api);
  CHECK(api->status == 200);
}

TEST_CASE("--web-dir serves edits without a restart and refuses symlinks out of it" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::filesystem::create_directories(box.Path("web/assets"));
  WriteFile(box.Path("web/index.html"), "<!doctype html><title>one</title>\n");
  WriteFile(box.Path("web/assets/app.js"), "export const n = 1;\n");
  WriteFile(box.Path("web/assets/style.css"), "body { margin: 0 }\n");
  WriteFile(box.Path("secret.txt"), "secret-outside-the-web-dir\n");
  REQUIRE(symlink(box.Path("secret.txt").c_str(), box.Path("web/assets/leak.js").c_str()) == 0);
  REQUIRE(symlink(box.dir().c_str(), box.Path("web/assets/up").c_str()) == 0);
  REQUIRE(symlink("app.js", box.Path("web/assets/alias.js").c_str()) == 0);  // inside: fine
  ServeProcess serve(KEEL_BIN, box.dir(), box.db(), {"--web-dir", box.Path("web")});
  auto client = RawClient(serve);

  auto page = client->Get("/runs/abc");
  REQUIRE(page);
  CHECK(page->status == 200);
  CHECK(page->body == "<!doctype html><title>one</title>\n");
  CHECK(!page->get_header_value("Content-Security-Policy").empty());
  auto js = client->Get("/assets/app.js");
  REQUIRE(js);
  CHECK(js->body == "export const n = 1;\n");
  CHECK(js->get_header_value("Content-Type") == "text/javascript; charset=utf-8");
  std::string etag = js->get_header_value("ETag");
  CHECK(client->Get("/assets/app.js", {{"If-None-Match", etag}})->status == 304);
  CHECK(client->Get("/assets/style.css")->get_header_value("Content-Type") ==
        "text/css; charset=utf-8");
  CHECK(client->Get("/assets/alias.js")->body == "export const n = 1;\n");

  WriteFile(box.Path("web/assets/app.js"), "export const n = 2;\n");
  WriteFile(box.Path("web/index.html"), "<!doctype html><title>two</title>\n");
  auto edited = client->Get("/assets/app.js", {{"If-None-Match", etag}});
  REQUIRE(edited);
  CHECK(edited->status == 200);
  CHECK(edited->body == "export const n = 2;\n");
  CHECK(edited->get_header_value("ETag") != etag);
  CHECK(client->Get("/")->body == "<!doctype html><title>two</title>\n");

  for (const char* path : {"/assets/leak.js", "/assets/up/secret.txt"}) {
    CAPTURE(path);
    auto reply = client->Get(path);
    REQUIRE(reply);
    CHECK(reply->status == 400);
    CHECK(reply->body.find("secret-outside") == std::string::npos);
  }
  CHECK(client->Get("/assets/missing.js")->status == 404);
}

TEST_CASE("--web-dir must name a directory" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  ExitInfo r = box.KeelDb({"serve", "--listen", "127.0.0.1:0", "--web-dir", box.Path("none")},
                          std::chrono::seconds(20));
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("--web-dir") != std::string::npos);
  // Hidden from help, which stays about the options operators use.
  ExitInfo help = box.Keel({"serve", "--help"});
  CHECK(help.out.find("--web-dir") == std::string::npos);
}

TEST_CASE("API answers are gzipped when accepted, never brotli, with their own length" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("big.lua", R"lua(local keel = require "keel"
return keel.workflow "big" {
  keel.fn "text" { run = function() return string.rep("keel ", 4000) end },
}
)lua");
  ExitInfo ran = box.KeelDb({"run", wf});
  REQUIRE_MESSAGE(ran.exit_code == 0, ran.Describe());
  std::string id = RunIdFromStderr(ran.err);
  ServeProcess serve(KEEL_BIN, box.dir(), box.db());
  auto client = RawClient(serve);
  const std::string path = "/api/v1/runs/" + id;
  auto plain = client->Get(path, {{"Accept-Encoding", "identity"}});
  // What a browser offers: br first. cpp-httplib would answer brotli at its
  // slowest quality; keel answers gzip at a fast level.
  auto zipped = client->Get(path, {{"Accept-Encoding", "gzip, deflate, br"}});
  auto br_only = client->Get(path, {{"Accept-Encoding", "br"}});
  REQUIRE(plain);
  REQUIRE(zipped);
  REQUIRE(br_only);
  REQUIRE(plain->status == 200);
  CHECK(plain->body.size() > 20000);
  CHECK(plain->get_header_value("Content-Encoding").empty());
  CHECK(plain->get_header_value("Content-Type") == "application/json; charset=utf-8");
  CHECK(br_only->get_header_value("Content-Encoding").empty());
  CHECK(br_only->body == plain->body);
  CHECK(zipped->get_header_value("Content-Encoding") == "gzip");
  CHECK(zipped->get_header_value("Vary") == "Accept-Encoding");
  CHECK(zipped->get_header_value("Content-Length") == std::to_string(zipped->body.size()));
  CHECK(zipped->body.size() < plain->body.size() / 10);
  CHECK(Gunzip(zipped->body) == plain->body);
  // Small answers (here a 404's error) go as they are.
  auto small = client->Get("/api/v1/runs/nope", {{"Accept-Encoding", "gzip"}});
  REQUIRE(small);
  CHECK(small->status == 404);
  CHECK(small->get_header_value("Content-Encoding").empty());
}

}  // namespace keel::testing
