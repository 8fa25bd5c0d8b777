#include "apps/bundle_site.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>

#include "apps/bundle_health.h"
#include "base/clock.h"
#include "base/file.h"
#include "base/subprocess.h"

namespace outpost::apps {

Result<std::unique_ptr<bundle::Installer>> OpenSiteInstaller(const SiteInstall& site,
                                                             bool elsewhere) {
  if (site.state_dir.empty()) {
    return InvalidArgumentError(
        elsewhere ? "give --state-dir: the site's trusted root and state (anti-rollback version, "
                    "time floor) are kept there"
                  : "give --repository and --state-dir");
  }
  if (site.repository.empty() && !elsewhere) {
    return InvalidArgumentError("give --repository and --state-dir");
  }
  bundle::InstallerOptions options{
      .repository = site.repository,
      .state_dir = site.state_dir,
      .spool_dir = site.data_dir.empty() ? "" : JoinPath(site.data_dir, "spool"),
      .site_id = site.site_id,
      .site_groups = site.site_groups,
      .clock = &SystemClock(),
      .step_hook = site.step_hook};
  if (site.health_check || !site.health_command.empty()) {
    options.health_check =
        [builtin = site.health_check, command = site.health_command, timeout = site.health_timeout](
            const std::string& model_dir, const std::string& name, uint64_t version) -> Status {
      if (builtin) OUTPOST_RETURN_IF_ERROR(CheckModelHealth(model_dir, name, version));
      if (command.empty()) return Status::Ok();
      return RunSiteHealthCommand(command, timeout, model_dir, name, version);
    };
  }
  if (!site.trusted_root.empty()) {
    OUTPOST_ASSIGN_OR_RETURN(options.provision_root, ReadFile(site.trusted_root, 1 << 20));
  }
  return bundle::Installer::Open(std::move(options));
}

Result<InstallLock> InstallLock::Acquire(const std::string& state_dir) {
  OUTPOST_RETURN_IF_ERROR(MakeDirectories(state_dir, 0700));
  const std::string path = JoinPath(state_dir, "install.lock");
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoToStatus(errno, "opening", path);
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    const int err = errno;
    ::close(fd);
    return ErrnoToStatus(err, "locking", path);
  }
  return InstallLock(fd);
}

InstallLock::~InstallLock() {
  if (fd_ >= 0) ::close(fd_);  // closing lets the lock go
}

Result<bundle::InstallResult> InstallBundleAtSite(const SiteInstall& site,
                                                  const std::string& bundle_path) {
  if (site.state_dir.empty() || site.repository.empty()) {
    return InvalidArgumentError("give --repository and --state-dir");
  }
  OUTPOST_ASSIGN_OR_RETURN(InstallLock lock, InstallLock::Acquire(site.state_dir));
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<bundle::Installer> installer, OpenSiteInstaller(site));
  return installer->Install(bundle_path);
}

Result<bundle::InstallResult> RollBackAtSite(const SiteInstall& site) {
  if (site.state_dir.empty() || site.repository.empty()) {
    return InvalidArgumentError("give --repository and --state-dir");
  }
  OUTPOST_ASSIGN_OR_RETURN(InstallLock lock, InstallLock::Acquire(site.state_dir));
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<bundle::Installer> installer, OpenSiteInstaller(site));
  return installer->Rollback();
}

Status RunSiteHealthCommand(const std::vector<std::string>& argv, std::chrono::seconds timeout,
                            const std::string& model_dir, const std::string& name,
                            uint64_t version) {
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<Subprocess> child,
                           Subprocess::Start(argv, "",
                                             {{"OUTPOST_MODEL_DIR", model_dir},
                                              {"OUTPOST_MODEL", name},
                                              {"OUTPOST_MODEL_VERSION", std::to_string(version)}},
                                             Subprocess::Lifetime::kDiesWithParent));
  // A watchdog kills a command that runs past its time.
  std::mutex mu;
  std::condition_variable cv;
  bool done = false, killed = false;
  std::thread watchdog([&] {
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_for(lock, timeout, [&] { return done; })) {
      killed = true;
      child->Signal(SIGKILL).IgnoreError();
    }
  });
  child->ReadAll();
  const int code = child->Wait();
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
  }
  cv.notify_all();
  watchdog.join();
  if (killed) {
    return FailedPreconditionError("the site's health command " + argv[0] + " ran past " +
                                   std::to_string(timeout.count()) + " s");
  }
  if (code != 0) {
    return FailedPreconditionError("the site's health command " + argv[0] + " exited " +
                                   std::to_string(code));
  }
  return Status::Ok();
}

}  // namespace outpost::apps
