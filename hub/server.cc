// The Boost.Beast adapter of hub/ (and, for the TLS sessions, of OpenSSL): blocking
// thread-per-connection listeners and a one-shot HTTPS client. Every Asio and Beast call is
// made in its error_code form; exceptions that still escape (std::bad_alloc, a throwing
// handler) are caught at the top of each thread and end that connection only.
#include "hub/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "base/file.h"
#include "base/logging.h"

namespace outpost::hub {
namespace {

namespace net = boost::asio;
namespace ssl = net::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

void SetSocketTimeouts(int fd, std::chrono::seconds timeout) {
  struct timeval tv {};
  tv.tv_sec = static_cast<time_t>(timeout.count());
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

// A lingering close, as nginx's lingering_close: after answering a request whose body was not
// read (413, 431), the sending side is shut and what the client is still sending is read and
// thrown away, for at most 2 s and 64 MiB. Closing at once would meet the client mid-upload;
// its kernel answers the unread bytes with a reset, and the reset can destroy the answer
// before the client reads it — the site would see "broken pipe" instead of body_too_large.
void DiscardUntilClosed(int fd) {
  ::shutdown(fd, SHUT_WR);
  struct timeval tv {.tv_sec = 0, .tv_usec = 250'000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  constexpr size_t kMaxDiscard = 64u << 20;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  char scratch[16384];
  size_t discarded = 0;
  while (discarded < kMaxDiscard && std::chrono::steady_clock::now() < deadline) {
    ssize_t n = ::recv(fd, scratch, sizeof(scratch), 0);
    if (n > 0) {
      discarded += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) {
      continue;
    } else {
      return;  // the client closed, or the connection failed
    }
  }
}

Result<tcp::endpoint> Endpoint(const std::string& address, uint16_t port) {
  std::string host = address == "localhost" ? "127.0.0.1" : address;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  beast::error_code ec;
  net::ip::address ip = net::ip::make_address(host, ec);
  if (ec) return InvalidArgumentError("listen address \"" + address + "\" is not an IP address");
  return tcp::endpoint(ip, port);
}

// One open connection, as Stop sees it.
struct ConnState {
  int fd = -1;
  std::mutex mu;      // guards idle
  bool idle = true;   // waiting for a request to begin (or reading one)
};

class Listener {
 public:
  struct Config {
    bool tls = false;
    bool request_client_cert = false;
    bool is_site = false;
  };

  Listener(const HubServerOptions& options, Config config, SiteHandlerFn site_handler,
           OperatorHandlerFn operator_handler)
      : options_(options),
        config_(config),
        site_handler_(std::move(site_handler)),
        operator_handler_(std::move(operator_handler)),
        tls_(ssl::context::tls_server) {}

  ~Listener() {
    Stop();
    if (wake_[0] >= 0) ::close(wake_[0]);
    if (wake_[1] >= 0) ::close(wake_[1]);
  }

  Status Open(const std::string& address, uint16_t port) {
    if (config_.tls) OUTPOST_RETURN_IF_ERROR(SetUpTls());
    OUTPOST_ASSIGN_OR_RETURN(tcp::endpoint endpoint, Endpoint(address, port));
    beast::error_code ec;
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return UnavailableError("cannot listen on " + address + ":" + std::to_string(port) +
                              ": " + ec.message());
    }
    port_ = acceptor_.local_endpoint(ec).port();
    if (::pipe(wake_) != 0) return ErrnoToStatus(errno, "pipe", "");
    accept_thread_ = std::thread([this] { AcceptLoop(); });
    return Status::Ok();
  }

  uint16_t port() const { return port_; }

  void Stop() {
    if (stopping_.exchange(true)) {
      if (accept_thread_.joinable()) accept_thread_.join();
      return;
    }
    if (wake_[1] >= 0) {
      char c = 1;
      [[maybe_unused]] ssize_t n = ::write(wake_[1], &c, 1);
    }
    if (accept_thread_.joinable()) accept_thread_.join();
    beast::error_code ec;
    acceptor_.close(ec);
    std::unique_lock<std::mutex> lock(mu_);
    for (const std::shared_ptr<ConnState>& conn : conns_) {
      std::lock_guard<std::mutex> conn_lock(conn->mu);
      if (conn->idle) ::shutdown(conn->fd, SHUT_RDWR);
    }
    done_.wait(lock, [this] { return conns_.empty(); });
  }

 private:
  Status SetUpTls() {
    beast::error_code ec;
    tls_.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                         ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                         ssl::context::no_tlsv1_1,
                     ec);
    if (!ec) tls_.use_certificate_chain_file(options_.server_cert_path, ec);
    if (!ec) tls_.use_private_key_file(options_.server_key_path, ssl::context::pem, ec);
    if (ec) return FailedPreconditionError("TLS server certificate: " + ec.message());
    if (config_.request_client_cert) {
      tls_.load_verify_file(options_.ca_cert_path, ec);
      if (ec) return FailedPreconditionError("hub CA " + options_.ca_cert_path + ": " + ec.message());
      STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(options_.ca_cert_path.c_str());
      if (names != nullptr) SSL_CTX_set_client_CA_list(tls_.native_handle(), names);
      // A certificate is asked for but not required (enrolment comes without one); every
      // verification result is kept and judged per request, so a refusal carries a reason
      // instead of a bare TLS alert.
      tls_.set_verify_mode(ssl::verify_peer, ec);
      tls_.set_verify_callback([](bool, ssl::verify_context&) { return true; }, ec);
      if (ec) return InternalError("TLS verify setup: " + ec.message());
    }
    return Status::Ok();
  }

  void AcceptLoop() {
    while (!stopping_.load()) {
      struct pollfd fds[2] = {{acceptor_.native_handle(), POLLIN, 0}, {wake_[0], POLLIN, 0}};
      int n = ::poll(fds, 2, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        OUTPOST_LOG(kError) << "hub listener poll failed" << Field("errno", errno);
        return;
      }
      if (fds[1].revents != 0 || stopping_.load()) return;
      if ((fds[0].revents & POLLIN) == 0) continue;
      tcp::socket socket(ioc_);
      beast::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec) continue;
      auto conn = std::make_shared<ConnState>();
      conn->fd = socket.native_handle();
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (conns_.size() >= options_.max_connections) {
          socket.close(ec);
          continue;
        }
        conns_.push_back(conn);
      }
      // The socket belongs to ioc_: it must be gone before the connection leaves conns_,
      // after which Stop may return and the listener be destroyed.
      auto owned = std::make_unique<tcp::socket>(std::move(socket));
      std::thread([this, conn, owned = std::move(owned)]() mutable {
        try {
          Serve(std::move(*owned), *conn);
        } catch (const std::exception& e) {
          OUTPOST_LOG(kError) << "hub connection ended by an exception" << Field("what", e.what());
        }
        owned.reset();
        std::lock_guard<std::mutex> lock(mu_);
        conns_.remove(conn);
        if (conns_.empty()) done_.notify_all();
      }).detach();
    }
  }

  void Serve(tcp::socket socket, ConnState& conn) {
    SetSocketTimeouts(conn.fd, options_.idle_timeout);
    beast::error_code ec;
    socket.set_option(tcp::no_delay(true), ec);
    if (!config_.tls) {
      if (ServeStream(socket, PeerCredential{}, conn)) DiscardUntilClosed(conn.fd);
      socket.shutdown(tcp::socket::shutdown_both, ec);
      return;
    }
    ssl::stream<tcp::socket> stream(std::move(socket), tls_);
    stream.handshake(ssl::stream_base::server, ec);
    if (ec) {
      OUTPOST_LOG(kDebug) << "TLS handshake failed" << Field("error", ec.message());
      return;
    }
    PeerCredential peer;
    if (config_.request_client_cert) {
      SSL* ssl_handle = stream.native_handle();
      X509* cert = SSL_get1_peer_certificate(ssl_handle);
      if (cert != nullptr) {
        peer.presented = true;
        long verify = SSL_get_verify_result(ssl_handle);
        peer.verified = verify == X509_V_OK;
        if (!peer.verified) peer.verify_error = X509_verify_cert_error_string(verify);
        unsigned char* der = nullptr;
        int size = i2d_X509(cert, &der);
        if (size > 0) {
          Result<CertInfo> info =
              ParseCertificateDer(std::string_view(reinterpret_cast<char*>(der), size));
          if (info.ok()) {
            peer.certificate = std::move(*info);
          } else {
            peer.verified = false;
            peer.verify_error = "unreadable certificate";
          }
          OPENSSL_free(der);
        }
        X509_free(cert);
      }
    }
    bool unread_body = ServeStream(stream, peer, conn);
    // close_notify once, without waiting for the peer's (a slow peer must not hold Stop).
    SSL_shutdown(stream.native_handle());
    // The rest of an unread body is TLS records nobody needs: they are dropped undecrypted.
    if (unread_body) DiscardUntilClosed(conn.fd);
    stream.next_layer().shutdown(tcp::socket::shutdown_both, ec);
  }

  // Serves requests until the connection ends; true when it ends on an answer to a request
  // that was not read to its end, whose remaining bytes the caller must drain.
  template <typename Stream>
  bool ServeStream(Stream& stream, const PeerCredential& peer, ConnState& conn) {
    beast::flat_buffer buffer;
    while (true) {
      {
        std::lock_guard<std::mutex> lock(conn.mu);
        conn.idle = true;
        if (stopping_.load()) return false;
      }
      http::request_parser<http::string_body> parser;
      parser.body_limit(options_.max_body_bytes);
      parser.header_limit(static_cast<uint32_t>(options_.max_header_bytes));
      beast::error_code ec;
      http::read(stream, buffer, parser, ec);
      {
        std::lock_guard<std::mutex> lock(conn.mu);
        conn.idle = false;
      }
      HubResponse response;
      bool keep_alive = false;
      const bool unread_body = ec == http::error::body_limit || ec == http::error::header_limit;
      if (ec == http::error::body_limit) {
        response = ErrorResponse(413, "body_too_large",
                                 "request body over " +
                                     std::to_string(options_.max_body_bytes) + " bytes");
      } else if (ec == http::error::header_limit) {
        response = ErrorResponse(431, "headers_too_large", "headers too large");
      } else if (ec) {
        return false;  // closed, timed out, or not HTTP: nothing to answer
      } else {
        http::request<http::string_body> message = parser.release();
        keep_alive = message.keep_alive();
        HubRequest request;
        request.method = std::string(message.method_string());
        request.target = std::string(message.target());
        for (const auto& field : message) {
          std::string name(field.name_string());
          for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          request.headers.emplace_back(std::move(name), std::string(field.value()));
        }
        request.body = std::move(message.body());
        try {
          response = config_.is_site ? site_handler_(request, peer) : operator_handler_(request);
        } catch (const std::exception& e) {
          OUTPOST_LOG(kError) << "hub handler threw" << Field("what", e.what());
          response = ErrorResponse(500, "internal", "internal error");
        }
      }
      http::response<http::string_body> out;
      out.version(11);
      out.result(static_cast<unsigned>(response.status));
      out.set(http::field::server, "outpost-hub");
      out.set(http::field::content_type, response.content_type);
      for (const auto& [name, value] : response.headers) out.set(name, value);
      out.body() = std::move(response.body);
      out.keep_alive(keep_alive && !stopping_.load());
      out.prepare_payload();
      http::write(stream, out, ec);
      if (ec) return false;
      if (!out.keep_alive()) return unread_body;
    }
  }

  const HubServerOptions options_;
  const Config config_;
  SiteHandlerFn site_handler_;
  OperatorHandlerFn operator_handler_;
  ssl::context tls_;
  net::io_context ioc_;
  tcp::acceptor acceptor_{ioc_};
  uint16_t port_ = 0;
  int wake_[2] = {-1, -1};
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;
  std::mutex mu_;  // guards conns_
  std::condition_variable done_;
  std::list<std::shared_ptr<ConnState>> conns_;
};

class HubServerImpl final : public HubServer {
 public:
  uint16_t site_port() const override { return site_->port(); }
  uint16_t operator_port() const override { return operator_ ? operator_->port() : 0; }
  bool operator_tls() const override { return operator_tls_; }
  void Stop() override {
    site_->Stop();
    if (operator_) operator_->Stop();
  }
  ~HubServerImpl() override {
    if (site_) Stop();
  }

  std::unique_ptr<Listener> site_;
  std::unique_ptr<Listener> operator_;
  bool operator_tls_ = false;
};

struct ParsedUrl {
  std::string host;  // without brackets
  std::string port;
  bool is_ip = false;
};

Result<ParsedUrl> ParseUrl(std::string_view url) {
  constexpr std::string_view kScheme = "https://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    return InvalidArgumentError("hub URL \"" + std::string(url) + "\" must start with https://");
  }
  std::string_view rest = url.substr(kScheme.size());
  size_t slash = rest.find('/');
  if (slash != std::string_view::npos) rest = rest.substr(0, slash);
  ParsedUrl out;
  if (!rest.empty() && rest.front() == '[') {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return InvalidArgumentError("bad IPv6 host in URL");
    out.host = std::string(rest.substr(1, close - 1));
    rest = rest.substr(close + 1);
    if (!rest.empty() && rest.front() == ':') out.port = std::string(rest.substr(1));
  } else {
    size_t colon = rest.rfind(':');
    out.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) out.port = std::string(rest.substr(colon + 1));
  }
  if (out.port.empty()) out.port = "443";
  if (out.host.empty()) return InvalidArgumentError("hub URL has no host");
  beast::error_code ec;
  net::ip::make_address(out.host, ec);
  out.is_ip = !ec;
  return out;
}

}  // namespace

bool IsLoopback(std::string_view address) {
  if (address == "localhost") return true;
  std::string host(address);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  beast::error_code ec;
  net::ip::address ip = net::ip::make_address(host, ec);
  return !ec && ip.is_loopback();
}

Result<std::unique_ptr<HubServer>> HubServer::Start(const HubServerOptions& options,
                                                    SiteHandlerFn site_handler,
                                                    OperatorHandlerFn operator_handler) {
  auto server = std::make_unique<HubServerImpl>();
  server->site_ = std::make_unique<Listener>(
      options, Listener::Config{.tls = true, .request_client_cert = true, .is_site = true},
      site_handler, nullptr);
  OUTPOST_RETURN_IF_ERROR(server->site_->Open(options.site_address, options.site_port));
  if (!options.operator_address.empty()) {
    server->operator_tls_ = !IsLoopback(options.operator_address);
    server->operator_ = std::make_unique<Listener>(
        options, Listener::Config{.tls = server->operator_tls_}, nullptr, operator_handler);
    OUTPOST_RETURN_IF_ERROR(
        server->operator_->Open(options.operator_address, options.operator_port));
  }
  return std::unique_ptr<HubServer>(std::move(server));
}

Result<HttpsResponse> HttpsRequest(std::string_view base_url, std::string_view method,
                                   std::string_view target, std::string_view body,
                                   std::string_view content_type,
                                   const HttpsClientOptions& options) {
  OUTPOST_ASSIGN_OR_RETURN(ParsedUrl url, ParseUrl(base_url));
  try {
    ssl::context tls(ssl::context::tls_client);
    beast::error_code ec;
    tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                        ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                        ssl::context::no_tlsv1_1,
                    ec);
    if (!options.ca_pem.empty()) {
      tls.add_certificate_authority(net::buffer(options.ca_pem.data(), options.ca_pem.size()), ec);
      if (ec) return InvalidArgumentError("hub CA: " + ec.message());
      tls.set_verify_mode(ssl::verify_peer, ec);
    } else {
      tls.set_verify_mode(ssl::verify_none, ec);
    }
    if (!options.cert_pem.empty()) {
      tls.use_certificate_chain(net::buffer(options.cert_pem.data(), options.cert_pem.size()), ec);
      if (!ec) {
        tls.use_private_key(net::buffer(options.key_pem.data(), options.key_pem.size()),
                            ssl::context::pem, ec);
      }
      if (ec) return InvalidArgumentError("client credential: " + ec.message());
    }
    net::io_context ioc;
    tcp::resolver resolver(ioc);
    auto endpoints = resolver.resolve(url.host, url.port, ec);
    if (ec) return UnavailableError("resolving " + url.host + ": " + ec.message());
    ssl::stream<tcp::socket> stream(ioc, tls);
    SSL* handle = stream.native_handle();
    if (!options.ca_pem.empty()) {
      X509_VERIFY_PARAM* param = SSL_get0_param(handle);
      int ok = url.is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, url.host.c_str())
                         : X509_VERIFY_PARAM_set1_host(param, url.host.c_str(), 0);
      if (ok != 1) return InvalidArgumentError("bad host in URL: " + url.host);
    }
    if (!url.is_ip) SSL_set_tlsext_host_name(handle, url.host.c_str());
    net::connect(stream.next_layer(), endpoints, ec);
    if (ec) return UnavailableError("connecting to " + std::string(base_url) + ": " + ec.message());
    SetSocketTimeouts(stream.next_layer().native_handle(), options.timeout);
    stream.handshake(ssl::stream_base::client, ec);
    if (ec) return UnavailableError("TLS handshake with " + std::string(base_url) + ": " + ec.message());
    http::request<http::string_body> request;
    request.version(11);
    request.method_string(std::string(method));
    request.target(std::string(target));
    request.set(http::field::host, url.host);
    request.set(http::field::connection, "close");
    if (!content_type.empty()) request.set(http::field::content_type, std::string(content_type));
    request.body() = std::string(body);
    request.prepare_payload();
    http::write(stream, request, ec);
    if (ec) return UnavailableError("sending to " + std::string(base_url) + ": " + ec.message());
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(options.max_response_bytes);
    http::read(stream, buffer, parser, ec);
    if (ec && !(ec == http::error::end_of_stream && parser.is_done())) {
      return UnavailableError("reading the answer of " + std::string(base_url) + ": " +
                              ec.message());
    }
    SSL_shutdown(handle);
    HttpsResponse out;
    out.status = static_cast<int>(parser.get().result_int());
    out.body = std::move(parser.get().body());
    return out;
  } catch (const std::exception& e) {
    return UnavailableError(std::string("HTTPS request failed: ") + e.what());
  }
}

}  // namespace outpost::hub
