// Fuzzes the data set file reader (train/FORMAT.md section 2) and the CSV reader.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "train/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto decoded = outpost::train::DecodeDataset(bytes);
  if (decoded.ok()) {
    auto again = outpost::train::EncodeDataset(*decoded);
    if (!again.ok() || *again != bytes) __builtin_trap();  // the encoding is canonical
  }
  (void)outpost::train::ParseCsvDataset(bytes, {"a", "b"});
  return 0;
}
