// Checks an XGBoost model document (JSON or UBJSON) before XGBoost itself parses it.
//
// XGBoost 1.7 (Debian 12's libxgboost) trusts its model files. Measured with hand-made
// documents: deep nesting overflows its recursive parser's stack; a child, parent or split
// index outside its tree, a tree_info entry past the output groups, a "num_trees" larger than
// the "trees" array or two trees with the same id crash it with SIGSEGV; a cycle between
// nodes makes prediction loop forever. Outpost loads model files that crossed an air gap on
// removable media, so every document goes through this check first:
//
//  1. The bytes are parsed by a parser of our own that accepts the subset of JSON / UBJSON
//     that XGBoost 1.7 writes and reads (the same container rules, string escapes and
//     number forms), bounds nesting depth, rejects duplicate keys and trailing bytes, and
//     bounds every declared length by the bytes that remain.
//  2. The document is checked against what XGBoost's loader and predictor index without
//     checking: tree and node counts, child and parent indices, that each tree is a tree
//     (no node reached twice from the root), split features below the feature count,
//     tree_info below the output groups, dart weights and gblinear weights sized to match.
//  3. Only objectives and boosters Outpost serves are accepted (see kSupportedObjectives in
//     the .cc), and categorical splits are refused.
//
// A document that passes is safe to hand to XGBoost's loader and to score with any dense
// input of num_feature columns. Pure function; thread-safe.
#ifndef OUTPOST_ENGINE_XGBOOST_MODEL_CHECK_H_
#define OUTPOST_ENGINE_XGBOOST_MODEL_CHECK_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace outpost::engine {

enum class XGBoostEncoding { kJson, kUbjson };

// What the check learned about a model that passed.
struct XGBoostModelSummary {
  XGBoostEncoding encoding = XGBoostEncoding::kJson;
  std::string objective;  // "binary:logistic", "multi:softprob", ...
  std::string booster;    // "gbtree", "dart" or "gblinear"
  int64_t num_feature = 0;
  int64_t num_class = 0;  // 0 for objectives without classes
  int64_t num_target = 1;
  int64_t output_groups = 1;  // max(num_class, num_target, 1): values per row of the margin
  int64_t num_trees = 0;      // 0 for gblinear
};

// Bounds on what a model may declare. The defaults cover every sensor model we know of;
// XGBoost allocates per-call scratch proportional to num_feature.
struct XGBoostCheckLimits {
  int max_depth = 64;  // nesting of arrays and objects
  int64_t max_features = int64_t{1} << 16;
  int64_t max_output_groups = int64_t{1} << 16;
};

// Parses and checks `bytes`. The encoding is told by the first two bytes, as XGBoost does:
// '{' '"' is JSON, '{' then a letter is UBJSON; anything else (including XGBoost's legacy
// binary format) is refused. Returns InvalidArgument with the reason and, where it applies,
// the path inside the document (e.g. learner.gradient_booster.model.trees[3].left_children).
Result<XGBoostModelSummary> CheckXGBoostModel(std::string_view bytes,
                                              const XGBoostCheckLimits& limits = {});

}  // namespace outpost::engine

#endif  // OUTPOST_ENGINE_XGBOOST_MODEL_CHECK_H_
