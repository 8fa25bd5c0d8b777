#include "bundle/tar.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/file.h"
#include "base/ustar.h"
#include "bundle/reason.h"

namespace outpost::bundle {
namespace {

// The ustar header's fields (base/ustar.h) under the names this file uses.
constexpr size_t kNameOff = kUstarNameOff, kNameLen = kUstarNameLen;
constexpr size_t kModeOff = kUstarModeOff, kUidOff = kUstarUidOff, kGidOff = kUstarGidOff;
constexpr size_t kSizeOff = kUstarSizeOff, kSizeLen = kUstarSizeLen;
constexpr size_t kMtimeOff = kUstarMtimeOff, kMtimeLen = kUstarMtimeLen;
constexpr size_t kChksumOff = kUstarChksumOff, kChksumLen = kUstarChksumLen;
constexpr size_t kTypeOff = kUstarTypeOff;
constexpr size_t kMagicOff = kUstarMagicOff;
constexpr size_t kPrefixOff = kUstarPrefixOff, kPrefixLen = kUstarPrefixLen;
constexpr uint64_t kMaxOctalSize = uint64_t{1} << 36;

std::optional<uint64_t> ParseOctal(const char* field, size_t len) {
  return ParseUstarOctal(field, len);
}

// The bytes of a NUL-padded string field (up to the first NUL).
std::string_view Field(const char* field, size_t len) {
  return std::string_view(field, strnlen(field, len));
}

bool IsZero(const char* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != 0) return false;
  }
  return true;
}

uint64_t Padding(uint64_t size) { return UstarPadding(size); }

unsigned HeaderChecksum(const char* h) { return UstarChecksum(h); }

}  // namespace

bool IsSafeEntryName(std::string_view name) {
  if (name.empty() || name.size() > 255 || name.front() == '/' || name.back() == '/') {
    return false;
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == '+' || c == '@' || c == ':' || c == '/';
    if (!ok) return false;
  }
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string_view::npos) end = name.size();
    std::string_view part = name.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

Status TarReader::ReadFull(char* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::read(fd_, buf + got, n - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      return ReasonError(Reason::kIo, std::string("reading the bundle: ") + strerror(errno));
    }
    if (r == 0) {
      return ReasonError(Reason::kTarTruncated,
                         "the bundle ends at byte " + std::to_string(offset_ + got) +
                             " inside an entry or before the end-of-archive blocks");
    }
    got += static_cast<size_t>(r);
  }
  offset_ += n;
  return Status::Ok();
}

Result<size_t> TarReader::Read(char* buf, size_t n) {
  size_t want = static_cast<size_t>(std::min<uint64_t>(n, remaining_));
  if (want == 0) return size_t{0};
  OUTPOST_RETURN_IF_ERROR(ReadFull(buf, want));
  remaining_ -= want;
  return want;
}

Result<std::string> TarReader::ReadAll(uint64_t max_bytes) {
  if (remaining_ > max_bytes) {
    return ReasonError(Reason::kSizeLimit, "an entry of " + std::to_string(remaining_) +
                                               " bytes is over the limit of " +
                                               std::to_string(max_bytes));
  }
  std::string out(static_cast<size_t>(remaining_), '\0');
  OUTPOST_ASSIGN_OR_RETURN(size_t n, Read(out.data(), out.size()));
  (void)n;
  return out;
}

Status TarReader::SkipRest() {
  char buf[4096];
  while (remaining_ > 0) {
    OUTPOST_ASSIGN_OR_RETURN(size_t n, Read(buf, sizeof(buf)));
    (void)n;
  }
  while (padding_ > 0) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(padding_, sizeof(buf)));
    OUTPOST_RETURN_IF_ERROR(ReadFull(buf, n));
    // Padding is zero, so that no byte of a bundle can change unnoticed.
    if (!IsZero(buf, n)) {
      return ReasonError(Reason::kTarMalformed, "non-zero padding after an entry's data");
    }
    padding_ -= n;
  }
  return Status::Ok();
}

Status TarReader::CheckTrailer() {
  // After the two zero blocks only zero bytes may follow, and at most up to one record.
  char buf[kTarRecord];
  size_t total = 0;
  for (;;) {
    ssize_t r = ::read(fd_, buf, sizeof(buf));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ReasonError(Reason::kIo, std::string("reading the bundle: ") + strerror(errno));
    }
    if (r == 0) break;
    if (!IsZero(buf, static_cast<size_t>(r))) {
      return ReasonError(Reason::kTrailingData, "bytes follow the end of the archive");
    }
    total += static_cast<size_t>(r);
    if (total > kTarRecord) {
      return ReasonError(Reason::kTrailingData, "more than one record of padding at the end");
    }
  }
  return Status::Ok();
}

Result<std::optional<TarEntry>> TarReader::Next() {
  if (done_) return std::optional<TarEntry>();
  OUTPOST_RETURN_IF_ERROR(SkipRest());
  char h[kTarBlock];
  OUTPOST_RETURN_IF_ERROR(ReadFull(h, kTarBlock));
  if (IsZero(h, kTarBlock)) {
    OUTPOST_RETURN_IF_ERROR(ReadFull(h, kTarBlock));
    if (!IsZero(h, kTarBlock)) {
      return ReasonError(Reason::kTarMalformed, "a lone zero block inside the archive");
    }
    OUTPOST_RETURN_IF_ERROR(CheckTrailer());
    done_ = true;
    return std::optional<TarEntry>();
  }
  uint64_t header_at = offset_ - kTarBlock;
  auto malformed = [&](std::string_view what) {
    return ReasonError(Reason::kTarMalformed,
                       "header at byte " + std::to_string(header_at) + ": " + std::string(what));
  };
  std::optional<uint64_t> chksum = ParseOctal(h + kChksumOff, kChksumLen);
  if (!chksum || *chksum != HeaderChecksum(h)) return malformed("bad checksum");
  if (std::memcmp(h + kMagicOff, "ustar\0" "00", 8) != 0) return malformed("not ustar");
  std::optional<uint64_t> size = ParseOctal(h + kSizeOff, kSizeLen);
  if (!size) return malformed("bad size field");
  if (!ParseOctal(h + kModeOff, 8) || !ParseOctal(h + kUidOff, 8) || !ParseOctal(h + kGidOff, 8) ||
      !ParseOctal(h + kMtimeOff, kMtimeLen)) {
    return malformed("bad mode, uid, gid or mtime field");
  }
  std::string name(Field(h + kNameOff, kNameLen));
  std::string_view prefix = Field(h + kPrefixOff, kPrefixLen);
  if (!prefix.empty()) name = std::string(prefix) + "/" + name;
  char type = h[kTypeOff];
  if (type != '0' && type != '\0') {
    return ReasonError(Reason::kUnsafeEntryType,
                       "entry \"" + name.substr(0, 100) + "\" has type '" +
                           (type >= 0x20 && type < 0x7f ? std::string(1, type) : "?") +
                           "'; only regular files are allowed");
  }
  if (!IsSafeEntryName(name)) {
    return ReasonError(Reason::kUnsafePath, "unsafe entry name \"" + name.substr(0, 100) + "\"");
  }
  if (++entries_ > limits_.max_entries) {
    return ReasonError(Reason::kSizeLimit, "more than " + std::to_string(limits_.max_entries) +
                                               " entries");
  }
  if (*size > limits_.max_entry_bytes) {
    return ReasonError(Reason::kSizeLimit, "entry \"" + name + "\" is over the entry size limit");
  }
  total_ += *size;
  if (total_ > limits_.max_total_bytes) {
    return ReasonError(Reason::kSizeLimit, "the entries are over the total size limit");
  }
  if (!names_.insert(name).second) {
    return ReasonError(Reason::kDuplicateEntry, "entry \"" + name + "\" appears twice");
  }
  remaining_ = *size;
  padding_ = Padding(*size);
  return std::optional<TarEntry>(TarEntry{.name = std::move(name), .size = *size});
}

Status TarWriter::WriteRaw(std::string_view data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t w = ::write(fd_, data.data() + done, data.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, "writing", "the bundle");
    }
    done += static_cast<size_t>(w);
  }
  offset_ += data.size();
  return Status::Ok();
}

Status TarWriter::EndEntry() {
  if (!open_) return Status::Ok();
  if (remaining_ != 0) return InvalidArgumentError("a tar entry is shorter than announced");
  static const char kZeros[kTarBlock] = {};
  OUTPOST_RETURN_IF_ERROR(WriteRaw(std::string_view(kZeros, padding_)));
  open_ = false;
  return Status::Ok();
}

Status TarWriter::Begin(std::string_view name, uint64_t size) {
  OUTPOST_RETURN_IF_ERROR(EndEntry());
  if (!IsSafeEntryName(name) || name.size() > kNameLen) {
    return InvalidArgumentError("cannot write tar entry \"" + std::string(name) + "\"");
  }
  if (size >= kMaxOctalSize) return InvalidArgumentError("tar entry too large");
  char h[kTarBlock];
  OUTPOST_RETURN_IF_ERROR(EncodeUstarHeader(
      UstarFields{.name = name, .type = kUstarRegular, .mode = 0644, .size = size}, h));
  OUTPOST_RETURN_IF_ERROR(WriteRaw(std::string_view(h, kTarBlock)));
  remaining_ = size;
  padding_ = Padding(size);
  open_ = true;
  return Status::Ok();
}

Status TarWriter::Write(std::string_view data) {
  if (!open_ || data.size() > remaining_) {
    return InvalidArgumentError("tar entry data beyond its announced size");
  }
  remaining_ -= data.size();
  return WriteRaw(data);
}

Status TarWriter::Finish() {
  OUTPOST_RETURN_IF_ERROR(EndEntry());
  static const char kZeros[kTarBlock] = {};
  OUTPOST_RETURN_IF_ERROR(WriteRaw(std::string_view(kZeros, kTarBlock)));
  OUTPOST_RETURN_IF_ERROR(WriteRaw(std::string_view(kZeros, kTarBlock)));
  while (offset_ % kTarRecord != 0) {
    OUTPOST_RETURN_IF_ERROR(WriteRaw(std::string_view(
        kZeros, std::min<uint64_t>(kTarBlock, kTarRecord - offset_ % kTarRecord))));
  }
  return Status::Ok();
}

}  // namespace outpost::bundle
