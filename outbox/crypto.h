// Encryption at rest of outbox payloads, over the crypto adapter (base/crypto/crypto.h).
// Layout, key derivation and nonce rules are in FORMAT.md section 7.
#ifndef OUTPOST_OUTBOX_CRYPTO_H_
#define OUTPOST_OUTBOX_CRYPTO_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"

namespace outpost::outbox {

inline constexpr size_t kFileKeyBytes = 32;
inline constexpr size_t kKeySaltBytes = 16;
inline constexpr size_t kKeyCheckBytes = 16;
inline constexpr size_t kNonceBytes = 12;
inline constexpr size_t kTagBytes = 16;
// Seals allowed under one data key (one file), half of the 2^32 bound for random 96-bit
// nonces; the other half is the margin for seals an older restored copy no longer counts
// (FORMAT.md section 7).
inline constexpr uint64_t kMaxSealsPerDataKey = uint64_t{1} << 31;

// Reads a key file: 32 raw bytes, or 64 hexadecimal characters with an optional trailing
// newline. InvalidArgument for anything else, with the reason; NotFound when missing.
Result<std::string> ReadKeyFile(const std::string& path);

// `n` bytes from the operating system's random source. Internal on failure.
Result<std::string> RandomBytes(size_t n);

// AES-256-GCM with a data key derived from the file key and a file's salt. Immutable after
// Create(); thread-safe.
class RecordCipher {
 public:
  // `file_key` is 32 bytes, `salt` 16. InvalidArgument on wrong sizes.
  static Result<std::unique_ptr<const RecordCipher>> Create(std::string_view file_key,
                                                            std::string_view salt);

  // The 16 bytes stored as meta.key_check: equal iff the file key (and salt) are equal.
  const std::string& key_check() const { return key_check_; }

  // Appends nonce || ciphertext || tag to `out`, under a fresh random 96-bit nonce (FORMAT.md
  // section 7: no state, so a restored older copy of a file never repeats one). The caller
  // keeps the seals under one data key below kMaxSealsPerDataKey. Internal when no random
  // bytes can be had or sealing fails; `out` is then unchanged.
  Status Seal(std::string_view aad, std::string_view plaintext, std::string* out) const;
  // The plaintext of a stored payload; DataLoss when it is too short or fails
  // authentication (wrong record, damaged bytes).
  Result<std::string> Open(std::string_view aad, std::string_view stored) const;

  // Bytes Seal adds to a plaintext.
  static constexpr size_t kOverhead = kNonceBytes + kTagBytes;

 private:
  RecordCipher() = default;
  std::string data_key_;   // 32 bytes
  std::string key_check_;  // 16 bytes
};

}  // namespace outpost::outbox

#endif  // OUTPOST_OUTBOX_CRYPTO_H_
