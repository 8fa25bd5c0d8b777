# The ONNX engine's conformance runner over the ONNX node tests (Debian's libonnx-testdata).
# Included from tests/CMakeLists.txt.
add_executable(onnx_conformance ${CMAKE_CURRENT_LIST_DIR}/onnx_conformance.cc)
target_link_libraries(onnx_conformance PRIVATE outpost_onnx)
outpost_target_flags(onnx_conformance)

find_path(OUTPOST_ONNX_TESTDATA_DIR NAMES node
          PATHS /usr/share/libonnx-testdata/data NO_DEFAULT_PATH)
if(OUTPOST_ONNX_TESTDATA_DIR)
  add_test(NAME onnx_conformance
           COMMAND onnx_conformance ${OUTPOST_ONNX_TESTDATA_DIR}/node
                   ${CMAKE_CURRENT_LIST_DIR}/onnx_expected_failures.txt)
  set_tests_properties(onnx_conformance PROPERTIES TIMEOUT 600 LABELS onnx)
else()
  message(STATUS "libonnx-testdata not found: the ONNX conformance test is not registered")
endif()
