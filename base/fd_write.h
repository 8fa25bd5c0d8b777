// WriteAllToFd: writes every byte of a buffer to an open file descriptor, going on after
// short writes and EINTR. For files a caller keeps open across many writes (a bundle's tar
// stream, retention's export files); a whole file at once is base/file.h's
// WriteFileAtomically.
#ifndef OUTPOST_BASE_FD_WRITE_H_
#define OUTPOST_BASE_FD_WRITE_H_

#include <string>
#include <string_view>

#include "base/status.h"

namespace outpost {

// The first failing write's errno as a Status naming `what` (the file, for people).
Status WriteAllToFd(int fd, std::string_view data, const std::string& what);

}  // namespace outpost

#endif  // OUTPOST_BASE_FD_WRITE_H_
