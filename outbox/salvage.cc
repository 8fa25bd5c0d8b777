#include "outbox/salvage.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <map>

#include "base/file.h"
#include "base/logging.h"
#include "base/names.h"
#include "base/sqlite/sqlite.h"
#include "outbox/crypto.h"
#include "outbox/outbox.h"
#include "outbox/schema.h"

namespace outpost::outbox {
namespace {

std::string MarkerPath(const std::string& path) { return path + ".salvage"; }
std::string NewPath(const std::string& path) { return path + ".salvage-new"; }
std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}
std::string BaseOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

Status RenameIfExists(const std::string& from, const std::string& to) {
  if (!PathExists(from)) return Status::Ok();
  if (::rename(from.c_str(), to.c_str()) != 0) return ErrnoToStatus(errno, "cannot rename", from);
  return Status::Ok();
}

Status RemoveIfExists(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoToStatus(errno, "cannot remove", path);
  }
  return Status::Ok();
}

struct Row {
  int64_t id = 0;
  std::string stream;
  int64_t seq = 0;
  int64_t kind = 0;
  int64_t created_ms = 0;
  std::string payload;
  int64_t checksum = 0;
};

Row ReadRowFrom(const sqlite::Statement& s) {
  return Row{s.ColumnInt(0), std::string(s.ColumnText(1)), s.ColumnInt(2), s.ColumnInt(3),
             s.ColumnInt(4), std::string(s.ColumnBlob(5)), s.ColumnInt(6)};
}

constexpr std::string_view kRowCols =
    "SELECT id, stream, seq, kind, created_ms, payload, checksum FROM records ";

// What Build reads from the damaged file's own tables, each part where readable.
struct OldState {
  std::optional<Meta> meta;
  std::map<std::string, int64_t> streams;
  bool streams_ok = false;
  std::map<std::string, int64_t> counters;
};

// Opens the damaged file for reading; null when it is missing or does not open.
std::unique_ptr<sqlite::Db> OpenDamaged(const SalvageContext& ctx, const std::string& from) {
  if (!PathExists(from)) return nullptr;
  Result<std::unique_ptr<sqlite::Db>> opened =
      sqlite::Db::Open(from, sqlite::DbOptions{.create = false, .faults = ctx.faults});
  if (!opened.ok()) return nullptr;
  return std::move(opened).value();
}

// Reads the meta, streams and counters tables of the damaged file.
OldState ReadOldState(sqlite::Db& src) {
  OldState old;
  // writable_schema lets SQLite read a file shorter than its header says (a truncated
  // file); nothing is written through this connection.
  src.Exec("PRAGMA writable_schema=ON; PRAGMA cell_size_check=ON; PRAGMA mmap_size=0")
      .IgnoreError();
  Result<Meta> m = ReadMeta(src);
  if (m.ok()) old.meta = std::move(m).value();
  std::map<std::string, uint64_t> streams;
  old.streams_ok = ReadStreams(src, &streams).ok();
  for (const auto& [stream, next] : streams) old.streams[stream] = static_cast<int64_t>(next);
  if (auto s = src.Prepare("SELECT name, value FROM counters"); s.ok()) {
    while (true) {
      Result<bool> row = (*s)->Step();
      if (!row.ok() || !*row) break;
      old.counters[std::string((*s)->ColumnText(0))] = (*s)->ColumnInt(1);
    }
  }
  return old;
}

// Fills the new file's encryption fields (FORMAT.md section 8) from the old meta, or with
// a fresh salt when the old meta is lost and the store is encrypted (*salt_lost).
Status FillEncryption(const SalvageContext& ctx, const std::optional<Meta>& old_meta, Meta* meta,
                      bool* salt_lost) {
  if (old_meta) {
    meta->created_ms = old_meta->created_ms;
    meta->encryption = old_meta->encryption;
    meta->key_salt = old_meta->key_salt;
    meta->key_check = old_meta->key_check;
    meta->seq_floor = old_meta->seq_floor;
  } else if (ctx.key) {
    // The salt is gone with the meta table: old payloads cannot be decrypted any more.
    *salt_lost = true;
    meta->encryption = "aes-256-gcm";
    OUTPOST_ASSIGN_OR_RETURN(meta->key_salt, RandomBytes(kKeySaltBytes));
    OUTPOST_ASSIGN_OR_RETURN(auto c, RecordCipher::Create(*ctx.key, meta->key_salt));
    meta->key_check = c->key_check();
  }
  return Status::Ok();
}

// The cipher that seals the event record; null when the store is not encrypted or the key
// does not match the file's key check.
std::unique_ptr<const RecordCipher> EventCipher(const SalvageContext& ctx, const Meta& meta) {
  if (meta.encryption == "none" || !ctx.key) return nullptr;
  Result<std::unique_ptr<const RecordCipher>> c = RecordCipher::Create(*ctx.key, meta.key_salt);
  if (c.ok() && (*c)->key_check() == meta.key_check) return std::move(c).value();
  return nullptr;
}

constexpr std::string_view kInsertRecordSql =
    "INSERT INTO records(stream, seq, kind, created_ms, payload, checksum) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6)";

// Writes rows into the new file inside its transaction, and counts what it wrote.
struct Copier {
  const SalvageContext& ctx;
  bool salt_lost = false;
  std::unique_ptr<sqlite::Statement> ins;
  std::unique_ptr<sqlite::Statement> exists;
  std::unique_ptr<sqlite::Statement> quar;
  uint64_t salvaged = 0, quarantined = 0, unreadable = 0;
  std::map<std::string, int64_t> max_seq;
  int64_t max_seq_all = 0;

  Status Prepare(sqlite::Db& dst) {
    OUTPOST_ASSIGN_OR_RETURN(ins, dst.Prepare(kInsertRecordSql));
    OUTPOST_ASSIGN_OR_RETURN(exists,
                             dst.Prepare("SELECT 1 FROM records WHERE stream = ?1 AND seq = ?2"));
    OUTPOST_ASSIGN_OR_RETURN(quar,
                             dst.Prepare("INSERT INTO quarantine(stream, seq, kind, created_ms, "
                                         "payload_bytes, reason, quarantined_ms) "
                                         "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
    return Status::Ok();
  }

  // Records `r` in the quarantine table instead of the records.
  Status Quarantine(const Row& r, std::string_view reason) {
    quar->BindText(1, r.stream);
    quar->BindInt(2, r.seq);
    quar->BindInt(3, r.kind);
    quar->BindInt(4, r.created_ms);
    quar->BindInt(5, static_cast<int64_t>(r.payload.size()));
    quar->BindText(6, reason);
    quar->BindInt(7, ctx.now_ms);
    ++quarantined;
    return quar->Run();
  }

  // Copies `r` when it checks out, else quarantines it.
  Status Take(const Row& r) {
    if (r.seq > max_seq_all) max_seq_all = r.seq;
    if (r.seq > max_seq[r.stream]) max_seq[r.stream] = r.seq;
    if (r.kind < 1 || r.kind > kNumKinds) return Quarantine(r, "unknown kind");
    if (salt_lost) return Quarantine(r, "encryption salt lost");
    std::string header =
        EnvelopeHeader(ctx.site_id, ctx.node_id, r.stream, static_cast<uint64_t>(r.seq),
                       static_cast<uint8_t>(r.kind), r.created_ms);
    if (!StreamName::IsValid(r.stream) ||
        RecordChecksum(header, r.payload) != static_cast<uint32_t>(r.checksum)) {
      return Quarantine(r, "checksum mismatch");
    }
    exists->BindText(1, r.stream);
    exists->BindInt(2, r.seq);
    OUTPOST_ASSIGN_OR_RETURN(bool dup, exists->Step());
    exists->Reset();
    if (dup) return Quarantine(r, "duplicate key");
    // New ids, in the order read: a damaged b-tree can repeat an id.
    ins->BindText(1, r.stream);
    ins->BindInt(2, r.seq);
    ins->BindInt(3, r.kind);
    ins->BindInt(4, r.created_ms);
    ins->BindBlob(5, r.payload);
    ins->BindInt(6, r.checksum);
    ++salvaged;
    return ins->Run();
  }
};

// Takes the rows of one chunk (ids after *last, in id order) and moves *last to the highest
// id taken. *n counts the rows read; *error is the read error that ended the chunk, if any.
Status TakeChunk(sqlite::Statement& chunk, Copier& c, int64_t* last, size_t* n, Status* error) {
  chunk.BindInt(1, *last);
  while (true) {
    Result<bool> row = chunk.Step();
    if (!row.ok()) {
      *error = row.status();
      break;
    }
    if (!*row) break;
    ++*n;
    Row r = ReadRowFrom(chunk);
    // A damaged b-tree can hand rows out of order or twice: keep ids moving up.
    if (r.id <= *last) continue;
    *last = r.id;
    OUTPOST_RETURN_IF_ERROR(c.Take(r));
  }
  chunk.Reset();
  return Status::Ok();
}

// Walks the damaged file's records in id order, stepping over what cannot be read.
Status TakeRecords(sqlite::Statement& chunk, sqlite::Statement& one, sqlite::Statement& next_id,
                   Copier& c) {
  int64_t last = 0, skip = 1;
  // Each pass either reads rows or moves `last` forward, so this ends.
  while (last < (int64_t{1} << 62)) {
    const int64_t start = last;
    size_t n = 0;
    Status error;
    OUTPOST_RETURN_IF_ERROR(TakeChunk(chunk, c, &last, &n, &error));
    if (error.ok() && n == 0) break;
    if (error.ok() && last > start) {
      skip = 1;
      continue;
    }
    if (last > start) skip = 1;
    // Something after `last` cannot be read. Find the next row id we can locate.
    ++c.unreadable;
    next_id.BindInt(1, last);
    Result<bool> located = next_id.Step();
    int64_t y = located.ok() && *located ? next_id.ColumnInt(0) : 0;
    next_id.Reset();
    if (located.ok() && !*located) break;  // nothing readable after it
    if (located.ok() && y > last) {
      one.BindInt(1, y);
      Result<bool> got = one.Step();
      if (got.ok() && *got) {
        OUTPOST_RETURN_IF_ERROR(c.Take(ReadRowFrom(one)));
      }
      one.Reset();
      last = y;  // read or lost, row y is behind us now
      continue;
    }
    // Nothing locatable right after `last`: jump ahead, twice as far each time, so a
    // damaged stretch of any length costs at most ~62 probes.
    if (last > (int64_t{1} << 62) - skip) break;
    last += skip;
    skip *= 2;
  }
  return Status::Ok();
}

// Copies the damaged file's earlier quarantine entries, where readable.
Status CopyOldQuarantine(sqlite::Db& src, Copier& c) {
  if (auto q = src.Prepare("SELECT stream, seq, kind, created_ms, payload_bytes, reason, "
                           "quarantined_ms FROM quarantine");
      q.ok()) {
    while (true) {
      Result<bool> row = (*q)->Step();
      if (!row.ok() || !*row) break;
      c.quar->BindText(1, (*q)->ColumnText(0));
      c.quar->BindInt(2, (*q)->ColumnInt(1));
      c.quar->BindInt(3, (*q)->ColumnInt(2));
      c.quar->BindInt(4, (*q)->ColumnInt(3));
      c.quar->BindInt(5, (*q)->ColumnInt(4));
      c.quar->BindText(6, (*q)->ColumnText(5));
      c.quar->BindInt(7, (*q)->ColumnInt(6));
      OUTPOST_RETURN_IF_ERROR(c.quar->Run());
    }
  }
  return Status::Ok();
}

// Copies what can be read of the damaged file's records and quarantine into the new file.
// The statements of `src` end here, before it closes.
Status CopyFromDamaged(sqlite::Db& src, Copier& c) {
  auto chunk = src.Prepare(std::string(kRowCols) + "WHERE id > ?1 ORDER BY id LIMIT 256");
  auto one = src.Prepare(std::string(kRowCols) + "WHERE id = ?1");
  auto next_id = src.Prepare("SELECT id FROM records WHERE id > ?1 ORDER BY id LIMIT 1");
  if (chunk.ok() && one.ok() && next_id.ok()) {
    OUTPOST_RETURN_IF_ERROR(TakeRecords(**chunk, **one, **next_id, c));
  } else {
    ++c.unreadable;
  }
  return CopyOldQuarantine(src, c);
}

// The next seq of each stream: never give a seq twice (FORMAT.md section 8). When the old
// streams are lost, every stream starts at a new floor, stored in `dst` and `meta`.
Result<std::map<std::string, int64_t>> NextSeqs(sqlite::Db& dst, const OldState& old,
                                                const Copier& c, Meta* meta) {
  std::map<std::string, int64_t> next;
  if (old.streams_ok) {
    next = old.streams;
    for (const auto& [stream, m] : c.max_seq) next[stream] = std::max(next[stream], m + 1);
  } else {
    int64_t floor = std::max<int64_t>(c.max_seq_all + 1, c.ctx.now_ms * 1024);
    meta->seq_floor = static_cast<uint64_t>(floor);
    for (const auto& [stream, m] : c.max_seq) next[stream] = floor;
    OUTPOST_RETURN_IF_ERROR(SetMetaInt(dst, "seq_floor", floor));
  }
  return next;
}

// The payload of the event record that counts what the salvage did.
std::string SalvageEventJson(const std::string& from, const Copier& c, bool streams_ok,
                             uint64_t seq_floor) {
  std::string json = "{\"type\":\"salvage\",\"damaged_file\":\"";
  AppendJsonEscaped(json, BaseOf(from));
  json += "\",\"salvaged\":" + std::to_string(c.salvaged) +
          ",\"quarantined\":" + std::to_string(c.quarantined) +
          ",\"unreadable_ranges\":" + std::to_string(c.unreadable) +
          ",\"streams_recovered\":" + (streams_ok ? "true" : "false") +
          ",\"seq_floor\":" + std::to_string(seq_floor) + "}";
  return json;
}

// Writes the event record `json` at `event_seq` of the event stream, sealed with `cipher`
// when there is one.
Status WriteEvent(sqlite::Db& dst, const SalvageContext& ctx, const RecordCipher* cipher,
                  int64_t event_seq, const std::string& json) {
  const std::string event_stream(kEventStream);
  std::string header =
      EnvelopeHeader(ctx.site_id, ctx.node_id, event_stream, static_cast<uint64_t>(event_seq),
                     static_cast<uint8_t>(Kind::kEvent), ctx.now_ms);
  std::string stored = json;
  if (cipher) {
    stored.clear();
    OUTPOST_RETURN_IF_ERROR(cipher->Seal(RecordAad(header), json, &stored));
  }
  OUTPOST_ASSIGN_OR_RETURN(auto ev, dst.Prepare(kInsertRecordSql));
  ev->BindText(1, event_stream);
  ev->BindInt(2, event_seq);
  ev->BindInt(3, static_cast<int>(Kind::kEvent));
  ev->BindInt(4, ctx.now_ms);
  ev->BindBlob(5, stored);
  ev->BindInt(6, RecordChecksum(header, stored));
  return ev->Run();
}

// Writes the streams table and the counters, the salvage counted in.
Status WriteStreamsAndCounters(sqlite::Db& dst, const std::map<std::string, int64_t>& next,
                               std::map<std::string, int64_t>* counters, uint64_t quarantined) {
  OUTPOST_ASSIGN_OR_RETURN(auto up, dst.Prepare(kUpsertStreamSql));
  for (const auto& [stream, n] : next) {
    up->BindText(1, stream);
    up->BindInt(2, n);
    up->BindInt(3, StreamChecksum(stream, static_cast<uint64_t>(n)));
    OUTPOST_RETURN_IF_ERROR(up->Run());
  }
  (*counters)["salvages"] += 1;
  (*counters)["quarantined_records"] += static_cast<int64_t>(quarantined);
  (*counters)["raised_records.event"] += 1;  // the salvage event (FORMAT.md section 11)
  OUTPOST_ASSIGN_OR_RETURN(auto cnt, dst.Prepare("INSERT INTO counters(name, value) "
                                                 "VALUES(?1, ?2)"));
  for (const auto& [name, v] : *counters) {
    cnt->BindText(1, name);
    cnt->BindInt(2, v);
    OUTPOST_RETURN_IF_ERROR(cnt->Run());
  }
  return Status::Ok();
}

// Copies what can be read from the damaged file `from` into the new file `to`.
Status Build(const SalvageContext& ctx, const std::string& from, const std::string& to) {
  std::unique_ptr<sqlite::Db> src = OpenDamaged(ctx, from);
  OldState old;
  if (src) old = ReadOldState(*src);

  // The new file's meta (FORMAT.md section 8).
  Meta meta{.site_id = ctx.site_id, .node_id = ctx.node_id, .created_ms = ctx.now_ms};
  bool salt_lost = false;
  OUTPOST_RETURN_IF_ERROR(FillEncryption(ctx, old.meta, &meta, &salt_lost));
  // The count of seals under the data key goes on (FORMAT.md section 7); the step covers the
  // salvage event's.
  uint64_t seals_before = old.meta ? old.meta->nonce_reserved : 0;
  meta.nonce_reserved = seals_before + kNonceReserveStep;
  std::unique_ptr<const RecordCipher> cipher = EventCipher(ctx, meta);

  OUTPOST_ASSIGN_OR_RETURN(
      auto dst, sqlite::Db::Open(to, sqlite::DbOptions{.create = true,
                                                       .faults = ctx.faults,
                                                       .file_mode = 0600}));  // as the outbox's
  OUTPOST_RETURN_IF_ERROR(ConfigureConnection(*dst, uint64_t{1} << 40));
  OUTPOST_RETURN_IF_ERROR(CreateSchema(*dst, meta));
  OUTPOST_RETURN_IF_ERROR(dst->Exec("BEGIN IMMEDIATE"));
  Copier copier{.ctx = ctx, .salt_lost = salt_lost};
  OUTPOST_RETURN_IF_ERROR(copier.Prepare(*dst));
  if (src) {
    OUTPOST_RETURN_IF_ERROR(CopyFromDamaged(*src, copier));
  }
  if (src) src->Close(/*checkpoint=*/false).IgnoreError();

  OUTPOST_ASSIGN_OR_RETURN(auto next, NextSeqs(*dst, old, copier, &meta));
  const std::string event_stream(kEventStream);
  int64_t event_seq =
      next.count(event_stream) ? next[event_stream] : static_cast<int64_t>(meta.seq_floor);
  std::string json = SalvageEventJson(from, copier, old.streams_ok, meta.seq_floor);
  bool write_event = meta.encryption == "none" || cipher != nullptr;
  if (write_event) {
    OUTPOST_RETURN_IF_ERROR(WriteEvent(*dst, ctx, cipher.get(), event_seq, json));
    next[event_stream] = event_seq + 1;
  }
  OUTPOST_RETURN_IF_ERROR(WriteStreamsAndCounters(*dst, next, &old.counters, copier.quarantined));
  copier.ins.reset();
  copier.exists.reset();
  copier.quar.reset();
  OUTPOST_RETURN_IF_ERROR(dst->Exec("COMMIT"));
  OUTPOST_RETURN_IF_ERROR(dst->Close(/*checkpoint=*/true));
  OUTPOST_LOG(kWarning) << "outbox salvaged" << Field("path", ctx.path)
                        << Field("damaged_file", from) << Field("salvaged", copier.salvaged)
                        << Field("quarantined", copier.quarantined)
                        << Field("unreadable_ranges", copier.unreadable);
  return Status::Ok();
}

}  // namespace

bool SalvagePending(const std::string& path) { return PathExists(MarkerPath(path)); }

Status MarkForSalvage(const std::string& path, int64_t now_ms) {
  if (SalvagePending(path)) return Status::Ok();
  return WriteFileAtomically(MarkerPath(path), path + ".damaged-" + std::to_string(now_ms) + "\n",
                             0600);
}

Status Salvage(const SalvageContext& ctx) {
  const std::string& path = ctx.path;
  const std::string marker = MarkerPath(path);
  const std::string prefix = path + ".damaged-";
  std::string damaged;
  if (PathExists(marker)) {
    OUTPOST_ASSIGN_OR_RETURN(damaged, ReadFile(marker, 4096));
    while (!damaged.empty() && (damaged.back() == '\n' || damaged.back() == '\r')) {
      damaged.pop_back();
    }
    if (damaged.rfind(prefix, 0) != 0 || damaged.find('/', prefix.size()) != std::string::npos) {
      return DataLossError("salvage marker \"" + marker + "\" names \"" + damaged.substr(0, 200) +
                           "\", which is not a damaged copy of \"" + path + "\"");
    }
  } else {
    damaged = prefix + std::to_string(ctx.now_ms);
    OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(marker, damaged + "\n", 0600));
  }
  const std::string dir = DirOf(path);
  if (!(PathExists(path) && PathExists(damaged))) {  // else step 4 is done already
    // Step 2: set the damaged file aside, WAL included.
    if (!PathExists(damaged)) OUTPOST_RETURN_IF_ERROR(RenameIfExists(path, damaged));
    OUTPOST_RETURN_IF_ERROR(RenameIfExists(path + "-wal", damaged + "-wal"));
    OUTPOST_RETURN_IF_ERROR(RemoveIfExists(path + "-shm"));
    OUTPOST_RETURN_IF_ERROR(SyncDirectory(dir));
    // Step 3: build the new file from what can be read.
    const std::string fresh = NewPath(path);
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
      OUTPOST_RETURN_IF_ERROR(RemoveIfExists(fresh + suffix));
    }
    OUTPOST_RETURN_IF_ERROR(Build(ctx, damaged, fresh));
    // Step 4: put it in place.
    if (::rename(fresh.c_str(), path.c_str()) != 0) {
      return ErrnoToStatus(errno, "cannot rename", fresh);
    }
    OUTPOST_RETURN_IF_ERROR(SyncDirectory(dir));
  }
  OUTPOST_RETURN_IF_ERROR(RemoveIfExists(marker));
  return SyncDirectory(dir);
}

}  // namespace outpost::outbox
