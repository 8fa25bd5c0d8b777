// JsonWriter: appends compact JSON to a std::string: the scoring server's responses, the
// compliance policy's payloads and audit lines.
//
//   std::string out;
//   JsonWriter w(out);
//   w.BeginObject();
//   w.Key("name"); w.String("sensor");
//   w.Key("shape"); w.BeginArray(); w.Int(2); w.Int(4); w.EndArray();
//   w.EndObject();                       // {"name":"sensor","shape":[2,4]}
//
// The writer places commas; it does not check that calls form valid JSON (the caller's
// sequence of calls is fixed code, never driven by input). Strings are escaped as JSON
// requires, and bytes that are not valid UTF-8 become U+FFFD. Numbers use std::to_chars:
// floats and doubles in their shortest form that reads back to the same value; a NaN or an
// infinity, which JSON cannot carry, is written as null.
//
// It writes straight into the caller's string (no iostreams, no temporaries), so a caller
// that reuses one string per connection allocates nothing once the string has grown.
// Thread-compatible.
#ifndef OUTPOST_BASE_JSON_WRITER_H_
#define OUTPOST_BASE_JSON_WRITER_H_

#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "base/logging.h"

namespace outpost {

// Appends `s` as a quoted JSON string. Runs of plain ASCII are copied in one go.
inline void AppendJsonString(std::string& out, std::string_view s) {
  out.push_back('"');
  size_t plain = 0;
  while (plain < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[plain]);
    if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') break;
    ++plain;
  }
  out.append(s.data(), plain);
  if (plain < s.size()) AppendJsonEscaped(out, s.substr(plain));
  out.push_back('"');
}

// Appends a number with std::to_chars. Non-finite floating values become null.
template <typename T>
inline void AppendJsonNumber(std::string& out, T value) {
  if constexpr (std::is_floating_point_v<T>) {
    if (!std::isfinite(value)) {
      out.append("null");
      return;
    }
  }
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  (void)ec;  // 32 bytes hold any int64 and any shortest float or double.
  out.append(buf, static_cast<size_t>(end - buf));
}

class JsonWriter {
 public:
  // `out` must outlive the writer; the writer appends to it.
  explicit JsonWriter(std::string& out) : out_(out) {}

  void BeginObject() {
    Separate();
    out_.push_back('{');
    first_ = true;
  }
  void EndObject() {
    out_.push_back('}');
    first_ = false;
  }
  void BeginArray() {
    Separate();
    out_.push_back('[');
    first_ = true;
  }
  void EndArray() {
    out_.push_back(']');
    first_ = false;
  }
  // The key of the next member; the next call writes its value.
  void Key(std::string_view key) {
    Separate();
    AppendJsonString(out_, key);
    out_.push_back(':');
    after_key_ = true;
  }
  void String(std::string_view s) {
    Separate();
    AppendJsonString(out_, s);
  }
  void Int(int64_t v) {
    Separate();
    AppendJsonNumber(out_, v);
  }
  void Uint(uint64_t v) {
    Separate();
    AppendJsonNumber(out_, v);
  }
  void Double(double v) {
    Separate();
    AppendJsonNumber(out_, v);
  }
  void Bool(bool v) {
    Separate();
    out_.append(v ? "true" : "false");
  }
  void Null() {
    Separate();
    out_.append("null");
  }
  // The value, or null when there is none.
  void OptionalDouble(const std::optional<double>& v) {
    if (v) {
      Double(*v);
    } else {
      Null();
    }
  }
  // Appends `json`, which must be one complete JSON value, as the next value.
  void Raw(std::string_view json) {
    Separate();
    out_.append(json);
  }

  std::string& out() { return out_; }

 private:
  // Writes the comma before a value or key unless it is the first in its container or the
  // value of a key just written.
  void Separate() {
    if (after_key_) {
      after_key_ = false;
    } else if (!first_) {
      out_.push_back(',');
    }
    first_ = false;
  }

  std::string& out_;
  bool first_ = true;       // the next value is the first of its container (or the document)
  bool after_key_ = false;  // a key was just written
};

}  // namespace outpost

#endif  // OUTPOST_BASE_JSON_WRITER_H_
