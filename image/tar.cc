#include "image/tar.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "base/file.h"
#include "base/ustar.h"

namespace outpost::image {
namespace {

bool SameEntry(const LayerEntry& a, const LayerEntry& b) {
  return a.type == b.type && a.mode == b.mode && a.uid == b.uid && a.gid == b.gid &&
         a.link_target == b.link_target && a.host_path == b.host_path && a.contents == b.contents;
}

// Closes a file descriptor when it goes out of scope.
struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

Result<std::string> NormaliseLayerPath(std::string_view path) {
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  if (path.empty()) return InvalidArgumentError("an empty path in the image");
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") {
      return InvalidArgumentError("path \"" + std::string(path) + "\" in the image has an " +
                                  "empty, \".\" or \"..\" component");
    }
    start = end + 1;
  }
  return std::string(path);
}

Status LayerBuilder::Add(LayerEntry entry) {
  OUTPOST_ASSIGN_OR_RETURN(entry.path, NormaliseLayerPath(entry.path));
  // Parents first: each must be a folder (present, or added now).
  for (size_t slash = entry.path.find('/'); slash != std::string::npos;
       slash = entry.path.find('/', slash + 1)) {
    std::string parent = entry.path.substr(0, slash);
    auto it = entries_.find(parent);
    if (it == entries_.end()) {
      entries_.emplace(parent,
                       LayerEntry{.type = EntryType::kDirectory, .path = parent, .mode = 0755});
    } else if (it->second.type != EntryType::kDirectory) {
      return InvalidArgumentError("\"" + entry.path + "\" in the image is under \"" + parent +
                                  "\", which is not a folder");
    }
  }
  auto it = entries_.find(entry.path);
  if (it != entries_.end()) {
    if (SameEntry(it->second, entry)) return Status::Ok();
    // A parent added implicitly may be given its real owner and mode once.
    bool implicit_dir = it->second.type == EntryType::kDirectory &&
                        entry.type == EntryType::kDirectory && it->second.mode == 0755 &&
                        it->second.uid == 0 && it->second.gid == 0;
    if (!implicit_dir) {
      return InvalidArgumentError("\"" + entry.path + "\" is added to the image twice, " +
                                  "differently");
    }
    it->second = std::move(entry);
    return Status::Ok();
  }
  std::string key = entry.path;
  entries_.emplace(std::move(key), std::move(entry));
  return Status::Ok();
}

Status LayerBuilder::AddDirectory(std::string_view path, uint32_t mode, uint32_t uid,
                                  uint32_t gid) {
  return Add(LayerEntry{.type = EntryType::kDirectory,
                        .path = std::string(path),
                        .mode = mode,
                        .uid = uid,
                        .gid = gid});
}

Status LayerBuilder::AddHostFile(std::string_view path, const std::string& host_path) {
  struct stat st;
  if (::stat(host_path.c_str(), &st) != 0) return ErrnoToStatus(errno, "reading", host_path);
  if (!S_ISREG(st.st_mode)) {
    return InvalidArgumentError("\"" + host_path + "\" is not a regular file");
  }
  uint32_t mode = (st.st_mode & 0111) != 0 ? 0755 : 0644;
  return Add(LayerEntry{
      .type = EntryType::kFile, .path = std::string(path), .mode = mode, .host_path = host_path});
}

Status LayerBuilder::AddFileContents(std::string_view path, std::string contents, uint32_t mode) {
  return Add(LayerEntry{.type = EntryType::kFile,
                        .path = std::string(path),
                        .mode = mode,
                        .contents = std::move(contents)});
}

Status LayerBuilder::AddSymlink(std::string_view path, std::string target) {
  if (target.empty()) return InvalidArgumentError("a link with an empty target");
  return Add(LayerEntry{.type = EntryType::kSymlink,
                        .path = std::string(path),
                        .mode = 0777,
                        .link_target = std::move(target)});
}

bool LayerBuilder::Contains(std::string_view path) const {
  Result<std::string> normal = NormaliseLayerPath(path);
  return normal.ok() && entries_.count(*normal) > 0;
}

std::vector<const LayerEntry*> LayerBuilder::Entries() const {
  std::vector<const LayerEntry*> out;
  out.reserve(entries_.size());
  for (const auto& [path, entry] : entries_) out.push_back(&entry);
  return out;
}

Status LayerBuilder::WriteFileData(const LayerEntry& entry, uint64_t size, ByteSink& out) const {
  if (entry.host_path.empty()) return out.Write(entry.contents);
  int fd = ::open(entry.host_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "reading", entry.host_path);
  FdCloser closer{fd};
  std::string buf(size_t{1} << 20, '\0');
  uint64_t copied = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, "reading", entry.host_path);
    }
    if (n == 0) break;
    if (copied + static_cast<uint64_t>(n) > size) break;
    copied += static_cast<uint64_t>(n);
    OUTPOST_RETURN_IF_ERROR(out.Write(std::string_view(buf.data(), static_cast<size_t>(n))));
  }
  if (copied != size) {
    return AbortedError("\"" + entry.host_path + "\" changed while it was copied into the image");
  }
  return Status::Ok();
}

Status LayerBuilder::WriteTo(ByteSink& out) const {
  static const char kZeros[kUstarRecord] = {};
  uint64_t offset = 0;
  for (const auto& [path, entry] : entries_) {
    uint64_t size = 0;
    if (entry.type == EntryType::kFile) {
      if (entry.host_path.empty()) {
        size = entry.contents.size();
      } else {
        struct stat st;
        if (::stat(entry.host_path.c_str(), &st) != 0) {
          return ErrnoToStatus(errno, "reading", entry.host_path);
        }
        size = static_cast<uint64_t>(st.st_size);
      }
    }
    std::string name = entry.type == EntryType::kDirectory ? path + "/" : path;
    char type = entry.type == EntryType::kDirectory ? kUstarDirectory
                : entry.type == EntryType::kSymlink ? kUstarSymlink
                                                    : kUstarRegular;
    char header[kUstarBlock];
    OUTPOST_RETURN_IF_ERROR(EncodeUstarHeader(UstarFields{.name = name,
                                                          .type = type,
                                                          .mode = entry.mode,
                                                          .uid = entry.uid,
                                                          .gid = entry.gid,
                                                          .size = size,
                                                          .mtime = mtime_,
                                                          .linkname = entry.link_target},
                                              header));
    OUTPOST_RETURN_IF_ERROR(out.Write(std::string_view(header, kUstarBlock)));
    if (entry.type == EntryType::kFile) {
      OUTPOST_RETURN_IF_ERROR(WriteFileData(entry, size, out));
      OUTPOST_RETURN_IF_ERROR(out.Write(std::string_view(kZeros, UstarPadding(size))));
    }
    offset += kUstarBlock + size + UstarPadding(size);
  }
  // Two zero blocks end the archive; zeros then fill its last 10240-byte record.
  OUTPOST_RETURN_IF_ERROR(out.Write(std::string_view(kZeros, 2 * kUstarBlock)));
  offset += 2 * kUstarBlock;
  return out.Write(std::string_view(kZeros, (kUstarRecord - offset % kUstarRecord) % kUstarRecord));
}

}  // namespace outpost::image
