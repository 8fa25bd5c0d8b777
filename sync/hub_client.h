// HubClient: the site's side of the ingestion API's transport (FORMAT.md section 2), the
// forwarder's policy over base/http's one client: HTTPS only, mutual TLS with the credential
// files that `outpost enrol` wrote (site.crt with site.key, the hub's CA in hub_ca.crt), the
// hub's certificate verified against that CA and the URL's host name or IP address. TLS 1.2 or
// newer.
//
//   OUTPOST_ASSIGN_OR_RETURN(auto client, sync::HubClient::Create({
//       .base_url = "https://127.0.0.1:8443", .cert_file = ".../site.crt",
//       .key_file = ".../site.key", .ca_file = ".../hub_ca.crt"}));
//   OUTPOST_ASSIGN_OR_RETURN(http::ClientResponse r, client->Post("/sync/v1/batches",
//                                                                 "application/octet-stream",
//                                                                 bytes));
//
// One connection is kept open from request to request and dropped after any failure, so a
// connection broken by the network spoils one request at most; a request that finds the kept
// connection closed by the hub goes out once more on a new one (the hub's ingestion makes a
// repeated batch a duplicate). Every step has a deadline. No sockets or TLS here: those are
// base/http/client.cc's. Thread-compatible: one request at a time per client.
#ifndef OUTPOST_SYNC_HUB_CLIENT_H_
#define OUTPOST_SYNC_HUB_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/http/client.h"
#include "base/status.h"

namespace outpost::sync {

struct HubClientOptions {
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

class HubClient {
 public:
  // Loads the credentials. InvalidArgument for a bad URL; NotFound / InvalidArgument
  // (with the file's name) for a credential file that is missing or unreadable as PEM.
  static Result<std::unique_ptr<HubClient>> Create(HubClientOptions options);

  // POSTs `body` to base path + `target` and returns the hub's answer, whatever its status.
  // Unavailable when no answer came (refused, reset, timed out, TLS failure — the message
  // says which, "https <host>:<port> <step>: ..."); the request may or may not have reached
  // the hub then.
  Result<http::ClientResponse> Post(std::string_view target, std::string_view content_type,
                                    std::string_view body);

  // GETs base path + `target` with `headers` (Range, If-Match, ...) and returns the hub's
  // answer, whatever its status; errors as Post's.
  Result<http::ClientResponse> Get(std::string_view target,
                                   std::vector<std::pair<std::string, std::string>> headers = {});

 private:
  explicit HubClient(std::unique_ptr<http::Client> client) : client_(std::move(client)) {}

  std::unique_ptr<http::Client> client_;
};

}  // namespace outpost::sync

#endif  // OUTPOST_SYNC_HUB_CLIENT_H_
