// `outpost bundle create|sign|verify|inspect|install|rollback|list|push|fetch`: offline bundles
// (bundle/FORMAT.md) from the command line. Creation and verification stream (constant
// memory whatever the bundle's size). Every refusal exits 1 with its reason code first in the
// message ("outpost: TARGET_HASH: ..."); usage errors exit 2.
#include <CLI/CLI.hpp>

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "apps/bundle_fetch.h"
#include "apps/bundle_health.h"
#include "apps/bundle_keys.h"
#include "apps/bundle_kubernetes.h"
#include "apps/bundle_push.h"
#include "apps/bundle_signature.h"
#include "apps/bundle_site.h"
#include "apps/commands.h"
#include "base/clock.h"
#include "base/coding.h"
#include "base/file.h"
#include "bundle/bundle.h"
#include "bundle/install.h"
#include "bundle/metadata.h"
#include "bundle/reason.h"
#include "bundle/tar.h"

namespace outpost::apps {
namespace {

struct BundleFlags {
  std::string bundle;  // the bundle file
  // create
  std::string models;
  std::string keys_dir;
  std::vector<std::string> key_files;
  uint64_t version = 0;
  std::vector<std::string> sites;
  std::vector<std::string> groups;
  std::string channel = "stable";
  int expires_days = 30;
  std::string out;
  bool no_model_check = false;
  // site
  std::string repository;
  std::string state_dir;
  std::string data_dir;
  std::string trusted_root;
  bool no_health_check = false;
  // kubernetes and push
  std::string kubernetes;
  std::string registry;
  std::string registry_repository = "outpost/models";
  std::string runtime_repository = "outpost/runtime";
  // create --runtime: the runtime image's OCI layout folder
  std::string runtime;
  // fetch (the init container of an edge pod)
  std::string metadata_dir;
  bool strict = false;
  std::string image = "outpost:latest";
  // The installer's step hook: null in the shipped binary (apps/main.cc).
  bundle::StepHook step_hook;
};

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "'x' FP32 [-1,4], 'mask' BOOL [-1]": tensors as `bundle create` reports a derived descriptor.
std::string Tensors(const std::vector<bundle::TensorSpec>& specs) {
  std::string out;
  for (const bundle::TensorSpec& spec : specs) {
    out += (out.empty() ? "'" : ", '") + spec.name + "' " + spec.datatype + " [";
    for (size_t i = 0; i < spec.shape.size(); ++i) {
      out += (i == 0 ? "" : ",") + std::to_string(spec.shape[i]);
    }
    out += "]";
  }
  return out.empty() ? "none" : out;
}

Status Create(const BundleFlags& f) {
  std::vector<bundle::KeyPair> keys;
  if (!f.keys_dir.empty()) {
    OUTPOST_ASSIGN_OR_RETURN(keys, LoadKeys(f.keys_dir, "targets"));
  }
  for (const std::string& k : f.key_files) {
    OUTPOST_ASSIGN_OR_RETURN(bundle::KeyPair pair, LoadKeyFile(k));
    keys.push_back(pair);
  }
  if (keys.empty()) return InvalidArgumentError("no targets key: give --keys DIR or --key FILE");
  bundle::CreateOptions options{.version = f.version,
                                .created = Now(),
                                .expires = Now() + int64_t{f.expires_days} * 86400,
                                .channel = f.channel,
                                .sites = f.sites,
                                .site_groups = f.groups,
                                .runtime_image = f.runtime};
  // The root chain after version 1 (provisioned at every site) travels with each bundle.
  if (!f.keys_dir.empty()) {
    OUTPOST_ASSIGN_OR_RETURN(options.root_chain, LoadRootChain(f.keys_dir));
  }
  // Each model is read by the engine that will serve it: a version folder without
  // descriptor.json gets one derived from the model, and a written one must agree with it.
  std::vector<bundle::ModelDescriptor> derived;
  if (!f.no_model_check) {
    options.read_signature = ReadModelSignature;
    options.on_derived = [&derived](const bundle::ModelDescriptor& d) { derived.push_back(d); };
  }
  OUTPOST_RETURN_IF_ERROR(bundle::CreateBundle(f.models, keys, options, f.out));
  std::printf("created %s: bundle version %llu\n", f.out.c_str(),
              static_cast<unsigned long long>(f.version));
  for (const bundle::ModelDescriptor& d : derived) {
    std::printf("%s version %llu: descriptor derived from the model by the %s engine %s: "
                "inputs %s; outputs %s; metrics and lineage empty (write %llu/descriptor.json "
                "to state them)\n",
                d.name.c_str(), static_cast<unsigned long long>(d.version), d.engine.c_str(),
                d.engine_version.c_str(), Tensors(d.inputs).c_str(), Tensors(d.outputs).c_str(),
                static_cast<unsigned long long>(d.version));
  }
  return Status::Ok();
}

// Adds a signature to the targets of a bundle, copying every other entry as it is.
Status Sign(const BundleFlags& f) {
  if (f.key_files.empty()) return InvalidArgumentError("give --key FILE to sign with");
  int in = ::open(f.bundle.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return ErrnoToStatus(errno, "opening", f.bundle);
  std::string tmp = f.out + ".tmp";
  int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) {
    ::close(in);
    return ErrnoToStatus(errno, "creating", tmp);
  }
  auto copy = [&]() -> Status {
    bundle::TarReader reader(in, {});
    bundle::TarWriter writer(out);
    std::string buf(64 * 1024, '\0');
    for (;;) {
      OUTPOST_ASSIGN_OR_RETURN(std::optional<bundle::TarEntry> e, reader.Next());
      if (!e) break;
      if (e->name == "outpost/targets.json") {
        OUTPOST_ASSIGN_OR_RETURN(std::string text, reader.ReadAll(1 << 20));
        OUTPOST_ASSIGN_OR_RETURN(bundle::Envelope env, bundle::ParseEnvelope(text));
        bundle::JsonArray sigs;
        for (const auto& [id, sig] : env.signatures) {
          sigs.push_back(bundle::Json{bundle::JsonObject{{"keyid", bundle::Json{id}},
                                                         {"sig", bundle::Json{HexEncode(sig)}}}});
        }
        for (const std::string& k : f.key_files) {
          OUTPOST_ASSIGN_OR_RETURN(bundle::KeyPair pair, LoadKeyFile(k));
          OUTPOST_ASSIGN_OR_RETURN(std::string sig, bundle::Sign(pair.seed, env.canonical));
          sigs.push_back(bundle::Json{bundle::JsonObject{
              {"keyid", bundle::Json{bundle::KeyId(pair.public_key)}},
              {"sig", bundle::Json{HexEncode(sig)}}}});
        }
        OUTPOST_ASSIGN_OR_RETURN(
            std::string signed_text,
            bundle::CanonicalJson(bundle::Json{bundle::JsonObject{
                {"signatures", bundle::Json{sigs}}, {"signed", env.signed_value}}}));
        OUTPOST_RETURN_IF_ERROR(writer.Begin(e->name, signed_text.size()));
        OUTPOST_RETURN_IF_ERROR(writer.Write(signed_text));
        continue;
      }
      OUTPOST_RETURN_IF_ERROR(writer.Begin(e->name, e->size));
      for (;;) {
        OUTPOST_ASSIGN_OR_RETURN(size_t n, reader.Read(buf.data(), buf.size()));
        if (n == 0) break;
        OUTPOST_RETURN_IF_ERROR(writer.Write(std::string_view(buf.data(), n)));
      }
    }
    OUTPOST_RETURN_IF_ERROR(writer.Finish());
    if (::fsync(out) != 0) return ErrnoToStatus(errno, "fsync", tmp);
    return Status::Ok();
  };
  Status s = copy();
  ::close(in);
  ::close(out);
  if (s.ok() && ::rename(tmp.c_str(), f.out.c_str()) != 0) s = ErrnoToStatus(errno, "renaming", tmp);
  if (!s.ok()) ::unlink(tmp.c_str());
  if (s.ok()) std::printf("signed %s\n", f.out.c_str());
  return s;
}

// The trusted root: the site's (state folder) or one given on the command line.
Result<bundle::Root> TrustedRoot(const BundleFlags& f) {
  std::string path = f.trusted_root;
  if (!f.state_dir.empty() && PathExists(JoinPath(f.state_dir, "root.json"))) {
    path = JoinPath(f.state_dir, "root.json");
  }
  if (path.empty()) return InvalidArgumentError("give --state-dir or --trusted-root");
  OUTPOST_ASSIGN_OR_RETURN(std::string text, ReadFile(path, 1 << 20));
  OUTPOST_ASSIGN_OR_RETURN(bundle::Envelope env, bundle::ParseEnvelope(text));
  return bundle::RootFromJson(env.signed_value);
}

// Verifies a bundle into a temporary staging folder, hands it to `use` (when given) while it
// is staged, and removes it afterwards.
Result<bundle::VerifiedBundle> VerifyOnly(
    const BundleFlags& f,
    const std::function<Status(const bundle::VerifiedBundle&)>& use = nullptr) {
  OUTPOST_ASSIGN_OR_RETURN(bundle::Root root, TrustedRoot(f));
  bundle::SiteState state;
  if (!f.state_dir.empty()) {
    OUTPOST_ASSIGN_OR_RETURN(state, bundle::LoadSiteState(JoinPath(f.state_dir, "state.json")));
  }
  std::string tmpl = (std::filesystem::temp_directory_path() / "outpost-verify-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) return ErrnoToStatus(errno, "creating", tmpl);
  Result<bundle::VerifiedBundle> v = bundle::VerifyBundle(
      f.bundle, root, state,
      {.site_id = f.sites.empty() ? "" : f.sites[0], .site_groups = f.groups,
       .staging_dir = JoinPath(tmpl, "staging"), .clock = &SystemClock()});
  if (v.ok() && use) {
    if (Status s = use(*v); !s.ok()) v = s;
  }
  RemoveTree(tmpl).IgnoreError();
  return v;
}

Status Verify(const BundleFlags& f) {
  Result<bundle::VerifiedBundle> v = VerifyOnly(f);
  if (!v.ok()) return v.status();
  std::printf("OK: bundle version %llu, channel %s, %zu model versions\n",
              static_cast<unsigned long long>(v->targets.version), v->targets.channel.c_str(),
              v->targets.models.size());
  for (const bundle::ModelRef& m : v->targets.models) {
    std::printf("  %s %llu\n", m.name.c_str(), static_cast<unsigned long long>(m.version));
  }
  return Status::Ok();
}

// Prints the signed metadata without checking it.
Status Inspect(const BundleFlags& f) {
  int fd = ::open(f.bundle.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "opening", f.bundle);
  auto run = [&]() -> Status {
    bundle::TarReader reader(fd, {});
    for (;;) {
      OUTPOST_ASSIGN_OR_RETURN(std::optional<bundle::TarEntry> e, reader.Next());
      if (!e) return bundle::ReasonError(bundle::Reason::kMetadataMissing, "no targets");
      if (e->name.starts_with("outpost/root/")) {
        std::printf("root file %s (%llu bytes)\n", e->name.c_str(),
                    static_cast<unsigned long long>(e->size));
        continue;
      }
      if (e->name != "outpost/targets.json") {
        return bundle::ReasonError(bundle::Reason::kBadLayout, "no targets before " + e->name);
      }
      OUTPOST_ASSIGN_OR_RETURN(std::string text, reader.ReadAll(1 << 20));
      OUTPOST_ASSIGN_OR_RETURN(bundle::Envelope env, bundle::ParseEnvelope(text));
      OUTPOST_ASSIGN_OR_RETURN(std::string pretty, bundle::CanonicalJson(env.signed_value));
      std::printf("targets (NOT verified; use `outpost bundle verify`), %zu signatures:\n%s\n",
                  env.signatures.size(), pretty.c_str());
      return Status::Ok();
    }
  };
  Status s = run();
  ::close(fd);
  return s;
}

// The site the flags name (apps/bundle_site.h): the installer's folders and identity.
SiteInstall SiteFromFlags(const BundleFlags& f) {
  return SiteInstall{.repository = f.repository,
                     .state_dir = f.state_dir,
                     .data_dir = f.data_dir,
                     .site_id = f.sites.empty() ? "" : f.sites[0],
                     .site_groups = f.groups,
                     .trusted_root = f.trusted_root,
                     .health_check = !f.no_health_check,
                     .step_hook = f.step_hook};
}

// The site's installer. `elsewhere`: for a deploy to a cluster, which needs no repository.
Result<std::unique_ptr<bundle::Installer>> OpenInstaller(const BundleFlags& f,
                                                         bool elsewhere = false) {
  return OpenSiteInstaller(SiteFromFlags(f), elsewhere);
}

void PrintResult(const char* what, const bundle::InstallResult& r) {
  std::printf("%s bundle version %llu (was %llu):", what,
              static_cast<unsigned long long>(r.bundle_version),
              static_cast<unsigned long long>(r.previous_version));
  for (const bundle::ModelVersion& m : r.models) {
    std::printf(" %s/%llu", m.name.c_str(), static_cast<unsigned long long>(m.version));
  }
  std::printf("\n");
}

// The overlay's settings shared by install and rollback on Kubernetes.
KubernetesInstall KubernetesSettings(const BundleFlags& f) {
  return KubernetesInstall{.base_dir = f.kubernetes,
                           .out_dir = f.out,
                           .image = f.image,
                           .registry = f.registry,
                           .registry_repository = f.registry_repository,
                           .runtime_repository = f.runtime_repository,
                           .site_id = f.sites.empty() ? "" : f.sites[0]};
}

// Fills the overlay's bundle fields from the bundle's signed targets file.
Status DescribeForOverlay(const std::string& targets_file, KubernetesInstall* k) {
  OUTPOST_ASSIGN_OR_RETURN(bundle::Envelope env, bundle::ParseEnvelope(targets_file));
  OUTPOST_ASSIGN_OR_RETURN(bundle::Targets t, bundle::TargetsFromJson(env.signed_value));
  k->bundle_version = t.version;
  k->runtime_manifest = t.runtime_manifest;
  k->targets_file = targets_file;
  for (const bundle::ModelRef& m : t.models) {
    k->model_refs.push_back(m.name + "-" + std::to_string(m.version));
  }
  return Status::Ok();
}

// `install --kubernetes`: the site's installer verifies the bundle as a plain install does
// (trusted root, root chain, anti-rollback version, time floor) and commits the new site
// state once the overlay is rendered (and applied, when a cluster is configured); a refusal
// or a failed render changes nothing (bundle/install.h, Installer::Deploy). The overlay
// carries the signed metadata, which the pods verify again themselves; the installer keeps
// it for `rollback --kubernetes`.
Status InstallOnKubernetes(const BundleFlags& f) {
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<bundle::Installer> installer,
                           OpenInstaller(f, /*elsewhere=*/true));
  KubernetesOutcome outcome;
  auto deploy = [&](const bundle::VerifiedBundle& v) -> Status {
    KubernetesInstall k = KubernetesSettings(f);
    OUTPOST_RETURN_IF_ERROR(DescribeForOverlay(v.targets_file, &k));
    k.root_files = v.root_files;
    OUTPOST_ASSIGN_OR_RETURN(k.trusted_root, ReadFile(JoinPath(f.state_dir, "root.json"), 1 << 20));
    OUTPOST_RETURN_IF_ERROR(KeepDeployed(
        f.state_dir, {.version = v.targets.version, .targets_file = v.targets_file,
                      .root_files = v.root_files}));
    OUTPOST_ASSIGN_OR_RETURN(outcome, RenderAndApply(k));
    return SetActiveDeployed(f.state_dir, v.targets.version);
  };
  OUTPOST_ASSIGN_OR_RETURN(bundle::InstallResult r, installer->Deploy(f.bundle, deploy));
  std::printf("bundle version %llu (was %llu): overlay %s; %s\n",
              static_cast<unsigned long long>(r.bundle_version),
              static_cast<unsigned long long>(r.previous_version), f.out.c_str(),
              outcome.message.c_str());
  return Status::Ok();
}

// `rollback --kubernetes`: renders the overlay of the bundle deployed before the active one,
// with OPERATION=rollback, so that each pod's init container returns to the copy it kept. The
// site's anti-rollback version is unchanged (a pod accepts only the bundle it kept).
Status RollbackOnKubernetes(const BundleFlags& f) {
  if (f.state_dir.empty()) return InvalidArgumentError("give --state-dir");
  OUTPOST_ASSIGN_OR_RETURN(DeployedPair deployed, PreviousDeployed(f.state_dir));
  KubernetesInstall k = KubernetesSettings(f);
  OUTPOST_RETURN_IF_ERROR(DescribeForOverlay(deployed.previous.targets_file, &k));
  k.root_files = deployed.previous.root_files;
  OUTPOST_ASSIGN_OR_RETURN(k.trusted_root, ReadFile(JoinPath(f.state_dir, "root.json"), 1 << 20));
  k.operation = "rollback";
  OUTPOST_ASSIGN_OR_RETURN(KubernetesOutcome outcome, RenderAndApply(k));
  OUTPOST_RETURN_IF_ERROR(SetActiveDeployed(f.state_dir, deployed.previous.version));
  std::printf("rolled back to bundle version %llu (was %llu): overlay %s; %s\n",
              static_cast<unsigned long long>(deployed.previous.version),
              static_cast<unsigned long long>(deployed.active), f.out.c_str(),
              outcome.message.c_str());
  return Status::Ok();
}

Status Install(const BundleFlags& f) {
  if (!f.kubernetes.empty()) return InstallOnKubernetes(f);
  OUTPOST_ASSIGN_OR_RETURN(bundle::InstallResult r,
                           InstallBundleAtSite(SiteFromFlags(f), f.bundle));
  PrintResult("installed", r);
  return Status::Ok();
}

Status Rollback(const BundleFlags& f) {
  if (!f.kubernetes.empty()) return RollbackOnKubernetes(f);
  if (f.state_dir.empty()) return InvalidArgumentError("give --repository and --state-dir");
  OUTPOST_ASSIGN_OR_RETURN(InstallLock lock, InstallLock::Acquire(f.state_dir));
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<bundle::Installer> installer, OpenInstaller(f));
  OUTPOST_ASSIGN_OR_RETURN(bundle::InstallResult r, installer->Rollback());
  PrintResult("rolled back to", r);
  return Status::Ok();
}

Status List(const BundleFlags& f) {
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<bundle::Installer> installer, OpenInstaller(f));
  OUTPOST_ASSIGN_OR_RETURN(bundle::SiteStatus s, installer->Describe());
  std::printf("root version %llu, time floor %lld, anti-rollback version %llu\n",
              static_cast<unsigned long long>(s.root_version),
              static_cast<long long>(s.state.time_floor),
              static_cast<unsigned long long>(s.state.installed_version));
  for (size_t i = 0; i < s.installed.size(); ++i) {
    std::printf("bundle %llu%s\n", static_cast<unsigned long long>(s.installed[i]),
                i + 1 == s.installed.size() ? " (active)" : "");
  }
  for (const bundle::ModelVersion& m : s.models) {
    std::printf("  %s %llu\n", m.name.c_str(), static_cast<unsigned long long>(m.version));
  }
  return Status::Ok();
}

// `push`: the bundle is verified first (against the trusted root, and the site state when
// --state-dir is given), and only the verified files go to the registry.
Status Push(const BundleFlags& f) {
  PushResult pushed;
  Result<bundle::VerifiedBundle> v = VerifyOnly(f, [&](const bundle::VerifiedBundle& b) -> Status {
    OUTPOST_ASSIGN_OR_RETURN(pushed, PushVerified(b, f.registry, f.registry_repository,
                                                  f.runtime_repository));
    return Status::Ok();
  });
  if (!v.ok()) return v.status();
  for (const std::string& ref : pushed.pushed) std::printf("pushed %s\n", ref.c_str());
  if (!pushed.runtime.empty()) std::printf("runtime %s\n", pushed.runtime.c_str());
  return Status::Ok();
}

// `fetch`: the init container of an edge pod (apps/bundle_fetch.h).
Status Fetch(const BundleFlags& f) {
  if (!PathExists(JoinPath(f.metadata_dir, "targets.json"))) {
    std::printf("no bundle is deployed (no targets.json in %s); the pod serves what its volume "
                "holds\n", f.metadata_dir.c_str());
    return Status::Ok();
  }
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<bundle::Installer> installer, OpenInstaller(f));
  return FetchAndInstall(*installer, {.metadata_dir = f.metadata_dir,
                                      .work_dir = JoinPath(f.state_dir, "fetch"),
                                      .strict = f.strict});
}

}  // namespace

void AddBundleCommand(CLI::App& app, Action& run, BundleStepHook step_hook) {
  CLI::App* b = app.add_subcommand("bundle", "Signed offline bundles of models");
  b->require_subcommand(1);
  auto f = std::make_shared<BundleFlags>();
  f->step_hook = std::move(step_hook);
  auto site = [&](CLI::App* cmd) {
    cmd->add_option("--site", f->sites, "This site's id");
    cmd->add_option("--group", f->groups, "A site group this site belongs to (repeatable)");
  };
  auto node = [&](CLI::App* cmd) {
    cmd->add_option("--repository", f->repository, "The edge node's model repository");
    cmd->add_option("--state-dir", f->state_dir,
                    "Folder of the site's trusted root, state and kept bundles");
    cmd->add_option("--data-dir", f->data_dir,
                    "The edge's data_dir; events are spooled in <data-dir>/spool");
    cmd->add_option("--trusted-root", f->trusted_root,
                    "Signed root file to provision when the state folder has none");
    cmd->add_flag("--no-health-check", f->no_health_check, "Skip loading the models to check them");
    site(cmd);
  };
  // The overlay's flags of install and rollback with --kubernetes.
  auto overlay = [&](CLI::App* cmd) {
    cmd->add_option("-o,--out", f->out, "With --kubernetes: where the overlay is rendered");
    cmd->add_option("--image", f->image, "With --kubernetes: the outpost image");
    cmd->add_option("--registry", f->registry, "With --kubernetes: the site registry (host:port)");
    cmd->add_option("--registry-repository", f->registry_repository, "Repository in the registry");
    cmd->add_option("--runtime-repository", f->runtime_repository,
                    "With --kubernetes: the runtime image's repository in the registry");
  };
  auto action = [&run, f](Status (*fn)(const BundleFlags&)) {
    return [&run, f, fn] { run = [f, fn] { return fn(*f); }; };
  };

  CLI::App* create = b->add_subcommand("create", "Bundle every model version of a folder");
  create->add_option("--models", f->models, "Model folder: <name>/config.yaml, <name>/<v>/")->required();
  create->add_option("--keys", f->keys_dir, "Key folder of `outpost keys` (its targets keys sign)");
  create->add_option("--key", f->key_files, "A targets key file to sign with (repeatable)");
  create->add_option("--version", f->version, "Bundle version (> 0)")->required()->check(CLI::Range(uint64_t{1}, uint64_t{1} << 53));
  create->add_option("--site", f->sites, "A site the bundle is for (repeatable)");
  create->add_option("--group", f->groups, "A site group the bundle is for (repeatable)");
  create->add_option("--channel", f->channel, "Channel");
  create->add_option("--expires-days", f->expires_days, "Days until it expires")->check(CLI::Range(1, 3650));
  create->add_option("-o,--out", f->out, "Bundle file to write")->required();
  create->add_option("--runtime", f->runtime,
                     "The runtime image to carry: the OCI layout folder of `outpost image build`");
  create->add_flag("--no-model-check", f->no_model_check,
                   "Take each descriptor.json as written, without loading the models (every "
                   "version folder then needs one)");
  create->callback(action(Create));

  CLI::App* sign = b->add_subcommand("sign", "Add targets signatures to a bundle");
  sign->add_option("bundle", f->bundle, "Bundle file")->required();
  sign->add_option("--key", f->key_files, "Key file (repeatable)")->required();
  sign->add_option("-o,--out", f->out, "Signed bundle to write")->required();
  sign->callback(action(Sign));

  CLI::App* verify = b->add_subcommand("verify", "Verify a bundle as a site would");
  verify->add_option("bundle", f->bundle, "Bundle file")->required();
  verify->add_option("--state-dir", f->state_dir, "The site's state folder");
  verify->add_option("--trusted-root", f->trusted_root, "Signed root file to trust");
  site(verify);
  verify->callback(action(Verify));

  CLI::App* inspect = b->add_subcommand("inspect", "Print a bundle's metadata (unverified)");
  inspect->add_option("bundle", f->bundle, "Bundle file")->required();
  inspect->callback(action(Inspect));

  CLI::App* install = b->add_subcommand("install", "Verify and install a bundle on this node");
  install->add_option("bundle", f->bundle, "Bundle file")->required();
  node(install);
  install->add_option("--kubernetes", f->kubernetes,
                      "Kustomize base (deploy/k8s): render an overlay and kubectl apply it "
                      "(needs --state-dir, where the site state is kept)");
  overlay(install);
  install->callback(action(Install));

  CLI::App* rollback = b->add_subcommand("rollback", "Return to the previously installed bundle");
  node(rollback);
  rollback->add_option("--kubernetes", f->kubernetes,
                       "Kustomize base (deploy/k8s): render the previous deployed bundle's overlay "
                       "and kubectl apply it (needs --state-dir)");
  overlay(rollback);
  rollback->callback(action(Rollback));

  CLI::App* list = b->add_subcommand("list", "Show the site's installed bundles");
  node(list);
  list->callback(action(List));

  CLI::App* push = b->add_subcommand("push", "Push a bundle's OCI images to a registry");
  push->add_option("bundle", f->bundle, "Bundle file")->required();
  push->add_option("--registry", f->registry, "Registry URL, http://host:port")->required();
  push->add_option("--repository", f->registry_repository, "The models' repository in the registry");
  push->add_option("--runtime-repository", f->runtime_repository,
                   "The runtime image's repository in the registry");
  push->add_option("--state-dir", f->state_dir, "The site's state folder (trusted root, state)");
  push->add_option("--trusted-root", f->trusted_root, "Signed root file to trust");
  site(push);
  push->callback(action(Push));

  CLI::App* fetch = b->add_subcommand(
      "fetch", "Install the deployed bundle from the site registry (an edge pod's init container)");
  node(fetch);
  fetch->add_option("--metadata", f->metadata_dir,
                    "The bundle's signed metadata (the mounted ConfigMap outpost-bundle)")
      ->required();
  fetch->add_flag("--strict", f->strict,
                  "Fail when the bundle is refused, even if an earlier verified bundle is installed");
  fetch->callback(action(Fetch));
}

}  // namespace outpost::apps
