// The Boost.Beast adapter of `outpost bundle push`.
#include "apps/bundle_push.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <filesystem>
#include <map>
#include <optional>

#include "base/file.h"
#include "bundle/metadata.h"
#include "bundle/tar.h"

namespace outpost::apps {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr std::string_view kBlobPrefix = "blobs/sha256/";

struct Answer {
  int status = 0;
  std::string location;
  std::string body;
};

class Registry {
 public:
  Registry(std::string host, std::string port) : host_(std::move(host)), port_(std::move(port)) {}

  template <typename Body>
  Result<Answer> Send(http::request<Body>& req) {
    try {
      if (!stream_) {
        stream_ = std::make_unique<beast::tcp_stream>(ioc_);
        tcp::resolver resolver(ioc_);
        stream_->connect(resolver.resolve(host_, port_));
      }
      req.set(http::field::host, host_ + ":" + port_);
      req.set(http::field::user_agent, "outpost");
      req.prepare_payload();
      http::write(*stream_, req);
      beast::flat_buffer buffer;
      http::response_parser<http::string_body> parser;
      parser.body_limit(16 << 20);
      if (req.method() == http::verb::head) parser.skip(true);
      http::read(*stream_, buffer, parser);
      auto& res = parser.get();
      Answer a{.status = static_cast<int>(res.result_int()),
               .location = std::string(res[http::field::location]),
               .body = res.body()};
      if (!res.keep_alive()) stream_.reset();
      return a;
    } catch (const std::exception& e) {
      stream_.reset();
      return UnavailableError("registry " + host_ + ":" + port_ + ": " + e.what());
    }
  }

 private:
  std::string host_, port_;
  asio::io_context ioc_;
  std::unique_ptr<beast::tcp_stream> stream_;
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
  http::request<http::empty_body> start(http::verb::post, "/v2/" + repository + "/blobs/uploads/",
                                        11);
  OUTPOST_ASSIGN_OR_RETURN(Answer started, registry.Send(start));
  if (started.status != 202 || started.location.empty()) {
    return Refused("starting the upload of " + digest, started);
  }
  http::request<http::file_body> put(http::verb::put, PutTarget(started.location, digest), 11);
  beast::error_code ec;
  put.body().open(blob_file.c_str(), beast::file_mode::scan, ec);
  if (ec) return UnavailableError("opening " + blob_file + ": " + ec.message());
  put.set(http::field::content_type, "application/octet-stream");
  OUTPOST_ASSIGN_OR_RETURN(Answer done, registry.Send(put));
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
  Registry registry(hostport.substr(0, colon), hostport.substr(colon + 1));

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
      http::request<http::empty_body> head(http::verb::head,
                                           "/v2/" + repository + "/blobs/" + digest, 11);
      OUTPOST_ASSIGN_OR_RETURN(Answer have, registry.Send(head));
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
      http::request<http::string_body> put(http::verb::put,
                                           "/v2/" + repository + "/manifests/" + ref, 11);
      put.set(http::field::content_type, "application/vnd.oci.image.manifest.v1+json");
      put.body() = bytes->second;
      OUTPOST_ASSIGN_OR_RETURN(Answer done, registry.Send(put));
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
