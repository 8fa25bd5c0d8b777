// Bundle metadata (see metadata.h); JSON is read through the JSON adapter (base/json/json.h).
#include "bundle/metadata.h"

#include <cstdio>
#include <set>

#include "base/coding.h"
#include "base/json/json.h"
#include "base/json_writer.h"
#include "base/names.h"
#include "bundle/reason.h"
#include "bundle/tar.h"

namespace outpost::bundle {
namespace {


Status Malformed(std::string_view what) { return ReasonError(Reason::kMetadataMalformed, what); }

Result<Json> FromDom(json::Value e, size_t depth, bool canonical_numbers_only) {
  if (depth > kMaxJsonDepth) return Malformed("JSON nested too deeply");
  switch (e.type()) {
    case json::Type::kNull:
      return Json{nullptr};
    case json::Type::kBool:
      return Json{bool(*e.GetBool())};
    case json::Type::kInt64: {
      int64_t v = *e.GetInt64();
      if (v >= 0 && static_cast<uint64_t>(v) <= kMaxCanonicalInteger) {
        return Json{static_cast<uint64_t>(v)};
      }
      if (canonical_numbers_only) return Malformed("a number outside [0, 2^53)");
      return Json{v};
    }
    case json::Type::kUint64: {
      uint64_t v = *e.GetUint64();
      if (v <= kMaxCanonicalInteger) return Json{v};
      if (canonical_numbers_only) return Malformed("a number outside [0, 2^53)");
      return Json{static_cast<double>(v)};
    }
    case json::Type::kDouble:
      if (canonical_numbers_only) return Malformed("a non-integer number");
      return Json{*e.GetDouble()};
    case json::Type::kString:
      return Json{std::string(*e.GetString())};
    case json::Type::kArray: {
      JsonArray out;
      for (json::Value item : e.Items()) {
        OUTPOST_ASSIGN_OR_RETURN(Json j, FromDom(item, depth + 1, canonical_numbers_only));
        out.push_back(std::move(j));
      }
      return Json{std::move(out)};
    }
    case json::Type::kObject: {
      JsonObject out;
      for (json::Member kv : e.Members()) {
        OUTPOST_ASSIGN_OR_RETURN(Json j, FromDom(kv.value, depth + 1, canonical_numbers_only));
        if (!out.emplace(std::string(kv.key), std::move(j)).second) {
          return Malformed("duplicate key \"" + std::string(kv.key).substr(0, 64) + "\"");
        }
      }
      return Json{std::move(out)};
    }
  }
  return Malformed("unknown JSON type");
}

Status AppendCanonical(const Json& j, std::string* out) {
  if (std::holds_alternative<std::nullptr_t>(j.v)) {
    out->append("null");
  } else if (const bool* b = std::get_if<bool>(&j.v)) {
    out->append(*b ? "true" : "false");
  } else if (const uint64_t* u = std::get_if<uint64_t>(&j.v)) {
    if (*u > kMaxCanonicalInteger) return InvalidArgumentError("an integer at or above 2^53");
    out->append(std::to_string(*u));
  } else if (const std::string* s = std::get_if<std::string>(&j.v)) {
    out->push_back('"');
    for (char c : *s) {
      if (c == '"' || c == '\\') {
        out->push_back('\\');
        out->push_back(c);
      } else if (static_cast<unsigned char>(c) < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
        out->append(buf);
      } else {
        out->push_back(c);
      }
    }
    out->push_back('"');
  } else if (const JsonArray* a = std::get_if<JsonArray>(&j.v)) {
    out->push_back('[');
    for (size_t i = 0; i < a->size(); ++i) {
      if (i > 0) out->push_back(',');
      OUTPOST_RETURN_IF_ERROR(AppendCanonical((*a)[i], out));
    }
    out->push_back(']');
  } else if (const JsonObject* o = std::get_if<JsonObject>(&j.v)) {
    out->push_back('{');
    bool first = true;
    for (const auto& [k, v] : *o) {
      if (!first) out->push_back(',');
      first = false;
      OUTPOST_RETURN_IF_ERROR(AppendCanonical(Json{k}, out));
      out->push_back(':');
      OUTPOST_RETURN_IF_ERROR(AppendCanonical(v, out));
    }
    out->push_back('}');
  } else {
    return InvalidArgumentError("canonical JSON holds only non-negative integers below 2^53");
  }
  return Status::Ok();
}

// Typed access to a parsed object with a closed set of members.
class Reader {
 public:
  static Result<Reader> Of(const Json& j, std::string_view what,
                           std::initializer_list<std::string_view> allowed) {
    const JsonObject* o = std::get_if<JsonObject>(&j.v);
    if (o == nullptr) return Malformed(std::string(what) + " is not an object");
    for (const auto& [k, v] : *o) {
      bool known = false;
      for (std::string_view a : allowed) known = known || a == k;
      if (!known) {
        return Malformed(std::string(what) + " has unknown member \"" + k.substr(0, 64) + "\"");
      }
    }
    return Reader(o, what);
  }
  Result<const Json*> Get(std::string_view key) const {
    auto it = o_->find(std::string(key));
    if (it == o_->end()) return Malformed(what_ + " lacks \"" + std::string(key) + "\"");
    return &it->second;
  }
  bool Has(std::string_view key) const { return o_->count(std::string(key)) > 0; }
  Result<std::string> String(std::string_view key) const {
    OUTPOST_ASSIGN_OR_RETURN(const Json* j, Get(key));
    const std::string* s = std::get_if<std::string>(&j->v);
    if (s == nullptr) return Malformed(what_ + "." + std::string(key) + " is not a string");
    return *s;
  }
  Result<uint64_t> Uint(std::string_view key) const {
    OUTPOST_ASSIGN_OR_RETURN(const Json* j, Get(key));
    const uint64_t* u = std::get_if<uint64_t>(&j->v);
    if (u == nullptr) {
      return Malformed(what_ + "." + std::string(key) + " is not a non-negative integer");
    }
    return *u;
  }
  Result<const JsonArray*> Array(std::string_view key) const {
    OUTPOST_ASSIGN_OR_RETURN(const Json* j, Get(key));
    const JsonArray* a = std::get_if<JsonArray>(&j->v);
    if (a == nullptr) return Malformed(what_ + "." + std::string(key) + " is not an array");
    return a;
  }
  Result<const JsonObject*> Object(std::string_view key) const {
    OUTPOST_ASSIGN_OR_RETURN(const Json* j, Get(key));
    const JsonObject* o = std::get_if<JsonObject>(&j->v);
    if (o == nullptr) return Malformed(what_ + "." + std::string(key) + " is not an object");
    return o;
  }
  Result<std::vector<std::string>> Strings(std::string_view key) const {
    OUTPOST_ASSIGN_OR_RETURN(const JsonArray* a, Array(key));
    std::vector<std::string> out;
    for (const Json& j : *a) {
      const std::string* s = std::get_if<std::string>(&j.v);
      if (s == nullptr) return Malformed(what_ + "." + std::string(key) + " holds a non-string");
      out.push_back(*s);
    }
    return out;
  }

 private:
  Reader(const JsonObject* o, std::string_view what) : o_(o), what_(what) {}
  const JsonObject* o_;
  std::string what_;
};

bool IsLabel(std::string_view s, size_t max_len) {
  if (s.empty() || s.size() > max_len) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.')) {
      return false;
    }
  }
  return true;
}

Json StringArray(const std::vector<std::string>& v) {
  JsonArray a;
  for (const std::string& s : v) a.push_back(Json{s});
  return Json{std::move(a)};
}

Json RoleJson(const Role& role) {
  return Json{JsonObject{{"keyids", StringArray(role.keyids)}, {"threshold", Json{role.threshold}}}};
}

Status CheckRole(const Role& role, const std::map<std::string, std::string>& keys,
                 std::string_view name) {
  std::set<std::string> distinct(role.keyids.begin(), role.keyids.end());
  if (distinct.size() != role.keyids.size()) {
    return InvalidArgumentError(std::string(name) + " role repeats a key id");
  }
  for (const std::string& id : role.keyids) {
    if (keys.count(id) == 0) {
      return InvalidArgumentError(std::string(name) + " role names an unknown key");
    }
  }
  if (role.threshold < 1 || role.threshold > role.keyids.size()) {
    return InvalidArgumentError(std::string(name) + " role threshold is impossible");
  }
  return Status::Ok();
}

Result<Role> RoleFromJson(const JsonObject& roles, std::string_view name) {
  auto it = roles.find(std::string(name));
  if (it == roles.end()) return Malformed("root lacks the " + std::string(name) + " role");
  OUTPOST_ASSIGN_OR_RETURN(Reader r, Reader::Of(it->second, name, {"keyids", "threshold"}));
  Role role;
  OUTPOST_ASSIGN_OR_RETURN(role.keyids, r.Strings("keyids"));
  OUTPOST_ASSIGN_OR_RETURN(role.threshold, r.Uint("threshold"));
  return role;
}

Result<int64_t> Seconds(const Reader& r, std::string_view key) {
  OUTPOST_ASSIGN_OR_RETURN(uint64_t v, r.Uint(key));
  return static_cast<int64_t>(v);
}

Status CheckTargetsContent(const Targets& t) {
  if (!IsLabel(t.channel, 32)) return InvalidArgumentError("bad channel name");
  // A site is named by its SiteId (base/names.h), so that every site enrolment accepts can be
  // bound; a site group is a label.
  for (const std::string& s : t.sites) {
    if (!SiteId::IsValid(s)) return InvalidArgumentError("bad site or site group \"" + s + "\"");
  }
  for (const std::string& s : t.site_groups) {
    if (!IsLabel(s, 64)) return InvalidArgumentError("bad site or site group \"" + s + "\"");
  }
  for (const auto& [name, file] : t.targets) {
    if (!IsSafeEntryName(name) || name.size() > 100 || name.rfind("outpost/", 0) == 0) {
      return InvalidArgumentError("bad target name \"" + name.substr(0, 100) + "\"");
    }
    if (!IsHex64(file.sha256)) return InvalidArgumentError("bad target digest");
    if (file.length > kMaxCanonicalInteger) return InvalidArgumentError("target too long");
    if (name.rfind("blobs/sha256/", 0) == 0) {
      if (name.substr(13) != file.sha256) {
        return InvalidArgumentError("blob \"" + name + "\" is listed with another digest");
      }
    } else if (name != "oci-layout" && name != "index.json") {
      return InvalidArgumentError("target \"" + name + "\" is not part of an OCI layout");
    }
  }
  if (t.targets.count("oci-layout") == 0 || t.targets.count("index.json") == 0) {
    return InvalidArgumentError("targets must list oci-layout and index.json");
  }
  for (const ModelRef& m : t.models) {
    if (!ModelName::IsValid(m.name) || m.version == 0) {
      return InvalidArgumentError("bad model name or version");
    }
    for (const std::string* d : {&m.manifest, &m.descriptor}) {
      if (t.targets.count("blobs/sha256/" + *d) == 0) {
        return InvalidArgumentError("model " + m.name + " refers to a blob that is not listed");
      }
    }
  }
  if (!t.runtime_manifest.empty() &&
      t.targets.count("blobs/sha256/" + t.runtime_manifest) == 0) {
    return InvalidArgumentError("the runtime image's manifest is not a listed blob");
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> CanonicalJson(const Json& value) {
  std::string out;
  OUTPOST_RETURN_IF_ERROR(AppendCanonical(value, &out));
  return out;
}

Result<Json> ParseJson(std::string_view text, bool canonical_numbers_only) {
  json::Parser parser;
  Result<json::Value> root = parser.Parse(text);
  if (!root.ok()) return Malformed("not JSON: " + std::string(root.status().message()));
  return FromDom(*root, 0, canonical_numbers_only);
}

std::string KeyId(std::string_view public_key) { return HexEncode(Sha256Of(public_key)); }

Result<Json> RootToJson(const Root& root) {
  OUTPOST_RETURN_IF_ERROR(CheckRole(root.root, root.keys, "root"));
  OUTPOST_RETURN_IF_ERROR(CheckRole(root.targets, root.keys, "targets"));
  JsonObject keys;
  for (const auto& [id, pub] : root.keys) {
    if (pub.size() != kPublicKeyBytes || KeyId(pub) != id) {
      return InvalidArgumentError("a root key is not stored under its key id");
    }
    keys[id] = Json{JsonObject{{"keytype", Json{std::string("ed25519")}},
                               {"public", Json{HexEncode(pub)}}}};
  }
  if (root.version == 0 || root.expires < 0) return InvalidArgumentError("bad root version");
  return Json{JsonObject{
      {"_type", Json{std::string("root")}},
      {"spec_version", Json{std::string("1")}},
      {"version", Json{root.version}},
      {"expires", Json{static_cast<uint64_t>(root.expires)}},
      {"keys", Json{std::move(keys)}},
      {"roles", Json{JsonObject{{"root", RoleJson(root.root)}, {"targets", RoleJson(root.targets)}}}},
  }};
}

Result<Json> TargetsToJson(const Targets& t) {
  OUTPOST_RETURN_IF_ERROR(CheckTargetsContent(t));
  if (t.version == 0 || t.created < 0 || t.expires < 0) {
    return InvalidArgumentError("bad targets version or times");
  }
  JsonObject files;
  for (const auto& [name, f] : t.targets) {
    files[name] = Json{JsonObject{{"length", Json{f.length}}, {"sha256", Json{f.sha256}}}};
  }
  JsonArray models;
  for (const ModelRef& m : t.models) {
    models.push_back(Json{JsonObject{{"name", Json{m.name}},
                                     {"version", Json{m.version}},
                                     {"manifest", Json{m.manifest}},
                                     {"descriptor", Json{m.descriptor}}}});
  }
  JsonObject out{
      {"_type", Json{std::string("targets")}},
      {"spec_version", Json{std::string("1")}},
      {"version", Json{t.version}},
      {"created", Json{static_cast<uint64_t>(t.created)}},
      {"expires", Json{static_cast<uint64_t>(t.expires)}},
      {"channel", Json{t.channel}},
      {"sites", StringArray(t.sites)},
      {"site_groups", StringArray(t.site_groups)},
      {"targets", Json{std::move(files)}},
      {"models", Json{std::move(models)}},
  };
  // Written only when present, so that a bundle of models alone keeps its exact bytes.
  if (!t.runtime_manifest.empty()) {
    out["runtime"] = Json{JsonObject{{"manifest", Json{t.runtime_manifest}}}};
  }
  return Json{std::move(out)};
}

Result<std::string> SignMetadata(const Json& signed_value, const std::vector<KeyPair>& keys) {
  OUTPOST_ASSIGN_OR_RETURN(std::string canonical, CanonicalJson(signed_value));
  JsonArray sigs;
  for (const KeyPair& key : keys) {
    OUTPOST_ASSIGN_OR_RETURN(std::string sig, Sign(key.seed, canonical));
    sigs.push_back(Json{JsonObject{{"keyid", Json{KeyId(key.public_key)}},
                                   {"sig", Json{HexEncode(sig)}}}});
  }
  return CanonicalJson(Json{JsonObject{{"signatures", Json{std::move(sigs)}},
                                       {"signed", signed_value}}});
}

Result<Envelope> ParseEnvelope(std::string_view text) {
  OUTPOST_ASSIGN_OR_RETURN(Json j, ParseJson(text, /*canonical_numbers_only=*/true));
  OUTPOST_ASSIGN_OR_RETURN(Reader r, Reader::Of(j, "metadata", {"signatures", "signed"}));
  Envelope env;
  OUTPOST_ASSIGN_OR_RETURN(const Json* signed_value, r.Get("signed"));
  env.signed_value = *signed_value;
  auto canonical = CanonicalJson(env.signed_value);
  if (!canonical.ok()) return Malformed(canonical.status().message());
  env.canonical = std::move(*canonical);
  OUTPOST_ASSIGN_OR_RETURN(const JsonArray* sigs, r.Array("signatures"));
  if (sigs->size() > 256) return Malformed("more than 256 signatures");
  std::set<std::string> seen;
  for (const Json& s : *sigs) {
    OUTPOST_ASSIGN_OR_RETURN(Reader sr, Reader::Of(s, "signature", {"keyid", "sig"}));
    OUTPOST_ASSIGN_OR_RETURN(std::string keyid, sr.String("keyid"));
    OUTPOST_ASSIGN_OR_RETURN(std::string sig_hex, sr.String("sig"));
    if (!IsHex64(keyid)) return Malformed("a signature's keyid is not a SHA-256 hex digest");
    auto sig = HexDecode(sig_hex);
    if (!sig.ok() || sig->size() != kSignatureBytes) {
      return Malformed("a signature is not 64 bytes of hex");
    }
    if (seen.insert(keyid).second) env.signatures.emplace_back(keyid, std::move(*sig));
  }
  return env;
}

uint64_t CountValidSignatures(const Envelope& envelope,
                              const std::map<std::string, std::string>& keys, const Role& role) {
  std::set<std::string> counted;
  for (const auto& [keyid, sig] : envelope.signatures) {
    bool in_role = false;
    for (const std::string& id : role.keyids) in_role = in_role || id == keyid;
    auto key = keys.find(keyid);
    if (!in_role || key == keys.end() || counted.count(keyid) > 0) continue;
    // The key id was computed from the public key when the root was parsed (RootFromJson).
    if (Verify(key->second, envelope.canonical, sig)) counted.insert(keyid);
  }
  return counted.size();
}

Result<Root> RootFromJson(const Json& value) {
  OUTPOST_ASSIGN_OR_RETURN(
      Reader r, Reader::Of(value, "root",
                           {"_type", "spec_version", "version", "expires", "keys", "roles"}));
  OUTPOST_ASSIGN_OR_RETURN(std::string type, r.String("_type"));
  OUTPOST_ASSIGN_OR_RETURN(std::string spec, r.String("spec_version"));
  if (type != "root") return Malformed("not root metadata");
  if (spec != "1") return Malformed("unknown spec_version");
  Root root;
  OUTPOST_ASSIGN_OR_RETURN(root.version, r.Uint("version"));
  OUTPOST_ASSIGN_OR_RETURN(root.expires, Seconds(r, "expires"));
  OUTPOST_ASSIGN_OR_RETURN(const JsonObject* keys, r.Object("keys"));
  if (keys->size() > 64) return Malformed("more than 64 root keys");
  for (const auto& [id, k] : *keys) {
    OUTPOST_ASSIGN_OR_RETURN(Reader kr, Reader::Of(k, "key", {"keytype", "public"}));
    OUTPOST_ASSIGN_OR_RETURN(std::string keytype, kr.String("keytype"));
    OUTPOST_ASSIGN_OR_RETURN(std::string pub_hex, kr.String("public"));
    if (keytype != "ed25519") return Malformed("unsupported key type");
    auto pub = HexDecode(pub_hex);
    if (!pub.ok() || pub->size() != kPublicKeyBytes) return Malformed("a public key is not 32 bytes");
    if (KeyId(*pub) != id) return Malformed("a key is stored under another key id");
    root.keys[id] = std::move(*pub);
  }
  OUTPOST_ASSIGN_OR_RETURN(const JsonObject* roles, r.Object("roles"));
  if (roles->size() != 2) return Malformed("root must define exactly the root and targets roles");
  OUTPOST_ASSIGN_OR_RETURN(root.root, RoleFromJson(*roles, "root"));
  OUTPOST_ASSIGN_OR_RETURN(root.targets, RoleFromJson(*roles, "targets"));
  if (root.version == 0) return Malformed("root version 0");
  for (auto [role, name] : {std::pair{&root.root, "root"}, std::pair{&root.targets, "targets"}}) {
    if (Status s = CheckRole(*role, root.keys, name); !s.ok()) return Malformed(s.message());
  }
  return root;
}

Result<Targets> TargetsFromJson(const Json& value) {
  OUTPOST_ASSIGN_OR_RETURN(
      Reader r, Reader::Of(value, "targets",
                           {"_type", "spec_version", "version", "created", "expires", "channel",
                            "sites", "site_groups", "targets", "models", "runtime"}));
  OUTPOST_ASSIGN_OR_RETURN(std::string type, r.String("_type"));
  OUTPOST_ASSIGN_OR_RETURN(std::string spec, r.String("spec_version"));
  if (type != "targets") return Malformed("not targets metadata");
  if (spec != "1") return Malformed("unknown spec_version");
  Targets t;
  OUTPOST_ASSIGN_OR_RETURN(t.version, r.Uint("version"));
  OUTPOST_ASSIGN_OR_RETURN(t.created, Seconds(r, "created"));
  OUTPOST_ASSIGN_OR_RETURN(t.expires, Seconds(r, "expires"));
  OUTPOST_ASSIGN_OR_RETURN(t.channel, r.String("channel"));
  OUTPOST_ASSIGN_OR_RETURN(t.sites, r.Strings("sites"));
  OUTPOST_ASSIGN_OR_RETURN(t.site_groups, r.Strings("site_groups"));
  OUTPOST_ASSIGN_OR_RETURN(const JsonObject* files, r.Object("targets"));
  for (const auto& [name, f] : *files) {
    OUTPOST_ASSIGN_OR_RETURN(Reader fr, Reader::Of(f, "target", {"length", "sha256"}));
    TargetFile file;
    OUTPOST_ASSIGN_OR_RETURN(file.length, fr.Uint("length"));
    OUTPOST_ASSIGN_OR_RETURN(file.sha256, fr.String("sha256"));
    t.targets[name] = std::move(file);
  }
  OUTPOST_ASSIGN_OR_RETURN(const JsonArray* models, r.Array("models"));
  for (const Json& m : *models) {
    OUTPOST_ASSIGN_OR_RETURN(
        Reader mr, Reader::Of(m, "model", {"name", "version", "manifest", "descriptor"}));
    ModelRef ref;
    OUTPOST_ASSIGN_OR_RETURN(ref.name, mr.String("name"));
    OUTPOST_ASSIGN_OR_RETURN(ref.version, mr.Uint("version"));
    OUTPOST_ASSIGN_OR_RETURN(ref.manifest, mr.String("manifest"));
    OUTPOST_ASSIGN_OR_RETURN(ref.descriptor, mr.String("descriptor"));
    t.models.push_back(std::move(ref));
  }
  if (r.Has("runtime")) {
    OUTPOST_ASSIGN_OR_RETURN(const Json* runtime, r.Get("runtime"));
    OUTPOST_ASSIGN_OR_RETURN(Reader rr, Reader::Of(*runtime, "runtime", {"manifest"}));
    OUTPOST_ASSIGN_OR_RETURN(t.runtime_manifest, rr.String("manifest"));
    if (!IsHex64(t.runtime_manifest)) return Malformed("bad runtime manifest digest");
  }
  if (t.version == 0) return Malformed("targets version 0");
  if (Status s = CheckTargetsContent(t); !s.ok()) return Malformed(s.message());
  return t;
}

Result<Root> VerifyNextRoot(const Root& trusted, std::string_view text) {
  OUTPOST_ASSIGN_OR_RETURN(Envelope env, ParseEnvelope(text));
  OUTPOST_ASSIGN_OR_RETURN(Root next, RootFromJson(env.signed_value));
  if (next.version != trusted.version + 1) {
    return ReasonError(Reason::kRootChain, "root version " + std::to_string(next.version) +
                                               " does not follow the trusted version " +
                                               std::to_string(trusted.version));
  }
  uint64_t by_old = CountValidSignatures(env, trusted.keys, trusted.root);
  if (by_old < trusted.root.threshold) {
    return ReasonError(Reason::kRootSignature,
                       "root " + std::to_string(next.version) + " has " + std::to_string(by_old) +
                           " valid signatures of the previous root's keys, needs " +
                           std::to_string(trusted.root.threshold));
  }
  uint64_t by_new = CountValidSignatures(env, next.keys, next.root);
  if (by_new < next.root.threshold) {
    return ReasonError(Reason::kRootSignature,
                       "root " + std::to_string(next.version) + " has " + std::to_string(by_new) +
                           " valid signatures of its own keys, needs " +
                           std::to_string(next.root.threshold));
  }
  return next;
}

Result<Targets> VerifyTargets(const Root& trusted, std::string_view text) {
  OUTPOST_ASSIGN_OR_RETURN(Envelope env, ParseEnvelope(text));
  // Signatures first: nothing in the signed value is believed before they are checked.
  uint64_t valid = CountValidSignatures(env, trusted.keys, trusted.targets);
  if (valid < trusted.targets.threshold) {
    return ReasonError(Reason::kSignatureThreshold,
                       "targets have " + std::to_string(valid) +
                           " valid signatures of distinct targets keys, need " +
                           std::to_string(trusted.targets.threshold));
  }
  return TargetsFromJson(env.signed_value);
}

Result<ModelDescriptor> ParseModelDescriptor(std::string_view text) {
  OUTPOST_ASSIGN_OR_RETURN(Json j, ParseJson(text, /*canonical_numbers_only=*/false));
  OUTPOST_ASSIGN_OR_RETURN(
      Reader r, Reader::Of(j, "descriptor",
                           {"name", "version", "engine", "engine_version", "inputs", "outputs",
                            "metrics", "lineage_sha256"}));
  ModelDescriptor d;
  OUTPOST_ASSIGN_OR_RETURN(d.name, r.String("name"));
  OUTPOST_ASSIGN_OR_RETURN(d.version, r.Uint("version"));
  OUTPOST_ASSIGN_OR_RETURN(d.engine, r.String("engine"));
  OUTPOST_ASSIGN_OR_RETURN(d.engine_version, r.String("engine_version"));
  OUTPOST_ASSIGN_OR_RETURN(d.lineage_sha256, r.String("lineage_sha256"));
  if (!ModelName::IsValid(d.name) || d.version == 0) return Malformed("bad descriptor name/version");
  if (!IsLabel(d.engine, 32) || d.engine_version.empty() || d.engine_version.size() > 32) {
    return Malformed("bad descriptor engine");
  }
  if (!d.lineage_sha256.empty() && !IsHex64(d.lineage_sha256)) {
    return Malformed("lineage_sha256 is neither empty nor a SHA-256 digest");
  }
  for (auto [key, out] : {std::pair{"inputs", &d.inputs}, std::pair{"outputs", &d.outputs}}) {
    OUTPOST_ASSIGN_OR_RETURN(const JsonArray* specs, r.Array(key));
    for (const Json& s : *specs) {
      OUTPOST_ASSIGN_OR_RETURN(Reader sr, Reader::Of(s, "tensor", {"name", "datatype", "shape"}));
      TensorSpec spec;
      OUTPOST_ASSIGN_OR_RETURN(spec.name, sr.String("name"));
      OUTPOST_ASSIGN_OR_RETURN(spec.datatype, sr.String("datatype"));
      if (spec.name.empty() || spec.name.size() > 64 || spec.datatype.empty() ||
          spec.datatype.size() > 16) {
        return Malformed("bad tensor name or datatype");
      }
      OUTPOST_ASSIGN_OR_RETURN(const JsonArray* shape, sr.Array("shape"));
      for (const Json& dim : *shape) {
        if (const uint64_t* u = std::get_if<uint64_t>(&dim.v)) {
          spec.shape.push_back(static_cast<int64_t>(*u));
        } else if (const int64_t* i = std::get_if<int64_t>(&dim.v); i && *i == -1) {
          spec.shape.push_back(-1);
        } else {
          return Malformed("a shape dimension is neither a size nor -1");
        }
      }
      out->push_back(std::move(spec));
    }
  }
  OUTPOST_ASSIGN_OR_RETURN(const JsonObject* metrics, r.Object("metrics"));
  for (const auto& [k, v] : *metrics) {
    if (const double* x = std::get_if<double>(&v.v)) {
      d.metrics[k] = *x;
    } else if (const uint64_t* u = std::get_if<uint64_t>(&v.v)) {
      d.metrics[k] = static_cast<double>(*u);
    } else if (const int64_t* i = std::get_if<int64_t>(&v.v)) {
      d.metrics[k] = static_cast<double>(*i);
    } else {
      return Malformed("a metric is not a number");
    }
  }
  return d;
}

std::string ModelDescriptorJson(const ModelDescriptor& descriptor) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Key("name");
  w.String(descriptor.name);
  w.Key("version");
  w.Uint(descriptor.version);
  w.Key("engine");
  w.String(descriptor.engine);
  w.Key("engine_version");
  w.String(descriptor.engine_version);
  for (auto [key, specs] : {std::pair{"inputs", &descriptor.inputs},
                            std::pair{"outputs", &descriptor.outputs}}) {
    w.Key(key);
    w.BeginArray();
    for (const TensorSpec& spec : *specs) {
      w.BeginObject();
      w.Key("name");
      w.String(spec.name);
      w.Key("datatype");
      w.String(spec.datatype);
      w.Key("shape");
      w.BeginArray();
      for (int64_t dim : spec.shape) w.Int(dim);
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
  }
  w.Key("metrics");
  w.BeginObject();
  for (const auto& [k, v] : descriptor.metrics) {
    w.Key(k);
    w.Double(v);
  }
  w.EndObject();
  w.Key("lineage_sha256");
  w.String(descriptor.lineage_sha256);
  w.EndObject();
  return out;
}

}  // namespace outpost::bundle
