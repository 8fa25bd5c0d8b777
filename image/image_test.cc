// Unit tests of the runtime image's parts (image/FORMAT.md): the deterministic layer writer,
// the gzip stream, the ELF reader and library resolver on the machine's own /bin/ls, and the
// package list asked of dpkg.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "base/file.h"
#include "base/subprocess.h"
#include "base/testing/test_util.h"
#include "base/ustar.h"
#include "image/deps.h"
#include "image/elf.h"
#include "image/gzip.h"
#include "image/sbom.h"
#include "image/sink.h"
#include "image/tar.h"
#include "image/testing/tar_read.h"

namespace outpost::image {
namespace {

using testing::ReadTar;
using testing::TarItem;

std::string Archive(const LayerBuilder& layer) {
  std::string out;
  StringSink sink(out);
  Status s = layer.WriteTo(sink);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

TEST(LayerBuilder, SameEntriesInAnyOrderGiveTheSameBytesSortedWithParents) {
  outpost::testing::TempDir dir;
  std::string host = dir.File("tool");
  ASSERT_TRUE(WriteFileAtomically(host, "#!/bin/true\n", 0700).ok());
  LayerBuilder a(1700000000), b(1700000000);
  OUTPOST_ASSERT_OK(a.AddFileContents("etc/passwd", "root:x:0:0::/:/sbin/nologin\n"));
  OUTPOST_ASSERT_OK(a.AddHostFile("/usr/bin/tool", host));
  OUTPOST_ASSERT_OK(a.AddSymlink("lib", "usr/lib"));
  OUTPOST_ASSERT_OK(a.AddDirectory("var/lib/outpost", 0755, 65532, 65532));
  OUTPOST_ASSERT_OK(b.AddDirectory("/var/lib/outpost", 0755, 65532, 65532));
  OUTPOST_ASSERT_OK(b.AddSymlink("/lib", "usr/lib"));
  OUTPOST_ASSERT_OK(b.AddHostFile("usr/bin/tool", host));
  OUTPOST_ASSERT_OK(b.AddFileContents("/etc/passwd", "root:x:0:0::/:/sbin/nologin\n"));
  std::string bytes = Archive(a);
  EXPECT_EQ(bytes, Archive(b));
  EXPECT_EQ(bytes.size() % kUstarRecord, 0u);

  OUTPOST_ASSERT_OK_AND_ASSIGN(std::vector<TarItem> items, ReadTar(bytes));
  std::vector<std::string> names;
  for (const TarItem& item : items) names.push_back(item.name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"etc/", "etc/passwd", "lib", "usr/", "usr/bin/",
                                      "usr/bin/tool", "var/", "var/lib/", "var/lib/outpost/"}));
  for (const TarItem& item : items) {
    EXPECT_EQ(item.mtime, 1700000000u) << item.name;
    EXPECT_EQ(item.uname, "") << item.name;
    bool data_dir = item.name == "var/lib/outpost/";
    EXPECT_EQ(item.uid, data_dir ? 65532u : 0u) << item.name;
    EXPECT_EQ(item.gid, data_dir ? 65532u : 0u) << item.name;
  }
  EXPECT_EQ(items[2].type, kUstarSymlink);
  EXPECT_EQ(items[2].linkname, "usr/lib");
  EXPECT_EQ(items[2].mode, 0777u);
  EXPECT_EQ(items[0].type, kUstarDirectory);
  EXPECT_EQ(items[0].mode, 0755u);
  EXPECT_EQ(items[5].data, "#!/bin/true\n");
  EXPECT_EQ(items[5].mode, 0755u);  // an execute bit on the host: 0755, whatever else
  EXPECT_EQ(items[1].mode, 0644u);
}

TEST(LayerBuilder, HostOwnerModeAndTimeDoNotReachTheArchive) {
  outpost::testing::TempDir dir;
  std::string host = dir.File("data");
  ASSERT_TRUE(WriteFileAtomically(host, "payload", 0600).ok());
  LayerBuilder first(0);
  OUTPOST_ASSERT_OK(first.AddHostFile("data", host));
  std::string before = Archive(first);
  // Another owner (when the test may change it), another mode, another time.
  if (::geteuid() == 0) {
    ASSERT_EQ(::chown(host.c_str(), 1234, 4321), 0);
  }
  ASSERT_EQ(::chmod(host.c_str(), 0640), 0);
  struct timespec times[2] = {{12345, 0}, {12345, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, host.c_str(), times, 0), 0);
  LayerBuilder second(0);
  OUTPOST_ASSERT_OK(second.AddHostFile("data", host));
  EXPECT_EQ(Archive(second), before);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::vector<TarItem> items, ReadTar(before));
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].uid, 0u);
  EXPECT_EQ(items[0].gid, 0u);
  EXPECT_EQ(items[0].mode, 0644u);
  EXPECT_EQ(items[0].mtime, 0u);
}

TEST(LayerBuilder, RefusesConflictsAndUnsafePathsAndKeepsWhatItHad) {
  LayerBuilder layer(0);
  OUTPOST_ASSERT_OK(layer.AddFileContents("etc/group", "root:x:0:\n"));
  OUTPOST_ASSERT_OK(layer.AddSymlink("lib", "usr/lib"));
  std::string before = Archive(layer);
  EXPECT_EQ(layer.AddFileContents("etc/group", "other\n").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(layer.AddFileContents("lib/libz.so.1", "z").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(layer.AddFileContents("usr/../etc/shadow", "x").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(layer.AddDirectory("/").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(layer.AddSymlink("usr/lib64", "").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Archive(layer), before);
  // The same entry again is no change.
  OUTPOST_EXPECT_OK(layer.AddFileContents("etc/group", "root:x:0:\n"));
  EXPECT_EQ(Archive(layer), before);
}

TEST(LayerBuilder, LongNamesUseThePrefixFieldAndTooLongOnesAreRefused) {
  std::string dir = "usr/lib/" + std::string(90, 'd');
  std::string name = dir + "/libexample.so.1";
  LayerBuilder layer(0);
  OUTPOST_ASSERT_OK(layer.AddFileContents(name, "x"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::vector<TarItem> items, ReadTar(Archive(layer)));
  ASSERT_EQ(items.size(), 4u);
  EXPECT_EQ(items[3].name, name);
  char block[kUstarBlock];
  std::string unsplittable(120, 'n');
  EXPECT_EQ(EncodeUstarHeader(UstarFields{.name = unsplittable}, block).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeUstarHeader(UstarFields{.name = "a", .size = uint64_t{1} << 33}, block).code(),
            StatusCode::kInvalidArgument);
}

TEST(LayerBuilder, GnuTarListsTheArchive) {
  if (!PathExists("/usr/bin/tar") && !PathExists("/bin/tar")) GTEST_SKIP() << "no tar";
  outpost::testing::TempDir dir;
  LayerBuilder layer(0);
  OUTPOST_ASSERT_OK(layer.AddFileContents("usr/share/outpost/sbom.json", "{}\n"));
  OUTPOST_ASSERT_OK(layer.AddSymlink("lib", "usr/lib"));
  OUTPOST_ASSERT_OK(layer.AddDirectory("var/lib/outpost", 0755, 65532, 65532));
  ASSERT_TRUE(WriteFileAtomically(dir.File("layer.tar"), Archive(layer)).ok());
  RunResult run =
      RunProgram({"/bin/sh", "-c", "tar --numeric-owner -tvf " + dir.File("layer.tar")});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("65532/65532"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("lib -> usr/lib"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("usr/share/outpost/sbom.json"), std::string::npos) << run.out;
}

TEST(Gzip, FixedHeaderSameBytesEveryTimeAndGzipReadsItBack) {
  std::string input;
  for (int i = 0; i < 200000; ++i) input += std::to_string(i * 7919 % 1000) + ",";
  auto compress = [&input]() {
    std::string out;
    StringSink sink(out);
    Result<std::unique_ptr<GzipSink>> gzip = GzipSink::Open(sink);
    EXPECT_TRUE(gzip.ok());
    EXPECT_TRUE((*gzip)->Write(std::string_view(input).substr(0, 1000)).ok());
    EXPECT_TRUE((*gzip)->Write(std::string_view(input).substr(1000)).ok());
    EXPECT_TRUE((*gzip)->Finish().ok());
    return out;
  };
  std::string a = compress();
  EXPECT_EQ(a, compress());
  ASSERT_GT(a.size(), 18u);
  EXPECT_LT(a.size(), input.size());
  EXPECT_EQ(a.substr(0, 10), std::string("\x1f\x8b\x08\0\0\0\0\0\0\xff", 10));
  outpost::testing::TempDir dir;
  ASSERT_TRUE(WriteFileAtomically(dir.File("x.gz"), a).ok());
  RunResult run = RunProgram({"/bin/sh", "-c", "gzip -dc < " + dir.File("x.gz")});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, input);
}

TEST(Elf, ReadsTheLoaderNeededLibrariesAndSectionsOfBinLs) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(ElfInfo info, ReadElfFile("/bin/ls"));
  ASSERT_TRUE(MultiarchTriplet(info.machine).has_value()) << info.machine;
  EXPECT_FALSE(info.interpreter.empty());
  EXPECT_TRUE(PathExists(info.interpreter)) << info.interpreter;
  EXPECT_NE(std::find(info.needed.begin(), info.needed.end(), "libc.so.6"), info.needed.end());
  EXPECT_NE(std::find(info.section_names.begin(), info.section_names.end(), ".text"),
            info.section_names.end());
  EXPECT_NE(std::find(info.section_names.begin(), info.section_names.end(), ".dynamic"),
            info.section_names.end());
  // readelf, written by others, reads the same DT_NEEDED list.
  RunResult run = RunProgram(
      {"/bin/sh", "-c", "readelf -d /bin/ls | sed -n 's/.*Shared library: \\[\\(.*\\)\\]/\\1/p'"});
  if (run.exit_code == 0 && !run.out.empty()) {
    std::vector<std::string> expected;
    std::istringstream lines(run.out);
    for (std::string line; std::getline(lines, line);) expected.push_back(line);
    EXPECT_EQ(info.needed, expected);
  }
}

TEST(Elf, RefusesWhatIsNotAWholeElfFileWithoutCrashing) {
  Result<ElfInfo> text = ParseElfBytes("#!/bin/sh\necho not elf\n");
  EXPECT_EQ(text.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(text.status().reason(), "elf_malformed");
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string ls, ReadFile("/bin/ls"));
  for (size_t keep : {size_t{16}, size_t{64}, size_t{200}, size_t{4096}, ls.size() / 2}) {
    Result<ElfInfo> cut = ParseElfBytes(std::string_view(ls).substr(0, keep));
    EXPECT_FALSE(cut.ok()) << keep;
  }
  std::string thirty_two = ls;
  thirty_two[4] = 1;  // ELFCLASS32
  EXPECT_EQ(ParseElfBytes(thirty_two).status().code(), StatusCode::kUnimplemented);
}

TEST(Deps, ResolvesWhatLddLoadsForBinLs) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(ElfInfo info, ReadElfFile("/bin/ls"));
  std::optional<std::string> triplet = MultiarchTriplet(info.machine);
  ASSERT_TRUE(triplet.has_value());
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      std::vector<ResolvedLibrary> libraries,
      ResolveSharedLibraries("/bin/ls", info, DefaultLibraryDirs(*triplet)));
  std::set<std::string> ours;
  for (const ResolvedLibrary& library : libraries) {
    ours.insert(library.name);
    EXPECT_TRUE(PathExists(library.host_path)) << library.host_path;
  }
  EXPECT_EQ(ours.count("libc.so.6"), 1u);
  // libc.so.6 names the loader too; ldd prints it on a line of its own, without "=>".
  ours.erase(info.interpreter.substr(info.interpreter.rfind('/') + 1));
  // ldd (the loader itself) names the same libraries, less the vDSO and the loader.
  RunResult run = RunProgram({"/bin/sh", "-c", "ldd /bin/ls"});
  if (run.exit_code != 0) GTEST_SKIP() << "ldd: " << run.err;
  std::set<std::string> theirs;
  std::istringstream lines(run.out);
  for (std::string line; std::getline(lines, line);) {
    size_t arrow = line.find(" => ");
    if (arrow == std::string::npos) continue;
    size_t start = line.find_first_not_of(" \t");
    theirs.insert(line.substr(start, arrow - start));
  }
  EXPECT_EQ(ours, theirs);
}

TEST(Deps, NamesTheMissingLibraryAndWhoNeedsIt) {
  ElfInfo fake{.machine = kElfMachineX86_64, .needed = {"libnot-there-at-all.so.9"}};
  Result<std::vector<ResolvedLibrary>> r =
      ResolveSharedLibraries("/usr/bin/example", fake, DefaultLibraryDirs("x86_64-linux-gnu"));
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(r.status().reason(), "library_not_found");
  EXPECT_NE(r.status().message().find("libnot-there-at-all.so.9"), std::string::npos);
  EXPECT_NE(r.status().message().find("/usr/bin/example"), std::string::npos);
}

TEST(Sbom, FindsTheDebianPackageOfLibcAndRefusesAnUnpackagedFile) {
  if (!PathExists("/usr/bin/dpkg")) GTEST_SKIP() << "not a Debian machine";
  OUTPOST_ASSERT_OK_AND_ASSIGN(ElfInfo info, ReadElfFile("/bin/ls"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      std::vector<ResolvedLibrary> libraries,
      ResolveSharedLibraries("/bin/ls", info,
                             DefaultLibraryDirs(MultiarchTriplet(info.machine).value())));
  std::string libc;
  for (const ResolvedLibrary& library : libraries) {
    if (library.name == "libc.so.6") libc = library.host_path;
  }
  ASSERT_FALSE(libc.empty());
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      std::vector<DebianPackage> packages,
      FindDebianPackages({PackagedFile{.image_path = "/usr/lib/libc.so.6", .host_path = libc}}));
  ASSERT_EQ(packages.size(), 1u);
  EXPECT_EQ(packages[0].name, "libc6");
  RunResult version = RunProgram({"/usr/bin/dpkg-query", "-W", "-f=${Version}", "libc6"});
  EXPECT_EQ(packages[0].version, version.out);
  EXPECT_EQ(packages[0].image_paths, std::vector<std::string>{"/usr/lib/libc.so.6"});

  outpost::testing::TempDir dir;
  ASSERT_TRUE(WriteFileAtomically(dir.File("libmine.so"), "x").ok());
  Result<std::vector<DebianPackage>> refused = FindDebianPackages(
      {PackagedFile{.image_path = "/usr/lib/libmine.so", .host_path = dir.File("libmine.so")}});
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(refused.status().reason(), "unpackaged_file");
}

TEST(Sbom, PurlsEncodeTheVersionAndNameTheDistribution) {
  DebianPackage zlib{.name = "zlib1g", .version = "1:1.2.13.dfsg-1", .architecture = "amd64"};
  EXPECT_EQ(DebianPurl(zlib, "debian", "12"),
            "pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1?arch=amd64&distro=debian-12");
  DebianPackage libc{.name = "libc6", .version = "2.36-9+deb12u10", .architecture = "amd64"};
  EXPECT_EQ(DebianPurl(libc, "", ""), "pkg:deb/debian/libc6@2.36-9%2Bdeb12u10?arch=amd64");
  std::string json = MakeSbomJson(SbomSubject{.version = "0.1.0",
                                              .binary_image_path = "/usr/bin/outpost",
                                              .binary_sha256 = std::string(64, 'a'),
                                              .timestamp = "1970-01-01T00:00:00Z"},
                                  {libc, zlib});
  EXPECT_EQ(json.rfind(R"({"bomFormat":"CycloneDX","specVersion":"1.5",)", 0), 0u) << json;
  EXPECT_LT(json.find("\"libc6\""), json.find("\"zlib1g\""));
  EXPECT_EQ(PackageSummary({libc, zlib}), "libc6=2.36-9+deb12u10,zlib1g=1:1.2.13.dfsg-1");
}

}  // namespace
}  // namespace outpost::image
