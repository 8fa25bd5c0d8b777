// FileFaults: the injectable file layer under a SQLite database (the outbox's, in its tests).
//
// When DbOptions::faults (OutboxOptions::faults for the outbox) points at a FileFaults, the
// database is opened through a wrapping SQLite VFS (base/sqlite/sqlite.cc) that asks this
// object before every read, write, truncate and sync of the database and its WAL. It can
//   - fail a chosen call, or every call after it, with an errno (EIO, ENOSPC, ...), the way
//     SQLite's own I/O-error tests do;
//   - play a small disk: writes that would grow the files beyond a capacity get ENOSPC;
//   - simulate a power cut: it keeps an undo log of everything written since each file's
//     last successful sync, and PowerLoss() puts the files back to what a disk would hold
//     after the cut (a kill -9 cannot show this: the page cache survives it);
//   - play a disk that lies about sync (SetSyncIsNoop), the negative control that shows the
//     power-cut test can fail.
//
// The production path never creates one. Thread-safe: the VFS calls it from the database
// user's threads while a test thread arms rules.
#ifndef OUTPOST_BASE_SQLITE_FILE_FAULTS_H_
#define OUTPOST_BASE_SQLITE_FILE_FAULTS_H_

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace outpost::sqlite {

class FileFaults {
 public:
  enum class Op { kRead = 0, kWrite = 1, kSync = 2, kTruncate = 3 };

  struct Rule {
    Op op = Op::kSync;
    // This many matching calls succeed before the first failure.
    int64_t skip = 0;
    // The errno the failing calls report: EIO, ENOSPC, EDQUOT, ...
    int error = 5;  // EIO
    // Keep failing every later matching call (a dead disk) instead of failing once.
    bool sticky = true;
    // Only files whose name ends with this ("-wal"); empty matches the database and its WAL.
    std::string path_suffix;
  };

  FileFaults() = default;
  FileFaults(const FileFaults&) = delete;
  FileFaults& operator=(const FileFaults&) = delete;

  // Arms `rule`, replacing any earlier one. Call counts for the rule start at zero.
  void Inject(const Rule& rule);
  // Disarms the rule, lifts a PowerLoss() freeze and the capacity; keeps call counters.
  void Clear();
  // True once the armed rule has failed a call.
  bool fired() const;
  // Calls of `op` seen since this object was made (failed ones included).
  int64_t calls(Op op) const;

  // A disk of `bytes` bytes shared by the files opened through this layer; 0 = unlimited.
  void SetDiskCapacity(uint64_t bytes);

  // Keep an undo log of unsynced writes so that PowerLoss() can revert them. Costs a read
  // before every write; for tests of power loss only.
  void SetTrackUnsynced(bool on);
  // A disk whose sync reports success without doing anything (negative control).
  void SetSyncIsNoop(bool on);
  // Reverts every tracked file to its contents at its last real sync, then freezes the
  // layer: every later write, truncate, sync and delete through it fails with EIO, as a
  // dead machine would, until Clear(). The caller then drops the store and reopens it
  // (without faults) as the machine would after the power comes back.
  Status PowerLoss();

  // --- Called by the VFS adapter (base/sqlite/sqlite.cc), one call per file operation. ---
  // Each returns 0 to let the operation proceed, or the errno it must fail with.
  int BeforeRead(const std::string& path);
  int BeforeWrite(const std::string& path, uint64_t offset, uint64_t amount);
  int BeforeTruncate(const std::string& path, uint64_t size);
  int BeforeSync(const std::string& path);
  int BeforeDelete(const std::string& path);
  // Reports facts the layer needs: the size of a file when opened, writes that happened
  // (with the bytes they replaced, for the undo log), a truncate, a completed sync.
  void Opened(const std::string& path, uint64_t size);
  void Wrote(const std::string& path, uint64_t offset, uint64_t amount, std::string old_bytes,
             uint64_t old_size);
  void Truncated(const std::string& path, uint64_t size, std::string cut_bytes, uint64_t old_size);
  void Synced(const std::string& path);
  void Deleted(const std::string& path);
  bool tracking() const;
  bool sync_is_noop() const;

 private:
  struct Undo {
    uint64_t offset;
    std::string old_bytes;  // what was there before, clipped to the old size
    uint64_t old_size;      // file size before the operation
  };
  struct FileState {
    uint64_t size = 0;
    std::vector<Undo> undo;  // oldest first, since the last sync
  };
  // Counts the call and decides whether the armed rule fails it. Requires mu_ held.
  int Decide(Op op, const std::string& path);

  mutable std::mutex mu_;  // guards every field below
  bool armed_ = false;
  Rule rule_;
  int64_t matched_ = 0;
  bool fired_ = false;
  bool frozen_ = false;
  bool tracking_ = false;
  bool sync_noop_ = false;
  uint64_t capacity_ = 0;
  int64_t calls_[4] = {0, 0, 0, 0};
  std::map<std::string, FileState> files_;
};

}  // namespace outpost::sqlite

#endif  // OUTPOST_BASE_SQLITE_FILE_FAULTS_H_
