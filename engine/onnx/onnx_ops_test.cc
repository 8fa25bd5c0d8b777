// Tests of the phase-2 operators (recurrent layers, ConvTranspose, Resize, detection,
// sampling, signal, quantized and the smaller ones): shapes, attributes and an edge case each,
// with expected values worked out by hand from the operator definitions.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "base/testing/test_util.h"
#include "engine/onnx/counting_allocator.h"
#include "engine/onnx/float16.h"
#include "engine/onnx/onnx_import.h"
#include "engine/onnx/onnx_model.h"
#include "engine/onnx/test_models.h"

namespace outpost::engine::onnx {
namespace {

using testing::FloatAttr;
using testing::FloatsAttr;
using testing::FloatTensor;
using testing::GraphBuilder;
using testing::IntAttr;
using testing::IntsAttr;
using testing::StringAttr;
using testing::StringsAttr;

Tensor Ints64(std::vector<int64_t> shape, std::vector<int64_t> v) {
  Tensor t(DataType::kInt64, std::move(shape));
  for (size_t i = 0; i < v.size(); ++i) t.values<int64_t>()[i] = v[i];
  return t;
}

Tensor Bytes(DataType type, std::vector<int64_t> shape, std::vector<int> v) {
  Tensor t(type, std::move(shape));
  for (size_t i = 0; i < v.size(); ++i) {
    if (type == DataType::kInt8) {
      t.values<int8_t>()[i] = static_cast<int8_t>(v[i]);
    } else {
      t.values<uint8_t>()[i] = static_cast<uint8_t>(v[i]);
    }
  }
  return t;
}

// One node over graph inputs (nullopt: an omitted optional input), run once.
struct OpCase {
  std::string op;
  std::vector<std::optional<Tensor>> inputs;
  std::vector<Attribute> attrs;
  size_t outputs = 1;
  int opset = 17;
};

Result<std::unique_ptr<Model>> LoadCase(const OpCase& c) {
  GraphBuilder b(c.opset);
  std::vector<ValueId> ins;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    if (!c.inputs[i]) {
      ins.push_back(kNoValue);
      continue;
    }
    ins.push_back(b.Input("in" + std::to_string(i), c.inputs[i]->type(), c.inputs[i]->shape()));
  }
  std::vector<std::string> outs;
  for (size_t i = 0; i < c.outputs; ++i) outs.push_back("out" + std::to_string(i));
  ValueId first = b.Op(c.op, ins, outs, c.attrs);
  for (size_t i = 0; i < c.outputs; ++i) b.Output(first + static_cast<ValueId>(i));
  OUTPOST_ASSIGN_OR_RETURN(std::string bytes, ExportModel(b.graph()));
  return LoadOnnxModelFromBytes(std::as_bytes(std::span<const char>(bytes.data(), bytes.size())));
}

Result<std::vector<Tensor>> RunCase(const OpCase& c) {
  OUTPOST_ASSIGN_OR_RETURN(auto model, LoadCase(c));
  std::vector<Tensor> in;
  for (const auto& t : c.inputs) {
    if (t) in.push_back(*t);
  }
  std::vector<Tensor> out;
  OUTPOST_RETURN_IF_ERROR(model->Run(in, out));
  return out;
}

Attribute GraphAttr(const std::string& name, Graph g) {
  Attribute a;
  a.name = name;
  a.type = AttrType::kGraph;
  a.graph = std::make_shared<const Graph>(std::move(g));
  return a;
}

Result<std::unique_ptr<Model>> LoadGraph(Graph& g) {
  OUTPOST_ASSIGN_OR_RETURN(std::string bytes, ExportModel(g));
  return LoadOnnxModelFromBytes(std::as_bytes(std::span<const char>(bytes.data(), bytes.size())));
}

std::vector<float> Floats(const Tensor& t) {
  return std::vector<float>(t.values<float>().begin(), t.values<float>().end());
}

void ExpectNear(const Tensor& t, const std::vector<float>& want, float tol = 1e-5f) {
  ASSERT_EQ(t.element_count(), static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(t.values<float>()[i], want[i], tol) << "element " << i;
  }
}

float Sig(float v) { return 1.0f / (1.0f + std::exp(-v)); }

// ---- recurrent layers ----

TEST(OnnxOps, RnnForwardReverseAndSequenceLengths) {
  // hidden 1, input 1: h_t = tanh(x_t + 0.5 h_{t-1})
  OpCase c{"RNN",
           {FloatTensor({3, 2, 1}, {0.5f, 1.0f, -0.5f, 2.0f, 0.25f, 3.0f}),
            FloatTensor({1, 1, 1}, {1.0f}), FloatTensor({1, 1, 1}, {0.5f}), std::nullopt,
            Ints64({2}, {3, 2})},
           {IntAttr("hidden_size", 1)},
           2};
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto out, RunCase(c));
  ASSERT_EQ(out[0].shape(), (Shape{3, 1, 2, 1}));
  const float h = std::tanh(0.5f);
  const float b0_1 = std::tanh(-0.5f + 0.5f * h);
  const float b0_2 = std::tanh(0.25f + 0.5f * b0_1);
  const float b1_0 = std::tanh(1.0f), b1_1 = std::tanh(2.0f + 0.5f * b1_0);
  // Batch entry 1 stops after 2 steps: its third output is zero, Y_h its second state.
  ExpectNear(out[0], {h, b1_0, b0_1, b1_1, b0_2, 0.0f});
  ExpectNear(out[1], {b0_2, b1_1});

  c.attrs.push_back(StringAttr("direction", "reverse"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(c));
  // Reverse: batch 0 runs t = 2, 1, 0; batch 1 runs t = 1, 0.
  const float r0_2 = std::tanh(0.25f), r0_1 = std::tanh(-0.5f + 0.5f * r0_2);
  const float r0_0 = std::tanh(0.5f + 0.5f * r0_1);
  const float r1_1 = std::tanh(2.0f), r1_0 = std::tanh(1.0f + 0.5f * r1_1);
  ExpectNear(out[0], {r0_0, r1_0, r0_1, r1_1, r0_2, 0.0f});
  ExpectNear(out[1], {r0_0, r1_0});
}

TEST(OnnxOps, LstmMatchesTheGateEquationsAndBatchFirstLayout) {
  // hidden 1, input 1, gates i, o, f, c with weights wi, wo, wf, wc and no recurrence.
  const float wi = 0.5f, wo = -0.25f, wf = 1.0f, wc = 2.0f;
  OpCase c{"LSTM",
           {FloatTensor({2, 1, 1}, {1.0f, -1.0f}), FloatTensor({1, 4, 1}, {wi, wo, wf, wc}),
            FloatTensor({1, 4, 1}, {0, 0, 0, 0})},
           {IntAttr("hidden_size", 1)},
           3};
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto out, RunCase(c));
  float cell = 0, hidden = 0;
  std::vector<float> ys;
  for (float x : {1.0f, -1.0f}) {
    const float i = Sig(wi * x), o = Sig(wo * x), f = Sig(wf * x), g = std::tanh(wc * x);
    cell = f * cell + i * g;
    hidden = o * std::tanh(cell);
    ys.push_back(hidden);
  }
  ExpectNear(out[0], ys);
  ExpectNear(out[1], {hidden});
  ExpectNear(out[2], {cell});

  // layout 1: X is [batch, seq, input]; Y [batch, seq, dirs, hidden].
  c.attrs.push_back(IntAttr("layout", 1));
  c.inputs[0] = FloatTensor({1, 2, 1}, {1.0f, -1.0f});
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(c));
  ASSERT_EQ(out[0].shape(), (Shape{1, 2, 1, 1}));
  ExpectNear(out[0], ys);
}

TEST(OnnxOps, LstmBidirectionalShapesAndUnknownActivationIsRefusedByName) {
  OpCase c{"LSTM",
           {FloatTensor({3, 2, 2}, std::vector<float>(12, 0.1f)),
            FloatTensor({2, 8, 2}, std::vector<float>(32, 0.2f)),
            FloatTensor({2, 8, 2}, std::vector<float>(32, -0.1f))},
           {IntAttr("hidden_size", 2), StringAttr("direction", "bidirectional")},
           3};
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto out, RunCase(c));
  EXPECT_EQ(out[0].shape(), (Shape{3, 2, 2, 2}));
  EXPECT_EQ(out[1].shape(), (Shape{2, 2, 2}));
  // Same weights both ways and a constant input: the last forward state equals the last
  // reverse state.
  EXPECT_NEAR(out[1].values<float>()[0], out[1].values<float>()[4], 1e-6f);

  c.attrs.push_back(StringsAttr("activations", {"Sigmoid", "Gelu", "Tanh"}));
  auto bad = LoadCase(c);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("activations"), std::string::npos);
  EXPECT_NE(bad.status().message().find("out0_node"), std::string::npos);
}

TEST(OnnxOps, GruLinearBeforeResetChangesTheCandidate) {
  // hidden 1, input 1; gates z, r, h. Rh = 1, Rbh = 0.5.
  const float x = 1.0f, h0 = 0.5f;
  std::vector<float> bias = {0, 0, 0, 0, 0, 0.5f};
  for (int lbr : {0, 1}) {
    OpCase c{"GRU",
             {FloatTensor({1, 1, 1}, {x}), FloatTensor({1, 3, 1}, {0.5f, -0.5f, 1.0f}),
              FloatTensor({1, 3, 1}, {0, 0, 1.0f}), FloatTensor({1, 6}, bias), std::nullopt,
              FloatTensor({1, 1, 1}, {h0})},
             {IntAttr("hidden_size", 1), IntAttr("linear_before_reset", lbr)},
             2};
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto out, RunCase(c));
    const float z = Sig(0.5f * x), r = Sig(-0.5f * x);
    const float cand = lbr ? std::tanh(x + r * (h0 + 0.5f)) : std::tanh(x + r * h0 + 0.5f);
    ExpectNear(out[1], {(1 - z) * cand + z * h0});
  }
}

TEST(OnnxOps, RecurrentLayersWithConstantWeightsMatchFedWeights) {
  // Constant W and R are packed once when the model loads; fed ones by each run.
  for (const char* op : {"LSTM", "GRU", "RNN"}) {
    const int64_t g = std::string(op) == "LSTM" ? 4 : (std::string(op) == "GRU" ? 3 : 1);
    const int64_t h = 3, in = 2;
    std::vector<float> w(static_cast<size_t>(2 * g * h * in)), r(static_cast<size_t>(2 * g * h * h));
    for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(static_cast<float>(i));
    for (size_t i = 0; i < r.size(); ++i) r[i] = 0.5f * std::cos(static_cast<float>(i));
    const Tensor x = FloatTensor({4, 2, in}, {0.1f, -0.2f, 0.3f, 0.4f, -0.5f, 0.6f, 0.7f, -0.8f,
                                              0.9f, 1.0f, -1.1f, 1.2f, 0.3f, 0.2f, 0.1f, 0.0f});
    std::vector<Attribute> attrs = {IntAttr("hidden_size", h),
                                    StringAttr("direction", "bidirectional")};
    OpCase fed{op, {x, FloatTensor({2, g * h, in}, w), FloatTensor({2, g * h, h}, r)}, attrs, 2};
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto want, RunCase(fed));

    GraphBuilder b(17);
    ValueId xi = b.Input("x", DataType::kFp32, {4, 2, in});
    ValueId y = b.Op(op, {xi, b.Floats("w", {2, g * h, in}, w), b.Floats("r", {2, g * h, h}, r)},
                     {"y", "y_h"}, attrs);
    b.Output(y);
    b.Output(y + 1);
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string bytes, ExportModel(b.graph()));
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        auto model,
        LoadOnnxModelFromBytes(std::as_bytes(std::span<const char>(bytes.data(), bytes.size()))));
    std::vector<Tensor> out;
    OUTPOST_ASSERT_OK(model->Run(std::vector<Tensor>{x}, out));
    ExpectNear(out[0], Floats(want[0]), 1e-6f);
    ExpectNear(out[1], Floats(want[1]), 1e-6f);
  }
}

TEST(OnnxOps, LstmRunAllocatesNothingOnceWarm) {
  if (!testing::AllocationCountingAvailable()) GTEST_SKIP();
  OpCase c{"LSTM",
           {FloatTensor({5, 3, 4}, std::vector<float>(60, 0.3f)),
            FloatTensor({1, 24, 4}, std::vector<float>(96, 0.1f)),
            FloatTensor({1, 24, 6}, std::vector<float>(144, -0.05f))},
           {IntAttr("hidden_size", 6)},
           3};
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, LoadCase(c));
  std::vector<Tensor> in = {*c.inputs[0], *c.inputs[1], *c.inputs[2]};
  std::vector<Tensor> out;
  OUTPOST_ASSERT_OK(model->Run(in, out));
  int64_t allocations = -1;
  Status st;
  {
    testing::CountAllocations count(&allocations);
    st = model->Run(in, out);
  }
  OUTPOST_ASSERT_OK(st);
  EXPECT_EQ(allocations, 0);
}

TEST(OnnxOps, VisionChainRunAllocatesNothingOnceWarm) {
  if (!testing::AllocationCountingAvailable()) GTEST_SKIP();
  // x -> ConvTranspose (stride 2) -> Resize (linear, x2) -> GroupNormalization -> Einsum
  // (NCHW -> NHWC): every step planned statically, so a warm run allocates nothing.
  GraphBuilder b(18);
  ValueId x = b.Input("x", DataType::kFp32, {1, 2, 4, 4});
  std::vector<float> w(2 * 2 * 3 * 3);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.1f * static_cast<float>(i % 7) - 0.3f;
  ValueId up = b.Op("ConvTranspose", {x, b.Floats("w", {2, 2, 3, 3}, w)}, {"up"},
                    {IntsAttr("strides", {2, 2}), IntsAttr("pads", {1, 1, 0, 0})});
  ValueId rs = b.Op("Resize", {up, kNoValue, b.Floats("scales", {4}, {1, 1, 2, 2})}, {"rs"},
                    {StringAttr("mode", "linear")});
  ValueId gn = b.Op("GroupNormalization",
                    {rs, b.Floats("gamma", {2}, {1, 2}), b.Floats("beta", {2}, {0, 1})}, {"gn"},
                    {IntAttr("num_groups", 2)});
  ValueId y = b.Op("Einsum", {gn}, {"y"}, {StringAttr("equation", "nchw->nhwc")});
  b.Output(y);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string bytes, ExportModel(b.graph()));
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      auto model,
      LoadOnnxModelFromBytes(std::as_bytes(std::span<const char>(bytes.data(), bytes.size()))));
  EXPECT_EQ(model->signature().outputs[0].shape, (Shape{1, 16, 16, 2}));
  std::vector<Tensor> in = {FloatTensor({1, 2, 4, 4}, std::vector<float>(32, 0.5f))};
  for (size_t i = 0; i < 32; ++i) in[0].values<float>()[i] = std::sin(static_cast<float>(i));
  std::vector<Tensor> out;
  OUTPOST_ASSERT_OK(model->Run(in, out));
  int64_t allocations = -1;
  Status st;
  {
    testing::CountAllocations count(&allocations);
    st = model->Run(in, out);
  }
  OUTPOST_ASSERT_OK(st);
  EXPECT_EQ(allocations, 0);
}

TEST(OnnxOps, QuantizedChainRunAllocatesNothingOnceWarm) {
  if (!testing::AllocationCountingAvailable()) GTEST_SKIP();
  // x -> DynamicQuantizeLinear -> MatMulInteger (constant UINT8 weights) -> Cast ->
  // Mul(scale) -> QuantizeLinear -> DequantizeLinear.
  GraphBuilder b(13);
  ValueId x = b.Input("x", DataType::kFp32, {4, 3});
  ValueId q = b.Op("DynamicQuantizeLinear", {x}, {"xq", "xs", "xz"});
  Tensor w(DataType::kUint8, Shape{3, 2});
  for (int i = 0; i < 6; ++i) w.values<uint8_t>()[static_cast<size_t>(i)] = static_cast<uint8_t>(120 + 3 * i);
  Tensor wz(DataType::kUint8, Shape{});
  wz.values<uint8_t>()[0] = 128;
  ValueId mm = b.Op("MatMulInteger", {q, b.Constant("w", w), q + 2, b.Constant("wz", wz)}, {"acc"});
  ValueId f = b.Op("Cast", {mm}, {"accf"}, {IntAttr("to", 1)});
  ValueId scaled = b.Op("Mul", {f, q + 1}, {"scaled"});
  Tensor yz(DataType::kUint8, Shape{});
  yz.values<uint8_t>()[0] = 128;
  ValueId yq = b.Op("QuantizeLinear", {scaled, b.Floats("ys", {}, {0.05f}), b.Constant("yz", yz)},
                    {"yq"});
  ValueId y = b.Op("DequantizeLinear", {yq, b.Floats("ys2", {}, {0.05f}), b.Constant("yz2", yz)},
                   {"y"});
  b.Output(y);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, LoadGraph(b.graph()));
  std::vector<Tensor> in = {FloatTensor({4, 3}, {0.1f, -0.2f, 0.3f, 0.4f, -0.5f, 0.6f, 0.7f,
                                                 -0.8f, 0.9f, 1.0f, -1.1f, 1.2f})};
  std::vector<Tensor> out;
  OUTPOST_ASSERT_OK(model->Run(in, out));
  ASSERT_EQ(out[0].shape(), (Shape{4, 2}));
  int64_t allocations = -1;
  Status st;
  {
    testing::CountAllocations count(&allocations);
    st = model->Run(in, out);
  }
  OUTPOST_ASSERT_OK(st);
  EXPECT_EQ(allocations, 0);
}

// ---- FLOAT16 and BFLOAT16 models ----

Tensor SixteenBit(DataType type, std::vector<int64_t> shape, const std::vector<float>& v) {
  Tensor t(type, std::move(shape));
  for (size_t i = 0; i < v.size(); ++i) {
    t.values<uint16_t>()[i] =
        type == DataType::kFp16 ? FloatToHalfBits(v[i]) : FloatToBFloat16Bits(v[i]);
  }
  return t;
}

float SixteenBitValue(DataType type, uint16_t bits) {
  return type == DataType::kFp16 ? HalfBitsToFloat(bits) : BFloat16BitsToFloat(bits);
}

// x [N, 2, 3, 3] -> Conv (2x2, constant weights and bias) -> MatMul (constant [2, 3]) -> Add
// (constant [3]), all in `type`; the constants are multiples of 1/8, exact in every type.
Graph ConvMatMulAddChain(DataType type, const std::string& tail_op = "Add") {
  GraphBuilder b(17);
  auto constant = [&](const std::string& name, std::vector<int64_t> shape, std::vector<float> v) {
    return type == DataType::kFp32 ? b.Floats(name, std::move(shape), std::move(v))
                                   : b.Constant(name, SixteenBit(type, std::move(shape), v));
  };
  std::vector<float> w(16);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.125f * static_cast<float>((i * 5) % 9) - 0.5f;
  ValueId x = b.Input("x", type, {-1, 2, 3, 3});
  ValueId conv = b.Op("Conv", {x, constant("w", {2, 2, 2, 2}, w), constant("cb", {2}, {0.5f, -0.25f})},
                      {"conv"}, {IntsAttr("kernel_shape", {2, 2})});
  ValueId mm = b.Op("MatMul", {conv, constant("m", {2, 3}, {1, -0.5f, 0.25f, 0.75f, 2, -1})},
                    {"mm"});
  ValueId y = b.Op(tail_op, {mm, constant("bias", {3}, {0.125f, -0.375f, 1})}, {"y"});
  ValueInfo& info = b.graph().values[static_cast<size_t>(y)].info;
  info.has_type = true;
  info.type = type;
  b.Output(y);
  return b.graph();
}

// The chain in `type` against the same chain in FLOAT: the 16-bit model computes in FLOAT
// between its Casts, so its output is the FLOAT model's output rounded once.
void ExpectChainMatchesFloat(DataType type) {
  Graph sixteen = ConvMatMulAddChain(type);
  Graph reference = ConvMatMulAddChain(DataType::kFp32);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, LoadGraph(sixteen));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto float_model, LoadGraph(reference));
  ASSERT_EQ(model->signature().inputs[0].type, type);
  ASSERT_EQ(model->signature().outputs[0].type, type);
  EXPECT_EQ(model->signature().outputs[0].shape, (Shape{-1, 2, 2, 3}));
  std::vector<float> xs(2 * 2 * 9);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = 0.25f * static_cast<float>(i % 11) - 1.0f;
  std::vector<Tensor> in = {SixteenBit(type, {2, 2, 3, 3}, xs)};
  std::vector<Tensor> float_in = {FloatTensor({2, 2, 3, 3}, xs)};
  std::vector<Tensor> out, want;
  OUTPOST_ASSERT_OK(model->Run(in, out));
  OUTPOST_ASSERT_OK(float_model->Run(float_in, want));
  ASSERT_EQ(out[0].type(), type);
  ASSERT_EQ(out[0].shape(), (Shape{2, 2, 2, 3}));
  float largest = 0;
  for (int64_t i = 0; i < out[0].element_count(); ++i) {
    const float expect = want[0].values<float>()[static_cast<size_t>(i)];
    const uint16_t bits = out[0].values<uint16_t>()[static_cast<size_t>(i)];
    EXPECT_EQ(bits, SixteenBit(type, {1}, {expect}).values<uint16_t>()[0])
        << "element " << i << ": " << SixteenBitValue(type, bits) << " vs " << expect;
    largest = std::max(largest, std::abs(expect));
  }
  EXPECT_GT(largest, 1.0f);  // the chain computes something
  if (!testing::AllocationCountingAvailable()) return;
  int64_t allocations = -1;
  Status st;
  {
    testing::CountAllocations count(&allocations);
    st = model->Run(in, out);
  }
  OUTPOST_ASSERT_OK(st);
  EXPECT_EQ(allocations, 0);
}

TEST(OnnxOps, Float16ConvMatMulAddRunsInFloatWithItsSignatureKept) {
  ExpectChainMatchesFloat(DataType::kFp16);
}

TEST(OnnxOps, BFloat16ConvMatMulAddRunsInFloatWithItsSignatureKept) {
  ExpectChainMatchesFloat(DataType::kBf16);
}

TEST(OnnxOps, Float16CastInsideAFloatModelKeepsItsRounding) {
  // x (FLOAT) -> Cast to FLOAT16 -> Conv (FLOAT16 weights) -> Cast to FLOAT: the input is
  // rounded to half precision before the convolution, as the model says.
  GraphBuilder b(17);
  ValueId x = b.Input("x", DataType::kFp32, {1, 1, 1, 2});
  ValueId h = b.Op("Cast", {x}, {"h"}, {IntAttr("to", 10)});
  ValueId conv = b.Op("Conv", {h, b.Constant("w", SixteenBit(DataType::kFp16, {1, 1, 1, 2}, {1, 1}))},
                      {"conv"}, {IntsAttr("kernel_shape", {1, 2})});
  ValueId y = b.Op("Cast", {conv}, {"y"}, {IntAttr("to", 1)});
  b.Output(y);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, LoadGraph(b.graph()));
  EXPECT_EQ(model->signature().inputs[0].type, DataType::kFp32);
  EXPECT_EQ(model->signature().outputs[0].type, DataType::kFp32);
  // 1 + 2^-12 rounds to 1 in half precision; in FLOAT the sum would be 2 + 2^-12.
  std::vector<Tensor> in = {FloatTensor({1, 1, 1, 2}, {1.0f + 0x1p-12f, 1.0f})};
  std::vector<Tensor> out;
  OUTPOST_ASSERT_OK(model->Run(in, out));
  ExpectNear(out[0], {2.0f}, 0.0f);
}

TEST(OnnxOps, Float16ModelWithAnUnsupportedOperatorIsRefusedAsBefore) {
  // The chain with its Add replaced by an operator the engine lacks: the FLOAT fallback fails
  // too, and the error is the one of the model as written, naming the node and the operator.
  Graph g = ConvMatMulAddChain(DataType::kFp16, "NoSuchOp");
  auto model = LoadGraph(g);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(model.status().ToString().find("\"y_node\""), std::string::npos)
      << model.status().ToString();
  EXPECT_NE(model.status().ToString().find("operator NoSuchOp is not supported"),
            std::string::npos)
      << model.status().ToString();
}

// ---- ConvTranspose ----

TEST(OnnxOps, ConvTransposeStridesPadsOutputPaddingAndGroups) {
  // 1-D, one channel, kernel [1, 2], stride 2: each input spreads over two outputs.
  OpCase c{"ConvTranspose",
           {FloatTensor({1, 1, 3}, {1, 2, 3}), FloatTensor({1, 1, 2}, {1, 10})},
           {IntsAttr("strides", {2})}};
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto out, RunCase(c));
  ExpectNear(out[0], {1, 10, 2, 20, 3, 30});

  c.attrs.push_back(IntsAttr("output_padding", {1}));
  c.attrs.push_back(IntsAttr("pads", {1, 0}));
  c.inputs.push_back(FloatTensor({1}, {0.5f}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(c));
  ExpectNear(out[0], {10.5f, 2.5f, 20.5f, 3.5f, 30.5f, 0.5f});

  // output_shape beyond the full output leaves the bias; SAME_UPPER gives in * stride.
  OpCase s{"ConvTranspose",
           {FloatTensor({1, 1, 2}, {1, 2}), FloatTensor({1, 1, 3}, {1, 1, 1})},
           {IntsAttr("strides", {2}), StringAttr("auto_pad", "SAME_UPPER")}};
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(s));
  // Full output: [1, 1, 3, 2, 2]; total padding 1 goes at the end.
  ExpectNear(out[0], {1, 1, 3, 2});

  // Two groups of one channel each, W [C=2, M/group=1, 1].
  OpCase g{"ConvTranspose",
           {FloatTensor({1, 2, 2}, {1, 2, 3, 4}), FloatTensor({2, 1, 1}, {2, -1})},
           {IntAttr("group", 2)}};
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(g));
  ASSERT_EQ(out[0].shape(), (Shape{1, 2, 2}));
  ExpectNear(out[0], {2, 4, -3, -4});
}

// ---- Resize, Upsample ----

TEST(OnnxOps, ResizeNearestLinearAndCubic) {
  const Tensor x = FloatTensor({1, 1, 1, 2}, {1, 3});
  OpCase c{"Resize",
           {x, std::nullopt, FloatTensor({4}, {1, 1, 1, 2})},
           {StringAttr("mode", "nearest")}};
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto out, RunCase(c));
  ASSERT_EQ(out[0].shape(), (Shape{1, 1, 1, 4}));
  ExpectNear(out[0], {1, 1, 3, 3});

  c.attrs = {StringAttr("mode", "linear"),
             StringAttr("coordinate_transformation_mode", "align_corners")};
  c.inputs[2] = std::nullopt;
  c.inputs.push_back(Ints64({4}, {1, 1, 1, 3}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(c));
  ExpectNear(out[0], {1, 2, 3});

  // half_pixel linear, scale 2: positions -0.25, 0.25, 0.75, 1.25 (clamped at the edges).
  c.attrs = {StringAttr("mode", "linear")};
  c.inputs[3] = Ints64({4}, {1, 1, 1, 4});
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(c));
  ExpectNear(out[0], {1, 1.5f, 2.5f, 3});

  // Cubic on a linear ramp with exclude_outside keeps a ramp between the samples.
  c.attrs = {StringAttr("mode", "cubic"), IntAttr("exclude_outside", 1),
             StringAttr("coordinate_transformation_mode", "align_corners")};
  c.inputs[0] = FloatTensor({1, 1, 1, 4}, {0, 1, 2, 3});
  c.inputs[3] = Ints64({4}, {1, 1, 1, 7});
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(c));
  EXPECT_NEAR(out[0].values<float>()[3], 1.5f, 1e-5f);
  EXPECT_NEAR(out[0].values<float>()[6], 3.0f, 1e-5f);
}

TEST(OnnxOps, ResizeCubicOnSamplesAndOnTheAxesItKeeps) {
  // 2x2 -> 3x3, align_corners: rows and columns at 0, 0.5 and 1. On a sample the kernel is
  // 1 there; halfway between two (edge-clamped) samples, Keys' weights at f = 0.5 give each
  // side 0.5. N and C (scale 1) keep their positions: each channel is resized on its own.
  OpCase c{
      "Resize",
      {FloatTensor({1, 2, 2, 2}, {1, 2, 3, 4, 11, 12, 13, 14}), std::nullopt,
       FloatTensor({4}, {1, 1, 1.5f, 1.5f})},
      {StringAttr("mode", "cubic"), StringAttr("coordinate_transformation_mode", "align_corners")}};
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto out, RunCase(c));
  ASSERT_EQ(out[0].shape(), (Shape{1, 2, 3, 3}));
  ExpectNear(out[0],
             {1, 1.5f, 2, 2, 2.5f, 3, 3, 3.5f, 4, 11, 11.5f, 12, 12, 12.5f, 13, 13, 13.5f, 14});
}

TEST(OnnxOps, ResizeAxesAndHalfPixelSymmetric) {
  // Opset 18: scales name only the last axis.
  OpCase c{"Resize",
           {FloatTensor({1, 1, 2, 2}, {1, 2, 3, 4}), std::nullopt, FloatTensor({1}, {2})},
           {StringAttr("mode", "nearest"), IntsAttr("axes", {-1})},
           1,
           18};
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto out, RunCase(c));
  ASSERT_EQ(out[0].shape(), (Shape{1, 1, 2, 4}));
  ExpectNear(out[0], {1, 1, 2, 2, 3, 3, 4, 4});
  c.attrs.push_back(IntsAttr("axes", {3}));
  c.attrs.erase(c.attrs.begin() + 1);
  c.inputs[2] = FloatTensor({2}, {1, 2});
  EXPECT_FALSE(RunCase(c).ok());  // two scales for one axis (refused when the run plans it)

  // keep_aspect_ratio_policy: one scale for the named axes, the smaller or the larger.
  for (const char* policy : {"not_larger", "not_smaller"}) {
    OpCase k{"Resize",
             {FloatTensor({1, 1, 2, 4}, std::vector<float>(8, 1.0f)), std::nullopt, std::nullopt,
              Ints64({2}, {4, 4})},
             {StringAttr("mode", "nearest"), IntsAttr("axes", {2, 3}),
              StringAttr("keep_aspect_ratio_policy", policy)},
             1,
             18};
    OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(k));
    EXPECT_EQ(out[0].shape(), std::string(policy) == "not_larger" ? (Shape{1, 1, 2, 4})
                                                                  : (Shape{1, 1, 4, 8}));
  }

  // Opset 19's half_pixel_symmetric centres the rounding: scale 1.7 on a ramp of 3 gives 5
  // outputs whose middle one lands exactly on the middle input.
  OpCase h{"Resize",
           {FloatTensor({3}, {0, 1, 2}), std::nullopt, FloatTensor({1}, {1.7f})},
           {StringAttr("mode", "linear"),
            StringAttr("coordinate_transformation_mode", "half_pixel_symmetric")},
           1,
           19};
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(h));
  ASSERT_EQ(out[0].shape(), (Shape{5}));
  EXPECT_NEAR(out[0].values<float>()[2], 1.0f, 1e-5f);
  EXPECT_NEAR(out[0].values<float>()[0], 0.0f, 1e-6f);
  EXPECT_NEAR(out[0].values<float>()[4], 2.0f, 1e-6f);
}

TEST(OnnxOps, ResizeRefusesAntialiasByNameAndUpsampleDoublesNearest) {
  OpCase c{"Resize",
           {FloatTensor({1, 1, 2, 2}, {1, 2, 3, 4}), std::nullopt,
            FloatTensor({4}, {1, 1, 2, 2})},
           {StringAttr("mode", "linear"), IntAttr("antialias", 1)},
           1,
           18};
  auto bad = LoadCase(c);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(bad.status().message().find("antialias"), std::string::npos);

  OpCase u{"Upsample",
           {FloatTensor({1, 1, 2, 2}, {1, 2, 3, 4}), FloatTensor({4}, {1, 1, 2, 2})},
           {StringAttr("mode", "nearest")},
           1,
           9};
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto out, RunCase(u));
  ASSERT_EQ(out[0].shape(), (Shape{1, 1, 4, 4}));
  ExpectNear(out[0], {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
}

// ---- NonMaxSuppression ----

TEST(OnnxOps, NonMaxSuppressionHasADataDependentLength) {
  // Boxes 0 and 1 overlap (IoU 0.9); box 2 is apart. Inputs are graph inputs, so the
  // output length is found during the run.
  OpCase c{"NonMaxSuppression",
           {FloatTensor({1, 3, 4}, {0, 0, 1, 1, 0, 0.1f, 1, 1.0f, 5, 5, 6, 6}),
            FloatTensor({1, 1, 3}, {0.9f, 0.95f, 0.5f}), Ints64({1}, {10}),
            FloatTensor({1}, {0.5f}), FloatTensor({1}, {0.0f})},
           {}};
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto out, RunCase(c));
  ASSERT_EQ(out[0].shape(), (Shape{2, 3}));
  EXPECT_EQ(out[0].values<int64_t>()[2], 1);  // highest score first
  EXPECT_EQ(out[0].values<int64_t>()[5], 2);

  // A score threshold above every score selects nothing.
  c.inputs[4] = FloatTensor({1}, {0.99f});
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(c));
  EXPECT_EQ(out[0].shape(), (Shape{0, 3}));
}

TEST(OnnxOps, NonMaxSuppressionFeedsADownstreamNodeAndRepeatedRunsReplan) {
  // selected_indices -> Gather(column 2) -> the box indices, all planned during the run.
  GraphBuilder b(17);
  ValueId boxes = b.Input("boxes", DataType::kFp32, {1, 3, 4});
  ValueId scores = b.Input("scores", DataType::kFp32, {1, 1, 3});
  ValueId sel = b.Op("NonMaxSuppression",
                     {boxes, scores, b.Ints("max", {1}, {5}), b.Floats("iou", {1}, {0.5f})},
                     {"selected"});
  ValueId col = b.Op("Gather", {sel, b.Ints("two", {}, {2})}, {"box_index"}, {IntAttr("axis", 1)});
  b.Output(col);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string bytes, ExportModel(b.graph()));
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      auto model,
      LoadOnnxModelFromBytes(std::as_bytes(std::span<const char>(bytes.data(), bytes.size()))));
  std::vector<Tensor> in = {FloatTensor({1, 3, 4}, {0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3}),
                            FloatTensor({1, 1, 3}, {0.1f, 0.9f, 0.5f})};
  std::vector<Tensor> out;
  OUTPOST_ASSERT_OK(model->Run(in, out));
  ASSERT_EQ(out[0].shape(), (Shape{2}));
  EXPECT_EQ(out[0].values<int64_t>()[0], 1);
  EXPECT_EQ(out[0].values<int64_t>()[1], 2);
  // Boxes apart: all three kept, in score order.
  in[0] = FloatTensor({1, 3, 4}, {0, 0, 1, 1, 5, 5, 6, 6, 2, 2, 3, 3});
  OUTPOST_ASSERT_OK(model->Run(in, out));
  ASSERT_EQ(out[0].shape(), (Shape{3}));
  EXPECT_EQ(out[0].values<int64_t>()[2], 0);
}

// ---- Einsum ----

TEST(OnnxOps, EinsumMatmulTransposeTraceAndImplicitOutput) {
  const Tensor a = FloatTensor({2, 2}, {1, 2, 3, 4});
  const Tensor b = FloatTensor({2, 2}, {5, 6, 7, 8});
  OpCase c{"Einsum", {a, b}, {StringAttr("equation", "ij,jk->ik")}};
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto out, RunCase(c));
  ExpectNear(out[0], {19, 22, 43, 50});
  c.attrs = {StringAttr("equation", "ij,jk")};  // implicit: ik
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(c));
  ExpectNear(out[0], {19, 22, 43, 50});
  OpCase t{"Einsum", {a}, {StringAttr("equation", "ij->ji")}};
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(t));
  ExpectNear(out[0], {1, 3, 2, 4});
  t.attrs = {StringAttr("equation", "ii")};
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(t));
  EXPECT_EQ(out[0].shape(), Shape{});
  ExpectNear(out[0], {5});
  OpCase e{"Einsum", {FloatTensor({2, 1, 2}, {1, 2, 3, 4})}, {StringAttr("equation", "...j->...")}};
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(e));
  EXPECT_EQ(out[0].shape(), (Shape{2, 1}));
  ExpectNear(out[0], {3, 7});

  // Every label combination is visited: an outer product of two long vectors summed to a
  // scalar is refused when the model loads instead of running for hours.
  OpCase big{"Einsum",
             {FloatTensor({1 << 18}, std::vector<float>(1 << 18, 1.0f)),
              FloatTensor({1 << 17}, std::vector<float>(1 << 17, 1.0f))},
             {StringAttr("equation", "i,j->")}};
  auto refused = LoadCase(big);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
}

// ---- GridSample, RoiAlign ----

TEST(OnnxOps, GridSampleIdentityGridAndZeroPadding) {
  const Tensor x = FloatTensor({1, 1, 2, 2}, {1, 2, 3, 4});
  // align_corners: -1 and 1 are the corner pixels' centres.
  const Tensor grid = FloatTensor({1, 1, 3, 2}, {-1, -1, 1, 1, 3, 3});
  OpCase c{"GridSample", {x, grid}, {IntAttr("align_corners", 1)}};
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto out, RunCase(c));
  ASSERT_EQ(out[0].shape(), (Shape{1, 1, 1, 3}));
  ExpectNear(out[0], {1, 4, 0});
  c.attrs.push_back(StringAttr("padding_mode", "border"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(c));
  ExpectNear(out[0], {1, 4, 4});
}

TEST(OnnxOps, RoiAlignAveragesAConstantImage) {
  OpCase c{"RoiAlign",
           {FloatTensor({1, 1, 4, 4}, std::vector<float>(16, 2.5f)),
            FloatTensor({1, 4}, {0, 0, 3, 3}), Ints64({1}, {0})},
           {IntAttr("output_height", 2), IntAttr("output_width", 2), IntAttr("sampling_ratio", 2)},
           1,
           16};
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto out, RunCase(c));
  ASSERT_EQ(out[0].shape(), (Shape{1, 1, 2, 2}));
  ExpectNear(out[0], {2.5f, 2.5f, 2.5f, 2.5f});
  c.inputs[2] = Ints64({1}, {3});
  EXPECT_FALSE(RunCase(c).ok());  // batch index out of range
}

// ---- signal ----

TEST(OnnxOps, WindowsDftAndStft) {
  Tensor size(DataType::kInt32, Shape{});
  size.values<int32_t>()[0] = 4;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto out, RunCase({"HannWindow", {size}, {}}));
  ExpectNear(out[0], {0, 0.5f, 1, 0.5f});
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase({"HammingWindow", {size}, {IntAttr("periodic", 0)}}));
  EXPECT_NEAR(out[0].values<float>()[0], 25.0f / 46 - 21.0f / 46, 1e-6f);
  // Blackman, periodic, N = 4: 0.42 - 0.5 cos(pi n / 2) + 0.08 cos(pi n).
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase({"BlackmanWindow", {size}, {IntAttr("output_datatype", 11)}}));
  ASSERT_EQ(out[0].type(), DataType::kFp64);
  EXPECT_NEAR(out[0].values<double>()[1], 0.42 - 0.08, 1e-9);
  EXPECT_NEAR(out[0].values<double>()[2], 0.42 + 0.5 + 0.08, 1e-9);

  // An impulse transforms to all ones; onesided keeps n / 2 + 1 bins.
  OpCase d{"DFT", {FloatTensor({1, 4, 1}, {1, 0, 0, 0})}, {}};
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(d));
  ASSERT_EQ(out[0].shape(), (Shape{1, 4, 2}));
  ExpectNear(out[0], {1, 0, 1, 0, 1, 0, 1, 0});
  d.attrs = {IntAttr("onesided", 1)};
  d.inputs[0] = FloatTensor({1, 4, 1}, {1, 1, 1, 1});
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(d));
  ExpectNear(out[0], {4, 0, 0, 0, 0, 0});
  // Opset 20: the axis is an input (default -2, the last signal axis).
  OpCase d20{"DFT", {FloatTensor({1, 2, 2, 1}, {1, 2, 3, 4})}, {}, 1, 20};
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(d20));
  ExpectNear(out[0], {3, 0, -1, 0, 7, 0, -1, 0});
  d20.inputs = {FloatTensor({1, 2, 2, 1}, {1, 2, 3, 4}), std::nullopt, Ints64({}, {1})};
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(d20));
  ExpectNear(out[0], {4, 0, 6, 0, -2, 0, -2, 0});

  OpCase s{"STFT",
           {FloatTensor({1, 6, 1}, {1, 1, 1, 1, 1, 1}), Ints64({}, {2}), std::nullopt,
            Ints64({}, {4})},
           {}};
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(s));
  ASSERT_EQ(out[0].shape(), (Shape{1, 2, 3, 2}));
  EXPECT_NEAR(out[0].values<float>()[0], 4.0f, 1e-6f);
}

TEST(OnnxOps, MelWeightMatrixShape) {
  Tensor bins(DataType::kInt32, Shape{}), dft(DataType::kInt32, Shape{}), rate(DataType::kInt32, Shape{});
  bins.values<int32_t>()[0] = 4;
  dft.values<int32_t>()[0] = 16;
  rate.values<int32_t>()[0] = 8000;
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      auto out, RunCase({"MelWeightMatrix",
                         {bins, dft, rate, FloatTensor({}, {0}), FloatTensor({}, {4000})},
                         {}}));
  ASSERT_EQ(out[0].shape(), (Shape{9, 4}));
  float total = 0;
  for (float v : Floats(out[0])) total += v;
  EXPECT_GT(total, 0);
}

// ---- normalisation and small operators ----

TEST(OnnxOps, LrnMvnGroupNormAndMish) {
  OpCase l{"LRN", {FloatTensor({1, 1, 1, 2}, {1, 2})},
           {IntAttr("size", 1), FloatAttr("alpha", 1), FloatAttr("beta", 1), FloatAttr("bias", 1)}};
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto out, RunCase(l));
  ExpectNear(out[0], {1.0f / 2, 2.0f / 5});

  OUTPOST_ASSERT_OK_AND_ASSIGN(
      out, RunCase({"MeanVarianceNormalization", {FloatTensor({1, 2, 1, 2}, {1, 3, 5, 5})}, {}}));
  ExpectNear(out[0], {-1, 1, 0, 0}, 1e-4f);

  OpCase g{"GroupNormalization",
           {FloatTensor({1, 2, 2}, {2, 2, 10, 10}), FloatTensor({1}, {2}), FloatTensor({1}, {1})},
           {IntAttr("num_groups", 1), FloatAttr("epsilon", 0)},
           1,
           18};
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(g));
  // mean 6, variance 16: (x - 6) / 4 * 2 + 1
  ExpectNear(out[0], {-1, -1, 3, 3});

  OpCase m{"Mish", {FloatTensor({2}, {0, 1})}, {}, 1, 18};
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(m));
  ExpectNear(out[0], {0, std::tanh(std::log1p(std::exp(1.0f)))});

  OpCase gelu{"Gelu", {FloatTensor({2}, {0, 1})}, {}, 1, 20};
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(gelu));
  ExpectNear(out[0], {0, 0.8413447f});
  gelu.attrs = {StringAttr("approximate", "tanh")};
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(gelu));
  ExpectNear(out[0], {0, 0.8411920f});
}

TEST(OnnxOps, DetMaxUnpoolUniqueAndTfIdf) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      auto out, RunCase({"Det", {FloatTensor({2, 2, 2}, {1, 2, 3, 4, 0, 1, 1, 0})}, {}}));
  ExpectNear(out[0], {-2, -1});

  OpCase u{"MaxUnpool",
           {FloatTensor({1, 1, 1, 2}, {5, 7}), Ints64({1, 1, 1, 2}, {1, 2})},
           {IntsAttr("kernel_shape", {1, 2}), IntsAttr("strides", {1, 2})}};
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(u));
  ExpectNear(out[0], {0, 5, 7, 0});

  OpCase q{"Unique", {FloatTensor({4}, {2, 1, 1, 3})}, {}, 4};
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(q));
  ExpectNear(out[0], {1, 2, 3});
  EXPECT_EQ(std::vector<int64_t>(out[1].values<int64_t>().begin(), out[1].values<int64_t>().end()),
            (std::vector<int64_t>{1, 0, 3}));
  EXPECT_EQ(std::vector<int64_t>(out[2].values<int64_t>().begin(), out[2].values<int64_t>().end()),
            (std::vector<int64_t>{1, 0, 0, 2}));
  EXPECT_EQ(std::vector<int64_t>(out[3].values<int64_t>().begin(), out[3].values<int64_t>().end()),
            (std::vector<int64_t>{2, 1, 1}));
  q.attrs = {IntAttr("sorted", 0)};
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(q));
  ExpectNear(out[0], {2, 1, 3});

  OpCase t{"TfIdfVectorizer",
           {Ints64({5}, {1, 2, 1, 2, 3})},
           {StringAttr("mode", "TF"), IntAttr("min_gram_length", 1), IntAttr("max_gram_length", 2),
            IntAttr("max_skip_count", 0), IntsAttr("ngram_counts", {0, 2}),
            IntsAttr("ngram_indexes", {0, 1, 2}), IntsAttr("pool_int64s", {1, 3, 1, 2})},
           1,
           9};
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(t));
  ExpectNear(out[0], {2, 1, 2});
  t.attrs.push_back(StringsAttr("pool_strings", {"a"}));
  auto bad = LoadCase(t);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("pool_strings"), std::string::npos);
}

TEST(OnnxOps, StringNormalizerRemovesStopwordsAndChangesCase) {
  Tensor x(DataType::kBytes, Shape{1, 3});
  x.strings()[0] = "Monday";
  x.strings()[1] = "tuesday";
  x.strings()[2] = "monday";
  OpCase c{"StringNormalizer",
           {x},
           {StringAttr("case_change_action", "UPPER"), StringsAttr("stopwords", {"MONDAY"})},
           1,
           10};
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto out, RunCase(c));
  ASSERT_EQ(out[0].shape(), (Shape{1, 1}));
  EXPECT_EQ(out[0].strings()[0], "TUESDAY");
  // Case sensitive: "MONDAY" matches nothing; everything is kept and lower-cased.
  c.attrs = {StringAttr("case_change_action", "LOWER"), IntAttr("is_case_sensitive", 1),
             StringsAttr("stopwords", {"MONDAY"})};
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(c));
  ASSERT_EQ(out[0].shape(), (Shape{1, 3}));
  EXPECT_EQ(out[0].strings()[0], "monday");
  // Everything removed: one empty string.
  c.attrs = {StringsAttr("stopwords", {"monday", "tuesday"})};
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(c));
  ASSERT_EQ(out[0].shape(), (Shape{1, 1}));
  EXPECT_EQ(out[0].strings()[0], "");
}

TEST(OnnxOps, UnsupportedAttributeValuesNameTheNodeAndTheAttribute) {
  const std::vector<std::pair<OpCase, std::string>> cases = {
      {{"ConvTranspose",
        {FloatTensor({1, 1, 2}, {1, 2}), FloatTensor({1, 1, 1}, {1})},
        {StringAttr("auto_pad", "SAME_MIDDLE")}},
       "auto_pad"},
      {{"GridSample",
        {FloatTensor({1, 1, 2, 2}, {1, 2, 3, 4}), FloatTensor({1, 1, 1, 2}, {0, 0})},
        {StringAttr("mode", "lanczos")},
        1,
        16},
       "mode"},
      {{"Resize",
        {FloatTensor({1, 2}, {1, 2}), std::nullopt, FloatTensor({2}, {1, 2})},
        {StringAttr("coordinate_transformation_mode", "quarter_pixel")}},
       "coordinate_transformation_mode"},
      {{"GRU",
        {FloatTensor({1, 1, 1}, {1}), FloatTensor({1, 3, 1}, {1, 1, 1}),
         FloatTensor({1, 3, 1}, {1, 1, 1})},
        {StringAttr("direction", "sideways")}},
       "direction"},
  };
  for (const auto& [c, attribute] : cases) {
    auto refused = LoadCase(c);
    ASSERT_FALSE(refused.ok()) << c.op;
    EXPECT_NE(refused.status().message().find("out0_node"), std::string::npos)
        << refused.status().ToString();
    EXPECT_NE(refused.status().message().find(attribute), std::string::npos)
        << refused.status().ToString();
  }
}

// ---- control flow ----

// A branch computing `x * factor`, reading x from the enclosing graph.
Graph ScaleBranch(const std::string& prefix, float factor) {
  GraphBuilder t(17);
  ValueId x = t.Input("x", DataType::kFp32, {2});
  t.graph().captured = 1;
  t.Output(t.Op("Mul", {x, t.Floats(prefix + "_factor", {1}, {factor})}, {prefix + "_out"}));
  return t.graph();
}

TEST(OnnxOps, IfRunsTheBranchTheConditionPicksAndFeedsLaterNodes) {
  GraphBuilder b(17);
  ValueId x = b.Input("x", DataType::kFp32, {2});
  ValueId cond = b.Input("cond", DataType::kBool, {});
  ValueId y = b.Op("If", {cond, x, x}, {"y"},
                   {GraphAttr("then_branch", ScaleBranch("then", 2)),
                    GraphAttr("else_branch", ScaleBranch("else", 3))});
  b.Output(b.Op("Add", {y, b.Floats("one", {1}, {1})}, {"z"}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, LoadGraph(b.graph()));
  std::vector<Tensor> in = {FloatTensor({2}, {1, 2}), Tensor(DataType::kBool, Shape{})};
  in[1].values<bool>()[0] = true;
  std::vector<Tensor> out;
  OUTPOST_ASSERT_OK(model->Run(in, out));
  ExpectNear(out[0], {3, 5});
  in[1].values<bool>()[0] = false;
  OUTPOST_ASSERT_OK(model->Run(in, out));
  ExpectNear(out[0], {4, 7});
}

TEST(OnnxOps, LoopCarriesValuesAndStacksScanOutputs) {
  // v = v + x, three times; the scan output collects each v.
  GraphBuilder body(17);
  body.Input("i", DataType::kInt64, {});
  ValueId cond_in = body.Input("cond_in", DataType::kBool, {});
  ValueId v = body.Input("v", DataType::kFp32, {2});
  ValueId x = body.Input("x", DataType::kFp32, {2});
  body.graph().captured = 1;
  body.Output(body.Op("Identity", {cond_in}, {"cond_out"}));
  ValueId next = body.Op("Add", {v, x}, {"v_out"});
  body.Output(next);
  body.Output(body.Op("Identity", {next}, {"scan_out"}));

  GraphBuilder b(17);
  ValueId xi = b.Input("x", DataType::kFp32, {2});
  ValueId trips = b.Input("trips", DataType::kInt64, {});
  ValueId y = b.Op("Loop", {trips, kNoValue, b.Floats("v0", {2}, {0, 0}), xi}, {"v_final", "scan"},
                   {GraphAttr("body", body.graph())});
  b.Output(y);
  b.Output(y + 1);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, LoadGraph(b.graph()));
  std::vector<Tensor> in = {FloatTensor({2}, {1, 10}), Ints64({}, {3})};
  std::vector<Tensor> out;
  OUTPOST_ASSERT_OK(model->Run(in, out));
  ExpectNear(out[0], {3, 30});
  ASSERT_EQ(out[1].shape(), (Shape{3, 2}));
  ExpectNear(out[1], {1, 10, 2, 20, 3, 30});
  // Zero trips: the carried value comes back unchanged.
  in[1] = Ints64({}, {0});
  OUTPOST_ASSERT_OK(model->Run(in, out));
  ExpectNear(out[0], {0, 0});
}

TEST(OnnxOps, ScanSumsRowsForwardAndBackward) {
  GraphBuilder body(17);
  ValueId s = body.Input("s", DataType::kFp32, {2});
  ValueId row = body.Input("row", DataType::kFp32, {2});
  ValueId next = body.Op("Add", {s, row}, {"s_out"});
  body.Output(next);
  body.Output(body.Op("Identity", {next}, {"partial"}));

  for (int64_t dir : {0, 1}) {
    GraphBuilder b(17);
    ValueId x = b.Input("x", DataType::kFp32, {3, 2});
    ValueId y = b.Op("Scan", {b.Floats("s0", {2}, {0, 0}), x}, {"total", "partials"},
                     {GraphAttr("body", body.graph()), IntAttr("num_scan_inputs", 1),
                      IntsAttr("scan_input_directions", {dir})});
    b.Output(y);
    b.Output(y + 1);
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, LoadGraph(b.graph()));
    std::vector<Tensor> in = {FloatTensor({3, 2}, {1, 2, 3, 4, 5, 6})};
    std::vector<Tensor> out;
    OUTPOST_ASSERT_OK(model->Run(in, out));
    ExpectNear(out[0], {9, 12});
    if (dir == 0) {
      ExpectNear(out[1], {1, 2, 4, 6, 9, 12});
    } else {
      ExpectNear(out[1], {5, 6, 8, 10, 9, 12});
    }
  }
}

TEST(OnnxOps, SubgraphsLiveUnderTheModelsLimits) {
  // The body tiles x a thousand times: 4000 bytes, over a 1 KiB value limit.
  GraphBuilder body(17);
  body.Input("i", DataType::kInt64, {});
  ValueId cond_in = body.Input("cond_in", DataType::kBool, {});
  ValueId x = body.Input("x", DataType::kFp32, {1});
  body.graph().captured = 1;
  body.Output(body.Op("Identity", {cond_in}, {"cond_out"}));
  body.Output(body.Op("Tile", {x, body.Ints("reps", {1}, {1000})}, {"big"}));

  GraphBuilder b(17);
  ValueId xi = b.Input("x", DataType::kFp32, {1});
  ValueId y = b.Op("Loop", {b.Ints("trips", {}, {1}), kNoValue, xi}, {"scan"},
                   {GraphAttr("body", body.graph())});
  b.Output(y);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string bytes, ExportModel(b.graph()));
  const auto span = std::as_bytes(std::span<const char>(bytes.data(), bytes.size()));
  std::vector<Tensor> in = {FloatTensor({1}, {2})};
  std::vector<Tensor> out;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto roomy, LoadOnnxModelFromBytes(span));
  OUTPOST_ASSERT_OK(roomy->Run(in, out));
  EXPECT_EQ(out[0].shape(), (Shape{1, 1000}));
  OnnxOptions tight;
  tight.compile.max_value_bytes = 1024;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, LoadOnnxModelFromBytes(span, tight));
  const Status st = model->Run(in, out);
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted) << st.ToString();
}

TEST(OnnxOps, IfWithoutABranchIsRefusedNamingTheAttribute) {
  GraphBuilder b(17);
  ValueId x = b.Input("x", DataType::kFp32, {2});
  ValueId cond = b.Input("cond", DataType::kBool, {});
  b.Output(b.Op("If", {cond, x}, {"y"}, {GraphAttr("then_branch", ScaleBranch("then", 2))}));
  auto refused = LoadGraph(b.graph());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("else_branch"), std::string::npos);
  EXPECT_NE(refused.status().message().find("y_node"), std::string::npos);

  // An operator the engine lacks inside a branch: the model fails to load naming it.
  GraphBuilder bad_branch(17);
  ValueId bx = bad_branch.Input("x", DataType::kFp32, {2});
  bad_branch.graph().captured = 1;
  bad_branch.Output(bad_branch.Op("FancyOp", {bx}, {"fancy_out"}));
  GraphBuilder c(17);
  ValueId cx = c.Input("x", DataType::kFp32, {2});
  ValueId ccond = c.Input("cond", DataType::kBool, {});
  c.Output(c.Op("If", {ccond, cx, cx}, {"y"},
                {GraphAttr("then_branch", bad_branch.graph()),
                 GraphAttr("else_branch", ScaleBranch("else", 3))}));
  auto unsupported = LoadGraph(c.graph());
  ASSERT_FALSE(unsupported.ok());
  EXPECT_EQ(unsupported.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(unsupported.status().message().find("FancyOp"), std::string::npos);
  EXPECT_NE(unsupported.status().message().find("then_branch"), std::string::npos);
}

TEST(OnnxOps, TrainingMomentumStepFollowsTheDefinition) {
  GraphBuilder b(17);
  b.graph().opsets["ai.onnx.preview.training"] = 1;
  ValueId r = b.Input("r", DataType::kFp32, {});
  ValueId t = b.Input("t", DataType::kInt64, {});
  ValueId x = b.Input("x", DataType::kFp32, {2});
  ValueId g = b.Input("g", DataType::kFp32, {2});
  ValueId v = b.Input("v", DataType::kFp32, {2});
  ValueId y = b.Op("Momentum", {r, t, x, g, v}, {"x_new", "v_new"},
                   {FloatAttr("alpha", 0.5f), FloatAttr("beta", 2.0f),
                    FloatAttr("norm_coefficient", 0.0f), StringAttr("mode", "standard")},
                   "ai.onnx.preview.training");
  b.Output(y);
  b.Output(y + 1);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, LoadGraph(b.graph()));
  std::vector<Tensor> in = {FloatTensor({}, {0.1f}), Ints64({}, {1}), FloatTensor({2}, {1, 2}),
                            FloatTensor({2}, {1, -1}), FloatTensor({2}, {4, 4})};
  std::vector<Tensor> out;
  OUTPOST_ASSERT_OK(model->Run(in, out));
  // v' = 0.5 v + 2 g; x' = x - 0.1 v'
  ExpectNear(out[1], {4, 0});
  ExpectNear(out[0], {0.6f, 2});
  // At t = 0 the gradient enters unscaled.
  in[1] = Ints64({}, {0});
  OUTPOST_ASSERT_OK(model->Run(in, out));
  ExpectNear(out[1], {3, 1});
}

// ---- quantized ----

TEST(OnnxOps, QuantizeDequantizeRoundTripAndPerAxis) {
  OpCase q{"QuantizeLinear",
           {FloatTensor({4}, {0, 1.5f, 2.5f, 1000}), FloatTensor({}, {1}),
            Bytes(DataType::kUint8, {}, {10})},
           {},
           1,
           13};
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto out, RunCase(q));
  // Half to even, then saturation.
  EXPECT_EQ(out[0].values<uint8_t>()[0], 10);
  EXPECT_EQ(out[0].values<uint8_t>()[1], 12);
  EXPECT_EQ(out[0].values<uint8_t>()[2], 12);
  EXPECT_EQ(out[0].values<uint8_t>()[3], 255);

  OpCase d{"DequantizeLinear",
           {Bytes(DataType::kInt8, {2, 2}, {-1, 2, 3, 4}), FloatTensor({2}, {0.5f, 2}),
            Bytes(DataType::kInt8, {2}, {1, 0})},
           {IntAttr("axis", 0)},
           1,
           13};
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(d));
  ExpectNear(out[0], {-1, 0.5f, 6, 8});

  OUTPOST_ASSERT_OK_AND_ASSIGN(
      out, RunCase({"DynamicQuantizeLinear", {FloatTensor({3}, {0, 2.55f, 1})}, {}, 3, 11}));
  EXPECT_NEAR(out[1].values<float>()[0], 0.01f, 1e-6f);
  EXPECT_EQ(out[2].values<uint8_t>()[0], 0);
  EXPECT_EQ(out[0].values<uint8_t>()[1], 255);
}

TEST(OnnxOps, IntegerAndQLinearMatMulAndConv) {
  OpCase m{"MatMulInteger",
           {Bytes(DataType::kUint8, {1, 2}, {3, 4}), Bytes(DataType::kUint8, {2, 1}, {5, 6}),
            Bytes(DataType::kUint8, {}, {1})},
           {},
           1,
           10};
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto out, RunCase(m));
  EXPECT_EQ(out[0].values<int32_t>()[0], 2 * 5 + 3 * 6);

  OpCase q{"QLinearMatMul",
           {Bytes(DataType::kUint8, {1, 2}, {3, 4}), FloatTensor({}, {0.5f}),
            Bytes(DataType::kUint8, {}, {1}), Bytes(DataType::kUint8, {2, 1}, {5, 6}),
            FloatTensor({}, {1}), Bytes(DataType::kUint8, {}, {0}), FloatTensor({}, {2}),
            Bytes(DataType::kUint8, {}, {100})},
           {},
           1,
           10};
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(q));
  // 28 * 0.5 / 2 = 7, + 100
  EXPECT_EQ(out[0].values<uint8_t>()[0], 107);

  OpCase c{"ConvInteger",
           {Bytes(DataType::kUint8, {1, 1, 2, 2}, {1, 2, 3, 4}),
            Bytes(DataType::kUint8, {1, 1, 1, 1}, {2}), Bytes(DataType::kUint8, {}, {1})},
           {IntsAttr("pads", {0, 0, 0, 1})},
           1,
           10};
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(c));
  ASSERT_EQ(out[0].shape(), (Shape{1, 1, 2, 3}));
  // (x - 1) * 2, padding contributes nothing.
  EXPECT_EQ(out[0].values<int32_t>()[1], 2);
  EXPECT_EQ(out[0].values<int32_t>()[2], 0);
  EXPECT_EQ(out[0].values<int32_t>()[5], 0);
  EXPECT_EQ(out[0].values<int32_t>()[4], 6);

  // QLinearConv with an INT32 bias and per-output-channel weight scales: y = round(acc * sx *
  // sw / sy) + zy, saturated.
  OpCase ql{"QLinearConv",
            {Bytes(DataType::kUint8, {1, 1, 1, 2}, {10, 20}), FloatTensor({}, {0.5f}),
             Bytes(DataType::kUint8, {}, {0}), Bytes(DataType::kInt8, {2, 1, 1, 1}, {2, -3}),
             FloatTensor({2}, {1, 1}), Bytes(DataType::kInt8, {2}, {0, 0}), FloatTensor({}, {1}),
             Bytes(DataType::kUint8, {}, {100}), std::nullopt},
            {},
            1,
            10};
  ql.inputs.pop_back();
  OUTPOST_ASSERT_OK_AND_ASSIGN(out, RunCase(ql));
  ASSERT_EQ(out[0].shape(), (Shape{1, 2, 1, 2}));
  EXPECT_EQ(out[0].values<uint8_t>()[0], 110);  // 10 * 2 * 0.5 + 100
  EXPECT_EQ(out[0].values<uint8_t>()[1], 120);
  EXPECT_EQ(out[0].values<uint8_t>()[2], 85);   // 10 * -3 * 0.5 + 100
  EXPECT_EQ(out[0].values<uint8_t>()[3], 70);
}

// ---- the fast paths of Relu, LeakyRelu, Abs and Pow ----

TEST(OnnxOps, PiecewiseActivationsKeepNaNAndSignsAcrossVectorAndTail) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // Eleven values: two groups of four lanes and a tail of three.
  const std::vector<float> x = {-1, 2, nan, -0.0f, inf, -inf, 0.5f, -3, 7, nan, -2};
  struct Op {
    const char* name;
    float (*f)(float);
  };
  for (const Op& op : {Op{"Relu", [](float v) { return v < 0 ? 0.0f : v; }},
                       Op{"LeakyRelu", [](float v) { return v >= 0 ? v : 0.1f * v; }},
                       Op{"Abs", [](float v) { return v < 0 ? -v : v; }}}) {
    OpCase c{op.name, {FloatTensor({11}, x)}};
    if (std::string(op.name) == "LeakyRelu") c.attrs = {FloatAttr("alpha", 0.1f)};
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto out, RunCase(c));
    const auto y = out[0].values<float>();
    for (size_t i = 0; i < x.size(); ++i) {
      const float want = op.f(x[i]);
      if (std::isnan(want)) {
        EXPECT_TRUE(std::isnan(y[i])) << op.name << " " << i;
      } else {
        EXPECT_EQ(y[i], want) << op.name << " " << i;
        EXPECT_EQ(std::signbit(y[i]), std::signbit(want)) << op.name << " " << i;
      }
    }
  }
}

TEST(OnnxOps, PowBySquaringEqualsPowf) {
  const std::vector<float> x = {
      -3, 1.5f, 0, -0.0f, 1e20f, 1e-30f, std::numeric_limits<float>::infinity(), 0.1f};
  for (const Tensor& exponent :
       {FloatTensor({}, {2}), FloatTensor({1}, {2}), FloatTensor({}, {3})}) {
    OpCase c{"Pow", {FloatTensor({8}, x), exponent}};
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto out, RunCase(c));
    const float e = exponent.values<float>()[0];
    for (size_t i = 0; i < x.size(); ++i)
      EXPECT_EQ(out[0].values<float>()[i], std::pow(x[i], e)) << i;
  }
}

}  // namespace
}  // namespace outpost::engine::onnx
