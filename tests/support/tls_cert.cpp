#include "tests/support/tls_cert.h"

#include <stdexcept>

#include "tests/support/mufld_process.h"
#include "tests/support/temp_dir.h"

namespace mufl::testing {

TestCertificate make_test_certificate(const TempDir& dir, const std::string& name) {
  TestCertificate c{dir.file(name + ".crt"), dir.file(name + ".key")};
  const std::string command = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1"
                              " -addext subjectAltName=IP:127.0.0.1 -keyout '" + c.key_file + "' -out '" +
                              c.cert_file + "'";
  std::string output;
  if (run_command(command, output) != 0)
    throw std::runtime_error("openssl could not make a test certificate (is it installed?): " + output);
  return c;
}

client::ClientOptions https_options(const std::string& ca_file) {
  client::ClientOptions o;
  o.timeout = std::chrono::seconds(300);
  o.tls = true;
  o.ca_file = ca_file;
  return o;
}

}  // namespace mufl::testing
