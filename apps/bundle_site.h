// Installing a bundle at this site's node: the one code path of `outpost bundle install`
// (apps/bundle_command.cc) and of the releases `outpost edge` fetches from the hub
// (apps/edge_releases.h), so that a bundle is verified, health-checked, switched and
// reported exactly alike whichever way it arrived (bundle/FORMAT.md sections 6 to 9).
//
// Installs of one state folder are serialised by an advisory lock on
// <state_dir>/install.lock (bundle/FORMAT.md section 8), held from before the installer
// opens (and recovers) until the switch is committed or undone.
#ifndef OUTPOST_APPS_BUNDLE_SITE_H_
#define OUTPOST_APPS_BUNDLE_SITE_H_

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "bundle/install.h"

namespace outpost::apps {

// Where and as whom a node installs (the flags of `outpost bundle install`).
struct SiteInstall {
  std::string repository{};  // the model repository the node serves; empty = elsewhere
  std::string state_dir{};   // the trusted root, site state and kept bundles
  std::string data_dir{};    // the edge's data_dir; events go to <data_dir>/spool
  std::string site_id{};
  std::vector<std::string> site_groups{};
  std::string trusted_root{};  // a signed root file to provision when state_dir has none
  bool health_check = true;    // apps/bundle_health.h's check of each new version
  // The site's own check after it (EdgeReleasesConfig::health_command): argv, empty = none.
  std::vector<std::string> health_command{};
  std::chrono::seconds health_timeout{60};
  bundle::StepHook step_hook{};  // null in the shipped binary
};

// The site's installer for `site`. `elsewhere`: for a deploy to a cluster, which needs no
// repository. InvalidArgument for a missing state folder (or repository); the installer's
// errors otherwise.
Result<std::unique_ptr<bundle::Installer>> OpenSiteInstaller(const SiteInstall& site,
                                                             bool elsewhere = false);

// Holds <state_dir>/install.lock (flock, exclusive; waits for another holder) while it
// lives. Move-only.
class InstallLock {
 public:
  // Creates the state folder (0700) when missing. I/O errors naming the file.
  static Result<InstallLock> Acquire(const std::string& state_dir);
  InstallLock(InstallLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  InstallLock& operator=(InstallLock&&) = delete;
  InstallLock(const InstallLock&) = delete;
  ~InstallLock();

 private:
  explicit InstallLock(int fd) : fd_(fd) {}
  int fd_;
};

// `outpost bundle install <bundle_path>` for a node: under the install lock, opens the
// installer and installs (bundle::Installer::Install: every refusal, failure and success
// spooled as an event). Its result or error, with the bundle reason of a refusal.
Result<bundle::InstallResult> InstallBundleAtSite(const SiteInstall& site,
                                                  const std::string& bundle_path);

// `outpost bundle rollback` for a node: under the install lock, switches back to the bundle
// installed before (bundle::Installer::Rollback; the event spooled as Install's).
Result<bundle::InstallResult> RollBackAtSite(const SiteInstall& site);

// Runs `argv` with OUTPOST_MODEL_DIR, OUTPOST_MODEL and OUTPOST_MODEL_VERSION set to the
// version being checked; FailedPrecondition naming the command when it exits non-zero, is
// killed, or runs past `timeout` (then killed).
Status RunSiteHealthCommand(const std::vector<std::string>& argv, std::chrono::seconds timeout,
                            const std::string& model_dir, const std::string& name,
                            uint64_t version);

}  // namespace outpost::apps

#endif  // OUTPOST_APPS_BUNDLE_SITE_H_
