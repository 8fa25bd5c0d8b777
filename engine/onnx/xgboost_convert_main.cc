// onnx_xgboost_convert: converts an XGBoost JSON model file to an ONNX model file (FORMAT.md).
//
//   onnx_xgboost_convert model.json model.onnx
//
// Exit status 0 on success; otherwise the reason goes to stderr and the status is 1.
#include <cstdio>
#include <string>

#include "base/file.h"
#include "engine/onnx/xgboost_to_onnx.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <model.json> <model.onnx>\n", argv[0]);
    return 2;
  }
  auto json = outpost::ReadFile(argv[1]);
  if (!json.ok()) {
    std::fprintf(stderr, "%s\n", json.status().ToString().c_str());
    return 1;
  }
  auto onnx = outpost::engine::onnx::ConvertXGBoostToOnnx(*json);
  if (!onnx.ok()) {
    std::fprintf(stderr, "%s: %s\n", argv[1], onnx.status().ToString().c_str());
    return 1;
  }
  outpost::Status st = outpost::WriteFileAtomically(argv[2], *onnx);
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.ToString().c_str());
    return 1;
  }
  return 0;
}
