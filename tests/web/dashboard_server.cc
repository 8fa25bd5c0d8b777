// dashboard_server: a small real HTTP server (base/http's server core, loopback, a port the
// kernel picks) around hub::Dashboard, for the browser tests while they do not run `outpost
// hub` itself. It checks operator bearer tokens as the hub's operator listener does, with its
// code (hub/operator_tokens.h, hub/FORMAT.md §6): a token in the URL is 400 token_in_url;
// /api/ without a known token is 401 operator_token; the static assets carry no data and are
// served to any caller.
//
//   dashboard_server --store sqlite:/tmp/x/hub.db --assets web/dist
//                    --operator-tokens-file operators.yaml
//
// Prints "listening on 127.0.0.1:PORT" once it accepts connections; runs until killed.
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "base/http/server.h"
#include "hub/dashboard.h"
#include "hub/operator_tokens.h"
#include "hub/store.h"

namespace outpost::hub {
namespace {

struct Config {
  std::string store_url;
  std::string assets_dir = DefaultAssetsDir();
  std::string tokens_file;
  OperatorTokens tokens;
};

HubResponse Unauthorized() {
  HubResponse response;
  response.status = 401;
  response.body =
      R"({"error":"a known operator bearer token is needed","reason":"operator_token"})";
  response.headers.emplace_back("www-authenticate", "Bearer");
  return response;
}

// Answers one request: the caller is the operator whose bearer token it carries.
void Serve(const HubRequest& request, HubResponse& response, const Dashboard& dashboard,
           const Config& config) {
  if (TokenInQuery(request.target)) {
    response = ErrorResponse(400, "token_in_url", "tokens are never taken from a URL");
    return;
  }
  HubRequest with_caller = request;
  if (Result<Caller> caller = AuthenticateOperator(config.tokens, request.Header("authorization"));
      caller.ok()) {
    with_caller.caller = std::move(*caller);
  }
  response =
      with_caller.target.starts_with("/api/") && with_caller.caller.kind != Caller::Kind::kOperator
          ? Unauthorized()
          : dashboard.Handle(with_caller);
}

int Main(int argc, char** argv) {
  Config config;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--store" && i + 1 < argc) {
      config.store_url = argv[++i];
    } else if (arg == "--assets" && i + 1 < argc) {
      config.assets_dir = argv[++i];
    } else if (arg == "--operator-tokens-file" && i + 1 < argc) {
      config.tokens_file = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: dashboard_server --store URL [--assets DIR] "
                   "--operator-tokens-file FILE\n");
      return 2;
    }
  }
  if (!config.tokens_file.empty()) {
    Result<OperatorTokens> tokens = LoadOperatorTokens(config.tokens_file);
    if (!tokens.ok()) {
      std::fprintf(stderr, "dashboard_server: %s\n", tokens.status().ToString().c_str());
      return 1;
    }
    config.tokens = std::move(*tokens);
  }
  auto store = OpenStore(config.store_url);
  if (!store.ok()) {
    std::fprintf(stderr, "dashboard_server: %s\n", store.status().ToString().c_str());
    return 1;
  }
  Dashboard dashboard(store->get(), config.assets_dir);
  auto server = outpost::http::Server::Start(
      {.address = "127.0.0.1",
       .port = 0,
       .threads = 4,
       .max_body_bytes = 64 * 1024,
       .max_header_bytes = 16 * 1024,
       .server_header = "outpost-dashboard-test"},
      [&dashboard, &config](const HubRequest& request, HubResponse& response) {
        Serve(request, response, dashboard, config);
      });
  if (!server.ok()) {
    std::fprintf(stderr, "dashboard_server: cannot listen: %s\n",
                 server.status().ToString().c_str());
    return 1;
  }
  std::printf("listening on 127.0.0.1:%u\n", static_cast<unsigned>((*server)->port()));
  std::fflush(stdout);
  // Serves until killed.
  while (true) std::this_thread::sleep_for(std::chrono::hours(1));
}

}  // namespace
}  // namespace outpost::hub

int main(int argc, char** argv) { return outpost::hub::Main(argc, argv); }
