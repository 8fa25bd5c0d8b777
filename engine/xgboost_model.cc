// The XGBoost adapter of engine/: the only file of the engine that includes XGBoost's C API.
#include "engine/xgboost_model.h"

#include <xgboost/c_api.h>

#include <array>
#include <charconv>
#include <cstring>
#include <exception>
#include <limits>
#include <mutex>
#include <new>
#include <span>
#include <system_error>
#include <utility>

#include "base/file.h"
#include "base/logging.h"
#include "engine/xgboost_handles.h"
#include "engine/xgboost_model_check.h"

namespace outpost::engine {
namespace {

// The proxy DMatrix through which in-place prediction takes a batch, one per thread and
// shared by every model that thread scores with (a proxy holds only the current batch's
// description). Without one, XGBoost 1.7 builds a new proxy on every call, and its
// constructor reads the cgroup CPU quota files: three times the cost of the prediction of a
// small model. Freed when the thread exits.
class ThreadProxy {
 public:
  ThreadProxy() = default;
  ~ThreadProxy() {
    if (handle_ != nullptr) XGDMatrixFree(handle_);
  }
  ThreadProxy(const ThreadProxy&) = delete;
  ThreadProxy& operator=(const ThreadProxy&) = delete;

  static Result<DMatrixHandle> ForThisThread() {
    thread_local ThreadProxy proxy;
    if (proxy.handle_ == nullptr && XGProxyDMatrixCreate(&proxy.handle_) != 0) {
      proxy.handle_ = nullptr;
      return InternalError("XGBoost could not create a proxy matrix: " + xgb::LastError());
    }
    return proxy.handle_;
  }

 private:
  DMatrixHandle handle_ = nullptr;
};

// Writes the array interface through which XGBoost reads a batch of `rows` rows at `data`:
// the pointer and the row count change per call, `tail` (the column count, element type and
// version) is fixed per model. False when it does not fit in `buffer`.
bool WriteArrayInterface(std::span<char> buffer, const void* data, int64_t rows,
                         std::string_view tail) {
  char* p = buffer.data();
  char* const end = buffer.data() + buffer.size() - 1;  // room for the terminating NUL
  auto put = [&](std::string_view s) {
    if (static_cast<size_t>(end - p) < s.size()) return false;
    std::memcpy(p, s.data(), s.size());
    p += s.size();
    return true;
  };
  auto number = [&](uint64_t v) {
    std::to_chars_result r = std::to_chars(p, end, v);
    if (r.ec != std::errc()) return false;
    p = r.ptr;
    return true;
  };
  bool ok = put("{\"data\":[") && number(reinterpret_cast<uintptr_t>(data)) &&
            put(",true],\"shape\":[") && number(static_cast<uint64_t>(rows)) && put(tail);
  *p = '\0';
  return ok;
}

// A loaded booster and everything Run() needs, computed once at load: the prediction config
// strings and the constant part of the batch description. Immutable after Load() returns.
class XGBoostModel final : public Model {
 public:
  // Takes a booster XGBoost has loaded and whose nthread is set; Probe() and BuildSignature()
  // finish the job.
  XGBoostModel(std::unique_ptr<xgb::Booster> booster, const XGBoostModelSummary& summary, bool margin,
               DataType input_type)
      : booster_(std::move(booster)),
        linear_(summary.booster == "gblinear"),
        num_feature_(summary.num_feature),
        input_type_(input_type),
        platform_(summary.encoding == XGBoostEncoding::kJson ? "xgboost_json" : "xgboost_ubj") {
    const std::string type = margin ? "1" : "0";
    // Only the keys in-place prediction reads: XGBoost parses this string on every call.
    inplace_config_ = "{\"type\":" + type +
                      ",\"iteration_begin\":0,\"iteration_end\":0,\"strict_shape\":false,"
                      "\"missing\":NaN,\"cache_id\":0}";
    dmatrix_predict_config_ = "{\"type\":" + type +
                              ",\"training\":false,\"iteration_begin\":0,\"iteration_end\":0,"
                              "\"strict_shape\":false}";
    array_tail_ = "," + std::to_string(num_feature_) + "],\"typestr\":\"" +
                  (input_type == DataType::kFp64 ? "<f8" : "<f4") + "\",\"version\":3}";
  }

  const Signature& signature() const override { return signature_; }
  std::string_view platform() const override { return platform_; }

  Status Run(std::span<const Tensor> inputs, std::vector<Tensor>& outputs) const override {
    try {
      return RunImpl(inputs, outputs);
    } catch (const std::bad_alloc&) {
      return ResourceExhaustedError("out of memory while scoring with XGBoost");
    } catch (const std::exception& e) {
      return InternalError(std::string("XGBoost scoring failed: ") + e.what());
    }
  }

  // Finishes loading: scores one row of missing values, which makes XGBoost configure the
  // booster now (so that Run() never triggers configuration) and tells the output width.
  Status Probe() {
    std::vector<double> row(static_cast<size_t>(num_feature_),
                            std::numeric_limits<double>::quiet_NaN());
    std::vector<float> row32(row.begin(), row.end());
    const void* data = input_type_ == DataType::kFp64 ? static_cast<const void*>(row.data())
                                                      : static_cast<const void*>(row32.data());
    Tensor out;
    output_width_ = -1;  // learn it
    OUTPOST_RETURN_IF_ERROR(Predict(data, 1, out));
    return Status();
  }

  // Sets the signature from the probed output width and the options' overrides.
  Status BuildSignature(const XGBoostOptions& options) {
    signature_.inputs = {
        TensorSpec{.name = "input", .type = input_type_, .shape = {-1, num_feature_}}};
    Shape out_shape = output_width_ > 0 ? Shape{-1, output_width_} : Shape{-1};
    signature_.outputs = {
        TensorSpec{.name = "output", .type = DataType::kFp32, .shape = out_shape}};
    if (!options.inputs.empty()) {
      if (options.inputs.size() != 1) {
        return InvalidArgumentError(
            "an XGBoost model takes exactly one input; the config declares " +
            std::to_string(options.inputs.size()));
      }
      const TensorSpec& in = options.inputs[0];
      if (in.name.empty()) return InvalidArgumentError("the input needs a name");
      if (in.type != input_type_) {
        return InvalidArgumentError("input \"" + in.name + "\" is declared " +
                                    std::string(DataTypeName(in.type)) +
                                    "; XGBoost models take FP32 or FP64");
      }
      if (in.shape.size() != 2 || in.shape[1] != num_feature_ ||
          (in.shape[0] != -1 && in.shape[0] < 1)) {
        return InvalidArgumentError("input \"" + in.name + "\" is declared " +
                                    ShapeToString(in.shape) + " but the model takes [-1, " +
                                    std::to_string(num_feature_) + "]");
      }
      signature_.inputs[0] = in;
      signature_.outputs[0].shape[0] = in.shape[0];
    }
    if (!options.outputs.empty()) {
      if (options.outputs.size() != 1) {
        return InvalidArgumentError(
            "an XGBoost model gives exactly one output; the config "
            "declares " +
            std::to_string(options.outputs.size()));
      }
      const TensorSpec& out = options.outputs[0];
      const Shape& expected = signature_.outputs[0].shape;
      if (out.name.empty()) return InvalidArgumentError("the output needs a name");
      if (out.type != DataType::kFp32) {
        return InvalidArgumentError("output \"" + out.name + "\" is declared " +
                                    std::string(DataTypeName(out.type)) +
                                    "; XGBoost models give FP32");
      }
      bool fits = out.shape.size() == expected.size() &&
                  (out.shape[0] == -1 || out.shape[0] == expected[0]);
      for (size_t i = 1; fits && i < expected.size(); ++i) fits = out.shape[i] == expected[i];
      if (!fits) {
        return InvalidArgumentError("output \"" + out.name + "\" is declared " +
                                    ShapeToString(out.shape) + " but the model gives " +
                                    ShapeToString(expected));
      }
      signature_.outputs[0] = out;
    }
    return Status();
  }

 private:
  Status RunImpl(std::span<const Tensor> inputs, std::vector<Tensor>& outputs) const {
    // The contract says ValidateInputs() passed; these checks are cheap and keep a caller's
    // bug from becoming an out-of-bounds read inside XGBoost.
    if (inputs.size() != 1) return InvalidArgumentError("an XGBoost model takes one input");
    const Tensor& x = inputs[0];
    if (x.type() != input_type_ || x.shape().size() != 2 || x.shape()[1] != num_feature_ ||
        x.byte_size() != static_cast<size_t>(x.element_count()) * ElementSize(input_type_)) {
      return InvalidArgumentError(
          "input \"" + signature_.inputs[0].name + "\" must be " +
          std::string(DataTypeName(input_type_)) + " [rows, " + std::to_string(num_feature_) +
          "], got " + std::string(DataTypeName(x.type())) + " " + ShapeToString(x.shape()));
    }
    Tensor out;
    OUTPOST_RETURN_IF_ERROR(Predict(x.data(), x.shape()[0], out));
    outputs.clear();
    outputs.push_back(std::move(out));
    return Status();
  }

  // Scores `rows` rows at `data` (input_type_, row-major, num_feature_ columns) into `out`.
  // When output_width_ is -1 (the probe), learns it from XGBoost's answer instead of checking.
  Status Predict(const void* data, int64_t rows, Tensor& out) const {
    if (rows == 0) {
      out = Tensor(DataType::kFp32, output_width_ > 0 ? Shape{0, output_width_} : Shape{0});
      return Status();
    }
    std::array<char, 192> buffer;
    if (!WriteArrayInterface(buffer, data, rows, array_tail_)) {
      return InternalError("the batch description does not fit its buffer");
    }

    const bst_ulong* shape = nullptr;
    bst_ulong dims = 0;
    const float* result = nullptr;
    if (!linear_) {
      // Thread-safety: XGBoost documents that, since 1.4, prediction with a gbtree or dart
      // booster is thread-safe as long as nobody trains it (doc/prediction.rst, "Thread
      // Safety"). In 1.7 in-place prediction keeps its result buffer and shape in storage
      // that is thread-local per booster, its scratch space is local to the call, the batch
      // travels in this thread's own proxy, and the one-time configuration was done by
      // Probe() at load. So no lock here.
      OUTPOST_ASSIGN_OR_RETURN(DMatrixHandle proxy, ThreadProxy::ForThisThread());
      if (XGBoosterPredictFromDense(booster_->get(), buffer.data(), inplace_config_.c_str(), proxy,
                                    &shape, &dims, &result) != 0) {
        return InternalError("XGBoost prediction failed: " + xgb::LastError());
      }
      return CopyResult(rows, shape, dims, result, out);
    }
    // XGBoost 1.7 cannot predict in place with gblinear and does not promise thread-safety
    // for it, so linear models go through a DMatrix, one call at a time.
    xgb::DMatrix matrix;
    if (XGDMatrixCreateFromDense(buffer.data(), kDMatrixConfig, matrix.out()) != 0) {
      return InternalError("XGBoost could not take the batch: " + xgb::LastError());
    }
    std::lock_guard<std::mutex> lock(linear_mu_);
    if (XGBoosterPredictFromDMatrix(booster_->get(), matrix.get(), dmatrix_predict_config_.c_str(),
                                    &shape, &dims, &result) != 0) {
      return InternalError("XGBoost prediction failed: " + xgb::LastError());
    }
    return CopyResult(rows, shape, dims, result, out);
  }

  // Checks XGBoost's result shape ([rows] or [rows, width]) and copies the values.
  Status CopyResult(int64_t rows, const bst_ulong* shape, bst_ulong dims, const float* result,
                    Tensor& out) const {
    int64_t width = -2;  // not a shape we accept
    if (shape != nullptr && result != nullptr && shape[0] == static_cast<bst_ulong>(rows)) {
      if (dims == 1) width = 0;
      if (dims == 2 && shape[1] >= 1 && shape[1] <= bst_ulong{1} << 16) {
        width = static_cast<int64_t>(shape[1]);
      }
    }
    if (width == -2 || (output_width_ != -1 && width != output_width_)) {
      std::string got = "[";
      for (bst_ulong i = 0; shape != nullptr && i < dims; ++i) {
        got += (i ? ", " : "") + std::to_string(shape[i]);
      }
      return InternalError("XGBoost returned predictions of shape " + got + "] for " +
                           std::to_string(rows) + " rows");
    }
    if (output_width_ == -1) output_width_ = width;
    out = Tensor(DataType::kFp32, width > 0 ? Shape{rows, width} : Shape{rows});
    std::memcpy(out.data(), result, out.byte_size());
    return Status();
  }

  static constexpr const char* kDMatrixConfig = "{\"missing\":NaN,\"nthread\":1}";

  std::unique_ptr<xgb::Booster> booster_;
  const bool linear_;
  const int64_t num_feature_;
  const DataType input_type_;
  const std::string platform_;
  std::string inplace_config_;
  std::string dmatrix_predict_config_;
  std::string array_tail_;  // ",<F>],\"typestr\":\"<f4\",\"version\":3}"
  // Values per row (0 = one value, shape [rows]); -1 only while Probe() runs at load.
  mutable int64_t output_width_ = -1;
  Signature signature_;
  // Serializes scoring of gblinear boosters (see Predict); unused for tree boosters.
  mutable std::mutex linear_mu_;
};

Result<std::unique_ptr<Model>> Load(std::string_view bytes, const XGBoostOptions& options) {
  bool margin = false;
  if (options.predict == "margin") {
    margin = true;
  } else if (options.predict != "value") {
    return InvalidArgumentError("predict must be \"value\" or \"margin\", not \"" +
                                options.predict + "\"");
  }
  if (options.threads < 1 || options.threads > 256) {
    return InvalidArgumentError("threads must be between 1 and 256");
  }
  if (bytes.size() > options.max_file_bytes) {
    return InvalidArgumentError("the model is " + std::to_string(bytes.size()) +
                                " bytes, over the limit of " +
                                std::to_string(options.max_file_bytes));
  }
  OUTPOST_ASSIGN_OR_RETURN(XGBoostModelSummary summary, CheckXGBoostModel(bytes));
  if (summary.num_class > 1 && summary.num_target > 1) {
    return InvalidArgumentError("multi-class models with several targets are not supported");
  }
  DataType input_type = DataType::kFp32;
  if (!options.inputs.empty() && options.inputs[0].type == DataType::kFp64) {
    input_type = DataType::kFp64;
  }

  auto booster = std::make_unique<xgb::Booster>();
  if (XGBoosterCreate(nullptr, 0, booster->out()) != 0) {
    return InternalError("XGBoost could not create a booster: " + xgb::LastError());
  }
  xgb::ForwardLogOnThisThread();
  if (XGBoosterLoadModelFromBuffer(booster->get(), bytes.data(), bytes.size()) != 0) {
    return InvalidArgumentError("XGBoost cannot read the model: " + xgb::LastError());
  }
  const std::string threads = std::to_string(options.threads);
  if (XGBoosterSetParam(booster->get(), "nthread", threads.c_str()) != 0) {
    return InternalError("XGBoost refused nthread: " + xgb::LastError());
  }
  bst_ulong features = 0;
  if (XGBoosterGetNumFeature(booster->get(), &features) != 0) {
    return InvalidArgumentError("XGBoost cannot tell the feature count: " + xgb::LastError());
  }
  if (features != static_cast<bst_ulong>(summary.num_feature)) {
    return InvalidArgumentError("XGBoost reads " + std::to_string(features) +
                                " features where the model says " +
                                std::to_string(summary.num_feature));
  }

  auto model = std::make_unique<XGBoostModel>(std::move(booster), summary, margin, input_type);
  Status probe = model->Probe();
  if (!probe.ok()) {
    // A model that passed the checks but that XGBoost cannot score (for example an objective
    // whose parameters XGBoost rejects only when it configures itself).
    return InvalidArgumentError(std::string(probe.message()));
  }
  OUTPOST_RETURN_IF_ERROR(model->BuildSignature(options));
  return std::unique_ptr<Model>(std::move(model));
}

}  // namespace

Result<std::unique_ptr<Model>> LoadXGBoostModelFromBytes(std::string_view bytes,
                                                         const XGBoostOptions& options) {
  try {
    return Load(bytes, options);
  } catch (const std::bad_alloc&) {
    return ResourceExhaustedError("out of memory while loading an XGBoost model");
  } catch (const std::exception& e) {
    return InternalError(std::string("loading an XGBoost model failed: ") + e.what());
  }
}

Result<std::unique_ptr<Model>> LoadXGBoostModel(const std::string& path,
                                                const XGBoostOptions& options) {
  Result<std::string> bytes = ReadFile(path, options.max_file_bytes);
  if (!bytes.ok()) {
    Status s = bytes.status();
    if (s.code() == StatusCode::kResourceExhausted) {
      return InvalidArgumentError(std::string(s.message()));
    }
    return s.WithContext("loading XGBoost model");
  }
  Result<std::unique_ptr<Model>> model = LoadXGBoostModelFromBytes(*bytes, options);
  if (!model.ok()) return model.status().WithContext("XGBoost model \"" + path + "\"");
  return model;
}

namespace xgb {

std::string LastError() {
  const char* e = XGBGetLastError();
  std::string message = (e != nullptr && *e != '\0') ? e : "unknown XGBoost error";
  size_t newline = message.find('\n');
  if (newline != std::string::npos) message.resize(newline);
  return message;
}

void ForwardLogOnThisThread() {
  XGBRegisterLogCallback(
      [](const char* message) { OUTPOST_LOG(kWarning) << "xgboost: " << message; });
}

}  // namespace xgb
}  // namespace outpost::engine
