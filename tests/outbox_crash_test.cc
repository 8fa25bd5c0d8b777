// The outbox survives being killed: a child process (outbox_crash_writer) appends from four
// producers and forwards batches, and is killed with SIGKILL at a random point, 100 times.
// After every kill the store must open, every record the child was told is stored must be
// there exactly once with its payload, every record acknowledged to the forwarder must be
// gone, and each stream's seqs must have no gaps.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "base/testing/test_util.h"
#include "outbox/outbox.h"

namespace outpost::outbox {
namespace {

using Key = std::pair<std::string, uint64_t>;

// What the parent knows from the child's reports, over all runs.
struct Knowledge {
  std::map<Key, std::string> stored;                 // acknowledged appends: key -> uid
  std::set<Key> leased;                              // handed to the forwarder (maybe deleted)
  std::set<Key> deleted;                             // acknowledged by Ack: must be gone
  std::map<uint64_t, std::vector<Key>> open_leases;  // by lease id, this run
};

// Runs the child until it has reported `kill_after` appends (0: kill at once), kills it,
// and folds its reports into `k`.
void RunAndKill(const std::string& path, int run, int kill_after, Knowledge* k) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::dup2(fds[1], 1);
    std::string run_id = std::to_string(run);
    ::execl(OUTBOX_CRASH_WRITER, OUTBOX_CRASH_WRITER, path.c_str(), run_id.c_str(), nullptr);
    _exit(127);
  }
  ::close(fds[1]);
  bool killed = false;
  if (kill_after == 0) {
    ::kill(pid, SIGKILL);
    killed = true;
  }
  int appended = 0;
  std::string buffer;
  char chunk[65536];
  k->open_leases.clear();
  while (true) {
    ssize_t n = ::read(fds[0], chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buffer.append(chunk, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl; (nl = buffer.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::istringstream line(buffer.substr(start, nl - start));
      std::string tag;
      line >> tag;
      if (tag == "A") {
        std::string stream, uid;
        uint64_t seq;
        line >> stream >> seq >> uid;
        ASSERT_TRUE(k->stored.emplace(Key{stream, seq}, uid).second)
            << "seq " << stream << "/" << seq << " acknowledged twice";
        ++appended;
      } else if (tag == "L") {
        uint64_t lease;
        line >> lease;
        std::string item;
        while (line >> item) {
          size_t colon = item.find(':');
          Key key{item.substr(0, colon), std::stoull(item.substr(colon + 1))};
          k->leased.insert(key);
          k->open_leases[lease].push_back(key);
        }
      } else if (tag == "K") {
        uint64_t lease;
        line >> lease;
        for (const Key& key : k->open_leases[lease]) k->deleted.insert(key);
      } else if (tag == "E") {
        ADD_FAILURE() << "the writer failed: " << line.str();
      }
    }
    buffer.erase(0, start);
    if (!killed && appended >= kill_after) {
      ::kill(pid, SIGKILL);
      killed = true;
    }
  }
  ::close(fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "the writer ended by itself (status " << status << ")";
}

void Check(const std::string& path, const Knowledge& k) {
  Result<std::unique_ptr<Outbox>> box =
      Outbox::Open({.path = path, .site_id = "site-1", .node_id = "node-1"});
  ASSERT_TRUE(box.ok()) << "the store must open after every kill: " << box.status().ToString();
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      LeasedBatch all, (*box)->Lease({.max_records = 10'000'000, .max_bytes = uint64_t{1} << 40}));
  std::map<Key, std::string> present;
  std::set<std::string> uids;
  for (const Record& r : all.records) {
    ASSERT_NE(r.kind, Kind::kEvent) << "unexpected outbox event: " << r.payload;
    ASSERT_EQ(r.payload.rfind("uid=", 0), 0u);
    std::string uid = r.payload.substr(4, r.payload.find(';') - 4);
    ASSERT_TRUE(uids.insert(uid).second) << "record " << uid << " stored twice";
    present.emplace(Key{r.stream, r.seq}, uid);
  }
  for (const auto& [key, uid] : k.stored) {
    if (k.leased.count(key)) continue;  // the forwarder may have deleted it
    auto it = present.find(key);
    ASSERT_NE(it, present.end()) << "acknowledged " << key.first << "/" << key.second
                                 << " is missing";
    ASSERT_EQ(it->second, uid) << "wrong record at " << key.first << "/" << key.second;
  }
  for (const Key& key : k.deleted) {
    ASSERT_FALSE(present.count(key))
        << "acked-for-delete " << key.first << "/" << key.second << " is still there";
  }
  // No gaps: every seq up to the highest known one is present or went to the forwarder.
  std::map<std::string, uint64_t> highest;
  for (const auto& [key, uid] : present)
    highest[key.first] = std::max(highest[key.first], key.second);
  for (const auto& [key, uid] : k.stored)
    highest[key.first] = std::max(highest[key.first], key.second);
  for (const auto& [stream, top] : highest) {
    for (uint64_t seq = 1; seq <= top; ++seq) {
      Key key{stream, seq};
      ASSERT_TRUE(present.count(key) || k.leased.count(key))
          << "gap at " << stream << "/" << seq << " (highest " << top << ")";
    }
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(OutboxStats st, (*box)->Stats());
  EXPECT_EQ(st.quarantined_records, 0u);
}

TEST(OutboxCrash, EveryAcknowledgedRecordSurvivesSigkillExactlyOnceAcrossHundredKills) {
  testing::TempDir dir;
  const std::string path = dir.File("outbox.db");
  std::mt19937 rng(20261125);
  Knowledge k;
  for (int run = 0; run < 100; ++run) {
    SCOPED_TRACE("run " + std::to_string(run));
    // One run in ten is killed at once, often while it opens or recovers the file.
    int kill_after = run % 10 == 3 ? 0 : std::uniform_int_distribution<int>(1, 300)(rng);
    RunAndKill(path, run, kill_after, &k);
    Check(path, k);
    if (::testing::Test::HasFatalFailure()) return;
  }
  EXPECT_GT(k.stored.size(), 5000u);
  EXPECT_GT(k.deleted.size(), 0u);
}

}  // namespace
}  // namespace outpost::outbox
