// Fuzz target: the operator listener's token handling on arbitrary bytes. The input is split
// at its first newline: the part before is an Authorization header (a remote caller's
// bytes), which AuthenticateOperator and TokenInQuery (as a target) must judge without
// crashing; the rest is an operator tokens file for ParseOperatorTokens, whose result must
// format back to a file that parses to the same entries.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "base/crypto/crypto.h"
#include "hub/operator_tokens.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nl = input.find('\n');
  const std::string_view header = input.substr(0, nl);
  const std::string_view file = nl == std::string_view::npos ? "" : input.substr(nl + 1);

  static const outpost::hub::OperatorTokens kKnown = [] {
    outpost::hub::OperatorTokens tokens;
    tokens.entries.push_back(
        {.name = "alice",
         .tenant = "acme",
         .token_sha256 = outpost::crypto::Sha256("opt_fuzz-known-token-0123456789")});
    return tokens;
  }();
  (void)outpost::hub::AuthenticateOperator(kKnown, header);
  (void)outpost::hub::TokenInQuery(header);

  outpost::Result<outpost::hub::OperatorTokens> parsed = outpost::hub::ParseOperatorTokens(file);
  if (!parsed.ok()) return 0;
  outpost::Result<outpost::hub::OperatorTokens> again =
      outpost::hub::ParseOperatorTokens(outpost::hub::FormatOperatorTokens(*parsed));
  if (!again.ok() || again->entries.size() != parsed->entries.size()) std::abort();
  for (size_t i = 0; i < parsed->entries.size(); ++i) {
    const auto& a = parsed->entries[i];
    const auto& b = again->entries[i];
    if (a.name != b.name || a.tenant != b.tenant || a.token_sha256 != b.token_sha256) std::abort();
  }
  return 0;
}
