#pragma once
// A blocking HTTP/1.1 client over one keep-alive connection, for tests (Boost.Beast inside).
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace mufl::testing {

struct ClientResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

class HttpClient {
 public:
  HttpClient(std::string host, uint16_t port);
  ~HttpClient();

  // Sends one request and reads the whole response; reconnects when the server closed the
  // previous connection. Throws std::runtime_error when the server cannot be reached.
  ClientResponse request(const std::string& method, const std::string& target, const std::string& body = "",
                         const std::map<std::string, std::string>& headers = {});

  // Shorthands with a bearer token ("" sends no Authorization header).
  ClientResponse get(const std::string& target, const std::string& token = "");
  ClientResponse post(const std::string& target, const std::string& body, const std::string& token = "",
                      const std::map<std::string, std::string>& headers = {});
  ClientResponse del(const std::string& target, const std::string& token = "");

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Sends `raw` bytes on a new connection, half-closes, and returns everything the server sent
// back until it closed. For requests no well-behaved client would send.
std::string raw_exchange(const std::string& host, uint16_t port, const std::string& raw);

}  // namespace mufl::testing
