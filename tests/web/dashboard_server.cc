// dashboard_server: a small real HTTP server (Boost.Beast, loopback, a port the kernel
// picks) around hub::Dashboard, for the browser tests while they do not run `outpost hub`
// itself. It maps operator bearer tokens to tenants as the hub's operator listener does
// (hub/FORMAT.md §6): /api/ without a known token is 401 operator_token; the static assets
// carry no data and are served to any caller.
//
//   dashboard_server --store sqlite:/tmp/x/hub.db --assets web/dist
//                    --operator-token tok-acme=acme [--operator-token ...]
//
// Prints "listening on 127.0.0.1:PORT" once it accepts connections; runs until killed.
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "hub/dashboard.h"
#include "hub/store.h"

namespace outpost::hub {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

struct Config {
  std::string store_url;
  std::string assets_dir = DefaultAssetsDir();
  std::map<std::string, std::string> tokens;  // token -> tenant
};

HubResponse Unauthorized() {
  HubResponse response;
  response.status = 401;
  response.body = R"({"error":"a known operator bearer token is needed","reason":"operator_token"})";
  response.headers.emplace_back("www-authenticate", "Bearer");
  return response;
}

// Serves one connection (keep-alive) until the client closes it or sends garbage.
void Serve(tcp::socket socket, const Dashboard& dashboard, const Config& config) {
  beast::flat_buffer buffer;
  beast::error_code ec;
  while (true) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(64 * 1024);
    parser.header_limit(16 * 1024);
    http::read(socket, buffer, parser, ec);
    if (ec) break;
    const auto& req = parser.get();
    HubRequest request;
    request.method = std::string(req.method_string());
    request.target = std::string(req.target());
    for (const auto& field : req) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      request.headers.emplace_back(std::move(name), std::string(field.value()));
    }
    request.body = req.body();
    std::string_view auth = request.Header("authorization");
    if (auth.starts_with("Bearer ")) {
      auto it = config.tokens.find(std::string(auth.substr(7)));
      if (it != config.tokens.end()) {
        request.caller = Caller{.kind = Caller::Kind::kOperator, .tenant = it->second};
      }
    }
    HubResponse response = request.target.starts_with("/api/") &&
                                   request.caller.kind != Caller::Kind::kOperator
                               ? Unauthorized()
                               : dashboard.Handle(request);
    http::response<http::string_body> res{static_cast<http::status>(response.status),
                                          req.version()};
    res.set(http::field::server, "outpost-dashboard-test");
    res.set(http::field::content_type, response.content_type);
    for (const auto& [name, value] : response.headers) res.set(name, value);
    res.keep_alive(req.keep_alive());
    res.body() = std::move(response.body);
    res.prepare_payload();
    http::write(socket, res, ec);
    if (ec || !res.keep_alive()) break;
  }
  socket.shutdown(tcp::socket::shutdown_send, ec);
}

int Main(int argc, char** argv) {
  Config config;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--store" && i + 1 < argc) {
      config.store_url = argv[++i];
    } else if (arg == "--assets" && i + 1 < argc) {
      config.assets_dir = argv[++i];
    } else if (arg == "--operator-token" && i + 1 < argc) {
      std::string_view pair = argv[++i];
      size_t eq = pair.find('=');
      if (eq == std::string_view::npos || eq == 0 || eq + 1 == pair.size()) {
        std::fprintf(stderr, "dashboard_server: --operator-token wants TOKEN=TENANT\n");
        return 2;
      }
      config.tokens[std::string(pair.substr(0, eq))] = std::string(pair.substr(eq + 1));
    } else {
      std::fprintf(stderr,
                   "usage: dashboard_server --store URL [--assets DIR] "
                   "--operator-token TOKEN=TENANT ...\n");
      return 2;
    }
  }
  auto store = OpenStore(config.store_url);
  if (!store.ok()) {
    std::fprintf(stderr, "dashboard_server: %s\n", store.status().ToString().c_str());
    return 1;
  }
  Dashboard dashboard(store->get(), config.assets_dir);
  boost::asio::io_context io;
  beast::error_code ec;
  tcp::acceptor acceptor(io);
  tcp::endpoint endpoint(boost::asio::ip::make_address("127.0.0.1"), 0);
  if (acceptor.open(endpoint.protocol(), ec); !ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(64, ec);
  if (ec) {
    std::fprintf(stderr, "dashboard_server: cannot listen: %s\n", ec.message().c_str());
    return 1;
  }
  std::printf("listening on 127.0.0.1:%u\n", acceptor.local_endpoint().port());
  std::fflush(stdout);
  while (true) {
    tcp::socket socket(io);
    acceptor.accept(socket, ec);
    if (ec) continue;
    // One thread per connection: a browser opens a handful; the process lives for one test.
    std::thread(Serve, std::move(socket), std::cref(dashboard), std::cref(config)).detach();
  }
}

}  // namespace
}  // namespace outpost::hub

int main(int argc, char** argv) { return outpost::hub::Main(argc, argv); }
