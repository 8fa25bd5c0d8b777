// `outpost bundle push`: the OCI content of a bundle into an OCI registry inside the site, over
// the distribution API (HTTP, no TLS: a registry on the site's own network).
#ifndef OUTPOST_APPS_BUNDLE_PUSH_H_
#define OUTPOST_APPS_BUNDLE_PUSH_H_

#include <string>
#include <vector>

#include "base/status.h"

namespace outpost::apps {

// Pushes every blob of the bundle (skipping those the registry has), then one manifest per
// model version, tagged with its ref name ("pump-3"), to `registry_url` ("http://host:port")
// under `repository` ("outpost/models"). Blobs are streamed through a temporary file one at a
// time, so memory stays constant. The bundle is read as it is: a site verifies it first
// (`outpost bundle verify`); the registry checks every digest. Returns the pushed references
// ("127.0.0.1:5000/outpost/models:pump-3"). Unavailable when the registry cannot be reached;
// FailedPrecondition with the registry's answer when it refuses.
Result<std::vector<std::string>> PushBundle(const std::string& bundle_path,
                                            const std::string& registry_url,
                                            const std::string& repository);

}  // namespace outpost::apps

#endif  // OUTPOST_APPS_BUNDLE_PUSH_H_
