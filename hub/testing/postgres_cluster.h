// PostgresCluster: a private PostgreSQL server for one test binary or benchmark.
//
// Start() runs initdb and pg_ctl from the folder `pg_config --bindir` names (Debian:
// /usr/lib/postgresql/15/bin) in a fresh folder under $TMPDIR (or /tmp), on a free port,
// listening on 127.0.0.1 and on a unix socket in that folder, with fsync on and trust
// authentication for the superuser "outpost". PostgreSQL refuses to run as root: when the
// caller is root, initdb and pg_ctl run as the `postgres` user (runuser) and the folder is
// handed to it. The destructor stops the server (pg_ctl stop -m fast) and removes the
// folder. A process killed before its destructor runs leaves the server running; its log
// and data stay in the folder Start() printed to stderr.
//
//   OUTPOST_ASSIGN_OR_RETURN(auto pg, hub::testing::PostgresCluster::Start());
//   OUTPOST_ASSIGN_OR_RETURN(std::string url, pg->CreateDatabase("contract_1"));
//   OUTPOST_ASSIGN_OR_RETURN(auto store, hub::OpenStore(url));
//
// Thread-safe after Start(): CreateDatabase may be called from any thread.
#ifndef OUTPOST_HUB_TESTING_POSTGRES_CLUSTER_H_
#define OUTPOST_HUB_TESTING_POSTGRES_CLUSTER_H_

#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"

namespace outpost::hub::testing {

class PostgresCluster {
 public:
  // Starts a cluster. FailedPrecondition when the PostgreSQL server binaries are missing
  // (install Debian's `postgresql` package), Unavailable when it does not come up (the
  // message quotes the server's log).
  static Result<std::unique_ptr<PostgresCluster>> Start();
  ~PostgresCluster();
  PostgresCluster(const PostgresCluster&) = delete;
  PostgresCluster& operator=(const PostgresCluster&) = delete;

  // "postgresql://outpost@127.0.0.1:PORT/postgres": the maintenance database.
  const std::string& url() const { return url_; }
  int port() const { return port_; }
  // The folder holding the unix socket (.s.PGSQL.PORT), the data folder and the log.
  const std::string& dir() const { return dir_; }
  // The folder of the server's binaries (initdb, pg_ctl, psql, createdb).
  const std::string& bindir() const { return bindir_; }

  // Restarts the server (pg_ctl restart -m fast) on the same port: open connections are
  // cut, committed data stays. For tests of what clients do when the server goes away.
  Status Restart();

  // Creates an empty database (name: 1..63 of [a-z0-9_], starting with a letter) and returns
  // its URL. AlreadyExists when it exists; InvalidArgument for a bad name.
  Result<std::string> CreateDatabase(std::string_view name);

 private:
  PostgresCluster() = default;
  Status StartServer();

  std::string bindir_;
  std::string dir_;
  std::string url_;
  int port_ = 0;
  bool as_postgres_ = false;  // run server binaries through runuser -u postgres
  bool running_ = false;
};

}  // namespace outpost::hub::testing

#endif  // OUTPOST_HUB_TESTING_POSTGRES_CLUSTER_H_
