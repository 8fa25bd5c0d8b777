# `outpost demo`'s whole loop (a hub and two sites as real processes), checked step by step.
outpost_test(demo_test
  SOURCES demo_test.cc
  DEPS outpost_apps outpost_train outpost_hub_store outpost_testing outpost_json
  LABELS integration
  TIMEOUT 900)
add_dependencies(demo_test outpost)
