#include "insight/evaluator.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>

#include "base/logging.h"

namespace outpost::insight {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr int64_t kMinuteMs = 60'000;
// While batches keep coming, the worker waits for the next ones this long at most instead of
// being woken for each: scoring threads then hand over a batch without a futex wake-up and
// the worker runs once per nap, not once per request (at concurrency 1 each wake-up cost the
// scoring thread a system call and the machine a context switch). A nap that finds nothing
// ends napping: the worker sleeps until a batch wakes it.
constexpr auto kWorkerNap = std::chrono::milliseconds(1);
// Batches waiting that wake a napping worker early.
constexpr size_t kWakeNappingAt = 64;
// Fractions are floored here before PSI's logarithm (FORMAT.md section 1).
constexpr double kPsiFloor = 1e-4;

// --- Reading tensors as doubles. ---

float HalfToFloat(uint16_t h) {
  const bool negative = (h & 0x8000) != 0;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ff;
  float v;
  if (exp == 0) {
    v = std::ldexp(static_cast<float>(mant), -24);
  } else if (exp == 31) {
    v = mant != 0 ? std::numeric_limits<float>::quiet_NaN()
                  : std::numeric_limits<float>::infinity();
  } else {
    v = std::ldexp(static_cast<float>(mant | 0x400), static_cast<int>(exp) - 25);
  }
  return negative ? -v : v;
}

float Bf16ToFloat(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

template <typename T>
void Convert(const engine::Tensor& t, std::vector<double>& out) {
  for (T v : t.values<T>()) out.push_back(static_cast<double>(v));
}

// Appends every element of a numeric tensor to `out` as a double; false for BYTES.
bool ToDoubles(const engine::Tensor& t, std::vector<double>& out) {
  out.clear();
  out.reserve(static_cast<size_t>(t.element_count()));
  using engine::DataType;
  switch (t.type()) {
    case DataType::kBool:
      Convert<uint8_t>(t, out);
      return true;
    case DataType::kUint8:
      Convert<uint8_t>(t, out);
      return true;
    case DataType::kUint16:
      Convert<uint16_t>(t, out);
      return true;
    case DataType::kUint32:
      Convert<uint32_t>(t, out);
      return true;
    case DataType::kUint64:
      Convert<uint64_t>(t, out);
      return true;
    case DataType::kInt8:
      Convert<int8_t>(t, out);
      return true;
    case DataType::kInt16:
      Convert<int16_t>(t, out);
      return true;
    case DataType::kInt32:
      Convert<int32_t>(t, out);
      return true;
    case DataType::kInt64:
      Convert<int64_t>(t, out);
      return true;
    case DataType::kFp32:
      Convert<float>(t, out);
      return true;
    case DataType::kFp64:
      Convert<double>(t, out);
      return true;
    case DataType::kFp16:
      for (uint16_t v : t.values<uint16_t>()) out.push_back(HalfToFloat(v));
      return true;
    case DataType::kBf16:
      for (uint16_t v : t.values<uint16_t>()) out.push_back(Bf16ToFloat(v));
      return true;
    case DataType::kBytes:
      return false;
  }
  return false;
}

// Rows and columns of a rank-1 or rank-2 tensor; false otherwise.
bool RowsCols(const engine::Tensor& t, int64_t& rows, int64_t& cols) {
  const auto& s = t.shape();
  if (s.size() == 1) {
    rows = s[0];
    cols = 1;
    return true;
  }
  if (s.size() == 2) {
    rows = s[0];
    cols = s[1];
    return true;
  }
  return false;
}

// --- Scores (FORMAT.md section 1). ---

double MaxProbability(const double* o, int64_t k) {
  if (k == 1) return std::isnan(o[0]) ? kNaN : std::max(o[0], 1 - o[0]);
  double best = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < k; ++i) {
    if (std::isnan(o[i])) return kNaN;
    best = std::max(best, o[i]);
  }
  return best;
}

double Margin(const double* o, int64_t k) {
  if (k == 1) return std::isnan(o[0]) ? kNaN : std::abs(2 * o[0] - 1);
  double top = -std::numeric_limits<double>::infinity();
  double second = top;
  for (int64_t i = 0; i < k; ++i) {
    if (std::isnan(o[i])) return kNaN;
    if (o[i] > top) {
      second = top;
      top = o[i];
    } else if (o[i] > second) {
      second = o[i];
    }
  }
  return top - second;
}

double Score(const ScoreSpec& s, const double* o, int64_t k, const double* x, int64_t cols) {
  switch (s.kind) {
    case ScoreKind::kValue:
      return s.column < k ? o[s.column] : kNaN;
    case ScoreKind::kMaxProbability:
      return MaxProbability(o, k);
    case ScoreKind::kMargin:
      return Margin(o, k);
    case ScoreKind::kReconstructionError: {
      if (k != cols || cols == 0) return kNaN;
      double sum = 0;
      for (int64_t i = 0; i < k; ++i) sum += (o[i] - x[i]) * (o[i] - x[i]);
      return sum / static_cast<double>(k);
    }
  }
  return kNaN;
}

size_t Bin(const std::vector<double>& edges, double v) {
  return static_cast<size_t>(std::upper_bound(edges.begin(), edges.end(), v) - edges.begin());
}

// --- JSON. ---

void AppendNumber(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}

void AppendInt(std::string& out, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}

void AppendString(std::string& out, std::string_view s) {
  out.push_back('"');
  AppendJsonEscaped(out, s);
  out.push_back('"');
}

void AppendDoubles(std::string& out, const double* v, size_t n) {
  out.push_back('[');
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out.push_back(',');
    AppendNumber(out, v[i]);
  }
  out.push_back(']');
}

// `{"v":1,"kind":...,"model":...,"version":...,"time_ms":...` without the closing brace.
std::string Header(std::string_view kind, std::string_view model, int64_t version,
                   int64_t time_ms) {
  std::string out = "{\"v\":1,\"kind\":";
  AppendString(out, kind);
  out += ",\"model\":";
  AppendString(out, model);
  out += ",\"version\":";
  AppendInt(out, version);
  out += ",\"time_ms\":";
  AppendInt(out, time_ms);
  return out;
}

std::string FeatureName(const RuleSet& rules, int64_t i) {
  if (i < static_cast<int64_t>(rules.features.size()))
    return rules.features[static_cast<size_t>(i)];
  return "f" + std::to_string(i);
}

// --- Per-model state. ---

struct FeatureWindow {
  std::vector<uint32_t> ring;  // bin of each reading, oldest at `next` once full
  size_t next = 0;
  size_t filled = 0;
  std::vector<uint32_t> counts;  // per bin, over the window
  bool raised = false;           // PSI is at or above the level since the last record
};

struct DriftState {
  uint64_t rows_seen = 0;
  std::vector<FeatureWindow> features;  // one per baseline entry
};

struct FeatureAgg {
  uint64_t count = 0;
  uint64_t missing = 0;
  double sum = 0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
};

struct Aggregate {
  int64_t minute_ms = -1;  // -1 = nothing counted yet
  uint64_t batches = 0;
  uint64_t rows = 0;
  uint64_t anomalies = 0;
  uint64_t hard_examples = 0;
  uint64_t samples = 0;
  uint64_t drifts = 0;
  uint64_t nan_scores = 0;
  std::vector<uint64_t> histogram;
  std::vector<FeatureAgg> features;
};

}  // namespace

struct Evaluator::Task {
  bool flush_due = false;  // a FlushDueAggregates request instead of a batch
  std::shared_ptr<const RuleSet> rules;
  std::string model;
  int64_t version = 0;
  std::string request_id;
  int64_t time_ms = 0;
  engine::Tensor input;
  engine::Tensor output;
};

struct Evaluator::ModelState {
  std::shared_ptr<const RuleSet> rules;
  std::vector<DriftState> drifts;  // one per rules->drifts entry
  Aggregate agg;

  explicit ModelState(std::shared_ptr<const RuleSet> r) : rules(std::move(r)) {
    for (const DriftRule& d : rules->drifts) {
      DriftState s;
      for (const FeatureBaseline& b : d.baseline) {
        FeatureWindow w;
        w.ring.assign(d.window, 0);
        w.counts.assign(b.fractions.size(), 0);
        s.features.push_back(std::move(w));
      }
      drifts.push_back(std::move(s));
    }
  }
};

Result<std::unique_ptr<Evaluator>> Evaluator::Create(EvaluatorOptions options) {
  if (options.outbox == nullptr) return InvalidArgumentError("insight evaluator needs an outbox");
  if (options.queue_capacity < 1) return InvalidArgumentError("queue_capacity must be at least 1");
  if (options.max_pending_records < 1) {
    return InvalidArgumentError("max_pending_records must be at least 1");
  }
  if (options.appenders < 1 || options.appenders > 64) {
    return InvalidArgumentError("appenders must be between 1 and 64");
  }
  std::unique_ptr<Evaluator> e(new Evaluator(std::move(options)));
  e->worker_ = std::thread([p = e.get()] { p->WorkerLoop(); });
  for (int i = 0; i < e->options_.appenders; ++i) {
    e->appenders_.emplace_back([p = e.get()] { p->AppenderLoop(); });
  }
  return e;
}

Evaluator::Evaluator(EvaluatorOptions options)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : &SystemClock()),
      rng_state_(options_.seed) {}

Evaluator::~Evaluator() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  worker_.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    appenders_stopping_ = true;
  }
  append_cv_.notify_all();
  for (std::thread& t : appenders_) t.join();
  // Every record handed to the outbox is answered before the completions' target goes.
  std::unique_lock<std::mutex> lock(mu_);
  done_cv_.wait(lock, [&] { return records_in_flight_ == 0; });
}

void Evaluator::OnScored(const ScoredBatch& batch) {
  if (batch.rules == nullptr || batch.signature == nullptr) return;
  const RuleSet& rules = *batch.rules;
  auto find = [](const std::vector<engine::TensorSpec>& specs, const std::string& name) -> int {
    if (name.empty()) return specs.empty() ? -1 : 0;
    for (size_t i = 0; i < specs.size(); ++i) {
      if (specs[i].name == name) return static_cast<int>(i);
    }
    return -1;
  };
  const int in = find(batch.signature->inputs, rules.input);
  const int out = find(batch.signature->outputs, rules.output);
  int64_t rows = 0;
  if (in >= 0 && static_cast<size_t>(in) < batch.inputs.size() &&
      !batch.inputs[static_cast<size_t>(in)].shape().empty()) {
    rows = batch.inputs[static_cast<size_t>(in)].shape()[0];
  }
  const int64_t time_ms = UnixMillis(clock_->Now());
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queued_batches_ >= options_.queue_capacity) {
      Drops& d = drops_[ModelKey(std::string(batch.model), batch.version)];
      ++d.batches;
      d.rows += static_cast<uint64_t>(rows);
      ++stats_.batches_dropped;
      stats_.rows_dropped += static_cast<uint64_t>(rows);
      work_cv_.notify_one();
      return;
    }
  }
  // Copied outside the lock; the queue may have filled meanwhile, which only lets it go
  // over its capacity by the number of scoring threads.
  auto task = std::make_unique<Task>();
  task->rules = batch.rules;
  task->model = std::string(batch.model);
  task->version = batch.version;
  task->request_id = std::string(batch.request_id);
  task->time_ms = time_ms;
  bool valid = in >= 0 && out >= 0 && static_cast<size_t>(in) < batch.inputs.size() &&
               static_cast<size_t>(out) < batch.outputs.size();
  if (valid) {
    task->input = batch.inputs[static_cast<size_t>(in)];
    task->output = batch.outputs[static_cast<size_t>(out)];
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!valid) {
      ++stats_.batches_invalid;
      return;
    }
    tasks_.push_back(std::move(task));
    ++queued_batches_;
    ++tasks_enqueued_;
    if (worker_napping_ && queued_batches_ < kWakeNappingAt) return;
  }
  work_cv_.notify_one();
}

void Evaluator::FlushDueAggregates() {
  auto task = std::make_unique<Task>();
  task->flush_due = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
    ++tasks_enqueued_;
  }
  work_cv_.notify_one();
}

void Evaluator::Drain() {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t target = tasks_enqueued_;
  done_cv_.wait(lock, [&] {
    return tasks_done_ >= target && !worker_busy_ && drops_.empty() && records_.empty() &&
           records_in_flight_ == 0;
  });
}

EvaluatorStats Evaluator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void Evaluator::WorkerLoop() {
  bool nap = false;  // the last wait found work: wait kWorkerNap at most next time
  for (;;) {
    std::unique_ptr<Task> task;
    bool report_drops = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto work = [&] { return stopping_ || !tasks_.empty() || !drops_.empty(); };
      if (!work()) {
        if (nap) {
          worker_napping_ = true;
          nap = work_cv_.wait_for(lock, kWorkerNap, work);
          worker_napping_ = false;
        }
        if (!nap) {
          work_cv_.wait(lock, work);  // until OnScored wakes it
          nap = true;
        }
      }
      if (!tasks_.empty()) {
        task = std::move(tasks_.front());
        tasks_.pop_front();
        if (!task->flush_due) --queued_batches_;
      } else if (!drops_.empty()) {
        report_drops = true;
      } else {
        break;  // stopping, and nothing is left
      }
      worker_busy_ = true;
    }
    if (task != nullptr) {
      if (task->flush_due) {
        FlushDue(UnixMillis(clock_->Now()));
      } else {
        Evaluate(*task);
      }
      ReportDrops();
    } else if (report_drops) {
      ReportDrops();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (task != nullptr) ++tasks_done_;
      worker_busy_ = false;
    }
    done_cv_.notify_all();
  }
  // Shutting down: every open aggregate is written.
  for (auto& [key, state] : states_) FlushAggregate(key, *state);
  ReportDrops();
  done_cv_.notify_all();
}

void Evaluator::AppenderLoop() {
  for (;;) {
    outbox::NewRecord record;
    {
      std::unique_lock<std::mutex> lock(mu_);
      append_cv_.wait(lock, [&] { return appenders_stopping_ || !records_.empty(); });
      if (records_.empty()) return;  // stopping, and nothing is left
      record = std::move(records_.front());
      records_.pop_front();
      ++records_in_flight_;
    }
    space_cv_.notify_one();
    const outbox::Kind kind = record.kind;
    std::string stream = record.stream;
    // Several records in flight: the outbox answers each once its group commit is on disk
    // (or refuses it), and waits here while too many are in flight.
    options_.outbox->AppendAsync(
        std::move(record), [this, kind, stream = std::move(stream)](Result<outbox::RecordKey> key) {
          Answered(kind, stream, key);
        });
  }
}

void Evaluator::Answered(outbox::Kind kind, const std::string& stream,
                         const Result<outbox::RecordKey>& key) {
  uint64_t failed = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (key.ok()) {
      ++stats_.records_appended;
    } else if (key.status().reason() == "storm_sampled_out") {
      ++stats_.records_sampled_out;
    } else {
      failed = ++stats_.records_failed;
    }
  }
  // A full or failed outbox refuses every record: the 1st, 2nd, 4th, 8th... are logged.
  if (failed != 0 && (failed & (failed - 1)) == 0) {
    OUTPOST_LOG(kWarning) << "insight record not stored" << Field("stream", stream)
                          << Field("kind", outbox::KindName(kind)) << Field("failed", failed)
                          << Field("status", key.status());
  }
  {
    // Last: once records_in_flight_ reaches 0 the destructor may return.
    std::lock_guard<std::mutex> lock(mu_);
    --records_in_flight_;
    done_cv_.notify_all();
  }
}

void Evaluator::Emit(outbox::Kind kind, const std::string& stream, std::string payload,
                     const std::string& rule) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    space_cv_.wait(lock, [&] { return records_.size() < options_.max_pending_records; });
    records_.push_back(outbox::NewRecord{
        .kind = kind, .stream = stream, .payload = std::move(payload), .rule = rule});
  }
  append_cv_.notify_one();
}

void Evaluator::ReportDrops() {
  std::map<ModelKey, Drops> drops;
  {
    std::lock_guard<std::mutex> lock(mu_);
    drops.swap(drops_);
  }
  for (const auto& [key, d] : drops) {
    std::string json = Header("event", key.first, key.second, UnixMillis(clock_->Now()));
    json += ",\"event\":\"insight_dropped\",\"batches\":";
    AppendInt(json, static_cast<int64_t>(d.batches));
    json += ",\"rows\":";
    AppendInt(json, static_cast<int64_t>(d.rows));
    json += "}";
    Emit(outbox::Kind::kEvent, key.first, std::move(json));
  }
}

void Evaluator::FlushDue(int64_t now_ms) {
  const int64_t minute = now_ms - now_ms % kMinuteMs;
  for (auto& [key, state] : states_) {
    if (state->agg.minute_ms >= 0 && state->agg.minute_ms < minute) FlushAggregate(key, *state);
  }
}

void Evaluator::FlushAggregate(const ModelKey& key, ModelState& state) {
  Aggregate& a = state.agg;
  if (a.minute_ms < 0 || !state.rules->aggregate.enabled) {
    a = Aggregate();
    return;
  }
  const RuleSet& rules = *state.rules;
  std::string json = Header("aggregate", key.first, key.second, a.minute_ms);
  auto field = [&json](std::string_view name, uint64_t v) {
    json += ",\"";
    json += name;
    json += "\":";
    AppendInt(json, static_cast<int64_t>(v));
  };
  field("minute_ms", static_cast<uint64_t>(a.minute_ms));
  field("batches", a.batches);
  field("rows", a.rows);
  field("anomalies", a.anomalies);
  field("hard_examples", a.hard_examples);
  field("samples", a.samples);
  field("drifts", a.drifts);
  field("nan_scores", a.nan_scores);
  json += ",\"score\":{\"name\":";
  AppendString(json, ScoreKindName(rules.aggregate.score.kind));
  json += ",\"edges\":";
  AppendDoubles(json, rules.aggregate.edges.data(), rules.aggregate.edges.size());
  json += ",\"counts\":[";
  for (size_t i = 0; i < a.histogram.size(); ++i) {
    if (i > 0) json.push_back(',');
    AppendInt(json, static_cast<int64_t>(a.histogram[i]));
  }
  json += "]},\"features\":{";
  for (size_t i = 0; i < a.features.size(); ++i) {
    const FeatureAgg& f = a.features[i];
    if (i > 0) json.push_back(',');
    AppendString(json, FeatureName(rules, static_cast<int64_t>(i)));
    json += ":{\"count\":";
    AppendInt(json, static_cast<int64_t>(f.count));
    json += ",\"missing\":";
    AppendInt(json, static_cast<int64_t>(f.missing));
    json += ",\"mean\":";
    AppendNumber(json, f.count > 0 ? f.sum / static_cast<double>(f.count) : kNaN);
    json += ",\"min\":";
    AppendNumber(json, f.count > 0 ? f.min : kNaN);
    json += ",\"max\":";
    AppendNumber(json, f.count > 0 ? f.max : kNaN);
    json += "}";
  }
  json += "}}";
  a = Aggregate();
  Emit(outbox::Kind::kAggregate, key.first, std::move(json));
}

namespace {

// Reads the batch's input and output as doubles (x: rows x cols, o: rows x k); the reason
// the rules cannot run on it, or empty when they can.
std::string_view CheckBatch(const RuleSet& rules, const engine::Tensor& input,
                            const engine::Tensor& output, int64_t& rows, int64_t& cols, int64_t& k,
                            std::vector<double>& x, std::vector<double>& o) {
  int64_t out_rows = 0;
  if (!RowsCols(input, rows, cols) || !ToDoubles(input, x)) {
    return "the rule input is not a numeric tensor of rank 1 or 2";
  }
  if (!RowsCols(output, out_rows, k) || !ToDoubles(output, o)) {
    return "the rule output is not a numeric tensor of rank 1 or 2";
  }
  if (out_rows != rows) return "the rule input and output have different row counts";
  if (rules.features_declared ? cols != static_cast<int64_t>(rules.features.size())
                              : cols < static_cast<int64_t>(rules.features.size())) {
    return "the rule input's column count does not match insight.features";
  }
  if (k < 1 || cols < 1) return "the rule input or output has no columns";
  return {};
}

// Counts one row's features and its aggregate score into the minute's aggregate.
void CountRow(Aggregate& agg, const RuleSet& rules, const double* xr, const double* orow, int64_t k,
              int64_t cols) {
  ++agg.rows;
  for (int64_t c = 0; c < cols; ++c) {
    FeatureAgg& f = agg.features[static_cast<size_t>(c)];
    if (std::isnan(xr[c])) {
      ++f.missing;
      continue;
    }
    ++f.count;
    f.sum += xr[c];
    f.min = std::min(f.min, xr[c]);
    f.max = std::max(f.max, xr[c]);
  }
  const double agg_score = Score(rules.aggregate.score, orow, k, xr, cols);
  if (std::isnan(agg_score)) {
    ++agg.nan_scores;
  } else {
    ++agg.histogram[Bin(rules.aggregate.edges, agg_score)];
  }
}

// splitmix64: the next uniform draw in [0, 1) from `state`.
double NextUniform(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

// Puts `bin` into the window's ring, the oldest reading leaving once it is full; true when
// the window is full.
bool PushReading(FeatureWindow& w, size_t window, uint32_t bin) {
  if (w.filled == window) {
    --w.counts[w.ring[w.next]];
  } else {
    ++w.filled;
  }
  w.ring[w.next] = bin;
  ++w.counts[bin];
  w.next = (w.next + 1) % window;
  return w.filled >= window;
}

// PSI of a full window against the baseline's fractions (FORMAT.md section 1).
double WindowPsi(const FeatureWindow& w, const FeatureBaseline& b, double n) {
  double psi = 0;
  for (size_t i = 0; i < w.counts.size(); ++i) {
    const double a = std::max(w.counts[i] / n, kPsiFloor);
    const double e = std::max(b.fractions[i], kPsiFloor);
    psi += (a - e) * std::log(a / e);
  }
  return psi;
}

}  // namespace

// One valid batch as the rules read it; references into Evaluate's locals and the task.
struct Evaluator::Batch {
  const Task& task;
  const RuleSet& rules;
  const std::vector<double>& x;  // rows x cols
  const std::vector<double>& o;  // rows x k
  int64_t cols;
  int64_t k;

  const double* input_row(int64_t r) const { return &x[static_cast<size_t>(r * cols)]; }
  const double* output_row(int64_t r) const { return &o[static_cast<size_t>(r * k)]; }

  // The record of a row rule (anomaly, hard example, sample) that matched row `r`.
  std::string RowRecord(std::string_view kind, const std::string& rule, int64_t r,
                        std::string_view score_name, double score, const FieldList& fields) const {
    std::string json = Header(kind, task.model, task.version, task.time_ms);
    json += ",\"rule\":";
    AppendString(json, rule);
    json += ",\"request_id\":";
    AppendString(json, task.request_id);
    json += ",\"row\":";
    AppendInt(json, r);
    json += ",\"score\":";
    AppendString(json, score_name);
    json += ",\"score_value\":";
    AppendNumber(json, score);
    json += ",\"output\":";
    AppendDoubles(json, output_row(r), static_cast<size_t>(k));
    json += ",\"inputs\":{";
    const double* xr = input_row(r);
    auto one = [&](int64_t c, bool first) {
      if (!first) json.push_back(',');
      AppendString(json, FeatureName(rules, c));
      json.push_back(':');
      AppendNumber(json, xr[c]);
    };
    if (fields.all) {
      for (int64_t c = 0; c < cols; ++c) one(c, c == 0);
    } else {
      for (size_t i = 0; i < fields.columns.size(); ++i) one(fields.columns[i], i == 0);
    }
    json += "}}";
    return json;
  }

  // The record of a drift rule whose PSI on one feature reached its level.
  std::string DriftRecord(const DriftRule& rule, const FeatureBaseline& b, const FeatureWindow& w,
                          uint64_t rows_seen, double psi, double n) const {
    std::string json = Header("drift", task.model, task.version, task.time_ms);
    json += ",\"rule\":";
    AppendString(json, rule.name);
    json += ",\"request_id\":";
    AppendString(json, task.request_id);
    json += ",\"feature\":";
    AppendString(json, FeatureName(rules, b.feature));
    json += ",\"psi\":";
    AppendNumber(json, psi);
    json += ",\"level\":";
    AppendNumber(json, rule.level);
    json += ",\"window\":";
    AppendInt(json, static_cast<int64_t>(rule.window));
    json += ",\"rows_seen\":";
    AppendInt(json, static_cast<int64_t>(rows_seen));
    json += ",\"edges\":";
    AppendDoubles(json, b.edges.data(), b.edges.size());
    json += ",\"baseline\":";
    AppendDoubles(json, b.fractions.data(), b.fractions.size());
    std::vector<double> observed;
    for (uint32_t c : w.counts) observed.push_back(c / n);
    json += ",\"observed\":";
    AppendDoubles(json, observed.data(), observed.size());
    json += "}";
    return json;
  }
};

Evaluator::ModelState& Evaluator::StateFor(const ModelKey& key, const Task& task) {
  std::unique_ptr<ModelState>& slot = states_[key];
  if (slot != nullptr && slot->rules != task.rules) {
    FlushAggregate(key, *slot);
    slot.reset();
  }
  if (slot == nullptr) slot = std::make_unique<ModelState>(task.rules);
  return *slot;
}

void Evaluator::CountBatch(const ModelKey& key, ModelState& state, int64_t time_ms, int64_t cols) {
  // The minute this batch counts in.
  const RuleSet& rules = *state.rules;
  Aggregate& agg = state.agg;
  const int64_t minute = time_ms - time_ms % kMinuteMs;
  if (agg.minute_ms >= 0 && minute > agg.minute_ms) FlushAggregate(key, state);
  if (agg.minute_ms < 0) {
    agg.minute_ms = minute;
    agg.histogram.assign(rules.aggregate.edges.size() + 1, 0);
  }
  if (agg.features.size() < static_cast<size_t>(cols))
    agg.features.resize(static_cast<size_t>(cols));
  ++agg.batches;
}

void Evaluator::EvaluateRow(const Batch& b, ModelState& state, int64_t r) {
  CountRow(state.agg, b.rules, b.input_row(r), b.output_row(r), b.k, b.cols);
  ApplyAnomalyRules(b, state, r);
  ApplyHardExampleRules(b, state, r);
  ApplySampleRules(b, state, r);
  ApplyDriftRules(b, state, r);
}

void Evaluator::ApplyAnomalyRules(const Batch& b, ModelState& state, int64_t r) {
  const double* xr = b.input_row(r);
  const double* orow = b.output_row(r);
  for (const AnomalyRule& rule : b.rules.anomalies) {
    const double s = Score(rule.score, orow, b.k, xr, b.cols);
    if (std::isnan(s)) continue;
    if ((rule.above && s > *rule.above) || (rule.below && s < *rule.below)) {
      ++state.agg.anomalies;
      Emit(outbox::Kind::kAnomaly, b.task.model,
           b.RowRecord("anomaly", rule.name, r, ScoreKindName(rule.score.kind), s, rule.fields),
           rule.name);
    }
  }
}

void Evaluator::ApplyHardExampleRules(const Batch& b, ModelState& state, int64_t r) {
  const double* orow = b.output_row(r);
  for (const HardExampleRule& rule : b.rules.hard_examples) {
    const double confidence = MaxProbability(orow, b.k);
    const double margin = Margin(orow, b.k);
    std::string_view which;
    double s = kNaN;
    if (rule.confidence_below && confidence < *rule.confidence_below) {
      which = "max_probability";
      s = confidence;
    } else if (rule.margin_below && margin < *rule.margin_below) {
      which = "margin";
      s = margin;
    }
    if (which.empty()) continue;
    ++state.agg.hard_examples;
    Emit(outbox::Kind::kHardExample, b.task.model,
         b.RowRecord("hard_example", rule.name, r, which, s, rule.fields), rule.name);
  }
}

void Evaluator::ApplySampleRules(const Batch& b, ModelState& state, int64_t r) {
  const double* xr = b.input_row(r);
  const double* orow = b.output_row(r);
  for (const SampleRule& rule : b.rules.samples) {
    // One draw per row and rule, whatever the rate.
    const double u = NextUniform(rng_state_);
    if (u >= rule.rate) continue;
    ++state.agg.samples;
    Emit(outbox::Kind::kSample, b.task.model,
         b.RowRecord("sample", rule.name, r, "value", Score({}, orow, b.k, xr, b.cols),
                     rule.fields),
         rule.name);
  }
}

void Evaluator::ApplyDriftRules(const Batch& b, ModelState& state, int64_t r) {
  const double* xr = b.input_row(r);
  for (size_t d = 0; d < b.rules.drifts.size(); ++d) {
    const DriftRule& rule = b.rules.drifts[d];
    DriftState& ds = state.drifts[d];
    ++ds.rows_seen;
    for (size_t fi = 0; fi < rule.baseline.size(); ++fi) {
      const FeatureBaseline& base = rule.baseline[fi];
      FeatureWindow& w = ds.features[fi];
      const double v = xr[base.feature];
      if (std::isnan(v)) continue;
      const uint32_t bin = static_cast<uint32_t>(Bin(base.edges, v));
      if (!PushReading(w, rule.window, bin)) continue;
      const double n = static_cast<double>(rule.window);
      const double psi = WindowPsi(w, base, n);
      if (psi < rule.level) {
        w.raised = false;
        continue;
      }
      if (w.raised) continue;
      w.raised = true;
      ++state.agg.drifts;
      Emit(outbox::Kind::kDrift, b.task.model, b.DriftRecord(rule, base, w, ds.rows_seen, psi, n),
           rule.name);
    }
  }
}

void Evaluator::Evaluate(Task& task) {
  const RuleSet& rules = *task.rules;
  int64_t rows = 0, cols = 0, k = 0;
  std::vector<double> x, o;
  const std::string_view why = CheckBatch(rules, task.input, task.output, rows, cols, k, x, o);
  if (!why.empty()) {
    OUTPOST_LOG(kWarning) << "insight rules skipped a batch: " << why << Field("model", task.model)
                          << Field("version", task.version);
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.batches_invalid;
    return;
  }

  ModelKey key(task.model, task.version);
  ModelState& state = StateFor(key, task);
  CountBatch(key, state, task.time_ms, cols);
  const Batch batch{.task = task, .rules = rules, .x = x, .o = o, .cols = cols, .k = k};
  for (int64_t r = 0; r < rows; ++r) EvaluateRow(batch, state, r);
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.batches_evaluated;
  stats_.rows_evaluated += static_cast<uint64_t>(rows);
}

}  // namespace outpost::insight
