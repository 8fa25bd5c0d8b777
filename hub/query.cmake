# The dashboard: the JSON query API under /api/v1/ (hub/QUERY_API.md) and the built web
# assets (web/, built by scripts/setup.sh into web/dist).
outpost_library(outpost_hub_query
  SOURCES dashboard.cc  # the simdjson adapter of the dashboard
  DEPS outpost_base
  PRIVATE_DEPS simdjson::simdjson)
# Where the hub finds the built assets unless told otherwise.
target_compile_definitions(outpost_hub_query PRIVATE
  OUTPOST_WEB_DIST_DIR="${PROJECT_SOURCE_DIR}/web/dist")

outpost_test(dashboard_test
  SOURCES dashboard_test.cc
  DEPS outpost_hub_query outpost_hub_store outpost_testing simdjson::simdjson)

outpost_fuzz(dashboard_fuzz
  SOURCES dashboard_fuzz.cc
  DEPS outpost_hub_query outpost_hub_store
  RUNS 20000
  CORPUS ${CMAKE_CURRENT_SOURCE_DIR}/testdata/dashboard_query_seeds)
