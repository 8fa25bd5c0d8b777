// Byte sinks: where the image's streams go. A layer is written once, as it is made, through
// a chain of sinks (the tar writer, a hasher for its diff_id, the gzip writer, a hasher for
// its digest, a file), so that an image of any size is built in constant memory.
// Thread-compatible.
#ifndef OUTPOST_IMAGE_SINK_H_
#define OUTPOST_IMAGE_SINK_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "base/crypto/crypto.h"
#include "base/status.h"

namespace outpost::image {

class ByteSink {
 public:
  virtual ~ByteSink() = default;
  // Takes `data` whole, or fails; after a failure the sink must not be used.
  virtual Status Write(std::string_view data) = 0;
};

// Appends to a string that the caller owns and that outlives the sink.
class StringSink : public ByteSink {
 public:
  explicit StringSink(std::string& out) : out_(out) {}
  Status Write(std::string_view data) override {
    out_.append(data);
    return Status::Ok();
  }

 private:
  std::string& out_;
};

// Writes to a file descriptor that the caller owns, keeps open while the sink is used and
// closes afterwards. `what` names the file in errors.
class FdSink : public ByteSink {
 public:
  FdSink(int fd, std::string what) : fd_(fd), what_(std::move(what)) {}
  // Unavailable, ResourceExhausted (disk full) and the like, as ErrnoToStatus.
  Status Write(std::string_view data) override;

 private:
  int fd_;
  std::string what_;
};

// Passes everything on to `next` (which outlives it) while hashing and counting it: the
// digest and size of a blob as it is written.
class HashingSink : public ByteSink {
 public:
  explicit HashingSink(ByteSink& next) : next_(next) {}
  Status Write(std::string_view data) override {
    hasher_.Update(data);
    bytes_ += data.size();
    return next_.Write(data);
  }
  // "sha256:<64 hex digits>" of everything written; call once, at the end.
  std::string Digest();
  uint64_t bytes() const { return bytes_; }

 private:
  ByteSink& next_;
  crypto::Sha256Hasher hasher_;
  uint64_t bytes_ = 0;
};

}  // namespace outpost::image

#endif  // OUTPOST_IMAGE_SINK_H_
