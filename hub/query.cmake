# The dashboard: the JSON query API under /api/v1/ (hub/QUERY_API.md) and the built web
# assets (web/, built by scripts/setup.sh into web/dist).
# The handlers read stored payloads through the JSON adapter (outpost_json).
outpost_library(outpost_hub_query
  SOURCES
    dashboard.cc             # the router; responses, payload readers, paging shared below
    dashboard_query.cc       # query strings and the parameters every route checks
    dashboard_sites.cc       # /api/v1/sites, /api/v1/sites/{site}
    dashboard_series.cc      # /api/v1/sites/{site}/series
    dashboard_audit.cc       # /api/v1/sites/{site}/audit
    dashboard_aggregates.cc  # /api/v1/aggregates
    dashboard_records.cc     # /api/v1/records
    dashboard_training.cc    # /api/v1/training
    dashboard_insights.cc    # /api/v1/insights/...: across the tenant's sites
    dashboard_installs.cc    # /api/v1/installs
    dashboard_storms.cc      # a site's storms and outbox account, from its summary records
    dashboard_assets.cc      # the built web assets (web/dist)
  DEPS outpost_base outpost_http  # hub/http.h: base/http's request and response
  PRIVATE_DEPS outpost_json)
# Where the hub finds the built assets unless told otherwise.
target_compile_definitions(outpost_hub_query PRIVATE
  OUTPOST_WEB_DIST_DIR="${PROJECT_SOURCE_DIR}/web/dist")

outpost_test(dashboard_test
  SOURCES dashboard_test.cc dashboard_insights_test.cc
  DEPS outpost_hub_query outpost_hub_store outpost_testing outpost_json)

outpost_fuzz(dashboard_fuzz
  SOURCES dashboard_fuzz.cc
  DEPS outpost_hub_query outpost_hub_store
  RUNS 100000
  CORPUS ${CMAKE_CURRENT_SOURCE_DIR}/testdata/dashboard_query_seeds)
