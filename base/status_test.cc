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

TEST(Status, ReasonDefaultsToTheCodeInLowerCase) {
  EXPECT_EQ(NotFoundError("x").reason(), "not_found");
  EXPECT_EQ(InvalidArgumentError("x").reason(), "invalid_argument");
  EXPECT_FALSE(NotFoundError("x").has_reason());
  EXPECT_EQ(Status().reason(), "");
}

TEST(Status, WithContextKeepsTheReason) {
  Status s = FailedPreconditionError("the commit's outcome is unknown")
                 .WithReason("commit_unknown")
                 .WithContext("store")
                 .WithContext("batch 7");
  EXPECT_EQ(s.reason(), "commit_unknown");
  EXPECT_TRUE(s.has_reason());
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(), "batch 7: store: the commit's outcome is unknown");
  // A context that looks like a reason does not become one: code never parses messages.
  Status plain = NotFoundError("x").WithContext("site_gone");
  EXPECT_EQ(plain.reason(), "not_found");
}

TEST(Status, ErrorWithReasonPrefixesTheMessage) {
  Status s = ErrorWithReason(StatusCode::kInvalidArgument, "batch_seq_order", "seq 5 after 7");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.reason(), "batch_seq_order");
  EXPECT_EQ(s.message(), "batch_seq_order: seq 5 after 7");
  EXPECT_EQ(s.WithContext("batch 3").reason(), "batch_seq_order");
}

TEST(Status, WithReasonKeepsCodeAndMessageAndSanitisesTheToken) {
  Status s = UnavailableError("down").WithReason("store unavailable!");
  EXPECT_EQ(s.reason(), "store_unavailable_");
  EXPECT_EQ(s.message(), "down");
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Status().WithReason("x").ok());
  EXPECT_NE(s, UnavailableError("down"));
  EXPECT_EQ(s, UnavailableError("down").WithReason("store_unavailable_"));
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
