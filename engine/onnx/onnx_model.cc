#include "engine/onnx/onnx_model.h"

#include <mutex>
#include <utility>

#include "engine/onnx/session.h"

namespace outpost::engine {
namespace {

// Narrows the model's declared specs with the config's. InvalidArgument on a mismatch.
Status MergeSpecs(const char* what, const std::vector<TensorSpec>& config,
                  std::vector<TensorSpec>& model) {
  if (config.empty()) return Status();
  if (config.size() != model.size()) {
    return InvalidArgumentError(std::string("the config declares ") +
                                std::to_string(config.size()) + " " + what + ", the model has " +
                                std::to_string(model.size()));
  }
  for (size_t i = 0; i < config.size(); ++i) {
    const TensorSpec& c = config[i];
    TensorSpec& m = model[i];
    if (c.name != m.name) {
      return InvalidArgumentError(std::string(what) + " " + std::to_string(i) +
                                  " is \"" + m.name + "\" in the model, \"" + c.name +
                                  "\" in the config");
    }
    if (c.type != m.type) {
      return InvalidArgumentError("\"" + c.name + "\" is " + std::string(DataTypeName(m.type)) +
                                  " in the model, " + std::string(DataTypeName(c.type)) +
                                  " in the config");
    }
    if (!m.shape.empty() || !c.shape.empty()) {
      bool fits = m.shape.empty() || m.shape.size() == c.shape.size();
      for (size_t d = 0; fits && !m.shape.empty() && d < c.shape.size(); ++d) {
        fits = m.shape[d] == -1 || c.shape[d] == -1 || m.shape[d] == c.shape[d];
      }
      if (!fits) {
        return InvalidArgumentError("\"" + c.name + "\" has shape " + ShapeToString(m.shape) +
                                    " in the model, " + ShapeToString(c.shape) + " in the config");
      }
      Shape merged = c.shape;
      for (size_t d = 0; d < merged.size() && d < m.shape.size(); ++d) {
        if (merged[d] == -1) merged[d] = m.shape[d];
      }
      m.shape = std::move(merged);
    }
  }
  return Status();
}

class OnnxModel : public Model {
 public:
  OnnxModel(std::shared_ptr<const onnx::CompiledModel> compiled, Signature signature,
            size_t max_idle)
      : compiled_(std::move(compiled)), signature_(std::move(signature)), max_idle_(max_idle) {
    idle_.reserve(max_idle_);
  }

  const Signature& signature() const override { return signature_; }
  std::string_view platform() const override { return "onnx_onnxv1"; }

  Status Run(std::span<const Tensor> inputs, std::vector<Tensor>& outputs) const override {
    if (inputs.size() != signature_.inputs.size()) {
      return InvalidArgumentError("the model takes " + std::to_string(signature_.inputs.size()) +
                                  " inputs, got " + std::to_string(inputs.size()));
    }
    for (size_t i = 0; i < inputs.size(); ++i) {
      const TensorSpec& spec = signature_.inputs[i];
      if (inputs[i].type() != spec.type) {
        return InvalidArgumentError("input \"" + spec.name + "\" has element type " +
                                    std::string(DataTypeName(inputs[i].type())) +
                                    " but the model expects " +
                                    std::string(DataTypeName(spec.type)));
      }
      if (!spec.shape.empty()) OUTPOST_RETURN_IF_ERROR(CheckShape(spec, inputs[i].shape()));
    }
    std::unique_ptr<onnx::Session> session = Acquire();
    Status st = session->Run(inputs, outputs);
    Release(std::move(session));
    return st;
  }

 private:
  std::unique_ptr<onnx::Session> Acquire() const {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!idle_.empty()) {
        std::unique_ptr<onnx::Session> s = std::move(idle_.back());
        idle_.pop_back();
        return s;
      }
    }
    return std::make_unique<onnx::Session>(compiled_);
  }

  void Release(std::unique_ptr<onnx::Session> session) const {
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.size() < max_idle_) idle_.push_back(std::move(session));
  }

  std::shared_ptr<const onnx::CompiledModel> compiled_;
  Signature signature_;
  size_t max_idle_;
  mutable std::mutex mu_;  // guards idle_
  // Sessions not in use; capacity reserved up front so that returning one never allocates.
  mutable std::vector<std::unique_ptr<onnx::Session>> idle_;
};

Result<std::unique_ptr<Model>> Finish(Result<onnx::Graph> graph, const OnnxOptions& options) {
  if (!graph.ok()) return graph.status();
  OUTPOST_ASSIGN_OR_RETURN(std::shared_ptr<const onnx::CompiledModel> compiled,
                           onnx::CompiledModel::Compile(std::move(graph).value(), options.compile));
  Signature signature = compiled->signature();
  OUTPOST_RETURN_IF_ERROR(MergeSpecs("inputs", options.inputs, signature.inputs));
  OUTPOST_RETURN_IF_ERROR(MergeSpecs("outputs", options.outputs, signature.outputs));
  return std::unique_ptr<Model>(
      new OnnxModel(std::move(compiled), std::move(signature), options.max_idle_sessions));
}

}  // namespace

Result<std::unique_ptr<Model>> LoadOnnxModel(const std::string& path, const OnnxOptions& options) {
  return Finish(onnx::ImportModelFile(path, options.import), options);
}

Result<std::unique_ptr<Model>> LoadOnnxModelFromBytes(std::span<const std::byte> bytes,
                                                      const OnnxOptions& options) {
  return Finish(onnx::ImportModel(bytes, "", options.import), options);
}

}  // namespace outpost::engine
