#include "tests/support/http_client.h"

#include <boost/asio.hpp>

namespace mufl::testing {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

std::string raw_exchange(const std::string& host, uint16_t port, const std::string& raw) {
  asio::io_context ioc;
  tcp::socket sock(ioc);
  sock.connect(tcp::endpoint(asio::ip::make_address(host), port));
  asio::write(sock, asio::buffer(raw));
  sock.shutdown(tcp::socket::shutdown_send);
  std::string out;
  char buf[4096];
  boost::system::error_code ec;
  for (;;) {
    size_t n = sock.read_some(asio::buffer(buf), ec);
    out.append(buf, n);
    if (ec) break;
  }
  return out;
}

}  // namespace mufl::testing
