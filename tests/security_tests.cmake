# The secure site (issue 15's acceptance; included from tests/CMakeLists.txt): `outpost edge`
# over TLS with credentials, refusing every route and gRPC method to the wrong caller with its
# reason and serving the right one; least privilege by default, file modes, the BYTES bomb,
# feedback limits; the hub's receipts, operator tokens and slow clients; the Kubernetes
# install path refusing a rollback. Real processes on real sockets; every test runs in a
# process of its own, each with its own PKI, credentials and edge. The release build runs
# them; the sanitizer build does not (label no_sanitizer): two hundred instrumented edges would
# double `make test`, and the code they reach is checked under ASan by base_auth_test,
# http_server_test, serve_grpc_test, serve_edge_api_test and the fuzz targets.
outpost_test(security_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/security_test.cc ${CMAKE_CURRENT_LIST_DIR}/sync_test_support.cc
          ${CMAKE_CURRENT_LIST_DIR}/edge_test_support.cc
  DEPS outpost_apps outpost_train outpost_testing outpost_serve_grpc_proto outpost_crypto
       outpost_json outpost_sync outpost_outbox outpost_hub_store
  LABELS no_sanitizer
  TIMEOUT 300)
add_dependencies(security_test outpost)
