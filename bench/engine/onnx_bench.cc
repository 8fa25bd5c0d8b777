// onnx_bench: Outpost's ONNX engine on the golden models, one thread, batch 1 and batch 1000.
//
//   onnx_bench GOLDEN_DIR [seconds-per-case] [--as-written | --rows=N] [--warmup=N]
//              [--min-runs=N] [--threads=N]
//   onnx_bench --clock      (prints "clock_ghz G": the core's clock, measured)
//
// --as-written runs each case at its inputs' own batch instead (the large models of
// tests/onnx_golden/models.py, whose cases are <model>_b1 and <model>_b8); --rows=N at batch N
// (their first N rows: models.py's layers/ at 1 and 8); --threads=N compiles each model with
// N intra-op threads.
// Prints one line per case: "ours <model> <batch> <p50 microseconds> <runs>" (with
// --as-written, "unsupported <model> <status>" for a model the engine cannot load). The latency is
// that of engine::Model::Run (the scoring server's call), inputs prepared once and output
// tensors reused, after a warm-up. run_bench.js runs onnxruntime-node on the same cases in
// the same run and prints the ratios.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "base/file.h"
#include "engine/onnx/onnx_model.h"

namespace {

using outpost::engine::DataType;
using outpost::engine::Shape;
using outpost::engine::Tensor;

struct Input {
  std::string name, dtype;
  Shape shape;
  std::string bytes;
};

// The first `rows` rows of a committed input (strings: length-prefixed).
Tensor Slice(const Input& in, int64_t rows) {
  Shape shape = in.shape;
  const int64_t total_rows = shape.empty() ? 1 : shape[0];
  const bool batched = !shape.empty() && in.name != "idx";
  if (batched) shape[0] = std::min(rows, total_rows);
  if (in.dtype == "string") {
    Tensor t(DataType::kBytes, shape);
    size_t off = 0;
    for (std::string& s : t.strings()) {
      uint32_t n;
      std::memcpy(&n, in.bytes.data() + off, 4);
      s.assign(in.bytes.data() + off + 4, n);
      off += 4 + n;
    }
    return t;
  }
  const DataType type = in.dtype == "float32"   ? DataType::kFp32
                        : in.dtype == "float64" ? DataType::kFp64
                        : in.dtype == "int64"   ? DataType::kInt64
                        : in.dtype == "uint8"   ? DataType::kUint8
                                                : DataType::kInt32;
  Tensor t(type, shape);
  std::memcpy(t.data(), in.bytes.data(), t.byte_size());
  return t;
}

// Command-line options after GOLDEN_DIR and seconds-per-case.
struct Options {
  bool as_written = false;  // each case at its input's own batch (models.py's cases)
  int64_t rows = 0;         // each case at this batch (its inputs' first rows) instead
  int threads = 1;          // the engine's intra-op threads (CompileOptions::threads)
  bool onednn = false;      // convolutions through oneDNN (CompileOptions::onednn)
  int warmup = 20;
  size_t min_runs = 20;
};

Options ParseOptions(int argc, char** argv) {
  Options o;
  for (int i = 3; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--as-written") o.as_written = true;
    if (a == "--onednn") o.onednn = true;
    if (a.rfind("--rows=", 0) == 0) o.rows = std::atoll(a.c_str() + 7);
    if (a.rfind("--threads=", 0) == 0) o.threads = std::atoi(a.c_str() + 10);
    if (a.rfind("--warmup=", 0) == 0) o.warmup = std::atoi(a.c_str() + 9);
    if (a.rfind("--min-runs=", 0) == 0) o.min_runs = static_cast<size_t>(std::atoi(a.c_str() + 11));
  }
  return o;
}

struct Suite {
  std::vector<std::string> order;
  std::map<std::string, std::string> files;
  std::map<std::string, std::vector<Input>> inputs;
};

Suite ReadSuite(const std::string& dir, const std::string& manifest) {
  Suite suite;
  std::istringstream lines(manifest);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream f(line);
    std::string kind, model;
    f >> kind >> model;
    if (kind == "model") {
      f >> suite.files[model];
      suite.order.push_back(model);
    } else if (kind == "input") {
      Input in;
      std::string dims, file;
      f >> in.name >> in.dtype >> dims >> file;
      std::istringstream ds(dims);
      std::string d;
      while (std::getline(ds, d, ',')) in.shape.push_back(std::stoll(d));
      in.bytes = outpost::ReadFile(dir + "/" + file).value_or("");
      suite.inputs[model].push_back(std::move(in));
    }
  }
  return suite;
}

// The p50 latency of Run over `seconds` (at least min_runs runs) after the warm-up, in
// microseconds, and the number of runs; a negative latency when a run fails.
std::pair<double, size_t> TimeRuns(const outpost::engine::Model& model,
                                   const std::vector<Tensor>& in, double seconds,
                                   const Options& o) {
  std::vector<Tensor> out;
  for (int i = 0; i < o.warmup; ++i) {
    if (!model.Run(in, out).ok()) return {-1, 0};
  }
  std::vector<double> lat;
  const auto until = std::chrono::steady_clock::now() +
                     std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6));
  while (std::chrono::steady_clock::now() < until || lat.size() < o.min_runs) {
    const auto t0 = std::chrono::steady_clock::now();
    outpost::Status st = model.Run(in, out);
    const auto t1 = std::chrono::steady_clock::now();
    if (!st.ok()) return {-1, 0};
    lat.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  std::sort(lat.begin(), lat.end());
  return {lat[lat.size() / 2], lat.size()};
}

// The core's clock as it runs, in GHz: a chain of dependent integer adds retires one add per
// cycle, so adds / seconds is the clock (the best of forty 6 ms tries: a busy machine
// preempts some). /proc/cpuinfo's
// "cpu MHz" is what a guest was told at boot, not the boost clock the kernels run at.
double MeasureClockGhz() {
#if defined(__x86_64__)
  double best = 0;
  for (int trial = 0; trial < 40; ++trial) {
    constexpr int64_t kIterations = 2'500'000;
    uint64_t x = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < kIterations; ++i) {
      asm volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                   "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0"
                   : "+r"(x));
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 8.0 * kIterations / s / 1e9);
  }
  return best;
#else
  return 0;
#endif
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "--clock") {
    std::printf("clock_ghz %.3f\n", MeasureClockGhz());
    return 0;
  }
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s GOLDEN_DIR [seconds-per-case] [--as-written | --rows=N] "
                 "[--warmup=N] [--min-runs=N] [--threads=N] [--onednn]\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const double seconds = argc > 2 ? std::atof(argv[2]) : 0.3;
  const Options options = ParseOptions(argc, argv);
  auto text = outpost::ReadFile(dir + "/inputs.txt");
  if (!text.ok()) {
    std::fprintf(stderr, "%s\n", text.status().ToString().c_str());
    return 1;
  }
  Suite suite = ReadSuite(dir, *text);
  for (const std::string& model_name : suite.order) {
    outpost::engine::OnnxOptions load_options;
    load_options.compile.threads = options.threads;
    load_options.compile.onednn = options.onednn;
    auto model = outpost::engine::LoadOnnxModel(dir + "/" + suite.files[model_name], load_options);
    if (!model.ok() && options.as_written) {  // the large models: report it and go on
      std::printf("unsupported %s %s\n", model_name.c_str(), model.status().ToString().c_str());
      continue;
    }
    if (!model.ok()) {
      std::fprintf(stderr, "%s: %s\n", model_name.c_str(), model.status().ToString().c_str());
      return 1;
    }
    const std::vector<int64_t> batches =
        options.as_written ? std::vector<int64_t>{-1}
        : options.rows > 0 ? std::vector<int64_t>{options.rows}
                           : std::vector<int64_t>{1, 1000};
    for (int64_t batch : batches) {
      std::vector<Tensor> in;
      for (const auto& spec : (*model)->signature().inputs) {
        for (const Input& i : suite.inputs[model_name]) {
          if (i.name != spec.name) continue;
          in.push_back(batch < 0 ? Slice(i, i.shape.empty() ? 1 : i.shape[0]) : Slice(i, batch));
        }
      }
      const int64_t rows = in.empty() || in[0].shape().empty() ? 1 : in[0].shape()[0];
      const auto [p50, runs] = TimeRuns(**model, in, seconds, options);
      if (p50 < 0) {
        std::fprintf(stderr, "%s: a run failed\n", model_name.c_str());
        return 1;
      }
      std::printf("ours %s %lld %.3f %zu\n", model_name.c_str(), static_cast<long long>(rows), p50,
                  runs);
      std::fflush(stdout);
    }
  }
  return 0;
}
