// SchedulerLease: keeps the hub's scheduled work in one process at a time, however many hub
// processes share the database. A thread asks the store for the named lease every ttl / 3
// (Store::AcquireLease); Held() says whether this process holds it now, and turns false by
// this process's own monotonic clock no later than the lease expires in the database, so two
// processes never both see Held() (STORE.md section 7, with the bound of a takeover).
//
//   OUTPOST_ASSIGN_OR_RETURN(auto lease, hub::SchedulerLease::Start(store, {}));
//   if (lease->Held()) StartTheJob();
//
// Work a process started while it held the lease is not stopped when it loses it: callers
// check Held() before they start something, and may record generation() with it.
//
// Thread-safe. `store` must outlive the lease.
#ifndef OUTPOST_HUB_LEASE_H_
#define OUTPOST_HUB_LEASE_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/status.h"
#include "hub/store.h"

namespace outpost::hub {

// An id for this process as a lease holder: "<host>:<pid>:<16 hex digits>" (random, so a
// restarted process with a reused pid is another holder). The same for every call.
const std::string& HubProcessId();

class SchedulerLease {
 public:
  struct Options {
    std::string name = "scheduler";
    std::string holder{};                   // empty = HubProcessId()
    std::chrono::milliseconds ttl{15'000};  // 1 s .. 1 day (Store::AcquireLease)
    // Called from the lease's thread, no lock held, each time Held() changes as seen by the
    // thread (true: taken; false: lost or let go). Null: none.
    std::function<void(bool held, int64_t generation)> on_change{};
  };
  // Checks the options (InvalidArgument), asks once (so Held() is true on return in a hub
  // that takes the lease at once), then starts the thread that asks every ttl / 3. A failed
  // first ask is logged, not returned: the thread asks again.
  static Result<std::unique_ptr<SchedulerLease>> Start(Store& store, Options options);
  // Stop().
  ~SchedulerLease();
  SchedulerLease(const SchedulerLease&) = delete;
  SchedulerLease& operator=(const SchedulerLease&) = delete;

  // Stops asking and releases the lease if this process holds it (Store::ReleaseLease), so
  // another takes it over at its next ask. Idempotent.
  void Stop();

  // Whether this process holds the lease now: its last successful ask returned it as holder
  // and was sent less than ttl ago, and Stop() has not been called.
  bool Held() const;
  // The lease's generation when this process last took or renewed it; 0 = never.
  int64_t generation() const;
  // Asks answered so far (taken, renewed or held by another; not failures). Tests wait on it.
  int64_t answers() const;
  const std::string& holder() const { return options_.holder; }
  // The lease as this process last took or renewed it (name, holder, generation; no
  // expiry), for Store::PutScheduleState.
  Lease current() const;

 private:
  SchedulerLease(Store& store, Options options);
  // Asks every ttl / 3 until Stop(); `was_held` is what the first ask found.
  void Loop(bool was_held);
  // One ask; returns whether this process holds the lease after it.
  bool Ask();
  // Logs and tells on_change when the lease was taken or lost.
  void Report(bool was_held, bool held);

  Store& store_;
  Options options_;
  mutable std::mutex mu_;  // guards the fields below
  std::condition_variable wake_;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point held_until_{};  // epoch = not held
  int64_t generation_ = 0;
  int64_t answers_ = 0;
  std::thread thread_;
};

}  // namespace outpost::hub

#endif  // OUTPOST_HUB_LEASE_H_
