// Hashing for policy/: SHA-256 and HMAC-SHA256, as lowercase hex, over the crypto adapter
// (base/crypto/crypto.h). Thread-safe.
#ifndef OUTPOST_POLICY_CRYPTO_H_
#define OUTPOST_POLICY_CRYPTO_H_

#include <string>
#include <string_view>

namespace outpost::policy {

// Lowercase hex SHA-256 of `data` (64 characters).
std::string Sha256Hex(std::string_view data);

// Lowercase hex HMAC-SHA256 of `message` under `key` (64 characters). `key` may be any length.
std::string HmacSha256Hex(std::string_view key, std::string_view message);

}  // namespace outpost::policy

#endif  // OUTPOST_POLICY_CRYPTO_H_
