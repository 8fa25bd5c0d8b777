// Detection post-processing: NonMaxSuppression. Its output length depends on the scores, so
// its shape is computed during each run (the planner's dynamic path, like NonZero): Infer()
// runs the selection to count the boxes and Compute() runs it again to write them, in the
// kernel's scratch space.
#include <algorithm>
#include <cmath>

#include "engine/onnx/kernel_util.h"

namespace outpost::engine::onnx {
namespace {

struct Candidate {
  float score;
  int64_t index;
};

class NmsKernel : public Kernel {
 public:
  explicit NmsKernel(bool center_point_box) : center_(center_point_box) {}

  Status Infer(InferContext& ctx) const override {
    OUTPOST_RETURN_IF_ERROR(CheckShapes(ctx.input_shape(0), ctx.input_shape(1)));
    if (ctx.input_type(0) != DataType::kFp32 || ctx.input_type(1) != DataType::kFp32) {
      return UnimplementedError("NonMaxSuppression supports FLOAT boxes and scores only");
    }
    if (ctx.has_input(2)) {
      OUTPOST_RETURN_IF_ERROR(CheckType(ctx.input_type(2), kIndexTypes,
                                        "max_output_boxes_per_class"));
    }
    for (size_t i = 0; i < ctx.num_inputs(); ++i) {
      if (ctx.has_input(i) && ctx.input_value(i) == nullptr) return ctx.Defer();
    }
    TensorRef in[5];
    for (size_t i = 0; i < 5; ++i) {
      if (ctx.has_input(i)) in[i] = *ctx.input_value(i);
    }
    const int64_t spatial = ctx.input_shape(0)[1];
    std::vector<Candidate> candidates(static_cast<size_t>(spatial));
    std::vector<int64_t> selected(static_cast<size_t>(spatial));
    OUTPOST_ASSIGN_OR_RETURN(int64_t count,
                             Select(in, candidates.data(), selected.data(), nullptr));
    ctx.RequestScratch(static_cast<size_t>(spatial) * (sizeof(Candidate) + sizeof(int64_t)) + 64);
    ctx.SetOutput(0, DataType::kInt64, {count, 3});
    return Status();
  }

  Status Compute(ComputeContext& ctx) const override {
    TensorRef in[5];
    for (size_t i = 0; i < 5; ++i) {
      if (ctx.has_input(i)) in[i] = ctx.input(i);
    }
    const int64_t spatial = in[0].shape[1];
    auto* candidates = reinterpret_cast<Candidate*>(
        (reinterpret_cast<uintptr_t>(ctx.scratch().data()) + 63) / 64 * 64);
    auto* selected = reinterpret_cast<int64_t*>(candidates + spatial);
    OUTPOST_ASSIGN_OR_RETURN(int64_t count,
                             Select(in, candidates, selected, ctx.output(0).mut<int64_t>()));
    if (count != ctx.output(0).shape[0]) {
      return InternalError("NonMaxSuppression selected a different number of boxes");
    }
    return Status();
  }

 private:
  static Status CheckShapes(const Shape& boxes, const Shape& scores) {
    if (boxes.size() != 3 || boxes[2] != 4) {
      return InvalidArgumentError("boxes must be [num_batches, spatial_dimension, 4]");
    }
    if (scores.size() != 3 || scores[0] != boxes[0] || scores[2] != boxes[1]) {
      return InvalidArgumentError("scores must be [num_batches, num_classes, spatial_dimension]");
    }
    return Status();
  }

  // Corners (y1, x1, y2, x2) of box i, ordered so that y1 <= y2 and x1 <= x2.
  void Corners(const float* b, float out[4]) const {
    if (center_) {
      const float xc = b[0], yc = b[1], w = b[2], h = b[3];
      out[0] = yc - h / 2;
      out[1] = xc - w / 2;
      out[2] = yc + h / 2;
      out[3] = xc + w / 2;
    } else {
      out[0] = std::min(b[0], b[2]);
      out[1] = std::min(b[1], b[3]);
      out[2] = std::max(b[0], b[2]);
      out[3] = std::max(b[1], b[3]);
    }
  }

  // Whether box a suppresses box b: their intersection over union exceeds the threshold.
  bool Suppresses(const float* a, const float* b, float iou_threshold) const {
    float ca[4], cb[4];
    Corners(a, ca);
    Corners(b, cb);
    const float area_a = (ca[2] - ca[0]) * (ca[3] - ca[1]);
    const float area_b = (cb[2] - cb[0]) * (cb[3] - cb[1]);
    if (area_a <= 0 || area_b <= 0) return false;
    const float ih = std::max(0.0f, std::min(ca[2], cb[2]) - std::max(ca[0], cb[0]));
    const float iw = std::max(0.0f, std::min(ca[3], cb[3]) - std::max(ca[1], cb[1]));
    const float inter = ih * iw;
    if (inter <= 0) return false;
    return inter / (area_a + area_b - inter) > iou_threshold;
  }

  // Runs the selection for every batch entry and class; writes (batch, class, box) triples to
  // `out` when it is not null and returns their number.
  Result<int64_t> Select(const TensorRef in[5], Candidate* candidates, int64_t* selected,
                         int64_t* out) const {
    const int64_t batches = in[0].shape[0], spatial = in[0].shape[1];
    const int64_t classes = in[1].shape[1];
    const int64_t max_out = in[2].data != nullptr && in[2].count > 0 ? ReadInt64(in[2], 0) : 0;
    const float iou = in[3].data != nullptr && in[3].count > 0
                          ? static_cast<float>(ReadDouble(in[3], 0))
                          : 0.0f;
    const bool has_threshold = in[4].data != nullptr && in[4].count > 0;
    const float score_threshold = has_threshold ? static_cast<float>(ReadDouble(in[4], 0)) : 0;
    if (iou < 0 || iou > 1) return InvalidArgumentError("iou_threshold must be in [0, 1]");
    const float* boxes = in[0].get<float>();
    const float* scores = in[1].get<float>();
    int64_t total = 0;
    if (max_out <= 0) return total;
    for (int64_t b = 0; b < batches; ++b) {
      const float* bb = boxes + b * spatial * 4;
      for (int64_t c = 0; c < classes; ++c) {
        const float* sc = scores + (b * classes + c) * spatial;
        int64_t n = 0;
        for (int64_t i = 0; i < spatial; ++i) {
          if (!has_threshold || sc[i] > score_threshold) candidates[n++] = {sc[i], i};
        }
        std::stable_sort(candidates, candidates + n, [](const Candidate& x, const Candidate& y) {
          return x.score > y.score;
        });
        int64_t kept = 0;
        for (int64_t k = 0; k < n && kept < max_out; ++k) {
          const float* box = bb + candidates[k].index * 4;
          bool keep = true;
          for (int64_t s = 0; s < kept && keep; ++s) {
            keep = !Suppresses(bb + selected[s] * 4, box, iou);
          }
          if (!keep) continue;
          selected[kept++] = candidates[k].index;
          if (out != nullptr) {
            out[total * 3] = b;
            out[total * 3 + 1] = c;
            out[total * 3 + 2] = candidates[k].index;
          }
          ++total;
        }
      }
    }
    return total;
  }

  bool center_;
};

Result<std::unique_ptr<Kernel>> MakeNms(const KernelBuildContext& ctx) {
  OUTPOST_RETURN_IF_ERROR(ctx.ExpectInputs(2, 5));
  OUTPOST_ASSIGN_OR_RETURN(int64_t center, ctx.Int("center_point_box", 0));
  if (center != 0 && center != 1) {
    return InvalidArgumentError("attribute \"center_point_box\" must be 0 or 1");
  }
  return std::unique_ptr<Kernel>(new NmsKernel(center == 1));
}

}  // namespace

void RegisterDetectKernels(KernelRegistry& r) {
  r.Add({"", "NonMaxSuppression", 10, 1000, &MakeNms});
}

}  // namespace outpost::engine::onnx
