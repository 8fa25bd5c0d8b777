#include "tests/sync_test_support.h"

#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "base/file.h"
#include "base/http/client.h"
#include "base/json/json.h"
#include "base/testing/test_util.h"
#include "hub/store.h"
#include "outbox/outbox.h"
#include "sync/receipt.h"

namespace outpost::testing {
namespace {

Status Openssl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = RunProgram(argv);
  if (r.exit_code != 0) return InternalError("openssl " + args[0] + " failed: " + r.err);
  return Status();
}

// A key and a certificate signed by the CA in `ca_dir`.
Status Issue(const std::string& ca_dir, const std::string& key, const std::string& crt,
             const std::string& subject, const std::string& ext) {
  std::string csr = crt + ".csr";
  OUTPOST_RETURN_IF_ERROR(Openssl({"req", "-new", "-newkey", "ed25519", "-nodes", "-keyout", key,
                                   "-out", csr, "-subj", subject}));
  std::string ext_file = crt + ".ext";
  OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(ext_file, ext + "\n"));
  return Openssl({"x509", "-req", "-in", csr, "-CA", JoinPath(ca_dir, "ca.crt"), "-CAkey",
                  JoinPath(ca_dir, "ca.key"), "-set_serial",
                  std::to_string(1000 + std::rand() % 100000), "-days", "2", "-extfile", ext_file,
                  "-out", crt});
}

}  // namespace

Status MakeTestPki(const std::string& hub_dir, const std::string& credentials_dir,
                   const std::string& site_id, const std::string& tenant) {
  OUTPOST_RETURN_IF_ERROR(MakeDirectories(hub_dir));
  OUTPOST_RETURN_IF_ERROR(MakeDirectories(credentials_dir));
  OUTPOST_RETURN_IF_ERROR(Openssl({"req", "-x509", "-newkey", "ed25519", "-nodes", "-keyout",
                                   JoinPath(hub_dir, "ca.key"), "-out", JoinPath(hub_dir, "ca.crt"),
                                   "-days", "2", "-subj", "/CN=test hub CA"}));
  OUTPOST_RETURN_IF_ERROR(Issue(hub_dir, JoinPath(hub_dir, "server.key"),
                                JoinPath(hub_dir, "server.crt"), "/CN=hub",
                                "subjectAltName=IP:127.0.0.1"));
  OUTPOST_RETURN_IF_ERROR(Issue(hub_dir, JoinPath(credentials_dir, "site.key"),
                                JoinPath(credentials_dir, "site.crt"),
                                "/CN=" + site_id + "/O=" + tenant, "basicConstraints=CA:FALSE"));
  ::chmod(JoinPath(credentials_dir, "site.key").c_str(), 0600);
  // The hub's receipt certificate (sync/FORMAT.md section 5), pinned as enrolment pins it.
  OUTPOST_RETURN_IF_ERROR(Issue(hub_dir, JoinPath(hub_dir, "receipt.key"),
                                JoinPath(hub_dir, "receipt.crt"), "/CN=outpost-hub receipts",
                                std::string("basicConstraints=critical,CA:FALSE\n"
                                            "keyUsage=critical,digitalSignature\n"
                                            "extendedKeyUsage=") +
                                    sync::kReceiptSigningOid));
  OUTPOST_ASSIGN_OR_RETURN(std::string receipt_crt, ReadFile(JoinPath(hub_dir, "receipt.crt")));
  OUTPOST_RETURN_IF_ERROR(
      WriteFileAtomically(JoinPath(credentials_dir, "hub_receipt.crt"), receipt_crt));
  OUTPOST_ASSIGN_OR_RETURN(std::string ca, ReadFile(JoinPath(hub_dir, "ca.crt")));
  return WriteFileAtomically(JoinPath(credentials_dir, "hub_ca.crt"), ca);
}

Result<std::string> AddHubSite(const std::string& data_dir, const std::string& site_id,
                               const std::string& tenant, const std::string& region) {
  RunResult r = RunProgram({JoinPath(BinaryDir(), "outpost"), "hub", "site", "add", "--data-dir",
                            data_dir, "--site", site_id, "--tenant", tenant, "--region", region});
  if (r.exit_code != 0) return InternalError("hub site add failed: " + r.err);
  std::string token = r.out.substr(0, r.out.find('\n'));
  if (token.rfind("op1.", 0) != 0) return InternalError("hub site add printed: " + r.out);
  return token;
}

Result<std::pair<std::unique_ptr<Subprocess>, uint16_t>> StartHub(const std::string& data_dir,
                                                                  const std::string& policy_file,
                                                                  const std::string& log) {
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<Subprocess> hub,
                           Subprocess::Start({JoinPath(BinaryDir(), "outpost"), "hub", "serve",
                                              "--data-dir", data_dir, "--listen", "127.0.0.1:0",
                                              "--policy", policy_file, "--log-format", "json"},
                                             log));
  OUTPOST_ASSIGN_OR_RETURN(std::string line, hub->ReadLine());
  if (line.rfind("listening on https://127.0.0.1:", 0) != 0) {
    return InternalError("hub said: " + line);
  }
  uint16_t port = static_cast<uint16_t>(std::atoi(line.c_str() + line.rfind(':') + 1));
  return std::make_pair(std::move(hub), port);
}

std::string OutpostBinary() { return JoinPath(BinaryDir(), "outpost"); }

RunResult RunOutpost(std::vector<std::string> args) {
  args.insert(args.begin(), OutpostBinary());
  return RunProgram(args);
}

bool WaitUntil(const std::function<bool()>& done, std::chrono::seconds bound) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return done();
}

Status EnrolSite(uint16_t port, const std::string& token, const std::string& site_id,
                 const std::string& credentials_dir) {
  RunResult r = RunProgram({JoinPath(BinaryDir(), "outpost"), "enrol", "--hub",
                            "https://127.0.0.1:" + std::to_string(port), "--token", token, "--site",
                            site_id, "--credentials", credentials_dir});
  if (r.exit_code != 0) return InternalError("enrol failed: " + r.err);
  return Status();
}

Result<std::pair<std::unique_ptr<Subprocess>, uint16_t>> StartEdge(const std::string& config,
                                                                   const std::string& log) {
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<Subprocess> edge,
                           Subprocess::Start({JoinPath(BinaryDir(), "outpost"), "edge", "--config",
                                              config, "--log-format", "json"},
                                             log));
  OUTPOST_ASSIGN_OR_RETURN(std::string line, edge->ReadLine());
  if (line.rfind("listening on http://127.0.0.1:", 0) != 0) {
    return InternalError("edge said: " + line);
  }
  uint16_t port = static_cast<uint16_t>(std::atoi(line.c_str() + line.rfind(':') + 1));
  return std::make_pair(std::move(edge), port);
}

Result<HubContents> ReadHubStore(const std::string& store_url, const std::string& tenant,
                                 const std::string& site_id,
                                 const std::vector<std::string>& nodes) {
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<hub::Store> store, hub::OpenStore(store_url));
  HubContents out;
  hub::RecordQuery query{.tenant = tenant, .site_id = site_id, .limit = 1000};
  for (;;) {
    OUTPOST_ASSIGN_OR_RETURN(std::vector<hub::HubRecord> page, store->QueryRecords(query));
    if (page.empty()) break;
    for (const hub::HubRecord& r : page) {
      if (r.site_id != site_id || r.tenant != tenant) {
        return InternalError("the store answered a record of another site: " + r.site_id);
      }
      if (r.id <= query.after_id) return InternalError("the store's row ids do not advance");
      ++out.records[{r.node_id, r.stream, r.seq}];
      ++out.kinds[r.kind];
      query.after_id = r.id;
    }
  }
  for (const std::string& node : nodes) {
    OUTPOST_ASSIGN_OR_RETURN(out.heads[node], store->AuditHead(site_id, node));
  }
  return out;
}

Result<uint64_t> EdgeBacklog(http::Client& client) {
  OUTPOST_ASSIGN_OR_RETURN(http::ClientResponse r, client.Request("GET", "/v1/outbox", ""));
  json::Parser parser;
  Result<json::Value> root = parser.Parse(r.body);
  Result<uint64_t> records = root.ok() ? (*root)["records"].GetUint64() : root.status();
  if (r.status != 200 || !records.ok()) {
    return InternalError("bad /v1/outbox answer: " + r.body);
  }
  return *records;
}

size_t HubRecordCount(const std::string& hub_dir) {
  auto store = hub::OpenStore("sqlite:" + JoinPath(hub_dir, "hub.db"));
  if (!store.ok()) return 0;
  auto records = (*store)->QueryRecords({.tenant = "acme", .limit = 10'000});
  return records.ok() ? records->size() : 0;
}

size_t OutboxRecordCount(const std::string& data_dir) {
  auto outbox = outbox::Outbox::Open(
      {.path = JoinPath(data_dir, "outbox.db"), .site_id = "plant-7", .node_id = "n1"});
  if (!outbox.ok()) return 9999;
  auto lease = (*outbox)->Lease({});
  return lease.ok() ? lease->records.size() : 9999;
}

}  // namespace outpost::testing
