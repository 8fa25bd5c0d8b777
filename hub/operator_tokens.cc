// Operator tokens: the hashes-only file, adding an operator, and the constant-time check of
// a presented token (hub/FORMAT.md section 6).
#include "hub/operator_tokens.h"

#include <cstdint>
#include <utility>

#include "base/auth/auth.h"
#include "base/coding.h"
#include "base/crypto/crypto.h"
#include "base/file.h"
#include "base/names.h"
#include "base/yaml/yaml.h"
#include "hub/secrets.h"

namespace outpost::hub {
namespace {

constexpr std::string_view kBadFile = "bad_operator_tokens";

// An operator's name: upper case allowed, no ':', no '_' first (as base/names.h's rule names).
inline constexpr NameRule kOperatorNameRule{
    "operator name", kBadFile, "[A-Za-z0-9][A-Za-z0-9._-]{0,63}", 64, true, false, false};

Status Bad(std::string_view detail) {
  return ErrorWithReason(StatusCode::kInvalidArgument, kBadFile, detail);
}

Status Unauthenticated(std::string_view detail) {
  return ErrorWithReason(StatusCode::kUnauthenticated, "operator_token", detail);
}

// The name and tenant of an entry, checked against their rules.
Status CheckNameAndTenant(std::string_view name, std::string_view tenant) {
  OUTPOST_RETURN_IF_ERROR(CheckName(kOperatorNameRule, name));
  return CheckName(kTenantRule, tenant).WithReason(kBadFile);
}

// One entry of the `operators:` list; `index` counts from 1 for messages.
Result<OperatorEntry> ParseEntry(const yaml::Node& node, size_t index) {
  const std::string where = "operators entry " + std::to_string(index);
  if (!node.IsMap()) return Bad(where + " is not a map");
  OperatorEntry entry;
  std::string hex;
  for (const auto& [key_node, value] : node.entries()) {
    Result<std::string> key = key_node.As<std::string>();
    Result<std::string> text = value.As<std::string>();
    if (!key.ok() || !text.ok() || !value.IsScalar()) {
      return Bad(where + ": every key and value is a string");
    }
    if (*key == "name") {
      entry.name = std::move(*text);
    } else if (*key == "tenant") {
      entry.tenant = std::move(*text);
    } else if (*key == "token_sha256") {
      hex = std::move(*text);
    } else {
      return Bad(where + ": unknown key \"" + *key + "\"");
    }
  }
  if (entry.name.empty() || entry.tenant.empty() || hex.empty()) {
    return Bad(where + ": name, tenant and token_sha256 are required");
  }
  Status named = CheckNameAndTenant(entry.name, entry.tenant);
  if (!named.ok()) return Bad(where + ": " + std::string(named.message()));
  if (!IsHex64(hex)) {
    return Bad(where + " (\"" + entry.name + "\"): token_sha256 is not 64 lowercase hex digits");
  }
  OUTPOST_ASSIGN_OR_RETURN(entry.token_sha256, HexDecode(hex));
  return entry;
}

// The entries of the `operators:` list, refusing duplicate names and hashes.
Result<OperatorTokens> ParseEntries(const yaml::Node& list) {
  OperatorTokens tokens;
  if (list.IsNull()) return tokens;
  if (!list.IsSequence()) return Bad("operators is not a list");
  if (list.size() > kMaxOperators) return Bad("more than 10,000 operators");
  for (size_t i = 0; i < list.size(); ++i) {
    OUTPOST_ASSIGN_OR_RETURN(OperatorEntry entry, ParseEntry(list.items()[i], i + 1));
    for (const OperatorEntry& other : tokens.entries) {
      if (other.name == entry.name) return Bad("operator \"" + entry.name + "\" appears twice");
      if (other.token_sha256 == entry.token_sha256) {
        return Bad("operators \"" + other.name + "\" and \"" + entry.name +
                   "\" have the same token_sha256");
      }
    }
    tokens.entries.push_back(std::move(entry));
  }
  return tokens;
}

}  // namespace

Result<OperatorTokens> ParseOperatorTokens(std::string_view yaml_text) {
  if (yaml_text.size() > kMaxOperatorTokensBytes) return Bad("the file is over 1 MiB");
  Result<yaml::Node> root = yaml::Parse(yaml_text);
  if (!root.ok()) {
    return yaml::WithYamlContext(root.status(), "operator tokens").WithReason(kBadFile);
  }
  if (root->IsNull()) return OperatorTokens{};
  if (!root->IsMap()) return Bad("the file is not a YAML map");
  yaml::Node list;
  for (const auto& [key_node, value] : root->entries()) {
    Result<std::string> key = key_node.As<std::string>();
    if (!key.ok() || *key != "operators") {
      return Bad("unknown key \"" + (key.ok() ? *key : std::string("?")) + "\"");
    }
    list = value;
  }
  return ParseEntries(list);
}

std::string FormatOperatorTokens(const OperatorTokens& tokens) {
  std::string out =
      "# outpost hub operator add writes this file (hub/FORMAT.md section 6):\n"
      "# the SHA-256 of each operator's token, never the token.\n";
  if (tokens.entries.empty()) return out + "operators: []\n";
  out += "operators:\n";
  for (const OperatorEntry& e : tokens.entries) {
    // Quoted: the name rules allow no quote or backslash, and a bare `null` or `true`
    // would read back as another type.
    out += "  - name: \"" + e.name + "\"\n    tenant: \"" + e.tenant +
           "\"\n    token_sha256: " + HexEncode(e.token_sha256) + "\n";
  }
  return out;
}

Result<OperatorTokens> LoadOperatorTokens(const std::string& path) {
  OUTPOST_ASSIGN_OR_RETURN(
      std::string text, ReadSecretFile(path, "the operator tokens file", kMaxOperatorTokensBytes));
  Result<OperatorTokens> tokens = ParseOperatorTokens(text);
  if (!tokens.ok()) return tokens.status().WithContext(path);
  return tokens;
}

Result<std::string> AddOperatorToken(const std::string& path, std::string_view name,
                                     std::string_view tenant) {
  OUTPOST_RETURN_IF_ERROR(CheckNameAndTenant(name, tenant));
  OperatorTokens tokens;
  if (Result<OperatorTokens> loaded = LoadOperatorTokens(path); loaded.ok()) {
    tokens = std::move(*loaded);
  } else if (loaded.status().code() != StatusCode::kNotFound) {
    return loaded.status();
  }
  for (const OperatorEntry& e : tokens.entries) {
    if (e.name == name) {
      return ErrorWithReason(StatusCode::kAlreadyExists, "operator_exists",
                             "operator \"" + std::string(name) + "\" is in " + path + " already");
    }
  }
  if (tokens.entries.size() >= kMaxOperators) return Bad(path + " holds 10,000 operators");
  OUTPOST_ASSIGN_OR_RETURN(std::string token, auth::MakeToken());
  tokens.entries.push_back(OperatorEntry{.name = std::string(name),
                                         .tenant = std::string(tenant),
                                         .token_sha256 = crypto::Sha256(token)});
  OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(path, FormatOperatorTokens(tokens), 0600));
  return token;
}

Result<Caller> AuthenticateOperator(const OperatorTokens& tokens, std::string_view authorization) {
  if (authorization.empty()) return Unauthenticated("an operator bearer token is required");
  Result<std::string_view> token = auth::ParseBearer(authorization);
  if (!token.ok()) {
    return Unauthenticated(
        "the Authorization header is not \"Bearer <token>\" with a token of 22 to 512 "
        "characters");
  }
  // Constant time: every entry is compared, and the time taken does not say which matched.
  const size_t found = auth::FindTokenHash(*token, tokens.entries.size(), [&tokens](size_t i) {
    return std::string_view(tokens.entries[i].token_sha256);
  });
  const OperatorEntry* match = found == SIZE_MAX ? nullptr : &tokens.entries[found];
  if (match == nullptr) return Unauthenticated("unknown operator token");
  return Caller{
      .kind = Caller::Kind::kOperator, .tenant = match->tenant, .credential = match->name};
}

bool TokenInQuery(std::string_view target) {
  return UrlQueryHas(target, "token") || UrlQueryHas(target, "access_token");
}

}  // namespace outpost::hub
