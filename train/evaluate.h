// Champion/challenger evaluation of binary classifiers on a holdout: AUC, accuracy, logloss
// (train/FORMAT.md section 3), and the decision with a configured margin.
#ifndef OUTPOST_TRAIN_EVALUATE_H_
#define OUTPOST_TRAIN_EVALUATE_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace outpost::train {

// One bin of a reliability table: rows whose predicted probability fell in the bin.
struct CalibrationBin {
  double mean_p = 0;  // their mean predicted probability
  double rate = 0;    // the share of them labelled 1
  int64_t rows = 0;
};

struct BinaryMetrics {
  int64_t rows = 0;
  int64_t positives = 0;
  std::optional<double> auc{};       // null with one class only (or no rows)
  std::optional<double> accuracy{};  // null with no rows
  std::optional<double> logloss{};   // null with no rows
  // The ROC curve, (false positive rate, true positive rate) from (0,0) to (1,1), at most
  // kMaxRocPoints; empty where auc is null (train/FORMAT.md section 3).
  std::vector<std::pair<double, double>> roc{};
  // Ten bins of width 0.1 over the predicted probability, empty bins left out.
  std::vector<CalibrationBin> calibration{};
};

inline constexpr size_t kMaxRocPoints = 101;

// Metrics of probabilities `p` for labels 0/1, with the ROC curve and the reliability table.
// InvalidArgument when the sizes differ, a label is not 0 or 1, or a probability is NaN or outside
// [0, 1].
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
