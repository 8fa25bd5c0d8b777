# Shadow mode on a real scoring server (included from tests/CMakeLists.txt): champion and
# shadow compared over loopback HTTP, feedback labels, promotion and drop with their events.
# The HTTP client is compiled in rather than linked from outpost_apps, which would build
# every subcommand.
outpost_test(shadow_server_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/shadow_server_test.cc ${PROJECT_SOURCE_DIR}/apps/http_client.cc
  DEPS outpost_serve_edge_api outpost_train outpost_testing simdjson::simdjson Boost::boost
       Threads::Threads
  LABELS serve)
target_compile_options(shadow_server_test PRIVATE -include utility)

# The same through the `outpost` binary: `outpost edge` wires the shadow runner.
outpost_test(shadow_edge_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/shadow_edge_test.cc ${PROJECT_SOURCE_DIR}/apps/http_client.cc
  DEPS outpost_serve outpost_train outpost_testing Boost::boost Threads::Threads
  LABELS serve)
target_compile_options(shadow_edge_test PRIVATE -include utility)
add_dependencies(shadow_edge_test outpost)
