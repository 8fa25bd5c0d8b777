// libFuzzer target for DecodeBatch: bytes a hub receives from any site. Decoding must never
// crash, and a batch that decodes must encode back to bytes that decode to the same batch and
// key.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "sync/batch.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  outpost::sync::DecodeLimits limits{.max_encoded_bytes = 1 << 20, .max_body_bytes = 4 << 20};
  auto decoded = outpost::sync::DecodeBatch(
      std::string_view(reinterpret_cast<const char*>(data), size), limits);
  if (!decoded.ok()) {
    if (outpost::sync::ReasonOf(decoded.status()).empty()) std::abort();
    return 0;
  }
  auto again = outpost::sync::EncodeBatch(decoded->batch);
  if (!again.ok()) return 0;  // e.g. over a default limit that `limits` relaxed
  auto round = outpost::sync::DecodeBatch(*again);
  if (!round.ok() || !(round->key == decoded->key) ||
      !(round->batch.records == decoded->batch.records) ||
      round->batch.audit != decoded->batch.audit) {
    std::abort();
  }
  return 0;
}
