// A streaming POSIX ustar reader and writer of regular files only (FORMAT.md section 1).
// Both work in constant memory: entries are read and written in pieces through a file
// descriptor. The reader is written for hostile input: every header field is bounded, and
// links, devices, unsafe names, duplicates and oversized entries are refused with the reason
// codes of bundle/reason.h.
#ifndef OUTPOST_BUNDLE_TAR_H_
#define OUTPOST_BUNDLE_TAR_H_

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "base/status.h"

namespace outpost::bundle {

inline constexpr size_t kTarBlock = 512;
inline constexpr size_t kTarRecord = 10240;

// True iff `name` is a safe relative entry name (FORMAT.md section 1: no absolute path, no
// empty, "." or ".." component, no trailing "/", only [A-Za-z0-9._-+@:/], at most 255 bytes).
bool IsSafeEntryName(std::string_view name);

struct TarLimits {
  uint64_t max_entries = 10'000;
  uint64_t max_entry_bytes = uint64_t{64} << 30;  // 64 GiB
  uint64_t max_total_bytes = uint64_t{256} << 30;  // 256 GiB of entry data
};

struct TarEntry {
  std::string name;
  uint64_t size = 0;
};

// Reads entries from a file descriptor that it does not own (the caller keeps it open and
// closes it after the reader is gone). Not thread-safe.
class TarReader {
 public:
  TarReader(int fd, TarLimits limits) : fd_(fd), limits_(limits) {}

  // The next entry, positioned at its first data byte, after skipping what is left of the
  // previous one (its padding must be zero); nullopt at the end of the archive, once the trailing bytes were checked.
  // Errors carry a reason (TAR_MALFORMED, TAR_TRUNCATED, TRAILING_DATA, UNSAFE_ENTRY_TYPE,
  // UNSAFE_PATH, DUPLICATE_ENTRY, SIZE_LIMIT, IO); after one, the reader must not be used.
  Result<std::optional<TarEntry>> Next();

  // Reads up to `n` bytes of the current entry's data into `buf`; 0 at the entry's end.
  // TAR_TRUNCATED when the file ends early.
  Result<size_t> Read(char* buf, size_t n);

  // Reads the rest of the current entry into a string if it has at most `max_bytes`
  // (SIZE_LIMIT otherwise).
  Result<std::string> ReadAll(uint64_t max_bytes);

 private:
  // Reads exactly n bytes; TAR_TRUNCATED on a short file.
  Status ReadFull(char* buf, size_t n);
  Status SkipRest();
  Status CheckTrailer();

  int fd_;
  TarLimits limits_;
  uint64_t remaining_ = 0;  // data bytes left in the current entry
  uint64_t padding_ = 0;    // padding bytes after them
  uint64_t entries_ = 0;
  uint64_t total_ = 0;
  uint64_t offset_ = 0;  // bytes consumed from the file
  std::set<std::string> names_;
  bool done_ = false;
};

// Writes entries to a file descriptor that it does not own. Usage: Begin(name, size), Write
// exactly `size` bytes in pieces, then the next Begin or Finish. Not thread-safe.
class TarWriter {
 public:
  explicit TarWriter(int fd) : fd_(fd) {}

  // InvalidArgument for an unsafe name or one over 100 bytes, or when the previous entry is
  // not complete.
  Status Begin(std::string_view name, uint64_t size);
  // InvalidArgument when more than the announced size is written.
  Status Write(std::string_view data);
  // Ends the archive (two zero blocks, padded to a 10240-byte record). The caller fsyncs.
  Status Finish();

 private:
  Status WriteRaw(std::string_view data);
  Status EndEntry();

  int fd_;
  uint64_t remaining_ = 0;
  uint64_t padding_ = 0;
  uint64_t offset_ = 0;
  bool open_ = false;
};

}  // namespace outpost::bundle

#endif  // OUTPOST_BUNDLE_TAR_H_
