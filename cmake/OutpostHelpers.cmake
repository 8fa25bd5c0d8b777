# Helpers that give every Outpost target the same flags, tests and fuzz targets.

# Flags every target of ours gets. Added per target, never globally.
function(outpost_target_flags target)
  # Designated initializers that leave fields at their defaults are house style (docs/STYLE.md),
  # so -Wextra's missing-field-initializers is off. -Wpsabi only notes that wide vector types
  # would pass differently across an ABI boundary; ours never cross one (internal kernels).
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wshadow -Wno-missing-field-initializers
                                           -Wno-psabi)
  # Debug sections are most of a linked test's size (Asio's and Beast's long type names);
  # compressed, a full clean-clone build fits a CI disk several times smaller. gdb, addr2line
  # and the sanitizers' symbolizer read them as they are.
  target_link_options(${target} PRIVATE -Wl,--compress-debug-sections=zlib)
  # Shared subsystems (the sanitizer build): a library's private dependencies are not on its
  # users' link lines, as they are for static ones; the linker follows the shared libraries'
  # own DT_NEEDED entries instead, so both builds link the same target lists.
  if(OUTPOST_SHARED_LIBS)
    target_link_options(${target} PRIVATE -Wl,--copy-dt-needed-entries)
  endif()
  if(OUTPOST_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(OUTPOST_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${OUTPOST_SANITIZE} -fno-omit-frame-pointer
                                             -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=${OUTPOST_SANITIZE})
  endif()
  if(OUTPOST_FUZZ)
    # Everything a fuzz target links is instrumented for coverage and checked by ASan+UBSan.
    # -fno-sanitize-recover: an UBSan report stops the run like an ASan one, so it can never
    # pass as a line in the log.
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer-no-link,address,undefined
                                             -fno-sanitize-recover=all -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()

# outpost_library(NAME SOURCES ... DEPS ...): the library of one subsystem, static (shared
# with OUTPOST_SHARED_LIBS).
function(outpost_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${name} ${OUTPOST_LIBRARY_TYPE} ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  outpost_target_flags(${name})
endfunction()

# outpost_test(NAME SOURCES ... DEPS ... [LABELS ...]): one GoogleTest binary registered
# with CTest, test by test.
function(outpost_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  outpost_target_flags(${name})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  # An empty LABELS value would be dropped and shift the properties after it, so labels are
  # passed only when there are some.
  set(label_property "")
  if(ARG_LABELS)
    set(label_property LABELS "${ARG_LABELS}")
  endif()
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60
                       PROPERTIES TIMEOUT ${ARG_TIMEOUT} ${label_property})
endfunction()

# outpost_fuzz(NAME SOURCES ... DEPS ... [RUNS n] [SECONDS n] [CORPUS dir]): a libFuzzer
# target, built only with OUTPOST_FUZZ=ON under clang. Its inputs that once failed live in
# testdata/fuzz_regressions/NAME/ beside the CMakeLists.txt; CORPUS is its seed corpus.
#   - CTest test NAME (label "fuzz", what `make test` runs): replays the regressions and the
#     seeds, then fuzzes RUNS inputs from a fixed seed (scripts/fuzz_target.sh check): the
#     same commit gives the same result.
#   - CTest test NAME_explore (label "explore", what `make fuzz` runs): SECONDS from a random
#     seed, saving a new failing input into the regressions folder to be committed.
function(outpost_fuzz name)
  cmake_parse_arguments(ARG "" "RUNS;SECONDS;CORPUS" "SOURCES;DEPS" ${ARGN})
  if(NOT OUTPOST_FUZZ)
    return()
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  outpost_target_flags(${name})
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  add_dependencies(outpost_fuzz_targets ${name})
  if(NOT ARG_RUNS)
    set(ARG_RUNS 20000)
  endif()
  if(NOT ARG_SECONDS)
    set(ARG_SECONDS 300)
  endif()
  set(runner ${PROJECT_SOURCE_DIR}/scripts/fuzz_target.sh)
  set(regressions ${CMAKE_CURRENT_SOURCE_DIR}/testdata/fuzz_regressions/${name})
  add_test(NAME ${name}
           COMMAND ${runner} check $<TARGET_FILE:${name}> ${CMAKE_CURRENT_BINARY_DIR}/${name}_check
                   ${ARG_RUNS} ${regressions} ${ARG_CORPUS})
  set_tests_properties(${name} PROPERTIES LABELS fuzz TIMEOUT 900)
  add_test(NAME ${name}_explore
           COMMAND ${runner} explore $<TARGET_FILE:${name}>
                   ${CMAKE_CURRENT_BINARY_DIR}/${name}_explore ${ARG_SECONDS} ${regressions}
                   ${ARG_CORPUS})
  set_tests_properties(${name}_explore PROPERTIES LABELS explore TIMEOUT 86400)
endfunction()

include(GoogleTest)
