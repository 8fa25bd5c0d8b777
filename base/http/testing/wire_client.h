// WireClient: a blocking HTTP/1.1 test client on one loopback connection, for tests that
// drive a listener byte by byte (pipelining, trickled or malformed requests, 100-continue,
// lingering close) where a real client would hide what is on the wire. It speaks plain TCP
// through POSIX sockets and parses only what Outpost's server core writes: a status line,
// headers, and a body of Content-Length bytes.
//
// Thread-compatible: one thread uses a client at a time. Failures are gtest failures.
#ifndef OUTPOST_BASE_HTTP_TESTING_WIRE_CLIENT_H_
#define OUTPOST_BASE_HTTP_TESTING_WIRE_CLIENT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace outpost::http::testing {

struct WireResponse {
  int status = 0;
  int version = 11;  // 10 or 11
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body_text;

  int result_int() const { return status; }
  const std::string& body() const { return body_text; }
  // The first header called `name` (compared without case); empty when there is none.
  std::string_view operator[](std::string_view name) const;
  // Whether the connection stays open after this response (HTTP/1.1 unless "Connection:
  // close"; HTTP/1.0 only with "Connection: keep-alive").
  bool keep_alive() const;
};

class WireClient {
 public:
  // Connects to 127.0.0.1:`port`; connect_error() tells whether that failed.
  explicit WireClient(uint16_t port);
  ~WireClient();
  WireClient(const WireClient&) = delete;
  WireClient& operator=(const WireClient&) = delete;

  // The errno of a failed connect (ECONNREFUSED, ...); 0 when connected.
  int connect_error() const { return connect_error_; }

  // Writes raw bytes.
  void Send(std::string_view bytes);

  // Reads one response; `head` when it answers a HEAD request or is interim (no body
  // follows).
  WireResponse Read(bool head = false);

  // Sends one request (HTTP/1.1, keep-alive, Host and Content-Length set) and reads its
  // response.
  WireResponse Call(std::string_view method, std::string_view target, std::string body = "",
                    std::vector<std::pair<std::string, std::string>> headers = {});

  // Whether the server has closed the connection: a read ends with end-of-stream (or a
  // reset) and no bytes.
  bool ClosedByServer();

 private:
  // Reads more bytes into buffer_; false at end of stream or on an error.
  bool Fill();

  int fd_ = -1;
  int connect_error_ = 0;
  std::string buffer_;  // bytes read and not yet consumed
};

}  // namespace outpost::http::testing

#endif  // OUTPOST_BASE_HTTP_TESTING_WIRE_CLIENT_H_
