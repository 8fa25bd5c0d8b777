// Tests of bundle/: canonical JSON, the tar reader, metadata signing, and bundle creation and
// verification against a first tamper table (FORMAT.md section 6 reason codes).
#include "bundle/bundle.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/coding.h"
#include "base/file.h"
#include "base/subprocess.h"
#include "base/testing/test_util.h"
#include "bundle/crypto.h"
#include "bundle/metadata.h"
#include "bundle/reason.h"
#include "bundle/tar.h"

namespace outpost::bundle {
namespace {

using outpost::testing::TempDir;

constexpr int64_t kStart = 1'700'000'000;  // FakeClock's default start
constexpr int64_t kDay = 86'400;

KeyPair Key(char fill) {
  auto k = KeyPairFromSeed(std::string(kSeedBytes, fill));
  EXPECT_TRUE(k.ok());
  return *k;
}

Root MakeRoot(uint64_t version, const std::vector<KeyPair>& root_keys, uint64_t root_threshold,
              const std::vector<KeyPair>& targets_keys, uint64_t targets_threshold) {
  Root root{.version = version, .expires = kStart + 365 * kDay};
  for (const KeyPair& k : root_keys) {
    root.keys[KeyId(k.public_key)] = k.public_key;
    root.root.keyids.push_back(KeyId(k.public_key));
  }
  for (const KeyPair& k : targets_keys) {
    root.keys[KeyId(k.public_key)] = k.public_key;
    root.targets.keyids.push_back(KeyId(k.public_key));
  }
  root.root.threshold = root_threshold;
  root.targets.threshold = targets_threshold;
  return root;
}

std::string SignedRoot(const Root& root, const std::vector<KeyPair>& signers) {
  auto json = RootToJson(root);
  EXPECT_TRUE(json.ok()) << json.status().ToString();
  auto text = SignMetadata(*json, signers);
  EXPECT_TRUE(text.ok());
  return *text;
}

// Where an entry sits in a bundle written by CreateBundle (names fit the name field).
struct EntryPos {
  size_t header = 0;
  size_t data = 0;
  size_t size = 0;
  size_t end = 0;  // after the padding
};
std::optional<EntryPos> FindEntry(const std::string& tar, std::string_view name) {
  for (size_t off = 0; off + kTarBlock <= tar.size();) {
    const char* h = tar.data() + off;
    if (h[0] == 0) return std::nullopt;
    std::string entry_name(h, strnlen(h, 100));
    size_t size = std::strtoull(std::string(h + 124, 11).c_str(), nullptr, 8);
    size_t end = off + kTarBlock + (size + kTarBlock - 1) / kTarBlock * kTarBlock;
    if (entry_name == name) {
      return EntryPos{.header = off, .data = off + kTarBlock, .size = size, .end = end};
    }
    off = end;
  }
  return std::nullopt;
}

// A raw ustar header, as a hostile writer could make it.
std::string RawHeader(std::string_view name, char type, size_t size,
                      std::string_view linkname = "") {
  std::string h(kTarBlock, '\0');
  std::memcpy(h.data(), name.data(), std::min<size_t>(name.size(), 100));
  std::snprintf(h.data() + 100, 8, "%07o", 0644);
  std::snprintf(h.data() + 108, 8, "%07o", 0);
  std::snprintf(h.data() + 116, 8, "%07o", 0);
  std::snprintf(h.data() + 124, 12, "%011zo", size);
  std::snprintf(h.data() + 136, 12, "%011o", 0);
  h[156] = type;
  std::memcpy(h.data() + 157, linkname.data(), std::min<size_t>(linkname.size(), 100));
  std::memcpy(h.data() + 257, "ustar\0" "00", 8);
  std::memset(h.data() + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(h.data() + 148, 8, "%06o", sum);
  return h;
}

std::string Padded(std::string data) {
  data.resize((data.size() + kTarBlock - 1) / kTarBlock * kTarBlock, '\0');
  return data;
}

// A bundle's entries in order, and a bundle made of entries: the tools of the tamper tests.
using Entries = std::vector<std::pair<std::string, std::string>>;
Entries Split(const std::string& tar) {
  Entries out;
  for (size_t off = 0; off + kTarBlock <= tar.size() && tar[off] != 0;) {
    std::string name(tar.data() + off, strnlen(tar.data() + off, 100));
    size_t size = std::strtoull(tar.substr(off + 124, 11).c_str(), nullptr, 8);
    out.emplace_back(name, tar.substr(off + kTarBlock, size));
    off += kTarBlock + (size + kTarBlock - 1) / kTarBlock * kTarBlock;
  }
  return out;
}
std::string Join(const Entries& entries) {
  std::string out;
  for (const auto& [name, data] : entries) out += RawHeader(name, '0', data.size()) + Padded(data);
  return out + std::string(2 * kTarBlock, '\0');
}
std::string& EntryData(Entries& entries, std::string_view name) {
  for (auto& [n, data] : entries) {
    if (n == name) return data;
  }
  ADD_FAILURE() << "no entry " << name;
  static std::string none;
  return none;
}

class BundleTest : public ::testing::Test {
 protected:
  BundleTest()
      : r1_(Key('a')), r2_(Key('b')), t1_(Key('c')), t2_(Key('d')), t3_(Key('e')),
        root_(MakeRoot(1, {r1_, r2_}, 2, {t1_, t2_, t3_}, 2)) {
    std::string models = dir_.File("models");
    EXPECT_TRUE(MakeDirectories(models + "/pump/3").ok());
    EXPECT_TRUE(WriteFileAtomically(models + "/pump/config.yaml", "backend: xgboost\n").ok());
    EXPECT_TRUE(WriteFileAtomically(models + "/pump/3/model.json", kModel).ok());
    EXPECT_TRUE(WriteFileAtomically(models + "/pump/3/descriptor.json", Descriptor("pump", 3)).ok());
  }

  static std::string Descriptor(std::string_view name, int version) {
    return std::string(R"({"name":")") + std::string(name) + R"(","version":)" +
           std::to_string(version) +
           R"(,"engine":"xgboost","engine_version":"0.1.0",)"
           R"("inputs":[{"name":"features","datatype":"FP32","shape":[-1,4]}],)"
           R"("outputs":[{"name":"score","datatype":"FP32","shape":[-1]}],)"
           R"("metrics":{"auc":0.93,"rows":1200},"lineage_sha256":")" +
           std::string(64, 'a') + R"("})";
  }

  CreateOptions Options() const {
    return {.version = 5,
            .created = kStart - kDay,
            .expires = kStart + 30 * kDay,
            .channel = "stable",
            .sites = {"site-a"},
            .site_groups = {"north"}};
  }

  // Creates a bundle and returns its bytes.
  std::string Create(const std::vector<KeyPair>& keys, const CreateOptions& options) {
    std::string path = dir_.File("b" + std::to_string(counter_++) + ".bundle");
    Status s = CreateBundle(dir_.File("models"), keys, options, path);
    EXPECT_TRUE(s.ok()) << s.ToString();
    auto bytes = ReadFile(path);
    EXPECT_TRUE(bytes.ok());
    return bytes.value_or("");
  }
  std::string Create() { return Create({t1_, t2_}, Options()); }

  // Verifies bundle bytes as site-a (group north) with a fresh staging folder.
  Result<VerifiedBundle> Verify(const std::string& bytes, const Root& trusted,
                                SiteState state = {}, std::string site = "site-a",
                                std::vector<std::string> groups = {}) {
    std::string path = dir_.File("v" + std::to_string(counter_++) + ".bundle");
    EXPECT_TRUE(WriteFileAtomically(path, bytes).ok());
    last_staging_ = dir_.File("stage" + std::to_string(counter_++));
    return VerifyBundle(path, trusted, state,
                        {.site_id = site,
                         .site_groups = groups,
                         .staging_dir = last_staging_,
                         .clock = &clock_});
  }
  Result<VerifiedBundle> Verify(const std::string& bytes) { return Verify(bytes, root_); }

  // Expects `bytes` to be refused with `reason`, leaving no staging folder behind.
  void ExpectRefused(const Result<VerifiedBundle>& result, Reason reason) {
    ASSERT_FALSE(result.ok());
    std::optional<Reason> got = ReasonOf(result.status());
    ASSERT_TRUE(got.has_value()) << result.status().ToString();
    EXPECT_EQ(ReasonName(*got), ReasonName(reason)) << result.status().ToString();
    EXPECT_FALSE(PathExists(last_staging_)) << "staging left behind";
  }

  static constexpr std::string_view kModel = R"({"learner":"a tiny stand-in model"})";
  TempDir dir_;
  FakeClock clock_;
  KeyPair r1_, r2_, t1_, t2_, t3_;
  Root root_;
  int counter_ = 0;
  std::string last_staging_;
};

TEST(TargetsMetadata, BindsEverySiteIdEnrolmentAcceptsAndOnlyThose) {
  // Sites are SiteIds (base/names.h); site groups stay lower-case labels.
  Targets t{.created = 1, .expires = 2};
  t.targets["oci-layout"] = TargetFile{.length = 1, .sha256 = std::string(64, 'a')};
  t.targets["index.json"] = TargetFile{.length = 1, .sha256 = std::string(64, 'b')};
  for (const std::string& site :
       std::vector<std::string>{"site-a", "Plant-7", "ship:9", "_x", std::string(128, 's')}) {
    t.sites = {site};
    EXPECT_TRUE(TargetsToJson(t).ok()) << site;
  }
  for (const std::string& site :
       std::vector<std::string>{"", "a/b", "..", "-x", "a b", std::string(129, 's')}) {
    t.sites = {site};
    EXPECT_FALSE(TargetsToJson(t).ok()) << site;
  }
  t.sites = {};
  t.site_groups = {"North"};
  EXPECT_FALSE(TargetsToJson(t).ok());
  t.site_groups = {"north"};
  OUTPOST_EXPECT_OK(TargetsToJson(t).status());
}

TEST(CanonicalJson, SortsKeysEscapesAndRefusesNonIntegers) {
  auto j = ParseJson(R"({"b":[1,"x\"\\\n"],"a":{"d":null,"c":true}})", true);
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  auto text = CanonicalJson(*j);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, R"({"a":{"c":true,"d":null},"b":[1,"x\"\\\u000a"]})");
  EXPECT_EQ(ReasonOf(ParseJson(R"({"a":1.5})", true).status()), Reason::kMetadataMalformed);
  EXPECT_EQ(ReasonOf(ParseJson(R"({"a":-1})", true).status()), Reason::kMetadataMalformed);
  EXPECT_EQ(ReasonOf(ParseJson(R"({"a":1,"a":2})", true).status()), Reason::kMetadataMalformed);
  EXPECT_EQ(ReasonOf(ParseJson(std::string(40, '[') + std::string(40, ']'), true).status()),
            Reason::kMetadataMalformed);
}

TEST(Reason, SurvivesContextAndNamesAreStable) {
  Status s = ReasonError(Reason::kTargetHash, "blob x").WithContext("verifying b.bundle");
  EXPECT_EQ(ReasonOf(s), Reason::kTargetHash);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_EQ(ReasonName(Reason::kWrongSite), "WRONG_SITE");
  EXPECT_EQ(ReasonOf(InvalidArgumentError("plain")), std::nullopt);
}

TEST(Crypto, SignatureVerifiesOnlyForItsMessageAndKey) {
  KeyPair k = Key('x');
  auto sig = Sign(k.seed, "message");
  ASSERT_TRUE(sig.ok());
  EXPECT_TRUE(Verify(k.public_key, "message", *sig));
  EXPECT_FALSE(Verify(k.public_key, "messagf", *sig));
  EXPECT_FALSE(Verify(Key('y').public_key, "message", *sig));
  EXPECT_EQ(HexEncode(Sha256Of("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(TarNames, UnsafeNamesAreRefused) {
  EXPECT_TRUE(IsSafeEntryName("blobs/sha256/ab"));
  for (std::string_view bad : {"", "/etc/passwd", "../x", "a/../b", "a//b", "a/", "./a", "a b",
                               "a\\b", "."}) {
    EXPECT_FALSE(IsSafeEntryName(bad)) << bad;
  }
}

TEST_F(BundleTest, RoundTripStagesTheOciLayoutAndAdvancesTheState) {
  std::string bytes = Create();
  OUTPOST_ASSERT_OK_AND_ASSIGN(VerifiedBundle v, Verify(bytes));
  EXPECT_EQ(v.targets.version, 5u);
  ASSERT_EQ(v.descriptors.size(), 1u);
  EXPECT_EQ(v.descriptors[0].name, "pump");
  EXPECT_EQ(v.descriptors[0].inputs[0].shape, (std::vector<int64_t>{-1, 4}));
  EXPECT_DOUBLE_EQ(v.descriptors[0].metrics.at("auc"), 0.93);
  EXPECT_EQ(v.new_state.installed_version, 5u);
  EXPECT_EQ(v.new_state.time_floor, kStart);
  EXPECT_EQ(v.trusted_root.version, 1u);
  EXPECT_TRUE(v.trusted_root_file.empty());
  auto layout = ReadFile(v.staging_dir + "/oci-layout");
  ASSERT_TRUE(layout.ok());
  EXPECT_EQ(*layout, R"({"imageLayoutVersion":"1.0.0"})");
  auto model = ReadFile(v.staging_dir + "/blobs/sha256/" + HexEncode(Sha256Of(kModel)));
  ASSERT_TRUE(model.ok());
  EXPECT_EQ(*model, kModel);
  auto index = ReadFile(v.staging_dir + "/index.json");
  ASSERT_TRUE(index.ok());
  EXPECT_NE(index->find("\"org.opencontainers.image.ref.name\":\"pump-3\""), std::string::npos);
  // A site of the bound group is accepted too.
  OUTPOST_EXPECT_OK(Verify(bytes, root_, {}, "site-z", {"north"}));
  // The same bundle again is not a rollback.
  OUTPOST_EXPECT_OK(Verify(bytes, root_, {.installed_version = 5}));
}

// A minimal OCI image layout as `outpost image build` writes one: a config, one layer, the
// manifest naming them, and an index naming the manifest. Returns the manifest's digest.
std::string WriteImageLayout(const std::string& dir, const std::string& layer,
                             const std::string& extra_layer_digest = "") {
  std::string config = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}})";
  auto blob = [&](const std::string& bytes) {
    std::string hex = HexEncode(Sha256Of(bytes));
    EXPECT_TRUE(WriteFileAtomically(dir + "/blobs/sha256/" + hex, bytes).ok());
    return hex;
  };
  EXPECT_TRUE(MakeDirectories(dir + "/blobs/sha256").ok());
  auto descriptor = [](const std::string& type, const std::string& hex, size_t size) {
    return R"({"mediaType":")" + type + R"(","digest":"sha256:)" + hex + R"(","size":)" +
           std::to_string(size) + "}";
  };
  std::string layers = descriptor("application/vnd.oci.image.layer.v1.tar+gzip", blob(layer),
                                  layer.size());
  if (!extra_layer_digest.empty()) {
    layers += "," + descriptor("application/vnd.oci.image.layer.v1.tar+gzip", extra_layer_digest, 1);
  }
  std::string manifest =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":)" +
      descriptor("application/vnd.oci.image.config.v1+json", blob(config), config.size()) +
      R"(,"layers":[)" + layers + "]}";
  std::string manifest_hex = blob(manifest);
  EXPECT_TRUE(WriteFileAtomically(
                  dir + "/index.json",
                  R"({"schemaVersion":2,"manifests":[)" +
                      descriptor("application/vnd.oci.image.manifest.v1+json", manifest_hex,
                                 manifest.size()) +
                      "]}")
                  .ok());
  EXPECT_TRUE(WriteFileAtomically(dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})").ok());
  return manifest_hex;
}

// The runtime image travels under the same signed targets as the models: listed, staged,
// named by targets.runtime; a bit flipped in its layer is refused as any blob's would be.
TEST_F(BundleTest, RuntimeImageIsCarriedUnderTheSignedTargets) {
  std::string layer(100000, 'L');
  std::string manifest_hex = WriteImageLayout(dir_.File("image"), layer);
  CreateOptions options = Options();
  options.runtime_image = dir_.File("image");
  std::string bytes = Create({t1_, t2_}, options);
  OUTPOST_ASSERT_OK_AND_ASSIGN(VerifiedBundle v, Verify(bytes));
  EXPECT_EQ(v.targets.runtime_manifest, manifest_hex);
  EXPECT_EQ(v.targets.models.size(), 1u);
  auto staged = ReadFile(v.staging_dir + "/blobs/sha256/" + HexEncode(Sha256Of(layer)));
  ASSERT_TRUE(staged.ok());
  EXPECT_EQ(*staged, layer);
  auto index = ReadFile(v.staging_dir + "/index.json");
  ASSERT_TRUE(index.ok());
  EXPECT_NE(index->find(R"("org.opencontainers.image.ref.name":"outpost-runtime")"),
            std::string::npos);
  EXPECT_NE(v.targets_file.find(R"("runtime":{"manifest":")" + manifest_hex), std::string::npos);
  // A bundle without the runtime has no "runtime" member at all.
  OUTPOST_ASSERT_OK_AND_ASSIGN(VerifiedBundle plain, Verify(Create()));
  EXPECT_TRUE(plain.targets.runtime_manifest.empty());
  EXPECT_EQ(plain.targets_file.find("\"runtime\""), std::string::npos);

  auto pos = FindEntry(bytes, "blobs/sha256/" + HexEncode(Sha256Of(layer)));
  ASSERT_TRUE(pos.has_value());
  bytes[pos->data + 5000] ^= 0x01;
  ExpectRefused(Verify(bytes), Reason::kTargetHash);
}

// The creator refuses an image layout whose manifest names a blob it does not hold, or whose
// blob does not match its name, and writes nothing.
TEST_F(BundleTest, DamagedRuntimeImageIsRefusedByTheCreator) {
  WriteImageLayout(dir_.File("image"), "layer", std::string(64, 'f'));
  CreateOptions options = Options();
  options.runtime_image = dir_.File("image");
  std::string out = dir_.File("refused.bundle");
  EXPECT_FALSE(CreateBundle(dir_.File("models"), {t1_, t2_}, options, out).ok());
  EXPECT_FALSE(PathExists(out));
  std::string layer_path = dir_.File("image2/blobs/sha256/") + HexEncode(Sha256Of(std::string("layer")));
  WriteImageLayout(dir_.File("image2"), "layer");
  ASSERT_TRUE(WriteFileAtomically(layer_path, "LAYER").ok());
  options.runtime_image = dir_.File("image2");
  Status s = CreateBundle(dir_.File("models"), {t1_, t2_}, options, out);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.ToString().find("does not match its digest"), std::string::npos) << s.ToString();
  EXPECT_FALSE(PathExists(out));
}

TEST_F(BundleTest, BitFlipInABlobIsRefusedAsTargetHash) {
  std::string bytes = Create();
  auto pos = FindEntry(bytes, "blobs/sha256/" + HexEncode(Sha256Of(kModel)));
  ASSERT_TRUE(pos.has_value());
  bytes[pos->data + 3] ^= 0x01;
  ExpectRefused(Verify(bytes), Reason::kTargetHash);
}

TEST_F(BundleTest, ChangedTargetsFieldIsRefusedAsSignatureThreshold) {
  std::string bytes = Create();
  auto pos = FindEntry(bytes, "outpost/targets.json");
  ASSERT_TRUE(pos.has_value());
  size_t at = bytes.find("site-a", pos->data);
  ASSERT_LT(at, pos->data + pos->size);
  bytes[at + 5] = 'b';  // the same bundle, now claiming site-b
  ExpectRefused(Verify(bytes, root_, {}, "site-b"), Reason::kSignatureThreshold);
}

TEST_F(BundleTest, BitFlipInASignatureIsRefusedAsSignatureThreshold) {
  std::string bytes = Create();
  auto pos = FindEntry(bytes, "outpost/targets.json");
  ASSERT_TRUE(pos.has_value());
  size_t at = bytes.find("\"sig\":\"", pos->data);
  ASSERT_LT(at, pos->data + pos->size);
  char& c = bytes[at + 10];
  c = c == '0' ? '1' : '0';
  ExpectRefused(Verify(bytes), Reason::kSignatureThreshold);
}

TEST_F(BundleTest, TruncatedBundleIsRefused) {
  std::string bytes = Create();
  ExpectRefused(Verify(bytes.substr(0, bytes.size() / 2)), Reason::kTarTruncated);
  auto pos = FindEntry(bytes, "blobs/sha256/" + HexEncode(Sha256Of(kModel)));
  ASSERT_TRUE(pos.has_value());
  ExpectRefused(Verify(bytes.substr(0, pos->data + 5)), Reason::kTarTruncated);
  // Cut right before the end-of-archive blocks: every entry is whole, the end is missing.
  size_t last_end = 0;
  for (size_t off = 0; off + kTarBlock <= bytes.size() && bytes[off] != 0;) {
    size_t size = std::strtoull(bytes.substr(off + 124, 11).c_str(), nullptr, 8);
    off += kTarBlock + (size + kTarBlock - 1) / kTarBlock * kTarBlock;
    last_end = off;
  }
  ExpectRefused(Verify(bytes.substr(0, last_end)), Reason::kTarTruncated);
}

TEST_F(BundleTest, AppendedBytesAreRefusedAsTrailingData) {
  ExpectRefused(Verify(Create() + "extra"), Reason::kTrailingData);
}

TEST_F(BundleTest, SignaturesByUnknownKeysAreRefused) {
  ExpectRefused(Verify(Create({Key('p'), Key('q')}, Options())), Reason::kSignatureThreshold);
}

TEST_F(BundleTest, FewerSignaturesThanTheThresholdAreRefused) {
  ExpectRefused(Verify(Create({t1_}, Options())), Reason::kSignatureThreshold);
  // A root key is not a targets key, even in the same root.
  ExpectRefused(Verify(Create({t1_, r1_}, Options())), Reason::kSignatureThreshold);
}

TEST_F(BundleTest, DuplicateSignaturesByOneKeyCountOnce) {
  ExpectRefused(Verify(Create({t1_, t1_}, Options())), Reason::kSignatureThreshold);
  OUTPOST_EXPECT_OK(Verify(Create({t1_, t3_}, Options())));
}

TEST_F(BundleTest, BundleForAnotherSiteIsRefused) {
  ExpectRefused(Verify(Create(), root_, {}, "site-b", {"south"}), Reason::kWrongSite);
}

TEST_F(BundleTest, ExpiredBundleIsRefusedEvenWithTheClockSetBack) {
  std::string bytes = Create();
  clock_.Advance(std::chrono::seconds(31 * kDay));
  ExpectRefused(Verify(bytes), Reason::kExpired);
  // A clock set back does not help: the site's time floor is past the expiry.
  clock_.SetWall(Clock::WallTime(std::chrono::seconds(kStart)));
  ExpectRefused(Verify(bytes, root_, {.time_floor = kStart + 31 * kDay}), Reason::kExpired);
}

TEST_F(BundleTest, OlderVersionIsRefusedAsRollback) {
  ExpectRefused(Verify(Create(), root_, {.installed_version = 6}), Reason::kVersionRollback);
}

TEST_F(BundleTest, PathTraversalEntryIsRefused) {
  std::string bytes = Create();
  auto pos = FindEntry(bytes, "oci-layout");
  ASSERT_TRUE(pos.has_value());
  bytes.insert(pos->header, RawHeader("../evil", '0', 4) + Padded("evil"));
  ExpectRefused(Verify(bytes), Reason::kUnsafePath);
  EXPECT_FALSE(PathExists(dir_.File("evil")));
}

TEST_F(BundleTest, SymlinkEntryIsRefused) {
  std::string bytes = Create();
  auto pos = FindEntry(bytes, "oci-layout");
  ASSERT_TRUE(pos.has_value());
  bytes.insert(pos->header, RawHeader("blobs/sha256/link", '2', 0, "/etc/passwd"));
  ExpectRefused(Verify(bytes), Reason::kUnsafeEntryType);
}

TEST_F(BundleTest, ExtraOrMissingEntriesAreRefused) {
  std::string bytes = Create();
  std::string extra = bytes;
  auto layout = FindEntry(extra, "oci-layout");
  ASSERT_TRUE(layout.has_value());
  std::string hex = HexEncode(Sha256Of("x"));
  extra.insert(layout->header, RawHeader("blobs/sha256/" + hex, '0', 1) + Padded("x"));
  ExpectRefused(Verify(extra), Reason::kTargetUnlisted);

  std::string missing = bytes;
  auto blob = FindEntry(missing, "blobs/sha256/" + HexEncode(Sha256Of(kModel)));
  ASSERT_TRUE(blob.has_value());
  missing.erase(blob->header, blob->end - blob->header);
  ExpectRefused(Verify(missing), Reason::kTargetMissing);

  std::string twice = bytes;
  auto first = FindEntry(twice, "oci-layout");
  ASSERT_TRUE(first.has_value());
  twice.insert(first->end, twice.substr(first->header, first->end - first->header));
  ExpectRefused(Verify(twice), Reason::kDuplicateEntry);
}

// Every byte of a bundle is covered: a header checksum, zero padding, the trailer check, a
// signature or a target hash. One bit flipped anywhere is refused with a reason.
TEST_F(BundleTest, BitFlipAnywhereIsRefused) {
  std::string bytes = Create();
  int refused = 0;
  for (size_t at = 0; at < bytes.size(); at += 67) {
    std::string flipped = bytes;
    flipped[at] ^= static_cast<char>(1 << (at % 8));
    Result<VerifiedBundle> result = Verify(flipped);
    ASSERT_FALSE(result.ok()) << "a flip at byte " << at << " was accepted";
    EXPECT_TRUE(ReasonOf(result.status()).has_value()) << result.status().ToString();
    EXPECT_FALSE(PathExists(last_staging_));
    ++refused;
  }
  EXPECT_GT(refused, 100);
}

TEST_F(BundleTest, SizeCapsAreEnforced) {
  std::string path = dir_.File("caps.bundle");
  ASSERT_TRUE(WriteFileAtomically(path, Create()).ok());
  auto verify = [&](VerifyOptions options) {
    last_staging_ = dir_.File("stage" + std::to_string(counter_++));
    options.site_id = "site-a";
    options.staging_dir = last_staging_;
    options.clock = &clock_;
    return VerifyBundle(path, root_, {}, options);
  };
  ExpectRefused(verify({.max_metadata_bytes = 100}), Reason::kSizeLimit);
  ExpectRefused(verify({.limits = {.max_entries = 3}}), Reason::kSizeLimit);
  ExpectRefused(verify({.limits = {.max_entry_bytes = 200}}), Reason::kSizeLimit);
  ExpectRefused(verify({.limits = {.max_total_bytes = 1000}}), Reason::kSizeLimit);
  // A header announcing an enormous entry is refused from its header alone.
  std::string bomb = RawHeader("blobs/sha256/" + std::string(64, 'a'), '0', size_t{1} << 35);
  ASSERT_TRUE(WriteFileAtomically(path, bomb).ok());
  ExpectRefused(verify({.limits = {.max_entry_bytes = 1 << 20}}), Reason::kSizeLimit);
}

TEST_F(BundleTest, RebuiltBundleVerifiesSoTheTamperToolsAreSound) {
  OUTPOST_EXPECT_OK(Verify(Join(Split(Create()))));
}

TEST_F(BundleTest, RemovedSignaturesAreRefused) {
  Entries entries = Split(Create());
  std::string& targets = EntryData(entries, "outpost/targets.json");
  size_t begin = targets.find("[");
  size_t end = targets.find("]");
  ASSERT_LT(begin, end);
  targets.replace(begin, end - begin + 1, "[]");
  ExpectRefused(Verify(Join(entries)), Reason::kSignatureThreshold);
}

TEST_F(BundleTest, EntriesSwappedBetweenTwoValidBundlesAreRefused) {
  std::string a = Create();
  ASSERT_TRUE(WriteFileAtomically(dir_.File("models/pump/3/model.json"), "{\"other\":1}").ok());
  std::string b = Create();
  OUTPOST_ASSERT_OK(Verify(b));
  std::string blob_a = "blobs/sha256/" + HexEncode(Sha256Of(kModel));
  std::string blob_b = "blobs/sha256/" + HexEncode(Sha256Of("{\"other\":1}"));
  Entries b_entries = Split(b);
  // B's targets in A: A's index.json (same length, other manifest digest) no longer matches.
  Entries entries = Split(a);
  EntryData(entries, "outpost/targets.json") = EntryData(b_entries, "outpost/targets.json");
  ExpectRefused(Verify(Join(entries)), Reason::kTargetHash);
  // B's model blob in place of A's, under either name.
  entries = Split(a);
  for (auto& [name, data] : entries) {
    if (name == blob_a) {
      name = blob_b;
      data = EntryData(b_entries, blob_b);
    }
  }
  ExpectRefused(Verify(Join(entries)), Reason::kTargetUnlisted);
  entries = Split(a);
  EntryData(entries, blob_a) = EntryData(b_entries, blob_b);
  ExpectRefused(Verify(Join(entries)), Reason::kTargetLength);
}

TEST_F(BundleTest, ContentBeforeTheTargetsIsRefusedAsBadLayout) {
  std::string bytes = Create();
  auto targets = FindEntry(bytes, "outpost/targets.json");
  ASSERT_TRUE(targets.has_value());
  bytes.insert(targets->header, RawHeader("oci-layout", '0', 1) + Padded("x"));
  ExpectRefused(Verify(bytes), Reason::kBadLayout);
}

TEST_F(BundleTest, RotatedRootIsAcceptedWhenSignedByOldAndNewRootKeys) {
  KeyPair n1 = Key('n'), n2 = Key('o'), u1 = Key('u'), u2 = Key('v');
  Root v2 = MakeRoot(2, {n1, n2}, 2, {u1, u2}, 2);
  CreateOptions options = Options();
  options.root_chain = {SignedRoot(v2, {r1_, r2_, n1, n2})};
  OUTPOST_ASSERT_OK_AND_ASSIGN(VerifiedBundle v, Verify(Create({u1, u2}, options)));
  EXPECT_EQ(v.trusted_root.version, 2u);
  EXPECT_EQ(v.trusted_root_file, options.root_chain[0]);
  // Under the rotated root, the old targets keys no longer count.
  ExpectRefused(Verify(Create({t1_, t2_}, options)), Reason::kSignatureThreshold);
}

TEST_F(BundleTest, RootsTheSiteAlreadyTrustsAreSkipped) {
  KeyPair n1 = Key('n'), n2 = Key('o');
  Root v2 = MakeRoot(2, {n1, n2}, 2, {t1_, t2_, t3_}, 2);
  Root v3 = MakeRoot(3, {n1, n2}, 1, {t1_, t2_, t3_}, 2);
  CreateOptions options = Options();
  options.root_chain = {SignedRoot(v2, {r1_, r2_, n1, n2}), SignedRoot(v3, {n1, n2})};
  std::string bytes = Create({t1_, t2_}, options);
  OUTPOST_ASSERT_OK_AND_ASSIGN(VerifiedBundle from_v1, Verify(bytes, root_));
  EXPECT_EQ(from_v1.trusted_root.version, 3u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(VerifiedBundle from_v2, Verify(bytes, v2));
  EXPECT_EQ(from_v2.trusted_root.version, 3u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(VerifiedBundle from_v3, Verify(bytes, v3));
  EXPECT_TRUE(from_v3.trusted_root_file.empty());
}

TEST_F(BundleTest, RotatedRootIsRefusedWithoutBothThresholds) {
  KeyPair n1 = Key('n'), n2 = Key('o');
  Root v2 = MakeRoot(2, {n1, n2}, 2, {t1_, t2_, t3_}, 2);
  CreateOptions options = Options();
  options.root_chain = {SignedRoot(v2, {n1, n2})};  // not signed by the trusted root
  ExpectRefused(Verify(Create({t1_, t2_}, options)), Reason::kRootSignature);
  options.root_chain = {SignedRoot(v2, {r1_, r2_})};  // not signed by its own keys
  ExpectRefused(Verify(Create({t1_, t2_}, options)), Reason::kRootSignature);
  options.root_chain = {SignedRoot(v2, {r1_, n1, n2})};  // k-1 of the old root keys
  ExpectRefused(Verify(Create({t1_, t2_}, options)), Reason::kRootSignature);
  Root v3 = MakeRoot(3, {n1, n2}, 2, {t1_, t2_, t3_}, 2);
  options.root_chain = {SignedRoot(v3, {r1_, r2_, n1, n2})};  // skips version 2
  ExpectRefused(Verify(Create({t1_, t2_}, options)), Reason::kRootChain);
}

TEST_F(BundleTest, ExpiredRootIsRefused) {
  Root old = root_;
  old.expires = kStart - 1;
  ExpectRefused(Verify(Create(), old), Reason::kRootExpired);
}

// skopeo and umoci read every part of the layout: the index, each manifest, the image
// configuration (full inspection, not --raw) and every blob (a copy checks each digest).
TEST_F(BundleTest, SkopeoAndUmociReadTheOciLayout) {
  if (!PathExists("/usr/bin/skopeo") || !PathExists("/usr/bin/umoci")) {
    GTEST_SKIP() << "skopeo or umoci is not installed (scripts/setup.sh installs both)";
  }
  std::string path = dir_.File("tools.bundle");
  OUTPOST_ASSERT_OK(CreateBundle(dir_.File("models"), {t1_, t2_}, Options(), path));
  // The bundle file itself is an oci-archive to skopeo.
  RunResult raw =
      RunProgram({"/usr/bin/skopeo", "inspect", "--raw", "oci-archive:" + path + ":pump-3"});
  EXPECT_EQ(raw.exit_code, 0) << raw.err;
  EXPECT_NE(raw.out.find("\"artifactType\":\"application/vnd.outpost.model.v1\""),
            std::string::npos)
      << raw.out;
  RunResult full = RunProgram({"/usr/bin/skopeo", "inspect", "oci-archive:" + path + ":pump-3"});
  EXPECT_EQ(full.exit_code, 0) << full.err;
  EXPECT_NE(full.out.find("\"org.outpost.model.name\": \"pump\""), std::string::npos) << full.out;
  // The verified staging folder is an OCI layout to umoci and skopeo.
  auto bytes = ReadFile(path);
  ASSERT_TRUE(bytes.ok());
  OUTPOST_ASSERT_OK_AND_ASSIGN(VerifiedBundle v, Verify(*bytes));
  RunResult ls = RunProgram({"/usr/bin/umoci", "ls", "--layout", v.staging_dir});
  EXPECT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_EQ(ls.out, "pump-3\n");
  RunResult stat = RunProgram({"/usr/bin/umoci", "stat", "--image", v.staging_dir + ":pump-3"});
  EXPECT_EQ(stat.exit_code, 0) << stat.err;
  EXPECT_NE(stat.out.find("3/model.json"), std::string::npos) << stat.out;
  EXPECT_NE(stat.out.find("config.yaml"), std::string::npos) << stat.out;
  RunResult staged =
      RunProgram({"/usr/bin/skopeo", "inspect", "--raw", "oci:" + v.staging_dir + ":pump-3"});
  EXPECT_EQ(staged.exit_code, 0) << staged.err;
  EXPECT_EQ(staged.out, raw.out);
  RunResult config =
      RunProgram({"/usr/bin/skopeo", "inspect", "--config", "oci:" + v.staging_dir + ":pump-3"});
  EXPECT_EQ(config.exit_code, 0) << config.err;
  EXPECT_NE(config.out.find("\"diff_ids\""), std::string::npos) << config.out;
  std::string copy = dir_.File("copied");
  RunResult copied = RunProgram({"/usr/bin/skopeo", "copy", "--quiet",
                                 "oci:" + v.staging_dir + ":pump-3", "dir:" + copy});
  EXPECT_EQ(copied.exit_code, 0) << copied.err;
  auto model = ReadFile(copy + "/" + HexEncode(Sha256Of(kModel)));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ(*model, kModel);
}

// --- Descriptors derived from the model, or checked against it (FORMAT.md section 5) ---

// Every file under `dir` with its bytes: what a refused create must leave as it was.
std::map<std::string, std::string> Files(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out[e.path().string()] = ReadFile(e.path().string()).value_or("?");
  }
  return out;
}

// A signature reader standing in for the engine: it reports `signature` for every version
// and records what it was asked.
struct FakeReader {
  ModelSignature signature{.engine = "xgboost",
                           .engine_version = "9.9.9",
                           .inputs = {{.name = "features", .datatype = "FP32", .shape = {-1, 4}}},
                           .outputs = {{.name = "score", .datatype = "FP32", .shape = {-1}}}};
  std::vector<std::string> asked;

  SignatureReader Reader() {
    return [this](const std::string& model_dir, const std::string& name, uint64_t version) {
      asked.push_back(model_dir + " " + name + " " + std::to_string(version));
      return Result<ModelSignature>(signature);
    };
  }
};

TEST_F(BundleTest, VersionFolderWithoutADescriptorGetsOneDerivedFromTheModel) {
  OUTPOST_ASSERT_OK(RemoveTree(dir_.File("models/pump/3/descriptor.json")));
  const auto before = Files(dir_.File("models"));
  FakeReader fake;
  std::vector<ModelDescriptor> derived;
  CreateOptions options = Options();
  options.read_signature = fake.Reader();
  options.on_derived = [&](const ModelDescriptor& d) { derived.push_back(d); };
  std::string bytes = Create({t1_, t2_}, options);
  EXPECT_EQ(fake.asked, (std::vector<std::string>{dir_.File("models") + "/pump pump 3"}));
  ASSERT_EQ(derived.size(), 1u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(VerifiedBundle v, Verify(bytes));
  ASSERT_EQ(v.descriptors.size(), 1u);
  const ModelDescriptor& d = v.descriptors[0];
  EXPECT_EQ(d.name, "pump");
  EXPECT_EQ(d.version, 3u);
  EXPECT_EQ(d.engine, "xgboost");
  EXPECT_EQ(d.engine_version, "9.9.9");
  ASSERT_EQ(d.inputs.size(), 1u);
  EXPECT_EQ(d.inputs[0].name, "features");
  EXPECT_EQ(d.inputs[0].datatype, "FP32");
  EXPECT_EQ(d.inputs[0].shape, (std::vector<int64_t>{-1, 4}));
  ASSERT_EQ(d.outputs.size(), 1u);
  EXPECT_EQ(d.outputs[0].name, "score");
  EXPECT_EQ(d.outputs[0].shape, (std::vector<int64_t>{-1}));
  EXPECT_TRUE(d.metrics.empty());
  EXPECT_EQ(d.lineage_sha256, "");
  EXPECT_EQ(derived[0].inputs[0].shape, d.inputs[0].shape);
  // The descriptor travels in the bundle only: the model folder is as it was.
  EXPECT_EQ(Files(dir_.File("models")), before);
}

TEST_F(BundleTest, WrittenDescriptorThatAgreesWithTheModelIsTakenAsWritten) {
  FakeReader fake;
  bool any_derived = false;
  CreateOptions options = Options();
  options.read_signature = fake.Reader();
  options.on_derived = [&](const ModelDescriptor&) { any_derived = true; };
  OUTPOST_ASSERT_OK_AND_ASSIGN(VerifiedBundle v, Verify(Create({t1_, t2_}, options)));
  EXPECT_FALSE(any_derived);
  ASSERT_EQ(v.descriptors.size(), 1u);
  EXPECT_EQ(v.descriptors[0].engine_version, "0.1.0");  // the writer's, not the reader's
  EXPECT_DOUBLE_EQ(v.descriptors[0].metrics.at("auc"), 0.93);
  EXPECT_EQ(v.descriptors[0].lineage_sha256, std::string(64, 'a'));
}

TEST_F(BundleTest, WrittenDescriptorThatDisagreesWithTheModelIsRefusedNamingTheDifference) {
  const auto before = Files(dir_.File("models"));
  const std::string out = dir_.File("refused.bundle");
  struct Case {
    std::function<void(ModelSignature&)> change;
    std::vector<std::string> named;
  };
  const std::vector<Case> cases = {
      {[](ModelSignature& s) { s.inputs[0].shape = {-1, 3}; },
       {"input 'features': descriptor says FP32 [-1,4], the model says FP32 [-1,3]"}},
      {[](ModelSignature& s) { s.inputs[0].datatype = "FP64"; },
       {"input 'features': descriptor says FP32 [-1,4], the model says FP64 [-1,4]"}},
      {[](ModelSignature& s) {
         s.engine = "onnx";
         s.outputs[0].name = "probability";
       },
       {"engine: descriptor says xgboost, the model is served by onnx",
        "output 'score': in the descriptor, not in the model (the model's outputs: "
        "'probability')",
        "output 'probability': in the model (FP32 [-1]), not in the descriptor"}},
      {[](ModelSignature& s) {
         s.inputs.insert(s.inputs.begin(), {.name = "mask", .datatype = "BOOL", .shape = {-1}});
       },
       {"input 'mask': in the model (BOOL [-1]), not in the descriptor"}},
  };
  for (const Case& c : cases) {
    FakeReader fake;
    c.change(fake.signature);
    CreateOptions options = Options();
    options.read_signature = fake.Reader();
    Status s = CreateBundle(dir_.File("models"), {t1_, t2_}, options, out);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
    EXPECT_EQ(s.reason(), "descriptor_mismatch") << s.ToString();
    for (const std::string& n : c.named) {
      EXPECT_NE(s.message().find(n), std::string_view::npos) << n << "\n" << s.ToString();
    }
    EXPECT_FALSE(PathExists(out));
    EXPECT_FALSE(PathExists(out + ".tmp"));
    EXPECT_EQ(Files(dir_.File("models")), before);
  }
}

TEST_F(BundleTest, ModelWhoseSignatureCannotBeReadIsRefusedAndNothingIsWritten) {
  OUTPOST_ASSERT_OK(RemoveTree(dir_.File("models/pump/3/descriptor.json")));
  const auto before = Files(dir_.File("models"));
  const std::string out = dir_.File("refused.bundle");
  CreateOptions options = Options();
  options.read_signature = [](const std::string&, const std::string&, uint64_t) {
    return Result<ModelSignature>(InvalidArgumentError("model.json is not an XGBoost model"));
  };
  Status s = CreateBundle(dir_.File("models"), {t1_, t2_}, options, out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("pump version 3: reading the model's signature: model.json is not"),
            std::string_view::npos)
      << s.ToString();
  EXPECT_FALSE(PathExists(out));
  EXPECT_EQ(Files(dir_.File("models")), before);
  // Without a reader (a caller that links no engine) the descriptor stays required.
  s = CreateBundle(dir_.File("models"), {t1_, t2_}, Options(), out);
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.ToString();
  EXPECT_NE(s.message().find("descriptor.json"), std::string_view::npos) << s.ToString();
  EXPECT_FALSE(PathExists(out));
}

TEST(ModelDescriptorJson, ReadsBackToTheSameDescriptor) {
  ModelDescriptor d{.name = "iris",
                    .version = 2,
                    .engine = "onnx",
                    .engine_version = "0.1.0",
                    .inputs = {{.name = "x", .datatype = "FP32", .shape = {-1, 4}},
                               {.name = "mask", .datatype = "BOOL", .shape = {3}}},
                    .outputs = {{.name = "y", .datatype = "INT64", .shape = {-1}}},
                    .metrics = {{"auc", 0.5}}};
  OUTPOST_ASSERT_OK_AND_ASSIGN(ModelDescriptor back, ParseModelDescriptor(ModelDescriptorJson(d)));
  EXPECT_EQ(back.name, "iris");
  EXPECT_EQ(back.engine, "onnx");
  ASSERT_EQ(back.inputs.size(), 2u);
  EXPECT_EQ(back.inputs[1].name, "mask");
  EXPECT_EQ(back.inputs[1].datatype, "BOOL");
  EXPECT_EQ(back.inputs[1].shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(back.outputs[0].datatype, "INT64");
  EXPECT_DOUBLE_EQ(back.metrics.at("auc"), 0.5);
  EXPECT_EQ(back.lineage_sha256, "");
  // A lineage is empty or a digest, nothing between.
  d.lineage_sha256 = "abc";
  EXPECT_FALSE(ParseModelDescriptor(ModelDescriptorJson(d)).ok());
  d.lineage_sha256 = std::string(64, 'f');
  OUTPOST_EXPECT_OK(ParseModelDescriptor(ModelDescriptorJson(d)).status());
}

TEST(SiteState, TimeFloorNeverMovesBack) {
  TempDir dir;
  std::string path = dir.File("state.json");
  OUTPOST_ASSERT_OK_AND_ASSIGN(SiteState initial, LoadSiteState(path));
  EXPECT_EQ(initial.installed_version, 0u);
  OUTPOST_ASSERT_OK(SaveSiteState(path, {.time_floor = 2000, .installed_version = 4}));
  OUTPOST_ASSERT_OK(SaveSiteState(path, {.time_floor = 1000, .installed_version = 5}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(SiteState s, LoadSiteState(path));
  EXPECT_EQ(s.time_floor, 2000);
  EXPECT_EQ(s.installed_version, 5u);
  OUTPOST_ASSERT_OK(WriteFileAtomically(path, "{\"time_floor\":1}"));
  EXPECT_EQ(LoadSiteState(path).status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace outpost::bundle
