// The event spool (FORMAT.md section 9): installers write one file per event into a folder
// that the running `outpost edge` drains into its outbox. Writing and listing only; the
// outbox side lives in apps/ (the edge owns the outbox).
#ifndef OUTPOST_BUNDLE_SPOOL_H_
#define OUTPOST_BUNDLE_SPOOL_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace outpost::bundle {

inline constexpr uint64_t kMaxSpoolEventBytes = 64 * 1024;

// Writes `json` (one JSON object, at most kMaxSpoolEventBytes) as a new spool file,
// atomically: a hidden temporary file, fsync, rename, fsync of the folder. Creates the folder
// when missing. InvalidArgument when too large.
Status SpoolEvent(const std::string& spool_dir, std::string_view json);

// The names of the complete event files in the folder, oldest first (names sort by time).
// Hidden temporary files are skipped. An empty list when the folder does not exist.
Result<std::vector<std::string>> ListSpool(const std::string& spool_dir);

}  // namespace outpost::bundle

#endif  // OUTPOST_BUNDLE_SPOOL_H_
