// Evaluating the compliance policy on one record (policy/FORMAT.md, Decisions).
//
// Apply runs at the edge before a record may be uploaded or exported: it answers whether the
// record may leave the site and, if so, the payload that leaves (fields dropped, hashed or
// generalized). Check runs at the hub on a payload that arrived: it verifies that the payload
// already conforms, so a site with a broken or stale policy cannot slip raw data through.
// Both are pure functions of their arguments; thread-safe for concurrent calls.
#ifndef OUTPOST_POLICY_EVALUATE_H_
#define OUTPOST_POLICY_EVALUATE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "policy/policy.h"

namespace outpost::policy {

// Payload limits (FORMAT.md, Limits).
inline constexpr size_t kMaxPayloadBytes = 1 << 20;
inline constexpr size_t kMaxPayloadDepth = 32;

enum class Outcome { kAllowed, kWithheld, kRejected };

// "allowed", "withheld", "rejected".
std::string_view OutcomeName(Outcome outcome);

// One record as the policy sees it. Views into the caller's memory for the call's duration.
struct RecordView {
  std::string_view kind;
  std::string_view site;
  std::string_view node;
  std::string_view stream;
  uint64_t seq = 0;
  // The record's JSON payload (insight/FORMAT.md, serve/FORMAT.md).
  std::string_view payload;
};

struct Decision {
  Outcome outcome = Outcome::kRejected;
  // Stable reason code (FORMAT.md, Decisions); empty when allowed.
  std::string reason;
  // Human-readable detail, naming the member's path where one is at fault.
  std::string detail;
  // Allowed: the payload that may leave the site (Apply) or the payload as given (Check).
  std::string payload;

  bool allowed() const { return outcome == Outcome::kAllowed; }
};

// The site secret for `hash` rules. Immutable once created; copyable.
class HashKey {
 public:
  // InvalidArgument unless `secret` is 16 to 1024 bytes.
  static Result<HashKey> Create(std::string_view secret);

  // "h1:" + hex HMAC-SHA256(secret, message).
  std::string Digest(std::string_view message) const;

 private:
  explicit HashKey(std::string secret) : secret_(std::move(secret)) {}
  std::string secret_;
};

// Decides whether `record` may leave the site under `policy`, and in which form.
Decision Apply(const Policy& policy, const HashKey& key, const RecordView& record);

// Verifies at the hub that `record`'s payload conforms to `policy` as Apply would have made
// it. Allowed (payload copied) or rejected with a reason (a withholding reason of Apply
// becomes a rejection here: such a record should never have left its site).
Decision Check(const Policy& policy, const RecordView& record);

}  // namespace outpost::policy

#endif  // OUTPOST_POLICY_EVALUATE_H_
