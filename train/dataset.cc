#include "train/dataset.h"

#include <string>

namespace outpost::train {

Status CheckDataset(const Dataset& data, bool need_labels) {
  if (data.cols() < 1) return InvalidArgumentError("the data set has no columns");
  if (data.rows < 0) return InvalidArgumentError("the data set has a negative row count");
  if (static_cast<uint64_t>(data.rows) * static_cast<uint64_t>(data.cols()) !=
      data.features.size()) {
    return InvalidArgumentError("the data set has " + std::to_string(data.features.size()) +
                                " values for " + std::to_string(data.rows) + " rows of " +
                                std::to_string(data.cols()) + " columns");
  }
  if (need_labels && data.labels.empty()) {
    return InvalidArgumentError("the data set has no labels");
  }
  if (!data.labels.empty() && data.labels.size() != static_cast<size_t>(data.rows)) {
    return InvalidArgumentError("the data set has " + std::to_string(data.labels.size()) +
                                " labels for " + std::to_string(data.rows) + " rows");
  }
  return Status();
}

}  // namespace outpost::train
