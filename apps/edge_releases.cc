// Releases fetched over the link and installed (sync/FORMAT.md section 7).
#include "apps/edge_releases.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <optional>
#include <utility>

#include "apps/edge_forwarder.h"
#include "base/clock.h"
#include "base/coding.h"
#include "base/crypto/crypto.h"
#include "base/fd_write.h"
#include "base/file.h"
#include "base/json/json.h"
#include "base/json_writer.h"
#include "base/logging.h"
#include "base/names.h"
#include "bundle/bundle.h"
#include "bundle/metadata.h"
#include "bundle/reason.h"
#include "bundle/spool.h"

namespace outpost::apps {
namespace {

constexpr size_t kMaxRefusedFileBytes = size_t{1} << 20;
constexpr char kRefusedFile[] = "refused.json";
constexpr uint64_t kMinChunkBytes = 16 * 1024;

int64_t NowMs() { return UnixMillis(SystemClock().Now()); }

// The size of the file at `path`; 0 when it does not exist.
Result<uint64_t> FileSize(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return uint64_t{0};
    return ErrnoToStatus(errno, "stat", path);
  }
  return static_cast<uint64_t>(st.st_size);
}

}  // namespace

ReleasePuller::ReleasePuller(ReleasePullerOptions options, std::unique_ptr<sync::HubClient> client)
    : options_(std::move(options)), client_(std::move(client)) {}

Result<std::unique_ptr<ReleasePuller>> ReleasePuller::Create(ReleasePullerOptions options) {
  if (options.releases_dir.empty() || options.site.state_dir.empty() ||
      options.site.repository.empty()) {
    return InvalidArgumentError(
        "releases: a releases folder, a state folder and a repository "
        "are required");
  }
  options.chunk_bytes = std::max(options.chunk_bytes, kMinChunkBytes);
  if (options.bandwidth != nullptr && options.bandwidth->bytes_per_s() > 0) {
    options.chunk_bytes =
        std::max(kMinChunkBytes, std::min(options.chunk_bytes, options.bandwidth->bytes_per_s()));
  }
  // An answer holds one chunk and its error bodies are small.
  options.https.max_response_bytes = options.chunk_bytes + 64 * 1024;
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<sync::HubClient> client,
                           sync::HubClient::Create(options.https));
  OUTPOST_RETURN_IF_ERROR(MakeDirectories(options.releases_dir, 0700));
  return std::unique_ptr<ReleasePuller>(new ReleasePuller(std::move(options), std::move(client)));
}

Result<std::unique_ptr<ReleasePuller>> ReleasePuller::Start(ReleasePullerOptions options) {
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<ReleasePuller> puller, Create(std::move(options)));
  puller->thread_ = std::thread([p = puller.get()] { p->Loop(); });
  return puller;
}

ReleasePuller::~ReleasePuller() { Stop(); }

void ReleasePuller::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool ReleasePuller::Stopping() {
  std::lock_guard<std::mutex> lock(mu_);
  return stopping_;
}

bool ReleasePuller::WaitFor(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, d, [this] { return stopping_; });
  return !stopping_;
}

void ReleasePuller::Loop() {
  do {
    RunOnce();
  } while (WaitFor(options_.interval));
}

std::vector<std::string> ReleasePuller::RefusedDigests() {
  std::vector<std::string> out;
  const std::string path = JoinPath(options_.releases_dir, kRefusedFile);
  if (!PathExists(path)) return out;
  Result<std::string> text = ReadFile(path, kMaxRefusedFileBytes);
  json::Parser parser;
  Result<json::Value> root = text.ok() ? parser.Parse(*text) : Result<json::Value>(text.status());
  bool valid = root.ok() && root->is_object() && (*root)["v"].GetInt64().value_or(0) == 1 &&
               (*root)["refused"].is_array();
  if (valid) {
    const json::Value list = (*root)["refused"];
    for (size_t i = 0; i < list.size(); ++i) {
      Result<std::string_view> sha = list.At(i)["sha256"].GetString();
      if (sha.ok() && IsHex64(*sha)) out.emplace_back(*sha);
    }
    return out;
  }
  OUTPOST_LOG(kWarning) << "releases: refused.json does not parse; renamed .bad and taken as empty"
                        << Field("file", path);
  ::rename(path.c_str(), (path + ".bad").c_str());
  return out;
}

void ReleasePuller::Remember(const OfferedRelease& release, std::string_view reason) {
  const std::string path = JoinPath(options_.releases_dir, kRefusedFile);
  // The entries kept, as JSON text, oldest first.
  std::vector<std::string> entries;
  if (PathExists(path)) {
    Result<std::string> text = ReadFile(path, kMaxRefusedFileBytes);
    json::Parser parser;
    Result<json::Value> root = text.ok() ? parser.Parse(*text) : Result<json::Value>(text.status());
    if (root.ok() && root->is_object() && (*root)["refused"].is_array()) {
      const json::Value list = (*root)["refused"];
      for (size_t i = 0; i < list.size(); ++i) entries.push_back(list.At(i).ToJson());
    }
  }
  std::string entry;
  JsonWriter e(entry);
  e.BeginObject();
  e.Key("model");
  e.String(release.model);
  e.Key("version");
  e.Uint(release.version);
  e.Key("sha256");
  e.String(release.sha256);
  e.Key("reason");
  e.String(reason);
  e.Key("time_ms");
  e.Int(NowMs());
  e.EndObject();
  entries.push_back(std::move(entry));
  if (entries.size() > kMaxRefusedReleases) {
    entries.erase(entries.begin(),
                  entries.end() - static_cast<std::ptrdiff_t>(kMaxRefusedReleases));
  }
  std::string text = "{\"v\":1,\"refused\":[";
  for (size_t i = 0; i < entries.size(); ++i) text += (i == 0 ? "" : ",") + entries[i];
  text += "]}\n";
  Status s = WriteFileAtomically(path, text, 0600);
  if (!s.ok()) {
    OUTPOST_LOG(kError) << "releases: cannot write refused.json" << Field("error", s);
  }
}

Result<std::string> ReleasePuller::Download(const OfferedRelease& release) {
  const std::string complete = JoinPath(options_.releases_dir, release.sha256 + ".bundle");
  // Fetched and checked by an earlier round whose install failed for another reason than a
  // refusal (I/O): installed again without being fetched again.
  if (PathExists(complete)) return complete;
  const std::string part = JoinPath(options_.releases_dir, release.sha256 + ".part");
  OUTPOST_ASSIGN_OR_RETURN(uint64_t have, FileSize(part));
  if (have > release.bytes) {
    ::unlink(part.c_str());
    have = 0;
  }
  if (have > 0) {
    OUTPOST_LOG(kInfo) << "releases: continuing a part file" << Field("model", release.model)
                       << Field("version", release.version) << Field("have", have)
                       << Field("bytes", release.bytes);
  }
  int fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoToStatus(errno, "opening", part);
  const std::string target =
      "/sync/v1/releases/" + release.model + "/" + std::to_string(release.model_version);
  const std::string tag = "\"" + release.sha256 + "\"";
  auto fetch = [&]() -> Status {
    while (have < release.bytes) {
      if (Stopping()) return CancelledError("stopping");
      const uint64_t last = std::min(have + options_.chunk_bytes, release.bytes) - 1;
      Result<http::ClientResponse> r = client_->Get(
          target, {{"Range", "bytes=" + std::to_string(have) + "-" + std::to_string(last)},
                   {"If-Match", tag}});
      if (!r.ok()) return r.status();
      if (r->status == 412) {
        ::unlink(part.c_str());
        return AbortedError("the hub's release changed (412 release_changed); starting over");
      }
      if (r->status == 404) return NotFoundError("the hub no longer offers the release");
      std::optional<std::array<uint64_t, 3>> range = ParseContentRange(r->Header("Content-Range"));
      if (r->status != 206 || !range || (*range)[0] != have || (*range)[2] != release.bytes ||
          r->body.size() != (*range)[1] - (*range)[0] + 1) {
        return UnavailableError("the hub answered " + std::to_string(r->status) +
                                " without the range asked for");
      }
      OUTPOST_RETURN_IF_ERROR(WriteAllToFd(fd, r->body, part));
      if (::fdatasync(fd) != 0) return ErrnoToStatus(errno, "fdatasync", part);
      have += r->body.size();
      if (options_.bandwidth != nullptr) {
        const std::chrono::milliseconds wait = options_.bandwidth->Charge(r->body.size());
        if (wait.count() > 0 && !WaitFor(wait)) return CancelledError("stopping");
      }
    }
    return Status::Ok();
  };
  Status fetched = fetch();
  ::close(fd);
  OUTPOST_RETURN_IF_ERROR(fetched);
  OUTPOST_ASSIGN_OR_RETURN(std::string digest, crypto::Sha256HexOfFile(part));
  if (digest != release.sha256) {
    ::unlink(part.c_str());
    return DataLossError("the fetched release's SHA-256 is not the listing's; fetched again");
  }
  if (::rename(part.c_str(), complete.c_str()) != 0) {
    return ErrnoToStatus(errno, "renaming", part);
  }
  OUTPOST_RETURN_IF_ERROR(SyncDirectory(options_.releases_dir));
  return complete;
}

PullOutcome ReleasePuller::RunOnce() {
  Result<http::ClientResponse> answer = client_->Get("/sync/v1/releases");
  if (!answer.ok() || answer->status != 200) {
    OUTPOST_LOG(kDebug) << "releases: the hub's list did not come"
                        << Field("error", answer.ok() ? "status " + std::to_string(answer->status)
                                                      : answer.status().ToString());
    return PullOutcome::kFailed;
  }
  Result<std::vector<OfferedRelease>> offered = ParseReleaseList(answer->body);
  if (!offered.ok()) {
    OUTPOST_LOG(kWarning) << "releases: the hub's list is malformed"
                          << Field("error", offered.status());
    return PullOutcome::kFailed;
  }
  bundle::SiteState state;
  const std::string state_file = JoinPath(options_.site.state_dir, "state.json");
  if (PathExists(state_file)) {
    Result<bundle::SiteState> loaded = bundle::LoadSiteState(state_file);
    if (!loaded.ok()) {
      OUTPOST_LOG(kError) << "releases: the site state cannot be read"
                          << Field("error", loaded.status());
      return PullOutcome::kFailed;
    }
    state = *loaded;
  }
  Result<std::vector<OfferedRelease>> rollbacks = ParseReleaseRollbacks(answer->body);
  if (!rollbacks.ok()) {
    OUTPOST_LOG(kWarning) << "releases: the hub's list is malformed"
                          << Field("error", rollbacks.status());
    return PullOutcome::kFailed;
  }
  // Read once for the round: what RollBackFrom adds is never among the offered releases.
  const std::vector<std::string> refused = RefusedDigests();
  if (std::optional<PullOutcome> done =
          RollBackFrom(*rollbacks, refused, state.installed_version)) {
    return *done;
  }
  const OfferedRelease* best = nullptr;
  for (const OfferedRelease& r : *offered) {
    if (r.version <= state.installed_version) continue;
    if (std::find(refused.begin(), refused.end(), r.sha256) != refused.end()) continue;
    if (best == nullptr || r.version > best->version) best = &r;
  }
  if (best == nullptr) return PullOutcome::kNothing;
  const OfferedRelease release = *best;
  if (release.bytes > options_.max_bundle_bytes) {
    OUTPOST_LOG(kWarning) << "releases: a release over max_bundle_bytes is refused"
                          << Field("model", release.model) << Field("version", release.version)
                          << Field("bytes", release.bytes);
    // Reported as the installer reports a refusal (bundle/FORMAT.md section 9).
    if (!options_.site.data_dir.empty()) {
      bundle::JsonObject event{
          {"event", bundle::Json{std::string("bundle_refused")}},
          {"time", bundle::Json{static_cast<uint64_t>(std::max<int64_t>(0, NowMs() / 1000))}},
          {"site_id", bundle::Json{options_.site.site_id}},
          {"bundle_version", bundle::Json{release.version}},
          {"models", bundle::Json{bundle::JsonArray{}}},
          {"reason", bundle::Json{std::string("RELEASE_TOO_LARGE")}},
          {"message", bundle::Json{std::string("the release is larger than max_bundle_bytes")}}};
      Result<std::string> text = bundle::CanonicalJson(bundle::Json{event});
      if (text.ok()) {
        Status s = bundle::SpoolEvent(JoinPath(options_.site.data_dir, "spool"), *text);
        if (!s.ok()) {
          OUTPOST_LOG(kError) << "releases: cannot spool an event" << Field("error", s);
        }
      }
    }
    Remember(release, "RELEASE_TOO_LARGE");
    return PullOutcome::kRefused;
  }
  Result<std::string> file = Download(release);
  if (!file.ok()) {
    OUTPOST_LOG(kInfo) << "releases: the fetch stopped; the next round continues it"
                       << Field("model", release.model) << Field("version", release.version)
                       << Field("error", file.status());
    return PullOutcome::kFailed;
  }
  // Exactly `outpost bundle install`: verification, health check, switch, event.
  Result<bundle::InstallResult> installed = InstallBundleAtSite(options_.site, *file);
  std::optional<bundle::Reason> reason =
      installed.ok() ? std::nullopt : bundle::ReasonOf(installed.status());
  // Kept only for a failure that is no refusal, which the next round retries.
  if (installed.ok() || reason) ::unlink(file->c_str());
  if (installed.ok()) {
    OUTPOST_LOG(kInfo) << "releases: installed a release from the hub"
                       << Field("model", release.model)
                       << Field("bundle_version", installed->bundle_version);
    return PullOutcome::kInstalled;
  }
  if (!reason) {
    OUTPOST_LOG(kWarning) << "releases: the install failed; the next round tries again"
                          << Field("error", installed.status());
    return PullOutcome::kFailed;
  }
  OUTPOST_LOG(kWarning) << "releases: the release was refused; it is not fetched again"
                        << Field("model", release.model) << Field("version", release.version)
                        << Field("error", installed.status());
  Remember(release, bundle::ReasonName(*reason));
  return PullOutcome::kRefused;
}

std::optional<PullOutcome> ReleasePuller::RollBackFrom(const std::vector<OfferedRelease>& rollbacks,
                                                       const std::vector<std::string>& refused,
                                                       uint64_t installed_version) {
  const OfferedRelease* installed = nullptr;
  for (const OfferedRelease& r : rollbacks) {
    // Remembered already: rolled back from (or the rollback failed) in an earlier round.
    if (std::find(refused.begin(), refused.end(), r.sha256) != refused.end()) continue;
    if (r.version == installed_version) {
      installed = &r;
      continue;
    }
    // Withdrawn before this site installed it: never fetched (a part file is dropped).
    ::unlink(JoinPath(options_.releases_dir, r.sha256 + ".part").c_str());
    Remember(r, "ROLLOUT_WITHDRAWN");
  }
  if (installed == nullptr) return std::nullopt;
  const OfferedRelease release = *installed;
  Result<bundle::InstallResult> back = RollBackAtSite(options_.site);
  if (!back.ok()) {
    // Remembered all the same: a rollback that cannot happen (no bundle before it) is not
    // tried every round; the event says so to the hub.
    OUTPOST_LOG(kError) << "releases: the rollout was withdrawn but the rollback failed"
                        << Field("model", release.model) << Field("version", release.version)
                        << Field("error", back.status());
    Remember(release, "ROLLOUT_WITHDRAWN");
    return PullOutcome::kFailed;
  }
  OUTPOST_LOG(kInfo) << "releases: the rollout was withdrawn; rolled back"
                     << Field("model", release.model) << Field("from", release.version)
                     << Field("to", back->bundle_version);
  Remember(release, "ROLLOUT_WITHDRAWN");
  return PullOutcome::kRolledBack;
}

Result<std::unique_ptr<ReleasePuller>> StartEdgeReleases(
    const EdgeConfig& config, std::shared_ptr<sync::Bandwidth> bandwidth) {
  const EdgeReleasesConfig& r = config.sync.releases;
  if (!config.sync.enabled || !r.enabled) return std::unique_ptr<ReleasePuller>();
  // Without a trusted root no release could ever install: said at start, not every round.
  if (r.trusted_root.empty() && !PathExists(JoinPath(r.state_dir, "root.json"))) {
    return FailedPreconditionError(
        "sync.releases: no trusted root: give trusted_root, or "
        "install a bundle with --trusted-root once into " +
        r.state_dir);
  }
  OUTPOST_ASSIGN_OR_RETURN(sync::HubClientOptions https, EdgeHubConnection(config));
  Result<std::unique_ptr<ReleasePuller>> puller =
      ReleasePuller::Start({.https = std::move(https),
                            .bandwidth = std::move(bandwidth),
                            .site = {.repository = config.model_repository,
                                     .state_dir = r.state_dir,
                                     .data_dir = config.data_dir,
                                     .site_id = config.site_id,
                                     .site_groups = r.groups,
                                     .trusted_root = r.trusted_root,
                                     .health_check = r.health_check,
                                     .health_command = r.health_command,
                                     .health_timeout = std::chrono::seconds(r.health_timeout_s)},
                            .releases_dir = JoinPath(config.data_dir, "releases"),
                            .interval = std::chrono::seconds(r.check_interval_s),
                            .max_bundle_bytes = r.max_bundle_bytes});
  if (!puller.ok()) return puller.status().WithContext("sync.releases");
  OUTPOST_LOG(kInfo) << "release puller started" << Field("state_dir", r.state_dir)
                     << Field("every_s", r.check_interval_s);
  return puller;
}

}  // namespace outpost::apps
