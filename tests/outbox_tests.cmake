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
