# outpost_hub_release: the release step of the retraining loop (a registry version becomes a
# signed bundle) and the retraining schedule with its operator API (release.h).
outpost_library(outpost_hub_release
  SOURCES
    release.cc            # release folders, config.yaml (through outpost_yaml), bundles
    model_artifact.cc     # a registry entry's model file (also read by `outpost train`)
    retrain_scheduler.cc  # the checking thread, the `outpost train` jobs, their state files
    registry_api.cc       # the operator's routes under /api/v1/models
    operator_api.cc       # what the operator routes that act share (paths, audit lines)
    site_releases.cc      # the site listener's /sync/v1/releases (hub/FORMAT.md section 10)
    rollout.cc            # rollouts in waves, their controller and operator API (section 11)
  DEPS outpost_base outpost_http outpost_hub_store outpost_bundle
  PRIVATE_DEPS outpost_yaml outpost_json outpost_crypto Threads::Threads)

# Real SQLite stores, real keys, real XGBoost models and a real `outpost train` child. The
# release's config.yaml is checked with the scoring server's own parser.
outpost_test(release_test
  SOURCES release_test.cc
  DEPS outpost_hub_release outpost_hub_store outpost_bundle outpost_train outpost_serve
       outpost_testing
  LABELS hub)
add_dependencies(release_test outpost)

# The operator API's request parsing (targets, methods, callers) over untrusted bytes.
outpost_fuzz(release_api_fuzz
  SOURCES release_api_fuzz.cc
  DEPS outpost_hub_release outpost_hub_store
  RUNS 250000
  CORPUS ${CMAKE_CURRENT_SOURCE_DIR}/testdata/release_api_seeds)

# The site listener's release routes (targets, Range, If-Match) over untrusted bytes.
outpost_fuzz(site_releases_fuzz
  SOURCES site_releases_fuzz.cc
  DEPS outpost_hub_release
  RUNS 250000
  CORPUS ${CMAKE_CURRENT_SOURCE_DIR}/testdata/site_releases_seeds)

# The rollout's rules (waves, gates, actions, offers, its document), the site's reading of
# rollbacks, and a controller started again on the same SQLite store.
outpost_test(rollout_unit_test
  SOURCES rollout_test.cc
  DEPS outpost_hub_release outpost_hub_store outpost_sync outpost_testing
  LABELS hub)
