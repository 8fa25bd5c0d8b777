#include "base/ustar.h"

#include <cstring>

namespace outpost {
namespace {

// Writes `v` as len-1 zero-filled octal digits and a NUL; false when it does not fit.
bool PutOctal(char* field, size_t len, uint64_t v) {
  for (size_t i = len - 1; i-- > 0;) {
    field[i] = static_cast<char>('0' + (v & 7));
    v >>= 3;
  }
  field[len - 1] = '\0';
  return v == 0;
}

}  // namespace

std::optional<uint64_t> ParseUstarOctal(const char* field, size_t len) {
  size_t i = 0;
  while (i < len && field[i] == ' ') ++i;
  uint64_t v = 0;
  size_t digits = 0;
  for (; i < len && field[i] >= '0' && field[i] <= '7'; ++i, ++digits) {
    v = v * 8 + static_cast<uint64_t>(field[i] - '0');
    if (v >= kUstarParseLimit) return std::nullopt;
  }
  if (digits == 0) return std::nullopt;
  for (; i < len; ++i) {
    if (field[i] != '\0' && field[i] != ' ') return std::nullopt;
  }
  return v;
}

unsigned UstarChecksum(const char* block) {
  unsigned sum = 0;
  for (size_t i = 0; i < kUstarBlock; ++i) {
    bool in_field = i >= kUstarChksumOff && i < kUstarChksumOff + kUstarChksumLen;
    sum += in_field ? ' ' : static_cast<unsigned char>(block[i]);
  }
  return sum;
}

Status EncodeUstarHeader(const UstarFields& fields, char* block) {
  std::memset(block, 0, kUstarBlock);
  std::string_view name = fields.name;
  std::string_view prefix;
  if (name.size() > kUstarNameLen) {
    // Split at the first "/" that leaves at most 100 bytes of name and 155 of prefix.
    size_t cut = std::string_view::npos;
    for (size_t p = name.find('/'); p != std::string_view::npos && p <= kUstarPrefixLen;
         p = name.find('/', p + 1)) {
      if (p > 0 && name.size() - p - 1 <= kUstarNameLen && p + 1 < name.size()) {
        cut = p;
        break;
      }
    }
    if (cut == std::string_view::npos) {
      return InvalidArgumentError("tar entry name \"" + std::string(name.substr(0, 120)) +
                                  "\" does not fit a ustar header");
    }
    prefix = name.substr(0, cut);
    name = name.substr(cut + 1);
  }
  if (name.empty()) return InvalidArgumentError("empty tar entry name");
  if (fields.linkname.size() > kUstarLinkLen) {
    return InvalidArgumentError("link target of tar entry \"" + std::string(fields.name) +
                                "\" is over 100 bytes");
  }
  // An empty view may hold a null pointer, which memcpy must never be given.
  auto put = [block](size_t offset, std::string_view text) {
    if (!text.empty()) std::memcpy(block + offset, text.data(), text.size());
  };
  put(kUstarNameOff, name);
  put(kUstarPrefixOff, prefix);
  put(kUstarLinkOff, fields.linkname);
  bool fits = PutOctal(block + kUstarModeOff, kUstarIdLen, fields.mode) &&
              PutOctal(block + kUstarUidOff, kUstarIdLen, fields.uid) &&
              PutOctal(block + kUstarGidOff, kUstarIdLen, fields.gid) &&
              PutOctal(block + kUstarSizeOff, kUstarSizeLen, fields.size) &&
              PutOctal(block + kUstarMtimeOff, kUstarMtimeLen, fields.mtime);
  if (!fits) {
    return InvalidArgumentError("tar entry \"" + std::string(fields.name) +
                                "\": a size, time, mode or owner too large for ustar");
  }
  block[kUstarTypeOff] = fields.type;
  static constexpr char kMagic[8] = {'u', 's', 't', 'a', 'r', '\0', '0', '0'};
  std::memcpy(block + kUstarMagicOff, kMagic, sizeof(kMagic));
  unsigned sum = UstarChecksum(block);
  PutOctal(block + kUstarChksumOff, 7, sum);  // six digits, NUL, then a space
  block[kUstarChksumOff + 7] = ' ';
  return Status::Ok();
}

}  // namespace outpost
