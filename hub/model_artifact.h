// Reading a model file out of the registry (hub/store.h, ModelEntry): what the hub's release
// step ships and what `outpost train` compares its challenger with (apps/train_command.cc).
#ifndef OUTPOST_HUB_MODEL_ARTIFACT_H_
#define OUTPOST_HUB_MODEL_ARTIFACT_H_

#include <string>

#include "base/status.h"
#include "hub/store.h"

namespace outpost::hub {

// The bytes of a registry entry's model file: those stored with the entry in `store`
// (every hub sharing the store reads them alike), or for an entry registered without them
// (before schema version 6) the file at `artifact_path` on this hub (1 GiB at most): the
// file itself, or a folder holding model.json or, failing that, model.ubj (train/FORMAT.md
// section 3). FailedPrecondition naming the model and version when neither can be read
// (the read's error in parentheses); the store's own error when the store fails.
Result<std::string> ReadModelArtifact(Store& store, const ModelEntry& entry);

}  // namespace outpost::hub

#endif  // OUTPOST_HUB_MODEL_ARTIFACT_H_
