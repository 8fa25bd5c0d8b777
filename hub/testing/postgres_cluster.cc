#include "hub/testing/postgres_cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "base/file.h"
#include "base/subprocess.h"

namespace outpost::hub::testing {
namespace {

constexpr const char* kRunuser = "/usr/sbin/runuser";
constexpr const char* kDefaultBindir = "/usr/lib/postgresql/15/bin";

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// A port that was free a moment ago on 127.0.0.1 (the server may still lose it to a race;
// Start() then tries another).
Result<int> FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return UnavailableError("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return UnavailableError("cannot bind a free port on 127.0.0.1");
  }
  int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

std::string Bindir() {
  for (const char* pg_config : {"/usr/bin/pg_config", "/usr/local/bin/pg_config"}) {
    if (!PathExists(pg_config)) continue;
    RunResult r = RunProgram({pg_config, "--bindir"});
    std::string dir = Trim(r.out);
    if (r.exit_code == 0 && PathExists(JoinPath(dir, "initdb"))) return dir;
  }
  return kDefaultBindir;
}

}  // namespace

Result<std::unique_ptr<PostgresCluster>> PostgresCluster::Start() {
  std::unique_ptr<PostgresCluster> c(new PostgresCluster());
  c->bindir_ = Bindir();
  if (!PathExists(JoinPath(c->bindir_, "initdb")) || !PathExists(JoinPath(c->bindir_, "pg_ctl"))) {
    return FailedPreconditionError("PostgreSQL server binaries not found in " + c->bindir_ +
                                   " (install Debian's postgresql package)");
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                     "/outpost-pg-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    return UnavailableError("cannot create a folder for PostgreSQL under " + tmpl);
  }
  c->dir_ = buf.data();
  c->as_postgres_ = ::geteuid() == 0;
  if (c->as_postgres_) {
    passwd* pw = ::getpwnam("postgres");
    if (pw == nullptr) {
      return FailedPreconditionError("running as root and there is no postgres user");
    }
    if (::chown(c->dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      return UnavailableError("cannot hand " + c->dir_ + " to the postgres user");
    }
  }
  std::vector<std::string> argv;
  if (c->as_postgres_) argv = {kRunuser, "-u", "postgres", "--"};
  argv.insert(argv.end(), {JoinPath(c->bindir_, "initdb"), "-D", c->dir_ + "/data", "-U",
                           "outpost", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync",
                           "--no-instructions"});
  RunResult init = RunProgram(argv);
  if (init.exit_code != 0) {
    return UnavailableError("initdb failed (" + std::to_string(init.exit_code) +
                            "): " + init.err + init.out);
  }
  Status last;
  for (int attempt = 0; attempt < 5; ++attempt) {
    last = c->StartServer();
    if (last.ok()) {
      fprintf(stderr, "PostgreSQL %s running on 127.0.0.1:%d (folder %s)\n",
              c->bindir_.c_str(), c->port_, c->dir_.c_str());
      return c;
    }
  }
  return last;
}

Status PostgresCluster::StartServer() {
  OUTPOST_ASSIGN_OR_RETURN(port_, FreePort());
  std::vector<std::string> argv;
  if (as_postgres_) argv = {kRunuser, "-u", "postgres", "--"};
  std::string options = "-p " + std::to_string(port_) + " -k '" + dir_ +
                        "' -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=100";
  argv.insert(argv.end(), {JoinPath(bindir_, "pg_ctl"), "-D", dir_ + "/data", "-l",
                           dir_ + "/server.log", "-w", "-t", "60", "-o", options, "start"});
  RunResult r = RunProgram(argv);
  if (r.exit_code != 0) {
    Result<std::string> log = ReadFile(dir_ + "/server.log", 1 << 16);
    return UnavailableError("pg_ctl start failed: " + r.err + r.out +
                            (log.ok() ? "; server log:\n" + *log : std::string()));
  }
  running_ = true;
  url_ = "postgresql://outpost@127.0.0.1:" + std::to_string(port_) + "/postgres";
  return Status::Ok();
}

PostgresCluster::~PostgresCluster() {
  if (running_) {
    std::vector<std::string> argv;
    if (as_postgres_) argv = {kRunuser, "-u", "postgres", "--"};
    argv.insert(argv.end(),
                {JoinPath(bindir_, "pg_ctl"), "-D", dir_ + "/data", "-m", "fast", "-w", "stop"});
    RunResult r = RunProgram(argv);
    if (r.exit_code != 0) fprintf(stderr, "pg_ctl stop failed: %s\n", r.err.c_str());
  }
  if (!dir_.empty()) RemoveTree(dir_).IgnoreError();
}

Status PostgresCluster::Restart() {
  std::vector<std::string> argv;
  if (as_postgres_) argv = {kRunuser, "-u", "postgres", "--"};
  std::string options = "-p " + std::to_string(port_) + " -k '" + dir_ +
                        "' -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=100";
  argv.insert(argv.end(), {JoinPath(bindir_, "pg_ctl"), "-D", dir_ + "/data", "-l",
                           dir_ + "/server.log", "-m", "fast", "-w", "-t", "60", "-o", options,
                           "restart"});
  RunResult r = RunProgram(argv);
  if (r.exit_code != 0) return UnavailableError("pg_ctl restart failed: " + r.err + r.out);
  return Status::Ok();
}

Result<std::string> PostgresCluster::CreateDatabase(std::string_view name) {
  if (name.empty() || name.size() > 63 || !(name[0] >= 'a' && name[0] <= 'z')) {
    return InvalidArgumentError("database name must be 1..63 of [a-z0-9_], starting with a letter");
  }
  for (char ch : name) {
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_')) {
      return InvalidArgumentError("database name must be 1..63 of [a-z0-9_]");
    }
  }
  RunResult r = RunProgram({JoinPath(bindir_, "createdb"), "-h", "127.0.0.1", "-p",
                            std::to_string(port_), "-U", "outpost", std::string(name)});
  if (r.exit_code != 0) {
    if (r.err.find("already exists") != std::string::npos) {
      return AlreadyExistsError("database " + std::string(name) + " exists");
    }
    return UnavailableError("createdb failed: " + r.err);
  }
  return "postgresql://outpost@127.0.0.1:" + std::to_string(port_) + "/" + std::string(name);
}

}  // namespace outpost::hub::testing
