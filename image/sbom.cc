#include "image/sbom.h"

#include <stdlib.h>

#include <algorithm>
#include <set>
#include <sstream>
#include <utility>

#include "base/file.h"
#include "base/json_writer.h"
#include "base/subprocess.h"

namespace outpost::image {
namespace {

// The path itself, its /lib <-> /usr/lib twin, and its real path and that one's twin:
// Debian 12's packages record a library under either spelling of merged /usr.
std::vector<std::string> DpkgSpellings(const std::string& path) {
  std::vector<std::string> out;
  auto add = [&out](const std::string& p) {
    if (p.empty() || std::find(out.begin(), out.end(), p) != out.end()) return;
    out.push_back(p);
    if (p.rfind("/usr/lib", 0) == 0) {
      out.push_back(p.substr(4));
    } else if (p.rfind("/lib", 0) == 0) {
      out.push_back("/usr" + p);
    }
  };
  add(path);
  char* real = ::realpath(path.c_str(), nullptr);
  if (real != nullptr) {
    add(real);
    ::free(real);
  }
  return out;
}

// dpkg -S's answer: path -> owning package ("libc6:amd64"). Lines are "<pkgs>: <path>" with
// pkgs separated by ", " (several for a shared folder); diversions are skipped.
Result<std::map<std::string, std::string>> DpkgOwners(const std::vector<std::string>& paths,
                                                      const DpkgTools& tools) {
  std::vector<std::string> argv = {tools.dpkg, "-S"};
  argv.insert(argv.end(), paths.begin(), paths.end());
  RunResult run = RunProgram(argv);
  // 0: all found; 1: some not found (said on stderr); anything else is a failure.
  if (run.exit_code != 0 && run.exit_code != 1) {
    return FailedPreconditionError("dpkg -S failed (exit " + std::to_string(run.exit_code) +
                                   "): " + run.err.substr(0, 300));
  }
  std::map<std::string, std::string> owners;
  std::istringstream lines(run.out);
  std::string line;
  while (std::getline(lines, line)) {
    size_t sep = line.find(": ");
    if (sep == std::string::npos) continue;
    std::string pkgs = line.substr(0, sep);
    if (pkgs.find("diversion") != std::string::npos) continue;
    std::string path = line.substr(sep + 2);
    std::vector<std::string> names;
    std::istringstream split(pkgs);
    std::string name;
    while (std::getline(split, name, ',')) {
      name.erase(0, name.find_first_not_of(' '));
      if (!name.empty()) names.push_back(name);
    }
    if (names.empty()) continue;
    std::sort(names.begin(), names.end());
    owners[path] = names.front();
  }
  return owners;
}

struct Version {
  std::string name, version, architecture;
};

// dpkg-query -W's answer for each owner ("libc6:amd64" or "ca-certificates"), keyed both by
// the bare and the arch-qualified name.
Result<std::map<std::string, Version>> DpkgVersions(const std::set<std::string>& owners,
                                                    const DpkgTools& tools) {
  std::vector<std::string> argv = {tools.dpkg_query, "-W",
                                   "-f=${Package}\t${Version}\t${Architecture}\n"};
  argv.insert(argv.end(), owners.begin(), owners.end());
  RunResult run = RunProgram(argv);
  if (run.exit_code != 0) {
    return FailedPreconditionError("dpkg-query -W failed (exit " + std::to_string(run.exit_code) +
                                   "): " + run.err.substr(0, 300));
  }
  std::map<std::string, Version> out;
  std::istringstream lines(run.out);
  std::string line;
  while (std::getline(lines, line)) {
    size_t t1 = line.find('\t');
    size_t t2 = t1 == std::string::npos ? t1 : line.find('\t', t1 + 1);
    if (t2 == std::string::npos) continue;
    Version v{line.substr(0, t1), line.substr(t1 + 1, t2 - t1 - 1), line.substr(t2 + 1)};
    out[v.name + ":" + v.architecture] = v;
    out.emplace(v.name, v);
  }
  return out;
}

}  // namespace

Result<std::vector<DebianPackage>> FindDebianPackages(const std::vector<PackagedFile>& files,
                                                      const DpkgTools& tools) {
  if (!PathExists(tools.dpkg) || !PathExists(tools.dpkg_query)) {
    return FailedPreconditionError("the image's package list needs dpkg (" + tools.dpkg +
                                   "): build the image on Debian");
  }
  std::vector<std::string> queries;
  for (const PackagedFile& f : files) {
    if (!f.known_package.empty()) continue;
    for (std::string& p : DpkgSpellings(f.host_path)) queries.push_back(std::move(p));
  }
  std::map<std::string, std::string> owners;
  if (!queries.empty()) {
    OUTPOST_ASSIGN_OR_RETURN(owners, DpkgOwners(queries, tools));
  }
  std::map<std::string, std::string> owner_of;  // image path -> owner
  std::set<std::string> wanted;
  for (const PackagedFile& f : files) {
    std::string owner = f.known_package;
    for (const std::string& p : DpkgSpellings(f.host_path)) {
      if (!owner.empty()) break;
      auto it = owners.find(p);
      if (it != owners.end()) owner = it->second;
    }
    if (owner.empty()) {
      return ErrorWithReason(StatusCode::kFailedPrecondition, "unpackaged_file",
                             f.host_path + " belongs to no Debian package; the image carries " +
                                 "only packaged libraries");
    }
    owner_of[f.image_path] = owner;
    wanted.insert(owner);
  }
  OUTPOST_ASSIGN_OR_RETURN(auto versions, DpkgVersions(wanted, tools));
  std::map<std::string, DebianPackage> by_name;
  for (const auto& [image_path, owner] : owner_of) {
    auto it = versions.find(owner);
    if (it == versions.end()) {
      return FailedPreconditionError("dpkg-query does not know the package " + owner);
    }
    DebianPackage& p = by_name[it->second.name];
    p.name = it->second.name;
    p.version = it->second.version;
    p.architecture = it->second.architecture;
    p.image_paths.push_back(image_path);  // owner_of is sorted, so these are too
  }
  std::vector<DebianPackage> out;
  for (auto& [name, p] : by_name) out.push_back(std::move(p));
  return out;
}

std::string DebianPurl(const DebianPackage& package, const std::string& os_id,
                       const std::string& os_version_id) {
  auto encode = [](std::string_view s) {
    static const char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
      bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '.' || c == '-' || c == '_' || c == '~';
      if (plain) {
        out.push_back(static_cast<char>(c));
      } else {
        out.push_back('%');
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 15]);
      }
    }
    return out;
  };
  std::string purl = "pkg:deb/" + encode(os_id.empty() ? "debian" : os_id) + "/" +
                     encode(package.name) + "@" + encode(package.version);
  purl += "?arch=" + encode(package.architecture);
  if (!os_id.empty() && !os_version_id.empty()) {
    purl += "&distro=" + encode(os_id + "-" + os_version_id);
  }
  return purl;
}

std::string MakeSbomJson(const SbomSubject& subject, const std::vector<DebianPackage>& packages) {
  std::string out;
  JsonWriter w(out);
  auto file_property = [&w](const std::string& path) {
    w.BeginObject();
    w.Key("name");
    w.String("outpost:file");
    w.Key("value");
    w.String(path);
    w.EndObject();
  };
  w.BeginObject();
  w.Key("bomFormat");
  w.String("CycloneDX");
  w.Key("specVersion");
  w.String("1.5");
  w.Key("version");
  w.Int(1);
  w.Key("metadata");
  w.BeginObject();
  w.Key("timestamp");
  w.String(subject.timestamp);
  w.Key("tools");
  w.Raw(R"({"components":[{"type":"application","name":"outpost image build"}]})");
  w.Key("component");
  w.BeginObject();
  w.Key("type");
  w.String("container");
  w.Key("name");
  w.String("outpost");
  w.Key("version");
  w.String(subject.version);
  w.EndObject();
  w.EndObject();
  w.Key("components");
  w.BeginArray();
  w.BeginObject();
  w.Key("type");
  w.String("application");
  w.Key("bom-ref");
  w.String("outpost");
  w.Key("name");
  w.String("outpost");
  w.Key("version");
  w.String(subject.version);
  w.Key("hashes");
  w.BeginArray();
  w.BeginObject();
  w.Key("alg");
  w.String("SHA-256");
  w.Key("content");
  w.String(subject.binary_sha256);
  w.EndObject();
  w.EndArray();
  w.Key("properties");
  w.BeginArray();
  file_property(subject.binary_image_path);
  w.EndArray();
  w.EndObject();
  for (const DebianPackage& p : packages) {
    std::string purl = DebianPurl(p, subject.os_id, subject.os_version_id);
    w.BeginObject();
    w.Key("type");
    w.String("library");
    w.Key("bom-ref");
    w.String(purl);
    w.Key("name");
    w.String(p.name);
    w.Key("version");
    w.String(p.version);
    w.Key("purl");
    w.String(purl);
    w.Key("properties");
    w.BeginArray();
    for (const std::string& path : p.image_paths) file_property(path);
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  out.push_back('\n');
  return out;
}

std::string PackageSummary(const std::vector<DebianPackage>& packages) {
  std::string out;
  for (const DebianPackage& p : packages) {
    if (!out.empty()) out.push_back(',');
    out += p.name + "=" + p.version;
  }
  return out;
}

std::pair<std::string, std::string> ReadOsRelease(const std::string& path) {
  Result<std::string> text = ReadFile(path, 1 << 16);
  if (!text.ok()) return {};
  std::string id, version_id;
  std::istringstream lines(*text);
  std::string line;
  while (std::getline(lines, line)) {
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = line.substr(0, eq);
    std::string value = line.substr(eq + 1);
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    if (key == "ID") id = value;
    if (key == "VERSION_ID") version_id = value;
  }
  return {id, version_id};
}

}  // namespace outpost::image
