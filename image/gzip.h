// A gzip stream (RFC 1952) written the same way every time, for image layers whose digest
// must not depend on when or where they were built (image/FORMAT.md section 5): a fixed
// header (no name, no comment, time 0, OS 255), zlib's raw deflate at a fixed level, then
// CRC-32 and length. The zlib adapter of Outpost: the only file that includes zlib.h is
// gzip.cc. Thread-compatible.
#ifndef OUTPOST_IMAGE_GZIP_H_
#define OUTPOST_IMAGE_GZIP_H_

#include <memory>
#include <string_view>

#include "base/status.h"
#include "image/sink.h"

namespace outpost::image {

// The deflate level of every layer Outpost writes. Part of the reproducibility contract: a
// change changes every image digest.
inline constexpr int kGzipLevel = 6;

class GzipSink : public ByteSink {
 public:
  // Compresses into `next`, which outlives this object. Internal when zlib cannot start.
  static Result<std::unique_ptr<GzipSink>> Open(ByteSink& next, int level = kGzipLevel);
  ~GzipSink() override;
  GzipSink(const GzipSink&) = delete;
  GzipSink& operator=(const GzipSink&) = delete;

  // Errors are `next`'s, or Internal for a zlib failure. Not after Finish().
  Status Write(std::string_view data) override;
  // Ends the deflate stream and writes the trailer. Once.
  Status Finish();

 private:
  struct State;
  GzipSink(ByteSink& next, std::unique_ptr<State> state);
  Status Deflate(std::string_view data, bool finish);

  ByteSink& next_;
  std::unique_ptr<State> state_;
};

// The zlib version this build deflates with ("1.2.13"): the image's digest depends on it.
const char* ZlibVersion();

}  // namespace outpost::image

#endif  // OUTPOST_IMAGE_GZIP_H_
