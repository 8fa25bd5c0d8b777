// `outpost keys generate|rotate`: the signing keys of offline bundles and the signed root
// that names them (bundle/FORMAT.md section 3).
//
// A key folder holds root-<i>.key / targets-<i>.key (the 32-byte Ed25519 seed in hex, mode
// 0600), the matching .pub files (public key in hex), root.json (the current signed root,
// what a site is provisioned with) and roots/<N>.json (every root version, the chain that
// bundles carry). `rotate` signs root N+1 with the current root keys and the new ones, then
// moves the old keys to old/<N>/.
#include <CLI/CLI.hpp>

#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "apps/bundle_keys.h"
#include "apps/commands.h"
#include "base/coding.h"
#include "base/file.h"
#include "bundle/crypto.h"
#include "bundle/metadata.h"

namespace outpost::apps {
namespace {

struct KeysFlags {
  std::string dir;
  int root_keys = 1;
  int root_threshold = 1;
  int targets_keys = 1;
  int targets_threshold = 1;
  int expires_days = 365;
};

Status WriteKeyFiles(const std::string& dir, const std::string& stem, const bundle::KeyPair& k) {
  OUTPOST_RETURN_IF_ERROR(
      WriteFileAtomically(JoinPath(dir, stem + ".key"), HexEncode(k.seed) + "\n", 0600));
  return WriteFileAtomically(JoinPath(dir, stem + ".pub"), HexEncode(k.public_key) + "\n");
}

// Generates fresh keys into `dir` and returns the root naming them (version and expiry set).
Result<bundle::Root> NewKeys(const KeysFlags& f, uint64_t version,
                             std::vector<bundle::KeyPair>& root_keys) {
  if (f.root_threshold < 1 || f.root_threshold > f.root_keys || f.targets_threshold < 1 ||
      f.targets_threshold > f.targets_keys) {
    return InvalidArgumentError("thresholds must be between 1 and the number of keys");
  }
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  bundle::Root root{.version = version, .expires = now + int64_t{f.expires_days} * 86400};
  root.root.threshold = static_cast<uint64_t>(f.root_threshold);
  root.targets.threshold = static_cast<uint64_t>(f.targets_threshold);
  for (int i = 1; i <= f.root_keys + f.targets_keys; ++i) {
    OUTPOST_ASSIGN_OR_RETURN(bundle::KeyPair k, bundle::GenerateKeyPair());
    bool is_root = i <= f.root_keys;
    std::string stem = is_root ? "root-" + std::to_string(i)
                               : "targets-" + std::to_string(i - f.root_keys);
    OUTPOST_RETURN_IF_ERROR(WriteKeyFiles(f.dir, stem, k));
    std::string id = bundle::KeyId(k.public_key);
    root.keys[id] = k.public_key;
    (is_root ? root.root : root.targets).keyids.push_back(id);
    if (is_root) root_keys.push_back(k);
  }
  return root;
}

Status WriteRoot(const std::string& dir, const bundle::Root& root,
                 const std::vector<bundle::KeyPair>& signers) {
  OUTPOST_ASSIGN_OR_RETURN(bundle::Json json, bundle::RootToJson(root));
  OUTPOST_ASSIGN_OR_RETURN(std::string text, bundle::SignMetadata(json, signers));
  OUTPOST_RETURN_IF_ERROR(MakeDirectories(JoinPath(dir, "roots")));
  OUTPOST_RETURN_IF_ERROR(
      WriteFileAtomically(JoinPath(dir, "roots/" + std::to_string(root.version) + ".json"), text));
  return WriteFileAtomically(JoinPath(dir, "root.json"), text);
}

Status Generate(const KeysFlags& f) {
  if (PathExists(JoinPath(f.dir, "root.json"))) {
    return FailedPreconditionError(f.dir + " holds keys already (use `outpost keys rotate`)");
  }
  OUTPOST_RETURN_IF_ERROR(MakeDirectories(f.dir));
  std::vector<bundle::KeyPair> root_keys;
  OUTPOST_ASSIGN_OR_RETURN(bundle::Root root, NewKeys(f, 1, root_keys));
  OUTPOST_RETURN_IF_ERROR(WriteRoot(f.dir, root, root_keys));
  std::printf("root version 1 with %d root and %d targets keys in %s\n", f.root_keys,
              f.targets_keys, f.dir.c_str());
  return Status::Ok();
}

Status Rotate(const KeysFlags& f) {
  OUTPOST_ASSIGN_OR_RETURN(std::string text, ReadFile(JoinPath(f.dir, "root.json"), 1 << 20));
  OUTPOST_ASSIGN_OR_RETURN(bundle::Envelope env, bundle::ParseEnvelope(text));
  OUTPOST_ASSIGN_OR_RETURN(bundle::Root old, bundle::RootFromJson(env.signed_value));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<bundle::KeyPair> old_root_keys,
                           LoadKeys(f.dir, "root"));
  // The old keys move aside first, so the new ones take their file names.
  std::string old_dir = JoinPath(f.dir, "old/" + std::to_string(old.version));
  OUTPOST_RETURN_IF_ERROR(MakeDirectories(old_dir));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirectory(f.dir));
  for (const std::string& n : names) {
    if (n.ends_with(".key") || n.ends_with(".pub")) {
      std::filesystem::rename(JoinPath(f.dir, n), JoinPath(old_dir, n));
    }
  }
  std::vector<bundle::KeyPair> new_root_keys;
  OUTPOST_ASSIGN_OR_RETURN(bundle::Root root, NewKeys(f, old.version + 1, new_root_keys));
  std::vector<bundle::KeyPair> signers = old_root_keys;
  signers.insert(signers.end(), new_root_keys.begin(), new_root_keys.end());
  OUTPOST_RETURN_IF_ERROR(WriteRoot(f.dir, root, signers));
  // Checked as a site will check it.
  OUTPOST_ASSIGN_OR_RETURN(std::string rotated,
                           ReadFile(JoinPath(f.dir, "root.json"), 1 << 20));
  OUTPOST_RETURN_IF_ERROR(bundle::VerifyNextRoot(old, rotated).status());
  std::printf("root version %llu signed by %zu old and %zu new root keys; old keys in %s\n",
              static_cast<unsigned long long>(root.version), old_root_keys.size(),
              new_root_keys.size(), old_dir.c_str());
  return Status::Ok();
}

}  // namespace

void AddKeysCommand(CLI::App& app, Action& run) {
  CLI::App* keys = app.add_subcommand("keys", "Signing keys and the signed root of offline bundles");
  keys->require_subcommand(1);
  auto flags = std::make_shared<KeysFlags>();
  auto add_common = [&](CLI::App* cmd) {
    cmd->add_option("--dir", flags->dir, "Key folder")->required();
    cmd->add_option("--root-keys", flags->root_keys, "Number of root keys")->check(CLI::Range(1, 64));
    cmd->add_option("--root-threshold", flags->root_threshold, "Root signatures required")
        ->check(CLI::Range(1, 64));
    cmd->add_option("--targets-keys", flags->targets_keys, "Number of targets keys")
        ->check(CLI::Range(1, 63));
    cmd->add_option("--targets-threshold", flags->targets_threshold,
                    "Targets signatures required")->check(CLI::Range(1, 63));
    cmd->add_option("--expires-days", flags->expires_days, "Days until the root expires")
        ->check(CLI::Range(1, 36500));
  };
  CLI::App* generate = keys->add_subcommand("generate", "Generate keys and root version 1");
  add_common(generate);
  generate->callback([&run, flags] { run = [flags] { return Generate(*flags); }; });
  CLI::App* rotate =
      keys->add_subcommand("rotate", "Replace every key; sign root N+1 with old and new root keys");
  add_common(rotate);
  rotate->callback([&run, flags] { run = [flags] { return Rotate(*flags); }; });
}

}  // namespace outpost::apps
