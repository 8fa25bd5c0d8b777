// Feedback labels counted against the version that answered (serve/label_tally.h).
#include "serve/label_tally.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "engine/tensor.h"

namespace outpost::serve {
namespace {

engine::Tensor Scores(std::vector<float> values) {
  engine::Tensor t(engine::DataType::kFp32, {static_cast<int64_t>(values.size())});
  for (size_t i = 0; i < values.size(); ++i) t.values<float>()[i] = values[i];
  return t;
}

ModelHandle Handle(const std::shared_ptr<const ServableModel>& servable, int64_t version,
                   ModelStats& stats) {
  return ModelHandle{.servable = servable, .version = version, .stats = &stats};
}

TEST(LabelTallyTest, ATrustedLabelCountsOnceAgainstTheVersionThatAnswered) {
  auto pump = std::make_shared<ServableModel>();
  pump->name = "pump";
  ModelStats v1, v2;
  LabelTally tally;
  std::vector<engine::Tensor> high = {Scores({0.9f, 0.1f})};
  std::vector<engine::Tensor> low = {Scores({0.2f})};
  tally.Remember(Handle(pump, 1, v1), "r1", high);
  tally.Remember(Handle(pump, 2, v2), "r2", low);
  tally.Remember(Handle(pump, 2, v2), "r3", high);
  tally.OnFeedback("pump", "r1", 1, /*trusted=*/true);   // 0.9 >= 0.5: right
  tally.OnFeedback("pump", "r2", 1, /*trusted=*/true);   // 0.2 < 0.5: wrong
  tally.OnFeedback("pump", "r1", 0, /*trusted=*/true);   // counted once
  tally.OnFeedback("pump", "r3", 1, /*trusted=*/false);  // not trusted: not counted
  tally.OnFeedback("fan", "r3", 1, /*trusted=*/true);    // another model's id
  EXPECT_EQ(v1.labelled.load(), 1u);
  EXPECT_EQ(v1.correct.load(), 1u);
  EXPECT_EQ(v2.labelled.load(), 1u);
  EXPECT_EQ(v2.correct.load(), 0u);
  // r3 is still remembered for a trusted label.
  tally.OnFeedback("pump", "r3", 1, /*trusted=*/true);
  EXPECT_EQ(v2.labelled.load(), 2u);
  EXPECT_EQ(v2.correct.load(), 1u);
}

TEST(LabelTallyTest, TheOldestRequestsAreForgottenAndLongIdsNeverKept) {
  auto pump = std::make_shared<ServableModel>();
  pump->name = "pump";
  ModelStats stats;
  LabelTally tally({.max_tracked_requests = 2, .max_request_id_bytes = 8});
  std::vector<engine::Tensor> out = {Scores({0.7f})};
  tally.Remember(Handle(pump, 1, stats), "a", out);
  tally.Remember(Handle(pump, 1, stats), "b", out);
  tally.Remember(Handle(pump, 1, stats), "a", out);  // remembered again: now the newest
  tally.Remember(Handle(pump, 1, stats), "c", out);  // forgets b, the oldest
  tally.Remember(Handle(pump, 1, stats), "a-much-too-long-id", out);
  for (const char* id : {"a", "b", "c", "a-much-too-long-id"}) {
    tally.OnFeedback("pump", id, 1, /*trusted=*/true);
  }
  EXPECT_EQ(stats.labelled.load(), 2u);  // a and c
  EXPECT_EQ(stats.correct.load(), 2u);
  // Without an id, stats or a numeric output nothing is remembered; a label that is not a
  // finite number counts nothing.
  tally.Remember(Handle(pump, 1, stats), "", out);
  tally.Remember(ModelHandle{.servable = pump, .version = 1}, "d", out);
  tally.Remember(Handle(pump, 1, stats), "e", {});
  tally.Remember(Handle(pump, 1, stats), "f", out);
  tally.OnFeedback("pump", "f", std::nan(""), /*trusted=*/true);
  tally.OnFeedback("pump", "d", 1, /*trusted=*/true);
  tally.OnFeedback("pump", "e", 1, /*trusted=*/true);
  EXPECT_EQ(stats.labelled.load(), 2u);
}

}  // namespace
}  // namespace outpost::serve
