# The outbox's crash test (included from tests/CMakeLists.txt): a child process that appends
# at full speed is killed with SIGKILL at random points, 100 times, and the store is checked.
add_executable(outbox_crash_writer ${CMAKE_CURRENT_LIST_DIR}/outbox_crash_writer.cc)
target_link_libraries(outbox_crash_writer PRIVATE outpost_outbox Threads::Threads)
outpost_target_flags(outbox_crash_writer)

outpost_test(outbox_crash_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/outbox_crash_test.cc
  DEPS outpost_outbox outpost_testing
  LABELS outbox
  TIMEOUT 600)
target_compile_definitions(outbox_crash_test
  PRIVATE OUTBOX_CRASH_WRITER="$<TARGET_FILE:outbox_crash_writer>")
add_dependencies(outbox_crash_test outbox_crash_writer)

# A month offline at ten times the bound, with a storm, drained by one `outpost export` and
# the hub's receipt (issue 21); the month is outbox/testing/month.h.
outpost_test(month_offline_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/month_offline_test.cc ${CMAKE_CURRENT_LIST_DIR}/sync_test_support.cc
  DEPS outpost_apps outpost_outbox outpost_sync outpost_hub_store outpost_testing outpost_json
  LABELS outbox)
add_dependencies(month_offline_test outpost)
