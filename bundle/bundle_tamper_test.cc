// The tamper matrix: well over 100 mutated bundles, each refused with its expected reason
// code (FORMAT.md section 6), with nothing left in or written outside the site's folder.
// Mutations: bit flips in every section (headers, data, padding, trailer), truncation,
// appended bytes, entries swapped between two valid bundles, extra and missing entries,
// signatures removed, unknown keys, k-1 of k, duplicate signatures, wrong site, expiry (also
// with the clock set back), older version, path traversal, links and devices, decompression
// bombs, oversized metadata and broken root rotations.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/coding.h"
#include "base/file.h"
#include "base/testing/test_util.h"
#include "bundle/bundle.h"
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
  EXPECT_TRUE(json.ok());
  auto text = SignMetadata(*json, signers);
  EXPECT_TRUE(text.ok());
  return text.value_or("");
}

// A raw ustar header, as a hostile writer could make it.
std::string RawHeader(std::string_view name, char type, uint64_t size,
                      std::string_view linkname = "") {
  std::string h(kTarBlock, '\0');
  std::memcpy(h.data(), name.data(), std::min<size_t>(name.size(), 100));
  std::snprintf(h.data() + 100, 8, "%07o", 0644);
  std::snprintf(h.data() + 108, 8, "%07o", 0);
  std::snprintf(h.data() + 116, 8, "%07o", 0);
  std::snprintf(h.data() + 124, 12, "%011llo", static_cast<unsigned long long>(size));
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

struct Entry {
  std::string name;
  std::string data;
  size_t header = 0;  // offset of the header in the bundle it came from
};
using Entries = std::vector<Entry>;
Entries Split(const std::string& tar) {
  Entries out;
  for (size_t off = 0; off + kTarBlock <= tar.size() && tar[off] != 0;) {
    std::string name(tar.data() + off, strnlen(tar.data() + off, 100));
    size_t size = std::strtoull(tar.substr(off + 124, 11).c_str(), nullptr, 8);
    out.push_back({name, tar.substr(off + kTarBlock, size), off});
    off += kTarBlock + (size + kTarBlock - 1) / kTarBlock * kTarBlock;
  }
  return out;
}
std::string Join(const Entries& entries) {
  std::string out;
  for (const Entry& e : entries) out += RawHeader(e.name, '0', e.data.size()) + Padded(e.data);
  return out + std::string(2 * kTarBlock, '\0');
}
Entry* Find(Entries& entries, std::string_view name) {
  for (Entry& e : entries) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

// Every path under `dir` with its size: what a refusal must leave unchanged.
std::set<std::string> Snapshot(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    std::string line = e.path().string();
    if (e.is_regular_file()) line += " " + std::to_string(e.file_size());
    out.insert(line);
  }
  return out;
}

struct Case {
  std::string what;
  std::string bytes;
  std::set<Reason> expected;
  SiteState state{};
  std::string site = "site-a";
  VerifyOptions limits{};  // only .limits and .max_metadata_bytes are used
  int64_t clock_wall = kStart;
};

class TamperMatrix : public ::testing::Test {
 protected:
  TamperMatrix()
      : r1_(Key('a')), r2_(Key('b')), t1_(Key('c')), t2_(Key('d')), t3_(Key('e')),
        n1_(Key('n')), n2_(Key('o')), s1_(Key('s')), s2_(Key('t')),
        root_(MakeRoot(1, {r1_, r2_}, 2, {t1_, t2_, t3_}, 2)),
        // The rotated root names new targets keys, so a bundle signed by them needs it.
        root2_(MakeRoot(2, {n1_, n2_}, 2, {s1_, s2_}, 2)) {
    models_ = dir_.File("models");
    site_ = dir_.File("site");
    EXPECT_TRUE(MakeDirectories(site_).ok());
    WriteModel("pump", 3, R"({"learner":"pump three"})");
    WriteModel("valve", 1, R"({"learner":"valve one, a longer model file than the other)"
                           R"( so that its data spans more than one block of the archive)"
                           R"( ..........................................................)"
                           R"( ..........................................................)"
                           R"( ..........................................................)"
                           R"( ..........................................................)"
                           R"( ..........................................................)"
                           R"( ..........................................................)"
                           R"( ..........................................................)"
                           R"( ..........................................................)"
                           R"( ........................................................."})");
  }

  void WriteModel(const std::string& name, int version, const std::string& model) {
    std::string v = models_ + "/" + name + "/" + std::to_string(version);
    EXPECT_TRUE(MakeDirectories(v).ok());
    EXPECT_TRUE(WriteFileAtomically(models_ + "/" + name + "/config.yaml", "backend: xgboost\n").ok());
    EXPECT_TRUE(WriteFileAtomically(v + "/model.json", model).ok());
    std::string d = R"({"name":")" + name + R"(","version":)" + std::to_string(version) +
                    R"(,"engine":"xgboost","engine_version":"0.1.0",)"
                    R"("inputs":[{"name":"features","datatype":"FP32","shape":[-1,4]}],)"
                    R"("outputs":[{"name":"score","datatype":"FP32","shape":[-1]}],)"
                    R"("metrics":{"auc":0.9},"lineage_sha256":")" + std::string(64, 'b') +
                    R"("})";
    EXPECT_TRUE(WriteFileAtomically(v + "/descriptor.json", d).ok());
  }

  CreateOptions Options() const {
    return {.version = 5,
            .created = kStart - kDay,
            .expires = kStart + 30 * kDay,
            .channel = "stable",
            .sites = {"site-a"},
            .site_groups = {"north"},
            .root_chain = {SignedRoot(root2_, {r1_, r2_, n1_, n2_})}};
  }

  std::string Create(const std::vector<KeyPair>& keys, const CreateOptions& options) {
    std::string path = dir_.File("made" + std::to_string(counter_++) + ".bundle");
    Status s = CreateBundle(models_, keys, options, path);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return ReadFile(path).value_or("");
  }
  std::string Create() { return Create({s1_, s2_}, Options()); }

  // Verifies a case as site "site-a" with staging inside the site folder, and checks the
  // reason and that the site folder is exactly as before.
  void Run(const Case& c) {
    SCOPED_TRACE(c.what);
    std::string path = dir_.File("case.bundle");
    ASSERT_TRUE(WriteFileAtomically(path, c.bytes).ok());
    std::set<std::string> before = Snapshot(dir_.path());
    FakeClock clock{Clock::WallTime(std::chrono::seconds(c.clock_wall))};
    VerifyOptions options = c.limits;
    options.site_id = c.site;
    options.staging_dir = site_ + "/staging";
    options.clock = &clock;
    Result<VerifiedBundle> result = VerifyBundle(path, root_, c.state, options);
    if (result.ok()) {
      std::filesystem::remove_all(options.staging_dir);
      ADD_FAILURE() << "accepted";
      return;
    }
    std::optional<Reason> got = ReasonOf(result.status());
    ASSERT_TRUE(got.has_value()) << result.status().ToString();
    std::string expected;
    for (Reason r : c.expected) expected += std::string(ReasonName(r)) + " ";
    EXPECT_TRUE(c.expected.count(*got) > 0)
        << "got " << result.status().ToString() << "; expected one of " << expected;
    EXPECT_EQ(Snapshot(dir_.path()), before) << "a refusal changed the folder";
    ++run_;
  }

  TempDir dir_;
  std::string models_, site_;
  KeyPair r1_, r2_, t1_, t2_, t3_, n1_, n2_, s1_, s2_;
  Root root_, root2_;
  int counter_ = 0;
  int run_ = 0;
};

TEST_F(TamperMatrix, EveryMutatedBundleIsRefusedWithItsReason) {
  const std::string good = Create();
  // The untouched bundle verifies (so each refusal below is the mutation's doing).
  {
    std::string path = dir_.File("good.bundle");
    ASSERT_TRUE(WriteFileAtomically(path, good).ok());
    FakeClock clock;
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        VerifiedBundle v, VerifyBundle(path, root_, {}, {.site_id = "site-a",
                                                         .staging_dir = dir_.File("ok-stage"),
                                                         .clock = &clock}));
    EXPECT_EQ(v.targets.models.size(), 2u);
  }
  std::vector<Case> cases;
  const Entries entries = Split(good);
  ASSERT_GE(entries.size(), 10u);

  // 1. Bit flips in every section: each entry's header (name, size, checksum, magic) and
  //    data (first, middle, last byte), the padding after it, and the end-of-archive blocks.
  for (const Entry& e : entries) {
    std::set<Reason> data_reasons;
    if (e.name.rfind("outpost/root/", 0) == 0) {
      data_reasons = {Reason::kMetadataMalformed, Reason::kRootSignature, Reason::kRootChain,
                      Reason::kBadLayout};
    } else if (e.name == "outpost/targets.json") {
      data_reasons = {Reason::kMetadataMalformed, Reason::kSignatureThreshold};
    } else {
      data_reasons = {Reason::kTargetHash};
    }
    for (size_t field : {size_t{0}, size_t{125}, size_t{150}, size_t{258}}) {
      std::string b = good;
      b[e.header + field] ^= 0x01;
      cases.push_back({"flip in the header of " + e.name + " at " + std::to_string(field), b,
                       {Reason::kTarMalformed, Reason::kUnsafePath, Reason::kBadLayout}});
    }
    for (size_t at : {size_t{0}, e.data.size() / 2, e.data.size() - 1}) {
      std::string b = good;
      b[e.header + kTarBlock + at] ^= 0x20;
      cases.push_back({"flip in the data of " + e.name + " at " + std::to_string(at), b,
                       data_reasons});
    }
    if (e.data.size() % kTarBlock != 0) {
      std::string b = good;
      b[e.header + kTarBlock + e.data.size()] ^= 0x01;
      cases.push_back({"flip in the padding of " + e.name, b, {Reason::kTarMalformed}});
    }
  }
  size_t end = entries.back().header + kTarBlock +
               Padded(entries.back().data).size();
  for (size_t at : {end, end + 600, good.size() - 1}) {
    std::string b = good;
    b[at] ^= 0x04;
    cases.push_back({"flip after the last entry at " + std::to_string(at), b,
                     {Reason::kTarMalformed, Reason::kTrailingData}});
  }

  // 2. Truncation at block boundaries and inside entries.
  for (size_t at : {size_t{0}, size_t{100}, size_t{512}, entries[1].header, entries[1].header + 700,
                    entries[3].header + 5, entries.back().header + kTarBlock + 3, end,
                    end + kTarBlock, end + 2 * kTarBlock - 1}) {
    cases.push_back({"truncated at " + std::to_string(at), good.substr(0, at),
                     {Reason::kTarTruncated, Reason::kMetadataMissing, Reason::kTarMalformed}});
  }

  // 3. Appended bytes.
  cases.push_back({"one byte appended", good + "x", {Reason::kTrailingData}});
  cases.push_back({"a block of text appended", good + std::string(kTarBlock, 'y'),
                   {Reason::kTrailingData}});
  cases.push_back({"a whole bundle appended", good + good, {Reason::kTrailingData}});
  cases.push_back({"an entry appended after the end",
                   good + RawHeader("extra", '0', 3) + Padded("abc"), {Reason::kTrailingData}});

  // 4. Entries swapped between two valid bundles (same keys, another version and models).
  CreateOptions other_options = Options();
  other_options.version = 6;
  std::string other_good;
  {
    WriteModel("pump", 4, R"({"learner":"pump four"})");
    other_good = Create({s1_, s2_}, other_options);
  }
  Entries other = Split(other_good);
  for (const std::string name : {"outpost/targets.json", "index.json"}) {
    Entries e = entries;
    Find(e, name)->data = Find(other, name)->data;
    cases.push_back({"swapped " + name, Join(e),
                     name == std::string("index.json")
                         ? std::set<Reason>{Reason::kTargetLength, Reason::kTargetHash}
                         : std::set<Reason>{Reason::kTargetUnlisted, Reason::kTargetLength,
                                            Reason::kTargetHash, Reason::kTargetMissing}});
  }
  {
    // A blob of the other bundle in place of one of ours, under our name and under its own.
    std::string pump4 = "blobs/sha256/" + HexEncode(Sha256Of(R"({"learner":"pump four"})"));
    std::string pump3 = "blobs/sha256/" + HexEncode(Sha256Of(R"({"learner":"pump three"})"));
    Entries e = entries;
    Find(e, pump3)->data = Find(other, pump4)->data;
    cases.push_back({"other bundle's blob under our name", Join(e),
                     {Reason::kTargetLength, Reason::kTargetHash}});
    Entries f = entries;
    Find(f, pump3)->name = pump4;
    Find(f, pump4)->data = Find(other, pump4)->data;
    cases.push_back({"other bundle's blob under its own name", Join(f), {Reason::kTargetUnlisted}});
  }

  // 5. Extra and missing entries.
  {
    Entries e = entries;
    e.push_back({"blobs/sha256/" + std::string(64, 'f'), "unlisted"});
    cases.push_back({"extra unlisted blob", Join(e), {Reason::kTargetUnlisted}});
    Entries g = entries;
    g.push_back({"notes.txt", "hello"});
    cases.push_back({"extra file", Join(g), {Reason::kTargetUnlisted}});
    Entries h = entries;
    h.push_back(h.back());
    cases.push_back({"an entry twice", Join(h), {Reason::kDuplicateEntry}});
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    Entries e = entries;
    e.erase(e.begin() + static_cast<long>(i));
    std::set<Reason> r = {Reason::kTargetMissing};
    if (entries[i].name == "outpost/targets.json") r = {Reason::kMetadataMissing, Reason::kBadLayout};
    if (entries[i].name.rfind("outpost/root/", 0) == 0) r = {Reason::kSignatureThreshold};
    cases.push_back({"missing " + entries[i].name, Join(e), r});
  }

  // 6-9. Signatures: removed, unknown key, k-1 of k, one key twice.
  auto with_targets_signers = [&](const std::vector<KeyPair>& keys) {
    Entries e = entries;
    auto env = ParseEnvelope(Find(e, "outpost/targets.json")->data);
    EXPECT_TRUE(env.ok());
    auto text = SignMetadata(env->signed_value, keys);
    EXPECT_TRUE(text.ok());
    Find(e, "outpost/targets.json")->data = *text;
    return Join(e);
  };
  cases.push_back({"all signatures removed", with_targets_signers({}), {Reason::kSignatureThreshold, Reason::kMetadataMalformed}});
  cases.push_back({"signed by unknown keys", with_targets_signers({Key('x'), Key('y')}),
                   {Reason::kSignatureThreshold}});
  cases.push_back({"k-1 of k", with_targets_signers({s1_}), {Reason::kSignatureThreshold}});
  cases.push_back({"one key twice", with_targets_signers({s1_, s1_}), {Reason::kSignatureThreshold}});
  cases.push_back({"one valid and one unknown", with_targets_signers({s1_, Key('x')}),
                   {Reason::kSignatureThreshold}});
  cases.push_back({"signed by root keys", with_targets_signers({r1_, r2_}),
                   {Reason::kSignatureThreshold}});
  cases.push_back({"signed by the targets keys that root 2 replaced",
                   with_targets_signers({t1_, t2_}), {Reason::kSignatureThreshold}});
  {
    Entries e = entries;
    std::string& t = Find(e, "outpost/targets.json")->data;
    size_t sig = t.find("\"sig\":\"") + 7;
    t[sig] = t[sig] == '0' ? '1' : '0';
    cases.push_back({"one signature altered", Join(e), {Reason::kSignatureThreshold}});
  }

  // 10-12. Site binding, expiry, version.
  cases.push_back({"wrong site", good, {Reason::kWrongSite}, {}, "site-b"});
  {
    CreateOptions o = Options();
    o.sites = {};
    o.site_groups = {};
    cases.push_back({"bound to no site", Create({s1_, s2_}, o), {Reason::kWrongSite}});
    CreateOptions x = Options();
    x.expires = kStart - 1;
    cases.push_back({"expired", Create({s1_, s2_}, x), {Reason::kExpired}});
  }
  cases.push_back({"expired by the time floor with the clock set back", good, {Reason::kExpired},
                   {.time_floor = kStart + 31 * kDay}, "site-a", {}, kStart - 100 * kDay});
  cases.push_back({"expired by the clock", good, {Reason::kExpired}, {}, "site-a", {},
                   kStart + 31 * kDay});
  cases.push_back({"older version than installed", good, {Reason::kVersionRollback},
                   {.installed_version = 6}});
  {
    Root old_root = root2_;
    old_root.expires = kStart - 1;
    CreateOptions o = Options();
    o.root_chain = {SignedRoot(old_root, {r1_, r2_, n1_, n2_})};
    cases.push_back({"rotated root expired", Create({s1_, s2_}, o), {Reason::kRootExpired}});
  }

  // 13. Path traversal and unsafe names.
  for (const std::string name : {"../evil", "/etc/evil", "blobs/../../evil", "blobs/./x",
                                  "blobs//x", "blobs/sha256/", "a\\b", "sp ace"}) {
    cases.push_back({"unsafe name " + name,
                     good.substr(0, end) + RawHeader(name, '0', 4) + Padded("evil") +
                         std::string(2 * kTarBlock, '\0'),
                     {Reason::kUnsafePath}});
    Entries e = entries;
    cases.push_back({"unsafe name first " + name,
                     RawHeader(name, '0', 4) + Padded("evil") + Join(e), {Reason::kUnsafePath}});
  }

  // 14. Links and devices, with names and link targets that escape.
  for (char type : {'1', '2', '3', '4', '5', '6', 'x', 'g', 'L', 'K'}) {
    cases.push_back({std::string("entry of type ") + type,
                     good.substr(0, end) + RawHeader("blobs/sha256/link", type, 0, "../../etc/passwd") +
                         std::string(2 * kTarBlock, '\0'),
                     {Reason::kUnsafeEntryType}});
  }
  cases.push_back({"symlink as the first entry",
                   RawHeader("outpost/targets.json", '2', 0, "/etc/passwd") + Join(entries),
                   {Reason::kUnsafeEntryType}});

  // 15. Decompression bombs and size caps.
  cases.push_back({"header announcing 32 GiB",
                   RawHeader("blobs/sha256/" + std::string(64, 'a'), '0', uint64_t{32} << 30),
                   {Reason::kSizeLimit},
                   {},
                   "site-a",
                   {.limits = {.max_entry_bytes = 1 << 20}}});
  cases.push_back({"entry over the entry cap", good, {Reason::kSizeLimit}, {}, "site-a",
                   {.limits = {.max_entry_bytes = 300}}});
  cases.push_back({"total over the total cap", good, {Reason::kSizeLimit}, {}, "site-a",
                   {.limits = {.max_total_bytes = 2000}}});
  cases.push_back({"more entries than the cap", good, {Reason::kSizeLimit}, {}, "site-a",
                   {.limits = {.max_entries = 4}}});
  {
    std::string many;
    for (int i = 0; i < 40; ++i) many += RawHeader("e" + std::to_string(i), '0', 0);
    cases.push_back({"many empty entries", many + std::string(2 * kTarBlock, '\0'),
                     {Reason::kSizeLimit, Reason::kBadLayout}, {}, "site-a",
                     {.limits = {.max_entries = 10}}});
  }

  // 16. Oversized metadata.
  cases.push_back({"targets over the metadata cap", good, {Reason::kSizeLimit}, {}, "site-a",
                   {.max_metadata_bytes = 600}});
  {
    Entries e = entries;
    Find(e, "outpost/targets.json")->data += std::string(2 << 20, ' ');
    cases.push_back({"targets of 2 MiB", Join(e), {Reason::kSizeLimit}});
    Entries r = entries;
    r[0].data += std::string(2 << 20, ' ');
    cases.push_back({"root of 2 MiB", Join(r), {Reason::kSizeLimit}});
  }

  // 17. Broken root rotations and layout.
  {
    CreateOptions o = Options();
    o.root_chain = {SignedRoot(root2_, {r1_, r2_})};
    cases.push_back({"root 2 without its own keys", Create({s1_, s2_}, o), {Reason::kRootSignature}});
    o.root_chain = {SignedRoot(root2_, {n1_, n2_})};
    cases.push_back({"root 2 without the old keys", Create({s1_, s2_}, o), {Reason::kRootSignature}});
    o.root_chain = {SignedRoot(root2_, {r1_, n1_, n2_})};
    cases.push_back({"root 2 with k-1 old keys", Create({s1_, s2_}, o), {Reason::kRootSignature}});
    Root v3 = root2_;
    v3.version = 3;
    Entries e = entries;
    e[0].name = "outpost/root/3.json";
    e[0].data = SignedRoot(v3, {r1_, r2_, n1_, n2_});
    cases.push_back({"root 3 without root 2", Join(e), {Reason::kRootChain}});
    Entries f = entries;
    std::swap(f[0], f[1]);
    cases.push_back({"targets before the root", Join(f),
                     {Reason::kBadLayout, Reason::kSignatureThreshold}});
    Entries g = entries;
    std::swap(g[1], g[2]);
    cases.push_back({"content before the targets", Join(g), {Reason::kBadLayout}});
    Entries h = entries;
    h[0].name = "outpost/root/02.json";
    cases.push_back({"root file name with a leading zero", Join(h), {Reason::kBadLayout}});
  }

  ASSERT_GE(cases.size(), 100u);
  for (const Case& c : cases) Run(c);
  EXPECT_EQ(run_, static_cast<int>(cases.size()));
  std::printf("tamper matrix: %zu mutated bundles refused\n", cases.size());
}

}  // namespace
}  // namespace outpost::bundle
