#include "bundle/bundle.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <set>

#include "base/coding.h"
#include "base/fd_write.h"
#include "base/file.h"
#include "base/names.h"
#include "bundle/reason.h"

namespace outpost::bundle {
namespace {

constexpr size_t kChunk = 64 * 1024;
constexpr std::string_view kRootPrefix = "outpost/root/";
constexpr std::string_view kTargetsName = "outpost/targets.json";
constexpr std::string_view kBlobPrefix = "blobs/sha256/";
constexpr std::string_view kOciLayout = R"({"imageLayoutVersion":"1.0.0"})";

// Member `key` of JSON object `j`, or nullptr when `j` is no object or lacks it.
const Json* Member(const Json& j, const char* key) {
  const JsonObject* o = std::get_if<JsonObject>(&j.v);
  if (o == nullptr) return nullptr;
  auto it = o->find(key);
  return it == o->end() ? nullptr : &it->second;
}

// The hex of an OCI descriptor's "sha256:<hex>" digest; empty when `descriptor` is null or
// names its blob any other way.
std::string Sha256HexOf(const Json* descriptor) {
  const Json* d = descriptor == nullptr ? nullptr : Member(*descriptor, "digest");
  const std::string* text = d == nullptr ? nullptr : std::get_if<std::string>(&d->v);
  if (text == nullptr || text->rfind("sha256:", 0) != 0 || !IsHex64(text->substr(7))) return "";
  return text->substr(7);
}

// Closes a file descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd& operator=(Fd&&) = delete;
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_;
};

bool IsDigits(std::string_view s) {
  return !s.empty() && s.size() <= 18 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

Result<Fd> OpenRegular(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoToStatus(errno, "opening", path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoToStatus(errno, "stat", path);
  if (!S_ISREG(st.st_mode)) return InvalidArgumentError(path + " is not a regular file");
  return Fd(fd.release());
}

// Streams a file through SHA-256, optionally copying it into a tar writer.
struct FileDigest {
  uint64_t length = 0;
  std::string sha256;  // hex
};
Result<FileDigest> HashFile(const std::string& path, TarWriter* copy_to) {
  OUTPOST_ASSIGN_OR_RETURN(Fd fd, OpenRegular(path));
  Sha256 h;
  FileDigest d;
  std::string buf(kChunk, '\0');
  for (;;) {
    ssize_t r = ::read(fd.get(), buf.data(), buf.size());
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, "reading", path);
    }
    if (r == 0) break;
    std::string_view piece(buf.data(), static_cast<size_t>(r));
    h.Update(piece);
    d.length += piece.size();
    if (copy_to != nullptr) {
      Status s = copy_to->Write(piece);
      if (!s.ok()) return AbortedError(path + " grew while it was being bundled");
    }
  }
  d.sha256 = HexEncode(h.Finish());
  return d;
}

struct Layer {
  std::string title;  // path relative to the model folder
  std::string path;   // on disk
  FileDigest digest;
};

Json Descriptor(std::string_view media_type, std::string_view hex, uint64_t size) {
  return Json{JsonObject{{"mediaType", Json{std::string(media_type)}},
                         {"digest", Json{"sha256:" + std::string(hex)}},
                         {"size", Json{size}}}};
}

// "2026-11-25T15:40:00Z": the time form of OCI image configurations.
std::string Rfc3339(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Result<std::vector<std::string>> Entries(const std::string& dir) {
  auto r = ListDirectory(dir);
  if (!r.ok()) return r.status().WithContext("reading the models folder");
  return r;
}

// What pass 1 of CreateBundle gathers: the targets, and the blobs pass 2 writes.
struct Contents {
  Targets targets;
  std::map<std::string, std::string> small_blobs;  // hex digest -> bytes (metadata-sized)
  std::map<std::string, std::string> file_blobs;   // hex digest -> path
  JsonArray index_manifests;
  std::string created;  // the bundle's creation time in RFC 3339
  const CreateOptions* options = nullptr;

  // Lists metadata-sized `bytes` as a blob; returns its hex digest.
  std::string AddSmall(std::string bytes) {
    std::string hex = HexEncode(Sha256Of(bytes));
    targets.targets[std::string(kBlobPrefix) + hex] = {.length = bytes.size(), .sha256 = hex};
    small_blobs[hex] = std::move(bytes);
    return hex;
  }
};

// A layer descriptor annotated with its file's title.
Json TitledDescriptor(std::string_view media_type, std::string_view hex, uint64_t size,
                      const std::string& title) {
  Json d = Descriptor(media_type, hex, size);
  std::get<JsonObject>(d.v)["annotations"] =
      Json{JsonObject{{"org.opencontainers.image.title", Json{title}}}};
  return d;
}

// One entry of an OCI image configuration's history.
Json HistoryEntry(const std::string& created, const std::string& comment) {
  return Json{JsonObject{{"created", Json{created}},
                         {"created_by", Json{std::string("outpost bundle create")}},
                         {"comment", Json{comment}}}};
}

// The parsed descriptor `what` (a descriptor.json, or one derived), which must name model
// `name` at `version`.
Result<ModelDescriptor> CheckedDescriptor(const std::string& name, const std::string& version,
                                          const std::string& what,
                                          const std::string& descriptor_bytes) {
  auto descriptor = ParseModelDescriptor(descriptor_bytes);
  if (!descriptor.ok()) {
    return InvalidArgumentError(what + ": " + std::string(descriptor.status().message()));
  }
  if (descriptor->name != name || std::to_string(descriptor->version) != version) {
    return InvalidArgumentError(what + " names another model");
  }
  return descriptor;
}

// "FP32 [-1,4]": a tensor's datatype and shape as the refusals name them.
std::string TypeAndShape(const TensorSpec& spec) {
  std::string out = spec.datatype + " [";
  for (size_t i = 0; i < spec.shape.size(); ++i) {
    out += (i == 0 ? "" : ",") + std::to_string(spec.shape[i]);
  }
  return out + "]";
}

std::string NameList(const std::vector<TensorSpec>& specs) {
  std::string out;
  for (const TensorSpec& spec : specs) out += (out.empty() ? "'" : ", '") + spec.name + "'";
  return out.empty() ? "none" : out;
}

// Where the tensors `written` of a descriptor differ from those `read` from the model: each
// difference named ("input 'x': descriptor says FP32 [-1,4], the model says FP32 [-1,3]").
void TensorDifferences(std::string_view kind, const std::vector<TensorSpec>& written,
                       const std::vector<TensorSpec>& read, std::vector<std::string>* out) {
  const std::string k(kind);
  for (const TensorSpec& w : written) {
    auto it = std::find_if(read.begin(), read.end(),
                           [&](const TensorSpec& r) { return r.name == w.name; });
    if (it == read.end()) {
      out->push_back(k + " '" + w.name + "': in the descriptor, not in the model (the model's " +
                     k + "s: " + NameList(read) + ")");
    } else if (it->datatype != w.datatype || it->shape != w.shape) {
      out->push_back(k + " '" + w.name + "': descriptor says " + TypeAndShape(w) +
                     ", the model says " + TypeAndShape(*it));
    }
  }
  for (const TensorSpec& r : read) {
    auto it = std::find_if(written.begin(), written.end(),
                           [&](const TensorSpec& w) { return w.name == r.name; });
    if (it == written.end()) {
      out->push_back(k + " '" + r.name + "': in the model (" + TypeAndShape(r) +
                     "), not in the descriptor");
    }
  }
  if (out->empty() && written.size() == read.size()) {
    for (size_t i = 0; i < written.size(); ++i) {
      if (written[i].name != read[i].name) {
        out->push_back(k + "s: descriptor lists " + NameList(written) + ", the model takes " +
                       NameList(read) + " in that order");
        break;
      }
    }
  }
}

// Every way a written descriptor disagrees with the model's signature, joined by "; ";
// empty when it agrees. The engine version, metrics and lineage are the writer's to state.
std::string DescriptorDifferences(const ModelDescriptor& written, const ModelSignature& read) {
  std::vector<std::string> diffs;
  if (written.engine != read.engine) {
    diffs.push_back("engine: descriptor says " + written.engine + ", the model is served by " +
                    read.engine);
  }
  std::vector<std::string> tensors;
  TensorDifferences("input", written.inputs, read.inputs, &tensors);
  diffs.insert(diffs.end(), tensors.begin(), tensors.end());
  tensors.clear();
  TensorDifferences("output", written.outputs, read.outputs, &tensors);
  diffs.insert(diffs.end(), tensors.begin(), tensors.end());
  std::string out;
  for (const std::string& d : diffs) out += (out.empty() ? "" : "; ") + d;
  return out;
}

// A version's descriptor and its bytes as they travel in the bundle.
struct VersionDescriptor {
  std::string bytes;
  ModelDescriptor parsed;
};

// The descriptor of one model version: its descriptor.json as written (checked against the
// model's signature when the options give a reader), or, with a reader and no
// descriptor.json, one derived from the signature with empty metrics and lineage.
Result<VersionDescriptor> DescriptorOf(const std::string& name, const std::string& version,
                                       const std::string& model_dir,
                                       const std::string& version_dir,
                                       const CreateOptions& options) {
  const std::string path = JoinPath(version_dir, "descriptor.json");
  const bool written = !options.read_signature || PathExists(path);
  VersionDescriptor out;
  if (written) {
    OUTPOST_ASSIGN_OR_RETURN(out.bytes, ReadFile(path, 1 << 20));
    OUTPOST_ASSIGN_OR_RETURN(out.parsed, CheckedDescriptor(name, version, path, out.bytes));
    if (!options.read_signature) return out;
  }
  const uint64_t v = std::stoull(version);  // IsDigits and at most 18 digits (AddModel)
  Result<ModelSignature> signature = options.read_signature(model_dir, name, v);
  if (!signature.ok()) {
    return signature.status().WithContext(name + " version " + version +
                                          ": reading the model's signature");
  }
  if (written) {
    std::string diffs = DescriptorDifferences(out.parsed, *signature);
    if (diffs.empty()) return out;
    return ErrorWithReason(StatusCode::kInvalidArgument, "descriptor_mismatch",
                           path + " disagrees with the model: " + diffs);
  }
  ModelDescriptor derived{.name = name,
                          .version = v,
                          .engine = signature->engine,
                          .engine_version = signature->engine_version,
                          .inputs = signature->inputs,
                          .outputs = signature->outputs};
  out.bytes = ModelDescriptorJson(derived);
  // The derived descriptor meets the rules a written one meets (names, datatypes, engine).
  OUTPOST_ASSIGN_OR_RETURN(
      out.parsed,
      CheckedDescriptor(name, version, "the descriptor derived from " + version_dir, out.bytes));
  if (options.on_derived) options.on_derived(out.parsed);
  return out;
}

// The model's shared files followed by the version's own files (descriptor.json aside).
Result<std::vector<Layer>> VersionLayers(const std::string& version, const std::string& version_dir,
                                         const std::vector<Layer>& shared) {
  std::vector<Layer> layers = shared;
  OUTPOST_ASSIGN_OR_RETURN(std::vector<std::string> files, Entries(version_dir));
  for (const std::string& file : files) {
    if (file == "descriptor.json") continue;
    std::string title = version + "/" + file;
    if (!IsSafeEntryName(title) || title.find('/') != version.size()) {
      return InvalidArgumentError("bad model file name " + JoinPath(version_dir, file));
    }
    layers.push_back({.title = title, .path = JoinPath(version_dir, file)});
  }
  return layers;
}

// A proper OCI image configuration, so that image tools (skopeo, umoci) read the whole
// manifest; the layers are the model's files as they are (uncompressed, one per file).
Json ImageConfig(const std::string& name, const std::string& version, const std::string& created,
                 const std::string& descriptor_hex, JsonArray diff_ids, JsonArray history) {
  return Json{JsonObject{
      {"architecture", Json{std::string("amd64")}},
      {"created", Json{created}},
      {"os", Json{std::string("linux")}},
      {"config",
       Json{JsonObject{{"Labels", Json{JsonObject{{"org.outpost.model.name", Json{name}},
                                                  {"org.outpost.model.version", Json{version}},
                                                  {"org.outpost.model.descriptor",
                                                   Json{"sha256:" + descriptor_hex}}}}}}}},
      {"rootfs", Json{JsonObject{{"type", Json{std::string("layers")}},
                                 {"diff_ids", Json{std::move(diff_ids)}}}}},
      {"history", Json{std::move(history)}}}};
}

// Hashes the files of one model version, lists them, and adds the version's OCI manifest
// (descriptor first, then the files) to the index.
Status AddVersion(const std::string& name, const std::string& version,
                  const std::string& model_dir, const std::vector<Layer>& shared, Contents* c) {
  const std::string version_dir = JoinPath(model_dir, version);
  OUTPOST_ASSIGN_OR_RETURN(VersionDescriptor vd,
                           DescriptorOf(name, version, model_dir, version_dir, *c->options));
  std::string descriptor_bytes = std::move(vd.bytes);
  const ModelDescriptor& descriptor = vd.parsed;
  OUTPOST_ASSIGN_OR_RETURN(std::vector<Layer> layers, VersionLayers(version, version_dir, shared));
  uint64_t descriptor_size = descriptor_bytes.size();
  std::string descriptor_hex = c->AddSmall(std::move(descriptor_bytes));
  // The descriptor travels as the first layer, so registries and copies carry it too.
  JsonArray layer_json{TitledDescriptor("application/vnd.outpost.model.descriptor.v1+json",
                                        descriptor_hex, descriptor_size,
                                        version + "/descriptor.json")};
  JsonArray diff_ids{Json{"sha256:" + descriptor_hex}};
  JsonArray history{HistoryEntry(c->created, version + "/descriptor.json")};
  for (Layer& layer : layers) {
    OUTPOST_ASSIGN_OR_RETURN(layer.digest, HashFile(layer.path, nullptr));
    c->targets.targets[std::string(kBlobPrefix) + layer.digest.sha256] = {
        .length = layer.digest.length, .sha256 = layer.digest.sha256};
    c->file_blobs.emplace(layer.digest.sha256, layer.path);
    layer_json.push_back(TitledDescriptor("application/vnd.outpost.model.file.v1",
                                          layer.digest.sha256, layer.digest.length, layer.title));
    diff_ids.push_back(Json{"sha256:" + layer.digest.sha256});
    history.push_back(HistoryEntry(c->created, layer.title));
  }
  Json image_config = ImageConfig(name, version, c->created, descriptor_hex, std::move(diff_ids),
                                  std::move(history));
  OUTPOST_ASSIGN_OR_RETURN(std::string config_bytes, CanonicalJson(image_config));
  uint64_t config_size = config_bytes.size();
  std::string config_hex = c->AddSmall(std::move(config_bytes));
  Json manifest{JsonObject{
      {"schemaVersion", Json{uint64_t{2}}},
      {"mediaType", Json{std::string("application/vnd.oci.image.manifest.v1+json")}},
      {"artifactType", Json{std::string("application/vnd.outpost.model.v1")}},
      {"config", Descriptor("application/vnd.oci.image.config.v1+json", config_hex, config_size)},
      {"layers", Json{std::move(layer_json)}}}};
  OUTPOST_ASSIGN_OR_RETURN(std::string manifest_bytes, CanonicalJson(manifest));
  uint64_t manifest_size = manifest_bytes.size();
  std::string manifest_hex = c->AddSmall(std::move(manifest_bytes));
  Json entry =
      Descriptor("application/vnd.oci.image.manifest.v1+json", manifest_hex, manifest_size);
  std::get<JsonObject>(entry.v)["annotations"] =
      Json{JsonObject{{"org.opencontainers.image.ref.name", Json{name + "-" + version}}}};
  c->index_manifests.push_back(std::move(entry));
  c->targets.models.push_back({.name = name,
                               .version = descriptor.version,
                               .manifest = manifest_hex,
                               .descriptor = descriptor_hex});
  return Status::Ok();
}

// Adds every version folder of model `name` (with its config.yaml, if any, in each).
Status AddModel(const std::string& name, const std::string& model_dir, Contents* c) {
  if (!ModelName::IsValid(name)) return InvalidArgumentError("bad model name \"" + name + "\"");
  OUTPOST_ASSIGN_OR_RETURN(std::vector<std::string> children, Entries(model_dir));
  std::vector<Layer> shared;
  if (PathExists(JoinPath(model_dir, "config.yaml"))) {
    shared.push_back({.title = "config.yaml", .path = JoinPath(model_dir, "config.yaml")});
  }
  for (const std::string& version : children) {
    std::string version_dir = JoinPath(model_dir, version);
    if (!IsDirectory(version_dir)) continue;
    if (!IsDigits(version) || version[0] == '0') {
      return InvalidArgumentError("bad version folder " + version_dir);
    }
    OUTPOST_RETURN_IF_ERROR(AddVersion(name, version, model_dir, shared, c));
  }
  return Status::Ok();
}

// The one image of the OCI layout folder `dir` (`outpost image build --out DIR`), carried as
// the bundle's runtime image: its manifest as a blob of its own, its config and layers
// streamed from the folder, each checked against the digest that names it.
Status AddRuntime(const std::string& dir, Contents* c) {
  auto damaged = [&](const std::string& why) {
    return InvalidArgumentError("runtime image " + dir + ": " + why);
  };
  OUTPOST_ASSIGN_OR_RETURN(std::string index_text, ReadFile(JoinPath(dir, "index.json"), 1 << 20));
  auto index = ParseJson(index_text, /*canonical_numbers_only=*/false);
  if (!index.ok()) return damaged("index.json is not JSON");
  const Json* list = Member(*index, "manifests");
  const JsonArray* manifests = list == nullptr ? nullptr : std::get_if<JsonArray>(&list->v);
  if (manifests == nullptr || manifests->size() != 1) return damaged("not exactly one image");
  std::string manifest_hex = Sha256HexOf(&(*manifests)[0]);
  if (manifest_hex.empty()) return damaged("the index names no sha256 manifest");
  OUTPOST_ASSIGN_OR_RETURN(std::string manifest_bytes,
                           ReadFile(JoinPath(dir, "blobs/sha256/" + manifest_hex), 4 << 20));
  if (HexEncode(Sha256Of(manifest_bytes)) != manifest_hex) return damaged("manifest altered");
  auto blobs = ImageManifestBlobs(manifest_bytes);
  if (!blobs.ok()) return damaged("the manifest " + std::string(blobs.status().message()));
  for (const std::string& hex : *blobs) {
    std::string path = JoinPath(dir, "blobs/sha256/" + hex);
    OUTPOST_ASSIGN_OR_RETURN(FileDigest digest, HashFile(path, nullptr));
    if (digest.sha256 != hex) return damaged("blob " + hex + " does not match its digest");
    c->targets.targets[std::string(kBlobPrefix) + hex] = {.length = digest.length, .sha256 = hex};
    c->file_blobs.emplace(hex, path);
  }
  uint64_t manifest_size = manifest_bytes.size();
  c->AddSmall(std::move(manifest_bytes));
  Json entry = Descriptor("application/vnd.oci.image.manifest.v1+json", manifest_hex, manifest_size);
  if (const Json* platform = Member((*manifests)[0], "platform")) {
    std::get<JsonObject>(entry.v)["platform"] = *platform;
  }
  std::get<JsonObject>(entry.v)["annotations"] =
      Json{JsonObject{{"org.opencontainers.image.ref.name", Json{std::string(kRuntimeRefName)}}}};
  c->index_manifests.push_back(std::move(entry));
  c->targets.runtime_manifest = manifest_hex;
  return Status::Ok();
}

// Pass 2 of CreateBundle: the archive, written to `fd` (the file `tmp`) and fsync'd.
Status WriteArchive(int fd, const std::string& tmp, const CreateOptions& options,
                    const std::string& targets_file, const std::string& index_bytes, Contents& c) {
  TarWriter tar(fd);
  auto put = [&](std::string_view name, std::string_view bytes) -> Status {
    OUTPOST_RETURN_IF_ERROR(tar.Begin(name, bytes.size()));
    return tar.Write(bytes);
  };
  for (const std::string& root_file : options.root_chain) {
    OUTPOST_ASSIGN_OR_RETURN(Envelope env, ParseEnvelope(root_file));
    OUTPOST_ASSIGN_OR_RETURN(Root root, RootFromJson(env.signed_value));
    OUTPOST_RETURN_IF_ERROR(
        put(std::string(kRootPrefix) + std::to_string(root.version) + ".json", root_file));
  }
  OUTPOST_RETURN_IF_ERROR(put(kTargetsName, targets_file));
  OUTPOST_RETURN_IF_ERROR(put("oci-layout", kOciLayout));
  OUTPOST_RETURN_IF_ERROR(put("index.json", index_bytes));
  for (const auto& [hex, bytes] : c.small_blobs) {
    OUTPOST_RETURN_IF_ERROR(put(std::string(kBlobPrefix) + hex, bytes));
  }
  for (const auto& [hex, path] : c.file_blobs) {
    if (c.small_blobs.count(hex) > 0) continue;  // same bytes as a descriptor or manifest
    const TargetFile& expected = c.targets.targets[std::string(kBlobPrefix) + hex];
    OUTPOST_RETURN_IF_ERROR(tar.Begin(std::string(kBlobPrefix) + hex, expected.length));
    OUTPOST_ASSIGN_OR_RETURN(FileDigest copied, HashFile(path, &tar));
    if (copied.length != expected.length || copied.sha256 != hex) {
      return AbortedError(path + " changed while it was being bundled");
    }
  }
  OUTPOST_RETURN_IF_ERROR(tar.Finish());
  if (::fsync(fd) != 0) return ErrnoToStatus(errno, "fsync", tmp);
  return Status::Ok();
}

}  // namespace

Status CreateBundle(const std::string& models_dir, const std::vector<KeyPair>& targets_keys,
                    const CreateOptions& options, const std::string& out_path) {
  if (targets_keys.empty()) return InvalidArgumentError("no targets keys to sign with");
  Contents c{.targets = {.version = options.version,
                         .created = options.created,
                         .expires = options.expires,
                         .channel = options.channel,
                         .sites = options.sites,
                         .site_groups = options.site_groups},
             .created = Rfc3339(options.created),
             .options = &options};

  // Pass 1: hash every model file and build the OCI manifests.
  OUTPOST_ASSIGN_OR_RETURN(std::vector<std::string> names, Entries(models_dir));
  for (const std::string& name : names) {
    std::string model_dir = JoinPath(models_dir, name);
    if (!IsDirectory(model_dir)) continue;
    OUTPOST_RETURN_IF_ERROR(AddModel(name, model_dir, &c));
  }
  if (!options.runtime_image.empty()) OUTPOST_RETURN_IF_ERROR(AddRuntime(options.runtime_image, &c));
  Json index{JsonObject{{"schemaVersion", Json{uint64_t{2}}},
                        {"mediaType", Json{std::string("application/vnd.oci.image.index.v1+json")}},
                        {"manifests", Json{std::move(c.index_manifests)}}}};
  OUTPOST_ASSIGN_OR_RETURN(std::string index_bytes, CanonicalJson(index));
  c.targets.targets["index.json"] = {.length = index_bytes.size(),
                                     .sha256 = HexEncode(Sha256Of(index_bytes))};
  c.targets.targets["oci-layout"] = {.length = kOciLayout.size(),
                                     .sha256 = HexEncode(Sha256Of(kOciLayout))};
  OUTPOST_ASSIGN_OR_RETURN(Json targets_json, TargetsToJson(c.targets));
  OUTPOST_ASSIGN_OR_RETURN(std::string targets_file, SignMetadata(targets_json, targets_keys));

  // Pass 2: write the archive to a temporary file, then rename it into place.
  std::string tmp = out_path + ".tmp";
  Fd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (out.get() < 0) return ErrnoToStatus(errno, "creating", tmp);
  if (Status s = WriteArchive(out.get(), tmp, options, targets_file, index_bytes, c); !s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  ::close(out.release());
  if (::rename(tmp.c_str(), out_path.c_str()) != 0) {
    Status s = ErrnoToStatus(errno, "renaming into", out_path);
    ::unlink(tmp.c_str());
    return s;
  }
  std::string parent = std::filesystem::path(out_path).parent_path().string();
  return SyncDirectory(parent.empty() ? "." : parent);
}

Result<SiteState> LoadSiteState(const std::string& path) {
  if (!PathExists(path)) return SiteState{};
  OUTPOST_ASSIGN_OR_RETURN(std::string text, ReadFile(path, 4096));
  Status damaged = DataLossError("site state file " + path + " is damaged");
  auto json = ParseJson(text, /*canonical_numbers_only=*/true);
  if (!json.ok()) return damaged;
  const JsonObject* o = std::get_if<JsonObject>(&json->v);
  if (o == nullptr || o->size() != 2) return damaged;
  auto field = [&](const char* key) -> const uint64_t* {
    auto it = o->find(key);
    return it == o->end() ? nullptr : std::get_if<uint64_t>(&it->second.v);
  };
  const uint64_t* floor = field("time_floor");
  const uint64_t* version = field("installed_version");
  if (floor == nullptr || version == nullptr) return damaged;
  return SiteState{.time_floor = static_cast<int64_t>(*floor), .installed_version = *version};
}

Status SaveSiteState(const std::string& path, const SiteState& state) {
  SiteState merged = state;
  if (PathExists(path)) {
    OUTPOST_ASSIGN_OR_RETURN(SiteState old, LoadSiteState(path));
    merged.time_floor = std::max(old.time_floor, state.time_floor);
  }
  if (merged.time_floor < 0) return InvalidArgumentError("negative time floor");
  OUTPOST_ASSIGN_OR_RETURN(std::string text,
                           CanonicalJson(Json{JsonObject{
                               {"installed_version", Json{merged.installed_version}},
                               {"time_floor", Json{static_cast<uint64_t>(merged.time_floor)}}}}));
  return WriteFileAtomically(path, text + "\n");
}

namespace {

// The body of VerifyBundle's metadata step: the root chain (each new root checked against
// the one before it, into out->trusted_root), then the targets (into out->targets).
Status ReadMetadata(TarReader& tar, const VerifyOptions& options, VerifiedBundle* out) {
  std::optional<TarEntry> entry;
  uint64_t last_root_file = 0;
  for (;;) {
    OUTPOST_ASSIGN_OR_RETURN(entry, tar.Next());
    if (!entry) break;
    std::string_view name = entry->name;
    bool is_root = name.rfind(kRootPrefix, 0) == 0;
    if (!is_root && name != kTargetsName) {
      return ReasonError(Reason::kBadLayout, "\"" + entry->name + "\" comes before the targets");
    }
    if (!is_root) {
      OUTPOST_ASSIGN_OR_RETURN(std::string text, tar.ReadAll(options.max_metadata_bytes));
      OUTPOST_ASSIGN_OR_RETURN(out->targets, VerifyTargets(out->trusted_root, text));
      out->targets_file = std::move(text);
      return Status::Ok();
    }
    // "<N>.json", N ascending; roots the site already trusts are skipped unread.
    std::string_view file = name.substr(kRootPrefix.size());
    std::string_view digits = file.substr(0, file.find('.'));
    if (!IsDigits(digits) || digits[0] == '0' || file != std::string(digits) + ".json") {
      return ReasonError(Reason::kBadLayout, "bad root file name \"" + entry->name + "\"");
    }
    uint64_t n = std::stoull(std::string(digits));
    if (n <= last_root_file) {
      return ReasonError(Reason::kBadLayout, "root files are not in ascending order");
    }
    last_root_file = n;
    if (n <= out->trusted_root.version) continue;
    if (n != out->trusted_root.version + 1) {
      return ReasonError(Reason::kRootChain, "\"" + entry->name + "\" where root " +
                                                 std::to_string(out->trusted_root.version + 1) +
                                                 " should follow");
    }
    OUTPOST_ASSIGN_OR_RETURN(std::string text, tar.ReadAll(options.max_metadata_bytes));
    OUTPOST_ASSIGN_OR_RETURN(out->trusted_root, VerifyNextRoot(out->trusted_root, text));
    out->root_files.push_back(text);
    out->trusted_root_file = std::move(text);
  }
  return ReasonError(Reason::kMetadataMissing, "no outpost/targets.json");
}

// Freshness, rollback and binding, all from signed fields, at time `now`.
Status CheckSignedFields(const Root& root, const Targets& t, const SiteState& state,
                         const VerifyOptions& options, int64_t now) {
  if (root.expires <= now) {
    return ReasonError(Reason::kRootExpired,
                       "the trusted root expired at " + std::to_string(root.expires));
  }
  if (t.expires <= now) {
    return ReasonError(Reason::kExpired, "the bundle expired at " + std::to_string(t.expires) +
                                             " (now counts as " + std::to_string(now) + ")");
  }
  if (t.version < state.installed_version) {
    return ReasonError(Reason::kVersionRollback, "bundle version " + std::to_string(t.version) +
                                                     " is below the installed " +
                                                     std::to_string(state.installed_version));
  }
  bool for_us = std::find(t.sites.begin(), t.sites.end(), options.site_id) != t.sites.end();
  for (const std::string& g : options.site_groups) {
    for_us =
        for_us || std::find(t.site_groups.begin(), t.site_groups.end(), g) != t.site_groups.end();
  }
  if (!for_us) {
    return ReasonError(Reason::kWrongSite,
                       "the bundle is not for site \"" + options.site_id + "\" or its groups");
  }
  return Status::Ok();
}

// Streams the current tar entry into a new file at `path` through SHA-256 (using `buf`),
// checks the hash against `listed` and fsyncs the file.
Status StageEntry(TarReader& tar, const std::string& entry_name, const TargetFile& listed,
                  const std::string& path, std::string& buf) {
  Fd staged(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (staged.get() < 0) {
    return ReasonError(Reason::kIo, ErrnoToStatus(errno, "creating", path).message());
  }
  Sha256 h;
  for (;;) {
    OUTPOST_ASSIGN_OR_RETURN(size_t n, tar.Read(buf.data(), buf.size()));
    if (n == 0) break;
    std::string_view piece(buf.data(), n);
    h.Update(piece);
    if (Status s = WriteAllToFd(staged.get(), piece, path); !s.ok()) {
      return ReasonError(Reason::kIo, s.message());
    }
  }
  if (HexEncode(h.Finish()) != listed.sha256) {
    return ReasonError(Reason::kTargetHash, "\"" + entry_name + "\" does not match its hash");
  }
  if (::fsync(staged.get()) != 0) {
    return ReasonError(Reason::kIo, ErrnoToStatus(errno, "fsync", path).message());
  }
  return Status::Ok();
}

// Content: streams every remaining entry, each a listed target of its listed length, into
// the staging folder; every listed target must come.
Status StageContent(TarReader& tar, const Targets& t, const std::string& staging_dir) {
  std::set<std::string> seen;
  std::string buf(kChunk, '\0');
  for (;;) {
    OUTPOST_ASSIGN_OR_RETURN(std::optional<TarEntry> entry, tar.Next());
    if (!entry) break;
    auto listed = t.targets.find(entry->name);
    if (listed == t.targets.end()) {
      return ReasonError(Reason::kTargetUnlisted, "\"" + entry->name + "\" is not in the targets");
    }
    if (entry->size != listed->second.length) {
      return ReasonError(Reason::kTargetLength,
                         "\"" + entry->name + "\" has " + std::to_string(entry->size) + " bytes, " +
                             std::to_string(listed->second.length) + " listed");
    }
    seen.insert(entry->name);
    // Names are listed targets, which are checked to be oci-layout, index.json or
    // blobs/sha256/<hex>, so the path stays inside the staging folder.
    std::string path = JoinPath(staging_dir, entry->name);
    OUTPOST_RETURN_IF_ERROR(StageEntry(tar, entry->name, listed->second, path, buf));
  }
  for (const auto& [name, file] : t.targets) {
    if (seen.count(name) == 0) {
      return ReasonError(Reason::kTargetMissing, "\"" + name + "\" is listed but absent");
    }
  }
  return Status::Ok();
}

// The staged descriptor of each model, which must name that model.
Status ReadDescriptors(const Targets& t, const std::string& blob_dir, uint64_t max_bytes,
                       std::vector<ModelDescriptor>* out) {
  for (const ModelRef& m : t.models) {
    std::string path = JoinPath(blob_dir, m.descriptor);
    auto text = ReadFile(path, max_bytes);
    if (!text.ok()) {
      bool too_big = text.status().code() == StatusCode::kResourceExhausted;
      return ReasonError(too_big ? Reason::kSizeLimit : Reason::kIo, text.status().message());
    }
    auto d = ParseModelDescriptor(*text);
    if (!d.ok()) return d.status().WithContext("descriptor of model " + m.name);
    if (d->name != m.name || d->version != m.version) {
      return ReasonError(Reason::kMetadataMalformed,
                         "the descriptor of " + m.name + " names another model");
    }
    out->push_back(std::move(*d));
  }
  return Status::Ok();
}

// The staged runtime image's manifest, whose config and layers must all be listed targets
// (their bytes were checked against those when they were staged).
Status CheckRuntime(const Targets& t, const std::string& blob_dir, uint64_t max_bytes) {
  if (t.runtime_manifest.empty()) return Status::Ok();
  auto text = ReadFile(JoinPath(blob_dir, t.runtime_manifest), max_bytes);
  if (!text.ok()) return ReasonError(Reason::kSizeLimit, text.status().message());
  auto bad = [](const std::string& why) {
    return ReasonError(Reason::kMetadataMalformed, "the runtime image's manifest " + why);
  };
  auto blobs = ImageManifestBlobs(*text);
  if (!blobs.ok()) return bad(std::string(blobs.status().message()));
  for (const std::string& hex : *blobs) {
    if (t.targets.count(std::string(kBlobPrefix) + hex) == 0) {
      return bad("names a blob that is not listed");
    }
  }
  return Status::Ok();
}

// The body of VerifyBundle; the caller removes the staging folder when it fails.
Result<VerifiedBundle> VerifyInto(const std::string& bundle_path, const Root& trusted_root,
                                  const SiteState& state, const VerifyOptions& options) {
  auto opened = OpenRegular(bundle_path);
  if (!opened.ok()) return ReasonError(Reason::kIo, opened.status().message());
  Fd fd(opened->release());
  TarReader tar(fd.get(), options.limits);
  VerifiedBundle out;
  out.trusted_root = trusted_root;
  out.staging_dir = options.staging_dir;

  // Metadata: the root chain, then the targets.
  OUTPOST_RETURN_IF_ERROR(ReadMetadata(tar, options, &out));

  // Freshness, rollback and binding, all from signed fields.
  int64_t wall =
      std::chrono::duration_cast<std::chrono::seconds>(options.clock->Now().time_since_epoch())
          .count();
  int64_t now = std::max(wall, state.time_floor);
  const Targets& t = out.targets;
  OUTPOST_RETURN_IF_ERROR(CheckSignedFields(out.trusted_root, t, state, options, now));

  // Content: stream every listed entry into the staging folder through SHA-256.
  std::string blob_dir = JoinPath(options.staging_dir, "blobs/sha256");
  if (Status s = MakeDirectories(blob_dir); !s.ok()) return ReasonError(Reason::kIo, s.message());
  OUTPOST_RETURN_IF_ERROR(StageContent(tar, t, options.staging_dir));
  OUTPOST_RETURN_IF_ERROR(
      ReadDescriptors(t, blob_dir, options.max_metadata_bytes, &out.descriptors));
  OUTPOST_RETURN_IF_ERROR(CheckRuntime(t, blob_dir, options.max_metadata_bytes));
  if (Status s = SyncDirectory(blob_dir); !s.ok()) return ReasonError(Reason::kIo, s.message());
  out.new_state = {.time_floor = std::max(now, t.created), .installed_version = t.version};
  return out;
}

}  // namespace

Result<VerifiedBundle> VerifyBundle(const std::string& bundle_path, const Root& trusted_root,
                                    const SiteState& state, const VerifyOptions& options) {
  if (options.clock == nullptr || options.staging_dir.empty()) {
    return InvalidArgumentError("VerifyBundle needs a clock and a staging folder");
  }
  if (PathExists(options.staging_dir)) {
    return ReasonError(Reason::kIo, "staging folder " + options.staging_dir + " exists already");
  }
  if (::mkdir(options.staging_dir.c_str(), 0755) != 0) {
    return ReasonError(Reason::kIo,
                       ErrnoToStatus(errno, "creating", options.staging_dir).message());
  }
  Result<VerifiedBundle> result = VerifyInto(bundle_path, trusted_root, state, options);
  if (!result.ok()) RemoveTree(options.staging_dir).IgnoreError();
  return result;
}

Result<std::vector<std::string>> ImageManifestBlobs(std::string_view manifest_bytes) {
  auto manifest = ParseJson(manifest_bytes, /*canonical_numbers_only=*/false);
  const Json* config = manifest.ok() ? Member(*manifest, "config") : nullptr;
  const Json* layers = manifest.ok() ? Member(*manifest, "layers") : nullptr;
  if (config == nullptr || layers == nullptr) {
    return InvalidArgumentError("is not an image manifest");
  }
  const JsonArray* layer_list = std::get_if<JsonArray>(&layers->v);
  if (layer_list == nullptr || layer_list->empty()) return InvalidArgumentError("has no layers");
  std::vector<std::string> blobs{Sha256HexOf(config)};
  for (const Json& layer : *layer_list) blobs.push_back(Sha256HexOf(&layer));
  for (const std::string& hex : blobs) {
    if (hex.empty()) return InvalidArgumentError("names a blob without a sha256 digest");
  }
  return blobs;
}

}  // namespace outpost::bundle
