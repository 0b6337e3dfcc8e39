#pragma once
// Fresh PostgreSQL databases on the tests' throwaway server
// (tests/support/pg_server.sh, started by the ctest fixture `pg`).
//
// Free functions; any thread.

#include <optional>
#include <string>

namespace keel::test {

// The URL of the tests' server ($KEEL_TEST_PG_URL, else the url file in
// $KEEL_TEST_PG_DIR); nullopt when there is none, and the test should skip.
std::optional<std::string> PgServerUrl();

// Creates a new, empty database on the server, named after `tag` and a
// counter, and returns its URL; nullopt when there is no server. Fails the
// process (with a message) when the server is there but refuses.
std::optional<std::string> FreshPgDatabase(const std::string& tag);

// The URL of database `name` on the same server as `server_url`.
std::string PgDatabaseUrl(const std::string& server_url, const std::string& name);

}  // namespace keel::test
