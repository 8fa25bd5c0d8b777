// Reading a model file out of the registry (hub/store.h, ModelEntry): what the hub's release
// step ships and what `outpost train` compares its challenger with (apps/train_command.cc).
#ifndef OUTPOST_HUB_MODEL_ARTIFACT_H_
#define OUTPOST_HUB_MODEL_ARTIFACT_H_

#include <string>

#include "base/status.h"
#include "hub/store.h"

namespace outpost::hub {

// The bytes of a registry entry's model file (1 GiB at most). `artifact_path` is the file
// itself, or a folder holding model.json or, failing that, model.ubj (train/FORMAT.md
// section 3). FailedPrecondition naming the model and version when the entry has no
// artifact_path or its model file cannot be read (the read's error in parentheses).
Result<std::string> ReadModelArtifact(const ModelEntry& entry);

}  // namespace outpost::hub

#endif  // OUTPOST_HUB_MODEL_ARTIFACT_H_
