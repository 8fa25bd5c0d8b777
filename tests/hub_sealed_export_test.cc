// Sealed export files with real processes on both sides (sync/FORMAT.md section 6): a site
// enrolled with `outpost enrol` receives the hub's export key, `outpost export` with
// sync.encrypt_exports seals the file to it (no site id, tenant or certificate in clear), an
// export asked to encrypt without a key is refused before anything changes, `outpost hub
// import` opens the sealed file and stores exactly its records, the receipt deletes them;
// the same export sealed to another hub, or altered, is refused with its reason and nothing
// is stored.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdio>
#include <string>
#include <vector>

#include "base/file.h"
#include "base/subprocess.h"
#include "base/testing/test_util.h"
#include "hub/ca.h"
#include "hub/store.h"
#include "outbox/outbox.h"
#include "sync/batch.h"
#include "sync/export.h"
#include "tests/sync_test_support.h"

namespace outpost {
namespace {

using testing::TempDir;

std::string Outpost() { return JoinPath(testing::BinaryDir(), "outpost"); }

constexpr const char* kPolicy = testing::kAnomalyPolicy;

constexpr int kRecords = 12;
constexpr char kSecret[] = "secret-payload-4711";

RunResult Import(const std::string& file, const std::string& hub_dir, const std::string& policy) {
  return RunProgram({Outpost(), "hub", "import", file, "--data-dir", hub_dir, "--policy", policy});
}

TEST(HubSealedExport, SealedToTheHubItEnrolledWithAndToNoOtherHub) {
  TempDir dir;
  const std::string hub_dir = dir.File("hub");
  const std::string other_hub_dir = dir.File("other-hub");
  const std::string edge_dir = dir.File("edge");
  const std::string creds = JoinPath(edge_dir, "credentials");
  const std::string policy = dir.File("policy.yaml");
  OUTPOST_ASSERT_OK(MakeDirectories(edge_dir));
  OUTPOST_ASSERT_OK(MakeDirectories(dir.File("models")));
  OUTPOST_ASSERT_OK(WriteFileAtomically(policy, kPolicy));

  // Enrolment hands the site the hub's export key.
  RunResult add = RunProgram({Outpost(), "hub", "site", "add", "--data-dir", hub_dir, "--site",
                              "plant-7", "--tenant", "acme", "--region", "us"});
  ASSERT_EQ(add.exit_code, 0) << add.err;
  const std::string token = add.out.substr(0, add.out.find('\n'));
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        auto hub, Subprocess::Start(
                      {Outpost(), "hub", "serve", "--data-dir", hub_dir, "--listen", "127.0.0.1:0"},
                      dir.File("hub.log")));
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string line, hub->ReadLine());
    const std::string url = line.substr(std::string("listening on ").size());
    RunResult enrol = RunProgram({Outpost(), "enrol", "--hub", url, "--token", token, "--site",
                                  "plant-7", "--credentials", creds});
    ASSERT_EQ(enrol.exit_code, 0) << enrol.err;
    OUTPOST_ASSERT_OK(hub->Signal(SIGTERM));
    ASSERT_EQ(hub->Wait(), 0);
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string site_copy, ReadFile(JoinPath(creds, "hub_export.pub")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string hub_pub, ReadFile(JoinPath(hub_dir, "export.pub")));
  EXPECT_EQ(site_copy, hub_pub);

  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        auto outbox,
        outbox::Outbox::Open(
            {.path = JoinPath(edge_dir, "outbox.db"), .site_id = "plant-7", .node_id = "n1"}));
    for (int i = 0; i < kRecords; ++i) {
      OUTPOST_ASSERT_OK(outbox
                            ->Append({.kind = outbox::Kind::kAnomaly,
                                      .stream = "pump",
                                      .payload = std::string("{\"v\":\"") + kSecret +
                                                 "\",\"score\":0." + std::to_string(i % 10) + "}"})
                            .status());
    }
  }
  const std::string config = dir.File("edge.yaml");
  OUTPOST_ASSERT_OK(WriteFileAtomically(
      config, "site_id: plant-7\nnode_id: n1\ndata_dir: " + edge_dir +
                  "\nmodel_repository: " + dir.File("models") +
                  "\nsync:\n  policy_file: " + policy + "\n  encrypt_exports: true\n"));

  // Asked to encrypt without the hub's key: refused, saying how to get one; nothing changes.
  const std::string export_file = dir.File("records.opse");
  ASSERT_EQ(std::rename(JoinPath(creds, "hub_export.pub").c_str(), dir.File("kept.pub").c_str()),
            0);
  RunResult keyless = RunProgram({Outpost(), "export", "--config", config, "--to", export_file});
  EXPECT_EQ(keyless.exit_code, 1);
  EXPECT_NE(keyless.err.find("export_no_hub_key"), std::string::npos) << keyless.err;
  EXPECT_NE(keyless.err.find("outpost enrol"), std::string::npos) << keyless.err;
  EXPECT_FALSE(PathExists(export_file));
  EXPECT_FALSE(PathExists(JoinPath(edge_dir, "exports.json")));
  EXPECT_EQ(testing::OutboxRecordCount(edge_dir), static_cast<size_t>(kRecords));
  ASSERT_EQ(std::rename(dir.File("kept.pub").c_str(), JoinPath(creds, "hub_export.pub").c_str()),
            0);

  // Sealed by the config: nothing of the site or its records in clear.
  RunResult exported = RunProgram({Outpost(), "export", "--config", config, "--to", export_file});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  EXPECT_NE(exported.out.find("sealed: encrypted to the hub's export key"), std::string::npos)
      << exported.out;
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string sealed, ReadFile(export_file));
  ASSERT_TRUE(sync::IsSealedExport(sealed));
  for (std::string_view clear : {std::string_view(kSecret), std::string_view("plant-7"),
                                 std::string_view("acme"), std::string_view("CERTIFICATE")}) {
    EXPECT_EQ(sealed.find(clear), std::string::npos) << clear;
  }

  // The same export sealed to another hub's key is refused here, and this hub's file is
  // refused by the other hub: sealed_wrong_key, nothing stored, no receipt.
  OUTPOST_ASSERT_OK(MakeDirectories(other_hub_dir));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto other_ca, hub::HubCa::OpenOrCreate(other_hub_dir, {}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string hub_key, ReadFile(JoinPath(hub_dir, "export.key")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string inside, sync::OpenSealedExport(sealed, hub_key));
  EXPECT_NE(inside.find("plant-7"), std::string::npos);  // the signed export, in clear inside
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string foreign,
                               sync::SealExport(inside, other_ca->export_public_pem()));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("foreign.opse"), foreign));
  RunResult wrong_hub = Import(dir.File("foreign.opse"), hub_dir, policy);
  EXPECT_EQ(wrong_hub.exit_code, 1);
  EXPECT_NE(wrong_hub.err.find("sealed_wrong_key"), std::string::npos) << wrong_hub.err;
  EXPECT_FALSE(PathExists(dir.File("foreign.opse.receipt")));
  EXPECT_EQ(testing::HubRecordCount(hub_dir), 0u);
  RunResult at_other = RunProgram({Outpost(), "hub", "site", "add", "--data-dir", other_hub_dir,
                                   "--site", "plant-7", "--tenant", "acme", "--region", "us"});
  ASSERT_EQ(at_other.exit_code, 0) << at_other.err;
  RunResult other_refused =
      RunProgram({Outpost(), "hub", "import", export_file, "--data-dir", other_hub_dir, "--policy",
                  policy, "--receipt", dir.File("other.receipt")});
  EXPECT_EQ(other_refused.exit_code, 1);
  EXPECT_NE(other_refused.err.find("sealed_wrong_key"), std::string::npos) << other_refused.err;
  EXPECT_FALSE(PathExists(dir.File("other.receipt")));
  EXPECT_EQ(testing::HubRecordCount(other_hub_dir), 0u);

  // One altered byte of ciphertext: sealed_corrupt, nothing stored.
  std::string altered = sealed;
  altered[altered.size() / 2] = static_cast<char>(altered[altered.size() / 2] ^ 0x20);
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("altered.opse"), altered));
  RunResult corrupt = Import(dir.File("altered.opse"), hub_dir, policy);
  EXPECT_EQ(corrupt.exit_code, 1);
  EXPECT_NE(corrupt.err.find("sealed_corrupt"), std::string::npos) << corrupt.err;
  EXPECT_FALSE(PathExists(dir.File("altered.opse.receipt")));
  EXPECT_EQ(testing::HubRecordCount(hub_dir), 0u);

  // The real one: opened with the hub's export key, exactly its records stored.
  RunResult imported = Import(export_file, hub_dir, policy);
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  EXPECT_NE(imported.out.find(std::to_string(kRecords) + " records stored"), std::string::npos)
      << imported.out;
  EXPECT_EQ(testing::HubRecordCount(hub_dir), static_cast<size_t>(kRecords));
  const std::string receipt_file = export_file + ".receipt";
  ASSERT_TRUE(PathExists(receipt_file));

  // The receipt (not sealed: it carries no records) deletes exactly what was exported.
  RunResult accepted = RunProgram({Outpost(), "import-receipt", receipt_file, "--config", config});
  ASSERT_EQ(accepted.exit_code, 0) << accepted.err;
  EXPECT_NE(accepted.out.find(std::to_string(kRecords) + " records deleted"), std::string::npos)
      << accepted.out;
  EXPECT_EQ(testing::OutboxRecordCount(edge_dir), 0u);

  // Without sync.encrypt_exports: --encrypt seals, --hub-public-key refuses a private key
  // (export.key never leaves the hub), and no flag writes a plain signed file, saying so.
  const std::string plain_config = dir.File("edge-plain.yaml");
  OUTPOST_ASSERT_OK(
      WriteFileAtomically(plain_config, "site_id: plant-7\nnode_id: n1\ndata_dir: " + edge_dir +
                                            "\nmodel_repository: " + dir.File("models") +
                                            "\nsync:\n  policy_file: " + policy + "\n"));
  auto append = [&](int n) {
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        auto outbox,
        outbox::Outbox::Open(
            {.path = JoinPath(edge_dir, "outbox.db"), .site_id = "plant-7", .node_id = "n1"}));
    for (int i = 0; i < n; ++i) {
      OUTPOST_ASSERT_OK(outbox
                            ->Append({.kind = outbox::Kind::kAnomaly,
                                      .stream = "valve",
                                      .payload = std::string("{\"v\":\"") + kSecret + "\"}"})
                            .status());
    }
  };
  append(3);
  const std::string flagged_file = dir.File("flagged.opse");
  RunResult private_key =
      RunProgram({Outpost(), "export", "--config", plain_config, "--to", flagged_file,
                  "--hub-public-key", JoinPath(hub_dir, "export.key")});
  EXPECT_EQ(private_key.exit_code, 1);
  EXPECT_NE(private_key.err.find("private key"), std::string::npos) << private_key.err;
  EXPECT_FALSE(PathExists(flagged_file));
  RunResult flagged = RunProgram(
      {Outpost(), "export", "--config", plain_config, "--to", flagged_file, "--encrypt"});
  ASSERT_EQ(flagged.exit_code, 0) << flagged.err;
  EXPECT_NE(flagged.out.find("sealed: "), std::string::npos) << flagged.out;
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string flagged_bytes, ReadFile(flagged_file));
  EXPECT_TRUE(sync::IsSealedExport(flagged_bytes));
  EXPECT_EQ(flagged_bytes.find(kSecret), std::string::npos);
  RunResult flagged_import = Import(flagged_file, hub_dir, policy);
  ASSERT_EQ(flagged_import.exit_code, 0) << flagged_import.err;
  EXPECT_EQ(testing::HubRecordCount(hub_dir), static_cast<size_t>(kRecords + 3));

  append(2);
  const std::string plain_file = dir.File("plain.opsx");
  RunResult plain = RunProgram({Outpost(), "export", "--config", plain_config, "--to", plain_file});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_NE(plain.out.find("not sealed"), std::string::npos) << plain.out;
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string plain_bytes, ReadFile(plain_file));
  EXPECT_FALSE(sync::IsSealedExport(plain_bytes));
  // The plain file shows its site and certificate (records are compressed, not hidden).
  EXPECT_NE(plain_bytes.find("plant-7"), std::string::npos);
  EXPECT_NE(plain_bytes.find("CERTIFICATE"), std::string::npos);
}

}  // namespace
}  // namespace outpost
