// Installing verified bundles into an edge node's model repository, and rolling back
// (FORMAT.md sections 7 and 8). One Installer works on one site:
//
//   <repository>/<model>/config.yaml, <repository>/<model>/<version>/...   what `outpost edge`
//                                                                          serves
//   <repository>/.outpost-install/                 the install's work folder (serve skips
//                                                  names starting with '.')
//   <state_dir>/root.json       the trusted root (a signed root file)
//   <state_dir>/state.json      the site state (time floor, installed version)
//   <state_dir>/installed.json  the installed bundles, oldest first; the last one is active
//   <state_dir>/bundles/<v>/    the verified OCI layout of each kept bundle (for rollback)
//   <state_dir>/journal.json    present only while a switch is under way
//   <spool_dir>/*.json          events for the hub (FORMAT.md section 9)
//
// A switch from one set of model versions to another is a list of renames written to the
// journal before the first one is made; each version folder and each config.yaml appears in
// the repository by one rename of a complete, fsync'd copy, so the repository always holds
// complete versions. The commit point is the rewrite of installed.json. Open() recovers from
// a switch that a crash interrupted: before the commit point it undoes the renames, after it
// it finishes the commit.
//
// Thread-safety: none; one Installer per process, and one process per site at a time (the
// caller serialises installers, e.g. by running them from one operator shell).
#ifndef OUTPOST_BUNDLE_INSTALL_H_
#define OUTPOST_BUNDLE_INSTALL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "bundle/bundle.h"

namespace outpost::bundle {

// Checks one installed model version: it loads, warms up, and gives the expected outputs
// shipped with it. `model_dir` is <repository>/<name>. A non-OK status fails the install.
using HealthCheck =
    std::function<Status(const std::string& model_dir, const std::string& name, uint64_t version)>;

// Called at each named step of a switch or a deploy: verified, kept, staged, journal,
// move-<i> (after the i-th rename, from 1), checked, committed, root, state, finished.
// Production leaves it null; the crash tests' build of `outpost` kills the process there
// (apps/main.cc, OUTPOST_TEST_HOOKS).
using StepHook = std::function<void(std::string_view step)>;

struct InstallerOptions {
  // The model repository the edge node serves from. Required for Install and Rollback;
  // empty only for an installer that deploys elsewhere (Deploy).
  std::string repository;
  std::string state_dir;   // required; created when missing
  std::string spool_dir;   // where events are written; empty = no events
  std::string site_id;     // required for installs
  std::vector<std::string> site_groups;
  const Clock* clock = nullptr;  // required
  HealthCheck health_check;      // null = every version passes
  TarLimits limits;
  // The trusted root to provision when <state_dir>/root.json does not exist yet (the text of
  // a signed root file); ignored otherwise.
  std::string provision_root;
  // How many installed bundles are kept for rollback (the active one included), at least 2.
  size_t keep = 3;
  StepHook step_hook;  // null = none (production)
};

// One model version of a bundle.
struct ModelVersion {
  std::string name;
  uint64_t version = 0;
  friend bool operator==(const ModelVersion&, const ModelVersion&) = default;
};

struct InstallResult {
  uint64_t bundle_version = 0;       // the bundle now active
  uint64_t previous_version = 0;     // the bundle active before; 0 = none
  std::vector<ModelVersion> models;  // the model versions of the active bundle
};

struct SiteStatus {
  SiteState state;
  uint64_t root_version = 0;
  std::vector<uint64_t> installed;   // kept bundles, oldest first; the last is active
  std::vector<ModelVersion> models;  // of the active bundle
};

class Installer {
 public:
  // Creates the state folder when missing, provisions the root, and recovers an interrupted
  // switch. InvalidArgument for missing options; FailedPrecondition when no trusted root is
  // known; DataLoss for damaged state files; I/O errors otherwise.
  static Result<std::unique_ptr<Installer>> Open(InstallerOptions options);

  // Verifies the bundle (every refusal carries its reason, bundle/reason.h) and switches the
  // repository to its model versions; a failed health check (HEALTH_CHECK) switches back.
  // Every refusal, failure and success is spooled as an event.
  Result<InstallResult> Install(const std::string& bundle_path);

  // Hands a verified bundle to something other than this node's repository (a Kubernetes
  // cluster); OK when it took the bundle.
  using Deployer = std::function<outpost::Status(const VerifiedBundle& bundle)>;

  // Installs a bundle somewhere other than the repository: verifies it exactly as Install
  // does (the trusted root, whose own signatures were checked at Open, the root chain the
  // bundle carries, the site state), calls `deploy` with it (its layout in staging_dir,
  // removed afterwards), and when deploy succeeds commits the rotated root and the new site
  // state (time floor, anti-rollback version) through the same journal and commit as
  // Install (FORMAT.md section 8). A refusal (with Install's reason) or a failed deploy
  // changes nothing. The repository and the kept bundles are not touched, so Rollback never
  // returns to a deployed bundle. Events are spooled as Install's.
  Result<InstallResult> Deploy(const std::string& bundle_path, const Deployer& deploy);

  // Switches back to the previously installed bundle. FailedPrecondition
  // ("NO_PREVIOUS_BUNDLE") when there is none; HEALTH_CHECK as Install. The anti-rollback
  // version is unchanged, so the bundle rolled back from can be installed again.
  Result<InstallResult> Rollback();

  // The site state, trusted root version and kept bundles (the last one active).
  Result<SiteStatus> Describe();

 private:
  explicit Installer(InstallerOptions options) : options_(std::move(options)) {}
  struct Plan;
  outpost::Status Recover();
  // Runs the step hook, when there is one.
  void Step(std::string_view step) const;
  // Loads the site state and verifies the bundle into <state_dir>/staging against root_;
  // a refusal is spooled. Install and Deploy both verify through it.
  Result<VerifiedBundle> VerifyForSite(const std::string& bundle_path);
  // Step 6 of a switch, and the end of a deploy (FORMAT.md section 8): installed.json with
  // `history` and the next serial (the commit point), then the rotated root (when
  // `root_file` is not empty) and the site state (when `new_state` is set), then the journal
  // removed. Install and Deploy both persist the site state through it.
  outpost::Status Commit(const std::vector<uint64_t>& history, const SiteState* new_state,
                         const std::string& root_file);
  // Switches from the models of `from` (0 = none) to those of kept bundle `to`.
  Result<InstallResult> Switch(const std::string& op, uint64_t from, uint64_t to,
                               std::vector<uint64_t> new_history, const SiteState* new_state,
                               const std::string& root_file);
  // Step 4 of a switch: runs the health check on each model version; on the first failure
  // undoes the switch (Recover) and returns kHealthCheck.
  outpost::Status CheckHealth(const std::vector<ModelVersion>& models);
  // Drops all but the last `keep` bundles from history_, saves installed.json, and removes
  // the kept layouts that history_ no longer names.
  outpost::Status KeepLastBundles();
  outpost::Status Event(const std::string& type, uint64_t bundle_version,
                        const outpost::Status& outcome, const std::vector<ModelVersion>& models);

  InstallerOptions options_;
  Root root_;
  std::vector<uint64_t> history_;  // installed.json
  uint64_t serial_ = 0;            // installed.json: switches committed so far
};

}  // namespace outpost::bundle

#endif  // OUTPOST_BUNDLE_INSTALL_H_
