#include "train/distributed.h"

#include <signal.h>
#include <sys/types.h>

#include <atomic>
#include <charconv>
#include <memory>
#include <thread>

#include "base/file.h"
#include "base/logging.h"
#include "base/subprocess.h"

namespace outpost::train {
namespace {

// The tracker: XGBoost's own RabitTracker on loopback, on a port the kernel picks. It prints
// the port, then waits until every worker has said it is done. Ranks follow the workers'
// task ids (sortby="task"), so shard i is trained by rank i.
constexpr char kTrackerScript[] = R"PY(
import logging, sys
from xgboost.tracker import RabitTracker
logging.basicConfig(level=logging.INFO, format="%(asctime)s tracker %(message)s")
n = int(sys.argv[1])
tracker = RabitTracker(host_ip="127.0.0.1", n_workers=n, port=0, use_logger=True, sortby="task")
print(tracker.port, flush=True)
tracker.start(n)
tracker.join()
print("done", flush=True)
)PY";

// The last `max` bytes of a log file, for error messages.
std::string Tail(const std::string& path, size_t max = 600) {
  Result<std::string> text = ReadFile(path, uint64_t{1} << 26);
  if (!text.ok()) return "(no log)";
  std::string s = std::move(text).value();
  if (s.size() > max) s = "..." + s.substr(s.size() - max);
  return s;
}

}  // namespace

std::vector<std::string> WorkerArguments(const WorkerJob& job) {
  std::vector<std::string> args = {
      "--tracker",
      job.collective.tracker_host + ":" + std::to_string(job.collective.tracker_port),
      "--task-id",
      std::to_string(job.collective.task_id),
      "--world-size",
      std::to_string(job.collective.world_size),
      "--shard",
      job.shard_path,
      "--model-out",
      job.model_out_path,
      "--rounds",
      std::to_string(job.options.rounds),
  };
  for (const auto& [key, value] : job.options.params) {
    args.push_back("--param");
    args.push_back(key + "=" + value);
  }
  return args;
}

Status RunTrainingWorker(const WorkerJob& job) {
  OUTPOST_ASSIGN_OR_RETURN(std::string bytes, ReadFile(job.shard_path));
  Result<Dataset> shard = DecodeDataset(bytes);
  if (!shard.ok()) return shard.status().WithContext(job.shard_path);
  OUTPOST_ASSIGN_OR_RETURN(auto model, TrainXGBoostInCollective(*shard, job.options,
                                                                job.collective));
  return model->Save(job.model_out_path, ModelFormat::kJson);
}

Result<DistributedResult> TrainDistributed(const Dataset& data, const TrainOptions& options,
                                           const DistributedOptions& distributed) {
  const int n = distributed.workers;
  if (n < 1 || n > 64) return InvalidArgumentError("workers must be between 1 and 64");
  if (distributed.worker_command.empty() || distributed.work_dir.empty()) {
    return InvalidArgumentError("a worker command and a work folder are needed");
  }
  OUTPOST_RETURN_IF_ERROR(CheckDataset(data, /*need_labels=*/true));
  if (data.rows < n) {
    return InvalidArgumentError("the data set has fewer rows (" + std::to_string(data.rows) +
                                ") than workers");
  }
  OUTPOST_RETURN_IF_ERROR(MakeDirectories(distributed.work_dir));

  // Contiguous shards, in order; the first rows % n shards get one row more.
  DistributedResult result;
  result.workers = n;
  const int64_t cols = data.cols();
  int64_t begin = 0;
  for (int i = 0; i < n; ++i) {
    const int64_t rows = data.rows / n + (i < data.rows % n ? 1 : 0);
    Dataset shard;
    shard.feature_names = data.feature_names;
    shard.rows = rows;
    shard.features.assign(data.features.begin() + begin * cols,
                          data.features.begin() + (begin + rows) * cols);
    shard.labels.assign(data.labels.begin() + begin, data.labels.begin() + begin + rows);
    begin += rows;
    OUTPOST_ASSIGN_OR_RETURN(std::string bytes, EncodeDataset(shard));
    OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(
        JoinPath(distributed.work_dir, "shard-" + std::to_string(i) + ".opds"), bytes));
    result.shard_rows.push_back(rows);
  }

  const std::string tracker_log = JoinPath(distributed.work_dir, "tracker.log");
  OUTPOST_ASSIGN_OR_RETURN(
      std::unique_ptr<Subprocess> tracker,
      Subprocess::Start({distributed.python, "-c", kTrackerScript, std::to_string(n)},
                        tracker_log, {}, Subprocess::Lifetime::kDiesWithParent));
  Result<std::string> port_line = tracker->ReadLine();
  int port = 0;
  if (port_line.ok()) {
    auto [end, ec] = std::from_chars(port_line->data(), port_line->data() + port_line->size(),
                                     port);
    if (ec != std::errc() || end != port_line->data() + port_line->size()) port = 0;
  }
  if (port < 1 || port > 65535) {
    return UnavailableError("XGBoost's tracker did not start: " + Tail(tracker_log));
  }

  std::vector<std::unique_ptr<Subprocess>> workers;
  std::vector<std::string> logs;
  for (int i = 0; i < n; ++i) {
    WorkerJob job;
    job.collective = {.tracker_host = "127.0.0.1", .tracker_port = port, .task_id = i,
                      .world_size = n};
    job.shard_path = JoinPath(distributed.work_dir, "shard-" + std::to_string(i) + ".opds");
    job.model_out_path = JoinPath(distributed.work_dir, "model-" + std::to_string(i) + ".json");
    job.options = options;
    std::vector<std::string> argv = distributed.worker_command;
    for (std::string& arg : WorkerArguments(job)) argv.push_back(std::move(arg));
    logs.push_back(JoinPath(distributed.work_dir, "worker-" + std::to_string(i) + ".log"));
    // A coordinator that dies (its hub killed, hub/FORMAT.md section 8) takes its tracker
    // and workers with it; this thread waits for them below.
    OUTPOST_ASSIGN_OR_RETURN(
        std::unique_ptr<Subprocess> worker,
        Subprocess::Start(argv, logs.back(), {}, Subprocess::Lifetime::kDiesWithParent));
    workers.push_back(std::move(worker));
  }

  // One waiter per worker; the first failure kills the rest (they would wait on the
  // collective for the failed one).
  std::vector<int> codes(static_cast<size_t>(n), -1);
  std::atomic<int> first_failure{-1};  // the worker that failed first; the others were killed
  std::vector<pid_t> pids;
  for (const auto& w : workers) pids.push_back(w->pid());
  {
    std::vector<std::jthread> waiters;
    for (int i = 0; i < n; ++i) {
      waiters.emplace_back([&, i] {
        codes[static_cast<size_t>(i)] = workers[static_cast<size_t>(i)]->Wait();
        int none = -1;
        if (codes[static_cast<size_t>(i)] != 0 && first_failure.compare_exchange_strong(none, i)) {
          for (int j = 0; j < n; ++j) {
            if (j != i) ::kill(pids[static_cast<size_t>(j)], SIGKILL);
          }
          ::kill(tracker->pid(), SIGKILL);
        }
      });
    }
  }
  if (const int i = first_failure.load(); i >= 0) {
    return UnavailableError("training worker " + std::to_string(i) + " exited with " +
                            std::to_string(codes[static_cast<size_t>(i)]) + ": " +
                            Tail(logs[static_cast<size_t>(i)]));
  }
  // Every worker has left the collective, so the tracker finishes on its own.
  Result<std::string> done = tracker->ReadLine();
  const int tracker_code = tracker->Wait();
  if (!done.ok() || *done != "done" || tracker_code != 0) {
    return UnavailableError("XGBoost's tracker failed: " + Tail(tracker_log));
  }

  for (int i = 0; i < n; ++i) {
    OUTPOST_ASSIGN_OR_RETURN(
        std::string model,
        ReadFile(JoinPath(distributed.work_dir, "model-" + std::to_string(i) + ".json")));
    if (i == 0) {
      result.model_json = std::move(model);
    } else if (model != result.model_json) {
      return InternalError("training worker " + std::to_string(i) +
                           " ended with another model than worker 0");
    }
  }
  return result;
}

}  // namespace outpost::train
