#pragma once
// Agent: what mufl-client does, as a loop (docs/clients.md, "mufl-client"):
//  1. check its own data (--data), so that a bad directory fails before anything is sent;
//  2. load its client token from --token-file, or enroll with the enrollment token and keep the
//     new token there (mode 0600, written atomically);
//  3. check the token and the federation's schema against its data (GET /v1/clients/me);
//  4. long-poll for work until told to stop (the poll is also its heartbeat), and train each
//     lease it gets with fl::train_assignment, the simulation's own training code, metering its
//     own device over each lease (scheduler/energy/meters.h) and reporting the joules.
// A server that cannot be reached, or answers 5xx, is retried with exponential backoff and
// jitter up to --max-backoff; a refusal (401 revoked, 409 name taken) ends the agent.
//
// Thread safety: run() on one thread; stop() from any thread (a signal handler's thread).
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/http_client.h"
#include "core/result.h"
#include "edge/options.h"
#include "fl/assignment.h"
#include "fl/client_data.h"
#include "scheduler/energy/energy_meter.h"

namespace mufl::edge {

// mufl-client's exit codes (mufl-client --help lists them). Never renumber one.
enum ExitCode : int {
  kExitOk = 0,       // stopped: SIGTERM, SIGINT, or --once done
  kExitLocal = 1,    // the data directory or the token file is unusable
  kExitUsage = 2,    // bad flags
  kExitRefused = 3,  // the server refused: revoked, bad or expired enrollment token, name taken, schema mismatch
  kExitTls = 8,      // https: the server's certificate was refused or the handshake failed
};

class Agent {
 public:
  // `log` receives one line per event worth a user's attention (spdlog in main).
  Agent(Options options, std::function<void(const std::string&)> log);

  // Runs until stop(), --once, or a refusal. Returns the exit code.
  int run();
  // Asks run() to return at its next step. Thread-safe.
  void stop() { stop_.store(true); }
  // True while it trains a lease (a stop then abandons the lease first).
  bool busy() const { return busy_.load(); }

 private:
  struct Reply {
    int status = 0;
    nlohmann::json body;  // parsed when JSON, else null
    std::string raw;      // the body as it came
    std::string sha256_header;  // X-Content-SHA256, when sent
  };
  // One request. nullopt (after logging why) when stop() was called while retrying; retries
  // with backoff while the server cannot be reached or answers 5xx. `fatal` gets TLS failures.
  std::optional<Reply> call(const std::string& method, const std::string& target, const std::string& body,
                            const std::string& token, const std::string& content_type = "application/json");
  // Chooses the meter of the client's device (--energy-meter, --power-profile).
  Status open_meter();
  int load_or_enroll();
  int check_identity();
  int poll_loop();
  // Trains one lease (docs/clients.md): its weights, the assignment on this client's data, the
  // update. A lease that cannot be trained is left to expire; the loop goes on.
  void work_on(const nlohmann::json& lease);
  void backoff(int attempt);
  void say(const std::string& line) { log_(line); }
  int refused(const std::string& what, const Reply& r);

  Options options_;
  std::function<void(const std::string&)> log_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> busy_{false};
  cli::ServerUrl url_;
  std::string token_;
  fl::ClientDataSummary data_;
  std::unique_ptr<scheduler::EnergyMeter> meter_;
  fl::EnergyProbe probe_;  // reads meter_
  int exit_code_ = kExitOk;  // set by call() on a TLS failure
  bool fatal_ = false;
};

}  // namespace mufl::edge
