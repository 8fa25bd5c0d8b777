// The simdjson adapter of Outpost: the only file that includes simdjson.h. It uses
// simdjson's DOM API without exceptions (every access checks an error_code), so no simdjson
// exception or type leaves this file.
#include "base/json/json.h"

#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <type_traits>
#include <utility>

namespace outpost::json {

namespace dom = simdjson::dom;

static_assert(kPadding >= simdjson::SIMDJSON_PADDING);

// The handles keep simdjson's element and iterators in fixed storage; these must fit.
static_assert(sizeof(dom::element) <= 16 && alignof(dom::element) <= 8);
static_assert(sizeof(dom::array::iterator) <= 16 && alignof(dom::array::iterator) <= 8);
static_assert(sizeof(dom::object::iterator) <= 16 && alignof(dom::object::iterator) <= 8);
static_assert(std::is_trivially_copyable_v<dom::element> &&
              std::is_trivially_destructible_v<dom::element>);
static_assert(std::is_trivially_copyable_v<dom::array::iterator> &&
              std::is_trivially_copyable_v<dom::object::iterator>);

// Reads and writes the simdjson objects inside the handles of json.h.
struct ValueAccess {
  static dom::element Element(const Value& v) {
    dom::element e;
    std::memcpy(static_cast<void*>(&e), v.rep_, sizeof e);
    return e;
  }
  static Value Make(dom::element e) {
    Value v;
    std::memcpy(v.rep_, static_cast<const void*>(&e), sizeof e);
    v.present_ = true;
    return v;
  }
  template <typename It, typename Handle>
  static It Get(const Handle& h) {
    It it;
    std::memcpy(static_cast<void*>(&it), h.rep_, sizeof it);
    return it;
  }
  template <typename It, typename Handle>
  static void Set(Handle& h, const It& it) {
    std::memcpy(h.rep_, static_cast<const void*>(&it), sizeof it);
    h.live_ = true;
  }
  static ArrayRange Items(const dom::array& a) {
    ArrayRange r;
    Set(r.begin_, a.begin());
    Set(r.end_, a.end());
    return r;
  }
  static ObjectRange Members(const dom::object& o) {
    ObjectRange r;
    Set(r.begin_, o.begin());
    Set(r.end_, o.end());
    return r;
  }
  static bool Present(const Value& v) { return v.present_; }
  static bool Live(const ArrayRange::Iterator& i) { return i.live_; }
  static bool Live(const ObjectRange::Iterator& i) { return i.live_; }
};

namespace {

Type ToType(dom::element_type t) {
  switch (t) {
    case dom::element_type::ARRAY:
      return Type::kArray;
    case dom::element_type::OBJECT:
      return Type::kObject;
    case dom::element_type::INT64:
      return Type::kInt64;
    case dom::element_type::UINT64:
      return Type::kUint64;
    case dom::element_type::DOUBLE:
      return Type::kDouble;
    case dom::element_type::STRING:
      return Type::kString;
    case dom::element_type::BOOL:
      return Type::kBool;
    case dom::element_type::NULL_VALUE:
      return Type::kNull;
  }
  return Type::kNull;
}

Status TypeError(const Value& v, std::string_view wanted) {
  std::string message = v.is_missing() ? std::string("the value is missing")
                                       : "the value is " + std::string(TypeName(v.type()));
  message += ", not ";
  message += wanted;
  return InvalidArgumentError(message).WithReason("json_type");
}

// A getter's failure: a type error, or a number out of the wanted type's range.
Status GetError(const Value& v, simdjson::error_code error, std::string_view wanted) {
  if (error == simdjson::NUMBER_OUT_OF_RANGE) {
    return InvalidArgumentError("the number " + v.ToJson() + " is out of range for " +
                                std::string(wanted))
        .WithReason("json_range");
  }
  return TypeError(v, wanted);
}

Status ParseError(simdjson::error_code error) {
  const std::string_view message = simdjson::error_message(error);
  switch (error) {
    case simdjson::DEPTH_ERROR:
      return InvalidArgumentError(message).WithReason("json_too_deep");
    case simdjson::CAPACITY:
      return ResourceExhaustedError(message).WithReason("json_too_large");
    case simdjson::MEMALLOC:
      return ResourceExhaustedError(message).WithReason("json_out_of_memory");
    default:
      return InvalidArgumentError(message).WithReason("json_malformed");
  }
}

}  // namespace

std::string_view TypeName(Type type) {
  switch (type) {
    case Type::kNull:
      return "null";
    case Type::kBool:
      return "a boolean";
    case Type::kInt64:
    case Type::kUint64:
    case Type::kDouble:
      return "a number";
    case Type::kString:
      return "a string";
    case Type::kArray:
      return "an array";
    case Type::kObject:
      return "an object";
  }
  return "a value";
}

// --- Value ---

Type Value::type() const {
  if (!present_) return Type::kNull;
  return ToType(ValueAccess::Element(*this).type());
}

bool Value::is_null() const { return present_ && type() == Type::kNull; }
bool Value::is_bool() const { return present_ && type() == Type::kBool; }
bool Value::is_int64() const { return present_ && type() == Type::kInt64; }
bool Value::is_uint64() const { return present_ && type() == Type::kUint64; }
bool Value::is_double() const { return present_ && type() == Type::kDouble; }
bool Value::is_number() const {
  if (!present_) return false;
  const Type t = type();
  return t == Type::kInt64 || t == Type::kUint64 || t == Type::kDouble;
}
bool Value::is_string() const { return present_ && type() == Type::kString; }
bool Value::is_array() const { return present_ && type() == Type::kArray; }
bool Value::is_object() const { return present_ && type() == Type::kObject; }

Result<std::string_view> Value::GetString() const {
  std::string_view out;
  if (!present_) return TypeError(*this, "a string");
  if (auto error = ValueAccess::Element(*this).get_string().get(out)) {
    return GetError(*this, error, "a string");
  }
  return out;
}

Result<int64_t> Value::GetInt64() const {
  int64_t out = 0;
  if (!present_) return TypeError(*this, "an integer");
  if (auto error = ValueAccess::Element(*this).get_int64().get(out)) {
    return GetError(*this, error, "a signed 64-bit integer");
  }
  return out;
}

Result<uint64_t> Value::GetUint64() const {
  uint64_t out = 0;
  if (!present_) return TypeError(*this, "an integer");
  if (auto error = ValueAccess::Element(*this).get_uint64().get(out)) {
    return GetError(*this, error, "an unsigned 64-bit integer");
  }
  return out;
}

Result<double> Value::GetDouble() const {
  double out = 0;
  if (!present_) return TypeError(*this, "a number");
  if (auto error = ValueAccess::Element(*this).get_double().get(out)) {
    return GetError(*this, error, "a number");
  }
  return out;
}

Result<bool> Value::GetBool() const {
  bool out = false;
  if (!present_) return TypeError(*this, "a boolean");
  if (auto error = ValueAccess::Element(*this).get_bool().get(out)) {
    return GetError(*this, error, "a boolean");
  }
  return out;
}

std::optional<Value> Value::Find(std::string_view key) const {
  if (!present_) return std::nullopt;
  dom::element e;
  if (ValueAccess::Element(*this).at_key(key).get(e) != simdjson::SUCCESS) return std::nullopt;
  return ValueAccess::Make(e);
}

Value Value::operator[](std::string_view key) const {
  std::optional<Value> found = Find(key);
  return found ? *found : Value();
}

Value Value::At(size_t index) const {
  if (!present_) return Value();
  dom::array a;
  if (ValueAccess::Element(*this).get_array().get(a) != simdjson::SUCCESS) return Value();
  dom::element e;
  if (a.at(index).get(e) != simdjson::SUCCESS) return Value();
  return ValueAccess::Make(e);
}

size_t Value::size() const {
  if (!present_) return 0;
  const dom::element e = ValueAccess::Element(*this);
  dom::array a;
  if (e.get_array().get(a) == simdjson::SUCCESS) return a.size();
  dom::object o;
  if (e.get_object().get(o) == simdjson::SUCCESS) return o.size();
  return 0;
}

ArrayRange Value::Items() const {
  dom::array a;
  if (!present_ || ValueAccess::Element(*this).get_array().get(a) != simdjson::SUCCESS) {
    return ArrayRange();
  }
  return ValueAccess::Items(a);
}

ObjectRange Value::Members() const {
  dom::object o;
  if (!present_ || ValueAccess::Element(*this).get_object().get(o) != simdjson::SUCCESS) {
    return ObjectRange();
  }
  return ValueAccess::Members(o);
}

std::string Value::ToJson() const {
  if (!present_) return std::string();
  return simdjson::to_string(ValueAccess::Element(*this));
}

// --- ranges ---

Value ArrayRange::Iterator::operator*() const {
  return ValueAccess::Make(*ValueAccess::Get<dom::array::iterator>(*this));
}

ArrayRange::Iterator& ArrayRange::Iterator::operator++() {
  auto it = ValueAccess::Get<dom::array::iterator>(*this);
  ++it;
  ValueAccess::Set(*this, it);
  return *this;
}

bool ArrayRange::Iterator::operator!=(const Iterator& other) const {
  if (!live_ || !ValueAccess::Live(other)) return live_ != ValueAccess::Live(other);
  return ValueAccess::Get<dom::array::iterator>(*this) !=
         ValueAccess::Get<dom::array::iterator>(other);
}

Member ObjectRange::Iterator::operator*() const {
  const auto it = ValueAccess::Get<dom::object::iterator>(*this);
  return Member{.key = it.key(), .value = ValueAccess::Make(it.value())};
}

ObjectRange::Iterator& ObjectRange::Iterator::operator++() {
  auto it = ValueAccess::Get<dom::object::iterator>(*this);
  ++it;
  ValueAccess::Set(*this, it);
  return *this;
}

bool ObjectRange::Iterator::operator!=(const Iterator& other) const {
  if (!live_ || !ValueAccess::Live(other)) return live_ != ValueAccess::Live(other);
  return ValueAccess::Get<dom::object::iterator>(*this) !=
         ValueAccess::Get<dom::object::iterator>(other);
}

// --- Parser ---

struct Parser::Impl {
  ParserLimits limits;
  dom::parser parser;
  bool allocated = false;  // whether parser has been given its depth limit

  explicit Impl(ParserLimits l) : limits(l), parser(l.max_bytes) {
    if (limits.max_depth == 0) limits.max_depth = 1;
  }

  // Makes sure the parser exists with the depth limit, holding documents of `bytes`.
  simdjson::error_code Allocate(size_t bytes) {
    bytes = std::max<size_t>(std::min(bytes, limits.max_bytes), 64);
    if (allocated && parser.capacity() >= bytes) return simdjson::SUCCESS;
    // simdjson's depth limit is exclusive: it accepts documents nesting up to max_depth - 1.
    simdjson::error_code error = parser.allocate(bytes, limits.max_depth + 1);
    if (error == simdjson::SUCCESS) allocated = true;
    return error;
  }
};

Parser::Parser(ParserLimits limits) : impl_(std::make_unique<Impl>(limits)) {}
Parser::~Parser() = default;
Parser::Parser(Parser&&) noexcept = default;
Parser& Parser::operator=(Parser&&) noexcept = default;

Status Parser::Reserve(size_t bytes) {
  if (impl_->Allocate(bytes) != simdjson::SUCCESS) {
    return ResourceExhaustedError("cannot allocate the JSON parser").WithReason("json_out_of_memory");
  }
  return Status();
}

Result<Value> Parser::Parse(std::string_view text, size_t readable) {
  if (text.size() > impl_->limits.max_bytes) return ParseError(simdjson::CAPACITY);
  // An empty view may have no address; simdjson would copy from it.
  static const char kEmpty[kPadding] = {};
  const char* data = text.empty() ? kEmpty : text.data();
  const bool padded = text.empty() || readable - text.size() >= simdjson::SIMDJSON_PADDING;
  if (simdjson::error_code error = impl_->Allocate(text.size())) return ParseError(error);
  dom::element root;
  if (simdjson::error_code error =
          impl_->parser.parse(data, text.size(), /*realloc_if_needed=*/!padded).get(root)) {
    return ParseError(error);
  }
  return ValueAccess::Make(root);
}

Result<Value> Parser::Parse(std::string_view text) { return Parse(text, text.size()); }

Result<Value> Parser::Parse(const std::string& text) { return Parse(text, text.capacity()); }

size_t Parser::capacity() const { return impl_->parser.capacity(); }

// --- bulk readers ---

namespace {

// Element conversions: each returns kNone and stores, or says why the leaf was refused.
template <typename T>
LeafError ToInteger(dom::element e, T& out) {
  using Limits = std::numeric_limits<T>;
  switch (e.type()) {
    case dom::element_type::INT64: {
      int64_t v = e.get_int64().value_unsafe();
      if constexpr (std::is_signed_v<T>) {
        if (v < static_cast<int64_t>(Limits::min()) || v > static_cast<int64_t>(Limits::max())) {
          return LeafError::kRange;
        }
      } else {
        if (v < 0 || static_cast<uint64_t>(v) > static_cast<uint64_t>(Limits::max())) {
          return LeafError::kRange;
        }
      }
      out = static_cast<T>(v);
      return LeafError::kNone;
    }
    case dom::element_type::UINT64: {
      // UINT64 holds only values above INT64_MAX.
      uint64_t v = e.get_uint64().value_unsafe();
      if (v > static_cast<uint64_t>(Limits::max())) return LeafError::kRange;
      out = static_cast<T>(v);
      return LeafError::kNone;
    }
    case dom::element_type::DOUBLE:
      return LeafError::kNotInteger;
    default:
      return LeafError::kType;
  }
}

LeafError ToDouble(dom::element e, double& out) {
  switch (e.type()) {
    case dom::element_type::INT64:
      out = static_cast<double>(e.get_int64().value_unsafe());
      return LeafError::kNone;
    case dom::element_type::UINT64:
      out = static_cast<double>(e.get_uint64().value_unsafe());
      return LeafError::kNone;
    case dom::element_type::DOUBLE:
      out = e.get_double().value_unsafe();
      return LeafError::kNone;
    case dom::element_type::NULL_VALUE:
      // JSON has no NaN: null is a missing value.
      out = std::numeric_limits<double>::quiet_NaN();
      return LeafError::kNone;
    default:
      return LeafError::kType;
  }
}

// The smallest magnitude that rounds to infinity as a float: halfway between FLT_MAX and
// 2^128 (ties go to the even neighbour, which is 2^128).
constexpr double kFloatOverflow = 0x1.ffffffp127;

LeafError ToFloat(dom::element e, float& out) {
  double d = 0;
  LeafError error = ToDouble(e, d);
  if (error != LeafError::kNone) return error;
  if (std::isnan(d)) {
    out = std::numeric_limits<float>::quiet_NaN();
    return LeafError::kNone;
  }
  if (std::fabs(d) >= kFloatOverflow) return LeafError::kRange;
  out = static_cast<float>(d);
  return LeafError::kNone;
}

LeafError ToBool(dom::element e, uint8_t& out) {
  if (e.type() != dom::element_type::BOOL) return LeafError::kType;
  out = e.get_bool().value_unsafe() ? 1 : 0;
  return LeafError::kNone;
}

LeafError ToString(dom::element e, std::string& out) {
  std::string_view s;
  if (e.get_string().get(s) != simdjson::SUCCESS) return LeafError::kType;
  out.assign(s);
  return LeafError::kNone;
}

LeafError Convert(dom::element e, double& out) { return ToDouble(e, out); }
LeafError Convert(dom::element e, float& out) { return ToFloat(e, out); }
LeafError Convert(dom::element e, std::string& out) { return ToString(e, out); }
template <typename T>
  requires std::is_integral_v<T>
LeafError Convert(dom::element e, T& out) {
  return ToInteger(e, out);
}

// Calls leaf(element) for every non-array element under `array`, depth first, until leaf
// returns false. Recursion is bounded by the parser's depth limit.
template <typename Leaf>
bool WalkLeaves(dom::array array, Leaf& leaf) {
  for (dom::element child : array) {
    if (child.type() == dom::element_type::ARRAY) {
      if (!WalkLeaves(child.get_array().value_unsafe(), leaf)) return false;
    } else if (!leaf(child)) {
      return false;
    }
  }
  return true;
}

template <typename T, typename Conv>
LeafRead Fill(const Value& array, std::span<T> out, Conv convert) {
  LeafRead read;
  dom::array a;
  if (!ValueAccess::Present(array) ||
      ValueAccess::Element(array).get_array().get(a) != simdjson::SUCCESS) {
    return read;
  }
  const size_t capacity = out.size();
  T* const data = out.data();
  size_t index = 0;
  auto leaf = [&](dom::element e) {
    if (index == capacity) {
      read.error = LeafError::kTooMany;
      return false;
    }
    const LeafError error = convert(e, data[index]);
    if (error != LeafError::kNone) {
      read.error = error;
      read.bad = ValueAccess::Make(e);
      return false;
    }
    ++index;
    return true;
  };
  WalkLeaves(a, leaf);
  read.count = index;
  return read;
}

}  // namespace

template <typename T>
LeafRead ReadLeaves(const Value& array, std::span<T> out) {
  return Fill(array, out, [](dom::element e, T& v) { return Convert(e, v); });
}

LeafRead ReadBoolLeaves(const Value& array, std::span<uint8_t> out) {
  return Fill(array, out, ToBool);
}

size_t CountLeaves(const Value& array) {
  dom::array a;
  if (!ValueAccess::Present(array) ||
      ValueAccess::Element(array).get_array().get(a) != simdjson::SUCCESS) {
    return 0;
  }
  size_t count = 0;
  auto leaf = [&count](dom::element) {
    ++count;
    return true;
  };
  WalkLeaves(a, leaf);
  return count;
}

template LeafRead ReadLeaves<int8_t>(const Value&, std::span<int8_t>);
template LeafRead ReadLeaves<int16_t>(const Value&, std::span<int16_t>);
template LeafRead ReadLeaves<int32_t>(const Value&, std::span<int32_t>);
template LeafRead ReadLeaves<int64_t>(const Value&, std::span<int64_t>);
template LeafRead ReadLeaves<uint8_t>(const Value&, std::span<uint8_t>);
template LeafRead ReadLeaves<uint16_t>(const Value&, std::span<uint16_t>);
template LeafRead ReadLeaves<uint32_t>(const Value&, std::span<uint32_t>);
template LeafRead ReadLeaves<uint64_t>(const Value&, std::span<uint64_t>);
template LeafRead ReadLeaves<float>(const Value&, std::span<float>);
template LeafRead ReadLeaves<double>(const Value&, std::span<double>);
template LeafRead ReadLeaves<std::string>(const Value&, std::span<std::string>);

}  // namespace outpost::json
