// muflctl watch against a scripted server: on the event stream, where the first stream drops
// after two events and muflctl must reconnect with Last-Event-ID and carry on to the end; and
// by polling, on a server without GET /v1/events.
#include <catch2/catch.hpp>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "tests/cli/cli_runner.h"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using nlohmann::json;
using mufl::testing::CliRun;
using mufl::testing::run_cli;

namespace {

const char* kId = "act_stream";

std::string event(int id, const json& data) {
  json d = data;
  d["id"] = id;
  d["activity_id"] = kId;
  d["time"] = "2026-12-01T08:00:00.000Z";
  return "id: " + std::to_string(id) + "\nevent: " + d["type"].get<std::string>() + "\ndata: " + d.dump() + "\n\n";
}

std::string round_event(int id, int round) {
  return event(id, {{"type", "round.finished"}, {"group_id", "grp_1"}, {"round", round}, {"rounds", 3},
                    {"phase", "training"}, {"metrics", {{"loss", 1.0 / round}, {"accuracy", 0.5 + 0.1 * round}}}});
}

json class_metrics(int round) { return {{"class", {{"loss", 1.0 / round}, {"accuracy", 0.5 + 0.1 * round}}}}; }

// With events: GET /v1/activities/act_stream says training, round 0 of 3, and GET /v1/events
// opened without Last-Event-ID sends rounds 1 and 2 and drops; one that resumes sends round 3
// and the end. Without: /v1/events is no route, and the activity's GETs say round 0, then 2,
// then 3 and succeeded (round 1 only in GET …/rounds).
class ScriptedServer {
 public:
  explicit ScriptedServer(bool has_events)
      : has_events_(has_events), acceptor_(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    accepting_ = std::thread([this] { accept_loop(); });
  }
  ~ScriptedServer() {
    stop_ = true;
    boost::system::error_code ec;
    tcp::socket wake(ioc_);
    wake.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ec);
    accepting_.join();
    for (auto& t : connections_) t.join();
  }

  uint16_t port() const { return port_; }
  std::vector<std::string> last_event_ids() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_event_ids_;
  }
  std::vector<std::string> authorizations() {
    std::lock_guard<std::mutex> lock(mu_);
    return authorizations_;
  }
  std::vector<std::string> targets() {
    std::lock_guard<std::mutex> lock(mu_);
    return targets_;
  }

 private:
  void accept_loop() {
    for (;;) {
      tcp::socket s(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(s, ec);
      if (stop_ || ec) return;
      connections_.emplace_back([this, s = std::move(s)]() mutable { serve(std::move(s)); });
    }
  }

  void serve(tcp::socket s) {
    beast::flat_buffer buffer;
    boost::system::error_code ec;
    for (;;) {
      http::request<http::string_body> req;
      http::read(s, buffer, req, ec);
      if (ec) return;
      {
        std::lock_guard<std::mutex> lock(mu_);
        authorizations_.emplace_back(req[http::field::authorization]);
        targets_.emplace_back(req.target());
      }
      const std::string target(req.target());
      if (has_events_ && target.rfind("/v1/events?activity=act_stream", 0) == 0) {
        const std::string resume(req["Last-Event-ID"]);
        {
          std::lock_guard<std::mutex> lock(mu_);
          last_event_ids_.push_back(resume);
        }
        std::string out =
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
            ": keep-alive\n\n";
        if (resume.empty()) {
          out += round_event(1, 1) + round_event(2, 2);
          asio::write(s, asio::buffer(out), ec);
          return;  // the connection drops
        }
        out += round_event(3, 3) +
               event(4, {{"type", "activity.state"}, {"state", "succeeded"}, {"previous", "training"}, {"reason", ""}});
        asio::write(s, asio::buffer(out), ec);
        char byte;
        s.read_some(asio::buffer(&byte, 1), ec);  // stays open until muflctl has seen the end
        return;
      }
      http::response<http::string_body> res;
      res.version(11);
      res.keep_alive(req.keep_alive());
      if (target == "/v1/activities/act_stream") {
        const int round = has_events_ ? 0 : std::min(2 * gets_++, 3);
        const json latest = round ? json{{"round", round}, {"metrics", class_metrics(round)}} : json();
        res.result(200);
        res.set(http::field::content_type, "application/json");
        res.body() = json{{"id", kId}, {"state", round == 3 ? "succeeded" : "training"}, {"state_reason", ""},
                          {"progress", {{"round", round}, {"rounds", 3}, {"latest", latest}}}}.dump();
      } else if (target.rfind("/v1/activities/act_stream/rounds?", 0) == 0) {
        // Two pages: rounds 1 and 2, then (after cursor 2) round 3.
        const bool second = target.find("cursor=2") != std::string::npos;
        json items = json::array();
        for (int r = second ? 3 : 1; r <= (second ? 3 : 2); ++r)
          items.push_back({{"round", r}, {"rounds", 3}, {"metrics", class_metrics(r)}});
        res.result(200);
        res.set(http::field::content_type, "application/json");
        res.body() = json{{"items", items}, {"next_cursor", second ? json() : json("2")}}.dump();
      } else {
        res.result(404);
        res.set(http::field::content_type, "application/problem+json");
        res.body() = R"({"type":"about:blank","title":"Not Found","status":404,"detail":"no route for )" + target + "\"}";
      }
      res.prepare_payload();
      http::write(s, res, ec);
      if (ec || !req.keep_alive()) return;
    }
  }

  const bool has_events_;
  std::atomic<int> gets_{0};
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread accepting_;
  std::vector<std::thread> connections_;  // touched by the accept thread only, until it is joined
  std::mutex mu_;
  std::vector<std::string> last_event_ids_, authorizations_, targets_;
};

}  // namespace

TEST_CASE("muflctl watch: streams events, reconnects with Last-Event-ID after a drop, ends on the final state") {
  ScriptedServer server(/*has_events=*/true);
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port());
  CliRun r = run_cli(MUFLCTL_PATH, {"watch", kId, "--server", url, "--token", "tok"});
  INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
  CHECK(r.out ==
        std::string(kId) + " round 0/3 training\n" +
        kId + " round 1/3 training loss 1.0000 accuracy 0.6000\n" +
        kId + " round 2/3 training loss 0.5000 accuracy 0.7000\n" +
        kId + " round 3/3 training loss 0.3333 accuracy 0.8000\n" +
        kId + " round 3/3 succeeded loss 0.3333 accuracy 0.8000\n");
  CHECK(server.last_event_ids() == std::vector<std::string>{"", "2"});
  for (const auto& a : server.authorizations()) CHECK(a == "Bearer tok");

  CliRun j = run_cli(MUFLCTL_PATH, {"watch", kId, "--server", url, "--json"});
  CHECK(j.exit_code == 0);
  std::vector<json> docs;
  for (size_t start = 0, nl; (nl = j.out.find('\n', start)) != std::string::npos; start = nl + 1)
    docs.push_back(json::parse(j.out.substr(start, nl - start)));
  REQUIRE(docs.size() == 5);
  CHECK(docs[2] == json::parse(R"({"activity_id":"act_stream","state":"training","round":2,"rounds":3,
                                   "metrics":{"loss":0.5,"accuracy":0.7}})"));
  CHECK(docs[4]["state"] == "succeeded");
}

TEST_CASE("muflctl watch: polls a server without GET /v1/events, one line for each round however fast they went") {
  ScriptedServer server(/*has_events=*/false);
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port());
  CliRun r = run_cli(MUFLCTL_PATH, {"watch", kId, "--server", url, "--interval", "0.05"});
  INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out ==
        std::string(kId) + " round 0/3 training\n" +
        kId + " round 1/3 training loss 1.0000 accuracy 0.6000\n" +
        kId + " round 2/3 training loss 0.5000 accuracy 0.7000\n" +
        kId + " round 3/3 succeeded loss 0.3333 accuracy 0.8000\n");
  const auto targets = server.targets();
  CHECK(std::count(targets.begin(), targets.end(), "/v1/events?activity=act_stream") == 1);  // asked once
  CHECK(std::count(targets.begin(), targets.end(), "/v1/activities/act_stream") == 3);
  // The rounds that went by, both pages of them, once.
  CHECK(std::count(targets.begin(), targets.end(), "/v1/activities/act_stream/rounds?limit=1000") == 1);
  CHECK(std::count(targets.begin(), targets.end(), "/v1/activities/act_stream/rounds?limit=1000&cursor=2") == 1);
}
