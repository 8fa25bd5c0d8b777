// Signing and sealing for sync/ (FORMAT.md sections 4 to 6) over the crypto adapter
// (base/crypto/crypto.h): keys in PEM, and the bounds sync/ puts on what it is handed. The
// certificate functions of crypto.h are in certificate.cc.
#include "sync/crypto.h"

#include "base/crypto/crypto.h"

namespace outpost::sync {
namespace {

// The largest key PEM read for sealing (a key is a few hundred bytes).
constexpr size_t kMaxKeyPemBytes = size_t{1} << 16;
// The largest additional data authenticated with AES-256-GCM (a sealed export's header).
constexpr size_t kMaxAadBytes = size_t{1} << 20;

Status CheckGcmArguments(std::string_view key, std::string_view nonce, std::string_view aad) {
  if (key.size() != crypto::kAes256KeyBytes || nonce.size() != crypto::kGcmNonceBytes ||
      aad.size() > kMaxAadBytes) {
    return InvalidArgumentError("AES-256-GCM needs a 32-byte key and a 12-byte nonce");
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> SignEd25519(std::string_view key_pem, std::string_view data) {
  OUTPOST_ASSIGN_OR_RETURN(std::string seed,
                           crypto::PrivateKeyFromPem(crypto::KeyType::kEd25519, key_pem));
  return crypto::Ed25519Sign(seed, data);
}

Result<X25519KeyPem> GenerateX25519Key() {
  return crypto::GenerateKeyPairPem(crypto::KeyAlgorithm::kX25519);
}

Result<std::string> X25519RawPublicKey(std::string_view pem) {
  if (pem.size() > kMaxKeyPemBytes) return InvalidArgumentError("key too large");
  return crypto::PublicKeyFromPem(crypto::KeyType::kX25519, pem);
}

Result<std::string> X25519SharedSecret(std::string_view private_pem, std::string_view peer_public) {
  if (private_pem.size() > kMaxKeyPemBytes) return InvalidArgumentError("key too large");
  OUTPOST_ASSIGN_OR_RETURN(std::string private_key,
                           crypto::PrivateKeyFromPem(crypto::KeyType::kX25519, private_pem));
  return crypto::X25519(private_key, peer_public);
}

Result<std::string> HkdfSha256(std::string_view secret, std::string_view salt,
                               std::string_view info, size_t length) {
  if (length == 0 || length > 255 * 32 || secret.empty() || info.size() > 1024 ||
      secret.size() > (1 << 16) || salt.size() > (1 << 16)) {
    return InvalidArgumentError("HKDF arguments out of range");
  }
  return crypto::HkdfSha256(secret, salt, info, length);
}

Result<std::string> AesGcmSeal(std::string_view key, std::string_view nonce, std::string_view aad,
                               std::string_view plaintext) {
  OUTPOST_RETURN_IF_ERROR(CheckGcmArguments(key, nonce, aad));
  return crypto::AesGcmSeal(key, nonce, aad, plaintext);
}

Result<std::string> AesGcmOpen(std::string_view key, std::string_view nonce, std::string_view aad,
                               std::string_view ciphertext_and_tag) {
  OUTPOST_RETURN_IF_ERROR(CheckGcmArguments(key, nonce, aad));
  return crypto::AesGcmOpen(key, nonce, aad, ciphertext_and_tag);
}

}  // namespace outpost::sync
