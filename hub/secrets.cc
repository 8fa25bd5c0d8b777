// The hub's secrets at rest: secret files, and store URLs kept off command lines.
#include "hub/secrets.h"

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>

#include "base/file.h"
#include "base/logging.h"

namespace outpost::hub {
namespace {

bool EqualsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

}  // namespace

bool UrlQueryHas(std::string_view url, std::string_view name) {
  size_t q = url.find('?');
  if (q == std::string_view::npos) return false;
  std::string_view query = url.substr(q + 1);
  query = query.substr(0, query.find('#'));
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view param = query.substr(0, amp);
    if (EqualsNoCase(param.substr(0, param.find('=')), name)) return true;
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return false;
}

namespace {

std::string_view Trimmed(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  size_t eol = text.find_first_of("\r\n");
  text = text.substr(0, eol);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

}  // namespace

bool StoreUrlHasPassword(std::string_view url) {
  size_t scheme = url.find("://");
  if (scheme != std::string_view::npos) {
    std::string_view rest = url.substr(scheme + 3);
    std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
    size_t at = authority.rfind('@');
    if (at != std::string_view::npos &&
        authority.substr(0, at).find(':') != std::string_view::npos) {
      return true;
    }
  }
  return UrlQueryHas(url, "password");
}

Result<std::string> ReadSecretFile(const std::string& path, std::string_view what,
                                   uint64_t max_bytes) {
  OUTPOST_ASSIGN_OR_RETURN(std::string text, ReadFile(path, max_bytes));
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    OUTPOST_LOG(kWarning) << std::string(what) +
                                 " may be read by other users than its owner; make it 0600"
                          << Field("file", path) << Field("mode", mode);
  }
  return text;
}

Result<std::string> ResolveStoreUrl(const StoreUrlSources& sources) {
  if (!sources.url.empty() && !sources.url_file.empty()) {
    return InvalidArgumentError("give the store as " + sources.url_flag +
                                " or as a URL file, not both");
  }
  if (!sources.url.empty()) {
    if (StoreUrlHasPassword(sources.url)) {
      return ErrorWithReason(
          StatusCode::kInvalidArgument, "store_url_password",
          "the store URL of " + sources.url_flag +
              " holds a password, which every user of this machine could read; put the URL "
              "in a file of mode 0600 (--store-url-file) or in the environment variable " +
              kStoreUrlEnv + " (hub/FORMAT.md section 6)");
    }
    return sources.url;
  }
  if (!sources.url_file.empty()) {
    OUTPOST_ASSIGN_OR_RETURN(std::string text,
                             ReadSecretFile(sources.url_file, "the store URL file", 64 << 10));
    std::string_view url = Trimmed(text);
    if (url.empty()) {
      return InvalidArgumentError("the store URL file " + sources.url_file + " is empty");
    }
    return std::string(url);
  }
  if (const char* env = std::getenv(kStoreUrlEnv); env != nullptr && *env != '\0') {
    return std::string(env);
  }
  if (sources.fallback.empty()) {
    return InvalidArgumentError("no store: give " + sources.url_flag + ", --store-url-file or " +
                                kStoreUrlEnv);
  }
  return sources.fallback;
}

}  // namespace outpost::hub
