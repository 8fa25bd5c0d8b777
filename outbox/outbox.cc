#include "outbox/outbox.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <optional>

#include "base/file.h"
#include "base/logging.h"
#include "base/names.h"
#include "base/sqlite/file_faults.h"
#include "base/sqlite/sqlite.h"
#include "outbox/crypto.h"
#include "outbox/salvage.h"
#include "outbox/schema.h"

namespace outpost::outbox {

// ---------------------------------------------------------------------------------------
// Kinds and defaults

std::string_view KindName(Kind kind) {
  switch (kind) {
    case Kind::kAnomaly:
      return "anomaly";
    case Kind::kDrift:
      return "drift";
    case Kind::kFeedback:
      return "feedback";
    case Kind::kHardExample:
      return "hard_example";
    case Kind::kAggregate:
      return "aggregate";
    case Kind::kSample:
      return "sample";
    case Kind::kEvent:
      return "event";
  }
  return "unknown";
}

Result<Kind> ParseKind(std::string_view name) {
  for (Kind k : kAllKinds) {
    if (KindName(k) == name) return k;
  }
  return InvalidArgumentError("unknown record kind \"" + std::string(name.substr(0, 64)) +
                              "\"; expected anomaly, drift, feedback, hard_example, "
                              "aggregate, sample or event");
}

std::vector<Kind> DefaultPriority() {
  return {Kind::kEvent,       Kind::kAnomaly,   Kind::kDrift, Kind::kFeedback,
          Kind::kHardExample, Kind::kAggregate, Kind::kSample};
}

std::array<ClassPolicy, kNumKinds> DefaultClassPolicies() {
  std::array<ClassPolicy, kNumKinds> p{};
  p[static_cast<int>(Kind::kHardExample) - 1].evictable = true;
  p[static_cast<int>(Kind::kAggregate) - 1].evictable = true;
  p[static_cast<int>(Kind::kSample) - 1].evictable = true;
  p[static_cast<int>(Kind::kFeedback) - 1] = {
      .max_percent = 10, .evictable = true, .evicted_by_own_kind_only = true};
  // Reserved shares and storm sampling (FORMAT.md sections 3 and 12).
  p[static_cast<int>(Kind::kAggregate) - 1].reserved_percent = 10;
  p[static_cast<int>(Kind::kDrift) - 1].reserved_percent = 5;
  p[static_cast<int>(Kind::kEvent) - 1].reserved_percent = 2;
  ClassPolicy& anomaly = p[static_cast<int>(Kind::kAnomaly) - 1];
  anomaly.storm_first = 1000;
  anomaly.storm_sample = 100;
  anomaly.storm_percent = 40;
  ClassPolicy& hard = p[static_cast<int>(Kind::kHardExample) - 1];
  hard.storm_first = 100;
  hard.storm_sample = 20;
  hard.storm_percent = 20;
  return p;
}

namespace {

bool KnownKind(int64_t code) { return code >= 1 && code <= kNumKinds; }
int KindIndex(int64_t code) { return KnownKind(code) ? static_cast<int>(code) : 0; }

std::string JsonString(std::string_view s) {
  std::string out = "\"";
  AppendJsonEscaped(out, s);
  out += "\"";
  return out;
}

constexpr std::chrono::seconds kBucket(10);
constexpr int64_t kHourMs = 3600 * 1000;
// Rule names are counted by their first 128 bytes (FORMAT.md section 9).
constexpr size_t kMaxCountedRuleName = 128;

// share% of `total`, without overflow.
uint64_t Share(uint64_t total, uint32_t percent) {
  return total / 100 * percent + total % 100 * percent / 100;
}

// splitmix64: the storm sampling generator.
uint64_t NextRandom(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

int64_t CounterValue(const std::map<std::string, int64_t>& counters, const std::string& name) {
  auto it = counters.find(name);
  return it == counters.end() ? 0 : it->second;
}

// SQL used by the store, prepared once.
constexpr std::string_view kInsertRecord =
    "INSERT INTO records(stream, seq, kind, created_ms, payload, checksum, rule) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)";
constexpr std::string_view kSelectStream =
    "SELECT next_seq, checksum FROM streams WHERE stream = ?1";
constexpr std::string_view kBumpCounter =
    "INSERT INTO counters(name, value) VALUES(?1, ?2) "
    "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value";
constexpr std::string_view kLowerCounter =
    "INSERT INTO counters(name, value) VALUES(?1, ?2) "
    "ON CONFLICT(name) DO UPDATE SET value = min(value, excluded.value)";
constexpr std::string_view kRaiseCounter =
    "INSERT INTO counters(name, value) VALUES(?1, ?2) "
    "ON CONFLICT(name) DO UPDATE SET value = max(value, excluded.value)";
constexpr std::string_view kClearWindow = "DELETE FROM counters WHERE substr(name, 1, 7) = 'window.'";
constexpr std::string_view kAllCounters = "SELECT name, value FROM counters";
// The last summary's window (prev.*, FORMAT.md section 9).
constexpr std::string_view kClearPrevious =
    "DELETE FROM counters WHERE substr(name, 1, 5) = 'prev.'";
constexpr std::string_view kWindowToPrevious =
    "UPDATE counters SET name = 'prev.' || substr(name, 8) WHERE substr(name, 1, 7) = 'window.'";
constexpr std::string_view kPreviousFrom =
    "SELECT value FROM counters WHERE name = 'prev.from_ms'";
// Adds the last summary's window into the current one: spans by min and max, counts summed.
constexpr std::string_view kMergePrevious =
    "INSERT INTO counters(name, value) SELECT 'window.' || substr(name, 6), value FROM counters "
    "WHERE substr(name, 1, 5) = 'prev.' AND name <> 'prev.seq' "
    "ON CONFLICT(name) DO UPDATE SET value = CASE "
    "WHEN name = 'window.from_ms' OR substr(name, 1, 21) = 'window.rule.first_ms.' "
    "THEN min(value, excluded.value) "
    "WHEN substr(name, 1, 20) = 'window.rule.last_ms.' THEN max(value, excluded.value) "
    "ELSE value + excluded.value END";
constexpr std::string_view kSampleMember =
    "SELECT id, length(stream) + length(payload) FROM records WHERE stream = ?1 AND seq = ?2";
constexpr std::string_view kOldestOfKind =
    "SELECT id, length(stream) + length(payload), rule FROM records WHERE kind = ?1 "
    "ORDER BY created_ms, id";
constexpr std::string_view kDeleteById = "DELETE FROM records WHERE id = ?1";
constexpr std::string_view kRowsOfKind =
    "SELECT id, stream, seq, kind, created_ms, payload, checksum FROM records "
    "WHERE kind = ?1 AND created_ms >= ?2 ORDER BY created_ms, id";
constexpr std::string_view kRowsAfterId =
    "SELECT id, stream, seq, kind, created_ms, payload, checksum FROM records "
    "WHERE id > ?1 ORDER BY id LIMIT 512";
constexpr std::string_view kDeleteLeased =
    "DELETE FROM records WHERE id = ?1 AND stream = ?2 AND seq = ?3";
constexpr std::string_view kDeleteByKey =
    "DELETE FROM records WHERE stream = ?1 AND seq = ?2 "
    "RETURNING id, kind, length(stream) + length(payload)";
constexpr std::string_view kInsertQuarantine =
    "INSERT INTO quarantine(stream, seq, kind, created_ms, payload_bytes, reason, "
    "quarantined_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)";
constexpr std::string_view kOldestCreated = "SELECT min(created_ms) FROM records WHERE kind = ?1";

}  // namespace

// ---------------------------------------------------------------------------------------
// Internal types

struct Outbox::Pending {
  // What an Append waits for: kDone (result is set) or kLead (it leads the next commit).
  // Stored with release and waited on with acquire (std::atomic::wait), so that a producer
  // wakes once, without taking queue_mu_, when its commit is done.
  enum State : int { kWaiting = 0, kLead = 1, kDone = 2 };
  NewRecord record;
  Result<RecordKey> result = InternalError("the record was not committed");
  std::atomic<int> state{kWaiting};
  // AppendAsync's completion; set for an asynchronous append.
  std::function<void(Result<RecordKey>)> on_done{};
};

namespace {

// True on a thread while it runs AppendAsync completions: Append and AppendAsync refuse to
// run there (a completion that waited for a commit could wait for itself).
thread_local bool in_completion = false;

Status AppendInCompletion() {
  return FailedPreconditionError(
             "Append and AppendAsync may not be called from an AppendAsync completion")
      .WithReason("append_in_completion");
}

}  // namespace

struct Outbox::RowView {
  int64_t id = 0;
  std::string stream;
  uint64_t seq = 0;
  int64_t kind = 0;
  int64_t created_ms = 0;
  std::string payload;  // stored form
  uint32_t checksum = 0;
};

// ---------------------------------------------------------------------------------------
// Open and close

Outbox::Outbox(OutboxOptions options)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : &SystemClock()) {
  for (size_t r = 0; r < options_.priority.size(); ++r) {
    rank_[static_cast<int>(options_.priority[r])] = static_cast<int>(r);
  }
  opened_at_ = clock_->Monotonic();
  sample_rng_ = options_.sample_seed;
  size_t n = static_cast<size_t>(std::max<int64_t>(
      1, std::chrono::duration_cast<std::chrono::seconds>(options_.rate_window).count() /
             kBucket.count()));
  buckets_.resize(n);
}

namespace {

Status ValidateOptions(const OutboxOptions& o) {
  if (o.path.empty()) return InvalidArgumentError("outbox path is empty");
  OUTPOST_RETURN_IF_ERROR(CheckName(kSiteIdRule, o.site_id).WithContext("outbox site_id"));
  OUTPOST_RETURN_IF_ERROR(CheckName(kNodeIdRule, o.node_id).WithContext("outbox node_id"));
  if (o.max_bytes == 0) return InvalidArgumentError("outbox max_bytes must be > 0");
  if (o.max_payload_bytes == 0 || o.max_payload_bytes > kMaxPayloadLimit) {
    return InvalidArgumentError("outbox max_payload_bytes must be in 1..16 MiB");
  }
  if (o.max_batch_records == 0) return InvalidArgumentError("max_batch_records must be >= 1");
  if (o.max_appends_in_flight == 0) {
    return InvalidArgumentError("max_appends_in_flight must be >= 1");
  }
  if (o.max_streams == 0) return InvalidArgumentError("outbox max_streams must be >= 1");
  if (o.summary_interval.count() <= 0) {
    return InvalidArgumentError("outbox summary_interval must be > 0");
  }
  if (o.max_tracked_rules == 0) return InvalidArgumentError("max_tracked_rules must be >= 1");
  uint32_t reserved = 0;
  for (Kind k : kAllKinds) {
    const ClassPolicy& c = o.classes[static_cast<int>(k) - 1];
    if (c.max_percent > 100 || c.reserved_percent > 100 || c.storm_percent > 100) {
      return InvalidArgumentError("outbox class " + std::string(KindName(k)) +
                                  " max_percent, reserved_percent and storm_percent must be "
                                  "0..100");
    }
    reserved += c.reserved_percent;
  }
  if (reserved > 100) {
    return InvalidArgumentError("outbox reserved shares add up to " + std::to_string(reserved) +
                                "%; at most 100");
  }
  if (o.priority.size() != kNumKinds) {
    return InvalidArgumentError("outbox priority must list each of the 7 kinds once");
  }
  if (o.classes[static_cast<int>(Kind::kEvent) - 1].evictable) {
    return InvalidArgumentError("event records report evictions and are never evicted");
  }
  std::array<bool, kNumKinds + 1> seen{};
  for (Kind k : o.priority) {
    int code = static_cast<int>(k);
    if (!KnownKind(code) || seen[code]) {
      return InvalidArgumentError("outbox priority must list each of the 7 kinds once");
    }
    seen[code] = true;
  }
  return Status::Ok();
}

// The outbox holds what the site scored, so its file, WAL and shared-memory file are the
// owner's alone: created 0600 (SQLite gives the WAL and -shm the database's mode).
constexpr int kFileMode = 0600;

// Clears the group and other bits of an existing outbox file, WAL or shared-memory file (one
// left by an older Outpost, or copied in), warning with its name and the mode it had. A file
// that cannot be changed (another owner's) is warned about and opened as it is.
void TightenFileModes(const std::string& path) {
  for (const std::string& file : {path, path + "-wal", path + "-shm"}) {
    Result<std::optional<int>> had = TightenFileMode(file, kFileMode);
    if (!had.ok()) {
      OUTPOST_LOG(kWarning) << "cannot check or tighten the mode of an outbox file"
                            << Field("path", file) << Field("error", had.status());
    } else if (had->has_value()) {
      char mode[8];
      std::snprintf(mode, sizeof(mode), "%04o", **had);
      OUTPOST_LOG(kWarning) << "outbox file was open to other users; made it the owner's alone"
                            << Field("path", file) << Field("mode_was", std::string(mode));
    }
  }
}

struct Opened {
  std::unique_ptr<sqlite::Db> db;
  std::unique_ptr<const RecordCipher> cipher;
  Meta meta;
};

// Opens the file, creating format 1 when it is new, and checks it (FORMAT.md 6, 7).
// DataLoss means page-level damage: the caller salvages.
Result<Opened> OpenAndCheck(const OutboxOptions& o, const std::optional<std::string>& key,
                            Clock& clock) {
  bool existed = PathExists(o.path);
  Opened out;
  OUTPOST_ASSIGN_OR_RETURN(
      out.db,
      sqlite::Db::Open(
          o.path, sqlite::DbOptions{.create = true, .faults = o.faults, .file_mode = kFileMode}));
  sqlite::Db& db = *out.db;
  OUTPOST_RETURN_IF_ERROR(ConfigureConnection(db, o.max_bytes));
  OUTPOST_ASSIGN_OR_RETURN(int64_t app_id, db.QueryInt("PRAGMA application_id"));
  OUTPOST_ASSIGN_OR_RETURN(int64_t tables, db.QueryInt("SELECT count(*) FROM sqlite_schema"));
  if (tables == 0 && app_id == 0) {
    Meta meta{.site_id = o.site_id, .node_id = o.node_id, .created_ms = UnixMillis(clock.Now())};
    if (key) {
      meta.encryption = "aes-256-gcm";
      OUTPOST_ASSIGN_OR_RETURN(meta.key_salt, RandomBytes(kKeySaltBytes));
      OUTPOST_ASSIGN_OR_RETURN(auto cipher, RecordCipher::Create(*key, meta.key_salt));
      meta.key_check = cipher->key_check();
    }
    OUTPOST_RETURN_IF_ERROR(CreateSchema(db, meta));
    if (!existed) {
      size_t slash = o.path.rfind('/');
      OUTPOST_RETURN_IF_ERROR(
          SyncDirectory(slash == std::string::npos ? "." : o.path.substr(0, slash)));
    }
  } else {
    if (app_id != kApplicationId) {
      return FailedPreconditionError("\"" + o.path + "\" is not an Outpost outbox " +
                                     "(application_id " + std::to_string(app_id) + ")");
    }
    OUTPOST_ASSIGN_OR_RETURN(int64_t version, db.QueryInt("PRAGMA user_version"));
    if (version > kFormatVersion) {
      return FailedPreconditionError(
          "\"" + o.path + "\" was written by a newer Outpost (outbox format " +
          std::to_string(version) + "; this build reads up to " + std::to_string(kFormatVersion) +
          "); refusing to open it so that nothing is lost");
    }
    if (version < 1) {
      return DataLossError("\"" + o.path + "\" has an outbox application_id but format 0");
    }
    if (version == 1) {
      OUTPOST_RETURN_IF_ERROR(QuickCheck(db));
      OUTPOST_RETURN_IF_ERROR(MigrateFromFormat1(db));
    }
  }
  OUTPOST_RETURN_IF_ERROR(db.Exec("PRAGMA journal_mode=WAL"));
  OUTPOST_RETURN_IF_ERROR(QuickCheck(db));
  OUTPOST_RETURN_IF_ERROR(CheckSchema(db));
  OUTPOST_ASSIGN_OR_RETURN(out.meta, ReadMeta(db));
  std::map<std::string, uint64_t> streams;
  OUTPOST_RETURN_IF_ERROR(ReadStreams(db, &streams));
  if (out.meta.site_id != o.site_id || out.meta.node_id != o.node_id) {
    return FailedPreconditionError("\"" + o.path + "\" belongs to site \"" + out.meta.site_id +
                                   "\" node \"" + out.meta.node_id + "\", not site \"" + o.site_id +
                                   "\" node \"" + o.node_id + "\"");
  }
  bool encrypted = out.meta.encryption == "aes-256-gcm";
  if (encrypted && !key) {
    return FailedPreconditionError("\"" + o.path + "\" is encrypted; configure its key file");
  }
  if (!encrypted && key) {
    return FailedPreconditionError("\"" + o.path + "\" is not encrypted, but a key file is " +
                                   "configured; a file is encrypted or clear for its life");
  }
  if (encrypted) {
    OUTPOST_ASSIGN_OR_RETURN(out.cipher, RecordCipher::Create(*key, out.meta.key_salt));
    if (out.cipher->key_check() != out.meta.key_check) {
      return PermissionDeniedError("the key file is not the key \"" + o.path +
                                   "\" was written with");
    }
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<Outbox>> Outbox::Open(OutboxOptions options) {
  OUTPOST_RETURN_IF_ERROR(ValidateOptions(options));
  std::optional<std::string> key;
  if (!options.key_file.empty()) {
    OUTPOST_ASSIGN_OR_RETURN(key, ReadKeyFile(options.key_file));
  }
  Clock* clock = options.clock != nullptr ? options.clock : &SystemClock();
  const std::string path = options.path;
  TightenFileModes(path);
  SalvageContext salvage{.path = path,
                         .site_id = options.site_id,
                         .node_id = options.node_id,
                         .key = key,
                         .now_ms = UnixMillis(clock->Now()),
                         .faults = options.faults};
  if (SalvagePending(path)) {
    OUTPOST_RETURN_IF_ERROR(Salvage(salvage).WithContext("resuming an outbox salvage"));
  }
  // Page-level damage found while opening (DataLoss) is salvaged once, then opened again.
  for (int attempt = 0;; ++attempt) {
    Status status;
    {
      Result<Opened> opened = OpenAndCheck(options, key, *clock);
      if (opened.ok()) {
        std::unique_ptr<Outbox> outbox(new Outbox(options));
        outbox->seq_floor_ = opened->meta.seq_floor;
        outbox->seals_reserved_ = opened->meta.nonce_reserved;
        outbox->next_seal_ = opened->meta.nonce_reserved + 1;
        status = outbox->Init(std::move(opened->db), std::move(opened->cipher));
        if (status.ok()) return outbox;
        outbox->failed_ = status;  // closes without a checkpoint
      } else {
        status = opened.status();
      }
    }  // the damaged file is closed here
    if (status.code() != StatusCode::kDataLoss || attempt > 0) {
      return status.WithContext("opening outbox \"" + path + "\"");
    }
    OUTPOST_LOG(kError) << "outbox file is damaged; salvaging it" << Field("path", path)
                        << Field("cause", status);
    OUTPOST_RETURN_IF_ERROR(Salvage(salvage).WithContext("salvaging \"" + path + "\""));
  }
}

Status Outbox::Init(std::unique_ptr<sqlite::Db> db, std::unique_ptr<const RecordCipher> cipher) {
  std::lock_guard<std::mutex> l(db_mu_);
  db_ = std::move(db);
  cipher_ = std::move(cipher);
  // Byte accounting: one pass over the records (reads every row's header, not payloads).
  {
    OUTPOST_ASSIGN_OR_RETURN(
        auto stmt, db_->Prepare("SELECT kind, count(*), sum(length(stream) + length(payload)) "
                                "FROM records GROUP BY kind"));
    while (true) {
      OUTPOST_ASSIGN_OR_RETURN(bool row, stmt->Step());
      if (!row) break;
      int k = KindIndex(stmt->ColumnInt(0));
      uint64_t n = static_cast<uint64_t>(stmt->ColumnInt(1));
      acct_.records[k] += n;
      acct_.bytes[k] += static_cast<uint64_t>(stmt->ColumnInt(2)) + n * kEnvelopeCharge;
    }
  }
  // Streams started by producers, for max_streams (the outbox's own begin with '_').
  {
    OUTPOST_ASSIGN_OR_RETURN(
        auto stmt, db_->Prepare("SELECT count(*) FROM streams WHERE substr(stream, 1, 1) <> '_'"));
    OUTPOST_ASSIGN_OR_RETURN(bool row, stmt->Step());
    if (row) producer_streams_ = static_cast<uint64_t>(stmt->ColumnInt(0));
  }
  // The account: tracked rules, the open summary window, and a start for older files.
  {
    OUTPOST_ASSIGN_OR_RETURN(auto stmt, db_->Prepare(kAllCounters));
    bool started = false;
    while (true) {
      OUTPOST_ASSIGN_OR_RETURN(bool row, stmt->Step());
      if (!row) break;
      std::string_view name = stmt->ColumnText(0);
      int64_t value = stmt->ColumnInt(1);
      if (name.starts_with("rule.raised.")) {
        tracked_rules_.emplace(name.substr(std::string_view("rule.raised.").size()));
      } else if (name.starts_with("rule_slot.")) {
        std::string key(name.substr(std::string_view("rule_slot.").size()));
        if (value > 0) {
          slot_keys_[value] = key;
          rule_slots_[key] = value;
        }
      } else if (name == "window.from_ms") {
        window_from_ms_ = value;
      } else if (name == "window.lost") {
        window_lost_ = value > 0;
      } else if (name == "prev.seq") {
        last_summary_seq_ = static_cast<uint64_t>(value);
      } else if (name == "account_since_ms") {
        started = true;
      }
    }
    stmt.reset();
    if (!started) OUTPOST_RETURN_IF_ERROR(StartAccountLocked());
  }
  // Rows with a kind this format does not define can only come from damage.
  if (acct_.records[0] > 0) {
    OUTPOST_ASSIGN_OR_RETURN(
        auto stmt, db_->Prepare("SELECT id, stream, seq, kind, created_ms, payload, checksum "
                                "FROM records WHERE kind < 1 OR kind > 7"));
    std::vector<std::pair<RowView, std::string>> bad;
    while (true) {
      OUTPOST_ASSIGN_OR_RETURN(bool row, stmt->Step());
      if (!row) break;
      RowView v = ReadRow(*stmt);
      bad.emplace_back(std::move(v), "unknown kind " + std::to_string(v.kind));
    }
    stmt.reset();
    OUTPOST_RETURN_IF_ERROR(QuarantineLocked(bad));
  }
  return Status::Ok();
}

Outbox::~Outbox() {
  {
    // The commit thread commits and answers what AppendAsync queued, then exits.
    std::unique_lock<std::mutex> l(queue_mu_);
    closing_ = true;
    commit_cv_.notify_one();
  }
  if (commit_thread_.joinable()) commit_thread_.join();
  std::lock_guard<std::mutex> l(db_mu_);
  statements_.clear();
  if (db_) {
    // After a failure the WAL may hold frames that never reached the disk: no checkpoint.
    Status s = db_->Close(/*checkpoint=*/failed_.ok());
    if (!s.ok()) {
      OUTPOST_LOG(kWarning) << "closing the outbox" << Field("error", s);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Helpers

Outbox::RowView Outbox::ReadRow(const sqlite::Statement& s) {
  Outbox::RowView v;
  v.id = s.ColumnInt(0);
  v.stream = std::string(s.ColumnText(1));
  v.seq = static_cast<uint64_t>(s.ColumnInt(2));
  v.kind = s.ColumnInt(3);
  v.created_ms = s.ColumnInt(4);
  v.payload = std::string(s.ColumnBlob(5));
  v.checksum = static_cast<uint32_t>(s.ColumnInt(6));
  return v;
}

uint64_t Outbox::ChargedBytes(size_t stream_len, size_t stored_payload_len) const {
  return stream_len + stored_payload_len + kEnvelopeCharge;
}

void Outbox::FailLocked(const Status& cause) {
  if (!failed_.ok()) return;
  failed_ = FailedPreconditionError(
      "outbox \"" + options_.path +
      "\" stopped after an error and must be reopened: " + std::string(cause.message()));
  failed_flag_.store(true);
  OUTPOST_LOG(kError) << "outbox failed; it must be reopened" << Field("path", options_.path)
                      << Field("cause", cause);
  if (cause.code() == StatusCode::kDataLoss) {
    // Damage that the open-time check did not see (an index that disagrees with its
    // table, say): the next open salvages the file (FORMAT.md section 8).
    Status s = MarkForSalvage(options_.path, UnixMillis(clock_->Now()));
    if (!s.ok()) {
      OUTPOST_LOG(kError) << "cannot mark the outbox for salvage" << Field("error", s);
    }
  }
}

Status Outbox::CheckLocked(const Status& s) {
  if (!s.ok() && s.code() != StatusCode::kResourceExhausted) FailLocked(s);
  return s;
}

Result<sqlite::Statement*> Outbox::StmtLocked(std::string_view sql) {
  auto it = statements_.find(std::string(sql));
  if (it != statements_.end()) {
    it->second->Reset();
    return it->second.get();
  }
  OUTPOST_ASSIGN_OR_RETURN(auto stmt, db_->Prepare(sql));
  sqlite::Statement* raw = stmt.get();
  statements_.emplace(std::string(sql), std::move(stmt));
  return raw;
}

Status Outbox::BeginLocked() {
  acct_snapshot_ = acct_;
  producer_streams_snapshot_ = producer_streams_;
  dirty_streams_.clear();
  counter_add_.clear();
  counter_min_.clear();
  counter_max_.clear();
  rules_added_.clear();
  slots_added_.clear();
  window_from_ms_snapshot_ = window_from_ms_;
  window_lost_snapshot_ = window_lost_;
  last_summary_seq_snapshot_ = last_summary_seq_;
  return db_->Exec("BEGIN IMMEDIATE");
}

Status Outbox::FlushCountersLocked() {
  const std::pair<std::string_view, std::map<std::string, int64_t>*> kinds[] = {
      {kBumpCounter, &counter_add_}, {kLowerCounter, &counter_min_}, {kRaiseCounter, &counter_max_}};
  for (const auto& [sql, values] : kinds) {
    for (const auto& [name, value] : *values) {
      OUTPOST_ASSIGN_OR_RETURN(sqlite::Statement * s, StmtLocked(sql));
      s->BindText(1, name);
      s->BindInt(2, value);
      OUTPOST_RETURN_IF_ERROR(s->Run());
    }
    values->clear();
  }
  return Status::Ok();
}

Status Outbox::CommitLocked() {
  OUTPOST_RETURN_IF_ERROR(FlushCountersLocked());
  if (!dirty_streams_.empty()) {
    OUTPOST_ASSIGN_OR_RETURN(sqlite::Statement * up, StmtLocked(kUpsertStreamSql));
    for (const auto& [stream, before] : dirty_streams_) {
      uint64_t next = next_seq_[stream];
      up->BindText(1, stream);
      up->BindInt(2, static_cast<int64_t>(next));
      up->BindInt(3, StreamChecksum(stream, next));
      OUTPOST_RETURN_IF_ERROR(up->Run());
    }
  }
  OUTPOST_RETURN_IF_ERROR(db_->Exec("COMMIT"));
  dirty_streams_.clear();
  return Status::Ok();
}

void Outbox::RollbackLocked(bool fatal) {
  // After a fatal error the connection is not used again (not even for ROLLBACK); closing
  // it discards the transaction.
  if (!fatal && db_->InTransaction()) db_->Exec("ROLLBACK").IgnoreError();
  for (const auto& [stream, before] : dirty_streams_) {
    if (before == 0) {
      next_seq_.erase(stream);
    } else {
      next_seq_[stream] = before;
    }
  }
  dirty_streams_.clear();
  acct_ = acct_snapshot_;
  producer_streams_ = producer_streams_snapshot_;
  counter_add_.clear();
  counter_min_.clear();
  counter_max_.clear();
  for (const std::string& key : rules_added_) tracked_rules_.erase(key);
  rules_added_.clear();
  for (const std::string& key : slots_added_) {
    slot_keys_.erase(rule_slots_[key]);
    rule_slots_.erase(key);
  }
  slots_added_.clear();
  window_from_ms_ = window_from_ms_snapshot_;
  window_lost_ = window_lost_snapshot_;
  last_summary_seq_ = last_summary_seq_snapshot_;
}

Result<uint64_t> Outbox::NextSeqLocked(const std::string& stream) {
  auto it = next_seq_.find(stream);
  uint64_t seq;
  if (it != next_seq_.end()) {
    seq = it->second;
  } else {
    OUTPOST_ASSIGN_OR_RETURN(sqlite::Statement * s, StmtLocked(kSelectStream));
    s->BindText(1, stream);
    OUTPOST_ASSIGN_OR_RETURN(bool row, s->Step());
    seq = row ? static_cast<uint64_t>(s->ColumnInt(0)) : seq_floor_;
    bool intact = !row || StreamChecksum(stream, seq) == static_cast<uint32_t>(s->ColumnInt(1));
    s->Reset();
    if (!intact) {
      return DataLossError("outbox stream \"" + stream + "\" fails its checksum");
    }
    if (!row && stream[0] != '_') ++producer_streams_;
    it = next_seq_.emplace(stream, seq).first;
  }
  // Remember the value before this transaction (0 = not known before) for a rollback.
  dirty_streams_.emplace(stream, seq);
  it->second = seq + 1;
  return seq;
}

Status Outbox::ReserveSealsLocked(uint64_t count) {
  if (!cipher_ || next_seal_ + count - 1 <= seals_reserved_) return Status::Ok();
  if (next_seal_ + count - 1 > kMaxSealsPerDataKey) {
    return ErrorWithReason(StatusCode::kResourceExhausted, "outbox_key_exhausted",
                           "this file's data key has sealed " + std::to_string(next_seal_ - 1) +
                               " payloads, the most random nonces allow; drain the outbox and "
                               "start a new file (outbox/FORMAT.md section 7)");
  }
  uint64_t reserved = std::min(next_seal_ + count + kNonceReserveStep, kMaxSealsPerDataKey);
  // Its own durable transaction, before any seal of the range is made.
  OUTPOST_RETURN_IF_ERROR(SetMetaInt(*db_, "nonce_reserved", static_cast<int64_t>(reserved)));
  seals_reserved_ = reserved;
  return Status::Ok();
}

Status Outbox::InsertLocked(const std::string& stream, uint64_t seq, Kind kind, int64_t created_ms,
                            std::string_view payload, uint64_t* bytes, int64_t rule_slot) {
  uint8_t code = static_cast<uint8_t>(kind);
  std::string header =
      EnvelopeHeader(options_.site_id, options_.node_id, stream, seq, code, created_ms);
  std::string sealed;
  std::string_view stored = payload;
  if (cipher_) {
    if (next_seal_ > seals_reserved_) return InternalError("a seal made before it was counted");
    OUTPOST_RETURN_IF_ERROR(cipher_->Seal(RecordAad(header), payload, &sealed));
    ++next_seal_;
    stored = sealed;
  }
  OUTPOST_ASSIGN_OR_RETURN(sqlite::Statement * ins, StmtLocked(kInsertRecord));
  ins->BindText(1, stream);
  ins->BindInt(2, static_cast<int64_t>(seq));
  ins->BindInt(3, code);
  ins->BindInt(4, created_ms);
  ins->BindBlob(5, stored);
  ins->BindInt(6, RecordChecksum(header, stored));
  if (rule_slot > 0) {
    ins->BindInt(7, rule_slot);
  } else {
    ins->BindNull(7);
  }
  OUTPOST_RETURN_IF_ERROR(ins->Run());
  *bytes = ChargedBytes(stream.size(), stored.size());
  acct_.records[code] += 1;
  acct_.bytes[code] += *bytes;
  return Status::Ok();
}

Status Outbox::BumpCounterLocked(const std::string& name, int64_t delta) {
  // Written with the transaction's other counters when it commits.
  counter_add_[name] += delta;
  return Status::Ok();
}

Status Outbox::WriteEventLocked(std::string_view json, int64_t now_ms, uint64_t* seq_out) {
  std::string stream(kEventStream);
  OUTPOST_ASSIGN_OR_RETURN(uint64_t seq, NextSeqLocked(stream));
  if (seq_out != nullptr) *seq_out = seq;
  uint64_t bytes = 0;
  OUTPOST_RETURN_IF_ERROR(InsertLocked(stream, seq, Kind::kEvent, now_ms, json, &bytes));
  return BumpCounterLocked("raised_records.event", 1);
}

void Outbox::MarkLeasedLocked(const LeaseEntry& e, uint64_t lease_id) {
  leased_ids_[e.id] = lease_id;
  leased_bytes_[static_cast<int>(e.kind)] += e.bytes;
}

void Outbox::UnmarkLeasedLocked(const LeaseEntry& e, uint64_t lease_id) {
  auto it = leased_ids_.find(e.id);
  if (it == leased_ids_.end() || (lease_id != 0 && it->second != lease_id)) return;
  leased_ids_.erase(it);
  uint64_t& b = leased_bytes_[static_cast<int>(e.kind)];
  b -= std::min(b, e.bytes);
}

void Outbox::ExpireLeasesLocked() {
  Clock::MonoTime now = clock_->Monotonic();
  size_t expired_kept = 0;
  for (auto it = leases_.rbegin(); it != leases_.rend(); ++it) {
    LeaseInfo& lease = it->second;
    if (!lease.expired && lease.expires <= now) {
      for (const LeaseEntry& e : lease.entries) UnmarkLeasedLocked(e, it->first);
      lease.expired = true;
    }
    if (lease.expired) ++expired_kept;
  }
  // Expired leases are kept so that a late Ack still deletes, but not without bound.
  for (auto it = leases_.begin(); it != leases_.end() && expired_kept > 1024;) {
    if (it->second.expired) {
      it = leases_.erase(it);
      --expired_kept;
    } else {
      ++it;
    }
  }
}

Result<bool> Outbox::StreamAllowedLocked(const std::string& stream) {
  if (stream[0] == '_' || producer_streams_ < options_.max_streams) return true;
  if (next_seq_.count(stream) > 0) return true;
  OUTPOST_ASSIGN_OR_RETURN(sqlite::Statement * s, StmtLocked(kSelectStream));
  s->BindText(1, stream);
  OUTPOST_ASSIGN_OR_RETURN(bool row, s->Step());
  s->Reset();
  return row;
}

uint64_t Outbox::QuotaBytes(Kind kind) const {
  const ClassPolicy& p = Policy(kind);
  uint64_t quota = p.max_bytes;
  if (p.max_percent > 0) {
    const uint64_t share = Share(options_.max_bytes, p.max_percent);
    quota = quota == 0 ? share : std::min(quota, share);
  }
  return quota;
}

uint64_t Outbox::ReservedBytes(Kind kind) const {
  return Share(options_.max_bytes, Policy(kind).reserved_percent);
}

uint64_t Outbox::HoldBackLocked(Kind kind) const {
  uint64_t held_back = 0;
  for (Kind other : kAllKinds) {
    if (other == kind) continue;
    const uint64_t reserved = ReservedBytes(other);
    const uint64_t used = acct_.bytes[static_cast<int>(other)];
    if (reserved > used) held_back += reserved - used;
  }
  return held_back;
}

bool Outbox::OwnEventFitsLocked(uint64_t bytes) const {
  const int e = static_cast<int>(Kind::kEvent);
  const uint64_t reserved = ReservedBytes(Kind::kEvent);
  if (reserved > 0 && acct_.bytes[e] + bytes > reserved) return false;
  const uint64_t quota = QuotaBytes(Kind::kEvent);
  if (quota > 0 && acct_.bytes[e] + bytes > quota) return false;
  return TotalBytes() + HoldBackLocked(Kind::kEvent) + bytes <= options_.max_bytes;
}

void Outbox::NoteIngestLocked(Kind kind, uint64_t bytes) {
  int64_t index = (clock_->Monotonic() - opened_at_) / kBucket;
  Bucket& b = buckets_[static_cast<size_t>(index) % buckets_.size()];
  if (b.index != index) b = Bucket{.index = index};
  b.records += 1;
  b.bytes[static_cast<int>(kind)] += bytes;
}

void Outbox::NoteDrainLocked(Kind kind, uint64_t bytes) {
  int64_t index = (clock_->Monotonic() - opened_at_) / kBucket;
  Bucket& b = buckets_[static_cast<size_t>(index) % buckets_.size()];
  if (b.index != index) b = Bucket{.index = index};
  b.drained[static_cast<int>(kind)] += bytes;
}

// ---------------------------------------------------------------------------------------
// Append and group commit

Status Outbox::CheckNewRecord(const NewRecord& record) {
  int code = static_cast<int>(record.kind);
  if (!KnownKind(code)) return InvalidArgumentError("unknown record kind " + std::to_string(code));
  // A StreamName (base/names.h), not one of the outbox's own ("_outbox").
  OUTPOST_RETURN_IF_ERROR(CheckName(kStreamNameRule, record.stream));
  if (record.stream[0] == '_') {
    return InvalidArgumentError("stream \"" + record.stream.substr(0, 64) +
                                "\" begins with '_', which marks the outbox's own streams")
        .WithReason(kStreamNameRule.reason);
  }
  if (record.payload.size() > options_.max_payload_bytes) {
    return InvalidArgumentError("payload of " + std::to_string(record.payload.size()) +
                                " bytes is over the limit of " +
                                std::to_string(options_.max_payload_bytes));
  }
  if (failed_flag_.load(std::memory_order_relaxed)) {
    std::lock_guard<std::mutex> l(db_mu_);
    return failed_;
  }
  return Status::Ok();
}

Result<RecordKey> Outbox::Append(NewRecord record) {
  if (in_completion) return AppendInCompletion();
  OUTPOST_RETURN_IF_ERROR(CheckNewRecord(record));
  // Shared with the leader that commits it, which signals it after leaving the queue lock.
  auto p = std::make_shared<Pending>();
  p->record = std::move(record);
  {
    std::unique_lock<std::mutex> l(queue_mu_);
    queue_.push_back(p);
    // Wake a lingering leader once, when the queue reaches what it waits for (not for every
    // record: each wake-up is a context switch).
    if (linger_target_ != 0 && queue_.size() == linger_target_) linger_cv_.notify_one();
    if (!committing_ && queue_.front() == p) {
      // This producer leads: it commits what is queued, itself first.
      LeadCommitLocked(l);
      return std::move(p->result);
    }
  }
  int state = Pending::kWaiting;
  while ((state = p->state.load(std::memory_order_acquire)) == Pending::kWaiting) {
    p->state.wait(Pending::kWaiting, std::memory_order_acquire);
  }
  if (state == Pending::kDone) return std::move(p->result);
  // The last leader chose this producer, at the front of the queue, to lead the next commit.
  std::unique_lock<std::mutex> l(queue_mu_);
  LeadCommitLocked(l);
  return std::move(p->result);
}

void Outbox::AppendAsync(NewRecord record, std::function<void(Result<RecordKey>)> done) {
  if (in_completion) {
    done(AppendInCompletion());
    return;
  }
  if (Status s = CheckNewRecord(record); !s.ok()) {
    done(std::move(s));
    return;
  }
  auto p = std::make_shared<Pending>();
  p->record = std::move(record);
  p->on_done = std::move(done);
  std::unique_lock<std::mutex> l(queue_mu_);
  room_cv_.wait(l, [&] { return appends_in_flight_ < options_.max_appends_in_flight; });
  if (closing_) {
    l.unlock();
    p->on_done(FailedPreconditionError("outbox \"" + options_.path + "\" is closing"));
    return;
  }
  if (!commit_thread_.joinable()) commit_thread_ = std::thread([this] { CommitThreadLoop(); });
  ++appends_in_flight_;
  queue_.push_back(std::move(p));
  // Wake a lingering leader once, when the queue reaches what it waits for (not for every
  // record: each wake-up is a context switch).
  if (linger_target_ != 0 && queue_.size() == linger_target_) linger_cv_.notify_one();
  if (!committing_ && queue_.size() == 1) commit_cv_.notify_one();
}

void Outbox::CommitThreadLoop() {
  std::unique_lock<std::mutex> l(queue_mu_);
  for (;;) {
    commit_cv_.wait(l, [&] {
      return (!committing_ && !queue_.empty() && queue_.front()->on_done) ||
             (closing_ && appends_in_flight_ == 0);
    });
    if (!committing_ && !queue_.empty() && queue_.front()->on_done) {
      LeadCommitLocked(l);
    } else {
      return;  // closing, and every asynchronous append is answered
    }
  }
}

void Outbox::WakeNextLeaderLocked() {
  if (queue_.empty()) return;
  if (queue_.front()->on_done) {
    commit_cv_.notify_one();
  } else {
    // It waits outside the queue lock and takes it again before leading, so it stays alive.
    queue_.front()->state.store(Pending::kLead, std::memory_order_release);
    queue_.front()->state.notify_one();
  }
}

void Outbox::LeadCommitLocked(std::unique_lock<std::mutex>& l) {
  committing_ = true;
  size_t target = std::min(last_batch_size_, options_.max_batch_records);
  if (queue_.size() < target) {
    // Producers of the last batch are likely on their way back: wait for them, briefly.
    linger_target_ = target;
    linger_cv_.wait_for(l, options_.max_commit_delay, [&] { return queue_.size() >= target; });
    linger_target_ = 0;
  }
  std::vector<std::shared_ptr<Pending>> taken;
  std::vector<Pending*> batch;
  uint64_t bytes = 0;
  while (!queue_.empty() && batch.size() < options_.max_batch_records) {
    uint64_t b = queue_.front()->record.payload.size();
    if (!batch.empty() && bytes + b > options_.max_batch_bytes) break;
    bytes += b;
    batch.push_back(queue_.front().get());
    taken.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  last_batch_size_ = batch.size();
  l.unlock();
  CommitBatch(batch);
  l.lock();
  committing_ = false;
  // The next leader first, so that its batch forms while the others wake.
  WakeNextLeaderLocked();
  l.unlock();
  // Answers go out without the queue lock: a woken producer does not wait for it, and
  // producers queue meanwhile. `taken` keeps every record alive until it is answered.
  size_t answered = 0;
  for (const auto& q : taken) {
    if (q->on_done) continue;
    q->state.store(Pending::kDone, std::memory_order_release);
    q->state.notify_one();
  }
  in_completion = true;
  for (const auto& q : taken) {
    if (!q->on_done) continue;
    q->on_done(std::move(q->result));
    ++answered;
  }
  in_completion = false;
  taken.clear();
  l.lock();
  if (answered == 0) return;
  appends_in_flight_ -= answered;
  room_cv_.notify_all();
  if (closing_ && appends_in_flight_ == 0) commit_cv_.notify_one();
}

void Outbox::CommitBatch(std::vector<Pending*>& batch) {
  std::lock_guard<std::mutex> l(db_mu_);
  if (!failed_.ok()) {
    for (Pending* p : batch) p->result = failed_;
    return;
  }
  int64_t now_ms = UnixMillis(clock_->Now());
  Status s = CommitBatchLocked(batch, now_ms);
  if (!s.ok()) {
    bool fatal = s.code() != StatusCode::kResourceExhausted;
    RollbackLocked(fatal);
    if (fatal) {
      FailLocked(s);
    } else {
      rejected_ += batch.size();
      CountBatchRefusedLocked(batch, now_ms);
    }
    Status answer = s.WithContext("the record is not stored");
    for (Pending* p : batch) p->result = answer;
    return;
  }
  ++commits_;
  for (Pending* p : batch) {
    if (p->result.ok()) {
      ++committed_records_;
    } else if (p->result.status().code() == StatusCode::kResourceExhausted &&
               p->result.status().reason() != "storm_sampled_out") {
      ++rejected_;
    }
  }
}

Status Outbox::CommitBatchLocked(std::vector<Pending*>& batch, int64_t now_ms) {
  // Seals for the batch and for a possible event record, counted durably beforehand.
  OUTPOST_RETURN_IF_ERROR(ReserveSealsLocked(batch.size() + 1));
  OUTPOST_RETURN_IF_ERROR(BeginLocked());
  evicted_ = {};
  evicted_bytes_ = {};
  std::vector<std::pair<Kind, uint64_t>> ingested;
  ingested.reserve(batch.size());
  for (Pending* p : batch) OUTPOST_RETURN_IF_ERROR(AppendOneLocked(*p, now_ms, &ingested));
  // Evictions are counted, never reported record by record (FORMAT.md section 9).
  const bool lost_before = window_lost_;
  uint64_t evicted_total = 0, evicted_bytes_total = 0;
  for (Kind k : kAllKinds) {
    int i = static_cast<int>(k);
    if (evicted_[i] == 0) continue;
    evicted_total += evicted_[i];
    evicted_bytes_total += evicted_bytes_[i];
    std::string name(KindName(k));
    OUTPOST_RETURN_IF_ERROR(
        BumpCounterLocked("evicted_records." + name, static_cast<int64_t>(evicted_[i])));
    OUTPOST_RETURN_IF_ERROR(
        BumpCounterLocked("evicted_bytes." + name, static_cast<int64_t>(evicted_bytes_[i])));
    NoteLossLocked("evicted", k, evicted_[i], now_ms);
  }
  if (evicted_total > 0 && !lost_before) {
    OUTPOST_LOG(kWarning) << "outbox full: evicting records to make room (counted, and "
                             "reported by the next summary record)"
                          << Field("records", evicted_total) << Field("bytes", evicted_bytes_total);
  }
  OUTPOST_RETURN_IF_ERROR(MaybeWriteSummaryLocked(now_ms));
  OUTPOST_RETURN_IF_ERROR(CommitLocked());
  for (const auto& [kind, bytes] : ingested) NoteIngestLocked(kind, bytes);
  return Status::Ok();
}

Status Outbox::AppendOneLocked(Pending& p, int64_t now_ms,
                               std::vector<std::pair<Kind, uint64_t>>* ingested) {
  NewRecord& r = p.record;
  const std::string rule_key = r.rule.empty() ? std::string() : RuleKeyLocked(r.kind, r.stream, r.rule);
  CountLocked("raised", r.kind, rule_key, now_ms);
  auto refuse = [&](Status why) {
    CountLocked("refused", r.kind, rule_key, now_ms);
    NoteLossLocked("refused", r.kind, 1, now_ms);
    p.result = std::move(why);
  };
  OUTPOST_ASSIGN_OR_RETURN(bool allowed, StreamAllowedLocked(r.stream));
  if (!allowed) {
    refuse(ErrorWithReason(StatusCode::kResourceExhausted, "too_many_streams",
                           "stream \"" + r.stream.substr(0, 64) +
                               "\" would be a new stream beyond the " +
                               std::to_string(options_.max_streams) + " this outbox allows"));
    return Status::Ok();
  }
  // Storm sampling, per rule (records without one: per stream) and hour.
  const std::string storm_key =
      rule_key.empty() ? std::string(KindName(r.kind)) + "." + r.stream + "/" : rule_key;
  size_t slot = 0;
  StormStep step = StormStepLocked(r.kind, storm_key, now_ms, &slot);
  auto sampled_out = [&] {
    CountLocked("sampled_out", r.kind, rule_key, now_ms);
    NoteLossLocked("sampled_out", r.kind, 1, now_ms);
  };
  if (step == StormStep::kReplace) {
    std::vector<uint64_t>& sample = storms_[storm_key].sample_seqs;
    OUTPOST_ASSIGN_OR_RETURN(int dropped, DropSampleMemberLocked(r.kind, r.stream, sample[slot]));
    if (dropped < 0) {
      step = StormStep::kDrop;  // the member is on its way to the hub: it stays
    } else if (dropped > 0) {
      sampled_out();  // the member the new record replaces
    }
  }
  if (step == StormStep::kDrop) {
    sampled_out();
    p.result = ErrorWithReason(StatusCode::kResourceExhausted, "storm_sampled_out",
                               "a " + std::string(KindName(r.kind)) +
                                   " storm: the record was counted, and not kept in the hour's "
                                   "sample (outbox/FORMAT.md section 12)");
    return Status::Ok();
  }
  uint64_t stored = r.payload.size() + (cipher_ ? RecordCipher::kOverhead : 0);
  uint64_t charge = ChargedBytes(r.stream.size(), stored);
  OUTPOST_ASSIGN_OR_RETURN(bool fits, MakeRoomLocked(r.kind, charge));
  if (!fits) {
    if (step == StormStep::kReplace) {
      std::vector<uint64_t>& sample = storms_[storm_key].sample_seqs;
      sample.erase(sample.begin() + static_cast<std::ptrdiff_t>(slot));
    }
    refuse(ResourceExhaustedError(
        "outbox full: a " + std::string(KindName(r.kind)) + " record of " + std::to_string(charge) +
        " bytes does not fit (" + std::to_string(TotalBytes()) + " of " +
        std::to_string(options_.max_bytes) + " bytes used" +
        (QuotaBytes(r.kind) > 0 ? ", class quota " + std::to_string(QuotaBytes(r.kind))
                                : std::string()) +
        ") and nothing of the same or lower priority may be evicted"));
    return Status::Ok();
  }
  OUTPOST_ASSIGN_OR_RETURN(uint64_t seq, NextSeqLocked(r.stream));
  uint64_t bytes = 0;
  OUTPOST_RETURN_IF_ERROR(InsertLocked(r.stream, seq, r.kind, now_ms, r.payload, &bytes,
                                       rule_key.empty() ? 0 : RuleSlotLocked(rule_key)));
  if (step == StormStep::kStoreInSample) storms_[storm_key].sample_seqs.push_back(seq);
  if (step == StormStep::kReplace) storms_[storm_key].sample_seqs[slot] = seq;
  CountLocked("kept", r.kind, rule_key, now_ms);
  p.result = RecordKey{r.stream, seq};
  ingested->emplace_back(r.kind, bytes);
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------
// The account, storms and the summary record (FORMAT.md sections 9, 11, 12)

Status Outbox::StartAccountLocked() {
  std::map<std::string, int64_t> counters;
  {
    OUTPOST_ASSIGN_OR_RETURN(auto stmt, db_->Prepare(kAllCounters));
    while (true) {
      OUTPOST_ASSIGN_OR_RETURN(bool row, stmt->Step());
      if (!row) break;
      counters[std::string(stmt->ColumnText(0))] = stmt->ColumnInt(1);
    }
  }
  Status s = [&]() -> Status {
    OUTPOST_RETURN_IF_ERROR(BeginLocked());
    // A file written before the account: what it holds and what it evicted were raised.
    for (Kind k : kAllKinds) {
      std::string name(KindName(k));
      int64_t raised = static_cast<int64_t>(acct_.records[static_cast<int>(k)]) +
                       CounterValue(counters, "evicted_records." + name);
      if (raised > 0) counter_add_["raised_records." + name] += raised;
    }
    counter_add_["account_since_ms"] = UnixMillis(clock_->Now());
    return CommitLocked();
  }();
  if (!s.ok()) RollbackLocked(s.code() != StatusCode::kResourceExhausted);
  return s;
}

std::string Outbox::RuleKeyLocked(Kind kind, const std::string& stream, const std::string& rule) {
  std::string key = std::string(KindName(kind)) + "." + stream + "/" +
                    rule.substr(0, kMaxCountedRuleName);
  if (tracked_rules_.count(key) > 0) return key;
  if (tracked_rules_.size() >= options_.max_tracked_rules) {
    return std::string(KindName(kind)) + "._other/_other";
  }
  tracked_rules_.insert(key);
  rules_added_.push_back(key);
  return key;
}

int64_t Outbox::RuleSlotLocked(const std::string& rule_key) {
  // rule_key is a tracked rule or an "_other" key (RuleKeyLocked), so a file holds at most
  // max_tracked_rules + 7 slots.
  auto it = rule_slots_.find(rule_key);
  if (it != rule_slots_.end()) return it->second;
  const int64_t slot = slot_keys_.empty() ? 1 : slot_keys_.rbegin()->first + 1;
  rule_slots_[rule_key] = slot;
  slot_keys_[slot] = rule_key;
  slots_added_.push_back(rule_key);
  counter_add_["rule_slot." + rule_key] += slot;
  return slot;
}

void Outbox::OpenWindowLocked(int64_t now_ms) {
  if (window_from_ms_ != 0) return;
  window_from_ms_ = std::max<int64_t>(1, now_ms);
  counter_min_["window.from_ms"] = window_from_ms_;
}

void Outbox::CountLocked(std::string_view field, Kind kind, const std::string& rule_key,
                         int64_t now_ms) {
  const std::string f(field);
  if (f != "kept") counter_add_[f + "_records." + std::string(KindName(kind))] += 1;
  if (rule_key.empty()) return;
  OpenWindowLocked(now_ms);
  if (f != "kept") counter_add_["rule." + f + "." + rule_key] += 1;
  counter_add_["window.rule." + f + "." + rule_key] += 1;
  if (f == "sampled_out") {
    auto [lo, fresh] = counter_min_.emplace("window.rule.first_ms." + rule_key, now_ms);
    if (!fresh) lo->second = std::min(lo->second, now_ms);
    int64_t& hi = counter_max_["window.rule.last_ms." + rule_key];
    hi = std::max(hi, now_ms);
  }
}

void Outbox::NoteLossLocked(std::string_view field, Kind kind, uint64_t n, int64_t now_ms) {
  if (n == 0) return;
  OpenWindowLocked(now_ms);
  counter_add_["window." + std::string(field) + "." + std::string(KindName(kind))] +=
      static_cast<int64_t>(n);
  counter_add_["window.lost"] += static_cast<int64_t>(n);
  window_lost_ = true;
}

Outbox::StormStep Outbox::StormStepLocked(Kind kind, const std::string& rule_key, int64_t now_ms,
                                          size_t* slot) {
  const ClassPolicy& p = Policy(kind);
  if (p.storm_first == 0) return StormStep::kStore;
  StormState& st = storms_[rule_key];
  const int64_t hour = now_ms / kHourMs;
  if (st.hour != hour) st = StormState{.hour = hour};
  ++st.raised;
  if (st.raised <= p.storm_first) return StormStep::kStore;
  // In a storm once the class holds its storm share, and for the rest of the hour.
  if (st.storm_seen == 0 &&
      acct_.bytes[static_cast<int>(kind)] < Share(options_.max_bytes, p.storm_percent)) {
    return StormStep::kStore;
  }
  ++st.storm_seen;
  if (st.sample_seqs.size() < p.storm_sample) return StormStep::kStoreInSample;
  const uint64_t j = NextRandom(sample_rng_) % st.storm_seen;
  if (j < st.sample_seqs.size()) {
    *slot = static_cast<size_t>(j);
    return StormStep::kReplace;
  }
  return StormStep::kDrop;
}

Result<int> Outbox::DropSampleMemberLocked(Kind kind, const std::string& stream, uint64_t seq) {
  OUTPOST_ASSIGN_OR_RETURN(sqlite::Statement * s, StmtLocked(kSampleMember));
  s->BindText(1, stream);
  s->BindInt(2, static_cast<int64_t>(seq));
  OUTPOST_ASSIGN_OR_RETURN(bool row, s->Step());
  const int64_t id = row ? s->ColumnInt(0) : -1;
  const uint64_t bytes = row ? static_cast<uint64_t>(s->ColumnInt(1)) + kEnvelopeCharge : 0;
  s->Reset();
  if (!row) return 0;
  if (leased_ids_.count(id) > 0) return -1;
  OUTPOST_ASSIGN_OR_RETURN(sqlite::Statement * del, StmtLocked(kDeleteById));
  del->BindInt(1, id);
  OUTPOST_RETURN_IF_ERROR(del->Run());
  const int i = static_cast<int>(kind);
  acct_.records[i] -= std::min<uint64_t>(acct_.records[i], 1);
  acct_.bytes[i] -= std::min(acct_.bytes[i], bytes);
  return 1;
}

void Outbox::CountBatchRefusedLocked(const std::vector<Pending*>& batch, int64_t now_ms) {
  Status s = [&]() -> Status {
    OUTPOST_RETURN_IF_ERROR(BeginLocked());
    for (Pending* p : batch) {
      const NewRecord& r = p->record;
      const std::string key =
          r.rule.empty() ? std::string() : RuleKeyLocked(r.kind, r.stream, r.rule);
      CountLocked("raised", r.kind, key, now_ms);
      CountLocked("refused", r.kind, key, now_ms);
      NoteLossLocked("refused", r.kind, 1, now_ms);
    }
    return CommitLocked();
  }();
  if (!s.ok()) {
    RollbackLocked(s.code() != StatusCode::kResourceExhausted);
    CheckLocked(s).IgnoreError();
  }
}

Status Outbox::MaybeWriteSummaryLocked(int64_t now_ms) {
  if (window_from_ms_ == 0 || now_ms - window_from_ms_ < options_.summary_interval.count()) {
    return Status::Ok();
  }
  OUTPOST_RETURN_IF_ERROR(FlushCountersLocked());
  if (!window_lost_) {
    // A window that lost nothing closes without a record.
    OUTPOST_ASSIGN_OR_RETURN(sqlite::Statement * clear, StmtLocked(kClearWindow));
    OUTPOST_RETURN_IF_ERROR(clear->Run());
    window_from_ms_ = 0;
    return Status::Ok();
  }
  const uint64_t overhead = cipher_ ? RecordCipher::kOverhead : 0;
  OUTPOST_ASSIGN_OR_RETURN(std::string json, SummaryJsonLocked(now_ms));
  if (!OwnEventFitsLocked(ChargedBytes(kEventStream.size(), json.size() + overhead))) {
    // The event share is full: the newest summary, while still here, is superseded by one
    // that covers its window too.
    OUTPOST_ASSIGN_OR_RETURN(bool merged, SupersedeLastSummaryLocked());
    if (!merged) return Status::Ok();  // the window goes on; its counts are durable
    OUTPOST_RETURN_IF_ERROR(FlushCountersLocked());
    OUTPOST_ASSIGN_OR_RETURN(json, SummaryJsonLocked(now_ms));
    if (!OwnEventFitsLocked(ChargedBytes(kEventStream.size(), json.size() + overhead))) {
      return Status::Ok();
    }
  }
  uint64_t seq = 0;
  OUTPOST_RETURN_IF_ERROR(WriteEventLocked(json, now_ms, &seq));
  // The window's counts stay as the last summary's (prev.*), for a later supersession.
  for (std::string_view sql : {kClearPrevious, kWindowToPrevious}) {
    OUTPOST_ASSIGN_OR_RETURN(sqlite::Statement * s, StmtLocked(sql));
    OUTPOST_RETURN_IF_ERROR(s->Run());
  }
  counter_add_["prev.seq"] = static_cast<int64_t>(seq);
  last_summary_seq_ = seq;
  window_from_ms_ = 0;
  window_lost_ = false;
  return Status::Ok();
}

Result<bool> Outbox::SupersedeLastSummaryLocked() {
  if (last_summary_seq_ == 0) return false;
  const std::string stream(kEventStream);
  OUTPOST_ASSIGN_OR_RETURN(sqlite::Statement * s, StmtLocked(kSampleMember));
  s->BindText(1, stream);
  s->BindInt(2, static_cast<int64_t>(last_summary_seq_));
  OUTPOST_ASSIGN_OR_RETURN(bool row, s->Step());
  const int64_t id = row ? s->ColumnInt(0) : -1;
  const uint64_t bytes = row ? static_cast<uint64_t>(s->ColumnInt(1)) + kEnvelopeCharge : 0;
  s->Reset();
  if (row && leased_ids_.count(id) > 0) return false;  // on its way to the hub
  if (!row) {
    // Delivered: its counts were reported.
    OUTPOST_ASSIGN_OR_RETURN(sqlite::Statement * clear, StmtLocked(kClearPrevious));
    OUTPOST_RETURN_IF_ERROR(clear->Run());
    last_summary_seq_ = 0;
    return false;
  }
  OUTPOST_ASSIGN_OR_RETURN(sqlite::Statement * del, StmtLocked(kDeleteById));
  del->BindInt(1, id);
  OUTPOST_RETURN_IF_ERROR(del->Run());
  const int e = static_cast<int>(Kind::kEvent);
  acct_.records[e] -= std::min<uint64_t>(acct_.records[e], 1);
  acct_.bytes[e] -= std::min(acct_.bytes[e], bytes);
  // Counted as an evicted event, so that the account balances (FORMAT.md section 9).
  counter_add_["evicted_records.event"] += 1;
  counter_add_["evicted_bytes.event"] += static_cast<int64_t>(bytes);
  OUTPOST_ASSIGN_OR_RETURN(sqlite::Statement * from, StmtLocked(kPreviousFrom));
  OUTPOST_ASSIGN_OR_RETURN(bool has_from, from->Step());
  if (has_from) window_from_ms_ = std::min(window_from_ms_, from->ColumnInt(0));
  from->Reset();
  for (std::string_view sql : {kMergePrevious, kClearPrevious}) {
    OUTPOST_ASSIGN_OR_RETURN(sqlite::Statement * m, StmtLocked(sql));
    OUTPOST_RETURN_IF_ERROR(m->Run());
  }
  last_summary_seq_ = 0;
  return true;
}

namespace {

// A rule key "<kind>.<stream>/<rule>" split into its parts; false when malformed.
bool SplitRuleKey(std::string_view key, Kind* kind, std::string* stream, std::string* rule) {
  size_t dot = key.find('.');
  if (dot == std::string_view::npos) return false;
  size_t slash = key.find('/', dot + 1);
  if (slash == std::string_view::npos) return false;
  Result<Kind> k = ParseKind(key.substr(0, dot));
  if (!k.ok()) return false;
  *kind = *k;
  *stream = std::string(key.substr(dot + 1, slash - dot - 1));
  *rule = std::string(key.substr(slash + 1));
  return true;
}

// Every counter's value, read in the open transaction.
Result<std::map<std::string, int64_t>> ReadCounters(sqlite::Statement& s) {
  std::map<std::string, int64_t> counters;
  while (true) {
    OUTPOST_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    counters[std::string(s.ColumnText(0))] = s.ColumnInt(1);
  }
  s.Reset();
  return counters;
}

// The per-rule fields of the window and of the file's life, from the counters.
std::vector<RuleStats> RulesFromCounters(const std::map<std::string, int64_t>& counters) {
  std::map<std::string, RuleStats> rules;
  const std::pair<std::string_view, uint64_t RuleStats::*> lifetime[] = {
      {"rule.raised.", &RuleStats::raised_records},
      {"rule.refused.", &RuleStats::refused_records},
      {"rule.sampled_out.", &RuleStats::sampled_out_records},
      {"rule.evicted.", &RuleStats::evicted_records},
      {"window.rule.raised.", &RuleStats::window_raised},
      {"window.rule.kept.", &RuleStats::window_kept},
      {"window.rule.sampled_out.", &RuleStats::window_sampled_out},
      {"window.rule.evicted.", &RuleStats::window_evicted}};
  for (const auto& [name, value] : counters) {
    for (const auto& [prefix, field] : lifetime) {
      if (!std::string_view(name).starts_with(prefix)) continue;
      std::string key = name.substr(prefix.size());
      RuleStats& r = rules[key];
      if (!SplitRuleKey(key, &r.kind, &r.stream, &r.rule)) continue;
      r.*field = static_cast<uint64_t>(value);
    }
    if (name.starts_with("window.rule.first_ms.")) {
      rules[name.substr(std::string_view("window.rule.first_ms.").size())].storm_from_ms = value;
    } else if (name.starts_with("window.rule.last_ms.")) {
      rules[name.substr(std::string_view("window.rule.last_ms.").size())].storm_to_ms = value;
    }
  }
  std::vector<RuleStats> out;
  for (auto& [key, r] : rules) {
    if (SplitRuleKey(key, &r.kind, &r.stream, &r.rule)) out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

Result<std::string> Outbox::SummaryJsonLocked(int64_t now_ms) {
  OUTPOST_ASSIGN_OR_RETURN(sqlite::Statement * s, StmtLocked(kAllCounters));
  OUTPOST_ASSIGN_OR_RETURN(auto counters, ReadCounters(*s));
  std::string json = "{\"type\":\"outbox_summary\",\"from_ms\":" +
                     std::to_string(window_from_ms_) + ",\"to_ms\":" + std::to_string(now_ms) +
                     ",\"classes\":{";
  auto n = [&](const std::string& name) { return std::to_string(CounterValue(counters, name)); };
  for (Kind k : kAllKinds) {
    const std::string name(KindName(k));
    if (k != kAllKinds.front()) json += ",";
    json += JsonString(name) + ":{\"raised\":" + n("raised_records." + name) +
            ",\"held\":" + std::to_string(acct_.records[static_cast<int>(k)]) +
            ",\"delivered\":" + n("delivered_records." + name) +
            ",\"withheld\":" + n("withheld_records." + name) +
            ",\"evicted\":" + n("evicted_records." + name) +
            ",\"refused\":" + n("refused_records." + name) +
            ",\"sampled_out\":" + n("sampled_out_records." + name) +
            ",\"quarantined\":" + n("quarantined_records." + name) + "}";
  }
  json += "},\"window\":{";
  bool first = true;
  for (Kind k : kAllKinds) {
    const std::string name(KindName(k));
    const int64_t e = CounterValue(counters, "window.evicted." + name);
    const int64_t r = CounterValue(counters, "window.refused." + name);
    const int64_t o = CounterValue(counters, "window.sampled_out." + name);
    if (e == 0 && r == 0 && o == 0) continue;
    if (!first) json += ",";
    first = false;
    json += JsonString(name) + ":{\"evicted\":" + std::to_string(e) +
            ",\"refused\":" + std::to_string(r) + ",\"sampled_out\":" + std::to_string(o) + "}";
  }
  json += "},\"rules\":[";
  first = true;
  for (const RuleStats& r : RulesFromCounters(counters)) {
    const std::string key = std::string(KindName(r.kind)) + "." + r.stream + "/" + r.rule;
    const int64_t refused = CounterValue(counters, "window.rule.refused." + key);
    if (refused == 0 && r.window_sampled_out == 0 && r.window_evicted == 0) continue;
    if (!first) json += ",";
    first = false;
    json += "{\"kind\":" + JsonString(KindName(r.kind)) + ",\"stream\":" + JsonString(r.stream) +
            ",\"rule\":" + JsonString(r.rule) + ",\"raised\":" + std::to_string(r.window_raised) +
            ",\"kept\":" + std::to_string(r.window_kept) + ",\"refused\":" +
            std::to_string(refused) + ",\"sampled_out\":" + std::to_string(r.window_sampled_out) +
            ",\"evicted\":" + std::to_string(r.window_evicted);
    if (r.storm_from_ms && r.storm_to_ms) {
      json += ",\"storm_from_ms\":" + std::to_string(*r.storm_from_ms) +
              ",\"storm_to_ms\":" + std::to_string(*r.storm_to_ms);
    }
    json += "}";
  }
  json += "]}";
  return json;
}

uint64_t Outbox::TotalBytes() const {
  uint64_t t = 0;
  for (uint64_t b : acct_.bytes) t += b;
  return t;
}

Result<bool> Outbox::MakeRoomLocked(Kind kind, uint64_t bytes) {
  const int k = static_cast<int>(kind);
  const ClassPolicy& own = Policy(kind);
  const uint64_t quota = QuotaBytes(kind);
  // What evicting records of class i can free for this record: its records that are not
  // leased, and of another class only what lies above its reserved share.
  auto evictable_bytes = [&](int i) {
    const uint64_t unleased = acct_.bytes[i] - std::min(acct_.bytes[i], leased_bytes_[i]);
    if (i == k) return unleased;
    const uint64_t reserved = ReservedBytes(static_cast<Kind>(i));
    return std::min(unleased, acct_.bytes[i] > reserved ? acct_.bytes[i] - reserved : 0);
  };
  // Whether records of `victim` may be evicted for this record.
  auto may_evict = [&](Kind victim) {
    const ClassPolicy& p = Policy(victim);
    return p.evictable && (!p.evicted_by_own_kind_only || victim == kind);
  };
  // Decide first, evict second: nothing is evicted for a record that is then refused.
  if (quota > 0 && acct_.bytes[k] + bytes > quota) {
    if (!own.evictable || bytes > quota || acct_.bytes[k] + bytes - evictable_bytes(k) > quota) {
      return false;
    }
  }
  // Other classes' unused reservations count as taken (FORMAT.md section 3).
  const uint64_t total = TotalBytes() + HoldBackLocked(kind);
  if (total + bytes > options_.max_bytes) {
    uint64_t can_free = 0;
    for (int r = kNumKinds - 1; r >= Rank(kind); --r) {
      Kind victim = options_.priority[static_cast<size_t>(r)];
      if (may_evict(victim)) can_free += evictable_bytes(static_cast<int>(victim));
    }
    if (bytes > options_.max_bytes ||
        total + bytes - std::min(total, can_free) > options_.max_bytes) {
      return false;
    }
  }
  uint64_t freed = 0;
  while (quota > 0 && acct_.bytes[k] + bytes > quota) {
    OUTPOST_ASSIGN_OR_RETURN(bool ok, EvictOldestLocked(kind, &freed));
    if (!ok) return false;
  }
  while (TotalBytes() + HoldBackLocked(kind) + bytes > options_.max_bytes) {
    bool evicted = false;
    for (int r = kNumKinds - 1; r >= Rank(kind) && !evicted; --r) {
      Kind victim = options_.priority[static_cast<size_t>(r)];
      if (!may_evict(victim) || evictable_bytes(static_cast<int>(victim)) == 0) continue;
      OUTPOST_ASSIGN_OR_RETURN(evicted, EvictOldestLocked(victim, &freed));
    }
    if (!evicted) return false;
  }
  return true;
}

Result<bool> Outbox::EvictOldestLocked(Kind victim, uint64_t* freed) {
  OUTPOST_ASSIGN_OR_RETURN(sqlite::Statement * s, StmtLocked(kOldestOfKind));
  s->BindInt(1, static_cast<int>(victim));
  int64_t id = -1;
  uint64_t bytes = 0;
  int64_t rule_slot = 0;
  while (true) {
    OUTPOST_ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) break;
    int64_t candidate = s->ColumnInt(0);
    if (leased_ids_.count(candidate)) continue;  // on its way to the hub
    id = candidate;
    bytes = static_cast<uint64_t>(s->ColumnInt(1)) + kEnvelopeCharge;
    rule_slot = s->ColumnIsNull(2) ? 0 : s->ColumnInt(2);
    break;
  }
  s->Reset();
  if (id < 0) return false;
  OUTPOST_ASSIGN_OR_RETURN(sqlite::Statement * del, StmtLocked(kDeleteById));
  del->BindInt(1, id);
  OUTPOST_RETURN_IF_ERROR(del->Run());
  int i = static_cast<int>(victim);
  acct_.records[i] -= std::min<uint64_t>(acct_.records[i], 1);
  acct_.bytes[i] -= std::min(acct_.bytes[i], bytes);
  evicted_[i] += 1;
  evicted_bytes_[i] += bytes;
  *freed += bytes;
  // Per rule too (FORMAT.md section 11); the batch's class count opens the window.
  auto slot = rule_slot > 0 ? slot_keys_.find(rule_slot) : slot_keys_.end();
  if (slot != slot_keys_.end()) {
    counter_add_["rule.evicted." + slot->second] += 1;
    counter_add_["window.rule.evicted." + slot->second] += 1;
  }
  return true;
}

// ---------------------------------------------------------------------------------------
// Reading, quarantine

Result<Record> Outbox::DecodeLocked(const RowView& row, std::string* reason) const {
  if (!KnownKind(row.kind)) {
    *reason = "unknown kind " + std::to_string(row.kind);
    return DataLossError(*reason);
  }
  std::string header = EnvelopeHeader(options_.site_id, options_.node_id, row.stream, row.seq,
                                      static_cast<uint8_t>(row.kind), row.created_ms);
  if (RecordChecksum(header, row.payload) != row.checksum) {
    *reason = "checksum mismatch";
    return DataLossError(*reason);
  }
  Record r{.stream = row.stream,
           .seq = row.seq,
           .kind = static_cast<Kind>(row.kind),
           .created_ms = row.created_ms};
  if (cipher_) {
    Result<std::string> plain = cipher_->Open(RecordAad(header), row.payload);
    if (!plain.ok()) {
      *reason = "decryption failed";
      return DataLossError(*reason);
    }
    r.payload = std::move(plain).value();
  } else {
    r.payload = row.payload;
  }
  return r;
}

Status Outbox::QuarantineLocked(const std::vector<std::pair<RowView, std::string>>& bad) {
  if (bad.empty()) return Status::Ok();
  int64_t now_ms = UnixMillis(clock_->Now());
  OUTPOST_RETURN_IF_ERROR(ReserveSealsLocked(1));
  Status s = [&]() -> Status {
    OUTPOST_RETURN_IF_ERROR(BeginLocked());
    std::map<std::string, uint64_t> reasons;
    for (const auto& [row, reason] : bad) {
      OUTPOST_ASSIGN_OR_RETURN(sqlite::Statement * q, StmtLocked(kInsertQuarantine));
      q->BindText(1, row.stream);
      q->BindInt(2, static_cast<int64_t>(row.seq));
      q->BindInt(3, row.kind);
      q->BindInt(4, row.created_ms);
      q->BindInt(5, static_cast<int64_t>(row.payload.size()));
      q->BindText(6, reason);
      q->BindInt(7, now_ms);
      OUTPOST_RETURN_IF_ERROR(q->Run());
      OUTPOST_ASSIGN_OR_RETURN(sqlite::Statement * del, StmtLocked(kDeleteById));
      del->BindInt(1, row.id);
      OUTPOST_RETURN_IF_ERROR(del->Run());
      if (db_->Changes() == 1) {
        int i = KindIndex(row.kind);
        uint64_t bytes = ChargedBytes(row.stream.size(), row.payload.size());
        acct_.records[i] -= std::min<uint64_t>(acct_.records[i], 1);
        acct_.bytes[i] -= std::min(acct_.bytes[i], bytes);
        if (i != 0) {
          counter_add_["quarantined_records." + std::string(KindName(static_cast<Kind>(i)))] += 1;
        }
      }
      reasons[reason] += 1;
    }
    OUTPOST_RETURN_IF_ERROR(
        BumpCounterLocked("quarantined_records", static_cast<int64_t>(bad.size())));
    std::string json =
        "{\"type\":\"quarantine\",\"records\":" + std::to_string(bad.size()) + ",\"reasons\":{";
    bool first = true;
    for (const auto& [reason, n] : reasons) {
      if (!first) json += ",";
      first = false;
      json += JsonString(reason) + ":" + std::to_string(n);
    }
    json += "}}";
    // Within the event class's reserved share, like every outbox event (FORMAT.md section 9).
    const uint64_t stored = json.size() + (cipher_ ? RecordCipher::kOverhead : 0);
    if (OwnEventFitsLocked(ChargedBytes(kEventStream.size(), stored))) {
      OUTPOST_RETURN_IF_ERROR(WriteEventLocked(json, now_ms));
    }
    return CommitLocked();
  }();
  if (!s.ok()) {
    bool fatal = s.code() != StatusCode::kResourceExhausted;
    RollbackLocked(fatal);
    return CheckLocked(s);
  }
  for (const auto& [row, reason] : bad) {
    auto it = leased_ids_.find(row.id);
    if (it != leased_ids_.end()) {
      UnmarkLeasedLocked(
          LeaseEntry{row.id, row.stream, row.seq, static_cast<Kind>(KindIndex(row.kind)),
                     ChargedBytes(row.stream.size(), row.payload.size())},
          0);
    }
  }
  OUTPOST_LOG(kError) << "outbox records failed their checks and were quarantined"
                      << Field("records", bad.size()) << Field("path", options_.path);
  return Status::Ok();
}

Result<LeasedBatch> Outbox::Lease(const LeaseOptions& options) {
  std::lock_guard<std::mutex> l(db_mu_);
  if (!failed_.ok()) return failed_;
  ExpireLeasesLocked();
  LeasedBatch batch;
  LeaseInfo info;
  std::vector<std::pair<RowView, std::string>> bad;
  uint64_t bytes = 0;
  bool full = options.max_records == 0;
  for (Kind kind : options_.priority) {
    if (full) break;
    OUTPOST_ASSIGN_OR_RETURN(sqlite::Statement * s, StmtLocked(kRowsOfKind));
    s->BindInt(1, static_cast<int>(kind));
    s->BindInt(2, std::numeric_limits<int64_t>::min());
    while (!full) {
      Result<bool> row = s->Step();
      if (!row.ok()) return CheckLocked(row.status());
      if (!*row) break;
      int64_t id = s->ColumnInt(0);
      if (leased_ids_.count(id)) continue;
      RowView v = ReadRow(*s);
      std::string reason;
      Result<Record> rec = DecodeLocked(v, &reason);
      if (!rec.ok()) {
        bad.emplace_back(std::move(v), reason);
        continue;
      }
      if (!batch.records.empty() && bytes + rec->payload.size() > options.max_bytes) {
        full = true;
        break;
      }
      bytes += rec->payload.size();
      info.entries.push_back(
          LeaseEntry{v.id, v.stream, v.seq, kind, ChargedBytes(v.stream.size(), v.payload.size())});
      batch.records.push_back(std::move(rec).value());
      if (batch.records.size() >= options.max_records) full = true;
    }
    s->Reset();
  }
  OUTPOST_RETURN_IF_ERROR(QuarantineLocked(bad));
  if (batch.records.empty()) return batch;
  batch.lease_id = next_lease_id_++;
  info.expires = clock_->Monotonic() + options.duration;
  batch.expires = info.expires;
  for (const LeaseEntry& e : info.entries) MarkLeasedLocked(e, batch.lease_id);
  leases_.emplace(batch.lease_id, std::move(info));
  return batch;
}

Status Outbox::DeleteLeaseEntriesLocked(const std::vector<LeaseEntry>& entries,
                                        Disposal disposal) {
  std::vector<const LeaseEntry*> deleted;
  const std::string counter =
      disposal == Disposal::kWithheld ? "withheld_records." : "delivered_records.";
  Status s = [&]() -> Status {
    OUTPOST_RETURN_IF_ERROR(BeginLocked());
    for (const LeaseEntry& e : entries) {
      OUTPOST_ASSIGN_OR_RETURN(sqlite::Statement * del, StmtLocked(kDeleteLeased));
      del->BindInt(1, e.id);
      del->BindText(2, e.stream);
      del->BindInt(3, static_cast<int64_t>(e.seq));
      OUTPOST_RETURN_IF_ERROR(del->Run());
      if (db_->Changes() == 1) {
        int i = static_cast<int>(e.kind);
        acct_.records[i] -= std::min<uint64_t>(acct_.records[i], 1);
        acct_.bytes[i] -= std::min(acct_.bytes[i], e.bytes);
        if (i != 0) counter_add_[counter + std::string(KindName(e.kind))] += 1;
        deleted.push_back(&e);
      }
    }
    return CommitLocked();
  }();
  if (!s.ok()) {
    RollbackLocked(s.code() != StatusCode::kResourceExhausted);
    return CheckLocked(s);
  }
  for (const LeaseEntry* e : deleted) NoteDrainLocked(e->kind, e->bytes);
  return Status::Ok();
}

Status Outbox::Ack(uint64_t lease_id) {
  std::lock_guard<std::mutex> l(db_mu_);
  if (!failed_.ok()) return failed_;
  auto it = leases_.find(lease_id);
  if (it == leases_.end()) {
    return NotFoundError("lease " + std::to_string(lease_id) +
                         " is not known: acknowledged or released already, or issued before "
                         "a restart");
  }
  OUTPOST_RETURN_IF_ERROR(DeleteLeaseEntriesLocked(it->second.entries, Disposal::kDelivered));
  for (const LeaseEntry& e : it->second.entries) UnmarkLeasedLocked(e, lease_id);
  leases_.erase(it);
  return Status::Ok();
}

Status Outbox::Release(uint64_t lease_id) {
  std::lock_guard<std::mutex> l(db_mu_);
  auto it = leases_.find(lease_id);
  if (it == leases_.end()) {
    return NotFoundError("lease " + std::to_string(lease_id) + " is not known");
  }
  for (const LeaseEntry& e : it->second.entries) UnmarkLeasedLocked(e, lease_id);
  leases_.erase(it);
  return Status::Ok();
}

Status Outbox::Delete(std::span<const RecordKey> keys, Disposal disposal) {
  std::lock_guard<std::mutex> l(db_mu_);
  if (!failed_.ok()) return failed_;
  const std::string counter =
      disposal == Disposal::kWithheld ? "withheld_records." : "delivered_records.";
  std::vector<LeaseEntry> deleted;
  Status s = [&]() -> Status {
    OUTPOST_RETURN_IF_ERROR(BeginLocked());
    for (const RecordKey& key : keys) {
      OUTPOST_ASSIGN_OR_RETURN(sqlite::Statement * del, StmtLocked(kDeleteByKey));
      del->BindText(1, key.stream);
      del->BindInt(2, static_cast<int64_t>(key.seq));
      OUTPOST_ASSIGN_OR_RETURN(bool row, del->Step());
      if (row) {
        int i = KindIndex(del->ColumnInt(1));
        uint64_t bytes = static_cast<uint64_t>(del->ColumnInt(2)) + kEnvelopeCharge;
        deleted.push_back(
            LeaseEntry{del->ColumnInt(0), key.stream, key.seq, static_cast<Kind>(i), bytes});
        acct_.records[i] -= std::min<uint64_t>(acct_.records[i], 1);
        acct_.bytes[i] -= std::min(acct_.bytes[i], bytes);
        if (i != 0) counter_add_[counter + std::string(KindName(static_cast<Kind>(i)))] += 1;
        OUTPOST_ASSIGN_OR_RETURN(row, del->Step());  // finish the statement
      }
      del->Reset();
    }
    return CommitLocked();
  }();
  if (!s.ok()) {
    RollbackLocked(s.code() != StatusCode::kResourceExhausted);
    return CheckLocked(s);
  }
  for (const LeaseEntry& e : deleted) {
    UnmarkLeasedLocked(e, 0);
    NoteDrainLocked(e.kind, e.bytes);
  }
  return Status::Ok();
}

Result<std::vector<Record>> Outbox::Query(const QueryOptions& options) {
  std::lock_guard<std::mutex> l(db_mu_);
  if (!failed_.ok()) return failed_;
  size_t limit = std::min<size_t>(options.limit, 10000);
  struct Hit {
    int64_t created_ms;
    int64_t id;
    Record record;
  };
  std::vector<Hit> hits;
  std::vector<std::pair<RowView, std::string>> bad;
  for (Kind kind : kAllKinds) {
    if (options.kind && *options.kind != kind) continue;
    OUTPOST_ASSIGN_OR_RETURN(sqlite::Statement * s, StmtLocked(kRowsOfKind));
    s->BindInt(1, static_cast<int>(kind));
    s->BindInt(2, options.since_ms);
    size_t taken = 0;
    while (taken < limit) {
      Result<bool> row = s->Step();
      if (!row.ok()) return CheckLocked(row.status());
      if (!*row) break;
      RowView v = ReadRow(*s);
      std::string reason;
      Result<Record> rec = DecodeLocked(v, &reason);
      if (!rec.ok()) {
        bad.emplace_back(std::move(v), reason);
        continue;
      }
      hits.push_back(Hit{v.created_ms, v.id, std::move(rec).value()});
      ++taken;
    }
    s->Reset();
  }
  OUTPOST_RETURN_IF_ERROR(QuarantineLocked(bad));
  std::sort(hits.begin(), hits.end(), [](const Hit& a, const Hit& b) {
    return a.created_ms != b.created_ms ? a.created_ms < b.created_ms : a.id < b.id;
  });
  std::vector<Record> out;
  for (size_t i = 0; i < hits.size() && i < limit; ++i) out.push_back(std::move(hits[i].record));
  return out;
}

Result<ScrubReport> Outbox::Scrub() {
  ScrubReport report;
  int64_t after = 0;
  while (true) {
    std::lock_guard<std::mutex> l(db_mu_);  // released between chunks so commits go on
    if (!failed_.ok()) return failed_;
    OUTPOST_ASSIGN_OR_RETURN(sqlite::Statement * s, StmtLocked(kRowsAfterId));
    s->BindInt(1, after);
    std::vector<std::pair<RowView, std::string>> bad;
    size_t n = 0;
    while (true) {
      Result<bool> row = s->Step();
      if (!row.ok()) return CheckLocked(row.status());
      if (!*row) break;
      RowView v = ReadRow(*s);
      after = v.id;
      ++n;
      std::string reason;
      if (!DecodeLocked(v, &reason).ok()) bad.emplace_back(std::move(v), reason);
    }
    s->Reset();
    report.records_checked += n;
    report.quarantined += bad.size();
    OUTPOST_RETURN_IF_ERROR(QuarantineLocked(bad));
    if (n == 0) break;
  }
  return report;
}

// ---------------------------------------------------------------------------------------
// Stats

std::string AccountJson(const OutboxStats& stats) {
  std::string json = "{\"since_ms\":" + std::to_string(stats.account_since_ms) + ",\"classes\":{";
  bool first = true;
  for (const ClassStats& c : stats.classes) {
    if (!first) json += ",";
    first = false;
    json += JsonString(KindName(c.kind)) + ":{\"raised\":" + std::to_string(c.raised_records) +
            ",\"held\":" + std::to_string(c.records) +
            ",\"delivered\":" + std::to_string(c.delivered_records) +
            ",\"withheld\":" + std::to_string(c.withheld_records) +
            ",\"evicted\":" + std::to_string(c.evicted_records) +
            ",\"refused\":" + std::to_string(c.refused_records) +
            ",\"sampled_out\":" + std::to_string(c.sampled_out_records) +
            ",\"quarantined\":" + std::to_string(c.quarantined_records) + "}";
  }
  json += "},\"rules\":[";
  first = true;
  for (const RuleStats& r : stats.rules) {
    if (!first) json += ",";
    first = false;
    json += "{\"kind\":" + JsonString(KindName(r.kind)) + ",\"stream\":" + JsonString(r.stream) +
            ",\"rule\":" + JsonString(r.rule) + ",\"raised\":" + std::to_string(r.raised_records) +
            ",\"refused\":" + std::to_string(r.refused_records) +
            ",\"sampled_out\":" + std::to_string(r.sampled_out_records) +
            ",\"evicted\":" + std::to_string(r.evicted_records) +
            ",\"window_raised\":" + std::to_string(r.window_raised) +
            ",\"window_kept\":" + std::to_string(r.window_kept) +
            ",\"window_sampled_out\":" + std::to_string(r.window_sampled_out) +
            ",\"window_evicted\":" + std::to_string(r.window_evicted);
    if (r.storm_from_ms && r.storm_to_ms) {
      json += ",\"storm_from_ms\":" + std::to_string(*r.storm_from_ms) +
              ",\"storm_to_ms\":" + std::to_string(*r.storm_to_ms);
    }
    json += "}";
  }
  json += "]}";
  return json;
}

namespace {

// The account fields of one class from the counters (FORMAT.md section 11).
void FillAccount(std::map<std::string, int64_t>& counters, ClassStats* c) {
  const std::string name(KindName(c->kind));
  auto get = [&](const char* field) {
    return static_cast<uint64_t>(counters[std::string(field) + "." + name]);
  };
  c->evicted_records = get("evicted_records");
  c->evicted_bytes = get("evicted_bytes");
  c->raised_records = get("raised_records");
  c->delivered_records = get("delivered_records");
  c->withheld_records = get("withheld_records");
  c->refused_records = get("refused_records");
  c->sampled_out_records = get("sampled_out_records");
  c->quarantined_records = get("quarantined_records");
}

}  // namespace

std::string_view AutonomyBasisName(AutonomyBasis basis) {
  switch (basis) {
    case AutonomyBasis::kNotEnoughHistory:
      return "not_enough_history";
    case AutonomyBasis::kIdle:
      return "idle";
    case AutonomyBasis::kDraining:
      return "draining";
    case AutonomyBasis::kEstimated:
      return "estimated";
  }
  return "not_enough_history";
}

Result<OutboxStats> Outbox::Stats() {
  std::lock_guard<std::mutex> l(db_mu_);
  OutboxStats st;
  st.site_id = options_.site_id;
  st.node_id = options_.node_id;
  st.max_bytes = options_.max_bytes;
  st.failed = !failed_.ok();
  st.failure = std::string(failed_.message());
  st.rejected_records = rejected_;
  st.commits = commits_;
  st.committed_records = committed_records_;
  if (st.failed) return st;
  ExpireLeasesLocked();
  for (const auto& [id, lease] : leases_) {
    if (!lease.expired) ++st.active_leases;
  }
  st.leased_records = leased_ids_.size();

  // Rates over the observed part of the window.
  Clock::MonoTime now = clock_->Monotonic();
  int64_t current = (now - opened_at_) / kBucket;
  auto observed = std::min<std::chrono::nanoseconds>(
      now - opened_at_, std::chrono::duration_cast<std::chrono::nanoseconds>(options_.rate_window));
  double seconds = std::max(1.0, std::chrono::duration<double>(observed).count());
  st.rate_window = std::chrono::duration_cast<std::chrono::seconds>(observed);
  std::array<uint64_t, kNumKinds + 1> bytes_in_window{};
  std::array<double, kNumKinds + 1> drained_in_window{};
  uint64_t records_in_window = 0;
  for (const Bucket& b : buckets_) {
    if (b.index < 0 || b.index <= current - static_cast<int64_t>(buckets_.size())) continue;
    records_in_window += b.records;
    for (size_t i = 0; i < b.bytes.size(); ++i) {
      bytes_in_window[i] += b.bytes[i];
      drained_in_window[i] += static_cast<double>(b.drained[i]);
    }
  }
  uint64_t total_in_window = 0;
  double drained_total = 0;
  for (uint64_t b : bytes_in_window) total_in_window += b;
  for (double d : drained_in_window) drained_total += d;
  st.ingest_records_per_s = static_cast<double>(records_in_window) / seconds;
  st.ingest_bytes_per_s = static_cast<double>(total_in_window) / seconds;
  st.drain_bytes_per_s = drained_total / seconds;

  // Counters over the file's life.
  Result<sqlite::Statement*> all = StmtLocked(kAllCounters);
  if (!all.ok()) return CheckLocked(all.status());
  Result<std::map<std::string, int64_t>> read = ReadCounters(**all);
  if (!read.ok()) return CheckLocked(read.status());
  std::map<std::string, int64_t> counters = std::move(read).value();
  st.quarantined_records = static_cast<uint64_t>(counters["quarantined_records"]);
  st.account_since_ms = counters["account_since_ms"];
  st.rules = RulesFromCounters(counters);

  std::optional<int64_t> oldest;
  std::optional<double> autonomy_s;
  const double per_day = 86400.0;
  for (Kind kind : options_.priority) {
    int i = static_cast<int>(kind);
    ClassStats c;
    c.kind = kind;
    c.records = acct_.records[i];
    c.bytes = acct_.bytes[i];
    c.quota_bytes = QuotaBytes(kind);
    c.reserved_bytes = ReservedBytes(kind);
    FillAccount(counters, &c);
    c.ingest_bytes_per_s = static_cast<double>(bytes_in_window[i]) / seconds;
    const double net = static_cast<double>(bytes_in_window[i]) - drained_in_window[i];
    if (c.records > 0) {
      OUTPOST_ASSIGN_OR_RETURN(sqlite::Statement * s, StmtLocked(kOldestCreated));
      s->BindInt(1, i);
      Result<bool> row = s->Step();
      if (!row.ok()) return CheckLocked(row.status());
      if (*row && !s->ColumnIsNull(0)) {
        c.oldest_created_ms = s->ColumnInt(0);
        if (!oldest || *c.oldest_created_ms < *oldest) oldest = c.oldest_created_ms;
      }
      s->Reset();
    }
    if (c.quota_bytes > 0 && net > 0) {
      double left = c.quota_bytes > c.bytes ? static_cast<double>(c.quota_bytes - c.bytes) : 0;
      double t = left / (net / seconds);
      if (!autonomy_s || t < *autonomy_s) autonomy_s = t;
    }
    st.records += c.records;
    st.bytes += c.bytes;
    st.classes.push_back(std::move(c));
  }
  st.records += acct_.records[0];
  st.bytes += acct_.bytes[0];
  // Honest autonomy: growth net of what is drained, over a whole rate window, never a burst.
  const double net_total = st.ingest_bytes_per_s - st.drain_bytes_per_s;
  if (net_total > 0) {
    double left = st.max_bytes > st.bytes ? static_cast<double>(st.max_bytes - st.bytes) : 0;
    double t = left / net_total;
    if (!autonomy_s || t < *autonomy_s) autonomy_s = t;
  }
  if (now - opened_at_ < options_.rate_window) {
    st.autonomy_basis = AutonomyBasis::kNotEnoughHistory;
  } else if (st.ingest_bytes_per_s <= 0) {
    st.autonomy_basis = AutonomyBasis::kIdle;
  } else if (net_total <= 0 || !autonomy_s) {
    st.autonomy_basis = AutonomyBasis::kDraining;
  } else {
    st.autonomy_basis = AutonomyBasis::kEstimated;
    st.autonomy_days = *autonomy_s / per_day;
  }
  if (oldest) {
    int64_t age = UnixMillis(clock_->Now()) - *oldest;
    st.oldest_record_age = std::chrono::milliseconds(std::max<int64_t>(0, age));
  }
  return st;
}

}  // namespace outpost::outbox
