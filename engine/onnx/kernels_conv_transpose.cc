// ConvTranspose over any number of spatial dimensions: pads, output_padding, output_shape,
// auto_pad, groups, dilations. FLOAT only.
//
// Per batch entry and group the input is multiplied by the weights once (Wᵀ·X with the packed
// GEMM, one column per input position) and the columns are scattered into the output
// (col2im), which starts from the bias.
#include <algorithm>
#include <array>

#include "engine/onnx/gemm.h"
#include "engine/onnx/kernel_util.h"

namespace outpost::engine::onnx {
namespace {

struct TransposeAttrs {
  std::vector<int64_t> kernel, strides, dilations, pads, output_padding, output_shape;
  std::string auto_pad = "NOTSET";
  int64_t group = 1;
};

// The geometry of one ConvTranspose for given input dims: kernel, strides, dilations, pads
// (begins then ends) and the output's spatial dims, all of `k` entries.
struct TransposeGeometry {
  size_t k = 0;
  std::array<int64_t, kMaxRank> kernel{}, strides{}, dilations{}, pad_begin{}, out{};
};

Result<TransposeGeometry> ResolveTranspose(const TransposeAttrs& a, std::span<const int64_t> in,
                                           std::span<const int64_t> w_kernel) {
  TransposeGeometry g;
  const size_t k = in.size();
  g.k = k;
  if (k > kMaxRank) return InvalidArgumentError("too many spatial dimensions");
  auto fits = [k](const std::vector<int64_t>& v, size_t n) { return v.empty() || v.size() == n * k; };
  if (!fits(a.kernel, 1) || !fits(a.strides, 1) || !fits(a.dilations, 1) || !fits(a.pads, 2) ||
      !fits(a.output_padding, 1)) {
    return InvalidArgumentError(
        "kernel_shape, strides, dilations, pads or output_padding do not match the input rank");
  }
  if (!a.output_shape.empty() && a.output_shape.size() != k && a.output_shape.size() != k + 2) {
    return InvalidArgumentError("output_shape does not match the input rank");
  }
  for (size_t i = 0; i < k; ++i) {
    g.kernel[i] = a.kernel.empty() ? w_kernel[i] : a.kernel[i];
    if (g.kernel[i] != w_kernel[i]) {
      return InvalidArgumentError("kernel_shape does not match the weights");
    }
    g.strides[i] = a.strides.empty() ? 1 : a.strides[i];
    g.dilations[i] = a.dilations.empty() ? 1 : a.dilations[i];
    const int64_t opad = a.output_padding.empty() ? 0 : a.output_padding[i];
    int64_t pb = a.pads.empty() ? 0 : a.pads[i];
    int64_t pe = a.pads.empty() ? 0 : a.pads[k + i];
    if (g.strides[i] < 1 || g.strides[i] > (1 << 20) || g.dilations[i] < 1 ||
        g.dilations[i] > (1 << 20) || g.kernel[i] > (1 << 20) || opad < 0 || opad > (1 << 20) ||
        pb < 0 || pe < 0 || pb > (1 << 20) || pe > (1 << 20) || in[i] > (int64_t{1} << 32)) {
      return InvalidArgumentError("kernel, stride, dilation, pad or output_padding out of range");
    }
    const int64_t full = g.strides[i] * (in[i] - 1) + opad + (g.kernel[i] - 1) * g.dilations[i] + 1;
    int64_t want = -1;
    if (!a.output_shape.empty()) {
      want = a.output_shape[a.output_shape.size() - k + i];
    } else if (a.auto_pad == "SAME_UPPER" || a.auto_pad == "SAME_LOWER") {
      want = in[i] * g.strides[i];
    }
    if (want >= 0) {
      // An output_shape beyond the full output leaves the extra positions at the bias.
      const int64_t total = std::max<int64_t>(0, full - want);
      // SAME_UPPER puts the odd padding at the end, the others at the beginning.
      pb = a.auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      pe = full - want - pb;
    } else if (a.auto_pad == "VALID") {
      pb = pe = 0;
    }
    g.pad_begin[i] = pb;
    g.out[i] = full - pb - pe;
    if (g.out[i] < 0) return InvalidArgumentError("the pads are larger than the output");
  }
  return g;
}

class ConvTransposeKernel : public Kernel {
 public:
  explicit ConvTransposeKernel(TransposeAttrs a) : a_(std::move(a)) {}

  Status Infer(InferContext& ctx) const override {
    if (ctx.input_type(0) != DataType::kFp32 || ctx.input_type(1) != DataType::kFp32 ||
        (ctx.has_input(2) && ctx.input_type(2) != DataType::kFp32)) {
      return UnimplementedError("ConvTranspose supports FLOAT only");
    }
    const Shape& x = ctx.input_shape(0);
    const Shape& w = ctx.input_shape(1);
    if (x.size() < 3 || w.size() != x.size()) {
      return InvalidArgumentError("X and W must have the same rank, at least 3");
    }
    const int64_t c = x[1];
    if (a_.group < 1 || w[0] != c || c % a_.group != 0) {
      return InvalidArgumentError("W " + ShapeToString(w) + " does not match X " +
                                  ShapeToString(x) + " and group " + std::to_string(a_.group));
    }
    const int64_t m = w[1] * a_.group;
    if (ctx.has_input(2) && ctx.input_shape(2) != Shape{m}) {
      return InvalidArgumentError("B must have one value per output channel");
    }
    OUTPOST_ASSIGN_OR_RETURN(TransposeGeometry g, ResolveTranspose(a_, std::span(x).subspan(2),
                                                                   std::span(w).subspan(2)));
    Shape out{x[0], m};
    out.insert(out.end(), g.out.begin(), g.out.begin() + static_cast<int64_t>(g.k));
    OUTPOST_ASSIGN_OR_RETURN(int64_t p_in, CheckedElements(std::span(x).subspan(2)));
    OUTPOST_ASSIGN_OR_RETURN(int64_t kernel_size, CheckedElements(std::span(w).subspan(2)));
    OUTPOST_RETURN_IF_ERROR(CheckedElements(out).status());
    const int64_t rows = w[1] * kernel_size;
    if (rows > (int64_t{1} << 24) || p_in > (int64_t{1} << 24) ||
        rows * p_in > (int64_t{1} << 28)) {
      return ResourceExhaustedError("the transposed convolution's columns are too large");
    }
    ctx.RequestScratch((static_cast<size_t>(rows * p_in) + 16 + PackedSize(c / a_.group, p_in)) *
                       sizeof(float) + 64);
    ctx.SetOutput(0, DataType::kFp32, std::move(out));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    const TensorRef& w = ctx.input(1);
    const TensorRef& y = ctx.output(0);
    OUTPOST_ASSIGN_OR_RETURN(TransposeGeometry g,
                             ResolveTranspose(a_, x.shape.subspan(2), w.shape.subspan(2)));
    const size_t k = g.k;
    const int64_t n = x.shape[0], c = x.shape[1], mg = w.shape[1], m = mg * a_.group;
    const int64_t cg = c / a_.group;
    const int64_t p_in = DimProduct(x.shape, 2, x.rank());
    const int64_t p_out = DimProduct(y.shape, 2, y.rank());
    const int64_t kernel_size = DimProduct(w.shape, 2, w.rank());
    const int64_t rows = mg * kernel_size;
    auto* cols = reinterpret_cast<float*>(
        (reinterpret_cast<uintptr_t>(ctx.scratch().data()) + 63) / 64 * 64);
    float* packed = cols + (rows * p_in + 15) / 16 * 16;
    const float* bias = ctx.has_input(2) ? ctx.input(2).get<float>() : nullptr;
    float* yv = y.mut<float>();
    for (int64_t ch = 0; ch < n * m; ++ch) {
      std::fill_n(yv + ch * p_out, p_out, bias != nullptr ? bias[ch % m] : 0.0f);
    }
    if (p_in == 0 || rows == 0) return Status();
    std::array<int64_t, kMaxRank> kpos{}, ipos{};
    for (int64_t b = 0; b < n; ++b) {
      for (int64_t grp = 0; grp < a_.group; ++grp) {
        const float* xg = x.get<float>() + (b * c + grp * cg) * p_in;
        const float* wg = w.get<float>() + grp * cg * rows;
        // cols[(oc, kernel offset), input position] = sum over input channels.
        PackB(xg, p_in, false, cg, p_in, packed);
        GemmPacked(rows, p_in, cg, wg, 1, rows, packed, cols, p_in, 1.0f, false, nullptr);
        float* out = yv + (b * m + grp * mg) * p_out;
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t oc = r / kernel_size;
          int64_t rem = r % kernel_size;
          for (size_t d = k; d-- > 0;) {
            kpos[d] = rem % g.kernel[d];
            rem /= g.kernel[d];
          }
          const float* src = cols + r * p_in;
          float* plane = out + oc * p_out;
          if (k == 2) {
            // Images: whole rows at a time.
            const int64_t in_h = x.shape[2], in_w = x.shape[3];
            for (int64_t ih = 0; ih < in_h; ++ih) {
              const int64_t oh = ih * g.strides[0] - g.pad_begin[0] + kpos[0] * g.dilations[0];
              if (oh < 0 || oh >= g.out[0]) continue;
              const float* srow = src + ih * in_w;
              float* drow = plane + oh * g.out[1];
              const int64_t shift = kpos[1] * g.dilations[1] - g.pad_begin[1];
              for (int64_t iw = 0; iw < in_w; ++iw) {
                const int64_t ow = iw * g.strides[1] + shift;
                if (ow >= 0 && ow < g.out[1]) drow[ow] += srow[iw];
              }
            }
            continue;
          }
          std::fill_n(ipos.begin(), k, 0);
          for (int64_t ip = 0; ip < p_in; ++ip) {
            int64_t off = 0;
            bool inside = true;
            for (size_t d = 0; d < k; ++d) {
              const int64_t pos = ipos[d] * g.strides[d] - g.pad_begin[d] + kpos[d] * g.dilations[d];
              inside = inside && pos >= 0 && pos < g.out[d];
              off = off * g.out[d] + pos;
            }
            if (inside) plane[off] += src[ip];
            for (size_t d = k; d-- > 0;) {
              if (++ipos[d] < x.shape[2 + d]) break;
              ipos[d] = 0;
            }
          }
        }
      }
    }
    return Status();
  }

 private:
  TransposeAttrs a_;
};

Result<std::unique_ptr<Kernel>> MakeConvTranspose(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(2, 3));
  TransposeAttrs a;
  OUTPOST_ASSIGN_OR_RETURN(a.kernel, ctx.Ints("kernel_shape"));
  OUTPOST_ASSIGN_OR_RETURN(a.strides, ctx.Ints("strides"));
  OUTPOST_ASSIGN_OR_RETURN(a.dilations, ctx.Ints("dilations"));
  OUTPOST_ASSIGN_OR_RETURN(a.pads, ctx.Ints("pads"));
  OUTPOST_ASSIGN_OR_RETURN(a.output_padding, ctx.Ints("output_padding"));
  OUTPOST_ASSIGN_OR_RETURN(a.output_shape, ctx.Ints("output_shape"));
  OUTPOST_ASSIGN_OR_RETURN(a.auto_pad, ctx.String("auto_pad", "NOTSET"));
  OUTPOST_ASSIGN_OR_RETURN(a.group, ctx.Int("group", 1));
  if (a.auto_pad != "NOTSET" && a.auto_pad != "VALID" && a.auto_pad != "SAME_UPPER" &&
      a.auto_pad != "SAME_LOWER") {
    return InvalidArgumentError("attribute \"auto_pad\" has unknown value \"" + a.auto_pad + "\"");
  }
  if (a.group < 1) return InvalidArgumentError("attribute \"group\" must be positive");
  return std::unique_ptr<Kernel>(new ConvTransposeKernel(std::move(a)));
}

}  // namespace

void RegisterConvTransposeKernels(KernelRegistry& r) {
  r.Add({"", "ConvTranspose", 1, 1000, &MakeConvTranspose});
}

}  // namespace outpost::engine::onnx
