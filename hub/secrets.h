// The hub's secrets at rest (hub/FORMAT.md section 6): files that hold one (the store URL
// file, the operator tokens file) and the store URL's sources. A secret never travels on a
// command line, which every user of the machine reads in /proc/<pid>/cmdline: a store URL
// with a password comes from a file of its owner's alone or from the environment
// (kStoreUrlEnv, which /proc shows to the process's owner only), and the hub hands it to
// `outpost train` the same way.
//
// Thread-safe: free functions over their arguments (ResolveStoreUrl reads the environment).
#ifndef OUTPOST_HUB_SECRETS_H_
#define OUTPOST_HUB_SECRETS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace outpost::hub {

// The environment variable a store URL is read from (outpost hub ..., outpost train).
inline constexpr char kStoreUrlEnv[] = "OUTPOST_STORE_URL";

// Whether a store URL carries a password: a user-info part with a ':' in a URL with an
// authority ("postgresql://user:secret@db/outpost"), or a `password` query parameter
// ("postgresql://db/outpost?password=secret"). "sqlite:PATH" never does.
bool StoreUrlHasPassword(std::string_view url);

// Whether the query string of `url` (after its first '?', before any '#') has a parameter
// called `name`, compared without case ("?a=1&Password=x" has "password").
bool UrlQueryHas(std::string_view url, std::string_view name);

// Reads a file that holds a secret (`what` names it in messages and the log). When the file
// grants group or other users any permission, a warning naming it and its mode is logged
// (the file is still read: its owner decides). NotFound when missing, ResourceExhausted over
// `max_bytes`, other I/O errors as ReadFile's.
Result<std::string> ReadSecretFile(const std::string& path, std::string_view what,
                                   uint64_t max_bytes);

// Where a command's store URL may come from, in the order ResolveStoreUrl tries them.
struct StoreUrlSources {
  // The URL given directly (--store, or the config's store:); "" = none. Refused when it
  // holds a password.
  std::string url{};
  // A file holding the URL (--store-url-file, or the config's store_url_file:); "" = none.
  std::string url_file{};
  // How `url` was given, for messages ("--store").
  std::string url_flag = "--store";
  // When nothing above and no kStoreUrlEnv is set; "" = InvalidArgument then.
  std::string fallback{};
};

// The store URL: `url` (InvalidArgument with reason store_url_password when it holds a
// password, naming the safe ways), else the first line of `url_file` (trimmed; an empty
// one is InvalidArgument), else the environment's kStoreUrlEnv when set and not empty, else
// `fallback`. InvalidArgument when both `url` and `url_file` are set, or when nothing gives
// a URL.
Result<std::string> ResolveStoreUrl(const StoreUrlSources& sources);

}  // namespace outpost::hub

#endif  // OUTPOST_HUB_SECRETS_H_
