#include "base/clock.h"

#include <gtest/gtest.h>

namespace outpost {
namespace {

using std::chrono::seconds;

TEST(FakeClock, MovesOnlyWhenAdvanced) {
  FakeClock clock;
  Clock::WallTime w = clock.Now();
  Clock::MonoTime m = clock.Monotonic();
  EXPECT_EQ(clock.Now(), w);
  clock.Advance(seconds(5));
  EXPECT_EQ(clock.Now() - w, seconds(5));
  EXPECT_EQ(clock.Monotonic() - m, seconds(5));
}

TEST(FakeClock, SettingWallLeavesMonotonicAlone) {
  FakeClock clock;
  Clock::MonoTime m = clock.Monotonic();
  clock.SetWall(Clock::WallTime(seconds(10)));
  EXPECT_EQ(UnixMillis(clock.Now()), 10'000);
  EXPECT_EQ(clock.Monotonic(), m);
}

TEST(SystemClock, MonotonicNeverGoesBack) {
  Clock& clock = SystemClock();
  Clock::MonoTime a = clock.Monotonic();
  Clock::MonoTime b = clock.Monotonic();
  EXPECT_LE(a, b);
  EXPECT_GT(UnixMillis(clock.Now()), int64_t{1'600'000'000'000});
}

}  // namespace
}  // namespace outpost
