#include "image/deps.h"

#include <sys/stat.h>

#include <deque>
#include <set>
#include <utility>

#include "base/file.h"

namespace outpost::image {
namespace {

bool IsRegularFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// The first candidate for `name` that is an ELF file of `machine`, with its parsed headers.
Result<std::pair<std::string, ElfInfo>> Find(const std::string& name, uint16_t machine,
                                             const std::vector<std::string>& dirs) {
  std::vector<std::string> candidates;
  if (name.find('/') != std::string::npos) {
    candidates.push_back(name);
  } else {
    for (const std::string& dir : dirs) candidates.push_back(JoinPath(dir, name));
  }
  for (const std::string& path : candidates) {
    if (!IsRegularFile(path)) continue;
    Result<ElfInfo> info = ReadElfFile(path);
    // The loader skips a file of another class or machine and goes on; so do we.
    if (!info.ok() || info->machine != machine) continue;
    return std::make_pair(path, std::move(info).value());
  }
  return ErrorWithReason(StatusCode::kNotFound, "library_not_found",
                         "no " + name + " for this machine in the library folders");
}

}  // namespace

std::vector<std::string> DefaultLibraryDirs(const std::string& triplet) {
  return {"/lib/" + triplet, "/usr/lib/" + triplet, "/lib", "/usr/lib"};
}

Result<std::vector<ResolvedLibrary>> ResolveSharedLibraries(const std::string& binary_path,
                                                            const ElfInfo& binary,
                                                            const std::vector<std::string>& dirs) {
  std::vector<ResolvedLibrary> out;
  std::set<std::string> seen;
  std::deque<std::pair<std::string, std::string>> queue;  // (name, needed by)
  for (const std::string& name : binary.needed) queue.emplace_back(name, binary_path);
  while (!queue.empty()) {
    auto [name, needed_by] = std::move(queue.front());
    queue.pop_front();
    if (!seen.insert(name).second) continue;
    Result<std::pair<std::string, ElfInfo>> found = Find(name, binary.machine, dirs);
    if (!found.ok()) return found.status().WithContext("needed by " + needed_by);
    for (const std::string& next : found->second.needed) {
      queue.emplace_back(next, found->first);
    }
    out.push_back(ResolvedLibrary{.name = name, .host_path = found->first, .needed_by = needed_by});
  }
  return out;
}

}  // namespace outpost::image
