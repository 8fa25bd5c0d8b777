// Bandwidth: the link's bandwidth cap as one token bucket over bytes, shared by whatever moves
// bytes over the link to the hub: the forwarder's uploads (sync/forwarder.h) and the releases
// the edge fetches (apps/edge_releases.h), so that together they stay within
// `sync.bandwidth_bytes_per_s`. The bucket holds at most one second of traffic; a transfer
// larger than the tokens left runs it into debt, which the next callers wait off.
//
// Thread-safe.
#ifndef OUTPOST_SYNC_BANDWIDTH_H_
#define OUTPOST_SYNC_BANDWIDTH_H_

#include <chrono>
#include <cstdint>
#include <mutex>

namespace outpost::sync {

class Bandwidth {
 public:
  // `bytes_per_s` 0 = no cap (Charge never asks to wait).
  explicit Bandwidth(uint64_t bytes_per_s);
  Bandwidth(const Bandwidth&) = delete;
  Bandwidth& operator=(const Bandwidth&) = delete;

  uint64_t bytes_per_s() const { return rate_; }

  // Takes `bytes` from the bucket (refilled for the time since the last call) and returns how
  // long the caller should wait before it moves more bytes: zero while the bucket holds
  // tokens, else the time its debt takes to be paid back. The caller waits in its own way
  // (interruptibly).
  std::chrono::milliseconds Charge(uint64_t bytes);

 private:
  const uint64_t rate_;
  std::mutex mu_;  // guards tokens_ and refilled_
  double tokens_;
  std::chrono::steady_clock::time_point refilled_;
};

}  // namespace outpost::sync

#endif  // OUTPOST_SYNC_BANDWIDTH_H_
