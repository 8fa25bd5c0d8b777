// EdgeConfig: the edge node's YAML configuration file, which command-line flags override.
//
//   site_id: mine-7              # the site this node belongs to
//   node_id: node-1              # this node, unique within the site (default: the host name)
//   listen: 0.0.0.0:8000         # HTTP address and port (port 0 = any free port). Default:
//                                # 0.0.0.0:8000 with credentials, 127.0.0.1:8000 without;
//                                # any address beyond loopback without credentials is refused
//                                # unless --insecure-listen-without-credentials is given
//   grpc_listen: 0.0.0.0:8001    # gRPC address and port; "" = no gRPC. Default: the HTTP
//                                # host and the HTTP port + 1 (port 0 when HTTP's is 0)
//   model_repository: /var/lib/outpost/models
//   threads: 2                   # HTTP and scoring threads (default: the number of cores);
//                                # also the budget an onnx model's intra-op threads share
//                                # with its instances (serve/FORMAT.md, "Intra-op threads")
//   strict_readiness: true       # ready only when every model loaded (as Triton)
//   watch_repository: true       # reload a model when its folder changes (inotify)
//   limits:
//     max_body_bytes: 67108864   # a larger request gets 413 (RESOURCE_EXHAUSTED on gRPC)
//     max_elements: 16777216     # total tensor elements in one request
//     max_json_depth: 64         # nesting of `data` and the rest of the JSON
//   tls:                         # present = both listeners speak TLS 1.2+ only
//     cert_file: /etc/outpost/edge.crt   # PEM chain and key; or site_certificate: true for
//     key_file: /etc/outpost/edge.key    # the enrolment's <credentials_dir>/site.crt, site.key
//     site_certificate: false
//     client_ca_file: /etc/outpost/clients-ca.crt   # client certificates (mutual TLS) must
//     client_crl_file: /etc/outpost/clients.crl     # chain here and not be revoked
//   auth:
//     credentials_file: /etc/outpost/credentials.yaml  # base/auth/FORMAT.md; default
//                                # <data_dir>/credentials.yaml when that file exists; none =
//                                # callers are anonymous (infer, label, read) on loopback
//     raw_read_roles: [admin]    # /v1/records unfiltered by the policy for these roles
//     allowed_hosts: [edge-1.plant.example]   # Host names beside loopback and the host name
//     model_control: false       # /v2/repository/.../load|unload, for the admin role
//     feedback_per_second: 50    # labels per credential, a token bucket of feedback_burst
//     feedback_burst: 200
//   SIGHUP reloads the credentials file, the client CA and CRL, and the TLS certificate;
//   connections open at the time keep theirs.
//   log_format: text             # text | json
//   log_level: info              # debug | info | warning | error
//   data_dir: /var/lib/outpost   # the node's durable state: <data_dir>/outbox.db, and LOCK,
//                                # held while the node runs (one edge per data_dir)
//   outbox:                      # the durable queue of records waiting for the hub
//     max_bytes: 8589934592      # total bound over stored records (default 1 GiB)
//     max_payload_bytes: 1048576 # the largest record
//     key_file: /etc/outpost/outbox.key  # encrypt records at rest (AES-256-GCM); "" = no
//     priority: [event, anomaly, drift, feedback, hard_example, aggregate, sample]
//     classes:                   # per kind: a quota of its own, and whether it may be
//       sample: {max_bytes: 1073741824, evictable: true}   # evicted to make room
//       aggregate: {reserved_percent: 10}  # a share no other class may take
//       anomaly: {storm_first: 1000, storm_sample: 100, storm_percent: 40}  # storms
//                                # (max_percent too; outbox/FORMAT.md sections 3, 12)
//     summary_interval_s: 3600   # at most one summary record per interval (section 9)
//   sync:                        # present = the forwarder uploads the outbox to the hub
//     hub_url: https://hub:8443  # default: <credentials_dir>/hub.url (written by enrol)
//     credentials_dir: /var/lib/outpost/credentials  # site.key, site.crt, hub_ca.crt;
//                                # default <data_dir>/credentials
//     policy_file: /etc/outpost/policy.yaml  # required: what may leave (policy/FORMAT.md)
//     hash_key_file: /etc/outpost/hash.key   # the site secret of hash rules; default
//                                # <credentials_dir>/hash.key, created (random) when missing
//     bandwidth_bytes_per_s: 0   # upload cap; 0 = none
//     batch_max_records: 500     # one lease from the outbox
//     batch_max_bytes: 1048576
//     lease_seconds: 60          # how long records the hub refused wait before a retry
//     backoff_initial_ms: 500    # after a failure; doubles up to backoff_max_ms, jittered
//     backoff_max_ms: 60000
//     status_interval_s: 60      # node status to the hub; 0 = never
//     request_timeout_ms: 30000  # each step of an upload
//     encrypt_exports: false     # `outpost export` seals files to the hub's export key
//                                # (<credentials_dir>/hub_export.pub, written by enrol)
//     releases:                  # present = the node fetches and installs the releases the
//                                # hub has for its site (sync/FORMAT.md section 7)
//       state_dir: /var/lib/outpost/bundle-state  # required: `bundle install --state-dir`
//       trusted_root: /etc/outpost/root.json      # provisioned when state_dir has none
//       groups: [north]          # this site's groups (`bundle install --group`)
//       check_interval_s: 60     # how often the hub is asked (1 .. 86400)
//       health_check: true       # false = `bundle install --no-health-check`
//       max_bundle_bytes: 1073741824  # a larger release is refused (RELEASE_TOO_LARGE)
//
// Unknown keys are rejected, so a typo does not silently leave a default in force.
#ifndef OUTPOST_APPS_EDGE_CONFIG_H_
#define OUTPOST_APPS_EDGE_CONFIG_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "outbox/outbox.h"

namespace outpost::apps {

// The `sync.releases:` section: releases fetched from the hub (apps/edge_releases.h).
struct EdgeReleasesConfig {
  bool enabled = false;  // the section is present
  std::string state_dir;     // required when enabled
  std::string trusted_root;  // empty = state_dir's root.json must exist
  std::vector<std::string> groups;
  int64_t check_interval_s = 60;
  bool health_check = true;
  // The site's own acceptance test of each new model version, after the built-in check
  // (apps/bundle_site.h): argv, run with OUTPOST_MODEL_DIR, OUTPOST_MODEL and
  // OUTPOST_MODEL_VERSION set; exit 0 within health_timeout_s passes. Empty = none.
  std::vector<std::string> health_command;
  int64_t health_timeout_s = 60;
  uint64_t max_bundle_bytes = uint64_t{1} << 30;
};

// The `sync:` section: the forwarder to the hub (sync/forwarder.h).
struct EdgeSyncConfig {
  bool enabled = false;  // the section is present
  std::string hub_url;          // empty = <credentials_dir>/hub.url
  std::string credentials_dir;  // empty = <data_dir>/credentials
  std::string policy_file;      // required when enabled
  std::string hash_key_file;    // empty = <credentials_dir>/hash.key
  uint64_t bandwidth_bytes_per_s = 0;
  uint64_t batch_max_records = 500;
  uint64_t batch_max_bytes = uint64_t{1} << 20;
  int64_t lease_seconds = 60;
  int64_t backoff_initial_ms = 500;
  int64_t backoff_max_ms = 60'000;
  int64_t status_interval_s = 60;
  int64_t request_timeout_ms = 30'000;
  bool encrypt_exports = false;  // seal export files (sync/FORMAT.md section 6)
  EdgeReleasesConfig releases{};
};

// The `tls:` section.
struct EdgeTlsConfig {
  bool enabled = false;  // the section is present
  std::string cert_file;
  std::string key_file;
  bool site_certificate = false;  // cert and key from the sync credentials_dir
  std::string client_ca_file;
  std::string client_crl_file;
};

// The `auth:` section.
struct EdgeAuthConfig {
  std::string credentials_file;  // empty = <data_dir>/credentials.yaml when present
  std::vector<std::string> raw_read_roles;
  std::vector<std::string> allowed_hosts;
  bool model_control = false;
  double feedback_per_second = 50;
  double feedback_burst = 200;
};

struct EdgeConfig {
  std::string site_id = "site";
  std::string node_id;  // empty = host name
  bool listen_given = false;  // false = the default address, chosen by whether there are credentials
  std::string listen_address = "0.0.0.0";
  uint16_t listen_port = 8000;
  // gRPC: see ResolveGrpcListen. grpc_enabled false = no gRPC server.
  bool grpc_listen_given = false;
  bool grpc_enabled = true;
  std::string grpc_listen_address;
  uint16_t grpc_listen_port = 0;
  std::string model_repository = "models";
  int threads = 0;  // 0 = hardware concurrency
  bool strict_readiness = true;
  bool watch_repository = true;
  uint64_t max_body_bytes = 64ull << 20;
  uint64_t max_elements = 16ull << 20;
  int max_json_depth = 64;
  std::string log_format = "text";
  std::string log_level = "info";
  // The node's durable state; created at start when missing.
  std::string data_dir = "./outpost-data";
  // The outbox's bounds and encryption; path, site_id, node_id and clock are set at start
  // from data_dir, site_id and node_id.
  outbox::OutboxOptions outbox{};
  EdgeSyncConfig sync{};
  EdgeTlsConfig tls{};
  EdgeAuthConfig auth{};
};

// Parses the YAML text of an edge config on top of `base` (the defaults).
Result<EdgeConfig> ParseEdgeConfig(std::string_view yaml_text, EdgeConfig base = {});

// Parses "host:port", "[v6]:port" or ":port" into `config`. InvalidArgument otherwise.
Status ParseListen(std::string_view listen, EdgeConfig& config);

// The gRPC form of ParseListen; "" disables gRPC. Marks grpc_listen as given.
Status ParseGrpcListen(std::string_view listen, EdgeConfig& config);

// When grpc_listen was not given, sets it to the HTTP host and the HTTP port + 1 (port 0 when
// the HTTP port is 0, so that two servers on test ports never collide). InvalidArgument when
// the HTTP port is 65535.
Status ResolveGrpcListen(EdgeConfig& config);

}  // namespace outpost::apps

#endif  // OUTPOST_APPS_EDGE_CONFIG_H_
