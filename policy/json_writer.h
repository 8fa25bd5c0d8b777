// A small JSON writer for policy/: transformed payloads and audit lines. Compact output
// (no whitespace), strings escaped as JSON requires (control bytes as \u00XX), numbers in
// their shortest form that reads back exactly, non-finite doubles as null. The caller keeps
// the structure well formed (Key before each member value). Not thread-safe; one per use.
#ifndef OUTPOST_POLICY_JSON_WRITER_H_
#define OUTPOST_POLICY_JSON_WRITER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::policy {

class JsonWriter {
 public:
  void BeginObject();
  void EndObject();
  void BeginArray();
  void EndArray();
  void Key(std::string_view key);
  void String(std::string_view value);
  void Int(int64_t value);
  void Uint(uint64_t value);
  void Double(double value);
  void Bool(bool value);
  void Null();
  // Appends already-written JSON text as one value.
  void Raw(std::string_view json);

  const std::string& text() const { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  void BeforeValue();

  std::string out_;
  // One entry per open object or array: whether it has a value yet.
  std::vector<bool> has_value_;
  // True between Key() and its value.
  bool after_key_ = false;
};

// `value` as JsonWriter writes it ("50", "0.1", "1e+21").
std::string FormatDouble(double value);

}  // namespace outpost::policy

#endif  // OUTPOST_POLICY_JSON_WRITER_H_
