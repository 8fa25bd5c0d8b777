// The deterministic tar writer of image layers (image/FORMAT.md sections 3 and 5). A
// LayerBuilder collects the entries of one layer (folders, files copied from the host or
// given as bytes, symbolic links), adds every missing parent folder, normalises owners and
// modes, and writes the archive sorted by name with one fixed time, so that the same entries
// always give the same bytes whatever the host's owners, modes, times or directory order.
// Thread-compatible.
#ifndef OUTPOST_IMAGE_TAR_H_
#define OUTPOST_IMAGE_TAR_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "image/sink.h"

namespace outpost::image {

enum class EntryType { kDirectory, kFile, kSymlink };

struct LayerEntry {
  EntryType type = EntryType::kFile;
  // Relative path inside the layer, without a leading or trailing "/".
  std::string path;
  uint32_t mode = 0644;
  uint32_t uid = 0;
  uint32_t gid = 0;
  // kSymlink: the link's target, verbatim.
  std::string link_target;
  // kFile: the host file whose bytes are copied, or, when empty, `contents`.
  std::string host_path;
  std::string contents;
};

class LayerBuilder {
 public:
  // `mtime`: the time of every entry (seconds since the epoch).
  explicit LayerBuilder(uint64_t mtime) : mtime_(mtime) {}

  // Each Add* takes a path with or without a leading "/" ("usr/bin/outpost" and
  // "/usr/bin/outpost" are one entry) and adds its missing parent folders (0755, 0:0).
  // Adding an entry that is already there with the same fields is a no-op; with different
  // fields, or under a path that is a file or link, InvalidArgument. InvalidArgument too for
  // an empty path or one with an empty, "." or ".." component.

  // A folder; owner 0:0 unless given.
  Status AddDirectory(std::string_view path, uint32_t mode = 0755, uint32_t uid = 0,
                      uint32_t gid = 0);
  // A copy of a regular host file, owner 0:0, mode 0755 when the host file has any execute
  // bit and 0644 otherwise (whatever its real owner and mode). NotFound when missing;
  // InvalidArgument when it is not a regular file.
  Status AddHostFile(std::string_view path, const std::string& host_path);
  // A file holding `contents`, owner 0:0.
  Status AddFileContents(std::string_view path, std::string contents, uint32_t mode = 0644);
  // A symbolic link to `target` (kept as written), mode 0777, owner 0:0.
  Status AddSymlink(std::string_view path, std::string target);

  bool Contains(std::string_view path) const;
  // The entries in the order they are written: sorted by path (without a folder's trailing
  // "/"), byte by byte.
  std::vector<const LayerEntry*> Entries() const;

  // Writes the archive (folders named with a trailing "/"; two zero blocks; padded to a
  // 10240-byte record). Errors are the sink's, ErrnoToStatus for a host file that cannot be
  // read, Aborted when a host file's size changed while it was copied, InvalidArgument for a
  // name or link target that ustar cannot hold.
  Status WriteTo(ByteSink& out) const;

 private:
  Status Add(LayerEntry entry);
  Status WriteFileData(const LayerEntry& entry, uint64_t size, ByteSink& out) const;

  uint64_t mtime_;
  std::map<std::string, LayerEntry> entries_;  // by path
};

// The path of a layer entry as given to LayerBuilder, normalised (leading "/" dropped);
// InvalidArgument for an empty, absolute-only or dot component.
Result<std::string> NormaliseLayerPath(std::string_view path);

}  // namespace outpost::image

#endif  // OUTPOST_IMAGE_TAR_H_
