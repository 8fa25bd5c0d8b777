// FaultProxy: a TCP proxy for tests that sits between a site and its hub and misbehaves on
// command, one fault mode at a time (an "episode"): connections dropped at once, traffic
// delayed, connections reset part-way through a request, the hub's answer swallowed after
// the hub processed the request (the acknowledgement is lost), a blackhole that accepts and
// never answers, or connections reset once a number of the hub's bytes went back (a download
// cut part-way; the number is drawn per connection). Changing the mode closes every
// connection open under the previous one, so an episode's effects end with it. The upstream
// port can change (a restarted hub).
// Thread-safe.
#ifndef OUTPOST_TESTS_SYNC_FAULT_PROXY_H_
#define OUTPOST_TESTS_SYNC_FAULT_PROXY_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace outpost::testing {

class FaultProxy {
 public:
  enum class Mode {
    kPass,
    kDrop,
    kDelay,
    kResetMidRequest,
    kLoseResponse,
    kBlackhole,
    kCutDownstream,
  };
  static const char* ModeName(Mode mode);

  // Listens on 127.0.0.1 on a port of its own, forwarding to 127.0.0.1:upstream_port.
  explicit FaultProxy(uint16_t upstream_port);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  uint16_t port() const { return port_; }
  void SetUpstreamPort(uint16_t port) { upstream_port_ = port; }
  // kCutDownstream: each connection is reset once it has carried more than a number of the
  // hub's bytes drawn uniformly from [min_bytes, max_bytes] (from `seed` and the connection).
  void SetCutRange(uint64_t min_bytes, uint64_t max_bytes, uint64_t seed) {
    cut_min_ = min_bytes;
    cut_max_ = max_bytes;
    cut_seed_ = seed;
  }
  // Connections kCutDownstream has cut so far.
  uint64_t Cuts() const { return cuts_; }
  // Starts an episode: closes the connections of the previous one.
  void SetMode(Mode mode);
  // Connections accepted so far, per mode.
  std::map<Mode, uint64_t> Accepted() const;

 private:
  void AcceptLoop();
  void Handle(int client, Mode mode, uint64_t episode);
  int ConnectUpstream();
  // Registers a socket of the current episode; false when the episode has ended already.
  bool Track(int fd, uint64_t episode);
  void Untrack(int fd);

  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<uint16_t> upstream_port_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> cut_min_{16 * 1024};
  std::atomic<uint64_t> cut_max_{256 * 1024};
  std::atomic<uint64_t> cut_seed_{1};
  std::atomic<uint64_t> cuts_{0};
  std::atomic<uint64_t> accepted_total_{0};
  mutable std::mutex mu_;  // guards mode_, episode_, open_, accepted_, workers_
  Mode mode_ = Mode::kPass;
  uint64_t episode_ = 0;
  std::set<int> open_;
  std::map<Mode, uint64_t> accepted_;
  std::vector<std::thread> workers_;
  std::thread acceptor_;
};

}  // namespace outpost::testing

#endif  // OUTPOST_TESTS_SYNC_FAULT_PROXY_H_
