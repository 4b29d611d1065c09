#pragma once
// Certificates for the TLS tests, made by the openssl command (scripts/setup installs it), and
// the options of an HTTPS client that trusts one.
#include <string>

#include "cli/http_client.h"

namespace mufl::testing {

class TempDir;

struct TestCertificate {
  std::string cert_file;  // PEM, self-signed, CN and subjectAltName IP:127.0.0.1, valid for a day
  std::string key_file;   // its unencrypted PEM RSA key
};

// Writes `name`.crt and `name`.key into `dir`. Throws std::runtime_error, with openssl's
// output, when openssl cannot be run or fails.
TestCertificate make_test_certificate(const TempDir& dir, const std::string& name = "server");

// A client for https://127.0.0.1 that trusts `ca_file` ("" for the system's trust store), with
// the tests' generous timeout.
client::ClientOptions https_options(const std::string& ca_file);

}  // namespace mufl::testing
