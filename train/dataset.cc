#include "train/dataset.h"

#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <unordered_map>

#include "base/coding.h"
#include "base/crypto/crypto.h"

namespace outpost::train {
namespace {

constexpr char kMagic[8] = {'O', 'P', 'D', 'S', 0, 0, 0, 1};
constexpr uint32_t kCanonicalNan = 0x7FC00000u;

void PutF32(std::string& out, float f) {
  PutU32LE(out, std::isnan(f) ? kCanonicalNan : std::bit_cast<uint32_t>(f));
}

// Reads little-endian values from a byte string, failing with "truncated" at its end.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  bool Take(size_t n, std::string_view& out) {
    if (bytes_.size() - pos_ < n) return false;
    out = bytes_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool U32(uint32_t& v) {
    std::string_view b;
    if (!Take(4, b)) return false;
    v = GetU32LE(b.data());
    return true;
  }
  bool U64(uint64_t& v) {
    std::string_view b;
    if (!Take(8, b)) return false;
    v = GetU64LE(b.data());
    return true;
  }
  size_t remaining() const { return bytes_.size() - pos_; }

 private:
  std::string_view bytes_;
  size_t pos_ = 0;
};

Status Truncated() {
  return ErrorWithReason(StatusCode::kInvalidArgument, "truncated", "the data set file ends early");
}

}  // namespace

Status CheckDataset(const Dataset& data, bool need_labels) {
  if (data.cols() < 1) return InvalidArgumentError("the data set has no columns");
  if (data.rows < 0) return InvalidArgumentError("the data set has a negative row count");
  if (static_cast<uint64_t>(data.rows) * static_cast<uint64_t>(data.cols()) !=
      data.features.size()) {
    return InvalidArgumentError("the data set has " + std::to_string(data.features.size()) +
                                " values for " + std::to_string(data.rows) + " rows of " +
                                std::to_string(data.cols()) + " columns");
  }
  if (need_labels && data.labels.empty() && data.rows > 0) {
    return InvalidArgumentError("the data set has no labels");
  }
  if (!data.labels.empty() && data.labels.size() != static_cast<size_t>(data.rows)) {
    return InvalidArgumentError("the data set has " + std::to_string(data.labels.size()) +
                                " labels for " + std::to_string(data.rows) + " rows");
  }
  return Status();
}

Result<std::string> EncodeDataset(const Dataset& data) {
  OUTPOST_RETURN_IF_ERROR(CheckDataset(data, /*need_labels=*/false));
  if (data.cols() > kMaxDatasetCols || data.rows > kMaxDatasetRows ||
      data.features.size() > kMaxDatasetValues) {
    return ErrorWithReason(StatusCode::kInvalidArgument, "bad_count",
                           "the data set is larger than a data set file holds");
  }
  std::string out(kMagic, sizeof(kMagic));
  PutU32LE(out, static_cast<uint32_t>(data.cols()));
  for (const std::string& name : data.feature_names) {
    if (name.empty() || name.size() > kMaxFeatureNameBytes) {
      return ErrorWithReason(StatusCode::kInvalidArgument, "bad_count",
                             "a feature name must have 1 to 256 bytes");
    }
    PutU32LE(out, static_cast<uint32_t>(name.size()));
    out.append(name);
  }
  PutU64LE(out, static_cast<uint64_t>(data.rows));
  const bool labelled = !data.labels.empty();
  out.push_back(labelled ? 1 : 0);
  out.reserve(out.size() + 4 * (data.features.size() + data.labels.size()));
  for (float f : data.features) PutF32(out, f);
  for (float f : data.labels) PutF32(out, f);
  return out;
}

Result<Dataset> DecodeDataset(std::string_view bytes) {
  Reader in(bytes);
  std::string_view magic;
  if (!in.Take(sizeof(kMagic), magic)) return Truncated();
  if (magic.substr(0, 4) != "OPDS") {
    return ErrorWithReason(StatusCode::kInvalidArgument, "bad_magic",
                           "not an Outpost data set file");
  }
  if (magic != std::string_view(kMagic, sizeof(kMagic))) {
    return ErrorWithReason(StatusCode::kInvalidArgument, "unsupported_version",
                           "the data set file has another version");
  }
  uint32_t cols = 0;
  if (!in.U32(cols)) return Truncated();
  if (cols < 1 || cols > kMaxDatasetCols) {
    return ErrorWithReason(StatusCode::kInvalidArgument, "bad_count",
                           std::to_string(cols) + " columns");
  }
  Dataset data;
  for (uint32_t c = 0; c < cols; ++c) {
    uint32_t length = 0;
    if (!in.U32(length)) return Truncated();
    if (length < 1 || length > kMaxFeatureNameBytes) {
      return ErrorWithReason(StatusCode::kInvalidArgument, "bad_count",
                             "a feature name of " + std::to_string(length) + " bytes");
    }
    std::string_view name;
    if (!in.Take(length, name)) return Truncated();
    data.feature_names.emplace_back(name);
  }
  uint64_t rows = 0;
  if (!in.U64(rows)) return Truncated();
  if (rows > static_cast<uint64_t>(kMaxDatasetRows) || rows * cols > kMaxDatasetValues) {
    return ErrorWithReason(StatusCode::kInvalidArgument, "bad_count",
                           std::to_string(rows) + " rows");
  }
  std::string_view flag;
  if (!in.Take(1, flag)) return Truncated();
  if (flag[0] != 0 && flag[0] != 1) {
    return ErrorWithReason(StatusCode::kInvalidArgument, "bad_count",
                           "the labelled flag must be 0 or 1");
  }
  const bool labelled = flag[0] == 1;
  if (labelled && rows == 0) {
    // An empty data set has no labels to carry; one encoding per data set keeps its digest
    // its own.
    return ErrorWithReason(StatusCode::kInvalidArgument, "bad_count",
                           "a data set of no rows is written with labelled 0");
  }
  const uint64_t values = rows * cols + (labelled ? rows : 0);
  if (in.remaining() < values * 4) return Truncated();
  if (in.remaining() > values * 4) {
    return ErrorWithReason(StatusCode::kInvalidArgument, "trailing_bytes",
                           "bytes follow the last value");
  }
  data.rows = static_cast<int64_t>(rows);
  // Only the canonical NaN: a file has exactly one encoding, so its digest is its data set's.
  auto read_values = [&in](std::vector<float>& out) {
    for (float& f : out) {
      uint32_t v = 0;
      (void)in.U32(v);
      f = std::bit_cast<float>(v);
      if (std::isnan(f) && v != kCanonicalNan) return false;
    }
    return true;
  };
  data.features.resize(static_cast<size_t>(rows * cols));
  if (labelled) data.labels.resize(static_cast<size_t>(rows));
  if (!read_values(data.features) || !read_values(data.labels)) {
    return ErrorWithReason(StatusCode::kInvalidArgument, "bad_value",
                           "a NaN other than 0x7FC00000");
  }
  return data;
}

Result<std::string> DatasetSha256(const Dataset& data) {
  OUTPOST_ASSIGN_OR_RETURN(std::string bytes, EncodeDataset(data));
  return crypto::Sha256Hex(bytes);
}

Status AppendRows(Dataset& a, const Dataset& b) {
  if (a.feature_names != b.feature_names) {
    return InvalidArgumentError("the data sets name different features");
  }
  if (a.labels.empty() != b.labels.empty() && a.rows > 0 && b.rows > 0) {
    return InvalidArgumentError("one data set is labelled, the other is not");
  }
  a.features.insert(a.features.end(), b.features.begin(), b.features.end());
  a.labels.insert(a.labels.end(), b.labels.begin(), b.labels.end());
  a.rows += b.rows;
  return Status();
}

Result<Dataset> ParseCsvDataset(std::string_view text, const std::vector<std::string>& features) {
  constexpr size_t kMaxLine = 1 << 20;
  constexpr int64_t kMaxRows = 10'000'000;
  if (features.empty()) return InvalidArgumentError("no features named");
  auto next_line = [&text](std::string_view& line) {
    if (text.empty()) return false;
    size_t end = text.find('\n');
    line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return true;
  };
  auto split = [](std::string_view line) {
    std::vector<std::string_view> cells;
    size_t start = 0;
    while (true) {
      size_t comma = line.find(',', start);
      cells.push_back(line.substr(start, comma == std::string_view::npos ? comma : comma - start));
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    return cells;
  };
  std::string_view header;
  if (!next_line(header)) return InvalidArgumentError("line 1: the CSV file is empty");
  if (header.size() > kMaxLine) return InvalidArgumentError("line 1: longer than 1 MiB");
  std::vector<std::string_view> names = split(header);
  std::unordered_map<std::string_view, size_t> column_of;
  for (size_t i = 0; i < names.size(); ++i) {
    if (!column_of.emplace(names[i], i).second) {
      return InvalidArgumentError("line 1: column \"" + std::string(names[i]) + "\" repeats");
    }
  }
  std::vector<size_t> source(features.size());
  for (size_t f = 0; f < features.size(); ++f) {
    auto it = column_of.find(features[f]);
    if (it == column_of.end()) {
      return InvalidArgumentError("line 1: no column \"" + features[f] + "\"");
    }
    source[f] = it->second;
  }
  auto label_it = column_of.find("label");
  if (label_it == column_of.end()) return InvalidArgumentError("line 1: no column \"label\"");
  const size_t label_column = label_it->second;

  Dataset data;
  data.feature_names = features;
  std::string_view line;
  int64_t line_number = 1;
  std::vector<double> values(names.size());
  while (next_line(line)) {
    ++line_number;
    if (line.empty() && text.empty()) break;  // the final newline
    const std::string where = "line " + std::to_string(line_number);
    if (line.size() > kMaxLine) return InvalidArgumentError(where + ": longer than 1 MiB");
    if (data.rows >= kMaxRows) return InvalidArgumentError(where + ": more than 10000000 rows");
    std::vector<std::string_view> cells = split(line);
    if (cells.size() != names.size()) {
      return InvalidArgumentError(where + ": " + std::to_string(cells.size()) + " cells, not " +
                                  std::to_string(names.size()));
    }
    auto cell_value = [&](size_t c, double& v) -> Status {
      std::string_view cell = cells[c];
      if (cell.empty() || cell == "NA") {
        v = std::numeric_limits<double>::quiet_NaN();
        return Status();
      }
      auto [end, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), v);
      if (ec != std::errc() || end != cell.data() + cell.size() || !std::isfinite(v)) {
        return InvalidArgumentError(where + ", column \"" + std::string(names[c]) +
                                    "\": not a number");
      }
      return Status();
    };
    for (size_t f = 0; f < features.size(); ++f) {
      double v = 0;
      OUTPOST_RETURN_IF_ERROR(cell_value(source[f], v));
      data.features.push_back(static_cast<float>(v));
    }
    double label = 0;
    OUTPOST_RETURN_IF_ERROR(cell_value(label_column, label));
    if (label != 0.0 && label != 1.0) {
      return InvalidArgumentError(where + ", column \"label\": must be 0 or 1");
    }
    data.labels.push_back(static_cast<float>(label));
    ++data.rows;
  }
  return data;
}

}  // namespace outpost::train
