// Encryption at rest of outbox payloads (FORMAT.md section 7) over the crypto adapter
// (base/crypto/crypto.h): key files, the data key and key check derived with HKDF-SHA256,
// and AES-256-GCM with a random nonce per payload.
#include "outbox/crypto.h"

#include "base/coding.h"
#include "base/crypto/crypto.h"
#include "base/file.h"

namespace outpost::outbox {

Result<std::string> ReadKeyFile(const std::string& path) {
  OUTPOST_ASSIGN_OR_RETURN(std::string raw, ReadFile(path, 1024));
  if (raw.size() == kFileKeyBytes) return raw;
  std::string_view hex = raw;
  if (!hex.empty() && hex.back() == '\n') hex.remove_suffix(1);
  if (!hex.empty() && hex.back() == '\r') hex.remove_suffix(1);
  if (hex.size() != 2 * kFileKeyBytes) {
    return InvalidArgumentError("key file \"" + path + "\" must hold 32 raw bytes or 64 hex " +
                                "characters; it holds " + std::to_string(raw.size()) + " bytes");
  }
  std::string key(kFileKeyBytes, '\0');
  for (size_t i = 0; i < kFileKeyBytes; ++i) {
    int hi = HexValue(hex[2 * i]), lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return InvalidArgumentError("key file \"" + path + "\" has a character that is not " +
                                  "hexadecimal at offset " + std::to_string(2 * i));
    }
    key[i] = static_cast<char>(hi * 16 + lo);
  }
  return key;
}

Result<std::string> RandomBytes(size_t n) {
  Result<std::string> bytes = crypto::RandomBytes(n);
  if (!bytes.ok()) return InternalError(bytes.status().message());
  return bytes;
}

Result<std::unique_ptr<const RecordCipher>> RecordCipher::Create(std::string_view file_key,
                                                                 std::string_view salt) {
  if (file_key.size() != kFileKeyBytes) {
    return InvalidArgumentError("an outbox key has 32 bytes, not " +
                                std::to_string(file_key.size()));
  }
  if (salt.size() != kKeySaltBytes) {
    return InvalidArgumentError("an outbox key salt has 16 bytes, not " +
                                std::to_string(salt.size()));
  }
  std::unique_ptr<RecordCipher> c(new RecordCipher());
  OUTPOST_ASSIGN_OR_RETURN(
      c->data_key_,
      crypto::HkdfSha256(file_key, salt, "outpost outbox v1 data key", kFileKeyBytes));
  OUTPOST_ASSIGN_OR_RETURN(
      c->key_check_,
      crypto::HkdfSha256(file_key, salt, "outpost outbox v1 key check", kKeyCheckBytes));
  return std::unique_ptr<const RecordCipher>(std::move(c));
}

Status RecordCipher::Seal(std::string_view aad, std::string_view plaintext,
                          std::string* out) const {
  // A fresh random nonce for every payload, stored in front of it (FORMAT.md section 7).
  OUTPOST_ASSIGN_OR_RETURN(std::string nonce, RandomBytes(kNonceBytes));
  const size_t start = out->size();
  out->append(nonce);
  Status sealed = crypto::AesGcmSealAppend(data_key_, nonce, aad, plaintext, out);
  if (!sealed.ok()) {
    out->resize(start);
    return InternalError(sealed.message());
  }
  return Status::Ok();
}

Result<std::string> RecordCipher::Open(std::string_view aad, std::string_view stored) const {
  if (stored.size() < kOverhead) {
    return DataLossError("encrypted payload of " + std::to_string(stored.size()) +
                         " bytes is shorter than nonce and tag");
  }
  Result<std::string> plain =
      crypto::AesGcmOpen(data_key_, stored.substr(0, kNonceBytes), aad, stored.substr(kNonceBytes));
  if (plain.status().code() == StatusCode::kPermissionDenied) {
    return DataLossError("decryption failed: the payload does not authenticate");
  }
  return plain;
}

}  // namespace outpost::outbox
