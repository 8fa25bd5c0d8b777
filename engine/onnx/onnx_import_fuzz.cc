// libFuzzer target for the ONNX engine's handling of untrusted model files: import, compile
// (kernel binding, constant folding, fusion, signature probing) and one run on zero-filled
// inputs of the declared shapes. Any crash, hang or sanitizer report is a bug; every
// rejection must be a Status. Limits are set low so that the fuzzer explores structure
// rather than allocating.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "engine/onnx/onnx_import.h"
#include "engine/onnx/onnx_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace outpost::engine;  // NOLINT: a fuzz entry point, not a header
  const auto bytes = std::as_bytes(std::span<const uint8_t>(data, size));
  // The same bytes as a test-data tensor file.
  onnx::ImportOptions small_import;
  small_import.max_tensor_bytes = 1 << 20;
  small_import.max_nodes = 10'000;
  small_import.max_values = 40'000;
  (void)onnx::ImportTensor(bytes, small_import);

  OnnxOptions options;
  options.import = small_import;
  options.compile.max_folded_bytes = 1 << 20;
  options.compile.max_value_bytes = 1 << 20;
  options.compile.max_plan_bytes = 16 << 20;
  options.max_idle_sessions = 1;
  auto model = LoadOnnxModelFromBytes(bytes, options);
  if (!model.ok()) return 0;
  std::vector<Tensor> inputs;
  for (const TensorSpec& spec : (*model)->signature().inputs) {
    Shape shape = spec.shape;
    for (int64_t& d : shape) {
      if (d < 0) d = 2;
    }
    auto count = ElementCount(shape);
    if (!count.ok() || *count > 4096) return 0;
    inputs.emplace_back(spec.type, shape);
  }
  std::vector<Tensor> outputs;
  (void)(*model)->Run(inputs, outputs);
  return 0;
}
