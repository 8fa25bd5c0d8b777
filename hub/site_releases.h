// The release bundles a connected site fetches over its link (hub/FORMAT.md section 10): the
// site listener's GET /sync/v1/releases (the bundles of <data_dir>/bundles/ meant for the
// calling site, by its id or a group the hub config places it in) and GET
// /sync/v1/releases/<model>/<v> (one bundle's bytes, a range at a time, never more than
// max_chunk_bytes in memory per answer). A bundle meant for another site is answered exactly
// as an unknown one (404 release_not_found).
//
// No sockets here: Handle turns a request whose caller HubService authenticated into a
// response, so every path is tested and fuzzed without a network. Thread-safe.
#ifndef OUTPOST_HUB_SITE_RELEASES_H_
#define OUTPOST_HUB_SITE_RELEASES_H_

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/http/server.h"
#include "base/status.h"
#include "hub/http.h"
#include "hub/rollout.h"
#include "hub/store.h"

namespace outpost::hub {

// The most bytes of a bundle one answer holds: the hub's memory per release download in
// flight (the listener's max_connections bound how many).
inline constexpr uint64_t kReleaseChunkBytes = uint64_t{1} << 20;
inline constexpr size_t kMaxListedReleases = 100;
inline constexpr size_t kMaxRangeHeaderBytes = 128;

// One range a client asked for: bytes first..last (last absent = to the end).
struct ByteRange {
  uint64_t first = 0;
  std::optional<uint64_t> last{};
};

// Parses a Range header of the one form the hub serves, "bytes=<first>-[<last>]" (decimal, at
// most 19 digits each, first <= last). InvalidArgument with reason bad_range for anything
// else (hub/FORMAT.md section 10).
Result<ByteRange> ParseByteRange(std::string_view header);

// The entity tag of an If-Match header holding exactly one strong tag ("<text>"), without its
// quotes. InvalidArgument with reason bad_if_match otherwise (a list, "*", a weak tag, over
// 128 bytes).
Result<std::string> ParseIfMatch(std::string_view header);

// The model and model version of a target /sync/v1/releases/<model>/<v> (query ignored); nullopt
// when the rest of the path is not a bundle model name and a decimal version in 1 .. 2^63-1.
std::optional<std::pair<std::string, uint64_t>> ParseReleasePath(std::string_view target);

// What the hub learnt of one bundle file.
struct SiteRelease {
  std::string model{};
  uint64_t model_version = 0;  // the file name's <v>
  uint64_t version = 0;        // the bundle version of its targets
  uint64_t bytes = 0;
  std::string sha256{};  // hex, of the whole file
  int64_t created = 0;   // the targets' (Unix seconds)
  int64_t expires = 0;
  std::vector<std::string> sites{};
  std::vector<std::string> site_groups{};
  std::string path{};
};

class SiteReleases {
 public:
  struct Options {
    std::string bundles_dir{};  // <data_dir>/bundles
    // The hub's store, when set: the bundles it keeps (hub/STORE.md section 3) that the
    // folder lacks, or holds with other bytes, are copied into the folder before a listing,
    // and before a download of a bundle the folder lacks, so that every hub sharing the
    // store serves every release, whichever hub made it. Must outlive this object.
    Store* store = nullptr;
    // The hub config's site_groups: group -> its sites.
    std::map<std::string, std::vector<std::string>> site_groups{};
    uint64_t max_chunk_bytes = kReleaseChunkBytes;
    // Whether a bundle meant for a site is offered to it now, withheld, or rolled back from
    // (hub/FORMAT.md section 11; RolloutController::Offer). Null: every bundle is offered.
    std::function<RolloutOffer(const SiteRelease&, std::string_view site_id)> offer{};
  };
  explicit SiteReleases(Options options);
  SiteReleases(const SiteReleases&) = delete;
  SiteReleases& operator=(const SiteReleases&) = delete;

  // Checks a site_groups map as the hub config gives it: group names [a-z0-9._-]{1,64},
  // site ids base/names.h's, at most 10,000 groups and 100,000 members. InvalidArgument
  // naming the group otherwise.
  static Status ValidateSiteGroups(const std::map<std::string, std::vector<std::string>>& groups);

  // The bundles meant for `site_id`, by version ascending (the newest kMaxListedReleases).
  // Unavailable when the folder cannot be listed; a file that is not a readable bundle is
  // left out (logged).
  Result<std::vector<SiteRelease>> ListFor(std::string_view site_id);

  // GET|HEAD /sync/v1/releases and /sync/v1/releases/<model>/<v> for the site
  // request.caller names (401 without one).
  HubResponse Handle(const HubRequest& request);

  // Registers both paths on the site listener's router (exact and prefix, any method) into
  // Handle. This object must outlive the router's server.
  void RegisterRoutes(http::Router& router);

 private:
  // What the cache holds of a file: its identity on disk and what was read.
  struct Cached {
    uint64_t size = 0;
    int64_t mtime_ns = 0;
    bool readable = false;
    SiteRelease release{};
  };
  // The release read from `name` (a file of bundles_dir), through the cache.
  Result<SiteRelease> Load(const std::string& name);
  // Copies into bundles_dir what the store keeps and the folder lacks (Options::store).
  Status CopyFromStore();
  bool MeantFor(const SiteRelease& release, std::string_view site_id) const;
  RolloutOffer OfferOf(const SiteRelease& release, std::string_view site_id) const;
  HubResponse List(const Caller& caller);
  HubResponse Serve(const HubRequest& request, const Caller& caller);

  const Options options_;
  std::mutex mu_;  // guards cache_
  std::map<std::string, Cached> cache_;
  std::mutex copy_mu_;  // one CopyFromStore at a time
};

}  // namespace outpost::hub

#endif  // OUTPOST_HUB_SITE_RELEASES_H_
