#include "edge/agent.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "cli/atomic_file.h"
#include "core/clock.h"
#include "core/file_io.h"
#include "fl/assignment.h"
#include "fl/fl_job.h"
#include "scheduler/energy/meters.h"

namespace mufl::edge {
namespace {

std::string detail_of(const nlohmann::json& body) {
  if (body.is_object() && body.contains("detail") && body["detail"].is_string()) return body["detail"];
  return "no detail";
}

Result<std::string> read_token_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::not_found(path);
  std::string token;
  std::getline(in, token);
  if (token.empty()) return Status::invalid_argument(path + " is empty; delete it to enroll again");
  return token;
}

}  // namespace

Agent::Agent(Options options, std::function<void(const std::string&)> log)
    : options_(std::move(options)), log_(std::move(log)), url_(options_.url) {}

int Agent::run() {
  if (Status s = fl::set_torch_threads(options_.threads); !s.is_ok()) say(s.message());
  auto data = fl::inspect_client_data(options_.data_dir);
  if (!data.ok()) {
    say("cannot use the data in " + options_.data_dir + ": " + data.status().message());
    return kExitLocal;
  }
  data_ = *data;
  if (Status s = open_meter(); !s.is_ok()) {
    say("cannot meter this device: " + s.message());
    return kExitUsage;
  }
  say("data: " + std::to_string(data_.train_samples) + " training and " + std::to_string(data_.test_samples) +
      " held-out samples of " + std::to_string(data_.channels) + "x" + std::to_string(data_.height) + "x" +
      std::to_string(data_.width));
  if (int code = load_or_enroll(); code != kExitOk || stop_) return code;
  if (int code = check_identity(); code != kExitOk || stop_) return code;
  return poll_loop();
}

Status Agent::open_meter() {
  scheduler::MeterOptions mo;
  mo.mode = options_.energy_meter;
  mo.cpu_profile = mo.gpu_profile = options_.power_profile;
  auto metered = scheduler::make_metered_devices({{"client", options_.device}}, mo, SystemClock::instance());
  if (!metered.ok()) return metered.status();
  meter_ = std::move(metered->front().meter);
  probe_.meter = meter_->name();
  probe_.joules = [m = meter_.get()] { return m->energy_joules(); };
  probe_.busy = [m = meter_.get()](bool busy) { m->set_busy(busy); };
  say("energy: this device is metered by " + probe_.meter +
      (probe_.meter == "model" ? " (profile " + options_.power_profile + ")" : std::string()));
  return Status::ok();
}

std::optional<Agent::Reply> Agent::call(const std::string& method, const std::string& target, const std::string& body,
                                        const std::string& token, const std::string& content_type) {
  client::ClientOptions o;
  o.timeout = std::chrono::seconds(options_.poll_wait_seconds + 30);
  o.tls = url_.tls;
  o.ca_file = options_.ca_file;
  std::map<std::string, std::string> headers;
  if (!token.empty()) headers["Authorization"] = "Bearer " + token;
  if (!body.empty()) headers["Content-Type"] = content_type;
  for (int attempt = 0; !stop_; ++attempt) {
    client::HttpClient http(url_.host, url_.port, o);
    auto r = http.send(method, url_.prefix + target, body, headers);
    if (r.ok() && r->status < 500) {
      Reply reply{r->status, nlohmann::json::parse(r->body, nullptr, false), std::move(r->body),
                  r->header("x-content-sha256")};
      if (reply.body.is_discarded()) reply.body = nullptr;
      return reply;
    }
    if (!r.ok() && (r.status().code() == Status::Code::kUnauthenticated || r.status().is_invalid_argument())) {
      say("cannot talk to " + options_.server + ": " + r.status().message());
      exit_code_ = r.status().code() == Status::Code::kUnauthenticated ? kExitTls : kExitLocal;
      fatal_ = true;
      return std::nullopt;
    }
    say(r.ok() ? "the server answered " + std::to_string(r->status) + "; retrying"
               : "cannot reach the server: " + r.status().message());
    backoff(attempt);
  }
  return std::nullopt;
}

void Agent::backoff(int attempt) {
  // 1, 2, 4 … seconds up to --max-backoff, with ±50 % jitter so that many clients spread out.
  const double base = std::min<double>(options_.max_backoff_seconds, std::ldexp(1.0, std::min(attempt, 20)));
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  const double pause = base * std::uniform_real_distribution<double>(0.5, 1.5)(rng);
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(pause);
  while (!stop_ && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

int Agent::refused(const std::string& what, const Reply& r) {
  std::string why = detail_of(r.body);
  if (r.body.is_object() && r.body.contains("errors") && r.body["errors"].is_array())
    for (const auto& e : r.body["errors"])
      if (e.is_object()) why += "; " + e.value("field", "?") + ": " + e.value("detail", "?");
  say(what + " (HTTP " + std::to_string(r.status) + "): " + why);
  return kExitRefused;
}

int Agent::load_or_enroll() {
  auto stored = read_token_file(options_.token_file);
  if (stored.ok()) {
    token_ = *stored;
    return kExitOk;
  }
  if (!stored.status().is_not_found()) {
    say(stored.status().message());
    return kExitLocal;
  }
  if (options_.enroll_token.empty() || options_.name.empty()) {
    say("no client token in " + options_.token_file + ": enrolling needs --enroll-token and --name");
    return kExitUsage;
  }
  nlohmann::json body = {{"name", options_.name},
                         {"train_samples", data_.train_samples},
                         {"test_samples", data_.test_samples},
                         {"data",
                          {{"channels", data_.channels},
                           {"height", data_.height},
                           {"width", data_.width},
                           {"max_label", data_.max_label}}}};
  auto r = call("POST", "/v1/clients", body.dump(), options_.enroll_token);
  if (!r) return fatal_ ? exit_code_ : kExitOk;
  if (r->status != 201) return refused("enrollment refused", *r);
  token_ = r->body.value("token", "");
  if (Status s = cli::write_file_atomically(options_.token_file, token_ + "\n", false, 0600); !s.is_ok()) {
    // The token exists only in this reply: without the file the client cannot come back.
    say("enrolled as " + r->body.value("id", "?") + " but cannot keep its token in " + options_.token_file + ": " +
        s.message() + "; ask the federation's owner to revoke it, then enroll again");
    return kExitLocal;
  }
  say("enrolled as " + r->body.value("id", "?") + " (" + options_.name + "); token kept in " + options_.token_file);
  return kExitOk;
}

int Agent::check_identity() {
  auto r = call("GET", "/v1/clients/me", "", token_);
  if (!r) return fatal_ ? exit_code_ : kExitOk;
  if (r->status == 401) return refused("the client token in " + options_.token_file + " no longer works", *r);
  if (r->status != 200) return refused("the server refused the client token", *r);
  const auto& schema = r->body["federation"]["schema"];
  const int64_t c = schema.value("channels", 0), h = schema.value("height", 0), w = schema.value("width", 0);
  const int64_t labels = schema.value("labels", 0);
  if (c != data_.channels || h != data_.height || w != data_.width || data_.max_label >= labels) {
    std::ostringstream why;
    why << "the data in " << options_.data_dir << " (" << data_.channels << "x" << data_.height << "x" << data_.width
        << ", labels up to " << data_.max_label << ") does not fit the federation's schema (" << c << "x" << h << "x"
        << w << ", " << labels << " labels)";
    say(why.str());
    return kExitRefused;
  }
  say("client " + r->body.value("id", "?") + " of federation " + r->body["federation"].value("id", "?") +
      ": waiting for work");
  return kExitOk;
}

int Agent::poll_loop() {
  const std::string target = "/v1/clients/me/work?wait=" + std::to_string(options_.poll_wait_seconds);
  while (!stop_) {
    auto r = call("GET", target, "", token_);
    if (!r) return fatal_ ? exit_code_ : kExitOk;
    if (r->status == 401) return refused("the server no longer accepts this client (revoked?)", *r);
    if (r->status == 204) {
      if (options_.once) return kExitOk;
      continue;
    }
    if (r->status != 200) return refused("the server refused the poll for work", *r);
    work_on(r->body);
    if (options_.once) return kExitOk;
  }
  return kExitOk;
}

void Agent::work_on(const nlohmann::json& lease) {
  const std::string id = lease.is_object() ? lease.value("id", "?") : "?";
  auto assignment = fl::assignment_from_json(lease.is_object() ? lease.value("assignment", nlohmann::json()) : lease);
  if (!assignment.ok()) {
    say("lease " + id + ": cannot read its assignment (" + assignment.status().message() + "); leaving it");
    return backoff(0);  // it stays open until its deadline: do not spin on it
  }
  auto weights = call("GET", "/v1/work/" + id + "/weights", "", token_);
  if (!weights) return;
  const std::string expected = lease["weights"].value("sha256", "");
  if (weights->status != 200 || sha256_hex(weights->raw) != expected) {
    say("lease " + id + ": its weights did not arrive intact (HTTP " + std::to_string(weights->status) +
        "); leaving it");
    return backoff(0);
  }
  const auto started = std::chrono::steady_clock::now();
  busy_ = true;
  const double joules_before = meter_->energy_joules();
  // FedEMA's kept models stay beside the data, as the token does (docs/clients.md).
  auto update = fl::train_assignment(*assignment, weights->raw, options_.data_dir, options_.device,
                                     [this] { return stop_.load(); }, probe_, options_.data_dir + "/.mufl-state");
  const double joules = meter_->energy_joules() - joules_before;
  busy_ = false;
  if (stop_) return say("lease " + id + ": abandoned (stopping)");
  if (!update.ok()) {
    say("lease " + id + ": training failed: " + update.status().message() + "; leaving it");
    return backoff(0);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  auto put = call("PUT", "/v1/work/" + id + "/update", *update, token_, "application/octet-stream");
  if (!put) return;
  if (put->status == 200) {
    say("lease " + id + " (group " + lease.value("group_id", "?") + ", round " +
        std::to_string(lease.value("round", int64_t{0})) + ", " + std::to_string(assignment->heads.size()) +
        " heads): trained in " + std::to_string(seconds) + " s, " + std::to_string(joules) + " J (" + probe_.meter +
        "); update accepted");
  } else {
    refused("lease " + id + ": update refused", *put);
  }
}

}  // namespace mufl::edge
