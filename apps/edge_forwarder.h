// The forwarder of `outpost edge` (sync/forwarder.h), configured from the edge config's
// `sync:` section: credentials from <credentials_dir>, the hub from sync.hub_url or
// <credentials_dir>/hub.url, the policy from sync.policy_file, the hash key from
// sync.hash_key_file (created with 32 random bytes, mode 0600, when missing), state beside
// the outbox in data_dir.
#ifndef OUTPOST_APPS_EDGE_FORWARDER_H_
#define OUTPOST_APPS_EDGE_FORWARDER_H_

#include <memory>
#include <string>

#include "apps/edge_config.h"
#include "base/status.h"
#include "outbox/outbox.h"
#include "policy/policy.h"
#include "serve/repository.h"
#include "sync/forwarder.h"

namespace outpost::apps {

// The compliance policy records leave under, and the site secret of its hash rules: what the
// forwarder applies before an upload and GET /v1/records before it answers.
struct EdgePolicy {
  std::shared_ptr<const policy::Policy> policy;  // null without a `sync:` section
  std::string hash_key_secret;
};

// Reads sync.policy_file and the hash key (created when missing); an empty EdgePolicy when
// the config has no `sync:` section.
Result<EdgePolicy> LoadEdgePolicy(const EdgeConfig& config);

// Starts the forwarder when config.sync is enabled; null (and OK) when it is not. `outbox`
// and `repository` must outlive the forwarder: destroy it before closing the outbox.
// `bandwidth`: the link's cap, shared with the releases the edge fetches (null = the
// forwarder's own at sync.bandwidth_bytes_per_s). Errors name the file at fault (policy,
// credentials, hub URL, hash key).
Result<std::unique_ptr<sync::Forwarder>> StartEdgeForwarder(
    const EdgeConfig& config, outbox::Outbox* outbox, const serve::ModelRepository& repository,
    std::shared_ptr<sync::Bandwidth> bandwidth = nullptr);

// The hub's URL (sync.hub_url or <credentials_dir>/hub.url) and the site's credential files,
// as the forwarder and the release puller connect with them. The error of an unreadable
// hub.url.
Result<sync::HubClientOptions> EdgeHubConnection(const EdgeConfig& config);

// The site's credentials folder under `config` (sync.credentials_dir or
// <data_dir>/credentials).
std::string CredentialsDir(const EdgeConfig& config);

// The site secret of hash rules: the file's bytes, created with 32 random bytes (0600) when
// missing.
Result<std::string> LoadOrCreateHashKey(const std::string& path);

}  // namespace outpost::apps

#endif  // OUTPOST_APPS_EDGE_FORWARDER_H_
