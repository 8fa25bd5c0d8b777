// SchedulerLease (hub/lease.h): the thread that takes and renews the scheduler lease, and the
// process's holder id. The rules and the bound: STORE.md section 7.
#include "hub/lease.h"

#include <unistd.h>

#include <utility>

#include "base/coding.h"
#include "base/crypto/crypto.h"
#include "base/logging.h"

namespace outpost::hub {

const std::string& HubProcessId() {
  static const std::string id = [] {
    char host[256] = {};
    if (::gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
      host[0] = '?';
      host[1] = '\0';
    }
    Result<std::string> random = crypto::RandomBytes(8);
    // Without random bytes the id still differs from every other live process (host, pid)
    // and from this pid's earlier processes by the start time.
    std::string tail =
        random.ok() ? HexEncode(*random)
                    : std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
    return std::string(host) + ":" + std::to_string(::getpid()) + ":" + tail;
  }();
  return id;
}

Result<std::unique_ptr<SchedulerLease>> SchedulerLease::Start(Store& store, Options options) {
  if (options.holder.empty()) options.holder = HubProcessId();
  const int64_t ttl_ms = options.ttl.count();
  if (ttl_ms < 1000 || ttl_ms > 86'400'000) {
    return InvalidArgumentError("the scheduler lease's ttl must be 1 s .. 1 day");
  }
  if (options.name.empty() || options.holder.size() > 256) {
    return InvalidArgumentError("the scheduler lease needs a name and a holder of 1..256 bytes");
  }
  std::unique_ptr<SchedulerLease> lease(new SchedulerLease(store, std::move(options)));
  // The first ask before Start returns: a hub alone holds the lease from its first check on.
  const bool held = lease->Ask();
  lease->Report(false, held);
  SchedulerLease* raw = lease.get();
  raw->thread_ = std::thread([raw, held] { raw->Loop(held); });
  return lease;
}

SchedulerLease::SchedulerLease(Store& store, Options options)
    : store_(store), options_(std::move(options)) {}

SchedulerLease::~SchedulerLease() { Stop(); }

void SchedulerLease::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  bool was_held = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    was_held = held_until_ != std::chrono::steady_clock::time_point{};
    held_until_ = {};
  }
  if (was_held) {
    Status s = store_.ReleaseLease(options_.name, options_.holder);
    if (!s.ok()) {
      OUTPOST_LOG(kWarning) << "the scheduler lease could not be let go; it expires by itself"
                            << Field("lease", options_.name) << Field("error", s);
    }
    if (options_.on_change) options_.on_change(false, generation());
  }
}

bool SchedulerLease::Held() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !stopping_ && std::chrono::steady_clock::now() < held_until_;
}

int64_t SchedulerLease::generation() const {
  std::lock_guard<std::mutex> lock(mu_);
  return generation_;
}

Lease SchedulerLease::current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return Lease{.name = options_.name, .holder = options_.holder, .generation = generation_};
}

int64_t SchedulerLease::answers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return answers_;
}

bool SchedulerLease::Ask() {
  // Measured before the request: the database sets the expiry from its clock at a moment
  // after this one, so held_until_ never outlasts the lease in the database.
  const auto sent = std::chrono::steady_clock::now();
  Result<Lease> lease = store_.AcquireLease(options_.name, options_.holder, options_.ttl.count());
  std::lock_guard<std::mutex> lock(mu_);
  if (!lease.ok()) {
    // Not renewed: held_until_ stands, and runs out on its own.
    OUTPOST_LOG(kWarning) << "the scheduler lease could not be asked for"
                          << Field("lease", options_.name) << Field("error", lease.status());
    return std::chrono::steady_clock::now() < held_until_;
  }
  ++answers_;
  if (lease->holder == options_.holder) {
    held_until_ = sent + options_.ttl;
    generation_ = lease->generation;
    return true;
  }
  held_until_ = {};
  return false;
}

void SchedulerLease::Report(bool was_held, bool held) {
  if (held == was_held) return;
  OUTPOST_LOG(kInfo) << (held ? "the scheduler lease is taken" : "the scheduler lease is lost")
                     << Field("lease", options_.name) << Field("holder", options_.holder)
                     << Field("generation", generation());
  if (options_.on_change) options_.on_change(held, generation());
}

void SchedulerLease::Loop(bool was_held) {
  const auto every = options_.ttl / 3;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    // Also wakes when a held lease runs out before the next ask (a failed renewal).
    auto next = std::chrono::steady_clock::now() + every;
    if (held_until_ > std::chrono::steady_clock::now() && held_until_ < next) next = held_until_;
    wake_.wait_until(lock, next, [&] { return stopping_; });
    if (stopping_) return;
    lock.unlock();
    const bool held = Ask();
    Report(was_held, held);
    was_held = held;
    lock.lock();
  }
}

}  // namespace outpost::hub
