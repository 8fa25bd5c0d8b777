#include "apps/bundle_kubernetes.h"

#include <filesystem>

#include <algorithm>

#include "base/coding.h"
#include "base/file.h"
#include "base/subprocess.h"
#include "bundle/metadata.h"

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

// The image line of the overlay: pinned by the runtime manifest's digest when the bundle
// carries the runtime and it was pushed to the site registry, else the given name[:tag].
Result<std::string> ImageOverride(const KubernetesInstall& in) {
  std::string y = "images:\n  - name: outpost\n";
  if (!in.runtime_manifest.empty() && !in.registry.empty()) {
    std::string name = in.registry + "/" + in.runtime_repository;
    if (!IsPlain(name) || !IsHex64(in.runtime_manifest)) {
      return InvalidArgumentError("\"" + name + "\" is not a plain name");
    }
    return y + "    newName: " + name + "\n    digest: sha256:" + in.runtime_manifest + "\n";
  }
  std::string image_name = in.image, image_tag = "latest";
  size_t colon = in.image.rfind(':');
  if (colon != std::string::npos && in.image.find('/', colon) == std::string::npos) {
    image_name = in.image.substr(0, colon);
    image_tag = in.image.substr(colon + 1);
  }
  for (const std::string& v : {image_name, image_tag}) {
    if (!IsPlain(v)) return InvalidArgumentError("\"" + v + "\" is not a plain name");
  }
  return y + "    newName: " + image_name + "\n    newTag: \"" + image_tag + "\"\n";
}

// Writes the signed metadata the pod's init container reads into <out>/bundle/ and the
// trusted root into <out>/trust/; returns the configMapGenerator `files:` lines of each.
Status WriteMetadataFiles(const KubernetesInstall& in, std::string* bundle_files,
                          std::string* trust_files) {
  std::string bundle_dir = JoinPath(in.out_dir, "bundle");
  std::string trust_dir = JoinPath(in.out_dir, "trust");
  OUTPOST_RETURN_IF_ERROR(MakeDirectories(bundle_dir));
  OUTPOST_RETURN_IF_ERROR(MakeDirectories(trust_dir));
  if (!in.targets_file.empty()) {
    OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(JoinPath(bundle_dir, "targets.json"), in.targets_file));
    *bundle_files += "      - targets.json=bundle/targets.json\n";
  }
  for (const std::string& root_file : in.root_files) {
    OUTPOST_ASSIGN_OR_RETURN(bundle::Envelope env, bundle::ParseEnvelope(root_file));
    OUTPOST_ASSIGN_OR_RETURN(bundle::Root root, bundle::RootFromJson(env.signed_value));
    std::string name = "root." + std::to_string(root.version) + ".json";
    OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(JoinPath(bundle_dir, name), root_file));
    *bundle_files += "      - " + name + "=bundle/" + name + "\n";
  }
  if (!in.trusted_root.empty()) {
    OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(JoinPath(trust_dir, "root.json"), in.trusted_root));
    *trust_files += "      - root.json=trust/root.json\n";
  }
  return Status::Ok();
}

// The overlay's kustomization.yaml.
Result<std::string> Overlay(const KubernetesInstall& in, const std::string& base) {
  std::string site = in.site_id.empty() ? "site" : in.site_id;
  if (!IsPlain(site)) return InvalidArgumentError("\"" + site + "\" is not a plain name");
  if (in.operation != "install" && in.operation != "rollback") {
    return InvalidArgumentError("unknown operation " + in.operation);
  }
  std::string models;
  for (const std::string& ref : in.model_refs) {
    if (!IsPlain(ref)) return InvalidArgumentError("\"" + ref + "\" is not a plain name");
    models += (models.empty() ? "" : ",") + ref;
  }
  for (const std::string& v : {in.registry, in.registry_repository}) {
    if (!v.empty() && !IsPlain(v)) return InvalidArgumentError("\"" + v + "\" is not a plain name");
  }
  std::string bundle_files, trust_files;
  OUTPOST_RETURN_IF_ERROR(WriteMetadataFiles(in, &bundle_files, &trust_files));
  OUTPOST_ASSIGN_OR_RETURN(std::string images, ImageOverride(in));
  std::string version = std::to_string(in.bundle_version);
  std::string y;
  y += "# Rendered by `outpost bundle " + in.operation + " --kubernetes` for bundle version " +
       version + ".\n";
  y += "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n";
  y += "resources:\n  - " + base + "\n";
  y += images;
  y += "configMapGenerator:\n  - name: outpost-bundle\n    behavior: replace\n";
  if (!bundle_files.empty()) y += "    files:\n" + bundle_files;
  y += "    literals:\n";
  y += "      - BUNDLE_VERSION=" + version + "\n";
  y += "      - OPERATION=" + in.operation + "\n";
  y += "      - MODELS=" + models + "\n";
  y += "      - REGISTRY=" + in.registry + "\n";
  y += "      - REGISTRY_REPOSITORY=" + in.registry_repository + "\n";
  if (!trust_files.empty()) {
    y += "  - name: outpost-trust\n    behavior: replace\n    files:\n" + trust_files;
  }
  y += "patches:\n  - target:\n      kind: StatefulSet\n      name: outpost-edge\n";
  y += "    patch: |-\n";
  y += "      - op: add\n        path: /spec/template/metadata/annotations\n";
  y += "        value:\n          outpost.io/bundle-version: \"" + version + "\"\n";
  y += "      - op: replace\n        path: /spec/template/spec/containers/0/env/0/value\n";
  y += "        value: " + site + "\n";
  y += "      - op: replace\n        path: /spec/template/spec/initContainers/0/env/0/value\n";
  y += "        value: " + site + "\n";
  return y;
}

}  // namespace

Result<KubernetesOutcome> RenderAndApply(const KubernetesInstall& in) {
  if (!PathExists(JoinPath(in.base_dir, "kustomization.yaml"))) {
    return InvalidArgumentError(in.base_dir + " is not a kustomize base (no kustomization.yaml)");
  }
  if (in.out_dir.empty()) return InvalidArgumentError("give -o/--out for the overlay folder");
  OUTPOST_RETURN_IF_ERROR(MakeDirectories(in.out_dir));
  std::error_code ec;
  std::string base = std::filesystem::relative(std::filesystem::absolute(in.base_dir),
                                               std::filesystem::absolute(in.out_dir), ec)
                         .string();
  if (ec || base.empty()) base = std::filesystem::absolute(in.base_dir).string();
  OUTPOST_ASSIGN_OR_RETURN(std::string y, Overlay(in, base));
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

namespace {

std::string DeployedDir(const std::string& state_dir) { return JoinPath(state_dir, "kubernetes"); }

}  // namespace

Status KeepDeployed(const std::string& state_dir, const DeployedBundle& b) {
  std::string dir = JoinPath(DeployedDir(state_dir), std::to_string(b.version));
  OUTPOST_RETURN_IF_ERROR(MakeDirectories(dir, 0700));
  OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(JoinPath(dir, "targets.json"), b.targets_file));
  for (size_t i = 0; i < b.root_files.size(); ++i) {
    OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(
        JoinPath(dir, "root." + std::to_string(i + 1) + ".chain"), b.root_files[i]));
  }
  return Status::Ok();
}

Status SetActiveDeployed(const std::string& state_dir, uint64_t version) {
  OUTPOST_RETURN_IF_ERROR(MakeDirectories(DeployedDir(state_dir), 0700));
  return WriteFileAtomically(JoinPath(DeployedDir(state_dir), "active"),
                             std::to_string(version) + "\n");
}

Result<DeployedPair> PreviousDeployed(const std::string& state_dir) {
  std::string dir = DeployedDir(state_dir);
  auto none = [] {
    return FailedPreconditionError(
        "NO_PREVIOUS_BUNDLE: no bundle was deployed to the cluster before the active one");
  };
  if (!PathExists(JoinPath(dir, "active"))) return none();
  OUTPOST_ASSIGN_OR_RETURN(std::string active_text, ReadFile(JoinPath(dir, "active"), 64));
  DeployedPair out;
  if (!ParseDecimal(std::string_view(active_text).substr(0, active_text.find('\n')), &out.active)) {
    return DataLossError(JoinPath(dir, "active") + " is damaged");
  }
  OUTPOST_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirectory(dir));
  uint64_t best = 0;
  for (const std::string& name : names) {
    uint64_t v = 0;
    if (ParseDecimal(name, &v) && v < out.active && v > best) best = v;
  }
  if (best == 0) return none();
  std::string kept = JoinPath(dir, std::to_string(best));
  out.previous.version = best;
  OUTPOST_ASSIGN_OR_RETURN(out.previous.targets_file, ReadFile(JoinPath(kept, "targets.json"), 1 << 20));
  for (size_t i = 1;; ++i) {
    std::string path = JoinPath(kept, "root." + std::to_string(i) + ".chain");
    if (!PathExists(path)) break;
    OUTPOST_ASSIGN_OR_RETURN(std::string text, ReadFile(path, 1 << 20));
    out.previous.root_files.push_back(std::move(text));
  }
  return out;
}

}  // namespace outpost::apps
