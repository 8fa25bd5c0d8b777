// Clock: the injected source of time. Production code takes a `Clock&` (or uses
// SystemClock()) instead of calling std::chrono directly, so tests drive time with FakeClock.
#ifndef OUTPOST_BASE_CLOCK_H_
#define OUTPOST_BASE_CLOCK_H_

#include <chrono>
#include <mutex>

namespace outpost {

class Clock {
 public:
  using WallTime = std::chrono::system_clock::time_point;
  using MonoTime = std::chrono::steady_clock::time_point;

  virtual ~Clock() = default;
  // Wall-clock time: may jump; use for timestamps that leave the process.
  virtual WallTime Now() const = 0;
  // Monotonic time: never goes back; use for durations, deadlines and timeouts.
  virtual MonoTime Monotonic() const = 0;
};

// The real clock. Thread-safe; lives for the whole process.
Clock& SystemClock();

// A clock that moves only when told to. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(WallTime start = WallTime(std::chrono::seconds(1'700'000'000)))
      : wall_(start) {}

  WallTime Now() const override;
  MonoTime Monotonic() const override;
  // Moves both clocks forward by `d`.
  void Advance(std::chrono::nanoseconds d);
  // Sets the wall clock only (a wrong or corrected clock); the monotonic clock is untouched.
  void SetWall(WallTime t);

 private:
  mutable std::mutex mu_;  // guards wall_ and mono_
  WallTime wall_;
  MonoTime mono_{std::chrono::seconds(1000)};
};

// Milliseconds since the Unix epoch, as written in records and logs.
int64_t UnixMillis(Clock::WallTime t);

}  // namespace outpost

#endif  // OUTPOST_BASE_CLOCK_H_
