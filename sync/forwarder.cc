#include "sync/forwarder.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <utility>

#include "base/file.h"
#include "base/json/json.h"
#include "base/json_writer.h"
#include "base/logging.h"
#include "policy/crypto.h"
#include "sync/audit_cursor.h"
#include "sync/batch.h"

namespace outpost::sync {
namespace {

constexpr char kStateFile[] = "sync_state.json";
constexpr char kAuditFile[] = "audit.log";

}  // namespace

Forwarder::Forwarder(ForwarderOptions options, std::unique_ptr<HubClient> client,
                     std::unique_ptr<policy::AuditLog> audit, std::unique_ptr<AuditCursor> cursor,
                     policy::HashKey key)
    : options_(std::move(options)),
      clock_(options_.clock ? options_.clock : &SystemClock()),
      client_(std::move(client)),
      audit_(std::move(audit)),
      cursor_(std::move(cursor)),
      key_(std::move(key)),
      rng_state_(static_cast<uint64_t>(
                     std::chrono::steady_clock::now().time_since_epoch().count()) |
                 1) {}

Result<std::unique_ptr<Forwarder>> Forwarder::Start(ForwarderOptions options) {
  if (options.outbox == nullptr) return InvalidArgumentError("forwarder: no outbox");
  if (options.policy == nullptr) return InvalidArgumentError("forwarder: no policy");
  if (options.state_dir.empty()) return InvalidArgumentError("forwarder: no state_dir");
  if (options.lease.max_records == 0 || options.backoff_initial.count() <= 0 ||
      options.backoff_max < options.backoff_initial || options.max_audit_bytes_per_batch < 8192) {
    return InvalidArgumentError("forwarder: bad lease, backoff or audit settings");
  }
  OUTPOST_ASSIGN_OR_RETURN(policy::HashKey key, policy::HashKey::Create(options.hash_key_secret));
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<HubClient> client, HubClient::Create(options.https));
  std::string log_path = JoinPath(options.state_dir, kAuditFile);
  Result<std::unique_ptr<policy::AuditLog>> audit = policy::AuditLog::Open(log_path);
  if (!audit.ok()) return audit.status().WithContext("audit log " + log_path);
  auto cursor =
      std::make_unique<AuditCursor>(log_path, JoinPath(options.state_dir, kStateFile));
  cursor->Init();
  std::unique_ptr<Forwarder> f(new Forwarder(std::move(options), std::move(client),
                                             std::move(*audit), std::move(cursor),
                                             std::move(key)));
  if (f->options_.bandwidth == nullptr) {
    f->options_.bandwidth = std::make_shared<Bandwidth>(f->options_.bandwidth_bytes_per_s);
  }
  f->next_status_ = std::chrono::steady_clock::now();
  f->thread_ = std::thread([p = f.get()] { p->Loop(); });
  return f;
}

Forwarder::~Forwarder() { Stop(); }

void Forwarder::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

ForwarderStats Forwarder::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

bool Forwarder::WaitFor(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  return !cv_.wait_for(lock, d, [this] { return stopping_; });
}

void Forwarder::NoteError(const std::string& error) {
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.failures;
  stats_.last_error = error;
}

void Forwarder::Loop() {
  std::chrono::milliseconds backoff = options_.backoff_initial;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    if (options_.status_interval.count() > 0 &&
        std::chrono::steady_clock::now() >= next_status_) {
      ReportStatus();
      next_status_ = std::chrono::steady_clock::now() + options_.status_interval;
    }
    bool failed = false;
    Result<bool> leased = RunOnce(&failed);
    if (!leased.ok()) {
      OUTPOST_LOG(kWarning) << "forwarder" << Field("error", leased.status());
      NoteError(leased.status().ToString());
      failed = true;
    }
    if (failed) {
      // Full jitter over the upper half: uniform in [d/2, d].
      rng_state_ ^= rng_state_ << 13;
      rng_state_ ^= rng_state_ >> 7;
      rng_state_ ^= rng_state_ << 17;
      int64_t d = backoff.count();
      int64_t wait = d / 2 + static_cast<int64_t>(rng_state_ % static_cast<uint64_t>(d / 2 + 1));
      if (!WaitFor(std::chrono::milliseconds(wait))) return;
      backoff = std::min(backoff * 2, options_.backoff_max);
      continue;
    }
    backoff = options_.backoff_initial;
    if (!*leased && !WaitFor(options_.idle_poll)) return;
  }
}

Result<bool> Forwarder::RunOnce(bool* failed) {
  OUTPOST_ASSIGN_OR_RETURN(outbox::LeasedBatch lease, options_.outbox->Lease(options_.lease));
  if (lease.records.empty()) return false;
  const outbox::Outbox& box = *options_.outbox;
  const int64_t now_ms = UnixMillis(clock_->Now());

  // Decide every record, and make the decisions durable before anything leaves.
  std::vector<policy::AuditEntry> entries;
  entries.reserve(lease.records.size());
  std::vector<outbox::RecordKey> done;
  std::vector<outbox::RecordKey> withheld_keys;  // deleted and counted as withheld
  uint64_t withheld = 0;
  // stream -> (records, their outgoing payloads), in seq order.
  std::map<std::string, std::pair<std::vector<const outbox::Record*>, std::vector<std::string>>>
      groups;
  std::vector<const outbox::Record*> sorted;
  for (const outbox::Record& r : lease.records) sorted.push_back(&r);
  std::sort(sorted.begin(), sorted.end(), [](const outbox::Record* a, const outbox::Record* b) {
    return std::tie(a->stream, a->seq) < std::tie(b->stream, b->seq);
  });
  for (const outbox::Record* r : sorted) {
    policy::RecordView view{.kind = outbox::KindName(r->kind), .site = box.site_id(),
                            .node = box.node_id(), .stream = r->stream, .seq = r->seq,
                            .payload = r->payload};
    policy::Decision d = policy::Apply(*options_.policy, key_, view);
    entries.push_back(policy::MakeAuditEntry(*options_.policy, view, d, now_ms));
    if (d.allowed()) {
      auto& g = groups[r->stream];
      g.first.push_back(r);
      g.second.push_back(std::move(d.payload));
    } else {
      withheld_keys.push_back({r->stream, r->seq});
      ++withheld;
    }
  }
  Status appended = audit_->Append(entries);
  if (!appended.ok()) {
    (void)options_.outbox->Release(lease.lease_id);
    return appended.WithContext("audit log");
  }

  bool set_aside = false;
  for (auto& [stream, group] : groups) {
    Upload u = UploadGroup(stream, group.first, group.second);
    if (u == Upload::kAcked) {
      for (const outbox::Record* r : group.first) done.push_back({r->stream, r->seq});
    } else if (u == Upload::kSetAside) {
      set_aside = true;
    } else {
      *failed = true;
      break;
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.records_withheld += withheld;
  }
  // Withheld records leave the outbox as such, in its account (outbox/FORMAT.md section 11).
  if (!withheld_keys.empty()) {
    OUTPOST_RETURN_IF_ERROR(options_.outbox->Delete(withheld_keys, outbox::Disposal::kWithheld));
  }
  if (!*failed && !set_aside) {
    OUTPOST_RETURN_IF_ERROR(options_.outbox->Ack(lease.lease_id));
    return true;
  }
  if (!done.empty()) OUTPOST_RETURN_IF_ERROR(options_.outbox->Delete(done));
  // Records the hub refused for good stay leased until the lease expires; otherwise the
  // rest returns to the queue now.
  if (!set_aside) OUTPOST_RETURN_IF_ERROR(options_.outbox->Release(lease.lease_id));
  return true;
}

Forwarder::Upload Forwarder::UploadGroup(const std::string& stream,
                                         const std::vector<const outbox::Record*>& records,
                                         const std::vector<std::string>& payloads) {
  const outbox::Outbox& box = *options_.outbox;
  // A lease is bounded by the outbox's lease limits; a stream's records are split so that no
  // batch exceeds the decoder's record limit.
  constexpr size_t kMaxPerBatch = 5000;
  for (size_t begin = 0; begin < records.size(); begin += kMaxPerBatch) {
    size_t end = std::min(records.size(), begin + kMaxPerBatch);
    Batch batch{.site_id = box.site_id(), .node_id = box.node_id(), .stream = stream};
    for (size_t i = begin; i < end; ++i) {
      batch.records.push_back({.seq = records[i]->seq,
                               .kind = static_cast<uint8_t>(records[i]->kind),
                               .created_ms = records[i]->created_ms,
                               .payload = payloads[i]});
    }
    bool retried_gap = false;
    while (true) {
      Result<BatchAudit> segment = cursor_->Segment(options_.max_audit_bytes_per_batch);
      if (!segment.ok()) {
        NoteError(segment.status().ToString());
        return Upload::kFailed;
      }
      batch.audit = *segment;
      Result<std::string> bytes = EncodeBatch(batch);
      if (!bytes.ok()) {
        // A record this codec refuses (e.g. a payload over the batch limit after the
        // policy) can never be sent; it waits for an operator, counted.
        OUTPOST_LOG(kError) << "batch cannot be encoded" << Field("stream", stream)
                            << Field("error", bytes.status());
        std::lock_guard<std::mutex> lock(mu_);
        stats_.records_set_aside += end - begin;
        stats_.last_error = bytes.status().ToString();
        return Upload::kSetAside;
      }
      Throttle(bytes->size());
      {
        std::lock_guard<std::mutex> lock(mu_);
        stats_.bytes_sent += bytes->size();
      }
      Result<http::ClientResponse> r =
          client_->Post("/sync/v1/batches", "application/octet-stream", *bytes);
      if (!r.ok()) {
        NoteError(r.status().ToString());
        OUTPOST_LOG(kDebug) << "upload failed" << Field("error", r.status());
        return Upload::kFailed;
      }
      outpost::json::Parser parser;
      Result<outpost::json::Value> root = parser.Parse(r->body);
      const bool json = root.ok();
      std::string_view reason;
      if (json) reason = (*root)["reason"].GetString().value_or(std::string_view());
      if (r->status == 200) {
        const std::string_view outcome =
            json ? (*root)["outcome"].GetString().value_or(std::string_view()) : std::string_view();
        if (!json || !(*root)["outcome"].is_string() ||
            (outcome != "stored" && outcome != "duplicate")) {
          NoteError("hub answered 200 without an acknowledgement: " + r->body.substr(0, 200));
          return Upload::kFailed;
        }
        std::optional<AuditHead> head = ParseAuditHead(r->body);
        cursor_->Acknowledge(head ? *head : AuditHead{batch.audit->to_seq, batch.audit->to_hash},
                             *batch.audit);
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.batches_acked;
        if (outcome == "duplicate") ++stats_.duplicate_batches;
        stats_.records_acked += end - begin;
        break;
      }
      if (r->status == 409 && reason == "audit_gap" && json && !retried_gap) {
        std::optional<AuditHead> head = ParseAuditHead(r->body);
        if (head && cursor_->Seek(*head)) {
          retried_gap = true;
          continue;
        }
      }
      std::string error = "hub answered " + std::to_string(r->status) + ": " +
                          r->body.substr(0, 300);
      if (r->status == 400 || r->status == 409 || r->status == 413 || r->status == 422) {
        OUTPOST_LOG(kError) << "the hub refused a batch; its records wait for the lease to "
                               "expire"
                            << Field("stream", stream) << Field("status", r->status)
                            << Field("body", r->body.substr(0, 300));
        std::lock_guard<std::mutex> lock(mu_);
        stats_.records_set_aside += end - begin;
        stats_.last_error = error;
        return Upload::kSetAside;
      }
      NoteError(error);
      OUTPOST_LOG(kDebug) << "upload not acknowledged" << Field("error", error);
      return Upload::kFailed;
    }
  }
  return Upload::kAcked;
}

void Forwarder::Throttle(uint64_t bytes) {
  const std::chrono::milliseconds wait = options_.bandwidth->Charge(bytes);
  if (wait.count() > 0) WaitFor(wait);
}

void Forwarder::ReportStatus() {
  Result<outbox::OutboxStats> stats = options_.outbox->Stats();
  if (!stats.ok()) return;
  std::string body;
  JsonWriter w(body);
  w.BeginObject();
  w.Key("site_id");
  w.String(stats->site_id);
  w.Key("node_id");
  w.String(stats->node_id);
  w.Key("reported_ms");
  w.Int(UnixMillis(clock_->Now()));
  w.Key("backlog_records");
  w.Uint(stats->records);
  w.Key("backlog_bytes");
  w.Uint(stats->bytes);
  w.Key("autonomy_days");
  if (stats->autonomy_days) {
    w.Double(*stats->autonomy_days);
  } else {
    w.Null();
  }
  w.Key("autonomy_basis");
  w.String(outbox::AutonomyBasisName(stats->autonomy_basis));
  w.Key("account");
  w.Raw(outbox::AccountJson(*stats));
  w.Key("models");
  w.Raw(options_.models_json ? options_.models_json() : "[]");
  w.EndObject();
  Result<http::ClientResponse> r = client_->Post("/sync/v1/status", "application/json", body);
  if (r.ok() && r->status == 200) {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.status_reports;
  } else {
    OUTPOST_LOG(kDebug) << "status report not delivered"
                        << Field("error", r.ok() ? std::to_string(r->status)
                                                 : r.status().ToString());
  }
}

}  // namespace outpost::sync
