# Helpers that give every Outpost target the same flags, tests and fuzz targets.

# Flags every target of ours gets. Added per target, never globally.
function(outpost_target_flags target)
  # Designated initializers that leave fields at their defaults are house style (STYLE.md),
  # so -Wextra's missing-field-initializers is off. -Wpsabi only notes that wide vector types
  # would pass differently across an ABI boundary; ours never cross one (internal kernels).
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wshadow -Wno-missing-field-initializers
                                           -Wno-psabi)
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
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer-no-link,address,undefined
                                             -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()

# outpost_library(NAME SOURCES ... DEPS ...): the static library of one subsystem.
function(outpost_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
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

# outpost_fuzz(NAME SOURCES ... DEPS ... [SECONDS n] [CORPUS dir]): a libFuzzer target, built
# only with OUTPOST_FUZZ=ON under clang, and run by CTest for a bounded time.
function(outpost_fuzz name)
  cmake_parse_arguments(ARG "" "SECONDS;CORPUS" "SOURCES;DEPS" ${ARGN})
  if(NOT OUTPOST_FUZZ)
    return()
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  outpost_target_flags(${name})
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  add_dependencies(outpost_fuzz_targets ${name})
  if(NOT ARG_SECONDS)
    set(ARG_SECONDS 30)
  endif()
  set(corpus_dir ${CMAKE_CURRENT_BINARY_DIR}/${name}_corpus)
  set(seed_args "")
  if(ARG_CORPUS)
    set(seed_args ${ARG_CORPUS})
  endif()
  add_test(NAME ${name}
           COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=1
                   $<TARGET_FILE:${name}> -max_total_time=${ARG_SECONDS} -rss_limit_mb=2048
                   -print_final_stats=1 ${corpus_dir} ${seed_args})
  set_tests_properties(${name} PROPERTIES LABELS fuzz TIMEOUT 600
                       FIXTURES_REQUIRED ${name}_corpus)
  add_test(NAME ${name}_mkcorpus COMMAND ${CMAKE_COMMAND} -E make_directory ${corpus_dir})
  set_tests_properties(${name}_mkcorpus PROPERTIES FIXTURES_SETUP ${name}_corpus LABELS fuzz)
endfunction()

include(GoogleTest)
