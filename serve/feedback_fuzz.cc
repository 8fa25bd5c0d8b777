// Fuzz target: ParseFeedback on arbitrary bytes (POST /v1/feedback bodies come from any
// client on the site's network) must return a Status and never crash, hang or leak; an
// accepted body keeps its limits and yields a payload.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "serve/edge_api.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  outpost::serve::FeedbackLimits limits;
  auto feedback = outpost::serve::ParseFeedback(body, limits);
  if (feedback.ok()) {
    if (feedback->request_id.empty() || feedback->request_id.size() > limits.max_request_id_bytes ||
        feedback->note.size() > limits.max_note_bytes ||
        outpost::serve::FeedbackPayload(*feedback, 0, {}).empty()) {
      std::abort();
    }
  }
  return 0;
}
