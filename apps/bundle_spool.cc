#include "apps/bundle_spool.h"

#include <unistd.h>

#include "base/file.h"
#include "base/logging.h"
#include "bundle/metadata.h"
#include "bundle/spool.h"

namespace outpost::apps {

Result<int> DrainBundleSpool(const std::string& data_dir, outbox::Outbox& outbox) {
  std::string dir = JoinPath(data_dir, "spool");
  OUTPOST_ASSIGN_OR_RETURN(std::vector<std::string> names, bundle::ListSpool(dir));
  int appended = 0;
  for (const std::string& name : names) {
    std::string path = JoinPath(dir, name);
    Result<std::string> text = ReadFile(path, bundle::kMaxSpoolEventBytes + 1);
    bool valid = text.ok() && text->size() <= bundle::kMaxSpoolEventBytes;
    if (valid) {
      Result<bundle::Json> json = bundle::ParseJson(*text, /*canonical_numbers_only=*/false);
      valid = json.ok() && std::holds_alternative<bundle::JsonObject>(json->v);
    }
    if (!valid) {
      OUTPOST_LOG(kWarning) << "bundle spool: skipping a damaged event file" << Field("file", path);
      std::string bad = path + ".bad";
      if (::rename(path.c_str(), bad.c_str()) != 0) {
        return ErrnoToStatus(errno, "renaming", path);
      }
      continue;
    }
    while (!text->empty() && text->back() == '\n') text->pop_back();
    OUTPOST_RETURN_IF_ERROR(
        outbox.Append({.kind = outbox::Kind::kEvent, .stream = "bundle", .payload = *text})
            .status());
    if (::unlink(path.c_str()) != 0) return ErrnoToStatus(errno, "removing", path);
    ++appended;
  }
  if (appended > 0) OUTPOST_RETURN_IF_ERROR(SyncDirectory(dir));
  return appended;
}

BundleSpoolDrainer::BundleSpoolDrainer(std::string data_dir, outbox::Outbox* outbox,
                                       std::chrono::milliseconds period)
    : data_dir_(std::move(data_dir)), outbox_(outbox), period_(period) {
  // The first round runs before the edge serves, so events spooled while it was down are in
  // the outbox by the time it answers.
  Result<int> n = DrainBundleSpool(data_dir_, *outbox_);
  if (!n.ok()) {
    OUTPOST_LOG(kWarning) << "bundle spool: drain failed" << Field("error", n.status());
  }
  thread_ = std::thread([this] { Loop(); });
}

BundleSpoolDrainer::~BundleSpoolDrainer() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void BundleSpoolDrainer::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, period_, [this] { return stop_; });
  while (!stop_) {
    lock.unlock();
    Result<int> n = DrainBundleSpool(data_dir_, *outbox_);
    if (!n.ok()) {
      OUTPOST_LOG(kWarning) << "bundle spool: drain failed" << Field("error", n.status());
    } else if (*n > 0) {
      OUTPOST_LOG(kInfo) << "bundle spool: events appended to the outbox" << Field("count", *n);
    }
    lock.lock();
    cv_.wait_for(lock, period_, [this] { return stop_; });
  }
}

}  // namespace outpost::apps
