// Fuzz target: ParseCredentials on arbitrary bytes (a credentials file is written by hand or
// by tools an operator runs) must return a Status and never crash, hang or leak; a file it
// accepts, written back by FormatCredentials, must read back to the same entries, and be
// written again byte for byte the same.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/auth/auth.h"

namespace {

bool SameEntries(const outpost::auth::Credentials& a, const outpost::auth::Credentials& b) {
  if (a.entries.size() != b.entries.size()) return false;
  for (size_t i = 0; i < a.entries.size(); ++i) {
    const outpost::auth::Credential& x = a.entries[i];
    const outpost::auth::Credential& y = b.entries[i];
    if (x.name != y.name || x.roles != y.roles || x.token_sha256 != y.token_sha256 ||
        x.cert_common_name != y.cert_common_name || x.cert_sha256 != y.cert_sha256) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = outpost::auth::ParseCredentials(text);
  if (!parsed.ok()) {
    if (parsed.status().reason() != "bad_credentials") __builtin_trap();
    return 0;
  }
  const std::string written = outpost::auth::FormatCredentials(*parsed);
  auto again = outpost::auth::ParseCredentials(written);
  if (!again.ok() || !SameEntries(*parsed, *again)) __builtin_trap();
  if (outpost::auth::FormatCredentials(*again) != written) __builtin_trap();
  return 0;
}
