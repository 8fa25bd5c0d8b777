// The compliance policy (policy/FORMAT.md section 1): which records may leave a site and in
// which form. ParsePolicy turns the YAML text into an immutable Policy that the edge (before
// upload or export) and the hub (on ingestion) evaluate with policy/evaluate.h. A Policy is
// never changed after parsing, so one std::shared_ptr<const Policy> may be shared by threads.
#ifndef OUTPOST_POLICY_POLICY_H_
#define OUTPOST_POLICY_POLICY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace outpost::policy {

// Limits on a policy (FORMAT.md, Limits).
inline constexpr size_t kMaxPolicyBytes = 256 * 1024;
inline constexpr size_t kMaxKinds = 64;
inline constexpr size_t kMaxRulesPerKind = 1024;
inline constexpr size_t kMaxRegions = 256;
inline constexpr size_t kMaxSites = 100'000;
inline constexpr size_t kMaxNameBytes = 128;
inline constexpr size_t kMaxPathSegments = 8;

enum class Action { kKeep, kDrop, kHash, kRound, kTruncateTime, kCoarsen };

// "keep", "drop", "hash", "round", "truncate_time", "coarsen".
std::string_view ActionName(Action action);

struct FieldRule {
  Action action = Action::kDrop;
  // kRound: the step; kCoarsen: the grid. > 0 and finite.
  double step = 0;
  // kTruncateTime: the unit in milliseconds (1000, 60000, 3600000 or 86400000).
  int64_t unit_ms = 0;
};

enum class RecordClass { kRaw, kAggregate };

struct KindRule {
  RecordClass record_class = RecordClass::kRaw;
  // Action for members no rule names; the policy's default when unset. kKeep or kDrop.
  std::optional<Action> default_action;
  // Path of the integer compared with the region's min_count; empty: none.
  std::string count_field;
  // Rule by path ("inputs.bearing_temp_c", "inputs.*").
  std::map<std::string, FieldRule, std::less<>> fields;
  // Every proper prefix of a rule's path ("inputs" for "inputs.x"): objects the walk enters.
  std::set<std::string, std::less<>> prefixes;
};

struct Region {
  // False: aggregates only.
  bool raw_allowed = false;
  // An aggregate counting fewer than this is withheld.
  int64_t min_count = 0;
};

struct Policy {
  int64_t version = 0;
  std::string name;
  // "sha256:<hex>" of the policy file's exact bytes.
  std::string digest;
  Action default_action = Action::kDrop;
  std::map<std::string, Region, std::less<>> regions;
  // Site id -> region name (a key of `regions`).
  std::map<std::string, std::string, std::less<>> sites;
  // Region of an unlisted site; empty: an unlisted site is not bound.
  std::string default_region;
  std::map<std::string, KindRule, std::less<>> kinds;

  // The rule for `kind`, or null when the kind may not leave a site.
  const KindRule* FindKind(std::string_view kind) const;
  // The region `site` belongs to, or null when it is not bound to one.
  const Region* FindRegion(std::string_view site) const;
  // The action for a member the kind's rules do not name.
  Action DefaultFor(const KindRule& kind) const {
    return kind.default_action.value_or(default_action);
  }
};

// Parses a policy file (FORMAT.md). Errors: InvalidArgument naming the key ("kinds.anomaly.
// fields.x: unknown action \"hsah\""), for a document over kMaxPolicyBytes too.
Result<std::shared_ptr<const Policy>> ParsePolicy(std::string_view yaml_text);

// Helpers shared by the parser and the evaluator (policy.cc).
namespace internal {
// OK when `path` is a valid field path (FORMAT.md, Field paths).
Status ValidatePath(std::string_view path);
// OK when `name` is 1..kMaxNameBytes bytes of printable ASCII without spaces: the rule of
// kind names. Regions and sites are Region and SiteId of base/names.h.
Status ValidateName(std::string_view name);
// The default class of a well-known kind, nullopt for another name.
std::optional<RecordClass> DefaultClass(std::string_view kind);
}  // namespace internal

}  // namespace outpost::policy

#endif  // OUTPOST_POLICY_POLICY_H_
