// Einsum: any equation of numpy's einsum grammar (explicit or implicit output, repeated
// letters for diagonals, "..." for broadcast dimensions), over the numeric types.
//
// The equation is parsed once when the model is compiled. A run walks every combination of
// the equation's labels, output labels outermost, and accumulates the product of the operands;
// each operand reads through one stride per label (repeated letters add their strides).
#include <algorithm>
#include <array>

#include "engine/onnx/kernel_util.h"

namespace outpost::engine::onnx {
namespace {

// Labels: 0-51 for the letters, 52 + i for the i-th broadcast ("...") dimension, counted from
// the innermost.
inline constexpr int kEllipsisLabel = 52;
inline constexpr size_t kMaxLabels = 52 + kMaxRank;

struct Term {
  std::vector<int> labels;  // kEllipsisMarker where "..." stands
  bool has_ellipsis = false;
};
inline constexpr int kEllipsisMarker = -1;

int LabelOf(char c) {
  if (c >= 'a' && c <= 'z') return c - 'a';
  if (c >= 'A' && c <= 'Z') return 26 + (c - 'A');
  return -2;
}

Result<Term> ParseTerm(std::string_view s) {
  Term t;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == ' ') continue;
    if (c == '.') {
      if (t.has_ellipsis || s.substr(i, 3) != "...") {
        return InvalidArgumentError("attribute \"equation\" has a malformed \"...\"");
      }
      t.has_ellipsis = true;
      t.labels.push_back(kEllipsisMarker);
      i += 2;
      continue;
    }
    const int l = LabelOf(c);
    if (l < 0) {
      return InvalidArgumentError(std::string("attribute \"equation\" has an invalid character '") +
                                  c + "'");
    }
    t.labels.push_back(l);
  }
  return t;
}

// Most operands an equation may name.
inline constexpr size_t kMaxOperands = 16;

class EinsumKernel : public Kernel {
 public:
  EinsumKernel(std::vector<Term> inputs, Term output, bool implicit)
      : inputs_(std::move(inputs)), output_(std::move(output)), implicit_(implicit) {}

  Status Infer(InferContext& ctx) const override {
    if (ctx.num_inputs() != inputs_.size()) {
      return InvalidArgumentError("the equation names " + std::to_string(inputs_.size()) +
                                  " operands, the node has " + std::to_string(ctx.num_inputs()));
    }
    const DataType t = ctx.input_type(0);
    OUTPOST_RETURN_IF_ERROR(CheckType(t, kNumericTypes, "Inputs"));
    std::array<std::span<const int64_t>, kMaxOperands> shapes;
    for (size_t i = 0; i < inputs_.size(); ++i) {
      if (ctx.input_type(i) != t) return InvalidArgumentError("the operands differ in element type");
      shapes[i] = ctx.input_shape(i);
    }
    Resolved r;
    OUTPOST_RETURN_IF_ERROR(Resolve(std::span(shapes).first(inputs_.size()), r));
    Shape out;
    for (size_t i = 0; i < r.n_out; ++i) out.push_back(r.size[static_cast<size_t>(r.order[i])]);
    OUTPOST_RETURN_IF_ERROR(CheckedElements(out).status());
    // The run visits every combination of the labels: bounded, so that a small model cannot
    // ask for an endless loop ("i,j->" over two long vectors).
    double combinations = 1;
    for (size_t i = 0; i < r.n_order; ++i) {
      combinations *= static_cast<double>(r.size[static_cast<size_t>(r.order[i])]);
    }
    if (combinations > static_cast<double>(int64_t{1} << 34)) {
      return ResourceExhaustedError("the equation's label combinations are too many");
    }
    ctx.SetOutput(0, t, std::move(out));
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    const size_t n_in = ctx.num_inputs();
    std::array<std::span<const int64_t>, kMaxOperands> shapes;
    for (size_t i = 0; i < n_in; ++i) shapes[i] = ctx.input(i).shape;
    Resolved r;
    OUTPOST_RETURN_IF_ERROR(Resolve(std::span(shapes).first(n_in), r));
    const TensorRef& y = ctx.output(0);
    return Dispatch<kNumericTypes & ~TypeBit(DataType::kBool)>(y.type, [&](auto tag) {
      using T = decltype(tag);
      using C = MathT<T>;
      T* out = y.mut<T>();
      std::array<int64_t, kMaxLabels> counter{};
      std::array<int64_t, kMaxOperands> offset{};
      std::array<const T*, kMaxOperands> data{};
      for (size_t k = 0; k < n_in; ++k) data[k] = ctx.input(k).get<T>();
      int64_t out_index = 0;
      int64_t total = 1;
      for (size_t i = 0; i < r.n_order; ++i) total *= r.size[static_cast<size_t>(r.order[i])];
      if (y.count == 0) return Status();
      if (total == 0) {
        std::fill_n(out, y.count, T(C(0)));
        return Status();
      }
      // Summed labels are innermost: each output element is `inner` consecutive iterations.
      const int64_t inner = total / y.count;
      C acc = 0;
      for (int64_t it = 0; it < total; ++it) {
        C prod = 1;
        for (size_t k = 0; k < n_in; ++k) prod = WrapMul(prod, C(data[k][offset[k]]));
        acc = WrapAdd(acc, prod);
        if ((it + 1) % inner == 0) {
          out[out_index++] = T(acc);
          acc = 0;
        }
        for (size_t p = r.n_order; p-- > 0;) {
          const size_t l = static_cast<size_t>(r.order[p]);
          if (++counter[p] < r.size[l]) {
            for (size_t k = 0; k < n_in; ++k) offset[k] += r.stride[k][l];
            break;
          }
          counter[p] = 0;
          for (size_t k = 0; k < n_in; ++k) offset[k] -= r.stride[k][l] * (r.size[l] - 1);
        }
      }
      return Status();
    });
  }

 private:
  // The equation applied to given shapes; fixed-size, so a run allocates nothing.
  struct Resolved {
    std::array<int64_t, kMaxLabels> size{};
    std::array<std::array<int64_t, kMaxLabels>, kMaxOperands> stride{};  // per operand
    std::array<int, kMaxLabels> order{};  // output labels (n_out), then the summed ones
    size_t n_order = 0, n_out = 0;
  };

  Status Resolve(std::span<const std::span<const int64_t>> shapes, Resolved& r) const {
    std::array<bool, kMaxLabels> seen{}, in_output{};
    std::array<int, kMaxLabels> uses{};
    r.size.fill(1);
    size_t ellipsis_rank = 0;
    for (size_t k = 0; k < shapes.size(); ++k) {
      const Term& t = inputs_[k];
      const std::span<const int64_t> s = shapes[k];
      const size_t named = t.labels.size() - (t.has_ellipsis ? 1 : 0);
      if (s.size() < named || (!t.has_ellipsis && s.size() != named)) {
        return InvalidArgumentError("operand " + std::to_string(k) + " has rank " +
                                    std::to_string(s.size()) + ", the equation gives it " +
                                    std::to_string(named) + " labels");
      }
      const size_t er = s.size() - named;
      if (er > kMaxRank) return InvalidArgumentError("too many broadcast dimensions");
      ellipsis_rank = std::max(ellipsis_rank, er);
      std::array<int64_t, kMaxRank + 52> st{};
      if (s.size() > st.size()) return InvalidArgumentError("operand rank is too large");
      int64_t acc = 1;
      for (size_t d = s.size(); d-- > 0;) {
        st[d] = acc;
        acc *= s[d];
      }
      size_t dim = 0;
      for (int l : t.labels) {
        if (l == kEllipsisMarker) {
          for (size_t e = 0; e < er; ++e, ++dim) {
            const size_t label = static_cast<size_t>(kEllipsisLabel) + (er - 1 - e);
            OUTPOST_RETURN_IF_ERROR(Bind(r, seen, label, s[dim], st[dim], k, true));
          }
          continue;
        }
        const size_t label = static_cast<size_t>(l);
        ++uses[label];
        OUTPOST_RETURN_IF_ERROR(Bind(r, seen, label, s[dim], st[dim], k, false));
        ++dim;
      }
    }
    r.n_order = 0;
    auto put = [&r, &in_output](int l) {
      r.order[r.n_order++] = l;
      in_output[static_cast<size_t>(l)] = true;
    };
    auto put_ellipsis = [&] {
      for (size_t e = ellipsis_rank; e-- > 0;) put(kEllipsisLabel + static_cast<int>(e));
    };
    if (implicit_) {
      put_ellipsis();
      for (int l = 0; l < kEllipsisLabel; ++l) {
        if (uses[static_cast<size_t>(l)] == 1) put(l);
      }
    } else {
      for (int l : output_.labels) {
        if (l == kEllipsisMarker) {
          put_ellipsis();
        } else if (!seen[static_cast<size_t>(l)]) {
          return InvalidArgumentError("the output names a label no operand has");
        } else if (in_output[static_cast<size_t>(l)]) {
          return InvalidArgumentError("the output repeats a label");
        } else {
          put(l);
        }
      }
    }
    r.n_out = r.n_order;
    for (size_t l = 0; l < kMaxLabels; ++l) {
      if (seen[l] && !in_output[l]) r.order[r.n_order++] = static_cast<int>(l);
    }
    return Status();
  }

  // Records label's size (broadcast dims may be 1) and operand k's stride for it.
  static Status Bind(Resolved& r, std::array<bool, kMaxLabels>& seen, size_t label, int64_t dim,
                     int64_t stride, size_t k, bool broadcast) {
    // A broadcast dimension of 1 keeps stride 0 and takes the other operands' size.
    if (broadcast && dim == 1) {
      seen[label] = true;
      return Status();
    }
    if (!seen[label] || (broadcast && r.size[label] == 1)) {
      seen[label] = true;
      r.size[label] = dim;
    } else if (r.size[label] != dim) {
      return InvalidArgumentError("a label has sizes " + std::to_string(r.size[label]) + " and " +
                                  std::to_string(dim));
    }
    r.stride[k][label] += stride;
    return Status();
  }

  std::vector<Term> inputs_;
  Term output_;
  bool implicit_;
};

Result<std::unique_ptr<Kernel>> MakeEinsum(const KernelBuildContext& ctx) {
  OUTPOST_ASSIGN_OR_RETURN(std::string eq, ctx.String("equation", ""));
  if (eq.empty()) return InvalidArgumentError("attribute \"equation\" is required");
  const size_t arrow = eq.find("->");
  const std::string lhs = eq.substr(0, arrow);
  std::vector<Term> inputs;
  size_t start = 0;
  while (true) {
    const size_t comma = lhs.find(',', start);
    OUTPOST_ASSIGN_OR_RETURN(Term t, ParseTerm(std::string_view(lhs).substr(
                                         start, comma == std::string::npos ? std::string::npos
                                                                           : comma - start)));
    inputs.push_back(std::move(t));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  Term output;
  if (arrow != std::string::npos) {
    OUTPOST_ASSIGN_OR_RETURN(output, ParseTerm(std::string_view(eq).substr(arrow + 2)));
  }
  if (inputs.size() > kMaxOperands) {
    return UnimplementedError("attribute \"equation\" names more than 16 operands");
  }
  if (ctx.num_inputs() != inputs.size()) {
    return InvalidArgumentError("attribute \"equation\" names " + std::to_string(inputs.size()) +
                                " operands, the node has " + std::to_string(ctx.num_inputs()));
  }
  return std::unique_ptr<Kernel>(
      new EinsumKernel(std::move(inputs), std::move(output), arrow == std::string::npos));
}

}  // namespace

void RegisterEinsumKernels(KernelRegistry& r) {
  r.Add({"", "Einsum", 12, 1000, &MakeEinsum});
}

}  // namespace outpost::engine::onnx
