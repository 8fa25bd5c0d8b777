// Helpers shared by the sync integration tests: a test PKI made with the openssl command
// (a hub CA, the hub's TLS certificate for 127.0.0.1, a site's credentials folder as
// `outpost enrol` leaves it), the real `outpost hub` (site add, serve, enrol), the edge
// process, and the hub's store read back through hub/store.h.
#ifndef OUTPOST_TESTS_SYNC_TEST_SUPPORT_H_
#define OUTPOST_TESTS_SYNC_TEST_SUPPORT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "base/status.h"
#include "base/subprocess.h"

namespace outpost::http {
class Client;
}  // namespace outpost::http

namespace outpost::testing {

// Writes into `hub_dir`: ca.key, ca.crt, server.key, server.crt (SAN IP:127.0.0.1),
// receipt.key and receipt.crt (the receipt key purpose, sync/FORMAT.md section 5); into
// `credentials_dir`: site.key (0600), site.crt (CN=site_id, O=tenant), hub_ca.crt and
// hub_receipt.crt (the pin, a copy of receipt.crt).
Status MakeTestPki(const std::string& hub_dir, const std::string& credentials_dir,
                   const std::string& site_id, const std::string& tenant = "acme");

// `outpost hub site add` on `data_dir`: the one-time enrolment token it prints.
Result<std::string> AddHubSite(const std::string& data_dir, const std::string& site_id,
                               const std::string& tenant, const std::string& region);

// Starts `outpost hub serve --data-dir data_dir --policy policy_file` on 127.0.0.1 (a new
// port each time) and returns it with its site port.
Result<std::pair<std::unique_ptr<Subprocess>, uint16_t>> StartHub(const std::string& data_dir,
                                                                  const std::string& policy_file,
                                                                  const std::string& log);

// `outpost enrol` against https://127.0.0.1:port: writes the site's credentials folder.
Status EnrolSite(uint16_t port, const std::string& token, const std::string& site_id,
                 const std::string& credentials_dir);

// The number of records a running edge still holds (GET /v1/outbox).
Result<uint64_t> EdgeBacklog(http::Client& client);

// Records of tenant "acme" in the SQLite store of the hub folder `hub_dir` (0 when it cannot
// be opened).
size_t HubRecordCount(const std::string& hub_dir);

// Records leasable from the outbox of site plant-7, node n1, in `data_dir` (9999 when it
// cannot be opened).
size_t OutboxRecordCount(const std::string& data_dir);

// Starts `outpost edge --config config` and returns it with its HTTP port.
Result<std::pair<std::unique_ptr<Subprocess>, uint16_t>> StartEdge(const std::string& config,
                                                                   const std::string& log);

// What the hub's store (hub/store.h) holds for one site: (node, stream, seq) -> how many
// times it is stored, how many records of each kind, and the audit head of each node.
struct HubContents {
  std::map<std::tuple<std::string, std::string, uint64_t>, int> records;
  std::map<std::string, uint64_t> kinds;  // records per kind name
  std::map<std::string, std::pair<uint64_t, std::string>> heads;
};
// Reads every record of `site_id` in `tenant` (paging by row id) from the store at
// `store_url` ("sqlite:PATH"), and the audit heads of `nodes`.
Result<HubContents> ReadHubStore(const std::string& store_url, const std::string& tenant,
                                 const std::string& site_id, const std::vector<std::string>& nodes);

// A policy that lets feedback leave raw, hashing request_id; nothing else leaves.
inline constexpr char kFeedbackPolicy[] =
    "format: 1\nversion: 1\ndefault: keep\nregions:\n  r1:\n    raw: true\n"
    "default_region: r1\nkinds:\n  feedback:\n    default: keep\n    fields:\n"
    "      request_id: hash\n";

// A policy for region "us" that lets anomaly records leave raw with their `v` and `score`;
// nothing else leaves.
inline constexpr char kAnomalyPolicy[] = R"(format: 1
version: 1
regions:
  us: {raw: true}
default_region: us
kinds:
  anomaly:
    fields:
      v: keep
      score: keep
)";

// A policy that lets the bundle events (kind `event`) leave the site and reach the hub.
inline constexpr char kEventPolicy[] =
    "format: 1\nversion: 1\ndefault: keep\nregions:\n  r1:\n    raw: true\n"
    "default_region: r1\nkinds:\n  event:\n    default: keep\n";

// The `outpost` binary beside the test, and a run of it with `args`.
std::string OutpostBinary();
RunResult RunOutpost(std::vector<std::string> args);

// Polls `done` every 100 ms until it holds or `bound` passes (a bound against a hung test,
// not a timing the test asserts); whether it held.
bool WaitUntil(const std::function<bool()>& done,
               std::chrono::seconds bound = std::chrono::seconds(90));

}  // namespace outpost::testing

#endif  // OUTPOST_TESTS_SYNC_TEST_SUPPORT_H_
