#include "policy/audit.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "base/coding.h"
#include "base/crypto/crypto.h"
#include "base/file.h"
#include "base/json/json.h"
#include "base/json_writer.h"

namespace outpost::policy {
namespace {


Status ChainError(std::string_view reason, const std::string& detail) {
  return ErrorWithReason(StatusCode::kDataLoss, reason, detail);
}

// Checks that a line has every key with its type; returns its seq and prev.
Status ParseLine(json::Parser& parser, std::string_view line, uint64_t* seq, std::string* prev) {
  Result<json::Value> root = line.empty() ? Result<json::Value>(InvalidArgumentError("empty"))
                                          : parser.Parse(line);
  if (!root.ok() || !root->is_object()) return InvalidArgumentError("not a JSON object");
  const json::Value object = *root;
  Result<uint64_t> seq_value = object["seq"].GetUint64();
  if (!seq_value.ok() || *seq_value == 0) {
    return InvalidArgumentError("`seq` must be an integer >= 1");
  }
  *seq = *seq_value;
  if (!object["time_ms"].GetInt64().ok()) {
    return InvalidArgumentError("`time_ms` must be an integer");
  }
  for (const char* key : {"decision", "reason", "kind", "site", "node", "stream", "policy"}) {
    if (!object[key].is_string()) {
      return InvalidArgumentError(std::string("`") + key + "` must be a string");
    }
  }
  if (!object["rseq"].GetUint64().ok()) return InvalidArgumentError("`rseq` must be an integer");
  Result<std::string_view> text = object["prev"].GetString();
  if (!text.ok() || !IsHex64(*text)) return InvalidArgumentError("`prev` must be 64 hex digits");
  *prev = std::string(*text);
  return Status::Ok();
}

}  // namespace

AuditEntry MakeAuditEntry(const Policy& policy, const RecordView& record,
                          const Decision& decision, int64_t time_ms) {
  return AuditEntry{.time_ms = time_ms,
                    .decision = decision.outcome,
                    .reason = decision.reason,
                    .kind = std::string(record.kind),
                    .site = std::string(record.site),
                    .node = std::string(record.node),
                    .stream = std::string(record.stream),
                    .rseq = record.seq,
                    .policy_digest = policy.digest};
}

std::string FormatAuditLine(uint64_t seq, const AuditEntry& entry, std::string_view prev) {
  std::string line;
  JsonWriter w(line);
  w.BeginObject();
  w.Key("seq");
  w.Uint(seq);
  w.Key("time_ms");
  w.Int(entry.time_ms);
  w.Key("decision");
  w.String(OutcomeName(entry.decision));
  w.Key("reason");
  w.String(entry.reason);
  w.Key("kind");
  w.String(entry.kind);
  w.Key("site");
  w.String(entry.site);
  w.Key("node");
  w.String(entry.node);
  w.Key("stream");
  w.String(entry.stream);
  w.Key("rseq");
  w.Uint(entry.rseq);
  w.Key("policy");
  w.String(entry.policy_digest);
  w.Key("prev");
  w.String(prev);
  w.EndObject();
  return line;
}

Result<ChainHead> VerifyAuditChain(std::string_view text, const ChainHead& anchor,
                                   const std::optional<ChainHead>& known_head) {
  ChainHead head = anchor;
  json::Parser parser;
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    if (end == std::string_view::npos) {
      return ChainError("audit_malformed", "the last line has no end (entry after " +
                                               std::to_string(head.seq) + ")");
    }
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    if (line.size() > kMaxAuditLineBytes) {
      return ChainError("audit_malformed", "line after entry " + std::to_string(head.seq) +
                                               " is over 4096 bytes");
    }
    uint64_t seq = 0;
    std::string prev;
    if (Status s = ParseLine(parser, line, &seq, &prev); !s.ok()) {
      return ChainError("audit_malformed",
                        "line after entry " + std::to_string(head.seq) + ": " +
                            std::string(s.message()));
    }
    if (seq > head.seq + 1) {
      return ChainError("audit_cut", "entry " + std::to_string(seq) + " follows entry " +
                                         std::to_string(head.seq) + "; entries are missing");
    }
    if (seq <= head.seq) {
      return ChainError("audit_reorder", "entry " + std::to_string(seq) + " follows entry " +
                                             std::to_string(head.seq));
    }
    if (prev != head.hash) {
      return ChainError("audit_edited", "entry " + std::to_string(head.seq) +
                                            " does not hash to what entry " +
                                            std::to_string(seq) + " names");
    }
    head.seq = seq;
    head.hash = crypto::Sha256Hex(line);
  }
  if (known_head) {
    if (head.seq < known_head->seq) {
      return ChainError("audit_cut", "the chain ends at entry " + std::to_string(head.seq) +
                                         " but reached entry " + std::to_string(known_head->seq));
    }
    if (head.seq == known_head->seq && head.hash != known_head->hash) {
      return ChainError("audit_edited", "entry " + std::to_string(head.seq) +
                                            " differs from the head received before");
    }
  }
  return head;
}

Result<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& path) {
  std::string text;
  const bool existed = PathExists(path);
  if (existed) {
    OUTPOST_ASSIGN_OR_RETURN(text, ReadFile(path));
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoToStatus(errno, "opening the audit log", path);
  auto close_on_error = [fd](Status s) {
    ::close(fd);
    return s;
  };
  // A torn last line is an append that never returned: cut it off.
  const size_t keep = text.empty() || text.back() == '\n' ? text.size() : text.rfind('\n') + 1;
  if (keep != text.size()) {
    if (::ftruncate(fd, static_cast<off_t>(keep)) != 0 || ::fdatasync(fd) != 0) {
      return close_on_error(ErrnoToStatus(errno, "cutting a torn audit entry", path));
    }
    text.resize(keep);
  }
  Result<ChainHead> head = VerifyAuditChain(text);
  if (!head.ok()) return close_on_error(head.status().WithContext("audit log " + path));
  if (!existed) {
    if (::fdatasync(fd) != 0) return close_on_error(ErrnoToStatus(errno, "syncing", path));
    const size_t slash = path.rfind('/');
    Status s = SyncDirectory(slash == std::string::npos ? "." : path.substr(0, slash + 1));
    if (!s.ok()) return close_on_error(s);
  }
  return std::unique_ptr<AuditLog>(new AuditLog(path, fd, std::move(*head)));
}

AuditLog::~AuditLog() { ::close(fd_); }

ChainHead AuditLog::head() const {
  std::lock_guard<std::mutex> lock(mu_);
  return head_;
}

Status AuditLog::Append(std::span<const AuditEntry> entries) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!failed_.ok()) {
    return FailedPreconditionError("audit log " + path_ + " failed earlier: " +
                                   std::string(failed_.message()));
  }
  std::string batch;
  ChainHead head = head_;
  for (const AuditEntry& entry : entries) {
    std::string line = FormatAuditLine(head.seq + 1, entry, head.hash);
    if (line.size() > kMaxAuditLineBytes) {
      return InvalidArgumentError("audit entry over 4096 bytes (record key too long)");
    }
    head.seq += 1;
    head.hash = crypto::Sha256Hex(line);
    batch += line;
    batch.push_back('\n');
  }
  size_t written = 0;
  while (written < batch.size()) {
    const ssize_t n = ::write(fd_, batch.data() + written, batch.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      failed_ = ErrnoToStatus(errno, "appending to the audit log", path_);
      return failed_;
    }
    written += static_cast<size_t>(n);
  }
  if (::fdatasync(fd_) != 0) {
    // fsync errors are fatal, not retryable: the page cache may have dropped the data.
    failed_ = ErrnoToStatus(errno, "syncing the audit log", path_);
    return failed_;
  }
  head_ = std::move(head);
  return Status::Ok();
}

}  // namespace outpost::policy
