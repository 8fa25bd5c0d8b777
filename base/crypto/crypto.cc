// The OpenSSL (libcrypto) adapter of Outpost for primitives (see crypto.h). Every OpenSSL
// error is cleared from the thread's queue before a function returns, so that no stale error
// is reported by a later, unrelated call.
#include "base/crypto/crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>

#include "base/coding.h"
#include "base/file.h"
#include "base/crypto/openssl_handles.h"

namespace outpost::crypto {
namespace {

using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, Deleter<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>>;
using KdfPtr = std::unique_ptr<EVP_KDF, Deleter<EVP_KDF, EVP_KDF_free>>;
using KdfCtxPtr = std::unique_ptr<EVP_KDF_CTX, Deleter<EVP_KDF_CTX, EVP_KDF_CTX_free>>;

// OpenSSL's int-sized length arguments take longer inputs in pieces of this size.
constexpr size_t kChunk = size_t{1} << 30;
// The largest PEM text read (a key is a few hundred bytes).
constexpr size_t kMaxPemBytes = size_t{1} << 20;

const unsigned char* U(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}
unsigned char* U(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }

// The first error on OpenSSL's queue as text; clears the queue.
std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  std::string text = "unknown OpenSSL error";
  if (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    text = buf;
  }
  ERR_clear_error();
  return text;
}

int PkeyId(KeyType type) { return type == KeyType::kEd25519 ? EVP_PKEY_ED25519 : EVP_PKEY_X25519; }
const char* KeyName(KeyType type) { return type == KeyType::kEd25519 ? "Ed25519" : "X25519"; }

Result<PkeyPtr> RawPrivateKey(KeyType type, std::string_view key) {
  if (key.size() != 32) {
    return InvalidArgumentError(std::string("an ") + KeyName(type) +
                                " private key is 32 bytes, not " + std::to_string(key.size()));
  }
  PkeyPtr pkey(EVP_PKEY_new_raw_private_key(PkeyId(type), nullptr, U(key), key.size()));
  if (!pkey)
    return InternalError(std::string("OpenSSL refused an ") + KeyName(type) +
                         " private key: " + OpenSslError());
  return pkey;
}

Result<std::string> RawPublicOf(EVP_PKEY* key) {
  std::string pub(32, '\0');
  size_t len = pub.size();
  if (EVP_PKEY_get_raw_public_key(key, U(pub), &len) != 1 || len != pub.size()) {
    return InternalError("OpenSSL could not give the raw public key: " + OpenSslError());
  }
  return pub;
}

}  // namespace

// ---- Hashes

std::string Sha256(std::string_view data) {
  std::string out(kSha256Bytes, '\0');
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), U(out), &len, EVP_sha256(), nullptr) != 1 ||
      len != kSha256Bytes) {
    // A digest over memory cannot fail short of a broken library: never hand back zeros.
    std::abort();
  }
  return out;
}

std::string Sha256Hex(std::string_view data) { return HexEncode(Sha256(data)); }

struct Sha256Hasher::State {
  MdCtxPtr ctx{EVP_MD_CTX_new()};
};

Sha256Hasher::Sha256Hasher() : state_(std::make_unique<State>()) {
  if (!state_->ctx) std::abort();  // out of memory
  Reset();
}
Sha256Hasher::~Sha256Hasher() = default;

void Sha256Hasher::Reset() {
  if (EVP_DigestInit_ex(state_->ctx.get(), EVP_sha256(), nullptr) != 1) std::abort();
}

void Sha256Hasher::Update(std::string_view data) {
  if (EVP_DigestUpdate(state_->ctx.get(), data.data(), data.size()) != 1) std::abort();
}

std::string Sha256Hasher::Finish() {
  std::string out(kSha256Bytes, '\0');
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(state_->ctx.get(), U(out), &len) != 1 || len != kSha256Bytes) {
    std::abort();
  }
  return out;
}

std::string HmacSha256(std::string_view key, std::string_view message) {
  std::string out(kSha256Bytes, '\0');
  unsigned int len = 0;
  // A non-null pointer keeps OpenSSL from treating an empty key as "no key".
  static const unsigned char kEmpty = 0;
  const void* key_data = key.empty() ? static_cast<const void*>(&kEmpty) : key.data();
  if (key.size() > INT_MAX ||
      HMAC(EVP_sha256(), key_data, static_cast<int>(key.size()), U(message), message.size(), U(out),
           &len) == nullptr ||
      len != kSha256Bytes) {
    // Only on allocation failure inside OpenSSL (or a key over 2 GiB); nothing can continue.
    std::abort();
  }
  return out;
}

Result<std::string> HkdfSha256(std::string_view secret, std::string_view salt,
                               std::string_view info, size_t length) {
  if (secret.empty() || length == 0 || length > 255 * kSha256Bytes) {
    return InvalidArgumentError("HKDF-SHA256 needs a secret and a length from 1 to 8160 bytes");
  }
  KdfPtr kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  KdfCtxPtr ctx(kdf ? EVP_KDF_CTX_new(kdf.get()) : nullptr);
  if (!ctx) return InternalError("HKDF unavailable: " + OpenSslError());
  char digest[] = "SHA256";
  OSSL_PARAM params[5];
  size_t n = 0;
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                                  const_cast<char*>(secret.data()), secret.size());
  // Left out when empty: OpenSSL then uses HashLen zeros, as RFC 5869 says.
  if (!salt.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                                    const_cast<char*>(salt.data()), salt.size());
  }
  if (!info.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                                    const_cast<char*>(info.data()), info.size());
  }
  params[n] = OSSL_PARAM_construct_end();
  std::string out(length, '\0');
  if (EVP_KDF_derive(ctx.get(), U(out), length, params) != 1) {
    return InternalError("HKDF-SHA256 failed: " + OpenSslError());
  }
  return out;
}

// ---- Randomness and comparison

Result<std::string> RandomBytes(size_t n) {
  std::string out(n, '\0');
  for (size_t done = 0; done < n;) {
    size_t piece = std::min(kChunk, n - done);
    if (RAND_bytes(U(out) + done, static_cast<int>(piece)) != 1) {
      return UnavailableError("no random bytes: " + OpenSslError());
    }
    done += piece;
  }
  return out;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// ---- Ed25519

Result<Ed25519KeyPair> Ed25519KeyFromSeed(std::string_view seed) {
  if (seed.size() != kEd25519SeedBytes) return InvalidArgumentError("an Ed25519 seed is 32 bytes");
  OUTPOST_ASSIGN_OR_RETURN(PkeyPtr key, RawPrivateKey(KeyType::kEd25519, seed));
  OUTPOST_ASSIGN_OR_RETURN(std::string pub, RawPublicOf(key.get()));
  return Ed25519KeyPair{.seed = std::string(seed), .public_key = std::move(pub)};
}

Result<Ed25519KeyPair> Ed25519GenerateKey() {
  OUTPOST_ASSIGN_OR_RETURN(std::string seed, RandomBytes(kEd25519SeedBytes));
  return Ed25519KeyFromSeed(seed);
}

Result<std::string> Ed25519Sign(std::string_view seed, std::string_view message) {
  if (seed.size() != kEd25519SeedBytes) return InvalidArgumentError("an Ed25519 seed is 32 bytes");
  OUTPOST_ASSIGN_OR_RETURN(PkeyPtr key, RawPrivateKey(KeyType::kEd25519, seed));
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1) {
    return InternalError("OpenSSL could not start an Ed25519 signature: " + OpenSslError());
  }
  std::string sig(kEd25519SignatureBytes, '\0');
  size_t len = sig.size();
  if (EVP_DigestSign(ctx.get(), U(sig), &len, U(message), message.size()) != 1 ||
      len != kEd25519SignatureBytes) {
    return InternalError("OpenSSL could not sign: " + OpenSslError());
  }
  return sig;
}

bool Ed25519Verify(std::string_view public_key, std::string_view message,
                   std::string_view signature) {
  if (public_key.size() != kEd25519PublicKeyBytes || signature.size() != kEd25519SignatureBytes) {
    return false;
  }
  PkeyPtr key(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, U(public_key), public_key.size()));
  MdCtxPtr ctx(EVP_MD_CTX_new());
  bool ok =
      key && ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) == 1 &&
      EVP_DigestVerify(ctx.get(), U(signature), signature.size(), U(message), message.size()) == 1;
  ERR_clear_error();
  return ok;
}

// ---- X25519

Result<std::string> X25519GeneratePrivateKey() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519"));
  if (!key) return UnavailableError("generating an X25519 key failed: " + OpenSslError());
  std::string raw(kX25519KeyBytes, '\0');
  size_t len = raw.size();
  if (EVP_PKEY_get_raw_private_key(key.get(), U(raw), &len) != 1 || len != kX25519KeyBytes) {
    return InternalError("reading a raw X25519 private key failed: " + OpenSslError());
  }
  return raw;
}

Result<std::string> X25519PublicKey(std::string_view private_key) {
  OUTPOST_ASSIGN_OR_RETURN(PkeyPtr key, RawPrivateKey(KeyType::kX25519, private_key));
  return RawPublicOf(key.get());
}

Result<std::string> X25519(std::string_view private_key, std::string_view peer_public_key) {
  if (peer_public_key.size() != kX25519KeyBytes) {
    return InvalidArgumentError("an X25519 public key is 32 bytes");
  }
  OUTPOST_ASSIGN_OR_RETURN(PkeyPtr key, RawPrivateKey(KeyType::kX25519, private_key));
  PkeyPtr peer(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, U(peer_public_key),
                                           peer_public_key.size()));
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new(key.get(), nullptr));
  std::string secret(kX25519KeyBytes, '\0');
  size_t len = secret.size();
  bool ok = peer && ctx && EVP_PKEY_derive_init(ctx.get()) == 1 &&
            EVP_PKEY_derive_set_peer(ctx.get(), peer.get()) == 1 &&
            EVP_PKEY_derive(ctx.get(), U(secret), &len) == 1 && len == kX25519KeyBytes;
  ERR_clear_error();
  // OpenSSL refuses an all-zero result; check too, so that no build of it can hand one back.
  if (!ok || std::all_of(secret.begin(), secret.end(), [](char c) { return c == 0; })) {
    return PermissionDeniedError("X25519 key agreement failed");
  }
  return secret;
}

// ---- Keys in PEM

Result<std::string> PrivateKeyFromPem(KeyType type, std::string_view pem) {
  if (pem.size() > kMaxPemBytes) return InvalidArgumentError("key too large");
  BioPtr bio = MemBio(pem);
  PkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  ERR_clear_error();
  if (!key || EVP_PKEY_id(key.get()) != PkeyId(type)) {
    return InvalidArgumentError(std::string("not an ") + KeyName(type) + " private key in PEM");
  }
  std::string raw(32, '\0');
  size_t len = raw.size();
  if (EVP_PKEY_get_raw_private_key(key.get(), U(raw), &len) != 1 || len != raw.size()) {
    return InternalError("reading a raw private key failed: " + OpenSslError());
  }
  return raw;
}

Result<std::string> PublicKeyFromPem(KeyType type, std::string_view pem) {
  if (pem.size() > kMaxPemBytes) return InvalidArgumentError("key too large");
  PkeyPtr key;
  {
    BioPtr bio = MemBio(pem);
    if (bio) key.reset(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  }
  if (!key) {
    BioPtr bio = MemBio(pem);
    if (bio) key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  }
  ERR_clear_error();
  if (!key || EVP_PKEY_id(key.get()) != PkeyId(type)) {
    return InvalidArgumentError(std::string("not an ") + KeyName(type) + " key in PEM");
  }
  return RawPublicOf(key.get());
}

Result<std::string> PrivateKeyToPem(KeyType type, std::string_view private_key) {
  OUTPOST_ASSIGN_OR_RETURN(PkeyPtr key, RawPrivateKey(type, private_key));
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PKCS8PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr,
                                            nullptr) != 1) {
    return InternalError("writing a private key as PEM failed: " + OpenSslError());
  }
  return BioText(bio.get());
}

Result<std::string> PublicKeyToPem(KeyType type, std::string_view public_key) {
  if (public_key.size() != 32) {
    return InvalidArgumentError(std::string("an ") + KeyName(type) + " public key is 32 bytes");
  }
  PkeyPtr key(EVP_PKEY_new_raw_public_key(PkeyId(type), nullptr, U(public_key), public_key.size()));
  if (!key) {
    return InvalidArgumentError(std::string("not an ") + KeyName(type) +
                                " public key: " + OpenSslError());
  }
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key.get()) != 1) {
    return InternalError("writing a public key as PEM failed: " + OpenSslError());
  }
  return BioText(bio.get());
}

// ---- AES-256-GCM

Status AesGcmSealAppend(std::string_view key, std::string_view nonce, std::string_view aad,
                        std::string_view plaintext, std::string* out) {
  if (key.size() != kAes256KeyBytes || nonce.size() != kGcmNonceBytes) {
    return InvalidArgumentError("AES-256-GCM needs a 32-byte key and a 12-byte nonce");
  }
  const size_t start = out->size();
  out->resize(start + plaintext.size() + kGcmTagBytes);
  unsigned char* dst = U(*out) + start;
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  bool ok = ctx &&
            EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kGcmNonceBytes, nullptr) == 1 &&
            EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, U(key), U(nonce)) == 1;
  for (size_t done = 0; ok && done < aad.size();) {
    size_t n = std::min(kChunk, aad.size() - done);
    ok = EVP_EncryptUpdate(ctx.get(), nullptr, &len, U(aad) + done, static_cast<int>(n)) == 1;
    done += n;
  }
  size_t done = 0;
  while (ok && done < plaintext.size()) {
    size_t n = std::min(kChunk, plaintext.size() - done);
    ok = EVP_EncryptUpdate(ctx.get(), dst + done, &len, U(plaintext) + done, static_cast<int>(n)) ==
             1 &&
         static_cast<size_t>(len) == n;
    done += n;
  }
  ok = ok && EVP_EncryptFinal_ex(ctx.get(), dst + done, &len) == 1 && len == 0 &&
       EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kGcmTagBytes, dst + done) == 1;
  if (!ok) {
    out->resize(start);
    return InternalError("AES-256-GCM encryption failed: " + OpenSslError());
  }
  return Status::Ok();
}

Result<std::string> AesGcmSeal(std::string_view key, std::string_view nonce, std::string_view aad,
                               std::string_view plaintext) {
  std::string out;
  OUTPOST_RETURN_IF_ERROR(AesGcmSealAppend(key, nonce, aad, plaintext, &out));
  return out;
}

Result<std::string> AesGcmOpen(std::string_view key, std::string_view nonce, std::string_view aad,
                               std::string_view ciphertext_and_tag) {
  if (key.size() != kAes256KeyBytes || nonce.size() != kGcmNonceBytes) {
    return InvalidArgumentError("AES-256-GCM needs a 32-byte key and a 12-byte nonce");
  }
  if (ciphertext_and_tag.size() < kGcmTagBytes) {
    return InvalidArgumentError("shorter than the GCM tag");
  }
  const size_t size = ciphertext_and_tag.size() - kGcmTagBytes;
  std::string tag(ciphertext_and_tag.substr(size));
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  std::string out(size, '\0');
  int len = 0;
  bool ok = ctx &&
            EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kGcmNonceBytes, nullptr) == 1 &&
            EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, U(key), U(nonce)) == 1;
  for (size_t done = 0; ok && done < aad.size();) {
    size_t n = std::min(kChunk, aad.size() - done);
    ok = EVP_DecryptUpdate(ctx.get(), nullptr, &len, U(aad) + done, static_cast<int>(n)) == 1;
    done += n;
  }
  size_t done = 0;
  while (ok && done < size) {
    size_t n = std::min(kChunk, size - done);
    ok = EVP_DecryptUpdate(ctx.get(), U(out) + done, &len, U(ciphertext_and_tag) + done,
                           static_cast<int>(n)) == 1 &&
         static_cast<size_t>(len) == n;
    done += n;
  }
  if (!ok) return InternalError("AES-256-GCM decryption failed: " + OpenSslError());
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

Result<std::string> Sha256HexOfFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "opening", path);
  Sha256Hasher hasher;
  std::string buffer(size_t{1} << 20, '\0');
  Status status;
  for (;;) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = ErrnoToStatus(errno, "reading", path);
      break;
    }
    if (n == 0) break;
    hasher.Update(std::string_view(buffer.data(), static_cast<size_t>(n)));
  }
  ::close(fd);
  OUTPOST_RETURN_IF_ERROR(status);
  return HexEncode(hasher.Finish());
}

}  // namespace outpost::crypto
