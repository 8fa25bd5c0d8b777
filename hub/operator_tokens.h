// Operators of the hub's operator listener and their bearer tokens (hub/FORMAT.md section 6):
// the operator tokens file, which holds only the SHA-256 of each token with its operator's
// name and tenant; adding an operator (the token is made here and shown once); and turning
// a presented Authorization header into the operator's Caller. A presented token is parsed
// with base/auth's ParseBearer (RFC 6750 alphabet, 128 bits at least), hashed, and compared
// in constant time with every entry's hash: the secret is never a lookup key, and how long
// the check takes does not depend on which entry, if any, it matches.
//
// Thread-safe: OperatorTokens is a value; the functions only read their arguments (except
// AddOperatorToken, which replaces the file atomically; one writer at a time).
#ifndef OUTPOST_HUB_OPERATOR_TOKENS_H_
#define OUTPOST_HUB_OPERATOR_TOKENS_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "hub/http.h"

namespace outpost::hub {

// The largest operator tokens file read, and the most entries it may hold.
inline constexpr size_t kMaxOperatorTokensBytes = 1 << 20;
inline constexpr size_t kMaxOperators = 10000;

// One operator: who (`name`, in logs), what they see (`tenant`), and the SHA-256 of their
// token (32 raw bytes).
struct OperatorEntry {
  std::string name{};
  std::string tenant{};
  std::string token_sha256{};
};

struct OperatorTokens {
  std::vector<OperatorEntry> entries{};
};

// Parses the YAML text of an operator tokens file. InvalidArgument with reason
// bad_operator_tokens (naming the entry) for anything hub/FORMAT.md section 6 refuses.
Result<OperatorTokens> ParseOperatorTokens(std::string_view yaml_text);

// The file's YAML text for `tokens`, which ParseOperatorTokens reads back unchanged.
std::string FormatOperatorTokens(const OperatorTokens& tokens);

// Reads and parses the file at `path` (hub/secrets.h's ReadSecretFile: a mode looser than
// 0600 is logged as a warning). NotFound when it is missing; errors of the parse with the
// path as context.
Result<OperatorTokens> LoadOperatorTokens(const std::string& path);

// Adds an operator called `name` of `tenant` to the file at `path` (created 0600 when
// absent; replaced atomically, mode 0600) and returns the new token, which is stored
// nowhere. InvalidArgument (reason bad_operator_tokens) for a bad name or tenant;
// AlreadyExists (reason operator_exists) when the file names `name` already, and then the
// file is not changed; the file's own errors as LoadOperatorTokens.
Result<std::string> AddOperatorToken(const std::string& path, std::string_view name,
                                     std::string_view tenant);

// The operator whose token `authorization` (an Authorization header's value) carries: a
// Caller of kind kOperator with the entry's tenant and, in `credential`, its name.
// Unauthenticated with reason operator_token when the header is empty, is not "Bearer
// <token>" with a token of 22 to 512 characters, or carries a token no entry has.
Result<Caller> AuthenticateOperator(const OperatorTokens& tokens, std::string_view authorization);

// Whether the query string of a request target carries a token: a parameter named `token`
// or `access_token` (compared without case), which the operator listener refuses (400,
// token_in_url) before routing, so that no token is ever taken from a URL that proxies,
// browser history and logs keep.
bool TokenInQuery(std::string_view target);

}  // namespace outpost::hub

#endif  // OUTPOST_HUB_OPERATOR_TOKENS_H_
