// Raw bytes over TCP to the real mufld: every malformed request ends in a 4xx problem+json or a
// closed connection, never a crash or a 5xx, and the server answers GET /healthz afterwards.
#include <catch2/catch.hpp>

#include <boost/asio.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/http_client.h"
#include "tests/support/mufld_process.h"
#include "tests/support/temp_dir.h"

using namespace mufl::testing;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

const std::string kAdmin = "mufl_malformed_http_admin_token";

// Writes `bytes`, half-closes, and reads everything the server sends until it closes.
std::string exchange(uint16_t port, const std::string& bytes) {
  asio::io_context ioc;
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  boost::system::error_code ec;
  asio::write(s, asio::buffer(bytes), ec);
  s.shutdown(tcp::socket::shutdown_send, ec);
  std::string out;
  std::array<char, 4096> buf;
  for (;;) {
    size_t n = s.read_some(asio::buffer(buf), ec);
    out.append(buf.data(), n);
    if (ec) break;
  }
  return out;
}

// The status codes of every response in `raw`, in order.
std::vector<int> statuses(const std::string& raw) {
  std::vector<int> out;
  for (size_t at = raw.find("HTTP/1.1 "); at != std::string::npos; at = raw.find("HTTP/1.1 ", at + 1))
    out.push_back(std::stoi(raw.substr(at + 9, 3)));
  return out;
}

}  // namespace

TEST_CASE("e2e malformed http: every bad byte sequence gets a 4xx or a close, and mufld keeps serving") {
  TempDir dir;
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, {"--devices", "none"});
  const uint16_t port = mufld.port();
  const std::string auth = "Authorization: Bearer " + kAdmin + "\r\n";

  struct Case {
    const char* name;
    std::string bytes;
    int want;  // 0: any 4xx or a close without a reply
  };
  const std::string huge_header = "GET /healthz HTTP/1.1\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n";
  std::string many_headers = "GET /healthz HTTP/1.1\r\n";
  for (int i = 0; i < 2000; ++i) many_headers += "X-H" + std::to_string(i) + ": v\r\n";
  many_headers += "\r\n";
  const std::string over_limit = "POST /v1/tenants HTTP/1.1\r\n" + auth + "Content-Length: 2000000\r\n\r\n" +
                                 std::string(2000000, '{');
  const std::vector<Case> cases = {
      {"invalid UTF-8 target", "GET /\xff HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"invalid UTF-8 query", "GET /v1/groups?phase=%ff HTTP/1.1\r\n" + auth + "\r\n", 400},
      {"invalid UTF-8 body", "POST /v1/tenants HTTP/1.1\r\n" + auth + "Content-Length: 2\r\n\r\n\xff\xfe", 400},
      {"bad percent escape", "GET /healthz?x=%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"target not origin-form", "GET nothere HTTP/1.1\r\nHost: x\r\n\r\n", 0},
      {"absolute-form target", "GET http://x/healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"non-numeric Content-Length", "POST /v1/tenants HTTP/1.1\r\nContent-Length: abc\r\n\r\n{}", 400},
      {"negative Content-Length", "POST /v1/tenants HTTP/1.1\r\nContent-Length: -5\r\n\r\n{}", 400},
      {"huge Content-Length", "POST /v1/tenants HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n{}", 0},
      {"duplicate Content-Length", "POST /v1/tenants HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400},
      {"huge header line", huge_header, 431},
      {"many headers", many_headers, 431},
      {"bad chunk size", "POST /v1/tenants HTTP/1.1\r\n" + auth + "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", 400},
      {"body over the limit", over_limit, 413},
      {"cut off mid-body", "POST /v1/tenants HTTP/1.1\r\n" + auth + "Content-Length: 100\r\n\r\n{\"name\":", 0},
      {"garbage", std::string("\x00\x01\x02 \r\n\r\n", 8), 0},
      {"bad version", "GET /healthz HTTP/9.9\r\n\r\n", 0},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    const std::string raw = exchange(port, c.bytes);
    const auto got = statuses(raw);
    if (c.want) {
      REQUIRE(got.size() == 1);
      CHECK(got[0] == c.want);
    }
    for (int status : got) CHECK((status >= 400 && status < 500));
    if (!got.empty()) {
      CHECK(raw.find("application/problem+json") != std::string::npos);
      const size_t body = raw.find("\r\n\r\n");
      REQUIRE(body != std::string::npos);
      CHECK(nlohmann::json::accept(raw.substr(body + 4)));
    }
    HttpClient check("127.0.0.1", port);
    REQUIRE(check.get("/healthz").status == 200);
  }

  // Pipelining: two requests in one write are both answered, in order.
  const std::string two = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n";
  CHECK(statuses(exchange(port, two)) == std::vector<int>{200, 404});
  CHECK(mufld.stop(SIGTERM) == 0);
}
