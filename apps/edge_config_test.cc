#include "apps/edge_config.h"

#include <gtest/gtest.h>

#include "base/testing/test_util.h"

namespace outpost::apps {
namespace {

TEST(EdgeConfig, EmptyTextKeepsDefaults) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(EdgeConfig c, ParseEdgeConfig(""));
  EXPECT_EQ(c.listen_port, 8000);
  EXPECT_EQ(c.listen_address, "0.0.0.0");
  EXPECT_TRUE(c.strict_readiness);
  EXPECT_TRUE(c.watch_repository);
}

TEST(EdgeConfig, ListenIsMarkedGivenOnlyWhenSet) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(EdgeConfig none, ParseEdgeConfig("site_id: a"));
  EXPECT_FALSE(none.listen_given);
  OUTPOST_ASSERT_OK_AND_ASSIGN(EdgeConfig given, ParseEdgeConfig("listen: 0.0.0.0:9000"));
  EXPECT_TRUE(given.listen_given);
}

TEST(EdgeConfig, ParsesTheTlsAndAuthSections) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(EdgeConfig c, ParseEdgeConfig(R"(
tls: {cert_file: /etc/e.crt, key_file: /etc/e.key, client_ca_file: /etc/ca.crt,
      client_crl_file: /etc/ca.crl}
auth:
  credentials_file: /etc/creds.yaml
  raw_read_roles: [admin, read]
  allowed_hosts: [edge-1.plant.example]
  model_control: true
  feedback_per_second: 5
  feedback_burst: 10
)"));
  EXPECT_TRUE(c.tls.enabled);
  EXPECT_EQ(c.tls.cert_file, "/etc/e.crt");
  EXPECT_EQ(c.tls.key_file, "/etc/e.key");
  EXPECT_EQ(c.tls.client_ca_file, "/etc/ca.crt");
  EXPECT_EQ(c.tls.client_crl_file, "/etc/ca.crl");
  EXPECT_EQ(c.auth.credentials_file, "/etc/creds.yaml");
  EXPECT_EQ(c.auth.raw_read_roles, (std::vector<std::string>{"admin", "read"}));
  EXPECT_EQ(c.auth.allowed_hosts, (std::vector<std::string>{"edge-1.plant.example"}));
  EXPECT_TRUE(c.auth.model_control);
  EXPECT_EQ(c.auth.feedback_per_second, 5);
  EXPECT_EQ(c.auth.feedback_burst, 10);
  OUTPOST_ASSERT_OK_AND_ASSIGN(EdgeConfig site, ParseEdgeConfig("tls: {site_certificate: true}"));
  EXPECT_TRUE(site.tls.site_certificate);
  OUTPOST_ASSERT_OK_AND_ASSIGN(EdgeConfig plain, ParseEdgeConfig("site_id: a"));
  EXPECT_FALSE(plain.tls.enabled);
  EXPECT_FALSE(plain.auth.model_control);
}

TEST(EdgeConfig, RejectsIncompleteTlsAndBadAuth) {
  for (const char* text : {
           "tls: {}",
           "tls: {cert_file: /a.crt}",
           "tls: {key_file: /a.key}",
           "tls: {site_certificate: true, cert_file: /a.crt, key_file: /a.key}",
           "tls: {cert_file: /a.crt, key_file: /a.key, client_crl_file: /c.crl}",
           "tls: {cert_file: /a.crt, key_file: /a.key, pin: x}",
           "auth: {tokens: [abc]}",
           "auth: {raw_read_roles: admin}",
           "auth: {feedback_per_second: 0}",
           "auth: {feedback_burst: -1}",
           "auth: []",
       }) {
    EXPECT_FALSE(ParseEdgeConfig(text).ok()) << text;
  }
}

TEST(EdgeConfig, ParsesEveryKey) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(EdgeConfig c, ParseEdgeConfig(R"(
site_id: mine-7
node_id: node-2
listen: 127.0.0.1:9000
model_repository: /srv/models
threads: 4
strict_readiness: false
watch_repository: false
limits: {max_body_bytes: 1024, max_elements: 100, max_json_depth: 8}
log_format: json
log_level: debug
)"));
  EXPECT_EQ(c.site_id, "mine-7");
  EXPECT_EQ(c.node_id, "node-2");
  EXPECT_EQ(c.listen_address, "127.0.0.1");
  EXPECT_EQ(c.listen_port, 9000);
  EXPECT_EQ(c.model_repository, "/srv/models");
  EXPECT_EQ(c.threads, 4);
  EXPECT_FALSE(c.strict_readiness);
  EXPECT_FALSE(c.watch_repository);
  EXPECT_EQ(c.max_body_bytes, 1024u);
  EXPECT_EQ(c.max_elements, 100u);
  EXPECT_EQ(c.max_json_depth, 8);
  EXPECT_EQ(c.log_format, "json");
}

TEST(EdgeConfig, RejectsUnknownKeysAndBadValues) {
  for (const char* yaml : {"sitе_id: x\n", "listen: nohostport\n", "listen: a:70000\n",
                           "threads: -1\n", "limits: {max_json_depth: 1}\n",
                           "limits: {max_body: 5}\n", "threads: many\n", "[1, 2]\n"}) {
    Result<EdgeConfig> r = ParseEdgeConfig(yaml);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << yaml;
  }
}

TEST(EdgeConfig, SiteAndNodeIdsFollowTheirNameRules) {
  // base/names.h: SiteId and NodeId; an empty node_id stands for the host name.
  for (const char* yaml : {"site_id: ../etc\n", "site_id: \"\"\n", "site_id: a b\n",
                           "node_id: -n\n", "node_id: a/b\n"}) {
    Result<EdgeConfig> r = ParseEdgeConfig(yaml);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << yaml;
    std::string_view reason = r.status().reason();
    EXPECT_TRUE(reason == "invalid_site_id" || reason == "invalid_node_id")
        << yaml << r.status().ToString();
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(EdgeConfig c, ParseEdgeConfig("site_id: Ship:9\nnode_id: \"\"\n"));
  EXPECT_EQ(c.site_id, "Ship:9");
  EXPECT_EQ(c.node_id, "");
}

TEST(ParseListen, AcceptsHostPortForms) {
  EdgeConfig c;
  OUTPOST_ASSERT_OK(ParseListen(":0", c));
  EXPECT_EQ(c.listen_address, "0.0.0.0");
  EXPECT_EQ(c.listen_port, 0);
  OUTPOST_ASSERT_OK(ParseListen("[::1]:8080", c));
  EXPECT_EQ(c.listen_address, "::1");
  EXPECT_EQ(c.listen_port, 8080);
}

TEST(GrpcListen, DefaultsToTheHttpHostAndTheNextPort) {
  EdgeConfig c;
  OUTPOST_ASSERT_OK(ResolveGrpcListen(c));
  EXPECT_TRUE(c.grpc_enabled);
  EXPECT_EQ(c.grpc_listen_address, "0.0.0.0");
  EXPECT_EQ(c.grpc_listen_port, 8001);
}

TEST(GrpcListen, DefaultsToAnyFreePortWhenHttpTakesAnyFreePort) {
  EdgeConfig c;
  OUTPOST_ASSERT_OK(ParseListen("127.0.0.1:0", c));
  OUTPOST_ASSERT_OK(ResolveGrpcListen(c));
  EXPECT_TRUE(c.grpc_enabled);
  EXPECT_EQ(c.grpc_listen_address, "127.0.0.1");
  EXPECT_EQ(c.grpc_listen_port, 0);
}

TEST(GrpcListen, HttpOnTheLastPortNeedsAnExplicitGrpcListen) {
  EdgeConfig c;
  OUTPOST_ASSERT_OK(ParseListen(":65535", c));
  EXPECT_EQ(ResolveGrpcListen(c).code(), StatusCode::kInvalidArgument);
  OUTPOST_ASSERT_OK(ParseGrpcListen(":9000", c));
  OUTPOST_ASSERT_OK(ResolveGrpcListen(c));
  EXPECT_EQ(c.grpc_listen_port, 9000);
}

TEST(GrpcListen, ConfigKeySetsTheAddressOrDisablesGrpc) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(EdgeConfig c, ParseEdgeConfig("grpc_listen: \"[::1]:9001\"\n"));
  OUTPOST_ASSERT_OK(ResolveGrpcListen(c));
  EXPECT_TRUE(c.grpc_enabled);
  EXPECT_EQ(c.grpc_listen_address, "::1");
  EXPECT_EQ(c.grpc_listen_port, 9001);
  for (const char* yaml : {"grpc_listen: \"\"\n", "grpc_listen:\n"}) {
    OUTPOST_ASSERT_OK_AND_ASSIGN(EdgeConfig off, ParseEdgeConfig(yaml));
    OUTPOST_ASSERT_OK(ResolveGrpcListen(off));
    EXPECT_FALSE(off.grpc_enabled) << yaml;
  }
  EXPECT_EQ(ParseEdgeConfig("grpc_listen: a:70000\n").status().code(),
            StatusCode::kInvalidArgument);
}

TEST(EdgeConfig, DataDirAndOutboxDefaultToAGibibyteUnderOutpostData) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(EdgeConfig c, ParseEdgeConfig(""));
  EXPECT_EQ(c.data_dir, "./outpost-data");
  EXPECT_EQ(c.outbox.max_bytes, uint64_t{1} << 30);
  EXPECT_EQ(c.outbox.priority, outbox::DefaultPriority());
  EXPECT_TRUE(c.outbox.key_file.empty());
}

TEST(EdgeConfig, ParsesTheOutboxSection) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(EdgeConfig c, ParseEdgeConfig(R"(
data_dir: /var/lib/outpost
outbox:
  max_bytes: 4096
  max_payload_bytes: 2048
  key_file: /etc/outpost/outbox.key
  priority: [anomaly, event, drift, feedback, hard_example, sample, aggregate]
  classes:
    sample: {max_bytes: 1000, evictable: true}
    feedback: {evictable: true}
    aggregate: {reserved_percent: 25}
    anomaly: {storm_first: 50, storm_sample: 20, storm_percent: 30}
  summary_interval_s: 600
)"));
  EXPECT_EQ(c.data_dir, "/var/lib/outpost");
  EXPECT_EQ(c.outbox.max_bytes, 4096u);
  EXPECT_EQ(c.outbox.max_payload_bytes, 2048u);
  EXPECT_EQ(c.outbox.key_file, "/etc/outpost/outbox.key");
  ASSERT_EQ(c.outbox.priority.size(), 7u);
  EXPECT_EQ(c.outbox.priority[0], outbox::Kind::kAnomaly);
  EXPECT_EQ(c.outbox.priority[6], outbox::Kind::kAggregate);
  const auto& sample = c.outbox.classes[static_cast<int>(outbox::Kind::kSample) - 1];
  EXPECT_EQ(sample.max_bytes, 1000u);
  EXPECT_TRUE(sample.evictable);
  EXPECT_TRUE(c.outbox.classes[static_cast<int>(outbox::Kind::kFeedback) - 1].evictable);
  EXPECT_EQ(c.outbox.classes[static_cast<int>(outbox::Kind::kAggregate) - 1].reserved_percent,
            25u);
  const auto& anomaly = c.outbox.classes[static_cast<int>(outbox::Kind::kAnomaly) - 1];
  EXPECT_EQ(anomaly.storm_first, 50u);
  EXPECT_EQ(anomaly.storm_sample, 20u);
  EXPECT_EQ(anomaly.storm_percent, 30u);
  EXPECT_EQ(c.outbox.summary_interval, std::chrono::seconds(600));
}

TEST(EdgeConfig, RejectsBadOutboxSections) {
  for (const char* yaml :
       {"outbox: 5\n", "outbox: {max_bytes: 0}\n", "outbox: {max_byte: 10}\n",
        "outbox: {max_payload_bytes: 99999999}\n", "outbox: {priority: [anomaly]}\n",
        "outbox: {priority: [anomaly, anomaly, drift, feedback, hard_example, sample, event]}\n",
        "outbox: {priority: [bogus, anomaly, drift, feedback, hard_example, sample, event]}\n",
        "outbox: {classes: {bogus: {max_bytes: 1}}}\n",
        "outbox: {classes: {sample: {quota: 1}}}\n", "outbox: {summary_interval_s: 0}\n",
        "data_dir: ''\n"}) {
    Result<EdgeConfig> r = ParseEdgeConfig(yaml);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << yaml;
  }
}

TEST(EdgeConfig, SyncSectionCanAskForSealedExports) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(EdgeConfig plain, ParseEdgeConfig("sync: {policy_file: p.yaml}\n"));
  EXPECT_FALSE(plain.sync.encrypt_exports);
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      EdgeConfig sealed, ParseEdgeConfig("sync: {policy_file: p.yaml, encrypt_exports: true}\n"));
  EXPECT_TRUE(sealed.sync.encrypt_exports);
  Result<EdgeConfig> bad = ParseEdgeConfig("sync: {policy_file: p.yaml, encrypt_exports: maybe}\n");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

TEST(EdgeConfig, ParsesTheReleasesSectionAndRefusesABadOne) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      EdgeConfig c,
      ParseEdgeConfig("sync:\n  policy_file: p.yaml\n  releases:\n    state_dir: /s\n"
                      "    trusted_root: /r.json\n    groups: [north, east]\n"
                      "    check_interval_s: 5\n    health_check: false\n"
                      "    max_bundle_bytes: 1000\n"));
  EXPECT_TRUE(c.sync.releases.enabled);
  EXPECT_EQ(c.sync.releases.state_dir, "/s");
  EXPECT_EQ(c.sync.releases.trusted_root, "/r.json");
  EXPECT_EQ(c.sync.releases.groups, (std::vector<std::string>{"north", "east"}));
  EXPECT_EQ(c.sync.releases.check_interval_s, 5);
  EXPECT_FALSE(c.sync.releases.health_check);
  EXPECT_EQ(c.sync.releases.max_bundle_bytes, 1000u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(EdgeConfig none, ParseEdgeConfig("sync: {policy_file: p.yaml}\n"));
  EXPECT_FALSE(none.sync.releases.enabled);
  for (const char* bad : {"sync: {policy_file: p.yaml, releases: {groups: [a]}}\n",
                          "sync: {policy_file: p.yaml, releases: {state_dir: /s, x: 1}}\n",
                          "sync: {policy_file: p.yaml, releases: {state_dir: /s, "
                          "check_interval_s: 0}}\n",
                          "sync: {policy_file: p.yaml, releases: [a]}\n"}) {
    EXPECT_EQ(ParseEdgeConfig(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace outpost::apps
