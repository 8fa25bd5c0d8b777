// libFuzzer target for ReadExport (an export file a hub imports from removable media) and
// the batches inside one whose signature verifies. Must never crash; errors carry a reason.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "sync/batch.h"
#include "sync/export.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto file = outpost::sync::ReadExport(bytes, {.max_file_bytes = 1 << 20});
  if (!file.ok()) {
    if (outpost::sync::ReasonOf(file.status()).empty()) std::abort();
    return 0;
  }
  for (const auto& b : file->batches) (void)outpost::sync::DecodeBatch(b);
  return 0;
}
