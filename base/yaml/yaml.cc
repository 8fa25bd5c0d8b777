// The only file of Outpost that includes yaml-cpp (see yaml.h). Parsing runs yaml-cpp's parser
// and copies its tree into ours; the readers and the emitter hand a node back to yaml-cpp, so
// that conversions, error texts and emitted documents are yaml-cpp's own.
#include "base/yaml/yaml.h"

#include <yaml-cpp/yaml.h>

#include <exception>
#include <map>
#include <set>
#include <type_traits>

namespace outpost::yaml {

struct Node::Rep {
  NodeType type = NodeType::kNull;
  std::string scalar;
  std::string tag;
  Style style = Style::kDefault;
  Mark mark;
  std::vector<Node> items;
  std::vector<std::pair<Node, Node>> entries;
};

namespace {

const std::string& EmptyString() {
  static const std::string* empty = new std::string();
  return *empty;
}

Status YamlError(std::string_view message) {
  return InvalidArgumentError(message).WithReason(kErrorReason);
}

YAML::Mark ToYamlMark(const Mark& mark) {
  YAML::Mark out = YAML::Mark::null_mark();
  out.pos = mark.pos;
  out.line = mark.line;
  out.column = mark.column;
  return out;
}

YAML::EmitterStyle::value ToYamlStyle(Style style) {
  switch (style) {
    case Style::kBlock:
      return YAML::EmitterStyle::Block;
    case Style::kFlow:
      return YAML::EmitterStyle::Flow;
    case Style::kDefault:
      break;
  }
  return YAML::EmitterStyle::Default;
}

Style FromYamlStyle(YAML::EmitterStyle::value style) {
  switch (style) {
    case YAML::EmitterStyle::Block:
      return Style::kBlock;
    case YAML::EmitterStyle::Flow:
      return Style::kFlow;
    default:
      break;
  }
  return Style::kDefault;
}

}  // namespace

// Conversions between yaml-cpp's nodes and ours. A yaml-cpp node is identified by the address
// of its scalar string (one per node, shared by every alias of it), so that an alias becomes a
// shared handle here instead of a copy; ours by its Rep, so that emitting shares it back.
struct Convert {
  std::map<const std::string*, Node> parsed;
  std::map<const Node::Rep*, YAML::Node> emitted;
  // The nodes being copied (the path from the root) and whether an alias pointed at one of
  // them: a cycle, which shared handles would never free, so Parse refuses it.
  std::set<const std::string*> open;
  bool cycle = false;

  Node FromYaml(const YAML::Node& in) {
    const std::string* identity = &in.Scalar();
    auto it = parsed.find(identity);
    if (it != parsed.end()) {
      if (open.count(identity)) cycle = true;
      return it->second;
    }
    open.insert(identity);
    auto rep = std::make_shared<Node::Rep>();
    const YAML::Mark m = in.Mark();
    rep->mark = Mark{m.pos, m.line, m.column};
    rep->tag = in.Tag();
    Node out(rep, "");
    parsed.emplace(identity, out);
    switch (in.Type()) {
      case YAML::NodeType::Scalar:
        rep->type = NodeType::kScalar;
        rep->scalar = in.Scalar();
        break;
      case YAML::NodeType::Sequence:
        rep->type = NodeType::kSequence;
        rep->style = FromYamlStyle(in.Style());
        for (const YAML::Node& item : in) rep->items.push_back(FromYaml(item));
        break;
      case YAML::NodeType::Map:
        rep->type = NodeType::kMap;
        rep->style = FromYamlStyle(in.Style());
        for (const auto& kv : in) {
          rep->entries.emplace_back(FromYaml(kv.first), FromYaml(kv.second));
        }
        break;
      default:
        rep->type = NodeType::kNull;
        break;
    }
    open.erase(identity);
    return out;
  }

  // Drops every copied node's references to its children, so that a cyclic tree is freed.
  void BreakCycles() {
    for (auto& [identity, node] : parsed) {
      node.rep_->items.clear();
      node.rep_->entries.clear();
    }
  }

  YAML::Node ToYaml(const Node& in) {
    const Node::Rep* rep = in.rep_.get();
    if (rep == nullptr) return YAML::Node(YAML::NodeType::Undefined);
    auto it = emitted.find(rep);
    if (it != emitted.end()) return it->second;
    YAML::Node out;
    switch (rep->type) {
      case NodeType::kScalar:
        out = YAML::Node(rep->scalar);
        break;
      case NodeType::kSequence:
        out = YAML::Node(YAML::NodeType::Sequence);
        break;
      case NodeType::kMap:
        out = YAML::Node(YAML::NodeType::Map);
        break;
      default:
        out = YAML::Node(YAML::NodeType::Null);
        break;
    }
    emitted.emplace(rep, out);
    if (!rep->tag.empty()) out.SetTag(rep->tag);
    if (rep->type == NodeType::kSequence || rep->type == NodeType::kMap) {
      out.SetStyle(ToYamlStyle(rep->style));
    }
    for (const Node& item : rep->items) out.push_back(ToYaml(item));
    for (const auto& [key, value] : rep->entries) out.force_insert(ToYaml(key), ToYaml(value));
    return out;
  }

  // A yaml-cpp node with this node's type and scalar (not its children): what yaml-cpp's
  // scalar conversions look at.
  static YAML::Node Shallow(const Node& in) {
    switch (in.type()) {
      case NodeType::kScalar: {
        YAML::Node out(in.scalar());
        out.SetTag(in.tag());
        return out;
      }
      case NodeType::kSequence:
        return YAML::Node(YAML::NodeType::Sequence);
      case NodeType::kMap:
        return YAML::Node(YAML::NodeType::Map);
      default:
        return YAML::Node(YAML::NodeType::Null);
    }
  }

  static std::string BadConversion(const Node& in) {
    return YAML::BadConversion(ToYamlMark(in.mark())).what();
  }

  static const std::string& ErrorOf(const Node& in) { return in.error_; }
};

Node::Node() : rep_(std::make_shared<Rep>()) {}

Node::Node(std::shared_ptr<Rep> rep, std::string error)
    : rep_(std::move(rep)), error_(std::move(error)) {}

Node Node::Scalar(std::string value) {
  auto rep = std::make_shared<Rep>();
  rep->type = NodeType::kScalar;
  rep->scalar = std::move(value);
  return Node(std::move(rep), "");
}

Node Node::Int(int64_t value) { return Scalar(std::to_string(value)); }

Node Node::Sequence() {
  auto rep = std::make_shared<Rep>();
  rep->type = NodeType::kSequence;
  return Node(std::move(rep), "");
}

Node Node::Map() {
  auto rep = std::make_shared<Rep>();
  rep->type = NodeType::kMap;
  return Node(std::move(rep), "");
}

NodeType Node::type() const { return rep_ ? rep_->type : NodeType::kUndefined; }

const std::string& Node::scalar() const {
  return rep_ && rep_->type == NodeType::kScalar ? rep_->scalar : EmptyString();
}

const std::string& Node::tag() const { return rep_ ? rep_->tag : EmptyString(); }

Style Node::style() const { return rep_ ? rep_->style : Style::kDefault; }

Mark Node::mark() const { return rep_ ? rep_->mark : Mark{}; }

const std::vector<Node>& Node::items() const {
  static const std::vector<Node>* empty = new std::vector<Node>();
  return rep_ ? rep_->items : *empty;
}

const std::vector<std::pair<Node, Node>>& Node::entries() const {
  static const std::vector<std::pair<Node, Node>>* empty = new std::vector<std::pair<Node, Node>>();
  return rep_ ? rep_->entries : *empty;
}

size_t Node::size() const { return rep_ ? rep_->items.size() + rep_->entries.size() : 0; }

Result<std::vector<Node>> Node::ListItems() const {
  if (rep_ && rep_->type == NodeType::kMap && !rep_->entries.empty()) {
    return YamlError(YAML::InvalidNode("").what());
  }
  return items();
}

Result<std::vector<std::pair<Node, Node>>> Node::MapEntries() const {
  if (rep_ && rep_->type == NodeType::kSequence && !rep_->items.empty()) {
    return YamlError(YAML::InvalidNode("").what());
  }
  return entries();
}

Node Node::operator[](std::string_view key) const {
  if (!rep_) return *this;  // an undefined node keeps the first missing key
  if (rep_->type == NodeType::kScalar) {
    return Node(nullptr, YAML::BadSubscript(ToYamlMark(rep_->mark), std::string(key)).what());
  }
  for (const auto& [k, v] : rep_->entries) {
    if (k.IsScalar() && k.scalar() == key) return v;
  }
  return Node(nullptr, YAML::InvalidNode(std::string(key)).what());
}

Node Node::operator[](size_t index) const {
  if (rep_ && rep_->type == NodeType::kSequence && index < rep_->items.size()) {
    return rep_->items[index];
  }
  if (!rep_) return *this;
  return Node(nullptr, YAML::InvalidNode(std::to_string(index)).what());
}

void Node::Set(std::string_view key, Node value) {
  if (!rep_) return;
  if (rep_->type == NodeType::kNull) rep_->type = NodeType::kMap;
  for (auto& [k, v] : rep_->entries) {
    if (k.IsScalar() && k.scalar() == key) {
      v = std::move(value);
      return;
    }
  }
  rep_->entries.emplace_back(Scalar(std::string(key)), std::move(value));
}

bool Node::Remove(std::string_view key) {
  if (!rep_ || rep_->type != NodeType::kMap) return false;
  for (auto it = rep_->entries.begin(); it != rep_->entries.end(); ++it) {
    if (it->first.IsScalar() && it->first.scalar() == key) {
      rep_->entries.erase(it);
      return true;
    }
  }
  return false;
}

void Node::Push(Node value) {
  if (!rep_) return;
  if (rep_->type == NodeType::kNull) rep_->type = NodeType::kSequence;
  rep_->items.push_back(std::move(value));
}

void Node::SetStyle(Style style) {
  if (rep_) rep_->style = style;
}

template <typename T>
bool Node::Decode(T& out) const {
  if (!rep_) return false;
  try {
    return YAML::convert<T>::decode(Convert::Shallow(*this), out);
  } catch (const std::exception&) {
    return false;
  }
}

template <typename T>
Result<T> Node::As() const {
  if (!rep_) return YamlError(error_);
  if constexpr (std::is_same_v<T, std::string>) {
    if (rep_->type == NodeType::kNull) return std::string("null");
  }
  T out{};
  if (!Decode(out)) return YamlError(Convert::BadConversion(*this));
  return out;
}

Result<std::vector<std::string>> Node::AsStringList() const {
  if (!rep_) return YamlError(error_);
  if (rep_->type != NodeType::kSequence) return YamlError(Convert::BadConversion(*this));
  std::vector<std::string> out;
  for (const Node& item : rep_->items) {
    OUTPOST_ASSIGN_OR_RETURN(std::string s, item.As<std::string>());
    out.push_back(std::move(s));
  }
  return out;
}

template Result<std::string> Node::As<std::string>() const;
template Result<bool> Node::As<bool>() const;
template Result<int> Node::As<int>() const;
template Result<int64_t> Node::As<int64_t>() const;
template Result<uint64_t> Node::As<uint64_t>() const;
template Result<double> Node::As<double>() const;
template Result<float> Node::As<float>() const;
template bool Node::Decode<std::string>(std::string&) const;
template bool Node::Decode<bool>(bool&) const;
template bool Node::Decode<int>(int&) const;
template bool Node::Decode<int64_t>(int64_t&) const;
template bool Node::Decode<uint64_t>(uint64_t&) const;
template bool Node::Decode<double>(double&) const;
template bool Node::Decode<float>(float&) const;

Result<Node> Parse(std::string_view text) {
  try {
    YAML::Node root = YAML::Load(std::string(text));
    Convert convert;
    Node out = convert.FromYaml(root);
    if (convert.cycle) {
      convert.BreakCycles();
      return YamlError("an alias refers to a node that contains it");
    }
    return out;
  } catch (const std::exception& e) {
    return YamlError(e.what());
  }
}

Result<std::string> Emit(const Node& node) {
  try {
    Convert convert;
    YAML::Emitter emitter;
    emitter << convert.ToYaml(node);
    if (!emitter.good()) return InternalError(emitter.GetLastError());
    return std::string(emitter.c_str());
  } catch (const std::exception& e) {
    return InternalError(e.what());
  }
}

Status WithYamlContext(const Status& status, std::string_view context) {
  if (status.ok() || status.reason() != kErrorReason) return status;
  return InvalidArgumentError(std::string(context) + ": " + std::string(status.message()));
}

}  // namespace outpost::yaml
