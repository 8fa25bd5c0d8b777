// The names that cross Outpost's boundaries, as types: each is checked once, by one rule,
// when it is parsed from outside text, and is valid for as long as it exists.
//
// This header is the one place the rules are written down; formats, docs and error messages
// refer to it (docs/NAMES.md says which boundary parses which name). The rules are:
//
//   type        rule                                 refusal reason
//   ModelName   [a-z0-9][a-z0-9._-]{0,63}            invalid_model_name
//   SiteId      [A-Za-z0-9_][A-Za-z0-9._:-]{0,127}   invalid_site_id
//   NodeId      [A-Za-z0-9_][A-Za-z0-9._:-]{0,127}   invalid_node_id
//   StreamName  [A-Za-z0-9_][A-Za-z0-9._:-]{0,127}   invalid_stream_name
//   Tenant      [A-Za-z0-9_][A-Za-z0-9._-]{0,63}     invalid_tenant
//   Region      [A-Za-z0-9_][A-Za-z0-9._-]{0,63}     invalid_region
//   RuleName    [A-Za-z0-9][A-Za-z0-9._-]{0,63}      invalid_rule_name
//   CredentialName [a-z0-9][a-z0-9._-]{0,63}         invalid_credential_name
//
// Every rule is ASCII only, has no '/', '\\', space, control character or NUL, and cannot
// begin with '.' or '-', so that a name is always one safe path component, never "." or "..",
// and never reads as a command-line flag.
//
// Why these rules:
// - A model name ends up in bundle file paths and registry folders, so it is the bundle
//   format's rule (bundle/FORMAT.md), the strictest of the old ones; the edge's /v1/feedback
//   takes only a model a bundle can carry.
// - Sites, nodes and streams are numbered together in the outbox and travel in sync batches;
//   their rule is the batch's (sync/FORMAT.md), the widest of the old ones, so that every
//   outbox file, batch and enrolled site that exists today stays valid. A stream beginning
//   with '_' is one of the outbox's own (reserved()); the outbox refuses to append to one.
//   An enrolled site's id is also its certificate's common name, which X.509 bounds at 64
//   bytes: enrolment adds that bound (hub/enrol.h ValidateEnrolledSiteId).
// - Tenants and regions are the enrolment rule (hub/FORMAT.md section 3).
// - Insight rule names are the insight config's rule (insight/rules.cc).
// - Credential names (the edge's credentials file, base/auth/FORMAT.md) take the model rule:
//   they appear in logs, the audit log and the records a caller's labels make.
//
// Values are immutable and thread-compatible; copies are cheap strings.
#ifndef OUTPOST_BASE_NAMES_H_
#define OUTPOST_BASE_NAMES_H_

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "base/status.h"

namespace outpost {

// One name rule: a first character class, a class for the rest, and a length bound.
struct NameRule {
  std::string_view what;     // "model name", as messages say it
  std::string_view reason;   // the Status reason of a refusal
  std::string_view pattern;  // the rule as written above, for messages
  size_t max_bytes;
  bool upper_case;        // A-Z allowed
  bool colon;             // ':' allowed after the first character
  bool underscore_first;  // '_' allowed as the first character
};

inline constexpr NameRule kModelNameRule{
    "model name", "invalid_model_name", "[a-z0-9][a-z0-9._-]{0,63}", 64, false, false, false};
inline constexpr NameRule kSiteIdRule{
    "site id", "invalid_site_id", "[A-Za-z0-9_][A-Za-z0-9._:-]{0,127}", 128, true, true, true};
inline constexpr NameRule kNodeIdRule{
    "node id", "invalid_node_id", "[A-Za-z0-9_][A-Za-z0-9._:-]{0,127}", 128, true, true, true};
inline constexpr NameRule kStreamNameRule{
    "stream", "invalid_stream_name", "[A-Za-z0-9_][A-Za-z0-9._:-]{0,127}", 128, true, true, true};
inline constexpr NameRule kTenantRule{
    "tenant", "invalid_tenant", "[A-Za-z0-9_][A-Za-z0-9._-]{0,63}", 64, true, false, true};
inline constexpr NameRule kRegionRule{
    "region", "invalid_region", "[A-Za-z0-9_][A-Za-z0-9._-]{0,63}", 64, true, false, true};
inline constexpr NameRule kRuleNameRule{
    "rule name", "invalid_rule_name", "[A-Za-z0-9][A-Za-z0-9._-]{0,63}", 64, true, false, false};
inline constexpr NameRule kCredentialNameRule{"credential name", "invalid_credential_name",
                                              "[a-z0-9][a-z0-9._-]{0,63}", 64, false, false,
                                              false};

// OK when `text` follows `rule`; otherwise InvalidArgument with the rule's reason and a
// message saying what was wrong ("model name \"Pump\" has 'P' at byte 0; a model name is
// [a-z0-9][a-z0-9._-]{0,63}"). The offending text is quoted at most 64 bytes long, with
// bytes outside printable ASCII escaped.
Status CheckName(const NameRule& rule, std::string_view text);

// A validated name of one kind; `Rule` is one of the rules above. Construct with Parse().
template <const NameRule& Rule>
class BasicName {
 public:
  // The name in `text`, or InvalidArgument (reason Rule.reason) when it breaks the rule.
  static Result<BasicName> Parse(std::string_view text) {
    OUTPOST_RETURN_IF_ERROR(CheckName(Rule, text));
    return BasicName(std::string(text));
  }
  // Whether `text` follows the rule (no message is made).
  static bool IsValid(std::string_view text) { return CheckName(Rule, text).ok(); }
  static const NameRule& rule() { return Rule; }

  const std::string& str() const { return value_; }
  std::string_view view() const { return value_; }
  // A stream or site beginning with '_' is reserved for Outpost's own use (the outbox's
  // "_outbox" stream).
  bool reserved() const { return value_.front() == '_'; }

  friend bool operator==(const BasicName& a, const BasicName& b) { return a.value_ == b.value_; }
  friend bool operator!=(const BasicName& a, const BasicName& b) { return a.value_ != b.value_; }
  friend bool operator<(const BasicName& a, const BasicName& b) { return a.value_ < b.value_; }

 private:
  explicit BasicName(std::string value) : value_(std::move(value)) {}
  std::string value_;
};

using ModelName = BasicName<kModelNameRule>;
using SiteId = BasicName<kSiteIdRule>;
using NodeId = BasicName<kNodeIdRule>;
using StreamName = BasicName<kStreamNameRule>;
using Tenant = BasicName<kTenantRule>;
using Region = BasicName<kRegionRule>;
using RuleName = BasicName<kRuleNameRule>;
using CredentialName = BasicName<kCredentialNameRule>;

}  // namespace outpost

namespace std {
template <const outpost::NameRule& Rule>
struct hash<outpost::BasicName<Rule>> {
  size_t operator()(const outpost::BasicName<Rule>& name) const {
    return hash<string_view>()(name.view());
  }
};
}  // namespace std

#endif  // OUTPOST_BASE_NAMES_H_
