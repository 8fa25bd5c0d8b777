// The ONNX conformance runner: every node test of the ONNX test suite (Debian's
// libonnx-testdata), run through the engine's public API.
//
//   onnx_conformance <node-test-dir> <expected-failures-file> [--filter SUBSTRING] [--verbose]
//
// A test whose graph uses an operator the engine lacks counts as unsupported. Every other
// test must match its reference outputs (same element type and shape; numbers within
// |actual - expected| <= 1e-7 + 1e-3 * |expected|, the ONNX runner's default tolerance, NaN
// equal to NaN) or be listed, with its reason, in the expected-failures file. The exit status
// is non-zero when a test fails that is not listed, or when a listed test passes or is not
// supported (the list must stay exact).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "base/file.h"
#include "base/status.h"
#include "engine/onnx/float16.h"
#include "engine/onnx/onnx_import.h"
#include "engine/onnx/onnx_model.h"
#include "engine/onnx/plan.h"

namespace outpost::engine {
namespace {

// The phase-1 operator set: 50 core operators and 37 breadth operators (see
// engine/PIPELINE.md, "Kernels" and "Conformance"), for the summary lines.
const char* const kCoreOps[] = {
    "Add", "Sub", "Mul", "Div", "Neg", "Abs", "Sqrt", "Pow", "Exp", "Log",
    "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Erf", "Clip", "Softmax", "LogSoftmax", "Gemm",
    "MatMul", "Identity", "Dropout", "Cast", "Reshape", "Flatten", "Squeeze", "Unsqueeze",
    "Transpose", "Concat", "Split", "Slice", "Gather", "Shape", "Constant", "ConstantOfShape",
    "Expand", "Range", "Where", "Equal", "Less", "Greater", "Not", "Min", "Max", "Sum",
    "ReduceSum", "ReduceMean", "ReduceMax", "ArgMax", "BatchNormalization"};
const char* const kBreadthOps[] = {
    "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Elu", "Selu", "Celu", "HardSigmoid",
    "Softplus", "Softsign", "Hardmax", "CastLike", "GatherElements", "Size", "Tile",
    "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "IsNaN", "IsInf", "Mean", "ReduceMin",
    "ReduceProd", "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp",
    "ArgMin", "TopK", "OneHot", "CumSum", "Mod", "Trilu"};
// Random or training operators, outside every phase's denominator.
const char* const kExcludedPrefixes[] = {"test_adagrad", "test_adam", "test_momentum",
                                         "test_nesterov", "test_bernoulli",
                                         "test_training_dropout"};

struct Outcome {
  enum Kind { kPass, kFail, kUnsupported } kind = kPass;
  std::string detail;
  std::set<std::string> ops;
};

// ONNX 1.12 stores BFLOAT16 test tensors as UINT16 bit patterns (numpy has no bfloat16);
// this gives such a tensor its real type.
Tensor AsBFloat16(const Tensor& t) {
  Tensor out(DataType::kBf16, t.shape());
  if (t.byte_size() > 0) std::memcpy(out.data(), t.data(), t.byte_size());
  return out;
}

Result<Tensor> LoadTensorFile(const std::string& path) {
  OUTPOST_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  return onnx::ImportTensor(std::as_bytes(std::span<const char>(bytes.data(), bytes.size())));
}

double ValueAt(const Tensor& t, int64_t i) {
  const auto k = static_cast<size_t>(i);
  switch (t.type()) {
    case DataType::kFp32: return t.values<float>()[k];
    case DataType::kFp64: return t.values<double>()[k];
    case DataType::kFp16: return onnx::HalfBitsToFloat(t.values<uint16_t>()[k]);
    case DataType::kBf16: return onnx::BFloat16BitsToFloat(t.values<uint16_t>()[k]);
    case DataType::kInt8: return t.values<int8_t>()[k];
    case DataType::kInt16: return t.values<int16_t>()[k];
    case DataType::kInt32: return t.values<int32_t>()[k];
    case DataType::kInt64: return static_cast<double>(t.values<int64_t>()[k]);
    case DataType::kUint8: return t.values<uint8_t>()[k];
    case DataType::kUint16: return t.values<uint16_t>()[k];
    case DataType::kUint32: return t.values<uint32_t>()[k];
    case DataType::kUint64: return static_cast<double>(t.values<uint64_t>()[k]);
    case DataType::kBool: return t.values<uint8_t>()[k] != 0;
    case DataType::kBytes: return 0;
  }
  return 0;
}

// Empty when equal within tolerance; otherwise what differs.
std::string Compare(const Tensor& actual, const Tensor& expected) {
  if (actual.type() != expected.type()) {
    return "element type " + std::string(DataTypeName(actual.type())) + ", expected " +
           std::string(DataTypeName(expected.type()));
  }
  if (actual.shape() != expected.shape()) {
    return "shape " + ShapeToString(actual.shape()) + ", expected " +
           ShapeToString(expected.shape());
  }
  if (actual.type() == DataType::kBytes) {
    for (size_t i = 0; i < actual.strings().size(); ++i) {
      if (actual.strings()[i] != expected.strings()[i]) {
        return "element " + std::to_string(i) + " is \"" + actual.strings()[i] +
               "\", expected \"" + expected.strings()[i] + "\"";
      }
    }
    return "";
  }
  const bool exact = actual.type() == DataType::kInt64 || actual.type() == DataType::kUint64;
  for (int64_t i = 0; i < actual.element_count(); ++i) {
    if (exact) {
      const size_t k = static_cast<size_t>(i);
      const bool same = actual.type() == DataType::kInt64
                            ? actual.values<int64_t>()[k] == expected.values<int64_t>()[k]
                            : actual.values<uint64_t>()[k] == expected.values<uint64_t>()[k];
      if (!same) return "element " + std::to_string(i) + " differs";
      continue;
    }
    const double a = ValueAt(actual, i);
    const double e = ValueAt(expected, i);
    if (std::isnan(a) && std::isnan(e)) continue;
    if (std::isinf(e) || std::isinf(a)) {
      if (a == e) continue;
    } else if (std::fabs(a - e) <= 1e-7 + 1e-3 * std::fabs(e)) {
      continue;
    }
    char buf[128];
    std::snprintf(buf, sizeof(buf), "element %lld is %.9g, expected %.9g",
                  static_cast<long long>(i), a, e);
    return buf;
  }
  return "";
}

Outcome RunTest(const std::string& dir) {
  Outcome out;
  const std::string model_path = dir + "/model.onnx";
  auto graph = onnx::ImportModelFile(model_path);
  if (!graph.ok()) {
    if (graph.status().code() == StatusCode::kUnimplemented) {
      out.kind = Outcome::kUnsupported;
    } else {
      out.kind = Outcome::kFail;
    }
    out.detail = "import: " + graph.status().ToString();
    return out;
  }
  for (const onnx::Node& n : graph->nodes) {
    out.ops.insert(n.domain.empty() ? n.op_type : n.domain + "." + n.op_type);
  }
  std::vector<std::string> missing = onnx::UnsupportedOperators(*graph);
  if (!missing.empty()) {
    out.kind = Outcome::kUnsupported;
    for (const std::string& m : missing) out.detail += (out.detail.empty() ? "" : ", ") + m;
    return out;
  }
  auto model = LoadOnnxModel(model_path);
  if (!model.ok()) {
    out.kind = Outcome::kFail;
    out.detail = "load: " + model.status().ToString();
    return out;
  }
  auto entries = ListDirectory(dir);
  if (!entries.ok()) {
    out.kind = Outcome::kFail;
    out.detail = entries.status().ToString();
    return out;
  }
  int sets = 0;
  for (const std::string& entry : *entries) {
    if (entry.rfind("test_data_set_", 0) != 0) continue;
    ++sets;
    const std::string set_dir = dir + "/" + entry;
    std::vector<Tensor> inputs, expected;
    for (size_t i = 0;; ++i) {
      const std::string p = set_dir + "/input_" + std::to_string(i) + ".pb";
      if (!PathExists(p)) break;
      auto t = LoadTensorFile(p);
      if (!t.ok()) {
        out.kind = Outcome::kFail;
        out.detail = entry + ": input " + std::to_string(i) + ": " + t.status().ToString();
        return out;
      }
      inputs.push_back(std::move(t).value());
    }
    for (size_t i = 0;; ++i) {
      const std::string p = set_dir + "/output_" + std::to_string(i) + ".pb";
      if (!PathExists(p)) break;
      auto t = LoadTensorFile(p);
      if (!t.ok()) {
        out.kind = Outcome::kFail;
        out.detail = entry + ": output " + std::to_string(i) + ": " + t.status().ToString();
        return out;
      }
      expected.push_back(std::move(t).value());
    }
    const Signature& sig = (*model)->signature();
    for (size_t i = 0; i < inputs.size() && i < sig.inputs.size(); ++i) {
      if (sig.inputs[i].type == DataType::kBf16 && inputs[i].type() == DataType::kUint16) {
        inputs[i] = AsBFloat16(inputs[i]);
      }
    }
    for (size_t i = 0; i < expected.size() && i < sig.outputs.size(); ++i) {
      if (sig.outputs[i].type == DataType::kBf16 && expected[i].type() == DataType::kUint16) {
        expected[i] = AsBFloat16(expected[i]);
      }
    }
    std::vector<Tensor> actual;
    // Run twice: the second run reuses the plan and the output tensors.
    for (int round = 0; round < 2; ++round) {
      Status st = (*model)->Run(inputs, actual);
      if (!st.ok()) {
        out.kind = Outcome::kFail;
        out.detail = entry + ": run: " + st.ToString();
        return out;
      }
      if (actual.size() != expected.size()) {
        out.kind = Outcome::kFail;
        out.detail = entry + ": " + std::to_string(actual.size()) + " outputs, expected " +
                     std::to_string(expected.size());
        return out;
      }
      for (size_t i = 0; i < actual.size(); ++i) {
        std::string diff = Compare(actual[i], expected[i]);
        if (!diff.empty()) {
          out.kind = Outcome::kFail;
          out.detail = entry + ": output " + std::to_string(i) + ": " + diff;
          return out;
        }
      }
    }
  }
  if (sets == 0) {
    out.kind = Outcome::kFail;
    out.detail = "no test data sets";
  }
  return out;
}

// "test_name  # reason" per line; blank lines and lines starting with # are skipped.
Result<std::map<std::string, std::string>> ReadExpectedFailures(const std::string& path) {
  OUTPOST_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    const size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    const size_t name_end = line.find_first_of(" \t#", first);
    const std::string name = line.substr(first, name_end == std::string::npos
                                                    ? std::string::npos
                                                    : name_end - first);
    std::string reason;
    if (size_t hash = line.find('#', first); hash != std::string::npos) {
      reason = line.substr(line.find_first_not_of(" \t", hash + 1) == std::string::npos
                               ? line.size()
                               : line.find_first_not_of(" \t", hash + 1));
    }
    if (reason.empty()) return InvalidArgumentError("expected failure " + name + " has no reason");
    out[name] = reason;
  }
  return out;
}

bool AllIn(const std::set<std::string>& ops, const std::set<std::string>& set) {
  for (const std::string& op : ops) {
    if (!set.count(op)) return false;
  }
  return true;
}

int Main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: %s <node-test-dir> <expected-failures-file> [--filter S] [--verbose]\n",
                 argv[0]);
    return 2;
  }
  const std::string root = argv[1];
  std::string filter;
  bool verbose = false;
  for (int i = 3; i < argc; ++i) {
    if (std::strcmp(argv[i], "--verbose") == 0) {
      verbose = true;
    } else if (std::strcmp(argv[i], "--filter") == 0 && i + 1 < argc) {
      filter = argv[++i];
    }
  }
  auto expected_or = ReadExpectedFailures(argv[2]);
  if (!expected_or.ok()) {
    std::fprintf(stderr, "%s\n", expected_or.status().ToString().c_str());
    return 2;
  }
  const auto& expected = *expected_or;
  auto tests = ListDirectory(root);
  if (!tests.ok()) {
    std::fprintf(stderr, "%s\n", tests.status().ToString().c_str());
    return 2;
  }
  const std::set<std::string> core(std::begin(kCoreOps), std::end(kCoreOps));
  std::set<std::string> phase1 = core;
  phase1.insert(std::begin(kBreadthOps), std::end(kBreadthOps));

  int passed = 0, failed = 0, unsupported = 0, unexpected = 0, stale = 0;
  int core_total = 0, core_passed = 0, p1_total = 0, p1_passed = 0;
  std::map<std::string, int> missing_ops;
  for (const std::string& name : *tests) {
    if (!filter.empty() && name.find(filter) == std::string::npos) continue;
    Outcome o = RunTest(root + "/" + name);
    bool excluded = false;
    for (const char* p : kExcludedPrefixes) excluded = excluded || name.rfind(p, 0) == 0;
    const bool in_core = !excluded && !o.ops.empty() && AllIn(o.ops, core);
    const bool in_p1 = !excluded && !o.ops.empty() && AllIn(o.ops, phase1);
    core_total += in_core;
    p1_total += in_p1;
    const auto listed = expected.find(name);
    switch (o.kind) {
      case Outcome::kPass:
        ++passed;
        core_passed += in_core;
        p1_passed += in_p1;
        if (listed != expected.end()) {
          ++stale;
          std::printf("STALE   %s passes but is listed as an expected failure\n", name.c_str());
        } else if (verbose) {
          std::printf("PASS    %s\n", name.c_str());
        }
        break;
      case Outcome::kFail:
        ++failed;
        if (listed == expected.end()) {
          ++unexpected;
          std::printf("FAIL    %s: %s\n", name.c_str(), o.detail.c_str());
        } else {
          std::printf("XFAIL   %s (%s): %s\n", name.c_str(), listed->second.c_str(),
                      o.detail.c_str());
        }
        break;
      case Outcome::kUnsupported:
        ++unsupported;
        if (listed != expected.end()) {
          ++stale;
          std::printf("STALE   %s is unsupported but listed as an expected failure\n",
                      name.c_str());
        }
        ++missing_ops[o.detail];
        if (verbose) std::printf("UNSUPP  %s: %s\n", name.c_str(), o.detail.c_str());
        break;
    }
  }
  std::printf("\n%d passed, %d failed, %d unsupported\n", passed, failed, unsupported);
  std::printf("core operators (50): %d of %d node tests pass\n", core_passed, core_total);
  std::printf("phase 1 operators (87): %d of %d node tests pass\n", p1_passed, p1_total);
  if (unexpected > 0 || stale > 0) {
    std::printf("%d unexpected failures, %d stale expected-failure entries\n", unexpected,
                stale);
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace outpost::engine

int main(int argc, char** argv) { return outpost::engine::Main(argc, argv); }
