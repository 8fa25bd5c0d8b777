// SHA-256 for train/: data set digests (FORMAT.md section 2) and the holdout split (section 4).
#ifndef OUTPOST_TRAIN_DIGEST_H_
#define OUTPOST_TRAIN_DIGEST_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace outpost::train {

std::array<uint8_t, 32> Sha256(std::string_view bytes);
// Lowercase hex, 64 characters.
std::string Sha256Hex(std::string_view bytes);

}  // namespace outpost::train

#endif  // OUTPOST_TRAIN_DIGEST_H_
