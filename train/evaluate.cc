#include "train/evaluate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <vector>

namespace outpost::train {

Result<BinaryMetrics> EvaluateBinary(std::span<const float> p, std::span<const float> labels) {
  if (p.size() != labels.size()) {
    return InvalidArgumentError(std::to_string(p.size()) + " predictions for " +
                                std::to_string(labels.size()) + " labels");
  }
  BinaryMetrics m;
  m.rows = static_cast<int64_t>(p.size());
  double correct = 0, loss = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    if (labels[i] != 0.0f && labels[i] != 1.0f) {
      return InvalidArgumentError("label " + std::to_string(labels[i]) + " is not 0 or 1");
    }
    if (!(p[i] >= 0.0f && p[i] <= 1.0f)) {
      return InvalidArgumentError("a prediction is not a probability in [0, 1]");
    }
    const bool positive = labels[i] == 1.0f;
    m.positives += positive ? 1 : 0;
    if ((p[i] >= 0.5f) == positive) correct += 1;
    const double q = std::clamp(static_cast<double>(p[i]), 1e-15, 1.0 - 1e-15);
    loss -= positive ? std::log(q) : std::log(1.0 - q);
  }
  if (m.rows == 0) return m;
  m.accuracy = correct / static_cast<double>(m.rows);
  m.logloss = loss / static_cast<double>(m.rows);
  const int64_t negatives = m.rows - m.positives;
  if (m.positives == 0 || negatives == 0) return m;
  // Mann–Whitney U with midranks for ties.
  std::vector<size_t> order(p.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] < p[b]; });
  double positive_rank_sum = 0;
  for (size_t start = 0; start < order.size();) {
    size_t end = start;
    while (end < order.size() && p[order[end]] == p[order[start]]) ++end;
    const double midrank = 0.5 * static_cast<double>(start + 1 + end);  // ranks start+1..end
    for (size_t k = start; k < end; ++k) {
      if (labels[order[k]] == 1.0f) positive_rank_sum += midrank;
    }
    start = end;
  }
  const double pos = static_cast<double>(m.positives);
  m.auc = (positive_rank_sum - pos * (pos + 1) / 2) / (pos * static_cast<double>(negatives));
  return m;
}

std::string_view MetricName(Metric metric) {
  switch (metric) {
    case Metric::kAuc:
      return "auc";
    case Metric::kAccuracy:
      return "accuracy";
    case Metric::kLogloss:
      return "logloss";
  }
  return "auc";
}

Result<Metric> ParseMetric(std::string_view name) {
  if (name == "auc") return Metric::kAuc;
  if (name == "accuracy") return Metric::kAccuracy;
  if (name == "logloss") return Metric::kLogloss;
  return InvalidArgumentError("unknown metric \"" + std::string(name.substr(0, 64)) +
                              "\" (auc, accuracy or logloss)");
}

std::optional<double> MetricValue(const BinaryMetrics& m, Metric metric) {
  switch (metric) {
    case Metric::kAuc:
      return m.auc;
    case Metric::kAccuracy:
      return m.accuracy;
    case Metric::kLogloss:
      return m.logloss;
  }
  return std::nullopt;
}

namespace {
std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4f", v);
  return buf;
}
}  // namespace

Decision Decide(const BinaryMetrics& challenger, const std::optional<BinaryMetrics>& champion,
                Metric metric, double margin) {
  const std::string name(MetricName(metric));
  std::optional<double> ours = MetricValue(challenger, metric);
  if (!ours.has_value()) {
    return {false, "the challenger's " + name + " cannot be computed on the holdout"};
  }
  if (!champion.has_value()) {
    return {true, "no champion; challenger " + name + " " + Num(*ours)};
  }
  std::optional<double> theirs = MetricValue(*champion, metric);
  if (!theirs.has_value()) {
    return {false, "the champion's " + name + " cannot be computed on the holdout"};
  }
  const double gain = metric == Metric::kLogloss ? *theirs - *ours : *ours - *theirs;
  const bool beats = gain >= margin;
  return {beats, "challenger " + name + " " + Num(*ours) + (beats ? " beats" : " does not beat") +
                     " champion " + Num(*theirs) + " by " + Num(gain) +
                     (beats ? " >= " : " < ") + Num(margin)};
}

}  // namespace outpost::train
