#pragma once
// CurlLibrary: libcurl, loaded with dlopen the first time a curl function is
// called, instead of at process start.
//
// libcurl and its TLS, HTTP/2, IDN, LDAP, SSH and Kerberos dependencies are
// about thirty shared libraries; loading and relocating them is most of the
// start-up time of a command that never makes an HTTP request (`keel
// validate`, `keel runs`, a run without agents). curl_library.cc defines the
// curl_* functions keel calls (the names and signatures of <curl/curl.h>, so
// the callers are plain libcurl code) as forwarders to the library's own,
// resolved on first use. keel_nodes does not link libcurl.
//
// Thread-safety: any thread may call any function; the library is loaded
// once (std::call_once) and never unloaded.

#include <string>

namespace keel {

// Loads libcurl unless it is loaded. True when it is usable; otherwise false
// with *error (when not null) saying what dlopen or dlsym reported. Every
// forwarder fails (a null handle, an error code) while libcurl cannot be
// loaded.
bool LoadCurl(std::string* error);

}  // namespace keel
