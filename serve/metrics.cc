#include "serve/metrics.h"

#include <algorithm>
#include <charconv>
#include <string_view>

#include "base/json_writer.h"
#include "serve/repository.h"

namespace outpost::serve {
namespace {

uint64_t Nanos(InferenceRecorder::Clock::duration d) {
  const int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  return ns > 0 ? static_cast<uint64_t>(ns) : 0;
}

void AppendUint(uint64_t v, std::string& out) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  (void)ec;
  out.append(buf, end);
}

// A Prometheus label value: backslash, double quote and newline escaped.
void AppendLabelValue(std::string_view value, std::string& out) {
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
}

struct Series {
  std::string_view model;
  int64_t version;
  const ModelStats* stats;
};

std::vector<Series> CollectSeries(const std::vector<std::shared_ptr<const ServableModel>>& models) {
  std::vector<Series> series;
  for (const auto& model : models) {
    for (size_t i = 0; i < model->ready.size() && i < model->stats.size(); ++i) {
      series.push_back({model->name, model->ready[i].first, model->stats[i].get()});
    }
  }
  return series;
}

// `name{model="m",version="v"` without the closing brace, so that `le` can follow.
void AppendLabels(std::string_view name, const Series& s, std::string& out) {
  out.append(name);
  out += "{model=\"";
  AppendLabelValue(s.model, out);
  out += "\",version=\"";
  AppendUint(static_cast<uint64_t>(s.version), out);
  out += "\"";
}

void AppendHeader(std::string_view name, std::string_view type, std::string_view help,
                  std::string& out) {
  out += "# HELP ";
  out.append(name);
  out.push_back(' ');
  out.append(help);
  out += "\n# TYPE ";
  out.append(name);
  out.push_back(' ');
  out.append(type);
  out.push_back('\n');
}

template <typename Get>
void AppendScalar(std::string_view name, std::string_view type, std::string_view help,
                  const std::vector<Series>& series, Get get, std::string& out) {
  AppendHeader(name, type, help, out);
  for (const Series& s : series) {
    AppendLabels(name, s, out);
    out += "} ";
    const int64_t v = get(*s.stats);
    if (v < 0) {
      out.push_back('-');
      AppendUint(static_cast<uint64_t>(-v), out);
    } else {
      AppendUint(static_cast<uint64_t>(v), out);
    }
    out.push_back('\n');
  }
}

void AppendHistogram(std::string_view name, std::string_view help,
                     const std::vector<Series>& series, const DurationHistogram ModelStats::*member,
                     std::string& out) {
  AppendHeader(name, "histogram", help, out);
  const std::string bucket = std::string(name) + "_bucket";
  for (const Series& s : series) {
    const DurationHistogram& h = s.stats->*member;
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= kDurationBucketsUs.size(); ++i) {
      cumulative += h.bucket(i);
      AppendLabels(bucket, s, out);
      out += ",le=\"";
      if (i < kDurationBucketsUs.size()) {
        AppendUint(kDurationBucketsUs[i], out);
      } else {
        out += "+Inf";
      }
      out += "\"} ";
      AppendUint(cumulative, out);
      out.push_back('\n');
    }
    AppendLabels(std::string(name) + "_sum", s, out);
    out += "} ";
    // Microseconds, with the nanoseconds as three decimals.
    const uint64_t ns = h.sum_ns();
    AppendUint(ns / 1000, out);
    out.push_back('.');
    const uint64_t frac = ns % 1000;
    out.push_back(static_cast<char>('0' + frac / 100));
    out.push_back(static_cast<char>('0' + frac / 10 % 10));
    out.push_back(static_cast<char>('0' + frac % 10));
    out.push_back('\n');
    AppendLabels(std::string(name) + "_count", s, out);
    out += "} ";
    AppendUint(cumulative, out);
    out.push_back('\n');
  }
}

void WriteStatsEntry(std::string_view name, int64_t version, const ModelStats& stats,
                     JsonWriter& w) {
  auto pair = [&w](std::string_view key, const DurationStat& d) {
    w.Key(key);
    w.BeginObject();
    w.Key("count");
    w.Uint(d.count.load(std::memory_order_relaxed));
    w.Key("ns");
    w.Uint(d.ns.load(std::memory_order_relaxed));
    w.EndObject();
  };
  w.BeginObject();
  w.Key("name");
  w.String(name);
  w.Key("version");
  w.String(std::to_string(version));
  w.Key("last_inference");
  w.Uint(stats.last_inference_ms.load(std::memory_order_relaxed));
  w.Key("inference_count");
  w.Uint(stats.inference_count.load(std::memory_order_relaxed));
  w.Key("execution_count");
  w.Uint(stats.execution_count.load(std::memory_order_relaxed));
  w.Key("inference_stats");
  w.BeginObject();
  pair("success", stats.success);
  pair("fail", stats.fail);
  pair("queue", stats.queue);
  pair("compute_input", stats.compute_input);
  pair("compute_infer", stats.compute_infer);
  pair("compute_output", stats.compute_output);
  w.EndObject();
  w.Key("batch_stats");
  w.BeginArray();
  w.EndArray();
  w.EndObject();
}

}  // namespace

void InferenceRecorder::Finish(bool ok) {
  ModelStats* stats = stats_;
  if (stats == nullptr) return;
  stats_ = nullptr;
  const Clock::time_point end = Clock::now();
  const uint64_t total = Nanos(end - start_);
  if (!ok || !ran_) {
    stats->fail.Add(total);
    return;
  }
  const uint64_t input = Nanos(inputs_ready_ - start_);
  const uint64_t waited = Nanos(run_done_ - inputs_ready_);
  const uint64_t queue = std::min(queue_ns_, waited);
  const uint64_t infer = waited - queue;
  const uint64_t output = Nanos(end - run_done_);
  stats->success.Add(total);
  stats->queue.Add(queue);
  stats->compute_input.Add(input);
  stats->compute_infer.Add(infer);
  stats->compute_output.Add(output);
  stats->inference_count.fetch_add(rows_, std::memory_order_relaxed);
  stats->request_duration.Record(total);
  stats->queue_duration.Record(queue);
  stats->compute_duration.Record(input + infer + output);
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  stats->last_inference_ms.store(static_cast<uint64_t>(now_ms), std::memory_order_relaxed);
}

void WriteMetrics(const ModelRepository& repository, std::string& out) {
  const std::vector<std::shared_ptr<const ServableModel>> models = repository.Models();
  const std::vector<Series> series = CollectSeries(models);
  auto load = [](const std::atomic<uint64_t>& a) {
    return static_cast<int64_t>(a.load(std::memory_order_relaxed));
  };
  AppendScalar(
      "outpost_inference_request_success_total", "counter",
      "Inference requests answered successfully, by model and version.", series,
      [&](const ModelStats& s) { return load(s.success.count); }, out);
  AppendScalar(
      "outpost_inference_request_failure_total", "counter",
      "Inference requests to a model version that failed (bad input, model error).", series,
      [&](const ModelStats& s) { return load(s.fail.count); }, out);
  AppendScalar(
      "outpost_inference_count_total", "counter",
      "Rows scored (the batch sizes of successful requests summed).", series,
      [&](const ModelStats& s) { return load(s.inference_count); }, out);
  AppendScalar(
      "outpost_inference_exec_count_total", "counter", "Model runs (batches executed).", series,
      [&](const ModelStats& s) { return load(s.execution_count); }, out);
  AppendScalar(
      "outpost_inference_labelled_total", "counter",
      "Answered requests that got a trusted numeric feedback label "
      "(POST /v1/feedback), counted against the version that answered.",
      series, [&](const ModelStats& s) { return load(s.labelled); }, out);
  AppendScalar(
      "outpost_inference_correct_total", "counter",
      "Labelled requests whose decision the version got right; correct / labelled is "
      "its labelled accuracy.",
      series, [&](const ModelStats& s) { return load(s.correct); }, out);
  AppendScalar(
      "outpost_inference_queue_depth", "gauge",
      "Requests waiting in the model's queue for an instance now.", series,
      [](const ModelStats& s) { return s.queue_depth.load(std::memory_order_relaxed); }, out);
  AppendHistogram("outpost_inference_request_duration_us",
                  "Duration of successful inference requests in microseconds, from the parsed "
                  "HTTP request to the written response.",
                  series, &ModelStats::request_duration, out);
  AppendHistogram("outpost_inference_queue_duration_us",
                  "Time successful requests waited for a model instance, in microseconds.", series,
                  &ModelStats::queue_duration, out);
  AppendHistogram("outpost_inference_compute_duration_us",
                  "Input preparation, model run and output writing of successful requests, in "
                  "microseconds.",
                  series, &ModelStats::compute_duration, out);
}

void WriteModelStats(const ModelHandle& handle, bool all_versions, std::string& out) {
  JsonWriter w(out);
  w.BeginObject();
  w.Key("model_stats");
  w.BeginArray();
  const ServableModel& servable = *handle.servable;
  for (size_t i = 0; i < servable.ready.size() && i < servable.stats.size(); ++i) {
    const int64_t version = servable.ready[i].first;
    if (!all_versions && version != handle.version) continue;
    WriteStatsEntry(servable.name, version, *servable.stats[i], w);
  }
  w.EndArray();
  w.EndObject();
}

void WriteAllModelStats(const ModelRepository& repository, std::string& out) {
  const std::vector<std::shared_ptr<const ServableModel>> models = repository.Models();
  JsonWriter w(out);
  w.BeginObject();
  w.Key("model_stats");
  w.BeginArray();
  for (const Series& s : CollectSeries(models)) {
    WriteStatsEntry(s.model, s.version, *s.stats, w);
  }
  w.EndArray();
  w.EndObject();
}

}  // namespace outpost::serve
