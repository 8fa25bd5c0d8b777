#include "base/logging.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace outpost {
namespace {

class LoggingTest : public ::testing::Test {
 protected:
  void Use(LogFormat format, LogLevel level = LogLevel::kInfo) {
    SetLogOptions({.format = format,
                   .min_level = level,
                   .sink = [this](std::string_view line) { lines_.emplace_back(line); }});
  }
  void TearDown() override { SetLogOptions({}); }
  std::vector<std::string> lines_;
};

TEST_F(LoggingTest, TextLineHasLevelSourceMessageAndFields) {
  Use(LogFormat::kText);
  OUTPOST_LOG(kInfo) << "model loaded" << Field("model", "iris") << Field("note", "two words");
  ASSERT_EQ(lines_.size(), 1u);
  const std::string& l = lines_[0];
  EXPECT_NE(l.find(" INFO base/logging_test.cc:"), std::string::npos) << l;
  EXPECT_NE(l.find("model loaded model=iris note=\"two words\""), std::string::npos) << l;
}

TEST_F(LoggingTest, JsonLineIsOneEscapedObject) {
  Use(LogFormat::kJson);
  OUTPOST_LOG(kWarning) << "quote \" and newline \n" << Field("k", "v\"");
  ASSERT_EQ(lines_.size(), 1u);
  const std::string& l = lines_[0];
  EXPECT_EQ(l.front(), '{');
  EXPECT_EQ(l.back(), '}');
  EXPECT_EQ(l.find('\n'), std::string::npos);
  EXPECT_NE(l.find("\"level\":\"warning\""), std::string::npos) << l;
  EXPECT_NE(l.find("\"msg\":\"quote \\\" and newline \\n\""), std::string::npos) << l;
  EXPECT_NE(l.find("\"k\":\"v\\\"\""), std::string::npos) << l;
}

TEST_F(LoggingTest, LinesBelowMinimumLevelAreNotFormatted) {
  Use(LogFormat::kText, LogLevel::kWarning);
  int evaluated = 0;
  auto count = [&] { return ++evaluated; };
  OUTPOST_LOG(kInfo) << count();
  EXPECT_EQ(evaluated, 0);
  EXPECT_TRUE(lines_.empty());
  OUTPOST_LOG(kError) << count();
  EXPECT_EQ(evaluated, 1);
  EXPECT_EQ(lines_.size(), 1u);
}

TEST(LogParsing, AcceptsKnownNamesOnly) {
  EXPECT_EQ(*ParseLogFormat("json"), LogFormat::kJson);
  EXPECT_EQ(*ParseLogFormat("text"), LogFormat::kText);
  EXPECT_EQ(ParseLogFormat("xml").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*ParseLogLevel("debug"), LogLevel::kDebug);
  EXPECT_FALSE(ParseLogLevel("loud").ok());
}

TEST(JsonEscape, ReplacesInvalidUtf8AndControlBytes) {
  std::string out;
  AppendJsonEscaped(out, std::string("a\x01\xff\xc3\xa9", 5));
  EXPECT_EQ(out, "a\\u0001\xEF\xBF\xBD\xC3\xA9");
}

}  // namespace
}  // namespace outpost
