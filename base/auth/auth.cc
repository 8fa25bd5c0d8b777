// Roles, the credentials file (base/auth/FORMAT.md) and the Authenticator (see auth.h).
#include "base/auth/auth.h"

#include <sys/stat.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <set>
#include <unordered_map>
#include <utility>

#include "base/clock.h"
#include "base/coding.h"
#include "base/crypto/crypto.h"
#include "base/crypto/x509.h"
#include "base/file.h"
#include "base/logging.h"
#include "base/names.h"
#include "base/yaml/yaml.h"

namespace outpost::auth {
namespace {

constexpr std::string_view kBadCredentials = "bad_credentials";
// Bounds of the credentials file (base/auth/FORMAT.md section 2).
constexpr size_t kMaxEntries = 4096;
constexpr uint64_t kMaxCredentialsBytes = uint64_t{1} << 20;
constexpr size_t kMaxCommonNameBytes = 64;
// Bounds of the client CA and CRL files (base/crypto/x509.h, ClientCertificateVerifier).
constexpr uint64_t kMaxCaBytes = uint64_t{1} << 20;
constexpr uint64_t kMaxCrlBytes = uint64_t{16} << 20;
// Certificates whose verification an Authenticator remembers.
constexpr size_t kMaxCachedCertificates = 1024;
// The prefix of the tokens MakeToken makes, and their random bytes.
constexpr std::string_view kTokenPrefix = "opt_";
constexpr size_t kTokenRandomBytes = 32;

constexpr std::array<Role, 4> kRoles = {Role::kInfer, Role::kLabel, Role::kRead, Role::kAdmin};

// `text` quoted for a message: at most 64 bytes, bytes outside printable ASCII as \xNN.
std::string Quote(std::string_view text) {
  std::string out = "\"";
  for (size_t i = 0; i < text.size() && i < 64; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\x%02x", c);
      out += escaped;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > 64) out += "...";
  return out + "\"";
}

Status Unauthenticated(std::string_view reason, std::string_view detail) {
  return ErrorWithReason(StatusCode::kUnauthenticated, reason, detail);
}

Status Malformed(std::string_view detail) {
  return Unauthenticated("credential_malformed", detail);
}

bool IsB64TokenChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

bool AsciiEqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// ---- The credentials file

// Where an entry came from, for messages: its line in the file, or its index when the
// credentials were given as parts.
std::string Where(size_t index, int line) {
  if (line >= 0) return "credentials file line " + std::to_string(line + 1);
  return "credentials entry " + std::to_string(index);
}

Status Bad(std::string_view detail) {
  return ErrorWithReason(StatusCode::kInvalidArgument, kBadCredentials, detail);
}

// The checks of one entry that do not depend on the others (base/auth/FORMAT.md section 1).
Status CheckEntry(const Credential& entry, const std::string& where) {
  Status name = CheckName(kCredentialNameRule, entry.name);
  if (!name.ok()) return Bad(where + ": " + std::string(name.message()));
  const std::string what = where + ": entry \"" + entry.name + "\"";
  const int identities =
      !entry.token_sha256.empty() + !entry.cert_common_name.empty() + !entry.cert_sha256.empty();
  if (identities != 1) {
    return Bad(what + " needs exactly one of token_sha256, cert_common_name and cert_sha256");
  }
  if (!entry.token_sha256.empty() && entry.token_sha256.size() != crypto::kSha256Bytes) {
    return Bad(what + " has a token_sha256 that is not 32 bytes");
  }
  if (!entry.cert_sha256.empty() && entry.cert_sha256.size() != crypto::kSha256Bytes) {
    return Bad(what + " has a cert_sha256 that is not 32 bytes");
  }
  if (entry.cert_common_name.size() > kMaxCommonNameBytes) {
    return Bad(what + " has a cert_common_name longer than 64 bytes");
  }
  // Printable ASCII only, so that the name reads back unchanged from any YAML spelling.
  for (char c : entry.cert_common_name) {
    if (c < 0x20 || c > 0x7e) {
      return Bad(what + " has a cert_common_name that is not printable ASCII");
    }
  }
  if ((entry.roles & ~kAllRoles) != 0) return Bad(what + " has a role bit no role names");
  return Status::Ok();
}

// Every entry's checks, and the rules across entries: the count, unique names and unique
// identities. `lines` (may be empty) holds each entry's line in the file.
Status CheckCredentials(const Credentials& credentials, const std::vector<int>& lines) {
  if (credentials.entries.size() > kMaxEntries) {
    return Bad("the credentials file holds more than 4096 entries");
  }
  std::set<std::string_view> names, tokens, common_names, certs;
  for (size_t i = 0; i < credentials.entries.size(); ++i) {
    const Credential& entry = credentials.entries[i];
    const std::string where = Where(i, i < lines.size() ? lines[i] : -1);
    OUTPOST_RETURN_IF_ERROR(CheckEntry(entry, where));
    if (!names.insert(entry.name).second) {
      return Bad(where + ": the name \"" + entry.name + "\" is given twice");
    }
    const bool unique =
        (entry.token_sha256.empty() || tokens.insert(entry.token_sha256).second) &&
        (entry.cert_sha256.empty() || certs.insert(entry.cert_sha256).second) &&
        (entry.cert_common_name.empty() || common_names.insert(entry.cert_common_name).second);
    if (!unique) {
      return Bad(where + ": entry \"" + entry.name + "\" has the identity of an earlier entry");
    }
  }
  return Status::Ok();
}

// The text of a scalar value, or an error naming `key`.
Result<std::string> ScalarText(const yaml::Node& value, std::string_view key,
                               const std::string& where) {
  if (!value.IsScalar()) return Bad(where + ": " + std::string(key) + " must be text");
  return value.scalar();
}

Result<std::string> HashValue(const yaml::Node& value, std::string_view key,
                              const std::string& where) {
  OUTPOST_ASSIGN_OR_RETURN(std::string text, ScalarText(value, key, where));
  if (!IsHex64(text)) {
    return Bad(where + ": " + std::string(key) + " must be 64 lowercase hex digits");
  }
  return HexDecode(text);
}

Result<RoleSet> RolesValue(const yaml::Node& value, const std::string& where) {
  if (!value.IsSequence()) return Bad(where + ": roles must be a list of role names");
  RoleSet roles = 0;
  for (const yaml::Node& item : value.items()) {
    const std::string at = Where(0, item.mark().line);
    if (!item.IsScalar()) return Bad(at + ": a role must be a role name");
    Result<Role> role = ParseRole(item.scalar());
    if (!role.ok()) return Bad(at + ": " + std::string(role.status().message()));
    if ((roles & RoleBit(*role)) != 0) {
      return Bad(at + ": the role " + std::string(RoleName(*role)) + " is listed twice");
    }
    roles |= RoleBit(*role);
  }
  return roles;
}

// One entry of `credentials:`; the checks across its fields are CheckEntry's.
Result<Credential> ParseEntry(const yaml::Node& node) {
  const std::string where = Where(0, node.mark().line);
  if (!node.IsMap()) return Bad(where + ": an entry must be a map");
  Credential entry;
  std::set<std::string> seen;
  bool has_name = false, has_roles = false;
  for (const auto& [key_node, value] : node.entries()) {
    const std::string at = Where(0, key_node.mark().line);
    if (!key_node.IsScalar()) return Bad(at + ": a key must be text");
    const std::string& key = key_node.scalar();
    if (!seen.insert(key).second) return Bad(at + ": the key " + Quote(key) + " is given twice");
    if (key == "name") {
      OUTPOST_ASSIGN_OR_RETURN(entry.name, ScalarText(value, key, at));
      has_name = true;
    } else if (key == "roles") {
      OUTPOST_ASSIGN_OR_RETURN(entry.roles, RolesValue(value, at));
      has_roles = true;
    } else if (key == "token_sha256") {
      OUTPOST_ASSIGN_OR_RETURN(entry.token_sha256, HashValue(value, key, at));
    } else if (key == "cert_sha256") {
      OUTPOST_ASSIGN_OR_RETURN(entry.cert_sha256, HashValue(value, key, at));
    } else if (key == "cert_common_name") {
      OUTPOST_ASSIGN_OR_RETURN(entry.cert_common_name, ScalarText(value, key, at));
      if (entry.cert_common_name.empty()) return Bad(at + ": cert_common_name is empty");
    } else {
      return Bad(at + ": unknown key " + Quote(key));
    }
  }
  if (!has_name) return Bad(where + ": an entry needs a name");
  if (!has_roles) return Bad(where + ": entry \"" + entry.name + "\" needs roles (may be [])");
  return entry;
}

// The top level: `version: 1` and the `credentials:` node (null when absent).
Result<yaml::Node> CredentialsNode(const yaml::Node& doc) {
  if (!doc.IsMap()) return Bad("credentials file: the document must be a map");
  std::set<std::string> seen;
  yaml::Node credentials;
  bool has_version = false, has_credentials = false;
  for (const auto& [key_node, value] : doc.entries()) {
    const std::string at = Where(0, key_node.mark().line);
    if (!key_node.IsScalar()) return Bad(at + ": a key must be text");
    const std::string& key = key_node.scalar();
    if (!seen.insert(key).second) return Bad(at + ": the key " + Quote(key) + " is given twice");
    if (key == "version") {
      if (!value.IsScalar() || value.scalar() != "1") {
        return Bad(at + ": version must be 1 (base/auth/FORMAT.md)");
      }
      has_version = true;
    } else if (key == "credentials") {
      credentials = value;
      has_credentials = true;
    } else {
      return Bad(at + ": unknown key " + Quote(key));
    }
  }
  if (!has_version) return Bad("credentials file: version is missing");
  if (!has_credentials) return Bad("credentials file: credentials is missing");
  return credentials;
}

// A string in YAML's double-quoted style.
std::string DoubleQuoted(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\x%02x", u);
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// ---- Certificates

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(SystemClock().Now().time_since_epoch())
      .count();
}

// What an Authenticator remembers of one certificate it verified.
struct Verdict {
  Status status;  // OK, or a refusal with its reason (PermissionDenied, from the verifier)
  std::string common_name;
  int64_t not_before_s = 0;
  int64_t not_after_s = 0;
};

// A refusal of the verifier (PermissionDenied) as a 401 with the same reason.
Status AsUnauthenticated(const Status& status) {
  return Status(StatusCode::kUnauthenticated, status.message()).WithReason(status.reason());
}

// Warns when `path` grants anything to the group or to others.
void WarnIfLoose(const std::string& path, std::string_view what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || (st.st_mode & 077) == 0) return;
  char mode[8];
  std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
  OUTPOST_LOG(kWarning) << what << " is readable or writable by others; it should be "
                        << (S_ISDIR(st.st_mode) ? "0700" : "0600") << Field("path", path)
                        << Field("mode", mode);
}

std::string ParentFolder(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// The contents of one of the Authenticator's files, or FailedPrecondition
// (auth_file_unreadable); a file over `max_bytes` is `too_large`'s error.
Result<std::string> ReadAuthFile(const std::string& path, uint64_t max_bytes, std::string_view what,
                                 const Status& too_large) {
  Result<std::string> text = ReadFile(path, max_bytes);
  if (text.ok()) return text;
  if (text.status().code() == StatusCode::kResourceExhausted) {
    return too_large.WithContext(std::string(what) + " " + path);
  }
  return ErrorWithReason(
      StatusCode::kFailedPrecondition, "auth_file_unreadable",
      std::string(what) + " " + path + ": " + std::string(text.status().message()));
}

}  // namespace

// ---- Roles

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kInfer:
      return "infer";
    case Role::kLabel:
      return "label";
    case Role::kRead:
      return "read";
    case Role::kAdmin:
      return "admin";
  }
  return "unknown";
}

Result<Role> ParseRole(std::string_view name) {
  for (Role role : kRoles) {
    if (RoleName(role) == name) return role;
  }
  return ErrorWithReason(
      StatusCode::kInvalidArgument, "bad_role",
      "unknown role " + Quote(name) + "; the roles are infer, label, read and admin");
}

std::string RoleSetName(RoleSet roles) {
  std::string out;
  for (Role role : kRoles) {
    if ((roles & RoleBit(role)) == 0) continue;
    if (!out.empty()) out += ',';
    out += RoleName(role);
  }
  return out;
}

// ---- Bearer tokens

Result<std::string_view> ParseBearer(std::string_view header) {
  constexpr std::string_view kScheme = "Bearer";
  if (header.size() <= kScheme.size() ||
      !AsciiEqualsIgnoreCase(header.substr(0, kScheme.size()), kScheme) ||
      header[kScheme.size()] != ' ') {
    return Malformed("the Authorization header is not \"Bearer <token>\"");
  }
  size_t start = kScheme.size();
  while (start < header.size() && header[start] == ' ') ++start;
  const std::string_view token = header.substr(start);
  if (token.size() < kMinTokenBytes) {
    return Malformed("the bearer token is shorter than " + std::to_string(kMinTokenBytes) +
                     " bytes");
  }
  if (token.size() > kMaxTokenBytes) {
    return Malformed("the bearer token is longer than " + std::to_string(kMaxTokenBytes) +
                     " bytes");
  }
  size_t end = 0;
  while (end < token.size() && IsB64TokenChar(token[end])) ++end;
  const bool has_body = end > 0;
  while (end < token.size() && token[end] == '=') ++end;
  if (!has_body || end != token.size()) {
    return Malformed("the bearer token has a character outside RFC 6750's token alphabet");
  }
  return token;
}

Result<std::string> MakeToken() {
  OUTPOST_ASSIGN_OR_RETURN(std::string random, crypto::RandomBytes(kTokenRandomBytes));
  return std::string(kTokenPrefix) + Base64Encode(random, Base64Alphabet::kUrl);
}

size_t FindTokenHash(std::string_view token, size_t count,
                     const std::function<std::string_view(size_t)>& hash_at) {
  const std::string digest = crypto::Sha256(token);
  size_t found = SIZE_MAX;
  for (size_t i = 0; i < count; ++i) {
    const size_t mask = ~(static_cast<size_t>(crypto::ConstantTimeEquals(digest, hash_at(i))) - 1);
    found = (found & ~mask) | (i & mask);
  }
  return found;
}

// ---- The credentials file

Result<Credentials> ParseCredentials(std::string_view yaml_text) {
  if (yaml_text.size() > kMaxCredentialsBytes) {
    return Bad("the credentials file is larger than 1 MiB");
  }
  Result<yaml::Node> doc = yaml::Parse(yaml_text);
  if (!doc.ok()) return Bad("credentials file: " + std::string(doc.status().message()));
  OUTPOST_ASSIGN_OR_RETURN(yaml::Node list, CredentialsNode(*doc));
  Credentials credentials;
  std::vector<int> lines;
  if (!list.IsNull()) {
    if (!list.IsSequence()) {
      return Bad(Where(0, list.mark().line) + ": credentials must be a list of entries");
    }
    if (list.size() > kMaxEntries) {
      return Bad("the credentials file holds more than 4096 entries");
    }
    for (const yaml::Node& item : list.items()) {
      OUTPOST_ASSIGN_OR_RETURN(Credential entry, ParseEntry(item));
      credentials.entries.push_back(std::move(entry));
      lines.push_back(item.mark().line);
    }
  }
  OUTPOST_RETURN_IF_ERROR(CheckCredentials(credentials, lines));
  return credentials;
}

std::string FormatCredentials(const Credentials& credentials) {
  std::string out =
      "# The credentials of this site's listeners (base/auth/FORMAT.md). Keep this file 0600:\n"
      "# tokens are stored as their SHA-256 only.\n"
      "version: 1\n";
  if (credentials.entries.empty()) return out + "credentials: []\n";
  out += "credentials:\n";
  for (const Credential& entry : credentials.entries) {
    // A name is plain YAML, except the one spelling that would read as null.
    out += "  - name: " + (entry.name == "null" ? DoubleQuoted(entry.name) : entry.name) + "\n";
    if (!entry.token_sha256.empty()) {
      out += "    token_sha256: " + HexEncode(entry.token_sha256) + "\n";
    }
    if (!entry.cert_common_name.empty()) {
      out += "    cert_common_name: " + DoubleQuoted(entry.cert_common_name) + "\n";
    }
    if (!entry.cert_sha256.empty()) {
      out += "    cert_sha256: " + HexEncode(entry.cert_sha256) + "\n";
    }
    std::string roles;
    for (Role role : kRoles) {
      if ((entry.roles & RoleBit(role)) == 0) continue;
      if (!roles.empty()) roles += ", ";
      roles += RoleName(role);
    }
    out += "    roles: [" + roles + "]\n";
  }
  return out;
}

// ---- Authorization

Status Authorize(const Principal& principal, Role role) {
  if (principal.Has(role)) return Status::Ok();
  return ErrorWithReason(StatusCode::kPermissionDenied, "role_required",
                         "credential \"" + principal.name + "\" does not hold the role " +
                             std::string(RoleName(role)));
}

// ---- The Authenticator

struct Authenticator::Impl {
  Credentials credentials;
  // Every token entry's hash and its index in credentials.entries, compared one by one.
  std::vector<std::string> token_hashes;
  std::vector<size_t> token_entries;
  // Certificate entries by their raw SHA-256 and by their common name.
  std::unordered_map<std::string, size_t> by_cert_sha256;
  std::unordered_map<std::string, size_t> by_common_name;
  // Null when no client CA is configured.
  std::unique_ptr<crypto::ClientCertificateVerifier> verifier;

  std::mutex cache_mu;                             // guards cache
  std::unordered_map<std::string, Verdict> cache;  // by the certificate's raw SHA-256

  Result<Principal> AuthenticateToken(std::string_view authorization) const;
  Result<Principal> AuthenticateCertificate(std::string_view der);
  Verdict VerifyCached(std::string_view der, const std::string& digest, int64_t now_s);
  Principal PrincipalOf(size_t index, Principal::Via via) const {
    const Credential& entry = credentials.entries[index];
    return Principal{.name = entry.name, .roles = entry.roles, .via = via};
  }
};

Result<Principal> Authenticator::Impl::AuthenticateToken(std::string_view authorization) const {
  OUTPOST_ASSIGN_OR_RETURN(std::string_view token, ParseBearer(authorization));
  const size_t found = FindTokenHash(
      token, token_hashes.size(), [this](size_t i) { return std::string_view(token_hashes[i]); });
  if (found == SIZE_MAX) {
    return Unauthenticated("credential_invalid", "no credential holds this bearer token");
  }
  return PrincipalOf(token_entries[found], Principal::Via::kToken);
}

Verdict Authenticator::Impl::VerifyCached(std::string_view der, const std::string& digest,
                                          int64_t now_s) {
  {
    std::lock_guard<std::mutex> lock(cache_mu);
    auto it = cache.find(digest);
    if (it != cache.end()) return it->second;
  }
  Verdict verdict;
  Result<crypto::CertificateInfo> info = crypto::ParseCertificateDer(der);
  if (!info.ok()) {
    verdict.status = ErrorWithReason(StatusCode::kPermissionDenied, "certificate_untrusted",
                                     "the client certificate does not parse");
  } else {
    verdict.status = verifier->Verify(der, now_s);
    verdict.common_name = info->common_name;
    verdict.not_before_s = info->not_before_ms / 1000;
    verdict.not_after_s = info->not_after_ms / 1000;
  }
  // A refusal for the certificate's period depends on the time, so it is not remembered;
  // every other outcome holds for as long as this authenticator (its CA and CRL) does.
  if (verdict.status.reason() != "certificate_expired") {
    std::lock_guard<std::mutex> lock(cache_mu);
    if (cache.size() >= kMaxCachedCertificates) {
      for (auto it = cache.begin(); it != cache.end();) {
        it = it->second.status.ok() && it->second.not_after_s < now_s ? cache.erase(it)
                                                                      : std::next(it);
      }
      if (cache.size() >= kMaxCachedCertificates) cache.erase(cache.begin());
    }
    cache.emplace(digest, verdict);
  }
  return verdict;
}

Result<Principal> Authenticator::Impl::AuthenticateCertificate(std::string_view der) {
  if (!verifier) {
    return Unauthenticated("certificate_untrusted",
                           "client certificates are not accepted: no client CA is configured");
  }
  const std::string digest = crypto::Sha256(der);
  const int64_t now_s = NowSeconds();
  Verdict verdict = VerifyCached(der, digest, now_s);
  if (!verdict.status.ok()) return AsUnauthenticated(verdict.status);
  // A remembered success holds only within the certificate's validity period.
  if (now_s < verdict.not_before_s || now_s > verdict.not_after_s) {
    return Unauthenticated("certificate_expired",
                           "the client certificate is outside its validity period");
  }
  if (auto it = by_cert_sha256.find(digest); it != by_cert_sha256.end()) {
    return PrincipalOf(it->second, Principal::Via::kCertificate);
  }
  if (auto it = by_common_name.find(verdict.common_name); it != by_common_name.end()) {
    return PrincipalOf(it->second, Principal::Via::kCertificate);
  }
  return Unauthenticated("credential_invalid",
                         "no credential names this client certificate (common name " +
                             Quote(verdict.common_name) + ")");
}

Authenticator::Authenticator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Authenticator::~Authenticator() = default;

Result<std::shared_ptr<const Authenticator>> Authenticator::FromParts(Credentials credentials,
                                                                      std::string client_ca_pem,
                                                                      std::string client_crl_pem) {
  OUTPOST_RETURN_IF_ERROR(CheckCredentials(credentials, {}));
  auto impl = std::make_unique<Impl>();
  if (!client_crl_pem.empty() && client_ca_pem.empty()) {
    return ErrorWithReason(StatusCode::kFailedPrecondition, "bad_client_crl",
                           "a client CRL is given without a client CA");
  }
  if (!client_ca_pem.empty()) {
    Result<std::unique_ptr<crypto::ClientCertificateVerifier>> verifier =
        crypto::ClientCertificateVerifier::Create(client_ca_pem, client_crl_pem);
    if (!verifier.ok()) {
      const Status& status = verifier.status();
      return Status(StatusCode::kFailedPrecondition, status.message()).WithReason(status.reason());
    }
    impl->verifier = std::move(*verifier);
  }
  for (size_t i = 0; i < credentials.entries.size(); ++i) {
    const Credential& entry = credentials.entries[i];
    if (!entry.token_sha256.empty()) {
      impl->token_hashes.push_back(entry.token_sha256);
      impl->token_entries.push_back(i);
    } else if (!entry.cert_sha256.empty()) {
      impl->by_cert_sha256.emplace(entry.cert_sha256, i);
    } else {
      impl->by_common_name.emplace(entry.cert_common_name, i);
    }
  }
  impl->credentials = std::move(credentials);
  return std::shared_ptr<const Authenticator>(new Authenticator(std::move(impl)));
}

Result<std::shared_ptr<const Authenticator>> Authenticator::Load(
    const AuthenticatorOptions& options) {
  const std::string& path = options.credentials_file;
  OUTPOST_ASSIGN_OR_RETURN(std::string text,
                           ReadAuthFile(path, kMaxCredentialsBytes, "credentials file",
                                        Bad("the credentials file is larger than 1 MiB")));
  WarnIfLoose(path, "the credentials file");
  WarnIfLoose(ParentFolder(path), "the credentials file's folder");
  Result<Credentials> credentials = ParseCredentials(text);
  if (!credentials.ok()) return credentials.status().WithContext(path);
  std::string ca_pem, crl_pem;
  if (!options.client_ca_file.empty()) {
    OUTPOST_ASSIGN_OR_RETURN(
        ca_pem, ReadAuthFile(options.client_ca_file, kMaxCaBytes, "client CA file",
                             ErrorWithReason(StatusCode::kFailedPrecondition, "bad_client_ca",
                                             "the client CA file is larger than 1 MiB")));
  }
  if (!options.client_crl_file.empty()) {
    OUTPOST_ASSIGN_OR_RETURN(
        crl_pem, ReadAuthFile(options.client_crl_file, kMaxCrlBytes, "client CRL file",
                              ErrorWithReason(StatusCode::kFailedPrecondition, "bad_client_crl",
                                              "the client CRL file is larger than 16 MiB")));
  }
  Result<std::shared_ptr<const Authenticator>> made =
      FromParts(std::move(*credentials), std::move(ca_pem), std::move(crl_pem));
  if (!made.ok() && made.status().reason() == "bad_client_ca") {
    return made.status().WithContext(options.client_ca_file);
  }
  if (!made.ok() && made.status().reason() == "bad_client_crl") {
    return made.status().WithContext(options.client_crl_file);
  }
  return made;
}

Result<Principal> Authenticator::Authenticate(const Presented& presented) const {
  if (!presented.authorization.empty()) return impl_->AuthenticateToken(presented.authorization);
  if (!presented.cert_der.empty()) return impl_->AuthenticateCertificate(presented.cert_der);
  return Unauthenticated("credential_missing", "no bearer token and no client certificate");
}

size_t Authenticator::size() const { return impl_->credentials.entries.size(); }

}  // namespace outpost::auth
