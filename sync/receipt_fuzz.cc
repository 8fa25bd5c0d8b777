// libFuzzer target for ReadReceipt (a receipt a site imports from removable media). Must
// never crash; errors carry a reason code.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "sync/batch.h"
#include "sync/receipt.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto receipt = outpost::sync::ReadReceipt(
      std::string_view(reinterpret_cast<const char*>(data), size), {.max_file_bytes = 1 << 20});
  if (!receipt.ok() && outpost::sync::ReasonOf(receipt.status()).empty()) std::abort();
  return 0;
}
