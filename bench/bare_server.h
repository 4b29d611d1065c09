#pragma once
// BareServer: the least an HTTP/1.1 server on Boost.Beast does: accept keep-alive connections
// on 127.0.0.1 and answer every request, whatever it asks, with one fixed 200 response built
// once. bench/api measures it with the same client as mufld, in the same process, so that the
// ratio mufld / bare says how much of the machine's (and the client's) limit mufl reaches.
//
// Thread safety: construct and destroy on one thread; it serves on its own threads meanwhile.
#include <cstdint>
#include <memory>
#include <string>

namespace mufl::bench {

class BareServer {
 public:
  // Listens on 127.0.0.1 on a free port and serves `body` as `content_type` on `threads`
  // threads (at least 1) until destroyed. Throws boost::system::system_error when it cannot bind.
  BareServer(std::string body, std::string content_type, int threads);
  // Stops serving and joins its threads; open connections are dropped.
  ~BareServer();
  BareServer(const BareServer&) = delete;
  BareServer& operator=(const BareServer&) = delete;

  uint16_t port() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mufl::bench
