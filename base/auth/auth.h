// Who may call an Outpost listener, and for what: roles, the credentials file that maps each
// credential to its roles, and the Authenticator that turns what a transport established (a
// bearer token, a client certificate) into a Principal. One authenticator serves the edge's
// REST listener (base/http's Router calls it through an authorizer, see http_gate.h) and its
// gRPC listener (serve/grpc_server.cc), so both refuse and serve the same callers with the
// same reasons.
//
//   auto auth = auth::Authenticator::Load({.credentials_file = "/etc/outpost/credentials.yaml",
//                                          .client_ca_file = "/etc/outpost/clients-ca.crt"});
//   Result<auth::Principal> who = (*auth)->Authenticate(presented);   // 401 reasons
//   Status allowed = auth::Authorize(*who, auth::Role::kInfer);       // 403 reason
//
// Tokens are never stored: the credentials file holds the SHA-256 of each one, and a
// presented token is hashed and compared with every stored hash in constant time. A token
// shorter than kMinTokenBytes (128 bits in the alphabet below) is refused before any lookup.
// Client certificates are verified here, not by the TLS layer, against the client CA and its
// CRL, so that REST and gRPC give the same reason for an untrusted, expired or revoked one;
// the TLS layer has already proved that the peer holds the certificate's key.
//
// The credentials file's format is base/auth/FORMAT.md. Reasons (all stable):
//   401 credential_missing      no token and no client certificate
//   401 credential_malformed    an Authorization header that is not "Bearer <token>"
//   401 credential_invalid      a token (or a verified certificate) that no entry names
//   401 certificate_untrusted   a client certificate that does not chain to the client CA
//   401 certificate_expired     ... that is outside its validity period
//   401 certificate_revoked     ... that the client CRL lists
//   403 role_required           authenticated, without the role the call needs
//
// Thread-safe: an Authenticator is immutable; reloading makes a new one (see Load).
#ifndef OUTPOST_BASE_AUTH_AUTH_H_
#define OUTPOST_BASE_AUTH_AUTH_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace outpost::auth {

// A role is one bit; a credential holds a set of them (RoleSet).
enum class Role : uint32_t {
  kInfer = 1u << 0,  // score; server, model metadata and readiness
  kLabel = 1u << 1,  // feedback (labels)
  kRead = 1u << 2,   // records, outbox status, metrics
  kAdmin = 1u << 3,  // repository load/unload, reload
};
using RoleSet = uint32_t;
inline constexpr RoleSet RoleBit(Role role) { return static_cast<RoleSet>(role); }
inline constexpr RoleSet kAllRoles = 0xF;

// "infer", "label", "read", "admin".
std::string_view RoleName(Role role);
// The inverse of RoleName; InvalidArgument (reason bad_role) for any other text.
Result<Role> ParseRole(std::string_view name);
// "infer,read" (in the enum's order); "" for the empty set.
std::string RoleSetName(RoleSet roles);

// The shortest token accepted, in bytes: 22 characters of the base64url alphabet carry
// 132 bits. Tokens that Outpost makes (MakeToken) are longer.
inline constexpr size_t kMinTokenBytes = 22;
// The longest token looked at; a longer Authorization header is credential_malformed.
inline constexpr size_t kMaxTokenBytes = 512;

// The token of an Authorization header value: "Bearer <token>" (the scheme without regard to
// case, one or more spaces, the token in RFC 6750's b64token alphabet, no trailing text).
// Unauthenticated (reason credential_malformed) for anything else, or a token shorter than
// kMinTokenBytes or longer than kMaxTokenBytes. Never reads past `header`.
Result<std::string_view> ParseBearer(std::string_view header);

// One entry of the credentials file.
struct Credential {
  std::string name;  // shown in logs, the audit log and the caller (never the secret)
  RoleSet roles = 0;
  // Exactly one of the three is set:
  std::string token_sha256;        // 32 bytes, the SHA-256 of the token
  std::string cert_common_name;    // a client certificate's subject CN
  std::string cert_sha256;         // 32 bytes, the SHA-256 of a client certificate's DER
};

struct Credentials {
  std::vector<Credential> entries;
};

// Parses the YAML text of a credentials file (base/auth/FORMAT.md): unknown keys, duplicate
// names, an entry with no or several identities, a hash that is not 64 hex digits, an unknown
// role are InvalidArgument (reason bad_credentials) naming the line.
Result<Credentials> ParseCredentials(std::string_view yaml_text);

// The YAML text of `credentials`, which ParseCredentials reads back unchanged.
std::string FormatCredentials(const Credentials& credentials);

// A new random token: "opt_" and 43 base64url characters (256 bits).
Result<std::string> MakeToken();

// The index, below `count`, of the stored hash that is the SHA-256 of `token`
// (`hash_at(i)` gives the raw 32 bytes of the i-th), or SIZE_MAX when none is. Every stored
// hash is compared, whichever matches, and the match is selected without a branch on it: no
// lookup keyed by the secret, and the time taken does not say which entry, if any, holds the
// token. The edge's credentials and the hub's operator tokens are both checked with it.
size_t FindTokenHash(std::string_view token, size_t count,
                     const std::function<std::string_view(size_t)>& hash_at);

// What a transport established about one call.
struct Presented {
  std::string_view authorization;  // the Authorization header (metadata on gRPC); "" = none
  std::string_view cert_der;       // the client's certificate, DER; "" = none presented
};

// Who called: the entry that authenticated the call.
struct Principal {
  std::string name;
  RoleSet roles = 0;
  enum class Via { kToken, kCertificate } via = Via::kToken;
  bool Has(Role role) const { return (roles & RoleBit(role)) != 0; }
};

// PermissionDenied (reason role_required, naming the role and the credential) unless
// `principal` holds `role`.
Status Authorize(const Principal& principal, Role role);

struct AuthenticatorOptions {
  // The credentials file (0600; a looser mode is logged as a warning naming the file).
  std::string credentials_file;
  // PEM file of the CA that client certificates must chain to; "" = client certificates are
  // not accepted (a presented one is certificate_untrusted).
  std::string client_ca_file;
  // PEM file of a CRL of that CA; "" = none.
  std::string client_crl_file;
};

class Authenticator {
 public:
  // Reads and checks every file. InvalidArgument (reason bad_credentials) for a bad
  // credentials file; FailedPrecondition for a file that cannot be read or a CA or CRL that
  // does not parse. A server reloads by calling Load again and swapping the pointer it holds.
  static Result<std::shared_ptr<const Authenticator>> Load(const AuthenticatorOptions& options);
  // The same from parsed credentials and PEM text (tests, fuzzing).
  static Result<std::shared_ptr<const Authenticator>> FromParts(Credentials credentials,
                                                               std::string client_ca_pem,
                                                               std::string client_crl_pem);

  ~Authenticator();

  // A bearer token wins over a certificate when both are presented. Unauthenticated with
  // one of the 401 reasons above.
  Result<Principal> Authenticate(const Presented& presented) const;

  // How many entries the file held.
  size_t size() const;

 private:
  struct Impl;
  explicit Authenticator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace outpost::auth

#endif  // OUTPOST_BASE_AUTH_AUTH_H_
