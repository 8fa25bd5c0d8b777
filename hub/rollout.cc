// Rollouts in waves (rollout.h; hub/FORMAT.md section 11, hub/QUERY_API.md "Rollouts").
#include "hub/rollout.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

#include "base/crypto/crypto.h"
#include "base/json/json.h"
#include "base/json_writer.h"
#include "base/logging.h"
#include "base/names.h"
#include "bundle/reason.h"
#include "hub/operator_api.h"

namespace outpost::hub {
namespace {

constexpr std::string_view kRolloutsPrefix = "/api/v1/rollouts";
constexpr size_t kListedRollouts = 100;
// Finished rollouts are still read for a day, so a site's roll back shows.
constexpr int64_t kWatchFinishedMs = 86'400'000;

std::string Percent(double share) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f%%", share * 100);
  return text;
}

std::optional<double> Rate(int64_t part, int64_t whole) {
  if (whole <= 0) return std::nullopt;
  return static_cast<double>(part) / static_cast<double>(whole);
}

// The share of labelled requests a version got right, once at least min_labels (and at
// least one) arrived; nullopt before.
std::optional<double> Accuracy(const VersionCounters& c, const RolloutPlan& plan) {
  if (c.labelled < std::max<int64_t>(plan.min_labels, 1)) return std::nullopt;
  return Rate(c.correct, c.labelled);
}

void OptionalDouble(JsonWriter& w, const std::optional<double>& v) {
  if (v) {
    w.Double(*v);
  } else {
    w.Null();
  }
}

void AddHistory(Rollout& r, int64_t now_ms, std::string action, std::string who,
                std::string detail) {
  r.history.push_back(RolloutEvent{.time_ms = now_ms,
                                   .action = std::move(action),
                                   .operator_name = std::move(who),
                                   .detail = std::move(detail)});
  if (r.history.size() > kMaxRolloutHistory) {
    r.history.erase(r.history.begin(),
                    r.history.begin() + static_cast<long>(r.history.size() - kMaxRolloutHistory));
  }
  r.updated_ms = now_ms;
}

// Opens wave `i` at now_ms: its sites' baselines are what they serve now.
void OpenWave(Rollout& r, size_t i, const std::map<std::string, SiteObservation>& seen,
              int64_t now_ms, std::string_view why) {
  RolloutWave& w = r.waves[i];
  if (w.opened_ms != 0) return;
  w.opened_ms = std::max<int64_t>(now_ms, 1);  // 0 means not opened
  w.gate = "installing";
  for (RolloutSite& s : r.sites) {
    if (s.wave != i) continue;
    if (s.status == "pending") s.status = "offered";
    s.updated_ms = now_ms;
    auto it = seen.find(s.site_id);
    if (it != seen.end() && it->second.serving) {
      const VersionCounters& c = *it->second.serving;
      s.baseline_error_rate = Rate(c.failed, c.requests());
      s.baseline_accuracy = Accuracy(c, r.plan);
    }
  }
  AddHistory(r, now_ms, "wave_opened", "",
             "wave " + std::to_string(i) + " (" + w.name + ")" + std::string(why));
}

// The rollout ended before every site installed (halted or aborted): the sites that had not
// installed will never be offered the bundle, and the gates that had not decided never will.
void Withdraw(Rollout& r, int64_t now_ms) {
  for (RolloutSite& s : r.sites) {
    std::string status = s.status == "offered"   ? "withdrawn"
                         : s.status == "pending" ? "not_offered"
                                                 : s.status;
    if (status == s.status) continue;
    s.status = std::move(status);
    s.updated_ms = now_ms;
  }
  for (RolloutWave& w : r.waves) {
    if (w.gate == "passed" || w.gate == "skipped" || w.gate == "failed") continue;
    w.gate = "withdrawn";
    w.detail = w.opened_ms != 0 ? r.reason : "not opened";
  }
}

void Halt(Rollout& r, int64_t now_ms, std::string reason) {
  r.state = "halted";
  r.reason = reason;
  if (r.current_wave < r.waves.size()) {
    r.waves[r.current_wave].gate = "failed";
    r.waves[r.current_wave].detail = reason;
  }
  Withdraw(r, now_ms);
  AddHistory(r, now_ms, "halted", "", std::move(reason));
}

// The site statuses from what the hub learnt; true when one changed.
bool UpdateSites(Rollout& r, const std::map<std::string, SiteObservation>& seen, int64_t now_ms) {
  bool changed = false;
  for (RolloutSite& s : r.sites) {
    const bool open = s.wave < r.waves.size() && r.waves[s.wave].opened_ms != 0;
    auto it = seen.find(s.site_id);
    if (it == seen.end()) continue;
    const SiteObservation& o = it->second;
    std::string status = s.status;
    std::string reason = s.reason;
    if (o.rolled_back) {
      status = "rolled_back";
    } else if (o.installed) {
      status = "installed";
      reason.clear();
    } else if (o.failed) {
      status = "failed";
      reason = o.reason;
    } else if (open && status == "pending") {
      status = "offered";
    }
    if (o.released) {
      s.requests = o.released->requests();
      s.error_rate = Rate(o.released->failed, o.released->requests());
      s.accuracy = Accuracy(*o.released, r.plan);
    }
    if (status != s.status || reason != s.reason) {
      s.status = std::move(status);
      s.reason = std::move(reason);
      s.updated_ms = now_ms;
      changed = true;
    }
  }
  return changed;
}

// The health gate of wave `i` once soaked: an empty string when it passes, "" with
// `waiting` set when a site has too little traffic, else why it fails.
std::string JudgeWave(const Rollout& r, size_t i, bool& waiting, std::string& detail) {
  waiting = false;
  for (const RolloutSite& s : r.sites) {
    if (s.wave != i) continue;
    if (s.requests < r.plan.min_requests) {
      waiting = true;
      detail = s.site_id + " answered " + std::to_string(s.requests) + " of " +
               std::to_string(r.plan.min_requests) + " requests with the new version";
      return {};
    }
    const double base = s.baseline_error_rate.value_or(0.0);
    const double now = s.error_rate.value_or(0.0);
    if (now > base + r.plan.max_error_rate_increase + 1e-12) {
      return s.site_id + ": error rate " + Percent(now) + " is above " + Percent(base) +
             " before by more than " + Percent(r.plan.max_error_rate_increase);
    }
    if (s.accuracy && s.baseline_accuracy &&
        *s.accuracy < *s.baseline_accuracy - r.plan.max_accuracy_drop - 1e-12) {
      return s.site_id + ": accuracy " + Percent(*s.accuracy) + " is below " +
             Percent(*s.baseline_accuracy) + " before by more than " +
             Percent(r.plan.max_accuracy_drop);
    }
  }
  return {};
}

}  // namespace

Status ValidateRolloutPlan(const RolloutPlan& p) {
  auto bad = [](const std::string& what) {
    return InvalidArgumentError("release.rollout." + what);
  };
  std::set<std::string> seen;
  for (const std::string& site : p.canary) {
    if (!SiteId::IsValid(site)) return bad("canary: \"" + site.substr(0, 64) + "\" is no site id");
    if (!seen.insert(site).second) return bad("canary: " + site + " is named twice");
  }
  if (p.canary.size() > kMaxRolloutSites) return bad("canary: too many sites");
  if (p.percent.size() + 2 > kMaxRolloutWaves) {
    return bad("percent: at most " + std::to_string(kMaxRolloutWaves - 2) + " waves");
  }
  int last = 0;
  for (int v : p.percent) {
    if (v < 1 || v > 99 || v <= last) return bad("percent: ascending values in 1..99");
    last = v;
  }
  if (p.soak_s < 0 || p.soak_s > 30 * 86400) return bad("soak_s must be 0..2592000");
  if (!(p.max_error_rate_increase >= 0 && p.max_error_rate_increase <= 1)) {
    return bad("max_error_rate_increase must be 0..1");
  }
  if (!(p.max_accuracy_drop >= 0 && p.max_accuracy_drop <= 1)) {
    return bad("max_accuracy_drop must be 0..1");
  }
  if (p.min_requests < 0 || p.min_requests > 1'000'000'000) {
    return bad("min_requests must be 0..1e9");
  }
  if (p.min_labels < 0 || p.min_labels > 1'000'000'000) return bad("min_labels must be 0..1e9");
  return Status::Ok();
}

std::string EncodeRollout(const Rollout& r) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Key("v");
  w.Int(1);
  w.Key("model");
  w.String(r.model);
  w.Key("model_version");
  w.Int(r.model_version);
  w.Key("bundle_version");
  w.Uint(r.bundle_version);
  w.Key("tenant");
  w.String(r.tenant);
  w.Key("state");
  w.String(r.state);
  w.Key("reason");
  OptionalString(w, r.reason);
  w.Key("current_wave");
  w.Uint(r.current_wave);
  w.Key("created_ms");
  w.Int(r.created_ms);
  w.Key("updated_ms");
  w.Int(r.updated_ms);
  w.Key("plan");
  w.BeginObject();
  w.Key("canary");
  w.BeginArray();
  for (const std::string& s : r.plan.canary) w.String(s);
  w.EndArray();
  w.Key("percent");
  w.BeginArray();
  for (int p : r.plan.percent) w.Int(p);
  w.EndArray();
  w.Key("soak_s");
  w.Int(r.plan.soak_s);
  w.Key("max_error_rate_increase");
  w.Double(r.plan.max_error_rate_increase);
  w.Key("max_accuracy_drop");
  w.Double(r.plan.max_accuracy_drop);
  w.Key("min_requests");
  w.Int(r.plan.min_requests);
  w.Key("min_labels");
  w.Int(r.plan.min_labels);
  w.EndObject();
  w.Key("waves");
  w.BeginArray();
  for (size_t i = 0; i < r.waves.size(); ++i) {
    const RolloutWave& wave = r.waves[i];
    w.BeginObject();
    w.Key("index");
    w.Uint(i);
    w.Key("name");
    w.String(wave.name);
    w.Key("sites");
    w.BeginArray();
    for (const std::string& s : wave.sites) w.String(s);
    w.EndArray();
    w.Key("opened_ms");
    OptionalInt(w, wave.opened_ms, 0);
    w.Key("installed_ms");
    OptionalInt(w, wave.installed_ms, 0);
    w.Key("passed_ms");
    OptionalInt(w, wave.passed_ms, 0);
    w.Key("gate");
    w.String(wave.gate);
    w.Key("detail");
    OptionalString(w, wave.detail);
    w.EndObject();
  }
  w.EndArray();
  w.Key("sites");
  w.BeginArray();
  for (const RolloutSite& s : r.sites) {
    w.BeginObject();
    w.Key("site_id");
    w.String(s.site_id);
    w.Key("wave");
    w.Uint(s.wave);
    w.Key("status");
    w.String(s.status);
    w.Key("reason");
    OptionalString(w, s.reason);
    w.Key("updated_ms");
    OptionalInt(w, s.updated_ms, 0);
    w.Key("requests");
    w.Int(s.requests);
    w.Key("error_rate");
    OptionalDouble(w, s.error_rate);
    w.Key("baseline_error_rate");
    OptionalDouble(w, s.baseline_error_rate);
    w.Key("accuracy");
    OptionalDouble(w, s.accuracy);
    w.Key("baseline_accuracy");
    OptionalDouble(w, s.baseline_accuracy);
    w.EndObject();
  }
  w.EndArray();
  w.Key("history");
  w.BeginArray();
  for (const RolloutEvent& e : r.history) {
    w.BeginObject();
    w.Key("time_ms");
    w.Int(e.time_ms);
    w.Key("action");
    w.String(e.action);
    w.Key("operator");
    OptionalString(w, e.operator_name);
    w.Key("detail");
    OptionalString(w, e.detail);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return out;
}

Result<Rollout> DecodeRollout(std::string_view text) {
  json::Parser parser;
  OUTPOST_ASSIGN_OR_RETURN(json::Value root, parser.Parse(text));
  auto bad = [](std::string_view member) {
    return DataLossError("a rollout document whose " + std::string(member) + " is malformed");
  };
  if (!root.is_object() || root["v"].GetInt64().value_or(0) != 1) return bad("v");
  auto str = [](const json::Value& v) {
    return std::string(v.is_string() ? *v.GetString() : std::string_view());
  };
  auto optional_double = [](const json::Value& v) -> std::optional<double> {
    if (!v.is_number()) return std::nullopt;
    return v.GetDouble().value_or(0);
  };
  Rollout r;
  r.model = str(root["model"]);
  r.model_version = root["model_version"].GetInt64().value_or(0);
  r.bundle_version = root["bundle_version"].GetUint64().value_or(0);
  r.tenant = str(root["tenant"]);
  r.state = str(root["state"]);
  r.reason = str(root["reason"]);
  r.current_wave = root["current_wave"].GetUint64().value_or(0);
  r.created_ms = root["created_ms"].GetInt64().value_or(0);
  r.updated_ms = root["updated_ms"].GetInt64().value_or(0);
  if (r.model.empty() || r.model_version < 1 || r.bundle_version == 0) return bad("model");
  static const std::set<std::string, std::less<>> kStates = {"rolling", "paused", "complete",
                                                             "halted", "aborted"};
  if (!kStates.contains(r.state)) return bad("state");
  json::Value plan = root["plan"];
  for (json::Value s : plan["canary"].Items()) r.plan.canary.push_back(str(s));
  for (json::Value p : plan["percent"].Items()) {
    r.plan.percent.push_back(static_cast<int>(p.GetInt64().value_or(0)));
  }
  r.plan.soak_s = plan["soak_s"].GetInt64().value_or(0);
  r.plan.max_error_rate_increase = plan["max_error_rate_increase"].GetDouble().value_or(0);
  r.plan.max_accuracy_drop = plan["max_accuracy_drop"].GetDouble().value_or(0);
  r.plan.min_requests = plan["min_requests"].GetInt64().value_or(0);
  r.plan.min_labels = plan["min_labels"].GetInt64().value_or(0);
  for (json::Value wave : root["waves"].Items()) {
    RolloutWave w;
    w.name = str(wave["name"]);
    for (json::Value s : wave["sites"].Items()) w.sites.push_back(str(s));
    w.opened_ms = wave["opened_ms"].GetInt64().value_or(0);
    w.installed_ms = wave["installed_ms"].GetInt64().value_or(0);
    w.passed_ms = wave["passed_ms"].GetInt64().value_or(0);
    w.gate = str(wave["gate"]);
    w.detail = str(wave["detail"]);
    r.waves.push_back(std::move(w));
  }
  if (r.waves.empty() || r.waves.size() > kMaxRolloutWaves || r.current_wave >= r.waves.size()) {
    return bad("waves");
  }
  for (json::Value site : root["sites"].Items()) {
    RolloutSite s;
    s.site_id = str(site["site_id"]);
    s.wave = site["wave"].GetUint64().value_or(0);
    s.status = str(site["status"]);
    s.reason = str(site["reason"]);
    s.updated_ms = site["updated_ms"].GetInt64().value_or(0);
    s.requests = site["requests"].GetInt64().value_or(0);
    s.error_rate = optional_double(site["error_rate"]);
    s.baseline_error_rate = optional_double(site["baseline_error_rate"]);
    s.accuracy = optional_double(site["accuracy"]);
    s.baseline_accuracy = optional_double(site["baseline_accuracy"]);
    if (s.site_id.empty() || s.wave >= r.waves.size()) return bad("sites");
    r.sites.push_back(std::move(s));
  }
  for (json::Value e : root["history"].Items()) {
    r.history.push_back(RolloutEvent{.time_ms = e["time_ms"].GetInt64().value_or(0),
                                     .action = str(e["action"]),
                                     .operator_name = str(e["operator"]),
                                     .detail = str(e["detail"])});
  }
  return r;
}

Rollout NewRollout(std::string tenant, std::string model, int64_t model_version,
                   uint64_t bundle_version, const RolloutPlan& plan,
                   const std::vector<std::string>& sites, int64_t now_ms) {
  Rollout r;
  r.tenant = std::move(tenant);
  r.model = std::move(model);
  r.model_version = model_version;
  r.bundle_version = bundle_version;
  r.plan = plan;
  r.created_ms = now_ms;
  std::set<std::string> all(sites.begin(), sites.end());  // sorted, each once
  while (all.size() > kMaxRolloutSites) all.erase(std::prev(all.end()));
  // The canary wave: the plan's sites the bundle is meant for, in the plan's order.
  RolloutWave canary{.name = "canary"};
  for (const std::string& s : plan.canary) {
    if (all.erase(s) > 0) canary.sites.push_back(s);
  }
  // The rest, in an order that differs from release to release.
  std::vector<std::pair<std::string, std::string>> keyed;
  for (const std::string& s : all) {
    keyed.emplace_back(crypto::Sha256Hex(r.model + "/" + std::to_string(model_version) + "/" + s),
                       s);
  }
  std::sort(keyed.begin(), keyed.end());
  std::vector<RolloutWave> waves;
  if (!canary.sites.empty()) waves.push_back(std::move(canary));
  size_t drawn = 0;
  for (int p : plan.percent) {
    const size_t upto = (keyed.size() * static_cast<size_t>(p) + 99) / 100;
    RolloutWave w{.name = std::to_string(p) + "%"};
    for (; drawn < upto && drawn < keyed.size(); ++drawn) w.sites.push_back(keyed[drawn].second);
    if (!w.sites.empty()) waves.push_back(std::move(w));
  }
  RolloutWave last{.name = "all"};
  for (; drawn < keyed.size(); ++drawn) last.sites.push_back(keyed[drawn].second);
  // The last wave is kept even when empty: it also takes the sites the bundle is meant for
  // that were not drawn (a site added to a group later).
  waves.push_back(std::move(last));
  r.waves = std::move(waves);
  for (size_t i = 0; i < r.waves.size(); ++i) {
    for (const std::string& s : r.waves[i].sites) {
      r.sites.push_back(RolloutSite{.site_id = s, .wave = i});
    }
  }
  AddHistory(
      r, now_ms, "created", "",
      std::to_string(r.waves.size()) + " waves, " + std::to_string(r.sites.size()) + " sites");
  OpenWave(r, 0, {}, now_ms, "");
  return r;
}

bool AdvanceRollout(Rollout& r, const std::map<std::string, SiteObservation>& seen,
                    int64_t now_ms) {
  bool changed = UpdateSites(r, seen, now_ms);
  if (r.state != "rolling" && r.state != "paused") return changed;
  // A failed site in an opened wave halts the rollout, paused or not.
  for (const RolloutSite& s : r.sites) {
    if (s.status == "failed" && r.waves[s.wave].opened_ms != 0) {
      Halt(r, now_ms,
           s.site_id + ": its install failed" + (s.reason.empty() ? "" : " (" + s.reason + ")"));
      return true;
    }
  }
  if (r.state != "rolling") return changed;
  while (true) {
    RolloutWave& w = r.waves[r.current_wave];
    if (w.opened_ms == 0) {
      OpenWave(r, r.current_wave, seen, now_ms, "");
      changed = true;
    }
    size_t installed = 0, total = 0;
    for (const RolloutSite& s : r.sites) {
      if (s.wave != r.current_wave) continue;
      ++total;
      if (s.status == "installed") ++installed;
    }
    auto set_gate = [&](std::string gate, std::string detail) {
      if (w.gate != gate || w.detail != detail) {
        w.gate = std::move(gate);
        w.detail = std::move(detail);
        changed = true;
      }
    };
    if (installed < total) {
      set_gate("installing",
               std::to_string(installed) + " of " + std::to_string(total) + " installed");
      return changed;
    }
    if (w.installed_ms == 0) {
      w.installed_ms = now_ms;
      changed = true;
    }
    if (w.gate != "skipped") {
      const int64_t soaked_ms = w.installed_ms + r.plan.soak_s * 1000;
      if (now_ms < soaked_ms) {
        set_gate("soaking", "until " + std::to_string(soaked_ms));
        return changed;
      }
      bool waiting = false;
      std::string detail;
      std::string failure = JudgeWave(r, r.current_wave, waiting, detail);
      if (!failure.empty()) {
        Halt(r, now_ms, std::move(failure));
        return true;
      }
      if (waiting) {
        set_gate("waiting_for_traffic", std::move(detail));
        return changed;
      }
      w.gate = "passed";
      w.detail.clear();
    }
    w.passed_ms = now_ms;
    AddHistory(r, now_ms, "gate_passed", "", "wave " + std::to_string(r.current_wave));
    changed = true;
    if (r.current_wave + 1 == r.waves.size()) {
      r.state = "complete";
      AddHistory(r, now_ms, "completed", "", std::to_string(total) + " sites in the last wave");
      return true;
    }
    ++r.current_wave;
  }
}

Status ApplyRolloutAction(Rollout& r, std::string_view action, std::string_view who,
                          int64_t now_ms) {
  auto refuse = [&r](std::string_view what) {
    return ErrorWithReason(StatusCode::kFailedPrecondition, "rollout_finished",
                           "cannot " + std::string(what) + " a rollout that is " + r.state);
  };
  if (action == "pause") {
    if (r.state == "paused") return Status::Ok();
    if (r.state != "rolling") return refuse(action);
    r.state = "paused";
  } else if (action == "resume") {
    if (r.state == "rolling") return Status::Ok();
    if (r.state != "paused") return refuse(action);
    r.state = "rolling";
  } else if (action == "abort") {
    if (r.Finished()) return refuse(action);
    r.state = "aborted";
    r.reason = "aborted by " + std::string(who);
    Withdraw(r, now_ms);
  } else if (action == "promote") {
    if (r.state != "rolling" && r.state != "paused") return refuse(action);
    r.state = "rolling";
    for (size_t i = r.current_wave; i < r.waves.size(); ++i) {
      OpenWave(r, i, {}, now_ms, ", promoted");
      if (i + 1 < r.waves.size()) {
        r.waves[i].gate = "skipped";
        r.waves[i].detail = "promoted by " + std::string(who);
        r.waves[i].passed_ms = now_ms;
      }
    }
    r.current_wave = r.waves.size() - 1;
  } else {
    return ErrorWithReason(StatusCode::kInvalidArgument, "unknown_action",
                           "a rollout takes pause, resume, abort or promote");
  }
  AddHistory(r, now_ms, std::string(action), std::string(who), {});
  return Status::Ok();
}

RolloutOffer OfferFor(const Rollout& r, std::string_view site_id) {
  if (r.Finished()) return RolloutOffer::kRollBack;
  size_t wave = r.waves.size() - 1;  // a site not drawn is in the last wave
  for (const RolloutSite& s : r.sites) {
    if (s.site_id == site_id) {
      wave = s.wave;
      break;
    }
  }
  return r.waves[wave].opened_ms != 0 ? RolloutOffer::kOffer : RolloutOffer::kWithhold;
}

Status StartRollout(Store& store, const std::string& tenant, const std::string& model,
                    int64_t model_version, uint64_t bundle_version, const RolloutPlan& plan,
                    const std::vector<std::string>& sites, int64_t now_ms) {
  Rollout r = NewRollout(tenant, model, model_version, bundle_version, plan, sites, now_ms);
  RolloutRow row{.model = model,
                 .model_version = model_version,
                 .tenant = tenant,
                 .doc = EncodeRollout(r),
                 .created_ms = now_ms,
                 .updated_ms = now_ms};
  return store.PutRollout(row, kAnyRolloutRevision).status();
}

// ---------------------------------------------------------------------------------------
// The controller.

struct RolloutController::Impl {
  Store& store;
  Options options;
  Clock& clock;

  std::mutex mu;  // guards stopping, cache, cache_ms
  std::condition_variable cv;
  bool stopping = false;
  std::thread thread;
  // What each rollout's bundle events said so far, so that a pass reads only the events
  // that arrived since the last (the record cursor meets each once). Used by Tick only,
  // under tick_mu; a rollout no longer advanced is dropped.
  struct EventScan {
    uint64_t bundle_version = 0;
    int64_t after_id = 0;
    std::map<std::string, SiteObservation> seen;  // the events' part of each site's
    std::set<std::string> installed_ours;
  };
  std::mutex tick_mu;
  std::map<std::pair<std::string, int64_t>, EventScan> scans;
  // (model, model_version) -> the rollout's document, read at cache_ms (steady clock).
  std::map<std::pair<std::string, int64_t>, Rollout> cache;
  std::chrono::steady_clock::time_point cache_time{};
  bool cache_valid = false;

  Impl(Store& s, Options o)
      : store(s), options(std::move(o)), clock(options.clock ? *options.clock : SystemClock()) {}

  int64_t Now() const { return UnixMillis(clock.Now()); }

  void Loop() {
    while (true) {
      {
        std::unique_lock<std::mutex> lock(mu);
        if (cv.wait_for(lock, options.interval, [this] { return stopping; })) return;
      }
      if (options.lease != nullptr && !options.lease->Held()) continue;
      if (Status s = Tick(); !s.ok()) {
        OUTPOST_LOG(kWarning) << "rollout pass failed" << Field("error", s);
      }
    }
  }

  Status Tick();
  Result<std::map<std::string, SiteObservation>> Observe(const Rollout& r);
  // Reads the bundle events of `r`'s sites that arrived since the last pass into `scan`.
  Status ScanEvents(const Rollout& r, EventScan& scan, json::Parser& parser);
  HubResponse Handle(const HubRequest& request);
  HubResponse Act(const HubRequest& request, const std::string& model, int64_t version,
                  std::string_view action);
  Result<std::optional<Rollout>> Load(const std::string& model, int64_t version);
};

Result<std::optional<Rollout>> RolloutController::Impl::Load(const std::string& model,
                                                             int64_t version) {
  OUTPOST_ASSIGN_OR_RETURN(std::optional<RolloutRow> row, store.GetRollout(model, version));
  if (!row) return std::optional<Rollout>();
  OUTPOST_ASSIGN_OR_RETURN(Rollout r, DecodeRollout(row->doc));
  r.revision = row->revision;
  return std::optional<Rollout>(std::move(r));
}

namespace {

// Whether a failed install's reason is the bundle's or the model's (a refusal, HEALTH_CHECK),
// which halts a rollout, rather than the site's (a full disk, an I/O error), which the
// site's puller retries at its next round.
bool IsBundleReason(std::string_view reason) {
  for (int r = static_cast<int>(bundle::Reason::kIo) + 1;
       r <= static_cast<int>(bundle::Reason::kHealthCheck); ++r) {
    if (bundle::ReasonName(static_cast<bundle::Reason>(r)) == reason) return true;
  }
  return false;
}

// The counters of `model`'s versions in a node's models_json (sync/FORMAT.md section 2):
// the released version's, and the others' it serves.
void ReadCounters(json::Parser& parser, const std::string& models_json, const std::string& model,
                  int64_t released, SiteObservation& o, uint64_t bundle_version) {
  Result<json::Value> models = parser.Parse(models_json);
  if (!models.ok() || !models->is_array()) return;
  for (json::Value entry : models->Items()) {
    if (entry["name"].GetString().value_or("") != model) continue;
    if (entry["bundle_version"].GetUint64().value_or(0) >= bundle_version) o.installed = true;
    VersionCounters c{.ok = entry["requests_ok"].GetInt64().value_or(0),
                      .failed = entry["requests_failed"].GetInt64().value_or(0),
                      .labelled = entry["labelled"].GetInt64().value_or(0),
                      .correct = entry["correct"].GetInt64().value_or(0)};
    const int64_t version = entry["version"].GetInt64().value_or(0);
    std::optional<VersionCounters>& into = version == released ? o.released : o.serving;
    if (version != released && entry["state"].GetString().value_or("") != "READY") continue;
    if (!into) into = VersionCounters{};
    into->ok += c.ok;
    into->failed += c.failed;
    into->labelled += c.labelled;
    into->correct += c.correct;
  }
}

}  // namespace

Status RolloutController::Impl::ScanEvents(const Rollout& r, EventScan& scan,
                                           json::Parser& parser) {
  std::set<std::string> members;
  for (const RolloutSite& s : r.sites) members.insert(s.site_id);
  // The tenant's bundle events since the rollout began (a day's margin for site clocks),
  // from the cursor on, in arrival order: the last word of each site is its newest.
  RecordQuery q{.tenant = r.tenant,
                .kind = std::string("event"),
                .stream = std::string("bundle"),
                .since_ms = r.created_ms - 86'400'000,
                .after_id = scan.after_id,
                .limit = 10'000};
  while (true) {
    OUTPOST_ASSIGN_OR_RETURN(std::vector<HubRecord> records, store.QueryRecords(q));
    for (const HubRecord& rec : records) {
      q.after_id = std::max(q.after_id, rec.id);
      if (!members.contains(rec.site_id)) continue;
      Result<json::Value> v = parser.Parse(rec.payload);
      if (!v.ok() || !v->is_object()) continue;
      const std::string_view event = (*v)["event"].GetString().value_or("");
      const uint64_t version = (*v)["bundle_version"].GetUint64().value_or(0);
      SiteObservation& o = scan.seen[rec.site_id];
      if (event == "bundle_installed" && version >= r.bundle_version) {
        o.installed = true;
        o.failed = false;
        o.rolled_back = false;
        scan.installed_ours.insert(rec.site_id);
      } else if ((event == "bundle_refused" ||
                  (event == "bundle_install_failed" &&
                   IsBundleReason((*v)["reason"].GetString().value_or("")))) &&
                 version == r.bundle_version && !o.installed) {
        o.failed = true;
        o.reason = std::string((*v)["reason"].GetString().value_or(""));
      } else if ((event == "bundle_rolled_back" || event == "bundle_installed") &&
                 version < r.bundle_version && scan.installed_ours.contains(rec.site_id)) {
        o.rolled_back = true;
        o.installed = false;
      }
    }
    if (records.size() < q.limit) break;
  }
  scan.after_id = q.after_id;
  return Status::Ok();
}

Result<std::map<std::string, SiteObservation>> RolloutController::Impl::Observe(const Rollout& r) {
  EventScan& scan = scans[{r.model, r.model_version}];
  if (scan.bundle_version != r.bundle_version) scan = EventScan{.bundle_version = r.bundle_version};
  json::Parser parser;
  OUTPOST_RETURN_IF_ERROR(ScanEvents(r, scan, parser));
  // The sites of opened waves (every site once the rollout is finished, for its roll backs):
  // what their events said, then their nodes' reports.
  std::map<std::string, SiteObservation> seen;
  std::vector<std::string> ids;
  for (const RolloutSite& s : r.sites) {
    if (r.waves[s.wave].opened_ms == 0 && !r.Finished()) continue;
    ids.push_back(s.site_id);
    auto it = scan.seen.find(s.site_id);
    if (it != scan.seen.end()) seen[s.site_id] = it->second;
  }
  for (const std::string& id : ids) {
    Result<SiteSummary> summary = store.GetSiteSummary(r.tenant, id);
    if (!summary.ok()) continue;  // a site not enrolled yet
    SiteObservation& o = seen[id];
    const bool rolled_back = o.rolled_back;
    for (const NodeStatus& node : summary->nodes) {
      ReadCounters(parser, node.models_json, r.model, r.model_version, o, r.bundle_version);
    }
    if (rolled_back) o.installed = false;
  }
  return seen;
}

Status RolloutController::Impl::Tick() {
  std::lock_guard<std::mutex> tick_lock(tick_mu);
  OUTPOST_ASSIGN_OR_RETURN(std::vector<RolloutRow> rows, store.ListRollouts(std::nullopt, 1000));
  const int64_t now = Now();
  std::set<std::pair<std::string, int64_t>> advanced;
  for (const RolloutRow& row : rows) {
    Result<Rollout> r = DecodeRollout(row.doc);
    if (!r.ok()) {
      OUTPOST_LOG(kWarning) << "a rollout document does not read" << Field("model", row.model)
                            << Field("version", row.model_version) << Field("error", r.status());
      continue;
    }
    if (r->state == "complete") continue;
    if (r->Finished() && now - r->updated_ms > kWatchFinishedMs) continue;
    r->revision = row.revision;
    advanced.emplace(row.model, row.model_version);
    Result<std::map<std::string, SiteObservation>> seen = Observe(*r);
    if (!seen.ok()) return seen.status();
    const std::string before = r->state;
    if (!AdvanceRollout(*r, *seen, now)) continue;
    RolloutRow next = row;
    next.doc = EncodeRollout(*r);
    next.updated_ms = now;
    Result<int64_t> put = store.PutRollout(next, row.revision);
    if (!put.ok()) {
      // Another hub or an operator came first: the next pass reads it again.
      if (put.status().code() != StatusCode::kFailedPrecondition) return put.status();
      continue;
    }
    if (r->state != before) {
      OUTPOST_LOG(kInfo) << "rollout " << r->state << Field("model", r->model)
                         << Field("version", r->model_version) << Field("reason", r->reason);
    }
    std::lock_guard<std::mutex> lock(mu);
    cache_valid = false;
  }
  std::erase_if(scans, [&advanced](const auto& entry) { return !advanced.contains(entry.first); });
  return Status::Ok();
}

RolloutController::RolloutController(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<RolloutController>> RolloutController::Start(Store& store, Options options) {
  if (options.interval < std::chrono::milliseconds(10)) {
    return InvalidArgumentError("a rollout pass interval is at least 10 ms");
  }
  const bool start = options.start_thread;
  auto controller = std::unique_ptr<RolloutController>(
      new RolloutController(std::make_unique<Impl>(store, std::move(options))));
  if (start) controller->impl_->thread = std::thread([c = controller.get()] { c->impl_->Loop(); });
  return controller;
}

RolloutController::~RolloutController() { Stop(); }

void RolloutController::Stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
}

Status RolloutController::Tick() { return impl_->Tick(); }

RolloutOffer RolloutController::Offer(std::string_view model, int64_t model_version,
                                      uint64_t bundle_version, std::string_view site_id) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  const auto now = std::chrono::steady_clock::now();
  if (!impl_->cache_valid || now - impl_->cache_time > std::chrono::seconds(1)) {
    lock.unlock();
    Result<std::vector<RolloutRow>> rows = impl_->store.ListRollouts(std::nullopt, 1000);
    std::map<std::pair<std::string, int64_t>, Rollout> fresh;
    if (rows.ok()) {
      for (const RolloutRow& row : *rows) {
        Result<Rollout> r = DecodeRollout(row.doc);
        if (r.ok()) fresh.emplace(std::make_pair(row.model, row.model_version), std::move(*r));
      }
    }
    lock.lock();
    if (!rows.ok()) {
      OUTPOST_LOG(kWarning) << "rollouts unreadable: new releases are withheld"
                            << Field("error", rows.status());
      // Keep what was known: rollbacks stay, nothing new is offered.
      auto it = impl_->cache.find({std::string(model), model_version});
      if (it != impl_->cache.end() && it->second.Finished()) return RolloutOffer::kRollBack;
      return RolloutOffer::kWithhold;
    }
    impl_->cache = std::move(fresh);
    impl_->cache_time = now;
    impl_->cache_valid = true;
  }
  auto it = impl_->cache.find({std::string(model), model_version});
  if (it == impl_->cache.end() || it->second.bundle_version != bundle_version) {
    // Not in the last read (a release made since, or one older than the newest 1,000): its
    // own row, read now. The release step writes the rollout before the bundle's file, so a
    // bundle that is listed has its rollout there.
    lock.unlock();
    Result<std::optional<RolloutRow>> row =
        impl_->store.GetRollout(std::string(model), model_version);
    if (!row.ok()) return RolloutOffer::kWithhold;
    // A bundle without a rollout (placed by hand, made before rollouts), or whose rollout is
    // of another bundle of the same version (released again since): offered as it stands.
    if (!*row) return RolloutOffer::kOffer;
    Result<Rollout> r = DecodeRollout((*row)->doc);
    if (!r.ok() || r->bundle_version != bundle_version) return RolloutOffer::kOffer;
    const RolloutOffer offer = OfferFor(*r, site_id);
    lock.lock();
    impl_->cache[{std::string(model), model_version}] = std::move(*r);
    return offer;
  }
  return OfferFor(it->second, site_id);
}

namespace {

void WriteSummary(JsonWriter& w, const Rollout& r) {
  size_t offered = 0, installed = 0, failed = 0, rolled_back = 0;
  for (const RolloutSite& s : r.sites) {
    if (s.status == "offered" || s.status == "withdrawn") ++offered;  // offered at some time
    if (s.status == "installed") ++installed;
    if (s.status == "failed") ++failed;
    if (s.status == "rolled_back") ++rolled_back;
  }
  w.Key("model");
  w.String(r.model);
  w.Key("model_version");
  w.Int(r.model_version);
  w.Key("bundle_version");
  w.Uint(r.bundle_version);
  w.Key("state");
  w.String(r.state);
  w.Key("reason");
  OptionalString(w, r.reason);
  w.Key("current_wave");
  w.Uint(r.current_wave);
  w.Key("waves");
  w.Uint(r.waves.size());
  w.Key("created_ms");
  w.Int(r.created_ms);
  w.Key("updated_ms");
  w.Int(r.updated_ms);
  w.Key("sites");
  w.BeginObject();
  w.Key("total");
  w.Uint(r.sites.size());
  w.Key("offered");
  w.Uint(offered + installed + failed + rolled_back);
  w.Key("installed");
  w.Uint(installed);
  w.Key("failed");
  w.Uint(failed);
  w.Key("rolled_back");
  w.Uint(rolled_back);
  w.EndObject();
}

HubResponse RolloutNotFound() {
  return ErrorResponse(404, "rollout_not_found", "no rollout of this version in your tenant");
}

}  // namespace

HubResponse RolloutController::Impl::Act(const HubRequest& request, const std::string& model,
                                         int64_t version, std::string_view action) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    Result<std::optional<Rollout>> loaded = Load(model, version);
    if (!loaded.ok()) return ErrorResponse(loaded.status());
    if (!*loaded || (*loaded)->tenant != request.caller.tenant) return RolloutNotFound();
    Rollout& r = **loaded;
    const int64_t now = Now();
    if (Status s = ApplyRolloutAction(r, action, request.caller.credential, now); !s.ok()) {
      return ErrorResponse(409, "rollout_finished", s.message());
    }
    RolloutRow row{.model = model,
                   .model_version = version,
                   .tenant = r.tenant,
                   .doc = EncodeRollout(r),
                   .created_ms = r.created_ms,
                   .updated_ms = now};
    Result<int64_t> put = store.PutRollout(row, r.revision);
    if (put.ok()) {
      {
        std::lock_guard<std::mutex> lock(mu);
        cache_valid = false;
      }
      OUTPOST_LOG(kInfo) << "rollout " << action << Field("model", model)
                         << Field("version", version)
                         << Field("operator", request.caller.credential) << Field("state", r.state);
      return JsonResponse(200, EncodeRollout(r));
    }
    if (put.status().code() != StatusCode::kFailedPrecondition) {
      return ErrorResponse(put.status());
    }
    // The controller or another operator wrote it meanwhile: act on what is there now.
  }
  return ErrorResponse(503, "rollout_busy", "the rollout kept changing; ask again");
}

HubResponse RolloutController::Impl::Handle(const HubRequest& request) {
  if (std::optional<HubResponse> refused = RefuseOperatorRequest(request)) return *refused;
  std::string_view path = TargetPath(request.target);
  if (!path.starts_with(kRolloutsPrefix)) return ErrorResponse(404, "not_found", "no such route");
  path.remove_prefix(kRolloutsPrefix.size());
  if (path.empty() || path == "/") {
    if (request.method != "GET") return MethodNotAllowed("GET");
    std::optional<std::string> model;
    const std::string_view target = request.target;
    if (size_t q = target.find("?model="); q != std::string_view::npos) {
      std::string_view m = target.substr(q + 7);
      m = m.substr(0, m.find('&'));
      if (!ModelName::IsValid(m)) {
        return ErrorResponse(400, "bad_model", "model= is a model name");
      }
      model = std::string(m);
    }
    Result<std::vector<RolloutRow>> rows =
        store.ListRollouts(request.caller.tenant, model ? 1000 : kListedRollouts);
    if (!rows.ok()) return ErrorResponse(503, "store_unavailable", rows.status().message());
    std::string body;
    JsonWriter w(body);
    w.BeginObject();
    w.Key("rollouts");
    w.BeginArray();
    size_t listed = 0;
    for (const RolloutRow& row : *rows) {
      if (model && row.model != *model) continue;
      if (++listed > kListedRollouts) break;
      Result<Rollout> r = DecodeRollout(row.doc);
      if (!r.ok()) continue;
      w.BeginObject();
      WriteSummary(w, *r);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    return JsonResponse(200, std::move(body));
  }
  if (path.front() != '/') return ErrorResponse(404, "not_found", "no such route");
  path.remove_prefix(1);
  const std::vector<std::string_view> seg = SplitPath(path);
  if (seg.size() < 2 || seg.size() > 3) return ErrorResponse(404, "not_found", "no such route");
  std::optional<int64_t> version = ParsePathVersion(seg[1]);
  if (!ModelName::IsValid(seg[0]) || !version) return RolloutNotFound();
  const std::string model(seg[0]);
  if (seg.size() == 2) {
    if (request.method != "GET") return MethodNotAllowed("GET");
    Result<std::optional<Rollout>> loaded = Load(model, *version);
    if (!loaded.ok()) return ErrorResponse(503, "store_unavailable", loaded.status().message());
    if (!*loaded || (*loaded)->tenant != request.caller.tenant) return RolloutNotFound();
    return JsonResponse(200, EncodeRollout(**loaded));
  }
  const std::string_view action = seg[2];
  if (action != "pause" && action != "resume" && action != "abort" && action != "promote") {
    return ErrorResponse(404, "not_found", "no such route");
  }
  if (request.method != "POST") return MethodNotAllowed("POST");
  // Only an action on a rollout the caller may see is audited (as the registry's).
  Result<std::optional<RolloutRow>> row = store.GetRollout(model, *version);
  if (!row.ok()) return ErrorResponse(503, "store_unavailable", row.status().message());
  if (!*row || (*row)->tenant != request.caller.tenant) return RolloutNotFound();
  HubResponse response = Act(request, model, *version, action);
  std::string outcome, detail;
  ReadOutcome(response, "state", "reason", outcome, detail);
  const std::string event = "rollout_" + std::string(action);
  AppendOperatorAudit(options.audit, {.time_ms = Now(),
                                      .event = event,
                                      .caller = &request.caller,
                                      .model = model,
                                      .version = *version,
                                      .status = response.status,
                                      .outcome = std::move(outcome),
                                      .detail = std::move(detail)});
  return response;
}

HubResponse RolloutController::Handle(const HubRequest& request) { return impl_->Handle(request); }

void RolloutController::RegisterRoutes(http::Router& router) {
  RegisterOperatorRoutes(router, kRolloutsPrefix,
                         [this](const HubRequest& request) { return Handle(request); });
}

}  // namespace outpost::hub
