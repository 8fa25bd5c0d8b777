// Test helper: reads back a ustar archive that image/tar.h or the layout writer made, entry by
// entry, with every header field, so that tests can check names, order, owners, modes and
// contents. Trusts its input (tests only). Header-only; thread-safe (no state).
#ifndef OUTPOST_IMAGE_TESTING_TAR_READ_H_
#define OUTPOST_IMAGE_TESTING_TAR_READ_H_

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "base/ustar.h"

namespace outpost::image::testing {

struct TarItem {
  std::string name;  // prefix and name joined
  char type = '0';
  uint32_t mode = 0, uid = 0, gid = 0;
  uint64_t mtime = 0;
  std::string linkname;
  std::string data;
  std::string uname, gname;
};

inline std::string TarField(const char* p, size_t n) { return std::string(p, strnlen(p, n)); }

// Every entry of `archive`, in order. InvalidArgument for a bad checksum, a bad field or an
// archive that ends without its two zero blocks.
inline Result<std::vector<TarItem>> ReadTar(std::string_view archive) {
  std::vector<TarItem> out;
  size_t at = 0;
  static const char kZero[kUstarBlock] = {};
  while (at + kUstarBlock <= archive.size()) {
    const char* h = archive.data() + at;
    if (std::memcmp(h, kZero, kUstarBlock) == 0) return out;
    std::optional<uint64_t> sum = ParseUstarOctal(h + kUstarChksumOff, kUstarChksumLen);
    if (!sum || *sum != UstarChecksum(h)) {
      return InvalidArgumentError("bad checksum at " + std::to_string(at));
    }
    std::optional<uint64_t> size = ParseUstarOctal(h + kUstarSizeOff, kUstarSizeLen);
    std::optional<uint64_t> mode = ParseUstarOctal(h + kUstarModeOff, kUstarIdLen);
    std::optional<uint64_t> uid = ParseUstarOctal(h + kUstarUidOff, kUstarIdLen);
    std::optional<uint64_t> gid = ParseUstarOctal(h + kUstarGidOff, kUstarIdLen);
    std::optional<uint64_t> mtime = ParseUstarOctal(h + kUstarMtimeOff, kUstarMtimeLen);
    if (!size || !mode || !uid || !gid || !mtime) {
      return InvalidArgumentError("bad field at " + std::to_string(at));
    }
    TarItem item;
    item.name = TarField(h + kUstarNameOff, kUstarNameLen);
    std::string prefix = TarField(h + kUstarPrefixOff, kUstarPrefixLen);
    if (!prefix.empty()) item.name = prefix + "/" + item.name;
    item.type = h[kUstarTypeOff];
    item.mode = static_cast<uint32_t>(*mode);
    item.uid = static_cast<uint32_t>(*uid);
    item.gid = static_cast<uint32_t>(*gid);
    item.mtime = *mtime;
    item.linkname = TarField(h + kUstarLinkOff, kUstarLinkLen);
    item.uname = TarField(h + 265, 32);
    item.gname = TarField(h + 297, 32);
    at += kUstarBlock;
    if (at + *size > archive.size()) return InvalidArgumentError("truncated entry");
    item.data = std::string(archive.substr(at, *size));
    at += *size + UstarPadding(*size);
    out.push_back(std::move(item));
  }
  return InvalidArgumentError("the archive ends without its zero blocks");
}

}  // namespace outpost::image::testing

#endif  // OUTPOST_IMAGE_TESTING_TAR_READ_H_
