// The golden suite: every model of tests/onnx_golden/data (trees from XGBoost and
// scikit-learn through Outpost's converters, linear models, ONNX-ML operators, torch MLPs and
// a 1-D CNN), run by Outpost's ONNX engine on the committed inputs and compared with the
// outputs onnxruntime-node computed (see tests/onnx_golden/generate.py and reference.js).
//
// Labels (INT64 and STRING outputs) must be identical; numbers must agree within
// |ours - reference| <= 1e-5 * max(1, |reference|), NaN matching NaN.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "base/file.h"
#include "base/testing/test_util.h"
#include "engine/onnx/onnx_model.h"

namespace outpost::engine {
namespace {

struct Entry {
  std::string model, name, dtype, dims, file;
};

const std::string& Dir() {
  static const std::string dir = OUTPOST_ONNX_GOLDEN_DIR;
  return dir;
}

std::vector<std::vector<std::string>> ReadLines(const std::string& path) {
  std::vector<std::vector<std::string>> out;
  auto text = ReadFile(path);
  if (!text.ok()) return out;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::vector<std::string> f;
    std::string w;
    while (fields >> w) f.push_back(w);
    // An empty dims field (a scalar) shows as a missing word: keep positions fixed.
    if (f.size() == 5 && (f[0] == "input" || f[0] == "output")) f.insert(f.begin() + 4, "");
    if (!f.empty()) out.push_back(std::move(f));
  }
  return out;
}

Result<Tensor> LoadTensor(const Entry& e) {
  OUTPOST_ASSIGN_OR_RETURN(std::string bytes, ReadFile(Dir() + "/" + e.file));
  Shape shape;
  std::istringstream dims(e.dims);
  std::string d;
  while (std::getline(dims, d, ',')) shape.push_back(std::stoll(d));
  if (e.dtype == "string") {
    Tensor t(DataType::kBytes, shape);
    size_t off = 0;
    for (std::string& s : t.strings()) {
      if (off + 4 > bytes.size()) return InvalidArgumentError(e.file + " is short");
      uint32_t n;
      std::memcpy(&n, bytes.data() + off, 4);
      if (off + 4 + n > bytes.size()) return InvalidArgumentError(e.file + " is short");
      s.assign(bytes.data() + off + 4, n);
      off += 4 + n;
    }
    return t;
  }
  DataType type = e.dtype == "float32"   ? DataType::kFp32
                  : e.dtype == "float64" ? DataType::kFp64
                  : e.dtype == "int64"   ? DataType::kInt64
                                         : DataType::kInt32;
  Tensor t(type, shape);
  if (t.byte_size() != bytes.size()) return InvalidArgumentError(e.file + " has the wrong size");
  if (!bytes.empty()) std::memcpy(t.data(), bytes.data(), bytes.size());
  return t;
}

double At(const Tensor& t, size_t i) {
  switch (t.type()) {
    case DataType::kFp32: return t.values<float>()[i];
    case DataType::kFp64: return t.values<double>()[i];
    case DataType::kInt32: return t.values<int32_t>()[i];
    default: return static_cast<double>(t.values<int64_t>()[i]);
  }
}

TEST(OnnxGolden, EveryModelMatchesOnnxRuntime) {
  std::map<std::string, std::string> model_files;
  std::map<std::string, std::vector<Entry>> inputs, outputs;
  for (const auto& f : ReadLines(Dir() + "/inputs.txt")) {
    if (f[0] == "model" && f.size() == 3) model_files[f[1]] = f[2];
    if (f[0] == "input" && f.size() == 6) inputs[f[1]].push_back({f[1], f[2], f[3], f[4], f[5]});
  }
  for (const auto& f : ReadLines(Dir() + "/outputs.txt")) {
    if (f[0] == "output" && f.size() == 6) outputs[f[1]].push_back({f[1], f[2], f[3], f[4], f[5]});
  }
  ASSERT_GE(model_files.size(), 40u) << "golden data missing in " << Dir();
  for (const auto& [name, file] : model_files) {
    SCOPED_TRACE(name);
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, LoadOnnxModel(Dir() + "/" + file));
    std::vector<Tensor> in;
    // Inputs in the model's signature order.
    for (const TensorSpec& spec : model->signature().inputs) {
      bool found = false;
      for (const Entry& e : inputs[name]) {
        if (e.name != spec.name) continue;
        OUTPOST_ASSERT_OK_AND_ASSIGN(Tensor t, LoadTensor(e));
        in.push_back(std::move(t));
        found = true;
      }
      ASSERT_TRUE(found) << "no data for input " << spec.name;
    }
    std::vector<Tensor> out;
    OUTPOST_ASSERT_OK(model->Run(in, out));
    ASSERT_EQ(out.size(), outputs[name].size());
    double worst = 0;
    size_t rows = 0;
    for (size_t o = 0; o < out.size(); ++o) {
      const Entry& e = outputs[name][o];
      ASSERT_EQ(model->signature().outputs[o].name, e.name);
      OUTPOST_ASSERT_OK_AND_ASSIGN(Tensor want, LoadTensor(e));
      ASSERT_EQ(out[o].shape(), want.shape()) << e.name;
      rows = want.shape().empty() ? 1 : static_cast<size_t>(want.shape()[0]);
      if (want.type() == DataType::kBytes) {
        ASSERT_EQ(out[o].type(), DataType::kBytes);
        size_t differ = 0;
        for (size_t i = 0; i < want.strings().size(); ++i) differ += out[o].strings()[i] != want.strings()[i];
        EXPECT_EQ(differ, 0u) << e.name << ": labels differ";
        continue;
      }
      ASSERT_EQ(out[o].type(), want.type()) << e.name;
      const bool label = want.type() == DataType::kInt64 || want.type() == DataType::kInt32;
      size_t bad = 0;
      for (size_t i = 0; i < static_cast<size_t>(want.element_count()); ++i) {
        const double a = At(out[o], i), r = At(want, i);
        if (std::isnan(a) && std::isnan(r)) continue;
        if (label) {
          bad += a != r;
          continue;
        }
        const double diff = std::fabs(a - r);
        if (std::isnan(diff) || diff > 1e-5 * std::max(1.0, std::fabs(r))) {
          if (bad == 0) {
            ADD_FAILURE() << e.name << " element " << i << ": ours " << a << ", reference " << r;
          }
          ++bad;
        }
        if (!std::isnan(diff)) worst = std::max(worst, diff);
      }
      EXPECT_EQ(bad, 0u) << e.name << (label ? ": labels differ" : ": values differ");
    }
    std::printf("golden %-32s rows %5zu  max |delta| %.3g\n", name.c_str(), rows, worst);
  }
}

}  // namespace
}  // namespace outpost::engine
