#pragma once
// Parsing one HTTP/1.1 request from bytes in memory, exactly as HttpServer parses what it reads
// from a socket (the same Beast parser, limits and conversion, service/beast_request.h). For
// the fuzz harness (tests/fuzz/) and tests that need the server's parser without a socket.
//
// Thread safety: a pure function.
#include <cstddef>
#include <string_view>

#include "service/http_types.h"

namespace mufl::service {

struct ParseResult {
  enum class Kind {
    kRequest,     // `request` holds a whole request
    kIncomplete,  // the bytes end before the request does (a server would read on)
    kError,       // `error` is the reply the server sends before it closes the connection
  };
  Kind kind = Kind::kIncomplete;
  HttpRequest request;
  HttpResponse error;
  size_t consumed = 0;  // bytes the request took (kRequest): a pipelined next one starts here
  bool keep_alive = false;  // kRequest: the connection stays open after the reply
};

// Parses the first request in `bytes` with a body limit of `body_limit` bytes.
ParseResult parse_http_request(std::string_view bytes, size_t body_limit);

}  // namespace mufl::service
