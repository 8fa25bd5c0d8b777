// Reading the key folder that `outpost keys generate|rotate` writes (apps/keys_command.cc):
// <dir>/<role>-<i>.key (a 32-byte Ed25519 seed in hex), <dir>/root.json (the current signed
// root) and <dir>/roots/<N>.json (every root version, the chain that bundles carry).
// Used by `outpost bundle` and by the hub's release step (hub/release.h).
#ifndef OUTPOST_BUNDLE_KEYS_H_
#define OUTPOST_BUNDLE_KEYS_H_

#include <string>
#include <vector>

#include "base/status.h"
#include "bundle/crypto.h"

namespace outpost::bundle {

// The key pairs of `dir`/<role>-<i>.key, in file name order. NotFound when there is none;
// InvalidArgument for a file that is not a hex seed.
Result<std::vector<KeyPair>> LoadKeys(const std::string& dir, const std::string& role);

// One key pair from a .key file. InvalidArgument when it is not 64 hex digits.
Result<KeyPair> LoadKeyFile(const std::string& path);

// The signed root files after version 1 (<dir>/roots/2.json, 3.json, ... up to the first
// missing number), in ascending version order: what each bundle carries so that a site
// provisioned with an older root follows the rotations (FORMAT.md section 3). Empty when
// `dir` has no roots/ folder or no version past 1. I/O errors as ReadFile's.
Result<std::vector<std::string>> LoadRootChain(const std::string& dir);

}  // namespace outpost::bundle

#endif  // OUTPOST_BUNDLE_KEYS_H_
