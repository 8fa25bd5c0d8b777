// Bundle metadata (FORMAT.md sections 2-5): canonical JSON, the signed root and targets
// roles, their signing with k keys, and their verification with thresholds and root
// rotation. Parsing is strict and bounded (it reads untrusted bytes); every refusal carries a
// reason code of bundle/reason.h.
#ifndef OUTPOST_BUNDLE_METADATA_H_
#define OUTPOST_BUNDLE_METADATA_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/status.h"
#include "bundle/crypto.h"

namespace outpost::bundle {

// A JSON value. Objects are std::map, so members are kept sorted by their UTF-8 bytes, which
// is canonical order. Signed metadata uses only null, bool, uint64 (< 2^53), string, array
// and object; int64 and double appear only in descriptors, which are hashed, not signed.
struct Json;
using JsonArray = std::vector<Json>;
using JsonObject = std::map<std::string, Json>;
struct Json {
  std::variant<std::nullptr_t, bool, uint64_t, int64_t, double, std::string, JsonArray,
               JsonObject>
      v;
};

inline constexpr uint64_t kMaxCanonicalInteger = (uint64_t{1} << 53) - 1;
inline constexpr size_t kMaxJsonDepth = 16;

// The canonical JSON text of a value (FORMAT.md section 2). InvalidArgument when it holds a
// negative or fractional number or an integer at or above 2^53.
Result<std::string> CanonicalJson(const Json& value);

// Parses JSON text strictly: no duplicate keys, depth at most kMaxJsonDepth, and, when
// `canonical_numbers_only`, only integers in [0, 2^53). METADATA_MALFORMED otherwise.
Result<Json> ParseJson(std::string_view text, bool canonical_numbers_only);

// The key id of a raw Ed25519 public key: hex SHA-256 of its 32 bytes.
std::string KeyId(std::string_view public_key);

struct Role {
  std::vector<std::string> keyids;  // hex key ids, distinct
  uint64_t threshold = 1;
};

struct Root {
  uint64_t version = 1;
  int64_t expires = 0;                       // Unix seconds
  std::map<std::string, std::string> keys;   // key id -> raw public key
  Role root;
  Role targets;
};

struct TargetFile {
  uint64_t length = 0;
  std::string sha256;  // hex
};

struct ModelRef {
  std::string name;
  uint64_t version = 0;
  std::string manifest;    // hex digest of the OCI manifest blob
  std::string descriptor;  // hex digest of the descriptor blob
};

struct Targets {
  uint64_t version = 1;
  int64_t created = 0;  // Unix seconds
  int64_t expires = 0;  // Unix seconds
  std::string channel = "stable";
  std::vector<std::string> sites;
  std::vector<std::string> site_groups;
  std::map<std::string, TargetFile> targets;  // entry name -> length and hash
  std::vector<ModelRef> models;
  // The hex digest of the runtime image's OCI manifest (a listed blob) when the bundle
  // carries Outpost's runtime image (FORMAT.md section 5, "The runtime image"); empty when it
  // carries models only.
  std::string runtime_manifest;
};

// The `signed` value of each role (as JSON), checked for internal consistency: InvalidArgument
// for a root whose role key ids are missing from `keys` or whose thresholds are impossible,
// and for targets with bad names, sites, channel or blob digests.
Result<Json> RootToJson(const Root& root);
Result<Json> TargetsToJson(const Targets& targets);

// A signed metadata file: {"signatures":[...],"signed":...} with one signature per key, over
// the canonical JSON of `signed_value`.
Result<std::string> SignMetadata(const Json& signed_value, const std::vector<KeyPair>& keys);

// A metadata file split into its canonical signed bytes, its signed value and its signatures
// (key id hex -> raw signature; repeated key ids keep their first signature, so a key never
// counts twice). METADATA_MALFORMED for anything but the envelope of FORMAT.md section 2.
struct Envelope {
  std::string canonical;  // the exact bytes the signatures cover
  Json signed_value;
  std::vector<std::pair<std::string, std::string>> signatures;
};
Result<Envelope> ParseEnvelope(std::string_view text);

// The number of distinct keys of `role` (resolved in `keys`) with a valid signature on the
// envelope. Unknown keys and bad signatures count for nothing.
uint64_t CountValidSignatures(const Envelope& envelope, const std::map<std::string, std::string>& keys,
                              const Role& role);

// Typed views of a parsed envelope's signed value (METADATA_MALFORMED on any deviation from
// FORMAT.md sections 3 and 4, including unknown members). They check no signature.
Result<Root> RootFromJson(const Json& value);
Result<Targets> TargetsFromJson(const Json& value);

// Parses and verifies root N+1 (`text`) against the trusted root N: METADATA_MALFORMED,
// ROOT_CHAIN (version not N+1), ROOT_SIGNATURE (threshold of N's or of N+1's root keys not
// met). Expiry is not checked here (FORMAT.md section 3).
Result<Root> VerifyNextRoot(const Root& trusted, std::string_view text);

// Parses targets and checks their signatures against the trusted root's targets role:
// METADATA_MALFORMED, SIGNATURE_THRESHOLD.
Result<Targets> VerifyTargets(const Root& trusted, std::string_view text);

// A model's typed descriptor (FORMAT.md section 5).
struct TensorSpec {
  std::string name;
  std::string datatype;        // KServe v2 datatype, e.g. "FP32"
  std::vector<int64_t> shape;  // -1 for a variable dimension
};
struct ModelDescriptor {
  std::string name;
  uint64_t version = 0;
  std::string engine;
  std::string engine_version;
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
  std::map<std::string, double> metrics;
  // Hex SHA-256 of the training-data lineage record; empty when there is none (a descriptor
  // that `outpost bundle create` derived from the model itself).
  std::string lineage_sha256;
};
// METADATA_MALFORMED on any deviation, including unknown members.
Result<ModelDescriptor> ParseModelDescriptor(std::string_view text);
// The descriptor's JSON text (members in the order of FORMAT.md section 5), which
// ParseModelDescriptor reads back to the same descriptor. Hashed, not signed, so not
// canonical JSON: shapes carry -1.
std::string ModelDescriptorJson(const ModelDescriptor& descriptor);

}  // namespace outpost::bundle

#endif  // OUTPOST_BUNDLE_METADATA_H_
