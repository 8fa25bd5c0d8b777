# sync/: the forwarder inside `outpost edge` against a hub over HTTPS with mutual TLS, and
# the network fault test (a fault-injecting TCP proxy between them).

# A stand-in for the hub's ingestion API (sync/FORMAT.md section 2) that the tests run as a
# process of its own, so that it can be killed and restarted.
add_executable(sync_test_hub sync_test_hub.cc)
target_link_libraries(sync_test_hub PRIVATE outpost_sync outpost_policy outpost_base
                      Boost::boost OpenSSL::SSL OpenSSL::Crypto Threads::Threads)
target_compile_options(sync_test_hub PRIVATE -include utility)
outpost_target_flags(sync_test_hub)

outpost_test(sync_fault_test
  SOURCES sync_fault_test.cc sync_fault_proxy.cc sync_test_support.cc
  DEPS outpost_apps outpost_policy outpost_testing simdjson::simdjson
  LABELS sync
  TIMEOUT 300)
add_dependencies(sync_fault_test outpost sync_test_hub)

# `outpost export` and `outpost import-receipt` at the site.
outpost_test(sync_export_test
  SOURCES sync_export_test.cc sync_test_support.cc
  DEPS outpost_apps outpost_sync outpost_testing simdjson::simdjson
  LABELS sync)
add_dependencies(sync_export_test outpost)
