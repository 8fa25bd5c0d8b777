// ModelRepository: the models an edge node serves, loaded from a folder.
//
//   <root>/<model>/config.yaml
//   <root>/<model>/<version>/model.json | model.ubj | model.onnx
//
// Versions are positive integers (folder names of digits only). The version policy of each
// model picks which versions are loaded. A model or version that fails to load is recorded
// with its reason and does not stop the others.
//
// Thread-safety: every const method is safe to call from any thread at any time. The
// loaded state is an immutable snapshot behind a shared_ptr; a later reload builds a new
// snapshot and swaps it, so a handle that a request holds stays valid until it is dropped.
#ifndef OUTPOST_SERVE_REPOSITORY_H_
#define OUTPOST_SERVE_REPOSITORY_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "engine/model.h"
#include "serve/model_config.h"

namespace outpost::serve {

enum class VersionState { kReady, kUnavailable };
std::string_view VersionStateName(VersionState state);  // "READY" / "UNAVAILABLE"

// One version that was asked for by the policy, loaded or not.
struct VersionStatus {
  int64_t version = 0;
  VersionState state = VersionState::kUnavailable;
  std::string reason;  // why it is unavailable; empty when ready
};

// One model as it stands in a snapshot. Immutable once published.
struct ServableModel {
  std::string name;
  // Null when config.yaml itself could not be read; `error` then says why.
  std::shared_ptr<const ModelConfig> config;
  std::string error;
  std::vector<VersionStatus> versions;  // ascending by version
  // The loaded versions, ascending; same versions as the kReady entries above.
  std::vector<std::pair<int64_t, std::shared_ptr<const engine::Model>>> ready;

  bool IsReady() const { return !ready.empty(); }
};

// What a request holds while it runs: keeps its model version alive across reloads.
struct ModelHandle {
  std::shared_ptr<const ServableModel> servable;
  int64_t version = 0;
  const engine::Model* model = nullptr;  // owned by `servable`
};

struct RepositoryOptions {
  std::string root;
  // Ready for traffic only when every model has its policy's versions loaded (Triton's
  // strict readiness). When false, ready once the repository was scanned.
  bool strict_readiness = true;
};

class ModelRepository {
 public:
  // Scans `options.root` and loads every model. Fails only when the root itself cannot be
  // read; individual model failures are recorded in Models().
  static Result<std::unique_ptr<ModelRepository>> Open(RepositoryOptions options);

  // A repository holding exactly the given models, for tests and for embedding.
  static std::unique_ptr<ModelRepository> FromModels(
      std::vector<std::shared_ptr<const ServableModel>> models, RepositoryOptions options = {});

  // The model to run. `version` absent = the highest ready version.
  // NotFound: unknown model, or a version that is not served. Unavailable: the model or that
  // version exists but failed to load (the reason is in the message).
  Result<ModelHandle> Find(std::string_view name, std::optional<int64_t> version) const;

  // Every model in the repository, sorted by name.
  std::vector<std::shared_ptr<const ServableModel>> Models() const;

  // See RepositoryOptions::strict_readiness.
  bool IsReady() const;

  const RepositoryOptions& options() const { return options_; }

 private:
  struct Snapshot {
    std::vector<std::shared_ptr<const ServableModel>> models;  // sorted by name
  };
  explicit ModelRepository(RepositoryOptions options) : options_(std::move(options)) {}
  std::shared_ptr<const Snapshot> snapshot() const;

  RepositoryOptions options_;
  mutable std::mutex mu_;  // guards snapshot_ (the pointer, not what it points to)
  std::shared_ptr<const Snapshot> snapshot_;
};

// Loads one model version's file with the backend named in `config`. Exposed for the
// bundle installer's health check.
Result<std::unique_ptr<engine::Model>> LoadModelVersion(const ModelConfig& config,
                                                        const std::string& version_dir);

}  // namespace outpost::serve

#endif  // OUTPOST_SERVE_REPOSITORY_H_
