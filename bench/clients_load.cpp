// bench/clients' load generator (clients_load.h): one asynchronous state machine per client,
// all on one io_context thread, so a thousand clients cost one core at most.
#include "bench/clients_load.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
#include <optional>

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
    if (stats.failures++ == 0) stats.first_failure = what;
  }
  // The round's upload window, and whether it was new.
  std::pair<std::pair<double, double>*, bool> upload_window(const RoundKey& round) {
    auto [it, fresh] = stats.upload_window_ms.try_emplace(round, 0.0, 0.0);
    return {&it->second, fresh};
  }

  asio::io_context io;
  tcp::endpoint endpoint;
  std::string poll_target;
  SteadyClock::time_point started = SteadyClock::now();
  std::map<std::string, std::string> updates;  // weights SHA-256 → update bytes
  LoadStats stats;
  std::atomic<int> polling{0};
  bool stopping = false;
  std::vector<std::shared_ptr<LoadClient>> clients;
};

namespace {

// One client: connect, then poll → weights → update → poll, on one keep-alive connection. A
// broken connection is reopened after a second (a backoff, as mufl-client does).
class LoadClient : public std::enable_shared_from_this<LoadClient> {
 public:
  LoadClient(LoadGenerator::Impl& gen, std::string token) : gen_(gen), stream_(gen.io), retry_(gen.io),
                                                            token_(std::move(token)) {}

  void connect() {
    stream_.async_connect(gen_.endpoint, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->broken("connect: " + ec.message());
      self->poll();
    });
  }
  void close() {
    beast::error_code ec;
    retry_.cancel();
    stream_.socket().close(ec);
  }

 private:
  using Handler = void (LoadClient::*)(Response&, double ms);

  void poll() {
    if (!counted_) {
      counted_ = true;
      ++gen_.polling;
    }
    send(http::verb::get, gen_.poll_target, "", &LoadClient::on_poll);
  }

  void on_poll(Response& res, double) {
    if (res.result_int() == 204) {
      ++gen_.stats.polls_empty;
      return poll();
    }
    if (res.result_int() != 200) return refused("poll", res);
    const json lease = json::parse(res.body(), nullptr, false);
    if (!lease.is_object() || !lease.contains("weights")) return refused("poll (lease)", res);
    lease_id_ = lease.value("id", "");
    round_ = {lease.value("round", int64_t{0}), lease.value("attempt", 0)};
    sha256_ = lease["weights"].value("sha256", "");
    ++gen_.stats.leases;
    gen_.stats.delivered_ms[round_].push_back(gen_.ms_since_start());
    send(http::verb::get, lease["weights"].value("url", ""), "", &LoadClient::on_weights);
  }

  void on_weights(Response& res, double ms) {
    if (res.result_int() != 200) return refused("weights", res);
    gen_.stats.weights_ms.push_back(ms);
    gen_.stats.weights_bytes = res.body().size();
    const std::string& update = gen_.update_for(sha256_, res.body());
    if (update.empty()) return broken("the weights of lease " + lease_id_ + " are not safetensors");
    gen_.stats.update_bytes = update.size();
    auto [window, fresh] = gen_.upload_window(round_);
    if (fresh) window->first = gen_.ms_since_start();
    send(http::verb::put, "/v1/work/" + lease_id_ + "/update", update, &LoadClient::on_update);
  }

  void on_update(Response& res, double ms) {
    if (res.result_int() != 200) return refused("update", res);
    gen_.stats.update_ms.push_back(ms);
    ++gen_.stats.updates_accepted;
    gen_.upload_window(round_).first->second = gen_.ms_since_start();
    poll();
  }

  // Writes one request and reads its response whole, then calls `next` with the round trip.
  void send(http::verb method, const std::string& target, const std::string& body, Handler next) {
    req_ = {method, target, 11};
    req_.set(http::field::host, "127.0.0.1");
    req_.set(http::field::authorization, "Bearer " + token_);
    if (method == http::verb::put) req_.set(http::field::content_type, "application/octet-stream");
    req_.body() = body;
    req_.prepare_payload();
    const auto sent = SteadyClock::now();
    http::async_write(stream_, req_, [self = shared_from_this(), next, sent](beast::error_code ec, size_t) {
      if (ec) return self->broken("write: " + ec.message());
      self->parser_.emplace();
      self->parser_->body_limit(boost::none);  // weights of any model
      http::async_read(self->stream_, self->buf_, *self->parser_,
                       [self, next, sent](beast::error_code ec, size_t) {
                         if (ec) return self->broken("read: " + ec.message());
                         Response res = self->parser_->release();
                         const double ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - sent).count();
                         ((*self).*next)(res, ms);
                       });
    });
  }

  // A refusal is a failure of the run; the client asks again a second later (an open lease
  // comes back to it, as the protocol promises).
  void refused(const std::string& step, const Response& res) {
    gen_.failed(step + ": HTTP " + std::to_string(res.result_int()) + " " + res.body().substr(0, 300));
    retry_.expires_after(std::chrono::seconds(1));
    retry_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec && !self->gen_.stopping) self->poll();
    });
  }

  void broken(const std::string& what) {
    if (gen_.stopping) return;
    gen_.failed(what);
    beast::error_code ec;
    stream_.socket().close(ec);
    buf_.clear();
    retry_.expires_after(std::chrono::seconds(1));
    retry_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec && !self->gen_.stopping) self->connect();
    });
  }

  LoadGenerator::Impl& gen_;
  beast::tcp_stream stream_;
  asio::steady_timer retry_;
  std::string token_, lease_id_, sha256_;
  RoundKey round_;
  bool counted_ = false;
  beast::flat_buffer buf_;
  http::request<http::string_body> req_;
  std::optional<http::response_parser<http::string_body>> parser_;
};

}  // namespace

LoadGenerator::LoadGenerator(uint16_t port, std::vector<std::string> tokens, int wait_seconds)
    : impl_(std::make_unique<Impl>(port, wait_seconds)), tokens_(std::move(tokens)) {}

LoadGenerator::~LoadGenerator() { stop(); }

void LoadGenerator::start() {
  impl_->started = SteadyClock::now();
  for (const auto& token : tokens_) {
    impl_->clients.push_back(std::make_shared<LoadClient>(*impl_, token));
    impl_->clients.back()->connect();
  }
  thread_ = std::thread([this] { impl_->io.run(); });
}

void LoadGenerator::stop() {
  if (!thread_.joinable()) return;
  asio::post(impl_->io, [this] {
    impl_->stopping = true;
    for (auto& c : impl_->clients) c->close();
    impl_->io.stop();  // long polls still in flight are simply dropped
  });
  thread_.join();
}

int LoadGenerator::polling() const { return impl_->polling.load(); }
const LoadStats& LoadGenerator::stats() const { return impl_->stats; }

}  // namespace mufl::bench
