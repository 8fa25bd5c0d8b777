#include "base/subprocess.h"

#include <gtest/gtest.h>
#include <signal.h>

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

TEST(RunProgram, CapturesStdoutStderrAndCode) {
  RunResult r = RunProgram({"/bin/sh", "-c", "echo out; echo err >&2; exit 2"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_EQ(RunProgram({"/nonexistent/program"}).exit_code, 127);
}

}  // namespace
}  // namespace outpost
