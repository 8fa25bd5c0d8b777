#include "base/clock.h"

namespace outpost {
namespace {

class RealClock final : public Clock {
 public:
  WallTime Now() const override { return std::chrono::system_clock::now(); }
  MonoTime Monotonic() const override { return std::chrono::steady_clock::now(); }
};

}  // namespace

Clock& SystemClock() {
  static RealClock* clock = new RealClock();
  return *clock;
}

Clock::WallTime FakeClock::Now() const {
  std::lock_guard<std::mutex> lock(mu_);
  return wall_;
}

Clock::MonoTime FakeClock::Monotonic() const {
  std::lock_guard<std::mutex> lock(mu_);
  return mono_;
}

void FakeClock::Advance(std::chrono::nanoseconds d) {
  std::lock_guard<std::mutex> lock(mu_);
  wall_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(d);
  mono_ += std::chrono::duration_cast<std::chrono::steady_clock::duration>(d);
}

void FakeClock::SetWall(WallTime t) {
  std::lock_guard<std::mutex> lock(mu_);
  wall_ = t;
}

int64_t UnixMillis(Clock::WallTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace outpost
