// Fuzz target: ParsePolicy on arbitrary bytes (a policy arrives inside bundles), and Apply and
// Check of a fixed policy on arbitrary payloads (records are untrusted at the hub), and the
// audit chain verifier on arbitrary logs. None may crash, hang or leak.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "policy/audit.h"
#include "policy/evaluate.h"
#include "policy/policy.h"

namespace {

constexpr std::string_view kPolicy = R"(format: 1
version: 1
regions:
  open: {raw: true, min_count: 3}
default_region: open
kinds:
  anomaly:
    fields:
      v: keep
      time_ms: {generalize: truncate_time, unit: hour}
      request_id: hash
      score_value: {generalize: round, step: 0.05}
      inputs.a: {generalize: coarsen, grid: 0.1}
      inputs.*: hash
      output: keep
  aggregate:
    fields:
      rows: keep
      score: keep
      features.*: {generalize: round, step: 1}
)";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace outpost::policy;
  if (size > 64 * 1024) return 0;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  ParsePolicy(text).status().IgnoreError();

  static const auto policy = ParsePolicy(kPolicy);
  static const auto key = HashKey::Create("fuzzing-secret-0123456789");
  if (!policy.ok() || !key.ok()) __builtin_trap();
  for (std::string_view kind : {"anomaly", "aggregate"}) {
    RecordView record{.kind = kind, .site = "s", .node = "n", .stream = "m", .seq = 1,
                      .payload = text};
    Decision applied = Apply(**policy, *key, record);
    (void)Check(**policy, record);
    if (applied.allowed()) {
      // What Apply lets out must pass the hub's Check.
      record.payload = applied.payload;
      if (!Check(**policy, record).allowed()) __builtin_trap();
    }
  }
  VerifyAuditChain(text).status().IgnoreError();
  return 0;
}
