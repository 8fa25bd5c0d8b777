// The certificate half of sync/crypto.h: export files and receipts name their signer by a
// certificate (FORMAT.md sections 4 and 5), whose key must be Ed25519. The X.509 work is the
// crypto adapter's (base/crypto/x509.h); TLS is base/http/client.cc's.
#include "base/crypto/crypto.h"
#include "base/crypto/x509.h"
#include "sync/crypto.h"

namespace outpost::sync {

Status VerifyWithCertificate(std::string_view cert_pem, std::string_view data,
                             std::string_view signature) {
  OUTPOST_ASSIGN_OR_RETURN(std::string public_key,
                           crypto::CertificatePublicKey(cert_pem, crypto::KeyType::kEd25519));
  if (!crypto::Ed25519Verify(public_key, data, signature)) {
    return PermissionDeniedError("the signature does not verify");
  }
  return Status();
}

Result<CertificateNames> ReadCertificateNames(std::string_view cert_pem) {
  OUTPOST_ASSIGN_OR_RETURN(crypto::CertificateInfo info, crypto::ParseCertificatePem(cert_pem));
  return CertificateNames{.common_name = std::move(info.common_name),
                          .organization = std::move(info.organization),
                          .serial_hex = std::move(info.serial)};
}

}  // namespace outpost::sync
