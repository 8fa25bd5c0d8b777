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
    std::vector<Shape> shapes;
    for (size_t i = 0; i < inputs_.size(); ++i) {
      if (ctx.input_type(i) != t) return InvalidArgumentError("the operands differ in element type");
      shapes.push_back(ctx.input_shape(i));
    }
    Resolved r;
    OUTPOST_RETURN_IF_ERROR(Resolve(shapes, r));
    OUTPOST_RETURN_IF_ERROR(CheckedElements(r.out_shape).status());
    ctx.SetOutput(0, t, r.out_shape);
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    Resolved r;
    std::vector<Shape> shapes;
    for (size_t i = 0; i < ctx.num_inputs(); ++i) {
      shapes.emplace_back(ctx.input(i).shape.begin(), ctx.input(i).shape.end());
    }
    OUTPOST_RETURN_IF_ERROR(Resolve(shapes, r));
    const TensorRef& y = ctx.output(0);
    return Dispatch<kNumericTypes & ~TypeBit(DataType::kBool)>(y.type, [&](auto tag) {
      using T = decltype(tag);
      using C = MathT<T>;
      T* out = y.mut<T>();
      const size_t n_in = ctx.num_inputs();
      const size_t n_labels = r.order.size();
      std::array<int64_t, kMaxLabels> counter{};
      std::vector<int64_t> offset(n_in, 0);
      int64_t out_index = 0;
      int64_t total = 1;
      for (int l : r.order) total *= r.size[static_cast<size_t>(l)];
      const int64_t inner = total / std::max<int64_t>(1, y.count);
      if (y.count == 0) return Status();
      C acc = 0;
      for (int64_t it = 0; it < total; ++it) {
        C prod = 1;
        for (size_t k = 0; k < n_in; ++k) {
          prod = WrapMul(prod, C(ctx.input(k).get<T>()[offset[k]]));
        }
        acc = WrapAdd(acc, prod);
        if ((it + 1) % inner == 0) {
          out[out_index++] = T(acc);
          acc = 0;
        }
        // Advance the innermost label.
        for (size_t p = n_labels; p-- > 0;) {
          const size_t l = static_cast<size_t>(r.order[p]);
          if (++counter[p] < r.size[l]) {
            for (size_t k = 0; k < n_in; ++k) offset[k] += r.stride[k][l];
            break;
          }
          counter[p] = 0;
          for (size_t k = 0; k < n_in; ++k) offset[k] -= r.stride[k][l] * (r.size[l] - 1);
        }
      }
      if (total == 0) std::fill_n(out, y.count, T(C(0)));
      return Status();
    });
  }

 private:
  struct Resolved {
    std::array<int64_t, kMaxLabels> size{};
    std::vector<std::array<int64_t, kMaxLabels>> stride;  // per operand
    std::vector<int> order;                                // output labels, then summed ones
    Shape out_shape;
  };

  Status Resolve(const std::vector<Shape>& shapes, Resolved& r) const {
    std::array<bool, kMaxLabels> seen{};
    std::array<int, kMaxLabels> uses{};
    r.size.fill(1);
    size_t ellipsis_rank = 0;
    r.stride.assign(shapes.size(), std::array<int64_t, kMaxLabels>{});
    for (size_t k = 0; k < shapes.size(); ++k) {
      const Term& t = inputs_[k];
      const Shape& s = shapes[k];
      const size_t named = t.labels.size() - (t.has_ellipsis ? 1 : 0);
      if (s.size() < named || (!t.has_ellipsis && s.size() != named)) {
        return InvalidArgumentError("operand " + std::to_string(k) + " has rank " +
                                    std::to_string(s.size()) + ", the equation gives it " +
                                    std::to_string(named) + " labels");
      }
      const size_t er = s.size() - named;
      if (er > kMaxRank) return InvalidArgumentError("too many broadcast dimensions");
      ellipsis_rank = std::max(ellipsis_rank, er);
      // Strides of the operand's dimensions.
      std::array<int64_t, kMaxRank> st{};
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
    // Output labels.
    std::vector<int> out_labels;
    auto add_ellipsis = [&] {
      for (size_t e = ellipsis_rank; e-- > 0;) {
        out_labels.push_back(kEllipsisLabel + static_cast<int>(e));
      }
    };
    if (implicit_) {
      add_ellipsis();
      for (int l = 0; l < kEllipsisLabel; ++l) {
        if (uses[static_cast<size_t>(l)] == 1) out_labels.push_back(l);
      }
    } else {
      for (int l : output_.labels) {
        if (l == kEllipsisMarker) {
          add_ellipsis();
        } else if (!seen[static_cast<size_t>(l)]) {
          return InvalidArgumentError("the output names a label no operand has");
        } else if (std::count(out_labels.begin(), out_labels.end(), l) > 0) {
          return InvalidArgumentError("the output repeats a label");
        } else {
          out_labels.push_back(l);
        }
      }
    }
    r.order = out_labels;
    for (size_t l = 0; l < kMaxLabels; ++l) {
      if (seen[l] && std::count(out_labels.begin(), out_labels.end(), static_cast<int>(l)) == 0) {
        r.order.push_back(static_cast<int>(l));
      }
    }
    r.out_shape.clear();
    for (int l : out_labels) r.out_shape.push_back(r.size[static_cast<size_t>(l)]);
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
