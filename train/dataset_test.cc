#include "train/dataset.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "base/crypto/crypto.h"
#include "base/testing/test_util.h"

namespace outpost::train {
namespace {

Dataset Small() {
  Dataset d;
  d.feature_names = {"a", "b"};
  d.rows = 2;
  d.features = {1.5f, std::numeric_limits<float>::quiet_NaN(), -3.0f, 4.25f};
  d.labels = {0.0f, 1.0f};
  return d;
}

TEST(DatasetFile, RoundTripsValuesNaNsAndLabels) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string bytes, EncodeDataset(Small()));
  EXPECT_EQ(bytes.substr(0, 8), std::string("OPDS\0\0\0\1", 8));
  OUTPOST_ASSERT_OK_AND_ASSIGN(Dataset back, DecodeDataset(bytes));
  EXPECT_EQ(back.feature_names, Small().feature_names);
  EXPECT_EQ(back.rows, 2);
  EXPECT_EQ(back.features[0], 1.5f);
  EXPECT_TRUE(std::isnan(back.features[1]));
  EXPECT_EQ(back.features[3], 4.25f);
  EXPECT_EQ(back.labels, Small().labels);
}

TEST(DatasetFile, TheLayoutIsLittleEndianAsFormatMdSays) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string bytes, EncodeDataset(Small()));
  // magic 8, cols 4, two names (4+1 each), rows 8, flag 1, 4 floats, 2 labels.
  ASSERT_EQ(bytes.size(), 8u + 4 + 10 + 8 + 1 + 16 + 8);
  EXPECT_EQ(bytes.substr(8, 4), std::string("\2\0\0\0", 4));
  EXPECT_EQ(bytes.substr(12, 5), std::string("\1\0\0\0a", 5));
  EXPECT_EQ(bytes.substr(22, 8), std::string("\2\0\0\0\0\0\0\0", 8));
  EXPECT_EQ(bytes[30], 1);
  EXPECT_EQ(bytes.substr(31, 4), std::string("\0\0\xc0\x3f", 4));  // 1.5f
  EXPECT_EQ(bytes.substr(35, 4), std::string("\0\0\xc0\x7f", 4));  // canonical NaN
}

TEST(DatasetFile, DigestIsTheSha256OfTheFileAndSeesEveryValue) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string bytes, EncodeDataset(Small()));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string digest, DatasetSha256(Small()));
  EXPECT_EQ(digest, crypto::Sha256Hex(bytes));
  EXPECT_EQ(crypto::Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Dataset other = Small();
  other.labels[1] = 0.0f;
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string other_digest, DatasetSha256(other));
  EXPECT_NE(digest, other_digest);
  // Any NaN is the same missing value.
  Dataset nan = Small();
  nan.features[1] = -std::numeric_limits<float>::quiet_NaN();
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string nan_digest, DatasetSha256(nan));
  EXPECT_EQ(digest, nan_digest);
}

TEST(DatasetFile, BadFilesGetTheirReasonCodes) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string good, EncodeDataset(Small()));
  auto reason = [](std::string_view bytes) {
    Result<Dataset> r = DecodeDataset(bytes);
    return r.ok() ? std::string("ok") : std::string(r.status().message());
  };
  EXPECT_EQ(reason(good), "ok");
  EXPECT_EQ(reason("XXXX" + good.substr(4)).rfind("bad_magic", 0), 0u);
  std::string v2 = good;
  v2[7] = 2;
  EXPECT_EQ(reason(v2).rfind("unsupported_version", 0), 0u);
  EXPECT_EQ(reason(good + "x").rfind("trailing_bytes", 0), 0u);
  for (size_t cut = 0; cut < good.size(); ++cut) {
    EXPECT_EQ(reason(good.substr(0, cut)).rfind("truncated", 0), 0u) << cut;
  }
  std::string other_nan = good;
  other_nan[35 + 3] = '\xff';  // 0xFFC00000: a NaN, but not the canonical one
  EXPECT_EQ(reason(other_nan).rfind("bad_value", 0), 0u);
  std::string huge = good;
  huge[22 + 7] = 0x7f;  // rows' top byte
  EXPECT_EQ(reason(huge).rfind("bad_count", 0), 0u);
  std::string no_cols = good;
  no_cols[8] = 0;
  EXPECT_EQ(reason(no_cols).rfind("bad_count", 0), 0u);
}

TEST(DatasetFile, AnEmptyDataSetHasOneEncoding) {
  Dataset empty = Small();
  empty.rows = 0;
  empty.features.clear();
  empty.labels.clear();
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string bytes, EncodeDataset(empty));
  EXPECT_EQ(bytes.back(), 0);  // labelled 0: no labels to carry
  OUTPOST_ASSERT_OK_AND_ASSIGN(Dataset back, DecodeDataset(bytes));
  EXPECT_EQ(back.rows, 0);
  // The same data set flagged as labelled (what the fuzzer found) would be a second file,
  // with another digest, for one data set: refused.
  std::string flagged = bytes;
  flagged.back() = 1;
  Result<Dataset> refused = DecodeDataset(flagged);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().message().rfind("bad_count", 0), 0u) << refused.status().message();
}

TEST(CsvDataset, ReadsNamedColumnsInTheConfiguredOrder) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      Dataset d, ParseCsvDataset("label,b,extra,a\n1,2.5,x,3\n0,,y,NA\r\n", {"a", "b"}));
  EXPECT_EQ(d.rows, 2);
  EXPECT_EQ(d.features[0], 3.0f);
  EXPECT_EQ(d.features[1], 2.5f);
  EXPECT_TRUE(std::isnan(d.features[2]));
  EXPECT_TRUE(std::isnan(d.features[3]));
  EXPECT_EQ(d.labels, (std::vector<float>{1.0f, 0.0f}));
}

TEST(CsvDataset, ErrorsNameTheLineAndColumn) {
  auto error = [](std::string_view text) {
    Result<Dataset> r = ParseCsvDataset(text, {"a"});
    return r.ok() ? std::string("ok") : std::string(r.status().message());
  };
  EXPECT_EQ(error("a,label\n1,2\n"), "line 2, column \"label\": must be 0 or 1");
  EXPECT_EQ(error("a,label\n1,0\nx,1\n"), "line 3, column \"a\": not a number");
  EXPECT_EQ(error("a,label\n1\n"), "line 2: 1 cells, not 2");
  EXPECT_EQ(error("b,label\n1,1\n"), "line 1: no column \"a\"");
  EXPECT_EQ(error("a,a,label\n"), "line 1: column \"a\" repeats");
  EXPECT_EQ(error(""), "line 1: the CSV file is empty");
}

}  // namespace
}  // namespace outpost::train
