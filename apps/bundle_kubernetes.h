// `outpost bundle install --kubernetes BASE` and `outpost bundle rollback --kubernetes BASE`:
// render a kustomize overlay of the edge node's base (deploy/k8s) for one verified bundle and
// apply it with kubectl when a cluster is configured. The overlay carries the bundle's signed
// metadata (ConfigMap outpost-bundle) and the site's trusted root (ConfigMap outpost-trust);
// the pod's init container (`outpost bundle fetch`, apps/bundle_fetch.h) verifies and installs
// the models from the site registry against them. bundle/FORMAT.md section 10.
#ifndef OUTPOST_APPS_BUNDLE_KUBERNETES_H_
#define OUTPOST_APPS_BUNDLE_KUBERNETES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace outpost::apps {

struct KubernetesInstall {
  std::string base_dir;             // the kustomize base (deploy/k8s)
  std::string out_dir;              // where the overlay is written; created
  std::string image = "outpost:latest";  // name[:tag] of the outpost image
  std::string registry;             // the site registry host:port the bundle was pushed to
  std::string registry_repository;  // the models' repository in it
  std::string runtime_repository;   // the runtime image's repository in it
  std::string site_id;
  uint64_t bundle_version = 0;
  std::vector<std::string> model_refs;  // "pump-3", as tagged by `outpost bundle push`
  // The bundle's signed targets file and the root files it carries (ascending), as the pod's
  // init container reads them; the root the pod trusts when its volume holds none yet.
  std::string targets_file;
  std::vector<std::string> root_files;
  std::string trusted_root;
  // The hex digest of the runtime image's manifest; when set (with a registry) the image is
  // pinned by it instead of `image`.
  std::string runtime_manifest;
  std::string operation = "install";  // "install" or "rollback", for the init container
  std::string kubectl = "/usr/bin/kubectl";
};

// Writes <out_dir>/kustomization.yaml (the overlay) and its metadata files and, when kubectl
// exists, <out_dir>/rendered.yaml (`kubectl kustomize`); then `kubectl apply -k` if
// `kubectl config current-context` names a cluster. `applied` says whether it did; `message`
// says why not. InvalidArgument for bad names; FailedPrecondition when rendering or applying
// fails (kubectl's message included).
struct KubernetesOutcome {
  bool rendered = false;
  bool applied = false;
  std::string message;
};
Result<KubernetesOutcome> RenderAndApply(const KubernetesInstall& install);

// What a Kubernetes site's installer keeps of each deployed bundle, for `bundle rollback
// --kubernetes`: <state_dir>/kubernetes/<version>/ holds targets.json and root.<N>.json, and
// <state_dir>/kubernetes/active names the version the cluster was last given.
struct DeployedBundle {
  uint64_t version = 0;
  std::string targets_file;
  std::vector<std::string> root_files;
};
Status KeepDeployed(const std::string& state_dir, const DeployedBundle& bundle);
Status SetActiveDeployed(const std::string& state_dir, uint64_t version);
// The active deployed version and the one kept before it. FailedPrecondition
// (NO_PREVIOUS_BUNDLE) when nothing was deployed before the active one.
struct DeployedPair {
  uint64_t active = 0;
  DeployedBundle previous;
};
Result<DeployedPair> PreviousDeployed(const std::string& state_dir);

}  // namespace outpost::apps

#endif  // OUTPOST_APPS_BUNDLE_KUBERNETES_H_
