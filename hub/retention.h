// Retention of the hub's records (hub/STORE.md section 8): the `retention:` map of the hub
// config, the files expired records are exported to before the store removes them
// (hub/FORMAT.md section 9), and the thread that runs a pass while this hub holds the
// scheduler lease.
//
//   OUTPOST_ASSIGN_OR_RETURN(hub::RetentionPolicy policy, hub::ParseRetentionPolicy(entries));
//   OUTPOST_ASSIGN_OR_RETURN(auto runner, hub::RetentionRunner::Start(
//       store, *lease, {.policy = policy, .export_dir = data_dir + "/retention"}));
//
// Only the PostgreSQL store expires records; RetentionRunner::Start refuses the SQLite
// store (FailedPrecondition reason "retention_unsupported").
#ifndef OUTPOST_HUB_RETENTION_H_
#define OUTPOST_HUB_RETENTION_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "base/crypto/crypto.h"
#include "base/status.h"
#include "hub/lease.h"
#include "hub/store.h"

namespace outpost::hub {

// A duration of the `retention:` map: "<n>d" (1 .. 36500 days), "<n>h" (1 .. 876000 hours)
// or "forever" (INT64_MAX), as milliseconds. InvalidArgument reason "bad_retention".
Result<int64_t> ParseRetentionDuration(std::string_view text);

// The `retention:` map as (key, value) pairs in the config's order: a kind or "default",
// each once, and a duration. InvalidArgument reason "bad_retention" (naming the key) for a
// bad kind, a kind twice, a bad duration or no entry at all.
Result<RetentionPolicy> ParseRetentionPolicy(
    const std::vector<std::pair<std::string, std::string>>& entries);

// Writes export units into a folder (hub/FORMAT.md section 9). Thread-compatible: one pass
// at a time uses it.
class FileExporter final : public RecordExporter {
 public:
  // Makes `dir` (0700) when absent.
  static Result<std::unique_ptr<FileExporter>> Open(const std::string& dir);
  ~FileExporter() override;

  Result<std::vector<int64_t>> Pending() override;
  Status Begin(int64_t unit_id) override;
  Status Add(const HubRecord& record, std::string_view content_hash_hex) override;
  Result<std::pair<std::string, std::string>> Seal() override;
  Status Publish(int64_t unit_id, std::string_view sha256) override;
  Status Discard(int64_t unit_id) override;

  // "records-<id>.jsonl.zst", the final name of a unit's file.
  static std::string FileName(int64_t unit_id);
  const std::string& dir() const { return dir_; }

 private:
  explicit FileExporter(std::string dir) : dir_(std::move(dir)) {}
  // Compresses the buffered lines into one zstd frame and appends it to the file.
  Status Flush();
  void CloseFile();

  std::string dir_;
  int fd_ = -1;
  int64_t unit_ = 0;
  std::string lines_;
  std::unique_ptr<crypto::Sha256Hasher> hasher_;
};

// Runs a retention pass (Store::ApplyRetention into a FileExporter) every `every` while this
// process holds the scheduler lease, and at once when it takes it. Thread-safe.
class RetentionRunner {
 public:
  struct Options {
    RetentionPolicy policy{};
    std::string export_dir{};                  // <data_dir>/retention
    std::chrono::milliseconds every{600'000};  // hub/STORE.md section 8
  };
  // FailedPrecondition reason "retention_unsupported" for a store that is not PostgreSQL;
  // errors of the export folder. `store` and `lease` must outlive the runner.
  static Result<std::unique_ptr<RetentionRunner>> Start(Store& store, const SchedulerLease& lease,
                                                        Options options);
  // Stop().
  ~RetentionRunner();
  RetentionRunner(const RetentionRunner&) = delete;
  RetentionRunner& operator=(const RetentionRunner&) = delete;

  // Waits for a pass in progress to end and stops the thread. Idempotent.
  void Stop();
  // Passes finished so far (tests wait on it).
  int64_t passes() const;

 private:
  RetentionRunner(Store& store, const SchedulerLease& lease, Options options,
                  std::unique_ptr<FileExporter> exporter);
  void Loop();

  Store& store_;
  const SchedulerLease& lease_;
  Options options_;
  std::unique_ptr<FileExporter> exporter_;
  mutable std::mutex mu_;  // guards the fields below
  std::condition_variable wake_;
  bool stopping_ = false;
  int64_t passes_ = 0;
  std::thread thread_;
};

}  // namespace outpost::hub

#endif  // OUTPOST_HUB_RETENTION_H_
