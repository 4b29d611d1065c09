// The HTTP server's lifecycle against the real mufld: SIGTERM while a stalled event-stream
// client (it never reads) and idle keep-alive connections are open ends the process cleanly
// (exit 0) within the drain timeout. Under the ASan build this also proves that no session
// touches the server's members after they are destroyed.
#include <catch2/catch.hpp>

#include <signal.h>

#include <boost/asio.hpp>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "tests/support/http_client.h"
#include "tests/support/mufld_process.h"
#include "tests/support/temp_dir.h"

using namespace mufl::testing;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {
const std::string kAdmin = "mufl_http_lifecycle_admin_token";
}  // namespace

TEST_CASE("e2e http lifecycle: SIGTERM with a stalled event stream and open keep-alive sessions exits 0 in time") {
  TempDir dir;
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, {"--devices", "none", "--event-keepalive", "0.01"});

  // Idle keep-alive sessions, each after one answered request.
  std::vector<std::unique_ptr<HttpClient>> idle;
  for (int i = 0; i < 4; ++i) {
    idle.push_back(std::make_unique<HttpClient>("127.0.0.1", mufld.port()));
    REQUIRE(idle.back()->get("/healthz").status == 200);
  }

  // A stalled event stream: a small receive buffer, the request sent, nothing ever read, while
  // the 10 ms keep-alive fills the socket buffers.
  asio::io_context ioc;
  tcp::socket stalled(ioc);
  stalled.open(tcp::v4());
  stalled.set_option(asio::socket_base::receive_buffer_size(1024));
  stalled.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), mufld.port()));
  asio::write(stalled, asio::buffer("GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + kAdmin +
                                    "\r\n\r\n"));
  // Half a request on another connection: a session in the middle of reading.
  tcp::socket partial(ioc);
  partial.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), mufld.port()));
  asio::write(partial, asio::buffer(std::string("GET /healthz HTTP/1.1\r\nHost")));
  // One more request answered: the server is up and serving while all of the above are open.
  HttpClient admin("127.0.0.1", mufld.port());
  REQUIRE(admin.get("/healthz").status == 200);

  const auto start = std::chrono::steady_clock::now();
  const int code = mufld.stop(SIGTERM);
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(code == 0);
  // The half-read request keeps the drain going until the default drain timeout (10 s); the
  // stalled stream is cancelled at once. A margin for a loaded machine.
  INFO("shutdown took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
  CHECK(took < 10s + 10s);
}
