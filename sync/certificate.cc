// The OpenSSL X.509 adapter of sync/: the certificate half of sync/crypto.h (exports and
// receipts name their signer by certificate). The signature check itself is the crypto
// adapter's (base/crypto/crypto.h); TLS is https_client.cc's.
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <cctype>
#include <memory>

#include "base/crypto/crypto.h"
#include "sync/crypto.h"

namespace outpost::sync {
namespace {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Store = std::unique_ptr<X509_STORE, Deleter<X509_STORE, X509_STORE_free>>;
using StoreCtx = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;

Bio MemBio(std::string_view data) {
  return Bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

Result<X509Ptr> ParseCert(std::string_view pem) {
  if (pem.size() > (1 << 20)) return InvalidArgumentError("certificate too large");
  Bio bio = MemBio(pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (!cert) return InvalidArgumentError("not a PEM certificate");
  return cert;
}

}  // namespace

Status VerifyWithCertificate(std::string_view cert_pem, std::string_view data,
                             std::string_view signature) {
  OUTPOST_ASSIGN_OR_RETURN(X509Ptr cert, ParseCert(cert_pem));
  EVP_PKEY* key = X509_get0_pubkey(cert.get());
  std::string public_key(crypto::kEd25519PublicKeyBytes, '\0');
  size_t len = public_key.size();
  bool ed25519 = key != nullptr && EVP_PKEY_id(key) == EVP_PKEY_ED25519 &&
                 EVP_PKEY_get_raw_public_key(
                     key, reinterpret_cast<unsigned char*>(public_key.data()), &len) == 1 &&
                 len == public_key.size();
  ERR_clear_error();
  if (!ed25519) return InvalidArgumentError("the certificate's key is not Ed25519");
  if (!crypto::Ed25519Verify(public_key, data, signature)) {
    return PermissionDeniedError("the signature does not verify");
  }
  return Status();
}

Status VerifyCertificateChain(std::string_view cert_pem, std::string_view ca_pem) {
  OUTPOST_ASSIGN_OR_RETURN(X509Ptr cert, ParseCert(cert_pem));
  Store store(X509_STORE_new());
  Bio bio = MemBio(ca_pem);
  int cas = 0;
  while (X509* ca = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(store.get(), ca);
    X509_free(ca);
    ++cas;
  }
  ERR_clear_error();
  if (cas == 0) return InvalidArgumentError("no CA certificate in the trust anchor");
  StoreCtx ctx(X509_STORE_CTX_new());
  if (X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr) != 1) {
    ERR_clear_error();
    return InternalError("cannot set up certificate verification");
  }
  int ok = X509_verify_cert(ctx.get());
  int error = X509_STORE_CTX_get_error(ctx.get());
  ERR_clear_error();
  if (ok != 1) {
    return PermissionDeniedError(std::string("certificate not trusted: ") +
                                 X509_verify_cert_error_string(error));
  }
  return Status();
}

Result<CertificateNames> ReadCertificateNames(std::string_view cert_pem) {
  OUTPOST_ASSIGN_OR_RETURN(X509Ptr cert, ParseCert(cert_pem));
  CertificateNames out;
  char buf[256] = {};
  X509_NAME* subject = X509_get_subject_name(cert.get());
  if (X509_NAME_get_text_by_NID(subject, NID_commonName, buf, sizeof(buf)) > 0) {
    out.common_name = buf;
  }
  buf[0] = '\0';
  if (X509_NAME_get_text_by_NID(subject, NID_organizationName, buf, sizeof(buf)) > 0) {
    out.organization = buf;
  }
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert.get()), nullptr);
  if (bn != nullptr) {
    char* hex = BN_bn2hex(bn);
    out.serial_hex = hex;
    for (char& c : out.serial_hex) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    OPENSSL_free(hex);
    BN_free(bn);
  }
  ERR_clear_error();
  return out;
}

}  // namespace outpost::sync
