// Fuzzes the dashboard's request handling: the query-string parser on its own, and then
// Handle over a small real SQLite store, with the input split as
//   <request target> '\n' <a node's models report, stored before the request>
// so that routing, every parameter's validation, the store's queries and the parsing of
// what sites report all meet hostile bytes. Any answer is fine; a crash, a sanitizer report
// or an answer that is not one of the documented statuses is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "hub/dashboard.h"
#include "hub/store.h"

namespace {

using namespace outpost::hub;

std::string* data_dir = nullptr;
Store* store = nullptr;
Dashboard* dashboard = nullptr;

void RemoveDataDir() {
  std::error_code ec;
  if (data_dir != nullptr) std::filesystem::remove_all(*data_dir, ec);
}

void CheckParser(std::string_view query) {
  auto params = ParseQueryString(query);
  if (params.ok()) {
    if (params->items.size() > kMaxQueryParams) std::abort();
    for (const auto& [name, value] : params->items) {
      if (name.empty() || name.size() > kMaxParamNameBytes || value.size() > kMaxParamValueBytes) {
        std::abort();
      }
      // Names are never repeated: each name finds its own value.
      if (params->Find(name) != &value) std::abort();
    }
  } else if (params.status().code() != outpost::StatusCode::kInvalidArgument) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  char pattern[] = "/tmp/outpost-dashboard-fuzz.XXXXXX";
  if (mkdtemp(pattern) == nullptr) std::abort();
  data_dir = new std::string(pattern);
  std::atexit(RemoveDataDir);
  auto opened = OpenStore("sqlite:" + *data_dir + "/hub.db");
  if (!opened.ok()) std::abort();
  store = opened->release();
  if (!store->CreateSite(Site{.site_id = "s1", .tenant = "t1", .region = "r"}).ok()) std::abort();
  if (!store->CreateSite(Site{.site_id = "s2", .tenant = "t2", .region = "r"}).ok()) std::abort();
  HubRecord record{.site_id = "s1", .node_id = "n1", .stream = "pump", .seq = 1,
                   .kind = "drift", .created_ms = 1'700'000'000'000,
                   .payload = R"({"v":1,"kind":"drift","psi":0.4,"feature":"f","version":2})"};
  BatchKey key{.site_id = "s1", .node_id = "n1", .stream = "pump", .first_seq = 1,
               .last_seq = 1, .content_sha256 = std::string(64, 'a')};
  if (!store->Ingest(key, {&record, 1}, std::nullopt, 1'700'000'000'000).ok()) std::abort();
  dashboard = new Dashboard(store, *data_dir + "/no-assets");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t newline = input.find('\n');
  std::string_view target = input.substr(0, newline);
  CheckParser(target.substr(target.find('?') == std::string_view::npos ? target.size()
                                                                       : target.find('?') + 1));
  if (newline != std::string_view::npos) {
    NodeStatus status{.site_id = "s1", .node_id = "n1", .autonomy_days = 2.5,
                      .models_json = std::string(input.substr(newline + 1))};
    (void)store->PutNodeStatus(status, 1'700'000'000'000);
  }
  HubRequest request{.method = "GET", .target = std::string(target)};
  request.caller = Caller{.kind = Caller::Kind::kOperator, .tenant = "t1"};
  HubResponse response = dashboard->Handle(request);
  switch (response.status) {
    case 200: case 400: case 401: case 404: case 405: case 414: case 503:
      break;
    default:
      std::abort();
  }
  return 0;
}
