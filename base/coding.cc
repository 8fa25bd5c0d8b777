#include "base/coding.h"

namespace outpost {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

template <typename Byte>
std::string Encode(const Byte* data, size_t size) {
  std::string out;
  out.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    const auto b = static_cast<uint8_t>(data[i]);
    out.push_back(kHexDigits[b >> 4]);
    out.push_back(kHexDigits[b & 0xf]);
  }
  return out;
}

}  // namespace

std::string HexEncode(std::string_view bytes) { return Encode(bytes.data(), bytes.size()); }

std::string HexEncode(std::span<const uint8_t> bytes) { return Encode(bytes.data(), bytes.size()); }

int LowerHexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

int HexValue(char c) {
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return LowerHexValue(c);
}

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (LowerHexValue(c) < 0) return false;
  }
  return true;
}

bool IsHex64(std::string_view s) { return s.size() == 64 && IsLowerHex(s); }

Result<std::string> HexDecode(std::string_view hex, HexCase accept) {
  if (hex.size() % 2 != 0) return InvalidArgumentError("odd-length hex");
  int (*value)(char) = accept == HexCase::kLower ? LowerHexValue : HexValue;
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = value(hex[2 * i]), lo = value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return InvalidArgumentError(accept == HexCase::kLower ? "not lowercase hex" : "not hex");
    }
    out[i] = static_cast<char>(hi * 16 + lo);
  }
  return out;
}

}  // namespace outpost
