#include "train/evaluate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <vector>

namespace outpost::train {

namespace {

double Round4(double v) { return std::round(v * 10'000) / 10'000; }

// Ten bins of width 0.1 (the last holds 1.0), empty ones left out.
std::vector<CalibrationBin> Calibration(std::span<const float> p, std::span<const float> labels) {
  constexpr int kBins = 10;
  double sum_p[kBins] = {}, positives[kBins] = {};
  int64_t rows[kBins] = {};
  for (size_t i = 0; i < p.size(); ++i) {
    const int bin = std::min(kBins - 1, static_cast<int>(p[i] * kBins));
    sum_p[bin] += p[i];
    positives[bin] += labels[i] == 1.0f ? 1 : 0;
    ++rows[bin];
  }
  std::vector<CalibrationBin> out;
  for (int b = 0; b < kBins; ++b) {
    if (rows[b] == 0) continue;
    const double n = static_cast<double>(rows[b]);
    out.push_back({Round4(sum_p[b] / n), Round4(positives[b] / n), rows[b]});
  }
  return out;
}

// The ROC curve: one point per distinct probability as the threshold, highest first, thinned
// to kMaxRocPoints by keeping every k-th (the first and last kept). Both classes present.
std::vector<std::pair<double, double>> RocCurve(std::span<const float> p,
                                                std::span<const float> labels, int64_t positives,
                                                int64_t negatives) {
  std::vector<size_t> order(p.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] > p[b]; });
  std::vector<std::pair<double, double>> all = {{0.0, 0.0}};
  int64_t tp = 0, fp = 0;
  for (size_t k = 0; k < order.size(); ++k) {
    (labels[order[k]] == 1.0f ? tp : fp) += 1;
    if (k + 1 < order.size() && p[order[k + 1]] == p[order[k]]) continue;
    all.emplace_back(static_cast<double>(fp) / static_cast<double>(negatives),
                     static_cast<double>(tp) / static_cast<double>(positives));
  }
  std::vector<std::pair<double, double>> out;
  const size_t stride = (all.size() + kMaxRocPoints - 3) / (kMaxRocPoints - 1);
  for (size_t k = 0; k < all.size(); ++k) {
    if (k % std::max<size_t>(stride, 1) == 0 || k + 1 == all.size()) {
      out.emplace_back(Round4(all[k].first), Round4(all[k].second));
    }
  }
  return out;
}

}  // namespace

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
  m.calibration = Calibration(p, labels);
  const int64_t negatives = m.rows - m.positives;
  if (m.positives == 0 || negatives == 0) return m;
  m.roc = RocCurve(p, labels, m.positives, negatives);
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
