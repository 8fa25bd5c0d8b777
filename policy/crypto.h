// Hashing for policy/: HMAC-SHA256 as lowercase hex, over the crypto adapter
// (base/crypto/crypto.h), which also has the hex SHA-256 of the audit chain (crypto::Sha256Hex).
// Thread-safe.
#ifndef OUTPOST_POLICY_CRYPTO_H_
#define OUTPOST_POLICY_CRYPTO_H_

#include <string>
#include <string_view>

namespace outpost::policy {

// Lowercase hex HMAC-SHA256 of `message` under `key` (64 characters). `key` may be any length.
std::string HmacSha256Hex(std::string_view key, std::string_view message);

}  // namespace outpost::policy

#endif  // OUTPOST_POLICY_CRYPTO_H_
