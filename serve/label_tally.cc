// Feedback labels counted against the version that answered (label_tally.h).
#include "serve/label_tally.h"

#include <cmath>
#include <utility>

#include "serve/model_config.h"

namespace outpost::serve {

std::vector<double> TensorScores(const engine::Tensor& t, size_t limit) {
  using engine::DataType;
  std::vector<double> out;
  auto take = [&]<typename T>(T) {
    for (T v : t.values<T>()) {
      if (out.size() >= limit) break;
      out.push_back(static_cast<double>(v));
    }
  };
  switch (t.type()) {
    case DataType::kBool:
      take(uint8_t{});
      break;
    case DataType::kUint8:
      take(uint8_t{});
      break;
    case DataType::kUint16:
      take(uint16_t{});
      break;
    case DataType::kUint32:
      take(uint32_t{});
      break;
    case DataType::kUint64:
      take(uint64_t{});
      break;
    case DataType::kInt8:
      take(int8_t{});
      break;
    case DataType::kInt16:
      take(int16_t{});
      break;
    case DataType::kInt32:
      take(int32_t{});
      break;
    case DataType::kInt64:
      take(int64_t{});
      break;
    case DataType::kFp32:
      take(float{});
      break;
    case DataType::kFp64:
      take(double{});
      break;
    default:
      break;
  }
  return out;
}

void LabelTally::Remember(const ModelHandle& handle, std::string_view request_id,
                          std::span<const engine::Tensor> outputs) {
  if (request_id.empty() || request_id.size() > options_.max_request_id_bytes ||
      handle.stats == nullptr || handle.servable == nullptr || outputs.empty()) {
    return;
  }
  const std::vector<double> first = TensorScores(outputs[0], 1);
  if (first.empty() || !std::isfinite(first[0])) return;
  const ModelConfig* config = handle.servable->config.get();
  Tracked tracked{.stats = handle.stats,
                  .score = first[0],
                  .threshold = config != nullptr && config->shadow.version > 0
                                   ? config->shadow.decision_threshold
                                   : 0.5};
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(handle.servable->name);
  if (it == models_.end()) it = models_.emplace(handle.servable->name, PerModel{}).first;
  PerModel& m = it->second;
  tracked.seq = m.next_seq++;
  m.tracked.insert_or_assign(std::string(request_id), tracked);
  m.order.emplace_back(std::string(request_id), tracked.seq);
  while (m.order.size() > options_.max_tracked_requests) {
    // Forgets the oldest, unless its id was remembered again since (a newer entry).
    auto oldest = m.tracked.find(m.order.front().first);
    if (oldest != m.tracked.end() && oldest->second.seq == m.order.front().second) {
      m.tracked.erase(oldest);
    }
    m.order.pop_front();
  }
}

void LabelTally::OnFeedback(std::string_view model, std::string_view request_id, double label,
                            bool trusted) {
  if (!trusted || !std::isfinite(label)) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(model);
  if (it == models_.end()) return;
  auto tracked = it->second.tracked.find(std::string(request_id));
  if (tracked == it->second.tracked.end()) return;
  const Tracked& t = tracked->second;
  t.stats->labelled.fetch_add(1, std::memory_order_relaxed);
  if ((t.score >= t.threshold) == (label >= t.threshold)) {
    t.stats->correct.fetch_add(1, std::memory_order_relaxed);
  }
  // Counted once: a second label for the same request finds nothing. Its place in `order`
  // is dropped when it comes round.
  it->second.tracked.erase(tracked);
}

}  // namespace outpost::serve
