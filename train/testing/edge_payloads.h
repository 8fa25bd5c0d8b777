// Edge record payloads for tests of the retraining loop, as an edge node and its operators
// produce them (insight/FORMAT.md, serve/FORMAT.md): a hard example carrying one row's
// readings, and the feedback record that labels its request. Header-only; tests only.
#ifndef OUTPOST_TRAIN_TESTING_EDGE_PAYLOADS_H_
#define OUTPOST_TRAIN_TESTING_EDGE_PAYLOADS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "base/json_writer.h"
#include "train/dataset.h"

namespace outpost::train::fixtures {

// The hard-example record of row `r` of `data` (model "pump", version 1), for `request_id`;
// `rule` is left out when empty.
inline std::string HardExamplePayload(const Dataset& data, int64_t r, std::string_view request_id,
                                      int64_t time_ms, std::string_view rule = "") {
  std::string payload;
  JsonWriter w(payload);
  w.BeginObject();
  w.Key("v");
  w.Int(1);
  w.Key("kind");
  w.String("hard_example");
  w.Key("model");
  w.String("pump");
  w.Key("version");
  w.Int(1);
  w.Key("time_ms");
  w.Int(time_ms);
  if (!rule.empty()) {
    w.Key("rule");
    w.String(rule);
  }
  w.Key("request_id");
  w.String(request_id);
  w.Key("row");
  w.Int(0);
  w.Key("inputs");
  w.BeginObject();
  for (int64_t c = 0; c < data.cols(); ++c) {
    w.Key(data.feature_names[static_cast<size_t>(c)]);
    w.Double(data.Row(r)[static_cast<size_t>(c)]);
  }
  w.EndObject();
  w.EndObject();
  return payload;
}

// The feedback record labelling `request_id` of model "pump"; `label_json` is the label as
// JSON (1, 0, "fault"). `trusted`: sent by an operator's credential with the label role (the
// labels the hub's retraining trigger counts), else by an anonymous caller.
inline std::string FeedbackPayload(std::string_view request_id, std::string_view label_json,
                                   bool trusted = true) {
  return std::string(R"({"v":1,"kind":"feedback","model":"pump","request_id":")") +
         std::string(request_id) + R"(","label":)" + std::string(label_json) +
         (trusted ? R"(,"credential":"operator","trusted":true})" : R"(,"trusted":false})");
}

}  // namespace outpost::train::fixtures

#endif  // OUTPOST_TRAIN_TESTING_EDGE_PAYLOADS_H_
