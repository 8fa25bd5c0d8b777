// Fuzzes the parser of record payloads that sites send (train/edge_records.h) and the join
// over them: the first byte picks the kind, the rest is the payload, paired with a feedback.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "train/training_set.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const char* kKinds[] = {"feedback", "hard_example", "sample", "anomaly"};
  const std::string kind = kKinds[data[0] % 4];
  const std::string payload(reinterpret_cast<const char*>(data + 1), size - 1);
  (void)outpost::train::ParseRecordPayload(kind, payload);
  std::vector<outpost::train::EdgeRecord> records = {
      {.kind = kind, .site_id = "s", .node_id = "n", .stream = "pump", .seq = 1,
       .payload = payload},
      {.kind = "feedback", .site_id = "s", .node_id = "n", .stream = "pump", .seq = 2,
       .payload = R"({"model":"pump","request_id":"r-1","label":1})"},
  };
  (void)outpost::train::JoinEdgeRecords(
      records, {.model = "pump", .features = {"a", "b"}, .holdout_fraction = 0.5});
  return 0;
}
