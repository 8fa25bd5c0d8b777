#include "engine/xgboost_model_check.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstddef>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace outpost::engine {
namespace {

// ---------------------------------------------------------------------------------------------
// The document tree both parsers build. Numbers keep only what the checks need: the value of
// an integer and the kind of everything else.

enum class Kind : uint8_t { kNull, kBool, kInt, kFloat, kString, kArray, kObject };

struct Scalar {
  int64_t value = 0;  // for kInt and kBool
  Kind kind = Kind::kNull;
};

struct KeyValue;

struct Node {
  Kind kind = Kind::kNull;
  int64_t value = 0;  // kInt, kBool
  std::string text;   // kString
  // kArray: elements that are all scalars (numbers, booleans, nulls) live in `scalars`, which
  // is compact enough for the large node arrays of big models; as soon as one element is a
  // string, array or object, every element lives in `items`, in order.
  std::vector<Scalar> scalars;
  std::vector<Node> items;
  // kObject: members sorted by key; keys are unique (duplicates are refused).
  std::vector<KeyValue> members;

  size_t size() const { return items.empty() ? scalars.size() : items.size(); }
};

struct KeyValue {
  std::string key;
  Node value;
};

Node FromScalar(const Scalar& s) {
  Node n;
  n.kind = s.kind;
  n.value = s.value;
  return n;
}

// Appends a parsed element to an array node, keeping the scalars/items rule above.
void AppendScalar(Node& array, const Scalar& s) {
  if (array.items.empty()) {
    array.scalars.push_back(s);
  } else {
    array.items.push_back(FromScalar(s));
  }
}
void AppendNode(Node& array, Node&& n) {
  if (array.items.empty() && !array.scalars.empty()) {
    array.items.reserve(array.scalars.size() + 1);
    for (const Scalar& s : array.scalars) array.items.push_back(FromScalar(s));
    array.scalars.clear();
    array.scalars.shrink_to_fit();
  }
  array.items.push_back(std::move(n));
}

// Sorts an object's members and refuses duplicate keys: XGBoost's JSON reader keeps the last
// duplicate and its UBJSON reader the first, so a duplicate could make it see a different
// document than the one checked here.
Status FinishObject(Node& object) {
  std::sort(object.members.begin(), object.members.end(),
            [](const KeyValue& a, const KeyValue& b) { return a.key < b.key; });
  for (size_t i = 1; i < object.members.size(); ++i) {
    if (object.members[i].key == object.members[i - 1].key) {
      return InvalidArgumentError("duplicate key \"" + object.members[i].key + "\"");
    }
  }
  return Status();
}

// ---------------------------------------------------------------------------------------------
// JSON, as XGBoost 1.7 writes it: RFC 8259 plus the number literals NaN, Infinity and
// -Infinity. String escapes are limited to those XGBoost's reader understands (\" \\ \r \n \t
// and \uXXXX, which XGBoost keeps as the six characters, so this parser does too).

class JsonParser {
 public:
  JsonParser(std::string_view in, int max_depth) : in_(in), max_depth_(max_depth) {}

  Status ParseDocument(Node& root) {
    SkipSpace();
    OUTPOST_RETURN_IF_ERROR(ParseNode(root, 0));
    SkipSpace();
    if (pos_ != in_.size()) return Error("bytes after the end of the document");
    return Status();
  }

 private:
  Status Error(std::string_view what) const {
    return InvalidArgumentError("malformed JSON at byte " + std::to_string(pos_) + ": " +
                                std::string(what));
  }
  bool AtEnd() const { return pos_ >= in_.size(); }
  char Peek() const { return AtEnd() ? '\0' : in_[pos_]; }
  void SkipSpace() {
    while (!AtEnd()) {
      char c = in_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++pos_;
    }
  }
  bool Consume(std::string_view word) {
    if (in_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }
  static bool IsScalarStart(char c) { return c != '{' && c != '[' && c != '"'; }

  // Strings, arrays and objects.
  Status ParseNode(Node& out, int depth) {
    char c = Peek();
    if (c == '{') return ParseObject(out, depth + 1);
    if (c == '[') return ParseArray(out, depth + 1);
    if (c == '"') {
      out.kind = Kind::kString;
      return ParseString(out.text);
    }
    Scalar s;
    OUTPOST_RETURN_IF_ERROR(ParseScalar(s));
    out = FromScalar(s);
    return Status();
  }

  Status ParseObject(Node& out, int depth) {
    if (depth > max_depth_) return Error("nested deeper than " + std::to_string(max_depth_));
    out.kind = Kind::kObject;
    ++pos_;  // '{'
    SkipSpace();
    if (Peek() == '}') {
      ++pos_;
      return Status();
    }
    while (true) {
      SkipSpace();
      if (Peek() != '"') return Error("expected a key");
      std::string key;
      OUTPOST_RETURN_IF_ERROR(ParseString(key));
      SkipSpace();
      if (!Consume(":")) return Error("expected ':'");
      SkipSpace();
      Node value;
      OUTPOST_RETURN_IF_ERROR(ParseNode(value, depth));
      out.members.push_back(KeyValue{std::move(key), std::move(value)});
      SkipSpace();
      if (Consume("}")) break;
      if (!Consume(",")) return Error("expected ',' or '}'");
    }
    Status s = FinishObject(out);
    return s.ok() ? s : Error(s.message());
  }

  Status ParseArray(Node& out, int depth) {
    if (depth > max_depth_) return Error("nested deeper than " + std::to_string(max_depth_));
    out.kind = Kind::kArray;
    ++pos_;  // '['
    SkipSpace();
    if (Consume("]")) return Status();
    while (true) {
      SkipSpace();
      if (IsScalarStart(Peek())) {
        Scalar s;
        OUTPOST_RETURN_IF_ERROR(ParseScalar(s));
        AppendScalar(out, s);
      } else {
        Node item;
        OUTPOST_RETURN_IF_ERROR(ParseNode(item, depth));
        AppendNode(out, std::move(item));
      }
      SkipSpace();
      if (Consume("]")) return Status();
      if (!Consume(",")) return Error("expected ',' or ']'");
    }
  }

  Status ParseString(std::string& out) {
    ++pos_;  // '"'
    while (true) {
      if (AtEnd()) return Error("unterminated string");
      unsigned char c = static_cast<unsigned char>(in_[pos_++]);
      if (c == '"') return Status();
      if (c < 0x20) return Error("control character in a string");
      if (c != '\\') {
        out.push_back(static_cast<char>(c));
        continue;
      }
      if (AtEnd()) return Error("unterminated string");
      char e = in_[pos_++];
      switch (e) {
        case '"':
          out.push_back('"');
          break;
        case '\\':
          out.push_back('\\');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          if (in_.size() - pos_ < 4) return Error("short \\u escape");
          for (size_t i = 0; i < 4; ++i) {
            if (!std::isxdigit(static_cast<unsigned char>(in_[pos_ + i]))) {
              return Error("bad \\u escape");
            }
          }
          out.append("\\u");
          out.append(in_.substr(pos_, 4));
          pos_ += 4;
          break;
        }
        default:
          return Error("unsupported escape in a string");
      }
    }
  }

  Status ParseScalar(Scalar& out) {
    if (Consume("true")) {
      out = {1, Kind::kBool};
      return Status();
    }
    if (Consume("false")) {
      out = {0, Kind::kBool};
      return Status();
    }
    if (Consume("null")) {
      out = {0, Kind::kNull};
      return Status();
    }
    if (Consume("NaN") || Consume("Infinity") || Consume("-Infinity")) {
      out = {0, Kind::kFloat};
      return Status();
    }
    return ParseNumber(out);
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? ; an integer unless it has a fraction or an
  // exponent (XGBoost's rule). Integers must fit int64.
  Status ParseNumber(Scalar& out) {
    bool negative = Consume("-");
    if (!std::isdigit(static_cast<unsigned char>(Peek()))) return Error("expected a value");
    // Magnitude accumulated as unsigned so that INT64_MIN fits.
    uint64_t magnitude = 0;
    bool overflow = false;
    const uint64_t limit = negative ? uint64_t{1} << 63 : uint64_t{INT64_MAX};
    if (Peek() == '0') {
      ++pos_;
    } else {
      while (std::isdigit(static_cast<unsigned char>(Peek()))) {
        uint64_t digit = static_cast<uint64_t>(in_[pos_++] - '0');
        if (magnitude > (limit - digit) / 10) overflow = true;
        if (!overflow) magnitude = magnitude * 10 + digit;
      }
    }
    bool is_float = false;
    if (Consume(".")) {
      is_float = true;
      if (!std::isdigit(static_cast<unsigned char>(Peek()))) return Error("expected a digit");
      while (std::isdigit(static_cast<unsigned char>(Peek()))) ++pos_;
    }
    if (Peek() == 'e' || Peek() == 'E') {
      is_float = true;
      ++pos_;
      if (Peek() == '+' || Peek() == '-') ++pos_;
      if (!std::isdigit(static_cast<unsigned char>(Peek()))) return Error("expected a digit");
      while (std::isdigit(static_cast<unsigned char>(Peek()))) ++pos_;
    }
    if (is_float) {
      out = {0, Kind::kFloat};
      return Status();
    }
    if (overflow) return Error("integer out of range");
    int64_t value =
        negative ? static_cast<int64_t>(0 - magnitude) : static_cast<int64_t>(magnitude);
    out = {value, Kind::kInt};
    return Status();
  }

  std::string_view in_;
  size_t pos_ = 0;
  int max_depth_;
};

// ---------------------------------------------------------------------------------------------
// UBJSON, the subset XGBoost 1.7 writes and reads: markers { [ Z T F d S i U I l L C;
// object keys and strings carry an 'L' int64 length; arrays are '['...']', '[#L<n>' followed
// by n values, or typed '[$<t>#L<n>' with t one of d U l L followed by n raw values.
// Multi-byte numbers are big-endian.

class UbjsonParser {
 public:
  UbjsonParser(std::string_view in, int max_depth) : in_(in), max_depth_(max_depth) {}

  Status ParseDocument(Node& root) {
    char marker = 0;
    OUTPOST_RETURN_IF_ERROR(Next(marker));
    OUTPOST_RETURN_IF_ERROR(ParseNode(marker, root, 0));
    if (pos_ != in_.size()) return Error("bytes after the end of the document");
    return Status();
  }

 private:
  Status Error(std::string_view what) const {
    return InvalidArgumentError("malformed UBJSON at byte " + std::to_string(pos_) + ": " +
                                std::string(what));
  }
  size_t Remaining() const { return in_.size() - pos_; }
  Status Next(char& c) {
    if (pos_ >= in_.size()) return Error("unexpected end of the document");
    c = in_[pos_++];
    return Status();
  }
  bool PeekIs(char c) const { return pos_ < in_.size() && in_[pos_] == c; }

  template <typename T>
  Status ReadBigEndian(T& out) {
    if (Remaining() < sizeof(T)) return Error("unexpected end of the document");
    uint64_t v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) {
      v = (v << 8) | static_cast<unsigned char>(in_[pos_ + i]);
    }
    pos_ += sizeof(T);
    using Unsigned = std::make_unsigned_t<T>;
    out = static_cast<T>(static_cast<Unsigned>(v));
    return Status();
  }

  // 'L' then an int64 count of items of `item_bytes` bytes each (at least), which must fit in
  // what remains of the document.
  Status ReadLength(size_t item_bytes, int64_t& n) {
    char marker = 0;
    OUTPOST_RETURN_IF_ERROR(Next(marker));
    if (marker != 'L') return Error("length without the 'L' marker");
    OUTPOST_RETURN_IF_ERROR(ReadBigEndian(n));
    if (n < 0) return Error("negative length");
    if (static_cast<uint64_t>(n) > Remaining() / item_bytes) {
      return Error("length " + std::to_string(n) + " runs past the end of the document");
    }
    return Status();
  }

  Status ReadString(std::string& out) {
    int64_t n = 0;
    OUTPOST_RETURN_IF_ERROR(ReadLength(1, n));
    out.assign(in_.substr(pos_, static_cast<size_t>(n)));
    pos_ += static_cast<size_t>(n);
    return Status();
  }

  static bool IsContainer(char marker) { return marker == '{' || marker == '[' || marker == 'S'; }

  Status ParseScalar(char marker, Scalar& out) {
    switch (marker) {
      case 'Z':
        out = {0, Kind::kNull};
        return Status();
      case 'T':
        out = {1, Kind::kBool};
        return Status();
      case 'F':
        out = {0, Kind::kBool};
        return Status();
      case 'd': {
        int32_t bits = 0;
        OUTPOST_RETURN_IF_ERROR(ReadBigEndian(bits));
        out = {0, Kind::kFloat};
        return Status();
      }
      case 'i':
      case 'C': {
        int8_t v = 0;
        OUTPOST_RETURN_IF_ERROR(ReadBigEndian(v));
        out = {v, Kind::kInt};
        return Status();
      }
      case 'U': {
        uint8_t v = 0;
        OUTPOST_RETURN_IF_ERROR(ReadBigEndian(v));
        out = {v, Kind::kInt};
        return Status();
      }
      case 'I': {
        int16_t v = 0;
        OUTPOST_RETURN_IF_ERROR(ReadBigEndian(v));
        out = {v, Kind::kInt};
        return Status();
      }
      case 'l': {
        int32_t v = 0;
        OUTPOST_RETURN_IF_ERROR(ReadBigEndian(v));
        out = {v, Kind::kInt};
        return Status();
      }
      case 'L': {
        int64_t v = 0;
        OUTPOST_RETURN_IF_ERROR(ReadBigEndian(v));
        out = {v, Kind::kInt};
        return Status();
      }
      default: {
        --pos_;
        return Error("unsupported marker '" + std::string(1, marker) + "'");
      }
    }
  }

  Status ParseNode(char marker, Node& out, int depth) {
    switch (marker) {
      case '{':
        return ParseObject(out, depth + 1);
      case '[':
        return ParseArray(out, depth + 1);
      case 'S':
        out.kind = Kind::kString;
        return ReadString(out.text);
      default: {
        Scalar s;
        OUTPOST_RETURN_IF_ERROR(ParseScalar(marker, s));
        out = FromScalar(s);
        return Status();
      }
    }
  }

  Status ParseElement(Node& array, int depth) {
    char marker = 0;
    OUTPOST_RETURN_IF_ERROR(Next(marker));
    if (IsContainer(marker)) {
      Node item;
      OUTPOST_RETURN_IF_ERROR(ParseNode(marker, item, depth));
      AppendNode(array, std::move(item));
    } else {
      Scalar s;
      OUTPOST_RETURN_IF_ERROR(ParseScalar(marker, s));
      AppendScalar(array, s);
    }
    return Status();
  }

  Status ParseObject(Node& out, int depth) {
    if (depth > max_depth_) return Error("nested deeper than " + std::to_string(max_depth_));
    out.kind = Kind::kObject;
    while (true) {
      if (PeekIs('}')) {
        ++pos_;
        break;
      }
      std::string key;
      OUTPOST_RETURN_IF_ERROR(ReadString(key));
      char marker = 0;
      OUTPOST_RETURN_IF_ERROR(Next(marker));
      Node value;
      OUTPOST_RETURN_IF_ERROR(ParseNode(marker, value, depth));
      out.members.push_back(KeyValue{std::move(key), std::move(value)});
    }
    Status s = FinishObject(out);
    return s.ok() ? s : Error(s.message());
  }

  Status ParseArray(Node& out, int depth) {
    if (depth > max_depth_) return Error("nested deeper than " + std::to_string(max_depth_));
    out.kind = Kind::kArray;
    if (PeekIs('$')) {
      ++pos_;
      char type = 0;
      OUTPOST_RETURN_IF_ERROR(Next(type));
      size_t size = 0;
      switch (type) {
        case 'd':
          size = 4;
          break;
        case 'U':
          size = 1;
          break;
        case 'l':
          size = 4;
          break;
        case 'L':
          size = 8;
          break;
        default:
          return Error("unsupported typed array of '" + std::string(1, type) + "'");
      }
      char hash = 0;
      OUTPOST_RETURN_IF_ERROR(Next(hash));
      if (hash != '#') return Error("typed array without a count");
      int64_t n = 0;
      OUTPOST_RETURN_IF_ERROR(ReadLength(size, n));
      out.scalars.resize(static_cast<size_t>(n));
      for (Scalar& s : out.scalars) OUTPOST_RETURN_IF_ERROR(ParseScalar(type, s));
      return Status();
    }
    if (PeekIs('#')) {
      ++pos_;
      int64_t n = 0;
      OUTPOST_RETURN_IF_ERROR(ReadLength(1, n));
      for (int64_t i = 0; i < n; ++i) OUTPOST_RETURN_IF_ERROR(ParseElement(out, depth));
      return Status();
    }
    while (true) {
      if (PeekIs(']')) {
        ++pos_;
        return Status();
      }
      OUTPOST_RETURN_IF_ERROR(ParseElement(out, depth));
    }
  }

  std::string_view in_;
  size_t pos_ = 0;
  int max_depth_;
};

// ---------------------------------------------------------------------------------------------
// The checks.

// Objectives whose prediction transform Outpost has verified to be safe for any input once the
// model passes these checks (element-wise transforms, or softmax with a checked class count).
constexpr std::array<std::string_view, 19> kSupportedObjectives = {
    "reg:squarederror",
    "reg:linear",
    "reg:squaredlogerror",
    "reg:logistic",
    "reg:pseudohubererror",
    "reg:absoluteerror",
    "reg:gamma",
    "reg:tweedie",
    "count:poisson",
    "binary:logistic",
    "binary:logitraw",
    "binary:hinge",
    "multi:softmax",
    "multi:softprob",
    "rank:pairwise",
    "rank:ndcg",
    "rank:map",
    "survival:cox",
    "survival:aft",
};

constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();

class Checker {
 public:
  explicit Checker(const XGBoostCheckLimits& limits) : limits_(limits) {}

  Result<XGBoostModelSummary> Check(const Node& root) {
    XGBoostModelSummary summary;
    if (root.kind != Kind::kObject) return Fail("", "the document is not an object");
    OUTPOST_ASSIGN_OR_RETURN(const Node* version, Member(root, "version", "", Kind::kArray));
    if (version->scalars.size() != 3 ||
        !std::all_of(version->scalars.begin(), version->scalars.end(),
                     [](const Scalar& s) { return s.kind == Kind::kInt; })) {
      return Fail("version", "expected [major, minor, patch]");
    }
    OUTPOST_ASSIGN_OR_RETURN(const Node* learner, Member(root, "learner", "", Kind::kObject));

    // learner.learner_model_param: sizes of the input and of the output.
    OUTPOST_ASSIGN_OR_RETURN(const Node* param,
                             Member(*learner, "learner_model_param", "learner", Kind::kObject));
    const std::string param_path = "learner.learner_model_param";
    OUTPOST_ASSIGN_OR_RETURN(summary.num_feature,
                             IntParam(*param, "num_feature", param_path, 1, limits_.max_features));
    OUTPOST_ASSIGN_OR_RETURN(
        summary.num_class, IntParam(*param, "num_class", param_path, 0, limits_.max_output_groups));
    if (FindMember(*param, "num_target") != nullptr) {
      OUTPOST_ASSIGN_OR_RETURN(summary.num_target, IntParam(*param, "num_target", param_path, 1,
                                                            limits_.max_output_groups));
    }
    OUTPOST_ASSIGN_OR_RETURN(const Node* base_score,
                             Member(*param, "base_score", param_path, Kind::kString));
    (void)base_score;
    summary.output_groups = std::max<int64_t>({summary.num_class, summary.num_target, 1});

    // learner.objective
    OUTPOST_ASSIGN_OR_RETURN(const Node* objective,
                             Member(*learner, "objective", "learner", Kind::kObject));
    OUTPOST_ASSIGN_OR_RETURN(const Node* objective_name,
                             Member(*objective, "name", "learner.objective", Kind::kString));
    summary.objective = objective_name->text;
    if (std::find(kSupportedObjectives.begin(), kSupportedObjectives.end(), summary.objective) ==
        kSupportedObjectives.end()) {
      return Fail("learner.objective.name",
                  "objective \"" + summary.objective + "\" is not supported by Outpost");
    }
    if (summary.objective.starts_with("multi:")) {
      const std::string path = "learner.objective.softmax_multiclass_param";
      OUTPOST_ASSIGN_OR_RETURN(const Node* softmax, Member(*objective, "softmax_multiclass_param",
                                                           "learner.objective", Kind::kObject));
      OUTPOST_ASSIGN_OR_RETURN(int64_t classes,
                               IntParam(*softmax, "num_class", path, 1, limits_.max_output_groups));
      if (classes != summary.num_class) {
        return Fail(path + ".num_class", "says " + std::to_string(classes) +
                                             " classes but the model has " +
                                             std::to_string(summary.num_class));
      }
    }

    // learner.gradient_booster
    OUTPOST_ASSIGN_OR_RETURN(const Node* booster,
                             Member(*learner, "gradient_booster", "learner", Kind::kObject));
    const std::string booster_path = "learner.gradient_booster";
    OUTPOST_ASSIGN_OR_RETURN(const Node* booster_name,
                             Member(*booster, "name", booster_path, Kind::kString));
    summary.booster = booster_name->text;
    if (summary.booster == "gbtree") {
      OUTPOST_ASSIGN_OR_RETURN(const Node* model,
                               Member(*booster, "model", booster_path, Kind::kObject));
      OUTPOST_ASSIGN_OR_RETURN(summary.num_trees,
                               CheckTrees(*model, booster_path + ".model", summary));
    } else if (summary.booster == "dart") {
      OUTPOST_ASSIGN_OR_RETURN(const Node* gbtree,
                               Member(*booster, "gbtree", booster_path, Kind::kObject));
      OUTPOST_ASSIGN_OR_RETURN(const Node* model,
                               Member(*gbtree, "model", booster_path + ".gbtree", Kind::kObject));
      OUTPOST_ASSIGN_OR_RETURN(summary.num_trees,
                               CheckTrees(*model, booster_path + ".gbtree.model", summary));
      OUTPOST_ASSIGN_OR_RETURN(const Node* weights,
                               Member(*booster, "weight_drop", booster_path, Kind::kArray));
      if (weights->size() != static_cast<size_t>(summary.num_trees)) {
        return Fail(booster_path + ".weight_drop",
                    "has " + std::to_string(weights->size()) + " weights for " +
                        std::to_string(summary.num_trees) + " trees");
      }
    } else if (summary.booster == "gblinear") {
      OUTPOST_ASSIGN_OR_RETURN(const Node* model,
                               Member(*booster, "model", booster_path, Kind::kObject));
      OUTPOST_ASSIGN_OR_RETURN(const Node* weights,
                               Member(*model, "weights", booster_path + ".model", Kind::kArray));
      // One weight per feature and output group, then one bias per group.
      const int64_t expected = (summary.num_feature + 1) * summary.output_groups;
      if (!weights->items.empty() || static_cast<int64_t>(weights->size()) != expected) {
        return Fail(booster_path + ".model.weights",
                    "expected " + std::to_string(expected) + " numbers, found " +
                        std::to_string(weights->size()) + " elements");
      }
    } else {
      return Fail(booster_path + ".name",
                  "booster \"" + summary.booster + "\" is not supported by Outpost");
    }
    return summary;
  }

 private:
  static Status Fail(const std::string& path, std::string_view what) {
    return InvalidArgumentError(path.empty() ? std::string(what) : path + ": " + std::string(what));
  }
  static std::string Join(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
  }
  static std::string_view KindName(Kind kind) {
    switch (kind) {
      case Kind::kNull:
        return "null";
      case Kind::kBool:
        return "a boolean";
      case Kind::kInt:
        return "an integer";
      case Kind::kFloat:
        return "a number";
      case Kind::kString:
        return "a string";
      case Kind::kArray:
        return "an array";
      case Kind::kObject:
        return "an object";
    }
    return "?";
  }

  static const Node* FindMember(const Node& object, std::string_view key) {
    auto it = std::lower_bound(object.members.begin(), object.members.end(), key,
                               [](const KeyValue& m, std::string_view k) { return m.key < k; });
    if (it == object.members.end() || it->key != key) return nullptr;
    return &it->value;
  }

  static Result<const Node*> Member(const Node& object, std::string_view key,
                                    const std::string& path, Kind kind) {
    const Node* n = FindMember(object, key);
    if (n == nullptr) return Fail(Join(path, key), "missing");
    if (n->kind != kind) {
      return Fail(Join(path, key), "expected " + std::string(KindName(kind)) + ", found " +
                                       std::string(KindName(n->kind)));
    }
    return n;
  }

  // XGBoost keeps parameters as decimal strings ("num_feature": "8"). Only plain decimal
  // integers are accepted, so that XGBoost's own parsing of the string cannot differ.
  static Result<int64_t> IntParam(const Node& object, std::string_view key, const std::string& path,
                                  int64_t min, int64_t max) {
    OUTPOST_ASSIGN_OR_RETURN(const Node* n, Member(object, key, path, Kind::kString));
    const std::string& t = n->text;
    size_t start = (!t.empty() && t[0] == '-') ? 1 : 0;
    bool digits = t.size() > start && t.size() - start <= 18 &&
                  std::all_of(t.begin() + static_cast<std::ptrdiff_t>(start), t.end(),
                              [](char c) { return c >= '0' && c <= '9'; });
    if (!digits) return Fail(Join(path, key), "\"" + t + "\" is not a decimal integer");
    int64_t v = 0;
    std::from_chars(t.data(), t.data() + t.size(), v);  // cannot fail: at most 18 digits
    if (v < min || v > max) {
      return Fail(Join(path, key), std::to_string(v) + " is outside [" + std::to_string(min) +
                                       ", " + std::to_string(max) + "]");
    }
    return v;
  }

  // An array of exactly `n` elements; when `ints` is set, all of them integers.
  static Result<const Node*> SizedArray(const Node& object, std::string_view key,
                                        const std::string& path, size_t n, bool ints) {
    OUTPOST_ASSIGN_OR_RETURN(const Node* a, Member(object, key, path, Kind::kArray));
    if (a->size() != n) {
      return Fail(Join(path, key),
                  "has " + std::to_string(a->size()) + " elements, expected " + std::to_string(n));
    }
    if (ints &&
        (!a->items.empty() || !std::all_of(a->scalars.begin(), a->scalars.end(),
                                           [](const Scalar& s) { return s.kind == Kind::kInt; }))) {
      return Fail(Join(path, key), "expected integers");
    }
    return a;
  }

  // gbtree_model_param, trees and tree_info of a gbtree (or of dart's inner gbtree).
  Result<int64_t> CheckTrees(const Node& model, const std::string& path,
                             const XGBoostModelSummary& summary) {
    OUTPOST_ASSIGN_OR_RETURN(const Node* param,
                             Member(model, "gbtree_model_param", path, Kind::kObject));
    const std::string param_path = path + ".gbtree_model_param";
    OUTPOST_ASSIGN_OR_RETURN(int64_t num_trees,
                             IntParam(*param, "num_trees", param_path, 0, kInt32Max));
    OUTPOST_ASSIGN_OR_RETURN(int64_t parallel,
                             IntParam(*param, "num_parallel_tree", param_path, 1, kInt32Max));
    (void)parallel;
    OUTPOST_ASSIGN_OR_RETURN(const Node* trees, Member(model, "trees", path, Kind::kArray));
    if (trees->size() != static_cast<size_t>(num_trees)) {
      return Fail(path + ".trees", "has " + std::to_string(trees->size()) +
                                       " trees but gbtree_model_param.num_trees says " +
                                       std::to_string(num_trees));
    }
    if (!trees->scalars.empty()) return Fail(path + ".trees", "expected objects");
    OUTPOST_ASSIGN_OR_RETURN(
        const Node* info,
        SizedArray(model, "tree_info", path, static_cast<size_t>(num_trees), /*ints=*/true));
    for (size_t i = 0; i < info->scalars.size(); ++i) {
      int64_t group = info->scalars[i].value;
      if (group < 0 || group >= summary.output_groups) {
        return Fail(path + ".tree_info[" + std::to_string(i) + "]",
                    "output group " + std::to_string(group) + " is outside [0, " +
                        std::to_string(summary.output_groups) + ")");
      }
    }
    for (size_t t = 0; t < trees->items.size(); ++t) {
      OUTPOST_RETURN_IF_ERROR(CheckTree(trees->items[t], static_cast<int64_t>(t),
                                        path + ".trees[" + std::to_string(t) + "]", summary));
    }
    return num_trees;
  }

  Status CheckTree(const Node& tree, int64_t index, const std::string& path,
                   const XGBoostModelSummary& summary) {
    if (tree.kind != Kind::kObject) return Fail(path, "expected an object");
    OUTPOST_ASSIGN_OR_RETURN(const Node* id, Member(tree, "id", path, Kind::kInt));
    if (id->value != index) {
      return Fail(path + ".id",
                  "is " + std::to_string(id->value) + ", expected " + std::to_string(index));
    }
    OUTPOST_ASSIGN_OR_RETURN(const Node* param, Member(tree, "tree_param", path, Kind::kObject));
    OUTPOST_ASSIGN_OR_RETURN(int64_t num_nodes,
                             IntParam(*param, "num_nodes", path + ".tree_param", 1, kInt32Max));
    const size_t n = static_cast<size_t>(num_nodes);
    for (std::string_view key :
         {"split_conditions", "default_left", "loss_changes", "sum_hessian", "base_weights"}) {
      OUTPOST_RETURN_IF_ERROR(SizedArray(tree, key, path, n, /*ints=*/false).status());
    }
    OUTPOST_ASSIGN_OR_RETURN(const Node* lefts, SizedArray(tree, "left_children", path, n, true));
    OUTPOST_ASSIGN_OR_RETURN(const Node* rights, SizedArray(tree, "right_children", path, n, true));
    OUTPOST_ASSIGN_OR_RETURN(const Node* parents, SizedArray(tree, "parents", path, n, true));
    OUTPOST_ASSIGN_OR_RETURN(const Node* splits, SizedArray(tree, "split_indices", path, n, true));
    if (FindMember(tree, "split_type") != nullptr) {
      OUTPOST_ASSIGN_OR_RETURN(const Node* types, SizedArray(tree, "split_type", path, n, true));
      for (const Scalar& s : types->scalars) {
        if (s.value != 0) {
          return Fail(path + ".split_type", "categorical splits are not supported by Outpost");
        }
      }
      OUTPOST_ASSIGN_OR_RETURN(const Node* cat_nodes,
                               Member(tree, "categories_nodes", path, Kind::kArray));
      if (cat_nodes->size() != 0) {
        return Fail(path + ".categories_nodes", "categorical splits are not supported by Outpost");
      }
    }

    auto node_at = [](const Node* a, size_t i) { return a->scalars[i].value; };
    const int64_t nodes = num_nodes;
    for (size_t i = 0; i < n; ++i) {
      int64_t l = node_at(lefts, i);
      int64_t r = node_at(rights, i);
      bool leaf = l == -1;
      if (!leaf && (l < 1 || l >= nodes || r < 1 || r >= nodes)) {
        return Fail(path, "node " + std::to_string(i) + " has children " + std::to_string(l) +
                              " and " + std::to_string(r) + " outside [1, " +
                              std::to_string(nodes) + ")");
      }
      int64_t p = node_at(parents, i);
      if (i > 0 && (p < 0 || p >= nodes)) {
        return Fail(path + ".parents", "node " + std::to_string(i) + " has parent " +
                                           std::to_string(p) + " outside [0, " +
                                           std::to_string(nodes) + ")");
      }
    }
    // Walk from the root: every node is reached at most once (so prediction always ends at a
    // leaf), and every split reads a feature the input has.
    std::vector<uint8_t> seen(n, 0);
    std::vector<size_t> stack = {0};
    seen[0] = 1;
    while (!stack.empty()) {
      size_t u = stack.back();
      stack.pop_back();
      int64_t l = node_at(lefts, u);
      if (l == -1) continue;
      int64_t feature = node_at(splits, u);
      if (feature < 0 || feature >= summary.num_feature) {
        return Fail(path + ".split_indices", "node " + std::to_string(u) + " splits on feature " +
                                                 std::to_string(feature) + " but the model has " +
                                                 std::to_string(summary.num_feature) + " features");
      }
      for (int64_t child : {l, node_at(rights, u)}) {
        size_t c = static_cast<size_t>(child);
        if (seen[c]) {
          return Fail(path,
                      "node " + std::to_string(c) + " is reached twice from the root (not a tree)");
        }
        seen[c] = 1;
        stack.push_back(c);
      }
    }
    return Status();
  }

  const XGBoostCheckLimits& limits_;
};

}  // namespace

Result<XGBoostModelSummary> CheckXGBoostModel(std::string_view bytes,
                                              const XGBoostCheckLimits& limits) {
  if (bytes.size() < 2 || bytes[0] != '{') {
    return InvalidArgumentError(
        "not an XGBoost JSON or UBJSON model (the legacy binary format is not supported)");
  }
  Node root;
  XGBoostEncoding encoding;
  if (bytes[1] == '"') {
    encoding = XGBoostEncoding::kJson;
    OUTPOST_RETURN_IF_ERROR(JsonParser(bytes, limits.max_depth).ParseDocument(root));
  } else if (std::isalpha(static_cast<unsigned char>(bytes[1]))) {
    encoding = XGBoostEncoding::kUbjson;
    OUTPOST_RETURN_IF_ERROR(UbjsonParser(bytes, limits.max_depth).ParseDocument(root));
  } else {
    return InvalidArgumentError("not an XGBoost JSON or UBJSON model");
  }
  OUTPOST_ASSIGN_OR_RETURN(XGBoostModelSummary summary, Checker(limits).Check(root));
  summary.encoding = encoding;
  return summary;
}

}  // namespace outpost::engine
