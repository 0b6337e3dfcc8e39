#include "tests/support/pg_database.h"

#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace keel::test {

std::optional<std::string> PgServerUrl() {
  if (const char* url = std::getenv("KEEL_TEST_PG_URL"); url && *url) return std::string(url);
  const char* dir = std::getenv("KEEL_TEST_PG_DIR");
  if (!dir || !*dir) return std::nullopt;
  std::ifstream in(std::string(dir) + "/url");
  std::string url;
  if (!std::getline(in, url) || url.empty()) return std::nullopt;
  return url;
}

std::string PgDatabaseUrl(const std::string& server_url, const std::string& name) {
  size_t scheme = server_url.find("://");
  size_t slash = server_url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  std::string base = slash == std::string::npos ? server_url : server_url.substr(0, slash);
  return base + "/" + name;
}

std::optional<std::string> FreshPgDatabase(const std::string& tag) {
  auto server = PgServerUrl();
  if (!server) return std::nullopt;
  static std::atomic<int> counter{0};
  std::string name = "t_";
  for (char c : tag) name += std::isalnum(static_cast<unsigned char>(c)) ? std::tolower(c) : '_';
  name += "_" + std::to_string(getpid()) + "_" + std::to_string(counter++);
  PGconn* conn = PQconnectdb(server->c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::fprintf(stderr, "FreshPgDatabase: cannot connect to %s: %s\n", server->c_str(),
                 PQerrorMessage(conn));
    std::abort();
  }
  std::string sql = "DROP DATABASE IF EXISTS " + name + "; CREATE DATABASE " + name;
  PGresult* r = PQexec(conn, ("DROP DATABASE IF EXISTS " + name).c_str());
  PQclear(r);
  r = PQexec(conn, ("CREATE DATABASE " + name).c_str());
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    std::fprintf(stderr, "FreshPgDatabase: %s: %s\n", sql.c_str(), PQresultErrorMessage(r));
    std::abort();
  }
  PQclear(r);
  PQfinish(conn);
  return PgDatabaseUrl(*server, name);
}

}  // namespace keel::test
