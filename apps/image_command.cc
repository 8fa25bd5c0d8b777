// `outpost image build`: the runtime image, an OCI image of this binary that runs
// `outpost edge`, built without a container daemon (image/FORMAT.md).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "apps/commands.h"
#include "image/build.h"
#include "image/gzip.h"

namespace outpost::apps {
namespace {

struct ImageFlags {
  std::string binary;
  std::string out;
  std::string tag;
  std::string debug_out;
  std::string source_date_epoch;  // empty: $SOURCE_DATE_EPOCH, else 0
};

Result<uint64_t> BuildTime(const std::string& flag) {
  std::string text = flag;
  if (text.empty()) {
    const char* env = std::getenv("SOURCE_DATE_EPOCH");
    text = env == nullptr ? "" : env;
  }
  if (text.empty()) return uint64_t{0};
  char* end = nullptr;
  unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (end == text.c_str() || *end != '\0' || text[0] == '-') {
    return InvalidArgumentError("SOURCE_DATE_EPOCH must be whole seconds, not \"" + text + "\"");
  }
  return static_cast<uint64_t>(v);
}

double Mib(uint64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

Status RunImageBuild(ImageFlags f) {
  // "image/" names the folder "image": the layout is staged beside it, then renamed.
  while (f.out.size() > 1 && f.out.back() == '/') f.out.pop_back();
  OUTPOST_ASSIGN_OR_RETURN(uint64_t epoch, BuildTime(f.source_date_epoch));
  OUTPOST_ASSIGN_OR_RETURN(image::ImageBuildResult r,
                           image::BuildImage(image::ImageBuildOptions{.binary = f.binary,
                                                                      .out = f.out,
                                                                      .version = OutpostVersion(),
                                                                      .tag = f.tag,
                                                                      .debug_out = f.debug_out,
                                                                      .source_date_epoch = epoch}));
  std::printf("image %s\n", f.out.c_str());
  std::printf("manifest %s\n", r.manifest_digest.c_str());
  std::printf("config %s\n", r.config_digest.c_str());
  std::printf("layer %s compressed %llu bytes (%.1f MiB), uncompressed %llu bytes (%.1f MiB)\n",
              r.layer_digest.c_str(), static_cast<unsigned long long>(r.layer_compressed_bytes),
              Mib(r.layer_compressed_bytes), static_cast<unsigned long long>(r.layer_bytes),
              Mib(r.layer_bytes));
  std::printf("total %llu bytes (%.1f MiB)\n", static_cast<unsigned long long>(r.out_bytes),
              Mib(r.out_bytes));
  std::printf("libraries %zu from %zu Debian packages (SBOM /usr/share/outpost/sbom.json)\n",
              r.libraries, r.packages);
  std::printf("debug info %s\n", r.debug_path.c_str());
  std::printf("gzip zlib %s level %d\n", image::ZlibVersion(), image::kGzipLevel);
  return Status::Ok();
}

}  // namespace

void AddImageCommand(CLI::App& app, Action& run) {
  CLI::App* image = app.add_subcommand("image", "The runtime container image (OCI)");
  image->require_subcommand(1);
  CLI::App* build =
      image->add_subcommand("build",
                            "Build the OCI image that runs `outpost edge`, from a binary and this "
                            "machine's Debian libraries, without a container daemon");
  auto flags = std::make_shared<ImageFlags>();
  build->add_option("--binary", flags->binary, "The outpost executable to ship")->required();
  build
      ->add_option("--out", flags->out,
                   "An OCI image layout folder, or FILE.tar for the same layout as one "
                   "archive (skopeo's oci-archive:, podman load); must not exist")
      ->required();
  build->add_option("--tag", flags->tag,
                    "index.json's org.opencontainers.image.ref.name (default outpost:<version>)");
  build->add_option("--debug-out", flags->debug_out,
                    "Where the binary's debug information goes (default: outpost.debug beside "
                    "--out)");
  build->add_option("--source-date-epoch", flags->source_date_epoch,
                    "The time written into the image, in seconds (default: $SOURCE_DATE_EPOCH, "
                    "else 0)");
  build->callback([&run, flags] { run = [flags] { return RunImageBuild(*flags); }; });
}

}  // namespace outpost::apps
