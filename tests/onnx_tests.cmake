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

# The large golden models (vision, sequence, quantized, FP16; tests/onnx_golden/models.py):
# too big to commit (resnet18 alone is 45 MB), so the build generates them from a fixed seed
# and scores them with onnxruntime-node (bench/engine/node_modules, which scripts/setup.sh
# installs) whenever the generator or the reference script changes: about 15 s.
set(OUTPOST_ONNX_MODELS_DIR ${CMAKE_CURRENT_BINARY_DIR}/onnx_models)
add_custom_command(
  OUTPUT ${OUTPOST_ONNX_MODELS_DIR}/outputs.txt
  COMMAND ${CMAKE_COMMAND} -E rm -rf ${OUTPOST_ONNX_MODELS_DIR}
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/onnx_golden/models.py ${OUTPOST_ONNX_MODELS_DIR}
  COMMAND ${OUTPOST_NODE} ${CMAKE_CURRENT_LIST_DIR}/onnx_golden/reference.js ${OUTPOST_ONNX_MODELS_DIR}
  DEPENDS ${CMAKE_CURRENT_LIST_DIR}/onnx_golden/models.py
          ${CMAKE_CURRENT_LIST_DIR}/onnx_golden/reference.js
          ${CMAKE_SOURCE_DIR}/bench/engine/package-lock.json
  COMMENT "Generating the large ONNX golden models and their onnxruntime-node outputs"
  VERBATIM)
add_custom_target(onnx_models DEPENDS ${OUTPOST_ONNX_MODELS_DIR}/outputs.txt)
outpost_test(onnx_models_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/onnx_models_test.cc
  DEPS outpost_onnx outpost_testing
  TIMEOUT 600)
add_dependencies(onnx_models_test onnx_models)
target_compile_definitions(onnx_models_test PRIVATE
  OUTPOST_ONNX_MODELS_DIR="${OUTPOST_ONNX_MODELS_DIR}")
