#include "base/yaml/yaml.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "base/testing/test_util.h"

namespace outpost::yaml {
namespace {

// The library's messages start with its own name, which only yaml.cc spells out.
bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

TEST(YamlParse, MapKeepsKeyOrderAndMarks) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(Node root, Parse("zeta: 1\nalpha:\n  - a\n  - b\nmid: ~\n"));
  ASSERT_TRUE(root.IsMap());
  ASSERT_EQ(root.entries().size(), 3u);
  EXPECT_EQ(root.entries()[0].first.scalar(), "zeta");
  EXPECT_EQ(root.entries()[1].first.scalar(), "alpha");
  EXPECT_EQ(root.entries()[2].first.scalar(), "mid");
  EXPECT_TRUE(root["mid"].IsNull());
  EXPECT_TRUE(root["mid"]);  // defined, though null
  EXPECT_FALSE(root["absent"]);
  ASSERT_TRUE(root["alpha"].IsSequence());
  EXPECT_EQ(root["alpha"].size(), 2u);
  EXPECT_EQ(root["alpha"][size_t{1}].scalar(), "b");
  EXPECT_EQ(root["alpha"].mark().line, 2);
  EXPECT_EQ(root["alpha"].mark().column, 2);
}

TEST(YamlParse, EmptyDocumentIsNull) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(Node root, Parse(""));
  EXPECT_TRUE(root);
  EXPECT_TRUE(root.IsNull());
}

TEST(YamlParse, ParseErrorIsYamlCppsText) {
  Result<Node> r = Parse("a: [1, 2\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().reason(), kErrorReason);
  EXPECT_NE(r.status().message().find(": error at line "), std::string::npos)
      << r.status().ToString();
}

TEST(YamlRead, BoolSpellings) {
  for (const char* yes : {"true", "True", "TRUE", "yes", "on", "y"}) {
    OUTPOST_ASSERT_OK_AND_ASSIGN(Node n, Parse(std::string("v: ") + yes));
    OUTPOST_ASSERT_OK_AND_ASSIGN(bool v, n["v"].As<bool>());
    EXPECT_TRUE(v) << yes;
  }
  for (const char* no : {"false", "no", "off", "n"}) {
    OUTPOST_ASSERT_OK_AND_ASSIGN(Node n, Parse(std::string("v: ") + no));
    OUTPOST_ASSERT_OK_AND_ASSIGN(bool v, n["v"].As<bool>());
    EXPECT_FALSE(v) << no;
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(Node n, Parse("v: 1"));
  Result<bool> one = n["v"].As<bool>();
  ASSERT_FALSE(one.ok());
  EXPECT_TRUE(EndsWith(one.status().message(), ": error at line 1, column 4: bad conversion"))
      << one.status().ToString();
}

TEST(YamlRead, Numbers) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      Node n, Parse("a: 42\nb: -7\nc: 0x1F\nd: 2.5\ne: .inf\nf: 1.5\ng: 99999999999\nh: x"));
  EXPECT_EQ(*n["a"].As<int>(), 42);
  EXPECT_EQ(*n["b"].As<int64_t>(), -7);
  EXPECT_EQ(*n["c"].As<int64_t>(), 31);
  EXPECT_EQ(*n["d"].As<double>(), 2.5);
  EXPECT_TRUE(std::isinf(*n["e"].As<double>()));
  EXPECT_FALSE(n["f"].As<int64_t>().ok());
  EXPECT_FALSE(n["g"].As<int>().ok());
  EXPECT_EQ(*n["g"].As<int64_t>(), 99999999999);
  EXPECT_FALSE(n["h"].As<double>().ok());
  int64_t v = 0;
  EXPECT_TRUE(n["a"].Decode(v));
  EXPECT_EQ(v, 42);
  EXPECT_FALSE(n["h"].Decode(v));
}

TEST(YamlRead, Strings) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(Node n, Parse("a: hello\nb:\nc: [x, y]\nd: {k: v}\n"));
  EXPECT_EQ(*n["a"].As<std::string>(), "hello");
  EXPECT_EQ(*n["b"].As<std::string>(), "null");  // as the library reads a null node
  std::string s;
  EXPECT_FALSE(n["b"].Decode(s));
  EXPECT_FALSE(n["d"].As<std::string>().ok());
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::vector<std::string> list, n["c"].AsStringList());
  EXPECT_EQ(list, (std::vector<std::string>{"x", "y"}));
  EXPECT_FALSE(n["a"].AsStringList().ok());
}

TEST(YamlRead, MissingKeyAndScalarSubscript) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(Node n, Parse("a: 1\n"));
  Result<int> missing = n["backend"].As<int>();
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), "invalid node; first invalid key: \"backend\"");
  Result<int> sub = n["a"]["b"].As<int>();
  ASSERT_FALSE(sub.ok());
  EXPECT_TRUE(EndsWith(sub.status().message(),
                       ": error at line 1, column 4: operator[] call on a scalar (key: \"b\")"))
      << sub.status().ToString();
}

TEST(YamlContext, PrefixesOnlyAdapterErrors) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(Node n, Parse("a: x\n"));
  Status bad = n["a"].As<int>().status();
  EXPECT_TRUE(EndsWith(bad.message(), ": error at line 1, column 4: bad conversion"));
  Status wrapped = WithYamlContext(bad, "edge config");
  EXPECT_EQ(wrapped.message(), "edge config: " + std::string(bad.message()));
  EXPECT_EQ(wrapped.reason(), "invalid_argument");
  Status own = InvalidArgumentError("threads must be 0 to 1024");
  EXPECT_EQ(WithYamlContext(own, "edge config"), own);
}

TEST(YamlEmit, RoundTripsBlockAndFlow) {
  const std::string text = "backend: xgboost\nmax_batch_size: 8\nshape: [1, 4]";
  OUTPOST_ASSERT_OK_AND_ASSIGN(Node n, Parse(text));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string out, Emit(n));
  EXPECT_EQ(out, text);
}

TEST(YamlEmit, BuiltNodes) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(Node root, Parse("backend: onnx\n"));
  Node list = Node::Sequence();
  list.Push(Node::Int(3));
  Node policy = Node::Map();
  policy.Set("specific", list);
  policy.SetStyle(Style::kFlow);
  root.Set("version_policy", policy);
  root.Set("backend", Node::Scalar("xgboost"));  // replaced in place
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string out, Emit(root));
  EXPECT_EQ(out, "backend: xgboost\nversion_policy: {specific: [3]}");
}

TEST(YamlParse, AliasesShareTheirNode) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(Node n, Parse("a: &x {k: 1}\nb: *x\n"));
  EXPECT_EQ(*n["b"]["k"].As<int>(), 1);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string out, Emit(n));
  EXPECT_EQ(out, "a: &1 {k: 1}\nb: *1");
}

TEST(YamlParse, AliasCycleIsRefused) {
  Result<Node> r = Parse("a: &x [1, *x]\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), kErrorReason);
}

}  // namespace
}  // namespace outpost::yaml
