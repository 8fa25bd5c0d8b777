// Reading the key files that `outpost keys` writes: the code lives in the bundle library
// (bundle/keys.h) so that the hub's release step signs with the same keys; `outpost bundle`
// and `outpost keys` call it by these names.
#ifndef OUTPOST_APPS_BUNDLE_KEYS_H_
#define OUTPOST_APPS_BUNDLE_KEYS_H_

#include "bundle/keys.h"

namespace outpost::apps {

using bundle::LoadKeyFile;
using bundle::LoadKeys;
using bundle::LoadRootChain;

}  // namespace outpost::apps

#endif  // OUTPOST_APPS_BUNDLE_KEYS_H_
