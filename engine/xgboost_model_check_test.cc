#include "engine/xgboost_model_check.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/testing/test_util.h"
#include "engine/xgboost_model.h"

namespace outpost::engine {
namespace {

// One tree of a hand-written model, as XGBoost 1.7 writes it in JSON. The default is a stump
// on feature 0: node 0 splits at 0.5, node 1 (left) is -1.0, node 2 (right) is +1.0.
struct TreeJson {
  std::string id = "0";
  std::string num_nodes = "3";
  std::string left = "[1,-1,-1]";
  std::string right = "[2,-1,-1]";
  std::string parents = "[2147483647,0,0]";
  std::string split_indices = "[0,0,0]";
  std::string split_type = "[0,0,0]";
  std::string categories_nodes = "[]";
  std::string split_conditions = "[5E-1,-1E0,1E0]";

  std::string Render() const {
    return R"({"base_weights":[0E0,0E0,0E0],"categories":[],"categories_nodes":)" +
           categories_nodes +
           R"(,"categories_segments":[],"categories_sizes":[],"default_left":[1,0,0],"id":)" + id +
           R"(,"left_children":)" + left + R"(,"loss_changes":[1E0,0E0,0E0],"parents":)" + parents +
           R"(,"right_children":)" + right + R"(,"split_conditions":)" + split_conditions +
           R"(,"split_indices":)" + split_indices + R"(,"split_type":)" + split_type +
           R"(,"sum_hessian":[2E0,1E0,1E0],"tree_param":{"num_deleted":"0","num_feature":"3","num_nodes":")" +
           num_nodes + R"(","size_leaf_vector":"0"}})";
  }
};

struct ModelJson {
  std::vector<TreeJson> trees = {TreeJson{}};
  std::string num_trees;  // empty = trees.size()
  std::string tree_info;  // empty = all zeros
  std::string num_feature = "3";
  std::string num_class = "0";
  std::string objective =
      R"({"name":"reg:squarederror","reg_loss_param":{"scale_pos_weight":"1"}})";

  std::string Render() const {
    std::string trees_json = "[";
    std::string info = "[";
    for (size_t i = 0; i < trees.size(); ++i) {
      trees_json += (i ? "," : "") + trees[i].Render();
      info += i ? ",0" : "0";
    }
    trees_json += "]";
    info += "]";
    return R"({"learner":{"attributes":{},"feature_names":[],"feature_types":[],"gradient_booster":{"model":{"gbtree_model_param":{"num_parallel_tree":"1","num_trees":")" +
           (num_trees.empty() ? std::to_string(trees.size()) : num_trees) +
           R"(","size_leaf_vector":"0"},"tree_info":)" + (tree_info.empty() ? info : tree_info) +
           R"(,"trees":)" + trees_json +
           R"(},"name":"gbtree"},"learner_model_param":{"base_score":"0E0","boost_from_average":"1","num_class":")" +
           num_class + R"(","num_feature":")" + num_feature +
           R"(","num_target":"1"},"objective":)" + objective + R"(},"version":[1,7,4]})";
  }
};

// The check's verdict, and its message for the failure cases.
Status Check(const std::string& doc) { return CheckXGBoostModel(doc).status(); }

void ExpectRefused(const std::string& doc, std::string_view reason) {
  Status s = Check(doc);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find(reason), std::string_view::npos) << s.message();
  // And the loader refuses it the same way, before XGBoost sees it.
  EXPECT_EQ(LoadXGBoostModelFromBytes(doc).status().code(), StatusCode::kInvalidArgument);
}

TEST(XGBoostModelCheck, AcceptsAHandWrittenStumpThatXGBoostScores) {
  std::string doc = ModelJson{}.Render();
  OUTPOST_ASSERT_OK_AND_ASSIGN(XGBoostModelSummary summary, CheckXGBoostModel(doc));
  EXPECT_EQ(summary.encoding, XGBoostEncoding::kJson);
  EXPECT_EQ(summary.num_feature, 3);
  EXPECT_EQ(summary.num_trees, 1);
  EXPECT_EQ(summary.booster, "gbtree");
  EXPECT_EQ(summary.objective, "reg:squarederror");
  EXPECT_EQ(summary.output_groups, 1);

  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, LoadXGBoostModelFromBytes(doc));
  std::vector<Tensor> in;
  in.emplace_back(DataType::kFp32, Shape{2, 3});
  in[0].values<float>()[0] = 0.0f;  // left leaf
  in[0].values<float>()[3] = 1.0f;  // right leaf
  std::vector<Tensor> out;
  OUTPOST_ASSERT_OK(model->Run(in, out));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].values<float>()[0], -1.0f);
  EXPECT_EQ(out[0].values<float>()[1], 1.0f);
}

// Each of the following documents crashes or hangs XGBoost 1.7 when given to it directly.

TEST(XGBoostModelCheck, RefusesChildIndexOutsideTheTree) {
  ModelJson m;
  m.trees[0].left = "[100000000,-1,-1]";
  ExpectRefused(m.Render(), "outside [1, 3)");
}

TEST(XGBoostModelCheck, RefusesRightChildMissingBesideALeftChild) {
  ModelJson m;
  m.trees[0].right = "[-1,-1,-1]";
  ExpectRefused(m.Render(), "outside [1, 3)");
}

TEST(XGBoostModelCheck, RefusesACycleBackToTheRoot) {
  ModelJson m;
  m.trees[0].left = "[0,-1,-1]";
  ExpectRefused(m.Render(), "outside [1, 3)");
}

TEST(XGBoostModelCheck, RefusesANodeReachedTwice) {
  ModelJson m;
  m.trees[0].num_nodes = "5";
  m.trees[0].left = "[1,3,3,-1,-1]";
  m.trees[0].right = "[2,4,4,-1,-1]";
  m.trees[0].parents = "[2147483647,0,0,1,1]";
  m.trees[0].split_indices = "[0,0,0,0,0]";
  m.trees[0].split_type = "[0,0,0,0,0]";
  // The other per-node arrays keep 3 entries: the size check would fire first, so give them 5.
  std::string doc = m.Render();
  for (const char* key : {"\"base_weights\":[0E0,0E0,0E0]", "\"default_left\":[1,0,0]",
                          "\"loss_changes\":[1E0,0E0,0E0]", "\"sum_hessian\":[2E0,1E0,1E0]",
                          "\"split_conditions\":[5E-1,-1E0,1E0]"}) {
    std::string k = key;
    std::string widened = k.substr(0, k.size() - 1) + ",0,0]";
    doc.replace(doc.find(k), k.size(), widened);
  }
  ExpectRefused(doc, "reached twice");
}

TEST(XGBoostModelCheck, RefusesSplitOnAFeatureTheModelDoesNotHave) {
  ModelJson m;
  m.trees[0].split_indices = "[100000000,0,0]";
  ExpectRefused(m.Render(), "splits on feature 100000000");
}

TEST(XGBoostModelCheck, RefusesParentIndexOutsideTheTree) {
  ModelJson m;
  m.trees[0].parents = "[0,900000000,0]";
  ExpectRefused(m.Render(), "parent 900000000");
}

TEST(XGBoostModelCheck, RefusesTreeInfoPastTheOutputGroups) {
  ModelJson m;
  m.tree_info = "[70000000]";
  ExpectRefused(m.Render(), "output group 70000000");
}

TEST(XGBoostModelCheck, RefusesTreeCountThatDisagreesWithTheTrees) {
  ModelJson m;
  m.num_trees = "50";
  ExpectRefused(m.Render(), "num_trees says 50");
}

TEST(XGBoostModelCheck, RefusesDuplicateTreeIds) {
  ModelJson m;
  m.trees.push_back(TreeJson{});  // second tree also says id 0
  ExpectRefused(m.Render(), "expected 1");
}

TEST(XGBoostModelCheck, RefusesNodeArraysOfTheWrongLength) {
  ModelJson m;
  m.trees[0].num_nodes = "4";
  ExpectRefused(m.Render(), "has 3 elements, expected 4");
}

TEST(XGBoostModelCheck, RefusesCategoricalSplits) {
  ModelJson m;
  m.trees[0].split_type = "[1,0,0]";
  ExpectRefused(m.Render(), "categorical splits");
  ModelJson n;
  n.trees[0].categories_nodes = "[0]";
  ExpectRefused(n.Render(), "categorical splits");
}

TEST(XGBoostModelCheck, RefusesFeatureCountsOutOfRange) {
  ModelJson zero;
  zero.num_feature = "0";
  ExpectRefused(zero.Render(), "num_feature");
  ModelJson negative;
  negative.num_feature = "-1";
  ExpectRefused(negative.Render(), "num_feature");
  ModelJson huge;
  huge.num_feature = "4294967297";
  ExpectRefused(huge.Render(), "num_feature");
  ModelJson text;
  text.num_feature = "3abc";
  ExpectRefused(text.Render(), "not a decimal integer");
}

TEST(XGBoostModelCheck, RefusesSoftmaxWhoseClassCountDisagreesWithTheModel) {
  ModelJson m;
  m.num_class = "3";
  m.objective = R"({"name":"multi:softprob","softmax_multiclass_param":{"num_class":"4"}})";
  m.tree_info = "[0]";
  ExpectRefused(m.Render(), "says 4 classes");
}

TEST(XGBoostModelCheck, RefusesObjectivesOutpostDoesNotServe) {
  ModelJson m;
  m.objective = R"({"name":"my:custom"})";
  ExpectRefused(m.Render(), "not supported");
}

TEST(XGBoostModelCheck, RefusesDuplicateKeys) {
  std::string doc = ModelJson{}.Render();
  doc.insert(1, R"("version":[1,7,4],)");
  ExpectRefused(doc, "duplicate key");
}

TEST(XGBoostModelCheck, RefusesDeepNestingInJsonAndUbjson) {
  ExpectRefused(R"({"learner":)" + std::string(100000, '['), "nested deeper");
  std::string ubj = "{L";
  ubj += std::string(7, '\0') + '\x01' + "a";
  ubj += std::string(100000, '[');
  ExpectRefused(ubj, "nested deeper");
}

TEST(XGBoostModelCheck, RefusesTheLegacyBinaryFormatAndEmptyInput) {
  ExpectRefused("", "not an XGBoost JSON or UBJSON model");
  ExpectRefused("{", "not an XGBoost JSON or UBJSON model");
  ExpectRefused(std::string("binf\0\0\0\0", 8), "legacy binary format");
  ExpectRefused("{ \"learner\": {}}", "not an XGBoost JSON or UBJSON model");
}

TEST(XGBoostModelCheck, RefusesMalformedJson) {
  std::string doc = ModelJson{}.Render();
  ExpectRefused(doc + "x", "bytes after the end");
  ExpectRefused(doc.substr(0, doc.size() / 2), "malformed JSON");
  ExpectRefused(R"({"a":"\q"})", "unsupported escape");
  ExpectRefused(R"({"a":123456789012345678901234567890})", "integer out of range");
  ExpectRefused("{\"a\":\"line\nbreak\"}", "control character");
}

TEST(XGBoostModelCheck, RefusesUbjsonLengthsThatRunPastTheEnd) {
  // A key whose length is 2^62.
  std::string key_len = "{L";
  key_len += std::string("\x40\0\0\0\0\0\0\0", 8);
  ExpectRefused(key_len, "runs past the end");
  // A typed array of 2^40 floats.
  std::string typed = "{L";
  typed += std::string(7, '\0') + '\x01' + "a" + "[$d#L" + std::string("\0\0\x01\0\0\0\0\0", 8);
  ExpectRefused(typed, "runs past the end");
  // A negative count.
  std::string negative = "{L";
  negative += std::string(7, '\0') + '\x01' + "a" + "[#L" + std::string(8, '\xff');
  ExpectRefused(negative, "negative length");
  // A marker XGBoost does not read.
  std::string marker = "{L";
  marker += std::string(7, '\0') + '\x01' + "a" + "H";
  ExpectRefused(marker, "unsupported marker");
}

}  // namespace
}  // namespace outpost::engine
