// Records across the air gap on disk, with real processes on both sides: a site enrolled
// with `outpost enrol`, records in its outbox, `outpost export`, `outpost hub import` (stores
// them and writes a signed receipt), a replayed export (nothing stored twice), a tampered
// export (refused, nothing stored), a receipt signed by another hub (refused by
// `outpost import-receipt`), and the real receipt deleting exactly what was exported.
#include <gtest/gtest.h>
#include <signal.h>

#include <string>
#include <vector>

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

  // The hub's own receipt deletes exactly what was exported.
  RunResult accepted = RunProgram({Outpost(), "import-receipt", receipt_file, "--config",
                                   dir.File("edge.yaml")});
  ASSERT_EQ(accepted.exit_code, 0) << accepted.err;
  EXPECT_EQ(testing::OutboxRecordCount(edge_dir), 0u);
}

}  // namespace
}  // namespace outpost
