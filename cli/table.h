#pragma once
// Table: left-aligned text columns separated by two spaces, for `keel runs`
// and `keel show`. Not thread-safe; build and print from one thread.

#include <cstdio>
#include <string>
#include <vector>

namespace keel::cli {

class Table {
 public:
  explicit Table(std::vector<std::string> header);

  // Adds a row; missing cells print empty, extra cells are ignored.
  void AddRow(std::vector<std::string> cells);

  // Prints the header and rows to `out`. The last column is not padded.
  void Print(std::FILE* out) const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace keel::cli
