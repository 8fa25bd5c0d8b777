#include "base/subprocess.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <memory>
#include <string>
#include <thread>

#include "base/testing/test_util.h"

namespace outpost {
namespace {

TEST(Subprocess, ReadsLinesAndExitCode) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto p, Subprocess::Start({"/bin/sh", "-c", "echo one; echo two; exit 3"}));
  EXPECT_EQ(*p->ReadLine(), "one");
  EXPECT_EQ(*p->ReadLine(), "two");
  EXPECT_EQ(p->ReadLine().status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(p->Wait(), 3);
}

TEST(Subprocess, SignalledChildReportsSignal) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto p, Subprocess::Start({"/bin/sh", "-c", "echo up; exec sleep 600"}));
  EXPECT_EQ(*p->ReadLine(), "up");
  OUTPOST_ASSERT_OK(p->Signal(SIGKILL));
  EXPECT_EQ(p->Wait(), 128 + SIGKILL);
  EXPECT_FALSE(p->Signal(SIGTERM).ok());
}

// A child started to die with its parent is killed by the kernel when the thread that
// started it ends (here a thread of this process; a dead process ends all its threads),
// while an independent child started the same way lives on.
TEST(Subprocess, AChildThatDiesWithItsParentEndsWithTheStartingThread) {
  std::unique_ptr<Subprocess> tied, independent;
  std::thread starter([&] {
    auto t = Subprocess::Start({"/bin/sh", "-c", "echo up; exec sleep 600"}, "", {},
                               Subprocess::Lifetime::kDiesWithParent);
    auto i = Subprocess::Start({"/bin/sh", "-c", "echo up; exec sleep 600"});
    // Each prints its line once it runs the program, after it asked for the signal.
    if (t.ok() && t.value()->ReadLine().value_or("") == "up") tied = std::move(*t);
    if (i.ok() && i.value()->ReadLine().value_or("") == "up") independent = std::move(*i);
  });
  starter.join();
  ASSERT_NE(tied, nullptr);
  ASSERT_NE(independent, nullptr);
  EXPECT_EQ(tied->Wait(), 128 + SIGKILL);
  OUTPOST_ASSERT_OK(independent->Signal(0));  // still running
  OUTPOST_ASSERT_OK(independent->Signal(SIGTERM));
  EXPECT_EQ(independent->Wait(), 128 + SIGTERM);
}

TEST(Subprocess, EnvironmentReachesTheChildAndNotItsCommandLine) {
  ::setenv("OUTPOST_SUBPROCESS_TEST_KEEP", "kept", 1);
  ::setenv("OUTPOST_SUBPROCESS_TEST_SECRET", "old", 1);
  // The shell prints its own command line (as /proc shows it to every user) and the two
  // variables.
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      auto p, Subprocess::Start({"/bin/sh", "-c",
                                 "tr '\\0' ' ' < /proc/$$/cmdline; echo; "
                                 "echo \"$OUTPOST_SUBPROCESS_TEST_SECRET\"; "
                                 "echo \"$OUTPOST_SUBPROCESS_TEST_KEEP\""},
                                "", {{"OUTPOST_SUBPROCESS_TEST_SECRET", "s3cret=x"}}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string cmdline, p->ReadLine());
  EXPECT_NE(cmdline.find("/bin/sh"), std::string::npos) << cmdline;
  EXPECT_EQ(cmdline.find("s3cret"), std::string::npos) << cmdline;
  EXPECT_EQ(*p->ReadLine(), "s3cret=x");  // replaced, not appended beside the old value
  EXPECT_EQ(*p->ReadLine(), "kept");      // the rest is inherited
  EXPECT_EQ(p->Wait(), 0);
  ::unsetenv("OUTPOST_SUBPROCESS_TEST_KEEP");
  ::unsetenv("OUTPOST_SUBPROCESS_TEST_SECRET");
  EXPECT_EQ(Subprocess::Start({"/bin/true"}, "", {{"A=B", "c"}}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(RunProgram, CapturesStdoutStderrAndCode) {
  RunResult r = RunProgram({"/bin/sh", "-c", "echo out; echo err >&2; exit 2"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_EQ(RunProgram({"/nonexistent/program"}).exit_code, 127);
}

}  // namespace
}  // namespace outpost
