// Single-precision matrix multiplication for Gemm, MatMul and the fused Dense kernel.
//
// The right-hand matrix is packed once into column panels of kPanel floats (K rows each,
// zero-padded), so the micro-kernel reads it contiguously; constant weights are packed when
// a model is compiled, others into scratch memory per run. Row-major throughout.
// Thread-compatible: no state.
#ifndef OUTPOST_ENGINE_ONNX_GEMM_H_
#define OUTPOST_ENGINE_ONNX_GEMM_H_

#include <cstddef>
#include <cstdint>

namespace outpost::engine::onnx {

inline constexpr int64_t kPanel = 16;

// Floats needed to pack a K x N matrix.
inline size_t PackedSize(int64_t k, int64_t n) {
  return static_cast<size_t>(k) * static_cast<size_t>((n + kPanel - 1) / kPanel * kPanel);
}

// Packs B (K x N with row stride ldb; or, when `trans`, B^T given as N x K with row stride
// ldb) into `packed` (PackedSize(k, n) floats).
void PackB(const float* b, int64_t ldb, bool trans, int64_t k, int64_t n, float* packed);

// C[i, j] = alpha * sum_k A[i, k] * B[k, j] + (accumulate ? C[i, j] : 0) + (bias ? bias[j] : 0)
// for an M x K matrix A whose element (i, k) is a[i * a_row + k * a_col].
void GemmPacked(int64_t m, int64_t n, int64_t k, const float* a, int64_t a_row, int64_t a_col,
                const float* packed_b, float* c, int64_t ldc, float alpha, bool accumulate,
                const float* bias);

}  // namespace outpost::engine::onnx

#endif  // OUTPOST_ENGINE_ONNX_GEMM_H_
