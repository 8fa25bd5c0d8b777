#include "image/gzip.h"

#include <zlib.h>

#include <cstring>
#include <string>

#include "base/coding.h"

namespace outpost::image {

struct GzipSink::State {
  z_stream z{};
  uLong crc = 0;
  uint64_t length = 0;
  bool finished = false;
  std::string buffer = std::string(size_t{1} << 16, '\0');
};

Result<std::unique_ptr<GzipSink>> GzipSink::Open(ByteSink& next, int level) {
  auto state = std::make_unique<State>();
  // Raw deflate (negative window bits): the header and trailer are ours.
  if (deflateInit2(&state->z, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return InternalError("zlib: deflateInit2 failed");
  }
  state->crc = crc32(0L, Z_NULL, 0);
  // ID1 ID2 CM=8 (deflate) FLG=0, MTIME=0, XFL=0, OS=255 (unknown).
  static const char kHeader[10] = {'\x1f', '\x8b', '\x08', 0, 0, 0, 0, 0, 0, '\xff'};
  std::unique_ptr<GzipSink> sink(new GzipSink(next, std::move(state)));
  OUTPOST_RETURN_IF_ERROR(next.Write(std::string_view(kHeader, sizeof(kHeader))));
  return sink;
}

GzipSink::GzipSink(ByteSink& next, std::unique_ptr<State> state)
    : next_(next), state_(std::move(state)) {}

GzipSink::~GzipSink() { deflateEnd(&state_->z); }

Status GzipSink::Deflate(std::string_view data, bool finish) {
  z_stream& z = state_->z;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  for (;;) {
    z.next_out = reinterpret_cast<Bytef*>(state_->buffer.data());
    z.avail_out = static_cast<uInt>(state_->buffer.size());
    int rc = deflate(&z, finish ? Z_FINISH : Z_NO_FLUSH);
    if (rc == Z_STREAM_ERROR) return InternalError("zlib: deflate failed");
    size_t produced = state_->buffer.size() - z.avail_out;
    if (produced > 0) {
      OUTPOST_RETURN_IF_ERROR(next_.Write(std::string_view(state_->buffer.data(), produced)));
    }
    if (finish ? rc == Z_STREAM_END : (z.avail_in == 0 && z.avail_out != 0)) break;
  }
  return Status::Ok();
}

Status GzipSink::Write(std::string_view data) {
  if (state_->finished) return InternalError("gzip: write after finish");
  // zlib counts in uInt; feed large pieces in slices.
  constexpr size_t kSlice = size_t{1} << 30;
  while (!data.empty()) {
    std::string_view piece = data.substr(0, kSlice);
    state_->crc = crc32(state_->crc, reinterpret_cast<const Bytef*>(piece.data()),
                        static_cast<uInt>(piece.size()));
    state_->length += piece.size();
    OUTPOST_RETURN_IF_ERROR(Deflate(piece, /*finish=*/false));
    data.remove_prefix(piece.size());
  }
  return Status::Ok();
}

Status GzipSink::Finish() {
  if (state_->finished) return InternalError("gzip: finished twice");
  state_->finished = true;
  OUTPOST_RETURN_IF_ERROR(Deflate(std::string_view(), /*finish=*/true));
  std::string trailer;
  PutU32LE(trailer, static_cast<uint32_t>(state_->crc));
  PutU32LE(trailer, static_cast<uint32_t>(state_->length & 0xffffffffu));  // ISIZE mod 2^32
  return next_.Write(trailer);
}

const char* ZlibVersion() { return zlibVersion(); }

}  // namespace outpost::image
