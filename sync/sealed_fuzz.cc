// libFuzzer target for OpenSealedExport (a sealed export file a hub imports from removable
// media) with a fixed hub key, then ReadExport of whatever opens. Must never crash; every
// error carries a reason code. The key is the test key of testdata/sealed (never a real
// hub's); the seeds in testdata/fuzz_sealed are sealed to it (make_seeds.py).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "sync/batch.h"
#include "sync/export.h"

namespace {

constexpr std::string_view kTestHubKey =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VuBCIEIBjwrsUsXIv1NlM2313ZrrJLScTHnHP0FR/m1lQBHWJA\n"
    "-----END PRIVATE KEY-----\n";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const outpost::sync::ExportLimits limits{.max_file_bytes = 1 << 20};
  auto opened = outpost::sync::OpenSealedExport(bytes, kTestHubKey, limits);
  if (!opened.ok()) {
    if (outpost::sync::ReasonOf(opened.status()).empty()) std::abort();
    return 0;
  }
  auto file = outpost::sync::ReadExport(*opened, limits);
  if (!file.ok() && outpost::sync::ReasonOf(file.status()).empty()) std::abort();
  return 0;
}
