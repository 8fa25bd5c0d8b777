// policy/'s keyed hash as lowercase hex, over the crypto adapter (base/crypto/crypto.h).
#include "policy/crypto.h"

#include "base/coding.h"
#include "base/crypto/crypto.h"

namespace outpost::policy {

std::string HmacSha256Hex(std::string_view key, std::string_view message) {
  return HexEncode(crypto::HmacSha256(key, message));
}

}  // namespace outpost::policy
