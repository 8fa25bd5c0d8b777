// Distributed training on XGBoost's own engine: the Rabit tracker that ships with XGBoost
// (xgboost.tracker.RabitTracker, run with /usr/bin/python3) and N worker processes on
// loopback, each training on its contiguous shard of the rows with the same options.
// XGBoost's collective allreduces the quantile sketches and the gradient histograms, so every
// worker ends with the same model; the coordinator checks that they did.
//
//   coordinator (TrainDistributed)
//     ├─ python3 -c <tracker>         prints its port, waits for N workers to finish
//     ├─ <worker_command> --task-id 0 --shard shard-0.opds --model-out model-0.json ...
//     └─ <worker_command> --task-id 1 ...
//
// A worker process (`outpost train --worker ...`) calls RunTrainingWorker.
#ifndef OUTPOST_TRAIN_DISTRIBUTED_H_
#define OUTPOST_TRAIN_DISTRIBUTED_H_

#include <string>
#include <vector>

#include "base/status.h"
#include "train/dataset.h"
#include "train/xgboost_trainer.h"

namespace outpost::train {

struct DistributedOptions {
  int workers = 2;  // 1 .. 64
  // The program and leading arguments of one worker process, for example
  // {"/usr/bin/outpost", "train", "--worker"}; the coordinator appends the flags that
  // WorkerArguments lists.
  std::vector<std::string> worker_command{};
  // Where the shards, worker models and logs go (created if absent; left in place).
  std::string work_dir{};
  std::string python = "/usr/bin/python3";
};

struct DistributedResult {
  std::string model_json{};  // the model every worker produced (JSON model file)
  int workers = 0;
  std::vector<int64_t> shard_rows{};
};

// Splits `data` into `workers` shards, starts the tracker and the workers, waits for all of
// them, and checks that the workers' models are byte-identical. InvalidArgument for bad
// options or data (fewer rows than workers); Unavailable when the tracker or a worker fails
// (the message names which, with the tail of its log); Internal when the workers disagree.
// No worker outlives the call: when one fails, the others are killed.
Result<DistributedResult> TrainDistributed(const Dataset& data, const TrainOptions& options,
                                           const DistributedOptions& distributed);

// One worker's job, as the coordinator passes it on the command line.
struct WorkerJob {
  CollectiveOptions collective{};
  std::string shard_path{};      // a data set file (FORMAT.md section 2)
  std::string model_out_path{};  // where the JSON model file goes
  TrainOptions options{};
};

// The flags after worker_command that describe `job`:
//   --tracker HOST:PORT --task-id I --world-size N --shard PATH --model-out PATH
//   --rounds R [--param KEY=VALUE]...
std::vector<std::string> WorkerArguments(const WorkerJob& job);

// Reads the shard, trains in the collective, writes the model. Errors as
// TrainXGBoostInCollective, DecodeDataset and the file writes return them.
Status RunTrainingWorker(const WorkerJob& job);

}  // namespace outpost::train

#endif  // OUTPOST_TRAIN_DISTRIBUTED_H_
