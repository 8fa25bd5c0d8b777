# `outpost keys` and `outpost bundle` end to end (included from tests/CMakeLists.txt): install
# with health check, revert, rollback, events, the install/rollback crash test (SIGKILL at
# every step), the Kubernetes overlay, and push to a docker-registry on loopback.
outpost_test(bundle_install_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/bundle_install_test.cc
  DEPS outpost_apps outpost_train outpost_testing
  LABELS bundle
  TIMEOUT 600)
target_compile_definitions(bundle_install_test PRIVATE OUTPOST_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
# The crash test kills `outpost_test_hooks` (the binary with OUTPOST_TEST_HOOKS, apps/main.cc);
# everything else runs the shipped `outpost`.
add_dependencies(bundle_install_test outpost outpost_test_hooks)
