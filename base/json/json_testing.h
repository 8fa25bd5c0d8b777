// Test helpers over the JSON adapter: a parsed answer's member read as the test expects it.
// Each throws (std::bad_variant_access) when the member is missing or of another kind, which
// fails the test, as an unchecked access should. For tests only.
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

}  // namespace outpost::json

#endif  // OUTPOST_BASE_JSON_JSON_TESTING_H_
