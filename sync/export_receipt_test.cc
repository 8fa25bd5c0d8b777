#include <gtest/gtest.h>

#include <string>

#include "base/coding.h"
#include "base/file.h"
#include "base/subprocess.h"
#include "base/testing/test_util.h"
#include "sync/batch.h"
#include "sync/crypto.h"
#include "sync/export.h"
#include "sync/receipt.h"

namespace outpost::sync {
namespace {

// A CA and certificates issued by it, made with the openssl command.
class Pki {
 public:
  explicit Pki(const std::string& dir, const std::string& name) : dir_(dir), name_(name) {
    Run({"req", "-x509", "-newkey", "ed25519", "-nodes", "-keyout", Path("ca.key"), "-out",
         Path("ca.crt"), "-days", "2", "-subj", "/CN=" + name + " CA"});
  }
  // Issues a certificate for `subject` with the extensions `ext` (openssl's extfile syntax,
  // "" for none); returns {key_pem, cert_pem}.
  std::pair<std::string, std::string> Issue(const std::string& file, const std::string& subject,
                                            const std::string& ext = "") {
    Run({"req", "-new", "-newkey", "ed25519", "-nodes", "-keyout", Path(file + ".key"), "-out",
         Path(file + ".csr"), "-subj", subject});
    std::vector<std::string> args = {
        "x509",         "-req",   "-in",          Path(file + ".csr"), "-CA",
        Path("ca.crt"), "-CAkey", Path("ca.key"), "-set_serial",       "4242",
        "-days",        "2",      "-out",         Path(file + ".crt")};
    if (!ext.empty()) {
      EXPECT_TRUE(WriteFileAtomically(Path(file + ".ext"), ext + "\n").ok());
      args.push_back("-extfile");
      args.push_back(Path(file + ".ext"));
    }
    Run(args);
    return {*ReadFile(Path(file + ".key")), *ReadFile(Path(file + ".crt"))};
  }
  std::string ca() const { return *ReadFile(Path("ca.crt")); }

 private:
  std::string Path(const std::string& f) const { return JoinPath(dir_, name_ + "_" + f); }
  void Run(std::vector<std::string> args) {
    args.insert(args.begin(), "/usr/bin/openssl");
    RunResult r = RunProgram(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  std::string dir_, name_;
};

// What the hub's receipt certificate carries (sync/FORMAT.md section 5), and what a site
// certificate carries (hub/FORMAT.md section 3).
const std::string kReceiptExt =
    std::string(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=") +
    kReceiptSigningOid;
const std::string kSiteExt =
    "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
    "extendedKeyUsage=clientAuth,serverAuth\nsubjectAltName=DNS:plant-7";

std::string Batch1(std::string_view site = "plant-7") {
  Batch b{.site_id = std::string(site), .node_id = "n1", .stream = "pump"};
  b.records.push_back({.seq = 1, .kind = 3, .created_ms = 5, .payload = "{\"a\":1}"});
  return *EncodeBatch(b);
}

class ExportReceiptTest : public ::testing::Test {
 protected:
  void SetUp() override {
    hub_ = std::make_unique<Pki>(dir_.path(), "hub");
    other_ = std::make_unique<Pki>(dir_.path(), "other");
    site_ = hub_->Issue("site", "/CN=plant-7/O=acme", kSiteExt);
    signer_ = hub_->Issue("signer", "/CN=hub receipts", kReceiptExt);
    foreign_signer_ = other_->Issue("signer", "/CN=hub receipts", kReceiptExt);
  }
  // What plant-7 trusts receipts by, pinning `pinned` ("" for a site enrolled before pins).
  ReceiptTrust Trust(const std::string& pinned) {
    return ReceiptTrust{.hub_ca_pem = hub_->ca(),
                        .pinned_cert_pem = pinned,
                        .credentials_dir = "/etc/outpost/credentials",
                        .hub_url = "https://hub.example:8443",
                        .tenant = "acme"};
  }
  ExportFile SampleExport() {
    return ExportFile{.cert_pem = site_.second, .site_id = "plant-7", .node_id = "n1",
                      .created_ms = 1234, .export_id = std::string(16, '\x07'),
                      .batches = {Batch1(), Batch1()}};
  }
  Receipt SampleReceipt(const std::string& cert) {
    Receipt r{.cert_pem = cert, .site_id = "plant-7", .export_id = std::string(16, '\x07'),
              .created_ms = 99};
    r.keys.push_back(DecodeBatch(Batch1())->key);
    return r;
  }

  testing::TempDir dir_;
  std::unique_ptr<Pki> hub_, other_;
  std::pair<std::string, std::string> site_, signer_, foreign_signer_;
};

TEST_F(ExportReceiptTest, ExportRoundTripsAndVerifiesAgainstTheSiteCa) {
  Result<std::string> bytes = WriteExport(SampleExport(), site_.first);
  OUTPOST_ASSERT_OK(bytes);
  Result<ExportFile> got = ReadExport(*bytes);
  OUTPOST_ASSERT_OK(got);
  EXPECT_EQ(got->site_id, "plant-7");
  EXPECT_EQ(got->node_id, "n1");
  EXPECT_EQ(got->created_ms, 1234);
  EXPECT_EQ(got->batches, SampleExport().batches);
  EXPECT_EQ(HexEncode(got->export_id), "07070707070707070707070707070707");
  OUTPOST_EXPECT_OK(VerifyExportSite(*got, hub_->ca()));
  EXPECT_EQ(ReasonOf(VerifyExportSite(*got, other_->ca())), "export_cert");
}

TEST_F(ExportReceiptTest, ATamperedExportIsRefusedWhereverTheBitFlips) {
  std::string bytes = *WriteExport(SampleExport(), site_.first);
  int refused = 0;
  for (size_t i = 0; i < bytes.size(); i += 7) {
    std::string bad = bytes;
    bad[i] ^= 0x01;
    Result<ExportFile> got = ReadExport(bad);
    if (!got.ok()) {
      ++refused;
      EXPECT_FALSE(ReasonOf(got.status()).empty()) << got.status().ToString();
    } else {
      // A flip inside the certificate's PEM text that still parses must still fail its CA.
      EXPECT_FALSE(VerifyExportSite(*got, hub_->ca()).ok()) << "byte " << i;
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_EQ(ReasonOf(ReadExport(bytes + "x").status()), "export_trailing_bytes");
  EXPECT_EQ(ReasonOf(ReadExport(bytes.substr(0, bytes.size() - 1)).status()), "export_truncated");
  std::string bad = bytes;
  bad[0] = 'X';
  EXPECT_EQ(ReasonOf(ReadExport(bad).status()), "export_bad_magic");
  bad = bytes;
  bad[4] = 9;
  EXPECT_EQ(ReasonOf(ReadExport(bad).status()), "export_version");
  bad = bytes;
  bad[5] = 1;
  EXPECT_EQ(ReasonOf(ReadExport(bad).status()), "export_flags");
  EXPECT_EQ(ReasonOf(ReadExport(bytes, {.max_file_bytes = 100}).status()), "export_too_large");
  EXPECT_EQ(ReasonOf(ReadExport(bytes, {.max_cert_bytes = 10}).status()), "export_too_large");
  EXPECT_EQ(ReasonOf(ReadExport(bytes, {.max_batches = 1}).status()), "export_too_large");
}

TEST_F(ExportReceiptTest, AnExportSignedByAnotherSiteKeyIsRefused) {
  auto other_site = hub_->Issue("site2", "/CN=plant-8/O=acme");
  // Signed with plant-8's key but carrying plant-7's certificate.
  EXPECT_EQ(ReasonOf(ReadExport(*WriteExport(SampleExport(), other_site.first)).status()),
            "export_signature");
  // plant-8's own certificate, naming plant-7 in the file.
  ExportFile f = SampleExport();
  f.cert_pem = other_site.second;
  Result<ExportFile> got = ReadExport(*WriteExport(f, other_site.first));
  OUTPOST_ASSERT_OK(got);
  EXPECT_EQ(ReasonOf(VerifyExportSite(*got, hub_->ca())), "export_site_mismatch");
}

TEST_F(ExportReceiptTest, ReceiptRoundTripsAndIsRefusedFromAnotherHubOrForAnotherSite) {
  Result<std::string> bytes = WriteReceipt(SampleReceipt(signer_.second), signer_.first);
  OUTPOST_ASSERT_OK(bytes);
  Result<Receipt> got = ReadReceipt(*bytes);
  OUTPOST_ASSERT_OK(got);
  ASSERT_EQ(got->keys.size(), 1u);
  EXPECT_EQ(got->keys[0], DecodeBatch(Batch1())->key);
  EXPECT_EQ(got->created_ms, 99);
  OUTPOST_EXPECT_OK(VerifyReceiptFor(*got, Trust(signer_.second), "plant-7"));
  EXPECT_EQ(ReasonOf(VerifyReceiptFor(*got, Trust(signer_.second), "plant-8")),
            "receipt_site_mismatch");

  Result<Receipt> foreign =
      ReadReceipt(*WriteReceipt(SampleReceipt(foreign_signer_.second), foreign_signer_.first));
  OUTPOST_ASSERT_OK(foreign);
  EXPECT_EQ(ReasonOf(VerifyReceiptFor(*foreign, Trust(signer_.second), "plant-7")), "receipt_cert");
}

TEST_F(ExportReceiptTest, AReceiptSignedWithASiteKeyIsRefusedThoughItChainsToTheHubCa) {
  // Whoever holds plant-8's key signs a receipt for plant-7 with plant-8's certificate: the
  // signature verifies and the certificate chains to the hub CA, as every site's does.
  auto plant8 = hub_->Issue("plant8", "/CN=plant-8/O=acme", kSiteExt);
  OUTPOST_ASSERT_OK(VerifyCertificateChain(plant8.second, hub_->ca()));
  Result<Receipt> forged = ReadReceipt(*WriteReceipt(SampleReceipt(plant8.second), plant8.first));
  OUTPOST_ASSERT_OK(forged);
  Status refused = VerifyReceiptFor(*forged, Trust(signer_.second), "plant-7");
  EXPECT_EQ(refused.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(ReasonOf(refused), "receipt_cert");
  EXPECT_NE(refused.message().find("not by the hub's receipt certificate this site pinned"),
            std::string::npos)
      << refused.message();
  // The victim's own key, too.
  Result<Receipt> own = ReadReceipt(*WriteReceipt(SampleReceipt(site_.second), site_.first));
  OUTPOST_ASSERT_OK(own);
  EXPECT_EQ(ReasonOf(VerifyReceiptFor(*own, Trust(signer_.second), "plant-7")), "receipt_cert");
  // Even a certificate of the hub CA with the receipt purpose is refused unless it is the
  // pinned one.
  auto second = hub_->Issue("second", "/CN=hub receipts", kReceiptExt);
  OUTPOST_ASSERT_OK(CheckReceiptCertificate(second.second, hub_->ca()));
  Result<Receipt> unpinned = ReadReceipt(*WriteReceipt(SampleReceipt(second.second), second.first));
  OUTPOST_ASSERT_OK(unpinned);
  EXPECT_EQ(ReasonOf(VerifyReceiptFor(*unpinned, Trust(signer_.second), "plant-7")),
            "receipt_cert");
  // A pin that is a site certificate (a damaged or hand-made credentials folder) is no pin.
  Status bad_pin = VerifyReceiptFor(*own, Trust(site_.second), "plant-7");
  EXPECT_EQ(bad_pin.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReasonOf(bad_pin), "receipt_certificate_invalid");
  EXPECT_NE(bad_pin.message().find("re-enrol this site"), std::string::npos) << bad_pin.message();
}

TEST_F(ExportReceiptTest, ASiteWithoutAPinnedReceiptCertificateIsToldToReEnrol) {
  Result<Receipt> genuine =
      ReadReceipt(*WriteReceipt(SampleReceipt(signer_.second), signer_.first));
  OUTPOST_ASSERT_OK(genuine);
  Status refused = VerifyReceiptFor(*genuine, Trust(""), "plant-7");
  EXPECT_EQ(refused.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReasonOf(refused), "receipt_certificate_missing");
  const std::string message(refused.message());
  for (const char* part :
       {"/etc/outpost/credentials/hub_receipt.crt", "re-enrol this site",
        "outpost hub site add --site plant-7 --tenant acme --region REGION --reissue",
        "outpost enrol --hub https://hub.example:8443 --token TOKEN --site plant-7 "
        "--credentials /etc/outpost/credentials --force",
        "Nothing was deleted"}) {
    EXPECT_NE(message.find(part), std::string::npos) << part << "\n" << message;
  }
  // The missing pin is reported first, whoever signed the receipt.
  Result<Receipt> forged = ReadReceipt(*WriteReceipt(SampleReceipt(site_.second), site_.first));
  OUTPOST_ASSERT_OK(forged);
  EXPECT_EQ(ReasonOf(VerifyReceiptFor(*forged, Trust(""), "plant-7")),
            "receipt_certificate_missing");
}

TEST_F(ExportReceiptTest, OnlyAReceiptCertificateOfTheHubCaIsOne) {
  OUTPOST_EXPECT_OK(CheckReceiptCertificate(signer_.second, hub_->ca()));
  // Another hub's, a site's (clientAuth and serverAuth), none, or the purpose beside a TLS one.
  EXPECT_FALSE(CheckReceiptCertificate(signer_.second, other_->ca()).ok());
  EXPECT_FALSE(CheckReceiptCertificate(site_.second, hub_->ca()).ok());
  auto plain = hub_->Issue("plain", "/CN=hub receipts");
  EXPECT_FALSE(CheckReceiptCertificate(plain.second, hub_->ca()).ok());
  auto mixed = hub_->Issue("mixed", "/CN=hub receipts",
                           std::string("extendedKeyUsage=serverAuth,") + kReceiptSigningOid);
  Status refused = CheckReceiptCertificate(mixed.second, hub_->ca());
  EXPECT_EQ(refused.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(refused.message().find("1.3.6.1.5.5.7.3.1"), std::string::npos) << refused.message();
  EXPECT_FALSE(CheckReceiptCertificate("not a certificate", hub_->ca()).ok());
}

TEST_F(ExportReceiptTest, LoadsTheTrustFromTheCredentialsFolder) {
  const std::string creds = dir_.File("credentials");
  OUTPOST_ASSERT_OK(MakeDirectories(creds));
  EXPECT_FALSE(LoadReceiptTrust(creds).ok());  // no hub_ca.crt: not a credentials folder
  OUTPOST_ASSERT_OK(WriteFileAtomically(JoinPath(creds, "hub_ca.crt"), hub_->ca()));
  OUTPOST_ASSERT_OK_AND_ASSIGN(ReceiptTrust older, LoadReceiptTrust(creds));
  EXPECT_EQ(older.hub_ca_pem, hub_->ca());
  EXPECT_TRUE(older.pinned_cert_pem.empty());
  EXPECT_TRUE(older.hub_url.empty());
  EXPECT_TRUE(older.tenant.empty());
  EXPECT_EQ(older.credentials_dir, creds);

  OUTPOST_ASSERT_OK(WriteFileAtomically(JoinPath(creds, "hub_receipt.crt"), signer_.second));
  OUTPOST_ASSERT_OK(WriteFileAtomically(JoinPath(creds, "hub.url"), "https://10.0.0.5:8443\n"));
  OUTPOST_ASSERT_OK(WriteFileAtomically(JoinPath(creds, "site.crt"), site_.second));
  OUTPOST_ASSERT_OK_AND_ASSIGN(ReceiptTrust pinned, LoadReceiptTrust(creds));
  EXPECT_EQ(pinned.pinned_cert_pem, signer_.second);
  EXPECT_EQ(pinned.hub_url, "https://10.0.0.5:8443");
  EXPECT_EQ(pinned.tenant, "acme");
}

TEST_F(ExportReceiptTest, ATamperedReceiptIsRefused) {
  std::string bytes = *WriteReceipt(SampleReceipt(signer_.second), signer_.first);
  // Flip a bit of the key list (after the certificate): the signature no longer verifies.
  std::string bad = bytes;
  bad[bytes.size() - 70] ^= 0x01;
  EXPECT_EQ(ReasonOf(ReadReceipt(bad).status()), "receipt_signature");
  EXPECT_EQ(ReasonOf(ReadReceipt(bytes + "x").status()), "receipt_trailing_bytes");
  EXPECT_EQ(ReasonOf(ReadReceipt(bytes.substr(0, 20)).status()), "receipt_truncated");
  bad = bytes;
  bad[1] = 'X';
  EXPECT_EQ(ReasonOf(ReadReceipt(bad).status()), "receipt_bad_magic");
  bad = bytes;
  bad[4] = 2;
  EXPECT_EQ(ReasonOf(ReadReceipt(bad).status()), "receipt_version");
  bad = bytes;
  bad[6] = 1;
  EXPECT_EQ(ReasonOf(ReadReceipt(bad).status()), "receipt_flags");
  EXPECT_EQ(ReasonOf(ReadReceipt(bytes, {.max_file_bytes = 10}).status()), "receipt_too_large");
  EXPECT_EQ(ReasonOf(ReadReceipt(bytes, {.max_keys = 0}).status()), "receipt_too_large");
}

TEST_F(ExportReceiptTest, CertificateNames) {
  Result<CertificateNames> names = ReadCertificateNames(site_.second);
  OUTPOST_ASSERT_OK(names);
  EXPECT_EQ(names->common_name, "plant-7");
  EXPECT_EQ(names->organization, "acme");
  EXPECT_EQ(names->serial_hex, "1092");  // 4242
}

}  // namespace
}  // namespace outpost::sync
