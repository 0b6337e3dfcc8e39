#pragma once
// SqliteDb: a plain SQLite connection with which a test looks inside a
// database behind keel's back, or builds another application's database.
//
// Not thread-safe: one SqliteDb per thread. Every failure throws
// std::runtime_error naming the file and SQLite's message.

#include <string>
#include <vector>

struct sqlite3;

namespace keel::testing {

class SqliteDb {
 public:
  // Opens `path` read-write (creating it when `create`), with a busy timeout
  // so a concurrent writer makes reads wait instead of fail.
  SqliteDb(const std::string& path, bool create);
  ~SqliteDb();

  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  // Runs one or more statements that return no rows.
  void Exec(const std::string& sql);

  // Rows of `sql` with `params` bound as text to ?1, ?2, ...; each column
  // read as text (NULL reads as "").
  std::vector<std::vector<std::string>> Query(const std::string& sql,
                                              const std::vector<std::string>& params = {});

  // Names of the tables, sorted.
  std::vector<std::string> TableNames();

 private:
  std::string path_;
  sqlite3* db_ = nullptr;
};

}  // namespace keel::testing
