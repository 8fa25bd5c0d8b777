// Dataset: a table of float features with an optional label per row, the unit that training,
// evaluation and the synthetic generator exchange.
#ifndef OUTPOST_TRAIN_DATASET_H_
#define OUTPOST_TRAIN_DATASET_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"

namespace outpost::train {

struct Dataset {
  // One name per column.
  std::vector<std::string> feature_names;
  int64_t rows = 0;
  // rows × cols() values, row-major. NaN marks a missing reading.
  std::vector<float> features;
  // One label per row, or empty for unlabelled data. Binary labels are 0 and 1; class labels
  // are 0, 1, ..., K-1.
  std::vector<float> labels;

  int64_t cols() const { return static_cast<int64_t>(feature_names.size()); }
  // Preconditions: 0 <= r < rows and the sizes are consistent (CheckDataset).
  std::span<const float> Row(int64_t r) const {
    return std::span<const float>(features).subspan(static_cast<size_t>(r * cols()),
                                                    static_cast<size_t>(cols()));
  }
};

// Whether the sizes agree: at least one column, features.size() == rows * cols(), and labels
// either empty or one per row (required when `need_labels`). InvalidArgument otherwise.
Status CheckDataset(const Dataset& data, bool need_labels);

}  // namespace outpost::train

#endif  // OUTPOST_TRAIN_DATASET_H_
