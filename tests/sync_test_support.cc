#include "tests/sync_test_support.h"

#include <sys/stat.h>

#include <cstdlib>
#include <sstream>

#include "base/file.h"
#include "base/testing/test_util.h"

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
                  std::to_string(1000 + std::rand() % 100000), "-days", "2", "-extfile",
                  ext_file, "-out", crt});
}

}  // namespace

Status MakeTestPki(const std::string& hub_dir, const std::string& credentials_dir,
                   const std::string& site_id, const std::string& tenant) {
  OUTPOST_RETURN_IF_ERROR(MakeDirectories(hub_dir));
  OUTPOST_RETURN_IF_ERROR(MakeDirectories(credentials_dir));
  OUTPOST_RETURN_IF_ERROR(Openssl({"req", "-x509", "-newkey", "ed25519", "-nodes", "-keyout",
                                   JoinPath(hub_dir, "ca.key"), "-out",
                                   JoinPath(hub_dir, "ca.crt"), "-days", "2", "-subj",
                                   "/CN=test hub CA"}));
  OUTPOST_RETURN_IF_ERROR(Issue(hub_dir, JoinPath(hub_dir, "server.key"),
                                JoinPath(hub_dir, "server.crt"), "/CN=hub",
                                "subjectAltName=IP:127.0.0.1"));
  OUTPOST_RETURN_IF_ERROR(Issue(hub_dir, JoinPath(credentials_dir, "site.key"),
                                JoinPath(credentials_dir, "site.crt"),
                                "/CN=" + site_id + "/O=" + tenant, "basicConstraints=CA:FALSE"));
  ::chmod(JoinPath(credentials_dir, "site.key").c_str(), 0600);
  OUTPOST_ASSIGN_OR_RETURN(std::string ca, ReadFile(JoinPath(hub_dir, "ca.crt")));
  return WriteFileAtomically(JoinPath(credentials_dir, "hub_ca.crt"), ca);
}

Result<std::pair<std::unique_ptr<Subprocess>, uint16_t>> StartTestHub(const std::string& hub_dir) {
  OUTPOST_ASSIGN_OR_RETURN(
      std::unique_ptr<Subprocess> hub,
      Subprocess::Start({JoinPath(JoinPath(BinaryDir(), "tests"), "sync_test_hub"), "--dir",
                         hub_dir},
                        JoinPath(hub_dir, "hub.log")));
  OUTPOST_ASSIGN_OR_RETURN(std::string line, hub->ReadLine());
  if (line.rfind("listening on 127.0.0.1:", 0) != 0) return InternalError("hub said: " + line);
  uint16_t port = static_cast<uint16_t>(std::atoi(line.c_str() + line.rfind(':') + 1));
  return std::make_pair(std::move(hub), port);
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

Result<HubContents> ReadTestHubStore(const std::string& hub_dir) {
  OUTPOST_ASSIGN_OR_RETURN(std::string text, ReadFile(JoinPath(hub_dir, "store.txt")));
  HubContents out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream l(line);
    std::string tag, node;
    l >> tag >> node;
    if (tag == "R") {
      std::string stream, sha;
      uint64_t seq = 0;
      l >> stream >> seq >> sha;
      ++out.records[{node, stream, seq}];
    } else if (tag == "H") {
      uint64_t seq = 0;
      std::string hash;
      l >> seq >> hash;
      out.heads[node] = {seq, hash};
    }
  }
  return out;
}

}  // namespace outpost::testing
