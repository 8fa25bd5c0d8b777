#include "apps/bundle_kubernetes.h"

#include <filesystem>

#include "base/file.h"
#include "base/subprocess.h"

namespace outpost::apps {
namespace {

// Values written into YAML unquoted-safe: image names, ids, refs.
bool IsPlain(std::string_view s) {
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == '/' || c == ':' || c == '@';
    if (!ok) return false;
  }
  return !s.empty() && s.size() <= 255;
}

}  // namespace

Result<KubernetesOutcome> RenderAndApply(const KubernetesInstall& in) {
  if (!PathExists(JoinPath(in.base_dir, "kustomization.yaml"))) {
    return InvalidArgumentError(in.base_dir + " is not a kustomize base (no kustomization.yaml)");
  }
  if (in.out_dir.empty()) return InvalidArgumentError("give -o/--out for the overlay folder");
  std::string image_name = in.image, image_tag = "latest";
  size_t colon = in.image.rfind(':');
  if (colon != std::string::npos && in.image.find('/', colon) == std::string::npos) {
    image_name = in.image.substr(0, colon);
    image_tag = in.image.substr(colon + 1);
  }
  std::string site = in.site_id.empty() ? "site" : in.site_id;
  for (const std::string& v : {image_name, image_tag, site}) {
    if (!IsPlain(v)) return InvalidArgumentError("\"" + v + "\" is not a plain name");
  }
  std::string models;
  for (const std::string& ref : in.model_refs) {
    if (!IsPlain(ref)) return InvalidArgumentError("\"" + ref + "\" is not a plain name");
    models += (models.empty() ? "" : ",") + ref;
  }
  std::string registry = in.registry.empty() ? "" : in.registry + "/" + in.registry_repository;
  if (!registry.empty() && !IsPlain(registry)) {
    return InvalidArgumentError("\"" + registry + "\" is not a plain name");
  }
  OUTPOST_RETURN_IF_ERROR(MakeDirectories(in.out_dir));
  std::error_code ec;
  std::string base = std::filesystem::relative(std::filesystem::absolute(in.base_dir),
                                               std::filesystem::absolute(in.out_dir), ec)
                         .string();
  if (ec || base.empty()) base = std::filesystem::absolute(in.base_dir).string();
  std::string version = std::to_string(in.bundle_version);
  std::string y;
  y += "# Rendered by `outpost bundle install --kubernetes` for bundle version " + version + ".\n";
  y += "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n";
  y += "resources:\n  - " + base + "\n";
  y += "images:\n  - name: outpost\n    newName: " + image_name + "\n    newTag: \"" + image_tag +
       "\"\n";
  y += "configMapGenerator:\n  - name: outpost-bundle\n    behavior: replace\n    literals:\n";
  y += "      - BUNDLE_VERSION=" + version + "\n";
  y += "      - MODELS=" + models + "\n";
  y += "      - REGISTRY=" + registry + "\n";
  y += "patches:\n  - target:\n      kind: StatefulSet\n      name: outpost-edge\n";
  y += "    patch: |-\n";
  y += "      - op: add\n        path: /spec/template/metadata/annotations\n";
  y += "        value:\n          outpost.io/bundle-version: \"" + version + "\"\n";
  y += "      - op: replace\n        path: /spec/template/spec/containers/0/env/0/value\n";
  y += "        value: " + site + "\n";
  OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(JoinPath(in.out_dir, "kustomization.yaml"), y));

  KubernetesOutcome out;
  if (!PathExists(in.kubectl)) {
    out.message = "kubectl is not installed: overlay written to " + in.out_dir + ", not applied";
    return out;
  }
  RunResult rendered = RunProgram({in.kubectl, "kustomize", in.out_dir});
  if (rendered.exit_code != 0) {
    return FailedPreconditionError("kubectl kustomize " + in.out_dir + ": " + rendered.err);
  }
  OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(JoinPath(in.out_dir, "rendered.yaml"), rendered.out));
  out.rendered = true;
  RunResult context = RunProgram({in.kubectl, "config", "current-context"});
  if (context.exit_code != 0) {
    out.message = "no Kubernetes cluster is configured (kubectl config current-context failed): "
                  "rendered " + JoinPath(in.out_dir, "rendered.yaml") + ", not applied";
    return out;
  }
  RunResult applied = RunProgram({in.kubectl, "apply", "-k", in.out_dir});
  if (applied.exit_code != 0) {
    return FailedPreconditionError("kubectl apply -k " + in.out_dir + ": " + applied.err);
  }
  out.applied = true;
  out.message = "applied to context " + context.out;
  return out;
}

}  // namespace outpost::apps
