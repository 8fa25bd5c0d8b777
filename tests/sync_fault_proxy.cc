#include "tests/sync_fault_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <random>

namespace outpost::testing {
namespace {

// Closes with an RST instead of a FIN.
void Reset(int fd) {
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  ::close(fd);
}

bool WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

const char* FaultProxy::ModeName(Mode mode) {
  switch (mode) {
    case Mode::kPass: return "pass";
    case Mode::kDrop: return "drop";
    case Mode::kDelay: return "delay";
    case Mode::kResetMidRequest: return "reset_mid_request";
    case Mode::kLoseResponse: return "lose_response";
    case Mode::kBlackhole: return "blackhole";
    case Mode::kCutDownstream: return "cut-downstream";
  }
  return "?";
}

FaultProxy::FaultProxy(uint16_t upstream_port) : upstream_port_(upstream_port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::listen(listen_fd_, 128);
  socklen_t len = sizeof(addr);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

FaultProxy::~FaultProxy() {
  stopping_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  acceptor_.join();
  ::close(listen_fd_);
  SetMode(Mode::kPass);  // closes what is open
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    workers.swap(workers_);
  }
  for (auto& t : workers) t.join();
}

void FaultProxy::SetMode(Mode mode) {
  std::lock_guard<std::mutex> lock(mu_);
  mode_ = mode;
  ++episode_;
  for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
}

std::map<FaultProxy::Mode, uint64_t> FaultProxy::Accepted() const {
  std::lock_guard<std::mutex> lock(mu_);
  return accepted_;
}

void FaultProxy::AcceptLoop() {
  while (!stopping_) {
    int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) {
      if (stopping_) return;
      continue;
    }
    std::lock_guard<std::mutex> lock(mu_);
    ++accepted_[mode_];
    workers_.emplace_back([this, client, mode = mode_, episode = episode_] {
      Handle(client, mode, episode);
    });
  }
}

int FaultProxy::ConnectUpstream() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(upstream_port_.load());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool FaultProxy::Track(int fd, uint64_t episode) {
  std::lock_guard<std::mutex> lock(mu_);
  if (episode != episode_) return false;
  open_.insert(fd);
  return true;
}

void FaultProxy::Untrack(int fd) {
  std::lock_guard<std::mutex> lock(mu_);
  open_.erase(fd);
}

void FaultProxy::Handle(int client, Mode mode, uint64_t episode) {
  if (mode == Mode::kDrop || !Track(client, episode)) {
    Reset(client);
    return;
  }
  if (mode == Mode::kBlackhole) {
    char buf[4096];
    while (::recv(client, buf, sizeof(buf), 0) > 0) {
    }
    Untrack(client);
    ::close(client);
    return;
  }
  int upstream = ConnectUpstream();
  if (upstream < 0 || !Track(upstream, episode)) {
    if (upstream >= 0) ::close(upstream);
    Untrack(client);
    Reset(client);
    return;
  }
  std::mt19937_64 rng(static_cast<uint64_t>(client) * 7919 + episode);
  // kResetMidRequest: the request is cut after this many bytes (TLS records included).
  uint64_t cut_after = 50 + rng() % 3000;
  uint64_t forwarded_up = 0;
  // kCutDownstream: the hub's bytes this connection carries before it is reset.
  std::mt19937_64 cut_rng(cut_seed_.load() * 1000003 + static_cast<uint64_t>(client) * 7919 +
                          episode * 31 + accepted_total_.fetch_add(1));
  const uint64_t span = cut_max_.load() > cut_min_.load() ? cut_max_ - cut_min_ + 1 : 1;
  const uint64_t cut_down_after = cut_min_.load() + cut_rng() % span;
  uint64_t forwarded_down = 0;
  bool reset = false;
  pollfd fds[2] = {{client, POLLIN, 0}, {upstream, POLLIN, 0}};
  char buf[16384];
  // kLoseResponse (TLS 1.3): the server's first flight is forwarded, then the client's
  // second flight (its Finished and the request); from then on nothing of the hub's goes
  // back, and once the hub has been quiet for a while (it answered) the client is reset.
  int phase = 0;  // 0: before the server's first flight, 1: after it, 2: request sent
  bool withheld = false;
  while (true) {
    int ready = ::poll(fds, 2, withheld ? 300 : 1000);
    if (ready < 0 || stopping_) break;
    if (ready == 0) {
      if (withheld) {
        reset = true;
        break;
      }
      continue;
    }
    bool done = false;
    for (int i = 0; i < 2 && !done; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::recv(fds[i].fd, buf, sizeof(buf), 0);
      if (n <= 0) {
        if (withheld) reset = true;
        done = true;
        break;
      }
      if (mode == Mode::kDelay) std::this_thread::sleep_for(std::chrono::milliseconds(40));
      if (i == 0) {
        if (mode == Mode::kResetMidRequest && forwarded_up + static_cast<uint64_t>(n) > cut_after) {
          WriteAll(upstream, buf, cut_after - forwarded_up);
          reset = true;
          done = true;
          break;
        }
        if (phase == 1) phase = 2;
        forwarded_up += static_cast<uint64_t>(n);
        if (!WriteAll(upstream, buf, static_cast<size_t>(n))) done = true;
      } else {
        if (phase == 0) phase = 1;
        if (mode == Mode::kLoseResponse && phase == 2) {
          withheld = true;
          continue;
        }
        if (mode == Mode::kCutDownstream &&
            forwarded_down + static_cast<uint64_t>(n) > cut_down_after) {
          WriteAll(client, buf, cut_down_after - forwarded_down);
          cuts_.fetch_add(1);
          reset = true;
          done = true;
          break;
        }
        forwarded_down += static_cast<uint64_t>(n);
        if (!WriteAll(client, buf, static_cast<size_t>(n))) done = true;
      }
    }
    if (done) break;
  }
  Untrack(client);
  Untrack(upstream);
  if (reset) {
    Reset(client);
    Reset(upstream);
  } else {
    ::close(client);
    ::close(upstream);
  }
}

}  // namespace outpost::testing
