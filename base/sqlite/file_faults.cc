#include "base/sqlite/file_faults.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "base/file.h"

namespace outpost::sqlite {
namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

void FileFaults::Inject(const Rule& rule) {
  std::lock_guard<std::mutex> l(mu_);
  rule_ = rule;
  armed_ = true;
  matched_ = 0;
  fired_ = false;
}

void FileFaults::Clear() {
  std::lock_guard<std::mutex> l(mu_);
  armed_ = false;
  frozen_ = false;
  capacity_ = 0;
  files_.clear();
}

bool FileFaults::fired() const {
  std::lock_guard<std::mutex> l(mu_);
  return fired_;
}

int64_t FileFaults::calls(Op op) const {
  std::lock_guard<std::mutex> l(mu_);
  return calls_[static_cast<int>(op)];
}

void FileFaults::SetDiskCapacity(uint64_t bytes) {
  std::lock_guard<std::mutex> l(mu_);
  capacity_ = bytes;
}

void FileFaults::SetTrackUnsynced(bool on) {
  std::lock_guard<std::mutex> l(mu_);
  tracking_ = on;
}

void FileFaults::SetSyncIsNoop(bool on) {
  std::lock_guard<std::mutex> l(mu_);
  sync_noop_ = on;
}

bool FileFaults::tracking() const {
  std::lock_guard<std::mutex> l(mu_);
  return tracking_;
}

bool FileFaults::sync_is_noop() const {
  std::lock_guard<std::mutex> l(mu_);
  return sync_noop_;
}

int FileFaults::Decide(Op op, const std::string& path) {
  ++calls_[static_cast<int>(op)];
  if (frozen_ && op != Op::kRead) return EIO;
  if (!armed_ || rule_.op != op) return 0;
  if (!rule_.path_suffix.empty() && !EndsWith(path, rule_.path_suffix)) return 0;
  int64_t n = matched_++;
  if (n < rule_.skip) return 0;
  if (n > rule_.skip && !rule_.sticky) return 0;
  fired_ = true;
  return rule_.error;
}

int FileFaults::BeforeRead(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  return Decide(Op::kRead, path);
}

int FileFaults::BeforeWrite(const std::string& path, uint64_t offset, uint64_t amount) {
  std::lock_guard<std::mutex> l(mu_);
  if (int e = Decide(Op::kWrite, path)) return e;
  if (capacity_ > 0) {
    uint64_t total = 0;
    for (const auto& [name, f] : files_) total += f.size;
    uint64_t old_size = files_[path].size;
    uint64_t end = offset + amount;
    if (end > old_size && total + (end - old_size) > capacity_) return ENOSPC;
  }
  return 0;
}

int FileFaults::BeforeTruncate(const std::string& path, uint64_t) {
  std::lock_guard<std::mutex> l(mu_);
  return Decide(Op::kTruncate, path);
}

int FileFaults::BeforeSync(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  return Decide(Op::kSync, path);
}

int FileFaults::BeforeDelete(const std::string&) {
  std::lock_guard<std::mutex> l(mu_);
  return frozen_ ? EIO : 0;
}

void FileFaults::Opened(const std::string& path, uint64_t size) {
  std::lock_guard<std::mutex> l(mu_);
  FileState& f = files_[path];
  f.size = size;
}

void FileFaults::Wrote(const std::string& path, uint64_t offset, uint64_t amount,
                       std::string old_bytes, uint64_t old_size) {
  std::lock_guard<std::mutex> l(mu_);
  FileState& f = files_[path];
  if (offset + amount > f.size) f.size = offset + amount;
  if (tracking_) f.undo.push_back(Undo{offset, std::move(old_bytes), old_size});
}

void FileFaults::Truncated(const std::string& path, uint64_t size, std::string cut_bytes,
                           uint64_t old_size) {
  std::lock_guard<std::mutex> l(mu_);
  FileState& f = files_[path];
  f.size = size;
  if (tracking_ && old_size > size) f.undo.push_back(Undo{size, std::move(cut_bytes), old_size});
}

void FileFaults::Synced(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  files_[path].undo.clear();
}

void FileFaults::Deleted(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  files_.erase(path);
}

Status FileFaults::PowerLoss() {
  std::lock_guard<std::mutex> l(mu_);
  frozen_ = true;
  for (auto& [path, f] : files_) {
    if (f.undo.empty()) continue;
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return ErrnoToStatus(errno, "power-loss simulation cannot open", path);
    // Newest first, so each file ends as it was at its last sync.
    for (auto it = f.undo.rbegin(); it != f.undo.rend(); ++it) {
      if (::ftruncate(fd, static_cast<off_t>(it->old_size)) != 0 ||
          (!it->old_bytes.empty() && ::pwrite(fd, it->old_bytes.data(), it->old_bytes.size(),
                                              static_cast<off_t>(it->offset)) !=
                                         static_cast<ssize_t>(it->old_bytes.size()))) {
        int err = errno;
        ::close(fd);
        return ErrnoToStatus(err, "power-loss simulation cannot restore", path);
      }
    }
    ::fsync(fd);
    ::close(fd);
    f.undo.clear();
  }
  return Status::Ok();
}

}  // namespace outpost::sqlite
