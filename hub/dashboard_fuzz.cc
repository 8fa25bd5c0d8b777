// Fuzzes the dashboard's query-string parser: any bytes either parse within the limits or
// give an InvalidArgument with a reason code; nothing crashes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "hub/dashboard.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view query(reinterpret_cast<const char*>(data), size);
  auto params = outpost::hub::ParseQueryString(query);
  if (params.ok()) {
    if (params->items.size() > outpost::hub::kMaxQueryParams) std::abort();
    for (const auto& [name, value] : params->items) {
      if (name.empty() || name.size() > outpost::hub::kMaxParamNameBytes ||
          value.size() > outpost::hub::kMaxParamValueBytes) {
        std::abort();
      }
      // Names are never repeated: each name finds its own value.
      if (params->Find(name) != &value) std::abort();
    }
  } else if (params.status().code() != outpost::StatusCode::kInvalidArgument) {
    std::abort();
  }
  return 0;
}
