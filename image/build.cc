#include "image/build.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>

#include "base/coding.h"
#include "base/crypto/crypto.h"
#include "base/file.h"
#include "base/json_writer.h"
#include "base/subprocess.h"
#include "image/deps.h"
#include "image/elf.h"
#include "image/gzip.h"
#include "image/sink.h"
#include "image/tar.h"

namespace outpost::image {
namespace {

constexpr char kManifestType[] = "application/vnd.oci.image.manifest.v1+json";
constexpr char kConfigType[] = "application/vnd.oci.image.config.v1+json";
constexpr char kLayerType[] = "application/vnd.oci.image.layer.v1.tar+gzip";
constexpr char kIndexType[] = "application/vnd.oci.image.index.v1+json";
constexpr char kPath[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
// Symbolic links followed from one library before giving up (the kernel's own limit).
constexpr int kMaxLinkHops = 40;

struct Blob {
  std::string digest;  // "sha256:<hex>"
  uint64_t size = 0;
};

// Everything one build knows, step by step.
struct BuildState {
  const ImageBuildOptions& options;
  std::string staging;  // the layout being written; renamed or archived at the end
  std::string debug_path;
  std::string tag;
  ElfInfo elf;
  std::string triplet, architecture;
  std::string stripped;  // the stripped binary, inside `staging`
  std::vector<PackagedFile> packaged;
  std::vector<DebianPackage> packages;
  std::string sbom;
  LayerBuilder layer;
  ImageBuildResult result;
};

// Closes a file descriptor when it goes out of scope.
struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string ParentDir(const std::string& path) {
  std::string parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

// A host library path as the image holds it: merged /usr, so /lib and /lib64 move under
// /usr (FORMAT.md section 4).
std::string ImagePathOf(const std::string& host_path) {
  if (host_path.rfind("/lib/", 0) == 0 || host_path.rfind("/lib64/", 0) == 0) {
    return "/usr" + host_path;
  }
  return host_path;
}

Status RunTool(const std::vector<std::string>& argv) {
  if (!PathExists(argv[0])) {
    return FailedPreconditionError(argv[0] + " is missing (Debian's binutils)");
  }
  RunResult run = RunProgram(argv);
  if (run.exit_code != 0) {
    std::string err = run.err.substr(0, 400);
    while (!err.empty() && err.back() == '\n') err.pop_back();
    return FailedPreconditionError(argv[0] + " " + argv[1] + " failed (exit " +
                                   std::to_string(run.exit_code) + "): " + err);
  }
  return Status::Ok();
}

std::string Sha256FileHex(const std::string& path, Status& status) {
  crypto::Sha256Hasher hasher;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    status = ErrnoToStatus(errno, "reading", path);
    return "";
  }
  FdCloser closer{fd};
  std::string buf(size_t{1} << 20, '\0');
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = ErrnoToStatus(errno, "reading", path);
      return "";
    }
    if (n == 0) break;
    hasher.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
  }
  return HexEncode(hasher.Finish());
}

// Writes `bytes` as a blob of the layout being staged.
Result<Blob> WriteBlob(const BuildState& s, std::string_view bytes) {
  std::string hex = crypto::Sha256Hex(bytes);
  OUTPOST_RETURN_IF_ERROR(
      WriteFileAtomically(JoinPath(s.staging, "blobs/sha256/" + hex), bytes, 0644));
  return Blob{.digest = "sha256:" + hex, .size = bytes.size()};
}

// Step 1: the options, the binary's headers, the staging folder.
Status Prepare(BuildState& s) {
  const ImageBuildOptions& o = s.options;
  if (o.binary.empty() || o.out.empty() || o.version.empty()) {
    return InvalidArgumentError("the image needs a binary, an output path and a version");
  }
  if (PathExists(o.out)) {
    return AlreadyExistsError(o.out + " exists; the image is written only to a new path");
  }
  OUTPOST_ASSIGN_OR_RETURN(s.elf, ReadElfFile(o.binary));
  if (s.elf.interpreter.empty()) {
    return InvalidArgumentError(o.binary + " is not a dynamically linked executable");
  }
  std::optional<std::string> triplet = MultiarchTriplet(s.elf.machine);
  std::optional<std::string> arch = OciArchitecture(s.elf.machine);
  if (!triplet || !arch) {
    return UnimplementedError("the image supports x86-64 and arm64 binaries; " + o.binary +
                              " is ELF machine " + std::to_string(s.elf.machine));
  }
  s.triplet = *triplet;
  s.architecture = *arch;
  s.tag = o.tag.empty() ? "outpost:" + o.version : o.tag;
  s.debug_path = o.debug_out.empty() ? JoinPath(ParentDir(o.out), "outpost.debug") : o.debug_out;
  s.staging = o.out + ".partial-" + std::to_string(::getpid());
  OUTPOST_RETURN_IF_ERROR(RemoveTree(s.staging));
  return MakeDirectories(JoinPath(s.staging, "blobs/sha256"));
}

// Step 2: the debug information out to `debug_path`, the binary stripped of it.
Status Strip(BuildState& s) {
  const ImageBuildOptions& o = s.options;
  s.stripped = JoinPath(s.staging, "outpost.stripped");
  OUTPOST_RETURN_IF_ERROR(RunTool({o.objcopy, "--only-keep-debug", o.binary, s.debug_path}));
  OUTPOST_RETURN_IF_ERROR(RunTool(
      {o.objcopy, "--strip-debug", "--add-gnu-debuglink=" + s.debug_path, o.binary, s.stripped}));
  if (::chmod(s.stripped.c_str(), 0755) != 0) return ErrnoToStatus(errno, "chmod", s.stripped);
  OUTPOST_ASSIGN_OR_RETURN(ElfInfo stripped, ReadElfFile(s.stripped));
  for (const std::string& name : stripped.section_names) {
    if (name.rfind(".debug_", 0) == 0 || name.rfind(".zdebug_", 0) == 0) {
      return FailedPreconditionError("section " + name + " survived " + o.objcopy +
                                     " --strip-debug");
    }
  }
  return Status::Ok();
}

// Adds a host library path to the layer: a link as a link, then what it points to, until a
// regular file; each recorded for the package list.
Status AddLibraryPath(BuildState& s, std::string host_path) {
  for (int hop = 0; hop < kMaxLinkHops; ++hop) {
    host_path = std::filesystem::path(host_path).lexically_normal().string();
    std::string image_path = ImagePathOf(host_path);
    s.packaged.push_back(PackagedFile{.image_path = image_path, .host_path = host_path});
    // Already there (another library's link led to it): so is the rest of its chain.
    if (s.layer.Contains(image_path)) return Status::Ok();
    struct stat st;
    if (::lstat(host_path.c_str(), &st) != 0) return ErrnoToStatus(errno, "reading", host_path);
    if (!S_ISLNK(st.st_mode)) return s.layer.AddHostFile(image_path, host_path);
    std::error_code ec;
    std::filesystem::path target = std::filesystem::read_symlink(host_path, ec);
    if (ec) return ErrnoToStatus(ec.value(), "reading the link", host_path);
    OUTPOST_RETURN_IF_ERROR(s.layer.AddSymlink(image_path, target.string()));
    host_path = target.is_absolute()
                    ? target.string()
                    : (std::filesystem::path(host_path).parent_path() / target).string();
  }
  return FailedPreconditionError(host_path + ": too many levels of symbolic links");
}

// Step 3: the loader and every library, and the packages they come from.
Status AddLibraries(BuildState& s) {
  const ImageBuildOptions& o = s.options;
  std::vector<std::string> dirs =
      o.library_dirs.empty() ? DefaultLibraryDirs(s.triplet) : o.library_dirs;
  OUTPOST_ASSIGN_OR_RETURN(std::vector<ResolvedLibrary> libraries,
                           ResolveSharedLibraries(o.binary, s.elf, dirs));
  if (!PathExists(s.elf.interpreter)) {
    return NotFoundError("the loader " + s.elf.interpreter + " that " + o.binary + " names");
  }
  OUTPOST_RETURN_IF_ERROR(AddLibraryPath(s, s.elf.interpreter));
  for (const ResolvedLibrary& library : libraries) {
    OUTPOST_RETURN_IF_ERROR(AddLibraryPath(s, library.host_path));
  }
  // Merged /usr: /lib and /lib64 are links, as on Debian 12.
  OUTPOST_RETURN_IF_ERROR(s.layer.AddSymlink("lib", "usr/lib"));
  if (s.layer.Contains("usr/lib64")) {
    OUTPOST_RETURN_IF_ERROR(s.layer.AddSymlink("lib64", "usr/lib64"));
  }
  if (!PathExists(o.ca_bundle)) return NotFoundError("the CA bundle " + o.ca_bundle);
  std::vector<PackagedFile> files = s.packaged;
  files.push_back(PackagedFile{.image_path = "/etc/ssl/certs/ca-certificates.crt",
                               .host_path = o.ca_bundle,
                               .known_package = "ca-certificates"});
  OUTPOST_ASSIGN_OR_RETURN(s.packages, FindDebianPackages(files, o.dpkg));
  std::map<std::string, bool> distinct;
  for (const PackagedFile& f : s.packaged) distinct[f.image_path] = true;
  s.result.libraries = distinct.size();
  s.result.packages = s.packages.size();
  return Status::Ok();
}

// Step 4: the binary, the users, the data folder, the CA bundle and the SBOM.
Status AddRest(BuildState& s, std::string& binary_hex) {
  const ImageBuildOptions& o = s.options;
  Status status;
  binary_hex = Sha256FileHex(s.stripped, status);
  OUTPOST_RETURN_IF_ERROR(status);
  OUTPOST_RETURN_IF_ERROR(s.layer.AddHostFile(kImageBinaryPath, s.stripped));
  OUTPOST_RETURN_IF_ERROR(s.layer.AddHostFile("etc/ssl/certs/ca-certificates.crt", o.ca_bundle));
  OUTPOST_RETURN_IF_ERROR(
      s.layer.AddFileContents("etc/passwd",
                              "root:x:0:0:root:/root:/sbin/nologin\n"
                              "outpost:x:65532:65532:outpost:/var/lib/outpost:/sbin/nologin\n"));
  OUTPOST_RETURN_IF_ERROR(s.layer.AddFileContents("etc/group", "root:x:0:\noutpost:x:65532:\n"));
  OUTPOST_RETURN_IF_ERROR(s.layer.AddDirectory(kImageDataDir, 0755, kImageUid, kImageGid));
  OUTPOST_RETURN_IF_ERROR(s.layer.AddDirectory("tmp", 01777));
  auto [os_id, os_version_id] = ReadOsRelease(o.os_release);
  s.sbom = MakeSbomJson(SbomSubject{.version = o.version,
                                    .binary_image_path = kImageBinaryPath,
                                    .binary_sha256 = binary_hex,
                                    .timestamp = Rfc3339(o.source_date_epoch),
                                    .os_id = os_id,
                                    .os_version_id = os_version_id},
                        s.packages);
  return s.layer.AddFileContents(kImageSbomPath, s.sbom);
}

// Step 5: the layer, through tar -> diff_id hash -> gzip -> digest hash -> file.
Result<Blob> WriteLayer(BuildState& s) {
  std::string tmp = JoinPath(s.staging, "blobs/sha256/layer.partial");
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoToStatus(errno, "creating", tmp);
  FdCloser closer{fd};
  FdSink file(fd, tmp);
  HashingSink compressed(file);
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<GzipSink> gzip, GzipSink::Open(compressed));
  HashingSink plain(*gzip);
  OUTPOST_RETURN_IF_ERROR(s.layer.WriteTo(plain));
  OUTPOST_RETURN_IF_ERROR(gzip->Finish());
  s.result.layer_diff_id = plain.Digest();
  s.result.layer_bytes = plain.bytes();
  Blob blob{.digest = compressed.Digest(), .size = compressed.bytes()};
  std::string final_path = JoinPath(s.staging, "blobs/sha256/" + blob.digest.substr(7));
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
    return ErrnoToStatus(errno, "renaming", tmp);
  }
  s.result.layer_digest = blob.digest;
  s.result.layer_compressed_bytes = blob.size;
  return blob;
}

void WriteDescriptor(JsonWriter& w, const char* media_type, const Blob& blob) {
  w.Key("mediaType");
  w.String(media_type);
  w.Key("digest");
  w.String(blob.digest);
  w.Key("size");
  w.Uint(blob.size);
}

std::map<std::string, std::string> Labels(const BuildState& s, const std::string& binary_hex) {
  return {{"org.opencontainers.image.title", "outpost"},
          {"org.opencontainers.image.version", s.options.version},
          {"outpost.sbom.path", kImageSbomPath},
          {"outpost.sbom.sha256", crypto::Sha256Hex(s.sbom)},
          {"outpost.binary.sha256", binary_hex},
          {"outpost.packages", PackageSummary(s.packages)}};
}

// Step 6: the image config (FORMAT.md section 2).
std::string ConfigJson(const BuildState& s, const std::string& binary_hex) {
  std::string created = Rfc3339(s.options.source_date_epoch);
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Key("created");
  w.String(created);
  w.Key("architecture");
  w.String(s.architecture);
  w.Key("os");
  w.String("linux");
  w.Key("config");
  w.BeginObject();
  w.Key("User");
  w.String(std::to_string(kImageUid) + ":" + std::to_string(kImageGid));
  w.Key("Env");
  w.BeginArray();
  w.String(kPath);
  w.EndArray();
  w.Key("Entrypoint");
  w.BeginArray();
  w.String(kImageBinaryPath);
  w.String("edge");
  w.EndArray();
  w.Key("WorkingDir");
  w.String(kImageDataDir);
  w.Key("Volumes");
  w.BeginObject();
  w.Key(kImageDataDir);
  w.BeginObject();
  w.EndObject();
  w.EndObject();
  w.Key("Labels");
  w.BeginObject();
  for (const auto& [key, value] : Labels(s, binary_hex)) {
    w.Key(key);
    w.String(value);
  }
  w.EndObject();
  w.EndObject();
  w.Key("rootfs");
  w.BeginObject();
  w.Key("type");
  w.String("layers");
  w.Key("diff_ids");
  w.BeginArray();
  w.String(s.result.layer_diff_id);
  w.EndArray();
  w.EndObject();
  w.Key("history");
  w.BeginArray();
  w.BeginObject();
  w.Key("created");
  w.String(created);
  w.Key("created_by");
  w.String("outpost image build");
  w.EndObject();
  w.EndArray();
  w.EndObject();
  return out;
}

std::string ManifestJson(const Blob& config, const Blob& layer) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Key("schemaVersion");
  w.Int(2);
  w.Key("mediaType");
  w.String(kManifestType);
  w.Key("config");
  w.BeginObject();
  WriteDescriptor(w, kConfigType, config);
  w.EndObject();
  w.Key("layers");
  w.BeginArray();
  w.BeginObject();
  WriteDescriptor(w, kLayerType, layer);
  w.EndObject();
  w.EndArray();
  w.EndObject();
  return out;
}

std::string IndexJson(const BuildState& s, const Blob& manifest) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Key("schemaVersion");
  w.Int(2);
  w.Key("mediaType");
  w.String(kIndexType);
  w.Key("manifests");
  w.BeginArray();
  w.BeginObject();
  WriteDescriptor(w, kManifestType, manifest);
  w.Key("platform");
  w.BeginObject();
  w.Key("architecture");
  w.String(s.architecture);
  w.Key("os");
  w.String("linux");
  w.EndObject();
  w.Key("annotations");
  w.BeginObject();
  w.Key("org.opencontainers.image.ref.name");
  w.String(s.tag);
  w.EndObject();
  w.EndObject();
  w.EndArray();
  w.EndObject();
  return out;
}

// Step 7: config, manifest, index.json and oci-layout.
Status WriteLayout(BuildState& s, const Blob& layer, const std::string& binary_hex) {
  OUTPOST_ASSIGN_OR_RETURN(Blob config, WriteBlob(s, ConfigJson(s, binary_hex)));
  OUTPOST_ASSIGN_OR_RETURN(Blob manifest, WriteBlob(s, ManifestJson(config, layer)));
  s.result.config_digest = config.digest;
  s.result.manifest_digest = manifest.digest;
  std::string index = IndexJson(s, manifest);
  std::string layout = R"({"imageLayoutVersion":"1.0.0"})";
  OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(JoinPath(s.staging, "index.json"), index, 0644));
  OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(JoinPath(s.staging, "oci-layout"), layout, 0644));
  s.result.out_bytes = layer.size + config.size + manifest.size + index.size() + layout.size();
  return Status::Ok();
}

// Step 8: the staged layout becomes `out`: renamed, or archived into one tar.
Status Publish(BuildState& s) {
  const ImageBuildOptions& o = s.options;
  std::string stripped = s.stripped;
  if (::unlink(stripped.c_str()) != 0) return ErrnoToStatus(errno, "removing", stripped);
  if (!EndsWith(o.out, ".tar")) {
    if (::rename(s.staging.c_str(), o.out.c_str()) != 0) {
      return ErrnoToStatus(errno, "renaming to", o.out);
    }
    return SyncDirectory(ParentDir(o.out));
  }
  LayerBuilder archive(o.source_date_epoch);
  OUTPOST_ASSIGN_OR_RETURN(std::vector<std::string> blobs,
                           ListDirectory(JoinPath(s.staging, "blobs/sha256")));
  for (const std::string& name : blobs) {
    OUTPOST_RETURN_IF_ERROR(
        archive.AddHostFile("blobs/sha256/" + name, JoinPath(s.staging, "blobs/sha256/" + name)));
  }
  OUTPOST_RETURN_IF_ERROR(archive.AddHostFile("index.json", JoinPath(s.staging, "index.json")));
  OUTPOST_RETURN_IF_ERROR(archive.AddHostFile("oci-layout", JoinPath(s.staging, "oci-layout")));
  std::string tmp = o.out + ".partial";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoToStatus(errno, "creating", tmp);
  FdCloser closer{fd};
  FdSink file(fd, tmp);
  HashingSink counted(file);
  Status written = archive.WriteTo(counted);
  if (written.ok() && ::fsync(fd) != 0) written = ErrnoToStatus(errno, "syncing", tmp);
  if (written.ok() && ::rename(tmp.c_str(), o.out.c_str()) != 0) {
    written = ErrnoToStatus(errno, "renaming to", o.out);
  }
  if (!written.ok()) {
    ::unlink(tmp.c_str());
    return written;
  }
  s.result.out_bytes = counted.bytes();
  OUTPOST_RETURN_IF_ERROR(RemoveTree(s.staging));
  return SyncDirectory(ParentDir(o.out));
}

Status Build(BuildState& s) {
  OUTPOST_RETURN_IF_ERROR(Prepare(s));
  OUTPOST_RETURN_IF_ERROR(Strip(s).WithContext("stripping " + s.options.binary));
  OUTPOST_RETURN_IF_ERROR(AddLibraries(s).WithContext("libraries of " + s.options.binary));
  std::string binary_hex;
  OUTPOST_RETURN_IF_ERROR(AddRest(s, binary_hex));
  OUTPOST_ASSIGN_OR_RETURN(Blob layer, WriteLayer(s));
  OUTPOST_RETURN_IF_ERROR(WriteLayout(s, layer, binary_hex));
  return Publish(s);
}

}  // namespace

std::string Rfc3339(uint64_t epoch) {
  time_t t = static_cast<time_t>(epoch);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(buf, n);
}

Result<ImageBuildResult> BuildImage(const ImageBuildOptions& options) {
  BuildState s{.options = options, .layer = LayerBuilder(options.source_date_epoch)};
  Status status = Build(s);
  if (!s.staging.empty()) RemoveTree(s.staging).IgnoreError();
  if (!status.ok()) return status.WithContext("image " + options.out);
  s.result.debug_path = s.debug_path;
  return s.result;
}

}  // namespace outpost::image
