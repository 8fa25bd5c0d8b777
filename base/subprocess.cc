#include "base/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <string_view>
#include <utility>

#include "base/file.h"

extern char** environ;

namespace outpost {
namespace {

// This process's environment with `overrides` set, as "NAME=value" strings; built before
// fork, since the child of a threaded process may only make async-signal-safe calls.
std::vector<std::string> ChildEnvironment(
    const std::vector<std::pair<std::string, std::string>>& overrides) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    std::string_view name = entry.substr(0, entry.find('='));
    bool replaced = false;
    for (const auto& [n, v] : overrides) replaced = replaced || n == name;
    if (!replaced) env.emplace_back(entry);
  }
  for (const auto& [name, value] : overrides) env.push_back(name + "=" + value);
  return env;
}

}  // namespace

Result<std::unique_ptr<Subprocess>> Subprocess::Start(
    const std::vector<std::string>& argv, const std::string& stderr_file,
    const std::vector<std::pair<std::string, std::string>>& environment, Lifetime lifetime) {
  if (argv.empty()) return InvalidArgumentError("no program to run");
  for (const auto& [name, value] : environment) {
    if (name.empty() || name.find('=') != std::string::npos) {
      return InvalidArgumentError("bad environment variable name \"" + name + "\"");
    }
  }
  const std::vector<std::string> env_strings =
      environment.empty() ? std::vector<std::string>() : ChildEnvironment(environment);
  std::vector<char*> envp;
  for (const std::string& e : env_strings) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return ErrnoToStatus(errno, "pipe for", argv[0]);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoToStatus(errno, "fork for", argv[0]);
  if (pid == 0) {
    if (lifetime == Lifetime::kDiesWithParent) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      // The parent may have died between fork and prctl: then nothing would send the signal.
      if (::getppid() != parent) ::_exit(127);
    }
    ::dup2(out[1], STDOUT_FILENO);
    if (!stderr_file.empty()) {
      int fd = ::open(stderr_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) ::dup2(fd, STDERR_FILENO);
    }
    // Signals blocked by a test's threads must not stay blocked in the child.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (environment.empty()) {
      ::execv(args[0], args.data());
    } else {
      ::execve(args[0], args.data(), envp.data());
    }
    ::_exit(127);
  }
  ::close(out[1]);
  return std::unique_ptr<Subprocess>(new Subprocess(pid, out[0]));
}

Subprocess::~Subprocess() {
  if (!reaped_) {
    ::kill(pid_, SIGKILL);
    Wait();
  }
  ::close(stdout_fd_);
}

Result<std::string> Subprocess::ReadLine() {
  while (true) {
    size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    char buf[4096];
    ssize_t n = ::read(stdout_fd_, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return OutOfRangeError("the program closed its output");
    buffer_.append(buf, static_cast<size_t>(n));
  }
}

std::string Subprocess::ReadAll() {
  char buf[4096];
  while (true) {
    ssize_t n = ::read(stdout_fd_, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buffer_.append(buf, static_cast<size_t>(n));
  }
  return std::exchange(buffer_, "");
}

Status Subprocess::Signal(int signal_number) {
  if (reaped_) return FailedPreconditionError("the program has exited");
  if (::kill(pid_, signal_number) != 0) return ErrnoToStatus(errno, "kill", std::to_string(pid_));
  return Status();
}

int Subprocess::Wait() {
  if (reaped_) return exit_code_;
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  reaped_ = true;
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return exit_code_;
}

RunResult RunProgram(const std::vector<std::string>& argv) {
  RunResult result;
  char tmpl[] = "/tmp/outpost-stderr-XXXXXX";
  int fd = ::mkstemp(tmpl);
  if (fd >= 0) ::close(fd);
  Result<std::unique_ptr<Subprocess>> p = Subprocess::Start(argv, tmpl);
  if (!p.ok()) {
    result.err = p.status().ToString();
    return result;
  }
  result.out = (*p)->ReadAll();
  result.exit_code = (*p)->Wait();
  Result<std::string> err = ReadFile(tmpl);
  if (err.ok()) result.err = *err;
  ::unlink(tmpl);
  return result;
}

}  // namespace outpost
