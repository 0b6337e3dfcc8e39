#pragma once
// In-process baselines of agent_bench: what a bare oneTBB flow graph needs
// for N parallel calls of fixed latency, and the LangGraph-style sequential
// loop. Each returns seconds, or -1 when a call failed.

#include <string>

namespace keel::bench {

// The body of one chat request for call `i` (an OpenAI chat completion).
std::string ChatBody(int i);

// `n` async_nodes started together on a `workers`-thread arena; each hands
// its gateway to one timer thread, which answers it after `latency_s`.
// From building the graph to the last answer.
double AsyncTimerRun(int n, double latency_s, int workers);

// The same graph; each async_node posts a chat request to `url` through one
// libcurl multi handle driven by a thread of its own: new connections over
// HTTP/1.1 or, with a `ca_file` (an https `url`), multiplexed on one HTTP/2
// connection.
double AsyncCurlRun(int n, const std::string& url, int workers, const std::string& ca_file = "");

// `calls` blocking chat requests to `url`, one after another, on one curl
// easy handle (its connection reused), as a sequential agent loop makes them.
double SequentialRun(int calls, const std::string& url);

}  // namespace keel::bench
