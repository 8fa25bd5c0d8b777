// XGBoost JSON model -> ONNX model, so that models retrained by Outpost (XGBoost 1.7) run on
// the ONNX engine, and on any ONNX runtime. The layout is in FORMAT.md: one
// TreeEnsembleRegressor holding the margin, then the objective's link, giving exactly what
// XGBoost's predict() returns, under the XGBoost backend's signature (input "input"
// FLOAT [N, F], output "output").
//
// The document is first checked with CheckXGBoostModel (engine/xgboost_model_check.h), so a
// malformed or hostile file is refused with the path of the fault. Pure function;
// thread-safe.
#ifndef OUTPOST_ENGINE_ONNX_XGBOOST_TO_ONNX_H_
#define OUTPOST_ENGINE_ONNX_XGBOOST_TO_ONNX_H_

#include <string>
#include <string_view>

#include "base/status.h"

namespace outpost::engine::onnx {

// Returns the serialized ONNX model. Errors: InvalidArgument for a document that is not a
// valid XGBoost model; Unimplemented for UBJSON, gblinear, categorical splits and objectives
// outside FORMAT.md's table.
Result<std::string> ConvertXGBoostToOnnx(std::string_view xgboost_json);

}  // namespace outpost::engine::onnx

#endif  // OUTPOST_ENGINE_ONNX_XGBOOST_TO_ONNX_H_
