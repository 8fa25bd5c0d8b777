#include "serve/shadow.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "base/file.h"
#include "base/json_writer.h"
#include "base/logging.h"
#include "serve/label_tally.h"
#include "serve/model_config.h"

namespace outpost::serve {
namespace {

double Ratio(uint64_t part, uint64_t whole) {
  return whole == 0 ? 0.0 : static_cast<double>(part) / static_cast<double>(whole);
}

// A Prometheus label value: backslash, quote and newline escaped.
std::string LabelValue(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

std::string_view ShadowOutcomeName(ShadowOutcome outcome) {
  switch (outcome) {
    case ShadowOutcome::kPending:
      return "pending";
    case ShadowOutcome::kPromoted:
      return "promoted";
    case ShadowOutcome::kDropped:
      return "dropped";
  }
  return "pending";
}

ShadowRunner::ShadowRunner(ShadowOptions options)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : &SystemClock()) {
  thread_ = std::thread([this] { Loop(); });
}

ShadowRunner::~ShadowRunner() { Stop(); }

void ShadowRunner::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  queue_.clear();
  due_.clear();
  idle_cv_.notify_all();
}

ShadowRunner::State& ShadowRunner::StateFor(const std::string& model, const ShadowConfig& config) {
  auto it = states_.find(model);
  if (it == states_.end() || it->second.config.version != config.version) {
    State fresh;
    fresh.config = config;
    fresh.counters.shadow_version = config.version;
    it = states_.insert_or_assign(model, std::move(fresh)).first;
  }
  return it->second;
}

void ShadowRunner::Offer(const ModelHandle& champion, std::string_view request_id,
                         std::span<const engine::Tensor> inputs,
                         std::span<const engine::Tensor> outputs) {
  if (champion.servable == nullptr || champion.servable->config == nullptr || outputs.empty()) {
    return;
  }
  const ShadowConfig& config = champion.servable->config->shadow;
  if (config.version <= 0 || config.version == champion.version) return;
  const std::string& model = champion.servable->name;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    State& state = StateFor(model, config);
    if (state.counters.outcome != ShadowOutcome::kPending || state.deciding) return;
    if (queue_.size() >= options_.max_queue) {
      ++state.counters.skipped;
      return;
    }
  }
  // Copied outside the lock; the queue may have filled meanwhile, which is checked again.
  Item item{.servable = champion.servable,
            .champion_version = champion.version,
            .request_id = request_id.size() <= options_.max_request_id_bytes
                              ? std::string(request_id)
                              : std::string(),
            .inputs = std::vector<engine::Tensor>(inputs.begin(), inputs.end()),
            .champion_scores = TensorScores(outputs[0])};
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    if (queue_.size() >= options_.max_queue) {
      ++StateFor(model, config).counters.skipped;
      return;
    }
    queue_.push_back(std::move(item));
  }
  cv_.notify_one();
}

void ShadowRunner::OnFeedback(std::string_view model, std::string_view request_id, double label,
                              const LabelSource& source) {
  if (!std::isfinite(label)) return;
  bool due = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = states_.find(model);
    if (it == states_.end()) return;
    State& state = it->second;
    if (state.counters.outcome != ShadowOutcome::kPending) return;
    auto tracked = state.tracked.find(std::string(request_id));
    if (tracked == state.tracked.end()) return;
    if (!source.trusted) {
      // Kept for a trusted label that may follow; never scored.
      ++state.counters.untrusted_labels;
      return;
    }
    if (state.label_credentials.insert(source.credential).second) {
      state.counters.label_credentials = state.label_credentials.size();
    }
    const double t = state.config.decision_threshold;
    const bool truth = label >= t;
    ++state.counters.labelled;
    if ((tracked->second.champion >= t) == truth) ++state.counters.champion_correct;
    if ((tracked->second.shadow >= t) == truth) ++state.counters.shadow_correct;
    // Counted once: a second label for the same request is ignored.
    state.tracked.erase(tracked);
    if (Due(state)) {
      state.deciding = true;
      due_.push_back(std::string(model));
      due = true;
    }
  }
  if (due) cv_.notify_one();
}

bool ShadowRunner::Due(const State& state) {
  const ShadowCounters& c = state.counters;
  return !state.deciding && c.outcome == ShadowOutcome::kPending &&
         c.compared >= static_cast<uint64_t>(state.config.promote.min_requests) &&
         c.labelled >= static_cast<uint64_t>(state.config.promote.min_labelled);
}

void ShadowRunner::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty() || !due_.empty(); });
    if (stop_) return;
    busy_ = true;
    if (!due_.empty()) {
      std::string model = std::move(due_.front());
      due_.erase(due_.begin());
      lock.unlock();
      Decide(model);
      lock.lock();
    } else {
      Item item = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      Compare(item);
      lock.lock();
    }
    busy_ = false;
    if (queue_.empty() && due_.empty()) idle_cv_.notify_all();
  }
}

void ShadowRunner::Compare(Item& item) {
  const ServableModel& servable = *item.servable;
  const ShadowConfig& config = servable.config->shadow;
  const engine::Model* shadow = nullptr;
  for (const auto& [v, model] : servable.ready) {
    if (v == config.version) shadow = model.get();
  }
  std::vector<double> shadow_scores;
  bool ok = false;
  if (shadow != nullptr) {
    std::vector<engine::Tensor> outputs;
    Status run = engine::ValidateInputs(shadow->signature(), item.inputs);
    if (run.ok()) run = shadow->Run(item.inputs, outputs);
    if (run.ok() && !outputs.empty()) {
      shadow_scores = TensorScores(outputs[0]);
      ok = !shadow_scores.empty() && shadow_scores.size() == item.champion_scores.size();
    }
    if (!run.ok()) {
      OUTPOST_LOG(kWarning) << "shadow version could not score a batch"
                            << Field("model", servable.name) << Field("version", config.version)
                            << Field("error", run);
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  State& state = StateFor(servable.name, config);
  if (state.counters.outcome != ShadowOutcome::kPending) return;
  if (!ok) {
    ++state.counters.failed;
    return;
  }
  const double t = config.decision_threshold;
  uint64_t agreed = 0;
  for (size_t i = 0; i < shadow_scores.size(); ++i) {
    const double c = item.champion_scores[i], s = shadow_scores[i];
    if ((c >= t) == (s >= t) || std::fabs(c - s) <= config.tolerance) ++agreed;
  }
  state.counters.compared += shadow_scores.size();
  state.counters.agreed += agreed;
  state.counters.champion_version = item.champion_version;
  if (!item.request_id.empty() && options_.max_tracked_requests > 0) {
    auto [it, inserted] = state.tracked.insert_or_assign(
        item.request_id, Tracked{item.champion_scores[0], shadow_scores[0]});
    if (inserted) {
      state.order.push_back(item.request_id);
      while (state.order.size() > options_.max_tracked_requests) {
        state.tracked.erase(state.order.front());
        state.order.pop_front();
      }
    }
  }
  if (Due(state)) {
    state.deciding = true;
    due_.push_back(servable.name);
  }
}

namespace {

// Rewrites `model`'s config.yaml to name `winner` alone, without its shadow section, and
// reloads the model. FailedPrecondition when the repository has no folder or the config no
// longer names `shadow_version`; otherwise the file system's or the reload's error.
Status PersistOutcome(ModelRepository& repository, const std::string& model, int64_t shadow_version,
                      int64_t winner) {
  const std::string& root = repository.options().root;
  if (root.empty()) return FailedPreconditionError("the repository has no folder to rewrite");
  const std::string path = JoinPath(JoinPath(root, model), "config.yaml");
  OUTPOST_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  Result<ModelConfig> current = ParseModelConfig(text, model);
  if (!current.ok() || current->shadow.version != shadow_version) {
    return FailedPreconditionError("config.yaml no longer names shadow version " +
                                   std::to_string(shadow_version));
  }
  OUTPOST_ASSIGN_OR_RETURN(std::string rewritten, ConfigAfterShadow(text, model, {winner}));
  OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(path, rewritten));
  return repository.Load(model);
}

}  // namespace

void ShadowRunner::Decide(const std::string& model) {
  ShadowCounters c;
  ShadowRule rule;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = states_.find(model);
    if (it == states_.end()) return;
    c = it->second.counters;
    rule = it->second.config.promote;
  }
  const double agreement = Ratio(c.agreed, c.compared);
  const double champion_accuracy = Ratio(c.champion_correct, c.labelled);
  const double shadow_accuracy = Ratio(c.shadow_correct, c.labelled);
  const bool promote = agreement >= rule.min_agreement &&
                       shadow_accuracy - champion_accuracy >= rule.min_accuracy_gain;
  const int64_t winner = promote ? c.shadow_version : c.champion_version;

  // Durable first: config.yaml names the winner alone, then the model is reloaded.
  const Status persisted = PersistOutcome(*options_.repository, model, c.shadow_version, winner);
  if (!persisted.ok()) {
    OUTPOST_LOG(kError) << "shadow outcome not applied to the model repository"
                        << Field("model", model) << Field("error", persisted);
  }
  OUTPOST_LOG(kInfo) << (promote ? "shadow version promoted" : "shadow version dropped")
                     << Field("model", model) << Field("shadow_version", c.shadow_version)
                     << Field("champion_version", c.champion_version)
                     << Field("agreement", agreement) << Field("labelled", c.labelled)
                     << Field("label_credentials", c.label_credentials)
                     << Field("champion_accuracy", champion_accuracy)
                     << Field("shadow_accuracy", shadow_accuracy);

  std::string payload;
  JsonWriter w(payload);
  w.BeginObject();
  w.Key("v");
  w.Int(1);
  w.Key("kind");
  w.String("event");
  w.Key("model");
  w.String(model);
  w.Key("version");
  w.Int(winner);
  w.Key("time_ms");
  w.Int(UnixMillis(clock_->Now()));
  w.Key("event");
  w.String(promote ? "shadow_promoted" : "shadow_dropped");
  w.Key("shadow_version");
  w.Int(c.shadow_version);
  w.Key("champion_version");
  w.Int(c.champion_version);
  w.Key("compared");
  w.Uint(c.compared);
  w.Key("agreed");
  w.Uint(c.agreed);
  w.Key("agreement");
  w.Double(agreement);
  w.Key("labelled");
  w.Uint(c.labelled);
  w.Key("label_credentials");
  w.Uint(c.label_credentials);
  w.Key("untrusted_labels");
  w.Uint(c.untrusted_labels);
  w.Key("champion_accuracy");
  w.Double(champion_accuracy);
  w.Key("shadow_accuracy");
  w.Double(shadow_accuracy);
  w.Key("skipped");
  w.Uint(c.skipped);
  w.Key("failed");
  w.Uint(c.failed);
  w.Key("rule");
  w.BeginObject();
  w.Key("min_requests");
  w.Int(rule.min_requests);
  w.Key("min_agreement");
  w.Double(rule.min_agreement);
  w.Key("min_labelled");
  w.Int(rule.min_labelled);
  w.Key("min_accuracy_gain");
  w.Double(rule.min_accuracy_gain);
  w.EndObject();
  w.Key("persisted");
  w.Bool(persisted.ok());
  if (!persisted.ok()) {
    w.Key("error");
    w.String(persisted.ToString());
  }
  w.EndObject();
  if (options_.on_event) {
    Status sent = options_.on_event(model, std::move(payload));
    if (!sent.ok()) {
      OUTPOST_LOG(kError) << "shadow outcome event not stored" << Field("model", model)
                          << Field("error", sent);
    }
  }

  std::lock_guard<std::mutex> lock(mu_);
  auto it = states_.find(model);
  if (it != states_.end() && it->second.config.version == c.shadow_version) {
    it->second.counters.outcome = promote ? ShadowOutcome::kPromoted : ShadowOutcome::kDropped;
    it->second.deciding = false;
    it->second.tracked.clear();
    it->second.order.clear();
  }
}

std::optional<ShadowCounters> ShadowRunner::Counters(std::string_view model) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = states_.find(model);
  if (it == states_.end()) return std::nullopt;
  return it->second.counters;
}

void ShadowRunner::WaitIdle() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_cv_.wait(lock, [this] { return stop_ || (queue_.empty() && due_.empty() && !busy_); });
}

void ShadowRunner::WriteMetrics(std::string& out) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (states_.empty()) return;
  struct Metric {
    const char* name;
    const char* help;
    const char* type;
    uint64_t ShadowCounters::*field;
  };
  static constexpr Metric kMetrics[] = {
      {"outpost_shadow_compared_total", "Rows scored by both the champion and the shadow.",
       "counter", &ShadowCounters::compared},
      {"outpost_shadow_agreed_total", "Rows where the shadow agreed with the champion.", "counter",
       &ShadowCounters::agreed},
      {"outpost_shadow_skipped_total", "Batches the shadow did not score: its queue was full.",
       "counter", &ShadowCounters::skipped},
      {"outpost_shadow_failed_total", "Batches the shadow could not score.", "counter",
       &ShadowCounters::failed},
      {"outpost_shadow_labelled_total", "Compared requests that got a trusted numeric label.",
       "counter", &ShadowCounters::labelled},
      {"outpost_shadow_untrusted_labels_total",
       "Numeric labels ignored: not from an authenticated credential with the label role.",
       "counter", &ShadowCounters::untrusted_labels},
      {"outpost_shadow_champion_correct_total", "Labelled requests the champion got right.",
       "counter", &ShadowCounters::champion_correct},
      {"outpost_shadow_shadow_correct_total", "Labelled requests the shadow got right.", "counter",
       &ShadowCounters::shadow_correct},
  };
  auto labels = [](const std::string& model, const State& state) {
    return "{model=\"" + LabelValue(model) + "\",shadow_version=\"" +
           std::to_string(state.counters.shadow_version) + "\"}";
  };
  for (const Metric& m : kMetrics) {
    out += "# HELP ";
    out += m.name;
    out += ' ';
    out += m.help;
    out += "\n# TYPE ";
    out += m.name;
    out += ' ';
    out += m.type;
    out += '\n';
    for (const auto& [model, state] : states_) {
      out += m.name + labels(model, state) + ' ' + std::to_string(state.counters.*m.field) + '\n';
    }
  }
  out +=
      "# HELP outpost_shadow_state The shadow's outcome: 0 pending, 1 promoted, 2 dropped.\n"
      "# TYPE outpost_shadow_state gauge\n";
  for (const auto& [model, state] : states_) {
    out += "outpost_shadow_state" + labels(model, state) + ' ' +
           std::to_string(static_cast<int>(state.counters.outcome)) + '\n';
  }
}

}  // namespace outpost::serve
