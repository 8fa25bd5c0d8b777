// The XGBoost C API's handles, owned, and its error text: shared by the two places in
// Outpost that call XGBoost, the engine's backend (engine/xgboost_model.cc) and the trainer
// (train/xgboost_trainer.cc). Only those two files include this header.
#ifndef OUTPOST_ENGINE_XGBOOST_HANDLES_H_
#define OUTPOST_ENGINE_XGBOOST_HANDLES_H_

#include <xgboost/c_api.h>

#include <string>
#include <utility>

namespace outpost::engine::xgb {

// XGBoost's last error on this thread (XGBoost keeps it thread-local), first line only: the
// rest is a stack trace of XGBoost's internals.
std::string LastError();

// Sends XGBoost's warnings (for example about a model saved by an older version) to
// Outpost's log instead of raw stderr. XGBoost keeps the callback per thread, so call it on
// each thread before the first XGBoost call that may warn.
void ForwardLogOnThisThread();

// Owns one handle and frees it with `Free`.
template <typename H, int (*Free)(H)>
class Handle {
 public:
  Handle() = default;
  ~Handle() {
    if (handle_ != nullptr) Free(handle_);
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  H get() const { return handle_; }
  H* out() { return &handle_; }
  // Gives up ownership.
  H release() { return std::exchange(handle_, nullptr); }

 private:
  H handle_ = nullptr;
};

using Booster = Handle<BoosterHandle, XGBoosterFree>;
using DMatrix = Handle<DMatrixHandle, XGDMatrixFree>;

}  // namespace outpost::engine::xgb

#endif  // OUTPOST_ENGINE_XGBOOST_HANDLES_H_
