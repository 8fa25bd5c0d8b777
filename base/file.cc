#include "base/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace outpost {
namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now, reporting the error close() gives (it can report a failed write-back).
  int Close() {
    int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

Status ErrnoToStatus(int err, std::string_view what, std::string_view path) {
  std::string message = std::string(what) + " \"" + std::string(path) + "\": " + std::strerror(err);
  switch (err) {
    case ENOENT: return NotFoundError(message);
    case EACCES:
    case EPERM: return PermissionDeniedError(message);
    case ENOSPC:
    case EDQUOT: return ResourceExhaustedError(message);
    default: return UnavailableError(message);
  }
}

Result<std::string> ReadFile(const std::string& path, uint64_t max_bytes) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoToStatus(errno, "cannot open", path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoToStatus(errno, "cannot stat", path);
  if (S_ISDIR(st.st_mode)) return InvalidArgumentError("\"" + path + "\" is a folder, not a file");
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return ResourceExhaustedError("\"" + path + "\" is " + std::to_string(st.st_size) +
                                  " bytes, over the limit of " + std::to_string(max_bytes));
  }
  std::string out;
  out.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, "cannot read", path);
    }
    if (n == 0) break;
    if (out.size() + static_cast<uint64_t>(n) > max_bytes) {
      return ResourceExhaustedError("\"" + path + "\" grew over the limit of " +
                                    std::to_string(max_bytes) + " bytes while being read");
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Status SyncDirectory(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoToStatus(errno, "cannot open folder", dir);
  if (::fsync(fd.get()) != 0) return ErrnoToStatus(errno, "cannot fsync folder", dir);
  return Status();
}

Status WriteFileAtomically(const std::string& path, std::string_view contents, int mode) {
  static std::atomic<uint64_t> counter{0};
  std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." +
                    std::to_string(counter.fetch_add(1));
  Status status = [&]() -> Status {
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
    if (fd.get() < 0) return ErrnoToStatus(errno, "cannot create", tmp);
    size_t done = 0;
    while (done < contents.size()) {
      ssize_t n = ::write(fd.get(), contents.data() + done, contents.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoToStatus(errno, "cannot write", tmp);
      }
      done += static_cast<size_t>(n);
    }
    if (::fsync(fd.get()) != 0) return ErrnoToStatus(errno, "cannot fsync", tmp);
    if (fd.Close() != 0) return ErrnoToStatus(errno, "cannot close", tmp);
    if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoToStatus(errno, "cannot rename to", path);
    return SyncDirectory(DirName(path));
  }();
  if (!status.ok()) ::unlink(tmp.c_str());
  return status;
}

Status MakeDirectories(const std::string& dir, int mode) {
  if (dir.empty()) return Status();
  size_t pos = 0;
  while (true) {
    pos = dir.find('/', pos + 1);
    std::string part = dir.substr(0, pos);
    if (!part.empty() && ::mkdir(part.c_str(), static_cast<mode_t>(mode)) != 0 && errno != EEXIST) {
      return ErrnoToStatus(errno, "cannot create folder", part);
    }
    if (pos == std::string::npos) break;
  }
  if (!IsDirectory(dir)) return FailedPreconditionError("\"" + dir + "\" exists and is not a folder");
  return Status();
}

Status RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return UnavailableError("removing " + path + ": " + ec.message());
  return Status();
}

Result<std::vector<std::string>> ListDirectory(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return ErrnoToStatus(errno, "cannot list folder", dir);
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view name(e->d_name);
    if (name == "." || name == "..") continue;
    names.emplace_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

Result<std::optional<int>> TightenFileMode(const std::string& path, int mode) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::optional<int>();
    return ErrnoToStatus(errno, "cannot stat", path);
  }
  const int had = static_cast<int>(st.st_mode & 07777);
  if ((had & ~mode) == 0) return std::optional<int>();
  if (::chmod(path.c_str(), static_cast<mode_t>(had & mode)) != 0) {
    return ErrnoToStatus(errno, "cannot chmod", path);
  }
  return std::optional<int>(had);
}

bool PathExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string JoinPath(std::string_view a, std::string_view b) {
  if (a.empty()) return std::string(b);
  std::string out(a);
  if (out.back() != '/') out += '/';
  out += b;
  return out;
}

}  // namespace outpost
