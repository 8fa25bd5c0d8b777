// Creating and verifying offline bundles (FORMAT.md). Both stream: model files are hashed and
// copied in pieces, and verification hashes each blob while it writes it into a staging
// folder, so memory stays constant whatever the bundle's size (metadata aside, which is capped).
//
// Verification never writes outside its staging folder and removes that folder on any
// refusal. The caller installs from the staging folder and then persists the returned site
// state (time floor, installed version) and the trusted root.
#ifndef OUTPOST_BUNDLE_BUNDLE_H_
#define OUTPOST_BUNDLE_BUNDLE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "bundle/crypto.h"
#include "bundle/metadata.h"
#include "bundle/tar.h"

namespace outpost::bundle {

// The ref name of the runtime image's manifest in a bundle's index.json (FORMAT.md section 5).
inline constexpr std::string_view kRuntimeRefName = "outpost-runtime";

// The blobs an OCI image manifest names, as SHA-256 hex digests: its config first, then its
// layers in order. InvalidArgument when `manifest_bytes` is not an image manifest, has no
// layers, or names a blob by anything but a sha256 digest. The one reader of a runtime
// image's manifest: the bundle's creator and verifier and `outpost bundle push` all use it.
Result<std::vector<std::string>> ImageManifestBlobs(std::string_view manifest_bytes);

// What the engine that will serve a model version reads from its files: the descriptor's
// engine, inputs and outputs (FORMAT.md section 5, "Derived and checked descriptors").
struct ModelSignature {
  std::string engine;          // the backend of the model's config.yaml: "xgboost", "onnx"
  std::string engine_version;  // the version of the engine that read it
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
};

// Reads the signature of version `version` of model `name`, whose folder is `model_dir`
// (config.yaml and the version folders), as the edge would load it. The bundle library
// knows no engine: the caller that links one (apps/) supplies the reader.
using SignatureReader = std::function<Result<ModelSignature>(
    const std::string& model_dir, const std::string& name, uint64_t version)>;

struct CreateOptions {
  uint64_t version = 1;            // the bundle version (targets.version), > 0
  int64_t created = 0;             // Unix seconds written as targets.created
  int64_t expires = 0;             // Unix seconds after which no site installs it
  std::string channel = "stable";  // [a-z0-9-_.]{1,32}
  std::vector<std::string> sites;        // site ids the bundle is for
  std::vector<std::string> site_groups;  // site groups the bundle is for
  // Signed root files to ship for rotation (FORMAT.md section 3), in ascending version order.
  std::vector<std::string> root_chain;
  // Reads each model version's signature from its files. When set, a version folder without
  // descriptor.json gets a descriptor derived from the signature (metrics and lineage empty),
  // and a descriptor.json that disagrees with it is refused (reason descriptor_mismatch).
  // When null, every version folder needs its descriptor.json, taken as written.
  SignatureReader read_signature = nullptr;
  // Told of each descriptor derived, during the first pass (before anything is written).
  std::function<void(const ModelDescriptor&)> on_derived = nullptr;
  // When not empty: an OCI image layout folder holding one image (`outpost image build
  // --out DIR`), carried as the bundle's runtime image (FORMAT.md section 5).
  std::string runtime_image;
};

// Writes a bundle of every model version under `models_dir` (FORMAT.md section 5 layout) to
// `out_path` atomically (temporary file, fsync, rename), with targets signed by each of
// `targets_keys`. InvalidArgument for a bad layout, descriptor or option (reason
// descriptor_mismatch for a descriptor that disagrees with options.read_signature); NotFound
// when a folder or a descriptor is missing; Aborted when a model file changed while it was
// being bundled; I/O errors otherwise. Nothing is written before every descriptor passed.
Status CreateBundle(const std::string& models_dir, const std::vector<KeyPair>& targets_keys,
                    const CreateOptions& options, const std::string& out_path);

// What a site keeps between installs (FORMAT.md section 7).
struct SiteState {
  int64_t time_floor = 0;          // Unix seconds; only ever moves forward
  uint64_t installed_version = 0;  // the bundle version running now; 0 before the first
};

// Reads the site state file; a missing file is the initial state. DataLoss when damaged.
Result<SiteState> LoadSiteState(const std::string& path);
// Replaces the site state file atomically. The time floor written is the larger of `state`'s
// and the stored one, so it never moves back.
Status SaveSiteState(const std::string& path, const SiteState& state);

struct VerifyOptions {
  std::string site_id;
  std::vector<std::string> site_groups;
  // Created by the verifier; must not exist beforehand. Receives the OCI layout.
  std::string staging_dir;
  // The site's clock; required. Time never counts below the state's time floor.
  const Clock* clock = nullptr;
  TarLimits limits;
  uint64_t max_metadata_bytes = uint64_t{1} << 20;  // per metadata or descriptor file
};

struct VerifiedBundle {
  Targets targets;
  std::vector<ModelDescriptor> descriptors;  // in the order of targets.models
  Root trusted_root;                  // the last root of the chain (the given one if none)
  std::string trusted_root_file;      // its signed file when the bundle rotated the root
  SiteState new_state;                // time floor advanced, installed_version = targets.version
  std::string staging_dir;            // holds oci-layout, index.json and blobs/sha256/*
  std::string targets_file;           // the signed targets file as the bundle carries it
  std::vector<std::string> root_files;  // the root files read (newer than the trusted root)
};

// Verifies a bundle in the order of FORMAT.md section 6. Every refusal is a Status carrying
// its reason (ReasonOf). Precondition: options.clock is set.
Result<VerifiedBundle> VerifyBundle(const std::string& bundle_path, const Root& trusted_root,
                                    const SiteState& state, const VerifyOptions& options);

}  // namespace outpost::bundle

#endif  // OUTPOST_BUNDLE_BUNDLE_H_
