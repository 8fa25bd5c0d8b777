// Fuzzes the site listener's release routes (SiteReleases::Handle) with the input split as
//   <method byte> <request target> '\n' <Range header> '\n' <If-Match header>
// over a bundles folder holding one file that is not a bundle and one that is a file of
// another site's name pattern, so that target parsing, Range and If-Match parsing and the
// 404 of an unknown release meet hostile bytes. The standalone parsers run on the whole
// input too. Any answer is fine; a crash, a sanitizer report, a status the format does not
// document or an error body without a reason is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "base/file.h"
#include "hub/site_releases.h"

namespace {

using namespace outpost::hub;

std::string* data_dir = nullptr;
SiteReleases* releases = nullptr;

void RemoveDataDir() {
  std::error_code ec;
  if (data_dir != nullptr) std::filesystem::remove_all(*data_dir, ec);
}

bool Documented(int status) {
  switch (status) {
    case 200:
    case 206:
    case 400:
    case 401:
    case 404:
    case 405:
    case 412:
    case 416:
    case 503:
      return true;
    default:
      return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  char pattern[] = "/tmp/outpost-site-releases-fuzz.XXXXXX";
  if (mkdtemp(pattern) == nullptr) std::abort();
  data_dir = new std::string(pattern);
  std::atexit(RemoveDataDir);
  const std::string bundles = outpost::JoinPath(*data_dir, "bundles");
  if (!outpost::MakeDirectories(bundles).ok()) std::abort();
  if (!outpost::WriteFileAtomically(outpost::JoinPath(bundles, "pump-1.bundle"), "not a tar")
           .ok()) {
    std::abort();
  }
  releases = new SiteReleases({.bundles_dir = bundles, .site_groups = {{"north", {"plant-7"}}}});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  (void)ParseByteRange(input);
  (void)ParseIfMatch(input);
  (void)ParseReleasePath(input);
  if (input.empty()) return 0;
  static constexpr const char* kMethods[] = {"GET", "HEAD", "POST", "PUT"};
  HubRequest request;
  request.method = kMethods[static_cast<uint8_t>(input[0]) % 4];
  input.remove_prefix(1);
  std::string_view parts[3];
  for (int i = 0; i < 3; ++i) {
    size_t nl = input.find('\n');
    parts[i] = input.substr(0, nl);
    input = nl == std::string_view::npos ? std::string_view() : input.substr(nl + 1);
  }
  request.target = std::string("/sync/v1/releases") + std::string(parts[0]);
  if (!parts[1].empty()) request.headers.push_back({"Range", parts[1]});
  if (!parts[2].empty()) request.headers.push_back({"If-Match", parts[2]});
  request.caller = Caller{.kind = Caller::Kind::kSite, .tenant = "acme", .site_id = "plant-7"};
  HubResponse response = releases->Handle(request);
  if (!Documented(response.status)) std::abort();
  if (response.status >= 400 && response.body.find("\"reason\"") == std::string::npos) {
    std::abort();
  }
  return 0;
}
