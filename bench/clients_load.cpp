// bench/clients' load generator (clients_load.h): one asynchronous state machine per client. All
// long polls run on one io_context thread and all transfers (weights, updates) on another, so
// that a lease is taken in when it arrives, not after the thousand 142 KB weights bodies that
// the clients served before it are parsing on the same thread: each real client is a process
// of its own, and one thread for all would measure the generator's own queue.
#include "bench/clients_load.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <functional>
#include <mutex>
#include <optional>

#include "core/time_format.h"
#include "fl/assignment.h"  // kReportMetadataKey only (the header is torch-free)
#include "protocol/safetensors.h"

namespace mufl::bench {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;
using Response = http::response<http::string_body>;
using RoundKey = std::pair<int64_t, int>;

// The report every echoed update carries: what fl::local_report_to_json writes for a client
// that trained 100 samples in 2 steps and holds no test part.
std::string echo_report() {
  return json{{"num_samples", 100}, {"samples", 100},     {"steps", 2}, {"mean_loss", 1.0},
              {"affinity", json::array()}, {"lookaheads", 0}, {"test_samples", 0}, {"eval", json::array()}}
      .dump();
}

// The global weights echoed back with the report in their metadata: a valid update that costs
// the client no training. Empty when the weights do not decode.
std::string echo_update(const std::string& weights) {
  auto file = protocol::decode_safetensors(weights);
  if (!file.ok()) return "";
  file->metadata[fl::kReportMetadataKey] = echo_report();
  auto bytes = protocol::encode_safetensors(*file);
  return bytes.ok() ? *bytes : "";
}

class LoadClient;

}  // namespace

struct LoadGenerator::Impl {
  Impl(uint16_t port, int wait_seconds)
      : endpoint(asio::ip::make_address("127.0.0.1"), port),
        poll_target("/v1/clients/me/work?wait=" + std::to_string(wait_seconds)) {}

  double ms_since_start() const {
    return std::chrono::duration<double, std::milli>(SteadyClock::now() - started).count();
  }
  // The update for a round's weights, built once per round (by SHA-256) and shared by every lease.
  const std::string& update_for(const std::string& sha256, const std::string& weights) {
    auto it = updates.find(sha256);
    if (it == updates.end()) it = updates.emplace(sha256, echo_update(weights)).first;
    return it->second;
  }
  void failed(const std::string& what) {
    std::lock_guard lock(failures_mu);
    if (stats.failures++ == 0) stats.first_failure = what;
  }
  // The round's upload window, and whether it was new.
  std::pair<std::pair<double, double>*, bool> upload_window(const RoundKey& round) {
    auto [it, fresh] = stats.upload_window_ms.try_emplace(round, 0.0, 0.0);
    return {&it->second, fresh};
  }

  // Each thread writes only its own part of `stats`: polls `leases` and `polls_empty`,
  // transfers the rest; failures from both, under failures_mu.
  asio::io_context polls, transfers;
  std::mutex failures_mu;
  tcp::endpoint endpoint;
  std::string poll_target;
  SteadyClock::time_point started = SteadyClock::now();
  std::map<std::string, std::string> updates;  // weights SHA-256 → update bytes
  LoadStats stats;
  std::atomic<int> polling{0};
  std::atomic<bool> stopping{false};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> polls_guard, transfers_guard;
  std::vector<std::unique_ptr<LoadClient>> clients;
};

namespace {

// One keep-alive connection of a client, on one of the generator's threads: writes a request
// and reads its response whole. A broken connection is reopened after a second (a backoff, as
// mufl-client does), and the step that broke starts again.
class Connection {
 public:
  using Done = std::function<void(Response&, double ms)>;
  Connection(LoadGenerator::Impl& gen, asio::io_context& io, std::string token)
      : gen_(gen), stream_(io), retry_(io), token_(std::move(token)) {}

  // Connects, then calls `then`; on failure, again a second later.
  void connect(std::function<void()> then) {
    stream_.async_connect(gen_.endpoint, [this, then = std::move(then)](beast::error_code ec) mutable {
      if (!ec) return then();
      broken("connect: " + ec.message(), std::move(then));
    });
  }
  void close() {
    beast::error_code ec;
    retry_.cancel();
    stream_.socket().close(ec);
  }
  // Runs `again` a second from now (after a refusal: an open lease comes back, as promised).
  void later(std::function<void()> again) {
    retry_.expires_after(std::chrono::seconds(1));
    retry_.async_wait([this, again = std::move(again)](beast::error_code ec) {
      if (!ec && !gen_.stopping) again();
    });
  }

  // Writes one request and reads its response whole, then calls `done` with the round trip;
  // `again` restarts the client's step after a broken connection.
  void send(http::verb method, const std::string& target, const std::string& body, Done done,
            std::function<void()> again) {
    req_ = {method, target, 11};
    req_.set(http::field::host, "127.0.0.1");
    req_.set(http::field::authorization, "Bearer " + token_);
    if (method == http::verb::put) req_.set(http::field::content_type, "application/octet-stream");
    req_.body() = body;
    req_.prepare_payload();
    const auto sent = SteadyClock::now();
    http::async_write(stream_, req_, [this, done = std::move(done), again, sent](beast::error_code ec, size_t) mutable {
      if (ec) return broken("write: " + ec.message(), std::move(again));
      parser_.emplace();
      parser_->body_limit(boost::none);  // weights of any model
      http::async_read(stream_, buf_, *parser_, [this, done = std::move(done), again, sent](beast::error_code ec,
                                                                                            size_t) mutable {
        if (ec) return broken("read: " + ec.message(), std::move(again));
        Response res = parser_->release();
        done(res, std::chrono::duration<double, std::milli>(SteadyClock::now() - sent).count());
      });
    });
  }

 private:
  void broken(const std::string& what, std::function<void()> again) {
    if (gen_.stopping) return;
    gen_.failed(what);
    beast::error_code ec;
    stream_.socket().close(ec);
    buf_.clear();
    later([this, again = std::move(again)]() mutable { connect(std::move(again)); });
  }

  LoadGenerator::Impl& gen_;
  beast::tcp_stream stream_;
  asio::steady_timer retry_;
  std::string token_;
  beast::flat_buffer buf_;
  http::request<http::string_body> req_;
  std::optional<http::response_parser<http::string_body>> parser_;
};

// One client: poll (on the polls thread) → weights → update (on the transfers thread) → poll.
// Clients live until the generator's threads have ended, so `this` in handlers is safe.
class LoadClient {
 public:
  LoadClient(LoadGenerator::Impl& gen, const std::string& token)
      : gen_(gen), poller_(gen, gen.polls, token), mover_(gen, gen.transfers, token) {}

  void connect() {
    poller_.connect([this] { poll(); });
    mover_.connect([] {});
  }
  void close_polls() { poller_.close(); }
  void close_transfers() { mover_.close(); }

 private:
  void poll() {
    if (!counted_) {
      counted_ = true;
      ++gen_.polling;
    }
    poller_.send(http::verb::get, gen_.poll_target, "", [this](Response& res, double ms) { on_poll(res, ms); },
                 [this] { poll(); });
  }
  // The next step on the other thread.
  void to_transfers(std::function<void()> step) { asio::post(gen_.transfers, std::move(step)); }
  void to_polls() { asio::post(gen_.polls, [this] { poll(); }); }

  // The poll thread only takes the lease in and notes when; reading it is the client's work,
  // done on the transfers thread, so that no lease waits behind another's parsing.
  void on_poll(Response& res, double) {
    if (res.result_int() == 204) {
      ++gen_.stats.polls_empty;
      return poll();
    }
    if (res.result_int() != 200) return refused("poll", res);
    ++gen_.stats.leases;
    const double received_ms = gen_.ms_since_start();
    const double received_unix_ms =
        std::chrono::duration<double, std::milli>(std::chrono::system_clock::now().time_since_epoch()).count();
    to_transfers([this, body = std::move(res.body()), received_ms, received_unix_ms] {
      take_lease(body, received_ms, received_unix_ms);
    });
  }

  void take_lease(const std::string& body, double received_ms, double received_unix_ms) {
    const json lease = json::parse(body, nullptr, false);
    if (!lease.is_object() || !lease.contains("weights")) {
      gen_.failed("poll (lease): " + body.substr(0, 300));
      return to_polls();
    }
    lease_id_ = lease.value("id", "");
    round_ = {lease.value("round", int64_t{0}), lease.value("attempt", 0)};
    sha256_ = lease["weights"].value("sha256", "");
    gen_.stats.delivered_ms[round_].push_back(received_ms);
    if (auto created = parse_rfc3339(lease.value("created", "")))
      gen_.stats.lease_ms.push_back(received_unix_ms - static_cast<double>(*created));
    fetch(lease["weights"].value("url", ""));
  }

  void fetch(const std::string& url) {
    mover_.send(http::verb::get, url, "", [this](Response& res, double ms) { on_weights(res, ms); },
                [this, url] { fetch(url); });
  }

  void on_weights(Response& res, double ms) {
    if (res.result_int() != 200) return refused("weights", res);
    gen_.stats.weights_ms.push_back(ms);
    gen_.stats.weights_bytes = res.body().size();
    const std::string& update = gen_.update_for(sha256_, res.body());
    if (update.empty()) {  // a failure of the run; the client polls again (it gets the lease back)
      gen_.failed("the weights of lease " + lease_id_ + " are not safetensors");
      return to_polls();
    }
    gen_.stats.update_bytes = update.size();
    auto [window, fresh] = gen_.upload_window(round_);
    if (fresh) window->first = gen_.ms_since_start();
    upload(update);
  }

  void upload(const std::string& update) {
    mover_.send(http::verb::put, "/v1/work/" + lease_id_ + "/update", update,
                [this](Response& res, double ms) { on_update(res, ms); }, [this, &update] { upload(update); });
  }

  void on_update(Response& res, double ms) {
    if (res.result_int() != 200) return refused("update", res);
    gen_.stats.update_ms.push_back(ms);
    ++gen_.stats.updates_accepted;
    gen_.upload_window(round_).first->second = gen_.ms_since_start();
    to_polls();
  }

  // A refusal is a failure of the run; the client polls again a second later (an open lease
  // comes back to it, as the protocol promises).
  void refused(const std::string& step, const Response& res) {
    gen_.failed(step + ": HTTP " + std::to_string(res.result_int()) + " " + res.body().substr(0, 300));
    asio::post(gen_.polls, [this] { poller_.later([this] { poll(); }); });
  }

  LoadGenerator::Impl& gen_;
  Connection poller_, mover_;
  std::string lease_id_, sha256_;  // the transfers thread's
  RoundKey round_;
  bool counted_ = false;
};

}  // namespace

LoadGenerator::LoadGenerator(uint16_t port, std::vector<std::string> tokens, int wait_seconds)
    : impl_(std::make_unique<Impl>(port, wait_seconds)), tokens_(std::move(tokens)) {}

LoadGenerator::~LoadGenerator() { stop(); }

void LoadGenerator::start() {
  impl_->started = SteadyClock::now();
  for (const auto& token : tokens_) {
    impl_->clients.push_back(std::make_unique<LoadClient>(*impl_, token));
    impl_->clients.back()->connect();
  }
  // Each io_context runs until stop(): the transfers one has nothing to do at first.
  impl_->polls_guard.emplace(impl_->polls.get_executor());
  impl_->transfers_guard.emplace(impl_->transfers.get_executor());
  threads_.emplace_back([this] { impl_->polls.run(); });
  threads_.emplace_back([this] { impl_->transfers.run(); });
}

void LoadGenerator::stop() {
  if (threads_.empty()) return;
  impl_->stopping = true;
  // Connections are closed on their own threads; requests in flight are simply dropped.
  asio::post(impl_->polls, [this] {
    for (auto& c : impl_->clients) c->close_polls();
    impl_->polls.stop();
  });
  asio::post(impl_->transfers, [this] {
    for (auto& c : impl_->clients) c->close_transfers();
    impl_->transfers.stop();
  });
  for (auto& t : threads_) t.join();
  threads_.clear();
}

int LoadGenerator::polling() const { return impl_->polling.load(); }
const LoadStats& LoadGenerator::stats() const { return impl_->stats; }

}  // namespace mufl::bench
