#include "train/training_set.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <set>
#include <tuple>
#include <unordered_set>

#include "base/coding.h"
#include "train/digest.h"

namespace outpost::train {
namespace {

int KindRank(std::string_view kind) {
  if (kind == "hard_example") return 0;
  if (kind == "sample") return 1;
  return 2;  // anomaly
}

// A reading as a float; one beyond float's range (no sensor reads 1e39) is missing.
float ToFloat(double v) {
  if (!(std::fabs(v) <= static_cast<double>(std::numeric_limits<float>::max()))) {
    return std::numeric_limits<float>::quiet_NaN();
  }
  return static_cast<float>(v);
}

struct Parsed {
  const EdgeRecord* record;
  RecordPayload payload;
};

// (site_id, request_id)
using JoinKey = std::pair<std::string, std::string>;

struct RangeKey {
  std::string site_id, node_id, stream, kind;
  auto operator<=>(const RangeKey&) const = default;
};

}  // namespace

bool InHoldout(std::string_view site_id, std::string_view request_id, std::string_view salt,
               double fraction) {
  std::string key;
  key.reserve(site_id.size() + request_id.size() + salt.size() + 2);
  key.append(site_id).push_back('\0');
  key.append(request_id).push_back('\0');
  key.append(salt);
  std::array<uint8_t, 32> digest = Sha256(key);
  const uint64_t v = GetU64BE(reinterpret_cast<const char*>(digest.data()));
  return static_cast<double>(v) * 0x1.0p-64 < fraction;
}

namespace {

Status CheckJoinOptions(const JoinOptions& options) {
  if (options.features.empty() || options.features.size() > kMaxDatasetCols) {
    return InvalidArgumentError("between 1 and 4096 features must be named");
  }
  if (!(options.holdout_fraction >= 0.0 && options.holdout_fraction <= 1.0)) {
    return InvalidArgumentError("the holdout fraction must be in [0, 1]");
  }
  for (const auto& [name, value] : options.labels) {
    if (value != 0.0f && value != 1.0f) {
      return InvalidArgumentError("label \"" + name + "\" must map to 0 or 1");
    }
  }
  return Status::Ok();
}

// Step 1: parses the records of the four kinds that join and keeps those of `model`:
// feedback in `feedback`, row records with a request id in `rows_of`.
void ParseJoinable(std::span<const EdgeRecord> records, const std::string& model,
                   JoinCounts& counts, std::vector<Parsed>& feedback,
                   std::map<JoinKey, std::vector<Parsed>>& rows_of) {
  for (const EdgeRecord& record : records) {
    const bool is_feedback = record.kind == "feedback";
    if (!is_feedback && record.kind != "hard_example" && record.kind != "sample" &&
        record.kind != "anomaly") {
      continue;
    }
    Result<RecordPayload> payload = ParseRecordPayload(record.kind, record.payload);
    if (!payload.ok()) {
      ++counts.malformed;
      continue;
    }
    if (payload->model != model) {
      ++counts.other_model;
      continue;
    }
    if (is_feedback) {
      feedback.push_back({&record, std::move(payload).value()});
    } else {
      JoinKey key{record.site_id, payload->request_id};
      if (key.second.empty()) continue;  // a row record without a request id joins nothing
      rows_of[key].push_back({&record, std::move(payload).value()});
    }
  }
}

// Step 2: sorts `feedback` and picks one per (site, request): the one created last, then
// node id, then seq. Maps each key to its winner's index; counts the superseded ones.
std::map<JoinKey, size_t> PickFeedback(std::vector<Parsed>& feedback, JoinCounts& counts) {
  std::sort(feedback.begin(), feedback.end(), [](const Parsed& a, const Parsed& b) {
    return std::tie(a.record->site_id, a.record->node_id, a.record->seq) <
           std::tie(b.record->site_id, b.record->node_id, b.record->seq);
  });
  std::map<JoinKey, size_t> winner;
  for (size_t i = 0; i < feedback.size(); ++i) {
    const Parsed& f = feedback[i];
    if (f.payload.request_id.empty()) continue;
    JoinKey key{f.record->site_id, f.payload.request_id};
    auto [it, fresh] = winner.emplace(key, i);
    if (fresh) continue;
    ++counts.superseded;
    const EdgeRecord& held = *feedback[it->second].record;
    if (std::tie(f.record->created_ms, f.record->node_id, f.record->seq) >
        std::tie(held.created_ms, held.node_id, held.seq)) {
      it->second = i;
    }
  }
  return winner;
}

// Counts record `r` into the range of its (site, node, stream, kind).
void CountRange(std::map<RangeKey, RecordRange>& ranges, const EdgeRecord& r) {
  RangeKey key{r.site_id, r.node_id, r.stream, r.kind};
  auto [it, fresh] =
      ranges.emplace(key, RecordRange{r.site_id, r.node_id, r.stream, r.kind, r.seq, r.seq, 0});
  it->second.first_seq = std::min(it->second.first_seq, r.seq);
  it->second.last_seq = std::max(it->second.last_seq, r.seq);
  ++it->second.count;
}

// True when `p` carries a value for every feature.
bool Complete(const RecordPayload& p, const std::vector<std::string>& features) {
  if (!p.inputs.has_value()) return false;
  for (const std::string& name : features) {
    if (!p.inputs->contains(name)) return false;
  }
  return true;
}

// The feedback's label as 0 or 1: a number that is one, or a string the options map.
std::optional<float> LabelOf(const RecordPayload& feedback,
                             const std::map<std::string, float>& labels) {
  std::optional<float> label;
  if (const double* number = std::get_if<double>(&feedback.label)) {
    if (*number == 0.0 || *number == 1.0) label = static_cast<float>(*number);
  } else if (const std::string* text = std::get_if<std::string>(&feedback.label)) {
    auto it = labels.find(*text);
    if (it != labels.end()) label = it->second;
  }
  return label;
}

// The row record of `key` whose inputs have every feature, hard examples first, then
// samples, then anomalies. Null, counted, when there is none (unmatched), the records name
// different rows (ambiguous), or none is complete (incomplete).
const Parsed* JoinedRowRecord(std::map<JoinKey, std::vector<Parsed>>& rows_of, const JoinKey& key,
                              const std::vector<std::string>& features, JoinCounts& counts) {
  auto it = rows_of.find(key);
  if (it == rows_of.end()) {
    ++counts.unmatched;
    return nullptr;
  }
  std::vector<Parsed>& candidates = it->second;
  std::set<int64_t> distinct_rows;
  for (const Parsed& c : candidates) distinct_rows.insert(c.payload.row);
  if (distinct_rows.size() > 1) {
    ++counts.ambiguous;
    return nullptr;
  }
  std::sort(candidates.begin(), candidates.end(), [](const Parsed& a, const Parsed& b) {
    return std::make_tuple(KindRank(a.record->kind), std::cref(a.record->node_id), a.record->seq) <
           std::make_tuple(KindRank(b.record->kind), std::cref(b.record->node_id), b.record->seq);
  });
  for (const Parsed& c : candidates) {
    if (Complete(c.payload, features)) return &c;
  }
  ++counts.incomplete;
  return nullptr;
}

// Adds the example (the features of `source`, `label`) to the holdout or the training side,
// as `key` falls. `row` is scratch space of one value per feature.
void AddExample(const JoinKey& key, const RecordPayload& source, float label,
                const JoinOptions& options, std::vector<float>& row, EdgeExamples& out) {
  for (size_t c = 0; c < options.features.size(); ++c) {
    row[c] = ToFloat(source.inputs->find(options.features[c])->second);
  }
  Dataset& target = InHoldout(key.first, key.second, options.salt, options.holdout_fraction)
                        ? out.holdout
                        : out.train;
  target.features.insert(target.features.end(), row.begin(), row.end());
  target.labels.push_back(label);
  ++target.rows;
  ++out.counts.labelled;
}

}  // namespace

Result<EdgeExamples> JoinEdgeRecords(std::span<const EdgeRecord> records,
                                     const JoinOptions& options) {
  OUTPOST_RETURN_IF_ERROR(CheckJoinOptions(options));
  EdgeExamples out;
  out.train.feature_names = options.features;
  out.holdout.feature_names = options.features;

  // 1. Parse; keep the four kinds of this model.
  std::vector<Parsed> feedback;
  std::map<JoinKey, std::vector<Parsed>> rows_of;
  ParseJoinable(records, options.model, out.counts, feedback, rows_of);
  out.counts.feedback = feedback.size();

  // 2. One feedback per (site, request): the one created last, then node id, then seq.
  const std::map<JoinKey, size_t> winner = PickFeedback(feedback, out.counts);

  // 3–6, in the order of the feedback records.
  std::map<RangeKey, RecordRange> ranges;
  std::vector<float> row(options.features.size());
  for (size_t i = 0; i < feedback.size(); ++i) {
    const Parsed& f = feedback[i];
    if (f.payload.request_id.empty()) {
      ++out.counts.unmatched;
      continue;
    }
    JoinKey key{f.record->site_id, f.payload.request_id};
    if (winner.at(key) != i) continue;  // superseded, counted above

    // The label first: a bad one makes the join pointless.
    std::optional<float> label = LabelOf(f.payload, options.labels);
    if (!label.has_value()) {
      ++out.counts.bad_label;
      continue;
    }

    const RecordPayload* source = nullptr;
    const EdgeRecord* joined = nullptr;
    if (Complete(f.payload, options.features)) {
      source = &f.payload;
    } else {
      const Parsed* c = JoinedRowRecord(rows_of, key, options.features, out.counts);
      if (c == nullptr) continue;
      source = &c->payload;
      joined = c->record;
    }
    AddExample(key, *source, *label, options, row, out);
    CountRange(ranges, *f.record);
    if (joined != nullptr) CountRange(ranges, *joined);
  }
  for (auto& [key, range] : ranges) out.ranges.push_back(std::move(range));
  return out;
}

}  // namespace outpost::train
