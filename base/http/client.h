// The one HTTP client of Outpost: plain HTTP and HTTPS (TLS 1.2 or newer), used by the
// forwarder (mutual TLS to the hub), `outpost enrol`, `outpost bundle push`, the CLI's calls
// to a running edge, and the tests.
//
//   OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<http::Client> hub, http::Client::Create({
//       .base_url = "https://10.0.0.5:8443", .ca_pem = hub_ca, .cert_pem = site_crt,
//       .key_pem = site_key, .keep_alive = true}));
//   OUTPOST_ASSIGN_OR_RETURN(http::ClientResponse r, hub->Send({
//       .method = "POST", .target = "/sync/v1/batches",
//       .content_type = "application/octet-stream", .body = bytes}));
//
// HTTPS verifies the server's certificate against a pinned CA (PEM) and the URL's host, or
// ClientOptions::server_name when given: an IP address against the certificate's IP names, a
// host name against its DNS names (and the name goes out as SNI). The one exception, asked for
// explicitly with skip_verification, is the bootstrap of CA pinning: fetching a CA certificate
// that the caller then compares with a fingerprint it already trusts (`outpost enrol`).
// Credentials are PEM text in memory, never file names on a command line.
//
// Bodies go out from memory or are streamed from a file, and come back into memory or are
// streamed into a file; every answer's body is bounded by max_response_bytes. Every step has
// a deadline. With keep_alive, one connection carries request after request; after any failure
// it is dropped, so a connection broken by the network spoils one request at most.
//
// Errors of a request: InvalidArgument for a bad request (target, method), the error of a
// local file that cannot be opened, and Unavailable when no complete answer came (name not
// resolved, refused, reset, timed out, TLS failure, an answer over the size limit): the
// message reads "<scheme> <host>:<port> <step>: <detail>", and a certificate the client
// refused adds " (certificate: <why>)". The request may or may not have reached the server
// then. Any HTTP status is an answer, not an error.
//
// client.cc is the Boost.Beast / Asio / OpenSSL TLS adapter of base/http: no header of ours
// names their types. Thread-compatible: one request at a time per Client.
#ifndef OUTPOST_BASE_HTTP_CLIENT_H_
#define OUTPOST_BASE_HTTP_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace outpost::http {

// An absolute http:// or https:// URL, split.
struct Url {
  std::string scheme{};  // "http" or "https"
  std::string host{};    // a name or an IP address; an IPv6 address without its brackets
  uint16_t port = 0;     // the URL's, else 80 (http) or 443 (https)
  // The path after the authority, without trailing '/' ("" or "/prefix"); the client puts it
  // in front of every request's target.
  std::string path{};
  bool host_is_ip = false;  // host is an IPv4 or IPv6 address

  bool tls() const { return scheme == "https"; }
  // "host:port", with an IPv6 host in brackets.
  std::string HostPort() const;
};

// Parses "http[s]://host[:port][/path]"; host may be "[v6]". No user info, query or fragment.
// InvalidArgument (naming the URL) for another scheme, an empty or malformed host, or a port
// that is not a number from 1 to 65535.
Result<Url> ParseUrl(std::string_view text);

struct ClientOptions {
  // "http://host:port" or "https://host:port", optionally with a path that prefixes every
  // target. Required.
  std::string base_url{};
  // HTTPS: the CA certificate(s), PEM, that must have issued the server's certificate.
  // Required for https unless skip_verification.
  std::string ca_pem{};
  // HTTPS without verifying the server at all. Only for the bootstrap of CA pinning: fetching
  // a CA certificate that the caller then checks against a fingerprint it already holds.
  bool skip_verification = false;
  // HTTPS: the name (a DNS name or an IP address) the server's certificate must carry and, for
  // a DNS name, the SNI sent, when it is not the URL's host: the client connects to the URL's
  // address and verifies this name (an edge on 127.0.0.1 serving its site certificate, which
  // names the site id). Empty: the URL's host. The Host header stays the URL's.
  std::string server_name{};
  // Mutual TLS: the client's certificate (chain) and its private key, PEM; both or neither.
  std::string cert_pem{};
  std::string key_pem{};
  // Deadline of the TCP connect, and again of the TLS handshake.
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(30);
  // Deadline of sending a request, and again of reading its whole answer.
  std::chrono::milliseconds io_timeout = std::chrono::seconds(30);
  // Deadline of one whole request, connection included (each try of it); 0: none beyond the
  // two above.
  std::chrono::milliseconds total_timeout = std::chrono::milliseconds(0);
  // The largest answer body accepted (in memory or into a file); a larger one is Unavailable.
  uint64_t max_response_bytes = uint64_t{16} << 20;
  // The largest answer header accepted.
  uint32_t max_header_bytes = 16 * 1024;
  // Keeps the connection open between requests (when the server agrees) instead of sending
  // "Connection: close". A request that finds a kept connection closed by the server (closed
  // or reset before any byte of the answer, not a deadline) is sent once more on a new one.
  bool keep_alive = false;
  // Also sends a request once more on a new connection when its first try got no byte of an
  // answer for another reason than a deadline (refused, closed, reset), whatever the
  // connection's age. Only for requests that are safe to repeat.
  bool retry_unanswered = false;
  // Header fields sent with every request ("Authorization", "User-Agent", ...).
  std::vector<std::pair<std::string, std::string>> headers{};
};

// One request. The views must stay valid during Send().
struct ClientRequest {
  std::string_view method = "GET";
  // Starts with '/'; the base URL's path goes in front of it.
  std::string_view target = "/";
  // Sent as Content-Type when not empty.
  std::string_view content_type{};
  // The body, from memory; ignored when body_file is set.
  std::string_view body{};
  // When not empty: the body is streamed from this file; the error of opening it (NotFound,
  // PermissionDenied, ...) when it cannot be read.
  std::string body_file{};
  // When not empty: the answer's body is streamed into this file (created or truncated,
  // removed again when the request fails) instead of ClientResponse::body; the error of
  // creating it when it cannot be.
  std::string response_file{};
  // Header fields of this request, after the client's own.
  std::vector<std::pair<std::string, std::string>> headers{};
};

struct ClientResponse {
  int status = 0;
  // The body, unless it went into response_file (or the request was HEAD).
  std::string body{};
  // Bytes of body received, wherever they went.
  uint64_t body_bytes = 0;
  // The answer's header fields, in order.
  std::vector<std::pair<std::string, std::string>> headers{};

  // The first header field named `name` (case-insensitive); empty when absent.
  std::string Header(std::string_view name) const;
};

class Client {
 public:
  // Checks the options and loads the TLS material; connects on the first request (or Open).
  // InvalidArgument for a bad URL, TLS options that do not fit it (https without a CA or
  // skip_verification, a certificate without its key), or PEM that does not parse or a key
  // that does not match its certificate.
  static Result<std::unique_ptr<Client>> Create(ClientOptions options);
  // A keep-alive plain HTTP client to host:port, connected at once, that sends a request once
  // more on a new connection when it got no answer (the CLI's and the tests' client of a
  // running edge or hub). A non-empty `bearer_token` goes out as "Authorization: Bearer ...".
  // Unavailable when nothing accepts the connection.
  static Result<std::unique_ptr<Client>> Connect(std::string_view host, uint16_t port,
                                                 std::string_view bearer_token = "");
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Opens the connection now (TLS handshake included) unless one is open, so that a caller
  // learns at once whether the server is there. Unavailable otherwise.
  Status Open();

  // Sends `request` and reads the whole answer (errors: see the top of this file).
  Result<ClientResponse> Send(const ClientRequest& request);

  // Shorthand for Send: `body` and `content_type` go out when the body is not empty or the
  // method is POST.
  Result<ClientResponse> Request(std::string_view method, std::string_view target,
                                 std::string_view body = {},
                                 std::string_view content_type = "application/json");

  const Url& url() const;

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One request on a connection of its own, closed afterwards: Client::Create(options), then
// Send(request).
Result<ClientResponse> Fetch(ClientOptions options, const ClientRequest& request);

}  // namespace outpost::http

#endif  // OUTPOST_BASE_HTTP_CLIENT_H_
