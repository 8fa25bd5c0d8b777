// The POSIX ustar header (POSIX.1-1988 tar, as `tar --format=ustar` writes it): its block
// and record sizes, its field offsets, and the encoding and checks of one 512-byte header.
// Shared by the two tar writers of Outpost: the bundle archive (bundle/tar.h, regular files
// only, read back under hostile-input rules) and the runtime image's layers (image/tar.h,
// folders, files and symbolic links with owners and modes). Stateless; thread-safe.
#ifndef OUTPOST_BASE_USTAR_H_
#define OUTPOST_BASE_USTAR_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace outpost {

inline constexpr size_t kUstarBlock = 512;
inline constexpr size_t kUstarRecord = 10240;

// Field offsets and lengths of the header.
inline constexpr size_t kUstarNameOff = 0, kUstarNameLen = 100;
inline constexpr size_t kUstarModeOff = 100, kUstarUidOff = 108, kUstarGidOff = 116;
inline constexpr size_t kUstarIdLen = 8;
inline constexpr size_t kUstarSizeOff = 124, kUstarSizeLen = 12;
inline constexpr size_t kUstarMtimeOff = 136, kUstarMtimeLen = 12;
inline constexpr size_t kUstarChksumOff = 148, kUstarChksumLen = 8;
inline constexpr size_t kUstarTypeOff = 156;
inline constexpr size_t kUstarLinkOff = 157, kUstarLinkLen = 100;
inline constexpr size_t kUstarMagicOff = 257;
inline constexpr size_t kUstarPrefixOff = 345, kUstarPrefixLen = 155;
// ParseUstarOctal refuses values at or above this (more than 13 octal digits' worth).
inline constexpr uint64_t kUstarParseLimit = uint64_t{1} << 39;

// The type flags Outpost writes.
inline constexpr char kUstarRegular = '0';
inline constexpr char kUstarSymlink = '2';
inline constexpr char kUstarDirectory = '5';

// One header's fields. `name` is the entry's path inside the archive; a folder's name ends in
// "/" by convention of the caller. Owner names (uname, gname) are always left empty: readers
// take the numeric ids.
struct UstarFields {
  std::string_view name;
  char type = kUstarRegular;
  uint32_t mode = 0644;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;
  uint64_t mtime = 0;
  std::string_view linkname;  // a symbolic link's target
};

// Writes the 512-byte header of `fields` into `block` (which must hold kUstarBlock bytes):
// magic "ustar\0" "00", octal fields zero-filled and NUL-terminated, the checksum as six
// digits, a NUL and a space (as GNU tar writes it). A name over 100 bytes is split at a "/"
// into the prefix field (at most 155 bytes) and the name field. InvalidArgument for a name
// that cannot be split so, a link target over 100 bytes, or a size, mtime, mode or id too
// large for the octal digits of its field (a size of 8 GiB or more, for one). The same fields
// always give the same bytes.
Status EncodeUstarHeader(const UstarFields& fields, char* block);

// A NUL- or space-terminated octal field (leading spaces allowed, as old writers put them);
// nullopt when it is malformed or not below kUstarParseLimit.
std::optional<uint64_t> ParseUstarOctal(const char* field, size_t len);

// The header checksum: the sum of its bytes with the checksum field counted as spaces.
unsigned UstarChecksum(const char* block);

// Zero bytes that pad an entry of `size` bytes to a whole block.
inline uint64_t UstarPadding(uint64_t size) {
  return (kUstarBlock - size % kUstarBlock) % kUstarBlock;
}

}  // namespace outpost

#endif  // OUTPOST_BASE_USTAR_H_
