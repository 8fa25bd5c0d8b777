# Shadow mode on a real scoring server (included from tests/CMakeLists.txt): champion and
# shadow compared over loopback HTTP, feedback labels, promotion and drop with their events.
# The HTTP client is base/http's (outpost_http), not linked through outpost_apps, which would
# build every subcommand.
outpost_test(shadow_server_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/shadow_server_test.cc
  DEPS outpost_serve_edge_api outpost_train outpost_http outpost_testing Threads::Threads
  LABELS serve)

# The same through the `outpost` binary: `outpost edge` wires the shadow runner.
outpost_test(shadow_edge_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/shadow_edge_test.cc ${CMAKE_CURRENT_LIST_DIR}/edge_test_support.cc
  DEPS outpost_serve outpost_train outpost_http outpost_testing Threads::Threads
  LABELS serve)
add_dependencies(shadow_edge_test outpost)
