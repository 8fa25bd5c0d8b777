// Rollouts: every release the hub makes (hub/release.h) reaches the sites it is meant for in
// waves — named canary sites, then growing shares of the remaining sites, then all — each
// wave opened only once the previous one is healthy: every site in it installed, its health
// check passed (the site's install event), and over a soak time its scoring error rate (and,
// where labels arrive, its accuracy) not worse than before the wave opened by more than the
// configured margin. A failed gate halts the rollout; a halted or aborted rollout tells every
// site it is meant for to roll back from it (the site listener's /sync/v1/releases, which
// offers a bundle only to the sites of opened waves). Operators pause, resume, abort and
// promote through the operator API, each action in the hub's audit log.
//
// The document of each rollout lives in the store (STORE.md section 3, `rollouts`), written
// only at the revision its writer read, so the state survives a hub restart and hubs that
// share one store see one rollout. Formats: hub/FORMAT.md section 11; API: hub/QUERY_API.md
// "Rollouts".
#ifndef OUTPOST_HUB_ROLLOUT_H_
#define OUTPOST_HUB_ROLLOUT_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/http/server.h"
#include "base/status.h"
#include "hub/http.h"
#include "hub/lease.h"
#include "hub/store.h"

namespace outpost::hub {

inline constexpr size_t kMaxRolloutWaves = 10;
inline constexpr size_t kMaxRolloutSites = 5000;  // sites drawn into waves
inline constexpr size_t kMaxRolloutHistory = 200;

// A model's `release.rollout:` in the hub config (hub/FORMAT.md section 11).
struct RolloutPlan {
  std::vector<std::string> canary{};  // the first wave, by name
  // Each following wave brings the share of the remaining sites up to this percentage
  // (ascending, 1..99); a last wave of all follows.
  std::vector<int> percent{};
  int64_t soak_s = 0;  // after every site of a wave installed, before its gate decides
  double max_error_rate_increase = 0.01;  // absolute, 0..1
  double max_accuracy_drop = 0.02;        // absolute, 0..1
  int64_t min_requests = 0;  // requests a site's new version must answer before it is judged
  int64_t min_labels = 20;   // labelled requests before accuracy is compared
};

// InvalidArgument naming the key: canary site ids, at most kMaxRolloutWaves - 1 waves in all
// before the last, percentages strictly ascending in 1..99, soak_s 0..30 days, margins 0..1,
// min_requests and min_labels 0..1e9.
Status ValidateRolloutPlan(const RolloutPlan& plan);

// Request counters of one model version at a site (sync/FORMAT.md section 2, summed over
// the site's nodes).
struct VersionCounters {
  int64_t ok = 0;
  int64_t failed = 0;
  int64_t labelled = 0;
  int64_t correct = 0;
  int64_t requests() const { return ok + failed; }
};

struct RolloutWave {
  std::string name{};  // "canary", "25%", "all"
  std::vector<std::string> sites{};
  int64_t opened_ms = 0;  // 0 = not opened
  int64_t installed_ms = 0;
  int64_t passed_ms = 0;
  std::string gate = "pending";
  std::string detail{};
};

struct RolloutSite {
  std::string site_id{};
  size_t wave = 0;
  std::string status = "pending";  // pending, offered, installed, failed, rolled_back
  std::string reason{};
  int64_t updated_ms = 0;
  std::optional<double> baseline_error_rate{};
  std::optional<double> baseline_accuracy{};
  int64_t requests = 0;
  std::optional<double> error_rate{};
  std::optional<double> accuracy{};
};

struct RolloutEvent {
  int64_t time_ms = 0;
  std::string action{};
  std::string operator_name{};  // empty = the hub
  std::string detail{};
};

// One rollout's document (hub/FORMAT.md section 11).
struct Rollout {
  std::string model{};
  int64_t model_version = 0;
  uint64_t bundle_version = 0;
  std::string tenant{};
  std::string state = "rolling";  // rolling, paused, complete, halted, aborted
  std::string reason{};
  size_t current_wave = 0;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  RolloutPlan plan{};
  std::vector<RolloutWave> waves{};
  std::vector<RolloutSite> sites{};
  std::vector<RolloutEvent> history{};
  int64_t revision = 0;  // the store's, not in the document

  bool Finished() const { return state == "halted" || state == "aborted"; }
};

std::string EncodeRollout(const Rollout& rollout);
// DataLoss naming the member for a document that is not one EncodeRollout writes.
Result<Rollout> DecodeRollout(std::string_view json);

// A new rollout at now_ms of `sites` (the sites the bundle is meant for, each once): the
// plan's canary sites that are among them, then each percentage's share of the rest drawn in
// an order that depends on the release (SHA-256 of "<model>/<version>/<site>"), then the rest.
// Empty waves are left out; the first wave is opened at once.
Rollout NewRollout(std::string tenant, std::string model, int64_t model_version,
                   uint64_t bundle_version, const RolloutPlan& plan,
                   const std::vector<std::string>& sites, int64_t now_ms);

// What the hub last learnt of one site (its bundle events and its nodes' status reports).
struct SiteObservation {
  bool installed = false;                     // installed the rollout's bundle (or a newer one)
  bool failed = false;                        // its install of the bundle failed or was refused
  std::string reason{};                       // the failure's reason code
  bool rolled_back = false;                   // installed it, then switched back below it
  std::optional<VersionCounters> released{};  // the released version's counters
  std::optional<VersionCounters> serving{};   // the other versions it serves
};

// One step of the controller at now_ms: site statuses, a failed site or gate halts, a wave
// whose gate passed opens the next, the last passed completes. True when anything changed.
bool AdvanceRollout(Rollout& rollout, const std::map<std::string, SiteObservation>& seen,
                    int64_t now_ms);

// An operator's action ("pause", "resume", "abort", "promote"): FailedPrecondition reason
// rollout_finished when the rollout's state does not take it (the table of QUERY_API.md);
// InvalidArgument reason unknown_action for another word. A pause of a paused rollout and a
// resume of a rolling one change nothing and succeed.
Status ApplyRolloutAction(Rollout& rollout, std::string_view action, std::string_view who,
                          int64_t now_ms);

// What the site listener does with a bundle under this rollout for `site_id` (a site the
// bundle is meant for): offer it, leave it out, or tell the site to roll back from it.
enum class RolloutOffer { kOffer, kWithhold, kRollBack };
RolloutOffer OfferFor(const Rollout& rollout, std::string_view site_id);

// Creates the rollout of a release just made: NewRollout over `sites`, written to the store
// replacing any earlier row of (model, model_version) (a version released again).
Status StartRollout(Store& store, const std::string& tenant, const std::string& model,
                    int64_t model_version, uint64_t bundle_version, const RolloutPlan& plan,
                    const std::vector<std::string>& sites, int64_t now_ms);

// The rollout controller of a hub: a thread that every `interval` reads the rollouts that
// are not finished, what their sites reported, and advances them (only while the hub holds
// the scheduler lease, where several share one store); the operator API; and the offer
// decisions of the site listener. Thread-safe.
class RolloutController {
 public:
  struct Options {
    Clock* clock = nullptr;  // null = SystemClock()
    std::chrono::milliseconds interval = std::chrono::seconds(2);
    const SchedulerLease* lease = nullptr;  // null: this hub advances rollouts alone
    // Records each operator action (hub/FORMAT.md section 1); null: not recorded.
    std::function<Status(std::string_view line)> audit{};
    bool start_thread = true;
  };
  static Result<std::unique_ptr<RolloutController>> Start(Store& store, Options options);
  ~RolloutController();
  RolloutController(const RolloutController&) = delete;
  RolloutController& operator=(const RolloutController&) = delete;

  // Stops the thread. Idempotent.
  void Stop();

  // One pass over the rollouts that are not finished; the thread calls it every interval.
  Status Tick();

  // Whether the bundle (model, model_version, bundle_version) is offered to `site_id`, left
  // out, or rolled back from; a bundle without a rollout (made by hand, or before rollouts)
  // is offered. Reads the newest 1,000 rollouts at most once a second, and the row of a
  // bundle not among them; a store failure offers nothing new (kWithhold) and keeps
  // rollbacks.
  RolloutOffer Offer(std::string_view model, int64_t model_version, uint64_t bundle_version,
                     std::string_view site_id);

  // GET /api/v1/rollouts, GET and POST /api/v1/rollouts/{model}/{v}[/action].
  HubResponse Handle(const HubRequest& request);
  void RegisterRoutes(http::Router& router);

 private:
  struct Impl;
  explicit RolloutController(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace outpost::hub

#endif  // OUTPOST_HUB_ROLLOUT_H_
