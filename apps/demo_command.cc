// `outpost demo`: what `make demo` runs. The whole loop of Outpost on one machine, with real
// processes of this binary on localhost (every listener on port 0, found from its "listening
// on" line):
//
//   1. the hub trains the first pump-fault model and registers it (version 1);
//   2. signing keys, and a signed bundle of version 1 for site A and site B;
//   3. the bundle is carried on disk and installed offline at both sites;
//   4. `outpost hub serve` starts; both sites are enrolled once (commissioning); site A keeps a
//      live link (its edge's `sync:` section), site B runs disconnected. Each site's edge is
//      secured as an operator would: `outpost edge credential add` makes one token for the
//      scoring client (role infer), one for the operators' labels (label) and one for the
//      reader of the outbox's state and the metrics (read); the edge serves HTTPS with the
//      site certificate enrolment issued, and the demo's clients pin the hub's CA and verify
//      the site id the certificate names;
//   5. both sites score traffic that has drifted from the training data, with injected
//      faults; operators label every scored reading through POST /v1/feedback; a request
//      without a credential, and one whose credential lacks the route's role, are refused;
//   6. site A's records reach the hub live; site B's leave by `outpost export` (a signed file
//      sealed to the hub's export key), enter the hub by `outpost hub import`, and the receipt
//      returns by `outpost import-receipt`;
//   7. the hub's retraining schedule notices that every label has arrived and runs `outpost
//      train` on its store; the challenger must beat the champion on the holdout of
//      edge-labelled readings;
//   8. an operator approves the challenger through the hub's API; the hub builds and signs a
//      bundle that ships it as the champion's shadow. Site A's edge fetches it over its link by
//      itself (its `sync.releases:` section, sync/FORMAT.md section 7) and installs it; the
//      demo waits until that edge serves it and the hub holds site A's `bundle_installed`
//      event. Site B's copy is carried on disk and installed with `outpost bundle install`.
//      More labelled traffic lets each site's shadow rule compare the two, and both sites
//      promote the challenger, reporting the outcome to the hub as an event record;
//   9. every record is accounted for: what the hub holds per site equals what the site
//      produced minus what is still held there, evicted, quarantined or withheld by policy.
//
// It prints the story with the numbers; `--summary FILE` writes them as JSON (the integration
// test reads it); `--keep-running` leaves the hub and its dashboard up until SIGINT/SIGTERM.
//
// It reads the servers' JSON through the JSON adapter (base/json/json.h).
#include <CLI/CLI.hpp>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "apps/commands.h"
#include "base/clock.h"
#include "base/crypto/crypto.h"
#include "base/file.h"
#include "base/http/client.h"
#include "base/json/json.h"
#include "base/json_writer.h"
#include "base/subprocess.h"
#include "hub/release.h"
#include "hub/store.h"
#include "train/synthetic.h"
#include "train/xgboost_trainer.h"

namespace outpost::apps {
namespace {

// The demo reads answers it expects in one shape; each of these stores what it read in `out`
// and answers true when it is missing or of another kind.
template <typename T, typename U>
bool Missing(const Result<T>& read, U& out) {
  if (!read.ok()) return true;
  out = *read;
  return false;
}
bool MissingArray(json::Value value, json::Value& out) {
  if (!value.is_array()) return true;
  out = value;
  return false;
}
bool MissingValue(json::Value value, json::Value& out) {
  if (value.is_missing()) return true;
  out = value;
  return false;
}

struct DemoFlags {
  std::string workdir;           // empty = a temporary folder, removed afterwards
  std::string write_repository;  // only train and write the repository here, then exit
  std::string summary;           // write the outcome as JSON here
  bool keep_running = false;
  int trees = 30;
  int depth = 4;
  int rows = 1200;        // readings scored at each site before retraining
  int shadow_rows = 400;  // readings scored at each site while the challenger is a shadow
};

constexpr char kTenant[] = "demo";
constexpr int kOriginalRows = 3000;
constexpr uint64_t kOriginalSeed = 1;
constexpr double kFaultRate = 0.1;
constexpr double kShiftSigmas = 2.5;  // how far the sites' bearings run hotter than in training
constexpr int kInjectEvery = 40;      // one injected fault every this many readings

std::string SelfPath() {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "outpost" : p.string();
}

std::string Num(double v, int digits = 4) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

// The model's config.yaml: the tensors, and the insight rules that turn scoring into records
// (insight/FORMAT.md). The drift baseline is the deciles of bearing temperature in the
// original training set.
// `version_policy` is left out of the template the hub ships in its release bundles (the hub
// sets it, hub/release.h).
std::string ModelConfig(const train::Dataset& original, bool with_version_policy = true) {
  std::vector<float> temps;
  for (int64_t r = 0; r < original.rows; ++r) temps.push_back(original.Row(r)[0]);
  std::sort(temps.begin(), temps.end());
  std::vector<double> edges;
  for (int i = 1; i < 10; ++i) {
    edges.push_back(std::round(temps[temps.size() * static_cast<size_t>(i) / 10] * 100) / 100);
  }
  std::vector<int64_t> counts(edges.size() + 1, 0);
  for (float t : temps) {
    size_t bin = static_cast<size_t>(std::upper_bound(edges.begin(), edges.end(), t) - edges.begin());
    ++counts[bin];
  }
  std::string edge_list, fraction_list;
  for (double e : edges) edge_list += (edge_list.empty() ? "" : ", ") + Num(e, 2);
  for (int64_t c : counts) {
    fraction_list += (fraction_list.empty() ? "" : ", ") +
                     Num(static_cast<double>(c) / static_cast<double>(temps.size()), 4);
  }
  std::string names;
  for (std::string_view n : train::kPumpFeatureNames) {
    names += (names.empty() ? "" : ", ") + std::string(n);
  }
  return "# The demo's pump-fault model: 8 readings in, the chance of a fault out.\n"
         "backend: xgboost\n" +
         std::string(with_version_policy ? "version_policy: {latest: 1}\n" : "") +
         "inputs:\n"
         "  - {name: features, datatype: FP32, shape: [-1, 8]}\n"
         "outputs:\n"
         "  - {name: fault_probability, datatype: FP32, shape: [-1]}\n"
         "insight:\n"
         "  features: [" + names + "]\n"
         "  rules:\n"
         "    - {name: fault_likely, kind: anomaly, score: value, above: 0.9, fields: all}\n"
         "    - {name: unsure, kind: hard_example, confidence_below: 0.7, fields: all}\n"
         "    - {name: readings, kind: sample, rate: 1.0, fields: all}\n"
         "    - name: bearing_heat\n"
         "      kind: drift\n"
         "      window: 200\n"
         "      level: 0.2\n"
         "      baseline:\n"
         "        bearing_temp_c:\n"
         "          edges: [" + edge_list + "]\n"
         "          fractions: [" + fraction_list + "]\n";
}

// What may leave a site (policy/FORMAT.md): every kind the edge produces, every field.
constexpr char kPolicy[] = R"(format: 1
version: 1
name: demo-fleet
default: keep
regions:
  field: {raw: true}
default_region: field
kinds:
  anomaly: {}
  drift: {}
  feedback: {}
  hard_example: {}
  sample: {}
  aggregate: {fields: {rows: keep}}
  event: {}
)";

std::string TrainYaml(const DemoFlags& flags) {
  std::string names;
  for (std::string_view n : train::kPumpFeatureNames) {
    names += (names.empty() ? "" : ", ") + std::string(n);
  }
  return "features: [" + names + "]\n"
         "labels: {ok: 0, fault: 1}\n"
         "original:\n"
         "  synthetic: {rows: " + std::to_string(kOriginalRows) +
         ", seed: " + std::to_string(kOriginalSeed) + ", fault_rate: " + Num(kFaultRate, 2) +
         "}\n"
         "xgboost: {rounds: " + std::to_string(flags.trees) +
         ", params: {max_depth: " + std::to_string(flags.depth) + "}}\n"
         "holdout: {fraction: 0.3}\n"
         "decision: {metric: auc, margin: 0.01}\n"
         "tenant: " + kTenant + "\n";
}

// Writes <models>/pump/{config.yaml, <version>/model.json, <version>/descriptor.json}.
Status WriteModelFolder(const std::string& models, int version, const std::string& config_yaml,
                        const std::string& model_json, double auc,
                        const std::string& lineage_sha256) {
  const std::string dir = JoinPath(JoinPath(models, "pump"), std::to_string(version));
  OUTPOST_RETURN_IF_ERROR(MakeDirectories(dir));
  OUTPOST_RETURN_IF_ERROR(
      WriteFileAtomically(JoinPath(JoinPath(models, "pump"), "config.yaml"), config_yaml));
  OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(JoinPath(dir, "model.json"), model_json));
  std::string d;
  JsonWriter w(d);
  w.BeginObject();
  w.Key("name");
  w.String("pump");
  w.Key("version");
  w.Int(version);
  w.Key("engine");
  w.String("xgboost");
  w.Key("engine_version");
  w.String("0.1.0");
  w.Key("inputs");
  w.Raw(R"([{"name":"features","datatype":"FP32","shape":[-1,8]}])");
  w.Key("outputs");
  w.Raw(R"([{"name":"fault_probability","datatype":"FP32","shape":[-1]}])");
  w.Key("metrics");
  w.BeginObject();
  if (std::isfinite(auc)) {
    w.Key("auc");
    w.Double(auc);
  }
  w.EndObject();
  w.Key("lineage_sha256");
  w.String(lineage_sha256);
  w.EndObject();
  return WriteFileAtomically(JoinPath(dir, "descriptor.json"), d);
}

// The first pump model: XGBoost on the synthetic original set, which it leaves in
// `original`; the model as XGBoost JSON.
Result<std::string> TrainFirstPump(const DemoFlags& flags, train::Dataset& original) {
  OUTPOST_ASSIGN_OR_RETURN(original,
                           train::MakePumpReadings({.rows = kOriginalRows, .seed = kOriginalSeed,
                                                    .fault_rate = kFaultRate}));
  train::TrainOptions options;
  options.params["max_depth"] = std::to_string(flags.depth);
  options.rounds = flags.trees;
  OUTPOST_ASSIGN_OR_RETURN(auto model, train::TrainXGBoost(original, options));
  return model->Serialize(train::ModelFormat::kJson);
}

// Runs `outpost ARGS...`; its stdout on success, or an error with its stderr.
Result<std::string> Outpost(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {SelfPath()};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = RunProgram(argv);
  if (r.exit_code != 0) {
    std::string cmd = "outpost";
    for (size_t i = 0; i < args.size() && i < 3; ++i) cmd += " " + args[i];
    std::string err = r.err;
    while (!err.empty() && err.back() == '\n') err.pop_back();
    return InternalError(cmd + " failed (exit " + std::to_string(r.exit_code) + "): " + err);
  }
  return r.out;
}

std::string FirstLine(const std::string& s) { return s.substr(0, s.find('\n')); }

// The first unsigned number after `marker` in `text`, or 0.
uint64_t NumberAfter(const std::string& text, std::string_view marker) {
  size_t at = marker.empty() ? 0 : text.find(marker);
  if (at == std::string::npos) return 0;
  at += marker.size();
  while (at < text.size() && (text[at] < '0' || text[at] > '9')) ++at;
  uint64_t v = 0;
  std::from_chars(text.data() + at, text.data() + text.size(), v);
  return v;
}

// A long-running `outpost` process: a hub or an edge.
struct Process {
  std::string name;
  std::unique_ptr<Subprocess> proc;
  std::string url;  // from its "listening on" line
  uint16_t port = 0;

  Status Stop() {
    if (proc == nullptr) return Status();
    OUTPOST_RETURN_IF_ERROR(proc->Signal(SIGTERM));
    int code = proc->Wait();
    proc.reset();
    if (code != 0) return InternalError(name + " exited with code " + std::to_string(code));
    return Status();
  }
};

uint16_t PortOf(const std::string& url) {
  size_t colon = url.rfind(':');
  return colon == std::string::npos ? 0 : static_cast<uint16_t>(std::atoi(url.c_str() + colon + 1));
}

Result<std::string> ExpectLine(Subprocess& proc, std::string_view prefix, const std::string& what,
                               const std::string& log) {
  Result<std::string> line = proc.ReadLine();
  if (!line.ok() || line->rfind(prefix, 0) != 0) {
    std::string tail;
    if (Result<std::string> text = ReadFile(log); text.ok()) {
      tail = text->size() > 600 ? text->substr(text->size() - 600) : *text;
    }
    return InternalError(what + " did not start (" + (line.ok() ? *line : line.status().ToString()) +
                         "); its log " + log + " ends with: " + tail);
  }
  return line->substr(prefix.size());
}

// One site: its folders, its edge, and what happened there.
struct Site {
  std::string id;
  bool live = false;  // site A uploads live; site B is disconnected
  std::string dir, models, state, data, credentials, edge_config, export_config, log;
  std::string token;  // the one-time enrolment token
  Process edge;
  // The edge's callers, each a token made by `outpost edge credential add` (the edge keeps
  // only their hashes, in <data>/credentials.yaml): the scoring client (role infer), the
  // operators' labelling client (label) and the reader of the outbox's state and the metrics
  // (read).
  std::string scorer_token, labeller_token, reader_token;
  // <credentials>/hub_ca.crt, from enrolment: the CA that issued the site certificate the
  // edge serves, which the clients pin.
  std::string hub_ca_pem;

  // Traffic.
  int64_t readings = 0, injected = 0, flagged = 0, feedback = 0, faults = 0, caught = 0;
  // Records leaving by export files.
  uint64_t exported = 0, imported_at_hub = 0, receipt_deleted = 0, exports = 0;
  // The final account.
  uint64_t produced = 0, held = 0, evicted = 0, quarantined = 0, withheld = 0, at_hub = 0;
  // The outbox's own account of every record raised (outbox/FORMAT.md section 11).
  std::map<std::string, uint64_t> outbox_account;
  std::map<std::string, uint64_t> produced_by_kind;
  std::string serving_before, serving_after;
  // How the hub's release reached the site: "link" (its edge's release puller fetched it over
  // the live link) or "disk" (carried on disk, `outpost bundle install`).
  std::string release_by;
  // The shadow rule's decision, from the site's event record at the hub.
  std::string shadow_event;  // "shadow_promoted", "shadow_dropped", or empty: none arrived
  int64_t shadow_winner = 0;
  uint64_t shadow_compared = 0, shadow_labelled = 0;
  double shadow_agreement = NAN, champion_accuracy = NAN, shadow_accuracy = NAN;
};

// A kept HTTPS connection to the site's edge at 127.0.0.1 that pins the hub's CA (which issued
// the site certificate the edge serves) and verifies the name that certificate carries, the
// site id. A non-empty `token` goes out in every request's Authorization header; an empty one
// makes an anonymous caller, which the edge admits to its health probes only.
Result<std::unique_ptr<http::Client>> EdgeClient(const Site& site, const std::string& token) {
  http::ClientOptions options{.base_url = "https://127.0.0.1:" + std::to_string(site.edge.port),
                              .ca_pem = site.hub_ca_pem,
                              .server_name = site.id,
                              .keep_alive = true,
                              .retry_unanswered = true};
  if (!token.empty()) options.headers.emplace_back("Authorization", "Bearer " + token);
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<http::Client> client,
                           http::Client::Create(std::move(options)));
  OUTPOST_RETURN_IF_ERROR(client->Open().WithContext(site.id + "'s edge"));
  return client;
}

Status StartEdge(Site& site) {
  site.edge.name = "outpost edge (" + site.id + ")";
  OUTPOST_ASSIGN_OR_RETURN(site.edge.proc,
                           Subprocess::Start({SelfPath(), "edge", "--config", site.edge_config},
                                             site.log));
  OUTPOST_ASSIGN_OR_RETURN(site.edge.url,
                           ExpectLine(*site.edge.proc, "listening on ", site.edge.name, site.log));
  site.edge.port = PortOf(site.edge.url);
  // The readiness probe needs no credential.
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<http::Client> client, EdgeClient(site, ""));
  // Ready once the model loaded (strict readiness); bounded so a broken model cannot hang.
  for (int i = 0; i < 600; ++i) {
    Result<http::ClientResponse> ready = client->Request("GET", "/v2/health/ready");
    if (ready.ok() && ready->status == 200) return Status();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return InternalError(site.edge.name + " did not become ready; see " + site.log);
}

// The model versions an edge serves, from GET /v2/models/pump ("2", or "1,2").
Result<std::string> ServingVersions(http::Client& client) {
  OUTPOST_ASSIGN_OR_RETURN(http::ClientResponse r, client.Request("GET", "/v2/models/pump"));
  if (r.status != 200) return InternalError("GET /v2/models/pump: " + std::to_string(r.status) + " " + r.body);
  json::Parser parser;
  json::Value doc;
  if (Missing(parser.Parse(r.body), doc)) return InternalError("not JSON: " + r.body);
  json::Value versions;
  if (MissingArray(doc["versions"], versions)) return InternalError("no versions in " + r.body);
  std::string out;
  for (json::Value v : versions.Items()) {
    std::string_view s;
    if (Missing(v.GetString(), s)) return InternalError("a version that is not a string: " + r.body);
    out += (out.empty() ? "" : ",") + std::string(s);
  }
  return out;
}

// The outbox's record count from GET /v1/outbox.
Result<uint64_t> OutboxRecords(http::Client& client) {
  OUTPOST_ASSIGN_OR_RETURN(http::ClientResponse r, client.Request("GET", "/v1/outbox"));
  if (r.status != 200) return InternalError("GET /v1/outbox: " + r.body);
  json::Parser parser;
  json::Value doc;
  uint64_t records = 0;
  if (Missing(parser.Parse(r.body), doc) || Missing(doc["records"].GetUint64(), records)) {
    return InternalError("GET /v1/outbox: unexpected answer " + r.body);
  }
  return records;
}

// The infer body of one reading, with the request id the feedback will name.
std::string InferBody(const std::string& id, std::span<const float> row) {
  std::string body = "{\"id\":\"" + id +
                     "\",\"inputs\":[{\"name\":\"features\",\"datatype\":\"FP32\",\"shape\":[1,8],"
                     "\"data\":[";
  char buf[32];
  for (size_t i = 0; i < row.size(); ++i) {
    if (i > 0) body += ',';
    auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), row[i]);
    body.append(buf, ptr);
  }
  body += "]}]}";
  return body;
}

Result<float> ParseProbability(const std::string& body) {
  json::Parser parser;
  json::Value doc;
  if (Missing(parser.Parse(body), doc)) return InternalError("the server's answer is not JSON: " + body);
  json::Value outputs;
  if (MissingArray(doc["outputs"], outputs)) return InternalError("no outputs in " + body);
  for (json::Value out : outputs.Items()) {
    json::Value values;
    if (MissingArray(out["data"], values)) continue;
    for (json::Value v : values.Items()) {
      double d;
      if (Missing(v.GetDouble(), d)) return InternalError("a non-number in " + body);
      return static_cast<float>(d);
    }
  }
  return InternalError("no probability in " + body);
}

// Sends one label with the labelling credential. A 429 (the edge's per-credential feedback
// rate) waits for its Retry-After and sends it again, a bounded number of times.
Status SendLabel(const Site& site, http::Client& labeller, const std::string& label) {
  for (int attempt = 0; attempt < 30; ++attempt) {
    OUTPOST_ASSIGN_OR_RETURN(http::ClientResponse fb,
                             labeller.Request("POST", "/v1/feedback", label));
    if (fb.status == 200) return Status();
    if (fb.status != 429) {
      return InternalError(site.id + ": feedback refused: " + std::to_string(fb.status) + " " +
                           fb.body);
    }
    const int wait_s = std::clamp(std::atoi(fb.Header("Retry-After").c_str()), 1, 10);
    std::this_thread::sleep_for(std::chrono::seconds(wait_s));
  }
  return ResourceExhaustedError(site.id + ": feedback still rate-limited after 30 tries");
}

// Scores `rows` readings of drifted pumps at one site (one reading a request, so that a label
// names exactly one row) with the scorer's credential, injects a fault every kInjectEvery
// readings, and sends the operators' label of every reading to POST /v1/feedback with the
// labeller's: 1 for a fault, 0 for a healthy pump (numbers, so that a shadow rule can score
// both versions by them). Request ids are <site>-<phase><n>.
Status StreamTraffic(Site& site, int64_t rows, uint64_t seed, char phase) {
  OUTPOST_ASSIGN_OR_RETURN(train::Dataset data,
                           train::MakePumpReadings({.rows = rows,
                                                    .seed = seed,
                                                    .fault_rate = kFaultRate,
                                                    .shift_feature = "bearing_temp_c",
                                                    .shift_sigmas = kShiftSigmas}));
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<http::Client> scorer,
                           EdgeClient(site, site.scorer_token));
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<http::Client> labeller,
                           EdgeClient(site, site.labeller_token));
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<float> row(data.Row(r).begin(), data.Row(r).end());
    bool fault = data.labels[static_cast<size_t>(r)] == 1.0f;
    if ((r + 1) % kInjectEvery == 0) {
      // An injected failing bearing: very hot, shaking, and long overdue for service.
      row[0] += static_cast<float>(5 * train::kPumpFeatureSpread[0]);
      row[1] += static_cast<float>(5 * train::kPumpFeatureSpread[1]);
      row[7] += static_cast<float>(3 * train::kPumpFeatureSpread[7]);
      fault = true;
      ++site.injected;
    }
    char id[48];
    std::snprintf(id, sizeof(id), "%s-%c%06lld", site.id.c_str(), phase,
                  static_cast<long long>(r + 1));
    OUTPOST_ASSIGN_OR_RETURN(http::ClientResponse res,
                             scorer->Request("POST", "/v2/models/pump/infer", InferBody(id, row)));
    if (res.status != 200) return InternalError(site.id + ": scoring failed: " + res.body);
    OUTPOST_ASSIGN_OR_RETURN(float p, ParseProbability(res.body));
    ++site.readings;
    site.flagged += p >= 0.5f;
    site.faults += fault;
    site.caught += fault && p >= 0.5f;
    std::string label = std::string("{\"request_id\":\"") + id +
                        "\",\"model\":\"pump\",\"label\":" + (fault ? "1" : "0") + "}";
    OUTPOST_RETURN_IF_ERROR(SendLabel(site, *labeller, label));
    ++site.feedback;
  }
  return Status();
}

// Waits (bounded) until the live site's outbox is empty: its forwarder has uploaded
// everything and the hub acknowledged it.
Status WaitDrained(Site& site, int seconds) {
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<http::Client> client,
                           EdgeClient(site, site.reader_token));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    OUTPOST_ASSIGN_OR_RETURN(uint64_t held, OutboxRecords(*client));
    if (held == 0) return Status();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return Status();  // what is still held is counted as such in the final account
}

// Site B's records across the air gap: stop its edge (export needs the data_dir), export,
// import at the hub, bring the receipt back, start the edge again when `restart`.
Status ExportRound(Site& site, const std::string& workdir, const std::string& hub_dir,
                   const std::string& store_url, const std::string& policy, bool restart) {
  OUTPOST_RETURN_IF_ERROR(site.edge.Stop());
  ++site.exports;
  const std::string file =
      JoinPath(JoinPath(workdir, "usb-stick"), site.id + "-" + std::to_string(site.exports) + ".export");
  const std::string receipt = file + ".receipt";
  OUTPOST_ASSIGN_OR_RETURN(std::string exported,
                           Outpost({"export", "--to", file, "--config", site.export_config}));
  std::printf("   %s\n", FirstLine(exported).c_str());
  const uint64_t count = NumberAfter(exported, "exported");
  site.exported += count;
  if (count == 0) {
    // Nothing waited in the outbox: no file needs to travel (and `outpost hub import` writes
    // no receipt for an export without batches).
    std::printf("   nothing to carry this time\n");
    if (restart) OUTPOST_RETURN_IF_ERROR(StartEdge(site));
    return Status();
  }
  OUTPOST_ASSIGN_OR_RETURN(std::string imported,
                           Outpost({"hub", "import", file, "--receipt", receipt, "--data-dir",
                                    hub_dir, "--store", store_url, "--policy", policy}));
  std::printf("   %s\n", FirstLine(imported).c_str());
  site.imported_at_hub += NumberAfter(imported, "duplicate),");
  OUTPOST_ASSIGN_OR_RETURN(std::string back,
                           Outpost({"import-receipt", receipt, "--config", site.export_config}));
  std::printf("   %s\n", FirstLine(back).c_str());
  site.receipt_deleted += NumberAfter(back, "acknowledged,");
  if (restart) OUTPOST_RETURN_IF_ERROR(StartEdge(site));
  return Status();
}

// Installs a bundle at a site (offline: a file, the site's trusted root, its state folder).
Result<std::string> InstallBundle(const Site& site, const std::string& bundle,
                                  const std::string& root) {
  OUTPOST_ASSIGN_OR_RETURN(std::string out,
                           Outpost({"bundle", "install", bundle, "--repository", site.models,
                                    "--state-dir", site.state, "--data-dir", site.data,
                                    "--trusted-root", root, "--site", site.id}));
  return FirstLine(out);
}

// Runs a read-only SQL query on a stopped site's outbox file with the sqlite3 shell.
Result<std::string> OutboxSql(const Site& site, const std::string& sql) {
  RunResult r = RunProgram({"/usr/bin/sqlite3", "-batch", "-noheader",
                            JoinPath(site.data, "outbox.db"), sql});
  if (r.exit_code != 0) {
    return InternalError("sqlite3 on " + site.id + "'s outbox: " + r.err +
                         " (scripts/setup.sh installs sqlite3)");
  }
  return r.out;
}

// The site's own account, read from its stopped outbox (outbox/FORMAT.md): records produced
// (seqs are gapless per stream from 1, so next_seq - 1 per stream), still held, evicted and
// quarantined; and records withheld or refused by the policy, from its audit log.
Status AccountSite(Site& site) {
  OUTPOST_ASSIGN_OR_RETURN(std::string floor,
                           OutboxSql(site, "SELECT value FROM meta WHERE key='seq_floor';"));
  if (NumberAfter(floor, "") > 1) {
    return FailedPreconditionError(site.id + "'s outbox was salvaged (seq_floor " + FirstLine(floor) +
                                   "): its production cannot be counted from seqs");
  }
  OUTPOST_ASSIGN_OR_RETURN(std::string produced,
                           OutboxSql(site, "SELECT COALESCE(SUM(next_seq - 1), 0) FROM streams;"));
  site.produced = NumberAfter(produced, "");
  OUTPOST_ASSIGN_OR_RETURN(std::string held, OutboxSql(site, "SELECT COUNT(*) FROM records;"));
  site.held = NumberAfter(held, "");
  OUTPOST_ASSIGN_OR_RETURN(
      std::string evicted,
      OutboxSql(site, "SELECT COALESCE(SUM(value), 0) FROM counters WHERE name LIKE 'evicted_records.%';"));
  site.evicted = NumberAfter(evicted, "");
  OUTPOST_ASSIGN_OR_RETURN(
      std::string quarantined,
      OutboxSql(site, "SELECT COALESCE(SUM(value), 0) FROM counters WHERE name = 'quarantined_records';"));
  site.quarantined = NumberAfter(quarantined, "");
  // A record may be decided on more than once (a retried lease); count each record once.
  std::set<std::pair<std::string, uint64_t>> dropped;
  const std::string audit = JoinPath(site.data, "audit.log");
  if (PathExists(audit)) {
    OUTPOST_ASSIGN_OR_RETURN(std::string text, ReadFile(audit));
    json::Parser parser;
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) break;
      json::Value e;
      std::string_view decision, stream;
      uint64_t rseq = 0;
      if (!Missing(parser.Parse(std::string_view(text.data() + start, end - start)), e) &&
          !Missing(e["decision"].GetString(), decision) && decision != "allowed" &&
          !Missing(e["stream"].GetString(), stream) && !Missing(e["rseq"].GetUint64(), rseq)) {
        dropped.emplace(std::string(stream), rseq);
      }
      start = end + 1;
    }
  }
  site.withheld = dropped.size();
  // The outbox's account, summed over its classes.
  for (const char* field : {"raised", "delivered", "withheld", "evicted", "refused", "sampled_out",
                            "quarantined"}) {
    OUTPOST_ASSIGN_OR_RETURN(
        std::string sum, OutboxSql(site, "SELECT COALESCE(SUM(value), 0) FROM counters WHERE name "
                                         "LIKE '" + std::string(field) + "\\_records.%' ESCAPE '\\';"));
    site.outbox_account[field] = NumberAfter(sum, "");
  }
  return Status();
}

// Prints the outbox's account of a site: raised = held + delivered + withheld + evicted +
// refused + sampled out + quarantined. Whether it balances.
bool PrintOutboxAccount(const Site& s) {
  auto n = [&](const char* field) {
    auto it = s.outbox_account.find(field);
    return static_cast<unsigned long long>(it == s.outbox_account.end() ? 0 : it->second);
  };
  const unsigned long long sum = n("delivered") + n("withheld") + n("evicted") + n("refused") +
                                 n("sampled_out") + n("quarantined") + s.held;
  std::printf(
      "   %s's outbox: raised %llu = held %llu + delivered %llu + withheld %llu + evicted %llu "
      "+ refused %llu + sampled out in storms %llu + quarantined %llu  %s\n",
      s.id.c_str(), n("raised"), static_cast<unsigned long long>(s.held), n("delivered"),
      n("withheld"), n("evicted"), n("refused"), n("sampled_out"), n("quarantined"),
      sum == n("raised") ? "(balanced)" : "(MISMATCH)");
  return sum == n("raised");
}

// Per-kind record counts and a site's total at the hub (through the store's query).
Result<uint64_t> HubRecords(hub::Store& store, const std::string& site_id,
                            std::map<std::string, uint64_t>* by_kind) {
  hub::RecordQuery q;
  q.tenant = kTenant;
  q.site_id = site_id;
  q.limit = 10000;
  uint64_t total = 0;
  while (true) {
    OUTPOST_ASSIGN_OR_RETURN(std::vector<hub::HubRecord> page, store.QueryRecords(q));
    for (const hub::HubRecord& r : page) {
      q.after_id = std::max(q.after_id, r.id);
      ++total;
      if (by_kind != nullptr) ++(*by_kind)[r.kind];
    }
    if (page.size() < q.limit) break;
  }
  return total;
}

struct Metrics {
  double auc = NAN, accuracy = NAN, logloss = NAN;
  int64_t version = 0;
};

// The number at `key` of a JSON object, or NaN (DoubleAt) / 0 (IntAt) where there is none.
double DoubleAt(json::Value e, const char* key) {
  double d;
  return Missing(e[key].GetDouble(), d) ? NAN : d;
}
int64_t IntAt(json::Value e, const char* key) {
  int64_t v;
  return Missing(e[key].GetInt64(), v) ? 0 : v;
}

Metrics ReadMetrics(json::Value e) {
  return Metrics{.auc = DoubleAt(e, "auc"), .accuracy = DoubleAt(e, "accuracy"),
                 .logloss = DoubleAt(e, "logloss"), .version = IntAt(e, "version")};
}

// A measured number, or nothing where it could not be measured (NaN).
std::optional<double> Finite(double v) {
  return std::isfinite(v) ? std::optional<double>(v) : std::nullopt;
}

void WriteMetrics(JsonWriter& w, const Metrics& m) {
  w.BeginObject();
  w.Key("version");
  w.Int(m.version);
  for (auto [key, value] : {std::pair<const char*, double>{"auc", m.auc},
                            {"accuracy", m.accuracy},
                            {"logloss", m.logloss}}) {
    w.Key(key);
    w.OptionalDouble(Finite(value));
  }
  w.EndObject();
}

// The edge's shadow counters from GET /metrics, "name value" each, for an error message.
std::string ShadowMetrics(Site& site) {
  Result<std::unique_ptr<http::Client>> client = EdgeClient(site, site.reader_token);
  if (!client.ok()) return client.status().ToString();
  Result<http::ClientResponse> r = (*client)->Request("GET", "/metrics");
  if (!r.ok()) return r.status().ToString();
  std::string out;
  size_t start = 0;
  while (start < r->body.size()) {
    size_t end = r->body.find('\n', start);
    if (end == std::string::npos) end = r->body.size();
    std::string_view line(r->body.data() + start, end - start);
    if (line.rfind("outpost_shadow_", 0) == 0) {
      out += (out.empty() ? "" : ", ") + std::string(line.substr(15));
    }
    start = end + 1;
  }
  return out;
}

// Waits (bounded) until the edge serves exactly `want` (e.g. "2").
Result<std::string> WaitServing(Site& site, const std::string& want) {
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<http::Client> client,
                           EdgeClient(site, site.scorer_token));
  std::string serving;
  for (int i = 0; i < 1200; ++i) {
    Result<std::string> s = ServingVersions(*client);
    if (s.ok()) {
      serving = *s;
      if (serving == want) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return serving;
}

// The shadow rule of the demo's release bundles (serve/FORMAT.md "Shadow mode"): most of the
// shadow-phase readings compared, half of them labelled, and the challenger right more often
// than the champion by 5 points. Agreement may be low: the champion is the model that drift
// has made wrong.
std::string ShadowRule(const DemoFlags& flags) {
  return "{min_requests: " + std::to_string(flags.shadow_rows * 3 / 4) +
         ", min_agreement: 0.4, min_labelled: " + std::to_string(flags.shadow_rows / 2) +
         ", min_accuracy_gain: 0.05}";
}

// The hub config (hub/FORMAT.md section 7): the retraining of pump, which starts once every
// reading of both sites has its label at the hub, and the release of its approved versions
// as the champion's shadow. The release's bundle names both sites: the hub offers a bundle
// over the site listener only to the sites (or groups) it names, so site A's edge is offered
// it (hub/FORMAT.md section 10) and site B may install it from disk.
std::string HubConfig(const DemoFlags& flags, const std::string& workdir,
                      const std::string& keys) {
  return "retrain:\n"
         "  - model: pump\n"
         "    tenant: " + std::string(kTenant) + "\n"
         "    train_config: " + JoinPath(workdir, "train.yaml") + "\n"
         "    min_new_labels: " + std::to_string(2 * flags.rows) + "\n"
         "    check_every_s: 1\n"
         "    auto_approve: false\n"
         "    release:\n"
         "      model_config: " + JoinPath(workdir, "pump-config.yaml") + "\n"
         "      keys: " + keys + "\n"
         "      sites: [site-a, site-b]\n"
         "      shadow: {promote: " + ShadowRule(flags) + "}\n";
}

struct RetrainRun {
  int64_t version = 0;
  int64_t labels = 0;
  std::string outcome;
};

// Waits (bounded) until the hub's first retraining job of pump has finished
// (GET /api/v1/models/pump/retrain).
Result<RetrainRun> WaitRetrained(http::Client& op, int seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  std::string last;
  while (std::chrono::steady_clock::now() < deadline) {
    OUTPOST_ASSIGN_OR_RETURN(http::ClientResponse r, op.Request("GET", "/api/v1/models/pump/retrain"));
    if (r.status != 200) return InternalError("GET /api/v1/models/pump/retrain: " + r.body);
    last = r.body;
    json::Parser parser;
    json::Value doc;
    uint64_t runs = 0;
    bool running = true;
    if (Missing(parser.Parse(r.body), doc) || Missing(doc["runs"].GetUint64(), runs) ||
        Missing(doc["running"].GetBool(), running)) {
      return InternalError("GET /api/v1/models/pump/retrain: unexpected answer " + r.body);
    }
    if (runs > 0 && !running) {
      RetrainRun run;
      std::string_view outcome, error;
      if (Missing(doc["last_outcome"].GetString(), outcome) ||
          Missing(doc["last_version"].GetInt64(), run.version) ||
          Missing(doc["labels_at_last_run"].GetInt64(), run.labels)) {
        return InternalError("the hub's retraining job did not register a version: " + r.body);
      }
      run.outcome = std::string(outcome);
      if (run.outcome == "failed") {
        return InternalError("the hub's retraining job failed: " + r.body);
      }
      return run;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return DeadlineExceededError("the hub did not retrain pump within " + std::to_string(seconds) +
                               " s; its last status: " + last);
}

// The site's shadow decision as the hub received it: its newest `shadow_promoted` or
// `shadow_dropped` event record (serve/FORMAT.md "Shadow mode").
Status ReadShadowOutcome(hub::Store& store, Site& site) {
  hub::RecordQuery q{.tenant = kTenant, .site_id = site.id, .kind = "event", .limit = 10000};
  OUTPOST_ASSIGN_OR_RETURN(std::vector<hub::HubRecord> events, store.QueryRecords(q));
  json::Parser parser;
  for (const hub::HubRecord& r : events) {
    json::Value e;
    std::string_view event;
    if (Missing(parser.Parse(r.payload), e) || Missing(e["event"].GetString(), event) ||
        (event != "shadow_promoted" && event != "shadow_dropped")) {
      continue;
    }
    site.shadow_event = std::string(event);
    site.shadow_winner = IntAt(e, "version");
    site.shadow_compared = static_cast<uint64_t>(IntAt(e, "compared"));
    site.shadow_labelled = static_cast<uint64_t>(IntAt(e, "labelled"));
    site.shadow_agreement = DoubleAt(e, "agreement");
    site.champion_accuracy = DoubleAt(e, "champion_accuracy");
    site.shadow_accuracy = DoubleAt(e, "shadow_accuracy");
  }
  return Status();
}

// What the demo's steps share: the folders and files of the hub and the sites, the running
// processes, the operator's client of the hub's API, and the numbers later steps, the summary
// and the closing line read. Members are destroyed in reverse order: the operator's client,
// then the hub, then the sites' edges, then the store, as the locals of one function were.
struct DemoContext {
  const DemoFlags& flags;
  std::string workdir;
  std::chrono::steady_clock::time_point started;
  std::string hub_dir, store_url, keys, root, policy, bundles;

  // 1. The first model.
  std::unique_ptr<hub::Store> store;
  std::string first_json, config_yaml;
  // 2. Keys and a signed bundle.
  std::string bundle1;
  // 3. and 4. The sites; the hub and its dashboard.
  Site sites[2];
  Process hub_server{.name = "outpost hub serve"};
  std::string dashboard;
  // The operator's token (`outpost hub operator add`; the hub keeps its hash in
  // operator_tokens_file).
  std::string operator_token, operator_tokens_file;
  // 5. The edge's refusals of a caller without a credential and of one without the role,
  // "<status> <reason>".
  std::string refused_no_credential, refused_wrong_role;
  // 7. Retraining: the operator's client, the job and the registry's decision.
  std::unique_ptr<http::Client> op;
  RetrainRun run;
  Metrics champion, challenger;
  std::string decision;
  int64_t new_version = 0, holdout_rows = 0;
  // 8. The release.
  uint64_t bundle_version = 0;
  // 9. The account.
  bool balanced = true, promoted = true;
  double seconds = 0;
};

// Checks the flags and writes the files every step reads: folders, the policy, train.yaml.
Status PrepareWorkdir(DemoContext& ctx) {
  if (ctx.flags.shadow_rows >= ctx.flags.rows) {
    // The shadow phase's labels must not reach the retraining threshold (2 x --rows) again.
    return InvalidArgumentError("--shadow-rows must be below --rows");
  }
  ctx.hub_dir = JoinPath(ctx.workdir, "hub");
  ctx.store_url = "sqlite:" + JoinPath(ctx.hub_dir, "hub.db");
  ctx.keys = JoinPath(ctx.workdir, "keys");
  ctx.root = JoinPath(ctx.keys, "root.json");
  ctx.policy = JoinPath(ctx.workdir, "policy.yaml");
  ctx.bundles = JoinPath(ctx.workdir, "bundles");
  for (const std::string& d : {ctx.hub_dir, ctx.bundles, JoinPath(ctx.workdir, "usb-stick")}) {
    OUTPOST_RETURN_IF_ERROR(MakeDirectories(d));
  }
  OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(ctx.policy, kPolicy));
  OUTPOST_RETURN_IF_ERROR(
      WriteFileAtomically(JoinPath(ctx.workdir, "train.yaml"), TrainYaml(ctx.flags)));

  std::printf("Outpost demo: a hub and two sites on this machine, in %s\n\n", ctx.workdir.c_str());
  return Status();
}

// 1. The hub trains the first model and registers it as pump version 1, approved.
Status TrainFirstModel(DemoContext& ctx) {
  std::printf("1. The hub trains the first pump-fault model\n");
  train::Dataset original;
  OUTPOST_ASSIGN_OR_RETURN(ctx.first_json, TrainFirstPump(ctx.flags, original));
  const std::string first_dir = JoinPath(JoinPath(ctx.hub_dir, "models"), "pump-1");
  OUTPOST_RETURN_IF_ERROR(MakeDirectories(first_dir));
  OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(JoinPath(first_dir, "model.json"), ctx.first_json));
  ctx.config_yaml = ModelConfig(original);
  OUTPOST_RETURN_IF_ERROR(
      WriteFileAtomically(JoinPath(ctx.workdir, "pump-config.yaml"),
                          ModelConfig(original, /*with_version_policy=*/false)));
  OUTPOST_ASSIGN_OR_RETURN(ctx.store, hub::OpenStore(ctx.store_url));
  OUTPOST_RETURN_IF_ERROR(ctx.store->RegisterModel(
      {.name = "pump",
       .version = 1,
       .state = "approved",
       .lineage_json = R"({"v":1,"model":"pump","version":1,"original":{"source":"synthetic"}})",
       .artifact_path = JoinPath(first_dir, "model.json"),
       .created_ms = UnixMillis(SystemClock().Now()),
       .artifact = ctx.first_json}));
  std::printf("   %d simulated pump readings (%.0f%% faults), XGBoost, %d trees of depth %d\n",
              kOriginalRows, kFaultRate * 100, ctx.flags.trees, ctx.flags.depth);
  std::printf("   registered pump version 1 in the hub's model registry (%s), approved\n",
              ctx.store_url.c_str());
  return Status();
}

// 2. Signing keys, and a signed bundle of version 1 for both sites.
Status SignFirstBundle(DemoContext& ctx) {
  std::printf("2. Signing keys and a signed offline bundle of version 1 for site-a and site-b\n");
  OUTPOST_ASSIGN_OR_RETURN(std::string keys_out, Outpost({"keys", "generate", "--dir", ctx.keys}));
  std::printf("   %s\n", FirstLine(keys_out).c_str());
  const std::string models_v1 = JoinPath(ctx.workdir, "release-1");
  OUTPOST_RETURN_IF_ERROR(
      WriteModelFolder(models_v1, 1, ctx.config_yaml, ctx.first_json, NAN,
                       crypto::Sha256Hex("pump version 1: synthetic original set")));
  ctx.bundle1 = JoinPath(ctx.bundles, "pump-1.bundle");
  OUTPOST_ASSIGN_OR_RETURN(
      std::string created,
      Outpost({"bundle", "create", "--models", models_v1, "--keys", ctx.keys, "--version", "1",
               "--site", "site-a", "--site", "site-b", "-o", ctx.bundle1}));
  std::printf("   %s\n", FirstLine(created).c_str());
  OUTPOST_RETURN_IF_ERROR(ctx.store->SetModelState("pump", 1, "bundled"));
  return Status();
}

// 3. Both sites get their folders and install the first bundle offline.
Status InstallFirstBundle(DemoContext& ctx) {
  std::printf(
      "3. The bundle is carried to both sites on disk and installed offline (neither has a "
      "link yet)\n");
  ctx.sites[0].id = "site-a";
  ctx.sites[0].live = true;
  ctx.sites[1].id = "site-b";
  for (Site& s : ctx.sites) {
    s.dir = JoinPath(ctx.workdir, s.id);
    s.models = JoinPath(s.dir, "models");
    s.state = JoinPath(s.dir, "bundle-state");
    s.data = JoinPath(s.dir, "data");
    s.credentials = JoinPath(s.data, "credentials");
    s.edge_config = JoinPath(s.dir, "edge.yaml");
    s.export_config = JoinPath(s.dir, "export.yaml");
    s.log = JoinPath(s.dir, "edge.log");
    OUTPOST_RETURN_IF_ERROR(MakeDirectories(s.models));
    OUTPOST_ASSIGN_OR_RETURN(std::string line, InstallBundle(s, ctx.bundle1, ctx.root));
    std::printf("   %s: %s\n", s.id.c_str(), line.c_str());
  }
  return Status();
}

// Writes the hub's config, makes the operator's token and starts `outpost hub serve`; its
// site and operator URLs.
Status StartHub(DemoContext& ctx) {
  Process& hub = ctx.hub_server;
  const std::string hub_log = JoinPath(ctx.hub_dir, "hub.log");
  const std::string hub_config = JoinPath(ctx.workdir, "hub.yaml");
  OUTPOST_RETURN_IF_ERROR(
      WriteFileAtomically(hub_config, HubConfig(ctx.flags, ctx.workdir, ctx.keys)));
  ctx.operator_tokens_file = JoinPath(ctx.workdir, "operators.yaml");
  OUTPOST_ASSIGN_OR_RETURN(std::string token, Outpost({"hub", "operator", "add", "--tokens-file",
                                                       ctx.operator_tokens_file, "--name",
                                                       "demo-operator", "--tenant", kTenant}));
  ctx.operator_token = FirstLine(token);
  OUTPOST_ASSIGN_OR_RETURN(
      hub.proc, Subprocess::Start(
                    {SelfPath(), "hub", "serve", "--config", hub_config, "--data-dir", ctx.hub_dir,
                     "--store", ctx.store_url, "--listen", "127.0.0.1:0", "--operator-listen",
                     "127.0.0.1:0", "--policy", ctx.policy, "--operator-tokens-file",
                     ctx.operator_tokens_file, "--log-level", "warning"},
                    hub_log));
  OUTPOST_ASSIGN_OR_RETURN(hub.url, ExpectLine(*hub.proc, "listening on ", hub.name, hub_log));
  OUTPOST_ASSIGN_OR_RETURN(ctx.dashboard,
                           ExpectLine(*hub.proc, "operator listening on ", hub.name, hub_log));
  std::printf("   sites connect to %s (mutual TLS); the dashboard is on %s\n", hub.url.c_str(),
              ctx.dashboard.c_str());
  return Status();
}

// Secures a site's edge as its operator would once the site has enrolled: a credential for
// each of its callers, made with `outpost edge credential add` (each token printed once, on
// that command's stdout; the edge keeps only their hashes, in <data>/credentials.yaml), and
// the hub's CA that the callers pin. The edge config's tls: and auth: sections: HTTPS with the
// site certificate enrolment issued, and the credentials file. The operators label every
// reading the moment it is scored, far faster than people would, so each credential's
// feedback rate is raised above its default (50 a second, in bursts of 200).
Result<std::string> SecureEdge(Site& s) {
  struct Caller {
    const char* name;
    const char* role;
    std::string* token;
  };
  for (const Caller& c : {Caller{"scorer", "infer", &s.scorer_token},
                          Caller{"labeller", "label", &s.labeller_token},
                          Caller{"reader", "read", &s.reader_token}}) {
    OUTPOST_ASSIGN_OR_RETURN(std::string token,
                             Outpost({"edge", "credential", "add", "--data-dir", s.data, "--name",
                                      c.name, "--role", c.role}));
    *c.token = FirstLine(token);
  }
  OUTPOST_ASSIGN_OR_RETURN(s.hub_ca_pem, ReadFile(JoinPath(s.credentials, "hub_ca.crt")));
  return "tls: {site_certificate: true}\n"
         "auth:\n"
         "  credentials_file: " + JoinPath(s.data, "credentials.yaml") + "\n"
         "  feedback_per_second: 5000\n"
         "  feedback_burst: 5000\n";
}

// Enrols a site with its token, secures its edge (SecureEdge), and writes its edge config
// (with a `sync:` section only for the live site) and its export config (always with one).
// The live site's `sync:` has a `releases:` section (sync/FORMAT.md section 7): its edge asks
// the hub every second for the releases meant for it and installs them into the state folder
// of its offline installs, trusting the root the demo provisioned. That edge logs at info, so
// that its log shows the release puller's install.
Status EnrolSite(DemoContext& ctx, Site& s) {
  OUTPOST_ASSIGN_OR_RETURN(std::string enrolled,
                           Outpost({"enrol", "--hub", ctx.hub_server.url, "--token", s.token,
                                    "--site", s.id, "--credentials", s.credentials}));
  std::printf("   %s\n", FirstLine(enrolled).c_str());
  OUTPOST_ASSIGN_OR_RETURN(std::string secure, SecureEdge(s));
  std::string common = "site_id: " + s.id +
                       "\nnode_id: edge-1\nlisten: 127.0.0.1:0\ngrpc_listen: \"\"\n"
                       "threads: 2\nmodel_repository: " +
                       s.models + "\ndata_dir: " + s.data + "\n";
  std::string sync = "sync:\n  policy_file: " + ctx.policy +
                     "\n  backoff_initial_ms: 200\n  backoff_max_ms: 2000\n"
                     "  status_interval_s: 2\n"
                     "  encrypt_exports: true\n";  // export files sealed to the hub's key
  std::string releases = "  releases:\n"
                         "    state_dir: " + s.state + "\n"
                         "    trusted_root: " + ctx.root + "\n"
                         "    check_interval_s: 1\n";
  OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(
      s.edge_config,
      common + secure + (s.live ? "log_level: info\n" + sync + releases : "log_level: warning\n")));
  OUTPOST_RETURN_IF_ERROR(
      WriteFileAtomically(s.export_config, common + "log_level: warning\n" + sync));
  return Status();
}

// 4. One-time tokens for both sites, the hub starts, both sites enrol.
Status StartHubAndEnrol(DemoContext& ctx) {
  std::printf("4. The hub starts; both sites are enrolled once (commissioning)\n");
  for (Site& s : ctx.sites) {
    OUTPOST_ASSIGN_OR_RETURN(
        std::string token,
        Outpost({"hub", "site", "add", "--data-dir", ctx.hub_dir, "--store", ctx.store_url,
                 "--site", s.id, "--tenant", kTenant, "--region", "field"}));
    s.token = FirstLine(token);
  }
  OUTPOST_RETURN_IF_ERROR(StartHub(ctx));
  for (Site& s : ctx.sites) OUTPOST_RETURN_IF_ERROR(EnrolSite(ctx, s));
  std::printf(
      "   site-a keeps a live link to the hub, over which its edge also fetches the releases "
      "the hub has for it; site-b has none from here on\n");
  std::printf(
      "   each site's edge serves HTTPS with its site certificate (named by the site id, "
      "issued by the hub's CA, which its clients pin) and admits three tokens made with "
      "outpost edge credential add (printed once; the edge keeps their hashes): the scorer "
      "(role infer), the operators' labeller (label) and the reader of the outbox and metrics "
      "(read)\n");
  return Status();
}

// Streams `rows` labelled readings at both sites at once (site B on a second thread).
Status StreamTrafficAtBoth(DemoContext& ctx, int64_t rows, uint64_t seed_a, uint64_t seed_b,
                           char phase) {
  Status results[2];
  std::thread b([&] { results[1] = StreamTraffic(ctx.sites[1], rows, seed_b, phase); });
  results[0] = StreamTraffic(ctx.sites[0], rows, seed_a, phase);
  b.join();
  for (const Status& st : results) OUTPOST_RETURN_IF_ERROR(st);
  return Status();
}

// Sends `body` to `target` expecting a refusal; "<status> <reason>" from the edge's error
// body (e.g. "401 credential_missing"). An error when the edge served the request.
Result<std::string> Refusal(http::Client& client, std::string_view target, std::string_view body) {
  OUTPOST_ASSIGN_OR_RETURN(http::ClientResponse r, client.Request("POST", target, body));
  json::Parser parser;
  json::Value doc;
  std::string_view reason;
  if (r.status < 400 || Missing(parser.Parse(r.body), doc) ||
      Missing(doc["reason"].GetString(), reason)) {
    return InternalError("POST " + std::string(target) + " should have been refused: " +
                         std::to_string(r.status) + " " + r.body);
  }
  return std::to_string(r.status) + " " + std::string(reason);
}

// The edge turns away a caller without a credential, and a credential without the route's
// role, before the request reaches scoring or the outbox: prints both refusals and keeps them
// for the summary.
Status ShowRefusals(DemoContext& ctx) {
  const Site& s = ctx.sites[0];
  const std::string reading(InferBody(s.id + "-refused", std::vector<float>(8, 0.0f)));
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<http::Client> anonymous, EdgeClient(s, ""));
  OUTPOST_ASSIGN_OR_RETURN(ctx.refused_no_credential,
                           Refusal(*anonymous, "/v2/models/pump/infer", reading));
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<http::Client> scorer, EdgeClient(s, s.scorer_token));
  OUTPOST_ASSIGN_OR_RETURN(
      ctx.refused_wrong_role,
      Refusal(*scorer, "/v1/feedback",
              "{\"request_id\":\"" + s.id + "-refused\",\"model\":\"pump\",\"label\":1}"));
  std::printf(
      "   %s refuses a reading sent without a credential (POST /v2/models/pump/infer -> %s) "
      "and a label sent with the scorer's token (POST /v1/feedback -> %s)\n",
      s.id.c_str(), ctx.refused_no_credential.c_str(), ctx.refused_wrong_role.c_str());
  return Status();
}

// 5. Both edges start and score drifted, labelled traffic.
Status ScoreTraffic(DemoContext& ctx) {
  std::printf(
      "5. Both sites score live traffic; their pumps run hotter than in the training data "
      "(bearing temperature +%.1f sigma), with a failing bearing injected every %d "
      "readings; operators label every reading\n",
      kShiftSigmas, kInjectEvery);
  for (Site& s : ctx.sites) OUTPOST_RETURN_IF_ERROR(StartEdge(s));
  OUTPOST_RETURN_IF_ERROR(ShowRefusals(ctx));
  OUTPOST_RETURN_IF_ERROR(StreamTrafficAtBoth(ctx, ctx.flags.rows, 11, 12, 'r'));
  for (Site& s : ctx.sites) {
    OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<http::Client> scorer, EdgeClient(s, s.scorer_token));
    OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<http::Client> reader, EdgeClient(s, s.reader_token));
    OUTPOST_ASSIGN_OR_RETURN(s.serving_before, ServingVersions(*scorer));
    OUTPOST_ASSIGN_OR_RETURN(uint64_t held, OutboxRecords(*reader));
    std::printf(
        "   %s (%s, serving pump %s): %lld readings, %lld flagged (p >= 0.5), %lld "
        "injected faults, %lld labels; %llu records in its outbox now\n",
        s.id.c_str(), s.edge.url.c_str(), s.serving_before.c_str(),
        static_cast<long long>(s.readings), static_cast<long long>(s.flagged),
        static_cast<long long>(s.injected), static_cast<long long>(s.feedback),
        static_cast<unsigned long long>(held));
  }
  return Status();
}

// 6. Site A's records go live; site B's by export file, import at the hub and receipt.
Status RecordsToHub(DemoContext& ctx) {
  std::printf("6. Records travel to the hub\n");
  OUTPOST_RETURN_IF_ERROR(WaitDrained(ctx.sites[0], 60));
  OUTPOST_ASSIGN_OR_RETURN(uint64_t live_now, HubRecords(*ctx.store, "site-a", nullptr));
  std::printf("   site-a, live over mutual TLS: the hub holds %llu of its records\n",
              static_cast<unsigned long long>(live_now));
  std::printf("   site-b, disconnected: its edge stops, records go to a file on a USB stick\n");
  return ExportRound(ctx.sites[1], ctx.workdir, ctx.hub_dir, ctx.store_url, ctx.policy, true);
}

// Reads the registry's judgement of the retrained version (GET /api/v1/models/pump/versions),
// prints both models' metrics, and fails unless the challenger became a candidate.
Status ReadRetrainDecision(DemoContext& ctx) {
  OUTPOST_ASSIGN_OR_RETURN(http::ClientResponse listed,
                           ctx.op->Request("GET", "/api/v1/models/pump/versions"));
  if (listed.status != 200)
    return InternalError("GET /api/v1/models/pump/versions: " + listed.body);
  json::Parser parser;
  json::Value listed_doc, metrics_doc;
  json::Value versions_e;
  if (Missing(parser.Parse(listed.body), listed_doc) ||
      MissingArray(listed_doc["versions"], versions_e)) {
    return InternalError("GET /api/v1/models/pump/versions: unexpected answer " + listed.body);
  }
  bool found = false;
  for (json::Value v : versions_e.Items()) {
    int64_t version = 0;
    if (!Missing(v["version"].GetInt64(), version) && version == ctx.run.version &&
        !MissingValue(v["metrics"], metrics_doc)) {
      found = true;
    }
  }
  if (!found)
    return InternalError("the registry does not list pump " + std::to_string(ctx.run.version));
  std::string_view decision;
  json::Value champion_e, challenger_e;
  if (Missing(metrics_doc["decision"].GetString(), decision) ||
      Missing(metrics_doc["version"].GetInt64(), ctx.new_version) ||
      Missing(metrics_doc["holdout"]["rows"].GetInt64(), ctx.holdout_rows) ||
      MissingValue(metrics_doc["challenger"], challenger_e) || MissingValue(metrics_doc["champion"], champion_e)) {
    return InternalError("the registry's metrics lack the decision: " + listed.body);
  }
  ctx.challenger = ReadMetrics(challenger_e);
  ctx.challenger.version = ctx.new_version;
  ctx.champion = ReadMetrics(champion_e);
  ctx.decision = std::string(decision);
  const Metrics& champion = ctx.champion;
  const Metrics& challenger = ctx.challenger;
  std::printf("   holdout: %lld edge-labelled readings the training never saw\n",
              static_cast<long long>(ctx.holdout_rows));
  std::printf("   champion   pump %lld: AUC %s, accuracy %s, log loss %s\n",
              static_cast<long long>(champion.version), Num(champion.auc).c_str(),
              Num(champion.accuracy).c_str(), Num(champion.logloss).c_str());
  std::printf("   challenger pump %lld: AUC %s, accuracy %s, log loss %s -> %s\n",
              static_cast<long long>(challenger.version), Num(challenger.auc).c_str(),
              Num(challenger.accuracy).c_str(), Num(challenger.logloss).c_str(),
              ctx.decision.c_str());
  if (ctx.decision != "candidate") {
    return FailedPreconditionError("the challenger did not beat the champion: " + listed.body);
  }
  return Status();
}

// 7. The hub's retraining schedule runs `outpost train`; the registry judges the challenger.
Status Retrain(DemoContext& ctx) {
  std::printf(
      "7. The hub retrains pump by its schedule: a job once %d new labels have arrived "
      "(every reading of both sites)\n",
      2 * ctx.flags.rows);
  OUTPOST_ASSIGN_OR_RETURN(
      ctx.op, http::Client::Connect("127.0.0.1", PortOf(ctx.dashboard), ctx.operator_token));
  OUTPOST_ASSIGN_OR_RETURN(ctx.run, WaitRetrained(*ctx.op, 120));
  std::printf("   the hub saw %lld labels and ran outpost train: pump version %lld, %s\n",
              static_cast<long long>(ctx.run.labels), static_cast<long long>(ctx.run.version),
              ctx.run.outcome.c_str());
  return ReadRetrainDecision(ctx);
}

// An operator approves the challenger through the hub's API; the path of the bundle the hub
// built and signed, which must ship the challenger as the champion's shadow.
Result<std::string> ApproveChallenger(DemoContext& ctx) {
  OUTPOST_ASSIGN_OR_RETURN(
      http::ClientResponse approved,
      ctx.op->Request(
          "POST", "/api/v1/models/pump/versions/" + std::to_string(ctx.new_version) + "/approve"));
  json::Parser approve_parser;
  json::Value approve_doc;
  std::string_view bundle_view;
  bool shadow = false;
  if (approved.status != 200 || Missing(approve_parser.Parse(approved.body), approve_doc) ||
      Missing(approve_doc["bundle"].GetString(), bundle_view) ||
      Missing(approve_doc["bundle_version"].GetUint64(), ctx.bundle_version) ||
      Missing(approve_doc["shadow"].GetBool(), shadow)) {
    return InternalError("the hub did not release pump " + std::to_string(ctx.new_version) + ": " +
                         std::to_string(approved.status) + " " + approved.body);
  }
  if (!shadow) return InternalError("the hub's release has no shadow period: " + approved.body);
  const std::string bundle2(bundle_view);
  std::printf("   %s: bundle version %llu, pump %lld serves, pump %lld in its shadow\n",
              bundle2.c_str(), static_cast<unsigned long long>(ctx.bundle_version),
              static_cast<long long>(ctx.champion.version),
              static_cast<long long>(ctx.new_version));
  return bundle2;
}

// The newest bundle event (bundle/FORMAT.md section 9) of `site` for bundle version
// `bundle_version` among the hub's event records: "bundle_installed", or e.g.
// "bundle_refused (SIGNATURE: ...)"; empty when none has arrived.
Result<std::string> HubBundleEvent(hub::Store& store, const std::string& site,
                                   uint64_t bundle_version) {
  hub::RecordQuery q{.tenant = kTenant, .site_id = site, .kind = "event", .limit = 10000};
  std::string found;
  json::Parser parser;
  while (true) {
    OUTPOST_ASSIGN_OR_RETURN(std::vector<hub::HubRecord> page, store.QueryRecords(q));
    for (const hub::HubRecord& r : page) {
      q.after_id = std::max(q.after_id, r.id);
      json::Value e;
      std::string_view event, reason, message;
      uint64_t version = 0;
      if (Missing(parser.Parse(r.payload), e) || Missing(e["event"].GetString(), event) ||
          event.rfind("bundle_", 0) != 0 || Missing(e["bundle_version"].GetUint64(), version) ||
          version != bundle_version) {
        continue;
      }
      found = std::string(event);
      if (!Missing(e["reason"].GetString(), reason)) {
        found += " (" + std::string(reason);
        if (!Missing(e["message"].GetString(), message) && !message.empty()) {
          found += ": " + std::string(message);
        }
        found += ")";
      }
    }
    if (page.size() < q.limit) break;
  }
  return found;
}

// Site A's copy of the release: nothing is carried there. Its edge's release puller finds the
// bundle in the hub's listing over the live link, fetches, verifies, health-checks and installs
// it, and its bundle_installed event goes back to the hub through the outbox. Waits (bounded)
// until the edge serves `want` and the hub holds that event; an error names what is missing.
Status WaitFetchedOverLink(DemoContext& ctx, Site& s, const std::string& want, int seconds) {
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<http::Client> client, EdgeClient(s, s.scorer_token));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  std::string serving, event;
  while (true) {
    if (serving != want) {
      Result<std::string> v = ServingVersions(*client);
      if (v.ok()) serving = *v;
    }
    if (event != "bundle_installed") {
      OUTPOST_ASSIGN_OR_RETURN(event, HubBundleEvent(*ctx.store, s.id, ctx.bundle_version));
    }
    if (serving == want && event == "bundle_installed") return Status();
    if (event.rfind("bundle_refused", 0) == 0) {
      // The puller does not fetch a refused release again (a failed install it retries).
      return InternalError(s.id + " refused bundle version " + std::to_string(ctx.bundle_version) +
                           " fetched over its link: its event at the hub is " + event + "; see " +
                           s.log);
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::string missing;
  if (serving != want) {
    missing = "its edge serves pump \"" + serving + "\", not \"" + want + "\"";
  }
  if (event != "bundle_installed") {
    missing += std::string(missing.empty() ? "" : "; ") +
               "the hub has no bundle_installed event of " + s.id + " for bundle version " +
               std::to_string(ctx.bundle_version) +
               (event.empty() ? "" : " (its newest event of it: " + event + ")");
  }
  return DeadlineExceededError(
      s.id + " did not receive the release over its link within " + std::to_string(seconds) +
      " s: " + missing + " (its edge's release puller: sync.releases in " + s.edge_config +
      "; the hub offers a release only to the sites its bundle names: release.sites in " +
      JoinPath(ctx.workdir, "hub.yaml") + ", hub/FORMAT.md section 10; see " + s.log + ")");
}

// The release reaches both running sites, each as its link allows: site A's edge fetches it
// over its link by itself (WaitFetchedOverLink); site B's copy is carried on disk and installed
// with `outpost bundle install` (started first, so that the two proceed together). Each edge
// picks the new folder and config.yaml up by watching its repository; traffic waits until both
// have loaded the shadow beside the champion.
Status InstallShadow(DemoContext& ctx, const std::string& bundle2) {
  const std::string both =
      std::to_string(ctx.champion.version) + "," + std::to_string(ctx.new_version);
  Site& a = ctx.sites[0];
  Site& b = ctx.sites[1];
  OUTPOST_ASSIGN_OR_RETURN(std::string b_line, InstallBundle(b, bundle2, ctx.root));
  b.release_by = "disk";
  OUTPOST_RETURN_IF_ERROR(WaitFetchedOverLink(ctx, a, both, 120));
  a.release_by = "link";
  std::printf(
      "   %s, connected: fetched the release over its link and installed it (bundle version "
      "%llu); loaded pump %s; the hub has its bundle_installed event\n",
      a.id.c_str(), static_cast<unsigned long long>(ctx.bundle_version), both.c_str());
  OUTPOST_ASSIGN_OR_RETURN(std::string loaded, WaitServing(b, both));
  if (loaded != both) {
    return InternalError(b.id + " did not load pump " + std::to_string(ctx.new_version) +
                         " beside pump " + std::to_string(ctx.champion.version) + " (it has \"" +
                         loaded + "\"); see " + b.log);
  }
  std::printf(
      "   %s, disconnected: the bundle is carried on disk and installed: %s; loaded pump %s\n",
      b.id.c_str(), b_line.c_str(), loaded.c_str());
  return Status();
}

// Waits until each site serves only the challenger: its shadow rule promoted it.
Status CheckPromoted(DemoContext& ctx) {
  for (Site& s : ctx.sites) {
    OUTPOST_ASSIGN_OR_RETURN(s.serving_after, WaitServing(s, std::to_string(ctx.new_version)));
    std::printf("   %s: now serving pump %s\n", s.id.c_str(), s.serving_after.c_str());
    if (s.serving_after != std::to_string(ctx.new_version)) {
      return InternalError(s.id + " did not promote pump " + std::to_string(ctx.new_version) +
                           " (it serves \"" + s.serving_after + "\"; " + ShadowMetrics(s) +
                           "); see " + s.log);
    }
  }
  return Status();
}

// 8. Approval and release as a shadow, which reaches site A over its link and site B on disk,
// shadow traffic, promotion.
Status ApproveShadowPromote(DemoContext& ctx) {
  std::printf(
      "8. An operator approves pump %lld through the hub's API; the hub bundles and signs "
      "it as the shadow of pump %lld\n",
      static_cast<long long>(ctx.new_version), static_cast<long long>(ctx.champion.version));
  OUTPOST_ASSIGN_OR_RETURN(std::string bundle2, ApproveChallenger(ctx));
  OUTPOST_RETURN_IF_ERROR(InstallShadow(ctx, bundle2));
  std::printf(
      "   %d more labelled readings at each site: both versions score each, the champion "
      "answers; each site's shadow rule (%s) decides\n",
      ctx.flags.shadow_rows, ShadowRule(ctx.flags).c_str());
  OUTPOST_RETURN_IF_ERROR(StreamTrafficAtBoth(ctx, ctx.flags.shadow_rows, 21, 22, 's'));
  return CheckPromoted(ctx);
}

// Each site's account (from its stopped outbox) against its records at the hub; adds the
// hub's records to `hub_by_kind` and clears ctx.balanced where a site does not balance.
Status BalanceSites(DemoContext& ctx, std::map<std::string, uint64_t>& hub_by_kind) {
  for (Site& s : ctx.sites) {
    OUTPOST_RETURN_IF_ERROR(AccountSite(s));
    OUTPOST_ASSIGN_OR_RETURN(s.at_hub, HubRecords(*ctx.store, s.id, &hub_by_kind));
    const uint64_t expected = s.produced - s.held - s.evicted - s.quarantined - s.withheld;
    const bool ok = s.at_hub == expected;
    ctx.balanced = ctx.balanced && ok;
    std::printf(
        "   %s: produced %llu = at the hub %llu + still at the site %llu + evicted %llu "
        "+ quarantined %llu + withheld by policy %llu  %s\n",
        s.id.c_str(), static_cast<unsigned long long>(s.produced),
        static_cast<unsigned long long>(s.at_hub), static_cast<unsigned long long>(s.held),
        static_cast<unsigned long long>(s.evicted), static_cast<unsigned long long>(s.quarantined),
        static_cast<unsigned long long>(s.withheld), ok ? "(balanced)" : "(MISMATCH)");
    ctx.balanced = PrintOutboxAccount(s) && ctx.balanced;
  }
  return Status();
}

// Each site's shadow decision as its event record reached the hub; clears ctx.promoted where
// a site's promotion of the challenger did not arrive.
Status ReadShadowDecisions(DemoContext& ctx) {
  for (Site& s : ctx.sites) {
    OUTPOST_RETURN_IF_ERROR(ReadShadowOutcome(*ctx.store, s));
    ctx.promoted =
        ctx.promoted && s.shadow_event == "shadow_promoted" && s.shadow_winner == ctx.new_version;
    std::printf(
        "   %s's shadow decision, as its event record reached the hub: %s pump %lld after "
        "%llu readings compared (agreement %s) and %llu labelled (accuracy: champion %s, "
        "shadow %s)\n",
        s.id.c_str(), s.shadow_event.empty() ? "(none arrived)" : s.shadow_event.c_str(),
        static_cast<long long>(s.shadow_winner), static_cast<unsigned long long>(s.shadow_compared),
        Num(s.shadow_agreement, 3).c_str(), static_cast<unsigned long long>(s.shadow_labelled),
        Num(s.champion_accuracy, 3).c_str(), Num(s.shadow_accuracy, 3).c_str());
  }
  return Status();
}

// 9. Both edges stop (site B after its second trip) and every record is accounted for.
Status AccountForRecords(DemoContext& ctx) {
  std::printf("9. Every record accounted for\n");
  OUTPOST_RETURN_IF_ERROR(WaitDrained(ctx.sites[0], 30));
  OUTPOST_RETURN_IF_ERROR(ctx.sites[0].edge.Stop());
  std::printf(
      "   site-b's second trip: what it recorded since (the shadow phase's readings and "
      "labels, the install and promotion events)\n");
  OUTPOST_RETURN_IF_ERROR(
      ExportRound(ctx.sites[1], ctx.workdir, ctx.hub_dir, ctx.store_url, ctx.policy, false));
  std::map<std::string, uint64_t> hub_by_kind;
  OUTPOST_RETURN_IF_ERROR(BalanceSites(ctx, hub_by_kind));
  OUTPOST_RETURN_IF_ERROR(ReadShadowDecisions(ctx));
  std::string kinds;
  for (const auto& [kind, n] : hub_by_kind) {
    kinds += (kinds.empty() ? "" : ", ") + kind + " " + std::to_string(n);
  }
  std::printf("   at the hub by kind: %s\n", kinds.c_str());
  const Site& b = ctx.sites[1];
  std::printf(
      "   site-b by file: %llu records exported in %llu trips, %llu stored by the hub, "
      "%llu deleted at the site by the receipts\n",
      static_cast<unsigned long long>(b.exported), static_cast<unsigned long long>(b.exports),
      static_cast<unsigned long long>(b.imported_at_hub),
      static_cast<unsigned long long>(b.receipt_deleted));
  return Status();
}

// One site's object in the summary.
void WriteSiteSummary(JsonWriter& w, const Site& s) {
  w.BeginObject();
  w.Key("site_id");
  w.String(s.id);
  w.Key("live");
  w.Bool(s.live);
  w.Key("models");
  w.String(s.models);
  w.Key("data_dir");
  w.String(s.data);
  w.Key("readings");
  w.Int(s.readings);
  w.Key("flagged");
  w.Int(s.flagged);
  w.Key("injected");
  w.Int(s.injected);
  w.Key("feedback");
  w.Int(s.feedback);
  w.Key("serving_before");
  w.String(s.serving_before);
  w.Key("serving_after");
  w.String(s.serving_after);
  w.Key("release_by");
  w.String(s.release_by);
  w.Key("shadow_event");
  w.String(s.shadow_event);
  w.Key("shadow_winner");
  w.Int(s.shadow_winner);
  w.Key("shadow_compared");
  w.Uint(s.shadow_compared);
  w.Key("shadow_labelled");
  w.Uint(s.shadow_labelled);
  w.Key("shadow_agreement");
  w.OptionalDouble(Finite(s.shadow_agreement));
  w.Key("champion_accuracy");
  w.OptionalDouble(Finite(s.champion_accuracy));
  w.Key("shadow_accuracy");
  w.OptionalDouble(Finite(s.shadow_accuracy));
  for (auto [key, value] : {std::pair<const char*, uint64_t>{"produced", s.produced},
                            {"held", s.held},
                            {"evicted", s.evicted},
                            {"quarantined", s.quarantined},
                            {"withheld", s.withheld},
                            {"at_hub", s.at_hub},
                            {"exported", s.exported},
                            {"imported_at_hub", s.imported_at_hub},
                            {"receipt_deleted", s.receipt_deleted}}) {
    w.Key(key);
    w.Uint(value);
  }
  w.EndObject();
}

// Writes the outcome as JSON to --summary (the integration test reads it).
Status WriteSummary(const DemoContext& ctx) {
  std::string j;
  JsonWriter w(j);
  w.BeginObject();
  w.Key("v");
  w.Int(1);
  w.Key("workdir");
  w.String(ctx.workdir);
  w.Key("store");
  w.String(ctx.store_url);
  w.Key("tenant");
  w.String(kTenant);
  w.Key("dashboard");
  w.String(ctx.dashboard);
  w.Key("shadow");
  w.Bool(true);
  w.Key("bundle_version");
  w.Uint(ctx.bundle_version);
  w.Key("retrain_labels");
  w.Int(ctx.run.labels);
  w.Key("decision");
  w.String(ctx.decision);
  w.Key("holdout_rows");
  w.Int(ctx.holdout_rows);
  w.Key("champion");
  WriteMetrics(w, ctx.champion);
  w.Key("challenger");
  WriteMetrics(w, ctx.challenger);
  w.Key("refusals");
  w.BeginObject();
  w.Key("no_credential");
  w.String(ctx.refused_no_credential);
  w.Key("wrong_role");
  w.String(ctx.refused_wrong_role);
  w.EndObject();
  w.Key("balanced");
  w.Bool(ctx.balanced);
  w.Key("seconds");
  w.Double(ctx.seconds);
  w.Key("sites");
  w.BeginArray();
  for (const Site& s : ctx.sites) WriteSiteSummary(w, s);
  w.EndArray();
  w.EndObject();
  return WriteFileAtomically(ctx.flags.summary, j + "\n");
}

// Blocks until SIGINT or SIGTERM arrives (--keep-running).
void WaitForStopSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  int sig = 0;
  sigwait(&set, &sig);
}

// Closes the store, prints the closing line, fails where a site did not balance or its
// promotion did not arrive, keeps the hub up with --keep-running, and stops it.
Status CloseLoop(DemoContext& ctx) {
  ctx.store.reset();

  std::printf(
      "\nThe loop closed in %.0f s: the sites' data made pump %lld (AUC %s) beat pump %lld "
      "(AUC %s) on readings it never saw; both sites ran it in the shadow of pump %lld and "
      "promoted it.\n",
      ctx.seconds, static_cast<long long>(ctx.challenger.version),
      Num(ctx.challenger.auc, 3).c_str(), static_cast<long long>(ctx.champion.version),
      Num(ctx.champion.auc, 3).c_str(), static_cast<long long>(ctx.champion.version));
  if (!ctx.balanced) {
    return DataLossError("the hub's records do not add up to what the sites produced");
  }
  if (!ctx.promoted) {
    return InternalError("a site's promotion of pump " + std::to_string(ctx.new_version) +
                         " did not reach the hub as an event record");
  }

  if (ctx.flags.keep_running) {
    std::printf(
        "\nThe hub keeps running. Dashboard: %s/ (operator token: %s; its hash is in %s)\n"
        "Press Ctrl-C to stop it.\n",
        ctx.dashboard.c_str(), ctx.operator_token.c_str(), ctx.operator_tokens_file.c_str());
    std::fflush(stdout);
    WaitForStopSignal();
  }
  return ctx.hub_server.Stop();
}

// The demo's story, one function per step over one shared context.
Status RunLoop(const DemoFlags& flags, const std::string& workdir) {
  DemoContext ctx{.flags = flags, .workdir = workdir, .started = std::chrono::steady_clock::now()};
  OUTPOST_RETURN_IF_ERROR(PrepareWorkdir(ctx));
  OUTPOST_RETURN_IF_ERROR(TrainFirstModel(ctx));       // 1.
  OUTPOST_RETURN_IF_ERROR(SignFirstBundle(ctx));       // 2.
  OUTPOST_RETURN_IF_ERROR(InstallFirstBundle(ctx));    // 3.
  OUTPOST_RETURN_IF_ERROR(StartHubAndEnrol(ctx));      // 4.
  OUTPOST_RETURN_IF_ERROR(ScoreTraffic(ctx));          // 5.
  OUTPOST_RETURN_IF_ERROR(RecordsToHub(ctx));          // 6.
  OUTPOST_RETURN_IF_ERROR(Retrain(ctx));               // 7.
  OUTPOST_RETURN_IF_ERROR(ApproveShadowPromote(ctx));  // 8.
  OUTPOST_RETURN_IF_ERROR(AccountForRecords(ctx));     // 9.
  ctx.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - ctx.started).count();
  if (!flags.summary.empty()) OUTPOST_RETURN_IF_ERROR(WriteSummary(ctx));
  return CloseLoop(ctx);
}

Status RunDemo(const DemoFlags& flags) {
  if (!flags.write_repository.empty()) {
    train::Dataset original;
    OUTPOST_ASSIGN_OR_RETURN(std::string json, TrainFirstPump(flags, original));
    OUTPOST_RETURN_IF_ERROR(WriteModelFolder(flags.write_repository, 1, ModelConfig(original), json,
                                             NAN, crypto::Sha256Hex("pump version 1")));
    std::printf("wrote the pump model to %s/pump\n", flags.write_repository.c_str());
    return Status();
  }
  std::string workdir = flags.workdir;
  const bool temporary = workdir.empty();
  if (temporary) {
    char tmpl[] = "/tmp/outpost-demo-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return ErrnoToStatus(errno, "cannot create", tmpl);
    workdir = tmpl;
  } else {
    workdir = std::filesystem::absolute(workdir).lexically_normal().string();
    if (PathExists(workdir)) {
      Result<std::vector<std::string>> entries = ListDirectory(workdir);
      if (!entries.ok() || !entries->empty()) {
        return FailedPreconditionError("--workdir " + workdir + " must be empty or absent");
      }
    }
    OUTPOST_RETURN_IF_ERROR(MakeDirectories(workdir));
  }
  Status s = RunLoop(flags, workdir);
  if (temporary) {
    if (s.ok()) {
      RemoveTree(workdir).IgnoreError();
    } else {
      std::fprintf(stderr, "the demo's files (logs included) are kept in %s\n", workdir.c_str());
    }
  }
  return s;
}

}  // namespace

void AddDemoCommand(CLI::App& app, Action& run) {
  auto flags = std::make_shared<DemoFlags>();
  CLI::App* cmd = app.add_subcommand(
      "demo", "Run the whole loop on this machine: a hub and two sites (what `make demo` runs)");
  cmd->add_option("--workdir", flags->workdir,
                  "Keep the demo's files in this folder, empty or absent (default: a temporary "
                  "one, removed afterwards)");
  cmd->add_option("--summary", flags->summary, "Write the outcome as JSON to this file");
  cmd->add_flag("--keep-running", flags->keep_running,
                "Leave the hub and its dashboard running until Ctrl-C");
  cmd->add_option("--write-repository", flags->write_repository,
                  "Only train the first pump model and write a model repository here, then exit");
  cmd->add_option("--trees", flags->trees, "Boosting rounds of the pump models")
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--depth", flags->depth, "Tree depth of the pump models")->check(CLI::Range(1, 16));
  cmd->add_option("--rows", flags->rows, "Readings scored at each site before retraining")
      ->check(CLI::Range(200, 100000));
  cmd->add_option("--shadow-rows", flags->shadow_rows,
                  "Readings scored at each site while the challenger runs as a shadow")
      ->check(CLI::Range(100, 100000));
  cmd->callback([&run, flags] { run = [flags] { return RunDemo(*flags); }; });
}

}  // namespace outpost::apps
