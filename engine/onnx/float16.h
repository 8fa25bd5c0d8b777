// 16-bit floating-point element types of the ONNX engine: IEEE half (FLOAT16) and bfloat16.
//
// Both are stored as their bit pattern and compute through float: arithmetic and comparisons
// convert to float, and assignment from float rounds to nearest even (NaN stays NaN). Kernels
// templated on an element type T work unchanged with T = Half or BFloat16.
#ifndef OUTPOST_ENGINE_ONNX_FLOAT16_H_
#define OUTPOST_ENGINE_ONNX_FLOAT16_H_

#include <cstdint>
#include <cstring>

namespace outpost::engine::onnx {

// float <-> IEEE half bits, round to nearest even; overflow becomes infinity.
uint16_t FloatToHalfBits(float value);
float HalfBitsToFloat(uint16_t bits);

inline uint16_t FloatToBFloat16Bits(float value) {
  uint32_t u;
  std::memcpy(&u, &value, sizeof(u));
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float BFloat16BitsToFloat(uint16_t bits) {
  uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

struct Half {
  uint16_t bits = 0;
  Half() = default;
  Half(float f) : bits(FloatToHalfBits(f)) {}  // NOLINT(google-explicit-constructor)
  operator float() const { return HalfBitsToFloat(bits); }  // NOLINT
};

struct BFloat16 {
  uint16_t bits = 0;
  BFloat16() = default;
  BFloat16(float f) : bits(FloatToBFloat16Bits(f)) {}  // NOLINT(google-explicit-constructor)
  operator float() const { return BFloat16BitsToFloat(bits); }  // NOLINT
};

static_assert(sizeof(Half) == 2 && sizeof(BFloat16) == 2);

}  // namespace outpost::engine::onnx

#endif  // OUTPOST_ENGINE_ONNX_FLOAT16_H_
