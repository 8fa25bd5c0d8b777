// Convolution and pooling over any number of spatial dimensions (1-D signals first): Conv,
// MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool. FLOAT only. A Conv with constant
// weights over one or two spatial dimensions runs the fast path of conv2d.h (weights packed
// at compile time, implicit im2col, depthwise kernels, a fused epilogue); others im2col into
// scratch and run the packed GEMM.
#include "engine/onnx/kernels_conv.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <memory>
#include <mutex>

#include "engine/onnx/conv2d.h"
#include "engine/onnx/gemm.h"
#include "engine/onnx/kernel_util.h"
#include "engine/onnx/onednn_conv.h"
#include "engine/onnx/plan.h"
#include "engine/onnx/thread_pool.h"

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

// The geometry of a 1-D or 2-D convolution whose attributes Infer() has validated, without
// allocating (Compute() runs it on every call). A 1-D convolution is 2-D of height 1.
Conv2dGeom GeomOf(const Window& w, std::span<const int64_t> xs, std::span<const int64_t> ws,
                  int64_t group) {
  const size_t k = xs.size() - 2;
  int64_t in[2], ker[2], st[2], dl[2], pb[2], pe_[2], out[2];
  for (size_t i = 0; i < k; ++i) {
    in[i] = xs[2 + i];
    ker[i] = w.kernel.empty() ? ws[2 + i] : w.kernel[i];
    st[i] = w.strides.empty() ? 1 : w.strides[i];
    dl[i] = w.dilations.empty() ? 1 : w.dilations[i];
    pb[i] = w.pads.empty() ? 0 : w.pads[i];
    int64_t pe = w.pads.empty() ? 0 : w.pads[k + i];
    const int64_t span = dl[i] * (ker[i] - 1) + 1;
    if (w.auto_pad == "SAME_UPPER" || w.auto_pad == "SAME_LOWER") {
      out[i] = (in[i] + st[i] - 1) / st[i];
      const int64_t total = std::max<int64_t>(0, (out[i] - 1) * st[i] + span - in[i]);
      pb[i] = w.auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
    } else {
      if (w.auto_pad == "VALID") pb[i] = pe = 0;
      const int64_t room = in[i] + pb[i] + pe - span;
      out[i] = (w.ceil_mode ? (room + st[i] - 1) / st[i] : room / st[i]) + 1;
      if (w.ceil_mode && (out[i] - 1) * st[i] >= in[i] + pb[i]) --out[i];
    }
    pe_[i] = pe;
  }
  Conv2dGeom g;
  g.c = xs[1];
  g.m = ws[0];
  g.group = group;
  const size_t y = k == 2 ? 0 : 1;  // index of the height dimension; 1: none
  const size_t x = k - 1;
  g.h = g.oh = 1;
  if (y == 0) {
    g.h = in[0], g.oh = out[0], g.kh = ker[0], g.sh = st[0], g.dh = dl[0], g.pt = pb[0];
    g.pb = pe_[0];
  }
  g.w = in[x], g.ow = out[x], g.kw = ker[x], g.sw = st[x], g.dw = dl[x], g.pl = pb[x];
  g.pr = pe_[x];
  return g;
}

class ConvKernel : public Kernel {
 public:
  ConvKernel(Window w, int64_t group, std::unique_ptr<Conv2dWeights> fast, int threads, bool onednn)
      : w_(std::move(w)),
        group_(group),
        fast_(std::move(fast)),
        threads_(threads),
        onednn_(onednn && fast_ != nullptr) {}

  // The optimiser changes the weights and epilogue before any plan is made; a primitive
  // made earlier is dropped all the same.
  Conv2dWeights* fast() {
    ResetOnednn();
    return fast_.get();
  }
  bool has_fast() const { return fast_ != nullptr; }
  const ActParams& act() const { return act_; }
  void set_act(const ActParams& act) {
    ResetOnednn();
    act_ = act;
  }
  // Input shapes whose plans run through oneDNN.
  int OnednnShapes() const {
    std::lock_guard<std::mutex> lock(dnn_mu_);
    int n = 0;
    for (const auto& entry : dnn_) n += entry.second != nullptr ? 1 : 0;
    return n;
  }
  bool residual() const { return residual_; }
  void set_residual() {
    ResetOnednn();
    residual_ = true;
  }

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
    OUTPOST_ASSIGN_OR_RETURN(
        Shape spatial, Resolve(w_, std::span(x).subspan(2), kernel, strides, dilations, pads));
    Shape out{x[0], m};
    out.insert(out.end(), spatial.begin(), spatial.end());
    OUTPOST_ASSIGN_OR_RETURN(int64_t p, CheckedElements(spatial));
    const int64_t ck = (c / group_) * NumElements(kernel);
    if (ck > (int64_t{1} << 24) || p > (int64_t{1} << 24) || ck * p > (int64_t{1} << 28)) {
      return ResourceExhaustedError("the convolution's unfolded input is too large");
    }
    if (fast_ != nullptr) {
      const Conv2dGeom g = GeomOf(w_, x, wt, group_);
      size_t floats = fast_->ScratchFloats(g, threads_);
      bool broadcast = false;
      if (residual_) {
        if (!ctx.has_input(3) || ctx.input_type(3) != DataType::kFp32) {
          return InvalidArgumentError("the fused residual must be FLOAT");
        }
        // A residual that broadcasts (rare: the optimiser cannot see shapes) is added by a
        // second pass over the convolution's result, which then lives in scratch.
        if (ctx.input_shape(3) != out) {
          broadcast = true;
          OUTPOST_ASSIGN_OR_RETURN(Shape sum, BroadcastShapes(out, ctx.input_shape(3)));
          floats = (floats + 15) / 16 * 16 + static_cast<size_t>(NumElements(out));
          out = std::move(sum);
        }
      }
      size_t bytes = floats * sizeof(float) + 64;
      if (const OnednnConv* dnn = broadcast ? nullptr : Onednn(x, wt); dnn != nullptr) {
        bytes = std::max(bytes, dnn->ScratchBytes() + 64);
      }
      ctx.RequestScratch(bytes);
    } else {
      ctx.RequestScratch((static_cast<size_t>(ck * p) + PackedSize(ck, p)) * sizeof(float) + 64);
    }
    ctx.SetOutput(0, DataType::kFp32, std::move(out));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    if (fast_ != nullptr) return ComputeFast(ctx);
    return ComputeGeneric(ctx);
  }

 private:
  // Constant weights over one or two spatial dimensions (conv2d.h).
  Status ComputeFast(ComputeContext& ctx) const {
    const TensorRef& x = ctx.input(0);
    const Conv2dGeom g = GeomOf(w_, x.shape, ctx.input(1).shape, group_);
    const int64_t in_size = g.c * g.h * g.w, out_size = g.m * g.oh * g.ow;
    const float* res = residual_ ? ctx.input(3).get<float>() : nullptr;
    float* scratch = reinterpret_cast<float*>(ctx.scratch().data());
    const TensorRef& y = ctx.output(0);
    // The convolution's own shape: N, M, then the spatial dimensions.
    std::array<int64_t, 4> conv_dims{x.shape[0], g.m, g.oh, g.ow};
    std::span<const int64_t> conv_shape(conv_dims.data(), x.rank());
    if (x.rank() == 3) conv_dims[2] = g.ow;
    const bool broadcast =
        residual_ && !std::equal(conv_shape.begin(), conv_shape.end(), ctx.input(3).shape.begin(),
                                 ctx.input(3).shape.end());
    if (!broadcast) {
      const OnednnConv* dnn = FindOnednn(x.shape);
      // 64-aligned scratch for oneDNN (Infer asked for 64 bytes of slack).
      auto* aligned = reinterpret_cast<void*>(
          (reinterpret_cast<uintptr_t>(ctx.scratch().data()) + 63) / 64 * 64);
      if (dnn != nullptr && dnn->Run(x.get<float>(), res, y.mut<float>(), aligned)) {
        return Status();
      }
    }
    float* conv_out = y.mut<float>();
    if (broadcast) {
      conv_out = scratch + (fast_->ScratchFloats(g, threads_) + 15) / 16 * 16;
      res = nullptr;
    }
    const ActParams& act = broadcast ? ActParams() : act_;
    // The run's pool (thread_pool.h); scratch was sized for threads_ of it.
    IntraOpPool* pool = threads_ > 1 ? CurrentIntraOpPool() : nullptr;
    if (pool != nullptr && pool->threads() > threads_) pool = nullptr;
    for (int64_t b = 0; b < x.shape[0]; ++b) {
      fast_->Forward(g, x.get<float>() + b * in_size, res != nullptr ? res + b * out_size : nullptr,
                     act, conv_out + b * out_size, scratch, pool);
    }
    if (broadcast) AddBroadcast(conv_out, conv_shape, ctx.input(3), y);
    return Status();
  }

  // y = act(conv + residual) with numpy broadcasting.
  void AddBroadcast(const float* conv, std::span<const int64_t> conv_shape, const TensorRef& r,
                    const TensorRef& y) const {
    const float* rv = r.get<float>();
    float* yv = y.mut<float>();
    ForEachBroadcast<2>(y.shape, {conv_shape, r.shape},
                        [&](int64_t out, const std::array<int64_t, 2>& in, int64_t n,
                            const std::array<int64_t, 2>& step) {
                          for (int64_t i = 0; i < n; ++i) {
                            yv[out + i] = conv[in[0] + i * step[0]] + rv[in[1] + i * step[1]];
                          }
                        });
    AddActivate(act_, nullptr, yv, y.count);
  }

  // im2col into scratch and the packed GEMM, for any spatial rank and non-constant weights.
  Status ComputeGeneric(ComputeContext& ctx) const {
    const TensorRef& x = ctx.input(0);
    const TensorRef& wt = ctx.input(1);
    const TensorRef& y = ctx.output(0);
    const size_t k = x.rank() - 2;
    std::vector<int64_t> kernel =
        w_.kernel.empty() ? std::vector<int64_t>(wt.shape.begin() + 2, wt.shape.end()) : w_.kernel;
    std::vector<int64_t> strides, dilations, pads;
    OUTPOST_ASSIGN_OR_RETURN(Shape spatial,
                             Resolve(w_, x.shape.subspan(2), kernel, strides, dilations, pads));
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

  // The oneDNN primitive for input shape x (made on the first plan for it), or null: oneDNN
  // is off or refused it, or kMaxOnednnShapes shapes have one. Not for a residual that
  // broadcasts.
  const OnednnConv* Onednn(const Shape& x, const Shape& wt) const {
    if (!onednn_ || (x.size() != 3 && x.size() != 4)) return nullptr;
    std::lock_guard<std::mutex> lock(dnn_mu_);
    if (const auto* made = FindLocked(x); made != nullptr) return made->get();
    if (dnn_.size() >= kMaxOnednnShapes) return nullptr;
    std::unique_ptr<OnednnConv> conv;
    {
      OnednnConvSpec spec;
      spec.g = GeomOf(w_, x, wt, group_);
      spec.batch = x[0];
      spec.weights = fast_->weights().data();
      spec.bias = fast_->bias().data();
      spec.act = act_;
      spec.residual = residual_;
      spec.threads = threads_;
      conv = OnednnConv::Create(spec);
    }
    dnn_.emplace_back(x, std::move(conv));
    return dnn_.back().second.get();
  }

  // The primitive Infer made for shape x, or null. Allocates nothing.
  const OnednnConv* FindOnednn(std::span<const int64_t> x) const {
    if (!onednn_) return nullptr;
    std::lock_guard<std::mutex> lock(dnn_mu_);
    const auto* made = FindLocked(x);
    return made != nullptr ? made->get() : nullptr;
  }

  // The entry for input shape x (its primitive may be null: refused), or null when no plan
  // was made for x. dnn_mu_ is held.
  const std::unique_ptr<OnednnConv>* FindLocked(std::span<const int64_t> x) const {
    for (const auto& [shape, conv] : dnn_) {
      if (std::equal(shape.begin(), shape.end(), x.begin(), x.end())) return &conv;
    }
    return nullptr;
  }

  void ResetOnednn() {
    std::lock_guard<std::mutex> lock(dnn_mu_);
    dnn_.clear();
  }

  static constexpr size_t kMaxOnednnShapes = 8;

  Window w_;
  int64_t group_;
  std::unique_ptr<Conv2dWeights> fast_;  // null: the generic path
  int threads_;                          // CompileOptions::threads
  bool onednn_;                          // CompileOptions::onednn, with constant weights
  ActParams act_;                        // fused activation
  bool residual_ = false;                // input 3 is added before the activation
  // Per input shape, oneDNN's primitive (null: the shape runs the engine's kernels).
  mutable std::mutex dnn_mu_;
  mutable std::vector<std::pair<Shape, std::unique_ptr<OnednnConv>>> dnn_;
};

// The fast path's weights when W (and B, if given) are FLOAT constants of rank 3 or 4 that
// match `group`; null otherwise.
std::unique_ptr<Conv2dWeights> FastWeights(const KernelBuildContext& ctx, const Window& w,
                                           int64_t group) {
  for (int64_t s : w.strides) {
    if (s > 16) return nullptr;
  }
  const Tensor* wt = ctx.constant_input(1);
  if (wt == nullptr || wt->type() != DataType::kFp32) return nullptr;
  const Shape& ws = wt->shape();
  if (ws.size() != 3 && ws.size() != 4) return nullptr;
  for (int64_t d : ws) {
    if (d < 1) return nullptr;
  }
  const Tensor* bias = ctx.has_input(2) ? ctx.constant_input(2) : nullptr;
  if (ctx.has_input(2) &&
      (bias == nullptr || bias->type() != DataType::kFp32 || bias->shape() != Shape{ws[0]})) {
    return nullptr;
  }
  if (group < 1 || ws[0] % group != 0) return nullptr;
  Conv2dGeom g;
  g.m = ws[0];
  g.c = ws[1] * group;
  g.group = group;
  g.kh = ws.size() == 4 ? ws[2] : 1;
  g.kw = ws.back();
  return std::make_unique<Conv2dWeights>(BestGemmArch(), g, wt->values<float>().data(),
                                         bias != nullptr ? bias->values<float>().data() : nullptr);
}

Result<std::unique_ptr<Kernel>> MakeConv(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(2, 3));
  OUTPOST_ASSIGN_OR_RETURN(Window w, ReadWindow(ctx, false));
  OUTPOST_ASSIGN_OR_RETURN(int64_t group, ctx.Int("group", 1));
  std::unique_ptr<Conv2dWeights> fast = FastWeights(ctx, w, group);
  const CompileOptions* options = ctx.compile_options();
  const int threads = options != nullptr ? options->threads : 1;
  const bool onednn = options != nullptr && options->onednn;
  return std::unique_ptr<Kernel>(
      new ConvKernel(std::move(w), group, std::move(fast), std::max(threads, 1), onednn));
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
    OUTPOST_ASSIGN_OR_RETURN(
        Shape spatial, Resolve(w_, std::span(x).subspan(2), kernel, strides, dilations, pads));
    Shape out{x[0], x[1]};
    out.insert(out.end(), spatial.begin(), spatial.end());
    if (max_ && (x.size() == 3 || x.size() == 4)) {
      ctx.RequestScratch(MaxPool2dScratchFloats(GeomOf(w_, x, x, 1)) * sizeof(float) + 64);
    }
    ctx.SetOutput(0, DataType::kFp32, std::move(out));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const TensorRef& x = ctx.input(0);
    const TensorRef& y = ctx.output(0);
    if (x.rank() == 4 || x.rank() == 3) {
      const Conv2dGeom g = GeomOf(w_, x.shape, x.shape, 1);
      if (max_ && MaxPool2dScratchFloats(g) > 0) {
        MaxPool2d(g, x.shape[0] * x.shape[1], x.get<float>(),
                  reinterpret_cast<float*>(ctx.scratch().data()), y.mut<float>());
      } else {
        Pool2d(g, x.shape[0] * x.shape[1], x.get<float>(), y.mut<float>());
      }
      return Status();
    }
    const size_t k = x.rank() - 2;
    std::vector<int64_t> kernel = w_.kernel, strides, dilations, pads;
    OUTPOST_ASSIGN_OR_RETURN(Shape spatial,
                             Resolve(w_, x.shape.subspan(2), kernel, strides, dilations, pads));
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
  // One or two spatial dimensions: each output's window clamped to the plane once, no
  // per-tap index arithmetic, no allocation.
  void Pool2d(const Conv2dGeom& g, int64_t planes, const float* xv, float* yv) const {
    for (int64_t pl = 0; pl < planes; ++pl) {
      const float* plane = xv + pl * g.h * g.w;
      float* out = yv + pl * g.oh * g.ow;
      for (int64_t oy = 0; oy < g.oh; ++oy) {
        const int64_t y0 = oy * g.sh - g.pt;
        // Taps ky in [ky0, ky1) fall inside the plane; the padded count for averages.
        const int64_t ky0 = y0 >= 0 ? 0 : (-y0 + g.dh - 1) / g.dh;
        const int64_t ky1 = std::min(g.kh, y0 >= g.h ? 0 : (g.h - 1 - y0) / g.dh + 1);
        int64_t pad_rows = 0;
        for (int64_t ky = 0; ky < g.kh; ++ky) {
          const int64_t iy = y0 + ky * g.dh;
          pad_rows += iy >= -g.pt && iy < g.h + g.pb;
        }
        for (int64_t ox = 0; ox < g.ow; ++ox) {
          const int64_t x0 = ox * g.sw - g.pl;
          const int64_t kx0 = x0 >= 0 ? 0 : (-x0 + g.dw - 1) / g.dw;
          const int64_t kx1 = std::min(g.kw, x0 >= g.w ? 0 : (g.w - 1 - x0) / g.dw + 1);
          float acc = max_ ? -std::numeric_limits<float>::infinity() : 0.0f;
          for (int64_t ky = ky0; ky < ky1; ++ky) {
            const float* row = plane + (y0 + ky * g.dh) * g.w + x0;
            for (int64_t kx = kx0; kx < kx1; ++kx) {
              const float v = row[kx * g.dw];
              if (max_) {
                if (v > acc || std::isnan(v)) acc = v;
              } else {
                acc += v;
              }
            }
          }
          if (!max_) {
            int64_t count = std::max<int64_t>(0, ky1 - ky0) * std::max<int64_t>(0, kx1 - kx0);
            if (count_include_pad_) {
              int64_t pad_cols = 0;
              for (int64_t kx = 0; kx < g.kw; ++kx) {
                const int64_t ix = x0 + kx * g.dw;
                pad_cols += ix >= -g.pl && ix < g.w + g.pr;
              }
              count = pad_rows * pad_cols;
            }
            acc = count > 0 ? acc / static_cast<float>(count) : 0.0f;
          }
          out[oy * g.ow + ox] = acc;
        }
      }
    }
  }

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

bool IsFastConv(const Kernel& kernel) {
  const auto* conv = dynamic_cast<const ConvKernel*>(&kernel);
  return conv != nullptr && conv->has_fast();
}

bool FoldConvScaleShift(Kernel& kernel, const std::vector<float>& scale,
                        const std::vector<float>& shift) {
  auto* conv = dynamic_cast<ConvKernel*>(&kernel);
  if (conv == nullptr || conv->fast() == nullptr || conv->residual() ||
      conv->act().kind != ActKind::kNone) {
    return false;
  }
  conv->fast()->ScaleShift(scale, shift);
  return true;
}

bool SetConvActivation(Kernel& kernel, const ActParams& act) {
  auto* conv = dynamic_cast<ConvKernel*>(&kernel);
  if (conv == nullptr || conv->fast() == nullptr || conv->act().kind != ActKind::kNone) {
    return false;
  }
  conv->set_act(act);
  return true;
}

bool SetConvResidual(Kernel& kernel) {
  auto* conv = dynamic_cast<ConvKernel*>(&kernel);
  if (conv == nullptr || conv->fast() == nullptr || conv->residual() ||
      conv->act().kind != ActKind::kNone) {
    return false;
  }
  conv->set_residual();
  return true;
}

int OnednnConvShapes(const Kernel& kernel) {
  const auto* conv = dynamic_cast<const ConvKernel*>(&kernel);
  return conv != nullptr ? conv->OnednnShapes() : 0;
}

void RegisterConvKernels(KernelRegistry& r) {
  r.Add({"", "Conv", 1, 1000, &MakeConv});
  r.Add({"", "MaxPool", 1, 1000, &MakePool<true>});
  r.Add({"", "AveragePool", 1, 1000, &MakePool<false>});
  r.Add({"", "GlobalAveragePool", 1, 1000, &MakeGlobal<false>});
  r.Add({"", "GlobalMaxPool", 1, 1000, &MakeGlobal<true>});
}

}  // namespace outpost::engine::onnx
