#include "service/route_table.h"

#include <httplib.h>

namespace keel::service {
namespace {

// cpp-httplib keeps its routes in private members and offers no way to list
// them. An explicit template instantiation may name private members (C++
// [temp.spec]/6), which is how the pointers to them are taken here; the
// types are spelled with the public handler types, so a change of layout in
// a later cpp-httplib fails to compile rather than misbehaving.
using Handlers = std::vector<std::pair<std::regex, httplib::Server::Handler>>;
using ReaderHandlers =
    std::vector<std::pair<std::regex, httplib::Server::HandlerWithContentReader>>;

template <typename Tag, typename Tag::type Member>
struct MemberAccess {
  friend typename Tag::type Pointer(Tag) { return Member; }
};

#define KEEL_ROUTE_TAG(Name, Type, member)                         \
  struct Name {                                                    \
    using type = Type httplib::Server::*;                          \
    friend type Pointer(Name);                                     \
  };                                                               \
  template struct MemberAccess<Name, &httplib::Server::member>;

KEEL_ROUTE_TAG(GetTag, Handlers, get_handlers_)
KEEL_ROUTE_TAG(PostTag, Handlers, post_handlers_)
KEEL_ROUTE_TAG(PostReaderTag, ReaderHandlers, post_handlers_for_content_reader_)
KEEL_ROUTE_TAG(PutTag, Handlers, put_handlers_)
KEEL_ROUTE_TAG(PutReaderTag, ReaderHandlers, put_handlers_for_content_reader_)
KEEL_ROUTE_TAG(PatchTag, Handlers, patch_handlers_)
KEEL_ROUTE_TAG(PatchReaderTag, ReaderHandlers, patch_handlers_for_content_reader_)
KEEL_ROUTE_TAG(DeleteTag, Handlers, delete_handlers_)
KEEL_ROUTE_TAG(DeleteReaderTag, ReaderHandlers, delete_handlers_for_content_reader_)
#undef KEEL_ROUTE_TAG

template <typename List>
void Add(const List& list, const char* method,
         std::vector<std::pair<std::string, std::regex>>* routes) {
  for (const auto& entry : list) routes->emplace_back(method, entry.first);
}

}  // namespace

void RouteTable::Collect(const httplib::Server& server) {
  routes_.clear();
  Add(server.*Pointer(GetTag{}), "GET", &routes_);
  Add(server.*Pointer(PostTag{}), "POST", &routes_);
  Add(server.*Pointer(PostReaderTag{}), "POST", &routes_);
  Add(server.*Pointer(PutTag{}), "PUT", &routes_);
  Add(server.*Pointer(PutReaderTag{}), "PUT", &routes_);
  Add(server.*Pointer(PatchTag{}), "PATCH", &routes_);
  Add(server.*Pointer(PatchReaderTag{}), "PATCH", &routes_);
  Add(server.*Pointer(DeleteTag{}), "DELETE", &routes_);
  Add(server.*Pointer(DeleteReaderTag{}), "DELETE", &routes_);
}

std::string RouteTable::AllowedMethods(const std::string& path) const {
  std::string allowed;
  for (const auto& [method, pattern] : routes_) {
    if (!std::regex_match(path, pattern)) continue;
    if (allowed.find(method) != std::string::npos) continue;
    if (!allowed.empty()) allowed += ", ";
    allowed += method;
  }
  return allowed;
}

}  // namespace keel::service
