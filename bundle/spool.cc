#include "bundle/spool.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>

#include "base/file.h"

namespace outpost::bundle {

Status SpoolEvent(const std::string& spool_dir, std::string_view json) {
  if (json.size() > kMaxSpoolEventBytes) {
    return InvalidArgumentError("event of " + std::to_string(json.size()) + " bytes is too large");
  }
  OUTPOST_RETURN_IF_ERROR(MakeDirectories(spool_dir));
  static std::atomic<uint64_t> counter{0};
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  char name[96];
  std::snprintf(name, sizeof name, "%020lld-%010d-%06llu.json", static_cast<long long>(ns),
                static_cast<int>(::getpid()),
                static_cast<unsigned long long>(counter.fetch_add(1) % 1000000));
  // WriteFileAtomically writes a temporary file beside the target, fsyncs and renames it.
  return WriteFileAtomically(JoinPath(spool_dir, name), std::string(json) + "\n");
}

Result<std::vector<std::string>> ListSpool(const std::string& spool_dir) {
  if (!IsDirectory(spool_dir)) return std::vector<std::string>{};
  OUTPOST_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirectory(spool_dir));
  std::vector<std::string> out;
  for (std::string& n : names) {
    if (n.empty() || n[0] == '.' || n.size() < 5 || n.compare(n.size() - 5, 5, ".json") != 0) {
      continue;
    }
    out.push_back(std::move(n));
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace outpost::bundle
