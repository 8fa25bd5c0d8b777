#include "base/status_mapping.h"

#include <gtest/gtest.h>

namespace outpost {
namespace {

TEST(HttpStatusFor, MapsEveryCode) {
  EXPECT_EQ(HttpStatusFor(StatusCode::kOk), 200);
  for (StatusCode code : {StatusCode::kInvalidArgument, StatusCode::kOutOfRange,
                          StatusCode::kFailedPrecondition, StatusCode::kAlreadyExists,
                          StatusCode::kCancelled, StatusCode::kUnknown, StatusCode::kAborted}) {
    EXPECT_EQ(HttpStatusFor(code), 400) << StatusCodeName(code);
  }
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnauthenticated), 401);
  EXPECT_EQ(HttpStatusFor(StatusCode::kPermissionDenied), 403);
  EXPECT_EQ(HttpStatusFor(StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(StatusCode::kResourceExhausted), 413);
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnimplemented), 501);
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFor(StatusCode::kDeadlineExceeded), 503);
  EXPECT_EQ(HttpStatusFor(StatusCode::kInternal), 500);
  EXPECT_EQ(HttpStatusFor(StatusCode::kDataLoss), 500);
}

TEST(ErrorBody, CarriesMessageAndReason) {
  EXPECT_EQ(ErrorBody(NotFoundError("no model \"x\"")),
            R"({"error":"no model \"x\"","reason":"not_found"})");
  EXPECT_EQ(ErrorBody(UnavailableError("store down").WithReason("store_unavailable")
                          .WithContext("sites")),
            R"({"error":"sites: store down","reason":"store_unavailable"})");
  EXPECT_EQ(ErrorBody("method_not_allowed", "use GET"),
            R"({"error":"use GET","reason":"method_not_allowed"})");
  EXPECT_EQ(ErrorBody(Status()), R"({"error":"internal error","reason":"internal"})");
}

TEST(GrpcCodeFor, UsesTheWireNumbers) {
  EXPECT_EQ(GrpcCodeFor(StatusCode::kOk), 0);
  EXPECT_EQ(GrpcCodeFor(StatusCode::kCancelled), 1);
  EXPECT_EQ(GrpcCodeFor(StatusCode::kInvalidArgument), 3);
  EXPECT_EQ(GrpcCodeFor(StatusCode::kDeadlineExceeded), 4);
  EXPECT_EQ(GrpcCodeFor(StatusCode::kNotFound), 5);
  EXPECT_EQ(GrpcCodeFor(StatusCode::kPermissionDenied), 7);
  EXPECT_EQ(GrpcCodeFor(StatusCode::kResourceExhausted), 8);
  EXPECT_EQ(GrpcCodeFor(StatusCode::kUnimplemented), 12);
  EXPECT_EQ(GrpcCodeFor(StatusCode::kUnavailable), 14);
  EXPECT_EQ(GrpcCodeFor(StatusCode::kUnauthenticated), 16);
  for (StatusCode code : {StatusCode::kInternal, StatusCode::kUnknown, StatusCode::kDataLoss,
                          StatusCode::kFailedPrecondition, StatusCode::kAlreadyExists,
                          StatusCode::kAborted, StatusCode::kOutOfRange}) {
    EXPECT_EQ(GrpcCodeFor(code), 13) << StatusCodeName(code);
  }
}

}  // namespace
}  // namespace outpost
