#include "tests/support/sse_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <stdexcept>

namespace mufl::testing {

using SteadyClock = std::chrono::steady_clock;

SseClient::SseClient(uint16_t port, const std::string& target, const std::string& token,
                     const std::map<std::string, std::string>& headers) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd_ < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw std::runtime_error("cannot connect to port " + std::to_string(port));
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n";
  if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  req += "\r\n";
  if (::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
    throw std::runtime_error("cannot send the request");

  const auto deadline = SteadyClock::now() + std::chrono::seconds(10);
  size_t end;
  while ((end = buf_.find("\r\n\r\n")) == std::string::npos)
    if (!fill(deadline)) throw std::runtime_error("no response header: " + buf_);
  const std::string head = buf_.substr(0, end);
  buf_.erase(0, end + 4);
  size_t sp = head.find(' ');
  status_ = sp == std::string::npos ? 0 : std::stoi(head.substr(sp + 1, 3));
  size_t pos = head.find("\r\n");
  while (pos != std::string::npos) {
    size_t next = head.find("\r\n", pos + 2);
    std::string field = head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
    size_t colon = field.find(':');
    if (colon != std::string::npos) {
      std::string name = field.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      size_t v = field.find_first_not_of(' ', colon + 1);
      headers_[name] = v == std::string::npos ? "" : field.substr(v);
    }
    pos = next;
  }
  if (status_ != 200) {
    const size_t length = headers_.count("content-length") ? std::stoul(headers_["content-length"]) : 0;
    while (buf_.size() < length && fill(deadline)) {
    }
    body_ = buf_.substr(0, length);
  }
}

SseClient::~SseClient() {
  if (fd_ >= 0) ::close(fd_);
}

std::string SseClient::header(const std::string& name) const {
  auto it = headers_.find(name);
  return it == headers_.end() ? "" : it->second;
}

bool SseClient::fill(SteadyClock::time_point deadline) {
  if (closed_) return false;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
  if (left <= 0) return false;
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
  char chunk[16384];
  const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
  if (n <= 0) {
    closed_ = true;
    return false;
  }
  buf_.append(chunk, static_cast<size_t>(n));
  return true;
}

std::optional<std::string> SseClient::line(SteadyClock::time_point deadline) {
  size_t nl;
  while ((nl = buf_.find('\n')) == std::string::npos)
    if (!fill(deadline)) return std::nullopt;
  std::string out = buf_.substr(0, nl);
  buf_.erase(0, nl + 1);
  if (!out.empty() && out.back() == '\r') out.pop_back();
  return out;
}

std::optional<SseEvent> SseClient::next(std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  SseEvent e;
  bool any = false;
  for (;;) {
    auto l = line(deadline);
    if (!l) return std::nullopt;
    if (l->empty()) {
      if (any) return e;
      continue;  // the end of a comment block
    }
    if ((*l)[0] == ':') {
      comments_.push_back(l->substr(l->size() > 1 && (*l)[1] == ' ' ? 2 : 1));
      continue;
    }
    const size_t colon = l->find(':');
    const std::string field = l->substr(0, colon);
    std::string value = colon == std::string::npos ? "" : l->substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.erase(0, 1);
    any = true;
    if (field == "id") e.id = value;
    else if (field == "event") e.type = value;
    else if (field == "data") e.data += (e.data.empty() ? "" : "\n") + value;
  }
}

std::vector<SseEvent> SseClient::take(size_t n, std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  std::vector<SseEvent> out;
  while (out.size() < n) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    if (left.count() <= 0) break;
    auto e = next(left);
    if (!e) break;
    out.push_back(std::move(*e));
  }
  return out;
}

bool SseClient::wait_closed(std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  while (!closed_) {
    if (!fill(deadline) && !closed_) return false;
    // Keep comments visible to the caller; drop the rest.
    size_t nl;
    while ((nl = buf_.find('\n')) != std::string::npos) {
      std::string l = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      if (!l.empty() && l[0] == ':') comments_.push_back(l.substr(l.size() > 1 && l[1] == ' ' ? 2 : 1));
    }
  }
  return true;
}

}  // namespace mufl::testing
