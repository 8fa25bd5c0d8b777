// Status and Result<T>: the one error model of Outpost.
//
// Shaped like absl::Status / absl::StatusOr so that a later switch is mechanical. The code is
// chosen for the caller's next step (see abseil's status.h):
//   kInvalidArgument    the input is wrong; do not retry it unchanged.
//   kNotFound           the named thing does not exist.
//   kAlreadyExists      it exists already.
//   kFailedPrecondition do not retry until the system's state changes.
//   kResourceExhausted  a bound was hit (queue full, disk quota); retry later or shed load.
//   kUnavailable        transient; retry the call, with back-off.
//   kAborted            retry the whole transaction.
//   kDeadlineExceeded   the deadline passed before the work finished.
//   kDataLoss           stored data is corrupt or lost.
//   kUnimplemented      not supported by this build or this engine.
//   kPermissionDenied / kUnauthenticated  the caller may not do this / is not known.
//   kCancelled          the caller gave up.
//   kInternal           a bug of ours; report it.
//
// An error also carries a reason: a stable, machine-readable token (lower_snake by
// convention: "site_not_found", "commit_unknown"; bundle refusals keep the upper-case names
// their format fixes: "TARGET_HASH") chosen where the error starts, with WithReason(). Code
// reads the reason, never the message: the message is for people and may gain context.
// Without an explicit reason, reason() is the code's name in lower case ("not_found").
//
// Status is cheap to copy when OK (no allocation); an error carries a message to which each
// boundary prepends its context with WithContext(), which keeps the code and the reason.
// Thread-compatible.
#ifndef OUTPOST_BASE_STATUS_H_
#define OUTPOST_BASE_STATUS_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace outpost {

enum class StatusCode : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

// The canonical upper-snake name of a code ("INVALID_ARGUMENT"), stable for logs and APIs.
std::string_view StatusCodeName(StatusCode code);
// The default reason of a code: its name in lower case ("invalid_argument").
std::string_view StatusCodeReason(StatusCode code);

class [[nodiscard]] Status {
 public:
  // An OK status.
  Status() = default;
  Status(StatusCode code, std::string_view message);

  static Status Ok() { return Status(); }

  bool ok() const { return rep_ == nullptr; }
  StatusCode code() const { return rep_ ? rep_->code : StatusCode::kOk; }
  // Empty for OK.
  std::string_view message() const { return rep_ ? std::string_view(rep_->message) : ""; }

  // The machine-readable reason: the one given to WithReason(), else the code's name in
  // lower case ("invalid_argument"). Empty for OK.
  std::string_view reason() const;
  // Whether WithReason() gave this status a reason of its own.
  bool has_reason() const { return rep_ != nullptr && !rep_->reason.empty(); }

  // Returns a copy with `reason` as its reason (a stable token of letters, digits, '_', '.'
  // and '-'; anything else is replaced by '_'). OK stays OK.
  Status WithReason(std::string_view reason) const;

  // Returns a copy whose message is "<context>: <message>", with the same code and reason.
  // OK stays OK.
  Status WithContext(std::string_view context) const;

  // "OK" or "INVALID_ARGUMENT: message".
  std::string ToString() const;

  // Marks a status as deliberately ignored.
  void IgnoreError() const {}

  friend bool operator==(const Status& a, const Status& b) {
    return a.code() == b.code() && a.message() == b.message() && a.reason() == b.reason();
  }

 private:
  struct Rep {
    StatusCode code;
    std::string message;
    std::string reason;  // empty: the code's default reason
  };
  // Null when OK. Shared so that copies are cheap; never mutated after construction.
  std::shared_ptr<const Rep> rep_;
};

// Constructors for each code, as absl has.
Status CancelledError(std::string_view message);
Status UnknownError(std::string_view message);
Status InvalidArgumentError(std::string_view message);
Status DeadlineExceededError(std::string_view message);
Status NotFoundError(std::string_view message);
Status AlreadyExistsError(std::string_view message);
Status PermissionDeniedError(std::string_view message);
Status ResourceExhaustedError(std::string_view message);
Status FailedPreconditionError(std::string_view message);
Status AbortedError(std::string_view message);
Status OutOfRangeError(std::string_view message);
Status UnimplementedError(std::string_view message);
Status InternalError(std::string_view message);
Status UnavailableError(std::string_view message);
Status DataLossError(std::string_view message);
Status UnauthenticatedError(std::string_view message);

// An error of code `code` whose reason is `reason` and whose message is "<reason>: <detail>":
// the form of the refusals whose format documents a reason code (sync's batches, exports and
// receipts, the hub's enrolment and registry, data set files), so that people reading a log
// see the code too. Code reads status.reason(), never the message.
Status ErrorWithReason(StatusCode code, std::string_view reason, std::string_view detail);

// Result<T> holds either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  static_assert(!std::is_same_v<std::decay_t<T>, Status>, "Result<Status> is not allowed");

  // Implicit from a value and from a non-OK status, so that `return value;` and
  // `return NotFoundError(...)` both work. Constructing from an OK status is a bug of ours
  // and becomes an internal error.
  Result(const T& value) : v_(value) {}  // NOLINT(google-explicit-constructor)
  Result(T&& value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  template <typename U,
            typename = std::enable_if_t<std::is_constructible_v<T, U&&> &&
                                        !std::is_same_v<std::decay_t<U>, Status> &&
                                        !std::is_same_v<std::decay_t<U>, Result<T>>>>
  Result(U&& value) : v_(T(std::forward<U>(value))) {}  // NOLINT(google-explicit-constructor)
  Result(const Status& status)  // NOLINT(google-explicit-constructor)
      : v_(status.ok() ? InternalError("Result constructed from an OK status") : status) {}

  bool ok() const { return v_.index() == 1; }
  // OK when a value is held.
  Status status() const { return ok() ? Status() : std::get<0>(v_); }

  // Preconditions: ok().
  T& value() & { return std::get<1>(v_); }
  const T& value() const& { return std::get<1>(v_); }
  T&& value() && { return std::get<1>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  T value_or(T fallback) const& { return ok() ? value() : fallback; }

 private:
  std::variant<Status, T> v_;
};

namespace internal {
inline Status AsStatus(const Status& s) { return s; }
template <typename T>
Status AsStatus(const Result<T>& r) {
  return r.status();
}
}  // namespace internal

}  // namespace outpost

#define OUTPOST_CONCAT_INNER_(a, b) a##b
#define OUTPOST_CONCAT_(a, b) OUTPOST_CONCAT_INNER_(a, b)

// Returns from the current function with the status of `expr` (a Status or a Result) when it
// is not OK.
#define OUTPOST_RETURN_IF_ERROR(expr)                                              \
  do {                                                                             \
    ::outpost::Status outpost_status_ = ::outpost::internal::AsStatus((expr));     \
    if (!outpost_status_.ok()) return outpost_status_;                             \
  } while (0)

// OUTPOST_ASSIGN_OR_RETURN(lhs, rexpr): evaluates `rexpr` (a Result<T>); on error returns its
// status, otherwise moves the value into `lhs` (which may be a declaration: `auto x`).
#define OUTPOST_ASSIGN_OR_RETURN(lhs, rexpr) \
  OUTPOST_ASSIGN_OR_RETURN_IMPL_(OUTPOST_CONCAT_(outpost_result_, __LINE__), lhs, rexpr)
#define OUTPOST_ASSIGN_OR_RETURN_IMPL_(result, lhs, rexpr) \
  auto result = (rexpr);                                   \
  if (!result.ok()) return result.status();                \
  lhs = std::move(result).value()

#endif  // OUTPOST_BASE_STATUS_H_
