#include "base/status.h"

#include <gtest/gtest.h>

#include <memory>

namespace outpost {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgumentError("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  OUTPOST_ASSIGN_OR_RETURN(int h, Half(x));
  OUTPOST_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

Status CheckEven(int x) {
  OUTPOST_RETURN_IF_ERROR(Half(x));
  return Status();
}

TEST(Status, DefaultIsOkWithEmptyMessage) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kOk);
  EXPECT_EQ(s.message(), "");
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(Status, ErrorCarriesCodeAndMessage) {
  Status s = NotFoundError("no model \"x\"");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.ToString(), "NOT_FOUND: no model \"x\"");
}

TEST(Status, WithContextPrependsAndKeepsCode) {
  Status s = InvalidArgumentError("bad shape").WithContext("input \"x\"");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "input \"x\": bad shape");
  EXPECT_TRUE(Status().WithContext("ignored").ok());
}

TEST(Status, ConstructingWithOkCodeIsOk) {
  EXPECT_TRUE(Status(StatusCode::kOk, "ignored").ok());
}

TEST(Result, HoldsValueOrError) {
  Result<int> good = Half(8);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 4);
  Result<int> bad = Half(3);
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.value_or(-1), -1);
}

TEST(Result, AssignOrReturnPropagatesFirstError) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).status().message(), "odd");
}

TEST(Result, ReturnIfErrorAcceptsResult) {
  EXPECT_TRUE(CheckEven(2).ok());
  EXPECT_FALSE(CheckEven(3).ok());
}

TEST(Result, FromOkStatusBecomesInternalError) {
  Result<int> r{Status()};
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
}

TEST(Result, HoldsMoveOnlyValues) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(7);
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 7);
}

TEST(StatusCodeName, NamesEveryCode) {
  for (int c = 0; c <= 16; ++c) {
    EXPECT_NE(StatusCodeName(static_cast<StatusCode>(c)), "") << c;
  }
  EXPECT_EQ(StatusCodeName(StatusCode::kResourceExhausted), "RESOURCE_EXHAUSTED");
}

}  // namespace
}  // namespace outpost
