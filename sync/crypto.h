// Signatures and certificates for export files and receipts (FORMAT.md sections 4 and 5):
// Ed25519 over the file's bytes, X.509 certificates in PEM checked against a CA. crypto.cc is
// the OpenSSL adapter of sync/ for these (https_client.cc is the one for TLS). Thread-safe.
#ifndef OUTPOST_SYNC_CRYPTO_H_
#define OUTPOST_SYNC_CRYPTO_H_

#include <string>
#include <string_view>

#include "base/status.h"

namespace outpost::sync {

// The Ed25519 signature (64 bytes) of `data` with the PEM (PKCS#8) private key `key_pem`.
// InvalidArgument for a key that is not an Ed25519 private key.
Result<std::string> SignEd25519(std::string_view key_pem, std::string_view data);

// Checks `signature` over `data` with the public key of the PEM certificate `cert_pem`
// (Ed25519). PermissionDenied when it does not verify; InvalidArgument for a certificate that
// does not parse or holds another kind of key.
Status VerifyWithCertificate(std::string_view cert_pem, std::string_view data,
                             std::string_view signature);

// Checks that `cert_pem` was issued by the CA certificate(s) in `ca_pem` and is valid now.
// PermissionDenied (with OpenSSL's reason) otherwise.
Status VerifyCertificateChain(std::string_view cert_pem, std::string_view ca_pem);

struct CertificateNames {
  std::string common_name{};
  std::string organization{};
  std::string serial_hex{};  // lowercase
};
// The subject's CN and O and the serial number. InvalidArgument for a certificate that does
// not parse.
Result<CertificateNames> ReadCertificateNames(std::string_view cert_pem);

// `n` random bytes from the operating system's generator.
Result<std::string> RandomBytes(size_t n);

}  // namespace outpost::sync

#endif  // OUTPOST_SYNC_CRYPTO_H_
