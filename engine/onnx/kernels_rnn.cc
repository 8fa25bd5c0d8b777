// Recurrent layers: RNN, GRU and LSTM, every direction (forward, reverse, bidirectional), both
// layouts, sequence_lens, initial states, peepholes and the ONNX activation list. FLOAT only.
//
// Per direction the input projection X·Wᵀ (+ both biases) is one GEMM over every time step;
// each step then multiplies the previous hidden state by the packed Rᵀ and applies the gates
// row by row. Everything lives in the kernel's scratch space, so a planned run allocates
// nothing.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>

#include "engine/onnx/gemm.h"
#include "engine/onnx/kernel_util.h"
#include "engine/onnx/vecmath.h"

namespace outpost::engine::onnx {
namespace {

enum class Cell : uint8_t { kRnn, kGru, kLstm };

int GatesOf(Cell cell) { return cell == Cell::kRnn ? 1 : (cell == Cell::kGru ? 3 : 4); }
// Activation functions per direction: f (RNN); f, g (GRU); f, g, h (LSTM).
size_t ActivationsOf(Cell cell) { return cell == Cell::kRnn ? 1 : (cell == Cell::kGru ? 2 : 3); }

enum class ActKind : uint8_t {
  kSigmoid, kTanh, kRelu, kAffine, kLeakyRelu, kThresholdedRelu, kScaledTanh, kHardSigmoid,
  kElu, kSoftsign, kSoftplus
};

struct Act {
  ActKind kind = ActKind::kSigmoid;
  float alpha = 0;
  float beta = 0;
};

// Applies `a` to n floats in place.
void Activate(const Act& a, float* v, int64_t n) {
  switch (a.kind) {
    case ActKind::kSigmoid:
      SigmoidF(v, v, n);
      return;
    case ActKind::kTanh:
      TanhF(v, v, n);
      return;
    case ActKind::kScaledTanh:
      for (int64_t i = 0; i < n; ++i) v[i] *= a.beta;
      TanhF(v, v, n);
      for (int64_t i = 0; i < n; ++i) v[i] *= a.alpha;
      return;
    default:
      break;
  }
  for (int64_t i = 0; i < n; ++i) {
    const float x = v[i];
    float y = x;
    switch (a.kind) {
      case ActKind::kRelu: y = x > 0 ? x : 0.0f; break;
      case ActKind::kAffine: y = a.alpha * x + a.beta; break;
      case ActKind::kLeakyRelu: y = x >= 0 ? x : a.alpha * x; break;
      case ActKind::kThresholdedRelu: y = x > a.alpha ? x : 0.0f; break;
      case ActKind::kHardSigmoid: y = std::clamp(a.alpha * x + a.beta, 0.0f, 1.0f); break;
      case ActKind::kElu: y = x >= 0 ? x : a.alpha * (std::exp(x) - 1.0f); break;
      case ActKind::kSoftsign: y = x / (1.0f + std::fabs(x)); break;
      case ActKind::kSoftplus: y = x > 20.0f ? x : std::log1p(std::exp(x)); break;
      default: break;
    }
    v[i] = y;
  }
}

// Parses the `activations` attribute with its alphas and betas (consumed in order by the
// functions that take them, ONNX's defaults otherwise).
Result<std::vector<Act>> ReadActivations(const KernelBuildContext& ctx, Cell cell, int dirs) {
  OUTPOST_ASSIGN_OR_RETURN(std::vector<std::string> names, ctx.Strings("activations"));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<float> alphas, ctx.Floats("activation_alpha"));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<float> betas, ctx.Floats("activation_beta"));
  const size_t per_dir = ActivationsOf(cell);
  if (names.empty()) {
    const char* defaults[] = {"Sigmoid", "Tanh", "Tanh"};
    for (int d = 0; d < dirs; ++d) {
      if (cell == Cell::kRnn) {
        names.emplace_back("Tanh");
      } else {
        names.insert(names.end(), defaults, defaults + per_dir);
      }
    }
  } else if (names.size() == per_dir && dirs == 2) {
    std::vector<std::string> twice = names;
    names.insert(names.end(), twice.begin(), twice.end());
  }
  if (names.size() != per_dir * static_cast<size_t>(dirs)) {
    return InvalidArgumentError("attribute \"activations\" has " + std::to_string(names.size()) +
                                " functions, expected " +
                                std::to_string(per_dir * static_cast<size_t>(dirs)));
  }
  size_t next_alpha = 0, next_beta = 0;
  auto take = [](const std::vector<float>& v, size_t& next, float fallback) {
    return next < v.size() ? v[next++] : fallback;
  };
  std::vector<Act> acts;
  for (const std::string& raw : names) {
    std::string n = raw;
    for (char& ch : n) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    Act a;
    if (n == "sigmoid") {
      a.kind = ActKind::kSigmoid;
    } else if (n == "tanh") {
      a.kind = ActKind::kTanh;
    } else if (n == "relu") {
      a.kind = ActKind::kRelu;
    } else if (n == "affine") {
      a = {ActKind::kAffine, take(alphas, next_alpha, 1.0f), take(betas, next_beta, 0.0f)};
    } else if (n == "leakyrelu") {
      a = {ActKind::kLeakyRelu, take(alphas, next_alpha, 0.01f), 0};
    } else if (n == "thresholdedrelu") {
      a = {ActKind::kThresholdedRelu, take(alphas, next_alpha, 1.0f), 0};
    } else if (n == "scaledtanh") {
      a = {ActKind::kScaledTanh, take(alphas, next_alpha, 1.0f), take(betas, next_beta, 1.0f)};
    } else if (n == "hardsigmoid") {
      a = {ActKind::kHardSigmoid, take(alphas, next_alpha, 0.2f), take(betas, next_beta, 0.5f)};
    } else if (n == "elu") {
      a = {ActKind::kElu, take(alphas, next_alpha, 1.0f), 0};
    } else if (n == "softsign") {
      a.kind = ActKind::kSoftsign;
    } else if (n == "softplus") {
      a.kind = ActKind::kSoftplus;
    } else {
      return UnimplementedError("attribute \"activations\": activation function \"" + raw +
                                "\" is not supported");
    }
    acts.push_back(a);
  }
  return acts;
}

// Offsets (in floats) of the scratch buffers of one direction's run.
struct RnnScratch {
  size_t packed_w = 0, packed_r = 0, packed_rh = 0, xw = 0, gates = 0, hh = 0, rh = 0, h = 0,
         c = 0, bias = 0, rbh = 0, rows = 0, total = 0;
};

size_t Round16(size_t n) { return (n + 15) / 16 * 16; }

class RnnKernel : public Kernel {
 public:
  struct Options {
    Cell cell = Cell::kLstm;
    int dirs = 1;
    bool reverse = false;  // single direction only
    int64_t hidden = -1;   // -1: from W
    float clip = 0;        // <= 0: none
    bool input_forget = false;
    bool linear_before_reset = false;
    int64_t layout = 0;
    std::vector<Act> acts;
  };
  // Weights packed for the GEMM, per direction; packed once when W and R are constants.
  struct Packed {
    std::vector<float> w, r, rh;
  };
  RnnKernel(Options o, std::vector<Packed> packed) : o_(std::move(o)), packed_(std::move(packed)) {}

  Status Infer(InferContext& ctx) const override;
  Status Compute(ComputeContext& ctx) const override;

 private:
  struct Dims {
    int64_t t = 0, b = 0, in = 0, h = 0;
  };
  int64_t Gates() const { return GatesOf(o_.cell); }
  RnnScratch Layout(const Dims& d) const;
  Status RunDirection(ComputeContext& ctx, const Dims& dm, int dir, bool reverse,
                      float* scratch) const;
  void Step(const Dims& dm, int dir, const int64_t* rows, const float* peep,
            const RnnScratch& sc, float* base, const float* packed_r,
            const float* packed_rh) const;

  Options o_;
  std::vector<Packed> packed_;  // empty: packed into scratch by each run
};

RnnScratch RnnKernel::Layout(const Dims& d) const {
  const size_t g = static_cast<size_t>(Gates());
  const size_t h = static_cast<size_t>(d.h), b = static_cast<size_t>(d.b);
  const size_t nr = o_.cell == Cell::kGru ? 2 * h : g * h;
  RnnScratch s;
  size_t at = 0;
  auto take = [&](size_t& field, size_t n) {
    field = at;
    at += Round16(n);
  };
  take(s.packed_w, PackedSize(d.in, static_cast<int64_t>(g * h)));
  take(s.packed_r, PackedSize(d.h, static_cast<int64_t>(nr)));
  take(s.packed_rh, o_.cell == Cell::kGru ? PackedSize(d.h, d.h) : 0);
  take(s.xw, static_cast<size_t>(d.t) * b * g * h);
  take(s.gates, b * g * h);
  take(s.hh, o_.cell == Cell::kGru ? b * h : 0);
  take(s.rh, o_.cell == Cell::kGru ? b * h : 0);
  take(s.h, b * h);
  take(s.c, o_.cell == Cell::kLstm ? b * h : 0);
  take(s.bias, g * h);
  take(s.rbh, o_.cell == Cell::kGru ? h : 0);
  take(s.rows, 2 * b);  // one int64_t per batch entry
  s.total = at;
  return s;
}

Status RnnKernel::Infer(InferContext& ctx) const {
  for (size_t i : {size_t{0}, size_t{1}, size_t{2}, size_t{3}, size_t{5}, size_t{6}, size_t{7}}) {
    if (!ctx.has_input(i)) continue;
    if (ctx.input_type(i) != DataType::kFp32) {
      return UnimplementedError("input " + std::to_string(i) + " is " +
                                std::string(DataTypeName(ctx.input_type(i))) +
                                "; recurrent layers support FLOAT only");
    }
  }
  const Shape& x = ctx.input_shape(0);
  const Shape& w = ctx.input_shape(1);
  const Shape& r = ctx.input_shape(2);
  if (x.size() != 3 || w.size() != 3 || r.size() != 3) {
    return InvalidArgumentError("X, W and R must be 3-D");
  }
  const int64_t g = Gates(), dirs = o_.dirs;
  Dims dm;
  dm.t = o_.layout == 0 ? x[0] : x[1];
  dm.b = o_.layout == 0 ? x[1] : x[0];
  dm.in = x[2];
  dm.h = o_.hidden >= 0 ? o_.hidden : w[1] / g;
  if (w != Shape{dirs, g * dm.h, dm.in}) {
    return InvalidArgumentError("W " + ShapeToString(w) + " does not match X " +
                                ShapeToString(x) + ", the direction and hidden_size");
  }
  if (r != Shape{dirs, g * dm.h, dm.h}) {
    return InvalidArgumentError("R " + ShapeToString(r) + " does not match hidden_size " +
                                std::to_string(dm.h));
  }
  if (ctx.has_input(3) && ctx.input_shape(3) != Shape{dirs, 2 * g * dm.h}) {
    return InvalidArgumentError("B must be [num_directions, " + std::to_string(2 * g) +
                                "*hidden_size]");
  }
  if (ctx.has_input(4)) {
    OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(4), kIndexTypes, "sequence_lens"));
    if (ctx.input_shape(4) != Shape{dm.b}) {
      return InvalidArgumentError("sequence_lens must have one length per batch entry");
    }
  }
  const Shape state = o_.layout == 0 ? Shape{dirs, dm.b, dm.h} : Shape{dm.b, dirs, dm.h};
  const size_t last_state = o_.cell == Cell::kLstm ? 6 : 5;
  for (size_t i = 5; i <= last_state; ++i) {
    if (ctx.has_input(i) && ctx.input_shape(i) != state) {
      return InvalidArgumentError("initial state " + ShapeToString(ctx.input_shape(i)) +
                                  " must be " + ShapeToString(state));
    }
  }
  if (o_.cell == Cell::kLstm && ctx.has_input(7) && ctx.input_shape(7) != Shape{dirs, 3 * dm.h}) {
    return InvalidArgumentError("P must be [num_directions, 3*hidden_size]");
  }
  OUTPOST_ASSIGN_OR_RETURN(int64_t xw_count, CheckedElements(Shape{dm.t, dm.b, g * dm.h}));
  if (xw_count > (int64_t{1} << 28)) {
    return ResourceExhaustedError("the recurrent layer's input projection is too large");
  }
  ctx.RequestScratch(Layout(dm).total * sizeof(float) + 64);
  ctx.SetOutput(0, DataType::kFp32,
                o_.layout == 0 ? Shape{dm.t, dirs, dm.b, dm.h} : Shape{dm.b, dm.t, dirs, dm.h});
  ctx.SetOutput(1, DataType::kFp32, state);
  ctx.SetOutput(2, DataType::kFp32, state);
  return Status();
}

Status RnnKernel::Compute(ComputeContext& ctx) const {
  const TensorRef& x = ctx.input(0);
  Dims dm;
  dm.t = o_.layout == 0 ? x.shape[0] : x.shape[1];
  dm.b = o_.layout == 0 ? x.shape[1] : x.shape[0];
  dm.in = x.shape[2];
  dm.h = ctx.input(2).shape[2];
  if (ctx.has_input(4)) {
    const TensorRef& lens = ctx.input(4);
    for (int64_t b = 0; b < dm.b; ++b) {
      const int64_t len = ReadInt64(lens, b);
      if (len < 0 || len > dm.t) {
        return InvalidArgumentError("sequence_lens[" + std::to_string(b) + "] = " +
                                    std::to_string(len) + " is outside [0, " +
                                    std::to_string(dm.t) + "]");
      }
    }
  }
  if (ctx.has_output(0)) {
    std::fill_n(ctx.output(0).mut<float>(), ctx.output(0).count, 0.0f);
  }
  auto* scratch = reinterpret_cast<float*>(
      (reinterpret_cast<uintptr_t>(ctx.scratch().data()) + 63) / 64 * 64);
  for (int d = 0; d < o_.dirs; ++d) {
    OUTPOST_RETURN_IF_ERROR(RunDirection(ctx, dm, d, o_.dirs == 2 ? d == 1 : o_.reverse, scratch));
  }
  return Status();
}

Status RnnKernel::RunDirection(ComputeContext& ctx, const Dims& dm, int dir, bool reverse,
                               float* base) const {
  const int64_t g = Gates(), h = dm.h, b = dm.b, gh = g * h;
  const RnnScratch sc = Layout(dm);
  const float* w = ctx.input(1).get<float>() + dir * gh * dm.in;
  const float* r = ctx.input(2).get<float>() + dir * gh * h;
  // Biases: Wb + Rb, except GRU's Rbh under linear_before_reset, which goes inside the reset.
  float* bias = base + sc.bias;
  std::fill_n(bias, gh, 0.0f);
  if (ctx.has_input(3)) {
    const float* bv = ctx.input(3).get<float>() + dir * 2 * gh;
    const int64_t rb_count = (o_.cell == Cell::kGru && o_.linear_before_reset) ? 2 * h : gh;
    for (int64_t i = 0; i < gh; ++i) bias[i] = bv[i] + (i < rb_count ? bv[gh + i] : 0.0f);
    if (o_.cell == Cell::kGru) std::copy_n(bv + gh + 2 * h, h, base + sc.rbh);
  } else if (o_.cell == Cell::kGru) {
    std::fill_n(base + sc.rbh, h, 0.0f);
  }
  const float* pw = base + sc.packed_w;
  const float* pr = base + sc.packed_r;
  const float* prh = base + sc.packed_rh;
  if (!packed_.empty()) {
    const Packed& p = packed_[static_cast<size_t>(dir)];
    pw = p.w.data();
    pr = p.r.data();
    prh = p.rh.data();
  } else {
    PackB(w, dm.in, true, dm.in, gh, base + sc.packed_w);
    if (o_.cell == Cell::kGru) {
      PackB(r, h, true, h, 2 * h, base + sc.packed_r);
      PackB(r + 2 * h * h, h, true, h, h, base + sc.packed_rh);
    } else {
      PackB(r, h, true, h, gh, base + sc.packed_r);
    }
  }
  const int64_t rows = dm.t * b;
  if (rows > 0 && gh > 0) {
    GemmPacked(rows, gh, dm.in, ctx.input(0).get<float>(), dm.in, 1, pw, base + sc.xw, gh, 1.0f,
               false, bias);
  }
  // Initial states.
  float* hs = base + sc.h;
  float* cs = base + sc.c;
  auto load_state = [&](size_t input, float* dst) {
    if (!ctx.has_input(input)) {
      std::fill_n(dst, b * h, 0.0f);
      return;
    }
    const float* src = ctx.input(input).get<float>();
    for (int64_t bb = 0; bb < b; ++bb) {
      const int64_t at = o_.layout == 0 ? (dir * b + bb) * h : (bb * o_.dirs + dir) * h;
      std::copy_n(src + at, h, dst + bb * h);
    }
  };
  load_state(5, hs);
  if (o_.cell == Cell::kLstm) load_state(6, cs);
  const float* peep = (o_.cell == Cell::kLstm && ctx.has_input(7))
                          ? ctx.input(7).get<float>() + dir * 3 * h
                          : nullptr;
  // Row of X (and of xw) for each batch entry at this step; -1 when the sequence has ended.
  auto* row_of = reinterpret_cast<int64_t*>(base + sc.rows);
  float* y = ctx.has_output(0) ? ctx.output(0).mut<float>() : nullptr;
  for (int64_t s = 0; s < dm.t; ++s) {
    for (int64_t bb = 0; bb < b; ++bb) {
      const int64_t len = ctx.has_input(4) ? ReadInt64(ctx.input(4), bb) : dm.t;
      int64_t t = reverse ? len - 1 - s : s;
      if (s >= len) t = -1;
      row_of[bb] = t < 0 ? -1 : (o_.layout == 0 ? t * b + bb : bb * dm.t + t);
    }
    Step(dm, dir, row_of, peep, sc, base, pr, prh);
    if (y == nullptr) continue;
    for (int64_t bb = 0; bb < b; ++bb) {
      const int64_t row = row_of[bb];
      if (row < 0) continue;
      const int64_t t = o_.layout == 0 ? row / b : row % dm.t;
      const int64_t at = o_.layout == 0 ? ((t * o_.dirs + dir) * b + bb) * h
                                        : ((bb * dm.t + t) * o_.dirs + dir) * h;
      std::copy_n(hs + bb * h, h, y + at);
    }
  }
  for (size_t out = 1; out <= 2; ++out) {
    if (!ctx.has_output(out) || (out == 2 && o_.cell != Cell::kLstm)) continue;
    const float* src = out == 1 ? hs : cs;
    float* dst = ctx.output(out).mut<float>();
    for (int64_t bb = 0; bb < b; ++bb) {
      const int64_t at = o_.layout == 0 ? (dir * b + bb) * h : (bb * o_.dirs + dir) * h;
      std::copy_n(src + bb * h, h, dst + at);
    }
  }
  return Status();
}

void RnnKernel::Step(const Dims& dm, int dir, const int64_t* rows, const float* peep,
                     const RnnScratch& sc, float* base, const float* packed_r,
                     const float* packed_rh) const {
  const int64_t g = Gates(), h = dm.h, b = dm.b, gh = g * h;
  const float* xw = base + sc.xw;
  const Act* acts = o_.acts.data() + static_cast<size_t>(dir) * ActivationsOf(o_.cell);
  float* hs = base + sc.h;
  float* cs = base + sc.c;
  float* gates = base + sc.gates;
  const int64_t nr = o_.cell == Cell::kGru ? 2 * h : gh;
  if (b > 0 && h > 0) {
    GemmPacked(b, nr, h, hs, h, 1, packed_r, gates, gh, 1.0f, false, nullptr);
  }
  const float clip = o_.clip;
  auto clamp = [clip](float* v, int64_t n) {
    if (clip <= 0) return;
    for (int64_t i = 0; i < n; ++i) v[i] = std::clamp(v[i], -clip, clip);
  };
  for (int64_t bb = 0; bb < b; ++bb) {
    if (rows[bb] < 0) continue;
    float* gv = gates + bb * gh;
    const float* xv = xw + rows[bb] * gh;
    for (int64_t i = 0; i < nr; ++i) gv[i] += xv[i];
    float* hv = hs + bb * h;
    if (o_.cell == Cell::kRnn) {
      clamp(gv, h);
      Activate(acts[0], gv, h);
      std::copy_n(gv, h, hv);
    } else if (o_.cell == Cell::kLstm) {
      float* cv = cs + bb * h;
      float* gi = gv;
      float* go = gv + h;
      float* gf = gv + 2 * h;
      float* gc = gv + 3 * h;
      if (peep != nullptr) {
        for (int64_t i = 0; i < h; ++i) {
          gi[i] += peep[i] * cv[i];
          gf[i] += peep[2 * h + i] * cv[i];
        }
      }
      clamp(gv, gh);
      Activate(acts[0], gi, h);
      if (o_.input_forget) {
        for (int64_t i = 0; i < h; ++i) gf[i] = 1.0f - gi[i];
      } else {
        Activate(acts[0], gf, h);
      }
      Activate(acts[1], gc, h);
      for (int64_t i = 0; i < h; ++i) cv[i] = gf[i] * cv[i] + gi[i] * gc[i];
      if (peep != nullptr) {
        for (int64_t i = 0; i < h; ++i) go[i] += peep[h + i] * cv[i];
        clamp(go, h);
      }
      Activate(acts[0], go, h);
      std::copy_n(cv, h, gc);
      Activate(acts[2], gc, h);
      for (int64_t i = 0; i < h; ++i) hv[i] = go[i] * gc[i];
    } else {
      clamp(gv, 2 * h);
      Activate(acts[0], gv, 2 * h);  // z, r
      float* rh = base + sc.rh + bb * h;
      if (!o_.linear_before_reset) {
        for (int64_t i = 0; i < h; ++i) rh[i] = gv[h + i] * hv[i];
      }
    }
  }
  if (o_.cell != Cell::kGru) return;
  // GRU's candidate state: (r ⊙ H)·Rhᵀ, or r ⊙ (H·Rhᵀ + Rbh) under linear_before_reset.
  float* hh = base + sc.hh;
  const float* rh = base + sc.rh;
  const float* rbh = base + sc.rbh;
  for (int64_t bb = 0; bb < b; ++bb) {
    if (rows[bb] < 0 && !o_.linear_before_reset) std::fill_n(base + sc.rh + bb * h, h, 0.0f);
  }
  if (b > 0 && h > 0) {
    GemmPacked(b, h, h, o_.linear_before_reset ? hs : rh, h, 1, packed_rh, hh, h, 1.0f, false,
               nullptr);
  }
  for (int64_t bb = 0; bb < b; ++bb) {
    if (rows[bb] < 0) continue;
    float* gv = gates + bb * gh;
    const float* xv = xw + rows[bb] * gh;
    float* cand = gv + 2 * h;
    const float* hrow = hh + bb * h;
    if (o_.linear_before_reset) {
      for (int64_t i = 0; i < h; ++i) cand[i] = xv[2 * h + i] + gv[h + i] * (hrow[i] + rbh[i]);
    } else {
      for (int64_t i = 0; i < h; ++i) cand[i] = xv[2 * h + i] + hrow[i];
    }
    clamp(cand, h);
    Activate(acts[1], cand, h);
    float* hv = hs + bb * h;
    for (int64_t i = 0; i < h; ++i) hv[i] = (1.0f - gv[i]) * cand[i] + gv[i] * hv[i];
  }
}

// Packs constant W and R once, per direction; empty when either is not a constant FLOAT
// tensor of consistent shape (Infer() then reports any mismatch).
std::vector<RnnKernel::Packed> PackConstantWeights(const KernelBuildContext& ctx,
                                                   const RnnKernel::Options& o) {
  const Tensor* w = ctx.constant_input(1);
  const Tensor* r = ctx.constant_input(2);
  if (w == nullptr || r == nullptr || w->type() != DataType::kFp32 ||
      r->type() != DataType::kFp32 || w->shape().size() != 3 || r->shape().size() != 3) {
    return {};
  }
  const int64_t g = GatesOf(o.cell), h = r->shape()[2], in = w->shape()[2];
  const int64_t gh = g * h;
  if (w->shape()[0] != o.dirs || r->shape()[0] != o.dirs || w->shape()[1] != gh ||
      r->shape()[1] != gh || (o.hidden >= 0 && o.hidden != h)) {
    return {};
  }
  std::vector<RnnKernel::Packed> packed(static_cast<size_t>(o.dirs));
  for (int d = 0; d < o.dirs; ++d) {
    RnnKernel::Packed& p = packed[static_cast<size_t>(d)];
    const float* wd = w->values<float>().data() + d * gh * in;
    const float* rd = r->values<float>().data() + d * gh * h;
    p.w.resize(PackedSize(in, gh));
    PackB(wd, in, true, in, gh, p.w.data());
    if (o.cell == Cell::kGru) {
      p.r.resize(PackedSize(h, 2 * h));
      PackB(rd, h, true, h, 2 * h, p.r.data());
      p.rh.resize(PackedSize(h, h));
      PackB(rd + 2 * h * h, h, true, h, h, p.rh.data());
    } else {
      p.r.resize(PackedSize(h, gh));
      PackB(rd, h, true, h, gh, p.r.data());
    }
  }
  return packed;
}

Result<std::unique_ptr<Kernel>> MakeRnn(const KernelBuildContext& ctx, Cell cell) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(3, cell == Cell::kLstm ? 8 : 6));
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectOutputs(0, cell == Cell::kLstm ? 3 : 2));
  RnnKernel::Options o;
  o.cell = cell;
  OUTPOST_ASSIGN_OR_RETURN(std::string direction, ctx.String("direction", "forward"));
  if (direction == "bidirectional") {
    o.dirs = 2;
  } else if (direction == "reverse") {
    o.reverse = true;
  } else if (direction != "forward") {
    return InvalidArgumentError("attribute \"direction\" is \"" + direction +
                                "\", expected forward, reverse or bidirectional");
  }
  OUTPOST_ASSIGN_OR_RETURN(o.hidden, ctx.Int("hidden_size", -1));
  if (ctx.Has("hidden_size") && o.hidden < 1) {
    return InvalidArgumentError("attribute \"hidden_size\" must be positive");
  }
  OUTPOST_ASSIGN_OR_RETURN(o.clip, ctx.Float("clip", 0.0f));
  if (ctx.Has("clip") && !(o.clip > 0)) {
    return InvalidArgumentError("attribute \"clip\" must be positive");
  }
  OUTPOST_ASSIGN_OR_RETURN(int64_t input_forget, ctx.Int("input_forget", 0));
  o.input_forget = input_forget != 0;
  OUTPOST_ASSIGN_OR_RETURN(int64_t lbr, ctx.Int("linear_before_reset", 0));
  o.linear_before_reset = lbr != 0;
  OUTPOST_ASSIGN_OR_RETURN(o.layout, ctx.Int("layout", 0));
  if (o.layout != 0 && o.layout != 1) {
    return InvalidArgumentError("attribute \"layout\" must be 0 or 1");
  }
  OUTPOST_ASSIGN_OR_RETURN(o.acts, ReadActivations(ctx, cell, o.dirs));
  return std::unique_ptr<Kernel>(new RnnKernel(o, PackConstantWeights(ctx, o)));
}

Result<std::unique_ptr<Kernel>> MakeSimpleRnn(const KernelBuildContext& ctx) {
  return MakeRnn(ctx, Cell::kRnn);
}
Result<std::unique_ptr<Kernel>> MakeGru(const KernelBuildContext& ctx) {
  return MakeRnn(ctx, Cell::kGru);
}
Result<std::unique_ptr<Kernel>> MakeLstm(const KernelBuildContext& ctx) {
  return MakeRnn(ctx, Cell::kLstm);
}

}  // namespace

void RegisterRnnKernels(KernelRegistry& r) {
  r.Add({"", "RNN", 1, 1000, &MakeSimpleRnn});
  r.Add({"", "GRU", 1, 1000, &MakeGru});
  r.Add({"", "LSTM", 1, 1000, &MakeLstm});
}

}  // namespace outpost::engine::onnx
