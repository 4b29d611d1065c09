#include "bench/bare_server.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <thread>
#include <vector>

namespace mufl::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Response = http::response<http::string_body>;

// One connection: read a request, write the fixed response, again, until the client closes.
// Its operations form one chain on the socket's strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const Response& response) : stream_(std::move(socket)), response_(response) {}
  void start() { read(); }

 private:
  void read() {
    request_ = {};
    http::async_read(stream_, buffer_, request_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->close();  // end of stream, or a broken client: either way done
      http::async_write(self->stream_, self->response_, [self](beast::error_code ec, size_t) {
        if (ec) return self->close();
        self->read();
      });
    });
  }
  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  const Response& response_;  // the server's, shared read-only by every session
};

}  // namespace

class BareServer::Impl {
 public:
  Impl(std::string body, std::string content_type, int threads)
      : io_(threads), acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    response_.version(11);
    response_.result(http::status::ok);
    response_.set(http::field::server, "bare");
    response_.set(http::field::content_type, content_type);
    response_.keep_alive(true);
    response_.body() = std::move(body);
    response_.prepare_payload();
    accept();
    for (int i = 0; i < std::max(1, threads); ++i) threads_.emplace_back([this] { io_.run(); });
  }
  ~Impl() {
    io_.stop();
    for (auto& t : threads_) t.join();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  void accept() {
    acceptor_.async_accept(asio::make_strand(io_), [this](beast::error_code ec, tcp::socket socket) {
      if (!ec) {
        socket.set_option(tcp::no_delay(true), ec);
        std::make_shared<Session>(std::move(socket), response_)->start();
      }
      accept();
    });
  }

  asio::io_context io_;
  tcp::acceptor acceptor_;
  Response response_;
  std::vector<std::thread> threads_;
};

BareServer::BareServer(std::string body, std::string content_type, int threads)
    : impl_(std::make_unique<Impl>(std::move(body), std::move(content_type), threads)) {}
BareServer::~BareServer() = default;
uint16_t BareServer::port() const { return impl_->port(); }

}  // namespace mufl::bench
