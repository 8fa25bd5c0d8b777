// `outpost demo`: what `make demo` runs. For now it shows the scoring half of the loop on one
// machine: train a pump-fault model on synthetic telemetry, write it into a model repository,
// start `outpost edge` on it, score held-out readings over HTTP, check every answer against
// XGBoost's own prediction, print a summary, and stop the server gracefully.
//
// This file is also apps/'s simdjson adapter (it reads the server's JSON answers).
#include <CLI/CLI.hpp>
#include <signal.h>
#include <simdjson.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "apps/commands.h"
#include "apps/http_client.h"
#include "base/file.h"
#include "base/subprocess.h"
#include "train/synthetic.h"
#include "train/xgboost_trainer.h"

namespace outpost::apps {
namespace {

struct DemoFlags {
  std::string workdir;          // empty = a temporary folder, removed afterwards
  std::string write_repository;  // only train and write the repository here, then exit
  int trees = 60;
  int depth = 4;
  int score_rows = 400;
};

constexpr char kModelConfig[] = R"(# The demo's pump-fault model: 8 readings in, the chance of a fault out.
backend: xgboost
version_policy: {latest: 1}
inputs:
  - {name: features, datatype: FP32, shape: [-1, 8]}
outputs:
  - {name: fault_probability, datatype: FP32, shape: [-1]}
)";

// Trains the pump model and writes <repo>/pump/{config.yaml,1/model.json}. Returns the
// model file's bytes.
Result<std::string> WriteRepository(const std::string& repo, const DemoFlags& flags) {
  OUTPOST_ASSIGN_OR_RETURN(train::Dataset data,
                           train::MakePumpReadings({.rows = 20000, .seed = 7, .fault_rate = 0.08}));
  train::TrainOptions options;
  options.params["max_depth"] = std::to_string(flags.depth);
  options.rounds = flags.trees;
  OUTPOST_ASSIGN_OR_RETURN(auto model, train::TrainXGBoost(data, options));
  std::string dir = JoinPath(repo, "pump");
  OUTPOST_RETURN_IF_ERROR(MakeDirectories(JoinPath(dir, "1")));
  OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(JoinPath(dir, "config.yaml"), kModelConfig));
  std::string path = JoinPath(JoinPath(dir, "1"), "model.json");
  OUTPOST_RETURN_IF_ERROR(model->Save(path, train::ModelFormat::kJson));
  return ReadFile(path);
}

// The JSON body of an infer request for rows [begin, end) of `data`.
std::string InferBody(const train::Dataset& data, int64_t begin, int64_t end) {
  std::string body = "{\"inputs\":[{\"name\":\"features\",\"datatype\":\"FP32\",\"shape\":[" +
                     std::to_string(end - begin) + ",8],\"data\":[";
  char buf[32];
  for (int64_t r = begin; r < end; ++r) {
    for (float v : data.Row(r)) {
      if (body.back() != '[') body += ',';
      auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), v);
      body.append(buf, ptr);
    }
  }
  body += "]}]}";
  return body;
}

// The `data` of the output named fault_probability in an infer response.
Result<std::vector<float>> ParseProbabilities(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body).get(doc)) return InternalError("the server's answer is not JSON: " + body);
  simdjson::dom::array outputs;
  if (doc["outputs"].get_array().get(outputs)) return InternalError("no outputs in " + body);
  for (simdjson::dom::element out : outputs) {
    std::string_view name;
    if (out["name"].get_string().get(name) || name != "fault_probability") continue;
    simdjson::dom::array values;
    if (out["data"].get_array().get(values)) return InternalError("no data in " + body);
    std::vector<float> probs;
    for (simdjson::dom::element v : values) {
      double d;
      if (v.get_double().get(d)) return InternalError("a non-number in " + body);
      probs.push_back(static_cast<float>(d));
    }
    return probs;
  }
  return InternalError("no fault_probability output in " + body);
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size()))) - 1;
  return v[std::min(i, v.size() - 1)];
}

std::string SelfPath() {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "outpost" : p.string();
}

Status RunDemo(const DemoFlags& flags) {
  if (!flags.write_repository.empty()) {
    OUTPOST_RETURN_IF_ERROR(WriteRepository(flags.write_repository, flags));
    std::printf("wrote the pump model to %s/pump\n", flags.write_repository.c_str());
    return Status();
  }
  std::string workdir = flags.workdir;
  bool temporary = workdir.empty();
  if (temporary) {
    char tmpl[] = "/tmp/outpost-demo-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return ErrnoToStatus(errno, "cannot create", tmpl);
    workdir = tmpl;
  }
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      if (!dir.empty()) std::filesystem::remove_all(dir, ec);
    }
  } cleanup{temporary ? workdir : ""};

  std::printf("Outpost demo: a remote pumping station scores its pumps' telemetry on site.\n\n");
  std::string repo = JoinPath(workdir, "models");
  std::printf("1. Training a fault model on 20,000 synthetic pump readings (XGBoost, %d trees, depth %d)\n",
              flags.trees, flags.depth);
  OUTPOST_ASSIGN_OR_RETURN(std::string model_bytes, WriteRepository(repo, flags));
  std::printf("   wrote %s/pump/1/model.json (%zu KiB)\n", repo.c_str(), model_bytes.size() / 1024);

  std::printf("2. Starting outpost edge on the model repository\n");
  OUTPOST_ASSIGN_OR_RETURN(
      std::unique_ptr<Subprocess> edge,
      Subprocess::Start({SelfPath(), "edge", "--model-repository", repo, "--listen",
                         "127.0.0.1:0", "--site-id", "demo-station", "--data-dir",
                         JoinPath(workdir, "data"), "--log-level", "warning"}));
  OUTPOST_ASSIGN_OR_RETURN(std::string line, edge->ReadLine());
  size_t colon = line.rfind(':');
  if (line.rfind("listening on ", 0) != 0 || colon == std::string::npos) {
    return InternalError("outpost edge did not start: " + line);
  }
  uint16_t port = static_cast<uint16_t>(std::atoi(line.c_str() + colon + 1));
  std::printf("   %s\n", line.c_str());
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<HttpClient> client, HttpClient::Connect("127.0.0.1", port));
  OUTPOST_ASSIGN_OR_RETURN(HttpResult ready, client->Request("GET", "/v2/health/ready"));
  if (ready.status != 200) return InternalError("the server is not ready: " + ready.body);

  const int64_t rows = flags.score_rows;
  std::printf("3. Scoring %lld held-out readings over HTTP (Open Inference Protocol, JSON)\n",
              static_cast<long long>(rows));
  OUTPOST_ASSIGN_OR_RETURN(train::Dataset holdout,
                           train::MakePumpReadings({.rows = rows, .seed = 99, .fault_rate = 0.08}));
  std::vector<float> served;
  std::vector<double> latencies_us;
  const int64_t single = rows * 3 / 4;  // one reading a request, then batches of 25
  for (int64_t begin = 0; begin < rows;) {
    int64_t end = begin < single ? begin + 1 : std::min(rows, begin + 25);
    std::string body = InferBody(holdout, begin, end);
    auto t0 = std::chrono::steady_clock::now();
    OUTPOST_ASSIGN_OR_RETURN(HttpResult res, client->Request("POST", "/v2/models/pump/infer", body));
    auto t1 = std::chrono::steady_clock::now();
    if (res.status != 200) return InternalError("scoring failed: " + res.body);
    if (end - begin == 1) {
      latencies_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    }
    OUTPOST_ASSIGN_OR_RETURN(std::vector<float> probs, ParseProbabilities(res.body));
    served.insert(served.end(), probs.begin(), probs.end());
    begin = end;
  }
  OUTPOST_ASSIGN_OR_RETURN(train::Predictions reference,
                           train::ReferencePredict(model_bytes, holdout.features, rows, 8));
  int64_t identical = 0, flagged = 0, correct = 0, true_faults = 0, caught = 0;
  for (int64_t i = 0; i < rows; ++i) {
    identical += served[i] == reference.values[i];
    bool alarm = served[i] >= 0.5f;
    bool fault = holdout.labels[i] == 1.0f;
    flagged += alarm;
    correct += alarm == fault;
    true_faults += fault;
    caught += alarm && fault;
  }

  std::printf("4. Stopping outpost edge (SIGTERM: in-flight requests finish first)\n");
  client.reset();
  OUTPOST_RETURN_IF_ERROR(edge->Signal(SIGTERM));
  int code = edge->Wait();

  std::printf("\nSummary\n");
  std::printf("  readings scored            %lld (%lld single-reading requests, the rest in batches of 25)\n",
              static_cast<long long>(rows), static_cast<long long>(single));
  std::printf("  pumps flagged (p >= 0.5)   %lld\n", static_cast<long long>(flagged));
  std::printf("  faults in the held-out set %lld, of which flagged %lld\n",
              static_cast<long long>(true_faults), static_cast<long long>(caught));
  std::printf("  accuracy                   %.1f%%\n", 100.0 * static_cast<double>(correct) / static_cast<double>(rows));
  std::printf("  same as XGBoost's own      %lld of %lld predictions, bit for bit\n",
              static_cast<long long>(identical), static_cast<long long>(rows));
  std::printf("  request latency (client)   p50 %.0f us, p99 %.0f us\n", Percentile(latencies_us, 0.5),
              Percentile(latencies_us, 0.99));
  std::printf("  outpost edge exit code     %d\n", code);
  if (identical != rows) return InternalError("served predictions differ from XGBoost's own");
  if (code != 0) return InternalError("outpost edge exited with code " + std::to_string(code));
  return Status();
}

}  // namespace

void AddDemoCommand(CLI::App& app, Action& run) {
  auto flags = std::make_shared<DemoFlags>();
  CLI::App* cmd = app.add_subcommand("demo", "Run the demo on this machine (what `make demo` runs)");
  cmd->add_option("--workdir", flags->workdir, "Keep the demo's files in this folder (default: a temporary one)");
  cmd->add_option("--write-repository", flags->write_repository,
                  "Only train the pump model and write a model repository here, then exit");
  cmd->add_option("--trees", flags->trees, "Boosting rounds of the pump model")->check(CLI::Range(1, 10000));
  cmd->add_option("--depth", flags->depth, "Tree depth of the pump model")->check(CLI::Range(1, 16));
  cmd->add_option("--rows", flags->score_rows, "Held-out readings to score")->check(CLI::Range(1, 100000));
  cmd->callback([&run, flags] { run = [flags] { return RunDemo(*flags); }; });
}

}  // namespace outpost::apps
