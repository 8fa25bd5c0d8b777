// `outpost bundle push`: the OCI content of a bundle into an OCI registry inside the site, over
// the distribution API (HTTP, no TLS: a registry on the site's own network).
#ifndef OUTPOST_APPS_BUNDLE_PUSH_H_
#define OUTPOST_APPS_BUNDLE_PUSH_H_

#include <string>
#include <vector>

#include "base/status.h"
#include "bundle/bundle.h"

namespace outpost::apps {

struct PushResult {
  std::vector<std::string> pushed;  // "127.0.0.1:5000/outpost/models:pump-3", per model version
  std::string runtime;              // "127.0.0.1:5000/outpost/runtime@sha256:<hex>", or empty
};

// Pushes a verified bundle (its staging folder, every file of which the verifier checked
// against the signed targets) to `registry_url` ("http://host:port"): every target as a blob
// of `repository` (the models' repository, where an edge pod's init container fetches them
// by digest), each model version's manifest tagged with its ref name ("pump-3"), and, when
// the bundle carries the runtime image, that image into `runtime_repository` tagged
// "bundle-<version>" (pods pin it by digest). Blobs the registry has are skipped. Unavailable
// when the registry cannot be reached; FailedPrecondition with the registry's answer when it
// refuses.
Result<PushResult> PushVerified(const bundle::VerifiedBundle& bundle,
                                const std::string& registry_url, const std::string& repository,
                                const std::string& runtime_repository);

}  // namespace outpost::apps

#endif  // OUTPOST_APPS_BUNDLE_PUSH_H_
