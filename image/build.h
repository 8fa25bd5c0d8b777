// `outpost image build`: the runtime image, an OCI image that runs `outpost edge`, made from
// one `outpost` binary and the building machine's Debian libraries without a container
// daemon (image/FORMAT.md). Two builds from the same binary on the same machine give the same
// bytes, hence the same digest. Thread-compatible; one build per output path at a time.
#ifndef OUTPOST_IMAGE_BUILD_H_
#define OUTPOST_IMAGE_BUILD_H_

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "image/sbom.h"

namespace outpost::image {

inline constexpr uint32_t kImageUid = 65532;
inline constexpr uint32_t kImageGid = 65532;
inline constexpr char kImageDataDir[] = "/var/lib/outpost";
inline constexpr char kImageBinaryPath[] = "/usr/bin/outpost";
inline constexpr char kImageSbomPath[] = "/usr/share/outpost/sbom.json";

struct ImageBuildOptions {
  // The `outpost` executable to ship. Required.
  std::string binary;
  // An OCI image layout folder, or, when the name ends in ".tar", one tar file of it. Must
  // not exist. Required.
  std::string out;
  // Outpost's version, recorded in the labels and the SBOM. Required.
  std::string version;
  // index.json's org.opencontainers.image.ref.name; empty: "outpost:<version>".
  std::string tag;
  // Where the debug information goes; empty: "outpost.debug" in the folder holding `out`.
  std::string debug_out;
  // The time written into the image, in seconds since the epoch (FORMAT.md section 5).
  uint64_t source_date_epoch = 0;
  // The CA bundle copied into the image.
  std::string ca_bundle = "/etc/ssl/certs/ca-certificates.crt";
  // binutils' objcopy, which strips the binary.
  std::string objcopy = "/usr/bin/objcopy";
  // dpkg and dpkg-query, which name the libraries' packages.
  DpkgTools dpkg;
  // Folders searched for libraries; empty: DefaultLibraryDirs() of the binary's machine.
  std::vector<std::string> library_dirs;
  // The os-release file whose ID and VERSION_ID go into the purls.
  std::string os_release = "/etc/os-release";
};

struct ImageBuildResult {
  std::string manifest_digest;  // "sha256:<hex>"
  std::string config_digest;
  std::string layer_digest;   // of the gzip stream
  std::string layer_diff_id;  // of the uncompressed tar
  uint64_t layer_compressed_bytes = 0;
  uint64_t layer_bytes = 0;  // uncompressed
  uint64_t out_bytes = 0;    // the blobs and layout files together (or the tar's size)
  size_t libraries = 0;      // files and links from Debian packages, loader included
  size_t packages = 0;
  std::string debug_path;
};

// Builds the image. InvalidArgument for missing options or a binary that is not a
// dynamically linked ELF executable; AlreadyExists when `out` exists; Unimplemented for a
// machine other than x86-64 and arm64; NotFound for a library, the loader or the CA bundle
// that is not there; FailedPrecondition when objcopy or dpkg is missing or fails, when debug
// sections survive stripping, or for a library no package owns; I/O errors otherwise. On
// error nothing is left at `out`.
Result<ImageBuildResult> BuildImage(const ImageBuildOptions& options);

// The build time of `epoch` as RFC 3339 UTC ("1970-01-01T00:00:00Z").
std::string Rfc3339(uint64_t epoch);

}  // namespace outpost::image

#endif  // OUTPOST_IMAGE_BUILD_H_
