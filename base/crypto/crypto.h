// The crypto adapter of Outpost: the primitives every subsystem uses, over OpenSSL's libcrypto.
// crypto.cc is the only file of ours that includes OpenSSL headers for primitives (X.509
// certificates are x509.h's, in the same library; TLS has its own adapter; docs/LAYERING.md
// section 4). No OpenSSL type
// appears here: keys, digests, nonces and ciphertexts are raw bytes in std::string.
//
// What each subsystem builds on it (bundle signatures, sealed exports, outbox encryption at
// rest, policy HMACs, data set digests) and the formats they write are described in each
// subsystem's format document; this layer only computes.
//
// Every function is thread-safe. Sizes are checked: a key, seed, nonce or signature of the
// wrong length is InvalidArgument (or false, for the verifiers), never a crash.
#ifndef OUTPOST_BASE_CRYPTO_CRYPTO_H_
#define OUTPOST_BASE_CRYPTO_CRYPTO_H_

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"

namespace outpost::crypto {

inline constexpr size_t kSha256Bytes = 32;
inline constexpr size_t kEd25519SeedBytes = 32;
inline constexpr size_t kEd25519PublicKeyBytes = 32;
inline constexpr size_t kEd25519SignatureBytes = 64;
inline constexpr size_t kX25519KeyBytes = 32;
inline constexpr size_t kAes256KeyBytes = 32;
inline constexpr size_t kGcmNonceBytes = 12;
inline constexpr size_t kGcmTagBytes = 16;

// ---- Hashes

// The raw 32-byte SHA-256 of `data`.
std::string Sha256(std::string_view data);
// The same as 64 lowercase hex digits (base/coding.h's HexEncode): the spelling of digests in
// Outpost's formats (audit chains, batch and data set digests, enrolment token hashes).
std::string Sha256Hex(std::string_view data);

// Streaming SHA-256. Thread-compatible: one hash at a time per object.
class Sha256Hasher {
 public:
  Sha256Hasher();
  ~Sha256Hasher();
  Sha256Hasher(const Sha256Hasher&) = delete;
  Sha256Hasher& operator=(const Sha256Hasher&) = delete;

  void Update(std::string_view data);
  // The raw 32-byte digest of everything passed to Update since construction or Reset(). The
  // object must not be updated afterwards until Reset().
  std::string Finish();
  // Starts a new hash.
  void Reset();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// The SHA-256 of the whole file at `path` as 64 lowercase hex digits, read a block at a time
// (constant memory whatever its size). The error of opening or reading it, naming the path.
Result<std::string> Sha256HexOfFile(const std::string& path);

// The raw 32-byte HMAC-SHA256 (RFC 2104) of `message` under `key`, which may have any length
// (the empty key included).
std::string HmacSha256(std::string_view key, std::string_view message);

// HKDF-SHA256 (RFC 5869): `length` bytes from `secret` (the input keying material), `salt`
// and `info`. An empty salt is, by the RFC, HashLen zero bytes. InvalidArgument when `secret`
// is empty or `length` is 0 or more than 255 * 32.
Result<std::string> HkdfSha256(std::string_view secret, std::string_view salt,
                               std::string_view info, size_t length);

// ---- Randomness and comparison

// `n` bytes from the operating system's generator (through OpenSSL's DRBG). Unavailable when
// it cannot deliver.
Result<std::string> RandomBytes(size_t n);

// True iff `a` and `b` are equal. The time taken depends on their lengths only, not on where
// they differ: use it to compare MACs, tokens and other secrets.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// ---- Ed25519 (RFC 8032)

// A key pair: the 32-byte seed is the private key (keep it secret); the 32-byte public key is
// derived from it.
struct Ed25519KeyPair {
  std::string seed{};
  std::string public_key{};
};

// A fresh key pair from RandomBytes. Unavailable when no random bytes can be had.
Result<Ed25519KeyPair> Ed25519GenerateKey();
// The key pair of a 32-byte seed. InvalidArgument for a seed of another size.
Result<Ed25519KeyPair> Ed25519KeyFromSeed(std::string_view seed);

// The 64-byte signature of `message` by the 32-byte `seed`. InvalidArgument for a seed of
// another size.
Result<std::string> Ed25519Sign(std::string_view seed, std::string_view message);
// True iff `signature` is a valid signature of `message` by `public_key`. Malformed input
// (wrong sizes, a public key that is not a point) is simply false.
bool Ed25519Verify(std::string_view public_key, std::string_view message,
                   std::string_view signature);

// ---- X25519 (RFC 7748)

// A fresh 32-byte private key (already clamped, as OpenSSL generates them). Unavailable when
// no random bytes can be had.
Result<std::string> X25519GeneratePrivateKey();
// The 32-byte public key of a 32-byte private key. InvalidArgument for another size.
Result<std::string> X25519PublicKey(std::string_view private_key);
// The 32-byte shared secret of `private_key` and the peer's `peer_public_key`.
// InvalidArgument for keys of another size; PermissionDenied when the agreement fails, which
// includes a low-order peer key (its all-zero result is never returned).
Result<std::string> X25519(std::string_view private_key, std::string_view peer_public_key);

// ---- Keys in PEM (PKCS#8 private keys, SubjectPublicKeyInfo public keys), for both curves

enum class KeyType { kEd25519, kX25519 };

// The raw 32-byte private key (the Ed25519 seed, the X25519 scalar) of a PKCS#8 PEM
// (unencrypted). InvalidArgument when `pem` holds no private key of `type`.
Result<std::string> PrivateKeyFromPem(KeyType type, std::string_view pem);
// The raw 32-byte public key of `pem`, which may hold a SubjectPublicKeyInfo public key or a
// PKCS#8 private key. InvalidArgument when it holds neither, or a key of another type.
Result<std::string> PublicKeyFromPem(KeyType type, std::string_view pem);
// "-----BEGIN PRIVATE KEY-----" PKCS#8 PEM of a raw 32-byte private key. InvalidArgument for
// another size.
Result<std::string> PrivateKeyToPem(KeyType type, std::string_view private_key);
// "-----BEGIN PUBLIC KEY-----" SubjectPublicKeyInfo PEM of a raw 32-byte public key.
// InvalidArgument for another size or a key OpenSSL refuses.
Result<std::string> PublicKeyToPem(KeyType type, std::string_view public_key);

// ---- AES-256-GCM

// Encrypts `plaintext` under the 32-byte `key` and 12-byte `nonce`, authenticating `aad` too,
// and appends the ciphertext (as long as `plaintext`) and then the 16-byte tag to `*out`.
// InvalidArgument for a key or nonce of another size (`*out` is then unchanged). A key must
// never be used twice with the same nonce: the caller owns that rule.
Status AesGcmSealAppend(std::string_view key, std::string_view nonce, std::string_view aad,
                        std::string_view plaintext, std::string* out);
// The same, returning ciphertext || tag.
Result<std::string> AesGcmSeal(std::string_view key, std::string_view nonce, std::string_view aad,
                               std::string_view plaintext);
// The plaintext of `ciphertext_and_tag` (the ciphertext then its 16-byte tag).
// PermissionDenied when authentication fails (any change to the key, nonce, aad, ciphertext
// or tag; no plaintext is returned then); InvalidArgument for a key or nonce of another size
// or an input shorter than the tag.
Result<std::string> AesGcmOpen(std::string_view key, std::string_view nonce, std::string_view aad,
                               std::string_view ciphertext_and_tag);

}  // namespace outpost::crypto

#endif  // OUTPOST_BASE_CRYPTO_CRYPTO_H_
