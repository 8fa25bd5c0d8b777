// Moves the events that `outpost bundle install|rollback` spooled (bundle/FORMAT.md section
// 9) into the running edge's outbox: the edge owns the outbox (one connection, LOCK in its
// data_dir), so installers write files and the edge appends them.
#ifndef OUTPOST_APPS_BUNDLE_SPOOL_H_
#define OUTPOST_APPS_BUNDLE_SPOOL_H_

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/status.h"
#include "outbox/outbox.h"

namespace outpost::apps {

// Appends every complete file of <data_dir>/spool to the outbox as an `event` record on stream
// "bundle", oldest first, and deletes each file once its Append returned OK. A file that is
// not a JSON object within the size cap is renamed to <name>.bad and skipped. Returns the
// number of records appended; stops at the first Append error (the file stays for the next
// round).
Result<int> DrainBundleSpool(const std::string& data_dir, outbox::Outbox& outbox);

// Drains the spool once in the constructor, then every `period` on its own thread until
// destroyed.
// `outbox` must outlive it.
class BundleSpoolDrainer {
 public:
  BundleSpoolDrainer(std::string data_dir, outbox::Outbox* outbox,
                     std::chrono::milliseconds period = std::chrono::seconds(2));
  ~BundleSpoolDrainer();
  BundleSpoolDrainer(const BundleSpoolDrainer&) = delete;
  BundleSpoolDrainer& operator=(const BundleSpoolDrainer&) = delete;

 private:
  void Loop();

  const std::string data_dir_;
  outbox::Outbox* const outbox_;  // not owned
  const std::chrono::milliseconds period_;
  std::mutex mu_;  // guards stop_
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace outpost::apps

#endif  // OUTPOST_APPS_BUNDLE_SPOOL_H_
