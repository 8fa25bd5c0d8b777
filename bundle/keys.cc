#include "bundle/keys.h"

#include <algorithm>
#include <cstdint>

#include "base/coding.h"
#include "base/file.h"

namespace outpost::bundle {

Result<KeyPair> LoadKeyFile(const std::string& path) {
  OUTPOST_ASSIGN_OR_RETURN(std::string text, ReadFile(path, 1024));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  Result<std::string> seed = HexDecode(text);
  if (!seed.ok() || seed->size() != kSeedBytes) {
    return InvalidArgumentError(path + " is not a key file (64 hex digits)");
  }
  return KeyPairFromSeed(*seed);
}

Result<std::vector<KeyPair>> LoadKeys(const std::string& dir, const std::string& role) {
  OUTPOST_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirectory(dir));
  std::sort(names.begin(), names.end());
  std::vector<KeyPair> keys;
  for (const std::string& n : names) {
    if (n.starts_with(role + "-") && n.ends_with(".key")) {
      OUTPOST_ASSIGN_OR_RETURN(KeyPair k, LoadKeyFile(JoinPath(dir, n)));
      keys.push_back(std::move(k));
    }
  }
  if (keys.empty()) return NotFoundError("no " + role + " keys in " + dir);
  return keys;
}

Result<std::vector<std::string>> LoadRootChain(const std::string& dir) {
  std::vector<std::string> chain;
  const std::string roots = JoinPath(dir, "roots");
  if (!IsDirectory(roots)) return chain;
  for (uint64_t n = 2; PathExists(JoinPath(roots, std::to_string(n) + ".json")); ++n) {
    OUTPOST_ASSIGN_OR_RETURN(std::string text,
                             ReadFile(JoinPath(roots, std::to_string(n) + ".json"), 1 << 20));
    chain.push_back(std::move(text));
  }
  return chain;
}

}  // namespace outpost::bundle
