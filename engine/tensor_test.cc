#include "engine/tensor.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "base/testing/test_util.h"
#include "engine/model.h"

namespace outpost::engine {
namespace {

TEST(DataType, NamesRoundTripThroughParse) {
  for (DataType t :
       {DataType::kBool, DataType::kUint8, DataType::kUint16, DataType::kUint32, DataType::kUint64,
        DataType::kInt8, DataType::kInt16, DataType::kInt32, DataType::kInt64, DataType::kFp16,
        DataType::kBf16, DataType::kFp32, DataType::kFp64, DataType::kBytes}) {
    OUTPOST_ASSERT_OK_AND_ASSIGN(DataType parsed, ParseDataType(DataTypeName(t)));
    EXPECT_EQ(parsed, t) << DataTypeName(t);
  }
}

TEST(DataType, ParseIsCaseSensitiveAndRejectsUnknownNames) {
  EXPECT_EQ(ParseDataType("fp32").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseDataType("FLOAT").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseDataType("").status().code(), StatusCode::kInvalidArgument);
}

TEST(DataType, ElementSizesAreTheProtocolSizes) {
  EXPECT_EQ(ElementSize(DataType::kBool), 1u);
  EXPECT_EQ(ElementSize(DataType::kInt16), 2u);
  EXPECT_EQ(ElementSize(DataType::kFp16), 2u);
  EXPECT_EQ(ElementSize(DataType::kFp32), 4u);
  EXPECT_EQ(ElementSize(DataType::kUint64), 8u);
  EXPECT_EQ(ElementSize(DataType::kFp64), 8u);
  EXPECT_EQ(ElementSize(DataType::kBytes), 0u);
}

TEST(ElementCount, MultipliesDimensions) {
  std::vector<int64_t> shape = {2, 3, 4};
  OUTPOST_ASSERT_OK_AND_ASSIGN(int64_t n, ElementCount(shape));
  EXPECT_EQ(n, 24);
  std::vector<int64_t> scalar = {};
  OUTPOST_ASSERT_OK_AND_ASSIGN(int64_t one, ElementCount(scalar));
  EXPECT_EQ(one, 1);
  std::vector<int64_t> empty = {5, 0, 7};
  OUTPOST_ASSERT_OK_AND_ASSIGN(int64_t zero, ElementCount(empty));
  EXPECT_EQ(zero, 0);
}

TEST(ElementCount, RejectsNegativeDimensionsAndOverflow) {
  std::vector<int64_t> negative = {2, -1};
  EXPECT_EQ(ElementCount(negative).status().code(), StatusCode::kInvalidArgument);
  std::vector<int64_t> huge = {int64_t{1} << 40, int64_t{1} << 40};
  EXPECT_EQ(ElementCount(huge).status().code(), StatusCode::kInvalidArgument);
}

TEST(ShapeToString, WritesBracketedList) {
  std::vector<int64_t> shape = {-1, 4};
  EXPECT_EQ(ShapeToString(shape), "[-1, 4]");
  EXPECT_EQ(ShapeToString(std::vector<int64_t>{}), "[]");
}

TEST(Tensor, IsZeroFilledWithTheRightSize) {
  Tensor t(DataType::kFp32, {2, 3});
  EXPECT_EQ(t.element_count(), 6);
  EXPECT_EQ(t.byte_size(), 24u);
  for (float v : t.values<float>()) EXPECT_EQ(v, 0.0f);
  t.values<float>()[5] = 1.5f;
  EXPECT_EQ(t.values<float>()[5], 1.5f);

  Tensor s(DataType::kBytes, {3});
  EXPECT_EQ(s.strings().size(), 3u);
  EXPECT_EQ(s.byte_size(), 0u);
}

TEST(CheckShape, AcceptsVariableDimensionsAndNamesTheTensorOnMismatch) {
  TensorSpec spec{.name = "features", .type = DataType::kFp32, .shape = {-1, 4}};
  OUTPOST_EXPECT_OK(CheckShape(spec, std::vector<int64_t>{7, 4}));
  Status wrong_dim = CheckShape(spec, std::vector<int64_t>{7, 5});
  EXPECT_EQ(wrong_dim.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(wrong_dim.message().find("\"features\""), std::string_view::npos);
  EXPECT_NE(wrong_dim.message().find("[-1, 4]"), std::string_view::npos);
  EXPECT_EQ(CheckShape(spec, std::vector<int64_t>{28}).code(), StatusCode::kInvalidArgument);
}

Signature TwoInputs() {
  return Signature{
      .inputs = {{.name = "a", .type = DataType::kFp32, .shape = {-1, 2}},
                 {.name = "b", .type = DataType::kInt64, .shape = {-1}}},
      .outputs = {{.name = "y", .type = DataType::kFp32, .shape = {-1}}},
  };
}

TEST(ValidateInputs, AcceptsMatchingInputs) {
  std::vector<Tensor> inputs;
  inputs.emplace_back(DataType::kFp32, Shape{3, 2});
  inputs.emplace_back(DataType::kInt64, Shape{3});
  OUTPOST_EXPECT_OK(ValidateInputs(TwoInputs(), inputs));
}

TEST(ValidateInputs, RejectsWrongInputCount) {
  std::vector<Tensor> inputs;
  inputs.emplace_back(DataType::kFp32, Shape{3, 2});
  Status s = ValidateInputs(TwoInputs(), inputs);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("expects 2"), std::string_view::npos) << s.message();
}

TEST(ValidateInputs, RejectsWrongDatatypeNamingTheInput) {
  std::vector<Tensor> inputs;
  inputs.emplace_back(DataType::kFp32, Shape{3, 2});
  inputs.emplace_back(DataType::kInt32, Shape{3});
  Status s = ValidateInputs(TwoInputs(), inputs);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("\"b\""), std::string_view::npos) << s.message();
  EXPECT_NE(s.message().find("INT32"), std::string_view::npos) << s.message();
  EXPECT_NE(s.message().find("INT64"), std::string_view::npos) << s.message();
}

TEST(ValidateInputs, RejectsWrongRankAndFixedDimension) {
  std::vector<Tensor> rank;
  rank.emplace_back(DataType::kFp32, Shape{6});
  rank.emplace_back(DataType::kInt64, Shape{3});
  Status s = ValidateInputs(TwoInputs(), rank);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("\"a\""), std::string_view::npos) << s.message();

  std::vector<Tensor> dim;
  dim.emplace_back(DataType::kFp32, Shape{3, 3});
  dim.emplace_back(DataType::kInt64, Shape{3});
  s = ValidateInputs(TwoInputs(), dim);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("\"a\""), std::string_view::npos) << s.message();
}

TEST(ValidateInputs, RejectsInputsThatDisagreeOnTheBatchSize) {
  std::vector<Tensor> inputs;
  inputs.emplace_back(DataType::kFp32, Shape{3, 2});
  inputs.emplace_back(DataType::kInt64, Shape{4});
  Status s = ValidateInputs(TwoInputs(), inputs);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("batch size 4"), std::string_view::npos) << s.message();
  EXPECT_NE(s.message().find("\"a\" has 3"), std::string_view::npos) << s.message();
}

TEST(ValidateInputs, FixedBatchDimensionsDoNotTakePartInTheBatchCheck) {
  Signature sig{
      .inputs = {{.name = "rows", .type = DataType::kFp32, .shape = {-1, 2}},
                 {.name = "table", .type = DataType::kFp32, .shape = {5, 2}}},
      .outputs = {},
  };
  std::vector<Tensor> inputs;
  inputs.emplace_back(DataType::kFp32, Shape{3, 2});
  inputs.emplace_back(DataType::kFp32, Shape{5, 2});
  OUTPOST_EXPECT_OK(ValidateInputs(sig, inputs));
}

TEST(ValidateInputs, RejectsATensorWhoseStorageDisagreesWithItsShape) {
  Signature sig{.inputs = {{.name = "x", .type = DataType::kFp32, .shape = {-1}}}, .outputs = {}};
  std::vector<Tensor> inputs;
  inputs.emplace_back(DataType::kFp32, Shape{4});
  inputs[0].Reshape({5});  // breaks Reshape's precondition on purpose
  Status s = ValidateInputs(sig, inputs);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("\"x\""), std::string_view::npos) << s.message();
}

TEST(ValidateInputs, AcceptsAnEmptyBatch) {
  std::vector<Tensor> inputs;
  inputs.emplace_back(DataType::kFp32, Shape{0, 2});
  inputs.emplace_back(DataType::kInt64, Shape{0});
  OUTPOST_EXPECT_OK(ValidateInputs(TwoInputs(), inputs));
}

}  // namespace
}  // namespace outpost::engine
