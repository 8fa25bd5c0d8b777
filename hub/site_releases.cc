// The site listener's release routes (hub/FORMAT.md section 10).
#include "hub/site_releases.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <set>
#include <utility>

#include "base/coding.h"
#include "base/crypto/crypto.h"
#include "base/file.h"
#include "base/json_writer.h"
#include "base/logging.h"
#include "base/names.h"
#include "bundle/metadata.h"
#include "bundle/tar.h"

namespace outpost::hub {
namespace {

constexpr std::string_view kPrefix = "/sync/v1/releases";
constexpr size_t kMaxTargetsBytes = size_t{1} << 20;
// Entries read before outpost/targets.json must have come (the root chain comes first).
constexpr int kMaxEntriesBeforeTargets = 64;
constexpr size_t kMaxGroups = 10'000;
constexpr size_t kMaxGroupMembers = 100'000;

Status BadRange(std::string_view why) {
  return ErrorWithReason(StatusCode::kInvalidArgument, "bad_range",
                         "Range must be bytes=<first>-[<last>]: " + std::string(why));
}

// A decimal of 1..19 digits (so it fits in 64 bits), the whole of `text`.
std::optional<uint64_t> Decimal(std::string_view text) {
  uint64_t value = 0;
  if (text.size() > 19 || !ParseDecimal(text, &value)) return std::nullopt;
  return value;
}

bool IsGroupName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  });
}

// Reads the targets of the bundle open at `fd` (without checking signatures: the hub wrote
// it) into `release`.
Status ReadTargets(int fd, SiteRelease& release) {
  bundle::TarReader reader(fd, {});
  for (int i = 0; i < kMaxEntriesBeforeTargets; ++i) {
    OUTPOST_ASSIGN_OR_RETURN(std::optional<bundle::TarEntry> entry, reader.Next());
    if (!entry) break;
    if (entry->name != "outpost/targets.json") continue;
    OUTPOST_ASSIGN_OR_RETURN(std::string text, reader.ReadAll(kMaxTargetsBytes));
    OUTPOST_ASSIGN_OR_RETURN(bundle::Envelope envelope, bundle::ParseEnvelope(text));
    OUTPOST_ASSIGN_OR_RETURN(bundle::Targets targets,
                             bundle::TargetsFromJson(envelope.signed_value));
    release.version = targets.version;
    release.created = targets.created;
    release.expires = targets.expires;
    release.sites = std::move(targets.sites);
    release.site_groups = std::move(targets.site_groups);
    return Status::Ok();
  }
  return NotFoundError("no outpost/targets.json among the bundle's first entries");
}

HubResponse NotFound() {
  return ErrorResponse(404, "release_not_found", "no such release for this site");
}

HubResponse Unavailable() {
  return ErrorResponse(503, "release_unavailable", "the release cannot be read; try again later");
}

// Closes a descriptor when it goes.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

Result<ByteRange> ParseByteRange(std::string_view header) {
  if (header.size() > kMaxRangeHeaderBytes) return BadRange("the header is over 128 bytes");
  constexpr std::string_view kUnit = "bytes=";
  if (!header.starts_with(kUnit)) return BadRange("another unit");
  header.remove_prefix(kUnit.size());
  const size_t dash = header.find('-');
  if (dash == std::string_view::npos) return BadRange("no '-'");
  std::optional<uint64_t> first = Decimal(header.substr(0, dash));
  if (!first) return BadRange("the first byte is not a decimal");
  ByteRange range{.first = *first};
  std::string_view rest = header.substr(dash + 1);
  if (!rest.empty()) {
    std::optional<uint64_t> last = Decimal(rest);
    if (!last) return BadRange("the last byte is not a decimal (one range only)");
    if (*last < *first) return BadRange("the last byte is before the first");
    range.last = *last;
  }
  return range;
}

Result<std::string> ParseIfMatch(std::string_view header) {
  auto bad = [](std::string_view why) {
    return ErrorWithReason(StatusCode::kInvalidArgument, "bad_if_match",
                           "If-Match must be one strong entity tag: " + std::string(why));
  };
  if (header.size() > kMaxRangeHeaderBytes) return bad("the header is over 128 bytes");
  if (header.size() < 2 || header.front() != '"' || header.back() != '"') {
    return bad("not a quoted tag");
  }
  std::string_view tag = header.substr(1, header.size() - 2);
  if (tag.find_first_of("\", \t") != std::string_view::npos) return bad("a list or a space");
  return std::string(tag);
}

std::optional<std::pair<std::string, uint64_t>> ParseReleasePath(std::string_view target) {
  std::string_view path = http::Router::PathOf(target);
  if (!path.starts_with(kPrefix) || path.size() <= kPrefix.size() + 1 ||
      path[kPrefix.size()] != '/') {
    return std::nullopt;
  }
  path.remove_prefix(kPrefix.size() + 1);
  const size_t slash = path.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string_view model = path.substr(0, slash);
  std::optional<uint64_t> version = Decimal(path.substr(slash + 1));
  if (!ModelName::IsValid(model) || !version || *version == 0 ||
      *version > static_cast<uint64_t>(INT64_MAX)) {
    return std::nullopt;
  }
  return std::make_pair(std::string(model), *version);
}

SiteReleases::SiteReleases(Options options) : options_(std::move(options)) {}

Status SiteReleases::ValidateSiteGroups(
    const std::map<std::string, std::vector<std::string>>& groups) {
  if (groups.size() > kMaxGroups) return InvalidArgumentError("site_groups: over 10,000 groups");
  size_t members = 0;
  for (const auto& [group, sites] : groups) {
    if (!IsGroupName(group)) {
      return InvalidArgumentError("site_groups." + group.substr(0, 64) +
                                  ": a group name is [a-z0-9._-]{1,64}");
    }
    members += sites.size();
    if (members > kMaxGroupMembers) {
      return InvalidArgumentError("site_groups: over 100,000 members in all");
    }
    for (const std::string& site : sites) {
      Status s = CheckName(kSiteIdRule, site);
      if (!s.ok()) return s.WithContext("site_groups." + group);
    }
  }
  return Status::Ok();
}

Result<SiteRelease> SiteReleases::Load(const std::string& name) {
  std::optional<std::pair<std::string, uint64_t>> parsed = ParseReleaseBundleName(name);
  if (!parsed) return NotFoundError("not a bundle name");
  const std::string path = JoinPath(options_.bundles_dir, name);
  Fd file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0) {
    if (errno == ENOENT) return NotFoundError("no such bundle");
    return ErrnoToStatus(errno, "opening", path);
  }
  struct stat st {};
  if (::fstat(file.fd, &st) != 0) return ErrnoToStatus(errno, "stat", path);
  if (!S_ISREG(st.st_mode)) return NotFoundError("not a regular file");
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const int64_t mtime_ns = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(name);
    if (it != cache_.end() && it->second.size == size && it->second.mtime_ns == mtime_ns) {
      if (!it->second.readable) return NotFoundError("not a readable bundle");
      return it->second.release;
    }
  }
  // Read without the lock: hashing a large file takes a while, and two readers of one new
  // file only do the same work twice.
  Cached cached{.size = size, .mtime_ns = mtime_ns};
  cached.release.model = parsed->first;
  cached.release.model_version = parsed->second;
  cached.release.bytes = size;
  cached.release.path = path;
  Status targets = ReadTargets(file.fd, cached.release);
  if (targets.ok()) {
    Result<std::string> digest = crypto::Sha256HexOfFile(path);
    if (!digest.ok()) return digest.status();  // an I/O error: not cached, tried again
    cached.release.sha256 = std::move(*digest);
    cached.readable = true;
  } else {
    OUTPOST_LOG(kWarning) << "releases: a file of the bundles folder is not a readable bundle; "
                             "it is not served"
                          << Field("file", path) << Field("error", targets);
  }
  std::lock_guard<std::mutex> lock(mu_);
  cache_[name] = cached;
  if (!cached.readable) return NotFoundError("not a readable bundle");
  return cached.release;
}

Status SiteReleases::CopyFromStore() {
  if (options_.store == nullptr) return Status::Ok();
  std::lock_guard<std::mutex> lock(copy_mu_);
  OUTPOST_ASSIGN_OR_RETURN(std::vector<ReleaseBundle> kept, options_.store->ListReleaseBundles());
  for (const ReleaseBundle& bundle : kept) {
    if (!ParseReleaseBundleName(bundle.name)) continue;
    Result<SiteRelease> local = Load(bundle.name);
    if (local.ok() && local->sha256 == bundle.sha256) continue;
    if (!local.ok() && local.status().code() != StatusCode::kNotFound) return local.status();
    OUTPOST_ASSIGN_OR_RETURN(std::string bytes, options_.store->GetReleaseBundle(bundle.name));
    if (crypto::Sha256Hex(bytes) != bundle.sha256) {
      return DataLossError("the store's release bundle " + bundle.name +
                           " does not match its digest");
    }
    OUTPOST_RETURN_IF_ERROR(MakeDirectories(options_.bundles_dir));
    OUTPOST_RETURN_IF_ERROR(
        WriteFileAtomically(JoinPath(options_.bundles_dir, bundle.name), bytes, 0600));
    OUTPOST_LOG(kInfo) << "releases: a bundle another hub made was copied from the store"
                       << Field("bundle", bundle.name) << Field("sha256", bundle.sha256);
  }
  return Status::Ok();
}

bool SiteReleases::MeantFor(const SiteRelease& release, std::string_view site_id) const {
  if (std::find(release.sites.begin(), release.sites.end(), site_id) != release.sites.end()) {
    return true;
  }
  for (const std::string& group : release.site_groups) {
    auto it = options_.site_groups.find(group);
    if (it == options_.site_groups.end()) continue;
    if (std::find(it->second.begin(), it->second.end(), site_id) != it->second.end()) return true;
  }
  return false;
}

Result<std::vector<SiteRelease>> SiteReleases::ListFor(std::string_view site_id) {
  if (Status copied = CopyFromStore(); !copied.ok()) {
    return UnavailableError("copying the store's release bundles: " + copied.ToString());
  }
  std::vector<SiteRelease> out;
  if (!IsDirectory(options_.bundles_dir)) return out;
  Result<std::vector<std::string>> names = ListDirectory(options_.bundles_dir);
  if (!names.ok()) return UnavailableError(names.status().ToString());
  std::set<std::string> present;
  for (const std::string& name : *names) {
    if (!ParseReleaseBundleName(name)) continue;
    present.insert(name);
    Result<SiteRelease> release = Load(name);
    if (!release.ok()) {
      if (release.status().code() == StatusCode::kNotFound) continue;
      return UnavailableError(release.status().ToString());
    }
    if (MeantFor(*release, site_id)) out.push_back(std::move(*release));
  }
  {
    // Files that went away leave the cache.
    std::lock_guard<std::mutex> lock(mu_);
    std::erase_if(cache_, [&](const auto& entry) { return !present.contains(entry.first); });
  }
  std::sort(out.begin(), out.end(), [](const SiteRelease& a, const SiteRelease& b) {
    return std::tie(a.version, a.model) < std::tie(b.version, b.model);
  });
  if (out.size() > kMaxListedReleases) {
    out.erase(out.begin(), out.end() - static_cast<std::ptrdiff_t>(kMaxListedReleases));
  }
  return out;
}

HubResponse SiteReleases::List(const Caller& caller) {
  Result<std::vector<SiteRelease>> releases = ListFor(caller.site_id);
  if (!releases.ok()) {
    OUTPOST_LOG(kWarning) << "releases: the bundles folder cannot be read"
                          << Field("error", releases.status());
    return Unavailable();
  }
  // The rollouts decide (hub/FORMAT.md section 11): offered, withheld until the site's wave
  // opens, or rolled back from.
  std::vector<const SiteRelease*> offered, rollbacks;
  for (const SiteRelease& r : *releases) {
    switch (OfferOf(r, caller.site_id)) {
      case RolloutOffer::kOffer:
        offered.push_back(&r);
        break;
      case RolloutOffer::kRollBack:
        rollbacks.push_back(&r);
        break;
      case RolloutOffer::kWithhold:
        break;
    }
  }
  HubResponse response;
  JsonWriter w(response.body);
  w.BeginObject();
  w.Key("site_id");
  w.String(caller.site_id);
  w.Key("releases");
  w.BeginArray();
  for (const SiteRelease* p : offered) {
    const SiteRelease& r = *p;
    w.BeginObject();
    w.Key("model");
    w.String(r.model);
    w.Key("model_version");
    w.Uint(r.model_version);
    w.Key("version");
    w.Uint(r.version);
    w.Key("bytes");
    w.Uint(r.bytes);
    w.Key("sha256");
    w.String(r.sha256);
    w.Key("created");
    w.Int(r.created);
    w.Key("expires");
    w.Int(r.expires);
    w.EndObject();
  }
  w.EndArray();
  w.Key("rollbacks");
  w.BeginArray();
  for (const SiteRelease* r : rollbacks) {
    w.BeginObject();
    w.Key("model");
    w.String(r->model);
    w.Key("model_version");
    w.Uint(r->model_version);
    w.Key("version");
    w.Uint(r->version);
    w.Key("sha256");
    w.String(r->sha256);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return response;
}

RolloutOffer SiteReleases::OfferOf(const SiteRelease& release, std::string_view site_id) const {
  if (!options_.offer) return RolloutOffer::kOffer;
  return options_.offer(release, site_id);
}

HubResponse SiteReleases::Serve(const HubRequest& request, const Caller& caller) {
  std::optional<std::pair<std::string, uint64_t>> wanted = ParseReleasePath(request.target);
  if (!wanted) return NotFound();
  const std::string name = wanted->first + "-" + std::to_string(wanted->second) + ".bundle";
  Result<SiteRelease> release = Load(name);
  if (!release.ok() && release.status().code() == StatusCode::kNotFound &&
      options_.store != nullptr) {
    // Listed by another hub of the store: copied here first.
    if (Status copied = CopyFromStore(); !copied.ok()) {
      OUTPOST_LOG(kWarning) << "releases: the store's bundles cannot be copied"
                            << Field("error", copied);
      return Unavailable();
    }
    release = Load(name);
  }
  if (!release.ok()) {
    if (release.status().code() == StatusCode::kNotFound) return NotFound();
    OUTPOST_LOG(kWarning) << "releases: a bundle cannot be read" << Field("file", name)
                          << Field("error", release.status());
    return Unavailable();
  }
  // Another site's release is answered as one that does not exist.
  if (!MeantFor(*release, caller.site_id)) return NotFound();
  // A release withheld by its rollout (the site's wave is not open, or it was aborted) is
  // answered as one that is not there.
  if (OfferOf(*release, caller.site_id) != RolloutOffer::kOffer) return NotFound();
  if (std::string_view if_match = request.Header("If-Match"); !if_match.empty()) {
    Result<std::string> tag = ParseIfMatch(if_match);
    if (!tag.ok()) return ErrorResponse(tag.status());
    if (*tag != release->sha256) {
      return ErrorResponse(412, "release_changed",
                           "the release is not the file the If-Match tag names");
    }
  }
  const uint64_t size = release->bytes;
  ByteRange range;
  const bool ranged = !request.Header("Range").empty();
  if (ranged) {
    Result<ByteRange> parsed = ParseByteRange(request.Header("Range"));
    if (!parsed.ok()) return ErrorResponse(parsed.status());
    range = *parsed;
    if (range.first >= size) {
      HubResponse refusal = ErrorResponse(416, "range_not_satisfiable",
                                          "the range starts at or past the release's end");
      refusal.headers.emplace_back("Content-Range", "bytes */" + std::to_string(size));
      return refusal;
    }
  }
  uint64_t end = size == 0 ? 0 : size - 1;  // inclusive
  if (range.last && *range.last < end) end = *range.last;
  if (size > 0 && end - range.first + 1 > options_.max_chunk_bytes) {
    end = range.first + options_.max_chunk_bytes - 1;
  }
  const uint64_t length = size == 0 ? 0 : end - range.first + 1;
  HubResponse response{.status = (ranged || length < size) ? 206 : 200,
                       .content_type = "application/octet-stream"};
  response.headers.emplace_back("ETag", "\"" + release->sha256 + "\"");
  response.headers.emplace_back("Accept-Ranges", "bytes");
  if (response.status == 206) {
    response.headers.emplace_back("Content-Range", "bytes " + std::to_string(range.first) + "-" +
                                                       std::to_string(end) + "/" +
                                                       std::to_string(size));
  }
  // A HEAD answer is filled as GET's: the listener sends its header (Content-Length
  // included) without the body.
  if (length == 0) return response;
  Fd file{::open(release->path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0) {
    if (errno == ENOENT) return NotFound();
    return Unavailable();
  }
  response.body.resize(length);
  uint64_t done = 0;
  while (done < length) {
    ssize_t n = ::pread(file.fd, response.body.data() + done, length - done,
                        static_cast<off_t>(range.first + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // Shorter than when it was hashed: the file changed under its name.
      OUTPOST_LOG(kWarning) << "releases: a bundle changed while it was served"
                            << Field("file", release->path);
      return Unavailable();
    }
    done += static_cast<uint64_t>(n);
  }
  return response;
}

HubResponse SiteReleases::Handle(const HubRequest& request) {
  if (request.caller.kind != Caller::Kind::kSite) {
    return ErrorResponse(401, "credential_missing", "a site client certificate is required");
  }
  if (request.method != "GET" && request.method != "HEAD") {
    HubResponse response = ErrorResponse(405, "method_not_allowed", "use GET");
    response.headers.emplace_back("Allow", "GET, HEAD");
    return response;
  }
  if (http::Router::PathOf(request.target) == kPrefix) return List(request.caller);
  return Serve(request, request.caller);
}

void SiteReleases::RegisterRoutes(http::Router& router) {
  auto handler = [this](const HubRequest& request, HubResponse& response) {
    response = Handle(request);
  };
  router.Exact("*", std::string(kPrefix), handler);
  router.Prefix("*", std::string(kPrefix) + "/", handler);
}

}  // namespace outpost::hub
