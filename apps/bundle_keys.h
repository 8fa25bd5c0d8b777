// Reading the key files that `outpost keys` writes (apps/keys_command.cc).
#ifndef OUTPOST_APPS_BUNDLE_KEYS_H_
#define OUTPOST_APPS_BUNDLE_KEYS_H_

#include <string>
#include <vector>

#include "base/status.h"
#include "bundle/crypto.h"

namespace outpost::apps {

// The key pairs of `dir`/<role>-<i>.key, in file name order. NotFound when there is none;
// InvalidArgument for a file that is not a hex seed.
Result<std::vector<bundle::KeyPair>> LoadKeys(const std::string& dir, const std::string& role);

// One key pair from a .key file.
Result<bundle::KeyPair> LoadKeyFile(const std::string& path);

}  // namespace outpost::apps

#endif  // OUTPOST_APPS_BUNDLE_KEYS_H_
