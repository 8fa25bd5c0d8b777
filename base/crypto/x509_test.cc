// The X.509 half of the crypto adapter: keys of each algorithm in PEM, a self-signed CA and
// the certificates it issues read back field by field, the extensions in their order (read
// with OpenSSL itself), chains that verify and chains that do not, and refusals.
#include "base/crypto/x509.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "base/coding.h"
#include "base/testing/test_util.h"

namespace outpost::crypto {
namespace {

// 2026-01-01T00:00:00Z and two years on.
constexpr int64_t kStart = 1767225600;
constexpr int64_t kEnd = kStart + 2 * 365 * 86400;

// A CA valid from `start` for 20 years.
CertificateSpec CaSpec(int64_t start) {
  return {.common_name = "Test CA",
          .validity = {.not_before_s = start, .not_after_s = start + 20 * 365 * 86400},
          .is_ca = true,
          .key_usage = kKeyCertSign | kCrlSign};
}

int64_t Now() { return static_cast<int64_t>(std::time(nullptr)); }

// The extensions of a PEM certificate as (short name, critical), in order.
std::vector<std::pair<std::string, bool>> Extensions(const std::string& pem) {
  std::vector<std::pair<std::string, bool>> out;
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (cert == nullptr) return out;
  for (int i = 0; i < X509_get_ext_count(cert); ++i) {
    X509_EXTENSION* ext = X509_get_ext(cert, i);
    out.emplace_back(OBJ_nid2sn(OBJ_obj2nid(X509_EXTENSION_get_object(ext))),
                     X509_EXTENSION_get_critical(ext) == 1);
  }
  X509_free(cert);
  return out;
}

// The DER encoding of a PEM certificate.
std::string Der(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (cert == nullptr) return "";
  unsigned char* der = nullptr;
  int size = i2d_X509(cert, &der);
  std::string out = size > 0 ? std::string(reinterpret_cast<char*>(der), size) : "";
  OPENSSL_free(der);
  X509_free(cert);
  return out;
}

struct TestCa {
  KeyPairPem key;
  std::string cert_pem;
  std::unique_ptr<CertificateIssuer> issuer;
};

TestCa MakeCa() {
  TestCa ca;
  ca.key = *GenerateKeyPairPem(KeyAlgorithm::kEcdsaP256);
  ca.cert_pem = *SelfSignCertificate(CaSpec(Now() - 300), ca.key.private_pem);
  ca.issuer = std::move(*CertificateIssuer::Open(ca.cert_pem, ca.key.private_pem));
  return ca;
}

TEST(X509Keys, GeneratesEachAlgorithmAndReadsItBack) {
  for (KeyAlgorithm algorithm :
       {KeyAlgorithm::kEcdsaP256, KeyAlgorithm::kEd25519, KeyAlgorithm::kX25519}) {
    OUTPOST_ASSERT_OK_AND_ASSIGN(KeyPairPem key, GenerateKeyPairPem(algorithm));
    EXPECT_EQ(key.private_pem.rfind("-----BEGIN PRIVATE KEY-----\n", 0), 0u);
    EXPECT_EQ(key.public_pem.rfind("-----BEGIN PUBLIC KEY-----\n", 0), 0u);
    OUTPOST_ASSERT_OK_AND_ASSIGN(KeyAlgorithm private_algorithm,
                                 PrivateKeyPemAlgorithm(key.private_pem));
    EXPECT_EQ(private_algorithm, algorithm);
    OUTPOST_ASSERT_OK_AND_ASSIGN(KeyAlgorithm public_algorithm,
                                 PublicKeyPemAlgorithm(key.public_pem));
    EXPECT_EQ(public_algorithm, algorithm);
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string derived, PublicKeyPemOf(key.private_pem));
    EXPECT_EQ(derived, key.public_pem);
  }
  EXPECT_EQ(GenerateKeyPairPem(KeyAlgorithm::kOther).status().code(), StatusCode::kInvalidArgument);
}

TEST(X509Keys, MatchesTheRawKeysOfTheCryptoAdapter) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(KeyPairPem key, GenerateKeyPairPem(KeyAlgorithm::kEd25519));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string seed,
                               PrivateKeyFromPem(KeyType::kEd25519, key.private_pem));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string again, PrivateKeyToPem(KeyType::kEd25519, seed));
  EXPECT_EQ(again, key.private_pem);
  OUTPOST_ASSERT_OK_AND_ASSIGN(Ed25519KeyPair pair, Ed25519KeyFromSeed(seed));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string pub, PublicKeyToPem(KeyType::kEd25519, pair.public_key));
  EXPECT_EQ(pub, key.public_pem);
}

TEST(X509Keys, RefusesWhatIsNotAKeyOfTheAskedKind) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(KeyPairPem key, GenerateKeyPairPem(KeyAlgorithm::kEd25519));
  Result<KeyAlgorithm> not_public = PublicKeyPemAlgorithm(key.private_pem);
  EXPECT_EQ(not_public.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(not_public.status().message(), "not a PEM public key");
  Result<KeyAlgorithm> not_private = PrivateKeyPemAlgorithm(key.public_pem);
  EXPECT_EQ(not_private.status().message(), "not a PEM private key");
  EXPECT_FALSE(PublicKeyPemOf("garbage").ok());
}

TEST(X509Certificates, SelfSignedCaReadsBack) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(KeyPairPem key, GenerateKeyPairPem(KeyAlgorithm::kEcdsaP256));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string pem,
                               SelfSignCertificate(CaSpec(kStart), key.private_pem));
  EXPECT_EQ(pem.rfind("-----BEGIN CERTIFICATE-----\n", 0), 0u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(CertificateInfo info, ParseCertificatePem(pem));
  EXPECT_EQ(info.common_name, "Test CA");
  EXPECT_EQ(info.organization, "");
  // 127 random bits with the top one set: 32 hex digits, the first 4 to 7.
  ASSERT_EQ(info.serial.size(), 32u);
  EXPECT_TRUE(IsLowerHex(info.serial));
  EXPECT_GE(info.serial[0], '4');
  EXPECT_LE(info.serial[0], '7');
  EXPECT_EQ(info.fingerprint, Sha256Hex(Der(pem)));
  OUTPOST_ASSERT_OK_AND_ASSIGN(CertificateInfo from_der, ParseCertificateDer(Der(pem)));
  EXPECT_EQ(from_der.fingerprint, info.fingerprint);
  EXPECT_EQ(CertificatePemToDer(pem).value_or(""), Der(pem));
  EXPECT_EQ(CertificatePemToDer("Subject: Test CA\n" + pem).value_or(""), Der(pem));
  EXPECT_EQ(from_der.serial, info.serial);
  EXPECT_EQ(info.not_before_ms, kStart * 1000);
  EXPECT_EQ(info.not_after_ms, (kStart + 20 * 365 * 86400) * 1000);
  EXPECT_TRUE(info.subject_alt_names.empty());
  std::vector<std::pair<std::string, bool>> want = {
      {"subjectKeyIdentifier", false}, {"basicConstraints", true}, {"keyUsage", true}};
  EXPECT_EQ(Extensions(pem), want);
}

TEST(X509Certificates, CaVerifiesItself) {
  TestCa ca = MakeCa();
  OUTPOST_EXPECT_OK(VerifyCertificateChain(ca.cert_pem, ca.cert_pem));
}

TEST(X509Certificates, IssuedServerCertificateCarriesItsNames) {
  TestCa ca = MakeCa();
  ASSERT_NE(ca.issuer, nullptr);
  OUTPOST_ASSERT_OK_AND_ASSIGN(KeyPairPem key, GenerateKeyPairPem(KeyAlgorithm::kEcdsaP256));
  CertificateSpec spec{.common_name = "server",
                       .validity = {.not_before_s = kStart, .not_after_s = kEnd},
                       .key_usage = kDigitalSignature | kKeyAgreement,
                       .extended_key_usage = {ExtendedKeyUsage::kServerAuth},
                       .subject_alt_names = {"localhost", "127.0.0.1", "::1", "hub.example"}};
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string pem, ca.issuer->Issue(spec, key.public_pem));
  OUTPOST_ASSERT_OK_AND_ASSIGN(CertificateInfo info, ParseCertificatePem(pem));
  EXPECT_EQ(info.common_name, "server");
  EXPECT_EQ(info.subject_alt_names,
            (std::vector<std::string>{"localhost", "127.0.0.1", "::1", "hub.example"}));
  EXPECT_EQ(info.not_after_ms, kEnd * 1000);
  std::vector<std::pair<std::string, bool>> want = {
      {"subjectKeyIdentifier", false}, {"authorityKeyIdentifier", false},
      {"basicConstraints", true},      {"keyUsage", true},
      {"extendedKeyUsage", false},     {"subjectAltName", false}};
  EXPECT_EQ(Extensions(pem), want);
}

TEST(X509Certificates, IssuedSiteCertificateVerifiesAgainstItsCaOnly) {
  TestCa ca = MakeCa();
  TestCa other = MakeCa();
  OUTPOST_ASSERT_OK_AND_ASSIGN(KeyPairPem key, GenerateKeyPairPem(KeyAlgorithm::kEd25519));
  const int64_t now = Now();
  CertificateSpec spec{.common_name = "plant-7",
                       .organization = "acme",
                       .validity = {.not_before_s = now - 300, .not_after_s = now + 86400},
                       .key_usage = kDigitalSignature,
                       .extended_key_usage = {ExtendedKeyUsage::kClientAuth}};
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string a, ca.issuer->Issue(spec, key.public_pem));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string b, ca.issuer->Issue(spec, key.public_pem));
  OUTPOST_ASSERT_OK_AND_ASSIGN(CertificateInfo info_a, ParseCertificatePem(a));
  OUTPOST_ASSERT_OK_AND_ASSIGN(CertificateInfo info_b, ParseCertificatePem(b));
  EXPECT_EQ(info_a.common_name, "plant-7");
  EXPECT_EQ(info_a.organization, "acme");
  EXPECT_NE(info_a.serial, info_b.serial);
  EXPECT_NE(info_a.fingerprint, info_b.fingerprint);

  OUTPOST_EXPECT_OK(VerifyCertificateChain(a, ca.cert_pem));
  OUTPOST_EXPECT_OK(VerifyCertificateChain(a, other.cert_pem + ca.cert_pem));
  Status foreign = VerifyCertificateChain(a, other.cert_pem);
  EXPECT_EQ(foreign.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(foreign.message().rfind("certificate not trusted: ", 0), 0u);
  EXPECT_EQ(VerifyCertificateChain(a, "no CA here").message(),
            "no CA certificate in the trust anchor");

  // The certificate's key is the site's key.
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string raw, CertificatePublicKey(a, KeyType::kEd25519));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string want,
                               PublicKeyFromPem(KeyType::kEd25519, key.public_pem));
  EXPECT_EQ(raw, want);
  EXPECT_EQ(CertificatePublicKey(a, KeyType::kX25519).status().message(),
            "the certificate's key is not X25519");
  EXPECT_EQ(CertificatePublicKey(ca.cert_pem, KeyType::kEd25519).status().message(),
            "the certificate's key is not Ed25519");
}

TEST(X509Certificates, ExtendedKeyUsagesReadBackAsDottedOids) {
  TestCa ca = MakeCa();
  OUTPOST_ASSERT_OK_AND_ASSIGN(KeyPairPem key, GenerateKeyPairPem(KeyAlgorithm::kEd25519));
  const std::string private_oid = "2.25.49729270687702727671154857416644360551.1.1";
  CertificateSpec spec{
      .common_name = "both",
      .validity = {.not_before_s = kStart, .not_after_s = kEnd},
      .key_usage = kDigitalSignature,
      .extended_key_usage = {ExtendedKeyUsage::kClientAuth, ExtendedKeyUsage::kServerAuth}};
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string tls, ca.issuer->Issue(spec, key.public_pem));
  OUTPOST_ASSERT_OK_AND_ASSIGN(CertificateInfo tls_info, ParseCertificatePem(tls));
  EXPECT_EQ(tls_info.extended_key_usages,
            (std::vector<std::string>{kClientAuthOid, kServerAuthOid}));

  // A private purpose alone: one extendedKeyUsage, holding only that OID (a 128-bit arc).
  spec.extended_key_usage = {};
  spec.extended_key_usage_oids = {private_oid};
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string own, ca.issuer->Issue(spec, key.public_pem));
  OUTPOST_ASSERT_OK_AND_ASSIGN(CertificateInfo own_info, ParseCertificatePem(own));
  EXPECT_EQ(own_info.extended_key_usages, (std::vector<std::string>{private_oid}));
  std::vector<std::pair<std::string, bool>> want = {{"subjectKeyIdentifier", false},
                                                    {"authorityKeyIdentifier", false},
                                                    {"basicConstraints", true},
                                                    {"keyUsage", true},
                                                    {"extendedKeyUsage", false}};
  EXPECT_EQ(Extensions(own), want);

  // None: no extension, nothing read.
  spec.extended_key_usage_oids = {};
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string none, ca.issuer->Issue(spec, key.public_pem));
  OUTPOST_ASSERT_OK_AND_ASSIGN(CertificateInfo none_info, ParseCertificatePem(none));
  EXPECT_TRUE(none_info.extended_key_usages.empty());

  // What is not a dotted OID never reaches OpenSSL's configuration syntax.
  for (const char* bad : {"", "7", "serverAuth", "1.2,DNS:x", "1..2", "1.2.", "01.2"}) {
    spec.extended_key_usage_oids = {bad};
    Result<std::string> refused = ca.issuer->Issue(spec, key.public_pem);
    EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(X509Certificates, ExpiredCertificateIsNotTrusted) {
  TestCa ca = MakeCa();
  OUTPOST_ASSERT_OK_AND_ASSIGN(KeyPairPem key, GenerateKeyPairPem(KeyAlgorithm::kEd25519));
  CertificateSpec spec{.common_name = "old",
                       .validity = {.not_before_s = 1000000000, .not_after_s = 1000086400},
                       .key_usage = kDigitalSignature};
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string pem, ca.issuer->Issue(spec, key.public_pem));
  EXPECT_EQ(VerifyCertificateChain(pem, ca.cert_pem).code(), StatusCode::kPermissionDenied);
}

TEST(X509Certificates, IssuerRefusesWithReasons) {
  TestCa ca = MakeCa();
  OUTPOST_ASSERT_OK_AND_ASSIGN(KeyPairPem other, GenerateKeyPairPem(KeyAlgorithm::kEcdsaP256));
  EXPECT_EQ(CertificateIssuer::Open(ca.cert_pem, "not a key").status().reason(), "bad_private_key");
  Result<std::unique_ptr<CertificateIssuer>> bad_cert =
      CertificateIssuer::Open("not a cert", ca.key.private_pem);
  EXPECT_EQ(bad_cert.status().reason(), "bad_certificate");
  EXPECT_EQ(bad_cert.status().message(), "not a PEM certificate");
  EXPECT_EQ(CertificateIssuer::Open(ca.cert_pem, other.private_pem).status().reason(),
            "key_mismatch");
  // A subject key must be a public key.
  Result<std::string> issued = ca.issuer->Issue(CaSpec(kStart), other.private_pem);
  EXPECT_EQ(issued.status().message(), "not a PEM public key");
}

TEST(X509Certificates, ParsesOnlyCertificates) {
  EXPECT_EQ(ParseCertificatePem("").status().message(), "not a PEM certificate");
  EXPECT_FALSE(
      ParseCertificatePem("-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----\n").ok());
  EXPECT_EQ(ParseCertificatePem(std::string((1 << 20) + 1, 'a')).status().message(),
            "certificate too large");
  EXPECT_EQ(ParseCertificateDer(std::string(10, '\x30')).status().message(),
            "not a DER certificate");
  EXPECT_EQ(CertificatePemToDer("").status().message(), "not a PEM certificate");
  EXPECT_EQ(CertificatePemToDer(std::string((1 << 20) + 1, 'a')).status().message(),
            "certificate too large");
}

}  // namespace
}  // namespace outpost::crypto
