// release_fanout: N enrolled sites fetch the release the hub offers them over their
// mutual-TLS link at once, exactly as `outpost edge`'s release puller does (hub/FORMAT.md
// section 10, sync/FORMAT.md section 7): GET /sync/v1/releases, then the bundle one 1 MiB
// range at a time with If-Match, each answer checked against the Content-Range asked for,
// the whole file's SHA-256 against the listing's. Prints one line per site that failed, then
// the totals; exit 1 when any site did not get the release whole. run.sh measures the hub's
// CPU around it.
//
//   release_fanout --hub https://127.0.0.1:PORT --creds DIR --sites N [--if-match 0]
//
// --if-match 0 leaves out If-Match, for a peer (nginx) whose ETag is not the SHA-256.
// DIR/site-<i>/ holds `outpost enrol`'s site.crt, site.key and hub_ca.crt, i = 1..N.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "base/coding.h"
#include "base/crypto/crypto.h"
#include "base/file.h"
#include "sync/hub_client.h"
#include "sync/release_list.h"

namespace outpost {
namespace {

constexpr uint64_t kChunk = uint64_t{1} << 20;

// Fetches the first release offered to one site; its bytes, or an error.
Result<uint64_t> FetchOne(const std::string& hub, const std::string& creds, bool if_match) {
  OUTPOST_ASSIGN_OR_RETURN(auto client,
                           sync::HubClient::Create({.base_url = hub,
                                                    .cert_file = JoinPath(creds, "site.crt"),
                                                    .key_file = JoinPath(creds, "site.key"),
                                                    .ca_file = JoinPath(creds, "hub_ca.crt"),
                                                    .timeout = std::chrono::seconds(60),
                                                    .max_response_bytes = 2 * kChunk}));
  OUTPOST_ASSIGN_OR_RETURN(http::ClientResponse list, client->Get("/sync/v1/releases"));
  if (list.status != 200) return UnavailableError("list: " + std::to_string(list.status));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<sync::OfferedRelease> offered,
                           sync::ParseReleaseList(list.body));
  if (offered.empty()) return NotFoundError("no release offered");
  const sync::OfferedRelease& r = offered.back();
  const std::string target = "/sync/v1/releases/" + r.model + "/" + std::to_string(r.model_version);
  crypto::Sha256Hasher hash;
  uint64_t have = 0;
  while (have < r.bytes) {
    const uint64_t last = std::min(have + kChunk, r.bytes) - 1;
    std::vector<std::pair<std::string, std::string>> headers = {
        {"Range", "bytes=" + std::to_string(have) + "-" + std::to_string(last)}};
    if (if_match) headers.emplace_back("If-Match", "\"" + r.sha256 + "\"");
    OUTPOST_ASSIGN_OR_RETURN(http::ClientResponse got, client->Get(target, std::move(headers)));
    auto range = sync::ParseContentRange(got.Header("Content-Range"));
    if (got.status != 206 || !range || (*range)[0] != have ||
        got.body.size() != (*range)[1] - (*range)[0] + 1) {
      return UnavailableError("range at " + std::to_string(have) + ": " +
                              std::to_string(got.status));
    }
    hash.Update(got.body);
    have += got.body.size();
  }
  if (HexEncode(hash.Finish()) != r.sha256) return DataLossError("SHA-256 differs");
  return have;
}

int Main(int argc, char** argv) {
  std::string hub, creds;
  int sites = 0;
  bool if_match = true;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--hub") hub = argv[i + 1];
    if (flag == "--creds") creds = argv[i + 1];
    if (flag == "--sites") sites = std::atoi(argv[i + 1]);
    if (flag == "--if-match") if_match = std::string(argv[i + 1]) != "0";
  }
  if (hub.empty() || creds.empty() || sites < 1) {
    std::fprintf(stderr, "usage: release_fanout --hub URL --creds DIR --sites N\n");
    return 2;
  }
  std::atomic<uint64_t> bytes{0};
  std::atomic<int> whole{0};
  std::vector<std::thread> threads;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 1; i <= sites; ++i) {
    threads.emplace_back([&, i] {
      const std::string dir = JoinPath(creds, "site-" + std::to_string(i));
      Result<uint64_t> got = FetchOne(hub, dir, if_match);
      if (!got.ok()) {
        std::printf("site-%d: %s\n", i, got.status().ToString().c_str());
        return;
      }
      bytes += *got;
      ++whole;
    });
  }
  for (std::thread& t : threads) t.join();
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("sites_whole %d of %d\nbytes %llu\nwall_s %.3f\n", whole.load(), sites,
              static_cast<unsigned long long>(bytes.load()), wall);
  return whole.load() == sites ? 0 : 1;
}

}  // namespace
}  // namespace outpost

int main(int argc, char** argv) { return outpost::Main(argc, argv); }
