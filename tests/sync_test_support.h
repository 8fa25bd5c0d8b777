// Helpers shared by the sync integration tests: a test PKI made with the openssl command
// (a hub CA, the hub's TLS certificate for 127.0.0.1, a site's credentials folder as
// `outpost enrol` leaves it), the stand-in hub process, the edge process, and the hub's
// store file read back.
#ifndef OUTPOST_TESTS_SYNC_TEST_SUPPORT_H_
#define OUTPOST_TESTS_SYNC_TEST_SUPPORT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>

#include "base/status.h"
#include "base/subprocess.h"

namespace outpost::testing {

// Writes into `hub_dir`: ca.key, ca.crt, server.key, server.crt (SAN IP:127.0.0.1); into
// `credentials_dir`: site.key (0600), site.crt (CN=site_id, O=tenant), hub_ca.crt.
Status MakeTestPki(const std::string& hub_dir, const std::string& credentials_dir,
                   const std::string& site_id, const std::string& tenant = "acme");

// Starts sync_test_hub on `hub_dir` and returns it with its port.
Result<std::pair<std::unique_ptr<Subprocess>, uint16_t>> StartTestHub(const std::string& hub_dir);

// Starts `outpost edge --config config` and returns it with its HTTP port.
Result<std::pair<std::unique_ptr<Subprocess>, uint16_t>> StartEdge(const std::string& config,
                                                                   const std::string& log);

// The hub's store file: (node, stream, seq) -> how many times it is stored; and the last
// audit head per node.
struct HubContents {
  std::map<std::tuple<std::string, std::string, uint64_t>, int> records;
  std::map<std::string, std::pair<uint64_t, std::string>> heads;
};
Result<HubContents> ReadTestHubStore(const std::string& hub_dir);

// A policy that lets feedback leave raw, hashing request_id; nothing else leaves.
inline constexpr char kFeedbackPolicy[] =
    "format: 1\nversion: 1\ndefault: keep\nregions:\n  r1:\n    raw: true\n"
    "default_region: r1\nkinds:\n  feedback:\n    default: keep\n    fields:\n"
    "      request_id: hash\n";

}  // namespace outpost::testing

#endif  // OUTPOST_TESTS_SYNC_TEST_SUPPORT_H_
