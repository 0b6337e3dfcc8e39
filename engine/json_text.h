#pragma once
// JsonText: an immutable, shared piece of JSON text.
//
// Every value that flows between nodes (params, outputs) is JSON text held in
// one of these. It is never mutated after creation, so any number of threads
// may read it at once.

#include <memory>
#include <string>

namespace keel {

using JsonText = std::shared_ptr<const std::string>;

inline JsonText MakeJson(std::string text) {
  return std::make_shared<const std::string>(std::move(text));
}

}  // namespace keel
