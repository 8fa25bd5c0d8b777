// ReleasePuller: the task of `outpost edge` beside the forwarder that fetches the release
// bundles the hub has for this site over the same mutual-TLS link (hub/FORMAT.md section 10)
// and installs them exactly as `outpost bundle install` does (apps/bundle_site.h), by the
// rules of sync/FORMAT.md section 7: the newest release above the installed bundle version,
// fetched a range at a time into <data_dir>/releases/<sha256>.part (a cut download continues
// where it stopped), within the link's bandwidth cap (sync/bandwidth.h, shared with the
// forwarder), checked against the listing's SHA-256, then verified, health-checked and
// switched by the installer, whose event (bundle/FORMAT.md section 9) reaches the hub through
// the outbox. A version at or below the installed one is never fetched; a refused release is
// remembered (refused.json) and not fetched again.
//
// One thread asks at start and every `interval`. Thread-safe: Stop may be called from any
// thread.
#ifndef OUTPOST_APPS_EDGE_RELEASES_H_
#define OUTPOST_APPS_EDGE_RELEASES_H_

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "apps/bundle_site.h"
#include "apps/edge_config.h"
#include "base/status.h"
#include "sync/bandwidth.h"
#include "sync/hub_client.h"
#include "sync/release_list.h"

namespace outpost::apps {

using sync::OfferedRelease;
using sync::ParseContentRange;
using sync::ParseReleaseList;
using sync::ParseReleaseRollbacks;

inline constexpr uint64_t kReleaseChunkBytes = uint64_t{1} << 20;
inline constexpr size_t kMaxRefusedReleases = 100;

struct ReleasePullerOptions {
  sync::HubClientOptions https{};  // the forwarder's hub and credentials
  // The link's cap, shared with the forwarder; null = none.
  std::shared_ptr<sync::Bandwidth> bandwidth{};
  SiteInstall site{};          // as `outpost bundle install`'s flags
  std::string releases_dir{};  // <data_dir>/releases
  std::chrono::milliseconds interval = std::chrono::seconds(60);
  uint64_t max_bundle_bytes = uint64_t{1} << 30;
  uint64_t chunk_bytes = kReleaseChunkBytes;  // at least 16 KiB
};

// What a round did, for logs and tests.
enum class PullOutcome {
  kNothing,     // no release newer than the installed one (or only refused ones)
  kInstalled,   // a release was fetched and installed
  kRefused,     // a release was fetched and refused (or too large); remembered
  kFailed,      // the round failed (no answer, a cut download, I/O); tried again next round
  kRolledBack,  // the installed release's rollout was halted or aborted: switched back
};

class ReleasePuller {
 public:
  // Loads the credentials and makes releases_dir (0700). Errors as HubClient::Create's and
  // the folder's. Start() also starts the thread; Create() does not (a caller runs rounds).
  static Result<std::unique_ptr<ReleasePuller>> Create(ReleasePullerOptions options);
  static Result<std::unique_ptr<ReleasePuller>> Start(ReleasePullerOptions options);
  ~ReleasePuller();
  ReleasePuller(const ReleasePuller&) = delete;
  ReleasePuller& operator=(const ReleasePuller&) = delete;

  // One round (sync/FORMAT.md section 7). Not thread-safe against the thread's own rounds.
  PullOutcome RunOnce();

  // Stops the thread; a transfer in flight ends at its deadline or its chunk's end.
  // Idempotent.
  void Stop();

 private:
  explicit ReleasePuller(ReleasePullerOptions options, std::unique_ptr<sync::HubClient> client);
  void Loop();
  bool Stopping();
  bool WaitFor(std::chrono::milliseconds d);  // false when stopping
  // Fetches `release` into its part file and returns the complete file's path.
  Result<std::string> Download(const OfferedRelease& release);
  // Adds a refused release to refused.json and spools a bundle_refused event when the
  // installer did not (too large).
  void Remember(const OfferedRelease& release, std::string_view reason);
  std::vector<std::string> RefusedDigests();
  // Rolls back from the installed bundle when its rollout was halted or aborted, and
  // remembers every listed rollback as refused (never fetched again). nullopt when the
  // installed bundle is not among `rollbacks`. `refused`: RefusedDigests() of this round.
  std::optional<PullOutcome> RollBackFrom(const std::vector<OfferedRelease>& rollbacks,
                                          const std::vector<std::string>& refused,
                                          uint64_t installed_version);

  const ReleasePullerOptions options_;
  std::unique_ptr<sync::HubClient> client_;  // used by the rounds only
  std::mutex mu_;                            // guards stopping_
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

// Starts the puller when config.sync.releases is enabled; null (and OK) when not. The hub and
// credentials are the forwarder's (StartEdgeForwarder), `bandwidth` the cap it shares.
// FailedPrecondition when neither trusted_root nor <state_dir>/root.json exists.
Result<std::unique_ptr<ReleasePuller>> StartEdgeReleases(
    const EdgeConfig& config, std::shared_ptr<sync::Bandwidth> bandwidth);

}  // namespace outpost::apps

#endif  // OUTPOST_APPS_EDGE_RELEASES_H_
