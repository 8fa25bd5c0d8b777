#include "apps/bundle_fetch.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <vector>

#include "base/coding.h"
#include "base/file.h"
#include "base/http/client.h"
#include "bundle/metadata.h"
#include "bundle/tar.h"

namespace outpost::apps {
namespace {

// A metadata file's text without surrounding white space; empty when the file is absent.
Result<std::string> MetadataValue(const std::string& dir, const std::string& name) {
  std::string path = JoinPath(dir, name);
  if (!PathExists(path)) return std::string();
  OUTPOST_ASSIGN_OR_RETURN(std::string text, ReadFile(path, 4096));
  size_t b = text.find_first_not_of(" \t\r\n");
  size_t e = text.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? std::string() : text.substr(b, e - b + 1);
}

// The root files of the metadata folder ("root.<N>.json"), by ascending N.
Result<std::map<uint64_t, std::string>> RootFiles(const std::string& dir) {
  OUTPOST_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirectory(dir));
  std::map<uint64_t, std::string> roots;
  for (const std::string& name : names) {
    if (!name.starts_with("root.") || !name.ends_with(".json")) continue;
    std::string_view digits = std::string_view(name).substr(5, name.size() - 10);
    uint64_t n = 0;
    if (!ParseDecimal(digits, &n) || n == 0) continue;
    OUTPOST_ASSIGN_OR_RETURN(roots[n], ReadFile(JoinPath(dir, name), 1 << 20));
  }
  return roots;
}

// Appends the file at `path` to the archive as `name`, with the file's own length (a length
// other than the listed one is the verifier's to refuse, TARGET_LENGTH).
Status AppendFile(bundle::TarWriter& tar, const std::string& name, const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "opening", path);
  Status s;
  off_t size = ::lseek(fd, 0, SEEK_END);
  if (size < 0 || ::lseek(fd, 0, SEEK_SET) != 0) s = ErrnoToStatus(errno, "seeking", path);
  if (s.ok()) s = tar.Begin(name, static_cast<uint64_t>(size));
  std::string buf(256 * 1024, '\0');
  while (s.ok()) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) s = ErrnoToStatus(errno, "reading", path);
    if (n <= 0) break;
    s = tar.Write(std::string_view(buf.data(), static_cast<size_t>(n)));
  }
  ::close(fd);
  return s;
}

// Reassembles the deployed bundle at `out`: the root files and the signed targets from the
// metadata, then every listed target fetched from the registry by its digest. A target the
// registry does not have is left out (the verifier refuses TARGET_MISSING); bytes are not
// checked here: the installer's verifier checks every length and hash against the signed
// targets.
Status Reassemble(const FetchOptions& o, const std::string& targets_text,
                  const bundle::Targets& t, const std::string& out) {
  OUTPOST_ASSIGN_OR_RETURN(std::string registry, MetadataValue(o.metadata_dir, "REGISTRY"));
  OUTPOST_ASSIGN_OR_RETURN(std::string repository,
                           MetadataValue(o.metadata_dir, "REGISTRY_REPOSITORY"));
  if (registry.empty() || repository.empty()) {
    return FailedPreconditionError("the bundle metadata names no registry (REGISTRY, "
                                   "REGISTRY_REPOSITORY)");
  }
  // No answer may be longer than the longest target the signed targets list.
  uint64_t longest = 0;
  for (const auto& [name, file] : t.targets) longest = std::max(longest, file.length);
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<http::Client> client,
                           http::Client::Create({.base_url = "http://" + registry,
                                                 .io_timeout = std::chrono::minutes(10),
                                                 .max_response_bytes = longest,
                                                 .keep_alive = true,
                                                 .headers = {{"User-Agent", "outpost"}}}));
  OUTPOST_ASSIGN_OR_RETURN(auto roots, RootFiles(o.metadata_dir));
  int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoToStatus(errno, "creating", out);
  bundle::TarWriter tar(fd);
  std::string blob_file = out + ".blob";
  auto put = [&](const std::string& name, std::string_view bytes) -> Status {
    OUTPOST_RETURN_IF_ERROR(tar.Begin(name, bytes.size()));
    return tar.Write(bytes);
  };
  auto write = [&]() -> Status {
    for (const auto& [n, text] : roots) {
      OUTPOST_RETURN_IF_ERROR(put("outpost/root/" + std::to_string(n) + ".json", text));
    }
    OUTPOST_RETURN_IF_ERROR(put("outpost/targets.json", targets_text));
    // The layout's order: oci-layout, index.json, then the blobs.
    std::vector<std::string> names{"oci-layout", "index.json"};
    for (const auto& [name, file] : t.targets) {
      if (name.starts_with("blobs/")) names.push_back(name);
    }
    for (const std::string& name : names) {
      const bundle::TargetFile& listed = t.targets.at(name);
      Result<http::ClientResponse> r = client->Send(
          {.target = "/v2/" + repository + "/blobs/sha256:" + listed.sha256,
           .response_file = blob_file});
      if (!r.ok()) return r.status().WithContext("the site registry " + registry);
      if (r->status == 404) continue;
      if (r->status != 200) {
        return UnavailableError("the site registry answered " + std::to_string(r->status) +
                                " for " + name);
      }
      OUTPOST_RETURN_IF_ERROR(AppendFile(tar, name, blob_file));
    }
    OUTPOST_RETURN_IF_ERROR(tar.Finish());
    if (::fsync(fd) != 0) return ErrnoToStatus(errno, "fsync", out);
    return Status::Ok();
  };
  Status s = write();
  ::close(fd);
  ::unlink(blob_file.c_str());
  return s;
}

// Rolls the pod back to the bundle kept before the active one, when that is the deployed one.
Status RollBack(bundle::Installer& installer, const std::vector<uint64_t>& installed,
                uint64_t wanted) {
  if (installed.size() < 2 || installed[installed.size() - 2] != wanted) {
    return FailedPreconditionError("NO_PREVIOUS_BUNDLE: bundle " + std::to_string(wanted) +
                                   " is not the one kept before the active bundle");
  }
  OUTPOST_ASSIGN_OR_RETURN(bundle::InstallResult r, installer.Rollback());
  std::printf("rolled back to bundle version %llu (was %llu)\n",
              static_cast<unsigned long long>(r.bundle_version),
              static_cast<unsigned long long>(r.previous_version));
  return Status::Ok();
}

}  // namespace

Status FetchAndInstall(bundle::Installer& installer, const FetchOptions& o) {
  std::string targets_path = JoinPath(o.metadata_dir, "targets.json");
  OUTPOST_ASSIGN_OR_RETURN(bundle::SiteStatus site, installer.Describe());
  uint64_t active = site.installed.empty() ? 0 : site.installed.back();
  if (!PathExists(targets_path)) return NotFoundError("no " + targets_path);
  OUTPOST_ASSIGN_OR_RETURN(std::string targets_text, ReadFile(targets_path, 1 << 20));
  // Read, not trusted: it names what to fetch; the installer verifies it.
  OUTPOST_ASSIGN_OR_RETURN(bundle::Envelope env, bundle::ParseEnvelope(targets_text));
  OUTPOST_ASSIGN_OR_RETURN(bundle::Targets t, bundle::TargetsFromJson(env.signed_value));
  Result<std::string> operation_value = MetadataValue(o.metadata_dir, "OPERATION");
  if (!operation_value.ok()) return operation_value.status();
  const std::string operation = *operation_value;
  if (t.version == active) {
    std::printf("bundle version %llu is installed already\n",
                static_cast<unsigned long long>(active));
    return Status::Ok();
  }
  Status s;
  if (operation == "rollback") {
    s = RollBack(installer, site.installed, t.version);
  } else if (operation.empty() || operation == "install") {
    OUTPOST_RETURN_IF_ERROR(MakeDirectories(o.work_dir, 0700));
    std::string tar = JoinPath(o.work_dir, "fetched.bundle");
    s = Reassemble(o, targets_text, t, tar);
    if (s.ok()) {
      Result<bundle::InstallResult> r = installer.Install(tar);
      s = r.status();
      if (r.ok()) {
        std::printf("installed bundle version %llu (was %llu) from the site registry\n",
                    static_cast<unsigned long long>(r->bundle_version),
                    static_cast<unsigned long long>(r->previous_version));
      }
    }
    ::unlink(tar.c_str());
  } else {
    return InvalidArgumentError("unknown OPERATION \"" + operation + "\"");
  }
  if (s.ok() || o.strict || active == 0) return s;
  std::fprintf(stderr, "outpost: refused bundle version %llu: %s\n",
               static_cast<unsigned long long>(t.version), s.ToString().c_str());
  std::printf("keeps serving bundle version %llu\n", static_cast<unsigned long long>(active));
  return Status::Ok();
}

}  // namespace outpost::apps
