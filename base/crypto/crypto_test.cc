#include "base/crypto/crypto.h"

#include <gtest/gtest.h>

#include <string>

#include "base/coding.h"
#include "base/testing/test_util.h"

namespace outpost::crypto {
namespace {

TEST(Sha256, Abc) {
  EXPECT_EQ(HexEncode(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HexEncode(Sha256("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256, HexIsLowercaseHexOfTheDigest) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex(""), HexEncode(Sha256("")));
}

TEST(Sha256, StreamingEqualsOneShotAndResets) {
  Sha256Hasher h;
  h.Update("a");
  h.Update("");
  h.Update("bc");
  EXPECT_EQ(h.Finish(), Sha256("abc"));
  h.Reset();
  h.Update("abc");
  EXPECT_EQ(h.Finish(), Sha256("abc"));
}

TEST(HmacSha256, Rfc4231) {
  // Test case 1.
  EXPECT_EQ(HexEncode(HmacSha256(std::string(20, '\x0b'), "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  // Test case 2.
  EXPECT_EQ(HexEncode(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // An empty key is a key of zero bytes, not "no key".
  EXPECT_EQ(HmacSha256("", "m"), HmacSha256(std::string(64, '\0'), "m"));
}

TEST(HkdfSha256, Rfc5869Case1) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      std::string okm, HkdfSha256(std::string(22, '\x0b'), *HexDecode("000102030405060708090a0b0c"),
                                  *HexDecode("f0f1f2f3f4f5f6f7f8f9"), 42));
  EXPECT_EQ(HexEncode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
  EXPECT_EQ(HkdfSha256("", "", "", 32).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(HkdfSha256("k", "", "", 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(HkdfSha256("k", "", "", 255 * 32 + 1).status().code(), StatusCode::kInvalidArgument);
}

TEST(RandomBytes, LengthAndVariety) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string a, RandomBytes(32));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string b, RandomBytes(32));
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string none, RandomBytes(0));
  EXPECT_TRUE(none.empty());
}

TEST(ConstantTimeEquals, ComparesContentAndLength) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("secret", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secreT"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secret!"));
}

TEST(Ed25519, Rfc8032Test1) {
  const std::string seed =
      *HexDecode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
  OUTPOST_ASSERT_OK_AND_ASSIGN(Ed25519KeyPair pair, Ed25519KeyFromSeed(seed));
  EXPECT_EQ(HexEncode(pair.public_key),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string sig, Ed25519Sign(seed, ""));
  EXPECT_EQ(HexEncode(sig),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39"
            "701cf9b46bd25bf5f0595bbe24655141438e7a100b");
  EXPECT_TRUE(Ed25519Verify(pair.public_key, "", sig));
  EXPECT_FALSE(Ed25519Verify(pair.public_key, "x", sig));
  sig[0] ^= 1;
  EXPECT_FALSE(Ed25519Verify(pair.public_key, "", sig));
  EXPECT_FALSE(Ed25519Verify("short", "", sig));
  EXPECT_FALSE(Ed25519Verify(pair.public_key, "", "short"));
  EXPECT_EQ(Ed25519Sign("short", "").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Ed25519KeyFromSeed("short").status().code(), StatusCode::kInvalidArgument);
}

TEST(Ed25519, GeneratedKeysSignAndRoundTripThroughPem) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(Ed25519KeyPair pair, Ed25519GenerateKey());
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string sig, Ed25519Sign(pair.seed, "message"));
  EXPECT_TRUE(Ed25519Verify(pair.public_key, "message", sig));

  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string private_pem,
                               PrivateKeyToPem(KeyType::kEd25519, pair.seed));
  EXPECT_EQ(private_pem.rfind("-----BEGIN PRIVATE KEY-----\n", 0), 0u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string seed, PrivateKeyFromPem(KeyType::kEd25519, private_pem));
  EXPECT_EQ(seed, pair.seed);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string public_pem,
                               PublicKeyToPem(KeyType::kEd25519, pair.public_key));
  EXPECT_EQ(public_pem.rfind("-----BEGIN PUBLIC KEY-----\n", 0), 0u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string pub, PublicKeyFromPem(KeyType::kEd25519, public_pem));
  EXPECT_EQ(pub, pair.public_key);
  OUTPOST_ASSERT_OK_AND_ASSIGN(pub, PublicKeyFromPem(KeyType::kEd25519, private_pem));
  EXPECT_EQ(pub, pair.public_key);

  // A key of the other curve, or no key, is refused.
  EXPECT_EQ(PrivateKeyFromPem(KeyType::kX25519, private_pem).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(PublicKeyFromPem(KeyType::kX25519, public_pem).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(PrivateKeyFromPem(KeyType::kEd25519, public_pem).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(PublicKeyFromPem(KeyType::kEd25519, "not pem").status().code(),
            StatusCode::kInvalidArgument);
}

TEST(X25519, Rfc7748Section6_1) {
  const std::string alice =
      *HexDecode("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  const std::string bob =
      *HexDecode("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string alice_pub, X25519PublicKey(alice));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string bob_pub, X25519PublicKey(bob));
  EXPECT_EQ(HexEncode(alice_pub),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  EXPECT_EQ(HexEncode(bob_pub), "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string ab, X25519(alice, bob_pub));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string ba, X25519(bob, alice_pub));
  EXPECT_EQ(HexEncode(ab), "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
  EXPECT_EQ(ab, ba);
}

TEST(X25519, RefusesLowOrderPeersAndBadSizes) {
  const std::string alice =
      *HexDecode("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  EXPECT_EQ(X25519(alice, std::string(32, '\0')).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(X25519(alice, "short").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(X25519("short", std::string(32, '\x09')).status().code(), StatusCode::kInvalidArgument);
}

TEST(X25519, GeneratedKeysAgreeThroughPem) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string a, X25519GeneratePrivateKey());
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string b, X25519GeneratePrivateKey());
  ASSERT_EQ(a.size(), 32u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string a_pem, PrivateKeyToPem(KeyType::kX25519, a));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string b_pub, X25519PublicKey(b));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string b_pub_pem, PublicKeyToPem(KeyType::kX25519, b_pub));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string a_again, PrivateKeyFromPem(KeyType::kX25519, a_pem));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string b_pub_again,
                               PublicKeyFromPem(KeyType::kX25519, b_pub_pem));
  EXPECT_EQ(a_again, a);
  EXPECT_EQ(b_pub_again, b_pub);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string a_pub, X25519PublicKey(a));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string ab, X25519(a, b_pub));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string ba, X25519(b, a_pub));
  EXPECT_EQ(ab, ba);
}

// The GCM specification's (McGrew and Viega) test cases 13 and 16: AES-256, 96-bit IV.
TEST(AesGcm, SpecTestCase13) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string sealed,
                               AesGcmSeal(std::string(32, '\0'), std::string(12, '\0'), "", ""));
  EXPECT_EQ(HexEncode(sealed), "530f8afbc74536b9a963b4f1c4cb738b");
}

TEST(AesGcm, SpecTestCase16) {
  const std::string key =
      *HexDecode("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
  const std::string nonce = *HexDecode("cafebabefacedbaddecaf888");
  const std::string aad = *HexDecode("feedfacedeadbeeffeedfacedeadbeefabaddad2");
  const std::string plaintext = *HexDecode(
      "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e24"
      "49a6b525b16aedf5aa0de657ba637b39");
  const std::string expected =
      "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b10"
      "56828838c5f61e6393ba7a0abcc9f662"
      "76fc6ece0f4e1768cddf8853bb2d551b";
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string sealed, AesGcmSeal(key, nonce, aad, plaintext));
  EXPECT_EQ(HexEncode(sealed), expected);

  std::string appended = "prefix";
  OUTPOST_ASSERT_OK(AesGcmSealAppend(key, nonce, aad, plaintext, &appended));
  EXPECT_EQ(appended, "prefix" + sealed);

  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string opened, AesGcmOpen(key, nonce, aad, sealed));
  EXPECT_EQ(opened, plaintext);
}

TEST(AesGcm, RefusesWhatDoesNotAuthenticate) {
  const std::string key(32, 'k');
  const std::string nonce(12, 'n');
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string sealed, AesGcmSeal(key, nonce, "head", "plaintext"));
  EXPECT_EQ(AesGcmOpen(key, nonce, "Head", sealed).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(AesGcmOpen(std::string(32, 'K'), nonce, "head", sealed).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(AesGcmOpen(key, std::string(12, 'N'), "head", sealed).status().code(),
            StatusCode::kPermissionDenied);
  std::string flipped = sealed;
  flipped.back() ^= 1;
  EXPECT_EQ(AesGcmOpen(key, nonce, "head", flipped).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(AesGcmOpen(key, nonce, "head", "short").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(AesGcmSeal("short", nonce, "", "x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(AesGcmSeal(key, "short", "", "x").status().code(), StatusCode::kInvalidArgument);
  std::string untouched = "keep";
  EXPECT_FALSE(AesGcmSealAppend("short", nonce, "", "x", &untouched).ok());
  EXPECT_EQ(untouched, "keep");
}

}  // namespace
}  // namespace outpost::crypto
