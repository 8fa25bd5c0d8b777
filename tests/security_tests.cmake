# The secure site (issue 15's acceptance; included from tests/CMakeLists.txt): `outpost edge`
# over TLS with credentials, refusing every route and gRPC method to the wrong caller with its
# reason and serving the right one; least privilege by default, file modes, the BYTES bomb,
# feedback limits; the hub's receipts, operator tokens and slow clients; the Kubernetes
# install path refusing a rollback. Real processes on real sockets; every test runs in a
# process of its own.
outpost_test(security_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/security_test.cc ${CMAKE_CURRENT_LIST_DIR}/sync_test_support.cc
  DEPS outpost_apps outpost_train outpost_testing outpost_serve_grpc_proto outpost_crypto
       outpost_json outpost_sync outpost_outbox outpost_hub_store
  LABELS security
  TIMEOUT 300)
add_dependencies(security_test outpost)
