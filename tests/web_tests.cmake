# The dashboard's browser tests (tests/web/): seed a hub store with demo-like data, serve the
# built dashboard (web/dist) and its query API, and drive Debian's chromium headless with
# playwright-core (installed into web/node_modules by scripts/setup.sh).

# Fills a store through the Store interface as ingestion would.
add_executable(web_seed_hub web/seed_hub.cc)
target_link_libraries(web_seed_hub PRIVATE outpost_hub_store outpost_policy outpost_crypto outpost_base)
outpost_target_flags(web_seed_hub)

# A real HTTP server on a loopback port around hub::Dashboard (base/http's server core):
# what dashboard.test.mjs --server runs, the dashboard without the rest of the hub.
add_executable(web_dashboard_server web/dashboard_server.cc)
target_link_libraries(web_dashboard_server PRIVATE outpost_http outpost_hub_query
                                                   outpost_hub_store outpost_hub Threads::Threads)
outpost_target_flags(web_dashboard_server)

# The test runs under Debian's node (scripts/setup.sh installs it; configuring fails without
# it). The pages are served by `outpost hub serve` (its operator listener hands them
# to the dashboard).
find_program(OUTPOST_NODE node REQUIRED)
add_test(NAME web_dashboard_browser
         COMMAND ${OUTPOST_NODE} ${CMAKE_CURRENT_SOURCE_DIR}/web/dashboard.test.mjs
                 --seed $<TARGET_FILE:web_seed_hub>
                 --hub $<TARGET_FILE:outpost>
                 --web ${PROJECT_SOURCE_DIR}/web
                 --out ${CMAKE_CURRENT_BINARY_DIR}/web_screenshots)
set_tests_properties(web_dashboard_browser PROPERTIES LABELS "web" TIMEOUT 300)

# The same dashboard on the demo's own data: `outpost demo` into a fresh folder, then `outpost
# hub serve` on the demo's hub store; the pages are compared with the API and the demo's
# --summary JSON. Screenshots go to web_screenshots_demo/ in the build folder.
add_test(NAME web_dashboard_browser_demo
         COMMAND ${OUTPOST_NODE} ${CMAKE_CURRENT_SOURCE_DIR}/web/dashboard_demo.test.mjs
                 --outpost $<TARGET_FILE:outpost>
                 --web ${PROJECT_SOURCE_DIR}/web
                 --out ${CMAKE_CURRENT_BINARY_DIR}/web_screenshots_demo)
set_tests_properties(web_dashboard_browser_demo PROPERTIES LABELS "web" TIMEOUT 300)

# The model registry (#/models) and global insights (#/insights) pages over the seeded store,
# served by `outpost hub serve` with a `retrain:` entry and insights.min_sites: 4: the pages
# against the API's numbers and the k-threshold, approve and reject from the page with their
# audit lines. Screenshots go to web_screenshots_registry/ in the build folder.
add_test(NAME web_dashboard_browser_registry
         COMMAND ${OUTPOST_NODE} ${CMAKE_CURRENT_SOURCE_DIR}/web/dashboard_registry.test.mjs
                 --seed $<TARGET_FILE:web_seed_hub>
                 --hub $<TARGET_FILE:outpost>
                 --web ${PROJECT_SOURCE_DIR}/web
                 --out ${CMAKE_CURRENT_BINARY_DIR}/web_screenshots_registry)
set_tests_properties(web_dashboard_browser_registry PROPERTIES LABELS "web" TIMEOUT 300)

# The rollouts page (#/rollouts) over the seeded store with its installs (seed_hub --installs:
# six acme sites reporting what they serve and shadow), served by `outpost hub serve`: the
# fleet's model-version map against /api/v1/installs. Screenshots go to
# web_screenshots_rollouts/ in the build folder.
add_test(NAME web_dashboard_browser_rollouts
         COMMAND ${OUTPOST_NODE} ${CMAKE_CURRENT_SOURCE_DIR}/web/dashboard_rollouts.test.mjs
                 --seed $<TARGET_FILE:web_seed_hub>
                 --hub $<TARGET_FILE:outpost>
                 --web ${PROJECT_SOURCE_DIR}/web
                 --out ${CMAKE_CURRENT_BINARY_DIR}/web_screenshots_rollouts)
set_tests_properties(web_dashboard_browser_rollouts PROPERTIES LABELS "web" TIMEOUT 300)
