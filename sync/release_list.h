// The site's reading of the hub's release answers (hub/FORMAT.md section 10): the list of
// GET /sync/v1/releases and the Content-Range of a bundle's range. Bytes from the hub, parsed
// under limits; every refusal is InvalidArgument with a stable reason, never a crash.
#ifndef OUTPOST_SYNC_RELEASE_LIST_H_
#define OUTPOST_SYNC_RELEASE_LIST_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace outpost::sync {

// One entry of GET /sync/v1/releases.
struct OfferedRelease {
  std::string model{};
  uint64_t model_version = 0;
  uint64_t version = 0;
  uint64_t bytes = 0;
  std::string sha256{};
};

// Parses the answer of GET /sync/v1/releases (hub/FORMAT.md section 10): at most 1 MiB and
// 100 entries, each with a bundle model name, versions in 1 .. 2^63-1, a size and a
// 64-hex-digit SHA-256. InvalidArgument (reason bad_release_list) otherwise.
Result<std::vector<OfferedRelease>> ParseReleaseList(std::string_view body);

// The same answer's `rollbacks` (hub/FORMAT.md section 11): the releases whose rollout was
// halted or aborted, which a site that installed one rolls back from (`bytes` is 0). Absent
// (an older hub): none. InvalidArgument (reason bad_release_list) as above.
Result<std::vector<OfferedRelease>> ParseReleaseRollbacks(std::string_view body);

// Parses a Content-Range header "bytes <first>-<last>/<size>" into its three numbers;
// nullopt for anything else.
std::optional<std::array<uint64_t, 3>> ParseContentRange(std::string_view header);

}  // namespace outpost::sync

#endif  // OUTPOST_SYNC_RELEASE_LIST_H_
