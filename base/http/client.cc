// The Boost.Beast / Asio / OpenSSL TLS adapter of the HTTP client: their types and errors stop
// here and come out as a Status.
#include "base/http/client.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>
#include <cstdio>
#include <exception>
#include <optional>
#include <type_traits>

#include "base/file.h"
#include "base/http/message.h"

namespace outpost::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using SteadyTime = std::chrono::steady_clock::time_point;

beast::string_view View(std::string_view s) { return beast::string_view(s.data(), s.size()); }

// Runs the asynchronous operation that `start` begins, on `ioc`, to its end; returns its error.
template <typename Start>
beast::error_code Await(asio::io_context& ioc, Start&& start) {
  beast::error_code result;
  start([&result](beast::error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  return result;
}

// The earlier of now + `step` and `total`.
SteadyTime StepDeadline(std::chrono::milliseconds step, SteadyTime total) {
  SteadyTime step_end = std::chrono::steady_clock::now() + step;
  return step_end < total ? step_end : total;
}

// An error from opening a local file, as the matching Status.
Status FileError(const beast::error_code& ec, std::string_view what, const std::string& path) {
  if (ec.category() == boost::system::system_category() ||
      ec.category() == boost::system::generic_category()) {
    return ErrnoToStatus(ec.value(), what, path);
  }
  return InvalidArgumentError(std::string(what) + " " + path + ": " + ec.message());
}

bool HostCharacterOk(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == ':' || c == '%';
}

// One open connection: plain or TLS, with the read buffer that belongs to it.
struct Connection {
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;

  beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }
};

// How one try of a request ended.
struct Attempt {
  Status status;
  // It failed before any byte of an answer arrived, and not by a deadline.
  bool unanswered = false;
  // It used a connection opened before this try.
  bool reused = false;
};

}  // namespace

std::string Url::HostPort() const {
  std::string h = host.find(':') == std::string::npos ? host : "[" + host + "]";
  return h + ":" + std::to_string(port);
}

std::string ClientResponse::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (EqualsIgnoreCase(key, name)) return value;
  }
  return "";
}

Result<Url> ParseUrl(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return InvalidArgumentError("URL \"" + std::string(text) + "\" " + std::string(why));
  };
  Url url;
  std::string_view rest;
  if (text.substr(0, 8) == "https://") {
    url.scheme = "https";
    rest = text.substr(8);
  } else if (text.substr(0, 7) == "http://") {
    url.scheme = "http";
    rest = text.substr(7);
  } else {
    return bad("must begin with http:// or https://");
  }
  for (char c : rest) {
    if (c <= ' ' || c == 0x7f || c == '?' || c == '#' || c == '@') {
      return bad("has a space, control character, query, fragment or user name");
    }
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  url.path = slash == std::string_view::npos ? "" : std::string(rest.substr(slash));
  while (!url.path.empty() && url.path.back() == '/') url.path.pop_back();
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("has an unclosed [ in its host");
    url.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') return bad("has text after the ] of its host");
    if (!after.empty()) port_text = after.substr(1);
    beast::error_code ec;
    asio::ip::make_address_v6(url.host, ec);
    if (ec) return bad("has no IPv6 address inside [ ]");
  } else {
    size_t colon = authority.rfind(':');
    if (colon != std::string_view::npos && authority.find(':') != colon) {
      return bad("needs its IPv6 host in brackets");
    }
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
    if (colon != std::string_view::npos && port_text.empty()) return bad("has an empty port");
    for (char c : url.host) {
      if (!HostCharacterOk(c) || c == ':') return bad("has a bad character in its host");
    }
  }
  if (url.host.empty()) return bad("has no host");
  url.port = url.tls() ? 443 : 80;
  if (!port_text.empty()) {
    unsigned value = 0;
    auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (ec != std::errc() || ptr != port_text.data() + port_text.size() || value == 0 ||
        value > 65535) {
      return bad("needs a port from 1 to 65535");
    }
    url.port = static_cast<uint16_t>(value);
  }
  beast::error_code addr_ec;
  asio::ip::make_address(url.host, addr_ec);
  url.host_is_ip = !addr_ec;
  return url;
}

struct Client::Impl {
  ClientOptions options;
  Url url;
  asio::io_context ioc;
  std::optional<asio::ssl::context> tls;
  std::unique_ptr<Connection> conn;

  // "https 10.0.0.5:8443": the start of every request error.
  std::string Where() const { return url.scheme + " " + url.HostPort(); }
  Status Failed(std::string_view step, const beast::error_code& ec,
                const std::string& extra = "") const {
    return UnavailableError(Where() + " " + std::string(step) + ": " + ec.message() + extra);
  }

  Status LoadTls();
  Status Connect(SteadyTime total, bool* unanswered);
  Attempt TryOnce(const ClientRequest& request, ClientResponse* out);
  template <typename ReqBody>
  void FillRequest(bhttp::request<ReqBody>& req, const ClientRequest& request) const;
  template <typename ReqBody>
  Attempt ReadInto(bhttp::request<ReqBody>& req, const ClientRequest& request, SteadyTime total,
                   ClientResponse* out);
  template <typename ReqBody, typename ResBody>
  Attempt ConnectAndExchange(bhttp::request<ReqBody>& req, bhttp::response_parser<ResBody>& parser,
                             SteadyTime total, ClientResponse* out);
  template <typename ReqBody, typename ResBody>
  Attempt Exchange(bhttp::request<ReqBody>& req, bhttp::response_parser<ResBody>& parser,
                   SteadyTime total, ClientResponse* out);
};

Status Client::Impl::LoadTls() {
  if (options.ca_pem.empty() && !options.skip_verification) {
    return InvalidArgumentError(options.base_url +
                                ": https needs the CA certificate that verifies the server");
  }
  if (!options.ca_pem.empty() && options.skip_verification) {
    return InvalidArgumentError(options.base_url + ": a CA certificate and skip_verification");
  }
  if (options.cert_pem.empty() != options.key_pem.empty()) {
    return InvalidArgumentError("a client certificate needs its key, and a key its certificate");
  }
  tls.emplace(asio::ssl::context::tls_client);
  SSL_CTX* raw = tls->native_handle();
  SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION);
  beast::error_code ec;
  if (options.skip_verification) {
    tls->set_verify_mode(asio::ssl::verify_none, ec);
  } else {
    tls->add_certificate_authority(asio::buffer(options.ca_pem), ec);
    if (ec) return InvalidArgumentError("CA certificate: " + ec.message());
    tls->set_verify_mode(asio::ssl::verify_peer, ec);
  }
  if (!options.cert_pem.empty()) {
    tls->use_certificate_chain(asio::buffer(options.cert_pem), ec);
    if (ec) return InvalidArgumentError("client certificate: " + ec.message());
    tls->use_private_key(asio::buffer(options.key_pem), asio::ssl::context::pem, ec);
    if (ec) return InvalidArgumentError("client key: " + ec.message());
    if (SSL_CTX_check_private_key(raw) != 1) {
      return InvalidArgumentError("the client key does not match the client certificate");
    }
  }
  return Status();
}

// Opens `conn`: resolve, connect, and for https the handshake with the server's certificate
// checked against the CA and the URL's host.
Status Client::Impl::Connect(SteadyTime total, bool* unanswered) {
  conn.reset();
  *unanswered = false;
  tcp::resolver resolver(ioc);
  beast::error_code ec;
  auto endpoints = resolver.resolve(url.host, std::to_string(url.port), ec);
  if (ec) return UnavailableError("cannot resolve " + url.host + ": " + ec.message());
  auto c = std::make_unique<Connection>();
  SSL* ssl = nullptr;
  if (tls) {
    c->secure = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ioc, *tls);
    ssl = c->secure->native_handle();
    // The name verified and sent as SNI: server_name when given, else the URL's host.
    const bool named = !options.server_name.empty();
    const std::string& name = named ? options.server_name : url.host;
    beast::error_code ip_ec;
    if (named) asio::ip::make_address(name, ip_ec);
    const bool name_is_ip = named ? !ip_ec : url.host_is_ip;
    if (!options.skip_verification) {
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
      int set = 0;
      if (name_is_ip) {
        set = X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
      } else {
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        set = X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
      }
      if (set != 1) return InvalidArgumentError("cannot verify against the host " + name);
    }
    if (!name_is_ip) SSL_set_tlsext_host_name(ssl, name.c_str());
  } else {
    c->plain = std::make_unique<beast::tcp_stream>(ioc);
  }
  beast::tcp_stream& lowest = c->lowest();
  lowest.expires_at(StepDeadline(options.connect_timeout, total));
  ec = Await(ioc, [&](auto handler) { lowest.async_connect(endpoints, std::move(handler)); });
  if (ec) {
    *unanswered = ec != beast::error::timeout;
    return Failed("connect", ec);
  }
  beast::error_code ignored;
  lowest.socket().set_option(tcp::no_delay(true), ignored);
  if (tls) {
    lowest.expires_at(StepDeadline(options.connect_timeout, total));
    ec = Await(ioc, [&](auto handler) {
      c->secure->async_handshake(asio::ssl::stream_base::client, std::move(handler));
    });
    if (ec) {
      long verify = SSL_get_verify_result(ssl);
      std::string extra;
      if (!options.skip_verification && verify != X509_V_OK) {
        extra = std::string(" (certificate: ") + X509_verify_cert_error_string(verify) + ")";
      }
      return Failed("TLS handshake", ec, extra);
    }
  }
  conn = std::move(c);
  return Status();
}

template <typename ReqBody>
void Client::Impl::FillRequest(bhttp::request<ReqBody>& req, const ClientRequest& request) const {
  req.version(11);
  bhttp::verb verb = bhttp::string_to_verb(View(request.method));
  if (verb == bhttp::verb::unknown) {
    req.method_string(View(request.method));
  } else {
    req.method(verb);
  }
  req.target(url.path + std::string(request.target));
  req.set(bhttp::field::host, url.HostPort());
  for (const auto& [name, value] : options.headers) req.set(name, value);
  for (const auto& [name, value] : request.headers) req.set(name, value);
  if (!request.content_type.empty()) {
    req.set(bhttp::field::content_type, View(request.content_type));
  }
  req.keep_alive(options.keep_alive);
  req.prepare_payload();
}

template <typename ReqBody, typename ResBody>
Attempt Client::Impl::Exchange(bhttp::request<ReqBody>& req,
                               bhttp::response_parser<ResBody>& parser, SteadyTime total,
                               ClientResponse* out) {
  parser.body_limit(options.max_response_bytes);
  parser.header_limit(options.max_header_bytes);
  if (req.method() == bhttp::verb::head) parser.skip(true);
  Connection& c = *conn;
  beast::tcp_stream& lowest = c.lowest();
  lowest.expires_at(StepDeadline(options.io_timeout, total));
  beast::error_code ec = Await(ioc, [&](auto handler) {
    if (c.secure) {
      bhttp::async_write(*c.secure, req, std::move(handler));
    } else {
      bhttp::async_write(*c.plain, req, std::move(handler));
    }
  });
  if (ec) {
    conn.reset();
    return {Failed("write", ec), ec != beast::error::timeout};
  }
  lowest.expires_at(StepDeadline(options.io_timeout, total));
  // The header first, on its own: Boost 1.74's parser loses its body-limit error for a
  // Content-Length over the limit when the body arrives in the same read as the header and
  // the whole message is parsed at once, so the limit is only reliable header-first.
  ec = Await(ioc, [&](auto handler) {
    if (c.secure) {
      bhttp::async_read_header(*c.secure, c.buffer, parser, std::move(handler));
    } else {
      bhttp::async_read_header(*c.plain, c.buffer, parser, std::move(handler));
    }
  });
  if (!ec && !parser.is_done()) {
    ec = Await(ioc, [&](auto handler) {
      if (c.secure) {
        bhttp::async_read(*c.secure, c.buffer, parser, std::move(handler));
      } else {
        bhttp::async_read(*c.plain, c.buffer, parser, std::move(handler));
      }
    });
  }
  // A TLS server that closes without close_notify after a complete answer has answered.
  if (ec && !(ec == asio::ssl::error::stream_truncated && parser.is_done())) {
    bool unanswered = !parser.got_some() && ec != beast::error::timeout;
    conn.reset();
    return {Failed("read", ec), unanswered};
  }
  auto& res = parser.get();
  out->status = static_cast<int>(res.result_int());
  for (const auto& field : res) {
    out->headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  if constexpr (std::is_same_v<ResBody, bhttp::string_body>) {
    out->body = std::move(res.body());
    out->body_bytes = out->body.size();
  } else {
    beast::error_code pos_ec;
    out->body_bytes = res.body().file().pos(pos_ec);
  }
  if (!options.keep_alive || !res.keep_alive()) conn.reset();
  return {};
}

template <typename ReqBody>
Attempt Client::Impl::ReadInto(bhttp::request<ReqBody>& req, const ClientRequest& request,
                               SteadyTime total, ClientResponse* out) {
  if (request.response_file.empty()) {
    bhttp::response_parser<bhttp::string_body> parser;
    return ConnectAndExchange(req, parser, total, out);
  }
  bhttp::response_parser<bhttp::file_body> parser;
  beast::error_code ec;
  parser.get().body().open(request.response_file.c_str(), beast::file_mode::write, ec);
  if (ec) return {FileError(ec, "creating", request.response_file)};
  Attempt attempt = ConnectAndExchange(req, parser, total, out);
  parser.get().body().close();
  if (!attempt.status.ok()) std::remove(request.response_file.c_str());
  return attempt;
}

template <typename ReqBody, typename ResBody>
Attempt Client::Impl::ConnectAndExchange(bhttp::request<ReqBody>& req,
                                         bhttp::response_parser<ResBody>& parser, SteadyTime total,
                                         ClientResponse* out) {
  const bool reused = conn != nullptr;
  if (!reused) {
    Attempt connected;
    connected.status = Connect(total, &connected.unanswered);
    if (!connected.status.ok()) return connected;
  }
  Attempt done = Exchange(req, parser, total, out);
  done.reused = reused;
  return done;
}

// Local files are opened before any connection is made, so that a missing one costs none.
Attempt Client::Impl::TryOnce(const ClientRequest& request, ClientResponse* out) {
  const SteadyTime total = options.total_timeout.count() > 0
                               ? std::chrono::steady_clock::now() + options.total_timeout
                               : SteadyTime::max();
  if (request.body_file.empty()) {
    bhttp::request<bhttp::string_body> req;
    req.body() = std::string(request.body);
    FillRequest(req, request);
    return ReadInto(req, request, total, out);
  }
  bhttp::request<bhttp::file_body> req;
  beast::error_code ec;
  req.body().open(request.body_file.c_str(), beast::file_mode::scan, ec);
  if (ec) return {FileError(ec, "opening", request.body_file)};
  FillRequest(req, request);
  return ReadInto(req, request, total, out);
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Client::~Client() = default;

const Url& Client::url() const { return impl_->url; }

Result<std::unique_ptr<Client>> Client::Create(ClientOptions options) {
  auto impl = std::make_unique<Impl>();
  OUTPOST_ASSIGN_OR_RETURN(impl->url, ParseUrl(options.base_url));
  if (options.connect_timeout.count() <= 0 || options.io_timeout.count() <= 0 ||
      options.total_timeout.count() < 0) {
    return InvalidArgumentError("HTTP client timeouts must be positive");
  }
  impl->options = std::move(options);
  if (impl->url.tls()) {
    OUTPOST_RETURN_IF_ERROR(impl->LoadTls());
  } else if (!impl->options.ca_pem.empty() || !impl->options.cert_pem.empty() ||
             !impl->options.key_pem.empty() || impl->options.skip_verification ||
             !impl->options.server_name.empty()) {
    return InvalidArgumentError(impl->options.base_url + ": TLS settings for a plain http:// URL");
  }
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Result<std::unique_ptr<Client>> Client::Connect(std::string_view host, uint16_t port,
                                                std::string_view bearer_token) {
  std::string h(host);
  if (h.find(':') != std::string::npos) h = "[" + h + "]";
  ClientOptions options{.base_url = "http://" + h + ":" + std::to_string(port),
                        .io_timeout = std::chrono::minutes(10),
                        .max_response_bytes = uint64_t{1} << 30,
                        .keep_alive = true,
                        .retry_unanswered = true};
  if (!bearer_token.empty()) {
    options.headers.emplace_back("Authorization", "Bearer " + std::string(bearer_token));
  }
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<Client> client, Create(std::move(options)));
  OUTPOST_RETURN_IF_ERROR(client->Open());
  return client;
}

Status Client::Open() {
  if (impl_->conn) return Status();
  bool unanswered = false;
  try {
    return impl_->Connect(SteadyTime::max(), &unanswered);
  } catch (const std::exception& e) {
    impl_->conn.reset();
    return UnavailableError(impl_->Where() + ": " + e.what());
  }
}

Result<ClientResponse> Client::Send(const ClientRequest& request) {
  if (request.target.empty() || request.target.front() != '/') {
    return InvalidArgumentError("request target \"" + std::string(request.target) +
                                "\" must begin with /");
  }
  if (request.method.empty()) return InvalidArgumentError("request without a method");
  for (int tries = 1;; ++tries) {
    ClientResponse out;
    Attempt attempt;
    try {
      attempt = impl_->TryOnce(request, &out);
    } catch (const std::exception& e) {
      impl_->conn.reset();
      attempt.status = UnavailableError(impl_->Where() + ": " + e.what());
    }
    if (attempt.status.ok()) return out;
    const bool again = attempt.unanswered && (attempt.reused || impl_->options.retry_unanswered);
    if (tries >= 2 || !again) return attempt.status;
  }
}

Result<ClientResponse> Client::Request(std::string_view method, std::string_view target,
                                       std::string_view body, std::string_view content_type) {
  ClientRequest request{.method = method, .target = target};
  if (!body.empty() || method == "POST") {
    request.content_type = content_type;
    request.body = body;
  }
  return Send(request);
}

Result<ClientResponse> Fetch(ClientOptions options, const ClientRequest& request) {
  options.keep_alive = false;
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<Client> client, Client::Create(std::move(options)));
  return client->Send(request);
}

}  // namespace outpost::http
