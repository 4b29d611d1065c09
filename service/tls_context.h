#pragma once
// The server side of HTTPS: the OpenSSL context HttpServer serves TLS connections with. TLS 1.2
// at least; TLS 1.3 with OpenSSL's default suites; for TLS 1.2 the forward-secret AEAD suites of
// Mozilla's "intermediate" configuration (ECDHE with AES-GCM or ChaCha20-Poly1305; its DHE
// suites are left out, as mufld configures no DH parameters). No renegotiation, no compression.
#include <memory>
#include <string>

#include "core/result.h"

namespace boost::asio::ssl {
class context;
}

namespace mufl::service {

// Reads `cert_file` (PEM: the server's certificate, then any intermediate CA certificates) and
// `key_file` (its PEM private key, unencrypted) and builds a server context from them.
// kInvalidArgument, with a message that names the file and says what is wrong, when a file
// cannot be read, holds no PEM certificate or key, or the key does not belong to the
// certificate. Reads both files; blocks only for that.
Result<std::shared_ptr<boost::asio::ssl::context>> make_server_tls_context(const std::string& cert_file,
                                                                            const std::string& key_file);

}  // namespace mufl::service
