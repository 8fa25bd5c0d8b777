#include "sync/bandwidth.h"

#include <algorithm>

namespace outpost::sync {

Bandwidth::Bandwidth(uint64_t bytes_per_s)
    : rate_(bytes_per_s),
      // Full at the start: one second of traffic goes out at once.
      tokens_(static_cast<double>(bytes_per_s)),
      refilled_(std::chrono::steady_clock::now()) {}

std::chrono::milliseconds Bandwidth::Charge(uint64_t bytes) {
  if (rate_ == 0) return std::chrono::milliseconds(0);
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - refilled_).count();
  refilled_ = now;
  const double rate = static_cast<double>(rate_);
  tokens_ = std::min(rate, tokens_ + elapsed * rate);
  tokens_ -= static_cast<double>(bytes);
  if (tokens_ >= 0) return std::chrono::milliseconds(0);
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::duration<double>(-tokens_ / rate)) +
         std::chrono::milliseconds(1);
}

}  // namespace outpost::sync
