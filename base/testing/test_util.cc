#include "base/testing/test_util.h"

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

}  // namespace outpost::testing
