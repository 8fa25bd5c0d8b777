#include "train/retrain.h"

#include "base/file.h"
#include "base/json_writer.h"

namespace outpost::train {
namespace {

void WriteMetrics(JsonWriter& w, const BinaryMetrics& m) {
  auto optional = [&w](const std::optional<double>& v) {
    if (v.has_value()) {
      w.Double(*v);
    } else {
      w.Null();
    }
  };
  w.Key("auc");
  optional(m.auc);
  w.Key("accuracy");
  optional(m.accuracy);
  w.Key("logloss");
  optional(m.logloss);
  w.Key("roc");
  if (m.roc.empty()) {
    w.Null();
  } else {
    w.BeginArray();
    for (const auto& [fpr, tpr] : m.roc) {
      w.BeginArray();
      w.Double(fpr);
      w.Double(tpr);
      w.EndArray();
    }
    w.EndArray();
  }
  w.Key("calibration");
  w.BeginArray();
  for (const CalibrationBin& bin : m.calibration) {
    w.BeginObject();
    w.Key("p");
    w.Double(bin.mean_p);
    w.Key("rate");
    w.Double(bin.rate);
    w.Key("rows");
    w.Int(bin.rows);
    w.EndObject();
  }
  w.EndArray();
}

Result<BinaryMetrics> Score(std::string_view model_bytes, const Dataset& holdout) {
  OUTPOST_ASSIGN_OR_RETURN(
      Predictions p, ReferencePredict(model_bytes, holdout.features, holdout.rows, holdout.cols()));
  if (p.values.size() != static_cast<size_t>(holdout.rows)) {
    return InvalidArgumentError("the model is not a binary classifier (" +
                                std::to_string(p.values.size()) + " outputs for " +
                                std::to_string(holdout.rows) + " rows)");
  }
  return EvaluateBinary(p.values, holdout.labels);
}

// metrics.json: the decision, the holdout and both models' metrics.
std::string MetricsJson(const RetrainInputs& inputs, const TrainConfig& config,
                        const RetrainResult& result, int workers) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Key("v");
  w.Int(1);
  w.Key("model");
  w.String(inputs.model);
  w.Key("version");
  w.Int(inputs.version);
  w.Key("decision");
  w.String(result.candidate ? "candidate" : "rejected");
  w.Key("metric");
  w.String(MetricName(config.metric));
  w.Key("margin");
  w.Double(config.margin);
  w.Key("reason");
  w.String(result.reason);
  w.Key("holdout");
  w.BeginObject();
  w.Key("rows");
  w.Int(result.edge.holdout.rows);
  w.Key("positives");
  w.Int(result.challenger.positives);
  w.EndObject();
  w.Key("challenger");
  w.BeginObject();
  WriteMetrics(w, result.challenger);
  w.EndObject();
  w.Key("champion");
  if (result.champion.has_value()) {
    w.BeginObject();
    w.Key("version");
    w.Int(inputs.champion->version);
    WriteMetrics(w, *result.champion);
    w.EndObject();
  } else {
    w.Null();
  }
  w.Key("workers");
  w.Int(workers);
  w.EndObject();
  out.push_back('\n');
  return out;
}

// The "records" array of lineage.json: the edge records the training set came from.
void WriteRecordRanges(JsonWriter& w, const std::vector<RecordRange>& ranges) {
  w.BeginArray();
  for (const RecordRange& r : ranges) {
    w.BeginObject();
    w.Key("site_id");
    w.String(r.site_id);
    w.Key("node_id");
    w.String(r.node_id);
    w.Key("stream");
    w.String(r.stream);
    w.Key("kind");
    w.String(r.kind);
    w.Key("first_seq");
    w.Uint(r.first_seq);
    w.Key("last_seq");
    w.Uint(r.last_seq);
    w.Key("count");
    w.Uint(r.count);
    w.EndObject();
  }
  w.EndArray();
}

// The "join" object of lineage.json: what the join of edge records counted.
void WriteJoinCounts(JsonWriter& w, const JoinCounts& c) {
  w.BeginObject();
  const std::pair<const char*, uint64_t> counts[] = {
      {"feedback", c.feedback},     {"labelled", c.labelled},     {"unmatched", c.unmatched},
      {"ambiguous", c.ambiguous},   {"incomplete", c.incomplete}, {"bad_label", c.bad_label},
      {"superseded", c.superseded}, {"malformed", c.malformed},   {"other_model", c.other_model},
  };
  for (const auto& [key, value] : counts) {
    w.Key(key);
    w.Uint(value);
  }
  w.EndObject();
}

// lineage.json: the parent version and every input of the training set and the holdout.
std::string LineageJson(const RetrainInputs& inputs, const RetrainResult& result,
                        const std::string& original_sha256, const std::string& holdout_sha256) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Key("v");
  w.Int(1);
  w.Key("model");
  w.String(inputs.model);
  w.Key("version");
  w.Int(inputs.version);
  w.Key("parent_version");
  if (inputs.champion.has_value()) {
    w.Int(inputs.champion->version);
  } else {
    w.Null();
  }
  w.Key("training_set");
  w.BeginObject();
  w.Key("sha256");
  w.String(result.training_set_sha256);
  w.Key("rows");
  w.Int(result.training_rows);
  w.Key("original_rows");
  w.Int(inputs.original.data.rows);
  w.Key("edge_rows");
  w.Int(result.edge.train.rows);
  w.EndObject();
  w.Key("holdout");
  w.BeginObject();
  w.Key("sha256");
  w.String(holdout_sha256);
  w.Key("rows");
  w.Int(result.edge.holdout.rows);
  w.EndObject();
  w.Key("original");
  w.BeginObject();
  w.Key("source");
  w.String(inputs.original.source);
  w.Key("sha256");
  w.String(original_sha256);
  w.Key("rows");
  w.Int(inputs.original.data.rows);
  w.EndObject();
  w.Key("records");
  WriteRecordRanges(w, result.edge.ranges);
  w.Key("join");
  WriteJoinCounts(w, result.edge.counts);
  w.EndObject();
  out.push_back('\n');
  return out;
}

}  // namespace

TrainFn LocalTrainer() {
  return [](const Dataset& data, const TrainOptions& options) -> Result<std::string> {
    OUTPOST_ASSIGN_OR_RETURN(auto model, TrainXGBoost(data, options));
    return model->Serialize(ModelFormat::kJson);
  };
}

Result<RetrainResult> Retrain(const RetrainInputs& inputs, const TrainConfig& config,
                              const TrainFn& train, int workers) {
  if (inputs.original.data.feature_names != config.features) {
    return InvalidArgumentError(
        "the original training set's features differ from the "
        "configuration's");
  }
  OUTPOST_RETURN_IF_ERROR(CheckDataset(inputs.original.data, /*need_labels=*/true));
  RetrainResult result;
  OUTPOST_ASSIGN_OR_RETURN(
      result.edge, JoinEdgeRecords(inputs.records, {.model = inputs.model,
                                                    .features = config.features,
                                                    .labels = config.labels,
                                                    .holdout_fraction = config.holdout_fraction,
                                                    .salt = config.holdout_salt}));
  const Dataset& holdout = result.edge.holdout;
  if (holdout.rows == 0) {
    return InvalidArgumentError("no edge-labelled rows fell into the holdout (" +
                                std::to_string(result.edge.counts.labelled) +
                                " labelled requests): the challenger cannot be judged");
  }

  Dataset training = inputs.original.data;
  OUTPOST_RETURN_IF_ERROR(AppendRows(training, result.edge.train));
  result.training_rows = training.rows;
  OUTPOST_ASSIGN_OR_RETURN(result.training_set_sha256, DatasetSha256(training));
  OUTPOST_ASSIGN_OR_RETURN(std::string original_sha256, DatasetSha256(inputs.original.data));
  OUTPOST_ASSIGN_OR_RETURN(std::string holdout_sha256, DatasetSha256(holdout));

  Result<std::string> model = train(training, config.xgboost);
  if (!model.ok()) return model.status().WithContext("training the challenger");
  result.model_json = std::move(model).value();
  Result<BinaryMetrics> ours = Score(result.model_json, holdout);
  if (!ours.ok()) return ours.status().WithContext("scoring the challenger");
  result.challenger = *ours;
  if (inputs.champion.has_value()) {
    Result<BinaryMetrics> theirs = Score(inputs.champion->model_bytes, holdout);
    if (!theirs.ok()) {
      return theirs.status().WithContext("scoring champion version " +
                                         std::to_string(inputs.champion->version));
    }
    result.champion = *theirs;
  }
  Decision decision = Decide(result.challenger, result.champion, config.metric, config.margin);
  result.candidate = decision.beats;
  result.reason = decision.reason;

  result.metrics_json = MetricsJson(inputs, config, result, workers);
  result.lineage_json = LineageJson(inputs, result, original_sha256, holdout_sha256);
  return result;
}

Status WriteRetrainOutput(const RetrainResult& result, const std::string& dir) {
  OUTPOST_RETURN_IF_ERROR(MakeDirectories(dir));
  OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(JoinPath(dir, "model.json"), result.model_json));
  OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(JoinPath(dir, "metrics.json"), result.metrics_json));
  return WriteFileAtomically(JoinPath(dir, "lineage.json"), result.lineage_json);
}

}  // namespace outpost::train
