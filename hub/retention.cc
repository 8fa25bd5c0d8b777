#include "hub/retention.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <set>

#include "base/clock.h"
#include "base/coding.h"
#include "base/fd_write.h"
#include "base/file.h"
#include "base/json_writer.h"
#include "base/logging.h"
#include "sync/compress.h"

namespace outpost::hub {
namespace {

constexpr int64_t kHourMs = 3'600'000;
constexpr int64_t kMaxDays = 36'500;
// Lines buffered before they become one zstd frame (hub/FORMAT.md section 9).
constexpr size_t kFrameBytes = size_t{1} << 20;
constexpr int kZstdLevel = 3;
constexpr std::string_view kTmpSuffix = ".tmp";
// How often the runner looks whether this hub holds the lease.
constexpr std::chrono::milliseconds kLeaseCheck{5'000};

Status BadRetention(const std::string& what) {
  return ErrorWithReason(StatusCode::kInvalidArgument, "bad_retention", what);
}

// The id of "records-<id>.jsonl.zst.tmp"; 0 for another name.
int64_t PendingId(std::string_view name) {
  constexpr std::string_view kPrefix = "records-";
  constexpr std::string_view kSuffix = ".jsonl.zst.tmp";
  if (!name.starts_with(kPrefix) || !name.ends_with(kSuffix)) return 0;
  std::string_view digits =
      name.substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size());
  int64_t id = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
  if (ec != std::errc() || end != digits.data() + digits.size() || id <= 0) return 0;
  return id;
}

}  // namespace

Result<int64_t> ParseRetentionDuration(std::string_view text) {
  if (text == "forever") return INT64_MAX;
  if (text.size() < 2 || (text.back() != 'd' && text.back() != 'h')) {
    return BadRetention("\"" + std::string(text) + "\" is not <n>d, <n>h or forever");
  }
  std::string_view digits = text.substr(0, text.size() - 1);
  int64_t n = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  bool days = text.back() == 'd';
  int64_t max = days ? kMaxDays : kMaxDays * 24;
  if (ec != std::errc() || end != digits.data() + digits.size() || n < 1 || n > max) {
    return BadRetention("\"" + std::string(text) + "\" is not a whole number of " +
                        (days ? "days from 1 to 36500" : "hours from 1 to 876000"));
  }
  return n * (days ? 24 : 1) * kHourMs;
}

Result<RetentionPolicy> ParseRetentionPolicy(
    const std::vector<std::pair<std::string, std::string>>& entries) {
  if (entries.empty())
    return BadRetention("retention: names no kind (leave it out to keep every record)");
  RetentionPolicy policy;
  std::set<std::string> seen;
  for (const auto& [key, value] : entries) {
    if (key.empty() || key.size() > 256 || key.find('\0') != std::string::npos) {
      return BadRetention("retention: a kind must be 1 to 256 bytes without NUL");
    }
    if (!seen.insert(key).second) return BadRetention("retention." + key + " is given twice");
    Result<int64_t> ms = ParseRetentionDuration(value);
    if (!ms.ok()) return ms.status().WithContext("retention." + key);
    if (key == "default") {
      policy.default_ms = *ms;
    } else if (key == "keys_after_expiry") {
      policy.keys_after_expiry_ms = *ms;
    } else {
      policy.kinds.emplace(key, *ms);
    }
  }
  return policy;
}

// --- FileExporter ---------------------------------------------------------------------

Result<std::unique_ptr<FileExporter>> FileExporter::Open(const std::string& dir) {
  OUTPOST_RETURN_IF_ERROR(MakeDirectories(dir, 0700).WithContext("the retention folder"));
  if (::chmod(dir.c_str(), 0700) != 0) return ErrnoToStatus(errno, "chmod", dir);
  return std::unique_ptr<FileExporter>(new FileExporter(dir));
}

FileExporter::~FileExporter() { CloseFile(); }

std::string FileExporter::FileName(int64_t unit_id) {
  return "records-" + std::to_string(unit_id) + ".jsonl.zst";
}

void FileExporter::CloseFile() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Result<std::vector<int64_t>> FileExporter::Pending() {
  OUTPOST_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirectory(dir_));
  std::vector<int64_t> out;
  for (const std::string& name : names) {
    int64_t id = PendingId(name);
    if (id != 0 && id != (fd_ >= 0 ? unit_ : 0)) out.push_back(id);
  }
  return out;
}

Status FileExporter::Begin(int64_t unit_id) {
  CloseFile();
  std::string path = JoinPath(dir_, FileName(unit_id) + std::string(kTmpSuffix));
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd_ < 0) return ErrnoToStatus(errno, "creating", path);
  unit_ = unit_id;
  lines_.clear();
  hasher_ = std::make_unique<crypto::Sha256Hasher>();
  return Status::Ok();
}

Status FileExporter::Add(const HubRecord& r, std::string_view content_hash_hex) {
  if (fd_ < 0) return FailedPreconditionError("no export unit begun");
  JsonWriter w(lines_);
  w.BeginObject();
  w.Key("id");
  w.Int(r.id);
  w.Key("tenant");
  w.String(r.tenant);
  w.Key("site_id");
  w.String(r.site_id);
  w.Key("node_id");
  w.String(r.node_id);
  w.Key("stream");
  w.String(r.stream);
  w.Key("seq");
  w.Uint(r.seq);
  w.Key("kind");
  w.String(r.kind);
  w.Key("created_ms");
  w.Int(r.created_ms);
  w.Key("received_ms");
  w.Int(r.received_ms);
  w.Key("payload");
  w.String(r.payload);
  w.Key("content_hash");
  w.String(content_hash_hex);
  w.EndObject();
  lines_.push_back('\n');
  if (lines_.size() >= kFrameBytes) return Flush();
  return Status::Ok();
}

Status FileExporter::Flush() {
  if (lines_.empty()) return Status::Ok();
  OUTPOST_ASSIGN_OR_RETURN(std::string frame, sync::ZstdCompress(lines_, kZstdLevel));
  lines_.clear();
  hasher_->Update(frame);
  return WriteAllToFd(fd_, frame, JoinPath(dir_, FileName(unit_)));
}

Result<std::pair<std::string, std::string>> FileExporter::Seal() {
  if (fd_ < 0) return FailedPreconditionError("no export unit begun");
  OUTPOST_RETURN_IF_ERROR(Flush());
  std::string name = FileName(unit_);
  if (::fsync(fd_) != 0) return ErrnoToStatus(errno, "fsync", JoinPath(dir_, name));
  CloseFile();
  OUTPOST_RETURN_IF_ERROR(SyncDirectory(dir_));
  return std::make_pair(name, HexEncode(hasher_->Finish()));
}

Status FileExporter::Publish(int64_t unit_id, std::string_view sha256) {
  std::string name = FileName(unit_id);
  std::string path = JoinPath(dir_, name);
  std::string tmp = path + std::string(kTmpSuffix);
  if (PathExists(tmp)) {
    if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoToStatus(errno, "rename", tmp);
  } else if (!PathExists(path)) {
    return DataLossError("the export file " + path + " is missing");
  }
  OUTPOST_RETURN_IF_ERROR(
      WriteFileAtomically(path + ".sha256", std::string(sha256) + "  " + name + "\n", 0600));
  return SyncDirectory(dir_);
}

Status FileExporter::Discard(int64_t unit_id) {
  if (fd_ >= 0 && unit_ == unit_id) CloseFile();
  std::string tmp = JoinPath(dir_, FileName(unit_id) + std::string(kTmpSuffix));
  if (::unlink(tmp.c_str()) != 0 && errno != ENOENT) return ErrnoToStatus(errno, "unlink", tmp);
  return SyncDirectory(dir_);
}

// --- RetentionRunner -------------------------------------------------------------------

Result<std::unique_ptr<RetentionRunner>> RetentionRunner::Start(Store& store,
                                                                const SchedulerLease& lease,
                                                                Options options) {
  if (store.engine() != "postgresql") {
    return ErrorWithReason(StatusCode::kFailedPrecondition, "retention_unsupported",
                           "retention: is set but the " + std::string(store.engine()) +
                               " store keeps every record; only a PostgreSQL store expires "
                               "records (hub/STORE.md section 8)");
  }
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<FileExporter> exporter,
                           FileExporter::Open(options.export_dir));
  std::unique_ptr<RetentionRunner> runner(
      new RetentionRunner(store, lease, std::move(options), std::move(exporter)));
  RetentionRunner* raw = runner.get();
  raw->thread_ = std::thread([raw] { raw->Loop(); });
  return runner;
}

RetentionRunner::RetentionRunner(Store& store, const SchedulerLease& lease, Options options,
                                 std::unique_ptr<FileExporter> exporter)
    : store_(store), lease_(lease), options_(std::move(options)), exporter_(std::move(exporter)) {}

RetentionRunner::~RetentionRunner() { Stop(); }

void RetentionRunner::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int64_t RetentionRunner::passes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return passes_;
}

void RetentionRunner::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  std::chrono::steady_clock::time_point last{};  // epoch: no pass while held yet
  bool was_held = false;
  while (!stopping_) {
    const bool held = lease_.Held();
    const auto now = std::chrono::steady_clock::now();
    if (held && (!was_held || now - last >= options_.every)) {
      lock.unlock();
      Result<RetentionResult> r =
          store_.ApplyRetention(options_.policy, UnixMillis(SystemClock().Now()), *exporter_);
      if (!r.ok()) {
        OUTPOST_LOG(kWarning) << "retention pass failed: " << r.status().ToString();
      } else if (r->units > 0 || r->units_recovered > 0 || r->keys_removed > 0) {
        OUTPOST_LOG(kInfo) << "retention pass" << Field("records_removed", r->records_removed)
                           << Field("partitions_dropped", r->partitions_dropped)
                           << Field("exports", r->units)
                           << Field("exports_recovered", r->units_recovered)
                           << Field("keys_removed", r->keys_removed);
      }
      lock.lock();
      ++passes_;
      last = now;
    }
    was_held = held;
    wake_.wait_for(lock, std::min(kLeaseCheck, options_.every), [&] { return stopping_; });
  }
}

}  // namespace outpost::hub
