// The Boost.Beast / Asio adapter of Outpost's HTTP server core and, for its TLS sessions, the
// OpenSSL (asio::ssl) adapter: the only file of the server that includes them. Every Asio
// call that can fail is made in its error_code form; exceptions that escape an event loop
// (std::bad_alloc, a throwing handler) are caught and logged here.
//
// Design, for speed on small requests:
//   - one io_context and thread per event loop; a separate accept thread hands each new
//     socket to the next loop, so a slow handler never delays accepting or shutting down;
//   - requests are parsed by a Beast basic_parser subclass that copies the request line into
//     the request's own strings, the headers into one per-connection buffer, and the body
//     into a per-connection string with room for a JSON parser's padding, so a request
//     allocates nothing once a connection has warmed up;
//   - an idle connection costs little: it waits for its next request with a 4 KiB read
//     buffer, and every 2 s each loop gives back the other buffers of the connections that
//     have been idle since its previous look (about 6.5 KiB per idle connection in all);
//   - responses are written as two buffers (status line and headers formatted here, then the
//     handler's body), with no Beast message object.
// A connection is one class template over its stream: a plain TCP stream, or a TLS stream
// over it; timeouts are kept by the TCP stream underneath either.
#include <utility>  // Boost 1.74's Asio uses std::exchange without including it

#include "base/http/server.h"

#include <poll.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
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

namespace outpost::http {
namespace {

namespace net = boost::asio;
namespace ssl = net::ssl;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
// Connections use their loop's concrete executor type rather than the type-erased
// any_io_executor, which costs a copy and a destruction of an erased object per operation.
using Executor = net::io_context::executor_type;
using Socket = net::basic_stream_socket<tcp, Executor>;
using TcpStream = beast::basic_stream<tcp, Executor, beast::unlimited_rate_policy>;
using TlsStream = ssl::stream<TcpStream>;

// Bytes asked of the socket per read once a request has started.
constexpr size_t kReadSize = 16 << 10;
// Bytes asked of the socket by a connection waiting for its next request, which holds a read
// buffer of this size only (however large its last request was), so that an idle connection
// costs little: most requests arrive in one read of this size, a larger one reads on with
// kReadSize.
constexpr size_t kIdleReadSize = 4 << 10;
// How often each loop gives back the reusable buffers (bodies, header text) of its connections
// that have waited for their next request since its previous look: a connection idle that
// long holds little more than its small read buffer, while a busy one keeps them warm.
constexpr auto kTrimInterval = std::chrono::seconds(2);
// Per-connection buffers that grew past this for one large request are released after it.
constexpr size_t kKeepBufferBytes = 1 << 20;
// How long a closing connection keeps reading (and discarding) what the client still sends,
// so that the client sees our last response instead of a reset.
constexpr auto kLingerTimeout = std::chrono::seconds(2);
// Pause before accepting again after the accept call itself failed (e.g. out of descriptors).
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(50);
// How long after its full handshake a TLS session may be resumed: the window in which a
// client certificate, verified at that handshake, is not verified again.
constexpr std::chrono::seconds kTlsSessionLifetime(300);

std::string_view Sv(beast::string_view s) { return std::string_view(s.data(), s.size()); }

void AppendNumber(std::string& out, uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  (void)ec;
  out.append(buf, static_cast<size_t>(end - buf));
}

// The bytes of request bodies buffered across every connection of a server, against
// ServerOptions::max_buffered_bytes. Thread-safe.
struct BufferBudget {
  size_t cap = 0;  // 0 = none; set before the server's threads start
  std::atomic<size_t> used{0};

  // Counts `bytes` more; false, with nothing counted, when that would pass the cap.
  bool Take(size_t bytes) {
    if (bytes == 0) return true;
    const size_t now = used.fetch_add(bytes) + bytes;
    if (cap != 0 && (now > cap || now < bytes)) {
      used.fetch_sub(bytes);
      return false;
    }
    return true;
  }
  void Give(size_t bytes) {
    if (bytes != 0) used.fetch_sub(bytes);
  }
};

// What the parser gathers for one request, reused by a connection for all of its requests.
struct RequestState {
  // Each header's name and value, back to back.
  std::string text;
  struct Span {
    size_t offset = 0;
    size_t size = 0;
  };
  std::vector<std::pair<Span, Span>> fields;
  int version = 11;  // 10 or 11
  bool is_head = false;
  bool expect_continue = false;
  // Bytes of this request's body counted in the server's BufferBudget (given back once its
  // handler returns, or when the connection goes).
  size_t body_counted = 0;
  // A chunked body grew past the server's max_buffered_bytes.
  bool over_buffer_cap = false;
  // The request line and the body, plus views into `text` once the header is complete. Its
  // peer is set once per connection.
  Request request;

  Span Append(std::string_view s) {
    Span span{text.size(), s.size()};
    text.append(s.data(), s.size());
    return span;
  }
  std::string_view View(Span s) const { return std::string_view(text).substr(s.offset, s.size); }
};

// Beast's HTTP/1.1 request parser, feeding a RequestState.
class RequestParser final : public bhttp::basic_parser<true> {
 public:
  // `state` is the connection's and `budget` the server's; both outlive the parser.
  RequestParser(RequestState& request_state, BufferBudget& budget)
      : state_(request_state), budget_(budget) {}

 private:
  void on_request_impl(bhttp::verb method, beast::string_view method_text,
                       beast::string_view target, int version, beast::error_code&) override {
    state_.text.clear();
    state_.fields.clear();
    state_.request.body.clear();
    state_.request.method.assign(method_text.data(), method_text.size());
    state_.request.target.assign(target.data(), target.size());
    state_.version = version;
    state_.is_head = method == bhttp::verb::head;
    state_.expect_continue = false;
    state_.over_buffer_cap = false;
  }

  void on_response_impl(int, beast::string_view, int, beast::error_code& ec) override {
    ec = bhttp::error::bad_version;  // never called for a request parser
  }

  void on_field_impl(bhttp::field name, beast::string_view name_text, beast::string_view value,
                     beast::error_code&) override {
    if (name == bhttp::field::expect && EqualsIgnoreCase(Sv(value), "100-continue")) {
      state_.expect_continue = true;
    }
    RequestState::Span n = state_.Append(Sv(name_text));
    RequestState::Span v = state_.Append(Sv(value));
    state_.fields.emplace_back(n, v);
  }

  void on_header_impl(beast::error_code&) override {
    Request& request = state_.request;
    request.headers.clear();
    // Who called is established anew for every request of a connection.
    request.caller = Caller{};
    for (const auto& [n, v] : state_.fields) {
      request.headers.push_back(HeaderField{state_.View(n), state_.View(v)});
    }
  }

  void on_body_init_impl(const boost::optional<uint64_t>& content_length,
                         beast::error_code&) override {
    // The parser has already checked the length against the body limit.
    if (content_length) state_.request.body.reserve(*content_length + kBodyPadding);
  }

  size_t on_body_impl(beast::string_view body, beast::error_code&) override {
    state_.request.body.append(body.data(), body.size());
    return body.size();
  }

  void on_chunk_header_impl(uint64_t, beast::string_view, beast::error_code&) override {}

  // A chunked body counts against the server's cap as it grows (a body with a
  // Content-Length was counted whole before its first byte).
  size_t on_chunk_body_impl(uint64_t, beast::string_view body, beast::error_code& ec) override {
    const size_t total = state_.request.body.size() + body.size();
    if (total > state_.body_counted) {
      if (!budget_.Take(total - state_.body_counted)) {
        state_.over_buffer_cap = true;
        ec = bhttp::error::body_limit;
        return 0;
      }
      state_.body_counted = total;
    }
    state_.request.body.append(body.data(), body.size());
    return body.size();
  }

  void on_finish_impl(beast::error_code&) override {
    std::string& body = state_.request.body;
    if (body.capacity() - body.size() < kBodyPadding) body.reserve(body.size() + kBodyPadding);
  }

  RequestState& state_;
  BufferBudget& budget_;
};

// Whether the peer of a connected socket has closed it or its sending side, without reading
// anything: a pipelined request waiting to be read does not count.
bool PeerClosed(int fd) {
  pollfd p{.fd = fd, .events = POLLIN | POLLRDHUP, .revents = 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  return (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

// What the handshake established about a TLS peer's certificate.
void ReadPeerCertificate(SSL* handle, PeerInfo& peer) {
  peer.tls = true;
  X509* cert = SSL_get1_peer_certificate(handle);
  if (cert == nullptr) return;
  peer.cert_presented = true;
  long verify = SSL_get_verify_result(handle);
  peer.cert_verified = verify == X509_V_OK;
  if (!peer.cert_verified) peer.verify_error = X509_verify_cert_error_string(verify);
  unsigned char* der = nullptr;
  int size = i2d_X509(cert, &der);
  if (size > 0) {
    peer.cert_der.assign(reinterpret_cast<const char*>(der), static_cast<size_t>(size));
    OPENSSL_free(der);
  }
  X509_free(cert);
}

class ConnectionBase;
class AddressCounts;

// One counted connection of a peer address, given back when the lease goes (whether or not
// its connection ever started). An empty lease counts nothing. Move-only.
class AddressLease {
 public:
  AddressLease() = default;
  // `counts` outlives the lease.
  AddressLease(AddressCounts* counts, net::ip::address address)
      : counts_(counts), address_(std::move(address)) {}
  AddressLease(AddressLease&& other) noexcept
      : counts_(std::exchange(other.counts_, nullptr)), address_(other.address_) {}
  AddressLease& operator=(AddressLease&&) = delete;
  ~AddressLease() { Release(); }

  // Gives the count back now; the lease is empty afterwards.
  void Release();

 private:
  AddressCounts* counts_ = nullptr;
  net::ip::address address_;
};

// Open connections per peer IP address, for max_connections_per_address. Thread-safe: the
// accept thread counts, every event loop gives back.
class AddressCounts {
 public:
  // 0 = no limit (nothing is counted); set before the server's threads start.
  size_t limit = 0;

  // A lease on one more connection from `address`; nullopt, with nothing counted, when the
  // address already has `limit` open.
  std::optional<AddressLease> Acquire(const net::ip::address& address) {
    if (limit == 0) return AddressLease();
    std::lock_guard<std::mutex> lock(mu_);
    size_t& open = counts_[address];
    if (open >= limit) return std::nullopt;
    ++open;
    return AddressLease(this, address);
  }

  void Release(const net::ip::address& address) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = counts_.find(address);
    if (it == counts_.end()) return;
    if (--it->second == 0) counts_.erase(it);
  }

 private:
  std::mutex mu_;
  // Only addresses with open connections are present.
  std::map<net::ip::address, size_t> counts_;  // guarded by mu_
};

void AddressLease::Release() {
  if (counts_ != nullptr) std::exchange(counts_, nullptr)->Release(address_);
}

// Whether a server's loops still run deferred responses: shared by the server and its
// connections, so that a response sent after the server has gone finds it.
struct Lifeline {
  // Held while a deferred response is handed to a loop, and while Stop() detaches the
  // connections that outlive the loops.
  std::mutex mu;
  bool alive = true;  // guarded by mu
};

// What every connection shares: options, handler, TLS context and the drain bookkeeping.
struct ServerState {
  ServerOptions options;
  HandlerFn handler;
  // The TLS settings of new connections; null for plain HTTP. Each connection holds the one
  // it started with, so that ReloadTls() can swap this one while they run.
  std::shared_ptr<ssl::context> tls;  // guarded by tls_mu
  std::mutex tls_mu;
  // Open connections per peer address, and the bodies buffered across all connections.
  AddressCounts per_address;
  BufferBudget buffered;
  // Set once Stop() has stopped accepting: requests are then answered with 503.
  std::atomic<bool> stopping{false};
  // Responses being produced or written.
  std::atomic<int64_t> in_flight{0};
  std::atomic<size_t> open_connections{0};
  std::shared_ptr<Lifeline> lifeline = std::make_shared<Lifeline>();
  std::mutex drain_mu;  // guards nothing but pairs with drained (in_flight is atomic)
  std::condition_variable drained;

  void ResponseDone() {
    if (in_flight.fetch_sub(1) == 1 && stopping.load()) {
      { std::lock_guard<std::mutex> lock(drain_mu); }
      drained.notify_all();
    }
  }

  // The TLS context for a connection starting now.
  std::shared_ptr<ssl::context> TlsContext() {
    std::lock_guard<std::mutex> lock(tls_mu);
    return tls;
  }
};

// One event loop, its thread and its connections.
struct Worker {
  // Open connections of this loop, an intrusive list touched only on the loop's thread (or
  // after it has ended). Declared before `ioc`, so it outlives the handlers `ioc` destroys.
  ConnectionBase* connections = nullptr;
  net::io_context ioc{1};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  // Every kTrimInterval, the idle connections' buffers are given back (TrimIdle()).
  net::steady_timer trim{ioc};
  std::thread thread;
};

// A connection as its worker's list sees it.
class ConnectionBase {
 public:
  ConnectionBase(ServerState& state, Worker& worker, AddressLease lease)
      : server_(state), worker_(worker), lifeline_(state.lifeline), lease_(std::move(lease)) {
    next_ = worker_.connections;
    if (next_ != nullptr) next_->prev_ = this;
    worker_.connections = this;
  }
  // A detached connection touches nothing of the server's (it may outlive the server).
  virtual ~ConnectionBase() {
    if (!detached_) LetGoOfServer();
  }
  ConnectionBase(const ConnectionBase&) = delete;
  ConnectionBase& operator=(const ConnectionBase&) = delete;

  // Closes the socket; pending operations end with operation_aborted. Worker's thread only.
  virtual void Close() = 0;

  // Gives back the reusable buffers when the connection has waited for its next request
  // since the previous call. Worker's thread only.
  virtual void TrimIfIdle() = 0;

  // Called by Stop() once every loop has ended, with the lifeline's lock held and marked
  // dead, on each connection still alive: only one that a deferred response still holds is.
  // Gives back everything the connection holds of the server's (its socket and timers, which
  // belong to the loop; its counts) so that it may outlive the server; a deferred response
  // sent afterwards is dropped.
  void Detach() {
    ReleaseServerParts();
    LetGoOfServer();
    detached_ = true;
  }

  ConnectionBase* next() const { return next_; }

 protected:
  // What Detach() gives back beyond the counts kept here.
  virtual void ReleaseServerParts() = 0;

  ServerState& server_;
  Worker& worker_;
  // The server's; its lock orders Detach() against a deferred response's completion on
  // another thread, and it outlives the server.
  std::shared_ptr<Lifeline> lifeline_;
  // Detach() has run. Read without the lock only where Detach() is known to have happened
  // before or never to run concurrently (the loop's thread, or after a completion saw the
  // lifeline dead).
  bool detached_ = false;  // guarded by lifeline_->mu (see above)

 private:
  void LetGoOfServer() {
    if (prev_ != nullptr) prev_->next_ = next_;
    if (next_ != nullptr) next_->prev_ = prev_;
    if (worker_.connections == this) worker_.connections = next_;
    prev_ = next_ = nullptr;
    server_.open_connections.fetch_sub(1);
    lease_.Release();
  }

  AddressLease lease_;              // this connection's count of its peer address
  ConnectionBase* prev_ = nullptr;  // neighbours in worker_.connections
  ConnectionBase* next_ = nullptr;
};

// Looks at the worker's connections every kTrimInterval (TrimIfIdle()) until the timer is
// cancelled. Worker's thread only.
void TrimIdle(Worker& worker) {
  worker.trim.expires_after(kTrimInterval);
  worker.trim.async_wait([&worker](beast::error_code ec) {
    if (ec) return;
    for (ConnectionBase* c = worker.connections; c != nullptr; c = c->next()) c->TrimIfIdle();
    TrimIdle(worker);
  });
}

// The completion of the request whose handler runs on this thread now, else null: a deferred
// response sent (or abandoned) from inside its own handler is answered when the handler
// returns, as a synchronous one, without a post to the loop.
thread_local const DeferredResponse::Completion* handler_running = nullptr;

template <typename StreamT>
class Connection final : public ConnectionBase,
                         public DeferredResponse::Completion,
                         public std::enable_shared_from_this<Connection<StreamT>> {
 public:
  static constexpr bool kTls = std::is_same_v<StreamT, TlsStream>;

  // `state` and `worker` outlive every connection (the server joins its threads and
  // destroys its loops before they go). `tls` is the TLS context of a TLS connection, which
  // holds it for its whole life (null for plain HTTP). `accepted` is when the socket was
  // accepted, the start of the first request's deadline. Worker's thread only.
  Connection(Socket socket, std::shared_ptr<ssl::context> tls, ServerState& state, Worker& worker,
             AddressLease lease, Clock::time_point accepted)
      : ConnectionBase(state, worker, std::move(lease)),
        tls_(std::move(tls)),
        first_deadline_(accepted + FirstRequestTimeout(state.options)) {
    if constexpr (kTls) {
      stream_.emplace(std::move(socket), *tls_);
    } else {
      stream_.emplace(std::move(socket));
    }
  }

  ~Connection() override {
    if (detached_) return;
    ReleaseBody();
    // Closed while its body was arriving (the client went, a time-out, the drain's end).
    if (body_in_flight_) server_.ResponseDone();
  }

  // Runs on the worker's thread.
  void Start() {
    beast::error_code ec;
    Tcp().socket().set_option(tcp::no_delay(true), ec);
    if constexpr (kTls) {
      Tcp().expires_at(first_deadline_);
      stream_->async_handshake(
          ssl::stream_base::server,
          [self = this->shared_from_this()](beast::error_code hs_ec) { self->OnHandshake(hs_ec); });
    } else {
      StartRequest();
    }
  }

  void Close() override {
    closed_ = true;
    Tcp().close();
  }

  void TrimIfIdle() override {
    const bool idle = waiting_idle_ && requests_ == requests_at_trim_;
    requests_at_trim_ = requests_;
    if (!idle) return;
    // Nothing refers to them between requests (the request's header views included).
    ReleaseCapacity(req_.request.body);
    ReleaseCapacity(response_.body);
    ReleaseCapacity(head_);
    ReleaseCapacity(req_.text);
    ReleaseCapacity(req_.fields);
    ReleaseCapacity(req_.request.headers);
    ReleaseCapacity(response_.headers);
  }

  // A deferred response was sent (or abandoned), on any thread: it is written on the loop's.
  // `self` goes with it, so that the connection is destroyed on the loop's thread (or, once
  // detached, wherever its last holder lets go). The lifeline is held by a copy: the loop
  // may be done with the connection before the lock is released.
  void Complete(std::shared_ptr<DeferredResponse::Completion> self, bool sent) override {
    if (handler_running == this) {
      // On the loop's thread inside the handler (the handler's own thread holds the
      // connection): no longer deferred, OnRequest() answers when the handler returns.
      deferred_ = false;
      settled_in_handler_ = true;
      if (!sent) {
        response_.Clear();
        SetErrorBody(500, "internal", "the request was abandoned", response_);
      }
      return;
    }
    const std::shared_ptr<Lifeline> lifeline = lifeline_;
    std::lock_guard<std::mutex> lock(lifeline->mu);
    if (!lifeline->alive) return;  // the server has stopped: dropped
    net::post(worker_.ioc, [this, self = std::move(self), sent] { OnDeferredDone(sent); });
  }

 private:
  template <typename T>
  static void ReleaseCapacity(T& container) {
    if (container.capacity() != 0) T().swap(container);
  }

  static std::chrono::milliseconds FirstRequestTimeout(const ServerOptions& options) {
    return options.first_request_timeout.count() > 0 ? options.first_request_timeout
                                                     : options.read_timeout;
  }

  TcpStream& Tcp() {
    if constexpr (kTls) {
      return stream_->next_layer();
    } else {
      return *stream_;
    }
  }

  void OnHandshake(beast::error_code ec) {
    if (ec || closed_) {
      OUTPOST_LOG(kDebug) << "TLS handshake failed" << Field("error", ec.message());
      Tcp().close();
      return;
    }
    if constexpr (kTls) ReadPeerCertificate(stream_->native_handle(), req_.request.peer);
    StartRequest();
  }

  void StartRequest() {
    parser_.emplace(req_, server_.buffered);
    parser_->header_limit(
        static_cast<uint32_t>(std::min<size_t>(server_.options.max_header_bytes, UINT32_MAX)));
    parser_->body_limit(server_.options.max_body_bytes);
    // The parser stops once the header is complete, so that AdmitBody() runs before any
    // byte of the body is parsed; it is eager from then on.
    parser_->eager(false);
    request_started_ = false;
    head_checked_ = false;
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
      if (ec == bhttp::error::need_more) break;
      if (ec) {
        OnParseError(ec);
        return;
      }
      if (!head_checked_ && parser_->is_header_done()) {
        head_checked_ = true;
        if (!AdmitBody()) return;
        CountBodyInFlight();
        parser_->eager(true);
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
    Clock::time_point expiry =
        request_started_ ? deadline_ : Clock::now() + server_.options.idle_timeout;
    if (first_request_) expiry = std::min(expiry, first_deadline_);
    Tcp().expires_at(expiry);
    size_t read_size = kReadSize;
    waiting_idle_ = !request_started_ && buffer_.size() == 0;
    if (waiting_idle_) {
      if (buffer_.capacity() > kIdleReadSize) buffer_.shrink_to_fit();  // empty: freed
      read_size = kIdleReadSize;
    }
    stream_->async_read_some(
        buffer_.prepare(read_size),
        [self = this->shared_from_this()](beast::error_code ec, size_t n) { self->OnRead(ec, n); });
  }

  void OnRead(beast::error_code ec, size_t n) {
    waiting_idle_ = false;
    if (ec || closed_) {
      // End of stream, time-out (the stream has closed the socket), reset, or Close().
      Tcp().close();
      return;
    }
    buffer_.commit(n);
    Read();
  }

  void SendContinue() {
    continue_sent_ = true;
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    Tcp().expires_after(server_.options.write_timeout);
    net::async_write(*stream_, net::buffer(kContinue.data(), kContinue.size()),
                     [self = this->shared_from_this()](beast::error_code ec, size_t) {
                       if (ec || self->closed_) {
                         self->Tcp().close();
                         return;
                       }
                       self->Read();
                     });
  }

  // The checks made once a request's header is read, before any byte of its body: the
  // before_body hook, then the server's cap on buffered bodies (a Content-Length counts
  // whole here). False after sending the refusal (the connection then closes, lingering).
  bool AdmitBody() {
    if (server_.options.before_body) {
      response_.Clear();
      bool admitted = false;
      try {
        admitted = server_.options.before_body(req_.request, response_);
      } catch (const std::exception& e) {
        OUTPOST_LOG(kError) << "request check before the body failed" << Field("error", e.what());
        response_.Clear();
        SetErrorBody(500, "internal", "the request check failed", response_);
      }
      if (!admitted) {
        RespondAndClose();
        return false;
      }
    }
    const boost::optional<uint64_t> length = parser_->content_length();
    if (length && *length > 0) {
      if (!server_.buffered.Take(static_cast<size_t>(*length))) {
        RefuseBusy();
        return false;
      }
      req_.body_counted = static_cast<size_t>(*length);
    }
    return true;
  }

  // A request whose header is read and whose body is still to come counts as in flight from
  // now, so that Stop() lets it finish and answers it (an upload in progress is not cut off
  // or refused). Counted first, then `stopping` checked, as OnRequest does: a request
  // admitted after Stop() began is not counted here and gets 503 draining.
  void CountBodyInFlight() {
    if (parser_->is_done()) return;  // no body left to wait for: OnRequest counts it
    server_.in_flight.fetch_add(1);
    if (server_.stopping.load()) {
      server_.ResponseDone();
      return;
    }
    body_in_flight_ = true;
  }

  // Counts the current request in flight unless CountBodyInFlight() already did; true when
  // it did (the request began before Stop()).
  bool CountInFlight() {
    if (std::exchange(body_in_flight_, false)) return true;
    server_.in_flight.fetch_add(1);
    return false;
  }

  // 503 server_busy: the bodies buffered across the server are at max_buffered_bytes.
  void RefuseBusy() {
    response_.Clear();
    SetErrorBody(503, "server_busy",
                 "the server is buffering as many request bodies as it may; retry shortly",
                 response_);
    response_.headers.emplace_back("Retry-After", "1");
    RespondAndClose();
  }

  // Sends response_ as the answer to a request that is not read further, and closes.
  void RespondAndClose() {
    ReleaseBody();
    CountInFlight();
    Respond(/*close=*/true);
  }

  // Gives back what the current request's body counted against the server's cap.
  void ReleaseBody() {
    server_.buffered.Give(req_.body_counted);
    req_.body_counted = 0;
  }

  void OnParseError(beast::error_code ec) {
    if (req_.over_buffer_cap) {
      req_.is_head = false;
      RefuseBusy();
      return;
    }
    ReleaseBody();
    CountInFlight();
    response_.Clear();
    if (ec == bhttp::error::body_limit) {
      SetErrorBody(413, "body_too_large",
                   "the request body is larger than the limit of " +
                       std::to_string(server_.options.max_body_bytes) + " bytes",
                   response_);
    } else if (ec == bhttp::error::header_limit) {
      SetErrorBody(431, "headers_too_large",
                   "the request header is larger than the limit of " +
                       std::to_string(server_.options.max_header_bytes) + " bytes",
                   response_);
    } else {
      SetErrorBody(400, "malformed_request", "malformed HTTP request: " + ec.message(), response_);
    }
    req_.is_head = false;
    Respond(/*close=*/true);
  }

  void OnRequest() {
    first_request_ = false;
    ++requests_;
    const bool began_before_stop = CountInFlight();
    bool close = !parser_->keep_alive();
    response_.Clear();
    if (!began_before_stop && server_.stopping.load()) {
      SetErrorBody(503, "draining", "the server is shutting down", response_);
      close = true;
    } else {
      RunHandler();
      if (deferred_) {
        // Answered by OnDeferredDone(); nothing more is read until then.
        deferred_close_ = close;
        return;
      }
    }
    ReleaseBody();
    Respond(close);
  }

  void RunHandler() {
    Request& request = req_.request;
    // Both are set once per connection and outlive every request of it.
    if (!request.client_gone) {
      // A handler may ask while the request waits in a queue: a client that has closed its
      // connection (or its sending side) gets no answer, so its request is not run.
      const int fd = Tcp().socket().native_handle();
      request.client_gone = [this, fd] { return closed_.load() || PeerClosed(fd); };
    }
    if (!request.defer) request.defer = [this] { return Defer(); };
    in_handler_ = true;
    settled_in_handler_ = false;
    const DeferredResponse::Completion* const outer = std::exchange(handler_running, this);
    try {
      server_.handler(request, response_);
    } catch (const std::exception& e) {
      if (deferred_ || settled_in_handler_) {
        // The response is no longer the handler's to fill: whoever holds the deferred
        // response sends it (or abandons it, which answers 500).
        OUTPOST_LOG(kError) << "request handler failed after deferring its response"
                            << Field("error", e.what());
      } else {
        OUTPOST_LOG(kError) << "request handler failed" << Field("error", e.what());
        response_.Clear();
        SetErrorBody(500, "internal", "the request handler failed", response_);
      }
    }
    handler_running = outer;
    in_handler_ = false;
  }

  // Request::defer: the first call while the handler runs defers the answer.
  DeferredResponse Defer() {
    if (!in_handler_ || deferred_ || settled_in_handler_) return DeferredResponse();
    deferred_ = true;
    // Shares the connection's ownership: the request and response stay valid until sent.
    return DeferredResponse(std::shared_ptr<DeferredResponse::Completion>(
        this->shared_from_this(), static_cast<DeferredResponse::Completion*>(this)));
  }

  // The deferred response was sent or abandoned; on the loop's thread.
  void OnDeferredDone(bool sent) {
    deferred_ = false;
    ReleaseBody();
    if (closed_) {
      // Closed meanwhile (the server stopping): nothing to write to.
      server_.ResponseDone();
      return;
    }
    if (!sent) {
      response_.Clear();
      SetErrorBody(500, "internal", "the request was abandoned", response_);
    }
    Respond(deferred_close_);
  }

  void ReleaseServerParts() override {
    ReleaseBody();
    stream_.reset();
  }

  void FormatHead(bool close) {
    head_.clear();
    head_.append("HTTP/1.1 ");
    AppendNumber(head_, static_cast<uint64_t>(response_.status));
    head_.push_back(' ');
    beast::string_view reason =
        bhttp::obsolete_reason(bhttp::int_to_status(static_cast<unsigned>(response_.status)));
    head_.append(reason.data(), reason.size());
    if (!server_.options.server_header.empty()) {
      head_.append("\r\nServer: ");
      head_.append(server_.options.server_header);
    }
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
  }

  void Respond(bool close) {
    FormatHead(close);
    std::array<net::const_buffer, 2> buffers = {
        net::buffer(head_), req_.is_head ? net::const_buffer() : net::buffer(response_.body)};
    Tcp().expires_after(server_.options.write_timeout);
    net::async_write(*stream_, buffers,
                     [self = this->shared_from_this(), close](beast::error_code ec, size_t) {
                       self->OnWritten(ec, close);
                     });
  }

  void OnWritten(beast::error_code ec, bool close) {
    server_.ResponseDone();
    if (ec || closed_) {
      Tcp().close();
      return;
    }
    if (close) {
      Linger();
      return;
    }
    if (req_.request.body.capacity() > kKeepBufferBytes) req_.request.body = std::string();
    if (response_.body.capacity() > kKeepBufferBytes) response_.body = std::string();
    StartRequest();
  }

  // Ends our side, then discards what the client still sends until it closes or
  // kLingerTimeout passes, so that it reads our last response before the socket goes. A TLS
  // connection first sends its close_notify; reading the peer's ends at the same deadline,
  // and whatever follows is discarded undecrypted.
  void Linger() {
    Tcp().expires_after(kLingerTimeout);
    if constexpr (kTls) {
      stream_->async_shutdown([self = this->shared_from_this()](beast::error_code) {
        if (self->closed_) return;
        self->ShutdownSendAndDiscard();
      });
    } else {
      ShutdownSendAndDiscard();
    }
  }

  void ShutdownSendAndDiscard() {
    beast::error_code ec;
    Tcp().socket().shutdown(net::socket_base::shutdown_send, ec);
    if (ec) {
      Tcp().close();
      return;
    }
    DiscardUntilClosed();
  }

  void DiscardUntilClosed() {
    buffer_.clear();
    Tcp().async_read_some(buffer_.prepare(kReadSize),
                          [self = this->shared_from_this()](beast::error_code ec, size_t) {
                            if (ec || self->closed_) {
                              self->Tcp().close();
                              return;
                            }
                            self->DiscardUntilClosed();
                          });
  }

  // Declared before stream_, which uses it until it goes.
  std::shared_ptr<ssl::context> tls_;
  // Always present, except in a detached connection (its socket belonged to the loop).
  std::optional<StreamT> stream_;
  beast::flat_buffer buffer_;  // bytes read and not yet parsed
  RequestState req_;           // what the parser gathers; reused for every request
  std::optional<RequestParser> parser_;
  Response response_;
  std::string head_;              // the response's status line and headers
  bool request_started_ = false;  // a byte of the current request has arrived
  Clock::time_point deadline_;    // when the current request must have arrived
  bool head_checked_ = false;     // AdmitBody() has run for the current request
  // The current request's body was arriving and it counts in server_.in_flight
  // (CountBodyInFlight); OnRequest or an error answer takes the count over.
  bool body_in_flight_ = false;
  bool first_request_ = true;     // the connection's first request has not arrived yet
  // When the handshake and the whole first request must have arrived.
  Clock::time_point first_deadline_;
  bool continue_sent_ = false;  // "100 Continue" was sent for the current request
  // Close() was called; also read by client_gone on a handler's thread.
  std::atomic<bool> closed_{false};
  bool in_handler_ = false;      // the handler is running (Request::defer may be called)
  bool deferred_ = false;        // the current request's answer is deferred and not yet sent
  bool deferred_close_ = false;  // ... and the connection closes after it
  // The current request's deferred answer was sent or abandoned inside its handler.
  bool settled_in_handler_ = false;
  bool waiting_idle_ = false;    // a read for the next request, none of it buffered, is pending
  uint64_t requests_ = 0;        // requests read on this connection
  uint64_t requests_at_trim_ = 0;  // ... as TrimIfIdle() last saw them
};

// The address to listen on: a numeric IPv4 or IPv6 address (IPv6 possibly in brackets), or
// "localhost".
Result<net::ip::address> ListenAddress(const std::string& address) {
  std::string host = address == "localhost" ? "127.0.0.1" : address;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  beast::error_code ec;
  net::ip::address ip = net::ip::make_address(host, ec);
  if (ec) return InvalidArgumentError("listen address \"" + address + "\" is not an IP address");
  return ip;
}

// TLS 1.2 or newer with the server's certificate; a client certificate asked for (and
// perhaps required) when a client CA is given.
Status SetUpTls(const TlsServerOptions& options, ssl::context& tls) {
  beast::error_code ec;
  tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                      ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                  ec);
  if (!ec) tls.use_certificate_chain_file(options.cert_chain_path, ec);
  if (!ec) tls.use_private_key_file(options.key_path, ssl::context::pem, ec);
  if (ec) return FailedPreconditionError("TLS server certificate: " + ec.message());
  if (options.client_ca_path.empty()) return Status::Ok();
  tls.load_verify_file(options.client_ca_path, ec);
  if (ec) {
    return FailedPreconditionError("TLS client CA " + options.client_ca_path + ": " + ec.message());
  }
  STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(options.client_ca_path.c_str());
  if (names != nullptr) SSL_CTX_set_client_CA_list(tls.native_handle(), names);
  if (options.require_client_cert) {
    tls.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert, ec);
  } else {
    // Asked for, not required: every verification result is kept and judged per request,
    // so that a refusal carries a reason instead of a bare TLS alert.
    tls.set_verify_mode(ssl::verify_peer, ec);
    if (!ec) tls.set_verify_callback([](bool, ssl::verify_context&) { return true; }, ec);
  }
  if (ec) return InternalError("TLS verify setup: " + ec.message());
  return Status::Ok();
}

// Sessions can be resumed, from the server's cache or a ticket, for kTlsSessionLifetime
// after their full handshake: a client that reconnects skips the full handshake (most of
// TLS's cost on short connections). A resumed session carries the client certificate and
// its verification result from that handshake; a context made by ReloadTls() resumes none
// of the sessions of the one before (each has its own cache and ticket keys). With a client
// certificate asked for, OpenSSL resumes only sessions of a named context.
Status EnableSessionResumption(ssl::context& tls) {
  static constexpr unsigned char kSessionContext[] = "outpost-http";
  SSL_CTX* ctx = tls.native_handle();
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  SSL_CTX_set_timeout(ctx, static_cast<long>(kTlsSessionLifetime.count()));
  if (SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof(kSessionContext) - 1) != 1) {
    return InternalError("TLS session id context could not be set");
  }
  return Status::Ok();
}

// A TLS server context loaded from `options`' files. FailedPrecondition when one does not
// load.
Result<std::shared_ptr<ssl::context>> MakeTlsContext(const TlsServerOptions& options) {
  std::shared_ptr<ssl::context> tls;
  try {
    tls = std::make_shared<ssl::context>(ssl::context::tls_server);
  } catch (const std::exception& e) {
    return InternalError(std::string("TLS context: ") + e.what());
  }
  OUTPOST_RETURN_IF_ERROR(SetUpTls(options, *tls));
  OUTPOST_RETURN_IF_ERROR(EnableSessionResumption(*tls));
  return tls;
}

}  // namespace

struct Server::Impl {
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

  // Starts a connection on `target`'s thread, with the TLS context current when it starts.
  void Launch(Worker& target, Socket socket, AddressLease lease) {
    const Clock::time_point accepted = Clock::now();
    net::post(target.ioc,
              [this, &target, s = std::move(socket), l = std::move(lease), accepted]() mutable {
                if (state.options.tls) {
                  auto connection = std::make_shared<Connection<TlsStream>>(
                      std::move(s), state.TlsContext(), state, target, std::move(l), accepted);
                  connection->Start();
                } else {
                  auto connection = std::make_shared<Connection<TcpStream>>(
                      std::move(s), nullptr, state, target, std::move(l), accepted);
                  connection->Start();
                }
              });
  }

  // Counts an accepted socket against max_connections and max_connections_per_address and
  // starts its connection, or closes it at once past either. Accept thread only.
  void Admit(Worker& target, Socket socket) {
    beast::error_code ec;
    if (state.open_connections.fetch_add(1) >= state.options.max_connections) {
      state.open_connections.fetch_sub(1);
      socket.close(ec);
      return;
    }
    const tcp::endpoint peer = socket.remote_endpoint(ec);
    std::optional<AddressLease> lease =
        ec ? std::optional<AddressLease>() : state.per_address.Acquire(peer.address());
    if (!lease) {
      // Past the limit of its address (or gone already): never a connection.
      OUTPOST_LOG(kDebug) << "connection closed at once: its address has too many open"
                          << Field("peer", ec ? ec.message() : peer.address().to_string());
      state.open_connections.fetch_sub(1);
      socket.close(ec);
      return;
    }
    Launch(target, std::move(socket), std::move(*lease));
  }

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
      Admit(target, std::move(socket));
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

  // Opens, binds and listens on `endpoint`.
  Status Listen(const tcp::endpoint& endpoint, const std::string& where) {
    beast::error_code ec;
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (!ec) port = acceptor.local_endpoint(ec).port();
    if (ec) {
      return FailedPreconditionError("cannot listen on " + where + ": " + ec.message())
          .WithReason("listen_failed");
    }
    return Status::Ok();
  }
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { Stop(); }

uint16_t Server::port() const { return impl_->port; }

Status Server::ReloadTls(TlsServerOptions tls) {
  ServerState& state = impl_->state;
  if (!state.options.tls) {
    return FailedPreconditionError("the HTTP server runs plain HTTP: there is no TLS to reload");
  }
  OUTPOST_ASSIGN_OR_RETURN(std::shared_ptr<ssl::context> context, MakeTlsContext(tls));
  std::lock_guard<std::mutex> lock(state.tls_mu);
  // The context replaced here goes when the last connection that started with it does.
  state.tls.swap(context);
  return Status::Ok();
}

Result<std::unique_ptr<Server>> Server::Start(ServerOptions options, HandlerFn handler) {
  if (!handler) return InvalidArgumentError("the HTTP server needs a handler");
  if (options.threads < 0) return InvalidArgumentError("threads must be >= 0");
  int threads = options.threads;
  if (threads == 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  OUTPOST_ASSIGN_OR_RETURN(net::ip::address address, ListenAddress(options.address));
  auto impl = std::make_unique<Impl>();
  if (options.tls) {
    OUTPOST_ASSIGN_OR_RETURN(impl->state.tls, MakeTlsContext(*options.tls));
  }
  const tcp::endpoint endpoint(address, options.port);
  const std::string where = options.address + ":" + std::to_string(options.port);
  impl->state.per_address.limit = options.max_connections_per_address;
  impl->state.buffered.cap = options.max_buffered_bytes;
  impl->state.options = std::move(options);
  impl->state.handler = std::move(handler);
  OUTPOST_RETURN_IF_ERROR(impl->Listen(endpoint, where));

  for (int i = 0; i < threads; ++i) {
    auto worker = std::make_unique<Worker>();
    worker->work.emplace(worker->ioc.get_executor());
    Worker* w = worker.get();
    net::post(w->ioc, [w] { TrimIdle(*w); });
    worker->thread = std::thread([w] { Impl::RunLoop(w->ioc, "worker"); });
    impl->workers.push_back(std::move(worker));
  }
  Impl* raw = impl.get();
  net::post(raw->accept_ioc, [raw] { raw->Accept(); });
  raw->accept_thread = std::thread([raw] { Impl::RunLoop(raw->accept_ioc, "accept"); });
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

void Server::Stop() {
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
      w->trim.cancel();
      for (ConnectionBase* c = w->connections; c != nullptr; c = c->next()) c->Close();
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

  // 4. The connections still alive are those whose deferred responses are held by someone
  // past the drain: they let go of the server's parts, so that they may outlive it and a
  // response sent later is dropped.
  std::lock_guard<std::mutex> lifeline_lock(impl.state.lifeline->mu);
  impl.state.lifeline->alive = false;
  for (auto& worker : impl.workers) {
    ConnectionBase* c = worker->connections;
    while (c != nullptr) {
      ConnectionBase* next = c->next();
      c->Detach();
      c = next;
    }
  }
}

// Router.

namespace {

// How much of an unknown path a 404 or 405 message quotes (as serve/handler.cc does).
constexpr size_t kMaxQuotedPath = 200;

std::string QuotedPath(std::string_view path) {
  std::string out = "\"";
  out.append(path.substr(0, kMaxQuotedPath));
  if (path.size() > kMaxQuotedPath) out.append("...");
  out.push_back('"');
  return out;
}

}  // namespace

std::string_view Router::PathOf(std::string_view target) {
  size_t q = target.find('?');
  return q == std::string_view::npos ? target : target.substr(0, q);
}

void Router::Exact(std::string method, std::string path, HandlerFn handler, uint32_t access) {
  routes_.push_back(
      Route{std::move(method), std::move(path), false, access, std::move(handler)});
}

void Router::Prefix(std::string method, std::string prefix, HandlerFn handler, uint32_t access) {
  routes_.push_back(
      Route{std::move(method), std::move(prefix), true, access, std::move(handler)});
}

void Router::SetAuthorizer(AuthorizeFn authorizer) { authorizer_ = std::move(authorizer); }

const Router::Route* Router::BestPath(std::string_view path) const {
  const Route* best = nullptr;
  for (const Route& route : routes_) {
    const bool matches = route.prefix ? path.starts_with(route.path) : path == route.path;
    if (!matches) continue;
    if (best == nullptr || (best->prefix && !route.prefix) ||
        (best->prefix == route.prefix && route.path.size() > best->path.size())) {
      best = &route;
    }
  }
  return best;
}

const Router::Route* Router::ForMethod(const Route& best, std::string_view method) const {
  const Route* get = nullptr;
  for (const Route& route : routes_) {
    if (route.prefix != best.prefix || route.path != best.path) continue;
    if (route.method == "*" || route.method == method) return &route;
    if (get == nullptr && route.method == "GET") get = &route;
  }
  // HEAD is GET without the body (the server leaves the body out).
  return method == "HEAD" ? get : nullptr;
}

void Router::Handle(const Request& request, Response& response) const {
  const std::string_view path = PathOf(request.target);
  const Route* best_path = BestPath(path);
  if (best_path == nullptr) {
    SetErrorBody(404, "not_found", "no such path " + QuotedPath(path), response);
    return;
  }
  if (const Route* route = ForMethod(*best_path, request.method)) {
    if (authorizer_ && !authorizer_(request, route->access, response)) return;
    route->handler(request, response);
    return;
  }
  std::string allow;
  for (const Route& route : routes_) {
    if (route.prefix != best_path->prefix || route.path != best_path->path) continue;
    if (!allow.empty()) allow.append(", ");
    allow.append(route.method);
  }
  response.headers.emplace_back("Allow", std::move(allow));
  SetErrorBody(405, "method_not_allowed",
               "method " + request.method + " is not allowed on " + QuotedPath(path), response);
}

bool Router::AuthorizeHead(const Request& head, Response& refusal) const {
  if (!authorizer_) return true;
  const Route* best_path = BestPath(PathOf(head.target));
  if (best_path == nullptr) return true;
  const Route* route = ForMethod(*best_path, head.method);
  return route == nullptr || authorizer_(head, route->access, refusal);
}

HandlerFn Router::AsHandler() const {
  return [this](const Request& request, Response& response) { Handle(request, response); };
}

}  // namespace outpost::http
