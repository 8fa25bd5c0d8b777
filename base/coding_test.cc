#include "base/coding.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <limits>
#include <string>

#include "base/testing/test_util.h"

namespace outpost {
namespace {

using namespace std::string_literals;

TEST(Coding, ParseDecimalTakesOnlyWholeUnsignedNumbers) {
  uint64_t n = 7;
  EXPECT_TRUE(ParseDecimal("0", &n));
  EXPECT_EQ(n, 0u);
  EXPECT_TRUE(ParseDecimal("18446744073709551615", &n));
  EXPECT_EQ(n, 18446744073709551615u);
  for (std::string_view bad : {"", "-1", "+1", " 1", "1 ", "1x", "0x10", "18446744073709551616"}) {
    n = 7;
    EXPECT_FALSE(ParseDecimal(bad, &n)) << bad;
  }
}

TEST(Coding, LittleEndianPutsLowByteFirst) {
  std::string out;
  PutU16LE(out, 0x0102);
  EXPECT_EQ(out, "\x02\x01"s);
  out.clear();
  PutU32LE(out, 0x01020304u);
  EXPECT_EQ(out, "\x04\x03\x02\x01"s);
  out.clear();
  PutU64LE(out, 0x0102030405060708ull);
  EXPECT_EQ(out, "\x08\x07\x06\x05\x04\x03\x02\x01"s);
}

TEST(Coding, BigEndianPutsHighByteFirst) {
  std::string out;
  PutU32BE(out, 0x01020304u);
  EXPECT_EQ(out, "\x01\x02\x03\x04"s);
  out.clear();
  PutU64BE(out, 0x0102030405060708ull);
  EXPECT_EQ(out, "\x01\x02\x03\x04\x05\x06\x07\x08"s);
}

TEST(Coding, PutAppendsToWhatIsThere) {
  std::string out = "ab";
  PutU32LE(out, 0);
  PutU32BE(out, 0xffffffffu);
  EXPECT_EQ(out, "ab\0\0\0\0\xff\xff\xff\xff"s);
}

TEST(Coding, GetReadsTheByteOrderInItsName) {
  const std::string bytes = "\x01\x02\x03\x04\x05\x06\x07\x08"s;
  EXPECT_EQ(GetU16LE(bytes.data()), 0x0201u);
  EXPECT_EQ(GetU32LE(bytes.data()), 0x04030201u);
  EXPECT_EQ(GetU64LE(bytes.data()), 0x0807060504030201ull);
  EXPECT_EQ(GetU32BE(bytes.data()), 0x01020304u);
  EXPECT_EQ(GetU64BE(bytes.data()), 0x0102030405060708ull);
}

TEST(Coding, HighBitBytesAreNotSignExtended) {
  const std::string bytes(8, '\xff');
  EXPECT_EQ(GetU16LE(bytes.data()), 0xffffu);
  EXPECT_EQ(GetU32LE(bytes.data()), 0xffffffffu);
  EXPECT_EQ(GetU64LE(bytes.data()), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(GetU32BE(bytes.data()), 0xffffffffu);
  EXPECT_EQ(GetU64BE(bytes.data()), std::numeric_limits<uint64_t>::max());
  const std::string mixed = "\x80\x00\x00\x7f"s;
  EXPECT_EQ(GetU32LE(mixed.data()), 0x7f000080u);
  EXPECT_EQ(GetU32BE(mixed.data()), 0x8000007fu);
}

TEST(Coding, PutThenGetRoundTrips) {
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{0x8000000000000000ull},
                     uint64_t{0x0123456789abcdefull}, std::numeric_limits<uint64_t>::max()}) {
    std::string out;
    PutU16LE(out, static_cast<uint16_t>(v));
    PutU32LE(out, static_cast<uint32_t>(v));
    PutU64LE(out, v);
    PutU32BE(out, static_cast<uint32_t>(v));
    PutU64BE(out, v);
    ASSERT_EQ(out.size(), 2u + 4 + 8 + 4 + 8);
    EXPECT_EQ(GetU16LE(out.data()), static_cast<uint16_t>(v));
    EXPECT_EQ(GetU32LE(out.data() + 2), static_cast<uint32_t>(v));
    EXPECT_EQ(GetU64LE(out.data() + 6), v);
    EXPECT_EQ(GetU32BE(out.data() + 14), static_cast<uint32_t>(v));
    EXPECT_EQ(GetU64BE(out.data() + 18), v);
  }
}

TEST(Coding, HexEncodeIsLowercaseTwoDigitsAByte) {
  EXPECT_EQ(HexEncode(""), "");
  EXPECT_EQ(HexEncode("\x00\x01\xab\xff"s), "0001abff");
  EXPECT_EQ(HexEncode("abc"), "616263");
  const std::array<uint8_t, 3> raw = {0xde, 0xad, 0x0f};
  EXPECT_EQ(HexEncode(raw), "dead0f");
}

TEST(Coding, HexValueAcceptsBothCasesAndLowerHexValueOnlyLowercase) {
  EXPECT_EQ(HexValue('0'), 0);
  EXPECT_EQ(HexValue('9'), 9);
  EXPECT_EQ(HexValue('a'), 10);
  EXPECT_EQ(HexValue('f'), 15);
  EXPECT_EQ(HexValue('A'), 10);
  EXPECT_EQ(HexValue('F'), 15);
  EXPECT_EQ(LowerHexValue('a'), 10);
  EXPECT_EQ(LowerHexValue('f'), 15);
  EXPECT_EQ(LowerHexValue('7'), 7);
  EXPECT_EQ(LowerHexValue('A'), -1);
  EXPECT_EQ(LowerHexValue('F'), -1);
  for (char c : {'g', 'G', 'x', ' ', '/', ':', '@', '`', '\0', '\xff'}) {
    EXPECT_EQ(HexValue(c), -1) << static_cast<int>(c);
    EXPECT_EQ(LowerHexValue(c), -1) << static_cast<int>(c);
  }
}

TEST(Coding, IsLowerHexAndIsHex64) {
  EXPECT_TRUE(IsLowerHex(""));
  EXPECT_TRUE(IsLowerHex("0123456789abcdef"));
  EXPECT_FALSE(IsLowerHex("0123456789ABCDEF"));
  EXPECT_FALSE(IsLowerHex("12g4"));

  const std::string digest =
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";  // SHA-256("abc")
  EXPECT_TRUE(IsHex64(digest));
  EXPECT_FALSE(IsHex64(digest.substr(1)));  // 63 digits
  EXPECT_FALSE(IsHex64(digest + "0"));      // 65 digits
  EXPECT_FALSE(IsHex64(""));
  std::string upper = digest;
  upper[0] = 'B';
  EXPECT_FALSE(IsHex64(upper));
  std::string not_hex = digest;
  not_hex[63] = 'g';
  EXPECT_FALSE(IsHex64(not_hex));
}

TEST(Coding, HexDecodeKnownAnswers) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string empty, HexDecode(""));
  EXPECT_EQ(empty, "");
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string bytes, HexDecode("0001abff"));
  EXPECT_EQ(bytes, "\x00\x01\xab\xff"s);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string either, HexDecode("00aBFf", HexCase::kEither));
  EXPECT_EQ(either, "\x00\xab\xff"s);
  const std::string raw = "\x10\x32\x54\x76\x98\xba\xdc\xfe"s;
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string back, HexDecode(HexEncode(raw)));
  EXPECT_EQ(back, raw);
}

TEST(Coding, HexDecodeRefusesBadHex) {
  Status odd = HexDecode("abc").status();
  EXPECT_EQ(odd.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(odd.message(), "odd-length hex");
  EXPECT_EQ(HexDecode("a", HexCase::kEither).status().message(), "odd-length hex");

  // Uppercase is not canonical: refused unless the caller accepts either case.
  Status upper = HexDecode("AB").status();
  EXPECT_EQ(upper.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(upper.message(), "not lowercase hex");
  EXPECT_EQ(HexDecode("zz").status().message(), "not lowercase hex");
  EXPECT_EQ(HexDecode("0g").status().message(), "not lowercase hex");

  Status either = HexDecode("0x", HexCase::kEither).status();
  EXPECT_EQ(either.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(either.message(), "not hex");
  EXPECT_FALSE(HexDecode(" 0", HexCase::kEither).ok());
  EXPECT_FALSE(HexDecode("00\n", HexCase::kEither).ok());
}

}  // namespace
}  // namespace outpost

namespace outpost {
namespace {

TEST(Base64, EncodesTheRfc4648Vectors) {
  const std::pair<std::string_view, std::string_view> vectors[] = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},        {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, coded] : vectors) {
    EXPECT_EQ(Base64Encode(plain), coded);
    Result<std::string> back = Base64Decode(coded);
    ASSERT_TRUE(back.ok()) << coded;
    EXPECT_EQ(*back, plain);
  }
}

TEST(Base64, UrlAlphabetHasNoPaddingAndItsOwnTwoCharacters) {
  std::string bytes = "\xfb\xff\xbf";
  EXPECT_EQ(Base64Encode(bytes), "+/+/");
  EXPECT_EQ(Base64Encode(bytes, Base64Alphabet::kUrl), "-_-_");
  EXPECT_EQ(Base64Encode("f", Base64Alphabet::kUrl), "Zg");
  Result<std::string> back = Base64Decode("Zm9vYg", Base64Alphabet::kUrl);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, "foob");
  for (int n = 0; n < 40; ++n) {
    std::string all;
    for (int i = 0; i < n; ++i) all.push_back(static_cast<char>(i * 37 + n));
    for (Base64Alphabet a : {Base64Alphabet::kStandard, Base64Alphabet::kUrl}) {
      Result<std::string> round = Base64Decode(Base64Encode(all, a), a);
      ASSERT_TRUE(round.ok()) << n;
      EXPECT_EQ(*round, all);
    }
  }
}

TEST(Base64, RefusesEverySecondSpelling) {
  for (std::string_view bad : {"Zg", "Zg=", "Z===", "Zh==", "Zm9=v", "Zm 9v", "Zm9v\n", "-_-_",
                               "Zm9vY", "===="}) {
    Result<std::string> r = Base64Decode(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().reason(), "bad_base64") << bad;
  }
  for (std::string_view bad : {"Zg==", "+/+/", "Zh", "Z"}) {
    EXPECT_FALSE(Base64Decode(bad, Base64Alphabet::kUrl).ok()) << bad;
  }
}

}  // namespace
}  // namespace outpost
