// The golden suite's large models (tests/onnx_golden/models.py): torchvision's resnet18,
// mobilenet_v2, mobilenet_v3_small, squeezenet1_1, shufflenet_v2 and efficientnet_b0, an LSTM
// and a bidirectional GRU over sensor sequences, a transformer encoder over token ids, a U-Net
// segmenter, a detector ending in NonMaxSuppression, a QDQ-quantized CNN (and one in
// QLinearConv/QLinearMatMul form), a dynamically quantized MLP, an FP16 CNN, a CNN with FP16
// and BF16 weights, a camera model's preprocessing (uint8 frames) and a super-resolution
// network (PRelu, InstanceNormalization, DepthToSpace, SpaceToDepth), each at batch 1 and 8;
// five of them also in the forms torch exports at opset 11. The build generates them with
// random weights from a fixed seed and scores them with onnxruntime-node (reference.js); this
// test runs Outpost's engine on the same inputs (batch 8 also on two intra-op threads, and
// batch 1 and 8 again with the convolutions through oneDNN, CompileOptions::onednn) and
// compares.
//
// Each output's rule is in the manifest ("compare <case> <output> <rule>"):
//   labels  identical (INT64 outputs: class labels, masks, selected box indices);
//   rel     |ours - ORT| <= 1e-4 + 1e-3 * |ORT|;
//   scale   |ours - ORT| <= 1e-3 * max |ORT| (vision outputs: 1e-3 of the output's scale);
//   abs S   |ours - ORT| <= S (quantized outputs: one quantization step S).
// A model the engine cannot run yet is listed in Pending() with its reason.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "base/file.h"
#include "base/testing/test_util.h"
#include "engine/onnx/onnx_model.h"

namespace outpost::engine {
namespace {

struct Entry {
  std::string name, dtype, dims, file;
};

struct Case {
  std::string file;
  std::vector<Entry> inputs, outputs;
  std::map<std::string, std::string> rules;
};

const std::string& Dir() {
  static const std::string dir = OUTPOST_ONNX_MODELS_DIR;
  return dir;
}

// inputs.txt and outputs.txt: "model C F", "input C N T D F", "output C N T D F",
// "compare C N RULE...".
std::map<std::string, Case> ReadManifest() {
  std::map<std::string, Case> cases;
  for (const char* file : {"/inputs.txt", "/outputs.txt"}) {
    auto text = ReadFile(Dir() + file);
    if (!text.ok()) continue;
    std::istringstream in(*text);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string kind, name;
      fields >> kind >> name;
      Case& c = cases[name];
      Entry e;
      if (kind == "model") {
        fields >> c.file;
      } else if (kind == "input" || kind == "output") {
        fields >> e.name >> e.dtype >> e.dims >> e.file;
        (kind == "input" ? c.inputs : c.outputs).push_back(e);
      } else if (kind == "compare") {
        fields >> e.name;
        std::getline(fields >> std::ws, c.rules[e.name]);
      }
    }
  }
  return cases;
}

Result<Tensor> LoadTensor(const Entry& e) {
  OUTPOST_ASSIGN_OR_RETURN(std::string bytes, ReadFile(Dir() + "/" + e.file));
  Shape shape;
  std::istringstream dims(e.dims);
  std::string d;
  while (std::getline(dims, d, ',')) shape.push_back(std::stoll(d));
  const DataType type = e.dtype == "float32" ? DataType::kFp32
                        : e.dtype == "int64" ? DataType::kInt64
                        : e.dtype == "int32" ? DataType::kInt32
                        : e.dtype == "uint8" ? DataType::kUint8
                                             : DataType::kBytes;
  if (type == DataType::kBytes) return InvalidArgumentError(e.file + ": " + e.dtype);
  Tensor t(type, shape);
  if (t.byte_size() != bytes.size()) return InvalidArgumentError(e.file + " has the wrong size");
  if (!bytes.empty()) std::memcpy(t.data(), bytes.data(), bytes.size());
  return t;
}

// Elements outside the rule's tolerance; prints the first and the largest difference.
size_t CountMismatches(const std::string& what, const std::string& rule, const Tensor& ours,
                       const Tensor& want) {
  if (rule == "labels") {
    EXPECT_EQ(ours.type(), DataType::kInt64) << what;
    if (ours.type() != DataType::kInt64) return 1;
    size_t bad = 0;
    for (int64_t i = 0; i < want.element_count(); ++i) {
      if (ours.values<int64_t>()[i] == want.values<int64_t>()[i]) continue;
      if (bad++ == 0) {
        ADD_FAILURE() << what << " element " << i << ": ours " << ours.values<int64_t>()[i]
                      << ", onnxruntime " << want.values<int64_t>()[i];
      }
    }
    return bad;
  }
  EXPECT_EQ(ours.type(), DataType::kFp32) << what;
  if (ours.type() != DataType::kFp32) return 1;
  const auto a = ours.values<float>(), r = want.values<float>();
  double scale = 0;
  for (float v : r) scale = std::max(scale, std::fabs(static_cast<double>(v)));
  double bound = 0, rel = 0;
  if (rule == "rel") {
    bound = 1e-4, rel = 1e-3;
  } else if (rule == "scale") {
    bound = 1e-3 * scale;
  } else if (rule.rfind("abs ", 0) == 0) {
    bound = std::stod(rule.substr(4));
  } else {
    ADD_FAILURE() << what << ": unknown rule " << rule;
    return 1;
  }
  size_t bad = 0;
  double worst = 0;
  for (int64_t i = 0; i < want.element_count(); ++i) {
    const double diff = std::fabs(static_cast<double>(a[i]) - r[i]);
    if (!(diff <= bound + rel * std::fabs(r[i])) && bad++ == 0) {
      ADD_FAILURE() << what << " element " << i << ": ours " << a[i] << ", onnxruntime " << r[i];
    }
    if (!std::isnan(diff)) worst = std::max(worst, diff);
  }
  std::printf("%-34s %-8s max |ORT| %-9.3g max |delta| %-9.3g (%s)\n", what.c_str(),
              rule.substr(0, 5).c_str(), scale, worst, rule.c_str());
  return bad;
}

// Models the engine cannot load yet, each with its reason. A listed model must still fail to
// load with UNIMPLEMENTED, so that the list stays exact: one that loads fails the test.
const std::map<std::string, std::string>& Pending() {
  static const auto* pending = new std::map<std::string, std::string>{};
  return *pending;
}

class OnnxModels : public ::testing::TestWithParam<const char*> {};

TEST_P(OnnxModels, MatchesOnnxRuntimeAtBatch1And8) {
  const std::map<std::string, Case> cases = ReadManifest();
  std::unique_ptr<Model> model;
  if (auto pending = Pending().find(GetParam()); pending != Pending().end()) {
    auto it = cases.find(std::string(GetParam()) + "_b1");
    ASSERT_NE(it, cases.end());
    auto loaded = LoadOnnxModel(Dir() + "/" + it->second.file);
    ASSERT_FALSE(loaded.ok()) << GetParam() << " loads now: take it off the pending list";
    EXPECT_EQ(loaded.status().code(), StatusCode::kUnimplemented) << loaded.status().ToString();
    GTEST_SKIP() << "pending: " << pending->second << " (" << loaded.status().ToString() << ")";
  }
  // Batch 1 again after batch 8: a shape seen before reuses its cached plan and arena. Then
  // batch 8 on two intra-op threads (CompileOptions::threads), a model compiled anew; then
  // the convolutions through oneDNN (CompileOptions::onednn) at batch 1 on one thread and
  // batch 8 on two.
  struct RunSpec {
    const char* batch;
    int threads;
    bool onednn;
  };
  int threads = 0;
  bool onednn = false;
  for (const RunSpec& run : {RunSpec{"_b1", 1, false}, RunSpec{"_b8", 1, false},
                             RunSpec{"_b1", 1, false}, RunSpec{"_b8", 2, false},
                             RunSpec{"_b1", 1, true}, RunSpec{"_b8", 2, true}}) {
    const std::string name = std::string(GetParam()) + run.batch;
    const std::string label = name + (run.threads > 1 ? " (2 threads)" : "") +
                              (run.onednn ? " (oneDNN)" : "");
    SCOPED_TRACE(label);
    auto it = cases.find(name);
    ASSERT_NE(it, cases.end()) << "no case " << name << " in " << Dir();
    const Case& c = it->second;
    ASSERT_FALSE(c.outputs.empty()) << "no onnxruntime outputs for " << name;
    if (threads != run.threads || onednn != run.onednn) {
      OnnxOptions options;
      options.compile.threads = run.threads;
      options.compile.onednn = run.onednn;
      OUTPOST_ASSERT_OK_AND_ASSIGN(model, LoadOnnxModel(Dir() + "/" + c.file, options));
      threads = run.threads;
      onednn = run.onednn;
    }
    std::vector<Tensor> in, out;
    for (const TensorSpec& spec : model->signature().inputs) {
      auto e = std::find_if(c.inputs.begin(), c.inputs.end(),
                            [&](const Entry& i) { return i.name == spec.name; });
      ASSERT_NE(e, c.inputs.end()) << "no data for input " << spec.name;
      OUTPOST_ASSERT_OK_AND_ASSIGN(Tensor t, LoadTensor(*e));
      in.push_back(std::move(t));
    }
    OUTPOST_ASSERT_OK(model->Run(in, out));
    ASSERT_EQ(out.size(), c.outputs.size());
    for (size_t o = 0; o < out.size(); ++o) {
      const Entry& e = c.outputs[o];
      ASSERT_EQ(model->signature().outputs[o].name, e.name);
      ASSERT_EQ(c.rules.count(e.name), 1u) << "no compare rule for " << e.name;
      OUTPOST_ASSERT_OK_AND_ASSIGN(Tensor want, LoadTensor(e));
      ASSERT_EQ(out[o].shape(), want.shape()) << e.name;
      EXPECT_EQ(CountMismatches(label + "." + e.name, c.rules.at(e.name), out[o], want), 0u)
          << e.name << " differs from onnxruntime";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Golden, OnnxModels,
    ::testing::Values("resnet18", "mobilenet_v2", "mobilenet_v3_small", "squeezenet1_1",
                      "shufflenet_v2", "efficientnet_b0", "lstm_sensor", "gru_bidirectional",
                      "transformer_encoder", "unet_segmenter", "detector_nms", "qdq_cnn",
                      "qlinear_cnn", "dynamic_quant_mlp", "fp16_cnn", "half_weights_cnn",
                      "camera_preprocess", "super_resolution", "mobilenet_v3_small_opset11",
                      "shufflenet_v2_opset11", "lstm_sensor_opset11", "transformer_encoder_opset11",
                      "unet_segmenter_opset11"),
    [](const ::testing::TestParamInfo<const char*>& p) { return std::string(p.param); });

}  // namespace
}  // namespace outpost::engine
