// bundle/'s signatures and hashes over the crypto adapter (base/crypto/crypto.h). Their hex
// spelling in metadata (FORMAT.md section 2) is base/coding.h's HexEncode and HexDecode.
#include "bundle/crypto.h"

#include "base/crypto/crypto.h"

namespace outpost::bundle {

Result<KeyPair> KeyPairFromSeed(std::string_view seed) {
  OUTPOST_ASSIGN_OR_RETURN(crypto::Ed25519KeyPair pair, crypto::Ed25519KeyFromSeed(seed));
  return KeyPair{.seed = std::move(pair.seed), .public_key = std::move(pair.public_key)};
}

Result<KeyPair> GenerateKeyPair() {
  Result<std::string> seed = crypto::RandomBytes(kSeedBytes);
  if (!seed.ok()) return InternalError("no random bytes for a key");
  return KeyPairFromSeed(*seed);
}

Result<std::string> Sign(std::string_view seed, std::string_view message) {
  return crypto::Ed25519Sign(seed, message);
}

bool Verify(std::string_view public_key, std::string_view message, std::string_view signature) {
  return crypto::Ed25519Verify(public_key, message, signature);
}

std::string Sha256Of(std::string_view data) { return crypto::Sha256(data); }

}  // namespace outpost::bundle
