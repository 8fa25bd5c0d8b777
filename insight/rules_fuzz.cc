// Fuzz target: ParseInsightConfig on arbitrary bytes (a config.yaml arrives inside bundles)
// must return a Status and never crash, hang or leak.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "insight/rules.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  outpost::insight::ParseInsightConfig(text).status().IgnoreError();
  outpost::insight::ParseInsightSection(text).status().IgnoreError();
  return 0;
}
