# The scoring server under overload (included from tests/CMakeLists.txt): `outpost edge` with
# a compute-bound model, a bounded queue and dynamic batching, driven over REST and gRPC by
# many clients at once.
outpost_test(serve_overload_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/serve_overload_test.cc
  DEPS outpost_apps outpost_train outpost_testing outpost_serve_grpc_proto
  LABELS serve)
add_dependencies(serve_overload_test outpost)
