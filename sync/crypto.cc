// The OpenSSL adapter of sync/ for signatures and certificates.
#include "sync/crypto.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <memory>

namespace outpost::sync {
namespace {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using Pkey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
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

Result<std::string> SignEd25519(std::string_view key_pem, std::string_view data) {
  Bio bio = MemBio(key_pem);
  Pkey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (!key || EVP_PKEY_id(key.get()) != EVP_PKEY_ED25519) {
    return InvalidArgumentError("not an Ed25519 private key in PEM");
  }
  MdCtx ctx(EVP_MD_CTX_new());
  std::string sig(64, '\0');
  size_t len = sig.size();
  if (EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
    ERR_clear_error();
    return InternalError("Ed25519 signing failed");
  }
  sig.resize(len);
  return sig;
}

Status VerifyWithCertificate(std::string_view cert_pem, std::string_view data,
                             std::string_view signature) {
  OUTPOST_ASSIGN_OR_RETURN(X509Ptr cert, ParseCert(cert_pem));
  EVP_PKEY* key = X509_get0_pubkey(cert.get());
  if (key == nullptr || EVP_PKEY_id(key) != EVP_PKEY_ED25519) {
    ERR_clear_error();
    return InvalidArgumentError("the certificate's key is not Ed25519");
  }
  MdCtx ctx(EVP_MD_CTX_new());
  int ok = EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key) == 1 &&
           EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                            signature.size(), reinterpret_cast<const unsigned char*>(data.data()),
                            data.size()) == 1;
  ERR_clear_error();
  if (!ok) return PermissionDeniedError("the signature does not verify");
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
    for (char& c : out.serial_hex) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    OPENSSL_free(hex);
    BN_free(bn);
  }
  ERR_clear_error();
  return out;
}

Result<std::string> RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    ERR_clear_error();
    return UnavailableError("no random bytes");
  }
  return out;
}

}  // namespace outpost::sync
