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
#include <vector>

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

// ---- Weight-packed GEMM (convolutions) ----
//
// Y[M x N] = W[M x K] · X[K x N] with the weights W packed once, when a model is compiled,
// into strips of `mr` rows (element (r, k) of strip s at s * mr * K + k * mr + r, zero
// padded), and X packed per block into column panels of `nr` floats (element (k, j) of panel p
// at p * kc * nr + k * nr + j, zero padded). Vectors run along N, the output positions of a
// convolution, so the output stays NCHW. One micro-kernel per instruction set, each compiled
// with its own target attribute and chosen at run time from the CPU's features
// (BestGemmArch), so the same binary runs on CPUs without AVX-512 or AVX2.

// One K block of the product: C[m x n] (+)= A[:, k0:k0+kc] · B.
struct GemmBlockArgs {
  int64_t m = 0, n = 0, kc = 0;
  const float* a = nullptr;  // packed A at column k0 of strip 0
  int64_t a_strip = 0;       // floats from one strip to the next (mr * K)
  const float* b = nullptr;  // kc x n in panels of nr
  float* c = nullptr;
  int64_t ldc = 0;
  const float* bias = nullptr;  // one per row, added when !accumulate; may be null
  bool accumulate = false;      // add to C instead of overwriting it
};

// The instruction sets the micro-kernels are compiled for.
enum class Isa : uint8_t { kPortable, kAvx2, kAvx512 };

struct GemmArch {
  const char* name;  // "avx512", "avx2", "portable"
  Isa isa;
  int mr;
  int nr;
  void (*block)(const GemmBlockArgs& args);
};

// The fastest micro-kernel this CPU runs (decided once, thread-safe).
const GemmArch& BestGemmArch();
// Every micro-kernel this CPU runs, fastest first (tests and benchmarks compare them).
std::vector<const GemmArch*> AvailableGemmArchs();

// Floats needed to pack an M x K matrix for `arch`.
size_t PackedASize(const GemmArch& arch, int64_t m, int64_t k);
// Packs A (M x K, row stride lda), each row scaled by row_scale[r] when it is not null.
void PackA(const GemmArch& arch, const float* a, int64_t lda, int64_t m, int64_t k,
           const float* row_scale, float* packed);

}  // namespace outpost::engine::onnx

#endif  // OUTPOST_ENGINE_ONNX_GEMM_H_
