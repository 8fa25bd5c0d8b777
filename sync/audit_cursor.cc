#include "sync/audit_cursor.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "base/crypto/crypto.h"
#include "base/file.h"
#include "base/json/json.h"
#include "base/json_writer.h"
#include "base/logging.h"

namespace outpost::sync {
namespace {

// Reads {"audit_acked":{"seq":N,"hash":"..."}}; genesis when the file is absent or unreadable
// (the hub then answers audit_gap with its head, and the forwarder seeks to it).
AuditHead ReadState(const std::string& path) {
  AuditHead head;
  Result<std::string> text = ReadFile(path, 64 * 1024);
  if (!text.ok()) return head;
  json::Parser parser;
  Result<json::Value> root = parser.Parse(*text);
  if (!root.ok()) return head;
  Result<uint64_t> seq = (*root)["audit_acked"]["seq"].GetUint64();
  Result<std::string_view> hash = (*root)["audit_acked"]["hash"].GetString();
  if (!seq.ok() || !hash.ok() || hash->size() != 64) return head;
  head.seq = *seq;
  head.hash = std::string(*hash);
  return head;
}

// The audit head in a hub answer ("audit_head":{"seq":..,"hash":..}), if any.
std::optional<AuditHead> HeadOf(json::Value root) {
  Result<uint64_t> seq = root["audit_head"]["seq"].GetUint64();
  Result<std::string_view> hash = root["audit_head"]["hash"].GetString();
  if (!seq.ok() || !hash.ok() || hash->size() != 64) return std::nullopt;
  return AuditHead{*seq, std::string(*hash)};
}
}  // namespace

std::optional<AuditHead> ParseAuditHead(std::string_view json) {
  outpost::json::Parser parser;  // `json` is the text here
  Result<outpost::json::Value> root = parser.Parse(json);
  if (!root.ok()) return std::nullopt;
  return HeadOf(*root);
}

void AuditCursor::Init() {
  AuditHead want = ReadState(state_path_);
  if (!Seek(want)) {
    OUTPOST_LOG(kWarning) << "sync state names an audit head the log does not hold; "
                             "starting from genesis"
                          << Field("seq", want.seq);
    acked_ = AuditHead{};
    offset_ = 0;
  }
}

Result<BatchAudit> AuditCursor::Segment(size_t max_bytes) {
  BatchAudit a{.from_seq = acked_.seq, .from_hash = acked_.hash, .to_seq = acked_.seq,
               .to_hash = acked_.hash};
  int fd = ::open(log_path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "open", log_path_);
  std::string buf(max_bytes, '\0');
  ssize_t n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(offset_));
  int error = errno;
  ::close(fd);
  if (n < 0) return ErrnoToStatus(error, "read", log_path_);
  buf.resize(static_cast<size_t>(n));
  size_t end = buf.rfind('\n');
  if (end == std::string::npos) return a;
  buf.resize(end + 1);
  size_t start = 0;
  std::string_view last;
  uint64_t count = 0;
  while (start < buf.size()) {
    size_t nl = buf.find('\n', start);
    last = std::string_view(buf).substr(start, nl - start);
    ++count;
    start = nl + 1;
  }
  a.to_seq = acked_.seq + count;
  a.to_hash = crypto::Sha256Hex(last);
  a.lines = std::move(buf);
  return a;
}

void AuditCursor::Acknowledge(const AuditHead& head, const BatchAudit& sent) {
  if (head == acked_) return;
  if (head.seq == sent.to_seq && head.hash == sent.to_hash) {
    acked_ = head;
    offset_ += sent.lines.size();
  } else if (!Seek(head)) {
    OUTPOST_LOG(kWarning) << "the hub's audit head is not in this node's log"
                          << Field("seq", head.seq);
    return;
  }
  Persist();
}

bool AuditCursor::Seek(const AuditHead& head) {
  if (head.seq == 0) {
    acked_ = AuditHead{};
    offset_ = 0;
    return true;
  }
  Result<std::string> text = ReadFile(log_path_);
  if (!text.ok()) return false;
  size_t start = 0;
  uint64_t seq = 0;
  while (start < text->size()) {
    size_t nl = text->find('\n', start);
    if (nl == std::string::npos) break;
    ++seq;
    if (seq == head.seq) {
      if (crypto::Sha256Hex(std::string_view(*text).substr(start, nl - start)) != head.hash) {
        return false;
      }
      acked_ = head;
      offset_ = nl + 1;
      Persist();
      return true;
    }
    start = nl + 1;
  }
  return false;
}

void AuditCursor::Persist() {
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Key("audit_acked");
  w.BeginObject();
  w.Key("seq");
  w.Uint(acked_.seq);
  w.Key("hash");
  w.String(acked_.hash);
  w.EndObject();
  w.EndObject();
  out.push_back('\n');
  Status s = WriteFileAtomically(state_path_, out);
  if (!s.ok()) {
    OUTPOST_LOG(kWarning) << "cannot write sync state" << Field("error", s);
  }
}
}  // namespace outpost::sync
