// `outpost hub serve|site add|site revoke|import` (the hub) and `outpost enrol` (a site
// joining a hub). Formats and reason codes: hub/FORMAT.md.
//
// `outpost hub serve` prints "listening on https://HOST:PORT" (the site listener) and then
// "operator listening on http(s)://HOST:PORT" once both listen, and drains and exits 0 on
// SIGTERM or SIGINT.
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <climits>
#include <cstdio>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "base/clock.h"
#include "base/file.h"
#include "base/logging.h"
#include "base/names.h"
#include "base/yaml/yaml.h"
#include "hub/ca.h"
#include "hub/dashboard.h"
#include "hub/enrol.h"
#include "hub/import.h"
#include "hub/ingest.h"
#include "hub/lease.h"
#include "hub/operator_tokens.h"
#include "hub/release.h"
#include "hub/retention.h"
#include "hub/secrets.h"
#include "hub/server.h"
#include "hub/site_releases.h"
#include "hub/store.h"

namespace outpost::apps {
namespace {

struct HubFlags {
  std::string config_path;
  std::string data_dir;
  // The CA, server, receipt and export key files (hub/FORMAT.md section 1); empty: data_dir.
  // Hubs that share one database share this material (a Kubernetes Secret, mounted
  // read-only, may hold it).
  std::string ca_dir;
  std::string store_url;
  std::string store_url_file;  // the URL, password included (hub/FORMAT.md section 6)
  std::string listen = "127.0.0.1:8443";
  std::string operator_listen;
  std::vector<std::string> policies;  // [TENANT=]FILE
  std::string operator_tokens_file;   // hashes of the operators' tokens (hub/FORMAT.md §6)
  std::vector<std::string> server_names;
  std::string web_dir;
  uint64_t max_body_bytes = (uint64_t{16} << 20) + 4096;
  // Defaults as hub::HubServerOptions.
  size_t max_connections = 1024;
  size_t max_connections_per_address = 32;
  uint64_t max_buffered_bytes = uint64_t{256} << 20;
  int64_t first_request_timeout_s = 30;
  int64_t threads = 0;  // event-loop threads per listener; 0: one per core, at least 4
  // After SIGTERM, how long /readyz answers 503 while the listeners still serve.
  int64_t drain_delay_s = 0;
  std::string log_format = "text";
  std::string log_level = "info";
  std::vector<hub::RetrainConfig> retrain;  // the config's `retrain:` list
  // The scheduler lease's ttl (hub/STORE.md section 7): how long another hub waits to take
  // the scheduled work over from one that died.
  int64_t lease_ttl_s = 15;
  // Between two retention passes of the lease holder (hub/STORE.md section 8).
  int64_t retention_every_s = 600;
  std::optional<hub::RetentionPolicy> retention;  // the config's `retention:` map
  // The config's `insights.min_sites`: the dashboard's k-threshold (hub::DashboardOptions).
  int64_t insights_min_sites = 3;
  // The config's `site_groups:` (group -> sites): which releases sites fetch (hub/FORMAT.md
  // section 10).
  std::map<std::string, std::vector<std::string>> site_groups;
};

struct OperatorFlags {
  std::string tokens_file;
  std::string name;
  std::string tenant;
};

struct SiteFlags {
  std::string site;
  std::string tenant;
  std::string region;
  int64_t token_ttl_s = 24 * 3600;
  bool reissue = false;
};

Result<std::pair<std::string, uint16_t>> ParseHostPort(const std::string& text) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return InvalidArgumentError("\"" + text + "\" is not HOST:PORT");
  }
  std::string host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  unsigned port = 0;
  const char* begin = text.data() + colon + 1;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, port);
  if (ec != std::errc() || ptr != end || port > 65535) {
    return InvalidArgumentError("\"" + text + "\" has no valid port");
  }
  return std::make_pair(host, static_cast<uint16_t>(port));
}

std::string UrlHost(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

// The `release.rollout:` map of a `retrain:` entry (hub/FORMAT.md section 11); the values
// are checked by hub::ValidateRolloutPlan.
Status ParseRolloutPlan(const yaml::Node& v, hub::RolloutPlan& plan) {
  if (!v.IsMap()) return InvalidArgumentError("retrain.release.rollout must be a map");
  for (const auto& r : v.entries()) {
    OUTPOST_ASSIGN_OR_RETURN(const std::string name, r.first.As<std::string>());
    const yaml::Node& rv = r.second;
    if (name == "canary") {
      OUTPOST_ASSIGN_OR_RETURN(plan.canary, rv.AsStringList());
    } else if (name == "percent") {
      if (!rv.IsSequence())
        return InvalidArgumentError("retrain.release.rollout.percent is a list");
      plan.percent.clear();
      for (const yaml::Node& p : rv.items()) {
        OUTPOST_ASSIGN_OR_RETURN(int value, p.As<int>());
        plan.percent.push_back(value);
      }
    } else if (name == "soak_s") {
      OUTPOST_ASSIGN_OR_RETURN(plan.soak_s, rv.As<int64_t>());
    } else if (name == "max_error_rate_increase") {
      OUTPOST_ASSIGN_OR_RETURN(plan.max_error_rate_increase, rv.As<double>());
    } else if (name == "max_accuracy_drop") {
      OUTPOST_ASSIGN_OR_RETURN(plan.max_accuracy_drop, rv.As<double>());
    } else if (name == "min_requests") {
      OUTPOST_ASSIGN_OR_RETURN(plan.min_requests, rv.As<int64_t>());
    } else if (name == "min_labels") {
      OUTPOST_ASSIGN_OR_RETURN(plan.min_labels, rv.As<int64_t>());
    } else {
      return InvalidArgumentError("unknown key \"retrain.release.rollout." + name + "\"");
    }
  }
  return Status::Ok();
}

// The `release:` map of a `retrain:` entry.
Status ParseRetrainRelease(const yaml::Node& v, hub::RetrainConfig& c) {
  if (!v.IsMap()) return InvalidArgumentError("retrain.release must be a map");
  for (const auto& r : v.entries()) {
    OUTPOST_ASSIGN_OR_RETURN(const std::string name, r.first.As<std::string>());
    const yaml::Node& rv = r.second;
    if (name == "model_config") {
      OUTPOST_ASSIGN_OR_RETURN(c.release.model_config_path, rv.As<std::string>());
    } else if (name == "keys") {
      OUTPOST_ASSIGN_OR_RETURN(c.release.keys_dir, rv.As<std::string>());
    } else if (name == "sites") {
      OUTPOST_ASSIGN_OR_RETURN(c.release.sites, rv.AsStringList());
    } else if (name == "groups") {
      OUTPOST_ASSIGN_OR_RETURN(c.release.groups, rv.AsStringList());
    } else if (name == "expires_days") {
      OUTPOST_ASSIGN_OR_RETURN(c.release.expires_days, rv.As<int>());
    } else if (name == "shadow") {
      if (!rv.IsMap()) return InvalidArgumentError("retrain.release.shadow must be a map");
      OUTPOST_ASSIGN_OR_RETURN(c.release.shadow_yaml, yaml::Emit(rv));
    } else if (name == "rollout") {
      OUTPOST_RETURN_IF_ERROR(ParseRolloutPlan(rv, c.release.rollout));
    } else {
      return InvalidArgumentError("unknown key \"retrain.release." + name + "\"");
    }
  }
  return Status::Ok();
}

// One entry of the config's `retrain:` list (hub/FORMAT.md section 7). Unknown keys are
// refused; the scheduler checks the values (hub::ValidateRetrainConfig).
Result<hub::RetrainConfig> ParseRetrain(const yaml::Node& node) {
  if (!node.IsMap()) return InvalidArgumentError("each retrain entry must be a map");
  hub::RetrainConfig c;
  for (const auto& item : node.entries()) {
    OUTPOST_ASSIGN_OR_RETURN(const std::string key, item.first.As<std::string>());
    const yaml::Node& v = item.second;
    if (key == "model") {
      OUTPOST_ASSIGN_OR_RETURN(c.model, v.As<std::string>());
    } else if (key == "tenant") {
      OUTPOST_ASSIGN_OR_RETURN(c.tenant, v.As<std::string>());
    } else if (key == "train_config") {
      OUTPOST_ASSIGN_OR_RETURN(c.train_config, v.As<std::string>());
    } else if (key == "workers") {
      OUTPOST_ASSIGN_OR_RETURN(c.workers, v.As<int>());
    } else if (key == "every_s") {
      OUTPOST_ASSIGN_OR_RETURN(int64_t s, v.As<int64_t>());
      c.every = std::chrono::seconds(s);
    } else if (key == "min_new_labels") {
      OUTPOST_ASSIGN_OR_RETURN(c.min_new_labels, v.As<int64_t>());
    } else if (key == "check_every_s") {
      OUTPOST_ASSIGN_OR_RETURN(int64_t s, v.As<int64_t>());
      c.check_every = std::chrono::seconds(s);
    } else if (key == "auto_approve") {
      OUTPOST_ASSIGN_OR_RETURN(c.auto_approve, v.As<bool>());
    } else if (key == "release") {
      OUTPOST_RETURN_IF_ERROR(ParseRetrainRelease(v, c));
    } else {
      return InvalidArgumentError("unknown key \"retrain." + key + "\"");
    }
  }
  return c;
}

// "<a>=<b>" from the `a_key` and `b_key` strings of `entry` (a policy).
Result<std::string> JoinedPair(const yaml::Node& entry, const char* a_key, const char* b_key) {
  OUTPOST_ASSIGN_OR_RETURN(std::string a, entry[a_key].As<std::string>());
  OUTPOST_ASSIGN_OR_RETURN(std::string b, entry[b_key].As<std::string>());
  return a + "=" + b;
}

// The hub config's `limits:` map (a non-empty list there is the adapter's "invalid node").
Status ParseHubLimits(const yaml::Node& v, HubFlags& flags) {
  OUTPOST_ASSIGN_OR_RETURN(auto limits, v.MapEntries());
  for (const auto& limit : limits) {
    OUTPOST_ASSIGN_OR_RETURN(const std::string name, limit.first.As<std::string>());
    if (name == "max_body_bytes") {
      OUTPOST_ASSIGN_OR_RETURN(flags.max_body_bytes, limit.second.As<uint64_t>());
    } else if (name == "max_connections") {
      OUTPOST_ASSIGN_OR_RETURN(flags.max_connections, limit.second.As<uint64_t>());
    } else if (name == "max_connections_per_address") {
      OUTPOST_ASSIGN_OR_RETURN(flags.max_connections_per_address, limit.second.As<uint64_t>());
    } else if (name == "max_buffered_bytes") {
      OUTPOST_ASSIGN_OR_RETURN(flags.max_buffered_bytes, limit.second.As<uint64_t>());
    } else if (name == "threads") {
      OUTPOST_ASSIGN_OR_RETURN(flags.threads, limit.second.As<int64_t>());
      if (flags.threads < 0 || flags.threads > 256) {
        return InvalidArgumentError(flags.config_path + ": limits.threads must be 0 .. 256");
      }
    } else if (name == "drain_delay_s") {
      OUTPOST_ASSIGN_OR_RETURN(flags.drain_delay_s, limit.second.As<int64_t>());
      if (flags.drain_delay_s < 0 || flags.drain_delay_s > 300) {
        return InvalidArgumentError(flags.config_path + ": limits.drain_delay_s must be 0 .. 300");
      }
    } else if (name == "first_request_timeout_s") {
      OUTPOST_ASSIGN_OR_RETURN(flags.first_request_timeout_s, limit.second.As<int64_t>());
      if (flags.first_request_timeout_s < 1) {
        return InvalidArgumentError(flags.config_path +
                                    ": limits.first_request_timeout_s must be at least 1");
      }
    } else {
      return InvalidArgumentError(flags.config_path + ": unknown key \"limits." + name + "\"");
    }
  }
  return Status::Ok();
}

// The hub config's `scheduler:` map.
Status ParseHubScheduler(const yaml::Node& v, HubFlags& flags) {
  OUTPOST_ASSIGN_OR_RETURN(auto entries, v.MapEntries());
  for (const auto& entry : entries) {
    OUTPOST_ASSIGN_OR_RETURN(const std::string name, entry.first.As<std::string>());
    int64_t* value = nullptr;
    int64_t lo = 0, hi = 86400;
    if (name == "lease_ttl_s") {
      value = &flags.lease_ttl_s;
      lo = 1;
    } else if (name == "retention_every_s") {
      value = &flags.retention_every_s;
      lo = 60;
    } else {
      return InvalidArgumentError(flags.config_path + ": unknown key \"scheduler." + name + "\"");
    }
    Result<int64_t> seconds = entry.second.As<int64_t>();
    if (!seconds.ok() || *seconds < lo || *seconds > hi) {
      return ErrorWithReason(StatusCode::kInvalidArgument, "bad_scheduler",
                             flags.config_path + ": scheduler." + name + " must be " +
                                 std::to_string(lo) + " .. " + std::to_string(hi) + " seconds");
    }
    *value = *seconds;
  }
  return Status::Ok();
}

// The hub config's `insights:` map.
Status ParseHubInsights(const yaml::Node& v, HubFlags& flags) {
  OUTPOST_ASSIGN_OR_RETURN(auto entries, v.MapEntries());
  for (const auto& entry : entries) {
    OUTPOST_ASSIGN_OR_RETURN(const std::string name, entry.first.As<std::string>());
    if (name != "min_sites") {
      return InvalidArgumentError(flags.config_path + ": unknown key \"insights." + name + "\"");
    }
    Result<int64_t> min_sites = entry.second.As<int64_t>();
    flags.insights_min_sites = min_sites.ok() ? *min_sites : 0;
    if (flags.insights_min_sites < 1 || flags.insights_min_sites > 1'000'000) {
      return InvalidArgumentError(flags.config_path + ": insights.min_sites must be 1 .. 1000000");
    }
  }
  return Status::Ok();
}

// The `retention:` map (hub/FORMAT.md section 7): a kind or `default` to a duration.
Status ParseHubRetention(const yaml::Node& v, HubFlags& flags) {
  if (!v.IsMap()) return InvalidArgumentError(flags.config_path + ": retention must be a map");
  std::vector<std::pair<std::string, std::string>> entries;
  for (const auto& [k, d] : v.entries()) {
    OUTPOST_ASSIGN_OR_RETURN(std::string kind, k.As<std::string>());
    OUTPOST_ASSIGN_OR_RETURN(std::string duration, d.As<std::string>());
    entries.emplace_back(std::move(kind), std::move(duration));
  }
  Result<hub::RetentionPolicy> policy = hub::ParseRetentionPolicy(entries);
  if (!policy.ok()) return policy.status().WithContext(flags.config_path);
  flags.retention = std::move(*policy);
  return Status::Ok();
}

// The config's `site_groups:` map, group -> list of site ids (hub/FORMAT.md section 10).
Status ParseSiteGroups(const yaml::Node& v, HubFlags& flags) {
  if (!v.IsMap()) return InvalidArgumentError("site_groups must be a map of group -> sites");
  for (const auto& entry : v.entries()) {
    OUTPOST_ASSIGN_OR_RETURN(const std::string group, entry.first.As<std::string>());
    Result<std::vector<std::string>> sites = entry.second.AsStringList();
    if (!sites.ok()) return sites.status().WithContext("site_groups." + group);
    flags.site_groups[group] = std::move(*sites);
  }
  return hub::SiteReleases::ValidateSiteGroups(flags.site_groups);
}

// The hub config's top-level map onto `flags`, except where `given` says the command line set
// the value.
Status ParseHubConfigRoot(const yaml::Node& root, HubFlags& flags,
                          const std::function<bool(const char*)>& given) {
  for (const auto& item : root.entries()) {
    OUTPOST_ASSIGN_OR_RETURN(const std::string key, item.first.As<std::string>());
    const yaml::Node& v = item.second;
    auto set = [&](const char* flag, std::string& out) -> Status {
      if (given(flag)) return Status::Ok();
      OUTPOST_ASSIGN_OR_RETURN(out, v.As<std::string>());
      return Status::Ok();
    };
    // The store is the command line's when it names one either way.
    const bool store_given = given("--store") || given("--store-url-file");
    if (key == "data_dir") {
      OUTPOST_RETURN_IF_ERROR(set("--data-dir", flags.data_dir));
    } else if (key == "ca_dir") {
      OUTPOST_RETURN_IF_ERROR(set("--ca-dir", flags.ca_dir));
    } else if (key == "scheduler") {
      OUTPOST_RETURN_IF_ERROR(ParseHubScheduler(v, flags));
    } else if (key == "store" && !store_given) {
      OUTPOST_ASSIGN_OR_RETURN(flags.store_url, v.As<std::string>());
    } else if (key == "store_url_file" && !store_given) {
      OUTPOST_ASSIGN_OR_RETURN(flags.store_url_file, v.As<std::string>());
    } else if ((key == "store" || key == "store_url_file") && store_given) {
      continue;
    } else if (key == "operator_tokens_file") {
      OUTPOST_RETURN_IF_ERROR(set("--operator-tokens-file", flags.operator_tokens_file));
    } else if (key == "listen") {
      OUTPOST_RETURN_IF_ERROR(set("--listen", flags.listen));
    } else if (key == "operator_listen") {
      OUTPOST_RETURN_IF_ERROR(set("--operator-listen", flags.operator_listen));
    } else if (key == "web_dir") {
      OUTPOST_RETURN_IF_ERROR(set("--web-dir", flags.web_dir));
    } else if (key == "server_names") {
      OUTPOST_ASSIGN_OR_RETURN(auto names, v.ListItems());
      for (const auto& n : names) {
        OUTPOST_ASSIGN_OR_RETURN(std::string name, n.As<std::string>());
        flags.server_names.push_back(std::move(name));
      }
    } else if (key == "operators") {
      return InvalidArgumentError(
          flags.config_path +
          ": operators: held tokens in the clear and is no longer read; make each operator's "
          "token with `outpost hub operator add --tokens-file FILE` and name FILE in "
          "operator_tokens_file: (hub/FORMAT.md section 6)");
    } else if (key == "policies") {
      OUTPOST_ASSIGN_OR_RETURN(auto policies, v.ListItems());
      for (const auto& p : policies) {
        OUTPOST_ASSIGN_OR_RETURN(std::string policy, JoinedPair(p, "tenant", "file"));
        flags.policies.push_back(std::move(policy));
      }
    } else if (key == "retrain") {
      if (!v.IsSequence()) {
        return InvalidArgumentError(flags.config_path + ": retrain must be a list");
      }
      for (const auto& entry : v.items()) {
        Result<hub::RetrainConfig> c = ParseRetrain(entry);
        if (!c.ok()) {
          // Either way the message reads "<config path>: ...".
          if (c.status().reason() == yaml::kErrorReason) return c.status();
          return c.status().WithContext(flags.config_path);
        }
        flags.retrain.push_back(std::move(*c));
      }
    } else if (key == "limits") {
      OUTPOST_RETURN_IF_ERROR(ParseHubLimits(v, flags));
    } else if (key == "retention") {
      OUTPOST_RETURN_IF_ERROR(ParseHubRetention(v, flags));
    } else if (key == "insights") {
      OUTPOST_RETURN_IF_ERROR(ParseHubInsights(v, flags));
    } else if (key == "site_groups") {
      OUTPOST_RETURN_IF_ERROR(ParseSiteGroups(v, flags));
    } else {
      return InvalidArgumentError(flags.config_path + ": unknown key \"" + key + "\"");
    }
  }
  // Each release's groups, resolved: the sites its rollout draws waves from. A canary site
  // must be one of them.
  for (hub::RetrainConfig& c : flags.retrain) {
    std::set<std::string> sites(c.release.sites.begin(), c.release.sites.end());
    for (const std::string& group : c.release.groups) {
      auto members = flags.site_groups.find(group);
      if (members == flags.site_groups.end()) continue;
      c.release.group_sites[group] = members->second;
      sites.insert(members->second.begin(), members->second.end());
    }
    for (const std::string& canary : c.release.rollout.canary) {
      if (!sites.contains(canary)) {
        return InvalidArgumentError("retrain " + c.model + ": release.rollout.canary names " +
                                    canary +
                                    ", which is not among release.sites or the sites "
                                    "of release.groups");
      }
    }
  }
  return Status::Ok();
}

// Reads the hub config (hub/FORMAT.md section 7) into `flags`; flags given on the command
// line (recorded in `given`) win.
Status LoadHubConfig(HubFlags& flags, const CLI::App& cmd) {
  if (flags.config_path.empty()) return Status::Ok();
  OUTPOST_ASSIGN_OR_RETURN(std::string text, ReadFile(flags.config_path, 1 << 20));
  auto given = [&](const char* name) { return cmd.count(name) > 0; };
  Result<yaml::Node> root = yaml::Parse(text);
  if (!root.ok()) return yaml::WithYamlContext(root.status(), flags.config_path);
  if (!root->IsMap()) return InvalidArgumentError(flags.config_path + ": not a YAML mapping");
  return yaml::WithYamlContext(ParseHubConfigRoot(*root, flags, given), flags.config_path);
}

// Creates the data folder and settles the store's URL (hub/secrets.h's ResolveStoreUrl: a
// password never on the command line or in the config; the default store in the folder).
Status PrepareDataDir(HubFlags& flags) {
  if (flags.data_dir.empty()) return InvalidArgumentError("--data-dir (or data_dir:) is required");
  OUTPOST_ASSIGN_OR_RETURN(
      flags.store_url,
      hub::ResolveStoreUrl({.url = flags.store_url,
                            .url_file = flags.store_url_file,
                            .url_flag = "--store (or the config's store:)",
                            .fallback = "sqlite:" + JoinPath(flags.data_dir, "hub.db")}));
  flags.store_url_file.clear();
  OUTPOST_RETURN_IF_ERROR(MakeDirectories(flags.data_dir).WithContext("data_dir"));
  ::chmod(flags.data_dir.c_str(), 0700);
  if (flags.ca_dir.empty()) {
    flags.ca_dir = flags.data_dir;
  } else if (!PathExists(flags.ca_dir)) {
    // The first hub of several creates the material the others are given.
    OUTPOST_RETURN_IF_ERROR(MakeDirectories(flags.ca_dir).WithContext("ca_dir"));
    ::chmod(flags.ca_dir.c_str(), 0700);
  }
  return Status::Ok();
}

Result<std::string> SelfExecutable() {
  char path[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return InternalError("cannot find this program's path (/proc/self/exe)");
  return std::string(path, static_cast<size_t>(n));
}

Result<std::unique_ptr<hub::Store>> OpenHubStore(const std::string& url) {
  Result<std::unique_ptr<hub::Store>> store = hub::OpenStore(url);
  if (!store.ok()) return store.status().WithContext("store");
  return store;
}

// --policy [TENANT=]FILE as (tenant, file) pairs; "*" where no tenant is named.
std::vector<std::pair<std::string, std::string>> PolicyFiles(const HubFlags& flags) {
  std::vector<std::pair<std::string, std::string>> policy_files;
  for (const std::string& p : flags.policies) {
    size_t eq = p.find('=');
    if (eq == std::string::npos) {
      policy_files.emplace_back("*", p);
    } else {
      policy_files.emplace_back(p.substr(0, eq), p.substr(eq + 1));
    }
  }
  return policy_files;
}

// Reads the operator tokens file into `options` (hub/FORMAT.md section 6); without one, the
// operator listener serves its assets to anyone and its API to no one, which is logged.
Status AddOperatorTokens(const HubFlags& flags, hub::HubServiceOptions& options) {
  if (flags.operator_tokens_file.empty()) {
    if (!flags.operator_listen.empty()) {
      OUTPOST_LOG(kWarning) << "no --operator-tokens-file: no operator can use the dashboard's "
                               "API; make a token with `outpost hub operator add`";
    }
    return Status::Ok();
  }
  OUTPOST_ASSIGN_OR_RETURN(options.operator_tokens,
                           hub::LoadOperatorTokens(flags.operator_tokens_file));
  OUTPOST_LOG(kInfo) << "operator tokens loaded" << Field("file", flags.operator_tokens_file)
                     << Field("operators", options.operator_tokens.entries.size());
  return Status::Ok();
}

// Takes part in the scheduler lease (hub/STORE.md section 7), with the config's ttl, unless
// `lease` is this hub's already.
Status JoinSchedulerLease(const HubFlags& flags, hub::Store& store,
                          std::unique_ptr<hub::SchedulerLease>& lease) {
  if (lease) return Status::Ok();
  OUTPOST_ASSIGN_OR_RETURN(
      lease, hub::SchedulerLease::Start(store, {.ttl = std::chrono::seconds(flags.lease_ttl_s)}));
  return Status::Ok();
}

// The retraining schedule and the registry's operator API (hub/release.h), started when the
// config has a `retrain:` list (else nullptr). Its jobs start only while this hub holds the
// scheduler lease (hub/STORE.md section 7), which `lease` is set to take, so that of the hubs
// sharing one store one runs them; each operator action on the registry goes to `audit_log`
// (hub/FORMAT.md section 1). `store` and `audit_log` must outlive both, and `lease` the
// scheduler.
Result<std::unique_ptr<hub::RetrainScheduler>> StartRetraining(
    const HubFlags& flags, hub::Store& store, std::unique_ptr<hub::SchedulerLease>& lease,
    hub::HubAuditLog& audit_log) {
  std::unique_ptr<hub::RetrainScheduler> scheduler;
  if (flags.retrain.empty()) return scheduler;
  OUTPOST_ASSIGN_OR_RETURN(std::string self, SelfExecutable());
  OUTPOST_RETURN_IF_ERROR(JoinSchedulerLease(flags, store, lease));
  OUTPOST_ASSIGN_OR_RETURN(
      scheduler, hub::RetrainScheduler::Start(store, {.self = self,
                                                      .store_url = flags.store_url,
                                                      .data_dir = flags.data_dir,
                                                      .models = flags.retrain,
                                                      .lease = lease.get(),
                                                      .audit = [&audit_log](std::string_view line) {
                                                        return audit_log.AppendLine(line);
                                                      }}));
  return scheduler;
}

// Retention (hub/STORE.md section 8), started when the config has a `retention:` map (else
// nullptr): passes run only while this hub holds the scheduler lease, which `lease` is set to
// take when retraining did not already. Refused with a SQLite store (retention_unsupported),
// which keeps every record. `store` must outlive both, and `lease` the runner.
Result<std::unique_ptr<hub::RetentionRunner>> StartRetention(
    const HubFlags& flags, hub::Store& store, std::unique_ptr<hub::SchedulerLease>& lease) {
  std::unique_ptr<hub::RetentionRunner> runner;
  if (!flags.retention) return runner;
  if (store.engine() != "postgresql") {
    return ErrorWithReason(StatusCode::kFailedPrecondition, "retention_unsupported",
                           flags.config_path + ": retention: needs a PostgreSQL store; the " +
                               std::string(store.engine()) +
                               " store keeps every record (hub/STORE.md section 8)");
  }
  OUTPOST_RETURN_IF_ERROR(JoinSchedulerLease(flags, store, lease));
  OUTPOST_ASSIGN_OR_RETURN(
      runner, hub::RetentionRunner::Start(store, *lease,
                                          {.policy = *flags.retention,
                                           .export_dir = JoinPath(flags.data_dir, "retention"),
                                           .every = std::chrono::seconds(flags.retention_every_s)}));
  return runner;
}

// Starts both listeners (the site one with mutual TLS under `ca`) in front of `service`,
// which must outlive the server.
Result<std::unique_ptr<hub::HubServer>> StartHubServer(
    const HubFlags& flags, const hub::HubCa& ca, hub::HubService& service,
    const std::pair<std::string, uint16_t>& site_listen,
    const std::pair<std::string, uint16_t>& operator_listen) {
  hub::HubServerOptions server_options{
      .site_address = site_listen.first,
      .site_port = site_listen.second,
      .operator_address = operator_listen.first,
      .operator_port = operator_listen.second,
      .ca_cert_path = ca.ca_path(),
      .server_cert_path = ca.server_cert_path(),
      .server_key_path = ca.server_key_path(),
      .max_body_bytes = flags.max_body_bytes,
      .max_connections = flags.max_connections,
      .max_connections_per_address = flags.max_connections_per_address,
      .max_buffered_bytes = flags.max_buffered_bytes,
      .first_request_timeout = std::chrono::seconds(flags.first_request_timeout_s),
      .threads = static_cast<int>(flags.threads)};
  return hub::HubServer::Start(
      server_options,
      [&service](const hub::HubRequest& r, const hub::PeerCredential& p) {
        return service.HandleSite(r, p);
      },
      [&service](const hub::HubRequest& r) { return service.HandleOperator(r); });
}

// Logs that the hub serves, and prints the "listening on" lines (the operator's when it has
// a listener).
void AnnounceHubServing(const hub::Store& store, const hub::HubCa& ca, const hub::HubServer& server,
                        const std::pair<std::string, uint16_t>& site_listen,
                        const std::pair<std::string, uint16_t>& operator_listen) {
  OUTPOST_LOG(kInfo) << "outpost hub serving" << Field("store", store.engine())
                     << Field("site_port", server.site_port())
                     << Field("operator_port", server.operator_port())
                     << Field("ca_fingerprint", ca.fingerprint());
  std::printf("listening on https://%s:%u\n", UrlHost(site_listen.first).c_str(),
              static_cast<unsigned>(server.site_port()));
  if (!operator_listen.first.empty()) {
    std::printf("operator listening on %s://%s:%u\n", server.operator_tls() ? "https" : "http",
                UrlHost(operator_listen.first).c_str(),
                static_cast<unsigned>(server.operator_port()));
  }
  std::fflush(stdout);
}

Status RunHubServe(HubFlags flags, const CLI::App& cmd) {
  OUTPOST_RETURN_IF_ERROR(LoadHubConfig(flags, cmd));
  OUTPOST_ASSIGN_OR_RETURN(LogFormat format, ParseLogFormat(flags.log_format));
  OUTPOST_ASSIGN_OR_RETURN(LogLevel level, ParseLogLevel(flags.log_level));
  SetLogOptions({.format = format, .min_level = level});
  // SIGTERM and SIGINT are taken by sigwait below; blocked before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  OUTPOST_RETURN_IF_ERROR(PrepareDataDir(flags));
  OUTPOST_ASSIGN_OR_RETURN(auto site_listen, ParseHostPort(flags.listen));
  std::pair<std::string, uint16_t> operator_listen;
  if (!flags.operator_listen.empty()) {
    OUTPOST_ASSIGN_OR_RETURN(operator_listen, ParseHostPort(flags.operator_listen));
  }
  std::vector<std::string> names = flags.server_names;
  names.push_back(site_listen.first);
  if (!operator_listen.first.empty()) names.push_back(operator_listen.first);
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<hub::HubCa> ca,
                           hub::HubCa::OpenOrCreate(flags.ca_dir, names));
  // From here on everything the hub creates (its store, spool, training runs) is its owner's
  // alone (0600, folders 0700) whatever the shell's umask. Set after the CA, whose public
  // certificates keep their documented 0644 (hub/FORMAT.md); its keys are 0600 anyway.
  ::umask(077);
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<hub::Store> store, OpenHubStore(flags.store_url));

  OUTPOST_ASSIGN_OR_RETURN(hub::PolicySet policies, hub::PolicySet::Load(PolicyFiles(flags)));
  OUTPOST_ASSIGN_OR_RETURN(
      std::unique_ptr<hub::HubAuditLog> audit_log,
      hub::HubAuditLog::Open(JoinPath(flags.data_dir, "audit.log"), store.get()));

  hub::HubServiceOptions service_options;
  service_options.limits.max_encoded_bytes = flags.max_body_bytes;
  OUTPOST_RETURN_IF_ERROR(AddOperatorTokens(flags, service_options));
  auto dashboard = std::make_unique<hub::Dashboard>(
      store.get(), flags.web_dir.empty() ? hub::DefaultAssetsDir() : flags.web_dir,
      hub::DashboardOptions{.min_fleet_sites = static_cast<size_t>(flags.insights_min_sites)});
  std::unique_ptr<hub::SchedulerLease> lease;
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<hub::RetrainScheduler> scheduler,
                           StartRetraining(flags, *store, lease, *audit_log));
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<hub::RetentionRunner> retention,
                           StartRetention(flags, *store, lease));
  // Rollouts in waves (hub/FORMAT.md section 11): advanced only while this hub holds the
  // scheduler lease where it takes one.
  OUTPOST_ASSIGN_OR_RETURN(
      std::unique_ptr<hub::RolloutController> rollouts,
      hub::RolloutController::Start(
          *store, {.lease = lease.get(), .audit = [&audit_log](std::string_view line) {
                     return audit_log->AppendLine(line);
                   }}));
  // The operator listener's routes: the registry's under /api/v1/models, the rollouts'
  // under /api/v1/rollouts, the dashboard's API and assets everywhere else (the longer
  // prefix wins).
  service_options.operator_routes = [d = dashboard.get(), s = scheduler.get(),
                                     r = rollouts.get()](http::Router& router) {
    if (s != nullptr) s->RegisterRoutes(router);
    r->RegisterRoutes(router);
    d->RegisterRoutes(router);
  };
  // The releases sites fetch over their link (hub/FORMAT.md section 10), as their rollouts
  // offer them.
  auto site_releases = std::make_unique<hub::SiteReleases>(hub::SiteReleases::Options{
      .bundles_dir = JoinPath(flags.data_dir, "bundles"),
      .store = store.get(),
      .site_groups = flags.site_groups,
      .offer = [r = rollouts.get()](const hub::SiteRelease& release, std::string_view site) {
        return r->Offer(release.model, static_cast<int64_t>(release.model_version), release.version,
                        site);
      }});
  service_options.site_routes = [r = site_releases.get()](http::Router& router) {
    r->RegisterRoutes(router);
  };
  hub::Enrolment enrolment(*store, *ca);
  hub::HubService service(*store, enrolment, policies, audit_log.get(), std::move(service_options));
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<hub::HubServer> server,
                           StartHubServer(flags, *ca, service, site_listen, operator_listen));
  AnnounceHubServing(*store, *ca, *server, site_listen, operator_listen);
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  // Not ready first, still serving (hub/FORMAT.md section 6, "Shutting down"): a load
  // balancer sends new requests elsewhere, requests in progress finish. A second signal
  // ends the delay.
  service.StopBeingReady();
  if (flags.drain_delay_s > 0) {
    OUTPOST_LOG(kInfo) << "draining: /readyz answers 503, requests are still served"
                       << Field("signal", signal_number == SIGTERM ? "SIGTERM" : "SIGINT")
                       << Field("delay_s", flags.drain_delay_s);
    const timespec delay{.tv_sec = static_cast<time_t>(flags.drain_delay_s), .tv_nsec = 0};
    while (sigtimedwait(&signals, nullptr, &delay) < 0 && errno == EINTR) {
    }
  }
  OUTPOST_LOG(kInfo) << "shutting down: requests in progress finish, new ones are refused"
                     << Field("signal", signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
  server->Stop();
  // After the listeners: no request reaches the scheduler any more. A running `outpost
  // train` child is stopped (SIGTERM); the lease's next holder (another hub, or this one
  // after a restart) finishes its job (hub/FORMAT.md section 8, "The job in progress").
  if (scheduler) scheduler->Stop();
  rollouts->Stop();
  if (retention) retention->Stop();
  // Then the lease is let go: another hub takes over the scheduled work at its next ask.
  if (lease) lease->Stop();
  return Status::Ok();
}

Status RunSiteAdd(HubFlags flags, const SiteFlags& site) {
  OUTPOST_RETURN_IF_ERROR(PrepareDataDir(flags));
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<hub::HubCa> ca,
                           hub::HubCa::OpenOrCreate(flags.ca_dir, flags.server_names));
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<hub::Store> store, OpenHubStore(flags.store_url));
  hub::Enrolment enrolment(*store, *ca);
  OUTPOST_ASSIGN_OR_RETURN(std::string token,
                           enrolment.AddSite(site.site, site.tenant, site.region,
                                             std::chrono::seconds(site.token_ttl_s), site.reissue));
  std::printf("%s\n", token.c_str());
  return Status::Ok();
}

// `outpost hub operator add`: the new token on stdout, once; only its hash is kept.
Status RunOperatorAdd(const OperatorFlags& op) {
  OUTPOST_ASSIGN_OR_RETURN(std::string token,
                           hub::AddOperatorToken(op.tokens_file, op.name, op.tenant));
  std::printf("%s\n", token.c_str());
  std::fflush(stdout);
  std::fprintf(stderr,
               "added operator %s of tenant %s to %s; the token above is shown only this once\n",
               op.name.c_str(), op.tenant.c_str(), op.tokens_file.c_str());
  return Status::Ok();
}

// `outpost hub operator add --tokens-file F --name N --tenant T`.
void AddOperatorCommand(CLI::App& hub, Action& run) {
  CLI::App* op = hub.add_subcommand("operator", "Manage the operators of the dashboard and API");
  op->require_subcommand(1);
  auto flags = std::make_shared<OperatorFlags>();
  CLI::App* add = op->add_subcommand(
      "add", "Add an operator and print its token once (the file keeps only its hash)");
  add->add_option("--tokens-file", flags->tokens_file,
                  "The operator tokens file (created 0600; hub serve --operator-tokens-file)")
      ->required();
  add->add_option("--name", flags->name, "The operator's name, as logs show it")->required();
  add->add_option("--tenant", flags->tenant, "The tenant whose sites the operator sees")
      ->required();
  add->callback([flags, &run] { run = [flags] { return RunOperatorAdd(*flags); }; });
}

Status RunSiteRevoke(HubFlags flags, const std::string& site_id) {
  OUTPOST_RETURN_IF_ERROR(SiteId::Parse(site_id).status().WithContext("--site"));
  OUTPOST_RETURN_IF_ERROR(PrepareDataDir(flags));
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<hub::Store> store, OpenHubStore(flags.store_url));
  OUTPOST_RETURN_IF_ERROR(store->GetSite(site_id).status());
  OUTPOST_RETURN_IF_ERROR(store->RevokeSite(site_id));
  std::printf("revoked %s\n", site_id.c_str());
  return Status::Ok();
}

void AddStoreFlags(CLI::App& cmd, HubFlags& flags) {
  cmd.add_option("--data-dir", flags.data_dir, "The hub's data folder (CA, keys, default store)");
  cmd.add_option("--ca-dir", flags.ca_dir,
                 "The folder of the CA and key files, when not the data folder (shared by the "
                 "hubs of one database; may be read-only once complete)");
  cmd.add_option("--store", flags.store_url,
                 "Store URL without a password: sqlite:PATH or postgresql://USER@HOST/DB "
                 "(default: OUTPOST_STORE_URL, else sqlite:<data-dir>/hub.db)");
  cmd.add_option("--store-url-file", flags.store_url_file,
                 "A file (0600) holding the store URL, password included");
}

}  // namespace

void AddHubCommand(CLI::App& app, Action& run) {
  CLI::App* hub = app.add_subcommand("hub", "The hub: ingestion, enrolment, import, dashboard");
  hub->require_subcommand(1);
  auto flags = std::make_shared<HubFlags>();

  CLI::App* serve = hub->add_subcommand("serve", "Serve sites (mTLS) and operators");
  serve->add_option("--config", flags->config_path, "Hub config YAML (hub/FORMAT.md)");
  AddStoreFlags(*serve, *flags);
  serve->add_option("--listen", flags->listen, "HOST:PORT for sites (mutual TLS)")
      ->capture_default_str();
  serve->add_option("--operator-listen", flags->operator_listen,
                    "HOST:PORT for operators and the dashboard (plain HTTP on loopback only)");
  serve->add_option("--policy", flags->policies,
                    "[TENANT=]FILE: the compliance policy for a tenant (no TENANT: every tenant)");
  serve->add_option("--operator-tokens-file", flags->operator_tokens_file,
                    "The operators' token hashes (`outpost hub operator add` writes it)");
  serve->add_option("--server-name", flags->server_names,
                    "Extra DNS name or IP for the TLS certificate when it is created");
  serve->add_option("--web-dir", flags->web_dir, "The dashboard's built assets");
  serve->add_option("--max-body-bytes", flags->max_body_bytes, "Largest request body");
  serve->add_option("--log-format", flags->log_format, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  serve->add_option("--log-level", flags->log_level, "debug, info, warning or error")
      ->check(CLI::IsMember({"debug", "info", "warning", "error"}));
  serve->callback(
      [flags, serve, &run] { run = [flags, serve] { return RunHubServe(*flags, *serve); }; });

  AddOperatorCommand(*hub, run);

  CLI::App* site = hub->add_subcommand("site", "Manage sites");
  site->require_subcommand(1);
  auto site_flags = std::make_shared<SiteFlags>();
  CLI::App* add = site->add_subcommand("add", "Create a site and print its one-time token");
  AddStoreFlags(*add, *flags);
  add->add_option("--site", site_flags->site, "Site id")->required();
  add->add_option("--tenant", site_flags->tenant, "Tenant")->required();
  add->add_option("--region", site_flags->region, "Region")->required();
  add->add_option("--token-ttl", site_flags->token_ttl_s, "Token lifetime in seconds")
      ->capture_default_str();
  add->add_flag("--reissue", site_flags->reissue, "A new token for an enrolled site");
  add->add_option("--server-name", flags->server_names,
                  "Extra DNS name or IP for the hub's TLS certificate when this creates it "
                  "(a CA folder made here for hubs elsewhere, such as a Kubernetes Secret)");
  add->callback([flags, site_flags, &run] {
    run = [flags, site_flags] { return RunSiteAdd(*flags, *site_flags); };
  });
  CLI::App* revoke = site->add_subcommand("revoke", "Revoke a site's credential");
  AddStoreFlags(*revoke, *flags);
  revoke->add_option("--site", site_flags->site, "Site id")->required();
  revoke->callback([flags, site_flags, &run] {
    run = [flags, site_flags] { return RunSiteRevoke(*flags, site_flags->site); };
  });

  auto import_flags = std::make_shared<std::pair<std::string, std::string>>();
  CLI::App* import_cmd = hub->add_subcommand("import", "Ingest an export file, write a receipt");
  AddStoreFlags(*import_cmd, *flags);
  import_cmd->add_option("--policy", flags->policies, "[TENANT=]FILE, as for serve");
  import_cmd->add_option("file", import_flags->first, "The export file")->required();
  import_cmd->add_option("--receipt", import_flags->second,
                         "Where the receipt goes (default FILE.receipt)");
  import_cmd->callback([flags, import_flags, &run] {
    run = [flags, import_flags]() -> Status {
      HubFlags f = *flags;
      OUTPOST_RETURN_IF_ERROR(PrepareDataDir(f));
      OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<hub::HubCa> ca,
                               hub::HubCa::OpenOrCreate(f.ca_dir, f.server_names));
      OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<hub::Store> store, OpenHubStore(f.store_url));
      OUTPOST_ASSIGN_OR_RETURN(hub::PolicySet policies, hub::PolicySet::Load(PolicyFiles(f)));
      OUTPOST_ASSIGN_OR_RETURN(
          std::unique_ptr<hub::HubAuditLog> audit_log,
          hub::HubAuditLog::Open(JoinPath(f.data_dir, "audit.log"), store.get()));
      hub::Enrolment enrolment(*store, *ca);
      hub::HubService service(*store, enrolment, policies, audit_log.get(), {});
      std::string receipt_path =
          import_flags->second.empty() ? import_flags->first + ".receipt" : import_flags->second;
      OUTPOST_ASSIGN_OR_RETURN(hub::ImportSummary summary,
                               hub::ImportExport(service, *ca, import_flags->first, receipt_path));
      std::printf(
          "imported %s%s: %zu batches (%zu stored, %zu duplicate), %llu records "
          "stored; receipt %s\n",
          import_flags->first.c_str(), summary.sealed ? " (sealed, opened)" : "", summary.batches,
          summary.batches_stored, summary.batches_duplicate,
          static_cast<unsigned long long>(summary.records_stored), receipt_path.c_str());
      return Status::Ok();
    };
  });

  // The site side: `outpost enrol`.
  auto enrol = std::make_shared<hub::EnrolSiteOptions>();
  CLI::App* enrol_cmd = app.add_subcommand("enrol", "Enrol this site with a hub (one-time token)");
  enrol_cmd->add_option("--hub", enrol->hub_url, "The hub's URL, https://HOST:PORT")->required();
  enrol_cmd->add_option("--token", enrol->token, "The token `outpost hub site add` printed")
      ->required();
  enrol_cmd->add_option("--site", enrol->site_id, "This site's id")->required();
  enrol_cmd->add_option("--credentials", enrol->credentials_dir, "Where the credential files go")
      ->required();
  enrol_cmd->add_flag("--force", enrol->force, "Replace existing credentials");
  enrol_cmd->callback([enrol, &run] {
    run = [enrol]() -> Status {
      OUTPOST_RETURN_IF_ERROR(hub::EnrolSite(*enrol));
      std::printf("enrolled %s; credentials in %s\n", enrol->site_id.c_str(),
                  enrol->credentials_dir.c_str());
      return Status::Ok();
    };
  });
}

}  // namespace outpost::apps
