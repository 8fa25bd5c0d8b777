// Fuzzes the site's reading of the hub's release answers (sync/release_list.h): the list of
// GET /sync/v1/releases with its rollbacks, and a Content-Range header, all from the whole
// input. Any result is
// fine; a crash or a sanitizer report is a finding, and so is an accepted list that breaks
// the documented bounds or an accepted range whose numbers do not hold together.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "base/coding.h"
#include "base/names.h"
#include "sync/release_list.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  for (bool rollbacks : {false, true}) {
    auto list = rollbacks ? outpost::sync::ParseReleaseRollbacks(input)
                          : outpost::sync::ParseReleaseList(input);
    if (list.ok()) {
      if (list->size() > 100) std::abort();
      for (const auto& r : *list) {
        if (!outpost::ModelName::IsValid(r.model) || r.version == 0 || r.model_version == 0 ||
            !outpost::IsHex64(r.sha256) || (rollbacks && r.bytes != 0)) {
          std::abort();
        }
      }
    } else if (list.status().reason() != "bad_release_list") {
      std::abort();
    }
  }
  auto range = outpost::sync::ParseContentRange(input);
  if (range && ((*range)[1] < (*range)[0] || (*range)[1] >= (*range)[2])) std::abort();
  return 0;
}
