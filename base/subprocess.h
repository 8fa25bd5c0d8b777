// Subprocess: runs a program with its stdout readable line by line through a pipe (so a
// caller waits for "listening on ..." by reading, never by sleeping), and lets the caller
// signal it and collect its exit status. Used by the demo and by cross-process tests.
#ifndef OUTPOST_BASE_SUBPROCESS_H_
#define OUTPOST_BASE_SUBPROCESS_H_

#include <sys/types.h>

#include <memory>

#include <string>
#include <utility>
#include <vector>

#include "base/status.h"

namespace outpost {

class Subprocess {
 public:
  // Starts argv[0] (a path) with the given arguments. stdout is piped to this object;
  // stderr goes to `stderr_file` when given, else is inherited. The child inherits this
  // process's environment, with each (name, value) of `environment` set (replacing a
  // variable of that name): the way to hand a child a secret, which its command line would
  // show to every user of the machine (/proc/<pid>/cmdline) and its environment shows only
  // to its owner.
  //
  // With Lifetime::kDiesWithParent the kernel kills the child (SIGKILL) when the thread that
  // called Start ends, which includes this whole process dying by any means, SIGKILL
  // included (PR_SET_PDEATHSIG): for work that must not outlive the process that watches it.
  // The calling thread must then live as long as the child should (it usually waits on it).
  enum class Lifetime { kIndependent, kDiesWithParent };
  static Result<std::unique_ptr<Subprocess>> Start(
      const std::vector<std::string>& argv, const std::string& stderr_file = "",
      const std::vector<std::pair<std::string, std::string>>& environment = {},
      Lifetime lifetime = Lifetime::kIndependent);
  // Kills (SIGKILL) and reaps the child if it is still running.
  ~Subprocess();

  pid_t pid() const { return pid_; }

  // Reads the next line of the child's stdout (without the newline). Blocks until a line
  // arrives; OutOfRange when the child closed stdout (e.g. exited) first.
  Result<std::string> ReadLine();
  // Reads stdout until the child closes it.
  std::string ReadAll();

  Status Signal(int signal_number);
  // Waits for the child to exit and returns its exit code, or 128 + signal when killed.
  int Wait();

 private:
  Subprocess(pid_t pid, int stdout_fd) : pid_(pid), stdout_fd_(stdout_fd) {}

  pid_t pid_;
  int stdout_fd_;
  bool reaped_ = false;
  int exit_code_ = -1;
  std::string buffer_;
};

// Runs a program to completion and returns its exit code, stdout and stderr (in
// RunResult::err).
struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
RunResult RunProgram(const std::vector<std::string>& argv);

}  // namespace outpost

#endif  // OUTPOST_BASE_SUBPROCESS_H_
