#include "base/coding.h"

#include <charconv>

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

bool ParseDecimal(std::string_view text, uint64_t* out) {
  if (text.empty() || text[0] < '0' || text[0] > '9') return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

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

namespace {

constexpr char kBase64Standard[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kBase64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// The 6-bit value of `c` in `alphabet`, or -1.
int Base64Value(char c, Base64Alphabet alphabet) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  bool url = alphabet == Base64Alphabet::kUrl;
  if (c == (url ? '-' : '+')) return 62;
  if (c == (url ? '_' : '/')) return 63;
  return -1;
}

Status BadBase64(std::string_view why) {
  return ErrorWithReason(StatusCode::kInvalidArgument, "bad_base64", why);
}

}  // namespace

std::string Base64Encode(std::string_view bytes, Base64Alphabet alphabet) {
  const char* table = alphabet == Base64Alphabet::kUrl ? kBase64Url : kBase64Standard;
  const bool pad = alphabet == Base64Alphabet::kStandard;
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (uint32_t{static_cast<uint8_t>(bytes[i])} << 16) |
                 (uint32_t{static_cast<uint8_t>(bytes[i + 1])} << 8) |
                 uint32_t{static_cast<uint8_t>(bytes[i + 2])};
    out.push_back(table[(v >> 18) & 63]);
    out.push_back(table[(v >> 12) & 63]);
    out.push_back(table[(v >> 6) & 63]);
    out.push_back(table[v & 63]);
  }
  size_t left = bytes.size() - i;
  if (left > 0) {
    uint32_t v = uint32_t{static_cast<uint8_t>(bytes[i])} << 16;
    if (left == 2) v |= uint32_t{static_cast<uint8_t>(bytes[i + 1])} << 8;
    out.push_back(table[(v >> 18) & 63]);
    out.push_back(table[(v >> 12) & 63]);
    if (left == 2) out.push_back(table[(v >> 6) & 63]);
    if (pad) out.append(left == 1 ? "==" : "=");
  }
  return out;
}

Result<std::string> Base64Decode(std::string_view text, Base64Alphabet alphabet) {
  if (alphabet == Base64Alphabet::kStandard) {
    if (text.size() % 4 != 0) return BadBase64("the length is not a multiple of 4");
    size_t pad = 0;
    while (pad < 2 && pad < text.size() && text[text.size() - 1 - pad] == '=') ++pad;
    text.remove_suffix(pad);
  }
  if (text.size() % 4 == 1) return BadBase64("the length cannot be base64");
  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = Base64Value(c, alphabet);
    if (v < 0) return BadBase64("a character outside the alphabet");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  // What is left must be the zero padding bits of the last character.
  if ((acc & ((1u << bits) - 1)) != 0) return BadBase64("non-zero bits after the last byte");
  return out;
}

}  // namespace outpost
