// Champion/challenger evaluation of binary classifiers on a holdout: AUC, accuracy, logloss
// (train/FORMAT.md section 3), and the decision with a configured margin.
#ifndef OUTPOST_TRAIN_EVALUATE_H_
#define OUTPOST_TRAIN_EVALUATE_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/status.h"

namespace outpost::train {

struct BinaryMetrics {
  int64_t rows = 0;
  int64_t positives = 0;
  std::optional<double> auc{};       // null with one class only (or no rows)
  std::optional<double> accuracy{};  // null with no rows
  std::optional<double> logloss{};   // null with no rows
};

// Metrics of probabilities `p` for labels 0/1. InvalidArgument when the sizes differ, a
// label is not 0 or 1, or a probability is NaN or outside [0, 1].
Result<BinaryMetrics> EvaluateBinary(std::span<const float> p, std::span<const float> labels);

enum class Metric { kAuc, kAccuracy, kLogloss };
// "auc" / "accuracy" / "logloss".
std::string_view MetricName(Metric metric);
Result<Metric> ParseMetric(std::string_view name);
std::optional<double> MetricValue(const BinaryMetrics& m, Metric metric);

struct Decision {
  bool beats = false;
  std::string reason{};
};

// Whether the challenger beats the champion by at least `margin` on `metric` (for logloss:
// is lower by at least margin). No champion: the challenger wins if its metric exists.
Decision Decide(const BinaryMetrics& challenger, const std::optional<BinaryMetrics>& champion,
                Metric metric, double margin);

}  // namespace outpost::train

#endif  // OUTPOST_TRAIN_EVALUATE_H_
