// Sealed export files (FORMAT.md section 6): the round trip, what a sealed file does not show,
// and the stable reason for every way a sealed file can be wrong.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/coding.h"
#include "base/crypto/crypto.h"
#include "base/file.h"
#include "base/subprocess.h"
#include "base/testing/test_util.h"
#include "sync/batch.h"
#include "sync/crypto.h"
#include "sync/export.h"

namespace outpost::sync {
namespace {

constexpr char kPayload[] = "{\"reading\":\"secret-payload-4711\"}";
constexpr size_t kHeaderBytes = 92;

std::string HexOf(std::string_view raw) { return HexEncode(raw); }

class SealedExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The site's key and a self-signed certificate: sealing does not look at who signed.
    RunResult r = RunProgram({"/usr/bin/openssl", "req", "-x509", "-newkey", "ed25519", "-nodes",
                              "-keyout", dir_.File("site.key"), "-out", dir_.File("site.crt"),
                              "-days", "2", "-subj", "/CN=plant-7/O=acme"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    Batch b{.site_id = "plant-7", .node_id = "n1", .stream = "pump"};
    for (uint64_t seq = 1; seq <= 3; ++seq) {
      b.records.push_back({.seq = seq, .kind = 3, .created_ms = 5, .payload = kPayload});
    }
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string batch, EncodeBatch(b));
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string cert, ReadFile(dir_.File("site.crt")));
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string key, ReadFile(dir_.File("site.key")));
    ExportFile file{.cert_pem = cert,
                    .site_id = "plant-7",
                    .node_id = "n1",
                    .created_ms = 1234,
                    .export_id = std::string(16, '\x07'),
                    .batches = {batch}};
    OUTPOST_ASSERT_OK_AND_ASSIGN(signed_, WriteExport(file, key));
    OUTPOST_ASSERT_OK_AND_ASSIGN(hub_, GenerateX25519Key());
    OUTPOST_ASSERT_OK_AND_ASSIGN(other_hub_, GenerateX25519Key());
    OUTPOST_ASSERT_OK_AND_ASSIGN(sealed_, SealExport(signed_, hub_.public_pem));
  }

  // The reason OpenSealedExport gives for `bytes` with this hub's key.
  std::string ReasonFor(std::string_view bytes, const ExportLimits& limits = {}) {
    Result<std::string> got = OpenSealedExport(bytes, hub_.private_pem, limits);
    if (got.ok()) return "ok";
    return std::string(ReasonOf(got.status()));
  }

  testing::TempDir dir_;
  std::string signed_;
  std::string sealed_;
  X25519KeyPem hub_, other_hub_;
};

TEST_F(SealedExportTest, RoundTripGivesBackTheSignedExport) {
  EXPECT_TRUE(IsSealedExport(sealed_));
  EXPECT_FALSE(IsSealedExport(signed_));
  EXPECT_EQ(sealed_.size(), signed_.size() + kSealedOverheadBytes);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string opened, OpenSealedExport(sealed_, hub_.private_pem));
  EXPECT_EQ(opened, signed_);
  OUTPOST_ASSERT_OK_AND_ASSIGN(ExportFile file, ReadExport(opened));
  EXPECT_EQ(file.site_id, "plant-7");
  ASSERT_EQ(file.batches.size(), 1u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(DecodedBatch batch, DecodeBatch(file.batches[0]));
  ASSERT_EQ(batch.batch.records.size(), 3u);
  EXPECT_EQ(batch.batch.records[2].payload, kPayload);
}

TEST_F(SealedExportTest, HeaderNamesTheRecipientKeyAndNothingOfTheSite) {
  // The recipient key id is the SHA-256 of the hub's raw public key, at bytes 8..39.
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string id, ExportKeyIdHex(hub_.public_pem));
  EXPECT_EQ(HexOf(std::string_view(sealed_).substr(8, 32)), id);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string id_from_private, ExportKeyIdHex(hub_.private_pem));
  EXPECT_EQ(id_from_private, id);
  // The signed export shows its site, certificate and records in clear; the sealed one none.
  ASSERT_NE(signed_.find("secret-payload-4711"), std::string::npos);
  for (std::string_view clear :
       {"secret-payload-4711", "plant-7", "acme", "CERTIFICATE", "OPSX", "pump"}) {
    EXPECT_EQ(sealed_.find(clear), std::string::npos) << clear;
  }
  // A fresh ephemeral key and nonce every time: the same export seals differently.
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string again, SealExport(signed_, hub_.public_pem));
  EXPECT_NE(again.substr(40), sealed_.substr(40));
  EXPECT_EQ(again.substr(0, 40), sealed_.substr(0, 40));
}

TEST_F(SealedExportTest, AnotherHubsKeyIsRefusedAsWrongKey) {
  Result<std::string> got = OpenSealedExport(sealed_, other_hub_.private_pem);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(ReasonOf(got.status()), "sealed_wrong_key") << got.status().message();
  // A key that is no X25519 private key is no key for this file either.
  Result<std::string> garbage = OpenSealedExport(sealed_, "not a key");
  EXPECT_EQ(ReasonOf(garbage.status()), "sealed_wrong_key");
  Result<std::string> public_only = OpenSealedExport(sealed_, hub_.public_pem);
  EXPECT_EQ(ReasonOf(public_only.status()), "sealed_wrong_key");
}

TEST_F(SealedExportTest, EveryAlteredByteHasAStableReason) {
  struct Case {
    size_t offset;
    std::string reason;
  };
  const size_t n = sealed_.size();
  const std::vector<Case> cases = {
      {0, "sealed_bad_magic"},
      {3, "sealed_bad_magic"},
      {4, "sealed_version"},
      {5, "sealed_flags"},
      {6, "sealed_flags"},
      {7, "sealed_flags"},
      {8, "sealed_wrong_key"},
      {39, "sealed_wrong_key"},
      {40, "sealed_corrupt"},
      {71, "sealed_corrupt"},  // ephemeral key
      {72, "sealed_corrupt"},
      {83, "sealed_corrupt"},  // nonce
      {kHeaderBytes, "sealed_corrupt"},
      {n / 2, "sealed_corrupt"},  // ciphertext
      {n - 17, "sealed_corrupt"},
      {n - 16, "sealed_corrupt"},  // last byte; tag
      {n - 1, "sealed_corrupt"},
  };
  for (const Case& c : cases) {
    std::string bytes = sealed_;
    bytes[c.offset] = static_cast<char>(bytes[c.offset] ^ 0x01);
    EXPECT_EQ(ReasonFor(bytes), c.reason) << "byte " << c.offset;
  }
  // Every single-bit change anywhere is refused.
  for (size_t i = 0; i < n; i += 7) {
    std::string bytes = sealed_;
    bytes[i] = static_cast<char>(bytes[i] ^ 0x80);
    EXPECT_NE(ReasonFor(bytes), "ok") << "byte " << i;
    EXPECT_NE(ReasonFor(bytes), "") << "byte " << i;
  }
}

TEST_F(SealedExportTest, ALowOrderEphemeralKeyIsCorrupt) {
  std::string bytes = sealed_;
  for (size_t i = 40; i < 72; ++i) bytes[i] = 0;
  EXPECT_EQ(ReasonFor(bytes), "sealed_corrupt");
}

TEST_F(SealedExportTest, TruncatedAndExtendedFilesAreRefused) {
  for (size_t len = 0; len < sealed_.size(); ++len) {
    ASSERT_EQ(ReasonFor(std::string_view(sealed_).substr(0, len)), "sealed_truncated")
        << "first " << len << " bytes";
  }
  EXPECT_EQ(ReasonFor(sealed_ + "x"), "sealed_trailing_bytes");
  // A length field that claims fewer, or more, bytes than follow.
  auto with_length = [&](uint64_t length) {
    std::string bytes = sealed_;
    for (int i = 0; i < 8; ++i) bytes[84 + i] = static_cast<char>((length >> (8 * i)) & 0xff);
    return bytes;
  };
  EXPECT_EQ(ReasonFor(with_length(signed_.size() - 1)), "sealed_trailing_bytes");
  EXPECT_EQ(ReasonFor(with_length(signed_.size() + 1)), "sealed_truncated");
  EXPECT_EQ(ReasonFor(with_length(0)), "sealed_trailing_bytes");
}

TEST_F(SealedExportTest, CiphertextOverTheLimitIsRefusedBeforeDecrypting) {
  Result<std::string> got =
      OpenSealedExport(sealed_, hub_.private_pem, {.max_file_bytes = signed_.size() - 1});
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(ReasonOf(got.status()), "sealed_too_large");
  // A length field of 2^64 - 1 is over any limit, not an overflow.
  std::string huge = sealed_;
  for (size_t i = 84; i < 92; ++i) huge[i] = '\xff';
  EXPECT_EQ(ReasonFor(huge), "sealed_too_large");
  EXPECT_EQ(ReasonFor(std::string_view(huge).substr(0, kHeaderBytes)), "sealed_too_large");
}

TEST_F(SealedExportTest, SealingNeedsAnX25519PublicKey) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string cert, ReadFile(dir_.File("site.crt")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string ed25519_key, ReadFile(dir_.File("site.key")));
  for (const std::string& bad : {std::string("not a key"), cert, ed25519_key}) {
    Result<std::string> got = SealExport(signed_, bad);
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(ReasonOf(got.status()), "sealed_bad_key") << got.status().message();
  }
}

TEST_F(SealedExportTest, EmptyPlaintextRoundTrips) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string sealed, SealExport("", hub_.public_pem));
  EXPECT_EQ(sealed.size(), kSealedOverheadBytes);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string opened, OpenSealedExport(sealed, hub_.private_pem));
  EXPECT_EQ(opened, "");
}

// A file sealed by a second implementation (python3-cryptography, testdata/sealed/
// make_seeds.py) from FORMAT.md alone opens here, and one byte changed does not.
TEST(SealedExportInterop, OpensAFileSealedByAnIndependentImplementation) {
  const std::string dir = JoinPath(testing::SourceDir(), "sync/testdata/sealed");
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string key, ReadFile(JoinPath(dir, "test_hub_export.key")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string sealed, ReadFile(JoinPath(dir, "known_answer.opse")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string opened, OpenSealedExport(sealed, key));
  EXPECT_EQ(opened, "a sealed export, opened by the C++ reader");
  sealed[100] = static_cast<char>(sealed[100] ^ 1);
  EXPECT_EQ(ReasonOf(OpenSealedExport(sealed, key).status()), "sealed_corrupt");
}

// The primitives underneath, against published values where there are some.
TEST(SealPrimitives, HkdfSha256MatchesRfc5869WithEmptySalt) {
  // RFC 5869 appendix A.3: IKM = 22 × 0x0b, salt and info empty, L = 42.
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string okm, HkdfSha256(std::string(22, '\x0b'), "", "", 42));
  EXPECT_EQ(HexOf(okm),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

TEST(SealPrimitives, Sha256MatchesTheKnownDigest) {
  EXPECT_EQ(HexOf(crypto::Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(SealPrimitives, X25519AgreesFromBothSides) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(X25519KeyPem a, GenerateX25519Key());
  OUTPOST_ASSERT_OK_AND_ASSIGN(X25519KeyPem b, GenerateX25519Key());
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string a_pub, X25519RawPublicKey(a.public_pem));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string b_pub, X25519RawPublicKey(b.public_pem));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string ab, X25519SharedSecret(a.private_pem, b_pub));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string ba, X25519SharedSecret(b.private_pem, a_pub));
  EXPECT_EQ(ab.size(), 32u);
  EXPECT_EQ(ab, ba);
  EXPECT_NE(a_pub, b_pub);
}

TEST(SealPrimitives, AesGcmRefusesAnyChange) {
  const std::string key(32, 'k'), nonce(12, 'n');
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string sealed, AesGcmSeal(key, nonce, "head", "plaintext"));
  EXPECT_EQ(sealed.size(), 9u + 16u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string plain, AesGcmOpen(key, nonce, "head", sealed));
  EXPECT_EQ(plain, "plaintext");
  EXPECT_EQ(AesGcmOpen(key, nonce, "Head", sealed).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(AesGcmOpen(std::string(32, 'K'), nonce, "head", sealed).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(AesGcmOpen(key, nonce, "head", sealed.substr(1)).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(AesGcmOpen(key, nonce, "head", "short").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(AesGcmSeal("short", nonce, "", "x").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace outpost::sync
