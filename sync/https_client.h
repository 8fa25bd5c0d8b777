// HttpsClient: the site's side of the ingestion API's transport (FORMAT.md section 2): HTTPS
// with mutual TLS. The site presents its certificate (site.crt with site.key), verifies the
// hub's server certificate against hub_ca.crt and the URL's host name or IP address against
// the certificate's names. TLS 1.2 or newer.
//
//   OUTPOST_ASSIGN_OR_RETURN(auto client, sync::HttpsClient::Create({
//       .base_url = "https://127.0.0.1:8443", .cert_file = ".../site.crt",
//       .key_file = ".../site.key", .ca_file = ".../hub_ca.crt"}));
//   OUTPOST_ASSIGN_OR_RETURN(sync::HttpsResponse r, client->Post("/sync/v1/batches",
//                                                               "application/octet-stream", bytes));
//
// Each request opens its own connection (connect, handshake, request, response, close), so a
// connection broken by the network never poisons the next request. Every step has a deadline.
// https_client.cc is the Boost.Beast adapter of sync/ (it alone sees Beast and OpenSSL's TLS).
// Thread-compatible: one request at a time per client.
#ifndef OUTPOST_SYNC_HTTPS_CLIENT_H_
#define OUTPOST_SYNC_HTTPS_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"

namespace outpost::sync {

struct HttpsClientOptions {
  // "https://host:port" (a path after it is a prefix of every target). Only https.
  std::string base_url{};
  // PEM files: the client certificate (chain) and its private key, the trust anchor.
  std::string cert_file{};
  std::string key_file{};
  std::string ca_file{};
  // The deadline of each step (connect, handshake, write, read).
  std::chrono::milliseconds timeout = std::chrono::seconds(30);
  // The largest response body read.
  size_t max_response_bytes = size_t{1} << 20;
};

struct HttpsResponse {
  int status = 0;
  std::string body{};
};

class HttpsClient {
 public:
  // Loads the credentials. InvalidArgument for a bad URL; NotFound / InvalidArgument
  // (with the file's name) for a credential file that is missing or unreadable as PEM.
  static Result<std::unique_ptr<HttpsClient>> Create(HttpsClientOptions options);
  ~HttpsClient();
  HttpsClient(const HttpsClient&) = delete;
  HttpsClient& operator=(const HttpsClient&) = delete;

  // POSTs `body` to base path + `target` and returns the hub's answer, whatever its status.
  // Unavailable when no answer came (refused, reset, timed out, TLS failure — the message
  // says which); the request may or may not have reached the hub then.
  Result<HttpsResponse> Post(std::string_view target, std::string_view content_type,
                             std::string_view body);

  const std::string& host() const { return host_; }
  uint16_t port() const { return port_; }

 private:
  struct Impl;
  HttpsClient(HttpsClientOptions options, std::string host, uint16_t port, std::string prefix,
              std::unique_ptr<Impl> impl);

  HttpsClientOptions options_;
  std::string host_;
  uint16_t port_;
  std::string prefix_;
  std::unique_ptr<Impl> impl_;
};

// Splits "https://host:port/prefix" (host may be "[v6]"). InvalidArgument otherwise.
Status ParseHttpsUrl(std::string_view url, std::string* host, uint16_t* port,
                     std::string* prefix);

}  // namespace outpost::sync

#endif  // OUTPOST_SYNC_HTTPS_CLIENT_H_
