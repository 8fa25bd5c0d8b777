// policy/'s hashes as lowercase hex, over the crypto adapter (base/crypto/crypto.h).
#include "policy/crypto.h"

#include "base/crypto/crypto.h"

namespace outpost::policy {
namespace {

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(bytes.size() * 2, '0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    unsigned char b = static_cast<unsigned char>(bytes[i]);
    out[2 * i] = kDigits[b >> 4];
    out[2 * i + 1] = kDigits[b & 0xf];
  }
  return out;
}

}  // namespace

std::string Sha256Hex(std::string_view data) { return Hex(crypto::Sha256(data)); }

std::string HmacSha256Hex(std::string_view key, std::string_view message) {
  return Hex(crypto::HmacSha256(key, message));
}

}  // namespace outpost::policy
