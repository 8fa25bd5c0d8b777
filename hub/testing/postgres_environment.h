// PostgresEnvironment: one PostgresCluster for every test of a binary, started before its
// first test and stopped after its last (a googletest global environment). Test binaries
// only: it needs googletest, which outpost_hub_testing (also linked by benchmarks) does not.
//
//   const ::testing::Environment* const kPostgresEnv =
//       ::testing::AddGlobalTestEnvironment(new hub::testing::PostgresEnvironment);
//   ...
//   ASSERT_NE(PostgresEnvironment::cluster(), nullptr) << PostgresEnvironment::status().ToString();
//   OUTPOST_ASSERT_OK_AND_ASSIGN(url, PostgresEnvironment::FreshDatabaseUrl(engine, file, "t"));
//
// A cluster that did not start leaves cluster() null and its reason in status(), so that
// each test that needs it fails with that reason.
#ifndef OUTPOST_HUB_TESTING_POSTGRES_ENVIRONMENT_H_
#define OUTPOST_HUB_TESTING_POSTGRES_ENVIRONMENT_H_

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "hub/testing/postgres_cluster.h"

namespace outpost::hub::testing {

class PostgresEnvironment : public ::testing::Environment {
 public:
  // `skip_env`, when set: a process whose environment has this variable starts no cluster
  // (a child process of a test, which uses its parent's).
  explicit PostgresEnvironment(const char* skip_env = nullptr) : skip_env_(skip_env) {}

  void SetUp() override {
    if (skip_env_ != nullptr && std::getenv(skip_env_) != nullptr) return;
    Result<std::unique_ptr<PostgresCluster>> c = PostgresCluster::Start();
    if (!c.ok()) {
      status_ = c.status();
      return;
    }
    cluster_ = std::move(*c);
  }
  void TearDown() override { cluster_.reset(); }

  // The cluster while the tests run; null when it did not start (see status()).
  static PostgresCluster* cluster() { return cluster_.get(); }
  // Why the cluster did not start.
  static const Status& status() { return status_; }

  // The store URL of a fresh database for `engine`: "sqlite", the file `sqlite_file`;
  // "postgres", a new database of the cluster named `prefix`_N (N counts up, so that
  // --gtest_repeat gets fresh ones). FailedPrecondition when the cluster did not start.
  static Result<std::string> FreshDatabaseUrl(std::string_view engine,
                                              const std::string& sqlite_file,
                                              std::string_view prefix) {
    if (engine == "sqlite") return "sqlite:" + sqlite_file;
    if (cluster() == nullptr) {
      return FailedPreconditionError("PostgreSQL did not start: " + status_.ToString());
    }
    static std::atomic<int> counter{0};
    return cluster()->CreateDatabase(std::string(prefix) + "_" + std::to_string(counter++));
  }

 private:
  const char* skip_env_;
  static inline std::unique_ptr<PostgresCluster> cluster_;
  static inline Status status_;
};

}  // namespace outpost::hub::testing

#endif  // OUTPOST_HUB_TESTING_POSTGRES_ENVIRONMENT_H_
