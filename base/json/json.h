// JSON reading: the one adapter through which Outpost parses JSON documents (request bodies,
// stored payloads, metadata files, answers of other servers). JSON writing is
// base/json_writer.h.
//
//   json::Parser parser({.max_depth = 16});
//   OUTPOST_ASSIGN_OR_RETURN(json::Value root, parser.Parse(body));
//   if (std::optional<json::Value> name = root.Find("name")) {
//     Result<std::string_view> text = name->GetString();
//     ...
//   }
//   for (json::Member m : root.Members()) { ... m.key ... m.value ... }
//   for (json::Value element : root["data"].Items()) { ... }
//
// A Parser is reusable: it keeps its buffers from one document to the next, so a caller that
// keeps one per thread allocates nothing once the buffers have grown. Every Value (and every
// string_view it hands out) points into the parser's buffers: it is valid until the next
// Parse on the same Parser, or the Parser's destruction, whichever comes first.
//
// Parsing never throws; errors are Status values. Thread-compatible: one thread at a time
// per Parser; Values of one Parser may be read by several threads while no Parse runs.
#ifndef OUTPOST_BASE_JSON_JSON_H_
#define OUTPOST_BASE_JSON_JSON_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/status.h"

namespace outpost::json {

// Bytes past the end of a document that the parser reads (never interprets). A document
// followed by this many readable bytes is parsed in place; any other is copied once into
// the parser's own buffer.
inline constexpr size_t kPadding = 64;

// The kind of a JSON value. Integers that fit int64 are kInt64; larger non-negative ones
// kUint64; every other number (with a fraction or an exponent, or beyond uint64) kDouble.
enum class Type : uint8_t { kNull, kBool, kInt64, kUint64, kDouble, kString, kArray, kObject };

// "null", "a boolean", "a number" (all three number kinds), "a string", "an array",
// "an object": for messages.
std::string_view TypeName(Type type);

class Value;
struct Member;
class ArrayRange;
class ObjectRange;

// A value inside a parsed document: a small handle (no allocation, cheap to copy). A Value
// may also be *missing*: what operator[] and At() give for a member or element that is not
// there. A missing value answers false to every is_*(), empty ranges, size 0, and errors
// from every getter, so that lookups can be chained: root["a"]["b"].GetInt64().
// Valid until the next Parse on the Parser that made it (see the file comment).
class Value {
 public:
  // A missing value.
  Value() = default;

  bool is_missing() const { return !present_; }
  // Preconditions: !is_missing() (a missing value answers kNull).
  Type type() const;
  bool is_null() const;
  bool is_bool() const;
  bool is_int64() const;
  bool is_uint64() const;
  bool is_double() const;
  // Any of the three number kinds.
  bool is_number() const;
  bool is_string() const;
  bool is_array() const;
  bool is_object() const;

  // Typed reads. Each fails with InvalidArgument (reason "json_type") when the value is
  // missing or of another kind. GetInt64 also takes a kUint64 that fits (none does: kUint64
  // holds only values above INT64_MAX, so it fails with reason "json_range"); GetUint64
  // takes a non-negative kInt64 (a negative one fails with "json_range"); GetDouble takes
  // every number kind.
  Result<std::string_view> GetString() const;
  Result<int64_t> GetInt64() const;
  Result<uint64_t> GetUint64() const;
  Result<double> GetDouble() const;
  Result<bool> GetBool() const;

  // The member of an object named `key` (the first, if it appears more than once); nullopt
  // when this is not an object or has no such member.
  std::optional<Value> Find(std::string_view key) const;
  // The same as a Value: missing when absent.
  Value operator[](std::string_view key) const;
  // The element of an array at `index`; missing when out of range or not an array.
  Value At(size_t index) const;

  // Elements of an array or members of an object; 0 for anything else.
  size_t size() const;
  // The elements of an array, in order (empty for anything else):
  //   for (json::Value v : value.Items()) ...
  ArrayRange Items() const;
  // The members of an object, in document order (empty for anything else):
  //   for (json::Member m : value.Members()) ...
  ObjectRange Members() const;

  // The value as compact JSON (no whitespace between tokens, strings escaped as they were
  // read, numbers as the parser reads them back). Empty for a missing value.
  std::string ToJson() const;

 private:
  friend struct ValueAccess;  // json.cc
  alignas(8) unsigned char rep_[16] = {};
  bool present_ = false;
};

// One member of an object.
struct Member {
  std::string_view key;
  Value value;
};

// Range-for over an array's elements. Valid as long as the Value it came from.
class ArrayRange {
 public:
  class Iterator {
   public:
    Value operator*() const;
    Iterator& operator++();
    bool operator!=(const Iterator& other) const;
    bool operator==(const Iterator& other) const { return !(*this != other); }

   private:
    friend struct ValueAccess;
    alignas(8) unsigned char rep_[16] = {};
    bool live_ = false;
  };
  Iterator begin() const { return begin_; }
  Iterator end() const { return end_; }

 private:
  friend struct ValueAccess;
  Iterator begin_, end_;
};

// Range-for over an object's members. Valid as long as the Value it came from.
class ObjectRange {
 public:
  class Iterator {
   public:
    Member operator*() const;
    Iterator& operator++();
    bool operator!=(const Iterator& other) const;
    bool operator==(const Iterator& other) const { return !(*this != other); }

   private:
    friend struct ValueAccess;
    alignas(8) unsigned char rep_[16] = {};
    bool live_ = false;
  };
  Iterator begin() const { return begin_; }
  Iterator end() const { return end_; }

 private:
  friend struct ValueAccess;
  Iterator begin_, end_;
};

// Bounds on what one Parser accepts.
struct ParserLimits {
  // Largest document, in bytes (the parser's default: 4 GiB - 1).
  size_t max_bytes = 0xFFFFFFFF;
  // Deepest nesting of arrays and objects accepted; the top-level value counts as 1 (so
  // `[[1]]` nests 2 deep). 0 is taken as 1.
  size_t max_depth = 1023;
};

// A reusable JSON parser. Move-only. Thread-compatible (see the file comment).
class Parser {
 public:
  explicit Parser(ParserLimits limits = {});
  ~Parser();
  Parser(Parser&&) noexcept;
  Parser& operator=(Parser&&) noexcept;
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  // Grows the buffers for documents of up to `bytes` now, so that a parse of such a document
  // does not allocate. ResourceExhausted (reason "json_out_of_memory") when that fails.
  Status Reserve(size_t bytes);

  // Parses one document; the root Value is valid until the next Parse on this Parser.
  // Errors, each with the parser's own description of the problem as its message:
  //   InvalidArgument, reason "json_malformed": not one well-formed JSON document (this
  //     includes empty text and invalid UTF-8);
  //   InvalidArgument, reason "json_too_deep": nests deeper than max_depth;
  //   ResourceExhausted, reason "json_too_large": longer than max_bytes;
  //   ResourceExhausted, reason "json_out_of_memory": the buffers could not grow.
  Result<Value> Parse(std::string_view text);
  // The same, reading a string in place when its spare capacity gives kPadding bytes.
  Result<Value> Parse(const std::string& text);
  Result<Value> Parse(const char* text) { return Parse(std::string_view(text)); }
  // The same, where `readable` bytes from text.data() on may be read (>= text.size()): read
  // in place when that leaves kPadding bytes after the text (binary data after a JSON
  // header, say), copied once into the parser's buffer otherwise.
  Result<Value> Parse(std::string_view text, size_t readable);

  // Bytes of document the buffers can hold now (grown by Parse and Reserve). A caller that
  // keeps a parser around may drop one that grew too large.
  size_t capacity() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// --- bulk readers of numeric arrays ---
//
// They read the leaves of an array (every value that is not itself an array, nested arrays
// flattened depth first, row-major) straight into a buffer, with no call per element: the
// way to read tensor data and other long arrays.

// How a bulk read ended.
enum class LeafError : uint8_t {
  kNone,        // every leaf read; `count` leaves (fewer than the buffer holds if fewer came)
  kTooMany,     // the array has more leaves than the buffer holds; the buffer is full
  kType,        // leaf `count` is of a kind the element type does not take
  kNotInteger,  // leaf `count` is a number with a fraction or exponent; an integer is needed
  kRange,       // leaf `count` is a number outside the element type's range
};
struct LeafRead {
  LeafError error = LeafError::kNone;
  // Leaves stored; on an error the index of the offending leaf.
  size_t count = 0;
  // On kType, kNotInteger and kRange: the offending leaf (for its type() and ToJson()).
  Value bad{};
};

// Reads the leaves of `array` into `out`. Accepted leaves:
//   - integer element types (int8_t ... uint64_t): JSON integers within the type's range;
//   - double: any number, and null as NaN (a missing value);
//   - float: any number whose magnitude rounds to a finite float, and null as NaN;
//   - std::string: strings.
// Reads nothing (count 0, kNone) when `array` is not an array.
template <typename T>
LeafRead ReadLeaves(const Value& array, std::span<T> out);
// Booleans as bytes 0 and 1: true and false only.
LeafRead ReadBoolLeaves(const Value& array, std::span<uint8_t> out);
// The number of leaves of `array` (0 when it is not an array).
size_t CountLeaves(const Value& array);

extern template LeafRead ReadLeaves<int8_t>(const Value&, std::span<int8_t>);
extern template LeafRead ReadLeaves<int16_t>(const Value&, std::span<int16_t>);
extern template LeafRead ReadLeaves<int32_t>(const Value&, std::span<int32_t>);
extern template LeafRead ReadLeaves<int64_t>(const Value&, std::span<int64_t>);
extern template LeafRead ReadLeaves<uint8_t>(const Value&, std::span<uint8_t>);
extern template LeafRead ReadLeaves<uint16_t>(const Value&, std::span<uint16_t>);
extern template LeafRead ReadLeaves<uint32_t>(const Value&, std::span<uint32_t>);
extern template LeafRead ReadLeaves<uint64_t>(const Value&, std::span<uint64_t>);
extern template LeafRead ReadLeaves<float>(const Value&, std::span<float>);
extern template LeafRead ReadLeaves<double>(const Value&, std::span<double>);
extern template LeafRead ReadLeaves<std::string>(const Value&, std::span<std::string>);

}  // namespace outpost::json

#endif  // OUTPOST_BASE_JSON_JSON_H_
