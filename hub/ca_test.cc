// The hub CA: created once and reopened unchanged, site certificates with the site's
// identity, a fresh serial and both TLS purposes, the receipt certificate with only the
// receipt key purpose (an older one without it replaced), keys that are not Ed25519 refused,
// and tokens' form.
#include "hub/ca.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>

#include "base/clock.h"
#include "base/file.h"
#include "base/testing/test_util.h"
#include "hub/enrol.h"
#include "sync/batch.h"
#include "sync/export.h"
#include "sync/receipt.h"

namespace outpost::hub {
namespace {

using testing::TempDir;

int Mode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 0777);
}

TEST(HubCa, CreatesOnceAndReopensTheSameCa) {
  TempDir dir;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto ca, HubCa::OpenOrCreate(dir.path(), {"hub.example"}));
  EXPECT_EQ(ca->fingerprint().size(), 64u);
  EXPECT_EQ(Mode(dir.File("ca.key")), 0600);
  EXPECT_EQ(Mode(dir.File("server.key")), 0600);
  EXPECT_EQ(Mode(dir.File("receipt.key")), 0600);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string server_pem, ReadFile(ca->server_cert_path()));
  OUTPOST_ASSERT_OK_AND_ASSIGN(CertInfo server, ParseCertificatePem(server_pem));
  EXPECT_EQ(server.common_name, "outpost-hub");

  OUTPOST_ASSERT_OK_AND_ASSIGN(auto again, HubCa::OpenOrCreate(dir.path(), {}));
  EXPECT_EQ(again->fingerprint(), ca->fingerprint());
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string server_again, ReadFile(ca->server_cert_path()));
  EXPECT_EQ(server_again, server_pem);

  TempDir other;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto other_ca, HubCa::OpenOrCreate(other.path(), {}));
  EXPECT_NE(other_ca->fingerprint(), ca->fingerprint());
}

TEST(HubCa, DamagedKeyIsDataLoss) {
  TempDir dir;
  { OUTPOST_ASSERT_OK(HubCa::OpenOrCreate(dir.path(), {}).status()); }
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("ca.key"), "not a key", 0600));
  EXPECT_EQ(HubCa::OpenOrCreate(dir.path(), {}).status().code(), StatusCode::kDataLoss);
}

TEST(HubCa, KeepsAnExportKeyThatSealedFilesOpenWith) {
  TempDir dir;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto ca, HubCa::OpenOrCreate(dir.path(), {}));
  EXPECT_EQ(ca->export_key_path(), dir.File("export.key"));
  EXPECT_EQ(Mode(ca->export_key_path()), 0600);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string pub, ReadFile(ca->export_public_key_path()));
  EXPECT_EQ(pub, ca->export_public_pem());
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string key, ReadFile(ca->export_key_path()));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string sealed, sync::SealExport("inside", pub));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string opened, sync::OpenSealedExport(sealed, key));
  EXPECT_EQ(opened, "inside");

  // Reopened: the same key. A lost export.pub is derived again from export.key.
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto again, HubCa::OpenOrCreate(dir.path(), {}));
  EXPECT_EQ(again->export_public_pem(), pub);
  ASSERT_EQ(std::remove(ca->export_public_key_path().c_str()), 0);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto rederived, HubCa::OpenOrCreate(dir.path(), {}));
  EXPECT_EQ(rederived->export_public_pem(), pub);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string pub_again, ReadFile(ca->export_public_key_path()));
  EXPECT_EQ(pub_again, pub);

  // Another hub has another key: its sealed files do not open here.
  TempDir other;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto other_ca, HubCa::OpenOrCreate(other.path(), {}));
  EXPECT_NE(other_ca->export_public_pem(), pub);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string foreign,
                               sync::SealExport("inside", other_ca->export_public_pem()));
  EXPECT_EQ(sync::ReasonOf(sync::OpenSealedExport(foreign, key).status()), "sealed_wrong_key");

  // An export.pub of another key, or a damaged export.key, is data loss, not a new key.
  OUTPOST_ASSERT_OK(WriteFileAtomically(ca->export_public_key_path(),
                                        other_ca->export_public_pem()));
  EXPECT_EQ(HubCa::OpenOrCreate(dir.path(), {}).status().code(), StatusCode::kDataLoss);
  OUTPOST_ASSERT_OK(WriteFileAtomically(ca->export_key_path(), "damaged", 0600));
  EXPECT_EQ(HubCa::OpenOrCreate(dir.path(), {}).status().code(), StatusCode::kDataLoss);
}

TEST(HubCa, IssuesSiteCertificatesWithIdentityAndFreshSerials) {
  TempDir dir;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto ca, HubCa::OpenOrCreate(dir.path(), {}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(KeyPairPem key, GenerateEd25519Key());
  OUTPOST_ASSERT_OK_AND_ASSIGN(IssuedCertificate a,
                               ca->IssueSiteCertificate(key.public_pem, "plant-7", "acme"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(IssuedCertificate b,
                               ca->IssueSiteCertificate(key.public_pem, "plant-7", "acme"));
  EXPECT_NE(a.serial, b.serial);
  OUTPOST_ASSERT_OK_AND_ASSIGN(CertInfo info, ParseCertificatePem(a.certificate_pem));
  EXPECT_EQ(info.common_name, "plant-7");
  EXPECT_EQ(info.organization, "acme");
  EXPECT_EQ(info.serial, a.serial);
  EXPECT_GT(info.not_after_ms, 0);
}

TEST(HubCa, SiteCertificatesMayServeTlsUnderTheSiteIdButNeverSignReceipts) {
  TempDir dir;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto ca, HubCa::OpenOrCreate(dir.path(), {}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(KeyPairPem key, GenerateEd25519Key());
  OUTPOST_ASSERT_OK_AND_ASSIGN(IssuedCertificate site,
                               ca->IssueSiteCertificate(key.public_pem, "plant-7", "acme"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(CertInfo info, ParseCertificatePem(site.certificate_pem));
  EXPECT_EQ(info.extended_key_usages,
            (std::vector<std::string>{crypto::kClientAuthOid, crypto::kServerAuthOid}));
  EXPECT_EQ(info.subject_alt_names, std::vector<std::string>{"plant-7"});
  OUTPOST_EXPECT_OK(crypto::VerifyCertificateChain(site.certificate_pem, ca->ca_pem()));
  EXPECT_FALSE(sync::CheckReceiptCertificate(site.certificate_pem, ca->ca_pem()).ok());
}

TEST(HubCa, TheReceiptCertificateCarriesOnlyTheReceiptKeyPurpose) {
  TempDir dir;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto ca, HubCa::OpenOrCreate(dir.path(), {}));
  EXPECT_EQ(Mode(ca->receipt_key_path()), 0600);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string pem, ReadFile(ca->receipt_cert_path()));
  EXPECT_EQ(ca->receipt_pem(), pem);
  OUTPOST_ASSERT_OK_AND_ASSIGN(CertInfo info, ParseCertificatePem(pem));
  EXPECT_EQ(info.common_name, "outpost-hub receipts");
  EXPECT_EQ(info.extended_key_usages, std::vector<std::string>{sync::kReceiptSigningOid});
  OUTPOST_EXPECT_OK(sync::CheckReceiptCertificate(pem, ca->ca_pem()));
  // It lives as long as the CA: sites pin it.
  OUTPOST_ASSERT_OK_AND_ASSIGN(CertInfo ca_info, ParseCertificatePem(ca->ca_pem()));
  EXPECT_GE(info.not_after_ms, ca_info.not_after_ms - int64_t{86400} * 1000);
  // The server certificate is no receipt certificate.
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string server_pem, ReadFile(ca->server_cert_path()));
  EXPECT_FALSE(sync::CheckReceiptCertificate(server_pem, ca->ca_pem()).ok());

  // Reopened: the same key and certificate.
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string key_pem, ReadFile(ca->receipt_key_path()));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto again, HubCa::OpenOrCreate(dir.path(), {}));
  EXPECT_EQ(again->receipt_pem(), pem);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string key_again, ReadFile(ca->receipt_key_path()));
  EXPECT_EQ(key_again, key_pem);
}

TEST(HubCa, AReceiptCertificateSitesWouldRefuseIsReplaced) {
  TempDir dir;
  std::string ca_pem;
  {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto ca, HubCa::OpenOrCreate(dir.path(), {}));
    ca_pem = ca->ca_pem();
  }
  // What an older hub wrote: a receipt certificate of the same CA with no extendedKeyUsage.
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string ca_key, ReadFile(dir.File("ca.key")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto issuer, crypto::CertificateIssuer::Open(ca_pem, ca_key));
  OUTPOST_ASSERT_OK_AND_ASSIGN(KeyPairPem old_key, GenerateEd25519Key());
  const int64_t now = UnixMillis(SystemClock().Now()) / 1000;
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      std::string old_pem,
      issuer->Issue({.common_name = "outpost-hub receipts",
                     .validity = {.not_before_s = now - 60, .not_after_s = now + 86400},
                     .key_usage = crypto::kDigitalSignature},
                    old_key.public_pem));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("receipt.crt"), old_pem));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("receipt.key"), old_key.private_pem, 0600));

  OUTPOST_ASSERT_OK_AND_ASSIGN(auto upgraded, HubCa::OpenOrCreate(dir.path(), {}));
  EXPECT_EQ(upgraded->ca_pem(), ca_pem);  // the CA, and so every site credential, stays
  EXPECT_NE(upgraded->receipt_pem(), old_pem);
  OUTPOST_EXPECT_OK(sync::CheckReceiptCertificate(upgraded->receipt_pem(), ca_pem));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string new_key, ReadFile(dir.File("receipt.key")));
  EXPECT_NE(new_key, old_key.private_pem);
  EXPECT_EQ(Mode(dir.File("receipt.key")), 0600);

  // Another hub's receipt certificate (the right purpose, the wrong CA) is replaced too.
  TempDir other;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto other_ca, HubCa::OpenOrCreate(other.path(), {}));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("receipt.crt"), other_ca->receipt_pem()));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto reopened, HubCa::OpenOrCreate(dir.path(), {}));
  EXPECT_NE(reopened->receipt_pem(), other_ca->receipt_pem());
  OUTPOST_EXPECT_OK(sync::CheckReceiptCertificate(reopened->receipt_pem(), ca_pem));

  // A receipt.crt that is not a certificate is data loss, not silently replaced.
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("receipt.crt"), "damaged"));
  EXPECT_EQ(HubCa::OpenOrCreate(dir.path(), {}).status().code(), StatusCode::kDataLoss);
}

TEST(HubCa, RefusesKeysThatAreNotEd25519) {
  TempDir dir;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto ca, HubCa::OpenOrCreate(dir.path(), {}));
  // The server's own certificate carries an EC key: a PEM, but not a public key block.
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string server_pem, ReadFile(ca->server_cert_path()));
  Result<IssuedCertificate> wrong = ca->IssueSiteCertificate(server_pem, "s", "t");
  EXPECT_EQ(wrong.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(wrong.status().message().rfind("bad_public_key", 0), 0u);
  EXPECT_FALSE(ca->IssueSiteCertificate("", "s", "t").ok());
  EXPECT_FALSE(ca->IssueSiteCertificate("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
                                        "s", "t")
                   .ok());
}

TEST(HubCa, ParsesOnlyCertificates) {
  EXPECT_FALSE(ParseCertificatePem("").ok());
  EXPECT_FALSE(ParseCertificatePem("-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----\n").ok());
  EXPECT_FALSE(ParseCertificateDer(std::string(10, '\x30')).ok());
}

TEST(EnrolmentToken, HasPrefixSecretAndPin) {
  std::string secret(64, 'a'), pin(64, 'b');
  OUTPOST_ASSERT_OK_AND_ASSIGN(TokenParts parts, ParseToken("op1." + secret + "." + pin));
  EXPECT_EQ(parts.secret, secret);
  EXPECT_EQ(parts.ca_fingerprint, pin);
  EXPECT_FALSE(ParseToken("op2." + secret + "." + pin).ok());
  EXPECT_FALSE(ParseToken("op1." + secret + "-" + pin).ok());
  EXPECT_FALSE(ParseToken("op1." + std::string(64, 'A') + "." + pin).ok());
  EXPECT_FALSE(ParseToken("op1." + secret).ok());
  EXPECT_FALSE(ParseToken("").ok());
}

TEST(SiteNames, FollowTheFormat) {
  OUTPOST_EXPECT_OK(ValidateEnrolledSiteId("plant-7.a_b"));
  EXPECT_FALSE(ValidateEnrolledSiteId("").ok());
  EXPECT_FALSE(ValidateEnrolledSiteId("-x").ok());
  EXPECT_FALSE(ValidateEnrolledSiteId(".x").ok());
  EXPECT_FALSE(ValidateEnrolledSiteId("a b").ok());
  EXPECT_FALSE(ValidateEnrolledSiteId(std::string(65, 'a')).ok());
}

}  // namespace
}  // namespace outpost::hub
