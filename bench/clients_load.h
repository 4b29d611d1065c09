#pragma once
// bench/clients' load generator: many enrolled federation clients in one process, without
// torch. Each holds one keep-alive connection to mufld and walks the client protocol
// (docs/clients.md): long poll GET /v1/clients/me/work?wait=S, GET the lease's weights, PUT a
// precomputed update (the round's global weights echoed back, with a valid report in the
// safetensors metadata `mufl.report`), poll again. Each client has two connections: its long
// polls on one thread, its transfers on another (clients_load.cpp says why).
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace mufl::bench {

// What the clients saw, read after stop().
struct LoadStats {
  std::vector<double> weights_ms;  // each GET /v1/work/{id}/weights, request written → body read
  std::vector<double> update_ms;   // each PUT /v1/work/{id}/update answered 200
  // Per lease round ("round" and "attempt" of the lease): when each client's poll was answered
  // with that round's lease (its response read, before the client parses it), ms since start().
  std::map<std::pair<int64_t, int>, std::vector<double>> delivered_ms;
  // Each lease's latency: the client's clock when its poll was answered minus the lease's
  // "created" (mufld's clock as it built the lease, before committing it; one host, one clock).
  std::vector<double> lease_ms;
  // Per lease round: the first update written and the last 200 for it, ms since start().
  std::map<std::pair<int64_t, int>, std::pair<double, double>> upload_window_ms;
  int64_t polls_empty = 0, leases = 0, updates_accepted = 0, failures = 0;
  uint64_t weights_bytes = 0, update_bytes = 0;  // of the last lease (the same model every round)
  std::string first_failure;
};

class LoadGenerator {
 public:
  // `tokens`: one client token each. `wait_seconds`: the long poll's `wait`.
  LoadGenerator(uint16_t port, std::vector<std::string> tokens, int wait_seconds);
  ~LoadGenerator();
  LoadGenerator(const LoadGenerator&) = delete;
  LoadGenerator& operator=(const LoadGenerator&) = delete;

  // Connects every client and starts polling, on two threads of its own.
  void start();
  // Closes every connection and joins the thread; stats() is final afterwards.
  void stop();
  // Clients whose first poll has been written (cheap to read while running).
  int polling() const;
  const LoadStats& stats() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  std::vector<std::string> tokens_;
  std::vector<std::thread> threads_;
};

}  // namespace mufl::bench
