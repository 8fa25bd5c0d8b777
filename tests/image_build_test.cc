// `outpost image build` end to end on the built `outpost` binary (image/FORMAT.md): two
// builds, one as a layout folder and one as a tar, give one manifest digest; the config runs
// `outpost edge` as 65532:65532 with /var/lib/outpost as its volume; the layer holds the
// stripped binary (no .debug_info), every library the loader would load, the users, the CA
// bundle and the SBOM, with normalised owners; skopeo, written by others, reads both forms.
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "base/file.h"
#include "base/json/json.h"
#include "base/subprocess.h"
#include "base/testing/test_util.h"
#include "image/elf.h"
#include "image/testing/tar_read.h"

namespace outpost {
namespace {

using image::testing::ReadTar;
using image::testing::TarItem;

std::string Outpost() { return JoinPath(testing::BinaryDir(), "outpost"); }

// The value of the line "<key> <value>" that `outpost image build` printed.
std::string Printed(const std::string& out, const std::string& key) {
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(key + " ", 0) == 0) return line.substr(key.size() + 1);
  }
  return "";
}

// The files of an OCI layout, from its folder or from its tar.
std::map<std::string, std::string> LayoutFiles(const std::string& out) {
  std::map<std::string, std::string> files;
  if (out.size() > 4 && out.substr(out.size() - 4) == ".tar") {
    Result<std::string> archive = ReadFile(out, uint64_t{1} << 31);
    EXPECT_TRUE(archive.ok()) << archive.status().ToString();
    Result<std::vector<TarItem>> items = ReadTar(archive.ok() ? *archive : "");
    EXPECT_TRUE(items.ok()) << items.status().ToString();
    for (const TarItem& item : items.ok() ? *items : std::vector<TarItem>{}) {
      if (item.type == '0') files[item.name] = item.data;
    }
    return files;
  }
  for (const char* name : {"oci-layout", "index.json"}) {
    files[name] = ReadFile(JoinPath(out, name)).value_or("");
  }
  Result<std::vector<std::string>> blobs = ListDirectory(JoinPath(out, "blobs/sha256"));
  EXPECT_TRUE(blobs.ok());
  for (const std::string& name : blobs.ok() ? *blobs : std::vector<std::string>{}) {
    files["blobs/sha256/" + name] =
        ReadFile(JoinPath(out, "blobs/sha256/" + name), uint64_t{1} << 31).value_or("");
  }
  return files;
}

std::string Blob(const std::map<std::string, std::string>& files, std::string_view digest) {
  auto it = files.find("blobs/sha256/" + std::string(digest.substr(7)));
  return it == files.end() ? "" : it->second;
}

class ImageBuildTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    for (const char* out : {"a/image", "b/image.tar"}) {
      RunResult run = RunProgram({Outpost(), "image", "build", "--binary", Outpost(), "--out",
                                  dir_->File(out), "--source-date-epoch", "0"});
      runs_.push_back(run);
    }
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  static testing::TempDir* dir_;
  static std::vector<RunResult> runs_;
};
testing::TempDir* ImageBuildTest::dir_ = nullptr;
std::vector<RunResult> ImageBuildTest::runs_;

TEST_F(ImageBuildTest, TwoBuildsOfOneBinaryGiveOneManifestDigest) {
  ASSERT_EQ(runs_.size(), 2u);
  ASSERT_EQ(runs_[0].exit_code, 0) << runs_[0].err;
  ASSERT_EQ(runs_[1].exit_code, 0) << runs_[1].err;
  std::string digest = Printed(runs_[0].out, "manifest");
  EXPECT_EQ(digest.rfind("sha256:", 0), 0u) << runs_[0].out;
  EXPECT_EQ(digest, Printed(runs_[1].out, "manifest"));
  EXPECT_EQ(Printed(runs_[0].out, "layer"), Printed(runs_[1].out, "layer"));
  std::map<std::string, std::string> folder = LayoutFiles(dir_->File("a/image"));
  std::map<std::string, std::string> archive = LayoutFiles(dir_->File("b/image.tar"));
  EXPECT_EQ(folder, archive);
  EXPECT_NE(folder["index.json"].find(digest), std::string::npos) << folder["index.json"];
  EXPECT_EQ(folder["oci-layout"], R"({"imageLayoutVersion":"1.0.0"})");
  // The compressed size is reported; the aim is 60 MiB (issue 16).
  std::cout << "[ image ] layer " << Printed(runs_[0].out, "layer") << "\n";
  // Debug information went beside the output, not into the image.
  OUTPOST_ASSERT_OK_AND_ASSIGN(image::ElfInfo debug,
                               image::ReadElfFile(dir_->File("a/outpost.debug")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(image::ElfInfo original, image::ReadElfFile(Outpost()));
  bool had_debug =
      std::count(original.section_names.begin(), original.section_names.end(), ".debug_info") > 0;
  if (had_debug) {
    EXPECT_EQ(std::count(debug.section_names.begin(), debug.section_names.end(), ".debug_info"), 1);
  }
  // A third build into an existing path is refused and leaves it as it was.
  RunResult again = RunProgram(
      {Outpost(), "image", "build", "--binary", Outpost(), "--out", dir_->File("a/image")});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("exists"), std::string::npos) << again.err;
  EXPECT_EQ(LayoutFiles(dir_->File("a/image")), folder);
}

TEST_F(ImageBuildTest, ConfigRunsOutpostEdgeAsTheUnprivilegedUserWithTheDataVolume) {
  ASSERT_EQ(runs_[0].exit_code, 0) << runs_[0].err;
  std::map<std::string, std::string> files = LayoutFiles(dir_->File("a/image"));
  json::Parser index_parser, manifest_parser, config_parser;
  OUTPOST_ASSERT_OK_AND_ASSIGN(json::Value index, index_parser.Parse(files["index.json"]));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string_view manifest_digest,
                               index["manifests"].At(0)["digest"].GetString());
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      std::string_view ref,
      index["manifests"].At(0)["annotations"]["org.opencontainers.image.ref.name"].GetString());
  EXPECT_EQ(ref.rfind("outpost:", 0), 0u);
  std::string manifest_text = Blob(files, manifest_digest);
  OUTPOST_ASSERT_OK_AND_ASSIGN(json::Value manifest, manifest_parser.Parse(manifest_text));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string_view config_digest,
                               manifest["config"]["digest"].GetString());
  std::string config_text = Blob(files, config_digest);
  OUTPOST_ASSERT_OK_AND_ASSIGN(json::Value config, config_parser.Parse(config_text));
  json::Value c = config["config"];
  EXPECT_EQ(c["User"].GetString().value(), "65532:65532");
  ASSERT_EQ(c["Entrypoint"].size(), 2u);
  EXPECT_EQ(c["Entrypoint"].At(0).GetString().value(), "/usr/bin/outpost");
  EXPECT_EQ(c["Entrypoint"].At(1).GetString().value(), "edge");
  EXPECT_EQ(c["WorkingDir"].GetString().value(), "/var/lib/outpost");
  EXPECT_TRUE(c["Volumes"]["/var/lib/outpost"].is_object());
  EXPECT_EQ(c["Env"].At(0).GetString().value().rfind("PATH=", 0), 0u);
  EXPECT_EQ(config["created"].GetString().value(), "1970-01-01T00:00:00Z");
  std::string_view packages = c["Labels"]["outpost.packages"].GetString().value();
  EXPECT_NE(packages.find("libc6="), std::string_view::npos) << packages;
  EXPECT_EQ(config["rootfs"]["diff_ids"].size(), 1u);
}

TEST_F(ImageBuildTest, LayerHoldsTheStrippedBinaryItsLibrariesAndNormalisedOwners) {
  ASSERT_EQ(runs_[0].exit_code, 0) << runs_[0].err;
  std::string layer_digest = Printed(runs_[0].out, "layer");
  layer_digest = layer_digest.substr(0, layer_digest.find(' '));
  std::string gz = JoinPath(dir_->File("a/image"), "blobs/sha256/" + layer_digest.substr(7));
  std::string tar = dir_->File("layer.tar");
  RunResult gunzip = RunProgram({"/bin/sh", "-c", "gzip -dc < " + gz + " > " + tar});
  ASSERT_EQ(gunzip.exit_code, 0) << gunzip.err;
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string bytes, ReadFile(tar, uint64_t{1} << 31));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::vector<TarItem> items, ReadTar(bytes));
  std::map<std::string, const TarItem*> by_name;
  std::vector<std::string> names;
  for (const TarItem& item : items) {
    by_name[item.name] = &item;
    // Sorted by path: a folder's without its trailing "/" (image/FORMAT.md section 5).
    names.push_back(item.name.back() == '/' ? item.name.substr(0, item.name.size() - 1)
                                            : item.name);
    EXPECT_EQ(item.mtime, 0u) << item.name;
    bool data_dir = item.name == "var/lib/outpost/";
    EXPECT_EQ(item.uid, data_dir ? 65532u : 0u) << item.name;
    EXPECT_EQ(item.gid, data_dir ? 65532u : 0u) << item.name;
  }
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  ASSERT_TRUE(by_name.count("usr/bin/outpost"));
  EXPECT_EQ(by_name["usr/bin/outpost"]->mode, 0755u);
  ASSERT_TRUE(by_name.count("var/lib/outpost/"));
  ASSERT_TRUE(by_name.count("etc/ssl/certs/ca-certificates.crt"));
  ASSERT_TRUE(by_name.count("usr/share/outpost/sbom.json"));
  EXPECT_NE(by_name["usr/share/outpost/sbom.json"]->data.find("\"name\":\"libc6\""),
            std::string::npos);
  EXPECT_NE(by_name["etc/passwd"]->data.find("outpost:x:65532:65532:"), std::string::npos);
  EXPECT_NE(by_name["etc/group"]->data.find("outpost:x:65532:"), std::string::npos);
  ASSERT_TRUE(by_name.count("lib"));
  EXPECT_EQ(by_name["lib"]->linkname, "usr/lib");

  // The shipped binary has no debug sections.
  std::string shipped = dir_->File("outpost.shipped");
  ASSERT_TRUE(WriteFileAtomically(shipped, by_name["usr/bin/outpost"]->data, 0755).ok());
  OUTPOST_ASSERT_OK_AND_ASSIGN(image::ElfInfo elf, image::ReadElfFile(shipped));
  EXPECT_EQ(std::count(elf.section_names.begin(), elf.section_names.end(), ".debug_info"), 0);
  EXPECT_EQ(std::count(elf.section_names.begin(), elf.section_names.end(), ".text"), 1);

  // Every library the loader loads for the binary is in the layer, under /usr.
  std::string triplet = image::MultiarchTriplet(elf.machine).value();
  RunResult ldd = RunProgram({"/bin/sh", "-c", "ldd " + Outpost()});
  ASSERT_EQ(ldd.exit_code, 0) << ldd.err;
  std::istringstream lines(ldd.out);
  int libraries = 0;
  for (std::string line; std::getline(lines, line);) {
    size_t arrow = line.find(" => ");
    if (arrow == std::string::npos) continue;
    size_t start = line.find_first_not_of(" \t");
    std::string name = line.substr(start, arrow - start);
    EXPECT_TRUE(by_name.count("usr/lib/" + triplet + "/" + name)) << name;
    ++libraries;
  }
  EXPECT_GT(libraries, 10);
  // The loader, where the binary names it, with /lib and /lib64 under /usr.
  std::string loader =
      elf.interpreter.rfind("/lib", 0) == 0 ? "usr" + elf.interpreter : elf.interpreter.substr(1);
  ASSERT_TRUE(by_name.count(loader)) << elf.interpreter;
}

TEST_F(ImageBuildTest, SkopeoReadsTheFolderAndTheArchive) {
  if (!PathExists("/usr/bin/skopeo")) GTEST_SKIP() << "no skopeo";
  ASSERT_EQ(runs_[0].exit_code, 0) << runs_[0].err;
  std::string digest = Printed(runs_[0].out, "manifest");
  for (const std::string& ref :
       {"oci:" + dir_->File("a/image"), "oci-archive:" + dir_->File("b/image.tar")}) {
    RunResult run = RunProgram({"/usr/bin/skopeo", "inspect", ref});
    ASSERT_EQ(run.exit_code, 0) << ref << ": " << run.err;
    EXPECT_NE(run.out.find(digest), std::string::npos) << run.out;
    EXPECT_NE(run.out.find("\"outpost.packages\""), std::string::npos) << run.out;
  }
}

}  // namespace
}  // namespace outpost
