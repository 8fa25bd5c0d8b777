// Helpers shared by Outpost's tests: a temporary folder, Status matchers, the source tree.
#ifndef OUTPOST_BASE_TESTING_TEST_UTIL_H_
#define OUTPOST_BASE_TESTING_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <string>

#include "base/status.h"

namespace outpost::testing {

// A fresh folder under $TMPDIR (or /tmp), removed with its contents when destroyed.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string File(const std::string& name) const;

 private:
  std::string path_;
};

// The project's source folder (OUTPOST_SOURCE_DIR, else the one this build was made from).
std::string SourceDir();
// The build folder (OUTPOST_BINARY_DIR, else this build's), where the `outpost` binary is.
std::string BinaryDir();

// Removes a folder tree with outpost::RemoveTree(); errors are ignored (tests clean up
// best-effort).
void RemoveTree(const std::string& path);

// Reads one HTTP response from socket `fd`: its head and Content-Length bytes of body; what
// has arrived when the peer closes first.
std::string ReadHttpResponse(int fd);

}  // namespace outpost::testing

#define OUTPOST_ASSERT_OK(expr)                                          \
  do {                                                                   \
    ::outpost::Status s_ = ::outpost::internal::AsStatus((expr));        \
    ASSERT_TRUE(s_.ok()) << #expr << " -> " << s_.ToString();            \
  } while (0)
#define OUTPOST_EXPECT_OK(expr)                                          \
  do {                                                                   \
    ::outpost::Status s_ = ::outpost::internal::AsStatus((expr));        \
    EXPECT_TRUE(s_.ok()) << #expr << " -> " << s_.ToString();            \
  } while (0)

// OUTPOST_ASSERT_OK_AND_ASSIGN(auto x, MakeX()): fails the test on error.
#define OUTPOST_ASSERT_OK_AND_ASSIGN(lhs, rexpr)                                        \
  OUTPOST_ASSERT_OK_AND_ASSIGN_IMPL_(OUTPOST_CONCAT_(outpost_test_result_, __LINE__), \
                                     lhs, rexpr)
#define OUTPOST_ASSERT_OK_AND_ASSIGN_IMPL_(result, lhs, rexpr)           \
  auto result = (rexpr);                                                 \
  ASSERT_TRUE(result.ok()) << #rexpr << " -> " << result.status().ToString(); \
  lhs = std::move(result).value()

#endif  // OUTPOST_BASE_TESTING_TEST_UTIL_H_
