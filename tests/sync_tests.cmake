# sync/: the forwarder inside `outpost edge` against the real `outpost hub serve` over HTTPS
# with mutual TLS, and the network fault test (a fault-injecting TCP proxy between them).

outpost_test(sync_fault_test
  SOURCES sync_fault_test.cc sync_fault_proxy.cc sync_test_support.cc
  DEPS outpost_apps outpost_policy outpost_hub_store outpost_testing outpost_json
  LABELS sync
  TIMEOUT 300)
add_dependencies(sync_fault_test outpost)

# `outpost export` and `outpost import-receipt` at the site.
outpost_test(sync_export_test
  SOURCES sync_export_test.cc sync_test_support.cc
  DEPS outpost_apps outpost_sync outpost_hub_store outpost_testing outpost_json
  LABELS sync)
add_dependencies(sync_export_test outpost)

# The forwarder against the real hub: a hub certificate from another CA, an aggregates-only
# region; in this process: the bandwidth cap, backoff while the hub is down, status reports.
outpost_test(sync_forwarder_test
  SOURCES sync_forwarder_test.cc sync_fault_proxy.cc sync_test_support.cc
  DEPS outpost_apps outpost_policy outpost_hub_store outpost_testing outpost_json
  LABELS sync)
add_dependencies(sync_forwarder_test outpost)

# Releases reach connected sites over their link: the real hub's /sync/v1/releases, the real
# `outpost edge` with sync.releases, the puller in this process through a proxy that cuts
# downloads; tampered, another site's, offline and repeated releases.
outpost_test(release_pull_test
  SOURCES release_pull_test.cc sync_fault_proxy.cc sync_test_support.cc
  DEPS outpost_apps outpost_hub_store outpost_train outpost_testing outpost_json
  LABELS sync
  TIMEOUT 900)
add_dependencies(release_pull_test outpost)

# Rollouts in waves with six real `outpost edge` sites and the real hub: a three-wave rollout
# with an offline site, a failed health check that halts and rolls back, an abort.
outpost_test(rollout_test
  SOURCES rollout_test.cc sync_test_support.cc
  DEPS outpost_apps outpost_hub_store outpost_train outpost_testing outpost_json
  LABELS sync
  TIMEOUT 900)
add_dependencies(rollout_test outpost)
