// Dataset: a table of float features with an optional label per row, the unit that training,
// evaluation and the synthetic generator exchange.
#ifndef OUTPOST_TRAIN_DATASET_H_
#define OUTPOST_TRAIN_DATASET_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
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

// Limits of the data set file (train/FORMAT.md, section 2).
inline constexpr int64_t kMaxDatasetCols = 4096;
inline constexpr size_t kMaxFeatureNameBytes = 256;
inline constexpr int64_t kMaxDatasetRows = 100'000'000;
inline constexpr uint64_t kMaxDatasetValues = 1'000'000'000;

// The data set file's bytes (FORMAT.md section 2): the exact bytes a data set's digest covers.
// InvalidArgument when CheckDataset fails or a limit is broken.
Result<std::string> EncodeDataset(const Dataset& data);
// Reads a data set file. InvalidArgument, with the reason code first ("bad_magic: ...",
// "unsupported_version", "bad_count", "truncated", "trailing_bytes"), for anything else.
Result<Dataset> DecodeDataset(std::string_view bytes);
// SHA-256 (lowercase hex) of EncodeDataset(data).
Result<std::string> DatasetSha256(const Dataset& data);

// The rows of `b` appended to `a` (same feature names; both labelled or both not).
// InvalidArgument otherwise.
Status AppendRows(Dataset& a, const Dataset& b);

// Reads a CSV training file (FORMAT.md section 1): the header names every column of
// `features` and a `label` column. InvalidArgument naming the line and column otherwise.
Result<Dataset> ParseCsvDataset(std::string_view text, const std::vector<std::string>& features);

}  // namespace outpost::train

#endif  // OUTPOST_TRAIN_DATASET_H_
