// The Boost.Beast adapter of apps/: the only file here that includes Beast or Asio.
#include "apps/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace outpost::apps {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

class BeastClient final : public HttpClient {
 public:
  BeastClient(std::string host, uint16_t port, std::string authorization)
      : host_(std::move(host)), port_(port), authorization_(std::move(authorization)) {}

  Status Open() {
    beast::error_code ec;
    tcp::resolver resolver(io_);
    auto endpoints = resolver.resolve(host_, std::to_string(port_), ec);
    if (ec) return UnavailableError("cannot resolve " + host_ + ": " + ec.message());
    socket_ = std::make_unique<tcp::socket>(io_);
    asio::connect(*socket_, endpoints, ec);
    if (ec) {
      return UnavailableError("cannot connect to " + host_ + ":" + std::to_string(port_) + ": " +
                              ec.message());
    }
    socket_->set_option(tcp::no_delay(true), ec);
    return Status();
  }

  Result<HttpResult> Request(std::string_view method, std::string_view target,
                             std::string_view body, std::string_view content_type) override {
    Result<HttpResult> result = Once(method, target, body, content_type);
    if (!result.ok() && result.status().code() == StatusCode::kUnavailable) {
      // The server may have closed an idle keep-alive connection; try once on a new one.
      OUTPOST_RETURN_IF_ERROR(Open());
      result = Once(method, target, body, content_type);
    }
    return result;
  }

 private:
  Result<HttpResult> Once(std::string_view method, std::string_view target,
                          std::string_view body, std::string_view content_type) {
    if (!socket_ || !socket_->is_open()) OUTPOST_RETURN_IF_ERROR(Open());
    http::request<http::string_body> req;
    boost::beast::string_view verb(method.data(), method.size());
    req.method(http::string_to_verb(verb));
    if (req.method() == http::verb::unknown) req.method_string(verb);
    req.target(boost::beast::string_view(target.data(), target.size()));
    req.version(11);
    req.set(http::field::host, host_);
    if (!authorization_.empty()) req.set(http::field::authorization, authorization_);
    req.keep_alive(true);
    if (!body.empty() || method == "POST") {
      req.set(http::field::content_type,
              boost::beast::string_view(content_type.data(), content_type.size()));
      req.body() = std::string(body);
      req.prepare_payload();
    }
    beast::error_code ec;
    http::write(*socket_, req, ec);
    if (ec) {
      socket_.reset();
      return UnavailableError("cannot send to the server: " + ec.message());
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(uint64_t{1} << 30);
    http::read(*socket_, buffer_, parser, ec);
    if (ec) {
      socket_.reset();
      return UnavailableError("cannot read the server's answer: " + ec.message());
    }
    auto& res = parser.get();
    HttpResult out{.status = static_cast<int>(res.result_int()), .body = std::move(res.body())};
    if (!res.keep_alive()) socket_.reset();
    return out;
  }

  std::string host_;
  uint16_t port_;
  std::string authorization_;  // the Authorization header's value, or empty
  asio::io_context io_;
  std::unique_ptr<tcp::socket> socket_;
  beast::flat_buffer buffer_;
};

}  // namespace

Result<std::unique_ptr<HttpClient>> HttpClient::Connect(const std::string& host, uint16_t port,
                                                       const std::string& bearer_token) {
  auto client = std::make_unique<BeastClient>(
      host, port, bearer_token.empty() ? "" : "Bearer " + bearer_token);
  OUTPOST_RETURN_IF_ERROR(client->Open());
  return std::unique_ptr<HttpClient>(std::move(client));
}

}  // namespace outpost::apps
