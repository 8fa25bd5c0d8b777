// Records across the air gap on disk, with real processes on both sides: a site enrolled
// with `outpost enrol`, records in its outbox, `outpost export`, `outpost hub import` (stores
// them and writes a signed receipt), a replayed export (nothing stored twice), a tampered
// export (refused, nothing stored), a receipt signed by another hub, one forged with the
// site's own key (it chains to the hub CA, but is not the receipt certificate the site pinned
// at enrolment) and the real one at a site without that pin (told to re-enrol) all refused by
// `outpost import-receipt` with nothing deleted, and the real receipt deleting exactly what
// was exported.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdio>
#include <string>
#include <vector>

#include "base/crypto/x509.h"
#include "base/file.h"
#include "base/subprocess.h"
#include "base/testing/test_util.h"
#include "hub/ca.h"
#include "hub/store.h"
#include "outbox/outbox.h"
#include "sync/receipt.h"
#include "tests/sync_test_support.h"

namespace outpost {
namespace {

using testing::TempDir;

std::string Outpost() { return JoinPath(testing::BinaryDir(), "outpost"); }

constexpr const char* kPolicy = testing::kAnomalyPolicy;

constexpr int kRecords = 25;

TEST(HubRoundTrip, ExportImportReceipt) {
  TempDir dir;
  const std::string hub_dir = dir.File("hub");
  const std::string edge_dir = dir.File("edge");
  OUTPOST_ASSERT_OK(MakeDirectories(edge_dir));
  OUTPOST_ASSERT_OK(MakeDirectories(dir.File("models")));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("policy.yaml"), kPolicy));

  // Enrol the site against a running hub.
  RunResult add = RunProgram({Outpost(), "hub", "site", "add", "--data-dir", hub_dir, "--site",
                              "plant-7", "--tenant", "acme", "--region", "us"});
  ASSERT_EQ(add.exit_code, 0) << add.err;
  const std::string token = add.out.substr(0, add.out.find('\n'));
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        auto hub, Subprocess::Start({Outpost(), "hub", "serve", "--data-dir", hub_dir,
                                     "--listen", "127.0.0.1:0"},
                                    dir.File("hub.log")));
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string line, hub->ReadLine());
    const std::string url = line.substr(std::string("listening on ").size());
    RunResult enrol = RunProgram({Outpost(), "enrol", "--hub", url, "--token", token, "--site",
                                  "plant-7", "--credentials", JoinPath(edge_dir, "credentials")});
    ASSERT_EQ(enrol.exit_code, 0) << enrol.err;
    OUTPOST_ASSERT_OK(hub->Signal(SIGTERM));
    ASSERT_EQ(hub->Wait(), 0);
  }
  // Enrolment pinned the hub's receipt certificate, and issued a site certificate that may
  // serve TLS under the site's id but can never sign a receipt.
  const std::string creds = JoinPath(edge_dir, "credentials");
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string pinned, ReadFile(JoinPath(creds, "hub_receipt.crt")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string hub_receipt_crt,
                               ReadFile(JoinPath(hub_dir, "receipt.crt")));
  EXPECT_EQ(pinned, hub_receipt_crt);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string site_crt, ReadFile(JoinPath(creds, "site.crt")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(crypto::CertificateInfo site_info,
                               crypto::ParseCertificatePem(site_crt));
  EXPECT_EQ(site_info.extended_key_usages,
            (std::vector<std::string>{crypto::kClientAuthOid, crypto::kServerAuthOid}));
  EXPECT_EQ(site_info.subject_alt_names, std::vector<std::string>{"plant-7"});

  // Records waiting in the site's outbox.
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        auto outbox, outbox::Outbox::Open({.path = JoinPath(edge_dir, "outbox.db"),
                                           .site_id = "plant-7", .node_id = "n1"}));
    for (int i = 0; i < kRecords; ++i) {
      OUTPOST_ASSERT_OK(outbox->Append({.kind = outbox::Kind::kAnomaly, .stream = "pump",
                                        .payload = "{\"v\":1,\"score\":0." +
                                                   std::to_string(i % 10) + "}"})
                            .status());
    }
  }
  OUTPOST_ASSERT_OK(WriteFileAtomically(
      dir.File("edge.yaml"), "site_id: plant-7\nnode_id: n1\ndata_dir: " + edge_dir +
                                 "\nmodel_repository: " + dir.File("models") +
                                 "\nsync:\n  policy_file: " + dir.File("policy.yaml") + "\n"));

  const std::string export_file = dir.File("records.opsx");
  RunResult exported = RunProgram({Outpost(), "export", "--config", dir.File("edge.yaml"),
                                   "--to", export_file});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;

  // A tampered copy is refused before anything is stored.
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string bytes, ReadFile(export_file));
  std::string tampered = bytes;
  tampered[tampered.size() / 2] ^= 0x01;
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("tampered.opsx"), tampered));
  RunResult refused = RunProgram({Outpost(), "hub", "import", dir.File("tampered.opsx"),
                                  "--data-dir", hub_dir, "--policy", dir.File("policy.yaml")});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("export_"), std::string::npos) << refused.err;
  EXPECT_FALSE(PathExists(dir.File("tampered.opsx.receipt")));
  EXPECT_EQ(testing::HubRecordCount(hub_dir), 0u);

  // The real one: stored, with a receipt beside it.
  RunResult imported = RunProgram({Outpost(), "hub", "import", export_file, "--data-dir",
                                   hub_dir, "--policy", dir.File("policy.yaml")});
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  EXPECT_EQ(testing::HubRecordCount(hub_dir), static_cast<size_t>(kRecords));
  const std::string receipt_file = export_file + ".receipt";
  ASSERT_TRUE(PathExists(receipt_file));

  // Replayed: every batch is a duplicate, nothing is stored twice.
  RunResult replayed = RunProgram({Outpost(), "hub", "import", export_file, "--data-dir",
                                   hub_dir, "--policy", dir.File("policy.yaml"), "--receipt",
                                   dir.File("replay.receipt")});
  ASSERT_EQ(replayed.exit_code, 0) << replayed.err;
  EXPECT_NE(replayed.out.find("0 stored"), std::string::npos) << replayed.out;
  EXPECT_EQ(testing::HubRecordCount(hub_dir), static_cast<size_t>(kRecords));

  // A receipt with the same keys signed by another hub is refused by the site.
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string receipt_bytes, ReadFile(receipt_file));
  OUTPOST_ASSERT_OK_AND_ASSIGN(sync::Receipt receipt, sync::ReadReceipt(receipt_bytes));
  TempDir other_hub;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto other_ca, hub::HubCa::OpenOrCreate(other_hub.path(), {}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(receipt.cert_pem, ReadFile(other_ca->receipt_cert_path()));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string other_key, ReadFile(other_ca->receipt_key_path()));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string forged, sync::WriteReceipt(receipt, other_key));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("forged.receipt"), forged));
  RunResult forged_run = RunProgram({Outpost(), "import-receipt", dir.File("forged.receipt"),
                                     "--config", dir.File("edge.yaml")});
  EXPECT_EQ(forged_run.exit_code, 1);
  EXPECT_NE(forged_run.err.find("receipt_cert"), std::string::npos) << forged_run.err;
  EXPECT_EQ(testing::OutboxRecordCount(edge_dir), static_cast<size_t>(kRecords));

  // The same keys signed with the site's own key: its certificate chains to this hub's CA, as
  // every site's does, and still the receipt is refused and nothing deleted.
  OUTPOST_ASSERT_OK_AND_ASSIGN(receipt.cert_pem, ReadFile(JoinPath(creds, "site.crt")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string site_key, ReadFile(JoinPath(creds, "site.key")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string site_signed, sync::WriteReceipt(receipt, site_key));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("site_signed.receipt"), site_signed));
  RunResult site_signed_run =
      RunProgram({Outpost(), "import-receipt", dir.File("site_signed.receipt"), "--config",
                  dir.File("edge.yaml")});
  EXPECT_EQ(site_signed_run.exit_code, 1);
  EXPECT_NE(site_signed_run.err.find("receipt_cert"), std::string::npos) << site_signed_run.err;
  EXPECT_EQ(testing::OutboxRecordCount(edge_dir), static_cast<size_t>(kRecords));

  // A site enrolled before the pin existed: the hub's genuine receipt is refused with the
  // commands that re-enrol it, naming this hub, and nothing is deleted.
  const std::string pin = JoinPath(creds, "hub_receipt.crt");
  ASSERT_EQ(std::rename(pin.c_str(), dir.File("pin.crt").c_str()), 0);
  RunResult unpinned =
      RunProgram({Outpost(), "import-receipt", receipt_file, "--config", dir.File("edge.yaml")});
  EXPECT_EQ(unpinned.exit_code, 1);
  EXPECT_NE(unpinned.err.find("receipt_certificate_missing"), std::string::npos) << unpinned.err;
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string hub_url, ReadFile(JoinPath(creds, "hub.url")));
  hub_url.pop_back();  // the newline
  EXPECT_NE(unpinned.err.find("outpost enrol --hub " + hub_url + " --token TOKEN --site plant-7"),
            std::string::npos)
      << unpinned.err;
  EXPECT_EQ(testing::OutboxRecordCount(edge_dir), static_cast<size_t>(kRecords));
  ASSERT_EQ(std::rename(dir.File("pin.crt").c_str(), pin.c_str()), 0);

  // The hub's own receipt deletes exactly what was exported.
  RunResult accepted = RunProgram({Outpost(), "import-receipt", receipt_file, "--config",
                                   dir.File("edge.yaml")});
  ASSERT_EQ(accepted.exit_code, 0) << accepted.err;
  EXPECT_EQ(testing::OutboxRecordCount(edge_dir), 0u);
}

}  // namespace
}  // namespace outpost
