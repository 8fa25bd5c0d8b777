#include "apps/edge_forwarder.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "base/file.h"
#include "base/json_writer.h"
#include "base/logging.h"
#include "bundle/bundle.h"
#include "policy/policy.h"
#include "serve/metrics.h"

namespace outpost::apps {

std::string CredentialsDir(const EdgeConfig& config) {
  return config.sync.credentials_dir.empty() ? JoinPath(config.data_dir, "credentials")
                                             : config.sync.credentials_dir;
}

Result<std::string> LoadOrCreateHashKey(const std::string& path) {
  if (!PathExists(path)) {
    std::string secret(32, '\0');
    int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoToStatus(errno, "open", "/dev/urandom");
    ssize_t n = ::read(fd, secret.data(), secret.size());
    ::close(fd);
    if (n != static_cast<ssize_t>(secret.size())) {
      return UnavailableError("cannot read 32 random bytes from /dev/urandom");
    }
    OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(path, secret, 0600));
  }
  return ReadFile(path, 4096);
}

Result<EdgePolicy> LoadEdgePolicy(const EdgeConfig& config) {
  const EdgeSyncConfig& s = config.sync;
  if (!s.enabled) return EdgePolicy{};
  OUTPOST_ASSIGN_OR_RETURN(std::string policy_text, ReadFile(s.policy_file, 1 << 20));
  Result<std::shared_ptr<const policy::Policy>> policy = policy::ParsePolicy(policy_text);
  if (!policy.ok()) return policy.status().WithContext("sync.policy_file " + s.policy_file);
  std::string key_path =
      s.hash_key_file.empty() ? JoinPath(CredentialsDir(config), "hash.key") : s.hash_key_file;
  Result<std::string> secret = LoadOrCreateHashKey(key_path);
  if (!secret.ok()) return secret.status().WithContext("sync hash key " + key_path);
  return EdgePolicy{.policy = std::move(*policy), .hash_key_secret = std::move(*secret)};
}

Result<sync::HubClientOptions> EdgeHubConnection(const EdgeConfig& config) {
  const EdgeSyncConfig& s = config.sync;
  std::string creds = CredentialsDir(config);
  std::string hub_url = s.hub_url;
  if (hub_url.empty()) {
    std::string url_file = JoinPath(creds, "hub.url");
    Result<std::string> text = ReadFile(url_file, 4096);
    if (!text.ok()) {
      return text.status().WithContext("sync: no hub_url and no " + url_file +
                                       " (run outpost enrol)");
    }
    hub_url = *text;
    while (!hub_url.empty() &&
           (hub_url.back() == '\n' || hub_url.back() == '\r' || hub_url.back() == ' ')) {
      hub_url.pop_back();
    }
  }
  return sync::HubClientOptions{.base_url = hub_url,
                                .cert_file = JoinPath(creds, "site.crt"),
                                .key_file = JoinPath(creds, "site.key"),
                                .ca_file = JoinPath(creds, "hub_ca.crt"),
                                .timeout = std::chrono::milliseconds(s.request_timeout_ms)};
}

Result<std::unique_ptr<sync::Forwarder>> StartEdgeForwarder(
    const EdgeConfig& config, outbox::Outbox* outbox, const serve::ModelRepository& repository,
    std::shared_ptr<sync::Bandwidth> bandwidth) {
  const EdgeSyncConfig& s = config.sync;
  if (!s.enabled) return std::unique_ptr<sync::Forwarder>();
  OUTPOST_ASSIGN_OR_RETURN(sync::HubClientOptions https, EdgeHubConnection(config));
  const std::string hub_url = https.base_url;
  OUTPOST_ASSIGN_OR_RETURN(EdgePolicy loaded, LoadEdgePolicy(config));

  sync::ForwarderOptions options;
  options.outbox = outbox;
  options.https = std::move(https);
  options.policy = std::move(loaded.policy);
  options.hash_key_secret = std::move(loaded.hash_key_secret);
  options.state_dir = config.data_dir;
  options.lease = {.max_records = s.batch_max_records,
                   .max_bytes = s.batch_max_bytes,
                   .duration = std::chrono::seconds(s.lease_seconds)};
  options.backoff_initial = std::chrono::milliseconds(s.backoff_initial_ms);
  options.backoff_max = std::chrono::milliseconds(s.backoff_max_ms);
  options.bandwidth_bytes_per_s = s.bandwidth_bytes_per_s;
  options.bandwidth = std::move(bandwidth);
  options.status_interval = std::chrono::seconds(s.status_interval_s);
  // The installed bundle version, known where the node installs releases (sync.releases).
  const std::string state_file = s.releases.enabled && !s.releases.state_dir.empty()
                                     ? JoinPath(s.releases.state_dir, "state.json")
                                     : std::string();
  options.models_json = [&repository, state_file] {
    uint64_t bundle_version = 0;
    if (!state_file.empty() && PathExists(state_file)) {
      Result<bundle::SiteState> state = bundle::LoadSiteState(state_file);
      if (state.ok()) bundle_version = state->installed_version;
    }
    std::string out;
    JsonWriter w(out);
    w.BeginArray();
    for (const auto& model : repository.Models()) {
      const int64_t shadow = model->config != nullptr ? model->config->shadow.version : 0;
      for (const serve::VersionStatus& v : model->versions) {
        w.BeginObject();
        w.Key("name");
        w.String(model->name);
        w.Key("version");
        w.Int(v.version);
        w.Key("state");
        w.String(serve::VersionStateName(v.state));
        // sync/FORMAT.md section 2: which version shadows, and the bundle installed.
        w.Key("role");
        w.String(shadow != 0 && v.version == shadow ? "shadow" : "serving");
        if (bundle_version != 0) {
          w.Key("bundle_version");
          w.Uint(bundle_version);
        }
        // What the version answered since this process loaded it: the rollout gates' error
        // rate (hub/FORMAT.md section 11).
        for (size_t i = 0; i < model->ready.size() && i < model->stats.size(); ++i) {
          if (model->ready[i].first != v.version || model->stats[i] == nullptr) continue;
          w.Key("requests_ok");
          w.Uint(model->stats[i]->success.count.load(std::memory_order_relaxed));
          w.Key("requests_failed");
          w.Uint(model->stats[i]->fail.count.load(std::memory_order_relaxed));
          w.Key("labelled");
          w.Uint(model->stats[i]->labelled.load(std::memory_order_relaxed));
          w.Key("correct");
          w.Uint(model->stats[i]->correct.load(std::memory_order_relaxed));
        }
        w.EndObject();
      }
    }
    w.EndArray();
    return out;
  };
  Result<std::unique_ptr<sync::Forwarder>> forwarder = sync::Forwarder::Start(std::move(options));
  if (!forwarder.ok()) return forwarder.status().WithContext("sync");
  OUTPOST_LOG(kInfo) << "forwarder started" << Field("hub", hub_url)
                     << Field("policy", s.policy_file);
  return forwarder;
}

}  // namespace outpost::apps
