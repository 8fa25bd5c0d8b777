#include "bundle/install.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>

#include "base/file.h"
#include "base/logging.h"
#include "bundle/reason.h"
#include "bundle/spool.h"

namespace outpost::bundle {
namespace {

constexpr std::string_view kWork = ".outpost-install";
constexpr uint64_t kMaxStateFileBytes = 16 << 20;

std::string Parent(const std::string& path) {
  std::string p = std::filesystem::path(path).parent_path().string();
  return p.empty() ? "." : p;
}

// rename(2), then fsync of both folders so the move survives a crash.
Status Move(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return ErrnoToStatus(errno, "renaming " + from + " to", to);
  }
  OUTPOST_RETURN_IF_ERROR(SyncDirectory(Parent(to)));
  if (Parent(from) != Parent(to)) OUTPOST_RETURN_IF_ERROR(SyncDirectory(Parent(from)));
  return Status::Ok();
}

// Copies a file in pieces and fsyncs the copy.
Status CopyFile(const std::string& from, const std::string& to) {
  int in = ::open(from.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (in < 0) return ErrnoToStatus(errno, "opening", from);
  int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (out < 0) {
    Status s = ErrnoToStatus(errno, "creating", to);
    ::close(in);
    return s;
  }
  Status status;
  std::string buf(64 * 1024, '\0');
  for (;;) {
    ssize_t r = ::read(in, buf.data(), buf.size());
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      status = ErrnoToStatus(errno, "reading", from);
      break;
    }
    if (r == 0) break;
    size_t done = 0;
    while (done < static_cast<size_t>(r)) {
      ssize_t w = ::write(out, buf.data() + done, static_cast<size_t>(r) - done);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) break;
      done += static_cast<size_t>(w);
    }
    if (done < static_cast<size_t>(r)) {
      status = ErrnoToStatus(errno, "writing", to);
      break;
    }
  }
  if (status.ok() && ::fsync(out) != 0) status = ErrnoToStatus(errno, "fsync", to);
  ::close(in);
  ::close(out);
  return status;
}

int64_t NowSeconds(const Clock& clock) {
  return std::chrono::duration_cast<std::chrono::seconds>(clock.Now().time_since_epoch()).count();
}

const JsonObject* Object(const Json& j) { return std::get_if<JsonObject>(&j.v); }
const Json* Member(const JsonObject& o, const std::string& key) {
  auto it = o.find(key);
  return it == o.end() ? nullptr : &it->second;
}

Result<std::string> Canonical(const Json& j) { return CanonicalJson(j); }

// installed.json: {"history":[5,6],"serial":9}. The serial counts switches; a journal names
// the serial its commit writes, so a switch that re-installs the active bundle is told apart.
struct History {
  std::vector<uint64_t> versions;
  uint64_t serial = 0;
};
Result<History> LoadHistory(const std::string& path) {
  if (!PathExists(path)) return History{};
  OUTPOST_ASSIGN_OR_RETURN(std::string text, ReadFile(path, kMaxStateFileBytes));
  Status damaged = DataLossError(path + " is damaged");
  auto json = ParseJson(text, true);
  if (!json.ok() || Object(*json) == nullptr) return damaged;
  const Json* h = Member(*Object(*json), "history");
  const Json* serial = Member(*Object(*json), "serial");
  const JsonArray* a = h == nullptr ? nullptr : std::get_if<JsonArray>(&h->v);
  if (a == nullptr || serial == nullptr || !std::holds_alternative<uint64_t>(serial->v)) {
    return damaged;
  }
  History out{.serial = std::get<uint64_t>(serial->v)};
  for (const Json& v : *a) {
    const uint64_t* n = std::get_if<uint64_t>(&v.v);
    if (n == nullptr) return damaged;
    out.versions.push_back(*n);
  }
  return out;
}

// A JSON array value (built by assignment: g++ 12 warns about brace-initialising the variant).
Json ArrayJson(JsonArray a) {
  Json j;
  j.v = std::move(a);
  return j;
}

Json HistoryJson(const std::vector<uint64_t>& history) {
  JsonArray a(history.size());
  for (size_t i = 0; i < history.size(); ++i) a[i].v = history[i];
  return ArrayJson(std::move(a));
}

Status SaveHistory(const std::string& path, const History& history) {
  OUTPOST_ASSIGN_OR_RETURN(std::string text,
                           Canonical(Json{JsonObject{{"history", HistoryJson(history.versions)},
                                                     {"serial", Json{history.serial}}}}));
  return WriteFileAtomically(path, text + "\n");
}

// The trusted root from a signed root file. At provisioning the operator vouches for it; its
// own root keys must still sign it, so a corrupted file is caught.
Result<Root> ParseTrustedRoot(std::string_view text) {
  OUTPOST_ASSIGN_OR_RETURN(Envelope env, ParseEnvelope(text));
  OUTPOST_ASSIGN_OR_RETURN(Root root, RootFromJson(env.signed_value));
  if (CountValidSignatures(env, root.keys, root.root) < root.root.threshold) {
    return ReasonError(Reason::kRootSignature, "the trusted root is not signed by its own keys");
  }
  return root;
}

// One file of a model version, as the manifest's layer names it.
struct ModelFile {
  std::string title;  // "config.yaml" or "<version>/<file>"
  std::string blob;   // hex digest
};

// The files of model `ref` from its manifest in a verified layout. Titles are checked again
// here although the manifest is covered by the signed targets: nothing leaves the model folder.
Result<std::vector<ModelFile>> ModelFiles(const std::string& layout, const ModelRef& ref) {
  OUTPOST_ASSIGN_OR_RETURN(std::string text,
                           ReadFile(JoinPath(layout, "blobs/sha256/" + ref.manifest), 1 << 20));
  auto bad = [&](const std::string& why) {
    return ReasonError(Reason::kMetadataMalformed, "manifest of " + ref.name + ": " + why);
  };
  auto json = ParseJson(text, false);
  if (!json.ok() || Object(*json) == nullptr) return bad("not a JSON object");
  const Json* layers = Member(*Object(*json), "layers");
  const JsonArray* a = layers == nullptr ? nullptr : std::get_if<JsonArray>(&layers->v);
  if (a == nullptr) return bad("no layers");
  std::vector<ModelFile> out;
  std::string version_prefix = std::to_string(ref.version) + "/";
  for (const Json& layer : *a) {
    const JsonObject* o = Object(layer);
    const Json* digest = o == nullptr ? nullptr : Member(*o, "digest");
    const Json* ann = o == nullptr ? nullptr : Member(*o, "annotations");
    const JsonObject* ann_o = ann == nullptr ? nullptr : Object(*ann);
    const Json* title =
        ann_o == nullptr ? nullptr : Member(*ann_o, "org.opencontainers.image.title");
    const std::string* d = digest == nullptr ? nullptr : std::get_if<std::string>(&digest->v);
    const std::string* t = title == nullptr ? nullptr : std::get_if<std::string>(&title->v);
    if (d == nullptr || t == nullptr || d->size() != 71 || d->rfind("sha256:", 0) != 0) {
      return bad("a layer without digest or title");
    }
    bool ok = *t == "config.yaml" ||
              (t->rfind(version_prefix, 0) == 0 &&
               t->find('/', version_prefix.size()) == std::string::npos && IsSafeEntryName(*t));
    if (!ok) return bad("layer title \"" + *t + "\" is outside the model version");
    out.push_back({.title = *t, .blob = d->substr(7)});
  }
  return out;
}

std::string ModelKey(const ModelVersion& m) { return m.name + "/" + std::to_string(m.version); }

// The targets of kept bundle `v` (state_dir/bundles/<v>/targets.json).
Result<Targets> LoadKeptTargets(const std::string& state_dir, uint64_t v) {
  std::string path = JoinPath(state_dir, "bundles/" + std::to_string(v) + "/targets.json");
  OUTPOST_ASSIGN_OR_RETURN(std::string text, ReadFile(path, kMaxStateFileBytes));
  auto json = ParseJson(text, true);
  if (!json.ok()) return DataLossError(path + " is damaged");
  auto t = TargetsFromJson(*json);
  if (!t.ok()) return DataLossError(path + " is damaged");
  return t;
}

// The model versions a switch goes to and comes from.
struct SwitchSets {
  std::set<std::pair<std::string, uint64_t>> target_set, current_set;
  std::set<std::string> target_names;
};

SwitchSets SetsOf(const Targets& target, const Targets* current) {
  SwitchSets out;
  for (const ModelRef& m : target.models) {
    out.target_set.insert({m.name, m.version});
    out.target_names.insert(m.name);
  }
  if (current != nullptr) {
    for (const ModelRef& m : current->models) out.current_set.insert({m.name, m.version});
  }
  return out;
}

// Step 1 of a switch: complete copies of every model version of `target` from `layout` in
// the emptied work folder, fsync'd. Fills `configs` (models whose bundle ships a
// config.yaml) and `models`.
Status StageCopies(const std::string& work, const std::string& layout, const Targets& target,
                   std::set<std::string>* configs, std::vector<ModelVersion>* models) {
  OUTPOST_RETURN_IF_ERROR(RemoveTree(work));
  for (const ModelRef& m : target.models) {
    models->push_back({m.name, m.version});
    OUTPOST_ASSIGN_OR_RETURN(std::vector<ModelFile> files, ModelFiles(layout, m));
    std::string vdir = JoinPath(work, "new/" + m.name + "/" + std::to_string(m.version));
    OUTPOST_RETURN_IF_ERROR(MakeDirectories(vdir));
    for (const ModelFile& f : files) {
      std::string dest = JoinPath(JoinPath(work, "new/" + m.name), f.title);
      if (f.title == "config.yaml") {
        if (configs->count(m.name) > 0) continue;  // several versions ship the same config
        configs->insert(m.name);
      }
      OUTPOST_RETURN_IF_ERROR(CopyFile(JoinPath(layout, "blobs/sha256/" + f.blob), dest));
    }
    OUTPOST_RETURN_IF_ERROR(SyncDirectory(vdir));
    OUTPOST_RETURN_IF_ERROR(SyncDirectory(Parent(vdir)));
  }
  return Status::Ok();
}

// One rename of a switch's journal.
struct Rename {
  std::string from, to;  // relative to the repository
  bool backup = false;   // done by a copy before the journal; only undone
};

// The renames that bring the target's models in: new models as one folder, then new
// versions, then each config.yaml (its old text copied aside first, a `backup` entry).
Status AddIncomingMoves(const std::string& repo, const std::string& work, const SwitchSets& sets,
                        const std::set<std::string>& configs, std::set<std::string>* whole_models,
                        std::vector<Rename>* moves) {
  std::string w(kWork);
  for (const std::string& name : sets.target_names) {
    if (!PathExists(JoinPath(repo, name))) {
      whole_models->insert(name);
      moves->push_back({w + "/new/" + name, name});
    } else {
      OUTPOST_RETURN_IF_ERROR(MakeDirectories(JoinPath(work, "old/" + name)));
    }
  }
  for (const auto& [name, version] : sets.target_set) {
    if (whole_models->count(name) > 0) continue;
    std::string v = name + "/" + std::to_string(version);
    if (PathExists(JoinPath(repo, v))) moves->push_back({v, w + "/old/" + v});
    moves->push_back({w + "/new/" + v, v});
  }
  for (const std::string& name : sets.target_names) {
    if (whole_models->count(name) > 0 || configs.count(name) == 0) continue;
    std::string config = name + "/config.yaml";
    if (PathExists(JoinPath(repo, config))) {
      OUTPOST_RETURN_IF_ERROR(CopyFile(JoinPath(repo, config), JoinPath(work, "old/" + config)));
      moves->push_back({config, w + "/old/" + config, /*backup=*/true});
    }
    moves->push_back({w + "/new/" + config, config});
  }
  return Status::Ok();
}

// The renames that take out the current versions the target does not keep, and the whole
// folder of each model that leaves with the bundle.
Status AddLeavingMoves(const std::string& repo, const std::string& work, const SwitchSets& sets,
                       std::vector<Rename>* moves) {
  std::string w(kWork);
  for (const auto& [name, version] : sets.current_set) {
    if (sets.target_set.count({name, version}) > 0) continue;
    std::string v = name + "/" + std::to_string(version);
    if (sets.target_names.count(name) == 0) {
      // The model leaves with the bundle: its whole folder goes.
      const std::string& leaving = name;  // a structured binding cannot be captured (C++20)
      if (PathExists(JoinPath(repo, name)) &&
          std::none_of(moves->begin(), moves->end(),
                       [&leaving](const Rename& mv) { return mv.from == leaving; })) {
        OUTPOST_RETURN_IF_ERROR(MakeDirectories(JoinPath(work, "old-models")));
        moves->push_back({name, w + "/old-models/" + name});
      }
      continue;
    }
    if (PathExists(JoinPath(repo, v))) {
      OUTPOST_RETURN_IF_ERROR(MakeDirectories(JoinPath(work, "old/" + name)));
      moves->push_back({v, w + "/old/" + v});
    }
  }
  return Status::Ok();
}

// The journal's text (see Installer::Recover for its shape).
Result<std::string> JournalText(const std::string& op, uint64_t serial,
                                const std::vector<uint64_t>& new_history,
                                const std::vector<Rename>& moves, const SiteState* new_state,
                                const std::string& root_file) {
  JsonArray move_json;
  for (const Rename& m : moves) {
    JsonArray entry{Json{m.from}, Json{m.to}};
    if (m.backup) entry.push_back(Json{std::string("backup")});
    move_json.push_back(ArrayJson(std::move(entry)));
  }
  Json state_json{nullptr};
  if (new_state != nullptr) {
    state_json = Json{JsonObject{
        {"installed_version", Json{new_state->installed_version}},
        {"time_floor", Json{static_cast<uint64_t>(std::max<int64_t>(0, new_state->time_floor))}}}};
  }
  return Canonical(Json{JsonObject{{"op", Json{op}},
                                   {"serial", Json{serial}},
                                   {"history", HistoryJson(new_history)},
                                   {"moves", ArrayJson(std::move(move_json))},
                                   {"state", state_json},
                                   {"root", Json{root_file}}}});
}

}  // namespace

void Installer::Step(std::string_view step) const {
  if (options_.step_hook) options_.step_hook(step);
}

Result<std::unique_ptr<Installer>> Installer::Open(InstallerOptions options) {
  if (options.state_dir.empty() || options.clock == nullptr) {
    return InvalidArgumentError("the installer needs a state folder and a clock");
  }
  options.keep = std::max<size_t>(options.keep, 2);
  OUTPOST_RETURN_IF_ERROR(MakeDirectories(options.state_dir));
  if (!options.repository.empty()) OUTPOST_RETURN_IF_ERROR(MakeDirectories(options.repository));
  std::unique_ptr<Installer> installer(new Installer(std::move(options)));
  const InstallerOptions& o = installer->options_;
  std::string root_path = JoinPath(o.state_dir, "root.json");
  if (!PathExists(root_path)) {
    if (o.provision_root.empty()) {
      return FailedPreconditionError("no trusted root in " + o.state_dir +
                                     " (provision one with --trusted-root)");
    }
    OUTPOST_RETURN_IF_ERROR(ParseTrustedRoot(o.provision_root).status());
    OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(root_path, o.provision_root));
    OUTPOST_RETURN_IF_ERROR(SyncDirectory(o.state_dir));
  }
  OUTPOST_RETURN_IF_ERROR(installer->Recover());
  OUTPOST_ASSIGN_OR_RETURN(std::string root_text, ReadFile(root_path, 1 << 20));
  auto root = ParseTrustedRoot(root_text);
  if (!root.ok()) return DataLossError(root_path + ": " + std::string(root.status().message()));
  installer->root_ = std::move(*root);
  OUTPOST_ASSIGN_OR_RETURN(History h, LoadHistory(JoinPath(o.state_dir, "installed.json")));
  installer->history_ = std::move(h.versions);
  installer->serial_ = h.serial;
  return installer;
}

// A journal: {"op":..,"serial":N,"history":[..],"moves":[[from,to],[from,to,"backup"],..],
// "state":{..}|null,"root":".."}. Paths in moves are relative to the repository. Undoing a
// move renames `to` back to `from` when `to` exists and `from` does not, so an undo that is
// itself interrupted can run again; a backup entry is undone the same way.
Status Installer::Recover() {
  const std::string& repo = options_.repository;
  std::string journal_path = JoinPath(options_.state_dir, "journal.json");
  if (PathExists(journal_path)) {
    OUTPOST_ASSIGN_OR_RETURN(std::string text, ReadFile(journal_path, kMaxStateFileBytes));
    Status damaged = DataLossError(journal_path + " is damaged");
    auto json = ParseJson(text, true);
    if (!json.ok() || Object(*json) == nullptr) return damaged;
    const JsonObject& j = *Object(*json);
    const Json* h = Member(j, "history");
    const Json* serial = Member(j, "serial");
    const Json* moves = Member(j, "moves");
    const Json* state = Member(j, "state");
    const Json* root = Member(j, "root");
    const JsonArray* ma = moves == nullptr ? nullptr : std::get_if<JsonArray>(&moves->v);
    const std::string* root_text = root == nullptr ? nullptr : std::get_if<std::string>(&root->v);
    if (h == nullptr || ma == nullptr || state == nullptr || root_text == nullptr ||
        serial == nullptr || !std::holds_alternative<uint64_t>(serial->v)) {
      return damaged;
    }
    uint64_t wanted = std::get<uint64_t>(serial->v);
    OUTPOST_ASSIGN_OR_RETURN(History history,
                             LoadHistory(JoinPath(options_.state_dir, "installed.json")));
    if (history.serial == wanted) {
      // Past the commit point: finish it.
      if (!root_text->empty()) {
        OUTPOST_RETURN_IF_ERROR(
            WriteFileAtomically(JoinPath(options_.state_dir, "root.json"), *root_text));
      }
      if (const JsonObject* s = Object(*state); s != nullptr) {
        const Json* floor = Member(*s, "time_floor");
        const Json* version = Member(*s, "installed_version");
        if (floor == nullptr || version == nullptr || !std::holds_alternative<uint64_t>(floor->v) ||
            !std::holds_alternative<uint64_t>(version->v)) {
          return damaged;
        }
        OUTPOST_RETURN_IF_ERROR(
            SaveSiteState(JoinPath(options_.state_dir, "state.json"),
                          {.time_floor = static_cast<int64_t>(std::get<uint64_t>(floor->v)),
                           .installed_version = std::get<uint64_t>(version->v)}));
      }
      OUTPOST_LOG(kInfo) << "bundle: finished an interrupted switch" << Field("serial", wanted);
    } else {
      // Before the commit point: undo the renames that were made, newest first.
      if (repo.empty() && !ma->empty()) {
        return FailedPreconditionError(journal_path + " is an interrupted switch of a repository;"
                                       " give --repository to recover it");
      }
      for (auto it = ma->rbegin(); it != ma->rend(); ++it) {
        const JsonArray* pair = std::get_if<JsonArray>(&it->v);
        if (pair == nullptr || pair->size() < 2 || pair->size() > 3) return damaged;
        const std::string* from = std::get_if<std::string>(&(*pair)[0].v);
        const std::string* to = std::get_if<std::string>(&(*pair)[1].v);
        if (from == nullptr || to == nullptr) return damaged;
        std::string f = JoinPath(repo, *from), t = JoinPath(repo, *to);
        if (PathExists(t) && !PathExists(f)) {
          OUTPOST_RETURN_IF_ERROR(MakeDirectories(Parent(f)));
          OUTPOST_RETURN_IF_ERROR(Move(t, f));
        }
      }
      OUTPOST_LOG(kWarning) << "bundle: undid an interrupted switch"
                            << Field("journal", journal_path);
    }
    if (!repo.empty()) OUTPOST_RETURN_IF_ERROR(RemoveTree(JoinPath(repo, std::string(kWork))));
    if (::unlink(journal_path.c_str()) != 0) return ErrnoToStatus(errno, "removing", journal_path);
    OUTPOST_RETURN_IF_ERROR(SyncDirectory(options_.state_dir));
  }
  // A crash before the journal leaves only unreferenced copies.
  if (!repo.empty()) OUTPOST_RETURN_IF_ERROR(RemoveTree(JoinPath(repo, std::string(kWork))));
  OUTPOST_RETURN_IF_ERROR(RemoveTree(JoinPath(options_.state_dir, "staging")));
  return Status::Ok();
}

Status Installer::Event(const std::string& type, uint64_t bundle_version,
                        const outpost::Status& outcome, const std::vector<ModelVersion>& models) {
  if (options_.spool_dir.empty()) return Status::Ok();
  std::optional<Reason> reason = ReasonOf(outcome);
  JsonArray model_list;
  for (const ModelVersion& m : models) model_list.push_back(Json{ModelKey(m)});
  std::string message(outcome.message());
  if (message.size() > 1024) message.resize(1024);
  JsonObject event{
      {"event", Json{type}},
      {"time", Json{static_cast<uint64_t>(std::max<int64_t>(0, NowSeconds(*options_.clock)))}},
      {"site_id", Json{options_.site_id}},
      {"bundle_version", Json{bundle_version}},
      {"models", ArrayJson(std::move(model_list))},
      {"reason", reason.has_value() ? Json{std::string(ReasonName(*reason))}
                 : outcome.ok()     ? Json{nullptr}
                                    : Json{std::string(StatusCodeName(outcome.code()))}},
      {"message", Json{message}}};
  // Messages come from our own errors; anything that is not valid for canonical JSON (a
  // control byte is escaped, so only invalid UTF-8 could fail) drops the message.
  auto text = Canonical(Json{event});
  if (!text.ok()) return text.status();
  Status s = SpoolEvent(options_.spool_dir, *text);
  if (!s.ok()) {
    OUTPOST_LOG(kError) << "bundle: cannot spool an event" << Field("error", s);
  }
  return s;
}

Result<SiteStatus> Installer::Describe() {
  SiteStatus out;
  OUTPOST_ASSIGN_OR_RETURN(out.state, LoadSiteState(JoinPath(options_.state_dir, "state.json")));
  out.root_version = root_.version;
  out.installed = history_;
  if (!history_.empty()) {
    OUTPOST_ASSIGN_OR_RETURN(Targets targets, LoadKeptTargets(options_.state_dir, history_.back()));
    for (const ModelRef& m : targets.models) out.models.push_back({m.name, m.version});
  }
  return out;
}

Result<VerifiedBundle> Installer::VerifyForSite(const std::string& bundle_path) {
  OUTPOST_ASSIGN_OR_RETURN(SiteState state,
                           LoadSiteState(JoinPath(options_.state_dir, "state.json")));
  std::string staging = JoinPath(options_.state_dir, "staging");
  Result<VerifiedBundle> verified = VerifyBundle(bundle_path, root_, state,
                                                 {.site_id = options_.site_id,
                                                  .site_groups = options_.site_groups,
                                                  .staging_dir = staging,
                                                  .clock = options_.clock,
                                                  .limits = options_.limits});
  if (!verified.ok()) {
    Event("bundle_refused", 0, verified.status(), {}).IgnoreError();
    return verified.status();
  }
  Step("verified");
  return verified;
}

Result<InstallResult> Installer::Install(const std::string& bundle_path) {
  if (options_.repository.empty()) {
    return FailedPreconditionError("installing on this node needs its model repository");
  }
  std::string staging = JoinPath(options_.state_dir, "staging");
  Result<VerifiedBundle> verified = VerifyForSite(bundle_path);
  if (!verified.ok()) return verified.status();
  uint64_t version = verified->targets.version;
  std::vector<ModelVersion> models;
  for (const ModelRef& m : verified->targets.models) models.push_back({m.name, m.version});
  // Keep the verified layout, with its targets, for rollback.
  std::string kept = JoinPath(options_.state_dir, "bundles/" + std::to_string(version));
  auto keep = [&]() -> outpost::Status {
    OUTPOST_ASSIGN_OR_RETURN(Json targets_json, TargetsToJson(verified->targets));
    OUTPOST_ASSIGN_OR_RETURN(std::string text, Canonical(targets_json));
    OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(JoinPath(staging, "targets.json"), text + "\n"));
    OUTPOST_RETURN_IF_ERROR(MakeDirectories(Parent(kept)));
    bool active = !history_.empty() && history_.back() == version;
    if (PathExists(kept) && !active) OUTPOST_RETURN_IF_ERROR(RemoveTree(kept));
    if (PathExists(kept)) {
      // Reinstalling the active bundle: its layout is identical (same signed targets).
      return RemoveTree(staging);
    }
    return Move(staging, kept);
  };
  if (outpost::Status s = keep(); !s.ok()) {
    RemoveTree(staging).IgnoreError();
    Event("bundle_install_failed", version, s, models).IgnoreError();
    return s;
  }
  Step("kept");
  std::vector<uint64_t> new_history = history_;
  new_history.erase(std::remove(new_history.begin(), new_history.end(), version),
                    new_history.end());
  new_history.push_back(version);
  uint64_t from = history_.empty() ? 0 : history_.back();
  Result<InstallResult> result = Switch("install", from, version, new_history, &verified->new_state,
                                        verified->trusted_root_file);
  Event(result.ok() ? "bundle_installed" : "bundle_install_failed", version,
        result.ok() ? outpost::Status::Ok() : result.status(), models)
      .IgnoreError();
  return result;
}

Result<InstallResult> Installer::Rollback() {
  if (options_.repository.empty()) {
    return FailedPreconditionError("rolling back this node needs its model repository");
  }
  if (history_.size() < 2) {
    outpost::Status s =
        FailedPreconditionError("NO_PREVIOUS_BUNDLE: no earlier bundle is kept to roll back to");
    Event("bundle_rollback_failed", history_.empty() ? 0 : history_.back(), s, {}).IgnoreError();
    return s;
  }
  std::vector<uint64_t> new_history(history_.begin(), history_.end() - 1);
  uint64_t to = new_history.back();
  Result<InstallResult> result = Switch("rollback", history_.back(), to, new_history, nullptr, "");
  std::vector<ModelVersion> models = result.ok() ? result->models : std::vector<ModelVersion>{};
  Event(result.ok() ? "bundle_rolled_back" : "bundle_rollback_failed", to,
        result.ok() ? outpost::Status::Ok() : result.status(), models)
      .IgnoreError();
  return result;
}

Result<InstallResult> Installer::Switch(const std::string& op, uint64_t from, uint64_t to,
                                        std::vector<uint64_t> new_history,
                                        const SiteState* new_state, const std::string& root_file) {
  const std::string& repo = options_.repository;
  OUTPOST_ASSIGN_OR_RETURN(Targets target, LoadKeptTargets(options_.state_dir, to));
  std::optional<Targets> current;
  if (from != 0) {
    OUTPOST_ASSIGN_OR_RETURN(current, LoadKeptTargets(options_.state_dir, from));
  }
  const SwitchSets sets = SetsOf(target, current ? &*current : nullptr);

  // 1. Complete copies of every model version in the work folder, fsync'd.
  std::string work = JoinPath(repo, std::string(kWork));
  std::string layout = JoinPath(options_.state_dir, "bundles/" + std::to_string(to));
  std::set<std::string> configs;  // models whose bundle ships a config.yaml
  std::vector<ModelVersion> models;
  OUTPOST_RETURN_IF_ERROR(StageCopies(work, layout, target, &configs, &models));
  Step("staged");

  // 2. The renames, written down before the first is made. New versions come in first, then
  // each config.yaml is replaced in one rename (its old text copied aside beforehand, a
  // `backup` entry that the switch does not perform but an undo restores), then the versions
  // that leave go out. Every version folder present is complete at every moment.
  std::vector<Rename> moves;
  std::set<std::string> whole_models;  // models new to the repository: moved in as one folder
  OUTPOST_RETURN_IF_ERROR(AddIncomingMoves(repo, work, sets, configs, &whole_models, &moves));
  OUTPOST_RETURN_IF_ERROR(AddLeavingMoves(repo, work, sets, &moves));
  OUTPOST_RETURN_IF_ERROR(SyncDirectory(work));
  OUTPOST_ASSIGN_OR_RETURN(std::string journal,
                           JournalText(op, serial_ + 1, new_history, moves, new_state, root_file));
  std::string journal_path = JoinPath(options_.state_dir, "journal.json");
  OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(journal_path, journal + "\n"));
  Step("journal");

  // 3. The switch; the edge's watcher picks each rename up.
  for (size_t i = 0; i < moves.size(); ++i) {
    if (moves[i].backup) continue;
    if (outpost::Status s = Move(JoinPath(repo, moves[i].from), JoinPath(repo, moves[i].to));
        !s.ok()) {
      Recover().IgnoreError();
      return s;
    }
    Step("move-" + std::to_string(i + 1));
  }

  // 4. The health check decides.
  OUTPOST_RETURN_IF_ERROR(CheckHealth(models));
  Step("checked");

  // 5. Commit: installed.json is the commit point; Recover() finishes the rest after a crash.
  OUTPOST_RETURN_IF_ERROR(Commit(new_history, new_state, root_file));
  OUTPOST_RETURN_IF_ERROR(RemoveTree(work));
  Step("finished");
  uint64_t previous = history_.empty() ? 0 : history_.back();
  history_ = std::move(new_history);
  OUTPOST_RETURN_IF_ERROR(KeepLastBundles());
  return InstallResult{.bundle_version = to, .previous_version = previous, .models = models};
}

outpost::Status Installer::Commit(const std::vector<uint64_t>& history,
                                  const SiteState* new_state, const std::string& root_file) {
  OUTPOST_RETURN_IF_ERROR(SaveHistory(JoinPath(options_.state_dir, "installed.json"),
                                      {.versions = history, .serial = serial_ + 1}));
  ++serial_;
  Step("committed");
  if (!root_file.empty()) {
    OUTPOST_RETURN_IF_ERROR(
        WriteFileAtomically(JoinPath(options_.state_dir, "root.json"), root_file));
    OUTPOST_ASSIGN_OR_RETURN(root_, ParseTrustedRoot(root_file));
  }
  Step("root");
  if (new_state != nullptr) {
    OUTPOST_RETURN_IF_ERROR(SaveSiteState(JoinPath(options_.state_dir, "state.json"), *new_state));
  }
  Step("state");
  std::string journal_path = JoinPath(options_.state_dir, "journal.json");
  if (::unlink(journal_path.c_str()) != 0) return ErrnoToStatus(errno, "removing", journal_path);
  return SyncDirectory(options_.state_dir);
}

Result<InstallResult> Installer::Deploy(const std::string& bundle_path, const Deployer& deploy) {
  OUTPOST_ASSIGN_OR_RETURN(SiteState before,
                           LoadSiteState(JoinPath(options_.state_dir, "state.json")));
  Result<VerifiedBundle> verified = VerifyForSite(bundle_path);
  if (!verified.ok()) return verified.status();
  const uint64_t version = verified->targets.version;
  std::vector<ModelVersion> models;
  for (const ModelRef& m : verified->targets.models) models.push_back({m.name, m.version});
  InstallResult result{
      .bundle_version = version, .previous_version = before.installed_version, .models = models};
  // The same journal as a switch's, with no renames: a crash after the commit point is
  // finished by Recover(), one before it leaves the old state.
  std::string journal_path = JoinPath(options_.state_dir, "journal.json");
  outpost::Status s = [&]() -> outpost::Status {
    OUTPOST_ASSIGN_OR_RETURN(std::string journal,
                             JournalText("deploy", serial_ + 1, history_, {},
                                         &verified->new_state, verified->trusted_root_file));
    OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(journal_path, journal + "\n"));
    Step("journal");
    outpost::Status deployed = deploy(*verified);
    if (!deployed.ok()) {
      ::unlink(journal_path.c_str());
      return deployed;
    }
    Step("checked");
    return Commit(history_, &verified->new_state, verified->trusted_root_file);
  }();
  RemoveTree(verified->staging_dir).IgnoreError();
  Event(s.ok() ? "bundle_installed" : "bundle_install_failed", version, s, models).IgnoreError();
  if (!s.ok()) return s;
  Step("finished");
  return result;
}

outpost::Status Installer::CheckHealth(const std::vector<ModelVersion>& models) {
  if (!options_.health_check) return Status::Ok();
  for (const ModelVersion& m : models) {
    outpost::Status s =
        options_.health_check(JoinPath(options_.repository, m.name), m.name, m.version);
    if (!s.ok()) {
      outpost::Status failed =
          ReasonError(Reason::kHealthCheck, ModelKey(m) + " failed its health check (" +
                                                s.ToString() + "); the switch was undone");
      OUTPOST_RETURN_IF_ERROR(Recover());
      return failed;
    }
  }
  return Status::Ok();
}

outpost::Status Installer::KeepLastBundles() {
  while (history_.size() > options_.keep) history_.erase(history_.begin());
  OUTPOST_RETURN_IF_ERROR(SaveHistory(JoinPath(options_.state_dir, "installed.json"),
                                      {.versions = history_, .serial = serial_}));
  std::string bundles = JoinPath(options_.state_dir, "bundles");
  OUTPOST_ASSIGN_OR_RETURN(std::vector<std::string> kept, ListDirectory(bundles));
  for (const std::string& k : kept) {
    if (std::none_of(history_.begin(), history_.end(),
                     [&](uint64_t v) { return std::to_string(v) == k; })) {
      RemoveTree(JoinPath(bundles, k)).IgnoreError();
    }
  }
  return Status::Ok();
}

}  // namespace outpost::bundle
