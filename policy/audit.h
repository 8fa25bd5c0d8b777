// The policy audit log (policy/FORMAT.md section 2): an append-only, hash-chained file with
// one entry per policy decision, which travels to the hub so that the hub can verify that no
// entry was cut, edited or reordered.
#ifndef OUTPOST_POLICY_AUDIT_H_
#define OUTPOST_POLICY_AUDIT_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/status.h"
#include "policy/evaluate.h"
#include "policy/policy.h"

namespace outpost::policy {

inline constexpr size_t kMaxAuditLineBytes = 4096;

// One decision to record.
struct AuditEntry {
  int64_t time_ms = 0;
  Outcome decision = Outcome::kRejected;
  std::string reason;
  std::string kind;
  std::string site;
  std::string node;
  std::string stream;
  uint64_t rseq = 0;
  // The policy's digest ("sha256:...").
  std::string policy_digest;
};

// The entry recording `decision` on `record` under `policy`, made at `time_ms` (the caller's
// clock: Unix milliseconds).
AuditEntry MakeAuditEntry(const Policy& policy, const RecordView& record,
                          const Decision& decision, int64_t time_ms);

// The last entry of a chain: its seq and the SHA-256 (hex) of its line. The genesis head is
// {0, 64 zeros}.
struct ChainHead {
  uint64_t seq = 0;
  std::string hash = std::string(64, '0');

  friend bool operator==(const ChainHead&, const ChainHead&) = default;
};

// The line (without '\n') for entry number `seq` after the entry whose line hashes to `prev`.
std::string FormatAuditLine(uint64_t seq, const AuditEntry& entry, std::string_view prev);

// Verifies the lines of `text` (each ending in '\n') as the continuation of `anchor`, and
// returns the head after the last line. When `known_head` is given (a head the verifier
// received before), the chain must reach it: a shorter chain is a cut, the same seq with
// another hash an edit. Errors are DataLoss whose message begins with the reason code:
// "audit_malformed", "audit_cut", "audit_reorder" or "audit_edited".
Result<ChainHead> VerifyAuditChain(std::string_view text, const ChainHead& anchor = {},
                                   const std::optional<ChainHead>& known_head = std::nullopt);

// An audit log file that this process appends to. Thread-safe.
class AuditLog {
 public:
  // Opens (creating if absent) the log at `path`. A last line without '\n' (an append that
  // never returned) is cut off; any other damage is DataLoss (the chain is verified from
  // genesis). Errors from the file system as ErrnoToStatus gives them.
  static Result<std::unique_ptr<AuditLog>> Open(const std::string& path);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Appends the entries in order and makes them durable (one fdatasync) before returning.
  // On a write or sync error nothing more can be appended (FailedPrecondition after that);
  // reopening recovers. InvalidArgument for an entry whose line exceeds kMaxAuditLineBytes
  // (nothing of the batch is written then).
  Status Append(std::span<const AuditEntry> entries);

  ChainHead head() const;

 private:
  AuditLog(std::string path, int fd, ChainHead head)
      : path_(std::move(path)), fd_(fd), head_(std::move(head)) {}

  const std::string path_;
  // Guards fd_ writes, head_ and failed_.
  mutable std::mutex mu_;
  int fd_;
  ChainHead head_;
  Status failed_;
};

}  // namespace outpost::policy

#endif  // OUTPOST_POLICY_AUDIT_H_
