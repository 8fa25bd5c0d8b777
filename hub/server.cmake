# The hub's server: enrolment and the site CA, TLS listeners with mutual TLS, ingestion
# (decode, policy check, audit chain, store), import of export files and receipts.
# ca.cc decides the CA's keys and certificates over the crypto adapter (base/crypto/x509.h),
# server.cc runs the listeners on base/http's server core and enrol.cc calls the hub with its
# client; enrol.cc and ingest.cc read JSON through outpost_json.
outpost_library(outpost_hub
  SOURCES ca.cc enrol.cc ingest.cc server.cc import.cc
          operator_tokens.cc  # the operators' hashed tokens (hub/FORMAT.md section 6)
  DEPS outpost_base outpost_crypto outpost_http outpost_policy outpost_sync outpost_outbox
       outpost_hub_store
       outpost_auth       # ParseBearer and MakeToken for operator tokens
       outpost_hub_query  # the operator listener hands everything but ingestion to the dashboard
  PRIVATE_DEPS outpost_json Threads::Threads)

# Real TLS sockets on port 0; the ingestion suite runs against SQLite and, with the private
# cluster fixture, PostgreSQL.
outpost_test(hub_server_test
  SOURCES ca_test.cc server_test.cc operator_tokens_test.cc
  DEPS outpost_hub outpost_hub_testing outpost_testing outpost_json
  LABELS hub postgres)

# The operator's Authorization header and the operator tokens file (hub/FORMAT.md section 6).
outpost_fuzz(hub_operator_tokens_fuzz
  SOURCES operator_tokens_fuzz.cc
  DEPS outpost_hub
  CORPUS ${CMAKE_CURRENT_SOURCE_DIR}/testdata/operator_tokens_seeds)

outpost_fuzz(hub_enrol_fuzz
  SOURCES enrol_fuzz.cc
  DEPS outpost_hub
  RUNS 50000
  CORPUS ${CMAKE_CURRENT_SOURCE_DIR}/testdata/enrol_seeds)
