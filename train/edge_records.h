// Edge records as train/ reads them: the plain form of what a site sent ("record" in
// docs/ARCHITECTURE.md section 4), and the parts of their JSON payloads (serve/FORMAT.md
// feedback, insight/FORMAT.md row records) that the join rule of train/FORMAT.md section 4
// needs. train/ does not depend on the hub: whoever holds the records (the hub's store, a
// file) converts them to EdgeRecord.
#ifndef OUTPOST_TRAIN_EDGE_RECORDS_H_
#define OUTPOST_TRAIN_EDGE_RECORDS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "base/status.h"

namespace outpost::train {

struct EdgeRecord {
  std::string kind{};  // "feedback", "hard_example", "sample", "anomaly", ...
  std::string site_id{};
  std::string node_id{};
  std::string stream{};  // the model's name, by convention
  uint64_t seq = 0;
  int64_t created_ms = 0;
  std::string payload{};  // JSON
};

// What a feedback or row record's payload says. Inputs: a feature name → its value, NaN for
// a `null` (missing) reading.
struct RecordPayload {
  std::string kind{};
  std::string model{};
  std::string request_id{};
  int64_t row = -1;  // row records only
  // Feedback only: the label as sent, a number or a string.
  std::variant<std::monostate, double, std::string> label{};
  // Row records; feedback where the client sent inputs.
  std::optional<std::map<std::string, double, std::less<>>> inputs{};
};

// Limits on a payload train/ parses: bytes, nesting, inputs.
inline constexpr size_t kMaxPayloadBytes = 1 << 20;
inline constexpr size_t kMaxPayloadInputs = 4096;

// Parses a `feedback`, `hard_example`, `sample` or `anomaly` payload. InvalidArgument (with a
// reason) for a payload that is not a JSON object, lacks a key its kind needs (`model`,
// `request_id`, `label` for feedback; `model`, `row`, `inputs` for row records), has one of
// the wrong type, or is over the limits. Unknown keys are ignored, as the formats say.
Result<RecordPayload> ParseRecordPayload(std::string_view kind, std::string_view payload);

}  // namespace outpost::train

#endif  // OUTPOST_TRAIN_EDGE_RECORDS_H_
