// The edge config (edge_config.h), read through the YAML adapter (base/yaml/yaml.h).
#include "apps/edge_config.h"

#include <algorithm>
#include <charconv>
#include <set>
#include <vector>

#include "base/names.h"
#include "base/yaml/yaml.h"

namespace outpost::apps {

namespace {

// Parses "host:port", "[v6]:port" or ":port"; `what` names the setting in errors.
Status ParseHostPort(std::string_view listen, std::string_view what, std::string& address,
                     uint16_t& port_number) {
  size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos) {
    return InvalidArgumentError(std::string(what) + " address \"" + std::string(listen) +
                                "\" must be host:port");
  }
  std::string_view host = listen.substr(0, colon);
  std::string_view port = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || value > 65535) {
    return InvalidArgumentError(std::string(what) + " port \"" + std::string(port) +
                                "\" must be 0 to 65535");
  }
  address = host.empty() ? "0.0.0.0" : std::string(host);
  port_number = static_cast<uint16_t>(value);
  return Status();
}

// The `outbox:` section onto `options` (checked further by Outbox::Open).
Status ParseOutboxClasses(const yaml::Node& node, outbox::OutboxOptions& options) {
  if (!node.IsMap()) return InvalidArgumentError("outbox.classes must be a map");
  for (const auto& cls : node.entries()) {
    OUTPOST_ASSIGN_OR_RETURN(std::string name, cls.first.As<std::string>());
    Result<outbox::Kind> kind = outbox::ParseKind(name);
    if (!kind.ok()) return kind.status().WithContext("outbox.classes");
    if (!cls.second.IsMap()) {
      return InvalidArgumentError("outbox.classes." + name + " must be a map");
    }
    outbox::ClassPolicy& policy = options.classes[static_cast<int>(*kind) - 1];
    for (const auto& field : cls.second.entries()) {
      OUTPOST_ASSIGN_OR_RETURN(std::string fkey, field.first.As<std::string>());
      if (fkey == "max_bytes") {
        OUTPOST_ASSIGN_OR_RETURN(policy.max_bytes, field.second.As<uint64_t>());
      } else if (fkey == "evictable") {
        OUTPOST_ASSIGN_OR_RETURN(policy.evictable, field.second.As<bool>());
      } else if (fkey == "max_percent" || fkey == "reserved_percent" || fkey == "storm_first" ||
                 fkey == "storm_sample" || fkey == "storm_percent") {
        OUTPOST_ASSIGN_OR_RETURN(uint64_t value, field.second.As<uint64_t>());
        if (value > 1'000'000) {
          return InvalidArgumentError("outbox.classes." + name + "." + fkey + " is too large");
        }
        const uint32_t v = static_cast<uint32_t>(value);
        if (fkey == "max_percent") policy.max_percent = v;
        if (fkey == "reserved_percent") policy.reserved_percent = v;
        if (fkey == "storm_first") policy.storm_first = v;
        if (fkey == "storm_sample") policy.storm_sample = v;
        if (fkey == "storm_percent") policy.storm_percent = v;
      } else {
        return InvalidArgumentError("unknown key \"" + fkey + "\" in outbox.classes." + name);
      }
    }
  }
  return Status();
}

Status ParseOutboxSection(const yaml::Node& node, outbox::OutboxOptions& options) {
  if (!node.IsMap()) return InvalidArgumentError("outbox must be a map");
  for (const auto& kv : node.entries()) {
    OUTPOST_ASSIGN_OR_RETURN(std::string key, kv.first.As<std::string>());
    if (key == "max_bytes") {
      OUTPOST_ASSIGN_OR_RETURN(options.max_bytes, kv.second.As<uint64_t>());
      if (options.max_bytes == 0) return InvalidArgumentError("outbox.max_bytes must be > 0");
    } else if (key == "max_payload_bytes") {
      OUTPOST_ASSIGN_OR_RETURN(options.max_payload_bytes, kv.second.As<uint64_t>());
      if (options.max_payload_bytes == 0 || options.max_payload_bytes > (size_t{16} << 20)) {
        return InvalidArgumentError("outbox.max_payload_bytes must be 1 to 16777216");
      }
    } else if (key == "key_file") {
      if (kv.second.IsNull()) {
        options.key_file = "";
      } else {
        OUTPOST_ASSIGN_OR_RETURN(options.key_file, kv.second.As<std::string>());
      }
    } else if (key == "priority") {
      if (!kv.second.IsSequence()) return InvalidArgumentError("outbox.priority must be a list");
      std::vector<outbox::Kind> priority;
      for (const auto& item : kv.second.items()) {
        OUTPOST_ASSIGN_OR_RETURN(std::string name, item.As<std::string>());
        Result<outbox::Kind> kind = outbox::ParseKind(name);
        if (!kind.ok()) return kind.status().WithContext("outbox.priority");
        if (std::find(priority.begin(), priority.end(), *kind) != priority.end()) {
          return InvalidArgumentError("outbox.priority lists \"" + name + "\" twice");
        }
        priority.push_back(*kind);
      }
      if (priority.size() != outbox::kAllKinds.size()) {
        return InvalidArgumentError("outbox.priority must list each of the 7 kinds once");
      }
      options.priority = std::move(priority);
    } else if (key == "classes") {
      OUTPOST_RETURN_IF_ERROR(ParseOutboxClasses(kv.second, options));
    } else if (key == "summary_interval_s") {
      OUTPOST_ASSIGN_OR_RETURN(uint64_t seconds, kv.second.As<uint64_t>());
      if (seconds == 0) return InvalidArgumentError("outbox.summary_interval_s must be > 0");
      options.summary_interval = std::chrono::seconds(seconds);
    } else {
      return InvalidArgumentError("unknown key \"" + key + "\" in outbox");
    }
  }
  return Status();
}

// A string setting that a bare `key:` (YAML null) leaves empty.
Status ReadOptionalString(const yaml::Node& v, std::string& out) {
  if (v.IsNull()) {
    out = "";
    return Status();
  }
  OUTPOST_ASSIGN_OR_RETURN(out, v.As<std::string>());
  return Status();
}

Status ReadStringList(const yaml::Node& v, std::string_view what, std::vector<std::string>& out);

// The `sync.releases:` section (see edge_config.h).
Status ParseReleasesSection(const yaml::Node& node, EdgeReleasesConfig& releases) {
  if (!node.IsMap()) return InvalidArgumentError("sync.releases must be a map");
  releases.enabled = true;
  for (const auto& kv : node.entries()) {
    OUTPOST_ASSIGN_OR_RETURN(std::string key, kv.first.As<std::string>());
    const yaml::Node& v = kv.second;
    if (key == "state_dir") {
      OUTPOST_RETURN_IF_ERROR(ReadOptionalString(v, releases.state_dir));
    } else if (key == "trusted_root") {
      OUTPOST_RETURN_IF_ERROR(ReadOptionalString(v, releases.trusted_root));
    } else if (key == "groups") {
      OUTPOST_RETURN_IF_ERROR(ReadStringList(v, "sync.releases.groups", releases.groups));
    } else if (key == "check_interval_s") {
      OUTPOST_ASSIGN_OR_RETURN(releases.check_interval_s, v.As<int64_t>());
      if (releases.check_interval_s < 1 || releases.check_interval_s > 86'400) {
        return InvalidArgumentError("sync.releases.check_interval_s must be 1 to 86400");
      }
    } else if (key == "health_check") {
      OUTPOST_ASSIGN_OR_RETURN(releases.health_check, v.As<bool>());
    } else if (key == "health_command") {
      OUTPOST_RETURN_IF_ERROR(
          ReadStringList(v, "sync.releases.health_command", releases.health_command));
      if (releases.health_command.empty() || releases.health_command[0].empty() ||
          releases.health_command[0][0] != '/') {
        return InvalidArgumentError(
            "sync.releases.health_command is a list whose first item is an absolute path");
      }
    } else if (key == "health_timeout_s") {
      OUTPOST_ASSIGN_OR_RETURN(releases.health_timeout_s, v.As<int64_t>());
      if (releases.health_timeout_s < 1 || releases.health_timeout_s > 3600) {
        return InvalidArgumentError("sync.releases.health_timeout_s must be 1 to 3600");
      }
    } else if (key == "max_bundle_bytes") {
      OUTPOST_ASSIGN_OR_RETURN(int64_t x, v.As<int64_t>());
      if (x < 1 || x > (int64_t{1} << 40)) {
        return InvalidArgumentError("sync.releases.max_bundle_bytes must be 1 to 2^40");
      }
      releases.max_bundle_bytes = static_cast<uint64_t>(x);
    } else {
      return InvalidArgumentError("unknown key \"" + key + "\" in sync.releases");
    }
  }
  if (releases.state_dir.empty()) {
    return InvalidArgumentError("sync.releases.state_dir is required: the site's installer state");
  }
  return Status();
}

// The `sync:` section (see edge_config.h).
Status ParseSyncSection(const yaml::Node& node, EdgeSyncConfig& sync) {
  if (!node.IsMap()) return InvalidArgumentError("sync must be a map");
  sync.enabled = true;
  auto positive = [](const yaml::Node& v, std::string_view key, int64_t min,
                     int64_t max) -> Result<int64_t> {
    OUTPOST_ASSIGN_OR_RETURN(int64_t x, v.As<int64_t>());
    if (x < min || x > max) {
      return InvalidArgumentError("sync." + std::string(key) + " must be " + std::to_string(min) +
                                  " to " + std::to_string(max));
    }
    return x;
  };
  for (const auto& kv : node.entries()) {
    OUTPOST_ASSIGN_OR_RETURN(std::string key, kv.first.As<std::string>());
    const yaml::Node& v = kv.second;
    if (key == "hub_url") {
      OUTPOST_RETURN_IF_ERROR(ReadOptionalString(v, sync.hub_url));
    } else if (key == "credentials_dir") {
      OUTPOST_RETURN_IF_ERROR(ReadOptionalString(v, sync.credentials_dir));
    } else if (key == "policy_file") {
      OUTPOST_RETURN_IF_ERROR(ReadOptionalString(v, sync.policy_file));
    } else if (key == "hash_key_file") {
      OUTPOST_RETURN_IF_ERROR(ReadOptionalString(v, sync.hash_key_file));
    } else if (key == "bandwidth_bytes_per_s") {
      OUTPOST_ASSIGN_OR_RETURN(int64_t x, positive(v, key, 0, int64_t{1} << 40));
      sync.bandwidth_bytes_per_s = static_cast<uint64_t>(x);
    } else if (key == "batch_max_records") {
      OUTPOST_ASSIGN_OR_RETURN(int64_t x, positive(v, key, 1, 10'000));
      sync.batch_max_records = static_cast<uint64_t>(x);
    } else if (key == "batch_max_bytes") {
      OUTPOST_ASSIGN_OR_RETURN(int64_t x, positive(v, key, 1024, int64_t{8} << 20));
      sync.batch_max_bytes = static_cast<uint64_t>(x);
    } else if (key == "lease_seconds") {
      OUTPOST_ASSIGN_OR_RETURN(sync.lease_seconds, positive(v, key, 1, 86'400));
    } else if (key == "backoff_initial_ms") {
      OUTPOST_ASSIGN_OR_RETURN(sync.backoff_initial_ms, positive(v, key, 1, 3'600'000));
    } else if (key == "backoff_max_ms") {
      OUTPOST_ASSIGN_OR_RETURN(sync.backoff_max_ms, positive(v, key, 1, 86'400'000));
    } else if (key == "status_interval_s") {
      OUTPOST_ASSIGN_OR_RETURN(sync.status_interval_s, positive(v, key, 0, 86'400));
    } else if (key == "request_timeout_ms") {
      OUTPOST_ASSIGN_OR_RETURN(sync.request_timeout_ms, positive(v, key, 100, 600'000));
    } else if (key == "encrypt_exports") {
      OUTPOST_ASSIGN_OR_RETURN(sync.encrypt_exports, v.As<bool>());
    } else if (key == "releases") {
      OUTPOST_RETURN_IF_ERROR(ParseReleasesSection(v, sync.releases));
    } else {
      return InvalidArgumentError("unknown key \"" + key + "\" in sync");
    }
  }
  if (sync.backoff_max_ms < sync.backoff_initial_ms) {
    return InvalidArgumentError("sync.backoff_max_ms must be >= sync.backoff_initial_ms");
  }
  if (sync.policy_file.empty()) {
    return InvalidArgumentError("sync.policy_file is required: records leave only under a policy");
  }
  return Status();
}

// A list of strings.
Status ReadStringList(const yaml::Node& v, std::string_view what, std::vector<std::string>& out) {
  if (!v.IsSequence()) return InvalidArgumentError(std::string(what) + " must be a list");
  out.clear();
  for (const auto& item : v.items()) {
    OUTPOST_ASSIGN_OR_RETURN(std::string text, item.As<std::string>());
    out.push_back(std::move(text));
  }
  return Status();
}

// The `tls:` section.
Status ParseTlsSection(const yaml::Node& node, EdgeTlsConfig& tls) {
  if (!node.IsMap()) return InvalidArgumentError("tls must be a map");
  tls.enabled = true;
  for (const auto& kv : node.entries()) {
    OUTPOST_ASSIGN_OR_RETURN(std::string key, kv.first.As<std::string>());
    const yaml::Node& v = kv.second;
    if (key == "cert_file") {
      OUTPOST_RETURN_IF_ERROR(ReadOptionalString(v, tls.cert_file));
    } else if (key == "key_file") {
      OUTPOST_RETURN_IF_ERROR(ReadOptionalString(v, tls.key_file));
    } else if (key == "site_certificate") {
      OUTPOST_ASSIGN_OR_RETURN(tls.site_certificate, v.As<bool>());
    } else if (key == "client_ca_file") {
      OUTPOST_RETURN_IF_ERROR(ReadOptionalString(v, tls.client_ca_file));
    } else if (key == "client_crl_file") {
      OUTPOST_RETURN_IF_ERROR(ReadOptionalString(v, tls.client_crl_file));
    } else {
      return InvalidArgumentError("unknown key \"" + key + "\" in tls");
    }
  }
  if (tls.site_certificate != (tls.cert_file.empty() && tls.key_file.empty())) {
    return InvalidArgumentError(
        "tls needs either cert_file and key_file, or site_certificate: true");
  }
  if (!tls.site_certificate && (tls.cert_file.empty() || tls.key_file.empty())) {
    return InvalidArgumentError("tls.cert_file and tls.key_file go together");
  }
  if (tls.client_ca_file.empty() && !tls.client_crl_file.empty()) {
    return InvalidArgumentError("tls.client_crl_file needs tls.client_ca_file");
  }
  return Status();
}

// The `auth:` section.
Status ParseAuthSection(const yaml::Node& node, EdgeAuthConfig& auth) {
  if (!node.IsMap()) return InvalidArgumentError("auth must be a map");
  for (const auto& kv : node.entries()) {
    OUTPOST_ASSIGN_OR_RETURN(std::string key, kv.first.As<std::string>());
    const yaml::Node& v = kv.second;
    if (key == "credentials_file") {
      OUTPOST_RETURN_IF_ERROR(ReadOptionalString(v, auth.credentials_file));
    } else if (key == "raw_read_roles") {
      OUTPOST_RETURN_IF_ERROR(ReadStringList(v, "auth.raw_read_roles", auth.raw_read_roles));
    } else if (key == "allowed_hosts") {
      OUTPOST_RETURN_IF_ERROR(ReadStringList(v, "auth.allowed_hosts", auth.allowed_hosts));
    } else if (key == "model_control") {
      OUTPOST_ASSIGN_OR_RETURN(auth.model_control, v.As<bool>());
    } else if (key == "feedback_per_second" || key == "feedback_burst") {
      OUTPOST_ASSIGN_OR_RETURN(double x, v.As<double>());
      if (!(x > 0 && x <= 1e6)) {
        return InvalidArgumentError("auth." + key + " must be > 0 and at most 1000000");
      }
      (key == "feedback_burst" ? auth.feedback_burst : auth.feedback_per_second) = x;
    } else {
      return InvalidArgumentError("unknown key \"" + key + "\" in auth");
    }
  }
  return Status();
}

// The `limits:` section.
Status ParseLimits(const yaml::Node& limits, EdgeConfig& config) {
  if (!limits.IsMap()) return InvalidArgumentError("limits must be a map");
  for (const auto& kv : limits.entries()) {
    OUTPOST_ASSIGN_OR_RETURN(std::string key, kv.first.As<std::string>());
    if (key == "max_body_bytes") {
      OUTPOST_ASSIGN_OR_RETURN(config.max_body_bytes, kv.second.As<uint64_t>());
    } else if (key == "max_elements") {
      OUTPOST_ASSIGN_OR_RETURN(config.max_elements, kv.second.As<uint64_t>());
    } else if (key == "max_json_depth") {
      OUTPOST_ASSIGN_OR_RETURN(config.max_json_depth, kv.second.As<int>());
      if (config.max_json_depth < 2 || config.max_json_depth > 1024) {
        return InvalidArgumentError("limits.max_json_depth must be 2 to 1024");
      }
    } else {
      return InvalidArgumentError("unknown key \"" + key + "\" in limits");
    }
  }
  if (config.max_body_bytes == 0) return InvalidArgumentError("limits.max_body_bytes must be > 0");
  return Status();
}

// The edge config's top-level map onto `config`.
Status ParseEdgeRoot(const yaml::Node& root, EdgeConfig& config) {
  static const std::set<std::string> kKeys = {
      "site_id",   "node_id",          "listen",           "grpc_listen", "model_repository",
      "threads",   "strict_readiness", "watch_repository", "limits",      "log_format",
      "log_level", "data_dir",         "outbox",           "sync",        "tls",
      "auth"};
  for (const auto& kv : root.entries()) {
    OUTPOST_ASSIGN_OR_RETURN(std::string key, kv.first.As<std::string>());
    if (!kKeys.count(key)) {
      return InvalidArgumentError("unknown key \"" + key + "\" in the edge config");
    }
  }
  if (root["site_id"]) {
    OUTPOST_ASSIGN_OR_RETURN(config.site_id, root["site_id"].As<std::string>());
    OUTPOST_RETURN_IF_ERROR(CheckName(kSiteIdRule, config.site_id).WithContext("site_id"));
  }
  if (root["node_id"]) {
    OUTPOST_ASSIGN_OR_RETURN(config.node_id, root["node_id"].As<std::string>());
    // Empty means the host name, checked when it is filled in.
    if (!config.node_id.empty()) {
      OUTPOST_RETURN_IF_ERROR(CheckName(kNodeIdRule, config.node_id).WithContext("node_id"));
    }
  }
  if (root["listen"]) {
    OUTPOST_ASSIGN_OR_RETURN(std::string listen, root["listen"].As<std::string>());
    OUTPOST_RETURN_IF_ERROR(ParseListen(listen, config));
  }
  if (yaml::Node node = root["grpc_listen"]) {
    // A bare `grpc_listen:` is YAML null: as "", no gRPC.
    std::string listen;
    OUTPOST_RETURN_IF_ERROR(ReadOptionalString(node, listen));
    OUTPOST_RETURN_IF_ERROR(ParseGrpcListen(listen, config));
  }
  if (root["model_repository"]) {
    OUTPOST_ASSIGN_OR_RETURN(config.model_repository, root["model_repository"].As<std::string>());
  }
  if (root["threads"]) {
    OUTPOST_ASSIGN_OR_RETURN(config.threads, root["threads"].As<int>());
    if (config.threads < 0 || config.threads > 1024) {
      return InvalidArgumentError("threads must be 0 (one per core) to 1024");
    }
  }
  if (root["strict_readiness"]) {
    OUTPOST_ASSIGN_OR_RETURN(config.strict_readiness, root["strict_readiness"].As<bool>());
  }
  if (root["watch_repository"]) {
    OUTPOST_ASSIGN_OR_RETURN(config.watch_repository, root["watch_repository"].As<bool>());
  }
  if (yaml::Node limits = root["limits"]) OUTPOST_RETURN_IF_ERROR(ParseLimits(limits, config));
  if (root["log_format"]) {
    OUTPOST_ASSIGN_OR_RETURN(config.log_format, root["log_format"].As<std::string>());
  }
  if (root["log_level"]) {
    OUTPOST_ASSIGN_OR_RETURN(config.log_level, root["log_level"].As<std::string>());
  }
  if (root["data_dir"]) {
    OUTPOST_ASSIGN_OR_RETURN(config.data_dir, root["data_dir"].As<std::string>());
    if (config.data_dir.empty()) return InvalidArgumentError("data_dir must not be empty");
  }
  if (yaml::Node outbox = root["outbox"]) {
    OUTPOST_RETURN_IF_ERROR(ParseOutboxSection(outbox, config.outbox));
  }
  if (yaml::Node sync = root["sync"]) {
    OUTPOST_RETURN_IF_ERROR(ParseSyncSection(sync, config.sync));
  }
  if (yaml::Node tls = root["tls"]) OUTPOST_RETURN_IF_ERROR(ParseTlsSection(tls, config.tls));
  if (yaml::Node auth = root["auth"]) OUTPOST_RETURN_IF_ERROR(ParseAuthSection(auth, config.auth));
  return Status();
}

}  // namespace

Status ParseListen(std::string_view listen, EdgeConfig& config) {
  config.listen_given = true;
  return ParseHostPort(listen, "listen", config.listen_address, config.listen_port);
}

Status ParseGrpcListen(std::string_view listen, EdgeConfig& config) {
  config.grpc_listen_given = true;
  config.grpc_enabled = !listen.empty();
  if (listen.empty()) return Status();
  return ParseHostPort(listen, "grpc_listen", config.grpc_listen_address, config.grpc_listen_port);
}

Status ResolveGrpcListen(EdgeConfig& config) {
  if (config.grpc_listen_given) return Status();
  if (config.listen_port == 65535) {
    return InvalidArgumentError(
        "the HTTP port is 65535, so gRPC cannot take the next one; set grpc_listen");
  }
  config.grpc_enabled = true;
  config.grpc_listen_address = config.listen_address;
  config.grpc_listen_port =
      config.listen_port == 0 ? 0 : static_cast<uint16_t>(config.listen_port + 1);
  return Status();
}

Result<EdgeConfig> ParseEdgeConfig(std::string_view yaml_text, EdgeConfig config) {
  Result<yaml::Node> root = yaml::Parse(yaml_text);
  if (!root.ok()) return yaml::WithYamlContext(root.status(), "edge config");
  if (root->IsNull()) return config;
  if (!root->IsMap()) return InvalidArgumentError("the edge config must be a map of keys");
  Status status = ParseEdgeRoot(*root, config);
  if (!status.ok()) return yaml::WithYamlContext(status, "edge config");
  return config;
}

}  // namespace outpost::apps
