#include "image/sink.h"

#include <unistd.h>

#include <cerrno>

#include "base/coding.h"
#include "base/file.h"

namespace outpost::image {

Status FdSink::Write(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, "writing", what_);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

std::string HashingSink::Digest() { return "sha256:" + HexEncode(hasher_.Finish()); }

}  // namespace outpost::image
