#pragma once
// JsonDocument: a RapidJSON document whose memory pool grows in 4 KiB
// chunks. RapidJSON's own Document takes a 64 KiB chunk for its first value,
// even for "[]"; with hundreds of LLM calls building and parsing JSON at
// once, those chunks rarely find freed memory to reuse and each costs fresh
// pages. Use it wherever a document is built or parsed per call. Like any
// Document it belongs to one thread at a time; it cannot be copied or moved
// (its values point into its own pool).

#include <rapidjson/document.h>

namespace keel {
namespace json_detail {

// The pool, in a base class so that it is built before the document using it.
struct SmallPool {
  static constexpr size_t kChunk = 4096;
  rapidjson::MemoryPoolAllocator<> pool{kChunk};
};

}  // namespace json_detail

class JsonDocument : private json_detail::SmallPool, public rapidjson::Document {
 public:
  JsonDocument() : rapidjson::Document(&pool) {}
  JsonDocument(const JsonDocument&) = delete;
  JsonDocument& operator=(const JsonDocument&) = delete;
};

}  // namespace keel
