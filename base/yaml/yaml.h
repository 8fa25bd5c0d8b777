// The YAML adapter of Outpost (library outpost_yaml, namespace outpost::yaml). yaml.cc is the
// only file of ours that includes the YAML library, the one docs/LAYERING.md section 4 names
// ("the library" below). Edge and hub configs, policies, insight rules, model configs and
// train.yaml are parsed here into an owned tree of our own (Node) and read with typed readers
// that convert exactly as the library's `as<T>()` does. The model configs that the hub's
// release step and the shadow promotion rewrite are written back by Emit(), which produces
// the library's emitter output byte for byte.
//
// Errors. Nothing here throws: the library's exceptions stop in yaml.cc. A document that does
// not parse, and a reader that cannot convert a node, give InvalidArgument whose message is
// the library's own text (a parse error, "...: error at line 3, column 7: bad conversion",
// "invalid node; first invalid key: \"backend\"") and whose reason is kErrorReason. A caller
// prefixes its own context with WithYamlContext(), which leaves its other refusals alone.
//
// Nodes are cheap handles: copying one shares the tree below it, as the library's do, and a
// document's aliases (`*name`) share the node they point at rather than copying it. A parsed
// tree is not changed by the readers; a tree being built (Set, Push) is used by one thread.
#ifndef OUTPOST_BASE_YAML_YAML_H_
#define OUTPOST_BASE_YAML_YAML_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace outpost::yaml {

// The reason of every error this adapter returns.
inline constexpr std::string_view kErrorReason = "invalid_yaml";

enum class NodeType {
  kUndefined,  // a key or index that is not there (Node::operator[] of a missing one)
  kNull,       // `~`, `null` or nothing
  kScalar,
  kSequence,
  kMap,
};

// How a sequence or map was written (and is emitted): block, flow (`[a, b]`, `{a: 1}`), or
// the emitter's choice.
enum class Style { kDefault, kBlock, kFlow };

// Where a node starts in its document, 0-based as the library counts (messages add 1). -1 for a
// node that was built, not parsed.
struct Mark {
  int pos = -1;
  int line = -1;
  int column = -1;
};

class Node {
 public:
  // A null node.
  Node();
  // A scalar, as the library stores one built from a string or an integer.
  static Node Scalar(std::string value);
  static Node Int(int64_t value);
  // An empty sequence or map, to fill with Push() or Set().
  static Node Sequence();
  static Node Map();

  NodeType type() const;
  // False only for kUndefined, as the library's `if (node)`.
  explicit operator bool() const { return type() != NodeType::kUndefined; }
  bool IsDefined() const { return type() != NodeType::kUndefined; }
  bool IsNull() const { return type() == NodeType::kNull; }
  bool IsScalar() const { return type() == NodeType::kScalar; }
  bool IsSequence() const { return type() == NodeType::kSequence; }
  bool IsMap() const { return type() == NodeType::kMap; }

  // The text of a scalar; empty for any other node.
  const std::string& scalar() const;
  // The node's tag as the library reports it ("?" for a plain scalar, "!" for a quoted one).
  const std::string& tag() const;
  Style style() const;
  Mark mark() const;

  // The items of a sequence, the entries of a map (in the document's order); empty for any
  // other node. size() counts them.
  const std::vector<Node>& items() const;
  const std::vector<std::pair<Node, Node>>& entries() const;
  size_t size() const;
  // The same for a loop over a node whose type was not checked first: a scalar or null node
  // has none, and the wrong kind of collection (a non-empty map read as a list, or a non-empty
  // list read as a map) is the library's "invalid node" error, as a range-for over a library
  // node gave.
  Result<std::vector<Node>> ListItems() const;
  Result<std::vector<std::pair<Node, Node>>> MapEntries() const;

  // The value of the first entry whose key is the scalar `key`. When there is none (or this
  // is not a map) the result is undefined, and reading it reports the library's error for that
  // lookup ("invalid node; first invalid key: ...", or "operator[] call on a scalar" when this
  // node is a scalar).
  Node operator[](std::string_view key) const;
  Node operator[](const char* key) const { return (*this)[std::string_view(key)]; }
  // The item at `index` of a sequence; undefined otherwise.
  Node operator[](size_t index) const;

  // Building. Set replaces the value of an existing key in place or appends a new entry (a
  // null node becomes a map first); Push appends to a sequence (a null node becomes one).
  void Set(std::string_view key, Node value);
  void Push(Node value);
  // Removes the first entry whose key is the scalar `key`; false when there is none.
  bool Remove(std::string_view key);
  void SetStyle(Style style);

  // The node converted as the library's `node.as<T>()` converts it, for T in std::string, bool,
  // int, int64_t, uint64_t (size_t), double and float: the same spellings are accepted
  // (`true`/`yes`/`on`/`y`..., decimal, `0x` and leading-zero octal integers, `.inf`, `.nan`)
  // and the same ones refused; a null node reads as the string "null". An error is
  // InvalidArgument with the library's message and kErrorReason.
  template <typename T>
  Result<T> As() const;
  // A sequence of strings, as `node.as<std::vector<std::string>>()`.
  Result<std::vector<std::string>> AsStringList() const;
  // As the library's own decoding (`convert<T>::decode(node, out)`): true and `out` set when
  // the node is a scalar that converts (unlike As<std::string>(), a null node does not).
  template <typename T>
  bool Decode(T& out) const;

 private:
  struct Rep;
  friend struct Convert;  // yaml.cc's conversions to and from the library
  Node(std::shared_ptr<Rep> rep, std::string error);
  std::shared_ptr<Rep> rep_;  // null for an undefined node
  std::string error_;         // an undefined node: the message reading it reports
};

// Parses one YAML document (the first, when there are several). An empty document is a null
// node. InvalidArgument with the library's parse error and kErrorReason when it does not parse,
// or when an alias points at a node that contains it (a cycle).
Result<Node> Parse(std::string_view text);

// The document the library's emitter writes for `node` (without a final newline): block style
// unless a node says flow, keys in the tree's order, aliases for nodes shared within the tree.
// Internal with the emitter's message when it refuses.
Result<std::string> Emit(const Node& node);

// `status` with "<context>: " before its message when it is an error of this adapter (reason
// kErrorReason), returned as a plain InvalidArgument; any other status unchanged. Callers that
// used to catch the library's exceptions around a whole parse use it to keep their messages.
Status WithYamlContext(const Status& status, std::string_view context);

}  // namespace outpost::yaml

#endif  // OUTPOST_BASE_YAML_YAML_H_
