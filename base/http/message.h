// The request and the response that every Outpost listener hands to its handlers: the scoring
// server's REST API (serve/handler.h), the edge's own routes, and the hub's site and operator
// listeners. Plain structs with no sockets, so that every handler is tested and fuzzed
// without a network; base/http/server.h fills them from the wire.
//
// A request also carries what the listener established about its peer (TLS, and the client
// certificate when one was asked for) and, once an application has authenticated it, who the
// caller is. Neither is ever read from the payload.
//
// Thread-compatible: a handler reads its request and fills its response on one thread (a
// deferred response, on whichever thread sends it). DeferredResponse is thread-safe in the
// sense that matters: it may be sent or destroyed on any thread.
#ifndef OUTPOST_BASE_HTTP_MESSAGE_H_
#define OUTPOST_BASE_HTTP_MESSAGE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace outpost::http {

// Bytes of spare capacity a listener leaves past the end of every request body, so that a
// JSON parser that reads a block at a time (base/json/json.h's kPadding; serve/infer_json.h's
// kJsonPadding) may parse the body in place.
inline constexpr size_t kBodyPadding = 64;

// A string that a request owns (its method, its target), made implicitly from a literal, a
// std::string (moved when it can be) or a std::string_view (copied), so that listeners, tests
// and fuzz targets fill requests from whichever they hold. It is a std::string in every other
// respect; a listener reuses its capacity from one request to the next.
class RequestText : public std::string {
 public:
  RequestText() = default;
  RequestText(const char* text) : std::string(text) {}
  RequestText(std::string text) : std::string(std::move(text)) {}
  RequestText(std::string_view text) : std::string(text) {}
  using std::string::operator=;
};

// One request header. Both views point into the listener's buffer (or, in tests, into
// literals) and stay valid until the handler returns.
struct HeaderField {
  std::string_view name;
  std::string_view value;
};

// What the TLS layer established about a connection's peer.
struct PeerInfo {
  bool tls = false;             // the connection is TLS
  bool cert_presented = false;  // the client sent a certificate (one was asked for)
  bool cert_verified = false;   // ... and it verified against the listener's client CA
  std::string verify_error{};   // OpenSSL's reason when presented and not verified
  std::string cert_der{};       // the client's certificate (DER), when presented
};

// Who sent a request, as an application established it from a credential alone (a client
// certificate, a bearer token), never from the payload. The listener leaves it empty.
struct Caller {
  enum class Kind {
    kNone,
    kSite,       // the hub: an enrolled site's certificate
    kOperator,   // the hub: an operator's token
    kClient,     // the edge: an entry of its credentials file (base/auth/auth.h)
    kAnonymous,  // the edge without credentials (loopback, or the explicit insecure opt-in)
  };
  Kind kind = Kind::kNone;
  std::string tenant{};
  std::string site_id{};     // kSite only
  std::string credential{};  // kClient: the entry's name
  uint32_t roles = 0;        // kClient, kAnonymous: base/auth's role bits
};

// A response a handler has deferred: the listener sends the Response the handler was given,
// as it is at that moment, when Send() is called (exactly once, from any thread). The
// Request and Response the handler was given stay valid until then. Destroying it unsent
// sends 500 (reason internal, "the request was abandoned"), so no connection hangs.
// Move-only.
class DeferredResponse {
 public:
  // The listener's side, told exactly once whether the response was sent (true) or
  // abandoned (false); called on whichever thread calls Send() or destroys the
  // DeferredResponse, and handed the DeferredResponse's ownership of it (`self`), so that
  // the listener decides on which thread the last reference goes.
  class Completion {
   public:
    virtual void Complete(std::shared_ptr<Completion> self, bool sent) = 0;

   protected:
    ~Completion() = default;
  };

  DeferredResponse() = default;  // empty: Send() does nothing
  // What a listener's Request::defer returns: `completion` is told the outcome.
  explicit DeferredResponse(std::shared_ptr<Completion> completion)
      : completion_(std::move(completion)) {}
  DeferredResponse(DeferredResponse&& other) noexcept = default;
  // Abandons (as the destructor) the response this one held.
  DeferredResponse& operator=(DeferredResponse&& other) noexcept;
  DeferredResponse(const DeferredResponse&) = delete;
  DeferredResponse& operator=(const DeferredResponse&) = delete;
  ~DeferredResponse();

  explicit operator bool() const { return completion_ != nullptr; }  // holds a response to send

  // Sends the response; empty afterwards.
  void Send();

 private:
  // Tells the completion `sent` and lets go of it.
  void Finish(bool sent);

  std::shared_ptr<Completion> completion_;
};

// One HTTP request as a listener read it.
struct Request {
  RequestText method{};  // "GET", "POST", ... as sent
  RequestText target{};  // "/v2/models/iris/infer?x=1", as sent
  std::vector<HeaderField> headers{};
  // The body. A listener leaves kBodyPadding bytes of capacity past its size, so that a JSON
  // body is parsed in place instead of being copied.
  std::string body{};
  // True once the client is gone (its connection closed); empty = never. A request that
  // waits in a queue asks it and is not run when it is.
  std::function<bool()> client_gone{};
  // What the listener established about the connection.
  PeerInfo peer{};
  // Who the application has found the caller to be; the listener leaves it kNone. Mutable:
  // a Router's authorizer sets it on the request it routes (which handlers see as const),
  // before the route's handler runs; nothing else writes it after the listener.
  mutable Caller caller{};
  // Set by the listener while the handler runs (empty elsewhere, e.g. a test calling a
  // handler directly): calling it makes the answer deferred. The listener then sends
  // nothing when the handler returns, reads no further request of the connection, and
  // sends the response when the returned DeferredResponse's Send() is called. At most one
  // call per request (a second returns an empty DeferredResponse). A handler that does not
  // call it answers synchronously as before.
  std::function<DeferredResponse()> defer{};

  // The value of the first header called `name` (compared without case); empty when there
  // is none.
  std::string_view Header(std::string_view name) const;
};

struct Response {
  int status = 200;
  // Points to static storage (a string literal).
  std::string_view content_type = "application/json";
  std::string body{};
  // Extra headers, e.g. Allow on a 405. Content-Type, Content-Length and Connection are the
  // listener's.
  std::vector<std::pair<std::string, std::string>> headers{};

  // Resets to an empty 200 response, keeping the body's capacity.
  void Clear() {
    status = 200;
    content_type = "application/json";
    body.clear();
    headers.clear();
  }
};

// Whether two header names (or tokens) are equal without regard to ASCII case.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// Makes `response` an error answer: `status`, Content-Type application/json, and the body
// every Outpost listener answers errors with, {"error": <message>, "reason": <reason>}.
// Extra headers already set are kept.
void SetErrorBody(int status, std::string_view reason, std::string_view message,
                  Response& response);

}  // namespace outpost::http

#endif  // OUTPOST_BASE_HTTP_MESSAGE_H_
