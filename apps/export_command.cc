// `outpost export --to FILE` and `outpost import-receipt FILE`: records across the air gap on
// removable media (sync/FORMAT.md sections 3 to 6).
//
// export: takes records that wait in the outbox and are not in an export already, applies the
// site's policy (every decision into the audit log; withheld records are deleted, as the
// forwarder does), groups the rest by stream into batches (the first carries the audit lines
// the hub has not acknowledged), writes them into one file signed with site.key, and records
// in <data_dir>/exports.json exactly which records went into which batch. With --encrypt (or
// sync.encrypt_exports in the edge config) the signed file is then sealed to the hub's X25519
// export key (sync/FORMAT.md section 6), read from <credentials>/hub_export.pub (written by
// `outpost enrol`) or --hub-public-key, so a lost medium shows nothing but its size. The
// records stay in the outbox (exported, pending a receipt); a later export skips them. If the
// link comes back first, the forwarder may upload them too: the hub stores them once either
// way.
//
// import-receipt: accepts the hub's receipt only when it is signed by the receipt certificate
// this site pinned at enrolment (<credentials>/hub_receipt.crt, sync/FORMAT.md section 5) and
// names this site's id; a site enrolled before the pin is told how to re-enrol. Then it
// deletes exactly the records recorded for the batch keys it lists, and moves the
// acknowledged audit head forward when the batch that carried the audit lines is among them.
// A refused receipt deletes nothing.
//
// Both need the data_dir to themselves: they take <data_dir>/LOCK as `outpost edge` does and
// refuse to run while an edge holds it (stop the edge, export, start it again).
#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "apps/edge_config.h"
#include "apps/edge_forwarder.h"
#include "base/clock.h"
#include "base/coding.h"
#include "base/crypto/crypto.h"
#include "base/file.h"
#include "base/json/json.h"
#include "base/json_writer.h"
#include "outbox/outbox.h"
#include "policy/audit.h"
#include "policy/evaluate.h"
#include "policy/policy.h"
#include "sync/audit_cursor.h"
#include "sync/batch.h"
#include "sync/crypto.h"
#include "sync/export.h"
#include "sync/receipt.h"

namespace outpost::apps {
namespace {

struct ExportFlags {
  std::string config_file;
  std::string data_dir;
  std::string to;
  uint64_t max_records = 100'000;
  bool encrypt = false;
  std::string hub_public_key;  // empty = <credentials>/hub_export.pub
  std::string receipt;
};

// One batch of an export as <data_dir>/exports.json records it.
struct ExportedBatch {
  sync::BatchKeyFields key;
  std::vector<uint64_t> seqs;
  bool carried_audit = false;
  sync::AuditHead audit_to;
};
// export id (hex) -> its batches.
using ExportLedger = std::map<std::string, std::vector<ExportedBatch>>;

class DataDirLock {
 public:
  static Result<std::unique_ptr<DataDirLock>> Acquire(const std::string& data_dir) {
    std::string path = JoinPath(data_dir, "LOCK");
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoToStatus(errno, "open", path);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int error = errno;
      ::close(fd);
      if (error == EWOULDBLOCK) {
        return FailedPreconditionError("data_dir " + data_dir +
                                       " is in use by a running outpost edge; stop it first");
      }
      return ErrnoToStatus(error, "lock", path);
    }
    return std::unique_ptr<DataDirLock>(new DataDirLock(fd));
  }
  ~DataDirLock() { ::close(fd_); }

 private:
  explicit DataDirLock(int fd) : fd_(fd) {}
  int fd_;
};

Result<EdgeConfig> LoadConfig(const ExportFlags& flags) {
  EdgeConfig config;
  if (!flags.config_file.empty()) {
    OUTPOST_ASSIGN_OR_RETURN(std::string text, ReadFile(flags.config_file, 1 << 20));
    Result<EdgeConfig> parsed = ParseEdgeConfig(text);
    if (!parsed.ok()) return parsed.status().WithContext(flags.config_file);
    config = std::move(*parsed);
  }
  if (!flags.data_dir.empty()) config.data_dir = flags.data_dir;
  if (config.node_id.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof(host) - 1);
    config.node_id = host[0] ? host : "node";
  }
  if (config.sync.policy_file.empty()) {
    return FailedPreconditionError("the edge config has no sync.policy_file: records leave only "
                                   "under a policy");
  }
  return config;
}

Result<std::unique_ptr<outbox::Outbox>> OpenOutbox(const EdgeConfig& config) {
  outbox::OutboxOptions options = config.outbox;
  options.path = JoinPath(config.data_dir, "outbox.db");
  options.site_id = config.site_id;
  options.node_id = config.node_id;
  if (!PathExists(options.path)) return NotFoundError("no outbox at " + options.path);
  Result<std::unique_ptr<outbox::Outbox>> box = outbox::Outbox::Open(options);
  if (!box.ok()) return box.status().WithContext("outbox " + options.path);
  return box;
}

std::string LedgerPath(const EdgeConfig& config) { return JoinPath(config.data_dir, "exports.json"); }

Result<ExportLedger> ReadLedger(const std::string& path) {
  ExportLedger ledger;
  if (!PathExists(path)) return ledger;
  OUTPOST_ASSIGN_OR_RETURN(std::string text, ReadFile(path, uint64_t{1} << 30));
  json::Parser parser;
  auto bad = [&] { return DataLossError(path + " is damaged"); };
  Result<json::Value> root = parser.Parse(text);
  if (!root.ok()) return bad();
  const json::Value exports = (*root)["exports"];
  if (!exports.is_object()) return bad();
  for (json::Member m : exports.Members()) {
    if (!m.value.is_array()) return bad();
    auto& out = ledger[std::string(m.key)];
    for (json::Value b : m.value.Items()) {
      ExportedBatch e;
      Result<std::string_view> node = b["node"].GetString(), stream = b["stream"].GetString(),
                               sha = b["sha256"].GetString();
      Result<uint64_t> first = b["first"].GetUint64(), last = b["last"].GetUint64();
      if (!node.ok() || !stream.ok() || !first.ok() || !last.ok() || !sha.ok() ||
          !b["seqs"].is_array()) {
        return bad();
      }
      e.key.node_id = *node;
      e.key.stream = *stream;
      e.key.first_seq = *first;
      e.key.last_seq = *last;
      e.key.content_sha256 = *sha;
      for (json::Value s : b["seqs"].Items()) {
        Result<uint64_t> seq = s.GetUint64();
        if (!seq.ok()) return bad();
        e.seqs.push_back(*seq);
      }
      Result<uint64_t> audit_seq = b["audit_to_seq"].GetUint64();
      if (audit_seq.ok()) e.audit_to.seq = *audit_seq;
      Result<std::string_view> hash = b["audit_to_hash"].GetString();
      if (audit_seq.ok() && hash.ok()) {
        e.carried_audit = true;
        e.audit_to.hash = *hash;
      }
      out.push_back(std::move(e));
    }
  }
  return ledger;
}

Status WriteLedger(const std::string& path, const ExportLedger& ledger) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Key("exports");
  w.BeginObject();
  for (const auto& [id, batches] : ledger) {
    w.Key(id);
    w.BeginArray();
    for (const ExportedBatch& b : batches) {
      w.BeginObject();
      w.Key("node");
      w.String(b.key.node_id);
      w.Key("stream");
      w.String(b.key.stream);
      w.Key("first");
      w.Uint(b.key.first_seq);
      w.Key("last");
      w.Uint(b.key.last_seq);
      w.Key("sha256");
      w.String(b.key.content_sha256);
      if (b.carried_audit) {
        w.Key("audit_to_seq");
        w.Uint(b.audit_to.seq);
        w.Key("audit_to_hash");
        w.String(b.audit_to.hash);
      }
      w.Key("seqs");
      w.BeginArray();
      for (uint64_t s : b.seqs) w.Uint(s);
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
  w.EndObject();
  out.push_back('\n');
  return WriteFileAtomically(path, out);
}

// The hub's X25519 export key an export is sealed to (sync/FORMAT.md section 6).
struct SealKey {
  std::string pem;
  std::string id_hex;
};

// Reads the key to seal to: --hub-public-key, or <credentials>/hub_export.pub. Refuses a
// missing file, a private key, and anything that is not the hub's X25519 export key.
Result<SealKey> ReadSealKey(const ExportFlags& flags, const std::string& creds) {
  SealKey key;
  const std::string path =
      flags.hub_public_key.empty() ? JoinPath(creds, "hub_export.pub") : flags.hub_public_key;
  if (!PathExists(path)) {
    return ErrorWithReason(
        StatusCode::kFailedPrecondition, "export_no_hub_key",
        "encrypting an export needs the hub's export key, and " + path +
            " does not exist. `outpost enrol` writes it when the hub sends one (enrol again with "
            "--force and a token from `outpost hub site add --reissue`), or pass "
            "--hub-public-key FILE with a copy of the hub's <data_dir>/export.pub");
  }
  OUTPOST_ASSIGN_OR_RETURN(key.pem, ReadFile(path, 1 << 16));
  if (key.pem.find("PRIVATE KEY") != std::string::npos) {
    return ErrorWithReason(StatusCode::kInvalidArgument, "export_no_hub_key",
                           path +
                               " holds a private key; give "
                               "the hub's export.pub (export.key never leaves the hub)");
  }
  Result<std::string> id = sync::ExportKeyIdHex(key.pem);
  if (!id.ok()) {
    return ErrorWithReason(StatusCode::kInvalidArgument, "export_no_hub_key",
                           path +
                               " is not the hub's X25519 "
                               "export key: " +
                               std::string(id.status().message()));
  }
  key.id_hex = std::move(*id);
  return key;
}

// The (stream, seq) of every record in an export that waits for its receipt.
std::set<std::pair<std::string, uint64_t>> PendingRecords(const ExportLedger& ledger) {
  std::set<std::pair<std::string, uint64_t>> pending;
  for (const auto& [id, batches] : ledger) {
    for (const ExportedBatch& b : batches) {
      for (uint64_t s : b.seqs) pending.insert({b.key.stream, s});
    }
  }
  return pending;
}

// The leased records that are in no pending export, at most `max_records`, by stream and seq.
std::vector<const outbox::Record*> TakeRecords(
    const outbox::LeasedBatch& lease, const std::set<std::pair<std::string, uint64_t>>& pending,
    uint64_t max_records) {
  uint64_t taken = 0;
  std::vector<const outbox::Record*> records;
  for (const outbox::Record& r : lease.records) {
    if (pending.count({r.stream, r.seq})) continue;
    if (taken++ >= max_records) break;
    records.push_back(&r);
  }
  std::sort(records.begin(), records.end(), [](const outbox::Record* a, const outbox::Record* b) {
    return std::tie(a->stream, a->seq) < std::tie(b->stream, b->seq);
  });
  return records;
}

// What the policy made of the records taken: an audit entry for each, the keys of those it
// withheld, and the payloads it lets leave, grouped by stream.
struct ScreenedRecords {
  std::vector<policy::AuditEntry> entries;
  std::vector<outbox::RecordKey> withheld;
  std::map<std::string, std::vector<sync::BatchRecord>> groups;
};

ScreenedRecords ScreenRecords(const std::vector<const outbox::Record*>& records,
                              const policy::Policy& pol, const policy::HashKey& hash_key,
                              const EdgeConfig& config, int64_t now_ms) {
  ScreenedRecords out;
  for (const outbox::Record* r : records) {
    policy::RecordView view{.kind = outbox::KindName(r->kind),
                            .site = config.site_id,
                            .node = config.node_id,
                            .stream = r->stream,
                            .seq = r->seq,
                            .payload = r->payload};
    policy::Decision d = policy::Apply(pol, hash_key, view);
    out.entries.push_back(policy::MakeAuditEntry(pol, view, d, now_ms));
    if (!d.allowed()) {
      out.withheld.push_back({r->stream, r->seq});
      continue;
    }
    out.groups[r->stream].push_back({.seq = r->seq,
                                     .kind = static_cast<uint8_t>(r->kind),
                                     .created_ms = r->created_ms,
                                     .payload = std::move(d.payload)});
  }
  return out;
}

// Cuts each stream's records into batches of at most 5000, the first of the export carrying
// the audit lines the hub has not acknowledged, and adds them encoded to `file`; what each
// batch holds, for the ledger. Adds the records packed to `exported_records`.
Result<std::vector<ExportedBatch>> PackBatches(
    std::map<std::string, std::vector<sync::BatchRecord>>& groups, const EdgeConfig& config,
    sync::AuditCursor& cursor, sync::ExportFile& file, uint64_t* exported_records) {
  std::vector<ExportedBatch> exported;
  bool audit_sent = false;
  constexpr size_t kMaxPerBatch = 5000;
  for (auto& [stream, recs] : groups) {
    for (size_t begin = 0; begin < recs.size(); begin += kMaxPerBatch) {
      size_t end = std::min(recs.size(), begin + kMaxPerBatch);
      sync::Batch batch{.site_id = config.site_id, .node_id = config.node_id, .stream = stream};
      batch.records.assign(std::make_move_iterator(recs.begin() + begin),
                           std::make_move_iterator(recs.begin() + end));
      ExportedBatch e;
      if (!audit_sent) {
        OUTPOST_ASSIGN_OR_RETURN(sync::BatchAudit segment, cursor.Segment(size_t{8} << 20));
        e.carried_audit = true;
        e.audit_to = {segment.to_seq, segment.to_hash};
        batch.audit = std::move(segment);
        audit_sent = true;
      }
      Result<std::string> bytes = sync::EncodeBatch(batch);
      if (!bytes.ok()) return bytes.status().WithContext("stream " + stream);
      OUTPOST_ASSIGN_OR_RETURN(e.key, sync::KeyOf(batch));
      for (const auto& r : batch.records) e.seqs.push_back(r.seq);
      *exported_records += batch.records.size();
      file.batches.push_back(std::move(*bytes));
      exported.push_back(std::move(e));
    }
  }
  return exported;
}

Status RunExport(const ExportFlags& flags) {
  OUTPOST_ASSIGN_OR_RETURN(EdgeConfig config, LoadConfig(flags));
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<DataDirLock> lock,
                           DataDirLock::Acquire(config.data_dir));
  const std::string creds = CredentialsDir(config);
  OUTPOST_ASSIGN_OR_RETURN(std::string key_pem, ReadFile(JoinPath(creds, "site.key"), 1 << 16));
  OUTPOST_ASSIGN_OR_RETURN(std::string cert_pem, ReadFile(JoinPath(creds, "site.crt"), 1 << 16));
  // The key to seal to is settled before anything is taken from the outbox.
  const bool encrypt =
      flags.encrypt || config.sync.encrypt_exports || !flags.hub_public_key.empty();
  SealKey seal_key;
  if (encrypt) {
    OUTPOST_ASSIGN_OR_RETURN(seal_key, ReadSealKey(flags, creds));
  }
  OUTPOST_ASSIGN_OR_RETURN(std::string policy_text, ReadFile(config.sync.policy_file, 1 << 20));
  Result<std::shared_ptr<const policy::Policy>> pol = policy::ParsePolicy(policy_text);
  if (!pol.ok()) return pol.status().WithContext(config.sync.policy_file);
  std::string key_path =
      config.sync.hash_key_file.empty() ? JoinPath(creds, "hash.key") : config.sync.hash_key_file;
  OUTPOST_ASSIGN_OR_RETURN(std::string secret, LoadOrCreateHashKey(key_path));
  OUTPOST_ASSIGN_OR_RETURN(policy::HashKey hash_key, policy::HashKey::Create(secret));

  const std::string ledger_path = LedgerPath(config);
  OUTPOST_ASSIGN_OR_RETURN(ExportLedger ledger, ReadLedger(ledger_path));
  const std::set<std::pair<std::string, uint64_t>> pending = PendingRecords(ledger);
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<outbox::Outbox> box, OpenOutbox(config));
  OUTPOST_ASSIGN_OR_RETURN(
      outbox::LeasedBatch lease,
      box->Lease({.max_records = static_cast<size_t>(flags.max_records + pending.size()),
                  .max_bytes = uint64_t{2} << 30,
                  .duration = std::chrono::hours(1)}));
  const int64_t now_ms = UnixMillis(SystemClock().Now());
  ScreenedRecords screened = ScreenRecords(TakeRecords(lease, pending, flags.max_records), **pol,
                                           hash_key, config, now_ms);
  std::string audit_path = JoinPath(config.data_dir, "audit.log");
  {
    Result<std::unique_ptr<policy::AuditLog>> audit = policy::AuditLog::Open(audit_path);
    if (!audit.ok()) return audit.status().WithContext("audit log " + audit_path);
    OUTPOST_RETURN_IF_ERROR((*audit)->Append(screened.entries));
  }
  sync::AuditCursor cursor(audit_path, JoinPath(config.data_dir, "sync_state.json"));
  cursor.Init();

  OUTPOST_ASSIGN_OR_RETURN(std::string export_id, crypto::RandomBytes(16));
  sync::ExportFile file{.cert_pem = cert_pem,
                        .site_id = config.site_id,
                        .node_id = config.node_id,
                        .created_ms = now_ms,
                        .export_id = export_id};
  uint64_t exported_records = 0;
  OUTPOST_ASSIGN_OR_RETURN(std::vector<ExportedBatch> exported,
                           PackBatches(screened.groups, config, cursor, file, &exported_records));
  OUTPOST_ASSIGN_OR_RETURN(std::string signed_file, sync::WriteExport(file, key_pem));
  if (encrypt) {
    OUTPOST_ASSIGN_OR_RETURN(signed_file, sync::SealExport(signed_file, seal_key.pem));
  }
  // The file first, then the ledger: a crash between them only lets these records be
  // exported (or uploaded) again, which the hub stores once.
  OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(flags.to, signed_file).WithContext(flags.to));
  std::string id_hex = HexEncode(export_id);
  if (!exported.empty()) {
    ledger[id_hex] = std::move(exported);
    OUTPOST_RETURN_IF_ERROR(WriteLedger(ledger_path, ledger));
  }
  const std::vector<outbox::RecordKey>& withheld = screened.withheld;
  // Counted as withheld in the outbox's account (outbox/FORMAT.md section 11).
  if (!withheld.empty()) {
    OUTPOST_RETURN_IF_ERROR(box->Delete(withheld, outbox::Disposal::kWithheld));
  }
  (void)box->Release(lease.lease_id);
  std::printf(
      "exported %llu records in %zu batches to %s (export %s); %zu withheld by the "
      "policy\n",
      static_cast<unsigned long long>(exported_records), file.batches.size(), flags.to.c_str(),
      id_hex.c_str(), withheld.size());
  if (encrypt) {
    std::printf("sealed: encrypted to the hub's export key %s\n",
                seal_key.id_hex.substr(0, 16).c_str());
  } else {
    std::printf("not sealed: signed, readable by anyone holding the file (--encrypt seals it)\n");
  }
  return Status();
}

Status RunImportReceipt(const ExportFlags& flags) {
  OUTPOST_ASSIGN_OR_RETURN(EdgeConfig config, LoadConfig(flags));
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<DataDirLock> lock, DataDirLock::Acquire(config.data_dir));
  OUTPOST_ASSIGN_OR_RETURN(sync::ReceiptTrust trust,
                           sync::LoadReceiptTrust(CredentialsDir(config)));
  sync::ReceiptLimits limits;
  OUTPOST_ASSIGN_OR_RETURN(std::string bytes, ReadFile(flags.receipt, limits.max_file_bytes));
  Result<sync::Receipt> receipt = sync::ReadReceipt(bytes, limits);
  if (!receipt.ok()) return receipt.status().WithContext(flags.receipt);
  OUTPOST_RETURN_IF_ERROR(
      sync::VerifyReceiptFor(*receipt, trust, config.site_id).WithContext(flags.receipt));
  const std::string ledger_path = LedgerPath(config);
  OUTPOST_ASSIGN_OR_RETURN(ExportLedger ledger, ReadLedger(ledger_path));
  std::string id_hex = HexEncode(receipt->export_id);
  auto it = ledger.find(id_hex);
  if (it == ledger.end()) {
    return ErrorWithReason(StatusCode::kFailedPrecondition, "receipt_unknown_export",
                           "export " + id_hex +
                               " is not pending at this site (its receipt was imported "
                               "already, or it was written elsewhere)");
  }
  std::vector<outbox::RecordKey> keys;
  std::vector<ExportedBatch> remaining;
  std::optional<sync::AuditHead> audit_head;
  size_t acknowledged = 0;
  for (ExportedBatch& b : it->second) {
    bool listed = false;
    for (const sync::BatchKeyFields& k : receipt->keys) {
      if (k.node_id == b.key.node_id && k.stream == b.key.stream &&
          k.first_seq == b.key.first_seq && k.last_seq == b.key.last_seq &&
          k.content_sha256 == b.key.content_sha256) {
        listed = true;
        break;
      }
    }
    if (!listed) {
      remaining.push_back(std::move(b));
      continue;
    }
    ++acknowledged;
    for (uint64_t s : b.seqs) keys.push_back({b.key.stream, s});
    if (b.carried_audit) audit_head = b.audit_to;
  }
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<outbox::Outbox> box, OpenOutbox(config));
  OUTPOST_RETURN_IF_ERROR(box->Delete(keys));
  if (remaining.empty()) {
    ledger.erase(it);
  } else {
    it->second = std::move(remaining);
  }
  OUTPOST_RETURN_IF_ERROR(WriteLedger(ledger_path, ledger));
  if (audit_head) {
    sync::AuditCursor cursor(JoinPath(config.data_dir, "audit.log"),
                             JoinPath(config.data_dir, "sync_state.json"));
    cursor.Init();
    if (audit_head->seq > cursor.acked().seq) (void)cursor.Seek(*audit_head);
  }
  std::printf("receipt for export %s: %zu of its batches acknowledged, %zu records deleted\n",
              id_hex.c_str(), acknowledged, keys.size());
  return Status();
}

}  // namespace

void AddExportCommands(CLI::App& app, Action& run) {
  auto flags = std::make_shared<ExportFlags>();
  CLI::App* exp = app.add_subcommand(
      "export", "Write records waiting at this site into a signed export file (removable media)");
  exp->add_option("--to", flags->to, "The export file to write")->required();
  exp->add_option("-c,--config", flags->config_file, "Edge config file (YAML)")
      ->check(CLI::ExistingFile);
  exp->add_option("--data-dir", flags->data_dir, "The edge's data_dir (overrides the config)");
  exp->add_option("--max-records", flags->max_records, "At most this many records")
      ->check(CLI::Range(uint64_t{1}, uint64_t{10'000'000}));
  exp->add_flag("--encrypt", flags->encrypt,
                "Seal the file to the hub's export key (also: sync.encrypt_exports: true)");
  exp->add_option("--hub-public-key", flags->hub_public_key,
                  "The hub's export.pub to seal to (implies --encrypt; default "
                  "<credentials>/hub_export.pub, written by `outpost enrol`)")
      ->check(CLI::ExistingFile);
  exp->callback([&run, flags] { run = [flags] { return RunExport(*flags); }; });

  CLI::App* imp = app.add_subcommand(
      "import-receipt", "Delete the exported records that a hub's signed receipt acknowledges");
  imp->add_option("receipt", flags->receipt, "The receipt file")->required();
  imp->add_option("-c,--config", flags->config_file, "Edge config file (YAML)")
      ->check(CLI::ExistingFile);
  imp->add_option("--data-dir", flags->data_dir, "The edge's data_dir (overrides the config)");
  imp->callback([&run, flags] { run = [flags] { return RunImportReceipt(*flags); }; });
}

}  // namespace outpost::apps
