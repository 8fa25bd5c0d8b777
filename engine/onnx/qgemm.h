// 8-bit integer matrix multiplication for MatMulInteger and QLinearMatMul: C = A · B with A
// UINT8 and B INT8 (the layout of dynamically quantised models), the raw products summed in
// 32-bit integers. With AVX-512 VNNI (vpdpbusd) four products go into each lane per
// instruction; other CPUs run a portable loop. Chosen at run time from the CPU's features.
// No allocation: the caller gives QGemmScratchBytes() bytes of 64-byte aligned scratch.
// Exact for K <= kQGemmMaxK (no 32-bit overflow: 255 * 128 * 4 per lane step).
#ifndef OUTPOST_ENGINE_ONNX_QGEMM_H_
#define OUTPOST_ENGINE_ONNX_QGEMM_H_

#include <cstddef>
#include <cstdint>

namespace outpost::engine::onnx {

inline constexpr int64_t kQGemmMaxK = 1 << 15;

// Whether this CPU runs the VNNI kernel.
bool QGemmHasVnni();

size_t QGemmScratchBytes(int64_t m, int64_t n, int64_t k);

// B (K x N, row-major) packed for the kernels: QGemmPackedBBytes(n, k) bytes. Constant
// weights are packed once, when the model is compiled.
size_t QGemmPackedBBytes(int64_t n, int64_t k);
void QGemmPackB(int64_t n, int64_t k, const int8_t* b, int8_t* packed);

// c[i * ldc + j] = sum_p a[i * k + p] * b[p * n + j] (A M x K, B K x N, row-major).
// `vnni` false forces the portable kernel (tests).
void QGemmU8S8(int64_t m, int64_t n, int64_t k, const uint8_t* a, const int8_t* b, int32_t* c,
               int64_t ldc, void* scratch, bool vnni = true);
// As QGemmU8S8 with B packed by QGemmPackB; scratch: QGemmScratchBytes().
void QGemmU8S8Packed(int64_t m, int64_t n, int64_t k, const uint8_t* a, const int8_t* packed_b,
                     int32_t* c, int64_t ldc, void* scratch, bool vnni = true);

// QuantizeLinear of FLOAT over one run of n elements with one scale and zero point, to UINT8
// (`to_signed` false) or INT8 at y: x / scale divided in float (as the definition's reference
// does; a multiplication by 1 / scale would round some quotients differently), rounded half
// to even, plus the zero point, saturated; NaN gives 0 (as the reference kernel does).
void QuantizeRow(const float* x, int64_t n, float scale, int32_t zero_point, bool to_signed,
                 void* y);
// DequantizeLinear to FLOAT of n UINT8 (`from_signed` false) or INT8 values: (x - zero point)
// * scale, one rounding (as the product in double rounded to float).
void DequantizeRow(const void* x, int64_t n, float scale, int32_t zero_point, bool from_signed,
                   float* y);

// One image and group of a 2-D convolution over UINT8 x: channels, input and kernel size,
// output size, strides, dilations, leading pads.
struct QIm2ColShape {
  int64_t c, h, w, kh, kw, oh, ow, sh, sw, dh, dw, pt, pl;
};
// cols[pos][(ky, kx, ch)] (padding holds the zero point xz; weights must be ordered the same
// way) and each row's sum in rowsum; xt: c * h * w bytes of scratch for x channels-last.
// `flip`: x holds INT8, read as UINT8 x + 128 (xz is then the UINT8 zero point).
void QIm2Col(const uint8_t* x, const QIm2ColShape& s, uint8_t xz, bool flip, uint8_t* xt,
             uint8_t* cols, int64_t* rowsum);

// Per output channel of a QLinear kernel: the accumulator's constant part (bias and zero-point
// corrections), the weight zero point (times a position's row sum) and the scale
// x_scale * w_scale / y_scale; and the output zero point.
struct QRequantizeParams {
  const double* base;
  const double* wz;
  const double* scale;
  double yzp;
};
// y[oc][pos] for mg channels and p positions from the GEMM's raw[pos][oc]:
// (base + raw - wz * rowsum[pos]) * scale rounded half to even, plus yzp, saturated to the
// 8-bit type; NaN gives 0. Equal to Saturate(nearbyint(acc * scale) + yzp) in double.
void QRequantize(const int32_t* raw, int64_t mg, int64_t p, const int64_t* rowsum,
                 const QRequantizeParams& q, int8_t* y);
void QRequantize(const int32_t* raw, int64_t mg, int64_t p, const int64_t* rowsum,
                 const QRequantizeParams& q, uint8_t* y);

}  // namespace outpost::engine::onnx

#endif  // OUTPOST_ENGINE_ONNX_QGEMM_H_
