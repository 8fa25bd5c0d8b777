#include "base/fd_write.h"

#include <unistd.h>

#include <cerrno>

#include "base/file.h"

namespace outpost {

Status WriteAllToFd(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, "writing", what);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

}  // namespace outpost
