// Outbox: the durable, bounded store-and-forward queue of an edge node (FORMAT.md).
//
// Producers (insight rules, the feedback endpoint) Append records; each call returns only
// once the record is durable — fsynced as part of a group commit shared with the other
// producers queued at that moment — and carries its (site, node, stream, seq) key. The
// forwarder Leases batches by priority and Acks them once the hub has durably stored them;
// only then are they deleted. Local readers Query records and read Stats.
//
//   OUTPOST_ASSIGN_OR_RETURN(auto outbox, outbox::Outbox::Open({
//       .path = "/var/lib/outpost/outbox.db", .site_id = "plant-7", .node_id = "edge-1",
//       .max_bytes = 8ull << 30}));
//   OUTPOST_ASSIGN_OR_RETURN(auto key, outbox->Append({.kind = outbox::Kind::kAnomaly,
//                                                      .stream = "iris", .payload = json}));
//
// Bounds: a total byte bound, optional per-class quotas and reserved shares that other
// classes may not take. When a record does not fit, records of the same or lower priority
// that are evictable are evicted, lowest class first and oldest first within a class; a
// rule that floods its class keeps a reservoir sample per hour (FORMAT.md section 12). When
// nothing may be evicted, Append returns kResourceExhausted and stores nothing. Everything
// raised is accounted for in durable counters (section 11), and what could not be kept is
// reported by at most one summary `event` record per summary interval (section 9).
//
// Failure: an I/O error (failed write, fsync, read) or corruption found while running puts
// the store into a failed state: the commit in flight is answered with the error and every
// later call with kFailedPrecondition. The owner destroys the Outbox and opens it again;
// fsync is never retried (FORMAT.md section 5).
//
// Group commit is leader/follower (as LevelDB's writer queue): the producer at the front of
// the queue commits everything queued behind it in one transaction, then wakes the others;
// there is no thread of the outbox's own.
//
// Thread-safe: every method may be called from any thread. One Outbox per database file per
// process (it is the file's only connection).
#ifndef OUTPOST_OUTBOX_OUTBOX_H_
#define OUTPOST_OUTBOX_OUTBOX_H_

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "base/status.h"

namespace outpost::sqlite {
class Db;
class FileFaults;
class Statement;
}  // namespace outpost::sqlite

namespace outpost::outbox {

class RecordCipher;

// The kinds of record, with their stored codes (FORMAT.md section 3).
enum class Kind : uint8_t {
  kAnomaly = 1,
  kDrift = 2,
  kFeedback = 3,
  kHardExample = 4,
  kAggregate = 5,
  kSample = 6,
  kEvent = 7,
};
inline constexpr int kNumKinds = 7;
inline constexpr std::array<Kind, kNumKinds> kAllKinds = {
    Kind::kAnomaly,   Kind::kDrift,  Kind::kFeedback, Kind::kHardExample,
    Kind::kAggregate, Kind::kSample, Kind::kEvent};

// "anomaly", "drift", "feedback", "hard_example", "aggregate", "sample", "event".
std::string_view KindName(Kind kind);
// The inverse of KindName; InvalidArgument for anything else.
Result<Kind> ParseKind(std::string_view name);

// Highest priority first: event, anomaly, drift, feedback, hard_example, aggregate, sample.
std::vector<Kind> DefaultPriority();

// The key of a record, unique for ever within a site and node.
struct RecordKey {
  std::string stream{};
  uint64_t seq = 0;
  friend bool operator==(const RecordKey&, const RecordKey&) = default;
};

// What a producer appends.
struct NewRecord {
  Kind kind = Kind::kSample;
  // Names the sequence the record is counted in, e.g. the model name. A StreamName
  // (base/names.h) not beginning with "_": those are the outbox's own.
  std::string stream{};
  // Opaque bytes (JSON by convention), at most OutboxOptions::max_payload_bytes.
  std::string payload{};
  // The rule that raised the record, for the per-rule account and storm sampling (FORMAT.md
  // sections 11, 12); stored with the record as its rule's slot, so that its eviction is
  // counted for the rule too. Empty = none named (counted per class only).
  std::string rule{};
};

// Why records are deleted, for the account (FORMAT.md section 11).
enum class Disposal {
  kDelivered,  // the hub holds them
  kWithheld,   // the forwarder's policy withheld them from the hub
};

// A stored record as read back (Lease, Query).
struct Record {
  std::string stream{};
  uint64_t seq = 0;
  Kind kind = Kind::kSample;
  int64_t created_ms = 0;  // Unix milliseconds when the outbox accepted it
  std::string payload{};   // decrypted when the store is encrypted
};

// How one class (kind) is bounded (FORMAT.md section 3, class bounds).
struct ClassPolicy {
  // A quota for this class alone; 0 = none.
  uint64_t max_bytes = 0;
  // A quota for this class alone as a share of OutboxOptions::max_bytes, 0..100; 0 = none.
  // With max_bytes also set, the smaller of the two holds.
  uint32_t max_percent = 0;
  // May be evicted to make room for records of its own or a higher priority.
  bool evictable = false;
  // With evictable: evicted only to make room for records of this same kind (at its quota
  // or at the total bound), never for another class.
  bool evicted_by_own_kind_only = false;
  // A share of OutboxOptions::max_bytes, 0..100, that no other class may take (FORMAT.md
  // section 3, reserved shares). The shares of all classes add up to at most 100.
  uint32_t reserved_percent = 0;
  // Storm sampling (FORMAT.md section 12): per rule and hour the first `storm_first` records
  // are kept; past them, while the class holds at least `storm_percent` of the total bound, a
  // reservoir of `storm_sample` records is kept and the rest counted. storm_first = 0: off.
  uint32_t storm_first = 0;
  uint32_t storm_sample = 0;
  uint32_t storm_percent = 0;
};

// Defaults: sample, aggregate and hard_example are evictable; anomaly, drift and event are
// not (findings are not replaced by newer ones; event may never be, as events are what
// report losses: only the outbox's own summary is superseded by a newer one, FORMAT.md
// section 9). feedback has a quota of 10% of the total bound and is evictable by
// newer feedback only, so that a flood of labels can never refuse or push out anomalies,
// drift or events. aggregate, drift and event have reserved shares of 10%, 5% and 2%;
// anomaly samples storms past 1000 per rule and hour (100 more, at 40% of the bound), and
// hard_example past 100 (20 more, at 20%) (FORMAT.md sections 3 and 12).
std::array<ClassPolicy, kNumKinds> DefaultClassPolicies();

struct OutboxOptions {
  // The database file. Its folder must exist.
  std::string path{};
  // Identity stamped on every record; fixed when the file is created, and a file written
  // for another site or node is refused. A SiteId and a NodeId (base/names.h).
  std::string site_id{};
  std::string node_id{};
  // The total byte bound over stored records (charged as FORMAT.md section 3 says).
  uint64_t max_bytes = uint64_t{1} << 30;
  // Priority among classes, highest first; must list each of the 7 kinds once.
  std::vector<Kind> priority = DefaultPriority();
  // Per-class quotas and eviction, indexed by kind code - 1.
  std::array<ClassPolicy, kNumKinds> classes = DefaultClassPolicies();
  // The largest payload Append accepts (at most 16 MiB).
  size_t max_payload_bytes = size_t{1} << 20;
  // The most streams producers may ever start (the outbox's own "_" streams aside); an
  // Append that would start one more is refused (reason too_many_streams). At least 1.
  size_t max_streams = 1024;
  // Group commit: how long the producer (or AppendAsync's commit thread) that leads a commit
  // waits for more records once the queue holds fewer records than the last batch had. The
  // only wait that uses the real clock: it trades latency for batch size and decides nothing
  // else.
  std::chrono::microseconds max_commit_delay = std::chrono::milliseconds(2);
  // The most records / payload bytes one commit takes from the queue.
  size_t max_batch_records = 4096;
  uint64_t max_batch_bytes = uint64_t{32} << 20;
  // The most AppendAsync calls in flight at once (taken, not yet answered through done),
  // over all producers: a producer past it waits in AppendAsync until one is answered. It
  // bounds the memory the queued records hold. At least 1.
  size_t max_appends_in_flight = 4096;
  // A key file (32 raw bytes or 64 hex characters) to encrypt payloads at rest with
  // AES-256-GCM; empty = no encryption. A file is encrypted or clear for its whole life.
  std::string key_file{};
  // The window over which Stats() measures the ingest rate.
  std::chrono::minutes rate_window = std::chrono::minutes(60);
  // The shortest window one summary record covers (FORMAT.md section 9); > 0.
  std::chrono::milliseconds summary_interval = std::chrono::hours(1);
  // Rules counted by name in the account; later ones are counted as "_other" (>= 1).
  size_t max_tracked_rules = 64;
  // Seeds the storm sampling generator (FORMAT.md section 12).
  uint64_t sample_seed = 0x6f75747073746f72;
  // Time source for created_ms, lease expiry and rates. Null = SystemClock(). Not owned;
  // must outlive the Outbox.
  Clock* clock = nullptr;
  // Test seam: the file layer under SQLite (base/sqlite/file_faults.h). Null in production. Not owned;
  // must outlive the Outbox.
  sqlite::FileFaults* faults = nullptr;
};

struct LeaseOptions {
  // At most this many records and (besides the first record) payload bytes.
  size_t max_records = 1000;
  uint64_t max_bytes = uint64_t{4} << 20;
  // Unacknowledged records return to the queue after this long (on the injected clock).
  std::chrono::milliseconds duration = std::chrono::seconds(60);
};

// Records handed to the forwarder, highest priority first, oldest first within a class.
struct LeasedBatch {
  uint64_t lease_id = 0;  // 0 when `records` is empty (nothing is leased then)
  Clock::MonoTime expires{};
  std::vector<Record> records{};
};

struct QueryOptions {
  std::optional<Kind> kind{};  // empty = every kind
  int64_t since_ms = 0;        // only records created at or after this Unix millisecond
  size_t limit = 100;          // at most this many (capped at 10,000)
};

// Why OutboxStats::autonomy_days has a value or not.
enum class AutonomyBasis {
  kNotEnoughHistory,  // the store has been open for less than one rate window
  kIdle,              // nothing arrived in the window
  kDraining,          // the backlog does not grow: what is delivered keeps up with ingest
  kEstimated,         // autonomy_days holds the estimate
};
// "not_enough_history", "idle", "draining", "estimated".
std::string_view AutonomyBasisName(AutonomyBasis basis);

struct ClassStats {
  Kind kind = Kind::kSample;
  uint64_t records = 0;
  uint64_t bytes = 0;
  uint64_t quota_bytes = 0;                    // 0 = none
  std::optional<int64_t> oldest_created_ms{};  // empty when the class is empty
  uint64_t evicted_records = 0;                // over the file's life
  uint64_t evicted_bytes = 0;
  double ingest_bytes_per_s = 0;  // over the rate window
  uint64_t reserved_bytes = 0;    // the reserved share; 0 = none
  // The account over the file's life (FORMAT.md section 11):
  // raised = records + delivered + withheld + evicted + refused + sampled_out + quarantined.
  uint64_t raised_records = 0;
  uint64_t delivered_records = 0;
  uint64_t withheld_records = 0;
  uint64_t refused_records = 0;
  uint64_t sampled_out_records = 0;
  uint64_t quarantined_records = 0;
};

// The account of one rule (FORMAT.md sections 9, 11, 12).
struct RuleStats {
  Kind kind = Kind::kAnomaly;
  std::string stream{};
  std::string rule{};
  // Over the file's life.
  uint64_t raised_records = 0;
  uint64_t refused_records = 0;
  uint64_t sampled_out_records = 0;
  uint64_t evicted_records = 0;  // stored, then evicted to make room
  // In the summary window not yet reported.
  uint64_t window_raised = 0;
  uint64_t window_kept = 0;
  uint64_t window_sampled_out = 0;
  uint64_t window_evicted = 0;
  std::optional<int64_t> storm_from_ms{};  // first record sampled out in the window
  std::optional<int64_t> storm_to_ms{};    // the last
};

struct OutboxStats {
  std::string site_id{};
  std::string node_id{};
  std::vector<ClassStats> classes{};  // in priority order
  uint64_t records = 0;
  uint64_t bytes = 0;
  uint64_t max_bytes = 0;
  std::optional<std::chrono::milliseconds> oldest_record_age{};  // empty when empty
  double ingest_records_per_s = 0;  // records accepted from producers, over the window
  double ingest_bytes_per_s = 0;
  std::chrono::seconds rate_window{0};  // the part of the window actually observed
  // Bytes deleted because the hub holds them (or policy withheld them), over the window.
  double drain_bytes_per_s = 0;
  // How many days of offline running remain at the current net growth (ingest less drain,
  // over a whole rate window) before the total bound or a class quota forces evictions (or
  // refusals); empty unless autonomy_basis is kEstimated.
  std::optional<double> autonomy_days{};
  AutonomyBasis autonomy_basis = AutonomyBasis::kNotEnoughHistory;
  uint64_t leased_records = 0;
  uint64_t active_leases = 0;
  uint64_t quarantined_records = 0;  // over the file's life
  uint64_t rejected_records = 0;     // Appends refused as full since open
  int64_t account_since_ms = 0;      // when the file's account began
  std::vector<RuleStats> rules{};    // tracked rules, by kind, stream and rule
  uint64_t commits = 0;              // group commits since open
  uint64_t committed_records = 0;    // producer records stored since open
  bool failed = false;
  std::string failure{};  // why, when failed
};

// The account of `stats` as one JSON object (FORMAT.md section 11), as /v1/outbox and the
// node's status report carry it: {"since_ms":N,"classes":{"<kind>":{"raised":..,"held":..,
// "delivered":..,"withheld":..,"evicted":..,"refused":..,"sampled_out":..,"quarantined":..},
// ...},"rules":[{"kind":..,"stream":..,"rule":..,"raised":..,"refused":..,"sampled_out":..,
// "evicted":..,"window_raised":..,"window_kept":..,"window_sampled_out":..,
// "window_evicted":..,"storm_from_ms":..,"storm_to_ms":..},...]} (the storm members only
// when the window has a storm).
std::string AccountJson(const OutboxStats& stats);

// What Scrub() found.
struct ScrubReport {
  uint64_t records_checked = 0;
  uint64_t quarantined = 0;
};

class Outbox {
 public:
  // Opens or creates the store at options.path: checks the file (FORMAT.md section 6),
  // salvages a damaged one (section 8) and loads the byte accounting.
  // Errors: InvalidArgument (options), FailedPrecondition (a newer format, another site or
  // node, encryption mismatch), PermissionDenied (wrong key), DataLoss (damage that a
  // salvage could not get past), Unavailable (I/O).
  static Result<std::unique_ptr<Outbox>> Open(OutboxOptions options);

  // Closes the file. Every call on this Outbox must have returned.
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Stores one record durably and returns its key; blocks until its group commit is on disk.
  //   InvalidArgument     bad stream name, payload too large, or an outbox-only stream;
  //   ResourceExhausted   full: its class quota or the total bound would be exceeded and
  //                       nothing may be evicted, or the disk is full; or its stream is new
  //                       and max_streams streams exist (reason too_many_streams). Nothing
  //                       was stored;
  //   Unavailable         the commit failed with an I/O error; the store is now failed;
  //   DataLoss            corruption found while committing; the store is now failed;
  //   FailedPrecondition  the store failed earlier (reopen it) or is closing.
  // An error means the record is not acknowledged; it may still be on disk after an I/O
  // error (then with a key the caller never saw).
  Result<RecordKey> Append(NewRecord record);

  // Append without waiting for the commit: queues `record` and returns; `done` gets what
  // Append would have returned (the same errors, reasons and messages), after the group
  // commit that holds the record is on disk. So one producer keeps several records in flight
  // and a group commit takes many records of each producer. A record is acknowledged only by
  // done with a key; records of one producer are stored in the order it called AppendAsync.
  //   - A refusal found before queuing (a bad record, a failed or closing store) is passed
  //     to done before AppendAsync returns, on the caller's thread.
  //   - Past options.max_appends_in_flight, AppendAsync waits until one in flight is
  //     answered (it never refuses for that).
  //   - done runs on the outbox's commit thread (or on a thread inside Append that led the
  //     commit), never with a lock of the outbox held. It must be short and must not call
  //     Append or AppendAsync: such a call is refused (FailedPrecondition, reason
  //     append_in_completion) and stores nothing.
  //   - The destructor commits the records still queued, and answers them, before closing.
  void AppendAsync(NewRecord record, std::function<void(Result<RecordKey>)> done);

  // Leases up to options' limits of records that are not leased now. Records that fail
  // their checksum or decryption are quarantined on the way and never returned.
  Result<LeasedBatch> Lease(const LeaseOptions& options);
  // Deletes the records of a lease (the hub has them). Works after the lease expired too.
  // NotFound for a lease this process did not issue or that was acked or released already.
  Status Ack(uint64_t lease_id);
  // Returns a lease's records to the queue now.
  Status Release(uint64_t lease_id);
  // Deletes records by key (e.g. from a hub receipt for an exported file, or records the
  // forwarder's policy withheld); keys that are not stored are ignored. `disposal` says which
  // count of the account they go to.
  Status Delete(std::span<const RecordKey> keys, Disposal disposal = Disposal::kDelivered);

  // Local reads: records oldest first (by created time) that pass their checksum.
  Result<std::vector<Record>> Query(const QueryOptions& options);
  // Counts, bytes, ages, rates and the autonomy estimate.
  Result<OutboxStats> Stats();
  // Reads every record, quarantining those that fail their checksum or decryption.
  Result<ScrubReport> Scrub();

  const std::string& site_id() const { return options_.site_id; }
  const std::string& node_id() const { return options_.node_id; }

 private:
  struct Pending;
  struct LeaseEntry {
    int64_t id;
    std::string stream;
    uint64_t seq;
    Kind kind;
    uint64_t bytes;
  };
  struct LeaseInfo {
    Clock::MonoTime expires;
    bool expired = false;
    std::vector<LeaseEntry> entries;
  };
  struct Accounting {
    std::array<uint64_t, kNumKinds + 1> records{};  // index = kind code; 0 = unknown codes
    std::array<uint64_t, kNumKinds + 1> bytes{};
  };
  struct RowView;  // a row being read (outbox.cc)
  // One rule's storm sampling in the current hour (FORMAT.md section 12); memory only.
  struct StormState {
    int64_t hour = -1;
    uint64_t raised = 0;      // records of the rule raised this hour
    uint64_t storm_seen = 0;  // of those, records past storm_first while in a storm
    std::vector<uint64_t> sample_seqs{};  // the stored sample (seqs of the rule's stream)
  };
  enum class StormStep { kStore, kStoreInSample, kReplace, kDrop };
  static RowView ReadRow(const sqlite::Statement& s);

  explicit Outbox(OutboxOptions options);
  Status Init(std::unique_ptr<sqlite::Db> db, std::unique_ptr<const RecordCipher> cipher);

  // Refusals of `record` that need no commit: a bad record, or a failed store.
  Status CheckNewRecord(const NewRecord& record);
  // Called with queue_mu_ held by l, !committing_ and a queue that is not empty: commits a
  // batch from the front of the queue and answers it; returns with l held again.
  void LeadCommitLocked(std::unique_lock<std::mutex>& l);
  // Wakes whoever leads the next commit: the producer at the front of the queue, or the
  // commit thread when that record is an AppendAsync's.
  void WakeNextLeaderLocked();
  // The commit thread: leads the commits of asynchronous appends until the store closes.
  void CommitThreadLoop();
  // Commits one batch and answers its producers.
  void CommitBatch(std::vector<Pending*>& batch);
  Status CommitBatchLocked(std::vector<Pending*>& batch, int64_t now_ms);

  // A cached prepared statement, reset and ready.
  Result<sqlite::Statement*> StmtLocked(std::string_view sql);
  // Transactions: Begin snapshots the accounting; Commit writes the streams touched;
  // Rollback restores both (and skips SQLite's ROLLBACK after a fatal error).
  Status BeginLocked();
  Status CommitLocked();
  void RollbackLocked(bool fatal);
  // Durably raises the count of seals under the file's data key so that `count` more may be
  // made; ResourceExhausted ("outbox_key_exhausted") past kMaxSealsPerDataKey (FORMAT.md
  // section 7).
  Status ReserveSealsLocked(uint64_t count);
  // The next seq of `stream`, advancing it within the open transaction.
  Result<uint64_t> NextSeqLocked(const std::string& stream);
  // Whether `stream` exists or may be started under max_streams.
  Result<bool> StreamAllowedLocked(const std::string& stream);
  // The quota of `kind` in bytes (ClassPolicy's max_bytes and max_percent); 0 = none.
  uint64_t QuotaBytes(Kind kind) const;
  // rule_slot: the record's rule (FORMAT.md section 11); 0 = none.
  Status InsertLocked(const std::string& stream, uint64_t seq, Kind kind, int64_t created_ms,
                      std::string_view payload, uint64_t* bytes, int64_t rule_slot = 0);
  // Makes room for `bytes` of `kind` by eviction; false (and nothing evicted) when it cannot.
  Result<bool> MakeRoomLocked(Kind kind, uint64_t bytes);
  Result<bool> EvictOldestLocked(Kind victim, uint64_t* freed);
  // Writes an outbox event on "_outbox"; its seq goes to *seq_out when given.
  Status WriteEventLocked(std::string_view json, int64_t now_ms, uint64_t* seq_out = nullptr);
  Status BumpCounterLocked(const std::string& name, int64_t delta);
  uint64_t TotalBytes() const;

  // Reads one stored row into a Record, or says why it must be quarantined.
  Result<Record> DecodeLocked(const RowView& row, std::string* reason) const;
  Status QuarantineLocked(const std::vector<std::pair<RowView, std::string>>& bad);
  void ExpireLeasesLocked();
  void MarkLeasedLocked(const LeaseEntry& e, uint64_t lease_id);
  // Forgets that e is leased; with lease_id != 0 only when that lease holds it.
  void UnmarkLeasedLocked(const LeaseEntry& e, uint64_t lease_id);
  Status DeleteLeaseEntriesLocked(const std::vector<LeaseEntry>& entries, Disposal disposal);

  // --- The account (FORMAT.md sections 9, 11, 12); inside the open transaction. ---
  // Starts the account of a file written before it.
  Status StartAccountLocked();
  // The counter key of a record's rule, "<kind>.<stream>/<rule>" ("_other" past the cap).
  std::string RuleKeyLocked(Kind kind, const std::string& stream, const std::string& rule);
  // The slot stored in records.rule for a rule key, given within the open transaction when new.
  int64_t RuleSlotLocked(const std::string& rule_key);
  // Counts `field` ("raised", "refused", "sampled_out", "kept") for a record's class and rule.
  void CountLocked(std::string_view field, Kind kind, const std::string& rule_key, int64_t now_ms);
  // Counts records that were lost (evicted, refused, sampled out) in the summary window.
  void NoteLossLocked(std::string_view field, Kind kind, uint64_t n, int64_t now_ms);
  void OpenWindowLocked(int64_t now_ms);
  // Counts the refusals of a batch whose transaction failed as a whole, in one of their own.
  void CountBatchRefusedLocked(const std::vector<Pending*>& batch, int64_t now_ms);
  // What storm sampling does with the next record of `rule_key`; *slot is the sample member a
  // kReplace replaces.
  StormStep StormStepLocked(Kind kind, const std::string& rule_key, int64_t now_ms, size_t* slot);
  // Deletes the sample member `seq` of `stream` for a replacement: 1 deleted, 0 gone already
  // (delivered or evicted), -1 leased (kept).
  Result<int> DropSampleMemberLocked(Kind kind, const std::string& stream, uint64_t seq);
  // Stores one producer record of a commit batch, counting it.
  Status AppendOneLocked(Pending& p, int64_t now_ms,
                         std::vector<std::pair<Kind, uint64_t>>* ingested);
  // Writes the counters of the open transaction.
  Status FlushCountersLocked();
  // Writes the summary record when its window has lasted the interval and lost something.
  Status MaybeWriteSummaryLocked(int64_t now_ms);
  Result<std::string> SummaryJsonLocked(int64_t now_ms);
  // Deletes the newest summary record when it is still stored and not leased, and adds its
  // window's counts back into the current window; false when there is none to supersede.
  Result<bool> SupersedeLastSummaryLocked();
  // Whether an outbox event of `bytes` fits the event class's reserved share and the bound.
  bool OwnEventFitsLocked(uint64_t bytes) const;
  // Bytes of other classes' reservations that `kind` may not use now.
  uint64_t HoldBackLocked(Kind kind) const;
  uint64_t ReservedBytes(Kind kind) const;

  // Puts the store into the failed state with `cause` (if not failed already).
  void FailLocked(const Status& cause);
  // Fails the store for every error but ResourceExhausted; returns `s`.
  Status CheckLocked(const Status& s);

  uint64_t ChargedBytes(size_t stream_len, size_t stored_payload_len) const;
  int Rank(Kind kind) const { return rank_[static_cast<int>(kind)]; }
  const ClassPolicy& Policy(Kind kind) const {
    return options_.classes[static_cast<int>(kind) - 1];
  }
  void NoteIngestLocked(Kind kind, uint64_t bytes);
  void NoteDrainLocked(Kind kind, uint64_t bytes);

  OutboxOptions options_;
  Clock* clock_;                           // not owned
  std::array<int, kNumKinds + 1> rank_{};  // kind code -> priority rank (0 = highest)
  Clock::MonoTime opened_at_{};

  // --- The commit queue. ---
  std::mutex queue_mu_;  // guards queue_, committing_, linger_target_, last_batch_size_
  std::condition_variable linger_cv_;  // wakes a lingering leader when the queue reaches its target
  std::deque<std::shared_ptr<Pending>> queue_;  // records waiting, in arrival order
  // A leader is committing a batch taken from queue_.
  bool committing_ = false;
  // The queue length a lingering leader waits for; 0 = none.
  size_t linger_target_ = 0;
  size_t last_batch_size_ = 1;
  // Asynchronous appends (AppendAsync): the thread that commits them (started by the first),
  // what wakes it, how many are in flight, and what wakes a producer waiting for room.
  std::thread commit_thread_;          // guarded by queue_mu_ until joined
  std::condition_variable commit_cv_;  // the commit thread: an async record leads, or closing
  std::condition_variable room_cv_;    // AppendAsync: fewer than max_appends_in_flight
  size_t appends_in_flight_ = 0;       // AppendAsync calls queued or committing
  bool closing_ = false;               // the destructor runs: the commit thread drains, exits

  // --- The database and everything derived from it. ---
  std::atomic<bool> failed_flag_{false};  // failed_ is not OK; read without db_mu_
  mutable std::mutex db_mu_;              // guards every field below
  std::unique_ptr<sqlite::Db> db_;
  std::unique_ptr<const RecordCipher> cipher_;
  std::map<std::string, std::unique_ptr<sqlite::Statement>> statements_;
  Status failed_;  // OK while healthy
  Accounting acct_;
  Accounting acct_snapshot_;                            // acct_ when the open transaction began
  std::array<uint64_t, kNumKinds + 1> leased_bytes_{};  // bytes of live leases, per kind
  // Streams whose next seq the open transaction advanced -> value before it (0 = unknown).
  std::map<std::string, uint64_t> dirty_streams_;
  // Evictions of the commit batch in progress, per kind.
  std::array<uint64_t, kNumKinds + 1> evicted_{};
  std::array<uint64_t, kNumKinds + 1> evicted_bytes_{};
  // Counter changes of the open transaction, written by CommitLocked and dropped by
  // RollbackLocked: added to, lowered to (min), raised to (max), and names removed.
  std::map<std::string, int64_t> counter_add_;
  std::map<std::string, int64_t> counter_min_;
  std::map<std::string, int64_t> counter_max_;
  // The summary window (FORMAT.md section 9): its start (0 = none open), whether it lost a
  // record, and both when the open transaction began.
  int64_t window_from_ms_ = 0;
  int64_t window_from_ms_snapshot_ = 0;
  bool window_lost_ = false;
  bool window_lost_snapshot_ = false;
  // The seq on "_outbox" of the newest summary written (0 = none), and its snapshot.
  uint64_t last_summary_seq_ = 0;
  uint64_t last_summary_seq_snapshot_ = 0;
  // Rule keys counted in the file (at most max_tracked_rules), and those the open
  // transaction added.
  std::set<std::string> tracked_rules_;
  std::vector<std::string> rules_added_;
  // Rule slots (FORMAT.md section 11, records.rule) both ways, and those the open transaction
  // gave; at most one per rule key counted.
  std::map<std::string, int64_t> rule_slots_;
  std::map<int64_t, std::string> slot_keys_;
  std::vector<std::string> slots_added_;
  std::map<std::string, StormState> storms_;  // by rule key
  uint64_t sample_rng_ = 0;
  uint64_t seq_floor_ = 1;
  std::unordered_map<std::string, uint64_t> next_seq_;  // streams seen since open
  uint64_t producer_streams_ = 0;           // streams not beginning with '_' in the file
  uint64_t producer_streams_snapshot_ = 0;  // producer_streams_ when the transaction began
  uint64_t next_seal_ = 1;       // the number of the next payload sealed (FORMAT.md section 7)
  uint64_t seals_reserved_ = 0;  // meta.nonce_reserved: seals counted durably so far
  uint64_t next_lease_id_ = 1;
  std::map<uint64_t, LeaseInfo> leases_;
  std::unordered_map<int64_t, uint64_t> leased_ids_;  // row id -> live lease
  uint64_t rejected_ = 0;
  uint64_t commits_ = 0;
  uint64_t committed_records_ = 0;
  // Ingest rate: records and bytes per kind in 10-second buckets over the window.
  struct Bucket {
    int64_t index = -1;  // which 10 s slot since opened_at_
    uint64_t records = 0;
    std::array<uint64_t, kNumKinds + 1> bytes{};
    std::array<uint64_t, kNumKinds + 1> drained{};  // bytes delivered or withheld
  };
  std::vector<Bucket> buckets_{};
};

}  // namespace outpost::outbox

#endif  // OUTPOST_OUTBOX_OUTBOX_H_
