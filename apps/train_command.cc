// `outpost train`: the training side of the retraining loop (train/FORMAT.md). Reads the
// model's feedback and row records from the hub's store, builds the training set (the
// original set plus the edge-labelled rows), trains the challenger (in this process, or on
// XGBoost's distributed engine across worker processes), evaluates it against the registry's
// champion on the edge holdout, writes model.json, metrics.json and lineage.json, and
// registers the challenger: "candidate" when it beats the champion by the margin,
// "rejected" otherwise.
//
//   outpost train --store sqlite:/var/lib/outpost-hub/hub.db --model pump
//                 --config train.yaml --out /var/lib/outpost-hub/models/pump-4 [--workers 2]
//
// A store URL with a password never comes on the command line (hub/FORMAT.md section 6):
// --store refuses one; it comes from --store-url-file or OUTPOST_STORE_URL, which is how
// `outpost hub serve` hands its URL to the `outpost train` it starts.
//
// `outpost train --worker ...` is one worker process of distributed training
// (train/distributed.h); the coordinator starts it, people do not.
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <climits>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "base/clock.h"
#include "base/file.h"
#include "base/names.h"
#include "hub/model_artifact.h"
#include "hub/secrets.h"
#include "hub/store.h"
#include "train/distributed.h"
#include "train/retrain.h"
#include "train/train_config.h"

namespace outpost::apps {
namespace {

struct TrainFlags {
  std::string store_url;
  std::string store_url_file;
  std::string model;
  std::string config_file;
  std::string out_dir;
  int workers = 0;      // 0: the config's
  int64_t version = 0;  // 0: one above the newest registered

  // --worker mode.
  bool worker = false;
  std::string tracker;
  int task_id = 0;
  int world_size = 1;
  std::string shard;
  std::string model_out;
  int rounds = 50;
  std::vector<std::string> params;
};

Status RunWorker(const TrainFlags& flags) {
  train::WorkerJob job;
  const size_t colon = flags.tracker.rfind(':');
  if (colon == std::string::npos) return InvalidArgumentError("--tracker must be HOST:PORT");
  job.collective.tracker_host = flags.tracker.substr(0, colon);
  try {
    job.collective.tracker_port = std::stoi(flags.tracker.substr(colon + 1));
  } catch (const std::exception&) {
    return InvalidArgumentError("--tracker must be HOST:PORT");
  }
  job.collective.task_id = flags.task_id;
  job.collective.world_size = flags.world_size;
  job.shard_path = flags.shard;
  job.model_out_path = flags.model_out;
  job.options.rounds = flags.rounds;
  for (const std::string& param : flags.params) {
    const size_t eq = param.find('=');
    if (eq == std::string::npos || eq == 0) {
      return InvalidArgumentError("--param must be KEY=VALUE, not \"" + param + "\"");
    }
    job.options.params[param.substr(0, eq)] = param.substr(eq + 1);
  }
  return train::RunTrainingWorker(job);
}

Result<std::string> SelfExecutable() {
  char path[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return InternalError("cannot find this program's path (/proc/self/exe)");
  return std::string(path, static_cast<size_t>(n));
}

train::TrainFn Trainer(int workers, const std::string& out_dir) {
  if (workers <= 1) return train::LocalTrainer();
  return [workers, out_dir](const train::Dataset& data,
                            const train::TrainOptions& options) -> Result<std::string> {
    OUTPOST_ASSIGN_OR_RETURN(std::string self, SelfExecutable());
    OUTPOST_ASSIGN_OR_RETURN(train::DistributedResult result,
                             train::TrainDistributed(data, options,
                                                     {.workers = workers,
                                                      .worker_command = {self, "train", "--worker"},
                                                      .work_dir = JoinPath(out_dir, "workers")}));
    return std::move(result.model_json);
  };
}

// The kinds of records the join rule reads (train/FORMAT.md section 4).
constexpr const char* kTrainingKinds[] = {"feedback", "hard_example", "sample", "anomaly"};

Result<std::vector<train::EdgeRecord>> ReadRecords(hub::Store& store, const std::string& model,
                                                   const train::TrainConfig& config) {
  std::vector<train::EdgeRecord> out;
  for (const char* kind : kTrainingKinds) {
    hub::RecordQuery query;
    query.tenant = config.tenant;
    query.kind = kind;
    query.stream = model;
    query.limit = 10000;
    while (true) {
      OUTPOST_ASSIGN_OR_RETURN(std::vector<hub::HubRecord> page, store.QueryRecords(query));
      for (hub::HubRecord& r : page) {
        if (static_cast<int64_t>(out.size()) >= config.max_records) {
          return ResourceExhaustedError("the store holds more than max_records (" +
                                        std::to_string(config.max_records) +
                                        ") training records for " + model);
        }
        query.after_id = std::max(query.after_id, r.id);
        out.push_back({.kind = std::move(r.kind),
                       .site_id = std::move(r.site_id),
                       .node_id = std::move(r.node_id),
                       .stream = std::move(r.stream),
                       .seq = r.seq,
                       .created_ms = r.created_ms,
                       .payload = std::move(r.payload)});
      }
      if (page.size() < query.limit) break;
    }
  }
  return out;
}

Status RunTrain(const TrainFlags& flags) {
  // First: a store URL with a password on the command line is refused before anything else.
  OUTPOST_ASSIGN_OR_RETURN(
      const std::string store_url,
      hub::ResolveStoreUrl({.url = flags.store_url, .url_file = flags.store_url_file}));
  OUTPOST_RETURN_IF_ERROR(ModelName::Parse(flags.model).status().WithContext("--model"));
  OUTPOST_ASSIGN_OR_RETURN(train::TrainConfig config, train::LoadTrainConfig(flags.config_file));
  const int workers = flags.workers > 0 ? flags.workers : config.workers;
  OUTPOST_ASSIGN_OR_RETURN(train::OriginalSet original, train::LoadOriginalSet(config));
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<hub::Store> store, hub::OpenStore(store_url));
  OUTPOST_ASSIGN_OR_RETURN(std::vector<hub::ModelEntry> entries, store->ListModels(flags.model));

  // The champion: the newest version approved for (or already in) a bundle.
  train::RetrainInputs inputs;
  inputs.model = flags.model;
  int64_t newest = 0;
  for (const hub::ModelEntry& e : entries) {
    newest = std::max(newest, e.version);
    if (!inputs.champion.has_value() && (e.state == "approved" || e.state == "bundled")) {
      Result<std::string> bytes = hub::ReadModelArtifact(*store, e);
      if (!bytes.ok()) return bytes.status().WithContext("the champion");
      inputs.champion = train::Champion{.version = e.version, .model_bytes = std::move(*bytes)};
    }
  }
  inputs.version = newest + 1;
  if (flags.version > 0) {
    // A job that names its version registers it at most once, however often it is run (the
    // hub's scheduler, hub/FORMAT.md section 8): a version already there ends it at once.
    for (const hub::ModelEntry& e : entries) {
      if (e.version == flags.version) {
        return AlreadyExistsError(flags.model + " version " + std::to_string(flags.version) +
                                  " is registered already")
            .WithReason("version_taken");
      }
    }
    inputs.version = flags.version;
  }
  OUTPOST_ASSIGN_OR_RETURN(std::vector<train::EdgeRecord> records,
                           ReadRecords(*store, flags.model, config));
  inputs.records = records;
  inputs.original = std::move(original);

  const std::string out_dir = std::filesystem::absolute(flags.out_dir).lexically_normal().string();
  OUTPOST_ASSIGN_OR_RETURN(train::RetrainResult result,
                           train::Retrain(inputs, config, Trainer(workers, out_dir), workers));
  OUTPOST_RETURN_IF_ERROR(train::WriteRetrainOutput(result, out_dir));
  hub::ModelEntry entry;
  entry.name = flags.model;
  entry.version = inputs.version;
  entry.state = result.candidate ? "candidate" : "rejected";
  entry.metrics_json = result.metrics_json;
  entry.lineage_json = result.lineage_json;
  entry.artifact_path = JoinPath(out_dir, "model.json");
  entry.created_ms = UnixMillis(SystemClock().Now());
  // The registry keeps the file's bytes too: a hub on another machine releases it.
  OUTPOST_ASSIGN_OR_RETURN(entry.artifact,
                           ReadFile(entry.artifact_path, hub::kMaxModelArtifactBytes));
  OUTPOST_RETURN_IF_ERROR(store->RegisterModel(entry));
  std::printf("%s version %lld: %s (%s); %lld edge rows for training, %lld held out; %s\n",
              flags.model.c_str(), static_cast<long long>(inputs.version), entry.state.c_str(),
              result.reason.c_str(), static_cast<long long>(result.edge.train.rows),
              static_cast<long long>(result.edge.holdout.rows), out_dir.c_str());
  return Status();
}

}  // namespace

void AddTrainCommand(CLI::App& app, Action& run) {
  auto flags = std::make_shared<TrainFlags>();
  CLI::App* cmd = app.add_subcommand(
      "train", "Retrain a model on what the sites collected, and register the challenger");
  cmd->add_option("--store", flags->store_url,
                  "The hub's store: sqlite:PATH or postgresql://... without a password "
                  "(else --store-url-file or OUTPOST_STORE_URL)");
  cmd->add_option("--store-url-file", flags->store_url_file,
                  "A file (0600) holding the store's URL, password included");
  cmd->add_option("--model", flags->model, "The model's name (the records' stream)");
  cmd->add_option("--config", flags->config_file, "train.yaml (train/FORMAT.md)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--out", flags->out_dir, "Folder for model.json, metrics.json, lineage.json");
  cmd->add_option("--version", flags->version,
                  "Register the challenger as this version; refused (version_taken) when it is "
                  "registered already (default: one above the newest)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 53));
  cmd->add_option("--workers", flags->workers,
                  "XGBoost worker processes on loopback (default: the config's workers)")
      ->check(CLI::Range(1, 64));
  // One worker process of distributed training, started by the coordinator.
  cmd->add_flag("--worker", flags->worker, "Run as one worker of distributed training")->group("");
  cmd->add_option("--tracker", flags->tracker, "HOST:PORT of XGBoost's tracker")->group("");
  cmd->add_option("--task-id", flags->task_id, "This worker's task id")->group("");
  cmd->add_option("--world-size", flags->world_size, "The number of workers")->group("");
  cmd->add_option("--shard", flags->shard, "This worker's data set file")->group("");
  cmd->add_option("--model-out", flags->model_out, "Where this worker writes its model")->group("");
  cmd->add_option("--rounds", flags->rounds, "Boosting rounds")->group("");
  cmd->add_option("--param", flags->params, "An XGBoost parameter, KEY=VALUE")->group("");
  cmd->callback([&run, flags] {
    run = [flags]() -> Status {
      if (flags->worker) return RunWorker(*flags);
      if (flags->model.empty() || flags->config_file.empty() || flags->out_dir.empty()) {
        return InvalidArgumentError(
            "outpost train needs --model, --config and --out, and a store (--store, "
            "--store-url-file or OUTPOST_STORE_URL)");
      }
      return RunTrain(*flags);
    };
  });
}

}  // namespace outpost::apps
