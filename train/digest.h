// SHA-256 for train/ as bytes: the holdout split (FORMAT.md section 4). Data set digests
// (section 2) are crypto::Sha256Hex (base/crypto/crypto.h).
#ifndef OUTPOST_TRAIN_DIGEST_H_
#define OUTPOST_TRAIN_DIGEST_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace outpost::train {

std::array<uint8_t, 32> Sha256(std::string_view bytes);

}  // namespace outpost::train

#endif  // OUTPOST_TRAIN_DIGEST_H_
