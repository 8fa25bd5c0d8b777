# The ONNX engine's conformance runner over the ONNX node tests (Debian's libonnx-testdata).
# Included from tests/CMakeLists.txt.
add_executable(onnx_conformance ${CMAKE_CURRENT_LIST_DIR}/onnx_conformance.cc)
target_link_libraries(onnx_conformance PRIVATE outpost_onnx)
outpost_target_flags(onnx_conformance)

# Debian's libonnx-testdata (scripts/setup.sh installs it); configuring fails without it.
find_path(OUTPOST_ONNX_TESTDATA_DIR NAMES node
          PATHS /usr/share/libonnx-testdata/data NO_DEFAULT_PATH REQUIRED)
add_test(NAME onnx_conformance
         COMMAND onnx_conformance ${OUTPOST_ONNX_TESTDATA_DIR}/node
                 ${CMAKE_CURRENT_LIST_DIR}/onnx_expected_failures.txt)
set_tests_properties(onnx_conformance PROPERTIES TIMEOUT 600 LABELS onnx)

# The golden suite: committed models and onnxruntime-node outputs (tests/onnx_golden/).
outpost_test(onnx_golden_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/onnx_golden_test.cc
  DEPS outpost_onnx outpost_testing)
target_compile_definitions(onnx_golden_test PRIVATE
  OUTPOST_ONNX_GOLDEN_DIR="${CMAKE_CURRENT_LIST_DIR}/onnx_golden/data")

# Regenerates the golden data when the generator changes (needs Debian's python3-sklearn,
# python3-xgboost, python3-torch and bench/engine's onnxruntime-node; not part of `make test`):
#   cmake --build <build> --target onnx_golden
find_program(OUTPOST_NODE node REQUIRED)
add_custom_command(
  OUTPUT ${CMAKE_CURRENT_LIST_DIR}/onnx_golden/data/outputs.txt
  COMMAND ${CMAKE_COMMAND} -E rm -rf ${CMAKE_CURRENT_LIST_DIR}/onnx_golden/data
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/onnx_golden/generate.py
          ${CMAKE_CURRENT_LIST_DIR}/onnx_golden/data $<TARGET_FILE:onnx_xgboost_convert>
  COMMAND ${OUTPOST_NODE} ${CMAKE_CURRENT_LIST_DIR}/onnx_golden/reference.js
          ${CMAKE_CURRENT_LIST_DIR}/onnx_golden/data
  DEPENDS ${CMAKE_CURRENT_LIST_DIR}/onnx_golden/generate.py
          ${CMAKE_CURRENT_LIST_DIR}/onnx_golden/reference.js onnx_xgboost_convert
  COMMENT "Regenerating the ONNX golden models and onnxruntime-node references"
  VERBATIM)
add_custom_target(onnx_golden DEPENDS ${CMAKE_CURRENT_LIST_DIR}/onnx_golden/data/outputs.txt)
