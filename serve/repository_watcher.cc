// The one file of Outpost that uses inotify.
#include "serve/repository_watcher.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <utility>
#include <vector>

#include "base/file.h"
#include "base/logging.h"

namespace outpost::serve {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint32_t kDirMask = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO |
                              IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;

bool IsVersionName(std::string_view name) {
  if (name.empty() || name.size() > 18) return false;
  for (char c : name) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

struct RepositoryWatcher::State {
  ModelRepository& repository;
  WatcherOptions options;
  std::string root;
  int inotify_fd = -1;
  int stop_fd = -1;  // an eventfd; written by Stop()
  // Only the watcher's thread touches what follows (after Start).
  std::map<int, std::string> watched;  // watch descriptor -> model ("" = the root)
  std::map<std::string, Clock::time_point> pending;  // model -> when to reload it
  bool rescan_pending = false;
  Clock::time_point rescan_at{};

  State(ModelRepository& r, WatcherOptions o)
      : repository(r), options(std::move(o)), root(r.options().root) {}
  ~State() {
    if (inotify_fd >= 0) ::close(inotify_fd);
    if (stop_fd >= 0) ::close(stop_fd);
  }

  void AddWatch(const std::string& path, const std::string& model) {
    const int wd = ::inotify_add_watch(inotify_fd, path.c_str(), kDirMask);
    if (wd < 0) {
      // A folder that vanished between listing and watching needs no watch.
      if (errno != ENOENT && errno != ENOTDIR) {
        OUTPOST_LOG(kWarning) << "cannot watch folder; its changes are not seen"
                              << Field("path", path) << Field("error", std::strerror(errno));
      }
      return;
    }
    watched[wd] = model;
  }

  // Watches <root>/<model> and its version folders (adding a watch twice is harmless).
  void WatchModel(const std::string& model) {
    const std::string dir = JoinPath(root, model);
    if (!IsDirectory(dir)) return;
    AddWatch(dir, model);
    Result<std::vector<std::string>> entries = ListDirectory(dir);
    if (!entries.ok()) return;
    for (const std::string& entry : *entries) {
      if (IsVersionName(entry) && IsDirectory(JoinPath(dir, entry))) {
        AddWatch(JoinPath(dir, entry), model);
      }
    }
  }

  void WatchAll() {
    AddWatch(root, "");
    Result<std::vector<std::string>> entries = ListDirectory(root);
    if (!entries.ok()) return;
    for (const std::string& entry : *entries) {
      if (!entry.empty() && entry[0] != '.') WatchModel(entry);
    }
  }

  void Mark(const std::string& model) {
    if (model.empty() || model[0] == '.') return;
    pending[model] = Clock::now() + options.settle;
  }

  // Reads the pending inotify events and marks the models they touch.
  void DrainEvents() {
    alignas(struct inotify_event) char buffer[16384];
    for (;;) {
      const ssize_t n = ::read(inotify_fd, buffer, sizeof(buffer));
      if (n <= 0) return;  // EAGAIN: drained
      for (ssize_t off = 0; off < n;) {
        const auto* event = reinterpret_cast<const struct inotify_event*>(buffer + off);
        off += static_cast<ssize_t>(sizeof(struct inotify_event) + event->len);
        if (event->mask & IN_Q_OVERFLOW) {
          rescan_pending = true;
          rescan_at = Clock::now() + options.settle;
          continue;
        }
        auto it = watched.find(event->wd);
        if (it == watched.end()) continue;
        const std::string model = it->second;
        if (event->mask & IN_IGNORED) {
          watched.erase(it);
          continue;
        }
        const std::string name = event->len > 0 ? std::string(event->name) : std::string();
        Mark(model.empty() ? name : model);
      }
    }
  }

  // Reloads the models whose settle time has passed.
  void ReloadDue() {
    const Clock::time_point now = Clock::now();
    if (rescan_pending && rescan_at <= now) {
      rescan_pending = false;
      pending.clear();
      Status status = repository.Rescan();
      WatchAll();
      if (options.on_reload) options.on_reload("", status);
      return;
    }
    std::vector<std::string> due;
    for (const auto& [model, at] : pending) {
      if (at <= now) due.push_back(model);
    }
    for (const std::string& model : due) {
      pending.erase(model);
      Status status = repository.Refresh(model);
      WatchModel(model);
      if (!status.ok()) {
        OUTPOST_LOG(kWarning) << "model reload after a file change did not complete"
                              << Field("model", model) << Field("reason", status.ToString());
      }
      if (options.on_reload) options.on_reload(model, status);
    }
  }

  // Milliseconds until the next reload is due; -1 = none pending.
  int PollTimeout() const {
    if (pending.empty() && !rescan_pending) return -1;
    Clock::time_point next = Clock::time_point::max();
    for (const auto& [model, at] : pending) next = std::min(next, at);
    if (rescan_pending) next = std::min(next, rescan_at);
    const auto ms =
        std::chrono::ceil<std::chrono::milliseconds>(next - Clock::now()).count();
    return ms <= 0 ? 0 : static_cast<int>(std::min<int64_t>(ms, 60000));
  }

  void Run() {
    for (;;) {
      struct pollfd fds[2] = {{.fd = inotify_fd, .events = POLLIN, .revents = 0},
                              {.fd = stop_fd, .events = POLLIN, .revents = 0}};
      const int ready = ::poll(fds, 2, PollTimeout());
      if (ready < 0 && errno != EINTR) {
        OUTPOST_LOG(kError) << "repository watcher stopped" << Field("error", std::strerror(errno));
        return;
      }
      if (fds[1].revents != 0) return;
      if (fds[0].revents != 0) DrainEvents();
      ReloadDue();
    }
  }
};

Result<std::unique_ptr<RepositoryWatcher>> RepositoryWatcher::Start(ModelRepository& repository,
                                                                    WatcherOptions options) {
  if (repository.options().root.empty()) {
    return FailedPreconditionError("the model repository has no folder to watch");
  }
  auto state = std::make_unique<State>(repository, std::move(options));
  state->inotify_fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (state->inotify_fd < 0) {
    return InternalError(std::string("inotify_init1: ") + std::strerror(errno));
  }
  state->stop_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (state->stop_fd < 0) return InternalError(std::string("eventfd: ") + std::strerror(errno));
  if (::inotify_add_watch(state->inotify_fd, state->root.c_str(), kDirMask) < 0) {
    return InternalError("cannot watch the model repository \"" + state->root +
                         "\": " + std::strerror(errno));
  }
  state->WatchAll();
  OUTPOST_LOG(kInfo) << "watching the model repository for changes"
                     << Field("root", state->root) << Field("folders", state->watched.size());
  std::unique_ptr<RepositoryWatcher> watcher(new RepositoryWatcher(std::move(state)));
  State* s = watcher->state_.get();
  watcher->thread_ = std::thread([s] { s->Run(); });
  return watcher;
}

RepositoryWatcher::RepositoryWatcher(std::unique_ptr<State> state) : state_(std::move(state)) {}

void RepositoryWatcher::Stop() {
  if (!thread_.joinable()) return;
  const uint64_t one = 1;
  ssize_t written = ::write(state_->stop_fd, &one, sizeof(one));
  (void)written;
  thread_.join();
}

RepositoryWatcher::~RepositoryWatcher() { Stop(); }

}  // namespace outpost::serve
