// `outpost edge`: the site's scoring server. Loads the model repository, serves the Open
// Inference Protocol over HTTP and gRPC, keeps what scoring reveals (insight records) and
// what operators send (feedback, /v1/) in the durable outbox under data_dir, and shuts down
// gracefully on SIGTERM or SIGINT: requests in flight finish, new ones are refused, the
// insight evaluator writes its open aggregates, the outbox is closed, then the process exits 0.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "apps/bundle_spool.h"
#include "apps/commands.h"
#include "apps/edge_config.h"
#include "apps/edge_forwarder.h"
#include "apps/edge_releases.h"
#include "base/auth/auth.h"
#include "base/auth/http_gate.h"
#include "base/file.h"
#include "base/http/server.h"
#include "base/logging.h"
#include "base/names.h"
#include "insight/evaluator.h"
#include "outbox/outbox.h"
#include "policy/evaluate.h"
#include "serve/edge_api.h"
#include "serve/grpc_server.h"
#include "serve/handler.h"
#include "serve/http_server.h"
#include "serve/label_tally.h"
#include "serve/repository.h"
#include "serve/repository_watcher.h"
#include "serve/shadow.h"

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
  std::string data_dir;
  bool no_watch = false;  // --no-watch: models change only on restart or through the API
  std::string credentials_file;
  // --insecure-listen-without-credentials: the explicit opt-in to serve beyond loopback with
  // no credentials (anyone who reaches the port scores, labels and reads).
  bool insecure_open = false;
};

// How often the evaluator is asked to write the aggregates of minutes that have ended.
constexpr std::chrono::seconds kAggregateFlushInterval(5);

// An exclusive lock on <data_dir>/LOCK, held while the process runs (the kernel drops it
// when the process dies, SIGKILL included): the outbox must be its file's only user, so a
// second edge on the same data_dir is refused at start.
class DataDirLock {
 public:
  static Result<std::unique_ptr<DataDirLock>> Acquire(const std::string& data_dir) {
    std::string path = JoinPath(data_dir, "LOCK");
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return UnavailableError("cannot open " + path + ": " + std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int error = errno;
      ::close(fd);
      if (error == EWOULDBLOCK) {
        return FailedPreconditionError("data_dir " + data_dir +
                                       " is in use by another outpost edge");
      }
      return UnavailableError("cannot lock " + path + ": " + std::strerror(error));
    }
    return std::unique_ptr<DataDirLock>(new DataDirLock(fd));
  }
  ~DataDirLock() { ::close(fd_); }
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

 private:
  explicit DataDirLock(int fd) : fd_(fd) {}
  int fd_;
};

// The edge's files hold what the site scored and its keys: the process creates everything
// for its owner alone (umask 077, set at start), data_dir is 0700 and its LOCK 0600 (the
// outbox sees to its own files, outbox/outbox.cc). A data_dir or LOCK left looser by an older
// Outpost is tightened, with a warning naming it; one that cannot be (another owner's) is
// warned about and used as it is.
Status PrepareDataDir(const std::string& data_dir) {
  OUTPOST_RETURN_IF_ERROR(MakeDirectories(data_dir, 0700).WithContext("data_dir"));
  for (const auto& [path, mode] : {std::pair<std::string, int>{data_dir, 0700},
                                   std::pair<std::string, int>{JoinPath(data_dir, "LOCK"), 0600}}) {
    Result<std::optional<int>> had = TightenFileMode(path, mode);
    if (!had.ok()) {
      OUTPOST_LOG(kWarning) << "cannot check or tighten the mode of a data_dir entry"
                            << Field("path", path) << Field("error", had.status());
    } else if (had->has_value()) {
      char was[8];
      std::snprintf(was, sizeof(was), "%04o", **had);
      OUTPOST_LOG(kWarning) << "a data_dir entry was open to other users; made it the owner's alone"
                            << Field("path", path) << Field("mode_was", std::string(was));
    }
  }
  return Status();
}

// <data_dir>/access_audit.jsonl: one JSON line per audited access (serve/FORMAT.md, GET
// /v1/records), appended and flushed to disk before the answer is sent; 0600, never rewritten.
class AccessAudit {
 public:
  static Result<std::unique_ptr<AccessAudit>> Open(const std::string& path) {
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return ErrnoToStatus(errno, "open", path);
    return std::unique_ptr<AccessAudit>(new AccessAudit(fd, path));
  }
  ~AccessAudit() { ::close(fd_); }
  AccessAudit(const AccessAudit&) = delete;
  AccessAudit& operator=(const AccessAudit&) = delete;

  // Thread-safe.
  Status Append(std::string_view line) {
    std::string out(line);
    out.push_back('\n');
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t done = 0; done < out.size();) {
      ssize_t n = ::write(fd_, out.data() + done, out.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoToStatus(errno, "write", path_);
      done += static_cast<size_t>(n);
    }
    if (::fdatasync(fd_) != 0) return ErrnoToStatus(errno, "fdatasync", path_);
    return Status();
  }

 private:
  AccessAudit(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  std::mutex mu_;  // one line at a time
  int fd_;
  std::string path_;
};

// Asks the evaluator every kAggregateFlushInterval to write the aggregates of minutes that
// have ended, so that a quiet minute is written without waiting for its next request.
class AggregateFlusher {
 public:
  // `evaluator` is not owned and must outlive the flusher.
  explicit AggregateFlusher(insight::Evaluator& evaluator)
      : evaluator_(evaluator), thread_([this] { Loop(); }) {}
  ~AggregateFlusher() { Stop(); }
  AggregateFlusher(const AggregateFlusher&) = delete;
  AggregateFlusher& operator=(const AggregateFlusher&) = delete;

  // Stops the thread; idempotent.
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, kAggregateFlushInterval, [this] { return stopping_; })) {
      evaluator_.FlushDueAggregates();
    }
  }

  insight::Evaluator& evaluator_;
  std::mutex mu_;  // guards stopping_
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
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
  if (!flags.model_repository.empty()) config.model_repository = flags.model_repository;
  if (!flags.site_id.empty()) {
    OUTPOST_RETURN_IF_ERROR(CheckName(kSiteIdRule, flags.site_id).WithContext("--site-id"));
    config.site_id = flags.site_id;
  }
  if (flags.threads >= 0) config.threads = flags.threads;
  if (!flags.log_format.empty()) config.log_format = flags.log_format;
  if (!flags.log_level.empty()) config.log_level = flags.log_level;
  if (flags.no_watch) config.watch_repository = false;
  if (!flags.data_dir.empty()) config.data_dir = flags.data_dir;
  if (!flags.credentials_file.empty()) config.auth.credentials_file = flags.credentials_file;
  if (config.auth.credentials_file.empty()) {
    std::string in_data_dir = JoinPath(config.data_dir, "credentials.yaml");
    if (PathExists(in_data_dir)) config.auth.credentials_file = in_data_dir;
  }
  // Least privilege: without credentials the default address is loopback only.
  if (!config.listen_given) {
    config.listen_address = config.auth.credentials_file.empty() ? "127.0.0.1" : "0.0.0.0";
  }
  OUTPOST_RETURN_IF_ERROR(ResolveGrpcListen(config));
  if (config.tls.site_certificate) {
    std::string dir = config.sync.credentials_dir.empty() ? JoinPath(config.data_dir, "credentials")
                                                          : config.sync.credentials_dir;
    config.tls.cert_file = JoinPath(dir, "site.crt");
    config.tls.key_file = JoinPath(dir, "site.key");
  }
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

// Blocks SIGTERM, SIGINT and SIGHUP in this thread, which takes them by sigwait; called
// before any other thread starts so that every thread inherits the mask. The set, for sigwait.
sigset_t BlockStopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

// Scores shadow versions (config.yaml `shadow:`) beside their champions; each outcome is an
// `event` record on the model's stream. `box` is not owned and must outlive the runner.
std::unique_ptr<serve::ShadowRunner> MakeShadowRunner(serve::ModelRepository& repository,
                                                      outbox::Outbox* box) {
  return std::make_unique<serve::ShadowRunner>(serve::ShadowOptions{
      .repository = &repository, .on_event = [box](const std::string& model, std::string payload) {
        return box
            ->Append({.kind = outbox::Kind::kEvent, .stream = model, .payload = std::move(payload)})
            .status();
      }});
}

bool IsLoopbackAddress(std::string_view address) {
  return address == "localhost" || address == "::1" || address.starts_with("127.");
}

// Least privilege: an edge without credentials answers loopback only, unless the operator
// opted in by the flag whose name says what it does; that choice is logged at every start.
Status CheckExposure(const EdgeConfig& config, bool have_credentials, bool insecure_open) {
  std::string exposed;
  if (!IsLoopbackAddress(config.listen_address)) exposed = config.listen_address;
  if (config.grpc_enabled && !IsLoopbackAddress(config.grpc_listen_address)) {
    exposed += (exposed.empty() ? "" : " and ") + config.grpc_listen_address + " (gRPC)";
  }
  if (exposed.empty()) return Status();
  if (have_credentials) {
    if (!config.tls.enabled) {
      OUTPOST_LOG(kWarning) << "serving beyond loopback without TLS: tokens, inputs and answers "
                               "cross the network in clear; add a tls: section"
                            << Field("address", exposed);
    }
    return Status();
  }
  if (!insecure_open) {
    return ErrorWithReason(
        StatusCode::kFailedPrecondition, "listen_requires_credentials",
        "the edge would listen on " + exposed +
            " with no credentials, so anyone on the network could score, label and read "
            "records: add one (`outpost edge credential add --data-dir " +
            config.data_dir +
            " --name NAME --role infer`), listen on 127.0.0.1, or start with "
            "--insecure-listen-without-credentials");
  }
  OUTPOST_LOG(kWarning) << "INSECURE: serving beyond loopback with no credentials "
                           "(--insecure-listen-without-credentials): anyone who reaches the "
                           "port may score, label and read records"
                        << Field("address", exposed);
  return Status();
}

// The credentials file, the client CA and its CRL as one authenticator; null when no
// credentials file is configured (callers are then anonymous).
Result<std::shared_ptr<const auth::Authenticator>> LoadAuthenticator(const EdgeConfig& config) {
  if (config.auth.credentials_file.empty()) {
    if (!config.tls.client_ca_file.empty()) {
      return InvalidArgumentError(
          "tls.client_ca_file needs auth.credentials_file: it names the roles of each client "
          "certificate");
    }
    return std::shared_ptr<const auth::Authenticator>();
  }
  Result<std::shared_ptr<const auth::Authenticator>> loaded =
      auth::Authenticator::Load({.credentials_file = config.auth.credentials_file,
                                 .client_ca_file = config.tls.client_ca_file,
                                 .client_crl_file = config.tls.client_crl_file});
  if (!loaded.ok()) return loaded.status().WithContext("credentials");
  return loaded;
}

// The REST listener's TLS, or none.
std::optional<http::TlsServerOptions> HttpTls(const EdgeConfig& config) {
  if (!config.tls.enabled) return std::nullopt;
  // A client certificate is asked for, never required by the handshake: the authenticator
  // verifies it, so that every refusal has its reason (base/auth/auth.h).
  return http::TlsServerOptions{.cert_chain_path = config.tls.cert_file,
                                .key_path = config.tls.key_file,
                                .client_ca_path = config.tls.client_ca_file,
                                .require_client_cert = false};
}

// The roles named by auth.raw_read_roles.
Result<auth::RoleSet> RawReadRoles(const EdgeConfig& config) {
  auth::RoleSet roles = 0;
  for (const std::string& name : config.auth.raw_read_roles) {
    Result<auth::Role> role = auth::ParseRole(name);
    if (!role.ok()) return role.status().WithContext("auth.raw_read_roles");
    roles |= auth::RoleBit(*role);
  }
  return roles;
}

// SIGHUP: the credentials, the client CA and CRL, and the TLS certificate are read again.
// What does not load is logged and the running one stays.
void Reload(EdgeConfig& config, auth::HttpGate& gate, serve::HttpServer& server) {
  // The first credential added to an edge that started without any: <data_dir>'s file is
  // looked for again. The listen address chosen at start (loopback) stays.
  if (config.auth.credentials_file.empty()) {
    std::string in_data_dir = JoinPath(config.data_dir, "credentials.yaml");
    if (PathExists(in_data_dir)) config.auth.credentials_file = in_data_dir;
  }
  Result<std::shared_ptr<const auth::Authenticator>> authenticator = LoadAuthenticator(config);
  if (!authenticator.ok()) {
    OUTPOST_LOG(kError) << "reload: credentials not reloaded; the previous ones stay"
                        << Field("error", authenticator.status());
  } else if (*authenticator == nullptr && gate.authenticator() != nullptr) {
    OUTPOST_LOG(kError) << "reload: the credentials file is gone; the previous credentials stay";
  } else {
    gate.SetAuthenticator(*authenticator);
    OUTPOST_LOG(kInfo) << "reload: credentials reloaded"
                       << Field("entries", *authenticator ? (*authenticator)->size() : 0);
  }
  if (std::optional<http::TlsServerOptions> tls = HttpTls(config)) {
    Status s = server.ReloadTls(*tls);
    if (!s.ok()) {
      OUTPOST_LOG(kError) << "reload: TLS certificate not reloaded; the previous one stays"
                          << Field("error", s);
    }
  }
}

// The edge API's options from the config: who reads records unfiltered, the policy that
// filters them for everyone else, and the feedback rate per credential.
Result<serve::EdgeApiOptions> MakeEdgeApiOptions(const EdgeConfig& config,
                                                 auth::RoleSet raw_read_roles) {
  serve::EdgeApiOptions options;
  OUTPOST_ASSIGN_OR_RETURN(EdgePolicy loaded, LoadEdgePolicy(config));
  if (loaded.policy != nullptr) {
    OUTPOST_ASSIGN_OR_RETURN(policy::HashKey key, policy::HashKey::Create(loaded.hash_key_secret));
    options.policy = std::move(loaded.policy);
    options.policy_hash_key = std::move(key);
  }
  options.raw_read_roles = raw_read_roles;
  options.feedback_per_second = config.auth.feedback_per_second;
  options.feedback_burst = static_cast<size_t>(config.auth.feedback_burst);
  return options;
}

// The scoring handler's options: limits from the config, insight records by `evaluator`.
serve::HandlerOptions MakeHandlerOptions(const EdgeConfig& config, insight::Evaluator* evaluator) {
  serve::HandlerOptions handler_options;
  handler_options.server_version = OutpostVersion();
  handler_options.limits.max_total_elements = static_cast<int64_t>(config.max_elements);
  handler_options.limits.max_depth = static_cast<size_t>(config.max_json_depth);
  handler_options.limits.max_body_bytes = config.max_body_bytes;
  handler_options.insight = evaluator;
  handler_options.allow_model_control = config.auth.model_control;
  return handler_options;
}

// The HTTP listener, routing with `router`: the edge's own API and the Open Inference
// Protocol register their routes on it. `router` (and what its routes point at) is not owned
// and must outlive the server.
Result<std::unique_ptr<serve::HttpServer>> StartHttpServer(const EdgeConfig& config,
                                                           const http::Router& router) {
  serve::HttpServerOptions server_options;
  server_options.tls = HttpTls(config);
  // Who calls, and for what, is settled from the request's head: a refused caller's body is
  // never read.
  server_options.before_body = [&router](const http::Request& head, http::Response& refusal) {
    return router.AuthorizeHead(head, refusal);
  };
  server_options.address = config.listen_address;
  server_options.port = config.listen_port;
  server_options.threads = config.threads;
  server_options.max_body_bytes = config.max_body_bytes;
  return serve::HttpServer::Start(server_options, router.AsHandler());
}

// The gRPC listener, or nullptr when the config has none. `repository` and `evaluator` are
// not owned and must outlive the server.
Result<std::unique_ptr<serve::GrpcServer>> StartGrpcServer(const EdgeConfig& config,
                                                           serve::ModelRepository& repository,
                                                           insight::Evaluator* evaluator,
                                                           const auth::HttpGate& gate) {
  if (!config.grpc_enabled) return std::unique_ptr<serve::GrpcServer>();
  serve::GrpcServerOptions options{
      .address = config.grpc_listen_address,
      .port = config.grpc_listen_port,
      // gRPC's own ceiling is INT32_MAX bytes.
      .max_message_bytes = std::min<uint64_t>(config.max_body_bytes, 0x7fffffff),
      .max_total_elements = static_cast<int64_t>(config.max_elements),
      .server_version = OutpostVersion(),
      .insight = evaluator};
  if (config.tls.enabled) {
    options.tls_cert_file = config.tls.cert_file;
    options.tls_key_file = config.tls.key_file;
  }
  // The REST gate's authenticator, so that a reload reaches both listeners at once.
  options.authenticator = [&gate] { return gate.authenticator(); };
  return serve::GrpcServer::Start(repository, std::move(options));
}

// Logs that the edge serves, and prints the "listening on" lines.
void AnnounceServing(const EdgeConfig& config, const serve::HttpServer& server,
                     const serve::GrpcServer* grpc_server, const serve::ModelRepository& repository,
                     const std::string& outbox_path) {
  OUTPOST_LOG(kInfo) << "outpost edge serving" << Field("site", config.site_id)
                     << Field("node", config.node_id) << Field("port", server.port())
                     << Field("grpc_port", grpc_server ? grpc_server->port() : 0)
                     << Field("models", repository.Models().size()) << Field("outbox", outbox_path)
                     << Field("ready", repository.IsReady() ? "yes" : "no");
  // Tests and scripts read this line to learn the port when it was chosen by the system.
  std::printf("listening on %s://%s:%u\n", config.tls.enabled ? "https" : "http",
              config.listen_address.c_str(), static_cast<unsigned>(server.port()));
  // Always after the HTTP line, which tests and scripts read first.
  if (grpc_server != nullptr) {
    std::printf("grpc listening on %s:%u\n", config.grpc_listen_address.c_str(),
                static_cast<unsigned>(grpc_server->port()));
  }
  std::fflush(stdout);
}

// Clients of a site may hold thousands of idle keep-alive connections (the listener takes up
// to max_connections), but a service manager often starts a process with a soft limit of
// 1024 open files: the edge raises its soft limit to the hard one it was given.
void RaiseOpenFileLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  const rlim_t was = limit.rlim_cur;
  limit.rlim_cur = limit.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    OUTPOST_LOG(kWarning) << "could not raise the open-file limit"
                          << Field("soft", static_cast<uint64_t>(was))
                          << Field("hard", static_cast<uint64_t>(limit.rlim_max));
  }
}

Status RunEdge(const EdgeFlags& flags) {
  ::umask(077);  // every file the edge creates is its owner's alone (PrepareDataDir)
  RaiseOpenFileLimit();
  OUTPOST_ASSIGN_OR_RETURN(EdgeConfig config, ResolveConfig(flags));
  OUTPOST_ASSIGN_OR_RETURN(LogFormat format, ParseLogFormat(config.log_format));
  OUTPOST_ASSIGN_OR_RETURN(LogLevel level, ParseLogLevel(config.log_level));
  SetLogOptions({.format = format, .min_level = level});

  // SIGTERM and SIGINT are taken by sigwait below, in this thread only: block them before
  // any other thread starts so that every thread inherits the mask.
  sigset_t signals = BlockStopSignals();

  if (!IsDirectory(config.model_repository)) {
    return NotFoundError("model repository \"" + config.model_repository + "\" is not a folder");
  }
  // Who may call, before anything listens or is opened.
  OUTPOST_ASSIGN_OR_RETURN(std::shared_ptr<const auth::Authenticator> authenticator,
                           LoadAuthenticator(config));
  OUTPOST_RETURN_IF_ERROR(CheckExposure(config, authenticator != nullptr, flags.insecure_open));
  OUTPOST_ASSIGN_OR_RETURN(auth::RoleSet raw_read_roles, RawReadRoles(config));
  auth::HttpGate gate({.allowed_hosts = config.auth.allowed_hosts});
  gate.SetAuthenticator(authenticator);

  // The outbox first: records are kept before anything is scored.
  OUTPOST_RETURN_IF_ERROR(PrepareDataDir(config.data_dir));
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<DataDirLock> data_dir_lock,
                           DataDirLock::Acquire(config.data_dir));
  outbox::OutboxOptions outbox_options = config.outbox;
  outbox_options.path = JoinPath(config.data_dir, "outbox.db");
  outbox_options.site_id = config.site_id;
  outbox_options.node_id = config.node_id;
  Result<std::unique_ptr<outbox::Outbox>> opened = outbox::Outbox::Open(outbox_options);
  if (!opened.ok()) return opened.status().WithContext("outbox " + outbox_options.path);
  std::unique_ptr<outbox::Outbox> outbox = std::move(*opened);
  // Events spooled by `outpost bundle install|rollback` join the outbox, now and every 2 s.
  auto bundle_spool = std::make_unique<BundleSpoolDrainer>(config.data_dir, outbox.get());
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<insight::Evaluator> evaluator,
                           insight::Evaluator::Create({.outbox = outbox.get()}));

  OUTPOST_ASSIGN_OR_RETURN(
      std::unique_ptr<serve::ModelRepository> repository,
      serve::ModelRepository::Open({.root = config.model_repository,
                                    .strict_readiness = config.strict_readiness,
                                    .thread_budget = config.threads}));
  std::unique_ptr<serve::ShadowRunner> shadow = MakeShadowRunner(*repository, outbox.get());
  repository->SetShadowRunner(shadow.get());
  // Each version's labels, for the hub's rollout gates (serve/label_tally.h).
  auto labels = std::make_unique<serve::LabelTally>();
  repository->SetLabelTally(labels.get());
  auto flusher = std::make_unique<AggregateFlusher>(*evaluator);
  // New and changed model versions on disk are loaded while serving.
  std::unique_ptr<serve::RepositoryWatcher> watcher;
  if (config.watch_repository) {
    OUTPOST_ASSIGN_OR_RETURN(watcher, serve::RepositoryWatcher::Start(*repository));
  }
  // Uploads the outbox to the hub when the config has a `sync:` section.
  // The link's bandwidth cap, shared by the forwarder's uploads and the releases fetched.
  auto bandwidth = std::make_shared<sync::Bandwidth>(config.sync.bandwidth_bytes_per_s);
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<sync::Forwarder> forwarder,
                           StartEdgeForwarder(config, outbox.get(), *repository, bandwidth));
  // Fetches and installs the releases the hub has for this site, with `sync.releases:`.
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<ReleasePuller> releases,
                           StartEdgeReleases(config, bandwidth));
  serve::Handler handler(*repository, MakeHandlerOptions(config, evaluator.get()));
  OUTPOST_ASSIGN_OR_RETURN(serve::EdgeApiOptions edge_api_options,
                           MakeEdgeApiOptions(config, raw_read_roles));
  edge_api_options.outbox = outbox.get();
  edge_api_options.shadow = shadow.get();
  edge_api_options.labels = labels.get();
  edge_api_options.repository = repository.get();
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<AccessAudit> access_audit,
                           AccessAudit::Open(JoinPath(config.data_dir, "access_audit.jsonl")));
  edge_api_options.audit = [audit = access_audit.get()](std::string_view line) {
    return audit->Append(line);
  };
  serve::EdgeApi edge_api(std::move(edge_api_options));
  http::Router router;
  serve::RegisterRoutes(router, handler);  // /v2/..., /metrics
  edge_api.RegisterRoutes(router);         // /v1/feedback, /v1/records, /v1/outbox
  router.SetAuthorizer(gate.AsAuthorizer());

  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<serve::HttpServer> server,
                           StartHttpServer(config, router));
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<serve::GrpcServer> grpc_server,
                           StartGrpcServer(config, *repository, evaluator.get(), gate));
  AnnounceServing(config, *server, grpc_server.get(), *repository, outbox_options.path);

  int signal_number = 0;
  while (sigwait(&signals, &signal_number) == 0 && signal_number == SIGHUP) {
    Reload(config, gate, *server);
  }
  OUTPOST_LOG(kInfo) << "shutting down: in-flight requests finish, new ones are refused"
                     << Field("signal", signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
  if (watcher != nullptr) watcher->Stop();
  if (grpc_server != nullptr) grpc_server->Stop();
  server->Stop();
  repository->SetShadowRunner(nullptr);
  shadow.reset();
  repository->SetLabelTally(nullptr);
  labels.reset();
  // No request runs now: the evaluator writes what it holds, then the outbox closes.
  flusher.reset();
  evaluator.reset();
  // An install under way finishes first; its event is drained below or at the next start.
  releases.reset();
  forwarder.reset();
  bundle_spool.reset();
  outbox.reset();
  OUTPOST_LOG(kInfo) << "outpost edge stopped";
  return Status();
}

}  // namespace

// credential_command.cc: `outpost edge credential add|list|remove` under `edge`.
CLI::App* AddEdgeCredentialCommand(CLI::App* edge, Action& run);

void AddEdgeCommand(CLI::App& app, Action& run) {
  auto flags = std::make_shared<EdgeFlags>();
  CLI::App* cmd =
      app.add_subcommand("edge", "Serve models at a site over the Open Inference Protocol");
  cmd->add_option("-c,--config", flags->config_file, "Edge config file (YAML)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--listen", flags->listen,
                  "Address to listen on, host:port (port 0 = any free port)");
  CLI::Option* grpc_listen = cmd->add_option(
      "--grpc-listen", flags->grpc_listen,
      "gRPC address, host:port (port 0 = any free port; \"\" = no gRPC; default: HTTP port + 1)");
  cmd->add_option("--model-repository", flags->model_repository,
                  "Folder of models: <model>/config.yaml, <model>/<version>/");
  cmd->add_flag("--no-watch", flags->no_watch,
                "Do not reload models when the repository's folders change");
  cmd->add_option("--site-id", flags->site_id, "This site's id");
  cmd->add_option("--data-dir", flags->data_dir,
                  "Folder of the node's durable state (the outbox); created when missing");
  cmd->add_option("--threads", flags->threads, "Server threads (0 = one per core)")
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--log-format", flags->log_format, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  cmd->add_option("--log-level", flags->log_level, "debug, info, warning or error")
      ->check(CLI::IsMember({"debug", "info", "warning", "error"}));
  cmd->add_option("--credentials-file", flags->credentials_file,
                  "Who may call, and for what (default <data_dir>/credentials.yaml when present)");
  cmd->add_flag("--insecure-listen-without-credentials", flags->insecure_open,
                "Serve beyond loopback with no credentials: anyone who reaches the port may "
                "score, label and read records (logged at every start)");
  CLI::App* credential = AddEdgeCredentialCommand(cmd, run);
  cmd->callback([&run, flags, grpc_listen, credential] {
    if (credential->parsed()) return;  // `outpost edge credential ...` set its own action
    flags->grpc_listen_given = grpc_listen->count() > 0;
    run = [flags] { return RunEdge(*flags); };
  });
}

}  // namespace outpost::apps
