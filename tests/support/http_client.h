#pragma once
// The tests' HTTP client: the one muflctl uses (cli/http_client.h), with a timeout generous
// enough for a loaded machine, plus raw_exchange for requests no well-behaved client sends.
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

#include "cli/http_client.h"

namespace mufl::testing {

using ClientResponse = client::Response;

class HttpClient : public client::HttpClient {
 public:
  // Throws std::runtime_error from request(), get(), post() and del() when the server cannot
  // be reached or does not answer within 300 s.
  HttpClient(std::string host, uint16_t port)
      : client::HttpClient(std::move(host), port, client::ClientOptions{std::chrono::seconds(300)}) {}
};

// Sends `raw` bytes on a new connection, half-closes, and returns everything the server sent
// back until it closed. For requests no well-behaved client would send.
std::string raw_exchange(const std::string& host, uint16_t port, const std::string& raw);

}  // namespace mufl::testing
