#include "service/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>

#include "core/file_io.h"

namespace mufl::service {

namespace ssl = boost::asio::ssl;

namespace {

// Mozilla's "intermediate" TLS 1.2 suites (ssl-config.mozilla.org, guidelines 5.7) without
// the DHE ones. TLS 1.3 suites are not set here: OpenSSL's defaults are all AEAD.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// OpenSSL's reason for a failed load ("no start line", "bad decrypt").
std::string openssl_reason(const boost::system::error_code& ec) {
  const std::string text = ec.message();
  return text.empty() ? "not valid PEM" : text;
}

Result<std::string> read_pem(const std::string& path, const char* flag) {
  auto bytes = read_file(path);
  if (!bytes.ok()) return Status::invalid_argument(std::string(flag) + " " + path + ": cannot read it: " + bytes.status().message());
  return bytes;
}

}  // namespace

Result<std::shared_ptr<boost::asio::ssl::context>> make_server_tls_context(const std::string& cert_file,
                                                                            const std::string& key_file) {
  auto cert = read_pem(cert_file, "--tls-cert");
  if (!cert.ok()) return cert.status();
  auto key = read_pem(key_file, "--tls-key");
  if (!key.ok()) return key.status();

  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_cipher_list(native, kTls12Ciphers);

  // An encrypted key fails to load instead of OpenSSL asking for its passphrase on a terminal.
  ctx->set_password_callback([](size_t, ssl::context::password_purpose) { return std::string(); });
  boost::system::error_code ec;
  // The key first: loaded after the certificate, a key that does not match fails like one
  // that is not a key at all. A certificate loaded after a mismatched key drops the key, which
  // SSL_CTX_check_private_key then reports.
  ctx->use_private_key(boost::asio::buffer(*key), ssl::context::pem, ec);
  if (ec) return Status::invalid_argument("--tls-key " + key_file + ": not a PEM private key: " + openssl_reason(ec));
  ctx->use_certificate_chain(boost::asio::buffer(*cert), ec);
  if (ec) return Status::invalid_argument("--tls-cert " + cert_file + ": not a PEM certificate: " + openssl_reason(ec));
  if (SSL_CTX_check_private_key(native) != 1) {
    ERR_clear_error();
    return Status::invalid_argument("--tls-key " + key_file + " does not belong to the certificate in --tls-cert " +
                                    cert_file);
  }
  return ctx;
}

}  // namespace mufl::service
