// zstd for sync/: one frame in, one frame out. compress.cc is the only file of sync/ that
// includes zstd.h. Thread-safe.
#ifndef OUTPOST_SYNC_COMPRESS_H_
#define OUTPOST_SYNC_COMPRESS_H_

#include <string>
#include <string_view>

#include "base/status.h"

namespace outpost::sync {

// One zstd frame holding `data`. Internal for a zstd failure.
Result<std::string> ZstdCompress(std::string_view data, int level);

// Decompresses `frame`, which must be exactly one zstd frame whose content is exactly
// `expected_size` bytes; never allocates more than `expected_size`. InvalidArgument
// ("batch_decompress: ...") otherwise.
Result<std::string> ZstdDecompress(std::string_view frame, size_t expected_size);

}  // namespace outpost::sync

#endif  // OUTPOST_SYNC_COMPRESS_H_
