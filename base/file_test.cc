#include "base/file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/testing/test_util.h"

namespace outpost {
namespace {

using testing::TempDir;

TEST(File, AtomicWriteReplacesContentsAndLeavesNoTemporaries) {
  TempDir dir;
  std::string path = dir.File("model.json");
  OUTPOST_ASSERT_OK(WriteFileAtomically(path, "first"));
  OUTPOST_ASSERT_OK(WriteFileAtomically(path, "second, longer"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string got, ReadFile(path));
  EXPECT_EQ(got, "second, longer");
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto names, ListDirectory(dir.path()));
  EXPECT_EQ(names, std::vector<std::string>{"model.json"});
}

TEST(File, AtomicWriteAppliesMode) {
  TempDir dir;
  std::string path = dir.File("key");
  OUTPOST_ASSERT_OK(WriteFileAtomically(path, "secret", 0600));
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(File, MakeDirectoriesAppliesModeAndTightenClearsOnlyTheBitsOutsideIt) {
  TempDir dir;
  const mode_t umask_was = ::umask(022);
  const std::string folder = dir.File("data/site");
  OUTPOST_ASSERT_OK(MakeDirectories(folder, 0700));
  struct stat st;
  ASSERT_EQ(::stat(folder.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  const std::string file = dir.File("outbox.db");
  OUTPOST_ASSERT_OK(WriteFileAtomically(file, "x", 0644));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::optional<int> had, TightenFileMode(file, 0600));
  EXPECT_EQ(had, std::optional<int>(0644));
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(had, TightenFileMode(file, 0600));
  EXPECT_EQ(had, std::nullopt);  // already the owner's alone
  ASSERT_EQ(::chmod(file.c_str(), 0444), 0);
  OUTPOST_ASSERT_OK_AND_ASSIGN(had, TightenFileMode(file, 0600));
  EXPECT_EQ(had, std::optional<int>(0444));
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0400u);  // read-only stays read-only
  OUTPOST_ASSERT_OK_AND_ASSIGN(had, TightenFileMode(dir.File("absent"), 0600));
  EXPECT_EQ(had, std::nullopt);
  ::umask(umask_was);
}

TEST(File, AtomicWriteIntoMissingFolderFailsWithNotFound) {
  TempDir dir;
  Status s = WriteFileAtomically(dir.File("missing/x"), "data");
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.ToString();
}

TEST(File, ReadRespectsSizeLimit) {
  TempDir dir;
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("big"), std::string(100, 'x')));
  EXPECT_EQ(ReadFile(dir.File("big"), 99).status().code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(ReadFile(dir.File("big"), 100).ok());
  EXPECT_EQ(ReadFile(dir.File("none")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ReadFile(dir.path()).status().code(), StatusCode::kInvalidArgument);
}

TEST(File, MakeDirectoriesCreatesParentsAndIsIdempotent) {
  TempDir dir;
  std::string deep = dir.File("a/b/c");
  OUTPOST_ASSERT_OK(MakeDirectories(deep));
  OUTPOST_ASSERT_OK(MakeDirectories(deep));
  EXPECT_TRUE(IsDirectory(deep));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("f"), "x"));
  EXPECT_EQ(MakeDirectories(dir.File("f")).code(), StatusCode::kFailedPrecondition);
}

TEST(File, RemoveTreeRemovesAFolderAndLeavesWhatALinkPointsAt) {
  TempDir dir;
  std::string kept = dir.File("kept");
  OUTPOST_ASSERT_OK(MakeDirectories(kept));
  OUTPOST_ASSERT_OK(WriteFileAtomically(JoinPath(kept, "f"), "x"));
  std::string tree = dir.File("tree");
  OUTPOST_ASSERT_OK(MakeDirectories(JoinPath(tree, "a/b")));
  OUTPOST_ASSERT_OK(WriteFileAtomically(JoinPath(tree, "a/b/f"), "x"));
  ASSERT_EQ(::symlink(kept.c_str(), JoinPath(tree, "link").c_str()), 0);
  OUTPOST_ASSERT_OK(RemoveTree(tree));
  EXPECT_FALSE(PathExists(tree));
  EXPECT_TRUE(PathExists(JoinPath(kept, "f")));
  // A missing path is already removed; a plain file is removed too.
  OUTPOST_EXPECT_OK(RemoveTree(tree));
  OUTPOST_ASSERT_OK(RemoveTree(JoinPath(kept, "f")));
  EXPECT_FALSE(PathExists(JoinPath(kept, "f")));
}

TEST(File, JoinPathAddsOneSlash) {
  EXPECT_EQ(JoinPath("a", "b"), "a/b");
  EXPECT_EQ(JoinPath("a/", "b"), "a/b");
  EXPECT_EQ(JoinPath("", "b"), "b");
}

}  // namespace
}  // namespace outpost
