#include "base/json/json.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/testing/test_util.h"

namespace outpost::json {
namespace {

TEST(JsonParser, ReadsEveryKindOfValue) {
  Parser parser;
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      Value root, parser.Parse(R"({"s":"hi","i":-3,"u":18446744073709551615,"d":1.5,"b":true,
                                   "n":null,"a":[1,2],"o":{}})"));
  ASSERT_TRUE(root.is_object());
  EXPECT_EQ(root.size(), 8u);
  EXPECT_EQ(*root["s"].GetString(), "hi");
  EXPECT_EQ(*root["i"].GetInt64(), -3);
  EXPECT_EQ(root["u"].type(), Type::kUint64);
  EXPECT_EQ(*root["u"].GetUint64(), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(*root["d"].GetDouble(), 1.5);
  EXPECT_EQ(*root["i"].GetDouble(), -3.0);
  EXPECT_TRUE(*root["b"].GetBool());
  EXPECT_TRUE(root["n"].is_null());
  EXPECT_TRUE(root["a"].is_array());
  EXPECT_TRUE(root["o"].is_object());
  EXPECT_TRUE(root["d"].is_number());
  EXPECT_EQ(TypeName(root["u"].type()), "a number");
}

TEST(JsonParser, GettersRefuseOtherKindsWithStableReasons) {
  Parser parser;
  OUTPOST_ASSERT_OK_AND_ASSIGN(Value root, parser.Parse(R"({"s":"hi","neg":-1,"d":2.5})"));
  Result<int64_t> not_int = root["s"].GetInt64();
  ASSERT_FALSE(not_int.ok());
  EXPECT_EQ(not_int.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(not_int.status().reason(), "json_type");
  EXPECT_EQ(root["neg"].GetUint64().status().reason(), "json_range");
  EXPECT_EQ(root["d"].GetInt64().status().reason(), "json_type");
  EXPECT_FALSE(root["s"].GetBool().ok());
}

TEST(JsonParser, MissingMembersChainAndFailEveryGetter) {
  Parser parser;
  OUTPOST_ASSERT_OK_AND_ASSIGN(Value root, parser.Parse(R"({"a":{"b":7}})"));
  EXPECT_EQ(*root["a"]["b"].GetInt64(), 7);
  Value missing = root["a"]["c"]["d"];
  EXPECT_TRUE(missing.is_missing());
  EXPECT_FALSE(missing.is_null());
  EXPECT_FALSE(missing.GetInt64().ok());
  EXPECT_EQ(missing.size(), 0u);
  EXPECT_EQ(missing.ToJson(), "");
  EXPECT_FALSE(root.Find("x").has_value());
  ASSERT_TRUE(root.Find("a").has_value());
  EXPECT_TRUE(root.At(0).is_missing());
}

TEST(JsonParser, IteratesArraysAndObjectsInOrder) {
  Parser parser;
  OUTPOST_ASSERT_OK_AND_ASSIGN(Value root, parser.Parse(R"({"z":[3,4,5],"a":1,"m":"x"})"));
  std::vector<std::string> keys;
  for (Member m : root.Members()) keys.emplace_back(m.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"z", "a", "m"}));
  std::vector<int64_t> values;
  for (Value v : root["z"].Items()) values.push_back(*v.GetInt64());
  EXPECT_EQ(values, (std::vector<int64_t>{3, 4, 5}));
  EXPECT_EQ(*root["z"].At(2).GetInt64(), 5);
  // A number and a missing member have no elements or members to visit.
  int visited = 0;
  for ([[maybe_unused]] Value v : root["a"].Items()) ++visited;
  for ([[maybe_unused]] Member m : root["missing"].Members()) ++visited;
  EXPECT_EQ(visited, 0);
}

TEST(JsonParser, ReserialisesCompactly) {
  Parser parser;
  OUTPOST_ASSERT_OK_AND_ASSIGN(Value root, parser.Parse(" { \"a\" : [ 1 , 2.5 , \"x\\n\" ] } "));
  EXPECT_EQ(root.ToJson(), R"({"a":[1,2.5,"x\n"]})");
  EXPECT_EQ(root["a"].At(1).ToJson(), "2.5");
}

TEST(JsonParser, RefusesMalformedDeepAndLargeDocuments) {
  Parser parser({.max_bytes = 32, .max_depth = 2});
  Result<Value> bad = parser.Parse("{\"a\":");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().reason(), "json_malformed");
  EXPECT_EQ(parser.Parse("").status().reason(), "json_malformed");

  EXPECT_TRUE(parser.Parse("[[1]]").ok());
  Result<Value> deep = parser.Parse("[[[1]]]");
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.status().reason(), "json_too_deep");

  Result<Value> large = parser.Parse(std::string(40, ' ') + "1");
  ASSERT_FALSE(large.ok());
  EXPECT_EQ(large.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(large.status().reason(), "json_too_large");
}

TEST(JsonParser, ReusesItselfAcrossDocumentsAndReadsPaddedTextInPlace) {
  Parser parser;
  OUTPOST_ASSERT_OK(parser.Reserve(1024));
  EXPECT_GE(parser.capacity(), 1024u);
  for (int i = 0; i < 3; ++i) {
    std::string text = "[" + std::to_string(i) + "]";
    OUTPOST_ASSERT_OK_AND_ASSIGN(Value root, parser.Parse(text));
    EXPECT_EQ(*root.At(0).GetInt64(), i);
  }
  // A JSON header followed by binary bytes: parsed in place, the bytes never read as JSON.
  std::string body = "{\"k\":1}" + std::string(kPadding, '\xff');
  OUTPOST_ASSERT_OK_AND_ASSIGN(Value root, parser.Parse(std::string_view(body.data(), 7),
                                                        body.size()));
  EXPECT_EQ(*root["k"].GetInt64(), 1);
}

TEST(JsonLeaves, ReadsNestedNumericArraysFlat) {
  Parser parser;
  OUTPOST_ASSERT_OK_AND_ASSIGN(Value root, parser.Parse("[[1,2],[3,[4]],[]]"));
  EXPECT_EQ(CountLeaves(root), 4u);
  std::vector<int32_t> out(4);
  LeafRead read = ReadLeaves<int32_t>(root, out);
  EXPECT_EQ(read.error, LeafError::kNone);
  EXPECT_EQ(read.count, 4u);
  EXPECT_EQ(out, (std::vector<int32_t>{1, 2, 3, 4}));

  std::vector<int32_t> small(3);
  read = ReadLeaves<int32_t>(root, small);
  EXPECT_EQ(read.error, LeafError::kTooMany);
  EXPECT_EQ(read.count, 3u);

  std::vector<int32_t> large(5);
  read = ReadLeaves<int32_t>(root, large);
  EXPECT_EQ(read.error, LeafError::kNone);
  EXPECT_EQ(read.count, 4u);
}

TEST(JsonLeaves, RefusesLeavesTheElementTypeDoesNotTake) {
  Parser parser;
  OUTPOST_ASSERT_OK_AND_ASSIGN(Value root, parser.Parse("[1, 300, 1.5, \"x\", null, 1e39]"));
  std::vector<uint8_t> bytes(6);
  LeafRead read = ReadLeaves<uint8_t>(root, bytes);
  EXPECT_EQ(read.error, LeafError::kRange);
  EXPECT_EQ(read.count, 1u);
  EXPECT_EQ(read.bad.ToJson(), "300");

  std::vector<int64_t> ints(6);
  read = ReadLeaves<int64_t>(root, ints);
  EXPECT_EQ(read.error, LeafError::kNotInteger);
  EXPECT_EQ(read.count, 2u);

  std::vector<double> doubles(6);
  read = ReadLeaves<double>(root, doubles);
  EXPECT_EQ(read.error, LeafError::kType);
  EXPECT_EQ(read.count, 3u);
  EXPECT_EQ(read.bad.type(), Type::kString);

  OUTPOST_ASSERT_OK_AND_ASSIGN(Value floats_root, parser.Parse("[null, 2.5, 1e39]"));
  std::vector<float> floats(3);
  read = ReadLeaves<float>(floats_root, floats);
  EXPECT_EQ(read.error, LeafError::kRange);
  EXPECT_EQ(read.count, 2u);
  EXPECT_TRUE(std::isnan(floats[0]));
  EXPECT_EQ(floats[1], 2.5f);

  OUTPOST_ASSERT_OK_AND_ASSIGN(Value mixed, parser.Parse("[true, false, 1]"));
  std::vector<uint8_t> bools(3);
  read = ReadBoolLeaves(mixed, bools);
  EXPECT_EQ(read.error, LeafError::kType);
  EXPECT_EQ(read.count, 2u);
  EXPECT_EQ(bools[0], 1);
  EXPECT_EQ(bools[1], 0);

  OUTPOST_ASSERT_OK_AND_ASSIGN(Value strings_root, parser.Parse(R"(["a", ["b"]])"));
  std::vector<std::string> strings(2);
  read = ReadLeaves<std::string>(strings_root, strings);
  EXPECT_EQ(read.error, LeafError::kNone);
  EXPECT_EQ(strings, (std::vector<std::string>{"a", "b"}));
}

}  // namespace
}  // namespace outpost::json
