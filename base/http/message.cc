// The request and response structs' helpers (message.h).
#include "base/http/message.h"

#include "base/status_mapping.h"

namespace outpost::http {

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

std::string_view Request::Header(std::string_view name) const {
  for (const HeaderField& h : headers) {
    if (EqualsIgnoreCase(h.name, name)) return h.value;
  }
  return {};
}

DeferredResponse& DeferredResponse::operator=(DeferredResponse&& other) noexcept {
  if (this != &other) {
    Finish(/*sent=*/false);
    completion_ = std::move(other.completion_);
  }
  return *this;
}

DeferredResponse::~DeferredResponse() { Finish(/*sent=*/false); }

void DeferredResponse::Send() { Finish(/*sent=*/true); }

void DeferredResponse::Finish(bool sent) {
  if (completion_ == nullptr) return;
  Completion* completion = completion_.get();
  completion->Complete(std::move(completion_), sent);
}

void SetErrorBody(int status, std::string_view reason, std::string_view message,
                  Response& response) {
  response.status = status;
  response.content_type = "application/json";
  response.body = ErrorBody(reason, message);
}

}  // namespace outpost::http
