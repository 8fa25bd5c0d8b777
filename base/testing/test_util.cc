#include "base/testing/test_util.h"

#include <sys/socket.h>

#include <cstdlib>

#include "base/file.h"

namespace outpost::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/outpost-test-XXXXXX";
  char* made = ::mkdtemp(tmpl.data());
  if (made == nullptr) {
    ADD_FAILURE() << "mkdtemp failed for " << tmpl;
  }
  path_ = tmpl;
}

TempDir::~TempDir() { RemoveTree(path_); }

std::string TempDir::File(const std::string& name) const { return path_ + "/" + name; }

std::string SourceDir() {
  const char* dir = std::getenv("OUTPOST_SOURCE_DIR");
  return dir && *dir ? dir : OUTPOST_TEST_SOURCE_DIR;
}

std::string BinaryDir() {
  const char* dir = std::getenv("OUTPOST_BINARY_DIR");
  return dir && *dir ? dir : OUTPOST_TEST_BINARY_DIR;
}

void RemoveTree(const std::string& path) { outpost::RemoveTree(path).IgnoreError(); }

std::string ReadHttpResponse(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    const size_t head = out.find("\r\n\r\n");
    if (head != std::string::npos) {
      const size_t at = out.find("Content-Length: ");
      if (at != std::string::npos &&
          out.size() >= head + 4 + std::strtoul(out.c_str() + at + 16, nullptr, 10)) {
        return out;
      }
    }
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace outpost::testing
