#include "engine/onnx/onednn_conv.h"

#include <mutex>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"

// libgomp's: the OpenMP team size of the calling thread (Debian's libdnnl runs on OpenMP).
extern "C" void omp_set_num_threads(int n);

namespace outpost::engine::onnx {
namespace {

using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

const dnnl::engine& CpuEngine() {
  static const dnnl::engine* e = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *e;
}

// The engine's activation as eltwise post-ops; false when oneDNN has no equivalent.
bool AppendActivation(const ActParams& act, dnnl::post_ops& ops) {
  using dnnl::algorithm;
  switch (act.kind) {
    case ActKind::kNone:
      return true;
    case ActKind::kRelu:
      ops.append_eltwise(1.0f, algorithm::eltwise_relu, 0.0f, 0.0f);
      return true;
    case ActKind::kLeakyRelu:
      ops.append_eltwise(1.0f, algorithm::eltwise_relu, act.alpha, 0.0f);
      return true;
    case ActKind::kClip:
      ops.append_eltwise(1.0f, algorithm::eltwise_clip_v2, act.lo, act.hi);
      return true;
    case ActKind::kHardSigmoid:  // clip(alpha * x + beta, 0, 1)
      ops.append_eltwise(1.0f, algorithm::eltwise_linear, act.alpha, act.beta);
      ops.append_eltwise(1.0f, algorithm::eltwise_clip_v2, 0.0f, 1.0f);
      return true;
    case ActKind::kHardSwish:  // x * relu6(x + 3) / 6, ONNX's HardSwish
      ops.append_eltwise(1.0f, algorithm::eltwise_hardswish, 0.0f, 0.0f);
      return true;
    case ActKind::kSigmoid:
      ops.append_eltwise(1.0f, algorithm::eltwise_logistic, 0.0f, 0.0f);
      return true;
    case ActKind::kSilu:
      ops.append_eltwise(1.0f, algorithm::eltwise_swish, 1.0f, 0.0f);
      return true;
    case ActKind::kTanh:
      ops.append_eltwise(1.0f, algorithm::eltwise_tanh, 0.0f, 0.0f);
      return true;
  }
  return false;
}

// One prepared primitive: its argument list and the memories the list names.
struct Step {
  dnnl::primitive prim;
  std::vector<dnnl_exec_arg_t> args;
};

}  // namespace

struct OnednnConv::State {
  dnnl::stream stream{CpuEngine()};
  int threads = 1;
  std::string impl;
  // User (NCHW) memories pointed at the run's tensors.
  dnnl::memory x_user, y_user, r_user;
  // The primitive's layouts, in scratch when they differ from NCHW; the weights and bias
  // are owned.
  dnnl::memory x_conv, y_conv, weights, bias, scratchpad;
  bool reorder_x = false, reorder_y = false;
  size_t x_off = 0, y_off = 0, pad_off = 0, bytes = 0;
  Step to_src, residual_to_dst, conv, to_user;
  std::mutex busy;  // one run at a time uses the memories above
};

OnednnConv::OnednnConv(std::unique_ptr<State> s) : s_(std::move(s)) {}
OnednnConv::~OnednnConv() = default;
size_t OnednnConv::ScratchBytes() const { return s_->bytes; }
const std::string& OnednnConv::impl() const { return s_->impl; }

std::unique_ptr<OnednnConv> OnednnConv::Create(const OnednnConvSpec& spec) {
  const Conv2dGeom& g = spec.g;
  try {
    const dnnl::engine& eng = CpuEngine();
    dnnl::post_ops ops;
    if (spec.residual) ops.append_sum(1.0f);
    if (!AppendActivation(spec.act, ops)) return nullptr;
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    const dnnl::memory::dims src{spec.batch, g.c, g.h, g.w};
    const dnnl::memory::dims dst{spec.batch, g.m, g.oh, g.ow};
    const bool grouped = g.group > 1;
    const dnnl::memory::dims wts =
        grouped ? dnnl::memory::dims{g.group, g.m / g.group, g.c / g.group, g.kh, g.kw}
                : dnnl::memory::dims{g.m, g.c, g.kh, g.kw};
    // oneDNN's right padding makes the output size exact (an ONNX end pad may overshoot).
    const int64_t pb = (g.oh - 1) * g.sh + (g.kh - 1) * g.dh + 1 - g.h - g.pt;
    const int64_t pr = (g.ow - 1) * g.sw + (g.kw - 1) * g.dw + 1 - g.w - g.pl;
    dnnl::convolution_forward::desc d(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
        dnnl::memory::desc(src, dt::f32, tag::any), dnnl::memory::desc(wts, dt::f32, tag::any),
        dnnl::memory::desc({g.m}, dt::f32, tag::x), dnnl::memory::desc(dst, dt::f32, tag::any),
        {g.sh, g.sw}, {g.dh - 1, g.dw - 1}, {g.pt, g.pl}, {pb, pr});
    dnnl::convolution_forward::primitive_desc pd(d, attr, eng, /*allow_empty=*/true);
    if (!pd) return nullptr;
    auto s = std::make_unique<State>();
    s->impl = pd.impl_info_str();
    if (s->impl.rfind("ref", 0) == 0) return nullptr;
    s->threads = std::max(spec.threads, 1);

    const dnnl::memory::desc x_md(src, dt::f32, tag::nchw), y_md(dst, dt::f32, tag::nchw);
    s->x_user = dnnl::memory(x_md, eng, DNNL_MEMORY_NONE);
    s->y_user = dnnl::memory(y_md, eng, DNNL_MEMORY_NONE);
    s->r_user = dnnl::memory(y_md, eng, DNNL_MEMORY_NONE);
    s->reorder_x = pd.src_desc() != x_md;
    s->reorder_y = pd.dst_desc() != y_md;
    auto take = [&](size_t n) {
      const size_t off = s->bytes;
      s->bytes += (n + 63) / 64 * 64;
      return off;
    };
    if (s->reorder_x) s->x_off = take(pd.src_desc().get_size());
    if (s->reorder_y) s->y_off = take(pd.dst_desc().get_size());
    s->pad_off = take(pd.scratchpad_desc().get_size());
    s->x_conv = s->reorder_x ? dnnl::memory(pd.src_desc(), eng, DNNL_MEMORY_NONE) : s->x_user;
    s->y_conv = s->reorder_y ? dnnl::memory(pd.dst_desc(), eng, DNNL_MEMORY_NONE) : s->y_user;
    s->scratchpad = dnnl::memory(pd.scratchpad_desc(), eng, DNNL_MEMORY_NONE);

    // The weights, reordered once; the bias copied.
    const dnnl::memory::desc w_md(wts, dt::f32, grouped ? tag::goihw : tag::oihw);
    dnnl::memory w_user(w_md, eng, const_cast<float*>(spec.weights));
    s->weights = dnnl::memory(pd.weights_desc(), eng);
    dnnl::reorder(w_user, s->weights).execute(s->stream, w_user, s->weights);
    s->bias = dnnl::memory(pd.bias_desc(), eng);
    dnnl::memory b_user(pd.bias_desc(), eng, const_cast<float*>(spec.bias));
    dnnl::reorder(b_user, s->bias).execute(s->stream, b_user, s->bias);
    s->stream.wait();

    s->conv.prim = dnnl::convolution_forward(pd);
    s->conv.args = {{DNNL_ARG_SRC, s->x_conv.get()},     {DNNL_ARG_WEIGHTS, s->weights.get()},
                    {DNNL_ARG_BIAS, s->bias.get()},      {DNNL_ARG_DST, s->y_conv.get()},
                    {DNNL_ARG_SCRATCHPAD, s->scratchpad.get()}};
    if (s->reorder_x) {
      s->to_src.prim = dnnl::reorder(s->x_user, s->x_conv);
      s->to_src.args = {{DNNL_ARG_FROM, s->x_user.get()}, {DNNL_ARG_TO, s->x_conv.get()}};
    }
    if (spec.residual) {
      // The sum post-op adds what the destination holds: the residual, in its layout.
      s->residual_to_dst.prim = dnnl::reorder(s->r_user, s->y_conv);
      s->residual_to_dst.args = {{DNNL_ARG_FROM, s->r_user.get()}, {DNNL_ARG_TO, s->y_conv.get()}};
    }
    if (s->reorder_y) {
      s->to_user.prim = dnnl::reorder(s->y_conv, s->y_user);
      s->to_user.args = {{DNNL_ARG_FROM, s->y_conv.get()}, {DNNL_ARG_TO, s->y_user.get()}};
    }
    return std::unique_ptr<OnednnConv>(new OnednnConv(std::move(s)));
  } catch (const dnnl::error&) {
    return nullptr;
  }
}

bool OnednnConv::Run(const float* x, const float* residual, float* y, void* scratch) const {
  State& s = *s_;
  std::unique_lock<std::mutex> lock(s.busy, std::try_to_lock);
  if (!lock.owns_lock()) return false;
  char* base = static_cast<char*>(scratch);
  // The C interface: set_data_handle and execute without building argument maps.
  dnnl_memory_set_data_handle(s.x_user.get(), const_cast<float*>(x));
  dnnl_memory_set_data_handle(s.y_user.get(), y);
  if (s.reorder_x) dnnl_memory_set_data_handle(s.x_conv.get(), base + s.x_off);
  if (s.reorder_y) dnnl_memory_set_data_handle(s.y_conv.get(), base + s.y_off);
  dnnl_memory_set_data_handle(s.scratchpad.get(), base + s.pad_off);
  // oneDNN's OpenMP team for this thread: CompileOptions::threads.
  omp_set_num_threads(s.threads);
  auto run = [&](const Step& st) {
    dnnl_primitive_execute(st.prim.get(), s.stream.get(), static_cast<int>(st.args.size()),
                           st.args.data());
  };
  if (s.reorder_x) run(s.to_src);
  if (residual != nullptr) {
    dnnl_memory_set_data_handle(s.r_user.get(), const_cast<float*>(residual));
    run(s.residual_to_dst);
  }
  run(s.conv);
  if (s.reorder_y) run(s.to_user);
  dnnl_stream_wait(s.stream.get());
  return true;
}

}  // namespace outpost::engine::onnx
