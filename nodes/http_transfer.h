#pragma once
// Transfer: one HTTP request of HttpLoop from Send to its completion, and the
// libcurl easy-handle set-up and failure classification that go with it.
// Created by HttpLoop::Send on any thread; once queued it belongs to the
// loop, and once added to the multi handle to the I/O thread alone.

#include <curl/curl.h>

#include <cstdint>
#include <string>

#include "nodes/http_loop.h"

namespace keel {

struct Transfer {
  uint64_t id = 0;
  HttpRequest request;
  HttpDone done;
  double sent_at = 0;         // Clock::Now() at Send
  uint64_t subscription = 0;  // on request.cancel; 0: none
  CURL* easy = nullptr;
  curl_slist* header_list = nullptr;
  long timeout_ms = 0;  // CURLOPT_TIMEOUT_MS; 0: none
  char error[CURL_ERROR_SIZE] = {};
  bool too_large = false;  // the body passed request.max_body_bytes: the transfer was aborted
  HttpResponse response;
};

// Sets `easy` up to perform `t`'s request into `t->response` (t->easy is
// `easy`; t->timeout_ms is already set). Builds t->header_list.
void PrepareEasy(CURL* easy, Transfer* t);

// The status for a transfer curl ended with `code` (not CURLE_OK) after
// `waited` seconds: kTimeout when the request's own deadline passed,
// kPermanent when no retry can help (a malformed URL, a scheme other than
// http or https, a certificate problem, a body over the limit), kTransient
// otherwise. The message names method and URL (without
// credentials or query).
Status TransferFailure(const Transfer& t, CURLcode code, double waited);

// Ok for an http:// or https:// URL; kPermanent for any other, which is
// never handed to curl.
Status CheckScheme(const HttpRequest& request);

// "POST https://host/path: timed out after 1.5 s before it was sent".
Status TimedOutBeforeSent(const HttpRequest& request, double waited);

}  // namespace keel
