// scheduler/cluster/worker_desk.h: a cluster worker gets the round posted to it, and its result
// is taken only whole, only for that round, only once, and only with its own token.
#include "scheduler/cluster/worker_desk.h"

#include <catch2/catch.hpp>

#include <future>

#include <nlohmann/json.hpp>

#include "core/file_io.h"
#include "fl/job_wire.h"

using namespace mufl;
using namespace mufl::scheduler;
using Clock = std::chrono::steady_clock;

namespace {

fl::RoundReport report_of(int64_t round) {
  fl::RoundReport r;
  r.round = round;
  r.attempts = 1;
  r.clients_sampled = 2;
  r.clients_reported = 2;
  r.samples = 64;
  r.train_loss = 0.5;
  r.eval.push_back({"class", "class", 0.4, "accuracy", 0.9});
  r.seconds = 1.5;
  return r;
}

std::string frame_of(int64_t round, const std::string& checkpoint, nlohmann::json extra = nlohmann::json::object()) {
  nlohmann::json j = {{"report", fl::round_report_to_json(report_of(round))},
                      {"checkpoint_sha256", sha256_hex(checkpoint)},
                      {"joules", 120.5},
                      {"meter", "nvml"},
                      {"seconds", 1.4},
                      {"host", "n1"}};
  for (auto& [k, v] : extra.items()) j[k] = v;
  return make_result_frame(j.dump(), checkpoint);
}

WorkerRound round_of(int64_t round, const std::string& checkpoint) {
  return {round, R"({"name":"grp_1"})", std::make_shared<const std::string>(checkpoint), std::nullopt};
}

// What the worker's poll gets now (wait 0).
std::optional<std::string> poll(WorkerDesk& desk, const std::string& id) {
  std::optional<std::string> got;
  desk.board().wait(id, std::chrono::milliseconds(0), [&](std::optional<std::string> item) { got = std::move(item); });
  return got;
}

}  // namespace

TEST_CASE("worker desk: only the worker's own token authenticates") {
  WorkerDesk desk(SecureRandom::instance());
  auto a = desk.open("grp_1", "slurm:n1:v100:0");
  auto b = desk.open("grp_2", "slurm:n1:v100:1");
  CHECK(a.id.rfind("wrk_", 0) == 0);
  CHECK(a.token.rfind("muflw_", 0) == 0);
  CHECK(desk.authenticate(a.id, a.token).is_ok());
  CHECK(desk.authenticate(a.id, b.token).code() == Status::Code::kUnauthenticated);
  CHECK(desk.authenticate("wrk_nosuch", a.token).code() == Status::Code::kUnauthenticated);
  CHECK(desk.authenticate(a.id, "").code() == Status::Code::kUnauthenticated);
  CHECK(desk.open_workers() == 2);
}

TEST_CASE("worker desk: a posted round reaches the poll, and its result the waiting executor") {
  WorkerDesk desk(SecureRandom::instance());
  auto w = desk.open("grp_1", "slurm:n1:v100:0");
  CHECK_FALSE(poll(desk, w.id));  // nothing posted yet: 204
  CHECK_FALSE(desk.result_body_limit(w.id));
  const std::string cp(1000, 'c');
  desk.post(w.id, round_of(4, cp));
  auto item = poll(desk, w.id);
  REQUIRE(item);
  auto j = nlohmann::json::parse(*item);
  CHECK(j["round"] == 4);
  CHECK(j["config"]["name"] == "grp_1");
  CHECK(j["checkpoint_sha256"] == sha256_hex(cp));
  CHECK(j["checkpoint_bytes"] == 1000);
  CHECK(*desk.result_body_limit(w.id) == 2000 + (1u << 20));
  REQUIRE(desk.checkpoint(w.id, 4).ok());
  CHECK(**desk.checkpoint(w.id, 4) == cp);
  CHECK(desk.checkpoint(w.id, 3).status().code() == Status::Code::kConflict);

  auto waiting = std::async(std::launch::async, [&] {
    return desk.wait(w.id, Clock::now() + std::chrono::seconds(30), nullptr);
  });
  const std::string next(1200, 'n');
  REQUIRE(desk.deliver(w.id, 4, frame_of(4, next)).is_ok());
  CHECK_FALSE(poll(desk, w.id));  // the reported round is off the board before the executor takes it
  auto result = waiting.get();
  REQUIRE(result.ok());
  CHECK(result->checkpoint == next);
  CHECK(result->report.round == 4);
  CHECK(result->report.eval.at(0).loss == 0.4);
  CHECK(result->joules == 120.5);
  CHECK(result->meter == "nvml");
  CHECK(result->host == "n1");
  // Taken: a repeat of the result, or a late one, is a conflict, and the poll is empty again.
  CHECK(desk.deliver(w.id, 4, frame_of(4, next)).code() == Status::Code::kConflict);
  CHECK_FALSE(poll(desk, w.id));
  CHECK(desk.checkpoint(w.id, 4).status().code() == Status::Code::kConflict);
}

TEST_CASE("worker desk: a bad result is refused with why, and changes nothing") {
  WorkerDesk desk(SecureRandom::instance());
  auto w = desk.open("grp_1", "slurm:n1:v100:0");
  const std::string cp = "checkpoint";
  desk.post(w.id, round_of(2, cp));
  const std::string good = frame_of(2, "next");
  std::string short_header = good.substr(0, 5);
  std::string long_claim = good;
  long_claim[0] = static_cast<char>(0xff);
  long_claim[1] = static_cast<char>(0xff);
  std::string tampered = good;
  tampered.back() ^= 1;
  for (const auto& [what, body] : std::vector<std::pair<std::string, std::string>>{
           {"short header", short_header},
           {"header longer than the body", long_claim},
           {"report not JSON", make_result_frame("{not json", "next")},
           {"report of another round", frame_of(3, "next")},
           {"unknown field", frame_of(2, "next", {{"extra", 1}})},
           {"bad meter", frame_of(2, "next", {{"meter", "guess"}})},
           {"negative joules", frame_of(2, "next", {{"joules", -1}})},
           {"tampered checkpoint", tampered}}) {
    INFO(what);
    CHECK(desk.deliver(w.id, 2, body).code() == Status::Code::kInvalidArgument);
  }
  CHECK(desk.deliver(w.id, 1, frame_of(1, "next")).code() == Status::Code::kConflict);  // not the posted round
  // Nothing was taken: the executor's wait ends at its deadline.
  auto r = desk.wait(w.id, Clock::now() + std::chrono::milliseconds(50), nullptr);
  CHECK(r.status().code() == Status::Code::kUnavailable);
  CHECK(desk.deliver(w.id, 2, good).code() == Status::Code::kConflict);  // taken back at the deadline
}

TEST_CASE("worker desk: a closed worker's poll says done, and a round waiting on it fails") {
  WorkerDesk desk(SecureRandom::instance());
  auto w = desk.open("grp_1", "slurm:n1:v100:0");
  desk.post(w.id, round_of(1, "cp"));
  auto waiting = std::async(std::launch::async, [&] {
    return desk.wait(w.id, Clock::now() + std::chrono::seconds(30), nullptr);
  });
  desk.close(w.id);
  CHECK(waiting.get().status().code() == Status::Code::kFailedPrecondition);
  CHECK(poll(desk, w.id) == std::optional<std::string>(WorkerDesk::kDoneMarker));
  CHECK_FALSE(desk.is_open(w.id));
  CHECK(desk.authenticate(w.id, w.token).is_ok());  // it may still learn that it is done
  CHECK(desk.deliver(w.id, 1, frame_of(1, "x")).code() == Status::Code::kConflict);
  desk.forget(w.id);
  CHECK(desk.authenticate(w.id, w.token).code() == Status::Code::kUnauthenticated);
  CHECK(desk.open_workers() == 0);
}

TEST_CASE("worker desk: give_up ends a wait") {
  WorkerDesk desk(SecureRandom::instance());
  auto w = desk.open("grp_1", "slurm:n1:v100:0");
  desk.post(w.id, round_of(1, "cp"));
  int asked = 0;
  auto r = desk.wait(w.id, Clock::now() + std::chrono::seconds(30), [&] { return ++asked >= 3; },
                     std::chrono::milliseconds(1));
  CHECK(r.status().code() == Status::Code::kUnavailable);
  CHECK(asked == 3);
  CHECK_FALSE(poll(desk, w.id));  // taken back
}

TEST_CASE("worker desk: an adopted worker's token authenticates again, and an open id cannot be adopted twice") {
  WorkerDesk desk(SecureRandom::instance());
  auto a = desk.open("grp_1", "slurm:n1:v100:0");
  CHECK(a.token_sha256 == sha256_hex(a.token));
  // A restarted mufld's desk knows nothing of it until it adopts the record.
  WorkerDesk restarted(SecureRandom::instance());
  CHECK(restarted.authenticate(a.id, a.token).code() == Status::Code::kUnauthenticated);
  REQUIRE(restarted.adopt(a.id, a.token_sha256, "grp_1", "slurm:n1:v100:0").is_ok());
  CHECK(restarted.authenticate(a.id, a.token).is_ok());
  CHECK(restarted.authenticate(a.id, "muflw_wrong").code() == Status::Code::kUnauthenticated);
  CHECK(restarted.is_open(a.id));
  CHECK(restarted.adopt(a.id, a.token_sha256, "grp_1", "slurm:n1:v100:0").code() == Status::Code::kAlreadyExists);
  // It gets rounds as an opened one does.
  restarted.post(a.id, round_of(3, "ckpt"));
  auto item = poll(restarted, a.id);
  REQUIRE(item);
  CHECK(nlohmann::json::parse(*item)["round"] == 3);
}
