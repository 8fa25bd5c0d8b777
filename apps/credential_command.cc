// `outpost edge credential add|list|remove`: the edge's credentials file (base/auth/FORMAT.md),
// kept by the operator on the node. A token is made here, printed once on stdout and stored
// only as its SHA-256; a certificate entry names a client certificate by its subject CN or by
// the SHA-256 of its DER. The file is written atomically, 0600; a running edge reads it again
// on SIGHUP.
//
//   outpost edge credential add --data-dir /var/lib/outpost --name scorer-1 --role infer
//   outpost edge credential add --data-dir /var/lib/outpost --name historian
//       --cert-file historian.crt --role infer --role read   (one line)
//   outpost edge credential list --data-dir /var/lib/outpost
//   outpost edge credential remove --data-dir /var/lib/outpost --name scorer-1
#include <CLI/CLI.hpp>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "base/auth/auth.h"
#include "base/coding.h"
#include "base/crypto/crypto.h"
#include "base/crypto/x509.h"
#include "base/file.h"

namespace outpost::apps {
namespace {

struct CredentialFlags {
  std::string file;      // --credentials-file
  std::string data_dir;  // --data-dir: <data_dir>/credentials.yaml
  std::string name;
  std::vector<std::string> roles;
  std::string cert_cn;
  std::string cert_file;
};

Result<std::string> CredentialsPath(const CredentialFlags& flags) {
  if (!flags.file.empty()) return flags.file;
  if (!flags.data_dir.empty()) return JoinPath(flags.data_dir, "credentials.yaml");
  return InvalidArgumentError("give --credentials-file or --data-dir");
}

// The file's entries; none when it does not exist yet.
Result<auth::Credentials> ReadCredentials(const std::string& path) {
  if (!PathExists(path)) return auth::Credentials{};
  OUTPOST_ASSIGN_OR_RETURN(std::string text, ReadFile(path, 1 << 20));
  Result<auth::Credentials> parsed = auth::ParseCredentials(text);
  if (!parsed.ok()) return parsed.status().WithContext(path);
  return parsed;
}

Status WriteCredentials(const std::string& path, const auth::Credentials& credentials) {
  std::string dir = path.substr(0, path.find_last_of('/') + 1);
  if (!dir.empty()) OUTPOST_RETURN_IF_ERROR(MakeDirectories(dir, 0700));
  return WriteFileAtomically(path, auth::FormatCredentials(credentials), 0600);
}

Status AddCredential(const CredentialFlags& flags) {
  OUTPOST_ASSIGN_OR_RETURN(std::string path, CredentialsPath(flags));
  OUTPOST_ASSIGN_OR_RETURN(auth::Credentials credentials, ReadCredentials(path));
  auth::Credential entry{.name = flags.name};
  for (const std::string& name : flags.roles) {
    OUTPOST_ASSIGN_OR_RETURN(auth::Role role, auth::ParseRole(name));
    entry.roles |= auth::RoleBit(role);
  }
  if (!flags.cert_cn.empty() && !flags.cert_file.empty()) {
    return InvalidArgumentError("give --cert-cn or --cert-file, not both");
  }
  std::string token;
  if (!flags.cert_file.empty()) {
    OUTPOST_ASSIGN_OR_RETURN(std::string pem, ReadFile(flags.cert_file, 1 << 20));
    OUTPOST_ASSIGN_OR_RETURN(crypto::CertificateInfo info, crypto::ParseCertificatePem(pem));
    OUTPOST_ASSIGN_OR_RETURN(entry.cert_sha256, HexDecode(info.fingerprint));
  } else if (!flags.cert_cn.empty()) {
    entry.cert_common_name = flags.cert_cn;
  } else {
    OUTPOST_ASSIGN_OR_RETURN(token, auth::MakeToken());
    entry.token_sha256 = crypto::Sha256(token);
  }
  credentials.entries.push_back(std::move(entry));
  // The parser is the one judge of a valid file: names, roles, duplicates.
  Result<auth::Credentials> checked = auth::ParseCredentials(auth::FormatCredentials(credentials));
  if (!checked.ok()) return checked.status();
  OUTPOST_RETURN_IF_ERROR(WriteCredentials(path, credentials));
  if (!token.empty()) {
    // The one time the token is shown: only its hash is kept.
    std::printf("%s\n", token.c_str());
  }
  std::fprintf(stderr, "added %s (%s) to %s; a running edge reads it on SIGHUP\n",
               flags.name.c_str(), auth::RoleSetName(credentials.entries.back().roles).c_str(),
               path.c_str());
  return Status();
}

Status ListCredentials(const CredentialFlags& flags) {
  OUTPOST_ASSIGN_OR_RETURN(std::string path, CredentialsPath(flags));
  OUTPOST_ASSIGN_OR_RETURN(auth::Credentials credentials, ReadCredentials(path));
  for (const auth::Credential& c : credentials.entries) {
    const char* via = !c.token_sha256.empty()        ? "token"
                      : !c.cert_common_name.empty() ? "certificate-cn"
                                                     : "certificate";
    std::printf("%s\t%s\t%s\n", c.name.c_str(), via, auth::RoleSetName(c.roles).c_str());
  }
  return Status();
}

Status RemoveCredential(const CredentialFlags& flags) {
  OUTPOST_ASSIGN_OR_RETURN(std::string path, CredentialsPath(flags));
  OUTPOST_ASSIGN_OR_RETURN(auth::Credentials credentials, ReadCredentials(path));
  auto& entries = credentials.entries;
  auto it = std::find_if(entries.begin(), entries.end(),
                         [&](const auth::Credential& c) { return c.name == flags.name; });
  if (it == entries.end()) {
    return NotFoundError("no credential named \"" + flags.name + "\" in " + path);
  }
  entries.erase(it);
  return WriteCredentials(path, credentials);
}

void AddFileOptions(CLI::App* cmd, CredentialFlags& flags) {
  cmd->add_option("--credentials-file", flags.file, "The credentials file (YAML, 0600)");
  cmd->add_option("--data-dir", flags.data_dir,
                  "The edge's data_dir: the file is <data_dir>/credentials.yaml");
}

}  // namespace

// `edge` is the `outpost edge` subcommand; `credential` runs instead of the server when given.
CLI::App* AddEdgeCredentialCommand(CLI::App* edge, Action& run) {
  auto flags = std::make_shared<CredentialFlags>();
  CLI::App* cred = edge->add_subcommand("credential", "Manage who may call this edge, and for what");
  cred->require_subcommand(1);
  CLI::App* add = cred->add_subcommand(
      "add", "Add a credential: a new token (printed once) or a client certificate");
  AddFileOptions(add, *flags);
  add->add_option("--name", flags->name, "The credential's name (logs, audit)")->required();
  add->add_option("--role", flags->roles, "infer, label, read or admin (repeat for several)")
      ->required()
      ->check(CLI::IsMember({"infer", "label", "read", "admin"}));
  add->add_option("--cert-cn", flags->cert_cn, "A client certificate's subject CN");
  add->add_option("--cert-file", flags->cert_file, "A client certificate (PEM), by its SHA-256")
      ->check(CLI::ExistingFile);
  add->callback([flags, &run] { run = [flags] { return AddCredential(*flags); }; });
  CLI::App* list = cred->add_subcommand("list", "List the credentials: name, kind, roles");
  AddFileOptions(list, *flags);
  list->callback([flags, &run] { run = [flags] { return ListCredentials(*flags); }; });
  CLI::App* remove = cred->add_subcommand("remove", "Remove a credential by name");
  AddFileOptions(remove, *flags);
  remove->add_option("--name", flags->name, "The credential's name")->required();
  remove->callback([flags, &run] { run = [flags] { return RemoveCredential(*flags); }; });
  return cred;
}

}  // namespace outpost::apps
