#include "nodes/curl_library.h"

// The forwarders below take the place of libcurl's own symbols; the type
// checking macros of <curl/typecheck-gcc.h> would rename them.
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>
#include <dlfcn.h>

#include <cstdarg>
#include <mutex>

namespace keel {
namespace {

// The libcurl functions keel calls: X(name, return type, parameters).
#define KEEL_CURL_FUNCTIONS(X)                                                      \
  X(curl_global_init, CURLcode, (long))                                             \
  X(curl_easy_init, CURL*, (void))                                                  \
  X(curl_easy_cleanup, void, (CURL*))                                               \
  X(curl_easy_reset, void, (CURL*))                                                 \
  X(curl_easy_setopt, CURLcode, (CURL*, CURLoption, ...))                           \
  X(curl_easy_getinfo, CURLcode, (CURL*, CURLINFO, ...))                            \
  X(curl_easy_perform, CURLcode, (CURL*))                                           \
  X(curl_easy_strerror, const char*, (CURLcode))                                    \
  X(curl_getdate, time_t, (const char*, const time_t*))                             \
  X(curl_multi_init, CURLM*, (void))                                                \
  X(curl_multi_cleanup, CURLMcode, (CURLM*))                                        \
  X(curl_multi_add_handle, CURLMcode, (CURLM*, CURL*))                              \
  X(curl_multi_remove_handle, CURLMcode, (CURLM*, CURL*))                           \
  X(curl_multi_assign, CURLMcode, (CURLM*, curl_socket_t, void*))                   \
  X(curl_multi_info_read, CURLMsg*, (CURLM*, int*))                                 \
  X(curl_multi_setopt, CURLMcode, (CURLM*, CURLMoption, ...))                       \
  X(curl_multi_socket_action, CURLMcode, (CURLM*, curl_socket_t, int, int*))        \
  X(curl_slist_append, struct curl_slist*, (struct curl_slist*, const char*))       \
  X(curl_slist_free_all, void, (struct curl_slist*))

struct Functions {
#define KEEL_CURL_POINTER(name, result, params) result(*name) params = nullptr;
  KEEL_CURL_FUNCTIONS(KEEL_CURL_POINTER)
#undef KEEL_CURL_POINTER
};

// Written once inside call_once, read-only afterwards.
struct Library {
  std::once_flag once;
  bool loaded = false;
  std::string error;
  Functions f;
};

Library& TheLibrary() {
  static Library library;
  return library;
}

void Load(Library* library) {
  // The SONAME of Debian's libcurl4 (the OpenSSL flavour keel is built
  // against), then the development link to whatever libcurl is installed.
  void* handle = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) handle = dlopen("libcurl.so", RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    library->error = std::string("cannot load libcurl (needed for agents and keel.http): ") +
                     (why != nullptr ? why : "dlopen failed");
    return;
  }
  Functions f;
#define KEEL_CURL_RESOLVE(name, result, params)                                      \
  f.name = reinterpret_cast<result(*) params>(dlsym(handle, #name));                 \
  if (f.name == nullptr) {                                                           \
    library->error = "the loaded libcurl lacks " #name;                              \
    return;                                                                          \
  }
  KEEL_CURL_FUNCTIONS(KEEL_CURL_RESOLVE)
#undef KEEL_CURL_RESOLVE
  // Once, before any other call, as libcurl asks (curl_global_init is not
  // thread-safe in older versions).
  if (f.curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    library->error = "libcurl's global initialisation failed";
    return;
  }
  library->f = f;
  library->loaded = true;
}

// The loaded functions, or null when libcurl cannot be loaded.
const Functions* Curl() {
  Library& library = TheLibrary();
  std::call_once(library.once, [&] { Load(&library); });
  return library.loaded ? &library.f : nullptr;
}

// The value an option of `type_base` (CURLOPTTYPE_*) is passed as, taken
// from `args` and handed on as curl itself reads it (lib/setopt.c).
template <typename Setopt, typename Handle, typename Option>
auto ForwardOption(Setopt setopt, Handle handle, Option option, va_list args) {
  int kind = static_cast<int>(option) / 10000 * 10000;
  if (kind == CURLOPTTYPE_LONG) return setopt(handle, option, va_arg(args, long));
  if (kind == CURLOPTTYPE_OFF_T) return setopt(handle, option, va_arg(args, curl_off_t));
  return setopt(handle, option, va_arg(args, void*));  // object, function or blob pointers
}

}  // namespace

bool LoadCurl(std::string* error) {
  if (Curl() != nullptr) return true;
  if (error != nullptr) *error = TheLibrary().error;
  return false;
}

}  // namespace keel

using keel::Curl;

extern "C" {

CURLcode curl_global_init(long) {
  // Done once by Load; later calls have nothing to do.
  return Curl() != nullptr ? CURLE_OK : CURLE_FAILED_INIT;
}

CURL* curl_easy_init(void) { return Curl() ? Curl()->curl_easy_init() : nullptr; }

void curl_easy_cleanup(CURL* easy) {
  if (Curl() != nullptr) Curl()->curl_easy_cleanup(easy);
}

void curl_easy_reset(CURL* easy) {
  if (Curl() != nullptr) Curl()->curl_easy_reset(easy);
}

CURLcode curl_easy_setopt(CURL* easy, CURLoption option, ...) {
  if (Curl() == nullptr) return CURLE_FAILED_INIT;
  va_list args;
  va_start(args, option);
  CURLcode code = keel::ForwardOption(Curl()->curl_easy_setopt, easy, option, args);
  va_end(args);
  return code;
}

CURLcode curl_easy_getinfo(CURL* easy, CURLINFO info, ...) {
  if (Curl() == nullptr) return CURLE_FAILED_INIT;
  va_list args;
  va_start(args, info);
  void* out = va_arg(args, void*);  // every CURLINFO_* takes a pointer to the result
  va_end(args);
  return Curl()->curl_easy_getinfo(easy, info, out);
}

CURLcode curl_easy_perform(CURL* easy) {
  return Curl() != nullptr ? Curl()->curl_easy_perform(easy) : CURLE_FAILED_INIT;
}

const char* curl_easy_strerror(CURLcode code) {
  return Curl() != nullptr ? Curl()->curl_easy_strerror(code) : "libcurl is not available";
}

time_t curl_getdate(const char* text, const time_t* unused) {
  return Curl() != nullptr ? Curl()->curl_getdate(text, unused) : -1;
}

CURLM* curl_multi_init(void) { return Curl() ? Curl()->curl_multi_init() : nullptr; }

CURLMcode curl_multi_cleanup(CURLM* multi) {
  return Curl() ? Curl()->curl_multi_cleanup(multi) : CURLM_BAD_HANDLE;
}

CURLMcode curl_multi_add_handle(CURLM* multi, CURL* easy) {
  return Curl() ? Curl()->curl_multi_add_handle(multi, easy) : CURLM_BAD_HANDLE;
}

CURLMcode curl_multi_remove_handle(CURLM* multi, CURL* easy) {
  return Curl() ? Curl()->curl_multi_remove_handle(multi, easy) : CURLM_BAD_HANDLE;
}

CURLMcode curl_multi_assign(CURLM* multi, curl_socket_t socket, void* data) {
  return Curl() ? Curl()->curl_multi_assign(multi, socket, data) : CURLM_BAD_HANDLE;
}

CURLMsg* curl_multi_info_read(CURLM* multi, int* left) {
  if (Curl() == nullptr) {
    *left = 0;
    return nullptr;
  }
  return Curl()->curl_multi_info_read(multi, left);
}

CURLMcode curl_multi_setopt(CURLM* multi, CURLMoption option, ...) {
  if (Curl() == nullptr) return CURLM_BAD_HANDLE;
  va_list args;
  va_start(args, option);
  CURLMcode code = keel::ForwardOption(Curl()->curl_multi_setopt, multi, option, args);
  va_end(args);
  return code;
}

CURLMcode curl_multi_socket_action(CURLM* multi, curl_socket_t socket, int mask, int* running) {
  return Curl() ? Curl()->curl_multi_socket_action(multi, socket, mask, running)
                : CURLM_BAD_HANDLE;
}

struct curl_slist* curl_slist_append(struct curl_slist* list, const char* text) {
  return Curl() ? Curl()->curl_slist_append(list, text) : nullptr;
}

void curl_slist_free_all(struct curl_slist* list) {
  if (Curl() != nullptr) Curl()->curl_slist_free_all(list);
}

}  // extern "C"
