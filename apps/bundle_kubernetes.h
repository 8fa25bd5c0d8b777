// `outpost bundle install --kubernetes BASE`: renders a kustomize overlay of the edge node's
// base (deploy/k8s) for one verified bundle and applies it with kubectl when a cluster is
// configured.
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
  std::string registry;             // the site registry host:port the models were pushed to
  std::string registry_repository;  // repository in it
  std::string site_id;
  uint64_t bundle_version = 0;
  std::vector<std::string> model_refs;  // "pump-3", as tagged by `outpost bundle push`
  std::string kubectl = "/usr/bin/kubectl";
};

// Writes <out_dir>/kustomization.yaml (the overlay) and, when kubectl exists,
// <out_dir>/rendered.yaml (`kubectl kustomize`); then `kubectl apply -k` if
// `kubectl config current-context` names a cluster. `applied` says whether it did; `message`
// says why not. InvalidArgument for bad names; FailedPrecondition when rendering or applying
// fails (kubectl's message included).
struct KubernetesOutcome {
  bool rendered = false;
  bool applied = false;
  std::string message;
};
Result<KubernetesOutcome> RenderAndApply(const KubernetesInstall& install);

}  // namespace outpost::apps

#endif  // OUTPOST_APPS_BUNDLE_KUBERNETES_H_
