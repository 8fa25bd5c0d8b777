// The runtime image's software bill of materials (image/FORMAT.md section 6): which Debian
// package, at which version, every library of the image comes from, asked of dpkg on the
// building machine, and the CycloneDX document and label summary made from the answer.
// Thread-compatible.
#ifndef OUTPOST_IMAGE_SBOM_H_
#define OUTPOST_IMAGE_SBOM_H_

#include <map>
#include <string>
#include <vector>

#include "base/status.h"

namespace outpost::image {

// One file or link of the image that a Debian package contributed.
struct PackagedFile {
  std::string image_path;  // "/usr/lib/x86_64-linux-gnu/libz.so.1"
  std::string host_path;   // where it was read on the building machine
  // Set when no package ships the path itself but it comes from this package (the CA
  // bundle, which update-ca-certificates makes): dpkg -S is not asked.
  std::string known_package;
};

struct DebianPackage {
  std::string name;                      // "libc6"
  std::string version;                   // "2.36-9+deb12u10"
  std::string architecture;              // "amd64", "all"
  std::vector<std::string> image_paths;  // sorted
};

struct DpkgTools {
  std::string dpkg = "/usr/bin/dpkg";
  std::string dpkg_query = "/usr/bin/dpkg-query";
};

// The packages that own `files`, sorted by name, each with its files. Runs `dpkg -S` once
// for every path (and its /lib <-> /usr/lib twin and real path) and `dpkg-query -W` once.
// FailedPrecondition (reason "unpackaged_file") naming a file no package owns;
// FailedPrecondition when dpkg cannot be run (not a Debian machine) or fails.
Result<std::vector<DebianPackage>> FindDebianPackages(const std::vector<PackagedFile>& files,
                                                      const DpkgTools& tools = {});

// What the SBOM says about the image besides its packages.
struct SbomSubject {
  std::string version;            // Outpost's version
  std::string binary_image_path;  // "/usr/bin/outpost"
  std::string binary_sha256;      // hex of the shipped binary
  std::string timestamp;          // RFC 3339, the build time
  std::string os_id;              // /etc/os-release ID ("debian"); empty when unknown
  std::string os_version_id;      // its VERSION_ID ("12"); empty when unknown
};

// The CycloneDX 1.5 JSON document, compact, members in a fixed order.
std::string MakeSbomJson(const SbomSubject& subject, const std::vector<DebianPackage>& packages);

// "name=version,name=version", sorted by name: the outpost.packages label.
std::string PackageSummary(const std::vector<DebianPackage>& packages);

// ID and VERSION_ID of an os-release file; empty strings when it or they are missing.
std::pair<std::string, std::string> ReadOsRelease(const std::string& path = "/etc/os-release");

// The purl of a Debian package (purl spec, type deb), "?arch=" and "&distro=" qualifiers
// included when known.
std::string DebianPurl(const DebianPackage& package, const std::string& os_id,
                       const std::string& os_version_id);

}  // namespace outpost::image

#endif  // OUTPOST_IMAGE_SBOM_H_
