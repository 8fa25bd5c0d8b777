// Sampling at computed positions: GridSample (opset 16; bilinear, nearest, bicubic; zeros,
// border, reflection padding) and RoiAlign (opsets 10 and 16; avg and max). FLOAT only, 4-D.
#include <algorithm>
#include <cmath>

#include "engine/onnx/kernel_util.h"

namespace outpost::engine::onnx {
namespace {

// ---- GridSample ----

enum class SampleMode : uint8_t { kBilinear, kNearest, kBicubic };
enum class PadMode : uint8_t { kZeros, kBorder, kReflection };

// Folds a coordinate into [twice_low / 2, twice_high / 2] by reflection.
double Reflect(double x, double twice_low, double twice_high) {
  if (twice_low == twice_high) return 0;
  const double lo = twice_low / 2, span = (twice_high - twice_low) / 2;
  x = std::fabs(x - lo);
  const double extra = std::fmod(x, span);
  const int64_t flips = static_cast<int64_t>(std::floor(x / span));
  return flips % 2 == 0 ? extra + lo : span - extra + lo;
}

class GridSampleKernel : public Kernel {
 public:
  GridSampleKernel(SampleMode mode, PadMode pad, bool align)
      : mode_(mode), pad_(pad), align_(align) {}

  Status Infer(InferContext& ctx) const override {
    if (ctx.input_type(0) != DataType::kFp32 || ctx.input_type(1) != DataType::kFp32) {
      return UnimplementedError("GridSample supports FLOAT only");
    }
    const Shape& x = ctx.input_shape(0);
    const Shape& g = ctx.input_shape(1);
    if (x.size() != 4 || g.size() != 4 || g[0] != x[0] || g[3] != 2) {
      return InvalidArgumentError("X must be [N, C, H, W] and grid [N, H_out, W_out, 2]");
    }
    if (x[2] < 1 || x[3] < 1) return InvalidArgumentError("X must not be empty in H or W");
    ctx.SetOutput(0, DataType::kFp32, {x[0], x[1], g[1], g[2]});
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    const TensorRef& grid = ctx.input(1);
    const int64_t n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3];
    const int64_t oh = grid.shape[1], ow = grid.shape[2];
    float* y = ctx.output(0).mut<float>();
    for (int64_t b = 0; b < n; ++b) {
      const float* gv = grid.get<float>() + b * oh * ow * 2;
      for (int64_t ch = 0; ch < c; ++ch) {
        const float* plane = x.get<float>() + (b * c + ch) * h * w;
        float* out = y + (b * c + ch) * oh * ow;
        for (int64_t p = 0; p < oh * ow; ++p) {
          out[p] = Sample(plane, h, w, gv[2 * p], gv[2 * p + 1]);
        }
      }
    }
    return Status();
  }

 private:
  double Unnormalize(double v, int64_t size) const {
    return align_ ? (v + 1) / 2 * static_cast<double>(size - 1)
                  : ((v + 1) * static_cast<double>(size) - 1) / 2;
  }
  // Applies the padding mode to a coordinate (border: clip; reflection: reflect, then clip).
  double Pad(double v, int64_t size) const {
    if (pad_ == PadMode::kBorder) return std::clamp(v, 0.0, static_cast<double>(size - 1));
    if (pad_ == PadMode::kReflection) {
      v = align_ ? Reflect(v, 0, 2.0 * static_cast<double>(size - 1))
                 : Reflect(v, -1, 2.0 * static_cast<double>(size) - 1);
      return std::clamp(v, 0.0, static_cast<double>(size - 1));
    }
    return v;
  }
  static float At(const float* plane, int64_t h, int64_t w, int64_t yi, int64_t xi) {
    return (yi >= 0 && yi < h && xi >= 0 && xi < w) ? plane[yi * w + xi] : 0.0f;
  }

  float Sample(const float* plane, int64_t h, int64_t w, float gx, float gy) const {
    double xf = Unnormalize(gx, w), yf = Unnormalize(gy, h);
    if (mode_ == SampleMode::kBicubic) {
      const double x0 = std::floor(xf), y0 = std::floor(yf);
      const double tx = xf - x0, ty = yf - y0;
      double wx[4], wy[4];
      Cubic(tx, wx);
      Cubic(ty, wy);
      double acc = 0;
      for (int i = 0; i < 4; ++i) {
        const double yy = Pad(y0 - 1 + i, h);
        for (int j = 0; j < 4; ++j) {
          const double xx = Pad(x0 - 1 + j, w);
          acc += wy[i] * wx[j] *
                 At(plane, h, w, static_cast<int64_t>(yy), static_cast<int64_t>(xx));
        }
      }
      return static_cast<float>(acc);
    }
    xf = Pad(xf, w);
    yf = Pad(yf, h);
    if (mode_ == SampleMode::kNearest) {
      return At(plane, h, w, static_cast<int64_t>(std::nearbyint(yf)),
                static_cast<int64_t>(std::nearbyint(xf)));
    }
    const double x0 = std::floor(xf), y0 = std::floor(yf);
    const double dx = xf - x0, dy = yf - y0;
    const int64_t xi = static_cast<int64_t>(x0), yi = static_cast<int64_t>(y0);
    return static_cast<float>((1 - dy) * ((1 - dx) * At(plane, h, w, yi, xi) +
                                          dx * At(plane, h, w, yi, xi + 1)) +
                              dy * ((1 - dx) * At(plane, h, w, yi + 1, xi) +
                                    dx * At(plane, h, w, yi + 1, xi + 1)));
  }

  // Keys' cubic convolution weights (A = -0.75) of the four taps around fraction t.
  static void Cubic(double t, double wv[4]) {
    const double a = -0.75;
    auto near = [a](double v) { return ((a + 2) * v - (a + 3)) * v * v + 1; };
    auto far = [a](double v) { return ((a * v - 5 * a) * v + 8 * a) * v - 4 * a; };
    wv[0] = far(t + 1);
    wv[1] = near(t);
    wv[2] = near(1 - t);
    wv[3] = far(2 - t);
  }

  SampleMode mode_;
  PadMode pad_;
  bool align_;
};

Result<std::unique_ptr<Kernel>> MakeGridSample(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(2, 2));
  OUTPOST_ASSIGN_OR_RETURN(std::string mode, ctx.String("mode", "bilinear"));
  OUTPOST_ASSIGN_OR_RETURN(std::string pad, ctx.String("padding_mode", "zeros"));
  OUTPOST_ASSIGN_OR_RETURN(int64_t align, ctx.Int("align_corners", 0));
  SampleMode m;
  if (mode == "bilinear" || mode == "linear") {
    m = SampleMode::kBilinear;
  } else if (mode == "nearest") {
    m = SampleMode::kNearest;
  } else if (mode == "bicubic" || mode == "cubic") {
    m = SampleMode::kBicubic;
  } else {
    return UnimplementedError("attribute \"mode\": \"" + mode + "\" is not supported");
  }
  PadMode p;
  if (pad == "zeros") {
    p = PadMode::kZeros;
  } else if (pad == "border") {
    p = PadMode::kBorder;
  } else if (pad == "reflection") {
    p = PadMode::kReflection;
  } else {
    return UnimplementedError("attribute \"padding_mode\": \"" + pad + "\" is not supported");
  }
  return std::unique_ptr<Kernel>(new GridSampleKernel(m, p, align != 0));
}

// ---- RoiAlign ----

struct RoiAttrs {
  bool max = false;
  bool half_pixel = true;
  int64_t out_h = 1, out_w = 1, sampling_ratio = 0;
  float spatial_scale = 1;
};

class RoiAlignKernel : public Kernel {
 public:
  explicit RoiAlignKernel(RoiAttrs a) : a_(a) {}

  Status Infer(InferContext& ctx) const override {
    if (ctx.input_type(0) != DataType::kFp32 || ctx.input_type(1) != DataType::kFp32) {
      return UnimplementedError("RoiAlign supports FLOAT only");
    }
    OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(2), kIndexTypes, "batch_indices"));
    const Shape& x = ctx.input_shape(0);
    const Shape& rois = ctx.input_shape(1);
    if (x.size() != 4 || rois.size() != 2 || rois[1] != 4 ||
        ctx.input_shape(2) != Shape{rois[0]}) {
      return InvalidArgumentError(
          "X must be [N, C, H, W], rois [num_rois, 4] and batch_indices [num_rois]");
    }
    if (x[2] < 1 || x[3] < 1) return InvalidArgumentError("X must not be empty in H or W");
    ctx.SetOutput(0, DataType::kFp32, {rois[0], x[1], a_.out_h, a_.out_w});
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    const TensorRef& rois = ctx.input(1);
    const TensorRef& idx = ctx.input(2);
    const int64_t n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3];
    float* y = ctx.output(0).mut<float>();
    const float offset = a_.half_pixel ? 0.5f : 0.0f;
    for (int64_t r = 0; r < rois.shape[0]; ++r) {
      const int64_t b = ReadInt64(idx, r);
      if (b < 0 || b >= n) {
        return InvalidArgumentError("batch_indices[" + std::to_string(r) + "] = " +
                                    std::to_string(b) + " is out of range");
      }
      const float* roi = rois.get<float>() + r * 4;
      const float x1 = roi[0] * a_.spatial_scale - offset, y1 = roi[1] * a_.spatial_scale - offset;
      const float x2 = roi[2] * a_.spatial_scale - offset, y2 = roi[3] * a_.spatial_scale - offset;
      float rw = x2 - x1, rh = y2 - y1;
      if (!a_.half_pixel) {
        rw = std::max(rw, 1.0f);
        rh = std::max(rh, 1.0f);
      }
      const float bin_h = rh / static_cast<float>(a_.out_h);
      const float bin_w = rw / static_cast<float>(a_.out_w);
      const int64_t grid_h = a_.sampling_ratio > 0 ? a_.sampling_ratio : GridSize(rh, a_.out_h);
      const int64_t grid_w = a_.sampling_ratio > 0 ? a_.sampling_ratio : GridSize(rw, a_.out_w);
      const float count = static_cast<float>(std::max<int64_t>(grid_h * grid_w, 1));
      for (int64_t ch = 0; ch < c; ++ch) {
        const float* plane = x.get<float>() + (b * c + ch) * h * w;
        float* out = y + (r * c + ch) * a_.out_h * a_.out_w;
        for (int64_t ph = 0; ph < a_.out_h; ++ph) {
          for (int64_t pw = 0; pw < a_.out_w; ++pw) {
            float acc = 0;
            for (int64_t iy = 0; iy < grid_h; ++iy) {
              const float yy = y1 + static_cast<float>(ph) * bin_h +
                               (static_cast<float>(iy) + 0.5f) * bin_h / static_cast<float>(grid_h);
              for (int64_t ix = 0; ix < grid_w; ++ix) {
                const float xx = x1 + static_cast<float>(pw) * bin_w +
                                 (static_cast<float>(ix) + 0.5f) * bin_w /
                                     static_cast<float>(grid_w);
                const float v = Bilinear(plane, h, w, yy, xx);
                acc = a_.max ? ((iy == 0 && ix == 0) ? v : std::max(acc, v)) : acc + v;
              }
            }
            out[ph * a_.out_w + pw] = a_.max ? acc : acc / count;
          }
        }
      }
    }
    return Status();
  }

 private:
  // Samples per bin along one axis when sampling_ratio is 0: ceil(roi / bins), bounded so
  // that a hostile box cannot stall the run.
  static int64_t GridSize(float roi, int64_t bins) {
    const float v = std::ceil(roi / static_cast<float>(bins));
    if (!(v > 0)) return 0;
    return v < 1024 ? static_cast<int64_t>(v) : 1024;
  }

  // Bilinear sample at (yy, xx); 0 outside [-1, size]. Under mode max, ONNX Runtime's rule:
  // the largest of the four weighted taps.
  float Bilinear(const float* plane, int64_t h, int64_t w, float yy, float xx) const {
    if (yy < -1.0f || yy > static_cast<float>(h) || xx < -1.0f || xx > static_cast<float>(w)) {
      return 0.0f;
    }
    yy = std::max(yy, 0.0f);
    xx = std::max(xx, 0.0f);
    int64_t y0 = static_cast<int64_t>(yy), x0 = static_cast<int64_t>(xx), y1, x1;
    if (y0 >= h - 1) {
      y0 = y1 = h - 1;
      yy = static_cast<float>(y0);
    } else {
      y1 = y0 + 1;
    }
    if (x0 >= w - 1) {
      x0 = x1 = w - 1;
      xx = static_cast<float>(x0);
    } else {
      x1 = x0 + 1;
    }
    const float ly = yy - static_cast<float>(y0), lx = xx - static_cast<float>(x0);
    const float hy = 1 - ly, hx = 1 - lx;
    const float v1 = hy * hx * plane[y0 * w + x0], v2 = hy * lx * plane[y0 * w + x1];
    const float v3 = ly * hx * plane[y1 * w + x0], v4 = ly * lx * plane[y1 * w + x1];
    if (a_.max) return std::max(std::max(v1, v2), std::max(v3, v4));
    return v1 + v2 + v3 + v4;
  }

  RoiAttrs a_;
};

Result<std::unique_ptr<Kernel>> MakeRoiAlign(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(3, 3));
  RoiAttrs a;
  OUTPOST_ASSIGN_OR_RETURN(std::string mode, ctx.String("mode", "avg"));
  if (mode != "avg" && mode != "max") {
    return InvalidArgumentError("attribute \"mode\" has unknown value \"" + mode + "\"");
  }
  a.max = mode == "max";
  OUTPOST_ASSIGN_OR_RETURN(std::string tr, ctx.String("coordinate_transformation_mode",
                                                      ctx.opset() >= 16 ? "half_pixel"
                                                                        : "output_half_pixel"));
  if (tr != "half_pixel" && tr != "output_half_pixel") {
    return InvalidArgumentError("attribute \"coordinate_transformation_mode\" has unknown value \"" +
                                tr + "\"");
  }
  a.half_pixel = tr == "half_pixel";
  OUTPOST_ASSIGN_OR_RETURN(a.out_h, ctx.Int("output_height", 1));
  OUTPOST_ASSIGN_OR_RETURN(a.out_w, ctx.Int("output_width", 1));
  OUTPOST_ASSIGN_OR_RETURN(a.sampling_ratio, ctx.Int("sampling_ratio", 0));
  OUTPOST_ASSIGN_OR_RETURN(a.spatial_scale, ctx.Float("spatial_scale", 1.0f));
  if (a.out_h < 1 || a.out_w < 1 || a.out_h > (1 << 16) || a.out_w > (1 << 16)) {
    return InvalidArgumentError("attributes \"output_height\" and \"output_width\" must be in [1, 65536]");
  }
  if (a.sampling_ratio < 0 || a.sampling_ratio > 1024) {
    return InvalidArgumentError("attribute \"sampling_ratio\" must be in [0, 1024]");
  }
  return std::unique_ptr<Kernel>(new RoiAlignKernel(a));
}

}  // namespace

void RegisterSampleKernels(KernelRegistry& r) {
  r.Add({"", "GridSample", 16, 1000, &MakeGridSample});
  r.Add({"", "RoiAlign", 10, 1000, &MakeRoiAlign});
}

}  // namespace outpost::engine::onnx
