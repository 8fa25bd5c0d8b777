// Files: reading with a size bound, and atomic replacement that survives power loss.
//
// WriteFileAtomically() writes to a temporary file in the same folder, fsyncs it, renames it
// over the target and fsyncs the folder, so after a crash a reader sees either the old
// contents or the new, never a mix or an empty file.
#ifndef OUTPOST_BASE_FILE_H_
#define OUTPOST_BASE_FILE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace outpost {

// Reads the whole file. NotFound when missing; ResourceExhausted when larger than
// `max_bytes`; Unavailable/Internal for other I/O errors, with errno's text.
Result<std::string> ReadFile(const std::string& path, uint64_t max_bytes = uint64_t{1} << 30);

// Replaces `path` with `contents` atomically and durably (see above). `mode` applies to the
// new file. On error the target is untouched and the temporary file is removed.
Status WriteFileAtomically(const std::string& path, std::string_view contents, int mode = 0644);

// fsyncs a folder, making renames and creations inside it durable.
Status SyncDirectory(const std::string& dir);

// Creates `dir` and its parents with `mode` (less the process's umask); OK when it exists
// already, whatever its mode (TightenFileMode checks that).
Status MakeDirectories(const std::string& dir, int mode = 0755);

// When `path` (a file or folder, links followed) grants a permission bit outside `mode`,
// clears those bits (0644 under 0600 becomes 0600; 0444 stays 0444) and answers the mode it
// had, for the caller to report; nullopt when it is absent or already within `mode`. Errors
// as ErrnoToStatus for a failed stat or chmod.
Result<std::optional<int>> TightenFileMode(const std::string& path, int mode);

// Removes `path` and, when it is a folder, everything under it (symbolic links are removed,
// never followed). OK when `path` does not exist. Unavailable "removing <path>: <reason>" when
// something could not be removed; part of the tree may be gone by then.
Status RemoveTree(const std::string& path);

// Names of the entries of `dir` (not "." or ".."), sorted.
Result<std::vector<std::string>> ListDirectory(const std::string& dir);

bool PathExists(const std::string& path);
bool IsDirectory(const std::string& path);

// "a/b" + "c" = "a/b/c".
std::string JoinPath(std::string_view a, std::string_view b);

// An error Status from errno for an operation on a path: NotFound for ENOENT,
// PermissionDenied for EACCES/EPERM, ResourceExhausted for ENOSPC/EDQUOT, Unavailable
// otherwise.
Status ErrnoToStatus(int err, std::string_view what, std::string_view path);

}  // namespace outpost

#endif  // OUTPOST_BASE_FILE_H_
