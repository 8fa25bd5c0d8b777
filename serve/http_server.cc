// The Boost.Beast / Asio adapter of serve/: the only file of the scoring server that includes
// them. Every Asio call that can fail is made in its error_code form; exceptions that escape
// an event loop (std::bad_alloc, a throwing handler) are caught and logged here.
//
// Design, for speed on small requests:
//   - one io_context and thread per event loop; a separate accept thread hands each new
//     socket to the next loop, so a slow handler never delays accepting or shutting down;
//   - requests are parsed by a Beast basic_parser subclass that copies the request line and
//     headers into one per-connection buffer and the body into a per-connection string with
//     room for the JSON parser's padding, so a request allocates nothing once a connection
//     has warmed up;
//   - responses are written as two buffers (status line and headers formatted here, then the
//     handler's body), with no Beast message object.
#include "serve/http_server.h"

#include <poll.h>

#include <array>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>

#include "base/logging.h"

namespace outpost::serve {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
// Connections use their loop's concrete executor type rather than the type-erased
// any_io_executor, which costs a copy and a destruction of an erased object per operation.
using Executor = net::io_context::executor_type;
using Socket = net::basic_stream_socket<tcp, Executor>;
using Stream = beast::basic_stream<tcp, Executor, beast::unlimited_rate_policy>;

// Bytes asked of the socket per read.
constexpr size_t kReadSize = 16 << 10;
// Per-connection buffers that grew past this for one large request are released after it.
constexpr size_t kKeepBufferBytes = 1 << 20;
// How long a closing connection keeps reading (and discarding) what the client still sends,
// so that the client sees our last response instead of a reset.
constexpr auto kLingerTimeout = std::chrono::seconds(2);
// Pause before accepting again after the accept call itself failed (e.g. out of descriptors).
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(50);

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view Sv(beast::string_view s) { return std::string_view(s.data(), s.size()); }

void AppendNumber(std::string& out, uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  (void)ec;
  out.append(buf, static_cast<size_t>(end - buf));
}

// What the parser gathers for one request, reused by a connection for all of its requests.
struct RequestState {
  // The request line's method and target, then each header's name and value, back to back.
  std::string text;
  struct Span {
    size_t offset = 0;
    size_t size = 0;
  };
  Span method, target;
  std::vector<std::pair<Span, Span>> fields;
  int version = 11;  // 10 or 11
  bool is_head = false;
  bool expect_continue = false;
  // Views into `text` (valid once the header is complete) and the body.
  HttpRequest request;

  Span Append(std::string_view s) {
    Span span{text.size(), s.size()};
    text.append(s.data(), s.size());
    return span;
  }
  std::string_view View(Span s) const { return std::string_view(text).substr(s.offset, s.size); }
};

// Beast's HTTP/1.1 request parser, feeding a RequestState.
class RequestParser final : public http::basic_parser<true> {
 public:
  // `state` is the connection's and outlives the parser.
  explicit RequestParser(RequestState& request_state) : state_(request_state) {}

 private:
  void on_request_impl(http::verb method, beast::string_view method_text,
                       beast::string_view target, int version, beast::error_code&) override {
    state_.text.clear();
    state_.fields.clear();
    state_.request.body.clear();
    state_.method = state_.Append(Sv(method_text));
    state_.target = state_.Append(Sv(target));
    state_.version = version;
    state_.is_head = method == http::verb::head;
    state_.expect_continue = false;
  }

  void on_response_impl(int, beast::string_view, int, beast::error_code& ec) override {
    ec = http::error::bad_version;  // never called for a request parser
  }

  void on_field_impl(http::field name, beast::string_view name_text, beast::string_view value,
                     beast::error_code&) override {
    if (name == http::field::expect && EqualsIgnoreCase(Sv(value), "100-continue")) {
      state_.expect_continue = true;
    }
    RequestState::Span n = state_.Append(Sv(name_text));
    RequestState::Span v = state_.Append(Sv(value));
    state_.fields.emplace_back(n, v);
  }

  void on_header_impl(beast::error_code&) override {
    HttpRequest& request = state_.request;
    request.method = state_.View(state_.method);
    request.target = state_.View(state_.target);
    request.headers.clear();
    for (const auto& [n, v] : state_.fields) {
      request.headers.push_back(HttpHeader{state_.View(n), state_.View(v)});
    }
  }

  void on_body_init_impl(const boost::optional<uint64_t>& content_length,
                         beast::error_code&) override {
    // The parser has already checked the length against the body limit.
    if (content_length) state_.request.body.reserve(*content_length + kJsonPadding);
  }

  size_t on_body_impl(beast::string_view body, beast::error_code&) override {
    state_.request.body.append(body.data(), body.size());
    return body.size();
  }

  void on_chunk_header_impl(uint64_t, beast::string_view, beast::error_code&) override {}

  size_t on_chunk_body_impl(uint64_t, beast::string_view body, beast::error_code&) override {
    state_.request.body.append(body.data(), body.size());
    return body.size();
  }

  void on_finish_impl(beast::error_code&) override {
    std::string& body = state_.request.body;
    if (body.capacity() - body.size() < kJsonPadding) body.reserve(body.size() + kJsonPadding);
  }

  RequestState& state_;
};

// Whether the peer of a connected socket has closed it or its sending side, without reading
// anything: a pipelined request waiting to be read does not count.
bool PeerClosed(int fd) {
  pollfd p{.fd = fd, .events = POLLIN | POLLRDHUP, .revents = 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  return (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

class Connection;

// What every connection shares: options, handler and the drain bookkeeping.
struct ServerState {
  HttpServerOptions options;
  HttpHandlerFn handler;
  // Set once Stop() has stopped accepting: requests are then answered with 503.
  std::atomic<bool> stopping{false};
  // Responses being produced or written.
  std::atomic<int64_t> in_flight{0};
  std::atomic<size_t> open_connections{0};
  std::mutex drain_mu;  // guards nothing but pairs with drained (in_flight is atomic)
  std::condition_variable drained;

  void ResponseDone() {
    if (in_flight.fetch_sub(1) == 1 && stopping.load()) {
      { std::lock_guard<std::mutex> lock(drain_mu); }
      drained.notify_all();
    }
  }
};

// One event loop, its thread and its connections.
struct Worker {
  // Open connections of this loop, an intrusive list touched only on the loop's thread (or
  // after it has ended). Declared before `ioc`, so it outlives the handlers `ioc` destroys.
  Connection* connections = nullptr;
  net::io_context ioc{1};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::thread thread;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // `state` and `worker` outlive every connection (the server joins its threads and
  // destroys its loops before they go).
  Connection(Socket socket, ServerState& state, Worker& worker)
      : server_(state), worker_(worker), stream_(std::move(socket)) {}

  ~Connection() {
    if (prev_ != nullptr) prev_->next_ = next_;
    if (next_ != nullptr) next_->prev_ = prev_;
    if (worker_.connections == this) worker_.connections = next_;
    server_.open_connections.fetch_sub(1);
  }

  // Runs on the worker's thread.
  void Start() {
    next_ = worker_.connections;
    if (next_ != nullptr) next_->prev_ = this;
    worker_.connections = this;
    beast::error_code ec;
    stream_.socket().set_option(tcp::no_delay(true), ec);
    StartRequest();
  }

  // Closes the socket; pending operations end with operation_aborted. Worker's thread only.
  void Close() {
    closed_ = true;
    stream_.close();
  }

  Connection* next() const { return next_; }

 private:
  void StartRequest() {
    parser_.emplace(req_);
    parser_->header_limit(static_cast<uint32_t>(
        std::min<size_t>(server_.options.max_header_bytes, UINT32_MAX)));
    parser_->body_limit(server_.options.max_body_bytes);
    parser_->eager(true);
    request_started_ = false;
    continue_sent_ = false;
    Read();
  }

  // Parses what is buffered; reads more when the request is not complete yet.
  void Read() {
    while (buffer_.size() > 0) {
      if (!request_started_) {
        request_started_ = true;
        deadline_ = Clock::now() + server_.options.read_timeout;
      }
      beast::error_code ec;
      size_t n = parser_->put(buffer_.data(), ec);
      buffer_.consume(n);
      if (ec == http::error::need_more) break;
      if (ec) {
        OnParseError(ec);
        return;
      }
      if (parser_->is_done()) {
        OnRequest();
        return;
      }
      if (n == 0) break;
    }
    if (parser_->is_header_done() && req_.expect_continue && !continue_sent_) {
      SendContinue();
      return;
    }
    if (request_started_) {
      stream_.expires_at(deadline_);
    } else {
      stream_.expires_after(server_.options.idle_timeout);
    }
    stream_.async_read_some(buffer_.prepare(kReadSize),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->OnRead(ec, n);
                            });
  }

  void OnRead(beast::error_code ec, size_t n) {
    if (ec || closed_) {
      // End of stream, time-out (the stream has closed the socket), reset, or Close().
      stream_.close();
      return;
    }
    buffer_.commit(n);
    Read();
  }

  void SendContinue() {
    continue_sent_ = true;
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    stream_.expires_after(server_.options.write_timeout);
    net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec || self->closed_) {
                         self->stream_.close();
                         return;
                       }
                       self->Read();
                     });
  }

  void OnParseError(beast::error_code ec) {
    server_.in_flight.fetch_add(1);
    response_.Clear();
    if (ec == http::error::body_limit) {
      SetErrorResponse(ResourceExhaustedError(
                           "the request body is larger than the limit of " +
                           std::to_string(server_.options.max_body_bytes) + " bytes"),
                       response_);
    } else if (ec == http::error::header_limit) {
      SetErrorResponse(InvalidArgumentError("the request header is larger than the limit of " +
                                            std::to_string(server_.options.max_header_bytes) +
                                            " bytes"),
                       response_);
      response_.status = 431;
    } else {
      SetErrorResponse(InvalidArgumentError("malformed HTTP request: " + ec.message()),
                       response_);
    }
    req_.is_head = false;
    Respond(/*close=*/true);
  }

  void OnRequest() {
    server_.in_flight.fetch_add(1);
    bool close = !parser_->keep_alive();
    response_.Clear();
    if (server_.stopping.load()) {
      SetErrorResponse(UnavailableError("the server is shutting down"), response_);
      close = true;
    } else {
      try {
        // The scheduler asks while the request waits in a model's queue: a client that has
        // closed its connection (or its sending side) gets no answer, so its request is not
        // run.
        if (!req_.request.client_gone) {
          const int fd = stream_.socket().native_handle();
          req_.request.client_gone = [fd] { return PeerClosed(fd); };
        }
        server_.handler(req_.request, response_);
      } catch (const std::exception& e) {
        OUTPOST_LOG(kError) << "request handler failed" << Field("error", e.what());
        response_.Clear();
        SetErrorResponse(InternalError("the request handler failed"), response_);
      }
    }
    Respond(close);
  }

  void Respond(bool close) {
    head_.clear();
    head_.append("HTTP/1.1 ");
    AppendNumber(head_, static_cast<uint64_t>(response_.status));
    head_.push_back(' ');
    beast::string_view reason = http::obsolete_reason(http::int_to_status(
        static_cast<unsigned>(response_.status)));
    head_.append(reason.data(), reason.size());
    head_.append("\r\nContent-Type: ");
    head_.append(response_.content_type);
    head_.append("\r\nContent-Length: ");
    AppendNumber(head_, response_.body.size());
    head_.append("\r\n");
    for (const auto& [name, value] : response_.headers) {
      head_.append(name);
      head_.append(": ");
      head_.append(value);
      head_.append("\r\n");
    }
    if (close) {
      head_.append("Connection: close\r\n");
    } else if (req_.version == 10) {
      head_.append("Connection: keep-alive\r\n");
    }
    head_.append("\r\n");

    std::array<net::const_buffer, 2> buffers = {
        net::buffer(head_),
        req_.is_head ? net::const_buffer() : net::buffer(response_.body)};
    stream_.expires_after(server_.options.write_timeout);
    net::async_write(stream_, buffers,
                     [self = shared_from_this(), close](beast::error_code ec, size_t) {
                       self->OnWritten(ec, close);
                     });
  }

  void OnWritten(beast::error_code ec, bool close) {
    server_.ResponseDone();
    if (ec || closed_) {
      stream_.close();
      return;
    }
    if (close) {
      Linger();
      return;
    }
    if (req_.request.body.capacity() > kKeepBufferBytes) req_.request.body = std::string();
    if (response_.body.capacity() > kKeepBufferBytes) response_.body = std::string();
    if (buffer_.capacity() > kKeepBufferBytes && buffer_.size() == 0) buffer_.shrink_to_fit();
    StartRequest();
  }

  // Ends our side, then discards what the client still sends until it closes or
  // kLingerTimeout passes, so that it reads our last response before the socket goes.
  void Linger() {
    beast::error_code ec;
    stream_.socket().shutdown(net::socket_base::shutdown_send, ec);
    if (ec) {
      stream_.close();
      return;
    }
    stream_.expires_after(kLingerTimeout);
    DiscardUntilClosed();
  }

  void DiscardUntilClosed() {
    buffer_.clear();
    stream_.async_read_some(buffer_.prepare(kReadSize),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec || self->closed_) {
                                self->stream_.close();
                                return;
                              }
                              self->DiscardUntilClosed();
                            });
  }

  ServerState& server_;
  Worker& worker_;
  Stream stream_;
  beast::flat_buffer buffer_;  // bytes read and not yet parsed
  RequestState req_;  // what the parser gathers; reused for every request
  std::optional<RequestParser> parser_;
  HttpResponse response_;
  std::string head_;  // the response's status line and headers
  bool request_started_ = false;   // a byte of the current request has arrived
  Clock::time_point deadline_;     // when the current request must have arrived
  bool continue_sent_ = false;     // "100 Continue" was sent for the current request
  bool closed_ = false;            // Close() was called
  Connection* prev_ = nullptr;     // neighbours in worker_.connections
  Connection* next_ = nullptr;
};

}  // namespace

struct HttpServer::Impl {
  // Declared first: connections refer to it until the loops below are destroyed.
  ServerState state;
  std::vector<std::unique_ptr<Worker>> workers;
  // The accept loop, on its own thread.
  net::io_context accept_ioc{1};
  tcp::acceptor acceptor{accept_ioc};
  net::steady_timer accept_retry{accept_ioc};
  std::optional<Socket> pending;  // the socket being accepted into; accept thread only
  std::thread accept_thread;
  size_t next_worker = 0;  // accept thread only
  uint16_t port = 0;

  std::mutex stop_mu;  // guards stopped; held for the whole of Stop()
  bool stopped = false;

  void Accept() {
    Worker& target = *workers[next_worker];
    next_worker = (next_worker + 1) % workers.size();
    // The socket is made on the target loop's executor and accepted into from this thread.
    pending.emplace(target.ioc.get_executor());
    acceptor.async_accept(*pending, [this, &target](beast::error_code ec) {
      Socket socket = std::move(*pending);
      pending.reset();
      if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
      if (ec) {
        OUTPOST_LOG(kWarning) << "accepting a connection failed" << Field("error", ec.message());
        accept_retry.expires_after(kAcceptRetryDelay);
        accept_retry.async_wait([this](beast::error_code wait_ec) {
          if (!wait_ec) Accept();
        });
        return;
      }
      if (state.open_connections.fetch_add(1) >= state.options.max_connections) {
        state.open_connections.fetch_sub(1);
        beast::error_code close_ec;
        socket.close(close_ec);
      } else {
        net::post(target.ioc, [this, &target, s = std::move(socket)]() mutable {
          auto connection = std::make_shared<Connection>(std::move(s), state, target);
          connection->Start();
        });
      }
      Accept();
    });
  }

  static void RunLoop(net::io_context& ioc, std::string_view name) {
    for (;;) {
      try {
        ioc.run();
        return;
      } catch (const std::exception& e) {
        OUTPOST_LOG(kError) << "HTTP event loop caught an exception" << Field("loop", name)
                            << Field("error", e.what());
      }
    }
  }

  // Runs `fn` on `ioc`'s thread and waits for it.
  template <typename Fn>
  static void RunOn(net::io_context& ioc, Fn fn) {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;  // guarded by mu
    net::post(ioc, [&] {
      fn();
      std::lock_guard<std::mutex> lock(mu);
      done = true;
      cv.notify_all();
    });
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done; });
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Stop(); }

uint16_t HttpServer::port() const { return impl_->port; }

Result<std::unique_ptr<HttpServer>> HttpServer::Start(HttpServerOptions options,
                                                      HttpHandlerFn handler) {
  if (!handler) return InvalidArgumentError("the HTTP server needs a handler");
  if (options.threads < 0) return InvalidArgumentError("threads must be >= 0");
  int threads = options.threads;
  if (threads == 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  beast::error_code ec;
  net::ip::address address = net::ip::make_address(options.address, ec);
  if (ec) {
    return InvalidArgumentError("\"" + options.address + "\" is not an IP address");
  }
  auto impl = std::make_unique<Impl>();
  const tcp::endpoint endpoint(address, options.port);
  const std::string where = options.address + ":" + std::to_string(options.port);
  impl->state.options = std::move(options);
  impl->state.handler = std::move(handler);

  tcp::acceptor& acceptor = impl->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return FailedPreconditionError("cannot listen on " + where + ": " + ec.message());
  impl->port = acceptor.local_endpoint(ec).port();
  if (ec) return FailedPreconditionError("cannot listen on " + where + ": " + ec.message());

  for (int i = 0; i < threads; ++i) {
    auto worker = std::make_unique<Worker>();
    worker->work.emplace(worker->ioc.get_executor());
    Worker* w = worker.get();
    worker->thread = std::thread([w] { Impl::RunLoop(w->ioc, "worker"); });
    impl->workers.push_back(std::move(worker));
  }
  Impl* raw = impl.get();
  net::post(raw->accept_ioc, [raw] { raw->Accept(); });
  raw->accept_thread = std::thread([raw] { Impl::RunLoop(raw->accept_ioc, "accept"); });
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

void HttpServer::Stop() {
  Impl& impl = *impl_;
  std::lock_guard<std::mutex> stop_lock(impl.stop_mu);
  if (impl.stopped) return;
  impl.stopped = true;

  // 1. Refuse new connections. The accept loop runs no handlers, so this never waits on one.
  Impl::RunOn(impl.accept_ioc, [&impl] {
    beast::error_code ec;
    impl.acceptor.close(ec);
    impl.accept_retry.cancel();
  });
  impl.accept_thread.join();

  // 2. Answer new requests with 503 and wait for the responses in flight.
  impl.state.stopping.store(true);
  {
    std::unique_lock<std::mutex> lock(impl.state.drain_mu);
    if (!impl.state.drained.wait_for(lock, impl.state.options.drain_timeout,
                                     [&impl] { return impl.state.in_flight.load() == 0; })) {
      OUTPOST_LOG(kWarning) << "HTTP requests still running after the drain time-out; closing"
                            << Field("requests", impl.state.in_flight.load());
    }
  }

  // 3. Close every connection, end each loop, and let the aborted operations finish so that
  // every connection is released here.
  for (auto& worker : impl.workers) {
    Worker* w = worker.get();
    net::post(w->ioc, [w] {
      for (Connection* c = w->connections; c != nullptr; c = c->next()) c->Close();
      w->ioc.stop();
    });
  }
  for (auto& worker : impl.workers) {
    worker->thread.join();
    worker->work.reset();
    worker->ioc.restart();
    try {
      worker->ioc.poll();
    } catch (const std::exception& e) {
      OUTPOST_LOG(kError) << "HTTP event loop failed while stopping" << Field("error", e.what());
    }
  }
}

}  // namespace outpost::serve
