#include "apps/bundle_keys.h"

#include <algorithm>

#include "base/file.h"

namespace outpost::apps {

Result<bundle::KeyPair> LoadKeyFile(const std::string& path) {
  OUTPOST_ASSIGN_OR_RETURN(std::string text, ReadFile(path, 1024));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  Result<std::string> seed = bundle::FromHex(text);
  if (!seed.ok() || seed->size() != bundle::kSeedBytes) {
    return InvalidArgumentError(path + " is not a key file (64 hex digits)");
  }
  return bundle::KeyPairFromSeed(*seed);
}

Result<std::vector<bundle::KeyPair>> LoadKeys(const std::string& dir, const std::string& role) {
  OUTPOST_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirectory(dir));
  std::sort(names.begin(), names.end());
  std::vector<bundle::KeyPair> keys;
  for (const std::string& n : names) {
    if (n.starts_with(role + "-") && n.ends_with(".key")) {
      OUTPOST_ASSIGN_OR_RETURN(bundle::KeyPair k, LoadKeyFile(JoinPath(dir, n)));
      keys.push_back(std::move(k));
    }
  }
  if (keys.empty()) return NotFoundError("no " + role + " keys in " + dir);
  return keys;
}

}  // namespace outpost::apps
