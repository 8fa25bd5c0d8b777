# The hub's server: enrolment and the site CA, TLS listeners with mutual TLS, ingestion
# (decode, policy check, audit chain, store), import of export files and receipts.
# ca.cc decides the CA's keys and certificates over the crypto adapter (base/crypto/x509.h),
# server.cc is the Boost.Beast (and TLS session) adapter; enrol.cc and ingest.cc read JSON with
# simdjson.
outpost_library(outpost_hub
  SOURCES ca.cc enrol.cc ingest.cc server.cc import.cc
  DEPS outpost_base outpost_crypto outpost_policy outpost_sync outpost_outbox outpost_hub_store
       outpost_hub_query  # the operator listener hands everything but ingestion to the dashboard
  # OpenSSL: server.cc's TLS sessions only.
  PRIVATE_DEPS simdjson::simdjson OpenSSL::SSL OpenSSL::Crypto Boost::boost Threads::Threads)
# Boost 1.74's Asio uses std::exchange without including <utility> (g++ 12, C++20).
target_compile_options(outpost_hub PRIVATE -include utility)

# Real TLS sockets on port 0; the ingestion suite runs against SQLite and, with the private
# cluster fixture, PostgreSQL.
outpost_test(hub_server_test
  SOURCES ca_test.cc server_test.cc
  DEPS outpost_hub outpost_hub_testing outpost_testing simdjson::simdjson
  LABELS hub postgres)

outpost_fuzz(hub_enrol_fuzz
  SOURCES enrol_fuzz.cc
  DEPS outpost_hub
  RUNS 50000
  CORPUS ${CMAKE_CURRENT_SOURCE_DIR}/testdata/enrol_seeds)
