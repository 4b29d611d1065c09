#pragma once
// WorkerLoop: what mufl-worker does on a Slurm node (docs/cluster.md, "The worker protocol").
// mufld opened a worker for one group and submitted a batch job that runs it; the loop
//  1. long-polls GET /v1/workers/{id}/work?wait=S until mufld gives it a round (200), says it is
//     done (410: the loop returns kExitDone), or refuses it (401/403/404: kExitRefused);
//  2. makes sure the files of the job's data set are under <data_dir>/datasets/<name>/
//     (WorkerOptions::datasets): as they are, or fetched from mufld (GET …/datasets/{name} and
//     …/{file}: worker/dataset_fetch.h), each checked against mufld's size and SHA-256;
//  3. fetches the round's checkpoint, and trains nothing unless its size and SHA-256 are the
//     ones the work item names;
//  4. builds the job (fl::FlJob::create), restores the checkpoint, sets the power limit the work
//     item names for the round (placement's choice: NVML on a GPU, the power model's limit
//     otherwise; the limit the job found is back after the round), runs one round metering the
//     device (scheduler/energy/meters.h), and PUTs the framed result: 8 bytes little-endian N,
//     N bytes of report JSON, the new checkpoint.
// The job is kept between rounds: when the next work item has the same config (equal JSON) and
// starts from the checkpoint this worker just made, nothing is downloaded and the data set is
// not loaded again. A round that cannot be trained (bad work item, a data set that cannot be
// fetched or whose download is not mufld's, wrong checkpoint, failed round) is dropped without
// a word to mufld, whose deadline takes it back; the loop polls again.
// A server that cannot be reached, or answers 5xx, is retried with backoff (1 s doubling up to
// max_backoff_seconds); after give_up_seconds without an answer the loop gives up.
//
// Thread safety: run() on one thread (it trains on it: LibTorch threads are set there); stop(),
// busy() and rounds_trained() from any thread.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "cli/http_client.h"
#include "cli/options.h"
#include "core/clock.h"
#include "worker/dataset_fetch.h"

namespace mufl::fl {
class FlJob;
}
namespace mufl::scheduler {
class EnergyMeter;
}

namespace mufl::worker {

struct WorkItem;  // the round to train, as mufld sent it (worker_loop.cpp)

// mufl-worker's exit codes (mufl-worker --help lists them). Never renumber one.
enum ExitCode : int {
  kExitDone = 0,         // mufld said the worker is done (410), or SIGTERM/SIGINT (scancel)
  kExitLocal = 1,        // this node cannot train: no meter for its device, an unreadable --ca-file
  kExitUsage = 2,        // bad flags or environment
  kExitRefused = 3,      // mufld does not know this worker or its token (401, 403, 404)
  kExitUnreachable = 5,  // no answer from mufld for give_up_seconds
  kExitTls = 8,          // https: the server's certificate was refused or the handshake failed
};

struct WorkerOptions {
  cli::ServerUrl url;      // mufld's base URL (MUFL_SERVER_URL / --server)
  std::string server;      // the same URL as text, for messages
  std::string worker_id;   // "wrk_…" (MUFL_WORKER_ID / --worker-id); safe in a URL path
  std::string token;       // the worker's bearer token; never logged
  std::string ca_file;     // PEM CA for https://; default "": the system's trust store
  std::string data_dir = "var";  // data sets are in <data_dir>/datasets/<name>/
  // Where the data set's files come from (--datasets): kAuto (default) reads them from
  // data_dir when all are there, else fetches them from mufld into it; kShared never fetches;
  // kHttp checks them against mufld's manifest for every new job and fetches what differs.
  DatasetSource datasets = DatasetSource::kAuto;
  // LibTorch device. Default "": cuda:0 when LibTorch sees a GPU (Slurm's CUDA_VISIBLE_DEVICES
  // leaves only the job's GPU), else cpu.
  std::string device;
  int torch_threads = 0;          // LibTorch intra-op threads; 0 leaves LibTorch's default
  int poll_wait_seconds = 30;     // the long poll's wait, 0 to 60
  int give_up_seconds = 600;      // gives up after this long without any answer from mufld
  int max_backoff_seconds = 30;   // the longest pause between tries to reach mufld
  // How the device is metered: "auto" (NVML for a GPU, RAPL for the CPU, else the power model)
  // or "model". A GPU's NVML index is that of cuda:0, right where Slurm constrains the job's
  // devices (cgroup ConstrainDevices), so that NVML sees only the job's GPU.
  std::string energy_meter = "auto";
  // The power model's profile (docs/energy.md). Default "": "V100" on a GPU, "cpu" on the CPU.
  std::string power_profile;
  std::string host;  // this node's name, sent with every result (main: $SLURMD_NODENAME, else gethostname)
};

class WorkerLoop {
 public:
  using Log = std::function<void(const std::string&)>;
  // Waits `duration` (or less, once stop() is called). Tests pass one that advances a
  // ManualClock; the default sleeps.
  using Pause = std::function<void(std::chrono::milliseconds duration)>;

  // `log` receives one line per event worth an operator's attention. `clock` (which must outlive
  // the loop) times rounds and the give-up deadline.
  WorkerLoop(WorkerOptions options, Log log, const Clock& clock = SystemClock::instance(), Pause pause = {});
  ~WorkerLoop();
  WorkerLoop(const WorkerLoop&) = delete;
  WorkerLoop& operator=(const WorkerLoop&) = delete;

  // Runs the loop until mufld says done, stop(), a refusal or giving up; blocks all along.
  // Returns the exit code (kExitDone on 410 and on stop()).
  int run();
  // Asks run() to return at its next step; a round in training is abandoned unsent.
  void stop() { stop_.store(true); }
  // True while a round trains (a stop then abandons it first).
  bool busy() const { return busy_.load(); }
  // Rounds this loop has started training (failed and abandoned ones included).
  int64_t rounds_trained() const { return rounds_trained_.load(); }

 private:
  // What a step of a round leaves the loop to do; kExit has set exit_code_.
  enum class Next { kTrain, kPollAgain, kExit };

  Status open_meter();
  int poll_loop();
  // One request; nullopt when stop() came, the give-up deadline passed or TLS failed (then
  // exit_code_ says which). 5xx and unreachable servers are retried with backoff.
  std::optional<client::Response> call(const std::string& method, const std::string& target,
                                       const std::string& body, std::chrono::seconds timeout);
  client::ClientOptions client_options(std::chrono::seconds timeout) const;
  Next work_on(const std::string& body);
  // Leaves job_ in the state of the work item's checkpoint: the kept job, or a new one.
  Next ready_job(const WorkItem& work);
  Next download_and_restore(const WorkItem& work);
  // The work item's data set on this node as options_.datasets says (kTrain when ready).
  Next ready_dataset(const WorkItem& work);
  Next fetch_dataset(const std::string& round, const std::string& dataset, const std::string& dir);
  // The manifest's files into `dir` (worker/dataset_fetch.h: fetch_dataset_files).
  Result<FetchReport> fetch_files(const std::string& dataset, const std::string& dir, const std::string& manifest_body);
  // GET …/datasets/{dataset}/{file}, streamed to `on_data` (worker/dataset_fetch.h: DownloadFile).
  Status download_file(const std::string& dataset, const std::string& file,
                       const std::function<bool(std::string_view)>& on_data);
  Next train_and_send(const WorkItem& work);
  Next send_result(const WorkItem& work, const nlohmann::json& report, const std::string& checkpoint);
  Next refused(const std::string& what, const client::Response& r);
  void drop_job();
  // Sets the device's power limit to placement's choice for the round (clamped to its range),
  // or back to the one the job found when the round names none; a device whose limit cannot be
  // set trains at its own, and a refusal (NVML wants root) is logged, not fatal.
  void apply_power_limit(std::optional<double> watts);
  void pause_for(std::chrono::milliseconds duration);
  void say(const std::string& line) { log_(line); }
  std::string worker_path() const;

  WorkerOptions options_;
  Log log_;
  const Clock& clock_;
  Pause pause_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> busy_{false};
  std::atomic<int64_t> rounds_trained_{0};
  std::unique_ptr<scheduler::EnergyMeter> meter_;
  int64_t last_answer_ns_ = 0;  // clock_.monotonic_ns() of mufld's last answer
  int exit_code_ = kExitDone;
  std::optional<double> found_limit_watts_;  // the device's limit before the first change
  bool limit_unsettable_said_ = false;
  // The kept job, the config JSON it was built from, and the SHA-256 of the checkpoint it is in.
  std::unique_ptr<fl::FlJob> job_;
  nlohmann::json job_config_;
  std::string job_sha_;
  // Data sets this loop found or made complete: not checked again for its next jobs.
  std::set<std::string> datasets_ready_;
};

}  // namespace mufl::worker
