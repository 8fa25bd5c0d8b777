#include "base/names.h"

#include <gtest/gtest.h>

#include <string>
#include <unordered_set>
#include <vector>

namespace outpost {
namespace {

using namespace std::string_literals;

// The refusals every rule shares: no name may be empty, carry a path separator, a space, a
// control character, NUL or a byte outside ASCII, or begin with '.' or '-'.
const std::vector<std::string>& CommonRefusals() {
  static const std::vector<std::string> refused = {
      "",     ".",    "..",  "../etc", "a/b",   "a\\b", "/abs", "-flag",
      ".dot", "a b",  " a",  "a\n",    "a\0b"s, "\0"s,  "a\tb", "caf\xc3\xa9",
      "\xff", "a\"b", "a*b", "a$b",    "a%2fb", "a@b",  "a+b",  "a,b"};
  return refused;
}

template <typename N>
void ExpectRefused(const std::string& text, std::string_view reason) {
  Result<N> parsed = N::Parse(text);
  ASSERT_FALSE(parsed.ok()) << N::rule().what << " accepted \"" << text << "\"";
  EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(parsed.status().reason(), reason);
  EXPECT_NE(parsed.status().message().find(N::rule().what), std::string_view::npos)
      << parsed.status().message();
  EXPECT_FALSE(N::IsValid(text));
}

template <typename N>
void ExpectAccepted(const std::string& text) {
  Result<N> parsed = N::Parse(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->str(), text);
  EXPECT_EQ(parsed->view(), text);
  EXPECT_TRUE(N::IsValid(text));
}

template <typename N>
void ExpectCommonRefusals(std::string_view reason) {
  for (const std::string& text : CommonRefusals()) ExpectRefused<N>(text, reason);
}

TEST(ModelName, AcceptsTheBundleRuleUpToSixtyFourBytes) {
  for (std::string ok : {"pump", "iris", "m", "0", "a.b", "pump-v2_x", "9lives", "a..b"}) {
    ExpectAccepted<ModelName>(ok);
  }
  ExpectAccepted<ModelName>(std::string(64, 'm'));
}

TEST(ModelName, RefusesUpperCaseColonsLeadingUnderscoreAndOverlongNames) {
  ExpectCommonRefusals<ModelName>("invalid_model_name");
  for (std::string bad : {"Pump", "pUmp", "a:b", "_outbox", "_x"}) {
    ExpectRefused<ModelName>(bad, "invalid_model_name");
  }
  ExpectRefused<ModelName>(std::string(65, 'm'), "invalid_model_name");
}

TEST(ModelName, RefusalSaysWhatWasWrong) {
  Result<ModelName> upper = ModelName::Parse("Pump");
  ASSERT_FALSE(upper.ok());
  EXPECT_EQ(upper.status().message(),
            "model name \"Pump\" has 'P' at byte 0; a model name is [a-z0-9][a-z0-9._-]{0,63}");
  Result<ModelName> nul = ModelName::Parse("a\0b"s);
  ASSERT_FALSE(nul.ok());
  EXPECT_NE(nul.status().message().find("\"a\\x00b\" has a byte outside printable ASCII at byte 1"),
            std::string_view::npos)
      << nul.status().message();
  Result<ModelName> long_name = ModelName::Parse(std::string(200, 'm'));
  ASSERT_FALSE(long_name.ok());
  EXPECT_NE(long_name.status().message().find("is 200 bytes, more than 64"),
            std::string_view::npos);
  EXPECT_LT(long_name.status().message().size(), 200u);
}

TEST(SiteId, AcceptsTheBatchRuleUpToOneHundredTwentyEightBytes) {
  for (std::string ok : {"plant-7", "Plant-7", "plant-7.a_b", "ship:9", "_x", "s1", "mine-andes"}) {
    ExpectAccepted<SiteId>(ok);
  }
  ExpectAccepted<SiteId>(std::string(128, 's'));
}

TEST(SiteId, RefusesBadNames) {
  ExpectCommonRefusals<SiteId>("invalid_site_id");
  ExpectRefused<SiteId>(":x", "invalid_site_id");
  ExpectRefused<SiteId>(std::string(129, 's'), "invalid_site_id");
}

TEST(NodeId, AcceptsAndRefuses) {
  for (std::string ok : {"n1", "edge-1", "node-1", "Edge_2", "pod:0", "edge-0.ns"}) {
    ExpectAccepted<NodeId>(ok);
  }
  ExpectAccepted<NodeId>(std::string(128, 'n'));
  ExpectCommonRefusals<NodeId>("invalid_node_id");
  ExpectRefused<NodeId>(std::string(129, 'n'), "invalid_node_id");
}

TEST(StreamName, AcceptsModelNamesAndTheOutboxsOwnStreams) {
  for (std::string ok : {"pump", "bundle", "_outbox", "Pump", "m:shadow", "iris.v2"}) {
    ExpectAccepted<StreamName>(ok);
  }
  ExpectAccepted<StreamName>(std::string(128, 'p'));
  EXPECT_TRUE(StreamName::Parse("_outbox")->reserved());
  EXPECT_FALSE(StreamName::Parse("pump")->reserved());
}

TEST(StreamName, RefusesBadNames) {
  ExpectCommonRefusals<StreamName>("invalid_stream_name");
  ExpectRefused<StreamName>(std::string(129, 'p'), "invalid_stream_name");
}

TEST(TenantAndRegion, AcceptTheEnrolmentRuleUpToSixtyFourBytes) {
  for (std::string ok : {"acme", "globex", "demo", "Acme_2", "us", "eu-west.1", "r1"}) {
    ExpectAccepted<Tenant>(ok);
    ExpectAccepted<Region>(ok);
  }
  ExpectAccepted<Tenant>(std::string(64, 't'));
  ExpectAccepted<Region>(std::string(64, 'r'));
}

TEST(TenantAndRegion, RefuseColonsAndOverlongNames) {
  ExpectCommonRefusals<Tenant>("invalid_tenant");
  ExpectCommonRefusals<Region>("invalid_region");
  ExpectRefused<Tenant>("a:b", "invalid_tenant");
  ExpectRefused<Region>("a:b", "invalid_region");
  ExpectRefused<Tenant>(std::string(65, 't'), "invalid_tenant");
  ExpectRefused<Region>(std::string(65, 'r'), "invalid_region");
  ExpectRefused<Tenant>("*", "invalid_tenant");
}

TEST(RuleName, AcceptsTheInsightRule) {
  for (std::string ok : {"high_vibration", "Drift.1", "r-2", "0"}) ExpectAccepted<RuleName>(ok);
  ExpectAccepted<RuleName>(std::string(64, 'r'));
}

TEST(RuleName, RefusesBadNames) {
  ExpectCommonRefusals<RuleName>("invalid_rule_name");
  for (std::string bad : {"_x", "bad name", "a:b"})
    ExpectRefused<RuleName>(bad, "invalid_rule_name");
  ExpectRefused<RuleName>(std::string(65, 'r'), "invalid_rule_name");
}

TEST(CredentialName, AcceptsTheModelRule) {
  for (std::string ok : {"scorer-1", "historian", "line-3.camera_x", "0"}) {
    ExpectAccepted<CredentialName>(ok);
  }
  ExpectAccepted<CredentialName>(std::string(64, 'c'));
}

TEST(CredentialName, RefusesBadNames) {
  ExpectCommonRefusals<CredentialName>("invalid_credential_name");
  for (std::string bad : {"Scorer", "_x", "bad name", "a:b", "a/b"}) {
    ExpectRefused<CredentialName>(bad, "invalid_credential_name");
  }
  ExpectRefused<CredentialName>(std::string(65, 'c'), "invalid_credential_name");
}

TEST(Names, CompareOrderAndHashByTheirText) {
  ModelName a = *ModelName::Parse("a");
  ModelName b = *ModelName::Parse("b");
  EXPECT_EQ(a, *ModelName::Parse("a"));
  EXPECT_NE(a, b);
  EXPECT_LT(a, b);
  std::unordered_set<SiteId> sites = {*SiteId::Parse("plant-7"), *SiteId::Parse("plant-7"),
                                      *SiteId::Parse("plant-8")};
  EXPECT_EQ(sites.size(), 2u);
  EXPECT_EQ(std::hash<ModelName>()(a), std::hash<std::string_view>()("a"));
}

}  // namespace
}  // namespace outpost
