// Synthetic pump readings: the data set Outpost's demo trains, scores and retrains on.
//
// It simulates the centrifugal pumps of a remote site (a mine's dewatering station, a
// pipeline booster station). Each row is one reading of one pump:
//
//   bearing_temp_c          drive-end bearing temperature, °C
//   vibration_mm_s          vibration velocity RMS, mm/s
//   discharge_pressure_bar  discharge pressure, bar
//   motor_current_a         motor current, A
//   speed_rpm               shaft speed, rpm
//   ambient_temp_c          ambient temperature, °C
//   flow_m3h                flow, m³/h
//   hours_since_service     running hours since the last service
//
// Hidden behind the readings are the pump's duty (share of rated flow, 35–100 %) and its
// wear, which grows with the hours since service: a worn pump runs hotter, vibrates more,
// draws more current and delivers less pressure. The label `fault` (1 = the pump failed or
// needed an unplanned stop soon after the reading) is drawn with a probability that depends
// on the readings non-linearly: a bearing running hot for the ambient, vibration past the
// ISO 10816 alarm zone (about 4.5 mm/s), current high for the flow (blockage, rubbing),
// low pressure at high flow (cavitation), and age since service, combined through a logistic
// link whose offset is calibrated so that the share of faults is `fault_rate`.
//
// Drift for the retraining loop: `shift_feature` moves one reading's mean by `shift_sigmas`
// times its typical spread (kPumpFeatureSpread), for example a sensor going out of
// calibration or a hot season. The fault law is unchanged, so a shift of a reading that
// drives faults also changes the share of faults. `missing_rate` blanks readings (NaN), as
// sensor dropouts do.
//
// Deterministic: the same options give the same data, run after run and build after build
// (Outpost's own xoshiro256** generator and distribution code; std:: distributions differ
// between standard library versions, so none is used). The readings of a row depend only on `seed`
// and the row number, not on the fault rate, drift or missing rate, so two data sets that differ
// only in drift describe the same pumps.
#ifndef OUTPOST_TRAIN_SYNTHETIC_H_
#define OUTPOST_TRAIN_SYNTHETIC_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "train/dataset.h"

namespace outpost::train {

inline constexpr std::array<std::string_view, 8> kPumpFeatureNames = {
    "bearing_temp_c", "vibration_mm_s", "discharge_pressure_bar", "motor_current_a", "speed_rpm",
    "ambient_temp_c", "flow_m3h",       "hours_since_service",
};
// The typical spread (about one standard deviation) of each reading, in its unit; the unit
// of `shift_sigmas`.
inline constexpr std::array<double, 8> kPumpFeatureSpread = {8.0, 0.8, 1.5,  7.5,
                                                             5.0, 8.0, 35.0, 2300.0};

struct PumpDataOptions {
  int64_t rows = 10000;  // 1 .. 10,000,000
  uint64_t seed = 1;
  double fault_rate = 0.05;        // expected share of faults without drift, in (0, 1)
  std::string shift_feature = "";  // a name from kPumpFeatureNames; empty = no drift
  double shift_sigmas = 0.0;       // mean shift in units of kPumpFeatureSpread
  double missing_rate = 0.0;       // share of readings blanked to NaN, in [0, 1)
};

// The readings and labels ("fault", 0 or 1). InvalidArgument for options out of range or an
// unknown shift_feature.
Result<Dataset> MakePumpReadings(const PumpDataOptions& options);

}  // namespace outpost::train

#endif  // OUTPOST_TRAIN_SYNTHETIC_H_
