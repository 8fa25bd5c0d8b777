// TreeEnsembleRegressor and TreeEnsembleClassifier (ai.onnx.ml, versions 1 and 3).
//
// Layout: when the kernel is built, every tree is re-laid out in pre-order so that a
// branch's false child is the next node and only the true child's index is stored; a node is
// 16 bytes (threshold, feature, true child, mode, missing-value flag), so a root-to-leaf walk
// touches one cache line per level. A leaf keeps its first weight inline (the single-target
// fast path) and the index of its weight list. Walks are specialised at compile time for the
// common cases — every branch BRANCH_LEQ (scikit-learn, LightGBM) or every branch BRANCH_LT
// (XGBoost), with or without missing-value tracking — and rows are scored in blocks with the
// trees in the outer loop, so a tree stays in cache while a block of rows walks it.
//
// Semantics (aggregation, base values, post-transforms, the binary special cases) follow
// ONNX Runtime, the reference that exported models are validated against; see
// engine/PIPELINE.md.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <unordered_map>

#include "engine/onnx/kernel_util.h"
#include "engine/onnx/ml_common.h"

namespace outpost::engine::onnx {
namespace {

enum NodeMode : uint8_t { kLeq = 0, kLt, kGte, kGt, kEq, kNeq, kLeaf };
enum class Aggregate : uint8_t { kSum, kAverage, kMin, kMax };

Result<NodeMode> ParseMode(const std::string& s) {
  if (s == "BRANCH_LEQ") return kLeq;
  if (s == "BRANCH_LT") return kLt;
  if (s == "BRANCH_GTE") return kGte;
  if (s == "BRANCH_GT") return kGt;
  if (s == "BRANCH_EQ") return kEq;
  if (s == "BRANCH_NEQ") return kNeq;
  if (s == "LEAF") return kLeaf;
  return InvalidArgumentError("unknown node mode \"" + s + "\"");
}

template <typename T>
struct TreeNode {
  T value;              // threshold; for a leaf its first weight
  uint32_t feature;     // for a leaf: number of weights
  uint32_t true_child;  // for a leaf: index of its first weight
  uint8_t mode;
  uint8_t missing_true;
};

template <typename T>
struct Forest {
  std::vector<TreeNode<T>> nodes;
  std::vector<uint32_t> roots;
  std::vector<uint32_t> weight_target;
  std::vector<T> weight_value;
  int64_t max_feature = -1;
  bool same_mode = true;
  uint8_t mode = kLeq;  // the common mode when same_mode
  bool has_missing = false;
};

// The attributes that describe the trees, with values read as double.
struct TreeAttributes {
  std::vector<int64_t> tree_ids, node_ids, feature_ids, true_ids, false_ids, missing_true;
  std::vector<std::string> modes;
  std::vector<double> values;
  std::vector<int64_t> target_tree_ids, target_node_ids, target_ids;
  std::vector<double> target_weights;
};

// Checks the sizes of the node attributes and of the target (or class) attributes: each
// group has one length, within the kernel's limits.
Status CheckAttributeLengths(const TreeAttributes& a) {
  const size_t n = a.tree_ids.size();
  if (n == 0) return InvalidArgumentError("the ensemble has no nodes");
  if (n > (size_t{1} << 31)) return ResourceExhaustedError("the ensemble has too many nodes");
  if (a.node_ids.size() != n || a.feature_ids.size() != n || a.true_ids.size() != n ||
      a.false_ids.size() != n || a.modes.size() != n || a.values.size() != n) {
    return InvalidArgumentError(
        "nodes_treeids, nodes_nodeids, nodes_featureids, nodes_modes, nodes_values, "
        "nodes_truenodeids and nodes_falsenodeids must have the same length");
  }
  if (a.missing_true.size() > n) {
    return InvalidArgumentError("nodes_missing_value_tracks_true is longer than the node list");
  }
  const size_t nt = a.target_ids.size();
  if (a.target_node_ids.size() != nt || a.target_tree_ids.size() != nt ||
      a.target_weights.size() != nt) {
    return InvalidArgumentError("the target (or class) attributes must have the same length");
  }
  if (nt > (size_t{1} << 31)) return ResourceExhaustedError("the ensemble has too many weights");
  return Status();
}

// A node's key in the attributes: its tree id and node id.
struct NodeKey {
  int64_t tree, node;
  bool operator==(const NodeKey& o) const { return tree == o.tree && node == o.node; }
};
struct NodeKeyHash {
  size_t operator()(const NodeKey& k) const {
    return std::hash<int64_t>()(k.tree) * 1000003u ^ std::hash<int64_t>()(k.node);
  }
};
// Node key -> the node's position in the attributes.
using NodeIndex = std::unordered_map<NodeKey, uint32_t, NodeKeyHash>;

// Parses every node's mode into `modes` and indexes the nodes by key. Refuses a node
// defined twice and a branch whose feature id is out of range.
Status IndexNodes(const TreeAttributes& a, NodeIndex& index, std::vector<uint8_t>& modes) {
  for (size_t i = 0; i < modes.size(); ++i) {
    OUTPOST_ASSIGN_OR_RETURN(modes[i], ParseMode(a.modes[i]));
    if (!index.emplace(NodeKey{a.tree_ids[i], a.node_ids[i]}, static_cast<uint32_t>(i)).second) {
      return InvalidArgumentError("node " + std::to_string(a.node_ids[i]) + " of tree " +
                                  std::to_string(a.tree_ids[i]) + " is defined twice");
    }
    if (modes[i] != kLeaf && (a.feature_ids[i] < 0 || a.feature_ids[i] > INT32_MAX)) {
      return InvalidArgumentError("node " + std::to_string(a.node_ids[i]) + " of tree " +
                                  std::to_string(a.tree_ids[i]) + " has feature id " +
                                  std::to_string(a.feature_ids[i]));
    }
  }
  return Status();
}

// Weights per leaf, in attribute order. Weights on branch nodes are ignored, as ONNX
// Runtime ignores them (old converters emitted some).
Result<std::vector<std::vector<uint32_t>>> LeafWeights(const TreeAttributes& a, int64_t n_targets,
                                                       const NodeIndex& index,
                                                       const std::vector<uint8_t>& modes) {
  std::vector<std::vector<uint32_t>> leaf_weights(modes.size());
  for (size_t k = 0; k < a.target_ids.size(); ++k) {
    auto it = index.find(NodeKey{a.target_tree_ids[k], a.target_node_ids[k]});
    if (it == index.end()) {
      return InvalidArgumentError("a weight names node " + std::to_string(a.target_node_ids[k]) +
                                  " of tree " + std::to_string(a.target_tree_ids[k]) +
                                  ", which does not exist");
    }
    if (a.target_ids[k] < 0 || a.target_ids[k] >= n_targets) {
      return InvalidArgumentError("target (or class) id " + std::to_string(a.target_ids[k]) +
                                  " is out of range for " + std::to_string(n_targets));
    }
    if (modes[it->second] == kLeaf) leaf_weights[it->second].push_back(static_cast<uint32_t>(k));
  }
  return leaf_weights;
}

// The state of laying the trees out in pre-order into `f`.
template <typename T>
struct ForestLayout {
  const TreeAttributes& a;
  const NodeIndex& index;
  const std::vector<uint8_t>& modes;
  const std::vector<std::vector<uint32_t>>& leaf_weights;
  Forest<T>& f;
  std::vector<bool> seen;  // per node in the attributes: laid out already
  // (original index, index of the parent whose true_child to patch, or -1)
  std::vector<std::pair<uint32_t, int64_t>> stack;
  int first_mode = -1;  // the first branch's mode, or -1
};

// Appends the leaf at `orig` in the attributes, with its weights.
template <typename T>
Status AppendLeaf(ForestLayout<T>& l, uint32_t orig, TreeNode<T> node, const std::string& where) {
  const auto& ws = l.leaf_weights[orig];
  if (ws.empty()) return InvalidArgumentError(where + " is a leaf without weights");
  node.true_child = static_cast<uint32_t>(l.f.weight_target.size());
  node.feature = static_cast<uint32_t>(ws.size());
  node.value = static_cast<T>(l.a.target_weights[ws[0]]);
  for (uint32_t k : ws) {
    l.f.weight_target.push_back(static_cast<uint32_t>(l.a.target_ids[k]));
    l.f.weight_value.push_back(static_cast<T>(l.a.target_weights[k]));
  }
  l.f.nodes.push_back(node);
  return Status();
}

// The position in the attributes of node `id` of the tree of node `orig`.
Result<uint32_t> ChildIndex(const TreeAttributes& a, const NodeIndex& index, uint32_t orig,
                            int64_t id, const std::string& where) {
  auto it = index.find(NodeKey{a.tree_ids[orig], id});
  if (it == index.end()) {
    return InvalidArgumentError(where + " has child " + std::to_string(id) +
                                ", which does not exist");
  }
  return it->second;
}

// Appends the branch at `orig` in the attributes, laid out at `at`, and pushes its children:
// the false child is popped first, so it lands right after this node.
template <typename T>
Status AppendBranch(ForestLayout<T>& l, uint32_t orig, uint32_t at, TreeNode<T> node,
                    const std::string& where) {
  const TreeAttributes& a = l.a;
  Forest<T>& f = l.f;
  node.feature = static_cast<uint32_t>(a.feature_ids[orig]);
  node.value = static_cast<T>(a.values[orig]);
  node.missing_true = orig < a.missing_true.size() && a.missing_true[orig] == 1;
  f.has_missing = f.has_missing || node.missing_true;
  f.max_feature = std::max<int64_t>(f.max_feature, node.feature);
  if (l.first_mode < 0) l.first_mode = node.mode;
  if (node.mode != l.first_mode) f.same_mode = false;
  OUTPOST_ASSIGN_OR_RETURN(uint32_t t, ChildIndex(a, l.index, orig, a.true_ids[orig], where));
  OUTPOST_ASSIGN_OR_RETURN(uint32_t e, ChildIndex(a, l.index, orig, a.false_ids[orig], where));
  f.nodes.push_back(node);
  l.stack.emplace_back(t, at);
  l.stack.emplace_back(e, -1);
  return Status();
}

// Lays out the tree whose root is at `root` in the attributes, in pre-order. Refuses a node
// reached twice (a cycle or a shared subtree).
template <typename T>
Status LayOutTree(ForestLayout<T>& l, size_t root) {
  const TreeAttributes& a = l.a;
  Forest<T>& f = l.f;
  f.roots.push_back(static_cast<uint32_t>(f.nodes.size()));
  l.stack.clear();
  l.stack.emplace_back(static_cast<uint32_t>(root), -1);
  while (!l.stack.empty()) {
    const uint32_t orig = l.stack.back().first;
    const int64_t patch = l.stack.back().second;
    l.stack.pop_back();
    const std::string where =
        "node " + std::to_string(a.node_ids[orig]) + " of tree " + std::to_string(a.tree_ids[orig]);
    if (l.seen[orig]) {
      return InvalidArgumentError(where + " is reached twice (a cycle or a shared subtree)");
    }
    l.seen[orig] = true;
    const auto at = static_cast<uint32_t>(f.nodes.size());
    if (patch >= 0) f.nodes[static_cast<size_t>(patch)].true_child = at;
    TreeNode<T> node{};
    node.mode = l.modes[orig];
    if (node.mode == kLeaf) {
      OUTPOST_RETURN_IF_ERROR(AppendLeaf(l, orig, node, where));
    } else {
      OUTPOST_RETURN_IF_ERROR(AppendBranch(l, orig, at, node, where));
    }
  }
  return Status();
}

template <typename T>
Result<Forest<T>> BuildForest(const TreeAttributes& a, int64_t n_targets) {
  OUTPOST_RETURN_IF_ERROR(CheckAttributeLengths(a));
  const size_t n = a.tree_ids.size();
  NodeIndex index;
  index.reserve(n);
  std::vector<uint8_t> modes(n);
  OUTPOST_RETURN_IF_ERROR(IndexNodes(a, index, modes));
  OUTPOST_ASSIGN_OR_RETURN(auto leaf_weights, LeafWeights(a, n_targets, index, modes));

  Forest<T> f;
  f.nodes.reserve(n);
  ForestLayout<T> layout{a, index, modes, leaf_weights, f, std::vector<bool>(n, false), {}, -1};
  for (size_t i = 0; i < n; ++i) {
    // ONNX Runtime's rule: a tree starts where the tree id changes; its first node is the root.
    if (i > 0 && a.tree_ids[i] == a.tree_ids[i - 1]) continue;
    OUTPOST_RETURN_IF_ERROR(LayOutTree(layout, i));
  }
  if (layout.first_mode >= 0) f.mode = static_cast<uint8_t>(layout.first_mode);
  return f;
}

template <typename X, typename T>
inline bool Goes(uint8_t mode, X v, T t) {
  switch (mode) {
    case kLeq:
      return v <= t;
    case kLt:
      return v < t;
    case kGte:
      return v >= t;
    case kGt:
      return v > t;
    case kEq:
      return v == t;
    default:
      return v != t;
  }
}

// Walks one tree from `i` to a leaf. kMode is kLeq or kLt when every branch has that mode,
// kLeaf for mixed modes.
template <typename X, typename T, int kMode, bool kMissing>
inline uint32_t Descend(const TreeNode<T>* nodes, uint32_t i, const X* x) {
  for (;;) {
    const TreeNode<T>& n = nodes[i];
    if (n.mode == kLeaf) return i;
    const X v = x[n.feature];
    bool go;
    if constexpr (kMode == kLeq) {
      go = v <= n.value;
    } else if constexpr (kMode == kLt) {
      go = v < n.value;
    } else {
      go = Goes(n.mode, v, n.value);
    }
    // Branch-free: the missing-value rule must not add an unpredictable branch per level.
    if constexpr (kMissing) go = go | ((n.missing_true != 0) & (v != v));
    i = go ? n.true_child : i + 1;
  }
}

// Rows scored together: up to 128, fewer when each row needs much scratch space.
inline int64_t BlockRows(int64_t n_targets, int64_t features) {
  const int64_t per_row = n_targets * 9 + features * 4;
  return std::clamp<int64_t>((int64_t{1} << 20) / std::max<int64_t>(per_row, 1), 1, 128);
}

template <typename T>
class TreeEnsembleKernel : public Kernel {
 public:
  struct Config {
    bool classifier = false;
    int64_t n_targets = 1;  // targets, or classes
    Aggregate aggregate = Aggregate::kSum;
    PostTransform post = PostTransform::kNone;
    std::vector<T> base_values;
    std::vector<int64_t> labels_int;
    std::vector<std::string> labels_str;
    bool binary_case = false;
    bool weights_all_positive = true;
  };

  TreeEnsembleKernel(Forest<T> forest, Config config)
      : f_(std::move(forest)), c_(std::move(config)) {}

  Status Infer(InferContext& ctx) const override {
    const DataType t = ctx.input_type(0);
    OUTPOST_RETURN_IF_ERROR(
        CheckType(t, TypeBit(DataType::kFp32) | TypeBit(DataType::kFp64) | kIndexTypes, "X"));
    const Shape& x = ctx.input_shape(0);
    if (x.empty() || x.size() > 2) return InvalidArgumentError("X must be 1-D or 2-D");
    const int64_t n = x.size() == 1 ? 1 : x[0];
    const int64_t features = x.back();
    if (f_.max_feature >= features) {
      return InvalidArgumentError("the trees read feature " + std::to_string(f_.max_feature) +
                                  " but X has " + std::to_string(features) + " features");
    }
    const int64_t block = BlockRows(c_.n_targets, features);
    size_t scratch = static_cast<size_t>(block * c_.n_targets) * (sizeof(T) + 1) + 64;
    if (t == DataType::kInt32 || t == DataType::kInt64) {
      scratch += static_cast<size_t>(block * features) * sizeof(float) + 64;
    }
    ctx.RequestScratch(scratch);
    if (c_.classifier) {
      ctx.SetOutput(0, c_.labels_str.empty() ? DataType::kInt64 : DataType::kBytes, {n});
      ctx.SetOutput(1, DataType::kFp32, {n, c_.n_targets});
    } else {
      ctx.SetOutput(0, DataType::kFp32, {n, c_.n_targets});
    }
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    const int64_t n = x.rank() == 1 ? 1 : x.shape[0];
    const int64_t features = x.shape.back();
    const int64_t block = BlockRows(c_.n_targets, features);
    std::byte* scratch = ctx.scratch().data();
    T* scores = reinterpret_cast<T*>(scratch);
    uint8_t* has = reinterpret_cast<uint8_t*>(scratch + block * c_.n_targets * sizeof(T));
    float* converted = reinterpret_cast<float*>(
        scratch + ((block * c_.n_targets * (sizeof(T) + 1) + 63) / 64) * 64);
    const TensorRef& z = c_.classifier ? ctx.output(1) : ctx.output(0);
    float* zv = z.mut<float>();
    for (int64_t b = 0; b < n; b += block) {
      const int64_t rows = std::min(block, n - b);
      std::fill_n(scores, rows * c_.n_targets, T(0));
      std::fill_n(has, rows * c_.n_targets, uint8_t{0});
      switch (x.type) {
        case DataType::kFp32:
          Accumulate(x.get<float>() + b * features, features, rows, scores, has);
          break;
        case DataType::kFp64:
          Accumulate(x.get<double>() + b * features, features, rows, scores, has);
          break;
        default:
          for (int64_t i = 0; i < rows * features; ++i) {
            converted[i] = static_cast<float>(ReadInt64(x, b * features + i));
          }
          Accumulate(static_cast<const float*>(converted), features, rows, scores, has);
          break;
      }
      for (int64_t r = 0; r < rows; ++r) {
        T* s = scores + r * c_.n_targets;
        uint8_t* h = has + r * c_.n_targets;
        float* out = zv + (b + r) * c_.n_targets;
        if (!c_.classifier) {
          FinalizeRegression(s, h, out);
          continue;
        }
        const int64_t label = FinalizeClassifier(s, h, out);
        if (c_.labels_str.empty()) {
          ctx.output(0).mut<int64_t>()[b + r] = c_.labels_int[static_cast<size_t>(label)];
        } else {
          ctx.output(0).strings[b + r] = c_.labels_str[static_cast<size_t>(label)];
        }
      }
    }
    return Status();
  }

 private:
  template <typename X>
  void Accumulate(const X* x, int64_t stride, int64_t rows, T* scores, uint8_t* has) const {
    if (f_.same_mode && f_.mode == kLeq) {
      if (f_.has_missing) {
        Walk<X, kLeq, true>(x, stride, rows, scores, has);
      } else {
        Walk<X, kLeq, false>(x, stride, rows, scores, has);
      }
    } else if (f_.same_mode && f_.mode == kLt) {
      if (f_.has_missing) {
        Walk<X, kLt, true>(x, stride, rows, scores, has);
      } else {
        Walk<X, kLt, false>(x, stride, rows, scores, has);
      }
    } else {
      if (f_.has_missing) {
        Walk<X, kLeaf, true>(x, stride, rows, scores, has);
      } else {
        Walk<X, kLeaf, false>(x, stride, rows, scores, has);
      }
    }
  }

  template <typename X, int kMode, bool kMissing>
  void Walk(const X* x, int64_t stride, int64_t rows, T* scores, uint8_t* has) const {
    const TreeNode<T>* nodes = f_.nodes.data();
    const int64_t nt = c_.n_targets;
    // One target, summed: the leaf's inline weight is all that is needed.
    if (nt == 1 && !c_.classifier &&
        (c_.aggregate == Aggregate::kSum || c_.aggregate == Aggregate::kAverage)) {
      for (uint32_t root : f_.roots) {
        for (int64_t r = 0; r < rows; ++r) {
          scores[r] += nodes[Descend<X, T, kMode, kMissing>(nodes, root, x + r * stride)].value;
        }
      }
      return;
    }
    for (uint32_t root : f_.roots) {
      for (int64_t r = 0; r < rows; ++r) {
        const TreeNode<T>& leaf =
            nodes[Descend<X, T, kMode, kMissing>(nodes, root, x + r * stride)];
        T* s = scores + r * nt;
        uint8_t* h = has + r * nt;
        if (nt == 1 && !c_.classifier) {
          // Min / Max over the leaves' inline weights.
          const bool take =
              !h[0] || (c_.aggregate == Aggregate::kMin ? leaf.value < s[0] : leaf.value > s[0]);
          if (take) s[0] = leaf.value;
          h[0] = 1;
          continue;
        }
        const uint32_t first = leaf.true_child;
        const uint32_t count = leaf.feature;
        for (uint32_t k = first; k < first + count; ++k) {
          const uint32_t t = f_.weight_target[k];
          const T w = f_.weight_value[k];
          switch (c_.classifier ? Aggregate::kSum : c_.aggregate) {
            case Aggregate::kSum:
            case Aggregate::kAverage:
              s[t] += w;
              break;
            case Aggregate::kMin:
              if (!h[t] || w < s[t]) s[t] = w;
              break;
            case Aggregate::kMax:
              if (!h[t] || w > s[t]) s[t] = w;
              break;
          }
          h[t] = 1;
        }
      }
    }
  }

  void FinalizeRegression(T* s, uint8_t* h, float* out) const {
    const int64_t nt = c_.n_targets;
    const auto trees = static_cast<T>(f_.roots.size());
    if (nt == 1) {
      const T origin = c_.base_values.size() == 1 ? c_.base_values[0] : T(0);
      T v;
      switch (c_.aggregate) {
        case Aggregate::kSum:
          v = s[0] + origin;
          break;
        case Aggregate::kAverage:
          v = s[0] / trees + origin;
          break;
        default:
          v = h[0] ? s[0] + origin : origin;
          break;
      }
      out[0] =
          c_.post == PostTransform::kProbit ? Probit(static_cast<float>(v)) : static_cast<float>(v);
      return;
    }
    const bool use_base = c_.base_values.size() == static_cast<size_t>(nt);
    for (int64_t k = 0; k < nt; ++k) {
      const T base = use_base ? c_.base_values[static_cast<size_t>(k)] : T(0);
      T v = s[k];
      switch (c_.aggregate) {
        case Aggregate::kSum:
          v = v + base;
          break;
        case Aggregate::kAverage:
          v = v / trees + base;
          break;
        default:
          v = base + (h[k] ? v : T(0));
          break;
      }
      // A target no tree scored reads as 0 (ONNX Runtime's ScoreValue rule).
      out[k] = h[k] ? static_cast<float>(v) : 0.0f;
    }
    TransformScores(c_.post, out, nt);
  }

  // Returns the index of the predicted class label.
  int64_t FinalizeClassifier(T* s, uint8_t* h, float* out) const {
    const int64_t nc = c_.n_targets;
    const auto& base = c_.base_values;
    if (nc > 2) {
      for (size_t k = 0; k < base.size() && k < static_cast<size_t>(nc); ++k) {
        if (!h[k]) {
          h[k] = 1;
          s[k] = base[k];
        } else {
          s[k] += base[k];
        }
      }
      int64_t best = -1;
      T best_score = 0;
      for (int64_t k = 0; k < nc; ++k) {
        if (h[k] && (best == -1 || s[k] > best_score)) {
          best = k;
          best_score = s[k];
        }
        out[k] = h[k] ? static_cast<float>(s[k]) : 0.0f;
      }
      TransformScores(c_.post, out, nc);
      return best < 0 ? 0 : best;
    }
    // Two classes.
    int size = 2;
    int second = -1;  // ONNX Runtime's add_second_class code
    if (base.size() == 2) {
      if (h[1]) {
        s[1] = base[1] + s[0];
        s[0] = -s[1];
      } else {
        s[1] += base[1];
        s[0] += base[0];
      }
    } else if (base.size() == 1) {
      s[0] += base[0];
      if (!h[1]) size = 1;
    } else if (base.empty()) {
      second = 3;
      if (!h[1]) size = 1;
    }
    const T pos = (size == 2 && h[1]) ? s[1] : (h[0] ? s[0] : T(0));
    int64_t label;
    if (c_.binary_case) {
      if (c_.weights_all_positive) {
        label = pos > T(0.5) ? 1 : 0;
        second = label == 1 ? 0 : 1;
      } else {
        label = pos > T(0) ? 1 : 0;
        second = label == 1 ? 2 : 3;
      }
    } else {
      label = pos > T(0) ? 1 : 0;
    }
    if (size == 2) {
      out[0] = h[0] ? static_cast<float>(s[0]) : 0.0f;
      out[1] = h[1] ? static_cast<float>(s[1]) : 0.0f;
      TransformScores(c_.post, out, 2);
    } else {
      out[1] = 0.0f;
      const SecondClass sc = second == 0 || second == 1   ? SecondClass::kComplement
                             : second == 2 || second == 3 ? SecondClass::kMirror
                                                          : SecondClass::kNone;
      WriteBinaryScore(c_.post, sc, h[0] ? static_cast<float>(s[0]) : 0.0f, out);
    }
    return label;
  }

  Forest<T> f_;
  Config c_;
};

// Reads a list attribute given either as floats or as a tensor (`<name>_as_tensor`, FLOAT or
// DOUBLE). Sets *is_double when a DOUBLE tensor was used.
Result<std::vector<double>> ReadValues(const KernelBuildContext& ctx, const std::string& name,
                                       bool* is_double) {
  OUTPOST_ASSIGN_OR_RETURN(std::vector<float> floats, ctx.Floats(name));
  OUTPOST_ASSIGN_OR_RETURN(std::shared_ptr<const Tensor> t, ctx.TensorAttr(name + "_as_tensor"));
  if (t) {
    if (!floats.empty()) {
      return InvalidArgumentError("both " + name + " and " + name + "_as_tensor are given");
    }
    std::vector<double> out;
    if (t->type() == DataType::kFp64) {
      *is_double = true;
      out.assign(t->values<double>().begin(), t->values<double>().end());
    } else if (t->type() == DataType::kFp32) {
      out.assign(t->values<float>().begin(), t->values<float>().end());
    } else {
      return InvalidArgumentError(name + "_as_tensor must be FLOAT or DOUBLE");
    }
    return out;
  }
  return std::vector<double>(floats.begin(), floats.end());
}

template <typename T>
std::vector<T> Cast(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

template <bool kClassifier>
Result<std::unique_ptr<Kernel>> MakeTreeEnsemble(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectOutputs(kClassifier ? 2 : 1, kClassifier ? 2 : 1));
  TreeAttributes a;
  bool is_double = false;
  OUTPOST_ASSIGN_OR_RETURN(a.tree_ids, ctx.Ints("nodes_treeids"));
  OUTPOST_ASSIGN_OR_RETURN(a.node_ids, ctx.Ints("nodes_nodeids"));
  OUTPOST_ASSIGN_OR_RETURN(a.feature_ids, ctx.Ints("nodes_featureids"));
  OUTPOST_ASSIGN_OR_RETURN(a.true_ids, ctx.Ints("nodes_truenodeids"));
  OUTPOST_ASSIGN_OR_RETURN(a.false_ids, ctx.Ints("nodes_falsenodeids"));
  OUTPOST_ASSIGN_OR_RETURN(a.missing_true, ctx.Ints("nodes_missing_value_tracks_true"));
  OUTPOST_ASSIGN_OR_RETURN(a.modes, ctx.Strings("nodes_modes"));
  OUTPOST_ASSIGN_OR_RETURN(a.values, ReadValues(ctx, "nodes_values", &is_double));
  const std::string prefix = kClassifier ? "class_" : "target_";
  OUTPOST_ASSIGN_OR_RETURN(a.target_tree_ids, ctx.Ints(prefix + "treeids"));
  OUTPOST_ASSIGN_OR_RETURN(a.target_node_ids, ctx.Ints(prefix + "nodeids"));
  OUTPOST_ASSIGN_OR_RETURN(a.target_ids, ctx.Ints(prefix + "ids"));
  OUTPOST_ASSIGN_OR_RETURN(a.target_weights, ReadValues(ctx, prefix + "weights", &is_double));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<double> base, ReadValues(ctx, "base_values", &is_double));
  OUTPOST_ASSIGN_OR_RETURN(std::string post_name, ctx.String("post_transform", "NONE"));
  OUTPOST_ASSIGN_OR_RETURN(PostTransform post, ParsePostTransform(post_name));

  int64_t n_targets = 0;
  std::vector<int64_t> labels_int;
  std::vector<std::string> labels_str;
  Aggregate aggregate = Aggregate::kSum;
  if constexpr (kClassifier) {
    OUTPOST_ASSIGN_OR_RETURN(labels_int, ctx.Ints("classlabels_int64s"));
    OUTPOST_ASSIGN_OR_RETURN(labels_str, ctx.Strings("classlabels_strings"));
    if (labels_int.empty() == labels_str.empty()) {
      return InvalidArgumentError(
          "exactly one of classlabels_int64s and classlabels_strings must be given");
    }
    n_targets = static_cast<int64_t>(labels_int.empty() ? labels_str.size() : labels_int.size());
    if (n_targets < 2) return InvalidArgumentError("a classifier needs at least two classes");
  } else {
    OUTPOST_ASSIGN_OR_RETURN(n_targets, ctx.Int("n_targets", 0));
    if (n_targets < 1 || n_targets > (int64_t{1} << 24)) {
      return InvalidArgumentError("n_targets must be between 1 and 2^24");
    }
    OUTPOST_ASSIGN_OR_RETURN(std::string agg, ctx.String("aggregate_function", "SUM"));
    if (agg == "SUM") {
      aggregate = Aggregate::kSum;
    } else if (agg == "AVERAGE") {
      aggregate = Aggregate::kAverage;
    } else if (agg == "MIN") {
      aggregate = Aggregate::kMin;
    } else if (agg == "MAX") {
      aggregate = Aggregate::kMax;
    } else {
      return InvalidArgumentError("unknown aggregate_function \"" + agg + "\"");
    }
  }
  if (kClassifier && n_targets > (int64_t{1} << 24)) {
    return InvalidArgumentError("too many classes");
  }

  auto build = [&](auto tag) -> Result<std::unique_ptr<Kernel>> {
    using T = decltype(tag);
    OUTPOST_ASSIGN_OR_RETURN(Forest<T> forest, BuildForest<T>(a, n_targets));
    typename TreeEnsembleKernel<T>::Config c;
    c.classifier = kClassifier;
    c.n_targets = n_targets;
    c.aggregate = aggregate;
    c.post = post;
    c.base_values = Cast<T>(base);
    c.labels_int = std::move(labels_int);
    c.labels_str = std::move(labels_str);
    if (kClassifier) {
      std::vector<int64_t> distinct(a.target_ids);
      std::sort(distinct.begin(), distinct.end());
      distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
      c.binary_case = n_targets == 2 && distinct.size() == 1;
      for (double w : a.target_weights) c.weights_all_positive = c.weights_all_positive && w >= 0;
      if (c.labels_int.empty()) {
        // Labels are looked up by index.
      }
    }
    return std::unique_ptr<Kernel>(new TreeEnsembleKernel<T>(std::move(forest), std::move(c)));
  };
  if (is_double) return build(double{});
  return build(float{});
}

}  // namespace

void RegisterTreeKernels(KernelRegistry& r) {
  r.Add({"ai.onnx.ml", "TreeEnsembleRegressor", 1, 1000, &MakeTreeEnsemble<false>});
  r.Add({"ai.onnx.ml", "TreeEnsembleClassifier", 1, 1000, &MakeTreeEnsemble<true>});
}

}  // namespace outpost::engine::onnx
