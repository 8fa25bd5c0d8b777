// AuditCursor: where the audit head that the hub acknowledged lies in the node's policy audit
// log (<state_dir>/audit.log), and the lines after it that still have to travel
// (FORMAT.md sections 1 and 3). The head is kept in <state_dir>/sync_state.json, written
// atomically whenever it moves. Used by the forwarder (uploads) and by export/import-receipt
// (files). Thread-compatible.
#ifndef OUTPOST_SYNC_AUDIT_CURSOR_H_
#define OUTPOST_SYNC_AUDIT_CURSOR_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "sync/batch.h"

namespace outpost::sync {

struct AuditHead {
  uint64_t seq = 0;
  std::string hash = std::string(64, '0');
  friend bool operator==(const AuditHead&, const AuditHead&) = default;
};

// The "audit_head" member of a hub answer (FORMAT.md section 2), if present and well formed.
std::optional<AuditHead> ParseAuditHead(std::string_view json);

class AuditCursor {
 public:
  AuditCursor(std::string log_path, std::string state_path)
      : log_path_(std::move(log_path)), state_path_(std::move(state_path)) {}

  // Positions at the head recorded in the state file (genesis when it is absent or names a
  // head the log does not hold; the hub then answers audit_gap with its own head).
  void Init();
  const AuditHead& acked() const { return acked_; }
  // The lines after the acked head, at most `max_bytes` (whole lines).
  Result<BatchAudit> Segment(size_t max_bytes);
  // The hub acknowledged `head`; `sent` is the segment that went with the batch.
  void Acknowledge(const AuditHead& head, const BatchAudit& sent);
  // Moves to `head` when the log holds it (its line `seq` hashes to `hash`); false otherwise.
  bool Seek(const AuditHead& head);

 private:
  void Persist();

  std::string log_path_;
  std::string state_path_;
  AuditHead acked_;
  uint64_t offset_ = 0;  // the byte after the acked head's line
};

}  // namespace outpost::sync

#endif  // OUTPOST_SYNC_AUDIT_CURSOR_H_
