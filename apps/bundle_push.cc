// `outpost bundle push` over base/http's client: one kept connection to the registry, every
// blob streamed from the verifier's staging folder.
#include "apps/bundle_push.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>

#include "base/file.h"
#include "base/http/client.h"
#include "bundle/metadata.h"

namespace outpost::apps {
namespace {

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

// Makes blob `hex` of repository `from` present in `to`: mounted across repositories when the
// registry can, else uploaded from the verified file.
Status CopyBlob(Registry& registry, const std::string& from, const std::string& to,
                const std::string& hex, const std::string& file) {
  const std::string digest = "sha256:" + hex;
  OUTPOST_ASSIGN_OR_RETURN(Answer have,
                           registry.Send({.method = "HEAD", .target = "/v2/" + to + "/blobs/" + digest}));
  if (have.status == 200) return Status();
  OUTPOST_ASSIGN_OR_RETURN(
      Answer mounted,
      registry.Send({.method = "POST",
                     .target = "/v2/" + to + "/blobs/uploads/?mount=" + digest + "&from=" + from}));
  if (mounted.status == 201) return Status();
  return UploadBlob(registry, to, digest, file);
}

Result<Answer> PutManifest(Registry& registry, const std::string& repository,
                           const std::string& reference, const std::string& bytes) {
  return registry.Send({.method = "PUT",
                        .target = "/v2/" + repository + "/manifests/" + reference,
                        .content_type = "application/vnd.oci.image.manifest.v1+json",
                        .body = bytes});
}

Status CheckRepository(const std::string& repository) {
  for (char c : repository) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '/' || c == '.' ||
              c == '_' || c == '-';
    if (!ok) return InvalidArgumentError("bad repository " + repository);
  }
  if (repository.empty()) return InvalidArgumentError("empty repository name");
  return Status();
}

}  // namespace

Result<PushResult> PushVerified(const bundle::VerifiedBundle& v, const std::string& registry_url,
                                const std::string& repository,
                                const std::string& runtime_repository) {
  std::string hostport = registry_url;
  if (hostport.rfind("http://", 0) == 0) hostport = hostport.substr(7);
  while (!hostport.empty() && hostport.back() == '/') hostport.pop_back();
  size_t colon = hostport.rfind(':');
  if (colon == std::string::npos || hostport.find('/') != std::string::npos) {
    return InvalidArgumentError("registry URL must be http://host:port, not " + registry_url);
  }
  OUTPOST_RETURN_IF_ERROR(CheckRepository(repository));
  OUTPOST_RETURN_IF_ERROR(CheckRepository(runtime_repository));
  Result<std::unique_ptr<http::Client>> client = http::Client::Create(
      {.base_url = "http://" + hostport,
       .io_timeout = std::chrono::minutes(30),  // one large blob goes up in one PUT
       .keep_alive = true,
       .headers = {{"User-Agent", "outpost"}}});
  if (!client.ok()) {
    return InvalidArgumentError("registry URL must be http://host:port, not " + registry_url);
  }
  Registry registry(std::move(*client));
  // Every target the verifier staged (checked against the signed targets), as a blob of the
  // models' repository: an edge pod fetches them from there by digest.
  for (const auto& [name, file] : v.targets.targets) {
    const std::string blob = "/v2/" + repository + "/blobs/sha256:" + file.sha256;
    OUTPOST_ASSIGN_OR_RETURN(Answer have, registry.Send({.method = "HEAD", .target = blob}));
    if (have.status == 200) continue;
    OUTPOST_RETURN_IF_ERROR(
        UploadBlob(registry, repository, "sha256:" + file.sha256, JoinPath(v.staging_dir, name)));
  }
  PushResult out;
  for (const bundle::ModelRef& m : v.targets.models) {
    OUTPOST_ASSIGN_OR_RETURN(
        std::string bytes, ReadFile(JoinPath(v.staging_dir, "blobs/sha256/" + m.manifest), 4 << 20));
    const std::string ref = m.name + "-" + std::to_string(m.version);
    OUTPOST_ASSIGN_OR_RETURN(Answer done, PutManifest(registry, repository, ref, bytes));
    if (done.status != 201) return Refused("putting manifest " + ref, done);
    out.pushed.push_back(hostport + "/" + repository + ":" + ref);
  }
  if (!v.targets.runtime_manifest.empty()) {
    const std::string& hex = v.targets.runtime_manifest;
    OUTPOST_ASSIGN_OR_RETURN(std::string bytes,
                             ReadFile(JoinPath(v.staging_dir, "blobs/sha256/" + hex), 4 << 20));
    auto blobs = bundle::ImageManifestBlobs(bytes);
    if (!blobs.ok()) {
      return InvalidArgumentError("the runtime image's manifest " +
                                  std::string(blobs.status().message()));
    }
    for (const std::string& b : *blobs) {
      OUTPOST_RETURN_IF_ERROR(CopyBlob(registry, repository, runtime_repository, b,
                                       JoinPath(v.staging_dir, "blobs/sha256/" + b)));
    }
    const std::string tag = "bundle-" + std::to_string(v.targets.version);
    OUTPOST_ASSIGN_OR_RETURN(Answer done, PutManifest(registry, runtime_repository, tag, bytes));
    if (done.status != 201) return Refused("putting the runtime image's manifest", done);
    out.runtime = hostport + "/" + runtime_repository + "@sha256:" + hex;
  }
  return out;
}

}  // namespace outpost::apps
