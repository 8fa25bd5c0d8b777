// Fake engine::Model implementations for the scoring server's tests and fuzz target: small,
// exact models whose answers a test can compute by hand.
#ifndef OUTPOST_SERVE_TESTING_FAKE_MODELS_H_
#define OUTPOST_SERVE_TESTING_FAKE_MODELS_H_

#include <condition_variable>
#include <latch>
#include <mutex>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "engine/model.h"
#include "serve/repository.h"

namespace outpost::serve::testing {

// The signature of the one-in, one-out fakes: input "x" and output "y", both of `type` and
// shape [-1].
inline engine::Signature EchoSignature(engine::DataType type) {
  engine::Signature signature;
  signature.inputs.push_back({.name = "x", .type = type, .shape = {-1}});
  signature.outputs.push_back({.name = "y", .type = type, .shape = {-1}});
  return signature;
}

// Triton's "simple" model: INPUT0 and INPUT1 of shape [-1, 4] in, OUTPUT0 = INPUT0 + INPUT1
// and OUTPUT1 = INPUT0 - INPUT1 out. `type` is kInt32 or kFp32.
class AddSubModel final : public engine::Model {
 public:
  explicit AddSubModel(engine::DataType type) {
    for (const char* name : {"INPUT0", "INPUT1"}) {
      signature_.inputs.push_back({.name = name, .type = type, .shape = {-1, 4}});
    }
    for (const char* name : {"OUTPUT0", "OUTPUT1"}) {
      signature_.outputs.push_back({.name = name, .type = type, .shape = {-1, 4}});
    }
  }
  const engine::Signature& signature() const override { return signature_; }
  std::string_view platform() const override { return "fake_addsub"; }
  Status Run(std::span<const engine::Tensor> inputs,
             std::vector<engine::Tensor>& outputs) const override {
    outputs.clear();
    outputs.emplace_back(inputs[0].type(), inputs[0].shape());
    outputs.emplace_back(inputs[0].type(), inputs[0].shape());
    if (inputs[0].type() == engine::DataType::kInt32) {
      Compute<int32_t>(inputs, outputs);
    } else {
      Compute<float>(inputs, outputs);
    }
    return Status();
  }

 private:
  template <typename T>
  static void Compute(std::span<const engine::Tensor> in, std::vector<engine::Tensor>& out) {
    auto a = in[0].values<T>();
    auto b = in[1].values<T>();
    auto sum = out[0].values<T>();
    auto diff = out[1].values<T>();
    for (size_t i = 0; i < a.size(); ++i) {
      if constexpr (std::is_integral_v<T>) {
        // Two's complement wrap-around, as Triton's "simple" model and numpy compute it (a
        // fuzzed INT32_MAX + 1 is not undefined behaviour here).
        using U = std::make_unsigned_t<T>;
        sum[i] = static_cast<T>(static_cast<U>(a[i]) + static_cast<U>(b[i]));
        diff[i] = static_cast<T>(static_cast<U>(a[i]) - static_cast<U>(b[i]));
      } else {
        sum[i] = static_cast<T>(a[i] + b[i]);
        diff[i] = static_cast<T>(a[i] - b[i]);
      }
    }
  }
  engine::Signature signature_;
};

// Returns its one input "x" (shape [-1], any datatype given) unchanged as output "y".
class EchoModel final : public engine::Model {
 public:
  explicit EchoModel(engine::DataType type) {
    signature_ = EchoSignature(type);
  }
  const engine::Signature& signature() const override { return signature_; }
  std::string_view platform() const override { return "fake_echo"; }
  Status Run(std::span<const engine::Tensor> inputs,
             std::vector<engine::Tensor>& outputs) const override {
    outputs.assign(inputs.begin(), inputs.end());
    return Status();
  }

 private:
  engine::Signature signature_;
};

// Takes FP32 "x" of shape [-1] and fails every run with `status`.
class FailingModel final : public engine::Model {
 public:
  explicit FailingModel(Status status) : status_(std::move(status)) {
    signature_ = EchoSignature(engine::DataType::kFp32);
  }
  const engine::Signature& signature() const override { return signature_; }
  std::string_view platform() const override { return "fake_failing"; }
  Status Run(std::span<const engine::Tensor>, std::vector<engine::Tensor>&) const override {
    return status_;
  }

 private:
  engine::Signature signature_;
  Status status_;
};

// Echoes FP32 "x" as "y", but each run first counts down `entered` and then waits on
// `release`; a test uses it to hold a request in flight. Both latches outlive the model.
class BlockingModel final : public engine::Model {
 public:
  BlockingModel(std::latch& entered, std::latch& release) : entered_(entered), release_(release) {
    signature_ = EchoSignature(engine::DataType::kFp32);
  }
  const engine::Signature& signature() const override { return signature_; }
  std::string_view platform() const override { return "fake_blocking"; }
  Status Run(std::span<const engine::Tensor> inputs,
             std::vector<engine::Tensor>& outputs) const override {
    entered_.count_down();
    release_.wait();
    outputs.assign(inputs.begin(), inputs.end());
    return Status();
  }

 private:
  engine::Signature signature_;
  std::latch& entered_;
  std::latch& release_;
};

// Echoes FP32 "x" as "y" and counts its runs. With `hold`, every run waits inside Run until
// Release() (runs after it pass at once): a test holds requests inside the model and proves
// what happens meanwhile by the order of events, not by timing. Without `hold` it only counts.
class HeldEchoModel final : public engine::Model {
 public:
  explicit HeldEchoModel(bool hold = true) : hold_(hold) {
    signature_ = EchoSignature(engine::DataType::kFp32);
  }
  const engine::Signature& signature() const override { return signature_; }
  std::string_view platform() const override { return "fake_held_echo"; }
  Status Run(std::span<const engine::Tensor> inputs,
             std::vector<engine::Tensor>& outputs) const override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      ++runs_;
      cv_.notify_all();
      if (hold_) cv_.wait(lock, [this] { return released_; });
    }
    outputs.assign(inputs.begin(), inputs.end());
    return Status();
  }
  // Lets every held run, and every later one, go on.
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  // Waits until `n` runs have started.
  void WaitEntered(int n = 1) const {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return runs_ >= n; });
  }
  // Runs started so far.
  int runs() const {
    std::lock_guard<std::mutex> lock(mu_);
    return runs_;
  }

 private:
  const bool hold_;
  engine::Signature signature_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable int runs_ = 0;
  bool released_ = false;
};

// y = x + tag for FP32 "x" of shape [-1]: a test gives each version its own tag, so that an
// answer shows which version computed it.
class TagModel final : public engine::Model {
 public:
  explicit TagModel(float tag) : tag_(tag) {
    signature_ = EchoSignature(engine::DataType::kFp32);
  }
  const engine::Signature& signature() const override { return signature_; }
  std::string_view platform() const override { return "fake_tag"; }
  Status Run(std::span<const engine::Tensor> inputs,
             std::vector<engine::Tensor>& outputs) const override {
    auto x = inputs[0].values<float>();
    outputs.clear();
    outputs.emplace_back(engine::DataType::kFp32, inputs[0].shape());
    auto y = outputs[0].values<float>();
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] + tag_;
    return Status();
  }

 private:
  engine::Signature signature_;
  float tag_;
};

// A servable model whose listed versions are all loaded and ready.
inline std::shared_ptr<const ServableModel> ReadyServable(
    std::string name,
    std::vector<std::pair<int64_t, std::shared_ptr<const engine::Model>>> versions) {
  auto servable = std::make_shared<ServableModel>();
  servable->name = std::move(name);
  servable->config = std::make_shared<ModelConfig>();
  for (const auto& [version, model] : versions) {
    servable->versions.push_back({.version = version, .state = VersionState::kReady, .reason = ""});
  }
  servable->ready = std::move(versions);
  return servable;
}

// A servable model whose only version failed to load with `reason`.
inline std::shared_ptr<const ServableModel> BrokenServable(std::string name, int64_t version,
                                                           std::string reason) {
  auto servable = std::make_shared<ServableModel>();
  servable->name = std::move(name);
  servable->config = std::make_shared<ModelConfig>();
  servable->versions.push_back(
      {.version = version, .state = VersionState::kUnavailable, .reason = std::move(reason)});
  return servable;
}

}  // namespace outpost::serve::testing

#endif  // OUTPOST_SERVE_TESTING_FAKE_MODELS_H_
