#include "engine/model.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace outpost::engine {
namespace {

std::string Quoted(const std::string& name) { return "\"" + name + "\""; }

// Whether the tensor's storage holds exactly as many elements as its shape says. Tensors are
// built by Outpost's own parsers, so a mismatch is a bug upstream; it is still reported as an
// error of the request rather than trusted, because a backend would read past the buffer.
Status CheckStorage(const TensorSpec& spec, const Tensor& tensor) {
  OUTPOST_ASSIGN_OR_RETURN(int64_t count, ElementCount(tensor.shape()));
  bool fits = count == tensor.element_count();
  if (fits && tensor.type() == DataType::kBytes) {
    fits = tensor.strings().size() == static_cast<size_t>(count);
  } else if (fits) {
    fits = tensor.byte_size() == static_cast<size_t>(count) * ElementSize(tensor.type());
  }
  if (fits) return Status();
  return InvalidArgumentError("input " + Quoted(spec.name) + " holds " +
                              std::to_string(tensor.element_count()) + " elements but its shape " +
                              ShapeToString(tensor.shape()) + " needs " + std::to_string(count));
}

}  // namespace

Status ValidateInputs(const Signature& signature, std::span<const Tensor> inputs) {
  if (inputs.size() != signature.inputs.size()) {
    return InvalidArgumentError("the model expects " + std::to_string(signature.inputs.size()) +
                                " input(s), got " + std::to_string(inputs.size()));
  }
  // The first input whose batch dimension is variable; every later one must agree with it.
  const TensorSpec* batch_spec = nullptr;
  int64_t batch = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const TensorSpec& spec = signature.inputs[i];
    const Tensor& tensor = inputs[i];
    if (tensor.type() != spec.type) {
      return InvalidArgumentError("input " + Quoted(spec.name) + " has datatype " +
                                  std::string(DataTypeName(tensor.type())) +
                                  " but the model expects " + std::string(DataTypeName(spec.type)));
    }
    OUTPOST_RETURN_IF_ERROR(CheckShape(spec, tensor.shape()));
    OUTPOST_RETURN_IF_ERROR(CheckStorage(spec, tensor));
    if (!spec.shape.empty() && spec.shape[0] == -1) {
      int64_t rows = tensor.shape()[0];
      if (batch_spec == nullptr) {
        batch_spec = &spec;
        batch = rows;
      } else if (rows != batch) {
        return InvalidArgumentError("input " + Quoted(spec.name) + " has batch size " +
                                    std::to_string(rows) + " but input " +
                                    Quoted(batch_spec->name) + " has " + std::to_string(batch));
      }
    }
  }
  return Status();
}

}  // namespace outpost::engine
