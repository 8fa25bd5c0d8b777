// onnx_bench: Outpost's ONNX engine on the golden models, one thread, batch 1 and batch 1000.
//
//   onnx_bench GOLDEN_DIR [seconds-per-case]
//
// Prints one line per case: "ours <model> <batch> <p50 microseconds> <runs>". The latency is
// that of engine::Model::Run (the scoring server's call), inputs prepared once and output
// tensors reused, after a warm-up. run_bench.js runs onnxruntime-node on the same cases in
// the same run and prints the ratios.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
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
                                                : DataType::kInt32;
  Tensor t(type, shape);
  std::memcpy(t.data(), in.bytes.data(), t.byte_size());
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s GOLDEN_DIR [seconds-per-case]\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const double seconds = argc > 2 ? std::atof(argv[2]) : 0.3;
  auto text = outpost::ReadFile(dir + "/inputs.txt");
  if (!text.ok()) {
    std::fprintf(stderr, "%s\n", text.status().ToString().c_str());
    return 1;
  }
  std::vector<std::string> order;
  std::map<std::string, std::string> files;
  std::map<std::string, std::vector<Input>> inputs;
  std::istringstream lines(*text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream f(line);
    std::string kind, model;
    f >> kind >> model;
    if (kind == "model") {
      f >> files[model];
      order.push_back(model);
    } else if (kind == "input") {
      Input in;
      std::string dims, file;
      f >> in.name >> in.dtype >> dims >> file;
      std::istringstream ds(dims);
      std::string d;
      while (std::getline(ds, d, ',')) in.shape.push_back(std::stoll(d));
      in.bytes = outpost::ReadFile(dir + "/" + file).value_or("");
      inputs[model].push_back(std::move(in));
    }
  }
  for (const std::string& model_name : order) {
    auto model = outpost::engine::LoadOnnxModel(dir + "/" + files[model_name]);
    if (!model.ok()) {
      std::fprintf(stderr, "%s: %s\n", model_name.c_str(), model.status().ToString().c_str());
      return 1;
    }
    for (int64_t batch : {1, 1000}) {
      std::vector<Tensor> in;
      for (const auto& spec : (*model)->signature().inputs) {
        for (const Input& i : inputs[model_name]) {
          if (i.name == spec.name) in.push_back(Slice(i, batch));
        }
      }
      std::vector<Tensor> out;
      for (int i = 0; i < 20; ++i) {
        if (!(*model)->Run(in, out).ok()) return 1;
      }
      std::vector<double> lat;
      const auto until = std::chrono::steady_clock::now() +
                         std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6));
      while (std::chrono::steady_clock::now() < until || lat.size() < 20) {
        const auto t0 = std::chrono::steady_clock::now();
        outpost::Status st = (*model)->Run(in, out);
        const auto t1 = std::chrono::steady_clock::now();
        if (!st.ok()) return 1;
        lat.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      }
      std::sort(lat.begin(), lat.end());
      std::printf("ours %s %lld %.3f %zu\n", model_name.c_str(), static_cast<long long>(batch),
                  lat[lat.size() / 2], lat.size());
      std::fflush(stdout);
    }
  }
  return 0;
}
