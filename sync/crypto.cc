// The OpenSSL adapter of sync/ for signatures, certificates and sealing (X25519, HKDF,
// AES-256-GCM).
#include "sync/crypto.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <cstdlib>
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
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, Deleter<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>>;

constexpr size_t kGcmTagBytes = 16;
constexpr size_t kGcmNonceBytes = 12;
constexpr size_t kAesKeyBytes = 32;
constexpr size_t kX25519Bytes = 32;
// EVP_*Update takes an int length: longer inputs go through in pieces of this size.
constexpr size_t kCipherChunk = size_t{1} << 30;

const unsigned char* U(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}
unsigned char* U(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }

std::string BioText(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  return size > 0 ? std::string(data, static_cast<size_t>(size)) : std::string();
}


Bio MemBio(std::string_view data) {
  return Bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

// An X25519 private key from PKCS#8 PEM.
Result<Pkey> ReadX25519Private(std::string_view pem) {
  if (pem.size() > (1 << 16)) return InvalidArgumentError("key too large");
  Bio bio = MemBio(pem);
  Pkey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (!key || EVP_PKEY_id(key.get()) != EVP_PKEY_X25519) {
    return InvalidArgumentError("not an X25519 private key in PEM");
  }
  return key;
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

Result<X25519KeyPem> GenerateX25519Key() {
  Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519"));
  if (!key) {
    ERR_clear_error();
    return InternalError("generating an X25519 key failed");
  }
  Bio priv(BIO_new(BIO_s_mem()));
  Bio pub(BIO_new(BIO_s_mem()));
  if (!priv || !pub ||
      PEM_write_bio_PKCS8PrivateKey(priv.get(), key.get(), nullptr, nullptr, 0, nullptr,
                                    nullptr) != 1 ||
      PEM_write_bio_PUBKEY(pub.get(), key.get()) != 1) {
    ERR_clear_error();
    return InternalError("writing an X25519 key as PEM failed");
  }
  return X25519KeyPem{.private_pem = BioText(priv.get()), .public_pem = BioText(pub.get())};
}

Result<std::string> X25519RawPublicKey(std::string_view pem) {
  if (pem.size() > (1 << 16)) return InvalidArgumentError("key too large");
  Pkey key;
  {
    Bio bio = MemBio(pem);
    key.reset(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  }
  if (!key) {
    Bio bio = MemBio(pem);
    key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  }
  ERR_clear_error();
  if (!key || EVP_PKEY_id(key.get()) != EVP_PKEY_X25519) {
    return InvalidArgumentError("not an X25519 key in PEM");
  }
  std::string raw(kX25519Bytes, '\0');
  size_t len = raw.size();
  if (EVP_PKEY_get_raw_public_key(key.get(), U(raw), &len) != 1 || len != kX25519Bytes) {
    ERR_clear_error();
    return InternalError("reading the raw X25519 public key failed");
  }
  return raw;
}

Result<std::string> X25519SharedSecret(std::string_view private_pem,
                                       std::string_view peer_public) {
  OUTPOST_ASSIGN_OR_RETURN(Pkey key, ReadX25519Private(private_pem));
  if (peer_public.size() != kX25519Bytes) {
    return InvalidArgumentError("an X25519 public key is 32 bytes");
  }
  Pkey peer(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, U(peer_public),
                                        peer_public.size()));
  PkeyCtx ctx(EVP_PKEY_CTX_new(key.get(), nullptr));
  std::string secret(kX25519Bytes, '\0');
  size_t len = secret.size();
  bool ok = peer && ctx && EVP_PKEY_derive_init(ctx.get()) == 1 &&
            EVP_PKEY_derive_set_peer(ctx.get(), peer.get()) == 1 &&
            EVP_PKEY_derive(ctx.get(), U(secret), &len) == 1 && len == kX25519Bytes;
  ERR_clear_error();
  // OpenSSL refuses an all-zero result; check too, so no build of it can hand one back.
  if (!ok || std::all_of(secret.begin(), secret.end(), [](char c) { return c == 0; })) {
    return PermissionDeniedError("X25519 key agreement failed");
  }
  return secret;
}

Result<std::string> HkdfSha256(std::string_view secret, std::string_view salt,
                               std::string_view info, size_t length) {
  if (length == 0 || length > 255 * 32 || secret.empty() || info.size() > 1024 ||
      secret.size() > (1 << 16) || salt.size() > (1 << 16)) {
    return InvalidArgumentError("HKDF arguments out of range");
  }
  PkeyCtx ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr));
  std::string out(length, '\0');
  size_t len = out.size();
  // An empty salt is, by RFC 5869, a string of HashLen zeros: OpenSSL's default.
  bool ok = ctx && EVP_PKEY_derive_init(ctx.get()) == 1 &&
            EVP_PKEY_CTX_set_hkdf_md(ctx.get(), EVP_sha256()) == 1 &&
            (salt.empty() || EVP_PKEY_CTX_set1_hkdf_salt(ctx.get(), U(salt),
                                                         static_cast<int>(salt.size())) == 1) &&
            EVP_PKEY_CTX_set1_hkdf_key(ctx.get(), U(secret), static_cast<int>(secret.size())) ==
                1 &&
            (info.empty() || EVP_PKEY_CTX_add1_hkdf_info(ctx.get(), U(info),
                                                         static_cast<int>(info.size())) == 1) &&
            EVP_PKEY_derive(ctx.get(), U(out), &len) == 1 && len == length;
  ERR_clear_error();
  if (!ok) return InternalError("HKDF-SHA256 failed");
  return out;
}

std::string Sha256Raw(std::string_view data) {
  std::string out(32, '\0');
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), U(out), &len, EVP_sha256(), nullptr) != 1 ||
      len != 32) {
    // A digest over memory cannot fail short of a broken library: never hand back zeros.
    std::abort();
  }
  return out;
}

Result<std::string> AesGcmSeal(std::string_view key, std::string_view nonce,
                               std::string_view aad, std::string_view plaintext) {
  if (key.size() != kAesKeyBytes || nonce.size() != kGcmNonceBytes || aad.size() > (1 << 20)) {
    return InvalidArgumentError("AES-256-GCM needs a 32-byte key and a 12-byte nonce");
  }
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  std::string out(plaintext.size() + kGcmTagBytes, '\0');
  int len = 0;
  bool ok = ctx &&
            EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kGcmNonceBytes, nullptr) == 1 &&
            EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, U(key), U(nonce)) == 1 &&
            (aad.empty() ||
             EVP_EncryptUpdate(ctx.get(), nullptr, &len, U(aad), static_cast<int>(aad.size())) ==
                 1);
  size_t done = 0;
  while (ok && done < plaintext.size()) {
    size_t n = std::min(kCipherChunk, plaintext.size() - done);
    ok = EVP_EncryptUpdate(ctx.get(), U(out) + done, &len, U(plaintext) + done,
                           static_cast<int>(n)) == 1 &&
         static_cast<size_t>(len) == n;
    done += n;
  }
  ok = ok && EVP_EncryptFinal_ex(ctx.get(), U(out) + done, &len) == 1 && len == 0 &&
       EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kGcmTagBytes, U(out) + done) == 1;
  ERR_clear_error();
  if (!ok) return InternalError("AES-256-GCM encryption failed");
  return out;
}

Result<std::string> AesGcmOpen(std::string_view key, std::string_view nonce,
                               std::string_view aad, std::string_view ciphertext_and_tag) {
  if (key.size() != kAesKeyBytes || nonce.size() != kGcmNonceBytes || aad.size() > (1 << 20)) {
    return InvalidArgumentError("AES-256-GCM needs a 32-byte key and a 12-byte nonce");
  }
  if (ciphertext_and_tag.size() < kGcmTagBytes) {
    return InvalidArgumentError("shorter than the GCM tag");
  }
  const size_t size = ciphertext_and_tag.size() - kGcmTagBytes;
  std::string tag(ciphertext_and_tag.substr(size));
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  std::string out(size, '\0');
  int len = 0;
  bool ok = ctx &&
            EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kGcmNonceBytes, nullptr) == 1 &&
            EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, U(key), U(nonce)) == 1 &&
            (aad.empty() ||
             EVP_DecryptUpdate(ctx.get(), nullptr, &len, U(aad), static_cast<int>(aad.size())) ==
                 1);
  size_t done = 0;
  while (ok && done < size) {
    size_t n = std::min(kCipherChunk, size - done);
    ok = EVP_DecryptUpdate(ctx.get(), U(out) + done, &len, U(ciphertext_and_tag) + done,
                           static_cast<int>(n)) == 1 &&
         static_cast<size_t>(len) == n;
    done += n;
  }
  if (!ok) {
    ERR_clear_error();
    return InternalError("AES-256-GCM decryption failed");
  }
  bool authentic =
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kGcmTagBytes, U(tag)) == 1 &&
      EVP_DecryptFinal_ex(ctx.get(), U(out) + done, &len) == 1;
  ERR_clear_error();
  if (!authentic) {
    // Nothing of an unauthenticated plaintext leaves this function.
    std::fill(out.begin(), out.end(), '\0');
    return PermissionDeniedError("authentication failed");
  }
  return out;
}

}  // namespace outpost::sync
