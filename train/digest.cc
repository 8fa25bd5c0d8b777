// train/'s SHA-256 as bytes, over the crypto adapter
// (base/crypto/crypto.h).
#include "train/digest.h"

#include <cstring>

#include "base/crypto/crypto.h"

namespace outpost::train {

std::array<uint8_t, 32> Sha256(std::string_view bytes) {
  std::array<uint8_t, 32> out{};
  std::string digest = crypto::Sha256(bytes);
  std::memcpy(out.data(), digest.data(), out.size());
  return out;
}

}  // namespace outpost::train
