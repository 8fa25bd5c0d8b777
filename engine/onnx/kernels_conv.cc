// Convolution and pooling over any number of spatial dimensions (1-D signals first): Conv
// (im2col + the packed GEMM), MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool.
// FLOAT only.
#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/onnx/gemm.h"
#include "engine/onnx/kernel_util.h"

namespace outpost::engine::onnx {
namespace {

// Spatial geometry shared by Conv and the pools.
struct Window {
  std::vector<int64_t> kernel, strides, dilations, pads;  // pads: begins then ends
  std::string auto_pad = "NOTSET";
  bool ceil_mode = false;
};

Result<Window> ReadWindow(const KernelBuildContext& ctx, bool needs_kernel) {
  Window w;
  OUTPOST_ASSIGN_OR_RETURN(w.kernel, ctx.Ints("kernel_shape"));
  OUTPOST_ASSIGN_OR_RETURN(w.strides, ctx.Ints("strides"));
  OUTPOST_ASSIGN_OR_RETURN(w.dilations, ctx.Ints("dilations"));
  OUTPOST_ASSIGN_OR_RETURN(w.pads, ctx.Ints("pads"));
  OUTPOST_ASSIGN_OR_RETURN(w.auto_pad, ctx.String("auto_pad", "NOTSET"));
  OUTPOST_ASSIGN_OR_RETURN(int64_t ceil_mode, ctx.Int("ceil_mode", 0));
  w.ceil_mode = ceil_mode != 0;
  if (needs_kernel && w.kernel.empty()) return InvalidArgumentError("kernel_shape is required");
  if (w.auto_pad != "NOTSET" && w.auto_pad != "VALID" && w.auto_pad != "SAME_UPPER" &&
      w.auto_pad != "SAME_LOWER") {
    return InvalidArgumentError("unknown auto_pad \"" + w.auto_pad + "\"");
  }
  return w;
}

// Resolves strides, dilations and pads for `spatial` input dims and the kernel; returns the
// output spatial dims.
Result<Shape> Resolve(const Window& w, std::span<const int64_t> in, std::vector<int64_t>& kernel,
                      std::vector<int64_t>& strides, std::vector<int64_t>& dilations,
                      std::vector<int64_t>& pads) {
  const size_t k = in.size();
  if (kernel.size() != k) return InvalidArgumentError("kernel_shape does not match the input rank");
  strides = w.strides.empty() ? std::vector<int64_t>(k, 1) : w.strides;
  dilations = w.dilations.empty() ? std::vector<int64_t>(k, 1) : w.dilations;
  pads = w.pads.empty() ? std::vector<int64_t>(2 * k, 0) : w.pads;
  if (strides.size() != k || dilations.size() != k || pads.size() != 2 * k) {
    return InvalidArgumentError("strides, dilations or pads do not match the input rank");
  }
  // Bounded so that a hostile kernel_shape cannot overflow or stall the window loops.
  OUTPOST_ASSIGN_OR_RETURN(int64_t window, CheckedElements(kernel));
  if (window > (int64_t{1} << 24)) return InvalidArgumentError("the kernel window is too large");
  Shape out(k);
  for (size_t i = 0; i < k; ++i) {
    if (kernel[i] < 1 || strides[i] < 1 || dilations[i] < 1 || kernel[i] > (1 << 20) ||
        dilations[i] > (1 << 20) || pads[i] < 0 || pads[k + i] < 0 || pads[i] > (1 << 20) ||
        pads[k + i] > (1 << 20)) {
      return InvalidArgumentError("kernel, stride, dilation or pad out of range");
    }
    const int64_t span = dilations[i] * (kernel[i] - 1) + 1;
    if (w.auto_pad == "SAME_UPPER" || w.auto_pad == "SAME_LOWER") {
      out[i] = (in[i] + strides[i] - 1) / strides[i];
      const int64_t total = std::max<int64_t>(0, (out[i] - 1) * strides[i] + span - in[i]);
      const int64_t small = total / 2;
      pads[i] = w.auto_pad == "SAME_UPPER" ? small : total - small;
      pads[k + i] = total - pads[i];
    } else {
      if (w.auto_pad == "VALID") pads[i] = pads[k + i] = 0;
      const int64_t room = in[i] + pads[i] + pads[k + i] - span;
      if (room < 0) return InvalidArgumentError("the kernel is larger than the padded input");
      out[i] = (w.ceil_mode ? (room + strides[i] - 1) / strides[i] : room / strides[i]) + 1;
      // A window may not start inside the end padding only (ceil_mode rule).
      if (w.ceil_mode && (out[i] - 1) * strides[i] >= in[i] + pads[i]) --out[i];
    }
  }
  return out;
}

// ---- Conv ----

class ConvKernel : public Kernel {
 public:
  ConvKernel(Window w, int64_t group) : w_(std::move(w)), group_(group) {}

  Status Infer(InferContext& ctx) const override {
    if (ctx.input_type(0) != DataType::kFp32 || ctx.input_type(1) != DataType::kFp32) {
      return UnimplementedError("Conv supports FLOAT only");
    }
    const Shape& x = ctx.input_shape(0);
    const Shape& wt = ctx.input_shape(1);
    if (x.size() < 3 || wt.size() != x.size()) {
      return InvalidArgumentError("X and W must have the same rank, at least 3");
    }
    const int64_t c = x[1], m = wt[0];
    if (group_ < 1 || c % group_ != 0 || m % group_ != 0 || wt[1] != c / group_) {
      return InvalidArgumentError("channels do not match the weights and group");
    }
    if (ctx.has_input(2) && ctx.input_shape(2) != Shape{m}) {
      return InvalidArgumentError("B must have one value per output channel");
    }
    std::vector<int64_t> kernel = w_.kernel.empty() ? Shape(wt.begin() + 2, wt.end()) : w_.kernel;
    std::vector<int64_t> strides, dilations, pads;
    OUTPOST_ASSIGN_OR_RETURN(Shape spatial,
                             Resolve(w_, std::span(x).subspan(2), kernel, strides, dilations, pads));
    Shape out{x[0], m};
    out.insert(out.end(), spatial.begin(), spatial.end());
    OUTPOST_ASSIGN_OR_RETURN(int64_t p, CheckedElements(spatial));
    const int64_t ck = (c / group_) * NumElements(kernel);
    if (ck > (int64_t{1} << 24) || p > (int64_t{1} << 24) || ck * p > (int64_t{1} << 28)) {
      return ResourceExhaustedError("the convolution's unfolded input is too large");
    }
    ctx.RequestScratch((static_cast<size_t>(ck * p) + PackedSize(ck, p)) * sizeof(float) + 64);
    ctx.SetOutput(0, DataType::kFp32, std::move(out));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    const TensorRef& wt = ctx.input(1);
    const TensorRef& y = ctx.output(0);
    const size_t k = x.rank() - 2;
    std::vector<int64_t> kernel =
        w_.kernel.empty() ? std::vector<int64_t>(wt.shape.begin() + 2, wt.shape.end()) : w_.kernel;
    std::vector<int64_t> strides, dilations, pads;
    OUTPOST_ASSIGN_OR_RETURN(Shape spatial, Resolve(w_, x.shape.subspan(2), kernel, strides,
                                                    dilations, pads));
    const int64_t n = x.shape[0], c = x.shape[1], m = wt.shape[0];
    const int64_t cg = c / group_, mg = m / group_;
    const int64_t kernel_size = NumElements(kernel);
    const int64_t ck = cg * kernel_size;
    const int64_t p = NumElements(spatial);
    const int64_t in_size = DimProduct(x.shape, 2, x.rank());
    float* cols = reinterpret_cast<float*>(ctx.scratch().data());
    float* packed = cols + ((ck * p + 15) / 16) * 16;
    const float* xv = x.get<float>();
    const float* wv = wt.get<float>();
    float* yv = y.mut<float>();
    const float* bias = ctx.has_input(2) ? ctx.input(2).get<float>() : nullptr;
    std::vector<int64_t> kpos(k), opos(k);
    for (int64_t b = 0; b < n; ++b) {
      for (int64_t g = 0; g < group_; ++g) {
        // im2col: row (channel, kernel offset), column (output position). The innermost
        // spatial dimension is filled as one strided run per row segment.
        const size_t last = k - 1;
        const int64_t inner = spatial[last];
        const int64_t segments = inner == 0 ? 0 : p / inner;
        const int64_t in_last = x.shape[2 + last];
        for (int64_t ch = 0; ch < cg; ++ch) {
          const float* plane = xv + (b * c + g * cg + ch) * in_size;
          for (int64_t ki = 0; ki < kernel_size; ++ki) {
            int64_t rem = ki;
            for (size_t d = k; d-- > 0;) {
              kpos[d] = rem % kernel[d];
              rem /= kernel[d];
            }
            float* row = cols + (ch * kernel_size + ki) * p;
            std::fill(opos.begin(), opos.end(), 0);
            const int64_t start = kpos[last] * dilations[last] - pads[last];
            const int64_t step = strides[last];
            for (int64_t sgm = 0; sgm < segments; ++sgm) {
              int64_t base = 0;
              bool inside = true;
              for (size_t d = 0; d < last; ++d) {
                const int64_t pos = opos[d] * strides[d] - pads[d] + kpos[d] * dilations[d];
                inside = inside && pos >= 0 && pos < x.shape[2 + d];
                base = base * x.shape[2 + d] + pos;
              }
              float* seg = row + sgm * inner;
              if (!inside) {
                std::fill_n(seg, inner, 0.0f);
              } else {
                const float* src = plane + base * in_last;
                for (int64_t o = 0; o < inner; ++o) {
                  const int64_t pos = start + o * step;
                  seg[o] = (pos >= 0 && pos < in_last) ? src[pos] : 0.0f;
                }
              }
              for (size_t d = last; d-- > 0;) {
                if (++opos[d] < spatial[d]) break;
                opos[d] = 0;
              }
            }
          }
        }
        PackB(cols, p, false, ck, p, packed);
        float* out = yv + (b * m + g * mg) * p;
        if (bias != nullptr) {
          for (int64_t oc = 0; oc < mg; ++oc) std::fill_n(out + oc * p, p, bias[g * mg + oc]);
        }
        GemmPacked(mg, p, ck, wv + g * mg * ck, ck, 1, packed, out, p, 1.0f, bias != nullptr,
                   nullptr);
      }
    }
    return Status();
  }

 private:
  Window w_;
  int64_t group_;
};

Result<std::unique_ptr<Kernel>> MakeConv(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(2, 3));
  OUTPOST_ASSIGN_OR_RETURN(Window w, ReadWindow(ctx, false));
  OUTPOST_ASSIGN_OR_RETURN(int64_t group, ctx.Int("group", 1));
  return std::unique_ptr<Kernel>(new ConvKernel(std::move(w), group));
}

// ---- MaxPool, AveragePool ----

class PoolKernel : public Kernel {
 public:
  PoolKernel(bool max, Window w, bool count_include_pad)
      : max_(max), w_(std::move(w)), count_include_pad_(count_include_pad) {}

  Status Infer(InferContext& ctx) const override {
    if (ctx.input_type(0) != DataType::kFp32) return UnimplementedError("pools support FLOAT only");
    if (ctx.has_output(1)) return UnimplementedError("MaxPool's Indices output is not supported");
    const Shape& x = ctx.input_shape(0);
    if (x.size() < 3) return InvalidArgumentError("X must have rank >= 3");
    std::vector<int64_t> kernel = w_.kernel, strides, dilations, pads;
    OUTPOST_ASSIGN_OR_RETURN(Shape spatial,
                             Resolve(w_, std::span(x).subspan(2), kernel, strides, dilations, pads));
    Shape out{x[0], x[1]};
    out.insert(out.end(), spatial.begin(), spatial.end());
    ctx.SetOutput(0, DataType::kFp32, std::move(out));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    const TensorRef& y = ctx.output(0);
    const size_t k = x.rank() - 2;
    std::vector<int64_t> kernel = w_.kernel, strides, dilations, pads;
    OUTPOST_ASSIGN_OR_RETURN(Shape spatial, Resolve(w_, x.shape.subspan(2), kernel, strides,
                                                    dilations, pads));
    const int64_t planes = x.shape[0] * x.shape[1];
    const int64_t in_size = DimProduct(x.shape, 2, x.rank());
    const int64_t p = NumElements(spatial);
    const int64_t kernel_size = NumElements(kernel);
    const float* xv = x.get<float>();
    float* yv = y.mut<float>();
    std::vector<int64_t> opos(k), kpos(k);
    for (int64_t pl = 0; pl < planes; ++pl) {
      const float* plane = xv + pl * in_size;
      for (int64_t o = 0; o < p; ++o) {
        int64_t orem = o;
        for (size_t d = k; d-- > 0;) {
          opos[d] = orem % spatial[d];
          orem /= spatial[d];
        }
        float acc = max_ ? -std::numeric_limits<float>::infinity() : 0.0f;
        int64_t count = 0;
        for (int64_t ki = 0; ki < kernel_size; ++ki) {
          int64_t rem = ki;
          for (size_t d = k; d-- > 0;) {
            kpos[d] = rem % kernel[d];
            rem /= kernel[d];
          }
          int64_t off = 0;
          bool inside = true;
          bool in_padded = true;  // inside input + pads (for count_include_pad)
          for (size_t d = 0; d < k; ++d) {
            const int64_t pos = opos[d] * strides[d] - pads[d] + kpos[d] * dilations[d];
            if (pos < 0 || pos >= x.shape[2 + d]) inside = false;
            if (pos < -pads[d] || pos >= x.shape[2 + d] + pads[k + d]) in_padded = false;
            off = off * x.shape[2 + d] + pos;
          }
          if (inside) {
            const float v = plane[off];
            if (max_) {
              if (v > acc || std::isnan(v)) acc = v;
            } else {
              acc += v;
            }
            ++count;
          } else if (!max_ && count_include_pad_ && in_padded) {
            ++count;
          }
        }
        yv[pl * p + o] = max_ ? acc : (count > 0 ? acc / static_cast<float>(count) : 0.0f);
      }
    }
    return Status();
  }

 private:
  bool max_;
  Window w_;
  bool count_include_pad_;
};

template <bool kMax>
Result<std::unique_ptr<Kernel>> MakePool(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectOutputs(1, 2));
  OUTPOST_ASSIGN_OR_RETURN(Window w, ReadWindow(ctx, true));
  OUTPOST_ASSIGN_OR_RETURN(int64_t include_pad, ctx.Int("count_include_pad", 0));
  OUTPOST_ASSIGN_OR_RETURN(int64_t storage_order, ctx.Int("storage_order", 0));
  if (storage_order != 0) return UnimplementedError("storage_order 1 is not supported");
  return std::unique_ptr<Kernel>(new PoolKernel(kMax, std::move(w), include_pad != 0));
}

// ---- GlobalAveragePool, GlobalMaxPool ----

template <bool kMax>
Status InferGlobal(InferContext& ctx) {
  if (ctx.input_type(0) != DataType::kFp32) return UnimplementedError("FLOAT only");
  const Shape& x = ctx.input_shape(0);
  if (x.size() < 3) return InvalidArgumentError("X must have rank >= 3");
  Shape out(x.size(), 1);
  out[0] = x[0];
  out[1] = x[1];
  ctx.SetOutput(0, DataType::kFp32, std::move(out));
  return Status();
}

template <bool kMax>
Status ComputeGlobal(ComputeContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const int64_t planes = x.shape[0] * x.shape[1];
  const int64_t size = DimProduct(x.shape, 2, x.rank());
  const float* xv = x.get<float>();
  float* y = ctx.output(0).mut<float>();
  for (int64_t pl = 0; pl < planes; ++pl) {
    const float* v = xv + pl * size;
    float acc = kMax ? -std::numeric_limits<float>::infinity() : 0.0f;
    for (int64_t i = 0; i < size; ++i) acc = kMax ? std::max(acc, v[i]) : acc + v[i];
    y[pl] = kMax ? acc : (size > 0 ? acc / static_cast<float>(size) : 0.0f);
  }
  return Status();
}

template <bool kMax>
Result<std::unique_ptr<Kernel>> MakeGlobal(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(1, 1));
  return std::unique_ptr<Kernel>(new FunctionKernel(&InferGlobal<kMax>, &ComputeGlobal<kMax>));
}

}  // namespace

void RegisterConvKernels(KernelRegistry& r) {
  r.Add({"", "Conv", 1, 1000, &MakeConv});
  r.Add({"", "MaxPool", 1, 1000, &MakePool<true>});
  r.Add({"", "AveragePool", 1, 1000, &MakePool<false>});
  r.Add({"", "GlobalAveragePool", 1, 1000, &MakeGlobal<false>});
  r.Add({"", "GlobalMaxPool", 1, 1000, &MakeGlobal<true>});
}

}  // namespace outpost::engine::onnx
