// Fuzz target: arbitrary bytes loaded as an XGBoost model file (JSON or UBJSON), and any model
// that loads scored on a few hostile rows. Model files cross the air gap on removable media
// and are untrusted; neither loading nor scoring may crash, hang or read out of bounds.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>
#include <vector>

#include "base/logging.h"
#include "engine/xgboost_model.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // XGBoost's warnings about odd models are expected here; keep the fuzzer's output readable.
  outpost::SetLogOptions({.min_level = outpost::LogLevel::kError});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using outpost::engine::DataType;
  using outpost::engine::Tensor;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto model = outpost::engine::LoadXGBoostModelFromBytes(bytes);
  if (!model.ok()) return 0;
  const auto& input = (*model)->signature().inputs.at(0);
  const int64_t features = input.shape.at(1);
  // Row 0 zeros, row 1 missing, row 2 extreme values of both signs.
  Tensor x(input.type, {3, features});
  for (int64_t j = 0; j < features; ++j) {
    const double extreme = (j % 2 == 0 ? 1.0 : -1.0) * 3e38;
    if (input.type == DataType::kFp64) {
      x.values<double>()[static_cast<size_t>(features + j)] = std::nan("");
      x.values<double>()[static_cast<size_t>(2 * features + j)] = extreme;
    } else {
      x.values<float>()[static_cast<size_t>(features + j)] = std::nanf("");
      x.values<float>()[static_cast<size_t>(2 * features + j)] = static_cast<float>(extreme);
    }
  }
  std::vector<Tensor> inputs;
  inputs.push_back(std::move(x));
  std::vector<Tensor> outputs;
  (*model)->Run(inputs, outputs).IgnoreError();
  return 0;
}
