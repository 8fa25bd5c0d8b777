// `outpost bundle fetch`: the init container of an edge pod on Kubernetes. It installs into
// the pod's own volume exactly the models the deployed bundle names, taking every byte from
// the site registry but trusting only the signed metadata the overlay carries (ConfigMap
// outpost-bundle) and the trusted root the pod keeps on its volume: the blobs are fetched by
// the digests the signed targets list, reassembled into a bundle, and installed by the same
// installer as a node's (signatures, anti-rollback version, time floor, every length and
// hash, health check, atomic switch, events). bundle/FORMAT.md section 10.
#ifndef OUTPOST_APPS_BUNDLE_FETCH_H_
#define OUTPOST_APPS_BUNDLE_FETCH_H_

#include <string>

#include "base/status.h"
#include "bundle/install.h"

namespace outpost::apps {

struct FetchOptions {
  // The mounted ConfigMap outpost-bundle: targets.json (the signed targets), root.<N>.json (the
  // root files the bundle carries), OPERATION ("install" or "rollback"), REGISTRY (host:port)
  // and REGISTRY_REPOSITORY (the models' repository).
  std::string metadata_dir;
  // Where the reassembled bundle is written while it is installed (on the pod's volume).
  std::string work_dir;
  // With `strict`, a refused bundle fails the init container even when an earlier verified
  // bundle is installed; without it (the default) the pod keeps serving that earlier bundle
  // and the refusal is reported (printed, and spooled as an event for the hub).
  bool strict = false;
};

// OK when the deployed bundle is installed (or was already), when there is none to install,
// and, unless strict, when it was refused but an earlier verified bundle is still installed.
// Otherwise the refusal (with its reason) or the error.
Status FetchAndInstall(bundle::Installer& installer, const FetchOptions& options);

}  // namespace outpost::apps

#endif  // OUTPOST_APPS_BUNDLE_FETCH_H_
