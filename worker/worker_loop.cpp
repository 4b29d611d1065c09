#include "worker/worker_loop.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <thread>

#include "core/dataset_files.h"
#include "core/file_io.h"
#include "fl/fl_job.h"
#include "fl/job_wire.h"
#include "protocol/result_frame.h"
#include "scheduler/energy/energy_meter.h"
#include "scheduler/energy/meters.h"

namespace mufl::worker {

using nlohmann::json;

// The round to train, as GET …/work sent it.
struct WorkItem {
  int64_t round = 0;
  json config_json;  // as sent: a kept job is reused only for an equal one
  fl::JobConfig config;
  std::string checkpoint_sha256;
  uint64_t checkpoint_bytes = 0;
  std::optional<double> power_limit_watts;  // placement's limit for the GPU; absent: its highest
};

namespace {

// A checkpoint moves once per round; a big one over a busy shared network may take minutes.
constexpr std::chrono::seconds kTransferTimeout{300};
// A data set file's download fails when no bytes came for this long (it may take minutes).
constexpr std::chrono::seconds kDownloadIdleTimeout{60};
// After a round that could not be trained, so that a round mufld keeps offering is not retried
// in a tight loop until its deadline takes it back.
constexpr std::chrono::milliseconds kProblemPause{1000};

// Lenient about keys it does not know (mufld may add some); the config inside is read strictly
// by fl/job_wire.h.
Result<WorkItem> parse_work_item(const std::string& body) {
  const json j = json::parse(body, nullptr, false);
  if (!j.is_object()) return Status::invalid_argument("the work item is not a JSON object");
  WorkItem w;
  if (!j.contains("round") || !j["round"].is_number_integer() || j["round"].get<int64_t>() < 1)
    return Status::invalid_argument("\"round\" is not an integer from 1");
  w.round = j["round"].get<int64_t>();
  if (!j.contains("checkpoint_sha256") || !j["checkpoint_sha256"].is_string() ||
      !is_sha256_hex(j["checkpoint_sha256"].get<std::string>()))
    return Status::invalid_argument("\"checkpoint_sha256\" is not 64 lower-case hex digits");
  w.checkpoint_sha256 = j["checkpoint_sha256"].get<std::string>();
  if (!j.contains("checkpoint_bytes") || !j["checkpoint_bytes"].is_number_unsigned())
    return Status::invalid_argument("\"checkpoint_bytes\" is not a non-negative integer");
  w.checkpoint_bytes = j["checkpoint_bytes"].get<uint64_t>();
  if (j.contains("power_limit_watts")) {
    if (!j["power_limit_watts"].is_number() || !(j["power_limit_watts"].get<double>() > 0) ||
        !std::isfinite(j["power_limit_watts"].get<double>()))
      return Status::invalid_argument("\"power_limit_watts\" is not a positive number");
    w.power_limit_watts = j["power_limit_watts"].get<double>();
  }
  if (!j.contains("config")) return Status::invalid_argument("\"config\" is missing");
  auto config = fl::job_config_from_json(j["config"]);
  if (!config.ok()) {
    const Status refused = config.status();  // a copy: field_errors() refers into it
    const auto& fields = refused.field_errors();
    return Status::invalid_argument("\"config\": " + refused.message() +
                                    (fields.empty() ? "" : " (" + fields.front().field + ": " + fields.front().detail + ")"));
  }
  w.config_json = j["config"];
  w.config = *config;
  return w;
}

// The result body (docs/cluster.md): 8 bytes N little-endian, N bytes of report, the checkpoint.
// A problem+json body's detail and field errors, else the start of the body.
std::string problem_text(const std::string& body) {
  const json j = json::parse(body, nullptr, false);
  if (!j.is_object()) return body.empty() ? "no body" : body.substr(0, 200);
  std::string text = j.contains("detail") && j["detail"].is_string() ? j["detail"].get<std::string>()
                     : j.contains("title") && j["title"].is_string() ? j["title"].get<std::string>()
                                                                      : j.dump();
  if (j.contains("errors") && j["errors"].is_array())
    for (const auto& e : j["errors"])
      if (e.is_object()) text += "; " + e.value("field", "?") + ": " + e.value("detail", "?");
  return text;
}

bool is_refusal(int status) { return status == 401 || status == 403 || status == 404; }

std::string fixed(double value, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  return buf;
}

}  // namespace

WorkerLoop::WorkerLoop(WorkerOptions options, Log log, const Clock& clock, Pause pause)
    : options_(std::move(options)), log_(std::move(log)), clock_(clock), pause_(std::move(pause)) {
  if (!pause_)
    pause_ = [this](std::chrono::milliseconds duration) {
      // Short slices, so that a stop() ends the wait at once.
      const int64_t until_ns = clock_.monotonic_ns() + duration.count() * 1'000'000;
      while (!stop_ && clock_.monotonic_ns() < until_ns) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    };
}

WorkerLoop::~WorkerLoop() = default;

int WorkerLoop::run() {
  last_answer_ns_ = clock_.monotonic_ns();
  if (options_.device.empty()) options_.device = fl::cuda_device_count() > 0 ? "cuda:0" : "cpu";
  if (Status s = fl::set_torch_threads(options_.torch_threads); !s.is_ok()) say(s.message());
  if (Status s = open_meter(); !s.is_ok()) {
    say("cannot meter " + options_.device + ": " + s.message());
    return kExitLocal;
  }
  say("worker " + options_.worker_id + " of " + options_.server + ": trains on " + options_.device + " with " +
      std::to_string(fl::torch_threads()) + " LibTorch threads, data sets under " + options_.data_dir + " (" +
      dataset_source_name(options_.datasets) + "), energy metered by " + meter_->name());
  const int code = poll_loop();
  apply_power_limit(std::nullopt);  // the GPU's limit as the job found it
  return code;
}

void WorkerLoop::apply_power_limit(std::optional<double> watts) {
  const auto limits = meter_->power_limits();
  if (!limits) {
    if (watts && !limit_unsettable_said_) say("this device's power limit cannot be set; the round trains at its own");
    limit_unsettable_said_ = limit_unsettable_said_ || watts.has_value();
    return;
  }
  if (!found_limit_watts_) found_limit_watts_ = limits->current_watts;
  const double target = watts ? std::clamp(*watts, limits->min_watts, limits->max_watts) : *found_limit_watts_;
  if (target == limits->current_watts) return;
  if (Status s = meter_->set_power_limit(target); !s.is_ok()) {
    say("cannot set the power limit to " + fixed(target, 0) + " W (" + s.message() + "); training at " +
        fixed(limits->current_watts, 0) + " W");
    return;
  }
  say("power limit " + fixed(target, 0) + " W" + (watts ? " (placement's choice)" : " (as the job found it)"));
}

Status WorkerLoop::open_meter() {
  scheduler::MeterOptions mo;
  mo.mode = options_.energy_meter;
  const std::string profile =
      !options_.power_profile.empty() ? options_.power_profile : options_.device == "cpu" ? "cpu" : "V100";
  mo.cpu_profile = mo.gpu_profile = profile;
  auto metered = scheduler::make_metered_devices({{"worker", options_.device}}, mo, clock_);
  if (!metered.ok()) return metered.status();
  meter_ = std::move(metered->front().meter);
  return Status::ok();
}

std::string WorkerLoop::worker_path() const { return "/v1/workers/" + options_.worker_id; }

int WorkerLoop::poll_loop() {
  const std::string target = worker_path() + "/work?wait=" + std::to_string(options_.poll_wait_seconds);
  const auto poll_timeout = std::chrono::seconds(options_.poll_wait_seconds + 30);
  while (!stop_) {
    auto r = call("GET", target, "", poll_timeout);
    if (!r) return exit_code_;
    if (r->status == 204) continue;
    if (r->status == 410) {
      say("mufld says worker " + options_.worker_id + " is done");
      return kExitDone;
    }
    if (is_refusal(r->status)) {
      refused("mufld refused the poll for work", *r);
      return exit_code_;
    }
    if (r->status != 200) {
      say("the poll for work got HTTP " + std::to_string(r->status) + " (" + problem_text(r->body) +
          "); polling again");
      pause_for(kProblemPause);
      continue;
    }
    if (work_on(r->body) == Next::kExit) return exit_code_;
  }
  return kExitDone;
}

client::ClientOptions WorkerLoop::client_options(std::chrono::seconds timeout) const {
  client::ClientOptions o;
  o.timeout = timeout;
  o.tls = options_.url.tls;
  o.ca_file = options_.ca_file;
  return o;
}

std::optional<client::Response> WorkerLoop::call(const std::string& method, const std::string& target,
                                                 const std::string& body, std::chrono::seconds timeout) {
  const client::ClientOptions o = client_options(timeout);
  std::map<std::string, std::string> headers{{"Authorization", "Bearer " + options_.token}};
  if (!body.empty()) headers["Content-Type"] = "application/octet-stream";
  const int64_t give_up_ns = int64_t{options_.give_up_seconds} * 1'000'000'000;
  for (int attempt = 0;; ++attempt) {
    if (stop_) {
      exit_code_ = kExitDone;
      return std::nullopt;
    }
    client::HttpClient http(options_.url.host, options_.url.port, o);
    auto r = http.send(method, options_.url.prefix + target, body, headers);
    if (r.ok() && r->status < 500) {
      last_answer_ns_ = clock_.monotonic_ns();
      return std::move(*r);
    }
    if (!r.ok() && (r.status().code() == Status::Code::kUnauthenticated || r.status().is_invalid_argument())) {
      say("cannot talk to " + options_.server + ": " + r.status().message());
      exit_code_ = r.status().code() == Status::Code::kUnauthenticated ? kExitTls : kExitLocal;
      return std::nullopt;
    }
    const int64_t left_ns = give_up_ns - (clock_.monotonic_ns() - last_answer_ns_);
    const std::string why = r.ok() ? "mufld answered HTTP " + std::to_string(r->status) + " (" +
                                         problem_text(r->body) + ")"
                                   : "cannot reach mufld: " + r.status().message();
    if (left_ns <= 0) {
      say(why + "; no answer for " + std::to_string(options_.give_up_seconds) + " s: giving up");
      exit_code_ = kExitUnreachable;
      return std::nullopt;
    }
    // 1, 2, 4 … s up to max_backoff_seconds, and never past the give-up deadline.
    const int64_t backoff_ms = std::min<int64_t>(int64_t{options_.max_backoff_seconds} * 1000,
                                                 int64_t{1000} << std::min(attempt, 20));
    const auto pause = std::chrono::milliseconds(std::min(backoff_ms, (left_ns + 999'999) / 1'000'000));
    say(why + "; trying again in " + fixed(pause.count() / 1000.0, 1) + " s");
    pause_for(pause);
  }
}

WorkerLoop::Next WorkerLoop::work_on(const std::string& body) {
  auto work = parse_work_item(body);
  if (!work.ok()) {
    say("a work item that cannot be read: " + work.status().message() + "; polling again");
    pause_for(kProblemPause);
    return Next::kPollAgain;
  }
  if (Next next = ready_job(*work); next != Next::kTrain) return next;
  return train_and_send(*work);
}

WorkerLoop::Next WorkerLoop::ready_job(const WorkItem& work) {
  const std::string round = "round " + std::to_string(work.round);
  if (job_ && job_sha_ == work.checkpoint_sha256 && job_config_ == work.config_json) {
    say(round + ": goes on from the checkpoint this worker sent (kept in memory)");
  } else {
    drop_job();
    if (Next next = download_and_restore(work); next != Next::kTrain) return next;
  }
  // The result's round is the checkpoint's next one: a work item that says otherwise would be
  // refused after the training, so it is not trained.
  const int64_t next_round = job_->config().round_offset + job_->rounds_done() + 1;
  if (next_round != work.round) {
    say(round + ": its checkpoint's next round is " + std::to_string(next_round) + "; not training it");
    pause_for(kProblemPause);
    return Next::kPollAgain;
  }
  return Next::kTrain;
}

WorkerLoop::Next WorkerLoop::download_and_restore(const WorkItem& work) {
  const std::string round = "round " + std::to_string(work.round);
  if (Next next = ready_dataset(work); next != Next::kTrain) return next;
  auto r = call("GET", worker_path() + "/rounds/" + std::to_string(work.round) + "/checkpoint", "", kTransferTimeout);
  if (!r) return Next::kExit;
  if (is_refusal(r->status)) return refused("mufld refused the checkpoint of " + round, *r);
  if (r->status == 409) {
    say(round + ": taken back before its checkpoint came; polling again");
    return Next::kPollAgain;
  }
  if (r->status != 200) {
    say(round + ": its checkpoint got HTTP " + std::to_string(r->status) + " (" + problem_text(r->body) +
        "); polling again");
    pause_for(kProblemPause);
    return Next::kPollAgain;
  }
  const std::string sha = sha256_hex(r->body);
  if (r->body.size() != work.checkpoint_bytes || sha != work.checkpoint_sha256) {
    say(round + ": the checkpoint that came (" + std::to_string(r->body.size()) + " bytes, SHA-256 " + sha +
        ") is not the one the work item names (" + std::to_string(work.checkpoint_bytes) + " bytes, " +
        work.checkpoint_sha256 + "); not training it");
    pause_for(kProblemPause);
    return Next::kPollAgain;
  }
  fl::RuntimeOptions runtime;
  runtime.data_dir = options_.data_dir;
  runtime.device = options_.device;
  auto job = fl::FlJob::create(work.config, runtime);
  Status restored = job.ok() ? (*job)->restore(r->body) : job.status();
  if (!restored.is_ok()) {
    say(round + ": cannot build its job from the checkpoint: " + restored.message() + "; not training it");
    pause_for(kProblemPause);
    return Next::kPollAgain;
  }
  job_ = std::move(*job);
  job_config_ = work.config_json;
  job_sha_ = work.checkpoint_sha256;
  return Next::kTrain;
}

WorkerLoop::Next WorkerLoop::ready_dataset(const WorkItem& work) {
  const std::string& name = work.config.dataset;
  const auto files = dataset_file_names(name);
  // No files to fetch (synthetic, a federation's job), or an unknown name (FlJob::create says so).
  if (!files || files->empty() || datasets_ready_.count(name)) return Next::kTrain;
  const std::string dir = dataset_dir(options_.data_dir, name);
  if (options_.datasets == DatasetSource::kShared ||
      (options_.datasets == DatasetSource::kAuto && all_files_present(dir, *files))) {
    datasets_ready_.insert(name);
    return Next::kTrain;
  }
  return fetch_dataset("round " + std::to_string(work.round), name, dir);
}

WorkerLoop::Next WorkerLoop::fetch_dataset(const std::string& round, const std::string& dataset,
                                           const std::string& dir) {
  const std::string what = round + ": data set " + dataset;
  auto r = call("GET", worker_path() + "/datasets/" + dataset, "", kTransferTimeout);
  if (!r) return Next::kExit;
  if (r->status == 401 || r->status == 403) return refused("mufld refused the manifest of data set " + dataset, *r);
  const int64_t started_ns = clock_.monotonic_ns();
  auto fetched = r->status == 200 ? fetch_files(dataset, dir, r->body)
                                  : Result<FetchReport>(Status::unavailable("its manifest got HTTP " +
                                                                            std::to_string(r->status) + " (" +
                                                                            problem_text(r->body) + ")"));
  if (stop_) {
    say(what + ": fetch abandoned (stopping)");
    exit_code_ = kExitDone;
    return Next::kExit;
  }
  if (fetched.status().code() == Status::Code::kPermissionDenied) {
    say(what + ": " + fetched.status().message() + "; mufld does not know worker " + options_.worker_id +
        " or its token, so this worker stops");
    exit_code_ = kExitRefused;
    return Next::kExit;
  }
  if (!fetched.ok()) {
    say(what + " cannot be fetched into " + dir + ": " + fetched.status().message() + "; not training it");
    pause_for(kProblemPause);
    return Next::kPollAgain;
  }
  const double seconds = static_cast<double>(clock_.monotonic_ns() - started_ns) / 1e9;
  say(what + ": " + std::to_string(fetched->files_fetched) + " files fetched from mufld (" +
      std::to_string(fetched->bytes_fetched) + " bytes in " + fixed(seconds, 2) + " s), " +
      std::to_string(fetched->files_kept) + " already in " + dir);
  datasets_ready_.insert(dataset);
  return Next::kTrain;
}

Result<FetchReport> WorkerLoop::fetch_files(const std::string& dataset, const std::string& dir,
                                            const std::string& manifest_body) {
  auto manifest = parse_dataset_manifest(manifest_body, dataset);
  if (!manifest.ok()) return manifest.status();
  return fetch_dataset_files(dir, *manifest, [this, &dataset](const std::string& file, const auto& on_data) {
    return download_file(dataset, file, on_data);
  });
}

Status WorkerLoop::download_file(const std::string& dataset, const std::string& file,
                                 const std::function<bool(std::string_view)>& on_data) {
  client::HttpClient http(options_.url.host, options_.url.port, client_options(kTransferTimeout));
  const std::string target = options_.url.prefix + worker_path() + "/datasets/" + dataset + "/" + file;
  auto r = http.stream(target, {{"Authorization", "Bearer " + options_.token}},
                       [](const client::Response&) { return true; },
                       [this, &on_data](std::string_view piece) { return !stop_ && on_data(piece); },
                       kDownloadIdleTimeout);
  if (!r.ok()) return r.status();
  last_answer_ns_ = clock_.monotonic_ns();
  if (r->status == 401 || r->status == 403)
    return Status::permission_denied("mufld refused the download of " + file + " (HTTP " + std::to_string(r->status) +
                                     "): " + problem_text(r->body));
  if (r->status != 200)
    return Status::unavailable(file + " got HTTP " + std::to_string(r->status) + " (" + problem_text(r->body) + ")");
  return Status::ok();
}

WorkerLoop::Next WorkerLoop::train_and_send(const WorkItem& work) {
  const std::string round = "round " + std::to_string(work.round);
  busy_ = true;
  ++rounds_trained_;
  apply_power_limit(work.power_limit_watts);
  meter_->set_busy(true);
  const double joules_before = meter_->energy_joules();
  const int64_t started_ns = clock_.monotonic_ns();
  auto report = job_->run_round([this] { return stop_.load(); });
  const double seconds = static_cast<double>(clock_.monotonic_ns() - started_ns) / 1e9;
  const double joules = meter_->energy_joules() - joules_before;
  meter_->set_busy(false);
  // Only for the round: an idle worker (which SIGTERM ends at once) leaves the GPU as it found it.
  apply_power_limit(std::nullopt);
  busy_ = false;
  if (stop_) {
    say(round + ": abandoned (stopping)");
    exit_code_ = kExitDone;
    return Next::kExit;
  }
  auto checkpoint = report.ok() ? job_->checkpoint() : Result<std::string>(report.status());
  if (!checkpoint.ok()) {
    // The job's state is unspecified after a failure: the next round builds a new one.
    say(round + ": training failed: " + checkpoint.status().message() + "; dropping it");
    drop_job();
    pause_for(kProblemPause);
    return Next::kPollAgain;
  }
  job_sha_ = sha256_hex(*checkpoint);
  const json result = {{"report", fl::round_report_to_json(*report)},
                       {"checkpoint_sha256", job_sha_},
                       {"joules", joules},
                       {"meter", meter_->name()},
                       {"seconds", seconds},
                       {"host", options_.host}};
  say(round + ": trained in " + fixed(seconds, 2) + " s, " + fixed(joules, 1) + " J (" + meter_->name() +
      "), train loss " + fixed(report->train_loss, 4) + "; sending it");
  return send_result(work, result, *checkpoint);
}

WorkerLoop::Next WorkerLoop::send_result(const WorkItem& work, const json& result, const std::string& checkpoint) {
  const std::string round = "round " + std::to_string(work.round);
  const std::string report = result.dump(-1, ' ', false, json::error_handler_t::replace);
  auto r = call("PUT", worker_path() + "/rounds/" + std::to_string(work.round),
                protocol::make_result_frame(report, checkpoint),
                kTransferTimeout);
  if (!r) return Next::kExit;
  if (r->status == 204) {
    say(round + ": recorded");
    return Next::kPollAgain;
  }
  if (is_refusal(r->status)) return refused("mufld refused the result of " + round, *r);
  if (r->status == 409) {
    say(round + ": no longer wanted (taken back, or already reported); dropping it");
    return Next::kPollAgain;
  }
  say(round + ": mufld refused the result (HTTP " + std::to_string(r->status) + "): " + problem_text(r->body));
  pause_for(kProblemPause);
  return Next::kPollAgain;
}

WorkerLoop::Next WorkerLoop::refused(const std::string& what, const client::Response& r) {
  say(what + " (HTTP " + std::to_string(r.status) + "): " + problem_text(r.body) + "; mufld does not know worker " +
      options_.worker_id + " or its token, so this worker stops");
  exit_code_ = kExitRefused;
  return Next::kExit;
}

void WorkerLoop::drop_job() {
  job_.reset();
  job_config_ = json();
  job_sha_.clear();
}

void WorkerLoop::pause_for(std::chrono::milliseconds duration) { pause_(duration); }

}  // namespace mufl::worker
