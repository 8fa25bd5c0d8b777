// Ed25519 signatures and SHA-256 for bundles, over the crypto adapter (base/crypto/crypto.h).
// Keys and signatures are raw bytes (32-byte seeds and public keys, 64-byte signatures);
// FORMAT.md section 2 says how they are written in metadata.
#ifndef OUTPOST_BUNDLE_CRYPTO_H_
#define OUTPOST_BUNDLE_CRYPTO_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "base/crypto/crypto.h"
#include "base/status.h"

namespace outpost::bundle {

inline constexpr size_t kPublicKeyBytes = 32;
inline constexpr size_t kSeedBytes = 32;
inline constexpr size_t kSignatureBytes = 64;
inline constexpr size_t kSha256Bytes = 32;

// An Ed25519 key pair. `seed` is the private key (keep it secret); `public_key` is derived.
struct KeyPair {
  std::string seed;        // 32 bytes
  std::string public_key;  // 32 bytes
};

// A fresh key pair from the operating system's random source. Internal on failure.
Result<KeyPair> GenerateKeyPair();
// The key pair of a 32-byte seed. InvalidArgument on a wrong size.
Result<KeyPair> KeyPairFromSeed(std::string_view seed);

// The 64-byte signature of `message`. InvalidArgument on a malformed seed.
Result<std::string> Sign(std::string_view seed, std::string_view message);
// True iff `signature` is a valid Ed25519 signature of `message` by `public_key`. Any malformed
// input (wrong sizes, invalid point) is simply false.
bool Verify(std::string_view public_key, std::string_view message, std::string_view signature);

// Streaming SHA-256: the crypto adapter's hasher (Update, Finish, Reset).
using Sha256 = crypto::Sha256Hasher;

// SHA-256 of `data` as 32 raw bytes.
std::string Sha256Of(std::string_view data);


}  // namespace outpost::bundle

#endif  // OUTPOST_BUNDLE_CRYPTO_H_
