// The Boost.Beast (and OpenSSL TLS) adapter of sync/. Boost and OpenSSL errors stop here and
// become a Status.
#include "sync/https_client.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>

#include "base/file.h"

namespace outpost::sync {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

struct HttpsClient::Impl {
  asio::ssl::context ctx{asio::ssl::context::tls_client};
};

Status ParseHttpsUrl(std::string_view url, std::string* host, uint16_t* port,
                     std::string* prefix) {
  constexpr std::string_view kScheme = "https://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    return InvalidArgumentError("hub URL \"" + std::string(url) + "\" must begin with https://");
  }
  std::string_view rest = url.substr(kScheme.size());
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  *prefix = slash == std::string_view::npos ? "" : std::string(rest.substr(slash));
  while (!prefix->empty() && prefix->back() == '/') prefix->pop_back();
  std::string_view port_text = "443";
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return InvalidArgumentError("hub URL: unclosed [");
    *host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return InvalidArgumentError("hub URL: bad port");
      port_text = after.substr(1);
    }
  } else {
    size_t colon = authority.rfind(':');
    *host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
  if (host->empty() || ec != std::errc() || ptr != port_text.data() + port_text.size() ||
      value == 0 || value > 65535) {
    return InvalidArgumentError("hub URL \"" + std::string(url) + "\" needs host and port");
  }
  *port = static_cast<uint16_t>(value);
  return Status();
}

HttpsClient::HttpsClient(HttpsClientOptions options, std::string host, uint16_t port,
                         std::string prefix, std::unique_ptr<Impl> impl)
    : options_(std::move(options)),
      host_(std::move(host)),
      port_(port),
      prefix_(std::move(prefix)),
      impl_(std::move(impl)) {}

HttpsClient::~HttpsClient() = default;

Result<std::unique_ptr<HttpsClient>> HttpsClient::Create(HttpsClientOptions options) {
  std::string host, prefix;
  uint16_t port = 0;
  OUTPOST_RETURN_IF_ERROR(ParseHttpsUrl(options.base_url, &host, &port, &prefix));
  for (const std::string* f : {&options.cert_file, &options.key_file, &options.ca_file}) {
    if (!PathExists(*f)) return NotFoundError("credential file " + *f + " is missing");
  }
  auto impl = std::make_unique<Impl>();
  SSL_CTX* raw = impl->ctx.native_handle();
  SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION);
  boost::system::error_code ec;
  impl->ctx.set_verify_mode(asio::ssl::verify_peer, ec);
  impl->ctx.load_verify_file(options.ca_file, ec);
  if (ec) return InvalidArgumentError("cannot load " + options.ca_file + ": " + ec.message());
  impl->ctx.use_certificate_chain_file(options.cert_file, ec);
  if (ec) return InvalidArgumentError("cannot load " + options.cert_file + ": " + ec.message());
  impl->ctx.use_private_key_file(options.key_file, asio::ssl::context::pem, ec);
  if (ec) return InvalidArgumentError("cannot load " + options.key_file + ": " + ec.message());
  if (SSL_CTX_check_private_key(raw) != 1) {
    return InvalidArgumentError(options.key_file + " does not match " + options.cert_file);
  }
  return std::unique_ptr<HttpsClient>(
      new HttpsClient(std::move(options), std::move(host), port, std::move(prefix),
                      std::move(impl)));
}

Result<HttpsResponse> HttpsClient::Post(std::string_view target, std::string_view content_type,
                                        std::string_view body) {
  asio::io_context ioc;
  beast::ssl_stream<beast::tcp_stream> stream(ioc, impl_->ctx);
  SSL* ssl = stream.native_handle();
  // The hub's certificate must name the URL's host: an IP address against its IP SANs, a
  // host name against its DNS names (and the name goes out as SNI).
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  boost::system::error_code addr_ec;
  asio::ip::make_address(host_, addr_ec);
  if (!addr_ec) {
    X509_VERIFY_PARAM_set1_ip_asc(param, host_.c_str());
  } else {
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    X509_VERIFY_PARAM_set1_host(param, host_.c_str(), host_.size());
    SSL_set_tlsext_host_name(ssl, host_.c_str());
  }

  tcp::resolver resolver(ioc);
  boost::system::error_code ec;
  auto endpoints = resolver.resolve(host_, std::to_string(port_), ec);
  if (ec) return UnavailableError("cannot resolve " + host_ + ": " + ec.message());

  http::request<http::string_body> req{http::verb::post, prefix_ + std::string(target), 11};
  req.set(http::field::host, host_ + ":" + std::to_string(port_));
  req.set(http::field::content_type, std::string(content_type));
  req.set(http::field::connection, "close");
  req.body() = std::string(body);
  req.prepare_payload();

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(options_.max_response_bytes);
  parser.header_limit(16 * 1024);

  std::string failed_step;
  boost::system::error_code failure;
  auto fail = [&](const char* step, boost::system::error_code e) {
    failed_step = step;
    failure = e;
  };
  auto& lowest = beast::get_lowest_layer(stream);
  const auto timeout = options_.timeout;
  lowest.expires_after(timeout);
  lowest.async_connect(endpoints, [&](boost::system::error_code e, const tcp::endpoint&) {
    if (e) return fail("connect", e);
    lowest.expires_after(timeout);
    stream.async_handshake(asio::ssl::stream_base::client, [&](boost::system::error_code e2) {
      if (e2) return fail("TLS handshake", e2);
      lowest.expires_after(timeout);
      http::async_write(stream, req, [&](boost::system::error_code e3, size_t) {
        if (e3) return fail("write", e3);
        lowest.expires_after(timeout);
        http::async_read(stream, buffer, parser, [&](boost::system::error_code e4, size_t) {
          if (e4) return fail("read", e4);
          // The answer is complete; the connection closes with the stream (no TLS
          // close_notify round trip that a stalled network could hold up).
        });
      });
    });
  });
  try {
    ioc.run();
  } catch (const std::exception& e) {
    return UnavailableError(std::string("https: ") + e.what());
  }
  if (!failed_step.empty()) {
    std::string detail = failure.message();
    if (failed_step == "TLS handshake") {
      long verify = SSL_get_verify_result(ssl);
      if (verify != X509_V_OK) {
        detail += std::string(" (certificate: ") + X509_verify_cert_error_string(verify) + ")";
      }
    }
    return UnavailableError("https " + host_ + ":" + std::to_string(port_) + " " + failed_step +
                            ": " + detail);
  }
  HttpsResponse out;
  out.status = static_cast<int>(parser.get().result_int());
  out.body = std::move(parser.get().body());
  return out;
}

}  // namespace outpost::sync
