// `outpost edge`: the site's scoring server. Loads the model repository, serves the Open
// Inference Protocol over HTTP and gRPC, and shuts down gracefully on SIGTERM or SIGINT: requests in
// flight finish, new ones are refused, then the process exits 0.
#include <CLI/CLI.hpp>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include "apps/commands.h"
#include "apps/edge_config.h"
#include "base/file.h"
#include "base/logging.h"
#include "serve/grpc_server.h"
#include "serve/handler.h"
#include "serve/http_server.h"
#include "serve/repository.h"

namespace outpost::apps {
namespace {

struct EdgeFlags {
  std::string config_file;
  std::string listen;
  std::string grpc_listen;
  bool grpc_listen_given = false;  // --grpc-listen "" disables gRPC, so presence matters
  std::string model_repository;
  std::string site_id;
  int threads = -1;
  std::string log_format;
  std::string log_level;
};

// The config file first, then each flag that was given.
Result<EdgeConfig> ResolveConfig(const EdgeFlags& flags) {
  EdgeConfig config;
  if (!flags.config_file.empty()) {
    OUTPOST_ASSIGN_OR_RETURN(std::string text, ReadFile(flags.config_file, 1 << 20));
    Result<EdgeConfig> parsed = ParseEdgeConfig(text);
    if (!parsed.ok()) return parsed.status().WithContext(flags.config_file);
    config = std::move(*parsed);
  }
  if (!flags.listen.empty()) OUTPOST_RETURN_IF_ERROR(ParseListen(flags.listen, config));
  if (flags.grpc_listen_given) OUTPOST_RETURN_IF_ERROR(ParseGrpcListen(flags.grpc_listen, config));
  OUTPOST_RETURN_IF_ERROR(ResolveGrpcListen(config));
  if (!flags.model_repository.empty()) config.model_repository = flags.model_repository;
  if (!flags.site_id.empty()) config.site_id = flags.site_id;
  if (flags.threads >= 0) config.threads = flags.threads;
  if (!flags.log_format.empty()) config.log_format = flags.log_format;
  if (!flags.log_level.empty()) config.log_level = flags.log_level;
  if (config.node_id.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof(host) - 1);
    config.node_id = host[0] ? host : "node";
  }
  if (config.threads == 0) {
    config.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
  return config;
}

Status RunEdge(const EdgeFlags& flags) {
  OUTPOST_ASSIGN_OR_RETURN(EdgeConfig config, ResolveConfig(flags));
  OUTPOST_ASSIGN_OR_RETURN(LogFormat format, ParseLogFormat(config.log_format));
  OUTPOST_ASSIGN_OR_RETURN(LogLevel level, ParseLogLevel(config.log_level));
  SetLogOptions({.format = format, .min_level = level});

  // SIGTERM and SIGINT are taken by sigwait below, in this thread only: block them before
  // any other thread starts so that every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  if (!IsDirectory(config.model_repository)) {
    return NotFoundError("model repository \"" + config.model_repository + "\" is not a folder");
  }
  OUTPOST_ASSIGN_OR_RETURN(
      std::unique_ptr<serve::ModelRepository> repository,
      serve::ModelRepository::Open({.root = config.model_repository,
                                    .strict_readiness = config.strict_readiness}));
  serve::HandlerOptions handler_options;
  handler_options.server_version = OutpostVersion();
  handler_options.limits.max_total_elements = static_cast<int64_t>(config.max_elements);
  handler_options.limits.max_depth = static_cast<size_t>(config.max_json_depth);
  handler_options.limits.max_body_bytes = config.max_body_bytes;
  serve::Handler handler(*repository, handler_options);

  serve::HttpServerOptions server_options;
  server_options.address = config.listen_address;
  server_options.port = config.listen_port;
  server_options.threads = config.threads;
  server_options.max_body_bytes = config.max_body_bytes;
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<serve::HttpServer> server,
                           serve::HttpServer::Start(server_options,
                                                    [&handler](const serve::HttpRequest& request,
                                                               serve::HttpResponse& response) {
                                                      handler.Handle(request, response);
                                                    }));
  std::unique_ptr<serve::GrpcServer> grpc_server;
  if (config.grpc_enabled) {
    OUTPOST_ASSIGN_OR_RETURN(
        grpc_server,
        serve::GrpcServer::Start(*repository,
                                 {.address = config.grpc_listen_address,
                                  .port = config.grpc_listen_port,
                                  // gRPC's own ceiling is INT32_MAX bytes.
                                  .max_message_bytes = std::min<uint64_t>(
                                      config.max_body_bytes, 0x7fffffff),
                                  .max_total_elements = static_cast<int64_t>(config.max_elements),
                                  .server_version = OutpostVersion()}));
  }
  OUTPOST_LOG(kInfo) << "outpost edge serving" << Field("site", config.site_id)
                     << Field("node", config.node_id) << Field("port", server->port())
                     << Field("grpc_port", grpc_server ? grpc_server->port() : 0)
                     << Field("models", repository->Models().size())
                     << Field("ready", repository->IsReady() ? "yes" : "no");
  // Tests and scripts read this line to learn the port when it was chosen by the system.
  std::printf("listening on http://%s:%u\n", config.listen_address.c_str(),
              static_cast<unsigned>(server->port()));
  // Always after the HTTP line, which tests and scripts read first.
  if (grpc_server != nullptr) {
    std::printf("grpc listening on %s:%u\n", config.grpc_listen_address.c_str(),
                static_cast<unsigned>(grpc_server->port()));
  }
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  OUTPOST_LOG(kInfo) << "shutting down: in-flight requests finish, new ones are refused"
                     << Field("signal", signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
  if (grpc_server != nullptr) grpc_server->Stop();
  server->Stop();
  OUTPOST_LOG(kInfo) << "outpost edge stopped";
  return Status();
}

}  // namespace

void AddEdgeCommand(CLI::App& app, Action& run) {
  auto flags = std::make_shared<EdgeFlags>();
  CLI::App* cmd = app.add_subcommand("edge", "Serve models at a site over the Open Inference Protocol");
  cmd->add_option("-c,--config", flags->config_file, "Edge config file (YAML)")->check(CLI::ExistingFile);
  cmd->add_option("--listen", flags->listen, "Address to listen on, host:port (port 0 = any free port)");
  CLI::Option* grpc_listen = cmd->add_option(
      "--grpc-listen", flags->grpc_listen,
      "gRPC address, host:port (port 0 = any free port; \"\" = no gRPC; default: HTTP port + 1)");
  cmd->add_option("--model-repository", flags->model_repository, "Folder of models: <model>/config.yaml, <model>/<version>/");
  cmd->add_option("--site-id", flags->site_id, "This site's id");
  cmd->add_option("--threads", flags->threads, "Server threads (0 = one per core)")->check(CLI::Range(0, 1024));
  cmd->add_option("--log-format", flags->log_format, "text or json")->check(CLI::IsMember({"text", "json"}));
  cmd->add_option("--log-level", flags->log_level, "debug, info, warning or error")
      ->check(CLI::IsMember({"debug", "info", "warning", "error"}));
  cmd->callback([&run, flags, grpc_listen] {
    flags->grpc_listen_given = grpc_listen->count() > 0;
    run = [flags] { return RunEdge(*flags); };
  });
}

}  // namespace outpost::apps
