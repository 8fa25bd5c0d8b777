# outpost_hub_store: the hub's Store (store.h) with its two engines, SQLite (through the
# SQLite adapter of base/sqlite/) and PostgreSQL (libpq; postgres_store.cc is the only file that
# includes libpq-fe.h). Schema and rules: STORE.md.
find_package(PostgreSQL REQUIRED)

outpost_library(outpost_hub_store
  SOURCES
    store.cc
    sqlite_store.cc
    postgres_store.cc    # the libpq adapter of hub/
    secrets.cc           # store URLs off command lines, secret files (hub/FORMAT.md section 6)
    lease.cc             # the scheduler lease's holder thread (STORE.md section 7)
  DEPS outpost_base
  PRIVATE_DEPS outpost_sqlite outpost_crypto PostgreSQL::PostgreSQL)

# Retention (STORE.md section 8): the config's `retention:` map, the export files of expired
# records (FORMAT.md section 9, zstd frames through sync/compress.h), the lease holder's
# thread that runs a pass.
outpost_library(outpost_hub_retention
  SOURCES retention.cc
  DEPS outpost_hub_store outpost_crypto outpost_base
  PRIVATE_DEPS outpost_sync)

# A private PostgreSQL cluster for tests and benchmarks (testing/postgres_cluster.h).
outpost_library(outpost_hub_testing
  SOURCES testing/postgres_cluster.cc
  DEPS outpost_base)

# The contract suite over both engines. It is registered as ONE CTest test (not test by
# test, as outpost_test does) so that the binary starts its PostgreSQL cluster once.
add_executable(store_contract_test store_contract_test.cc)
target_link_libraries(store_contract_test PRIVATE outpost_hub_store outpost_hub_testing
                      outpost_testing GTest::gtest GTest::gtest_main)
outpost_target_flags(store_contract_test)
add_test(NAME store_contract_test COMMAND store_contract_test)
set_tests_properties(store_contract_test PROPERTIES LABELS "hub;postgres" TIMEOUT 600)

# The scheduler lease (STORE.md section 7) over both engines, two stores standing for two
# hubs, and a holder in a child process killed with SIGKILL. One CTest test, like the
# contract suite, so that the binary starts its PostgreSQL cluster once.
add_executable(lease_test lease_test.cc)
target_link_libraries(lease_test PRIVATE outpost_hub_store outpost_hub_testing
                      outpost_testing GTest::gtest GTest::gtest_main)
outpost_target_flags(lease_test)
add_test(NAME lease_test COMMAND lease_test)
set_tests_properties(lease_test PROPERTIES LABELS "hub;postgres" TIMEOUT 600)

# Reads at scale (STORE.md section 6): the plan of each heavy read of the dashboard, over both
# engines, on a seeded fleet. One CTest test, so that the binary starts its PostgreSQL
# cluster and seeds each engine's fleet once.
add_executable(hub_query_plan_test query_plan_test.cc)
target_link_libraries(hub_query_plan_test PRIVATE outpost_hub_store outpost_hub_testing
                      outpost_testing GTest::gtest GTest::gmock GTest::gtest_main)
outpost_target_flags(hub_query_plan_test)
add_test(NAME hub_query_plan_test COMMAND hub_query_plan_test)
set_tests_properties(hub_query_plan_test PROPERTIES LABELS "hub;postgres" TIMEOUT 600)

# Partitions and retention (STORE.md section 8) on a private PostgreSQL cluster: partitions
# made ahead, ingest across days, exactly-once across partitions and after a drop, the
# export files, the migration from version 4, refusals. One CTest test, like the contract
# suite, so that the binary starts its PostgreSQL cluster once.
add_executable(hub_retention_test retention_test.cc)
target_link_libraries(hub_retention_test PRIVATE outpost_hub_retention outpost_hub_store
                      outpost_hub_testing outpost_json outpost_testing GTest::gtest
                      GTest::gtest_main)
outpost_target_flags(hub_retention_test)
add_test(NAME hub_retention_test COMMAND hub_retention_test)
set_tests_properties(hub_retention_test PROPERTIES LABELS "hub;postgres" TIMEOUT 600)
