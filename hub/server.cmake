# The hub's server: enrolment and the site CA, TLS listeners with mutual TLS, ingestion
# (decode, policy check, audit chain, store), import of export files and receipts.
# ca.cc is the OpenSSL adapter for keys and certificates, server.cc the Boost.Beast (and TLS
# session) adapter; enrol.cc and ingest.cc read JSON with simdjson.
if(NOT TARGET outpost_sync OR NOT TARGET outpost_hub_store)
  message(STATUS "outpost_hub is not built: it needs outpost_sync and outpost_hub_store")
  return()
endif()

set(outpost_hub_sources ca.cc enrol.cc ingest.cc server.cc)
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/import.cc AND EXISTS ${PROJECT_SOURCE_DIR}/sync/export.h
   AND EXISTS ${PROJECT_SOURCE_DIR}/sync/receipt.h)
  list(APPEND outpost_hub_sources import.cc)
  set(outpost_hub_has_import ON)
endif()
outpost_library(outpost_hub
  SOURCES ${outpost_hub_sources}
  DEPS outpost_base outpost_policy outpost_sync outpost_outbox outpost_hub_store
  PRIVATE_DEPS simdjson::simdjson OpenSSL::SSL OpenSSL::Crypto Boost::boost Threads::Threads)
# Boost 1.74's Asio uses std::exchange without including <utility> (g++ 12, C++20).
target_compile_options(outpost_hub PRIVATE -include utility)
if(outpost_hub_has_import)
  target_compile_definitions(outpost_hub PUBLIC OUTPOST_HUB_HAS_IMPORT=1)
endif()
# The operator listener hands everything that is not ingestion to the dashboard.
if(TARGET outpost_hub_query)
  target_link_libraries(outpost_hub PUBLIC outpost_hub_query)
  target_compile_definitions(outpost_hub PUBLIC OUTPOST_HUB_HAS_DASHBOARD=1)
endif()

# Real TLS sockets on port 0; the ingestion suite runs against SQLite and, with the private
# cluster fixture, PostgreSQL.
set(hub_server_test_deps outpost_hub outpost_testing simdjson::simdjson)
set(hub_server_test_labels hub)
if(TARGET outpost_hub_testing AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/testing/postgres_cluster.h)
  list(APPEND hub_server_test_deps outpost_hub_testing)
  list(APPEND hub_server_test_labels postgres)
endif()
outpost_test(hub_server_test
  SOURCES ca_test.cc server_test.cc
  DEPS ${hub_server_test_deps}
  LABELS ${hub_server_test_labels})

outpost_fuzz(hub_enrol_fuzz
  SOURCES enrol_fuzz.cc
  DEPS outpost_hub
  RUNS 20000
  CORPUS ${CMAKE_CURRENT_SOURCE_DIR}/testdata/enrol_seeds)
