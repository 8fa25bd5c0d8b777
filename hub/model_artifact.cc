// Reading a model file out of the registry (model_artifact.h).
#include "hub/model_artifact.h"

#include <cstdint>

#include "base/file.h"

namespace outpost::hub {
namespace {

constexpr uint64_t kMaxModelBytes = uint64_t{1} << 30;  // one model file of the registry

}  // namespace

Result<std::string> ReadModelArtifact(Store& store, const ModelEntry& entry) {
  OUTPOST_ASSIGN_OR_RETURN(std::string stored, store.GetModelArtifact(entry.name, entry.version));
  if (!stored.empty()) return stored;
  std::string path = entry.artifact_path;
  if (path.empty()) {
    return FailedPreconditionError(entry.name + " version " + std::to_string(entry.version) +
                                   " has no artifact_path in the registry");
  }
  if (IsDirectory(path)) {
    path = PathExists(JoinPath(path, "model.json")) ? JoinPath(path, "model.json")
                                                    : JoinPath(path, "model.ubj");
  }
  Result<std::string> bytes = ReadFile(path, kMaxModelBytes);
  if (!bytes.ok()) {
    return FailedPreconditionError(entry.name + " version " + std::to_string(entry.version) +
                                   " has no readable model file (" + bytes.status().ToString() +
                                   ")");
  }
  return bytes;
}

}  // namespace outpost::hub
