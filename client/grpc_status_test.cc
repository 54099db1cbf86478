#include "client/grpc_status.h"

#include "client/backoff.h"
#include "gtest/gtest.h"

namespace evlog::client {
namespace {

TEST(FromGrpcStatusTest, OkIsOk) { EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK, nullptr).ok()); }

TEST(FromGrpcStatusTest, KeepsCodeAndMessage) {
  absl::Status s =
      FromGrpcStatus(grpc::Status(grpc::StatusCode::OUT_OF_RANGE, "offsets are 0..9"), nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(s.message(), "offsets are 0..9");
}

TEST(FromGrpcStatusTest, EmptyMessageGetsAnActionableSentence) {
  absl::Status s = FromGrpcStatus(grpc::Status(grpc::StatusCode::UNAVAILABLE, ""), nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("evlogd"), absl::string_view::npos) << s;
}

TEST(RetryAfterTest, ReadsThePayload) {
  absl::Status s = absl::ResourceExhaustedError("busy");
  EXPECT_FALSE(RetryAfter(s).has_value());
  s.SetPayload(kRetryAfterPayload, absl::Cord("250"));
  ASSERT_TRUE(RetryAfter(s).has_value());
  EXPECT_EQ(*RetryAfter(s), absl::Milliseconds(250));
}

TEST(BackoffTest, GrowsWithinJitterAndCaps) {
  Backoff backoff({.initial = absl::Milliseconds(100),
                   .max = absl::Milliseconds(400),
                   .multiplier = 2.0,
                   .jitter = 0.2});
  absl::Duration d1 = backoff.NextDelay();
  EXPECT_GE(d1, absl::Milliseconds(80));
  EXPECT_LE(d1, absl::Milliseconds(120));
  absl::Duration d2 = backoff.NextDelay();
  EXPECT_GE(d2, absl::Milliseconds(160));
  EXPECT_LE(d2, absl::Milliseconds(240));
  for (int i = 0; i < 10; ++i) EXPECT_LE(backoff.NextDelay(), absl::Milliseconds(400));
  backoff.Reset();
  EXPECT_EQ(backoff.Peek(), absl::Milliseconds(100));
}

TEST(BackoffTest, HonoursTheServersHint) {
  Backoff backoff({.initial = absl::Milliseconds(10)});
  absl::Status s = absl::ResourceExhaustedError("busy");
  s.SetPayload(kRetryAfterPayload, absl::Cord("700"));
  EXPECT_GE(backoff.NextDelay(s), absl::Milliseconds(700));
}

TEST(IsRetriableTest, OnlyUnavailableAndResourceExhausted) {
  EXPECT_TRUE(IsRetriable(absl::UnavailableError("")));
  EXPECT_TRUE(IsRetriable(absl::ResourceExhaustedError("")));
  EXPECT_FALSE(IsRetriable(absl::NotFoundError("")));
  EXPECT_FALSE(IsRetriable(absl::InvalidArgumentError("")));
  EXPECT_FALSE(IsRetriable(absl::OkStatus()));
}

}  // namespace
}  // namespace evlog::client
