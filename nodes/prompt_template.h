#pragma once
// PromptTemplate: text with {{params.NAME...}} and {{deps.NODE...}} fields,
// as agent prompts, system prompts and messages use them.
//
// A field is a dotted path: "params.topic", "deps.outline", "deps.search.hits.0.title"
// (numbers index arrays). Rendering inserts strings as they are and any
// other JSON value as compact JSON. Parse() checks the syntax; the loader
// checks the first two segments against the workflow (a parameter with a
// default, a dependency in `after`). At run time a dependency without output
// (skipped, or a failure a join absorbed) renders as nothing; Render() fails
// kPermanent naming the field when a deeper segment is missing. Immutable after
// Parse; Render may run on any thread.

#include <string>
#include <utility>
#include <vector>

#include "engine/json_text.h"
#include "engine/status.h"

namespace keel {

class PromptTemplate {
 public:
  struct Field {
    std::string text;                   // as written between the braces, trimmed
    std::vector<std::string> path;      // its segments
  };

  // Fails kPermanent on an unclosed "{{", an empty field, or a root other
  // than params, deps, item or index.
  static Result<PromptTemplate> Parse(const std::string& text);

  const std::vector<Field>& fields() const { return fields_; }
  bool empty() const { return pieces_.empty() && fields_.empty(); }

  // The text with every field replaced. `deps` are the outputs by node name;
  // `item` and `index` a keel.map item's element and position ({{item.x}},
  // {{index}}; nothing outside a map).
  Result<std::string> Render(const JsonText& params,
                             const std::vector<std::pair<std::string, JsonText>>& deps,
                             const JsonText& item = nullptr, int index = 0) const;

 private:
  // Literal text before each field, then the text after the last one.
  std::vector<std::string> pieces_;
  std::vector<Field> fields_;
};

}  // namespace keel
