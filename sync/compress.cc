// The zstd adapter of sync/.
#include "sync/compress.h"

#include <zstd.h>

#include <memory>

namespace outpost::sync {

Result<std::string> ZstdCompress(std::string_view data, int level) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), level);
  if (ZSTD_isError(n)) return InternalError(std::string("zstd: ") + ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

Result<std::string> ZstdDecompress(std::string_view frame, size_t expected_size) {
  size_t frame_size = ZSTD_findFrameCompressedSize(frame.data(), frame.size());
  if (ZSTD_isError(frame_size)) {
    return ErrorWithReason(StatusCode::kInvalidArgument, "batch_decompress",
                           std::string("not a zstd frame: ") + ZSTD_getErrorName(frame_size));
  }
  if (frame_size != frame.size()) {
    return ErrorWithReason(StatusCode::kInvalidArgument, "batch_decompress",
                           "bytes after the zstd frame");
  }
  unsigned long long announced = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (announced != ZSTD_CONTENTSIZE_UNKNOWN && announced != expected_size) {
    return ErrorWithReason(StatusCode::kInvalidArgument, "batch_decompress",
                           "the frame holds " + std::to_string(announced) +
                               " bytes, the envelope announces " + std::to_string(expected_size));
  }
  // Streaming into a buffer of exactly the announced size: a frame that would produce more
  // stops at the buffer's end and is refused.
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> ctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!ctx) return InternalError("zstd: cannot create a context");
  ZSTD_DCtx_setParameter(ctx.get(), ZSTD_d_windowLogMax, 27);  // at most 128 MiB of window
  std::string out(expected_size, '\0');
  ZSTD_inBuffer in{frame.data(), frame.size(), 0};
  ZSTD_outBuffer ob{out.data(), out.size(), 0};
  // Once `out` is full, a 1-byte probe: a frame that still produces content holds more than
  // announced (the decoder may still need calls that only consume its epilogue).
  char probe = 0;
  ZSTD_outBuffer pb{&probe, 1, 0};
  while (true) {
    size_t in_before = in.pos;
    size_t out_before = ob.pos;
    size_t r = ZSTD_decompressStream(ctx.get(), ob.pos < ob.size ? &ob : &pb, &in);
    if (ZSTD_isError(r)) {
      return ErrorWithReason(StatusCode::kInvalidArgument, "batch_decompress",
                             ZSTD_getErrorName(r));
    }
    if (pb.pos != 0) {
      return ErrorWithReason(
          StatusCode::kInvalidArgument, "batch_decompress",
          "the frame holds more than " + std::to_string(expected_size) + " bytes");
    }
    if (r == 0) break;  // the frame is complete
    if (in.pos == in_before && ob.pos == out_before) {
      return ErrorWithReason(StatusCode::kInvalidArgument, "batch_decompress", "truncated frame");
    }
  }
  if (ob.pos != expected_size) {
    return ErrorWithReason(StatusCode::kInvalidArgument, "batch_decompress",
                           "the frame holds " + std::to_string(ob.pos) +
                               " bytes, the envelope announces " + std::to_string(expected_size));
  }
  return out;
}

}  // namespace outpost::sync
