// Tests of the ONNX engine's pipeline: import of hostile files, compile-time errors that name
// the node, signature inference with a symbolic batch, planning, thread safety, and runs that
// allocate nothing once planned.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <new>
#include <thread>

#include "base/testing/test_util.h"
#include "engine/onnx/onnx_import.h"
#include "engine/onnx/onnx_model.h"
#include "engine/onnx/plan.h"
#include "engine/onnx/session.h"
#include "engine/onnx/test_models.h"
#include "engine/onnx/counting_allocator.h"

namespace outpost::engine::onnx {
namespace {

using testing::FloatAttr;
using testing::FloatTensor;
using testing::GraphBuilder;
using testing::IntAttr;
using testing::IntsAttr;

std::string Export(Graph& g) {
  auto bytes = ExportModel(g);
  EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
  return bytes.ok() ? *bytes : std::string();
}

std::span<const std::byte> AsBytes(const std::string& s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

// x[N, 4] -> Gemm(4x8) -> Relu -> Gemm(8x3) -> Softmax -> y[N, 3]
Graph Mlp() {
  GraphBuilder b;
  ValueId x = b.Input("x", DataType::kFp32, {-1, 4});
  std::vector<float> w1(32), b1(8), w2(24), b2(3);
  for (size_t i = 0; i < w1.size(); ++i) w1[i] = std::sin(static_cast<float>(i)) * 0.5f;
  for (size_t i = 0; i < b1.size(); ++i) b1[i] = 0.1f * static_cast<float>(i) - 0.3f;
  for (size_t i = 0; i < w2.size(); ++i) w2[i] = std::cos(static_cast<float>(i)) * 0.7f;
  for (size_t i = 0; i < b2.size(); ++i) b2[i] = 0.05f * static_cast<float>(i);
  ValueId h = b.Op("Gemm", {x, b.Floats("w1", {4, 8}, w1), b.Floats("b1", {8}, b1)}, {"h"});
  ValueId r = b.Op("Relu", {h}, {"r"});
  ValueId o = b.Op("Gemm", {r, b.Floats("w2", {8, 3}, w2), b.Floats("b2", {3}, b2)}, {"o"});
  ValueId y = b.Op("Softmax", {o}, {"y"}, {IntAttr("axis", 1)});
  b.Output(y);
  return b.graph();
}

// The MLP computed directly, in double.
std::vector<double> MlpReference(const std::vector<float>& x, int64_t n) {
  std::vector<double> out;
  for (int64_t row = 0; row < n; ++row) {
    double h[8];
    for (int j = 0; j < 8; ++j) {
      double s = 0.1 * j - 0.3;
      for (int k = 0; k < 4; ++k) {
        s += x[static_cast<size_t>(row * 4 + k)] * std::sin(static_cast<float>(k * 8 + j)) * 0.5;
      }
      h[j] = s > 0 ? s : 0;
    }
    double o[3], m = -1e300, sum = 0;
    for (int j = 0; j < 3; ++j) {
      double s = 0.05 * j;
      for (int k = 0; k < 8; ++k) s += h[k] * std::cos(static_cast<float>(k * 3 + j)) * 0.7;
      o[j] = s;
      m = std::max(m, s);
    }
    for (double& v : o) sum += (v = std::exp(v - m));
    for (double v : o) out.push_back(v / sum);
  }
  return out;
}

std::vector<float> Rows(int64_t n, float seed) {
  std::vector<float> x(static_cast<size_t>(n * 4));
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(seed + 0.37f * static_cast<float>(i));
  return x;
}

TEST(OnnxImport, TruncatedModelFilesAreErrorsNotCrashes) {
  Graph g = Mlp();
  const std::string bytes = Export(g);
  OUTPOST_ASSERT_OK(LoadOnnxModelFromBytes(AsBytes(bytes)).status());
  for (size_t len = 0; len < bytes.size(); ++len) {
    auto model = LoadOnnxModelFromBytes(AsBytes(bytes.substr(0, len)));
    EXPECT_FALSE(model.ok()) << "a prefix of " << len << " bytes loaded";
  }
}

TEST(OnnxImport, InitializerWithFewerBytesThanItsShapeIsRejected) {
  GraphBuilder b;
  ValueId x = b.Input("x", DataType::kFp32, {2});
  Tensor t(DataType::kFp32, {2});
  t.Reshape({1 << 20});  // declares a million elements over 8 bytes of data
  ValueId w = b.Constant("w", std::move(t));
  b.Output(b.Op("Add", {x, w}, {"y"}));
  const std::string bytes = Export(b.graph());
  auto model = LoadOnnxModelFromBytes(AsBytes(bytes));
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(model.status().message().find("initializer \"w\""), std::string_view::npos)
      << model.status().ToString();
}

TEST(OnnxImport, TensorFilesRoundTripThroughRawData) {
  GraphBuilder b;
  b.Floats("c", {2, 2}, {1, 2, 3, 4});
  ValueId x = b.Input("x", DataType::kFp32, {2, 2});
  b.Output(b.Op("Add", {x, 0}, {"y"}));
  auto graph = ImportModel(AsBytes(Export(b.graph())), "");
  OUTPOST_ASSERT_OK(graph.status());
  const Tensor* c = graph->values[0].constant.get();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->shape(), (Shape{2, 2}));
  EXPECT_EQ(c->values<float>()[3], 4.0f);
}

TEST(OnnxCompile, MismatchedElementTypesNameTheNode) {
  GraphBuilder b;
  ValueId x = b.Input("x", DataType::kFp32, {-1, 2});
  ValueId c = b.Ints("c", {2}, {1, 2});
  b.Output(b.Op("Add", {x, c}, {"sum"}));
  auto model = LoadOnnxModelFromBytes(AsBytes(Export(b.graph())));
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(model.status().message().find("node \"sum_node\" (Add)"), std::string_view::npos)
      << model.status().ToString();
}

TEST(OnnxCompile, CycleIsRefusedNamingANodeOnIt) {
  GraphBuilder b;
  ValueId x = b.Input("x", DataType::kFp32, {2});
  ValueId a = b.Op("Relu", {x}, {"a"});
  ValueId c = b.Op("Relu", {a}, {"c"});
  b.graph().nodes[0].inputs[0] = c;  // a = Relu(c), c = Relu(a)
  b.Output(c);
  auto model = LoadOnnxModelFromBytes(AsBytes(Export(b.graph())));
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("cycle"), std::string_view::npos);
  EXPECT_NE(model.status().message().find("(Relu)"), std::string_view::npos);
}

TEST(OnnxCompile, HugeDeclaredShapeIsResourceExhaustedNamingTheNode) {
  GraphBuilder b;
  ValueId x = b.Input("x", DataType::kFp32, {1 << 20, 1 << 20});
  b.Output(b.Op("Relu", {x}, {"y"}));
  auto model = LoadOnnxModelFromBytes(AsBytes(Export(b.graph())));
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(model.status().message().find("node \"y_node\" (Relu)"), std::string_view::npos)
      << model.status().ToString();
}

TEST(OnnxCompile, HugeConstantOfShapeIsResourceExhaustedNamingTheNode) {
  GraphBuilder b;
  ValueId x = b.Input("x", DataType::kFp32, {1});
  ValueId shape = b.Ints("shape", {3}, {1 << 20, 1 << 20, 1 << 20});
  ValueId big = b.Op("ConstantOfShape", {shape}, {"big"});
  b.Output(b.Op("Add", {x, big}, {"y"}));
  auto model = LoadOnnxModelFromBytes(AsBytes(Export(b.graph())));
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kResourceExhausted) << model.status().ToString();
  EXPECT_NE(model.status().message().find("(ConstantOfShape)"), std::string_view::npos)
      << model.status().ToString();
}

TEST(OnnxCompile, UnknownOperatorIsUnimplementedNamingTheNode) {
  GraphBuilder b;
  ValueId x = b.Input("x", DataType::kFp32, {2});
  b.Output(b.Op("NoSuchOp", {x}, {"y"}));
  auto model = LoadOnnxModelFromBytes(AsBytes(Export(b.graph())));
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(model.status().message().find("node \"y_node\" (NoSuchOp)"), std::string_view::npos);
}

TEST(OnnxCompile, OperatorVersionWithoutKernelIsUnimplemented) {
  GraphBuilder b(/*opset=*/6);
  ValueId x = b.Input("x", DataType::kFp32, {2});
  b.Output(b.Op("Add", {x, x}, {"y"}));
  auto model = LoadOnnxModelFromBytes(AsBytes(Export(b.graph())));
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(model.status().message().find("at opset 6"), std::string_view::npos);
}

TEST(OnnxCompile, AttributeOfTheWrongTypeNamesTheNode) {
  GraphBuilder b;
  ValueId x = b.Input("x", DataType::kFp32, {2, 2});
  b.Output(b.Op("Softmax", {x}, {"y"}, {FloatAttr("axis", 1.0f)}));
  auto model = LoadOnnxModelFromBytes(AsBytes(Export(b.graph())));
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(model.status().message().find("node \"y_node\" (Softmax)"), std::string_view::npos);
}

TEST(OnnxSignature, SymbolicBatchIsMinusOneAndOtherDimensionsAreInferred) {
  Graph g = Mlp();
  g.values[static_cast<size_t>(g.outputs[0])].info = ValueInfo();  // nothing declared
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, LoadOnnxModelFromBytes(AsBytes(Export(g))));
  const Signature& sig = model->signature();
  ASSERT_EQ(sig.inputs.size(), 1u);
  EXPECT_EQ(sig.inputs[0].shape, (Shape{-1, 4}));
  ASSERT_EQ(sig.outputs.size(), 1u);
  EXPECT_EQ(sig.outputs[0].name, "y");
  EXPECT_EQ(sig.outputs[0].type, DataType::kFp32);
  EXPECT_EQ(sig.outputs[0].shape, (Shape{-1, 3}));
}

TEST(OnnxModel, MlpMatchesADirectComputationAtSeveralBatchSizes) {
  Graph g = Mlp();
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, LoadOnnxModelFromBytes(AsBytes(Export(g))));
  for (int64_t n : {1, 5, 2, 5, 1, 17}) {
    std::vector<Tensor> in;
    std::vector<float> x = Rows(n, static_cast<float>(n));
    in.push_back(FloatTensor({n, 4}, x));
    std::vector<Tensor> out;
    OUTPOST_ASSERT_OK(model->Run(in, out));
    ASSERT_EQ(out.size(), 1u);
    ASSERT_EQ(out[0].shape(), (Shape{n, 3}));
    std::vector<double> want = MlpReference(x, n);
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_NEAR(out[0].values<float>()[i], want[i], 1e-5) << "batch " << n << " element " << i;
    }
  }
}

TEST(OnnxModel, OptimisedAndUnoptimisedCompilationsAgree) {
  Graph g = Mlp();
  const std::string bytes = Export(g);
  OnnxOptions plain;
  plain.compile.optimize = false;
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto fast, LoadOnnxModelFromBytes(AsBytes(bytes)));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto slow, LoadOnnxModelFromBytes(AsBytes(bytes), plain));
  std::vector<Tensor> in;
  in.push_back(FloatTensor({7, 4}, Rows(7, 3.0f)));
  std::vector<Tensor> a, b;
  OUTPOST_ASSERT_OK(fast->Run(in, a));
  OUTPOST_ASSERT_OK(slow->Run(in, b));
  for (int64_t i = 0; i < 21; ++i) {
    EXPECT_NEAR(a[0].values<float>()[static_cast<size_t>(i)],
                b[0].values<float>()[static_cast<size_t>(i)], 1e-6);
  }
}

TEST(OnnxModel, WrongInputShapeIsInvalidArgumentNamingTheInput) {
  Graph g = Mlp();
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, LoadOnnxModelFromBytes(AsBytes(Export(g))));
  std::vector<Tensor> in;
  in.push_back(FloatTensor({2, 5}, std::vector<float>(10, 1.0f)));
  std::vector<Tensor> out;
  Status st = model->Run(in, out);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("\"x\""), std::string_view::npos) << st.ToString();
}

TEST(OnnxModel, RunAllocatesNothingAfterTheFirstRunWithTheSameShapes) {
  Graph g = Mlp();
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, LoadOnnxModelFromBytes(AsBytes(Export(g))));
  std::vector<Tensor> in;
  in.push_back(FloatTensor({3, 4}, Rows(3, 1.0f)));
  std::vector<Tensor> out;
  OUTPOST_ASSERT_OK(model->Run(in, out));
  if (!testing::AllocationCountingAvailable()) {
    GTEST_SKIP() << "allocation counting is off in sanitizer builds";
  }
  int64_t allocations = 0;
  Status st;
  {
    testing::CountAllocations count(&allocations);
    st = model->Run(in, out);
  }
  OUTPOST_ASSERT_OK(st);
  EXPECT_EQ(allocations, 0);
  // The counter does count: a fresh output vector allocates.
  std::vector<Tensor> fresh;
  {
    testing::CountAllocations count(&allocations);
    st = model->Run(in, fresh);
  }
  OUTPOST_ASSERT_OK(st);
  EXPECT_GT(allocations, 0);
}

TEST(OnnxModel, ShapeArithmeticOnTheBatchIsPlannedPerBatchSize) {
  // y = Reshape(x, concat(shape(x)[0:1], [2, 2])): a dynamic-batch export's reshape.
  GraphBuilder b;
  ValueId x = b.Input("x", DataType::kFp32, {-1, 4});
  ValueId shape = b.Op("Shape", {x}, {"shape"});
  ValueId batch = b.Op("Slice", {shape, b.Ints("s0", {1}, {0}), b.Ints("s1", {1}, {1})},
                       {"batch"});
  ValueId target = b.Op("Concat", {batch, b.Ints("rest", {2}, {2, 2})}, {"target"},
                        {IntAttr("axis", 0)});
  ValueId y = b.Op("Reshape", {x, target}, {"y"});
  b.Output(y);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, LoadOnnxModelFromBytes(AsBytes(Export(b.graph()))));
  EXPECT_EQ(model->signature().outputs[0].shape, (Shape{-1, 2, 2}));
  for (int64_t n : {3, 1, 3}) {
    std::vector<Tensor> in;
    in.push_back(FloatTensor({n, 4}, Rows(n, 0.0f)));
    std::vector<Tensor> out;
    OUTPOST_ASSERT_OK(model->Run(in, out));
    EXPECT_EQ(out[0].shape(), (Shape{n, 2, 2}));
    EXPECT_EQ(out[0].values<float>()[static_cast<size_t>(n * 4 - 1)],
              in[0].values<float>()[static_cast<size_t>(n * 4 - 1)]);
  }
}

TEST(OnnxModel, DataDependentShapesAreComputedDuringTheRun) {
  // Reshape to a shape fed as a graph input: planned dynamically, still correct.
  GraphBuilder b;
  ValueId x = b.Input("x", DataType::kFp32, {6});
  ValueId s = b.Input("s", DataType::kInt64, {2});
  b.Output(b.Op("Reshape", {x, s}, {"y"}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, LoadOnnxModelFromBytes(AsBytes(Export(b.graph()))));
  for (auto dims : {std::vector<int64_t>{2, 3}, std::vector<int64_t>{3, 2}}) {
    std::vector<Tensor> in;
    in.push_back(FloatTensor({6}, {0, 1, 2, 3, 4, 5}));
    Tensor st(DataType::kInt64, {2});
    st.values<int64_t>()[0] = dims[0];
    st.values<int64_t>()[1] = dims[1];
    in.push_back(std::move(st));
    std::vector<Tensor> out;
    OUTPOST_ASSERT_OK(model->Run(in, out));
    EXPECT_EQ(out[0].shape(), (Shape{dims[0], dims[1]}));
  }
  std::vector<Tensor> bad;
  bad.push_back(FloatTensor({6}, {0, 1, 2, 3, 4, 5}));
  Tensor st(DataType::kInt64, {2});
  st.values<int64_t>()[0] = 4;
  st.values<int64_t>()[1] = 4;
  bad.push_back(std::move(st));
  std::vector<Tensor> out;
  Status status = model->Run(bad, out);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("(Reshape)"), std::string_view::npos) << status.ToString();
}

TEST(OnnxModel, IntegerDivisionByZeroIsAnErrorNotACrash) {
  GraphBuilder b;
  ValueId x = b.Input("x", DataType::kInt32, {2});
  ValueId y = b.Input("y", DataType::kInt32, {2});
  b.Output(b.Op("Div", {x, y}, {"q"}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, LoadOnnxModelFromBytes(AsBytes(Export(b.graph()))));
  std::vector<Tensor> in;
  in.emplace_back(DataType::kInt32, Shape{2});
  in.emplace_back(DataType::kInt32, Shape{2});
  in[0].values<int32_t>()[0] = INT32_MIN;
  in[1].values<int32_t>()[0] = -1;  // would trap in plain C++
  std::vector<Tensor> out;
  Status st = model->Run(in, out);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("division by zero"), std::string_view::npos);
}

TEST(OnnxModel, ConcurrentRunsOnOneModelAreIndependent) {
  Graph g = Mlp();
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, LoadOnnxModelFromBytes(AsBytes(Export(g))));
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const int64_t n = 1 + t;
      std::vector<float> x = Rows(n, static_cast<float>(t));
      std::vector<double> want = MlpReference(x, n);
      std::vector<Tensor> in;
      in.push_back(FloatTensor({n, 4}, x));
      std::vector<Tensor> out;
      for (int i = 0; i < 200; ++i) {
        if (!model->Run(in, out).ok()) {
          ++mismatches;
          continue;
        }
        for (size_t k = 0; k < want.size(); ++k) {
          if (std::fabs(out[0].values<float>()[k] - want[k]) > 1e-5) ++mismatches;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(OnnxModel, ConfigDeclarationsMustMatchTheModel) {
  Graph g = Mlp();
  const std::string bytes = Export(g);
  OnnxOptions ok;
  ok.inputs = {{"x", DataType::kFp32, {-1, 4}}};
  ok.outputs = {{"y", DataType::kFp32, {-1, 3}}};
  OUTPOST_ASSERT_OK(LoadOnnxModelFromBytes(AsBytes(bytes), ok).status());
  OnnxOptions renamed;
  renamed.inputs = {{"features", DataType::kFp32, {-1, 4}}};
  EXPECT_EQ(LoadOnnxModelFromBytes(AsBytes(bytes), renamed).status().code(),
            StatusCode::kInvalidArgument);
  OnnxOptions wrong_shape;
  wrong_shape.inputs = {{"x", DataType::kFp32, {-1, 5}}};
  EXPECT_EQ(LoadOnnxModelFromBytes(AsBytes(bytes), wrong_shape).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(OnnxModel, FuzzSeedModelsLoadAndRun) {
  const std::string dir = std::string(OUTPOST_ONNX_TESTDATA) + "/fuzz_seeds";
  for (const char* name : {"mlp.onnx", "shapes.onnx", "trees.onnx", "linear.onnx"}) {
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, LoadOnnxModel(dir + "/" + name));
    std::vector<Tensor> in;
    for (const TensorSpec& spec : model->signature().inputs) {
      Shape shape = spec.shape;
      for (int64_t& d : shape) d = d < 0 ? 3 : d;
      in.emplace_back(spec.type, shape);
    }
    std::vector<Tensor> out;
    OUTPOST_EXPECT_OK(model->Run(in, out));
    EXPECT_EQ(out.size(), model->signature().outputs.size()) << name;
  }
}

}  // namespace
}  // namespace outpost::engine::onnx
