// The health check that decides an install (bundle/install.h): the model version loads with
// the engine as `outpost edge` would load it (its config.yaml, serve::LoadModelVersion), one
// warm-up run on a zero input passes, and the expected outputs shipped in the bundle match.
//
// Expected outputs are an optional file <model>/<version>/expected.json (bundle/FORMAT.md
// section 8): {"inputs":[{"name":..,"shape":[..],"data":[..]}],
// "outputs":[{"name":..,"data":[..]}],"tolerance":1e-5}. Numeric datatypes only.
#ifndef OUTPOST_APPS_BUNDLE_HEALTH_H_
#define OUTPOST_APPS_BUNDLE_HEALTH_H_

#include <cstdint>
#include <string>

#include "base/status.h"

namespace outpost::apps {

// FailedPrecondition naming what failed: the config, the load, the warm-up, or an output
// that differs from the expected one by more than the tolerance.
Status CheckModelHealth(const std::string& model_dir, const std::string& name, uint64_t version);

}  // namespace outpost::apps

#endif  // OUTPOST_APPS_BUNDLE_HEALTH_H_
