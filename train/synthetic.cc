#include "train/synthetic.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <vector>

namespace outpost::train {
namespace {

// SplitMix64: expands one 64-bit seed into the generator's state.
uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

// xoshiro256** (Blackman and Vigna), with our own uniform and normal draws so that the
// stream does not depend on the standard library's distribution code.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    uint64_t s = seed;
    for (uint64_t& word : state_) word = SplitMix64(s);
  }

  uint64_t Next() {
    const uint64_t result = Rotl(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = Rotl(state_[3], 45);
    return result;
  }

  // Uniform in the open interval (0, 1).
  double Uniform() { return (static_cast<double>(Next() >> 11) + 0.5) * 0x1.0p-53; }

  // Standard normal (Box–Muller, cosine branch; two uniforms per draw).
  double Normal() {
    double u1 = Uniform();
    double u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }

 private:
  std::array<uint64_t, 4> state_;
};

// Independent streams derived from the one seed.
constexpr uint64_t kLabelStream = 0x6661756c74730000ULL;    // "faults"
constexpr uint64_t kMissingStream = 0x6d697373696e6700ULL;  // "missing"

double Softplus(double x) { return x > 30 ? x : std::log1p(std::exp(x)); }
double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

using Reading = std::array<double, 8>;

// One pump reading; draws exactly 12 values from `rng`, always in the same order.
Reading DrawReading(Rng& rng) {
  const double load = 0.35 + 0.65 * rng.Uniform();  // share of rated flow
  const double hours = 8000.0 * rng.Uniform();
  const double wear = std::clamp(std::pow(hours / 8000.0, 1.5) + 0.08 * rng.Normal(), 0.0, 1.0);
  const double ambient = 22.0 + 8.0 * rng.Normal();
  const double speed = 1490.0 - 20.0 * load + 3.0 * rng.Normal();
  const double flow = 180.0 * load * (speed / 1480.0) + 5.0 * rng.Normal();
  const double pressure = 5.5 + 7.0 * load - 2.0 * wear + 0.5 * rng.Normal();
  const double current = 30.0 + 38.0 * load + 5.0 * wear + 1.2 * rng.Normal();
  const double bearing = ambient + 22.0 + 14.0 * load + 16.0 * wear * wear + 2.0 * rng.Normal();
  const double vibration = 1.6 * std::exp(0.9 * wear + 0.3 * load + 0.22 * rng.Normal());
  return {bearing, vibration, pressure, current, speed, ambient, flow, hours};
}

// The fault law, on the readings as the sensors report them (before the logistic link).
double FaultScore(const Reading& r) {
  const double bearing = r[0], vibration = r[1], pressure = r[2], current = r[3];
  const double ambient = r[5], flow = r[6], hours = r[7];
  const double overheat = Softplus((bearing - ambient - 48.0) / 3.0);
  const double shake = Softplus(3.0 * std::log(std::max(vibration, 1e-3) / 4.5));
  const double expected_current = 30.0 + 38.0 * flow / 180.0;
  const double overload = Softplus((current - expected_current - 6.0) / 2.0);
  const double cavitation = (pressure < 7.0 && flow > 130.0) ? 1.0 : 0.0;
  const double age = std::pow(hours / 8000.0, 3.0);
  return 2.6 * overheat + 3.0 * shake + 2.0 * overload + 2.4 * cavitation + 3.0 * age;
}

// The offset b for which the mean of Sigmoid(score + b) over `scores` is `rate`.
double CalibrateOffset(const std::vector<double>& scores, double rate) {
  double lo = -60.0, hi = 60.0;
  for (int i = 0; i < 100; ++i) {
    double mid = 0.5 * (lo + hi);
    double sum = 0.0;
    for (double s : scores) sum += Sigmoid(s + mid);
    if (sum / static_cast<double>(scores.size()) < rate) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return 0.5 * (lo + hi);
}

// Rows used to calibrate the offset (the first ones; enough for a stable estimate).
constexpr int64_t kCalibrationRows = 50000;
constexpr int64_t kMaxRows = 10'000'000;

}  // namespace

Result<Dataset> MakePumpReadings(const PumpDataOptions& options) {
  if (options.rows < 1 || options.rows > kMaxRows) {
    return InvalidArgumentError("rows must be between 1 and " + std::to_string(kMaxRows));
  }
  if (!(options.fault_rate > 0.0 && options.fault_rate < 1.0)) {
    return InvalidArgumentError("fault_rate must be in (0, 1)");
  }
  if (!(options.missing_rate >= 0.0 && options.missing_rate < 1.0)) {
    return InvalidArgumentError("missing_rate must be in [0, 1)");
  }
  if (!std::isfinite(options.shift_sigmas)) {
    return InvalidArgumentError("shift_sigmas must be finite");
  }
  int shifted = -1;
  if (!options.shift_feature.empty()) {
    auto it = std::find(kPumpFeatureNames.begin(), kPumpFeatureNames.end(), options.shift_feature);
    if (it == kPumpFeatureNames.end()) {
      return InvalidArgumentError("unknown shift_feature \"" + options.shift_feature + "\"");
    }
    shifted = static_cast<int>(it - kPumpFeatureNames.begin());
  }

  const size_t rows = static_cast<size_t>(options.rows);
  std::vector<Reading> readings(rows);
  Rng rng(options.seed);
  for (Reading& r : readings) r = DrawReading(rng);

  // The offset is calibrated on readings without drift, so drift changes the fault share the
  // way the fault law says it would.
  std::vector<double> calibration;
  calibration.reserve(std::min<size_t>(rows, kCalibrationRows));
  for (size_t i = 0; i < rows && i < static_cast<size_t>(kCalibrationRows); ++i) {
    calibration.push_back(FaultScore(readings[i]));
  }
  const double offset = CalibrateOffset(calibration, options.fault_rate);

  Dataset data;
  data.feature_names.assign(kPumpFeatureNames.begin(), kPumpFeatureNames.end());
  data.rows = options.rows;
  data.features.resize(rows * kPumpFeatureNames.size());
  data.labels.resize(rows);
  Rng labels(options.seed ^ kLabelStream);
  Rng missing(options.seed ^ kMissingStream);
  for (size_t i = 0; i < rows; ++i) {
    Reading r = readings[i];
    if (shifted >= 0) r[shifted] += options.shift_sigmas * kPumpFeatureSpread[shifted];
    const double p = Sigmoid(FaultScore(r) + offset);
    data.labels[i] = labels.Uniform() < p ? 1.0f : 0.0f;
    for (size_t j = 0; j < r.size(); ++j) {
      // One draw per reading whatever the rate, so the blanked cells of a lower rate are a
      // subset of those of a higher one.
      const bool blank = missing.Uniform() < options.missing_rate;
      data.features[i * r.size() + j] =
          blank ? std::numeric_limits<float>::quiet_NaN() : static_cast<float>(r[j]);
    }
  }
  return data;
}

}  // namespace outpost::train
