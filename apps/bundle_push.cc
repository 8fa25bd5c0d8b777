// `outpost bundle push` over base/http's client: one kept connection to the registry, blobs
// streamed from a temporary file.
#include "apps/bundle_push.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>

#include "base/file.h"
#include "base/http/client.h"
#include "bundle/metadata.h"
#include "bundle/tar.h"

namespace outpost::apps {
namespace {

constexpr std::string_view kBlobPrefix = "blobs/sha256/";

struct Answer {
  int status = 0;
  std::string location;
  std::string body;
};

// The registry over one kept connection (reopened when the registry closes it).
class Registry {
 public:
  explicit Registry(std::unique_ptr<http::Client> client) : client_(std::move(client)) {}

  Result<Answer> Send(const http::ClientRequest& request) {
    Result<http::ClientResponse> r = client_->Send(request);
    if (!r.ok()) return r.status().WithContext("registry");
    return Answer{
        .status = r->status, .location = r->Header("Location"), .body = std::move(r->body)};
  }

 private:
  std::unique_ptr<http::Client> client_;
};

Status Refused(const std::string& what, const Answer& a) {
  std::string body = a.body.substr(0, 300);
  for (char& c : body) {
    if (c == '\n') c = ' ';
  }
  return FailedPreconditionError(what + ": registry answered " + std::to_string(a.status) + " " +
                                 body);
}

// The upload URL the registry gave, as a request target with the digest added.
std::string PutTarget(const std::string& location, const std::string& digest) {
  std::string target = location;
  if (target.rfind("http://", 0) == 0) {
    size_t slash = target.find('/', 7);
    target = slash == std::string::npos ? "/" : target.substr(slash);
  }
  target += (target.find('?') == std::string::npos ? "?" : "&");
  return target + "digest=" + digest;
}

// Reads the bundle's index.json (the reader's current entry) into `manifests`: the hex
// digest of each manifest that has a ref name, and that name.
Status ReadIndexManifests(bundle::TarReader& reader,
                          std::map<std::string, std::string>& manifests) {
  OUTPOST_ASSIGN_OR_RETURN(std::string text, reader.ReadAll(1 << 20));
  OUTPOST_ASSIGN_OR_RETURN(bundle::Json index, bundle::ParseJson(text, false));
  const auto* o = std::get_if<bundle::JsonObject>(&index.v);
  auto it = o == nullptr ? bundle::JsonObject::const_iterator{} : o->find("manifests");
  if (o == nullptr || it == o->end()) return InvalidArgumentError("index.json has no manifests");
  const auto* list = std::get_if<bundle::JsonArray>(&it->second.v);
  for (const bundle::Json& m : list == nullptr ? bundle::JsonArray{} : *list) {
    const auto* mo = std::get_if<bundle::JsonObject>(&m.v);
    if (mo == nullptr || !mo->count("digest") || !mo->count("annotations")) continue;
    const auto* digest = std::get_if<std::string>(&mo->at("digest").v);
    const auto* ann = std::get_if<bundle::JsonObject>(&mo->at("annotations").v);
    if (digest == nullptr || ann == nullptr || !ann->count("org.opencontainers.image.ref.name")) {
      continue;
    }
    const auto* ref = std::get_if<std::string>(&ann->at("org.opencontainers.image.ref.name").v);
    if (ref != nullptr && digest->size() == 71) manifests[digest->substr(7)] = *ref;
  }
  return Status();
}

// Streams the reader's current entry into `path` (created or truncated), through `buf`.
Status CopyEntryToFile(bundle::TarReader& reader, const std::string& path, std::string& buf) {
  int out = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0) return ErrnoToStatus(errno, "creating", path);
  Status copied;
  for (;;) {
    Result<size_t> n = reader.Read(buf.data(), buf.size());
    if (!n.ok()) {
      copied = n.status();
      break;
    }
    if (*n == 0) break;
    if (::write(out, buf.data(), *n) != static_cast<ssize_t>(*n)) {
      copied = ErrnoToStatus(errno, "writing", path);
      break;
    }
  }
  ::close(out);
  return copied;
}

// Uploads the blob in `blob_file` as `digest`: an upload started by POST, then one PUT.
Status UploadBlob(Registry& registry, const std::string& repository, const std::string& digest,
                  const std::string& blob_file) {
  const std::string uploads = "/v2/" + repository + "/blobs/uploads/";
  OUTPOST_ASSIGN_OR_RETURN(Answer started, registry.Send({.method = "POST", .target = uploads}));
  if (started.status != 202 || started.location.empty()) {
    return Refused("starting the upload of " + digest, started);
  }
  const std::string target = PutTarget(started.location, digest);
  OUTPOST_ASSIGN_OR_RETURN(Answer done, registry.Send({.method = "PUT",
                                                       .target = target,
                                                       .content_type = "application/octet-stream",
                                                       .body_file = blob_file}));
  if (done.status != 201) return Refused("uploading " + digest, done);
  return Status();
}

}  // namespace

Result<std::vector<std::string>> PushBundle(const std::string& bundle_path,
                                            const std::string& registry_url,
                                            const std::string& repository) {
  std::string hostport = registry_url;
  if (hostport.rfind("http://", 0) == 0) hostport = hostport.substr(7);
  while (!hostport.empty() && hostport.back() == '/') hostport.pop_back();
  size_t colon = hostport.rfind(':');
  if (colon == std::string::npos || hostport.find('/') != std::string::npos) {
    return InvalidArgumentError("registry URL must be http://host:port, not " + registry_url);
  }
  for (char c : repository) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '/' || c == '.' ||
              c == '_' || c == '-';
    if (!ok || repository.empty()) return InvalidArgumentError("bad repository " + repository);
  }
  Result<std::unique_ptr<http::Client>> client = http::Client::Create(
      {.base_url = "http://" + hostport,
       .io_timeout = std::chrono::minutes(30),  // one large blob goes up in one PUT
       .keep_alive = true,
       .headers = {{"User-Agent", "outpost"}}});
  if (!client.ok()) {
    return InvalidArgumentError("registry URL must be http://host:port, not " + registry_url);
  }
  Registry registry(std::move(*client));

  int fd = ::open(bundle_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "opening", bundle_path);
  std::string tmp_dir = (std::filesystem::temp_directory_path() / "outpost-push-XXXXXX").string();
  if (::mkdtemp(tmp_dir.data()) == nullptr) {
    ::close(fd);
    return ErrnoToStatus(errno, "creating", tmp_dir);
  }
  std::string blob_file = JoinPath(tmp_dir, "blob");
  std::map<std::string, std::string> manifests;  // hex -> ref name
  std::map<std::string, std::string> manifest_bytes;
  auto push = [&]() -> Result<std::vector<std::string>> {
    bundle::TarReader reader(fd, {});
    std::string buf(64 * 1024, '\0');
    for (;;) {
      OUTPOST_ASSIGN_OR_RETURN(std::optional<bundle::TarEntry> e, reader.Next());
      if (!e) break;
      if (e->name == "index.json") {
        OUTPOST_RETURN_IF_ERROR(ReadIndexManifests(reader, manifests));
        continue;
      }
      if (e->name.rfind(kBlobPrefix, 0) != 0) continue;
      std::string hex = e->name.substr(kBlobPrefix.size());
      std::string digest = "sha256:" + hex;
      if (manifests.count(hex) > 0) {
        OUTPOST_ASSIGN_OR_RETURN(manifest_bytes[hex], reader.ReadAll(4 << 20));
        continue;
      }
      const std::string blob = "/v2/" + repository + "/blobs/" + digest;
      OUTPOST_ASSIGN_OR_RETURN(Answer have, registry.Send({.method = "HEAD", .target = blob}));
      if (have.status == 200) continue;
      // Stream the blob to a temporary file, then upload it in one PUT.
      OUTPOST_RETURN_IF_ERROR(CopyEntryToFile(reader, blob_file, buf));
      OUTPOST_RETURN_IF_ERROR(UploadBlob(registry, repository, digest, blob_file));
    }
    std::vector<std::string> pushed;
    for (const auto& [hex, ref] : manifests) {
      auto bytes = manifest_bytes.find(hex);
      if (bytes == manifest_bytes.end()) {
        return InvalidArgumentError("manifest " + hex + " is missing from the bundle");
      }
      const std::string manifest = "/v2/" + repository + "/manifests/" + ref;
      OUTPOST_ASSIGN_OR_RETURN(
          Answer done, registry.Send({.method = "PUT",
                                      .target = manifest,
                                      .content_type = "application/vnd.oci.image.manifest.v1+json",
                                      .body = bytes->second}));
      if (done.status != 201) return Refused("putting manifest " + ref, done);
      pushed.push_back(hostport + "/" + repository + ":" + ref);
    }
    return pushed;
  };
  Result<std::vector<std::string>> result = push();
  ::close(fd);
  RemoveTree(tmp_dir).IgnoreError();
  return result;
}

}  // namespace outpost::apps
