// Test helpers over the JSON adapter. As*: a parsed answer's member read as the test expects
// it; each throws (std::bad_variant_access) when the member is missing or of another kind,
// which fails the test, as an unchecked access should. Missing*: checked reads. For tests only.
#ifndef OUTPOST_BASE_JSON_JSON_TESTING_H_
#define OUTPOST_BASE_JSON_JSON_TESTING_H_

#include <cstdint>
#include <string_view>

#include "base/json/json.h"

namespace outpost::json {

inline int64_t AsInt(const Value& v) { return v.GetInt64().value(); }
inline uint64_t AsUint(const Value& v) { return v.GetUint64().value(); }
inline double AsDouble(const Value& v) { return v.GetDouble().value(); }
inline bool AsBool(const Value& v) { return v.GetBool().value(); }
// Valid as long as `v`.
inline std::string_view AsString(const Value& v) { return v.GetString().value(); }

// Checks in the style "fail when missing": each stores what it read in `out` and answers true
// when the read failed (missing, or of another kind).
template <typename T, typename U>
bool Missing(const Result<T>& read, U& out) {
  if (!read.ok()) return true;
  out = *read;
  return false;
}
inline bool MissingArray(const Value& value, Value& out) {
  if (!value.is_array()) return true;
  out = value;
  return false;
}
inline bool MissingValue(const Value& value, Value& out) {
  if (value.is_missing()) return true;
  out = value;
  return false;
}

}  // namespace outpost::json

#endif  // OUTPOST_BASE_JSON_JSON_TESTING_H_
