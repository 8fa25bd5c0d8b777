# `outpost image build` end to end (included from tests/CMakeLists.txt): two builds of the
# built `outpost` give one digest, the config and layer hold what image/FORMAT.md says, and
# skopeo reads both forms. Release build only (label no_sanitizer): the sanitizer build's
# `outpost` loads its subsystems from the build tree's shared libraries, which no image holds.
outpost_test(image_build_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/image_build_test.cc
  DEPS outpost_image outpost_json outpost_testing
  LABELS no_sanitizer
  TIMEOUT 300)
add_dependencies(image_build_test outpost)
