// Model: the interface every backend (XGBoost, ONNX) implements.
//
// A Model is immutable once loaded and is shared by every request thread through
// std::shared_ptr<const Model>; a reload swaps the pointer, so requests in flight keep the
// model they started on. Run() is thread-safe and may be called concurrently.
//
// Dimension 0 of every input and output is the batch dimension when the signature says -1
// there; Run() scores the whole batch in one call.
#ifndef OUTPOST_ENGINE_MODEL_H_
#define OUTPOST_ENGINE_MODEL_H_

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "engine/tensor.h"

namespace outpost::engine {

class Model {
 public:
  virtual ~Model() = default;

  // The inputs and outputs, with names, datatypes and shapes (-1 = variable).
  virtual const Signature& signature() const = 0;

  // The protocol's platform string, "<backend>_<format>": "xgboost_json", "onnx_onnxv1", ...
  virtual std::string_view platform() const = 0;

  // Scores one batch. `inputs` are in signature().inputs order and already passed
  // ValidateInputs(). On success `outputs` holds one tensor per signature().outputs entry, in
  // that order. Errors: InvalidArgument for data the model rejects (e.g. a NaN where the
  // model forbids it), Internal for a backend failure. Thread-safe.
  virtual Status Run(std::span<const Tensor> inputs, std::vector<Tensor>& outputs) const = 0;
};

// Checks `inputs` (in signature order) against `signature`: count, datatype, rank, fixed
// dimensions, and that every input agrees on the batch dimension where it is variable.
// Returns InvalidArgument with a message naming the offending input.
Status ValidateInputs(const Signature& signature, std::span<const Tensor> inputs);

}  // namespace outpost::engine

#endif  // OUTPOST_ENGINE_MODEL_H_
