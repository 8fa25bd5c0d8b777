// The YAML adapter of Outpost (library outpost_yaml, namespace outpost::yaml): yaml.cc is the
// only file of ours that includes yaml-cpp (docs/LAYERING.md section 4). Configs, policies,
// insight rules, train.yaml and the hub's config are parsed here into an owned tree of our own
// (Node), read with typed readers that convert exactly as yaml-cpp's `as<T>()` does, and the
// model configs the hub and the shadow promotion rewrite are written back by Emit(), which
// produces yaml-cpp's emitter output byte for byte.
//
// Errors. Nothing here throws: yaml-cpp's exceptions stop in yaml.cc. A document that does
// not parse, and a reader that cannot convert a node, give InvalidArgument whose message is
// yaml-cpp's own text ("yaml-cpp: error at line 3, column 7: bad conversion", "invalid node;
// first invalid key: \"backend\"") and whose reason is kErrorReason. A caller prefixes its own
// context with WithYamlContext(), which leaves its other refusals alone.
//
// Nodes are cheap handles: copying one shares the tree below it, as yaml-cpp's do, and a
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

// Where a node starts in its document, 0-based as yaml-cpp counts (messages add 1). -1 for a
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
  // A scalar, as yaml-cpp stores one built from a string or an integer.
  static Node Scalar(std::string value);
  static Node Int(int64_t value);
  // An empty sequence or map, to fill with Push() or Set().
  static Node Sequence();
  static Node Map();

  NodeType type() const;
  // False only for kUndefined, as yaml-cpp's `if (node)`.
  explicit operator bool() const { return type() != NodeType::kUndefined; }
  bool IsDefined() const { return type() != NodeType::kUndefined; }
  bool IsNull() const { return type() == NodeType::kNull; }
  bool IsScalar() const { return type() == NodeType::kScalar; }
  bool IsSequence() const { return type() == NodeType::kSequence; }
  bool IsMap() const { return type() == NodeType::kMap; }

  // The text of a scalar; empty for any other node.
  const std::string& scalar() const;
  // The node's tag as yaml-cpp reports it ("?" for a plain scalar, "!" for a quoted one).
  const std::string& tag() const;
  Style style() const;
  Mark mark() const;

  // The items of a sequence, the entries of a map (in the document's order); empty for any
  // other node. size() counts them.
  const std::vector<Node>& items() const;
  const std::vector<std::pair<Node, Node>>& entries() const;
  size_t size() const;

  // The value of the first entry whose key is the scalar `key`. When there is none (or this
  // is not a map) the result is undefined, and reading it reports yaml-cpp's error for that
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
  void SetStyle(Style style);

  // The node converted as yaml-cpp's `node.as<T>()` converts it, for T in std::string, bool,
  // int, int64_t, uint64_t (size_t), double and float: the same spellings are accepted
  // (`true`/`yes`/`on`/`y`..., decimal, `0x` and `0o` integers, `.inf`, `.nan`) and the same
  // ones refused; a null node reads as the string "null". An error is InvalidArgument with
  // yaml-cpp's message and kErrorReason.
  template <typename T>
  Result<T> As() const;
  // A sequence of strings, as `node.as<std::vector<std::string>>()`.
  Result<std::vector<std::string>> AsStringList() const;
  // As yaml-cpp's `YAML::convert<T>::decode(node, out)`: true and `out` set when the node is a
  // scalar that converts (unlike As<std::string>(), a null node does not).
  template <typename T>
  bool Decode(T& out) const;

 private:
  struct Rep;
  friend struct Convert;  // yaml.cc's conversions to and from yaml-cpp
  Node(std::shared_ptr<Rep> rep, std::string error);
  std::shared_ptr<Rep> rep_;  // null for an undefined node
  std::string error_;         // an undefined node: the message reading it reports
};

// Parses one YAML document (the first, when there are several). An empty document is a null
// node. InvalidArgument with yaml-cpp's parse error and kErrorReason when it does not parse.
Result<Node> Parse(std::string_view text);

// The document yaml-cpp's emitter writes for `node` (without a final newline): block style
// unless a node says flow, keys in the tree's order, aliases for nodes shared within the tree.
// Internal with the emitter's message when it refuses.
Result<std::string> Emit(const Node& node);

// `status` with "<context>: " before its message when it is an error of this adapter (reason
// kErrorReason), returned as a plain InvalidArgument; any other status unchanged. Callers that
// used to catch yaml-cpp's exceptions around a whole parse use it to keep their messages.
Status WithYamlContext(const Status& status, std::string_view context);

}  // namespace outpost::yaml

#endif  // OUTPOST_BASE_YAML_YAML_H_
