# `outpost hub` and `outpost enrol` as operators run them: real processes, real TLS sockets
# on port 0, curl as the mutual-TLS client.
outpost_test(hub_cli_test
  SOURCES hub_cli_test.cc
  DEPS outpost_hub outpost_sync outpost_testing
  LABELS hub)
add_dependencies(hub_cli_test outpost)

# Export → import → receipt with real processes on both sides (`outpost export` and
# `outpost hub import`).
outpost_test(hub_roundtrip_test
  SOURCES hub_roundtrip_test.cc sync_test_support.cc
  DEPS outpost_hub outpost_sync outpost_outbox outpost_hub_store outpost_apps outpost_testing
       outpost_json
  LABELS hub)
add_dependencies(hub_roundtrip_test outpost)

# Sealed export files (sync/FORMAT.md section 6): enrol, export sealed to the hub's key, import,
# receipt; another hub's key and an altered file refused. Real processes on both sides.
outpost_test(hub_sealed_export_test
  SOURCES hub_sealed_export_test.cc sync_test_support.cc
  DEPS outpost_hub outpost_sync outpost_outbox outpost_hub_store outpost_apps outpost_testing
       outpost_json
  LABELS hub)
add_dependencies(hub_sealed_export_test outpost)

# The same error body shape ({"error", "reason"}) and reason for the same failure on every
# listener: the edge's REST listener and the hub's site and operator listeners, with curl.
outpost_test(error_body_test
  SOURCES error_body_test.cc sync_test_support.cc
  DEPS outpost_hub outpost_sync outpost_outbox outpost_hub_store outpost_apps outpost_json
       outpost_testing
  LABELS hub)
add_dependencies(error_body_test outpost)

# Three `outpost hub serve` processes on one private PostgreSQL and one CA folder: SIGKILL
# mid-upload and mid-retrain lose no acknowledged record, store none twice, move the
# scheduler lease within its bound and register the retraining job's version once.
outpost_test(hub_shared_store_test
  SOURCES hub_shared_store_test.cc sync_test_support.cc
  DEPS outpost_hub outpost_sync outpost_outbox outpost_hub_store outpost_hub_testing outpost_apps
       outpost_train outpost_bundle outpost_testing
  LABELS hub)
add_dependencies(hub_shared_store_test outpost)
