// RepositoryWatcher: reloads a model when its files change on disk, so that a site updates a
// model by writing a new version folder (or a new config.yaml) into the repository.
//
// It watches, with Linux's inotify, the repository root, every model folder and every
// version folder. A change under <root>/<m> marks model m; once no further change to m has
// arrived for `settle` the watcher calls ModelRepository::Refresh(m) (new and changed versions
// are loaded and warmed up beside the serving ones, then swapped in). A version written in
// place file by file is therefore loaded after its last write; writing it under a temporary
// name starting with '.' and renaming it into place is the safe way. When the kernel's event
// queue overflows, every model is refreshed (Rescan).
//
// Thread-safety: Start() and Stop() from one thread; the watcher runs on its own thread.
#ifndef OUTPOST_SERVE_REPOSITORY_WATCHER_H_
#define OUTPOST_SERVE_REPOSITORY_WATCHER_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "base/status.h"
#include "serve/repository.h"

namespace outpost::serve {

struct WatcherOptions {
  // Quiet time after a model's last change before it is reloaded.
  std::chrono::milliseconds settle{500};
  // Called on the watcher's thread after each reload it made, with Refresh()'s result
  // (model "" = a full rescan). Optional.
  std::function<void(std::string_view model, const Status& status)> on_reload = nullptr;
};

class RepositoryWatcher {
 public:
  // Starts watching `repository`'s root. `repository` must outlive the watcher.
  // FailedPrecondition when the repository has no root; Internal when inotify fails (e.g.
  // the user's watch limit, fs.inotify.max_user_watches, is reached).
  static Result<std::unique_ptr<RepositoryWatcher>> Start(ModelRepository& repository,
                                                          WatcherOptions options = {});

  // Stops the thread; a reload in progress finishes first. Idempotent.
  void Stop();
  ~RepositoryWatcher();

  RepositoryWatcher(const RepositoryWatcher&) = delete;
  RepositoryWatcher& operator=(const RepositoryWatcher&) = delete;

 private:
  struct State;
  RepositoryWatcher(std::unique_ptr<State> state);

  std::unique_ptr<State> state_;
  std::thread thread_;
};

}  // namespace outpost::serve

#endif  // OUTPOST_SERVE_REPOSITORY_WATCHER_H_
