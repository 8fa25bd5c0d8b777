// Salvage: rebuilds an outbox whose file has page-level damage, keeping every record that
// can still be read and checked, and the damaged file beside it (FORMAT.md section 8).
#ifndef OUTPOST_OUTBOX_SALVAGE_H_
#define OUTPOST_OUTBOX_SALVAGE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "base/status.h"

namespace outpost::sqlite {
class FileFaults;
}  // namespace outpost::sqlite

namespace outpost::outbox {

struct SalvageContext {
  std::string path{};  // the outbox database
  std::string site_id{};
  std::string node_id{};
  std::optional<std::string> key{};  // the file key when the store is encrypted
  int64_t now_ms = 0;                // wall time, for names and the event record
  // The file layer under SQLite (base/sqlite/file_faults.h); not owned.
  sqlite::FileFaults* faults = nullptr;
};

// True when a salvage of `path` was started and has not finished (its marker exists).
bool SalvagePending(const std::string& path);

// Writes the salvage marker so that the next open salvages `path` (used when damage is found
// while the store runs). The file itself is left alone until then.
Status MarkForSalvage(const std::string& path, int64_t now_ms);

// Runs (or resumes) a salvage of ctx.path. On success a healthy outbox file is at ctx.path
// holding the surviving records, an `event` record that counts what was salvaged,
// quarantined and unreadable, and the damaged file is at "<path>.damaged-<ms>". Each step
// is idempotent, so a crash during the salvage is finished by the next open.
Status Salvage(const SalvageContext& ctx);

}  // namespace outpost::outbox

#endif  // OUTPOST_OUTBOX_SALVAGE_H_
