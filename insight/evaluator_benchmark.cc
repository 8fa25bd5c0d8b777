// What the insight rules add to the scoring path: the cost of Evaluator::OnScored (copying the
// batch into the queue) for the pump model's rules, next to the cost of copying the same
// tensors alone, the least any asynchronous hand-off must pay. A tight loop outruns the
// evaluating thread, so `dropped` counts batches that took the (cheaper) drop path.
//
//   build-*/insight/insight_benchmark
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "engine/tensor.h"
#include "insight/evaluator.h"
#include "insight/rules.h"
#include "outbox/outbox.h"

namespace outpost::insight {
namespace {

constexpr char kRules[] = R"(
features: [bearing_temp_c, vibration_mm_s, discharge_pressure_bar, motor_current_a,
           speed_rpm, ambient_temp_c, flow_m3h, hours_since_service]
rules:
  - {name: fault_likely, kind: anomaly, above: 0.999, fields: [bearing_temp_c]}
  - {name: unsure, kind: hard_example, margin_below: 0.0001}
  - {name: moved, kind: drift, window: 1000, level: 0.5,
     baseline: {bearing_temp_c: {edges: [40, 50, 60], fractions: [0.25, 0.25, 0.25, 0.25]}}}
)";

const engine::Signature kSignature{
    .inputs = {{.name = "features", .type = engine::DataType::kFp32, .shape = {-1, 8}}},
    .outputs = {{.name = "probability", .type = engine::DataType::kFp32, .shape = {-1}}}};

struct Fixture {
  std::vector<engine::Tensor> inputs;
  std::vector<engine::Tensor> outputs;
  explicit Fixture(int64_t rows) {
    inputs.emplace_back(engine::DataType::kFp32, engine::Shape{rows, 8});
    for (float& v : inputs[0].values<float>()) v = 50.0f;
    outputs.emplace_back(engine::DataType::kFp32, engine::Shape{rows});
    for (float& v : outputs[0].values<float>()) v = 0.2f;
  }
};

void BM_CopyOnly(benchmark::State& state) {
  Fixture f(state.range(0));
  for (auto _ : state) {
    engine::Tensor in = f.inputs[0];
    engine::Tensor out = f.outputs[0];
    benchmark::DoNotOptimize(in.data());
    benchmark::DoNotOptimize(out.data());
  }
}

void BM_OnScored(benchmark::State& state) {
  char dir_template[] = "/tmp/insight_benchmark.XXXXXX";
  const char* dir = mkdtemp(dir_template);
  if (dir == nullptr) {
    state.SkipWithError("mkdtemp failed");
    return;
  }
  const std::string path = std::string(dir) + "/outbox.db";
  auto rules = ParseInsightSection(kRules);
  auto box = outbox::Outbox::Open({.path = path, .site_id = "bench", .node_id = "n"});
  if (!rules.ok() || !box.ok()) {
    state.SkipWithError("setup failed");
    return;
  }
  {
    auto evaluator = Evaluator::Create({.outbox = box->get(), .queue_capacity = 1 << 16});
    if (!evaluator.ok()) {
      state.SkipWithError("setup failed");
      return;
    }
    Fixture f(state.range(0));
    for (auto _ : state) {
      (*evaluator)
          ->OnScored({.rules = *rules,
                      .model = "pump",
                      .version = 1,
                      .request_id = "bench",
                      .signature = &kSignature,
                      .inputs = f.inputs,
                      .outputs = f.outputs});
    }
    (*evaluator)->Drain();
    state.counters["dropped"] = static_cast<double>((*evaluator)->stats().batches_dropped);
  }
  box->reset();
  std::remove(path.c_str());
  std::remove((path + "-wal").c_str());
  std::remove((path + "-shm").c_str());
  rmdir(dir);
}

BENCHMARK(BM_CopyOnly)->Arg(1)->Arg(32)->Arg(1024);
BENCHMARK(BM_OnScored)->Arg(1)->Arg(32)->Arg(1024);

}  // namespace
}  // namespace outpost::insight

BENCHMARK_MAIN();
