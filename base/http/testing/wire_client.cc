// WireClient (wire_client.h) over POSIX sockets.
#include "base/http/testing/wire_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>

#include "base/http/message.h"

namespace outpost::http::testing {

std::string_view WireResponse::operator[](std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (EqualsIgnoreCase(n, name)) return v;
  }
  return {};
}

bool WireResponse::keep_alive() const {
  std::string_view connection = (*this)["Connection"];
  if (version == 10) return EqualsIgnoreCase(connection, "keep-alive");
  return !EqualsIgnoreCase(connection, "close");
}

WireClient::WireClient(uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd_ < 0) {
    connect_error_ = errno;
    return;
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    connect_error_ = errno;
  }
}

WireClient::~WireClient() {
  if (fd_ >= 0) ::close(fd_);
}

void WireClient::Send(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    ASSERT_GT(n, 0) << "send failed: errno " << errno;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

bool WireClient::Fill() {
  char chunk[16384];
  for (;;) {
    ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  }
}

WireResponse WireClient::Read(bool head) {
  WireResponse response;
  size_t end;
  while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (!Fill()) {
      ADD_FAILURE() << "the connection ended before a response header";
      return response;
    }
  }
  std::string_view header(buffer_.data(), end);
  size_t line_end = header.find("\r\n");
  std::string_view status_line = header.substr(0, line_end);
  // "HTTP/1.1 200 OK"
  if (status_line.size() < 12 || !status_line.starts_with("HTTP/1.")) {
    ADD_FAILURE() << "not a status line: " << status_line;
    return response;
  }
  response.version = status_line[7] == '0' ? 10 : 11;
  response.status = std::atoi(std::string(status_line.substr(9, 3)).c_str());
  size_t content_length = 0;
  while (line_end != std::string_view::npos) {
    header.remove_prefix(line_end + 2);
    line_end = header.find("\r\n");
    std::string_view line = header.substr(0, line_end);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    response.headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
  }
  std::string_view length = response["Content-Length"];
  if (!length.empty()) content_length = std::strtoull(std::string(length).c_str(), nullptr, 10);
  buffer_.erase(0, end + 4);
  if (head || response.status < 200 || response.status == 204 || response.status == 304) {
    return response;
  }
  while (buffer_.size() < content_length) {
    if (!Fill()) {
      ADD_FAILURE() << "the connection ended inside a response body";
      return response;
    }
  }
  response.body_text = buffer_.substr(0, content_length);
  buffer_.erase(0, content_length);
  return response;
}

WireResponse WireClient::Call(std::string_view method, std::string_view target, std::string body,
                              std::vector<std::pair<std::string, std::string>> headers) {
  std::string request(method);
  request.append(" ").append(target).append(" HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  for (const auto& [name, value] : headers) {
    request.append(name).append(": ").append(value).append("\r\n");
  }
  if (!body.empty() || method == "POST" || method == "PUT") {
    request.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  request.append("\r\n").append(body);
  Send(request);
  return Read(method == "HEAD");
}

bool WireClient::ClosedByServer() {
  if (!buffer_.empty()) return false;
  char byte;
  for (;;) {
    ssize_t n = ::recv(fd_, &byte, 1, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n > 0) {
      buffer_.push_back(byte);
      return false;
    }
    return n == 0 || errno == ECONNRESET;
  }
}

}  // namespace outpost::http::testing
