#include "train/training_set.h"

#include <gtest/gtest.h>

#include <cmath>

#include "base/testing/test_util.h"

namespace outpost::train {
namespace {

EdgeRecord Rec(std::string kind, std::string site, std::string node, uint64_t seq,
               std::string payload, int64_t created_ms = 0) {
  return {.kind = std::move(kind), .site_id = std::move(site), .node_id = std::move(node),
          .stream = "pump", .seq = seq, .created_ms = created_ms ? created_ms : int64_t(seq),
          .payload = std::move(payload)};
}

std::string Feedback(std::string request_id, std::string label, std::string extra = "") {
  return R"({"v":1,"kind":"feedback","model":"pump","request_id":")" + request_id +
         R"(","label":)" + label + extra + R"(,"time_ms":1})";
}

std::string Row(std::string kind, std::string request_id, int row, std::string inputs) {
  return R"({"v":1,"kind":")" + kind + R"(","model":"pump","version":3,"time_ms":1,"rule":"r",)" +
         R"("request_id":")" + request_id + R"(","row":)" + std::to_string(row) +
         R"(,"score":"value","score_value":0.5,"output":[0.5],"inputs":)" + inputs + "}";
}

JoinOptions Options(double holdout = 0.0) {
  return {.model = "pump", .features = {"a", "b"}, .labels = {{"fault", 1.0f}, {"ok", 0.0f}},
          .holdout_fraction = holdout};
}

TEST(JoinEdgeRecords, FeedbackTakesTheInputsOfTheSameRequestAtTheSameSite) {
  std::vector<EdgeRecord> records = {
      Rec("hard_example", "s1", "n1", 10, Row("hard_example", "r-1", 0, R"({"a":1,"b":2})")),
      Rec("sample", "s2", "n1", 11, Row("sample", "r-1", 0, R"({"a":7,"b":8})")),
      Rec("feedback", "s1", "n2", 3, Feedback("r-1", "1")),
      Rec("feedback", "s2", "n1", 4, Feedback("r-1", R"("ok")")),
  };
  OUTPOST_ASSERT_OK_AND_ASSIGN(EdgeExamples e, JoinEdgeRecords(records, Options()));
  ASSERT_EQ(e.train.rows, 2);
  EXPECT_EQ(e.train.features, (std::vector<float>{1, 2, 7, 8}));
  EXPECT_EQ(e.train.labels, (std::vector<float>{1, 0}));
  EXPECT_EQ(e.holdout.rows, 0);
  EXPECT_EQ(e.counts.feedback, 2u);
  EXPECT_EQ(e.counts.labelled, 2u);
  ASSERT_EQ(e.ranges.size(), 4u);
  EXPECT_EQ(e.ranges[0], (RecordRange{"s1", "n1", "pump", "hard_example", 10, 10, 1}));
  EXPECT_EQ(e.ranges[1], (RecordRange{"s1", "n2", "pump", "feedback", 3, 3, 1}));
  EXPECT_EQ(e.ranges[2], (RecordRange{"s2", "n1", "pump", "feedback", 4, 4, 1}));
  EXPECT_EQ(e.ranges[3], (RecordRange{"s2", "n1", "pump", "sample", 11, 11, 1}));
}

TEST(JoinEdgeRecords, EveryRuleOfFormatMdSection4) {
  std::vector<EdgeRecord> records = {
      // Unmatched: no row record for r-2; empty request id.
      Rec("feedback", "s", "n", 1, Feedback("r-2", "1")),
      Rec("feedback", "s", "n", 2, Feedback("", "1")),
      // Ambiguous: two rows of one request.
      Rec("sample", "s", "n", 3, Row("sample", "r-3", 0, R"({"a":1,"b":2})")),
      Rec("sample", "s", "n", 4, Row("sample", "r-3", 1, R"({"a":1,"b":2})")),
      Rec("feedback", "s", "n", 5, Feedback("r-3", "1")),
      // Incomplete: only "a" travelled.
      Rec("anomaly", "s", "n", 6, Row("anomaly", "r-4", 0, R"({"a":1})")),
      Rec("feedback", "s", "n", 7, Feedback("r-4", "1")),
      // Bad labels: 2, an unknown string, a label that is an object.
      Rec("sample", "s", "n", 8, Row("sample", "r-5", 0, R"({"a":1,"b":2})")),
      Rec("feedback", "s", "n", 9, Feedback("r-5", "2")),
      Rec("feedback", "s", "n", 10, Feedback("r-6", R"("maybe")")),
      // Superseded: r-7 labelled twice; the later one (created 100) wins though its seq is lower.
      Rec("anomaly", "s", "n", 11, Row("anomaly", "r-7", 0, R"({"a":5,"b":null})")),
      Rec("hard_example", "s", "n", 12, Row("hard_example", "r-7", 0, R"({"a":6,"b":7,"c":1})")),
      Rec("feedback", "s", "n", 13, Feedback("r-7", "1"), 100),
      Rec("feedback", "s", "n", 14, Feedback("r-7", "0"), 50),
      // Malformed and other models.
      Rec("feedback", "s", "n", 15, "{not json"),
      Rec("feedback", "s", "n", 16, R"({"model":"pump","request_id":"r-8"})"),
      Rec("sample", "s", "n", 17, R"({"model":"pump","request_id":"r-9","row":0})"),
      Rec("feedback", "s", "n", 18, R"({"model":"fan","request_id":"r-10","label":1})"),
      // Inline inputs in the feedback itself; null is a missing reading.
      Rec("feedback", "s", "n", 19, Feedback("r-11", "0", R"(,"inputs":{"a":3,"b":null})")),
      // Other kinds are ignored entirely.
      Rec("aggregate", "s", "n", 20, "{}"),
  };
  OUTPOST_ASSERT_OK_AND_ASSIGN(EdgeExamples e, JoinEdgeRecords(records, Options()));
  EXPECT_EQ(e.counts.feedback, 9u);  // of this model, payloads that parse
  EXPECT_EQ(e.counts.unmatched, 2u);
  EXPECT_EQ(e.counts.ambiguous, 1u);
  EXPECT_EQ(e.counts.incomplete, 1u);
  EXPECT_EQ(e.counts.bad_label, 2u);
  EXPECT_EQ(e.counts.superseded, 1u);
  EXPECT_EQ(e.counts.malformed, 3u);
  EXPECT_EQ(e.counts.other_model, 1u);
  EXPECT_EQ(e.counts.labelled, 2u);
  ASSERT_EQ(e.train.rows, 2);
  // r-7: the hard example wins over the anomaly, and the feedback created last labels it.
  EXPECT_EQ(e.train.features[0], 6.0f);
  EXPECT_EQ(e.train.features[1], 7.0f);
  EXPECT_EQ(e.train.labels[0], 1.0f);
  // r-11: inline inputs.
  EXPECT_EQ(e.train.features[2], 3.0f);
  EXPECT_TRUE(std::isnan(e.train.features[3]));
  EXPECT_EQ(e.train.labels[1], 0.0f);
}

TEST(JoinEdgeRecords, HoldoutSplitIsStableAndNearTheFraction) {
  std::vector<EdgeRecord> records;
  for (int i = 0; i < 2000; ++i) {
    std::string id = "r-" + std::to_string(i);
    records.push_back(Rec("sample", "s", "n", 2 * i, Row("sample", id, 0, R"({"a":1,"b":2})")));
    records.push_back(Rec("feedback", "s", "n", 2 * i + 1, Feedback(id, "1")));
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(EdgeExamples all, JoinEdgeRecords(records, Options(0.25)));
  EXPECT_EQ(all.train.rows + all.holdout.rows, 2000);
  EXPECT_NEAR(static_cast<double>(all.holdout.rows) / 2000, 0.25, 0.04);
  // Half the records: every request keeps its side.
  std::vector<EdgeRecord> half(records.begin(), records.begin() + 2000);
  OUTPOST_ASSERT_OK_AND_ASSIGN(EdgeExamples some, JoinEdgeRecords(half, Options(0.25)));
  for (int i = 0; i < 1000; ++i) {
    std::string id = "r-" + std::to_string(i);
    EXPECT_EQ(InHoldout("s", id, "", 0.25), InHoldout("s", id, "", 0.25));
  }
  int held = 0;
  for (int i = 0; i < 1000; ++i) held += InHoldout("s", "r-" + std::to_string(i), "", 0.25);
  EXPECT_EQ(some.holdout.rows, held);
  // Another salt draws another holdout.
  int moved = 0;
  for (int i = 0; i < 1000; ++i) {
    std::string id = "r-" + std::to_string(i);
    moved += InHoldout("s", id, "", 0.25) != InHoldout("s", id, "x", 0.25);
  }
  EXPECT_GT(moved, 100);
}

TEST(JoinEdgeRecords, BadOptionsAreRefused) {
  JoinOptions no_features = Options();
  no_features.features.clear();
  EXPECT_FALSE(JoinEdgeRecords({}, no_features).ok());
  JoinOptions bad_label = Options();
  bad_label.labels["x"] = 0.5f;
  EXPECT_FALSE(JoinEdgeRecords({}, bad_label).ok());
  EXPECT_FALSE(JoinEdgeRecords({}, Options(1.5)).ok());
}

TEST(ParseRecordPayload, RefusesWhatTheFormatsDoNotAllow) {
  EXPECT_FALSE(ParseRecordPayload("feedback", "[]").ok());
  EXPECT_FALSE(ParseRecordPayload("feedback", R"({"model":1,"request_id":"r","label":1})").ok());
  EXPECT_FALSE(ParseRecordPayload("feedback", R"({"model":"m","request_id":"r","label":{}})").ok());
  EXPECT_FALSE(ParseRecordPayload("sample", R"({"model":"m","row":-1,"inputs":{}})").ok());
  EXPECT_FALSE(ParseRecordPayload("sample", R"({"model":"m","row":1.5,"inputs":{}})").ok());
  EXPECT_FALSE(ParseRecordPayload("sample", R"({"model":"m","row":0,"inputs":{"a":"x"}})").ok());
  EXPECT_FALSE(ParseRecordPayload("sample", R"({"kind":"anomaly","model":"m","row":0,"inputs":{}})")
                   .ok());
  EXPECT_FALSE(ParseRecordPayload("drift", R"({"model":"m"})").ok());
  EXPECT_FALSE(ParseRecordPayload("sample", std::string(2 << 20, ' ')).ok());
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      RecordPayload p,
      ParseRecordPayload("sample", R"({"model":"m","row":3,"inputs":{"a":1e300},"new":[1]})"));
  EXPECT_EQ(p.row, 3);
  EXPECT_EQ(p.inputs->at("a"), 1e300);
}

}  // namespace
}  // namespace outpost::train
