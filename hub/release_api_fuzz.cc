// Fuzzes the registry's operator API (RetrainScheduler::Handle) over a small real SQLite
// store holding versions in every state, with the input split as
//   <method byte> <caller byte> <request target> '\n' <body>
// so that the routing of targets, versions, methods, callers and limits meets hostile bytes.
// Approving and rejecting run for real (an approval's release fails: the keys folder holds
// no keys). A POST of .../retrain is sent as a GET, so that the fuzzer starts no processes.
// Any answer is fine; a crash, a sanitizer report, an answer that is not one of the
// documented statuses or a body that does not carry a reason is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "base/file.h"
#include "hub/release.h"
#include "hub/store.h"

namespace {

using namespace outpost::hub;

std::string* data_dir = nullptr;
Store* store = nullptr;
RetrainScheduler* scheduler = nullptr;

void RemoveDataDir() {
  std::error_code ec;
  if (scheduler != nullptr) scheduler->Stop();
  if (data_dir != nullptr) std::filesystem::remove_all(*data_dir, ec);
}

bool Documented(int status) {
  switch (status) {
    case 200:
    case 202:
    case 401:
    case 404:
    case 405:
    case 409:
    case 413:
    case 414:
    case 500:
    case 503:
      return true;
    default:
      return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  char pattern[] = "/tmp/outpost-release-fuzz.XXXXXX";
  if (mkdtemp(pattern) == nullptr) std::abort();
  data_dir = new std::string(pattern);
  std::atexit(RemoveDataDir);
  const std::string dir = *data_dir;
  auto opened = OpenStore("sqlite:" + dir + "/hub.db");
  if (!opened.ok()) std::abort();
  store = opened->release();
  if (!outpost::WriteFileAtomically(dir + "/pump.yaml", "backend: xgboost\n").ok() ||
      !outpost::WriteFileAtomically(dir + "/model.json", "{}").ok() ||
      !outpost::MakeDirectories(dir + "/keys").ok()) {
    std::abort();
  }
  int64_t v = 1;
  for (const char* state : {"bundled", "candidate", "approved", "rejected"}) {
    if (!store
             ->RegisterModel({.name = "pump",
                              .version = v++,
                              .state = state,
                              .metrics_json = R"({"challenger":{"auc":0.9}})",
                              .artifact_path = dir + "/model.json"})
             .ok()) {
      std::abort();
    }
  }
  RetrainConfig pump{.model = "pump",
                     .tenant = "t1",
                     .train_config = dir + "/train.yaml",
                     .check_every = std::chrono::seconds(3600),
                     .release = {.model_config_path = dir + "/pump.yaml",
                                 .keys_dir = dir + "/keys",
                                 .shadow_yaml = "promote: {min_requests: 10}"}};
  RetrainConfig other = pump;
  other.model = "fan";
  other.tenant = "t2";
  auto started = RetrainScheduler::Start(*store, {.self = "/bin/false",
                                                  .store_url = "sqlite:" + dir + "/hub.db",
                                                  .data_dir = dir + "/hub",
                                                  .models = {pump, other}});
  if (!started.ok()) std::abort();
  scheduler = started->release();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static const char* const kMethods[] = {"GET", "POST", "PUT", "DELETE", "HEAD", "", "get"};
  HubRequest request;
  request.method = kMethods[data[0] % (sizeof(kMethods) / sizeof(kMethods[0]))];
  switch (data[1] % 4) {
    case 0:
      break;  // no caller
    case 1:
      request.caller = Caller{.kind = Caller::Kind::kOperator, .tenant = "t1"};
      break;
    case 2:
      request.caller = Caller{.kind = Caller::Kind::kOperator, .tenant = "t2"};
      break;
    default:
      request.caller = Caller{.kind = Caller::Kind::kSite, .tenant = "t1", .site_id = "s1"};
      break;
  }
  std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  const size_t nl = rest.find('\n');
  request.target = std::string(rest.substr(0, nl));
  if (nl != std::string_view::npos) request.body = std::string(rest.substr(nl + 1));
  if (request.method == "POST" && request.target.find("retrain") != std::string::npos) {
    request.method = "GET";
  }
  const bool handles = scheduler->Handles(request);
  HubResponse response = scheduler->Handle(request);
  if (!Documented(response.status)) std::abort();
  if (response.status >= 400 && response.body.find("\"reason\":") == std::string::npos) {
    std::abort();
  }
  // A target the API does not claim is never answered with anything but an error.
  if (!handles && response.status < 400) std::abort();
  return 0;
}
