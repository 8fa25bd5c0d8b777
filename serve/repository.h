// ModelRepository: the models an edge node serves, loaded from a folder.
//
//   <root>/<model>/config.yaml
//   <root>/<model>/<version>/model.json | model.ubj | model.onnx
//
// Versions are positive integers (folder names of digits only). The version policy of each
// model picks which versions are loaded. A model or version that fails to load is recorded
// with its reason and does not stop the others.
//
// Live updates: Load() (re)reads one model from disk, Refresh() does the same for the
// repository watcher, Unload() stops serving a model, Rescan() refreshes every model. A new
// version is loaded and warmed up beside the versions serving now and the model's entry is
// swapped in one step; a version that fails to load leaves the versions serving before it in
// service, with the failure reported in Index(). Versions whose files and config did not
// change are kept as they are (same model object, same statistics).
//
// Thread-safety: every method is safe to call from any thread at any time. The loaded state
// is an immutable snapshot behind a shared_ptr; a reload builds a new snapshot and swaps it,
// so a handle that a request holds stays valid, on the version it found, until it is
// dropped. Reloads are serialized among themselves and never block Find().
#ifndef OUTPOST_SERVE_REPOSITORY_H_
#define OUTPOST_SERVE_REPOSITORY_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "engine/model.h"
#include "insight/rules.h"
#include "serve/metrics.h"
#include "serve/model_config.h"
#include "serve/scheduler.h"

namespace outpost::serve {

class ShadowRunner;  // serve/shadow.h
class LabelTally;    // serve/label_tally.h

enum class VersionState { kReady, kUnavailable };
std::string_view VersionStateName(VersionState state);  // "READY" / "UNAVAILABLE"

// One version that was asked for by the policy, loaded or not.
struct VersionStatus {
  int64_t version = 0;
  VersionState state = VersionState::kUnavailable;
  std::string reason;  // why it is unavailable; empty when ready
  // Failed during a live update while the model's earlier versions kept serving; such a
  // version does not make the server unready (see RepositoryOptions::strict_readiness).
  bool failed_update = false;
};

// One row of the repository extension's index (POST /v2/repository/index).
struct IndexEntry {
  std::string name;
  int64_t version = 0;  // 0 = the model as a whole (unloaded, or its config is unreadable)
  VersionState state = VersionState::kUnavailable;
  std::string reason;
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
  // The statistics of each entry of `ready`, same index. The repository fills them.
  std::vector<std::shared_ptr<ModelStats>> stats;
  // The insight rules of each entry of `ready`, same index: the `insight:` section of the
  // config.yaml the version was loaded with, checked against that version's signature when it
  // loaded (a version whose rules are malformed or do not fit it does not load). Null = no
  // rules (a model built in memory). A config without the section gives an empty RuleSet.
  std::vector<std::shared_ptr<const insight::RuleSet>> insight_rules;
  // The scheduler (queue, dynamic batching, instances) of each entry of `ready`, same index,
  // built from the config's max_batch_size and `batching:` section. The repository fills them.
  std::vector<std::shared_ptr<Scheduler>> schedulers;
  // Unloaded on request (ModelRepository::Unload); nothing is served until Load().
  bool unloaded = false;
  // Why the last reload failed as a whole (e.g. config.yaml became unreadable) while the
  // versions in `ready` kept serving; empty otherwise.
  std::string reload_error;
  // What the versions in `ready` were loaded from, to tell whether a reload must load them
  // again: the text of config.yaml, and per entry of `ready` a fingerprint of its folder.
  std::string config_text;
  std::vector<std::string> fingerprints;

  bool IsReady() const { return !ready.empty(); }
};

// What a request holds while it runs: keeps its model version alive across reloads.
struct ModelHandle {
  std::shared_ptr<const ServableModel> servable;
  int64_t version = 0;
  const engine::Model* model = nullptr;  // owned by `servable`
  ModelStats* stats = nullptr;            // owned by `servable`; null records nothing
  // The version's insight rules, owned by `servable`; null = none.
  const std::shared_ptr<const insight::RuleSet>* insight_rules = nullptr;
  // Where the version's requests queue, owned by `servable`; null = run on the caller's
  // thread at once.
  Scheduler* scheduler = nullptr;
  // Set for the champion (a request without a version) of a model whose config names a
  // shadow, when the repository has a shadow runner: RunInference offers each scored batch
  // to it. A request naming a version is not compared.
  ShadowRunner* shadow = nullptr;
  // Where the request's answer is remembered for the feedback labels that may follow
  // (serve/label_tally.h); null = not counted.
  LabelTally* labels = nullptr;
};

// The scheduler options a model config asks for (instance_count 0 = one per core).
SchedulerOptions SchedulerOptionsFor(const ModelConfig& config);

// Loads one model version from its folder; LoadModelVersion below by default.
using ModelLoader = std::function<Result<std::unique_ptr<engine::Model>>(
    const ModelConfig& config, const std::string& version_dir)>;

struct RepositoryOptions {
  std::string root;
  // Ready for traffic only when every model has its policy's versions loaded (Triton's
  // strict readiness). When false, ready once the repository was scanned.
  // A version that failed during a live update while earlier versions kept serving does
  // not count against readiness, nor does a model unloaded on request.
  bool strict_readiness = true;
  // Null = LoadModelVersion. Tests give a loader of fake models.
  ModelLoader loader = nullptr;
  // Run each newly loaded version once on a zero input (batch 1 where its shape has a
  // variable dimension) before it serves; a version whose warm-up run fails is not served.
  bool warm_up = true;
  // The edge's thread budget (edge.yaml `threads`); 0 = the machine's cores. An onnx model
  // whose config gives no `threads` runs each request on IntraOpThreadsFor(config, its
  // instances, this budget) threads (serve/FORMAT.md, section "Intra-op threads").
  int thread_budget = 0;
};

class ModelRepository {
 public:
  // Scans `options.root` and loads every model. Fails only when the root itself cannot be
  // read; individual model failures are recorded in Models().
  static Result<std::unique_ptr<ModelRepository>> Open(RepositoryOptions options);

  // A repository holding exactly the given models, for tests and for embedding. Each ready
  // version gets statistics when its servable has none. It has no root to reload from.
  static std::unique_ptr<ModelRepository> FromModels(
      std::vector<std::shared_ptr<const ServableModel>> models, RepositoryOptions options = {});

  // The model to run. `version` absent = the highest ready version other than the config's
  // shadow version (the shadow is loaded beside the versions its policy selects, and
  // answers only when asked for by number).
  // NotFound: unknown model, or a version that is not served. Unavailable: the model or that
  // version exists but failed to load (the reason is in the message).
  Result<ModelHandle> Find(std::string_view name, std::optional<int64_t> version) const;

  // Every model in the repository, sorted by name.
  std::vector<std::shared_ptr<const ServableModel>> Models() const;

  // See RepositoryOptions::strict_readiness.
  bool IsReady() const;

  // (Re)loads model `name` from <root>/<name> and swaps it in. Versions that changed or are
  // new are loaded and warmed up; unchanged ones are kept. Clears an earlier Unload().
  // NotFound: no such folder (nothing changes). Otherwise the model's entry is replaced, and
  // the result is OK when every version its policy wants is ready, else Unavailable with
  // the reasons (the versions serving before a failed version keep serving).
  Status Load(std::string_view name);

  // Stops serving model `name`: Find() answers Unavailable "unloaded" until Load(). Requests
  // in flight finish on their handles. NotFound for an unknown model.
  Status Unload(std::string_view name);

  // What the watcher calls when files of model `name` changed: as Load(), except that a
  // model unloaded on request stays unloaded, and a model whose folder is gone is removed.
  Status Refresh(std::string_view name);

  // Refresh() of every model on disk and of every model that was there before. Fails only
  // when the root cannot be read.
  Status Rescan();

  // Every model version the repository knows, sorted by model then version.
  std::vector<IndexEntry> Index() const;

  // Whether this repository holds model `name` now (loaded, unloaded or failed) or held it
  // at any time since it was opened (a model whose folder was removed). The edge API takes
  // feedback only for such models.
  bool Knows(std::string_view name) const;

  const RepositoryOptions& options() const { return options_; }

  // The runner that scores shadow versions (serve/shadow.h); null = shadows are loaded but
  // not scored. Not owned; must outlive its use, so set it to null before it goes.
  void SetShadowRunner(ShadowRunner* runner) { shadow_runner_.store(runner); }
  ShadowRunner* shadow_runner() const { return shadow_runner_.load(); }
  // The same for the label tally (serve/label_tally.h); null = labels are not counted.
  void SetLabelTally(LabelTally* tally) { label_tally_.store(tally); }

 private:
  struct Snapshot {
    std::vector<std::shared_ptr<const ServableModel>> models;  // sorted by name
  };
  explicit ModelRepository(RepositoryOptions options) : options_(std::move(options)) {}
  std::shared_ptr<const Snapshot> snapshot() const;
  // The entry of model `name` in the current snapshot, or null.
  std::shared_ptr<const ServableModel> Current(std::string_view name) const;
  // Replaces (or adds, or with null removes) model `name`'s entry in a new snapshot.
  void Publish(std::string_view name, std::shared_ptr<const ServableModel> servable);
  // Loads <root>/<name> as a successor of `previous` (null = first load). Caller holds
  // reload_mu_.
  std::shared_ptr<const ServableModel> LoadFromDisk(
      const std::string& name, const std::shared_ptr<const ServableModel>& previous);
  // Loads version `v` of model `name` from `vdir` into `servable` (whose config is set), or
  // keeps it from `same_config_previous` (the previous load when its config text is the
  // same, else null) when its folder did not change; fills `status`. Caller holds
  // reload_mu_.
  void LoadVersion(const std::string& name, int64_t v, const std::string& vdir,
                   const ServableModel* same_config_previous,
                   const Result<std::shared_ptr<const insight::RuleSet>>& rules,
                   ServableModel& servable, VersionStatus& status);
  // The statistics object of one version, created on first use. Caller holds reload_mu_.
  std::shared_ptr<ModelStats> StatsFor(const std::string& name, int64_t version);
  // Status of a model's load as Load() reports it.
  static Status LoadOutcome(const ServableModel& servable);

  RepositoryOptions options_;
  mutable std::mutex mu_;  // guards snapshot_ (the pointer, not what it points to), removed_
  std::shared_ptr<const Snapshot> snapshot_;
  // Models removed from the snapshot since open (bounded by the folders ever in the root).
  std::set<std::string, std::less<>> removed_;
  // Serializes loads, unloads and rescans (which take seconds) so that two reloads of one
  // model do not race; Find() never takes it. Guards stats_.
  std::mutex reload_mu_;
  std::map<std::pair<std::string, int64_t>, std::shared_ptr<ModelStats>> stats_;
  std::atomic<ShadowRunner*> shadow_runner_{nullptr};
  std::atomic<LabelTally*> label_tally_{nullptr};
};

// Loads one model version's file with the backend named in `config`. `threads` is an onnx
// model's intra-op threads per run; 0 = the config's `threads`, or 1 when it gives none.
// Exposed for the bundle installer's health check.
Result<std::unique_ptr<engine::Model>> LoadModelVersion(const ModelConfig& config,
                                                        const std::string& version_dir,
                                                        int threads = 0);

}  // namespace outpost::serve

#endif  // OUTPOST_SERVE_REPOSITORY_H_
