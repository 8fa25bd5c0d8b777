// The hub's release answers, read by the site (hub/FORMAT.md section 10).
#include "sync/release_list.h"

#include <charconv>
#include <cstdint>

#include "base/coding.h"
#include "base/json/json.h"
#include "base/names.h"

namespace outpost::sync {
namespace {

constexpr size_t kMaxListBytes = size_t{1} << 20;
constexpr size_t kMaxListEntries = 100;

Status BadList(std::string_view why) {
  return ErrorWithReason(StatusCode::kInvalidArgument, "bad_release_list",
                         "the hub's release list " + std::string(why));
}

// A decimal of 1..19 digits (so it fits in 64 bits), the whole of `text`.
std::optional<uint64_t> Decimal(std::string_view text) {
  uint64_t value = 0;
  if (text.size() > 19 || !ParseDecimal(text, &value)) return std::nullopt;
  return value;
}

}  // namespace

namespace {

// The entries of the answer's array `key`: each a bundle model name, versions in
// 1 .. 2^63-1, a 64-hex-digit SHA-256 and, when `sized`, a size. `required`: an absent array
// is malformed, else it reads as empty (an older hub's answer).
Result<std::vector<OfferedRelease>> ParseEntries(std::string_view body, std::string_view key,
                                                 bool sized, bool required) {
  if (body.size() > kMaxListBytes) return BadList("is over 1 MiB");
  json::Parser parser;
  Result<json::Value> root = parser.Parse(body);
  if (!root.ok() || !root->is_object()) return BadList("is not a JSON object");
  std::vector<OfferedRelease> out;
  if (!required && !root->Find(key)) return out;
  const json::Value list = (*root)[key];
  if (!list.is_array()) return BadList("has no " + std::string(key) + " array");
  if (list.size() > kMaxListEntries) return BadList("has over 100 entries");
  for (size_t i = 0; i < list.size(); ++i) {
    const json::Value entry = list.At(i);
    Result<std::string_view> model = entry["model"].GetString();
    Result<uint64_t> model_version = entry["model_version"].GetUint64();
    Result<uint64_t> version = entry["version"].GetUint64();
    Result<uint64_t> bytes = sized ? entry["bytes"].GetUint64() : Result<uint64_t>(uint64_t{0});
    Result<std::string_view> sha256 = entry["sha256"].GetString();
    if (!model.ok() || !ModelName::IsValid(*model) || !model_version.ok() || !version.ok() ||
        *model_version == 0 || *version == 0 || *model_version > uint64_t{INT64_MAX} ||
        *version > uint64_t{INT64_MAX} || !bytes.ok() || !sha256.ok() || !IsHex64(*sha256)) {
      return BadList(std::string(key) + " entry " + std::to_string(i) + " is malformed");
    }
    out.push_back(OfferedRelease{.model = std::string(*model),
                                 .model_version = *model_version,
                                 .version = *version,
                                 .bytes = *bytes,
                                 .sha256 = std::string(*sha256)});
  }
  return out;
}

}  // namespace

Result<std::vector<OfferedRelease>> ParseReleaseList(std::string_view body) {
  return ParseEntries(body, "releases", /*sized=*/true, /*required=*/true);
}

Result<std::vector<OfferedRelease>> ParseReleaseRollbacks(std::string_view body) {
  return ParseEntries(body, "rollbacks", /*sized=*/false, /*required=*/false);
}

std::optional<std::array<uint64_t, 3>> ParseContentRange(std::string_view header) {
  constexpr std::string_view kUnit = "bytes ";
  if (!header.starts_with(kUnit)) return std::nullopt;
  header.remove_prefix(kUnit.size());
  const size_t dash = header.find('-');
  const size_t slash = header.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || slash < dash) {
    return std::nullopt;
  }
  std::optional<uint64_t> first = Decimal(header.substr(0, dash));
  std::optional<uint64_t> last = Decimal(header.substr(dash + 1, slash - dash - 1));
  std::optional<uint64_t> size = Decimal(header.substr(slash + 1));
  if (!first || !last || !size || *last < *first || *last >= *size) return std::nullopt;
  return std::array<uint64_t, 3>{*first, *last, *size};
}

}  // namespace outpost::sync
