// EdgeConfig: the edge node's YAML configuration file, which command-line flags override.
//
//   site_id: mine-7              # the site this node belongs to
//   node_id: node-1              # this node, unique within the site (default: the host name)
//   listen: 0.0.0.0:8000         # HTTP address and port (port 0 = any free port)
//   grpc_listen: 0.0.0.0:8001    # gRPC address and port; "" = no gRPC. Default: the HTTP
//                                # host and the HTTP port + 1 (port 0 when HTTP's is 0)
//   model_repository: /var/lib/outpost/models
//   threads: 2                   # HTTP and scoring threads (default: the number of cores)
//   strict_readiness: true       # ready only when every model loaded (as Triton)
//   watch_repository: true       # reload a model when its folder changes (inotify)
//   limits:
//     max_body_bytes: 67108864   # a larger request gets 413 (RESOURCE_EXHAUSTED on gRPC)
//     max_elements: 16777216     # total tensor elements in one request
//     max_json_depth: 64         # nesting of `data` and the rest of the JSON
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
//
// Unknown keys are rejected, so a typo does not silently leave a default in force.
#ifndef OUTPOST_APPS_EDGE_CONFIG_H_
#define OUTPOST_APPS_EDGE_CONFIG_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "outbox/outbox.h"

namespace outpost::apps {

struct EdgeConfig {
  std::string site_id = "site";
  std::string node_id;  // empty = host name
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
