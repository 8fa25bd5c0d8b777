// Records across the air gap on disk, at the site: `outpost export` writes the records that
// wait in the outbox into a signed export file (verified here with the hub's reader), and
// `outpost import-receipt` deletes exactly the records a hub's signed receipt acknowledges. A
// replayed receipt deletes nothing more, a receipt signed under another hub's CA or for
// another site is refused, a tampered one is refused, and neither command runs while
// `outpost edge` holds the data_dir. A receipt forged with a site's key (which chains to the
// hub CA like every site certificate) is refused because it is not signed by the receipt
// certificate the site pinned, and a site without that pin (enrolled before it existed) is
// told to re-enrol; neither deletes anything.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdio>
#include <string>

#include "base/file.h"
#include "base/http/client.h"
#include "base/json/json.h"
#include "base/subprocess.h"
#include "base/testing/test_util.h"
#include "sync/batch.h"
#include "sync/crypto.h"
#include "sync/export.h"
#include "sync/receipt.h"
#include "tests/sync_test_support.h"

namespace outpost {
namespace {

using testing::TempDir;

std::string Outpost() { return JoinPath(testing::BinaryDir(), "outpost"); }

class SyncExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Feedback is taken only for a model the repository holds: a folder for pump (nothing in
    // it loads; the labels need only its name).
    OUTPOST_ASSERT_OK(MakeDirectories(dir_.File("models/pump")));
    OUTPOST_ASSERT_OK(
        testing::MakeTestPki(dir_.File("hub"), dir_.File("credentials"), "plant-7"));
    OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("policy.yaml"), testing::kFeedbackPolicy));
    // The hub is never reachable here: records stay until they are exported.
    OUTPOST_ASSERT_OK(WriteFileAtomically(
        dir_.File("edge.yaml"),
        "listen: 127.0.0.1:0\ngrpc_listen: \"\"\nthreads: 2\nsite_id: plant-7\n"
        "node_id: edge-1\nmodel_repository: " + dir_.File("models") + "\n"
        "data_dir: " + dir_.File("data") + "\nsync:\n  hub_url: https://127.0.0.1:1\n"
        "  credentials_dir: " + dir_.File("credentials") + "\n"
        "  policy_file: " + dir_.File("policy.yaml") + "\n  status_interval_s: 0\n"));
  }

  void StartEdge() {
    auto started = testing::StartEdge(dir_.File("edge.yaml"), dir_.File("edge.log"));
    OUTPOST_ASSERT_OK(started);
    edge_ = std::move(started->first);
    OUTPOST_ASSERT_OK_AND_ASSIGN(client_, http::Client::Connect("127.0.0.1", started->second));
  }
  void StopEdge() {
    client_.reset();
    OUTPOST_ASSERT_OK(edge_->Signal(SIGTERM));
    ASSERT_EQ(edge_->Wait(), 0);
  }
  void Feedback(int n, int from = 0) {
    for (int i = from; i < from + n; ++i) {
      auto r = client_->Request("POST", "/v1/feedback",
                                "{\"request_id\":\"r-" + std::to_string(i) +
                                    "\",\"model\":\"pump\",\"label\":1}");
      ASSERT_TRUE(r.ok() && r->status == 200);
    }
  }
  uint64_t Backlog() {
    auto r = client_->Request("GET", "/v1/outbox", "");
    json::Parser parser;
    return parser.Parse(r->body).value()["records"].GetUint64().value();
  }
  RunResult Outpost(std::vector<std::string> args) {
    args.insert(args.begin(), outpost::Outpost());
    args.push_back("--config");
    args.push_back(dir_.File("edge.yaml"));
    return RunProgram(args);
  }
  // A receipt for the batches of `file`, signed with the key in `key` and carrying the
  // certificate in `crt`.
  std::string Receipt(const sync::ExportFile& file, const std::string& key, const std::string& crt,
                      const std::string& site = "plant-7") {
    sync::Receipt r{.cert_pem = *ReadFile(crt), .site_id = site, .export_id = file.export_id,
                    .created_ms = 1};
    for (const std::string& b : file.batches) r.keys.push_back(sync::DecodeBatch(b)->key);
    return *sync::WriteReceipt(r, *ReadFile(key));
  }
  // The hub's receipt, signed with the receipt key that MakeTestPki made (and pinned).
  std::string HubReceipt(const sync::ExportFile& file, const std::string& site = "plant-7") {
    return Receipt(file, dir_.File("hub/receipt.key"), dir_.File("hub/receipt.crt"), site);
  }
  // A receipt certificate (with the receipt key purpose) of the CA in `ca_dir`, made once:
  // {signer.key, signer.crt} there.
  void MakeReceiptSigner(const std::string& ca_dir) {
    std::string key = JoinPath(ca_dir, "signer.key"), crt = JoinPath(ca_dir, "signer.crt");
    if (PathExists(crt)) return;
    ASSERT_EQ(RunProgram({"/usr/bin/openssl", "req", "-new", "-newkey", "ed25519", "-nodes",
                          "-keyout", key, "-out", crt + ".csr", "-subj", "/CN=receipts"})
                  .exit_code,
              0);
    OUTPOST_ASSERT_OK(WriteFileAtomically(
        crt + ".ext", std::string("extendedKeyUsage=") + sync::kReceiptSigningOid + "\n"));
    ASSERT_EQ(RunProgram({"/usr/bin/openssl", "x509", "-req", "-in", crt + ".csr", "-CA",
                          JoinPath(ca_dir, "ca.crt"), "-CAkey", JoinPath(ca_dir, "ca.key"),
                          "-set_serial", "77", "-days", "2", "-extfile", crt + ".ext", "-out", crt})
                  .exit_code,
              0);
  }
  // Takes `n` feedback records at the edge, then exports everything waiting to `file`, read
  // back into `out`.
  void ExportAll(int n, const std::string& file, sync::ExportFile* out) {
    ASSERT_NO_FATAL_FAILURE(StartEdge());
    ASSERT_NO_FATAL_FAILURE(Feedback(n));
    ASSERT_NO_FATAL_FAILURE(StopEdge());
    RunResult exported = Outpost({"export", "--to", file});
    ASSERT_EQ(exported.exit_code, 0) << exported.err;
    OUTPOST_ASSERT_OK_AND_ASSIGN(*out, sync::ReadExport(*ReadFile(file)));
    ASSERT_FALSE(out->batches.empty());
  }

  TempDir dir_;
  std::unique_ptr<Subprocess> edge_;
  std::unique_ptr<http::Client> client_;
};

TEST_F(SyncExportTest, ExportThenReceiptDeletesExactlyTheExportedRecords) {
  ASSERT_NO_FATAL_FAILURE(StartEdge());
  ASSERT_NO_FATAL_FAILURE(Feedback(30));
  // Not while the edge runs.
  RunResult busy = Outpost({"export", "--to", dir_.File("x.opsx")});
  EXPECT_EQ(busy.exit_code, 1);
  EXPECT_NE(busy.err.find("in use by a running outpost edge"), std::string::npos) << busy.err;
  ASSERT_NO_FATAL_FAILURE(StopEdge());

  RunResult first = Outpost({"export", "--to", dir_.File("a.opsx"), "--max-records", "20"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_NE(first.out.find("exported 20 records"), std::string::npos) << first.out;
  // A second export takes only what the first did not.
  RunResult second = Outpost({"export", "--to", dir_.File("b.opsx")});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(second.out.find("exported 10 records"), std::string::npos) << second.out;

  // The hub's reader accepts the file: signature, certificate, site, batches.
  Result<sync::ExportFile> a = sync::ReadExport(*ReadFile(dir_.File("a.opsx")));
  OUTPOST_ASSERT_OK(a);
  OUTPOST_EXPECT_OK(sync::VerifyExportSite(*a, *ReadFile(dir_.File("hub/ca.crt"))));
  uint64_t records = 0;
  for (const std::string& b : a->batches) {
    Result<sync::DecodedBatch> d = sync::DecodeBatch(b);
    OUTPOST_ASSERT_OK(d);
    EXPECT_EQ(d->batch.site_id, "plant-7");
    records += d->batch.records.size();
    for (const auto& r : d->batch.records) {
      // The policy ran: request_id is hashed.
      EXPECT_EQ(r.payload.find("\"r-"), std::string::npos) << r.payload;
    }
  }
  EXPECT_EQ(records, 20u);
  ASSERT_TRUE(a->batches.size() >= 1);
  EXPECT_TRUE(sync::DecodeBatch(a->batches[0])->batch.audit.has_value());

  // A receipt from another hub, or for another site, or tampered, deletes nothing.
  OUTPOST_ASSERT_OK(MakeDirectories(dir_.File("other")));
  ASSERT_EQ(RunProgram({"/usr/bin/openssl", "req", "-x509", "-newkey", "ed25519", "-nodes",
                        "-keyout", dir_.File("other/ca.key"), "-out", dir_.File("other/ca.crt"),
                        "-days", "2", "-subj", "/CN=other hub"})
                .exit_code,
            0);
  ASSERT_NO_FATAL_FAILURE(MakeReceiptSigner(dir_.File("other")));
  OUTPOST_ASSERT_OK(WriteFileAtomically(
      dir_.File("foreign.rcpt"),
      Receipt(*a, dir_.File("other/signer.key"), dir_.File("other/signer.crt"))));
  RunResult foreign = Outpost({"import-receipt", dir_.File("foreign.rcpt")});
  EXPECT_EQ(foreign.exit_code, 1);
  EXPECT_NE(foreign.err.find("receipt_cert"), std::string::npos) << foreign.err;
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("site8.rcpt"), HubReceipt(*a, "plant-8")));
  RunResult site8 = Outpost({"import-receipt", dir_.File("site8.rcpt")});
  EXPECT_EQ(site8.exit_code, 1);
  EXPECT_NE(site8.err.find("receipt_site_mismatch"), std::string::npos) << site8.err;
  std::string good = HubReceipt(*a);
  std::string tampered = good;
  tampered[tampered.size() - 80] ^= 1;
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("tampered.rcpt"), tampered));
  RunResult bad = Outpost({"import-receipt", dir_.File("tampered.rcpt")});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("receipt_"), std::string::npos) << bad.err;

  ASSERT_NO_FATAL_FAILURE(StartEdge());
  EXPECT_EQ(Backlog(), 30u);
  ASSERT_NO_FATAL_FAILURE(StopEdge());

  // The hub's receipt for a: exactly its 20 records go.
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("a.rcpt"), good));
  RunResult ok = Outpost({"import-receipt", dir_.File("a.rcpt")});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("20 records deleted"), std::string::npos) << ok.out;
  // Replayed: nothing more is deleted.
  RunResult replay = Outpost({"import-receipt", dir_.File("a.rcpt")});
  EXPECT_EQ(replay.exit_code, 1);
  EXPECT_NE(replay.err.find("receipt_unknown_export"), std::string::npos) << replay.err;

  ASSERT_NO_FATAL_FAILURE(StartEdge());
  EXPECT_EQ(Backlog(), 10u);
  ASSERT_NO_FATAL_FAILURE(StopEdge());
}

TEST_F(SyncExportTest, AReceiptForgedWithASiteKeyDeletesNothing) {
  sync::ExportFile a;
  ASSERT_NO_FATAL_FAILURE(ExportAll(12, dir_.File("a.opsx"), &a));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string ledger, ReadFile(dir_.File("data/exports.json")));

  // Signed with this site's own key (any site's would do): the signature verifies and the
  // certificate chains to the hub CA, but it is not the pinned receipt certificate, whichever
  // site the receipt names.
  for (const char* site : {"plant-7", "plant-8"}) {
    OUTPOST_ASSERT_OK(WriteFileAtomically(
        dir_.File("forged.rcpt"),
        Receipt(a, dir_.File("credentials/site.key"), dir_.File("credentials/site.crt"), site)));
    RunResult forged = Outpost({"import-receipt", dir_.File("forged.rcpt")});
    EXPECT_EQ(forged.exit_code, 1);
    EXPECT_NE(forged.err.find("receipt_cert"), std::string::npos) << forged.err;
    EXPECT_NE(forged.err.find("pinned at enrolment"), std::string::npos) << forged.err;
  }
  // A second certificate of the hub CA with the receipt key purpose is not the pinned one.
  ASSERT_NO_FATAL_FAILURE(MakeReceiptSigner(dir_.File("hub")));
  OUTPOST_ASSERT_OK(
      WriteFileAtomically(dir_.File("unpinned.rcpt"),
                          Receipt(a, dir_.File("hub/signer.key"), dir_.File("hub/signer.crt"))));
  RunResult unpinned = Outpost({"import-receipt", dir_.File("unpinned.rcpt")});
  EXPECT_EQ(unpinned.exit_code, 1);
  EXPECT_NE(unpinned.err.find("receipt_cert"), std::string::npos) << unpinned.err;

  // Nothing changed: every record waits, the ledger is as the export left it.
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string ledger_after, ReadFile(dir_.File("data/exports.json")));
  EXPECT_EQ(ledger_after, ledger);
  ASSERT_NO_FATAL_FAILURE(StartEdge());
  EXPECT_EQ(Backlog(), 12u);
  ASSERT_NO_FATAL_FAILURE(StopEdge());

  // The hub's genuine receipt still deletes them.
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("a.rcpt"), HubReceipt(a)));
  RunResult ok = Outpost({"import-receipt", dir_.File("a.rcpt")});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("12 records deleted"), std::string::npos) << ok.out;
}

TEST_F(SyncExportTest, ASiteEnrolledBeforeReceiptPinsIsToldToReEnrolAndDeletesNothing) {
  sync::ExportFile a;
  ASSERT_NO_FATAL_FAILURE(ExportAll(5, dir_.File("a.opsx"), &a));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string ledger, ReadFile(dir_.File("data/exports.json")));
  // An older enrolment left no hub_receipt.crt.
  const std::string pin = dir_.File("credentials/hub_receipt.crt");
  ASSERT_EQ(std::rename(pin.c_str(), dir_.File("kept.crt").c_str()), 0);

  OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("a.rcpt"), HubReceipt(a)));
  RunResult refused = Outpost({"import-receipt", dir_.File("a.rcpt")});
  EXPECT_EQ(refused.exit_code, 1);
  for (const std::string& part :
       {std::string("receipt_certificate_missing"), pin, std::string("re-enrol this site"),
        std::string("outpost hub site add --site plant-7 --tenant acme"), std::string("--reissue"),
        std::string("outpost enrol --hub"),
        std::string("--site plant-7 --credentials ") + dir_.File("credentials") + " --force"}) {
    EXPECT_NE(refused.err.find(part), std::string::npos) << part << "\n" << refused.err;
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string ledger_after, ReadFile(dir_.File("data/exports.json")));
  EXPECT_EQ(ledger_after, ledger);
  ASSERT_NO_FATAL_FAILURE(StartEdge());
  EXPECT_EQ(Backlog(), 5u);
  ASSERT_NO_FATAL_FAILURE(StopEdge());

  // Re-enrolled (the pin back in place): the same receipt is accepted.
  ASSERT_EQ(std::rename(dir_.File("kept.crt").c_str(), pin.c_str()), 0);
  RunResult ok = Outpost({"import-receipt", dir_.File("a.rcpt")});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("5 records deleted"), std::string::npos) << ok.out;
}

}  // namespace
}  // namespace outpost
