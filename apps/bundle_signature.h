// The signature `outpost bundle create` reads from a model version with the engine that will
// serve it: the model loads as `outpost edge` would load it (its config.yaml,
// serve::LoadModelVersion), and its inputs and outputs become the descriptor's
// (bundle/FORMAT.md section 5, "Derived and checked descriptors"). The bundle library knows no
// engine; this is the reader it is given (bundle::CreateOptions::read_signature).
#ifndef OUTPOST_APPS_BUNDLE_SIGNATURE_H_
#define OUTPOST_APPS_BUNDLE_SIGNATURE_H_

#include <cstdint>
#include <string>

#include "base/status.h"
#include "bundle/bundle.h"

namespace outpost::apps {

// The engine (config.yaml's backend), this Outpost's engine version, and the inputs and
// outputs of version `version` of model `name` in `model_dir`. InvalidArgument when the
// config is missing or bad; the load's own error when the model does not load.
Result<bundle::ModelSignature> ReadModelSignature(const std::string& model_dir,
                                                  const std::string& name, uint64_t version);

}  // namespace outpost::apps

#endif  // OUTPOST_APPS_BUNDLE_SIGNATURE_H_
