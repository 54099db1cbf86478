#include "client/grpc_status.h"

#include <algorithm>

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

TEST(BackoffTest, FullJitterWithinAGrowingCappedStep) {
  Backoff backoff({.initial = absl::Milliseconds(100),
                   .max = absl::Milliseconds(400),
                   .multiplier = 2.0,
                   .jitter = 0.2});
  EXPECT_LE(backoff.NextDelay(), absl::Milliseconds(100));
  EXPECT_EQ(backoff.Peek(), absl::Milliseconds(200));
  EXPECT_LE(backoff.NextDelay(), absl::Milliseconds(200));
  absl::Duration longest = absl::ZeroDuration();
  for (int i = 0; i < 200; ++i) {
    const absl::Duration d = backoff.NextDelay();
    EXPECT_GE(d, absl::ZeroDuration());
    EXPECT_LE(d, absl::Milliseconds(400));
    longest = std::max(longest, d);
  }
  EXPECT_EQ(backoff.Peek(), absl::Milliseconds(400));
  // 200 uniform draws from [0, 400 ms]: all below 200 ms has probability 2^-200.
  EXPECT_GT(longest, absl::Milliseconds(200));
  backoff.Reset();
  EXPECT_EQ(backoff.Peek(), absl::Milliseconds(100));
}

TEST(BackoffTest, HonoursTheServersHintPlusJitter) {
  Backoff backoff({.initial = absl::Milliseconds(10), .jitter = 0.2});
  absl::Status s = absl::ResourceExhaustedError("busy");
  s.SetPayload(kRetryAfterPayload, absl::Cord("700"));
  for (int i = 0; i < 20; ++i) {
    const absl::Duration d = backoff.NextDelay(s);
    EXPECT_GE(d, absl::Milliseconds(700));
    EXPECT_LE(d, absl::Milliseconds(840));
  }
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
