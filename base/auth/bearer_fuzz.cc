// Fuzz target: ParseBearer on arbitrary bytes (the Authorization header comes from any client
// on the site's network) must return a Status and never crash or read past its input; a
// token it accepts lies inside the input, at its end, within the length bounds and in the
// b64token alphabet. An Authenticator with a few entries then authenticates the same header
// without crashing, and refuses it with one of auth.h's reasons.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/auth/auth.h"
#include "base/crypto/crypto.h"

namespace {

const outpost::auth::Authenticator& FixedAuthenticator() {
  static const std::shared_ptr<const outpost::auth::Authenticator> authenticator = [] {
    outpost::auth::Credentials credentials;
    const char* tokens[] = {"opt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                            "0123456789abcdefghijklmnop", "Bearer-token-of-a-fuzzer=="};
    int i = 0;
    for (const char* token : tokens) {
      credentials.entries.push_back({.name = "fuzz-" + std::to_string(i++),
                                     .roles = outpost::auth::RoleBit(outpost::auth::Role::kInfer),
                                     .token_sha256 = outpost::crypto::Sha256(token)});
    }
    auto made = outpost::auth::Authenticator::FromParts(std::move(credentials), "", "");
    if (!made.ok()) __builtin_trap();
    return *made;
  }();
  return *authenticator;
}

bool InAlphabet(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~' || c == '+' || c == '/' || c == '=';
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;
  // A copy of exactly `size` bytes, so that a read past the end is ASan's to see.
  std::unique_ptr<char[]> copy(new char[size == 0 ? 1 : size]);
  for (size_t i = 0; i < size; ++i) copy[i] = static_cast<char>(data[i]);
  std::string_view header(copy.get(), size);
  auto token = outpost::auth::ParseBearer(header);
  if (token.ok()) {
    const char* begin = token->data();
    if (begin < header.data() || begin + token->size() != header.data() + header.size() ||
        token->size() < outpost::auth::kMinTokenBytes ||
        token->size() > outpost::auth::kMaxTokenBytes) {
      __builtin_trap();
    }
    for (char c : *token) {
      if (!InAlphabet(c)) __builtin_trap();
    }
  } else if (token.status().reason() != "credential_malformed") {
    __builtin_trap();
  }
  if (!header.empty()) {
    auto who = FixedAuthenticator().Authenticate({.authorization = header});
    if (!who.ok()) {
      const std::string_view reason = who.status().reason();
      if (reason != "credential_malformed" && reason != "credential_invalid") __builtin_trap();
    } else if (!token.ok()) {
      __builtin_trap();
    }
  }
  return 0;
}
